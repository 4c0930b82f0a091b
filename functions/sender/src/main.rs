//! The sender Lambda: [`sender::lambda`] builds its clients once and runs each SQS batch.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::settings::init_logging();
    let app = sender::lambda::cold_start().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        sender::lambda::invoke(&app, event)
    }))
    .await
}
