//! Cold start and one invocation: the settings read once, the clients built once, and the
//! scheduled event handed to [`crate::run`].

use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::{dynamodb::DynamoStore, eventbridge::EventBridgeBus};
use shared::campaign::Campaign;
use shared::emf::StdoutEmf;
use shared::retry::RetryPolicy;
use shared::settings::{self, FromVars, Lookup, SettingsError};

use crate::{Budget, Deps};

/// The scheduler's settings, read from the environment once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table: String,
    /// `EVENT_BUS_NAME`: the bus the steps are published on.
    pub event_bus: String,
}

impl FromVars for Settings {
    fn from_vars<F: Fn(&str) -> Option<String>>(
        env: &Lookup<F>,
    ) -> Result<Settings, SettingsError> {
        Ok(Settings {
            table: env.table_name("TABLE_NAME")?,
            event_bus: env.event_bus("EVENT_BUS_NAME")?,
        })
    }
}

/// Builds what every invocation uses; the DynamoDB connection opens while the campaign loads.
pub async fn cold_start() -> Result<Deps, Error> {
    let s = Settings::from_env().map_err(settings::refuse_at_start)?;
    let conf = settings::lambda_aws_config();
    let (store, warming) = DynamoStore::warming(&conf, s.table, async {});
    let deps = Deps {
        store: Arc::new(store),
        bus: Arc::new(EventBridgeBus::from_conf(&conf, s.event_bus)),
        campaign: Arc::new(
            Campaign::from_env()
                .map_err(settings::refuse_at_start)?
                .config()
                .clone(),
        ),
        metrics: Arc::new(StdoutEmf),
        retry: RetryPolicy::DEFAULT,
    };
    let _ = warming.await;
    Ok(deps)
}

/// One invocation, within the time the Lambda deadline leaves: a scheduled run, or a resolved
/// reason from the bus (see [`crate::handle`]).
pub async fn invoke(
    deps: &Deps,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Error> {
    let left = event
        .context
        .deadline()
        .duration_since(std::time::SystemTime::now())
        .ok();
    let budget = Budget::from_deadline(left, Instant::now());
    Ok(crate::handle(deps, &event.payload, chrono::Utc::now(), budget).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_or_missing_setting_stops_the_start_naming_it() {
        let good = [
            ("TABLE_NAME", "winback-prod"),
            ("EVENT_BUS_NAME", "winback-prod"),
        ];
        assert_eq!(
            Settings::from_lookup(settings::vars(&good))
                .unwrap()
                .event_bus,
            "winback-prod"
        );
        for (vars, name) in [
            (
                &[("TABLE_NAME", "x"), ("EVENT_BUS_NAME", "bus")][..],
                "TABLE_NAME",
            ),
            (
                &[("TABLE_NAME", "winback"), ("EVENT_BUS_NAME", "my bus")],
                "EVENT_BUS_NAME",
            ),
            (&[("TABLE_NAME", "winback")], "EVENT_BUS_NAME"),
        ] {
            let e = Settings::from_lookup(settings::vars(vars))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
