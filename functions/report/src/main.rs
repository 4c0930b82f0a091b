//! The report Lambda: [`report::lambda`] builds its clients once and runs each scheduled event.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::settings::init_logging();
    let deps = report::lambda::cold_start().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        report::lambda::invoke(&deps, event)
    }))
    .await
}
