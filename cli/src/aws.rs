//! `--aws`: the same commands against the endpoints in the environment (real AWS, or DynamoDB
//! Local and moto through `AWS_ENDPOINT_URL*`).

use std::sync::Arc;

use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::eventbridge::EventBridgeBus;
use shared::adapters::ses::SesMailer;
use shared::settings::optional;

use crate::error::{CliError, CliResult};

/// What `--aws` found in the environment.
pub struct Aws {
    pub store: Arc<DynamoStore>,
    /// `EVENT_BUS_NAME` was set: events also go to EventBridge.
    pub bus: Option<Arc<EventBridgeBus>>,
    /// `SENDER_ADDRESS` was set: emails go through SES v2.
    pub mailer: Option<Arc<SesMailer>>,
    /// One line per part that stays in-process, saying which variable would change that.
    pub notes: Vec<String>,
}

/// The DynamoDB store named by `TABLE_NAME`, checked to answer before anything is done.
pub async fn store() -> CliResult<Arc<DynamoStore>> {
    let store = DynamoStore::from_env()
        .await
        .map_err(|e| CliError::AwsMissing {
            missing: e.to_string(),
        })?;
    store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .map_err(|e| CliError::AwsMissing {
            missing: format!(
                "table {} does not answer ({}): check AWS_REGION, credentials and AWS_ENDPOINT_URL_DYNAMODB (for DynamoDB Local, start infra/local/stack.sh)",
                store.table(),
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ),
        })?;
    Ok(Arc::new(store))
}

/// The store, and the bus and mailer when their variables are set.
pub async fn connect() -> CliResult<Aws> {
    let store = store().await?;
    let conf = shared::settings::aws_config().await;
    let mut notes = Vec::new();
    let bus = match optional("EVENT_BUS_NAME") {
        Some(name) => Some(Arc::new(EventBridgeBus::from_conf(&conf, name))),
        None => {
            notes.push("EVENT_BUS_NAME is not set: events stay in-process (set it to publish to EventBridge)".to_string());
            None
        }
    };
    let mailer = match optional("SENDER_ADDRESS") {
        Some(_) => Some(Arc::new(SesMailer::new(
            aws_sdk_sesv2::Client::new(&conf),
            optional("SES_CONFIGURATION_SET"),
        ))),
        None => {
            notes.push(
                "SENDER_ADDRESS is not set: emails stay in-process (set it to send through SES v2)"
                    .to_string(),
            );
            None
        }
    };
    Ok(Aws {
        store,
        bus,
        mailer,
        notes,
    })
}
