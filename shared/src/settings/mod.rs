//! Configuration read once at cold start: each function's settings from its environment
//! ([`FromVars`]), its signing keys from Secrets Manager ([`secrets`]), and what stops it when
//! either is unusable ([`StartError`]).
//!
//! The AWS SDK's configuration and the warm-up live in [`crate::aws`], the logs' setup in
//! [`crate::logging`]; both are named here too, as the functions' start-up reads them.

pub mod checkout;
pub mod secrets;

pub use crate::aws::{
    aws_config, https_client, lambda_aws_config, sdk_timeouts, spawn_warm_up, warm_dynamodb,
    warm_ses, warm_up, ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, OPERATION_TIMEOUT, WARM_UP_LIMIT,
};
pub use crate::logging::init_logging;
pub use crate::signing::LinkKeys;
pub use secrets::{load_link_keys, load_link_keys_with, load_pseudonyms_with, Keys, PlatformKeys};

use crate::campaign::CampaignError;

/// Missing or unusable configuration. The message names what to set.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is not set: set it (see docs/operations.md#configuration)")]
    Missing(&'static str),
    #[error("no signing keys: set WEBHOOK_SECRET_ARN and LINK_SECRET_ARN to the Secrets Manager secrets (or SECRETS_ARN to one holding both), or for local runs WINBACK_WEBHOOK_KEYS and WINBACK_LINK_KEY (missing: {0})")]
    MissingKeys(String),
    #[error("could not read secret {arn}: {source}: check that it exists in the function's region and that the function's role may read it (secretsmanager:GetSecretValue)")]
    Secret {
        arn: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("environment variable {name} is {value:?}: {expected}")]
    BadValue {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("secret {arn} must be JSON with the string field webhook_keys (and link_key when it is SECRETS_ARN): {source}")]
    SecretShape {
        arn: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What stops a function at start, with its cause (its [`source`](std::error::Error::source)):
/// a missing or malformed setting, keys that cannot be read, or a campaign (or `CAMPAIGNS` list)
/// that does not load. Its message is the cause's, which names what to change; it is logged
/// (`refused_at_start`) and is what the process prints as it exits (`Error: <message>`, Lambda's
/// init error), rather than a debug form of the cause.
#[derive(thiserror::Error)]
pub enum StartError {
    /// A setting is missing or malformed, or the signing keys cannot be read.
    #[error("{0}")]
    Settings(#[from] SettingsError),
    /// The campaign `CAMPAIGN` names, or the flows `CAMPAIGNS` lists, do not load.
    #[error("{0}")]
    Campaign(#[from] CampaignError),
    /// The campaign's checkout platform has no usable connection (the sender).
    #[error("{0}")]
    Checkout(#[from] checkout::CheckoutSettingsError),
}

impl std::fmt::Debug for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Logs why the function cannot start and returns it as a [`StartError`] that keeps the cause.
pub fn refuse_at_start(e: impl Into<StartError>) -> StartError {
    let e = e.into();
    tracing::error!(event = "refused_at_start", error = %e);
    e
}

/// Where settings are read from: a function from a variable's name to its value, the process
/// environment ([`process_env`]) in the functions, a map in tests (no test changes the process's
/// environment). An empty value counts as unset.
pub struct Lookup<F>(pub F);

/// A function's settings, read from a [`Lookup`]: [`FromVars::from_env`] in the functions,
/// [`FromVars::from_lookup`] with [`vars`] in tests. Each function writes `from_vars` only.
pub trait FromVars: Sized {
    /// Reads every setting, failing on the first that is missing or malformed with its name.
    fn from_vars<F: Fn(&str) -> Option<String>>(env: &Lookup<F>) -> Result<Self, SettingsError>;

    /// The settings from the process environment.
    fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(&Lookup(process_env))
    }

    /// The settings from any source of variables.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        Self::from_vars(&Lookup(lookup))
    }
}

/// The process environment, for [`Lookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A fixed set of variables, for [`Lookup`] (tests, tools).
pub fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl<F: Fn(&str) -> Option<String>> Lookup<F> {
    /// An optional variable.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    /// A required variable.
    pub fn required(&self, name: &'static str) -> Result<String, SettingsError> {
        self.optional(name).ok_or(SettingsError::Missing(name))
    }

    /// An optional number of at least `min`: unset is `None`; a value that is not such a number
    /// stops the function at start with a message naming the variable (never silently ignored).
    pub fn optional_number(
        &self,
        name: &'static str,
        min: f64,
    ) -> Result<Option<f64>, SettingsError> {
        parse_number(name, self.optional(name), min)
    }

    /// An optional `http(s)` URL (`PUBLIC_BASE_URL`), refused by name when it is not one.
    pub fn optional_url(&self, name: &'static str) -> Result<Option<String>, SettingsError> {
        self.optional(name)
            .map(|v| {
                let ok = url::Url::parse(v.trim())
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                checked(
                    name,
                    v,
                    ok,
                    "write an http(s) URL like https://abc.lambda-url.eu-west-1.on.aws/",
                )
            })
            .transpose()
    }

    /// `TABLE_NAME`: a DynamoDB table name.
    pub fn table_name(&self, name: &'static str) -> Result<String, SettingsError> {
        let v = self.required(name)?;
        let ok = (3..=255).contains(&v.len())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        checked(
            name,
            v,
            ok,
            "write a DynamoDB table name: 3 to 255 letters, digits, _, - or .",
        )
    }

    /// `EVENT_BUS_NAME`: an EventBridge bus's name or ARN.
    pub fn event_bus(&self, name: &'static str) -> Result<String, SettingsError> {
        let v = self.required(name)?;
        let ok = v.len() <= 1600
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':'));
        checked(name, v, ok, "write the event bus's name or ARN")
    }

    /// `SENDER_ADDRESS`: the From address, bare (`shop@example.com`), as the template's
    /// `SenderAddress` and its SES permission take it. A malformed one is refused by name; the
    /// message shows its shape (letters and digits as `a`), not the address.
    pub fn sender_address(&self, name: &'static str) -> Result<String, SettingsError> {
        let v = self.required(name)?;
        match crate::domain::hygiene::EmailAddress::parse(&v) {
            Ok(_) => Ok(v.trim().to_string()),
            Err(_) => Err(SettingsError::BadValue {
                name,
                value: crate::domain::hygiene::shape(&v),
                expected: "write the verified From address alone, like shop@example.com",
            }),
        }
    }

    /// An optional ARN (`FOLLOW_UP_TOPIC_ARN`).
    pub fn optional_arn(&self, name: &'static str) -> Result<Option<String>, SettingsError> {
        self.optional(name)
            .map(|v| {
                let ok = v.starts_with("arn:") && !v.chars().any(char::is_whitespace);
                checked(
                    name,
                    v,
                    ok,
                    "write an ARN like arn:aws:sns:eu-west-1:123456789012:name, or leave it unset",
                )
            })
            .transpose()
    }
}

fn checked(
    name: &'static str,
    value: String,
    ok: bool,
    expected: &'static str,
) -> Result<String, SettingsError> {
    if ok {
        Ok(value)
    } else {
        Err(SettingsError::BadValue {
            name,
            value,
            expected,
        })
    }
}

/// Reads an optional variable from the process environment (empty counts as unset).
pub fn optional(name: &str) -> Option<String> {
    Lookup(process_env).optional(name)
}

fn parse_number(
    name: &'static str,
    value: Option<String>,
    min: f64,
) -> Result<Option<f64>, SettingsError> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= min => Ok(Some(n)),
        _ => Err(SettingsError::BadValue {
            name,
            value,
            expected: if min > 0.0 {
                "write a positive number, e.g. 14, or leave it unset"
            } else {
                "write a number, or leave it unset"
            },
        }),
    }
}
#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_start_error_keeps_its_cause_and_says_what_to_change() {
        let missing = refuse_at_start(SettingsError::Missing("TABLE_NAME"));
        let cause = missing.source().expect("the setting's error");
        assert!(
            matches!(
                cause.downcast_ref::<SettingsError>(),
                Some(SettingsError::Missing("TABLE_NAME"))
            ),
            "{cause:?}"
        );
        // The message is the cause's, which names what to change; so is what the process prints.
        assert_eq!(missing.to_string(), cause.to_string());
        assert!(
            format!("{missing:?}")
                .starts_with("environment variable TABLE_NAME is not set: set it"),
            "{missing:?}"
        );

        // A secret that cannot be read: its cause's own cause is kept too.
        let unreadable = refuse_at_start(SettingsError::Secret {
            arn: "arn:aws:secretsmanager:eu-west-1:1:secret:hook".into(),
            source: Box::new(std::io::Error::other("connection refused")),
        });
        let read = unreadable.source().and_then(|e| e.source());
        assert_eq!(
            read.map(ToString::to_string).as_deref(),
            Some("connection refused")
        );
        assert!(
            unreadable.to_string().contains("role may read it"),
            "{unreadable}"
        );

        let Err(campaign) =
            crate::campaign::Campaign::open("no-such-campaign").map_err(refuse_at_start)
        else {
            panic!("there is no such campaign");
        };
        assert!(matches!(campaign, StartError::Campaign(_)));
        let cause = campaign.source().expect("the campaign's error");
        assert!(
            matches!(
                cause.downcast_ref::<CampaignError>(),
                Some(CampaignError::UnknownCampaign { .. })
            ),
            "{cause:?}"
        );
        assert!(campaign.to_string().contains("use one of"), "{campaign}");
    }

    #[test]
    fn a_number_setting_that_is_not_one_is_refused_with_its_name() {
        assert_eq!(parse_number("X", None, 1.0).unwrap(), None);
        assert_eq!(
            parse_number("X", Some("14".into()), 1.0).unwrap(),
            Some(14.0)
        );
        assert_eq!(
            parse_number("X", Some(" 2.5 ".into()), 1.0).unwrap(),
            Some(2.5)
        );
        for bad in ["abc", "0", "-3", "NaN", "inf", "14/s"] {
            let e = parse_number("SES_MAX_SEND_RATE", Some(bad.into()), 0.001).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("SES_MAX_SEND_RATE") && text.contains(bad),
                "{text}"
            );
        }
    }
}
