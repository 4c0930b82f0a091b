//! Cold start and one invocation: the settings read once, the clients built once, and each
//! event handed to [`crate::Service::handle`] with the current keys.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::{dynamodb::DynamoStore, eventbridge::EventBridgeBus, sns::SnsNotifier};
use shared::campaign::Campaign;
use shared::emf::StdoutEmf;
use shared::refresh::{Refreshing, SECRET_REFRESH};
use shared::settings::{self, FromVars, Lookup, SettingsError};

use crate::deps::{Deps, WebhookError};
use crate::router::Service;

/// The webhook's settings, read from the environment once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table: String,
    /// `EVENT_BUS_NAME`: the bus the product's events are published on.
    pub event_bus: String,
    /// `PUBLIC_BASE_URL`: the function's own URL (for links in follow-up notices); empty when
    /// unset.
    pub public_base_url: String,
    /// `FOLLOW_UP_TOPIC_ARN`: the SNS topic a person is told on, if any.
    pub follow_up_topic: Option<String>,
}

impl FromVars for Settings {
    fn from_vars<F: Fn(&str) -> Option<String>>(
        env: &Lookup<F>,
    ) -> Result<Settings, SettingsError> {
        Ok(Settings {
            table: env.table_name("TABLE_NAME")?,
            event_bus: env.event_bus("EVENT_BUS_NAME")?,
            public_base_url: env.optional_url("PUBLIC_BASE_URL")?.unwrap_or_default(),
            follow_up_topic: env.optional_arn("FOLLOW_UP_TOPIC_ARN")?,
        })
    }
}

/// Builds the service; the DynamoDB connection opens while the keys and campaign load. Keys are
/// read again every few minutes, in the background (a failed read is counted as
/// `SecretRefreshFailures`, Service=webhook): a webhook key removed from the secret stops working.
pub async fn cold_start() -> Result<Service, Error> {
    let s = Settings::from_env().map_err(settings::refuse_at_start)?;
    let conf = settings::lambda_aws_config();
    let (store, warming) = DynamoStore::warming(&conf, s.table, async {});
    let keys = settings::Keys::load(&conf)
        .await
        .map_err(settings::refuse_at_start)?;
    let deps = Deps {
        store: Arc::new(store),
        bus: Arc::new(EventBridgeBus::from_conf(&conf, s.event_bus)),
        campaign: Arc::new(Campaign::from_env().map_err(settings::refuse_at_start)?),
        keys: keys.clone(),
        public_base_url: s.public_base_url,
        metrics: Arc::new(StdoutEmf),
        notifier: s.follow_up_topic.map(|arn| {
            Arc::new(SnsNotifier::from_conf(&conf, arn)) as Arc<dyn shared::ports::Notifier>
        }),
    };
    let service = Service::new(
        deps,
        Refreshing::new(keys, chrono::Utc::now(), SECRET_REFRESH, move || {
            let conf = conf.clone();
            async move { settings::Keys::load(&conf).await }
        })
        .reporting(Arc::new(StdoutEmf), "webhook"),
    );
    let _ = warming.await;
    Ok(service)
}

/// One event (an HTTP request or an SES event).
pub async fn invoke(
    service: &Service,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, WebhookError> {
    service.handle(event.payload, chrono::Utc::now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: [(&str, &str); 2] = [
        ("TABLE_NAME", "winback-prod"),
        ("EVENT_BUS_NAME", "winback-prod"),
    ];

    #[test]
    fn the_optional_settings_may_be_unset_but_not_malformed() {
        let s = Settings::from_lookup(settings::vars(&GOOD)).unwrap();
        assert_eq!(s.public_base_url, "");
        assert_eq!(s.follow_up_topic, None);
        for (name, value) in [
            ("PUBLIC_BASE_URL", "ftp://files.example.com"),
            ("FOLLOW_UP_TOPIC_ARN", "follow-ups"),
            ("TABLE_NAME", "a/b"),
        ] {
            let mut vars: Vec<(&str, &str)> =
                GOOD.iter().filter(|(k, _)| *k != name).copied().collect();
            vars.push((name, value));
            let e = Settings::from_lookup(settings::vars(&vars))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name) && e.contains(value), "{e}");
        }
    }
}
