use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::adapters::{dynamodb::DynamoStore, eventbridge::EventBridgeBus};
use shared::campaign::Campaign;
use shared::{emf::StdoutEmf, events::RetryPolicy, settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    settings::init_logging();
    let conf = settings::lambda_aws_config();
    let dynamodb = aws_sdk_dynamodb::Client::new(&conf);
    let table = settings::required("TABLE_NAME")?;
    // Open the connection now rather than on the first event, while the campaign loads.
    let warming = settings::spawn_warm_up(&dynamodb, &table, async {});
    let deps = scheduler::Deps {
        store: Arc::new(DynamoStore::new(dynamodb, table)),
        bus: Arc::new(EventBridgeBus::from_conf(
            &conf,
            settings::required("EVENT_BUS_NAME")?,
        )),
        campaign: Arc::new(Campaign::from_env()?.config().clone()),
        metrics: Arc::new(StdoutEmf),
        retry: RetryPolicy::default(),
    };
    let _ = warming.await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let deps = deps.clone();
        async move {
            let left = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .ok();
            let budget = scheduler::Budget::from_deadline(left, Instant::now());
            Ok::<_, Error>(
                scheduler::handle(&deps, &event.payload, chrono::Utc::now(), budget).await?,
            )
        }
    }))
    .await
}
