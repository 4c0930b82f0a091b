//! Cold start and one invocation. Bad configuration stops the start with a message naming the
//! template parameter to change: a malformed recipient (`ReportRecipients`), or, when someone is
//! to get the email, a sender SES may not send from (`SenderAddress`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::{dynamodb::DynamoStore, ses::SesMailer};
use shared::campaign::Campaign;
use shared::domain::hygiene::{shape, EmailAddress};
use shared::emf::StdoutEmf;
use shared::settings::{self, FromVars, Lookup, SettingsError};

use crate::run::{self, Deps};
use crate::ReportError;

/// The report's settings, read from the environment once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `TABLE_NAME`.
    pub table: String,
    /// `SENDER_ADDRESS`: the campaign's sender, the email's From.
    pub sender: String,
    /// `REPORT_RECIPIENTS`: comma-separated addresses; empty turns the weekly email off.
    pub recipients: Vec<String>,
    /// `DASHBOARD_URL`: linked from the email.
    pub dashboard_url: Option<String>,
}

/// Parses `REPORT_RECIPIENTS`: addresses separated by commas, each alone (no display name).
pub fn recipients(value: &str) -> Result<Vec<String>, SettingsError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| match EmailAddress::parse(a) {
            Ok(_) => Ok(a.to_string()),
            Err(_) => Err(SettingsError::BadValue {
                name: "REPORT_RECIPIENTS",
                value: shape(a),
                expected: "set the template parameter ReportRecipients to addresses alone, separated by commas, like ops@example.com,cmo@example.com (empty: no weekly email)",
            }),
        })
        .collect()
}

impl FromVars for Settings {
    fn from_vars<F: Fn(&str) -> Option<String>>(
        env: &Lookup<F>,
    ) -> Result<Settings, SettingsError> {
        Ok(Settings {
            table: env.table_name("TABLE_NAME")?,
            sender: env.sender_address("SENDER_ADDRESS")?,
            recipients: recipients(&env.optional("REPORT_RECIPIENTS").unwrap_or_default())?,
            dashboard_url: env.optional_url("DASHBOARD_URL")?,
        })
    }
}

/// Why the weekly email cannot be sent from the configured sender.
#[derive(Debug, thiserror::Error)]
#[error("SES may not send from the SenderAddress parameter's address (shape {shape}): verify it, or its domain, in SES, or empty ReportRecipients to turn the weekly email off")]
pub struct UnverifiedSender {
    pub shape: String,
}

/// Checks, when someone is to get the email, that SES may send from the sender.
pub async fn check_sender(mailer: &SesMailer, s: &Settings) -> Result<(), Error> {
    if s.recipients.is_empty() {
        return Ok(());
    }
    match mailer.may_send_from(&s.sender).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Box::new(UnverifiedSender {
            shape: shape(&s.sender),
        })),
        Err(e) => Err(Box::new(ReportError::Mail(e))),
    }
}

/// Builds what every invocation uses.
pub async fn cold_start() -> Result<Deps, Error> {
    let s = Settings::from_env().map_err(settings::refuse_at_start)?;
    let conf = settings::lambda_aws_config();
    let mailer = SesMailer::new(
        aws_sdk_sesv2::Client::new(&conf),
        settings::optional("SES_CONFIGURATION_SET"),
    );
    check_sender(&mailer, &s).await?;
    let (store, warming) = DynamoStore::warming(&conf, s.table.clone(), async {});
    let _ = warming.await;
    Ok(Deps {
        store: Arc::new(store),
        campaign: Arc::new(
            Campaign::from_env()
                .map_err(settings::refuse_at_start)?
                .config()
                .clone(),
        ),
        metrics: Arc::new(StdoutEmf),
        mailer: Arc::new(mailer),
        sender: s.sender,
        recipients: s.recipients,
        dashboard_url: s.dashboard_url,
    })
}

/// The scheduled event's `time`: the run's "now".
pub fn scheduled_time(event: &serde_json::Value) -> Result<DateTime<Utc>, ReportError> {
    let time = event
        .get("time")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| ReportError::Input("no `time` field".to_string()))?;
    DateTime::parse_from_rfc3339(time)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ReportError::Input(e.to_string()))
}

/// One invocation: the day's run at the scheduled time.
pub async fn invoke(
    deps: &Deps,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Error> {
    let now = scheduled_time(&event.payload)?;
    let outcome = run::run(deps, now).await?;
    Ok(serde_json::to_value(outcome)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_lookup(shared::settings::vars(pairs))
    }

    #[test]
    fn a_malformed_recipient_stops_the_start_naming_the_parameter_and_not_the_address() {
        let base = [
            ("TABLE_NAME", "winback-prod"),
            ("SENDER_ADDRESS", "shop@example.com"),
        ];
        let ok = settings(&[
            base[0],
            base[1],
            ("REPORT_RECIPIENTS", " ops@example.com, cmo@example.org "),
        ])
        .unwrap();
        assert_eq!(ok.recipients, ["ops@example.com", "cmo@example.org"]);
        assert!(
            settings(&base).unwrap().recipients.is_empty(),
            "empty is off"
        );
        let err = settings(&[
            base[0],
            base[1],
            ("REPORT_RECIPIENTS", "ops@example.com, jane.doe at example"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("ReportRecipients"), "{err}");
        assert!(!err.contains("jane"), "no address in the message: {err}");
    }

    #[test]
    fn the_run_s_time_is_the_scheduled_event_s() {
        let t = scheduled_time(&serde_json::json!({"time": "2026-11-23T06:00:00Z"})).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T06:00:00+00:00");
        assert!(scheduled_time(&serde_json::json!({})).is_err());
    }
}
