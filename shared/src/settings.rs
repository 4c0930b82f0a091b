//! Configuration read once at cold start: environment and secrets.

use serde::Deserialize;

/// Missing or unusable configuration. The message names what to set.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is not set: set it (see the README's configuration table)")]
    Missing(&'static str),
    #[error("no signing keys: set SECRETS_ARN to the Secrets Manager secret, or for local runs WINBACK_WEBHOOK_KEYS and WINBACK_LINK_KEY (missing: {0})")]
    MissingKeys(String),
    #[error("could not read secret {arn}: {source}")]
    Secret {
        arn: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {arn} must be JSON with string fields webhook_keys and link_key: {source}")]
    SecretShape {
        arn: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads a required variable.
pub fn required(name: &'static str) -> Result<String, SettingsError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(SettingsError::Missing(name))
}

/// Reads an optional variable (empty counts as unset).
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The signing keys: webhook keys newest first, and the link-token key.
#[derive(Clone)]
pub struct Keys {
    pub webhook: Vec<Vec<u8>>,
    pub link: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keys {{ webhook: {} key(s), link: [redacted] }}",
            self.webhook.len()
        )
    }
}

#[derive(Deserialize)]
struct SecretDoc {
    webhook_keys: String,
    link_key: String,
}

fn split_keys(list: &str) -> Vec<Vec<u8>> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| k.as_bytes().to_vec())
        .collect()
}

impl Keys {
    /// From `WINBACK_WEBHOOK_KEYS` (comma-separated, newest first) and `WINBACK_LINK_KEY`.
    pub fn from_env_vars() -> Result<Keys, SettingsError> {
        let webhook = optional("WINBACK_WEBHOOK_KEYS");
        let link = optional("WINBACK_LINK_KEY");
        match (webhook, link) {
            (Some(w), Some(l)) if !split_keys(&w).is_empty() => Ok(Keys {
                webhook: split_keys(&w),
                link: l.into_bytes(),
            }),
            (w, l) => {
                let mut missing = Vec::new();
                if w.is_none() {
                    missing.push("WINBACK_WEBHOOK_KEYS");
                }
                if l.is_none() {
                    missing.push("WINBACK_LINK_KEY");
                }
                Err(SettingsError::MissingKeys(missing.join(", ")))
            }
        }
    }

    /// From the secret named by `SECRETS_ARN` when set, else from the local variables.
    pub async fn load(conf: &aws_config::SdkConfig) -> Result<Keys, SettingsError> {
        let Some(arn) = optional("SECRETS_ARN") else {
            return Keys::from_env_vars();
        };
        let client = aws_sdk_secretsmanager::Client::new(conf);
        let out = client
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .map_err(|e| SettingsError::Secret {
                arn: arn.clone(),
                source: Box::new(e),
            })?;
        let doc: SecretDoc = serde_json::from_str(out.secret_string().unwrap_or_default())
            .map_err(|source| SettingsError::SecretShape {
                arn: arn.clone(),
                source,
            })?;
        let webhook = split_keys(&doc.webhook_keys);
        if webhook.is_empty() || doc.link_key.is_empty() {
            return Err(SettingsError::MissingKeys(format!(
                "fields of secret {arn}"
            )));
        }
        Ok(Keys {
            webhook,
            link: doc.link_key.into_bytes(),
        })
    }
}

/// Initialises JSON logs for a Lambda function (no personal data is ever logged).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// The AWS SDK configuration from the standard environment (`AWS_ENDPOINT_URL*` included).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
