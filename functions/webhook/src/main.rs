//! The webhook Lambda: wires clients built once at cold start to [`webhook::handle`].

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::adapters::{dynamodb::DynamoStore, eventbridge::EventBridgeBus, sns::SnsNotifier};
use shared::refresh::{Refreshing, SECRET_REFRESH};
use shared::{campaign::Campaign, emf::StdoutEmf, settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    settings::init_logging();
    let conf = settings::lambda_aws_config();
    let dynamodb = aws_sdk_dynamodb::Client::new(&conf);
    let table = settings::required("TABLE_NAME")?;
    // Open the connection now rather than on the first event, while the keys and campaign load.
    let warming = settings::spawn_warm_up(&dynamodb, &table, async {});
    let keys = settings::Keys::load(&conf).await?;
    let deps = webhook::Deps {
        store: Arc::new(DynamoStore::new(dynamodb, table)),
        bus: Arc::new(EventBridgeBus::from_conf(
            &conf,
            settings::required("EVENT_BUS_NAME")?,
        )),
        campaign: Arc::new(Campaign::from_env()?),
        keys: keys.clone(),
        public_base_url: settings::optional("PUBLIC_BASE_URL").unwrap_or_default(),
        metrics: Arc::new(StdoutEmf),
        notifier: settings::optional("FOLLOW_UP_TOPIC_ARN").map(|arn| {
            Arc::new(SnsNotifier::from_conf(&conf, arn)) as Arc<dyn shared::ports::Notifier>
        }),
    };
    // Keys read again every few minutes: a webhook key removed from the secret stops working.
    let service = &webhook::Service::new(
        deps,
        Refreshing::new(keys, chrono::Utc::now(), SECRET_REFRESH, move || {
            let conf = conf.clone();
            async move { settings::Keys::load(&conf).await }
        }),
    );
    let _ = warming.await;
    run(service_fn(
        move |e: LambdaEvent<serde_json::Value>| async move {
            service.handle(e.payload, chrono::Utc::now()).await
        },
    ))
    .await
}
