use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::adapters::{dynamodb::DynamoStore, ses::SesMailer};
use shared::campaign::Campaign;
use shared::refresh::{Refreshing, SECRET_REFRESH};
use shared::{emf::StdoutEmf, settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    settings::init_logging();
    let conf = settings::lambda_aws_config();
    let dynamodb = aws_sdk_dynamodb::Client::new(&conf);
    let ses = aws_sdk_sesv2::Client::new(&conf);
    let table = settings::required("TABLE_NAME")?;
    // Open the connections now rather than on the first event, while the keys and campaign load.
    let warming = settings::spawn_warm_up(&dynamodb, &table, settings::warm_ses(ses.clone()));
    let link_keys = settings::load_link_keys(&conf).await?;
    // The SES limit is per account: each concurrent copy of the sender takes its share.
    let copies = settings::optional_number("SENDER_MAX_CONCURRENCY", 1.0)?.unwrap_or(1.0);
    let rate = settings::optional_number("SES_MAX_SEND_RATE", 0.001)?.map(|r| r / copies);
    let deps = sender::Deps {
        store: Arc::new(DynamoStore::new(dynamodb, table)),
        mailer: Arc::new(SesMailer::new(
            ses,
            settings::optional("SES_CONFIGURATION_SET"),
        )),
        campaign: Arc::new(Campaign::from_env()?),
        metrics: Arc::new(StdoutEmf),
        link_keys: link_keys.clone(),
        public_base_url: settings::required("PUBLIC_BASE_URL")?,
        sender_address: settings::required("SENDER_ADDRESS")?,
        limiter: Arc::new(sender::RateLimiter::new(rate)),
        lease: chrono::Duration::minutes(5),
    };
    // Read again every few minutes, so a rotated link key signs new links soon after.
    let keys = Arc::new(Refreshing::new(
        link_keys,
        chrono::Utc::now(),
        SECRET_REFRESH,
        move || {
            let conf = conf.clone();
            async move { settings::load_link_keys(&conf).await }
        },
    ));
    let _ = warming.await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let (mut deps, keys) = (deps.clone(), keys.clone());
        async move {
            let now = chrono::Utc::now();
            deps.link_keys = (*keys.get(now).await).clone();
            Ok::<_, Error>(sender::handle_batch(&deps, event.payload, now).await)
        }
    }))
    .await
}
