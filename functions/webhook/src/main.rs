//! The webhook Lambda: [`webhook::lambda`] builds its clients once and runs each event.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::settings::init_logging();
    let service = webhook::lambda::cold_start().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        webhook::lambda::invoke(&service, event)
    }))
    .await
}
