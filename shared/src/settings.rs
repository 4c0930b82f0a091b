//! Configuration read once at cold start: environment and secrets.

use std::future::Future;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::os_shim_internal::Env;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use serde::Deserialize;

pub use crate::signing::LinkKeys;

/// Missing or unusable configuration. The message names what to set.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is not set: set it (see the README's configuration table)")]
    Missing(&'static str),
    #[error("no signing keys: set WEBHOOK_SECRET_ARN and LINK_SECRET_ARN to the Secrets Manager secrets (or SECRETS_ARN to one holding both), or for local runs WINBACK_WEBHOOK_KEYS and WINBACK_LINK_KEY (missing: {0})")]
    MissingKeys(String),
    #[error("could not read secret {arn}: {source}")]
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

/// What stops a function at start: a missing or bad setting, a campaign (or `CAMPAIGNS` list)
/// that does not load, keys that cannot be read. Its message is logged (`refused_at_start`) and is
/// what the process prints as it exits (`Error: <message>`, Lambda's init error), rather than the
/// underlying error's debug form.
pub struct StartError(String);

impl std::fmt::Debug for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Logs why the function cannot start and returns it as a [`StartError`].
pub fn refuse_at_start(e: impl std::fmt::Display) -> StartError {
    tracing::error!(event = "refused_at_start", error = %e);
    StartError(e.to_string())
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

/// The webhook's signing keys: webhook keys newest first, and the link-token keys.
#[derive(Clone)]
pub struct Keys {
    pub webhook: Vec<Vec<u8>>,
    pub link: LinkKeys,
    /// The shop platforms' webhook secrets; a platform without one is not connected.
    pub platforms: PlatformKeys,
}

/// Webhook secrets of the shop platforms, each a list (newest first) so one can be rotated:
/// Shopify's app client secret, WooCommerce's webhook secret, Stripe's endpoint secret (`whsec_…`).
#[derive(Clone, Default)]
pub struct PlatformKeys {
    pub shopify: Vec<Vec<u8>>,
    pub woocommerce: Vec<Vec<u8>>,
    pub stripe: Vec<Vec<u8>>,
}

impl PlatformKeys {
    /// From `WINBACK_SHOPIFY_SECRET`, `WINBACK_WOOCOMMERCE_SECRET` and `WINBACK_STRIPE_SECRET`
    /// (each comma-separated, newest first; unset leaves the platform unconnected).
    pub fn from_env_vars() -> PlatformKeys {
        let read = |name: &str| optional(name).map(|v| split_keys(&v)).unwrap_or_default();
        PlatformKeys {
            shopify: read("WINBACK_SHOPIFY_SECRET"),
            woocommerce: read("WINBACK_WOOCOMMERCE_SECRET"),
            stripe: read("WINBACK_STRIPE_SECRET"),
        }
    }
}

impl std::fmt::Debug for PlatformKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PlatformKeys {{ shopify: {}, woocommerce: {}, stripe: {} key(s) }}",
            self.shopify.len(),
            self.woocommerce.len(),
            self.stripe.len()
        )
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keys {{ webhook: {} key(s), link: {:?} }}",
            self.webhook.len(),
            self.link
        )
    }
}

/// The webhook's secret (`WEBHOOK_SECRET_ARN`), or the combined one of older stacks
/// (`SECRETS_ARN`, which also holds `link_key`).
#[derive(Deserialize)]
struct SecretDoc {
    webhook_keys: String,
    #[serde(default)]
    link_key: String,
    #[serde(default)]
    shopify_secret: String,
    #[serde(default)]
    woocommerce_secret: String,
    #[serde(default)]
    stripe_secret: String,
}

fn split_keys(list: &str) -> Vec<Vec<u8>> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| k.as_bytes().to_vec())
        .collect()
}

async fn read_secret(conf: &aws_config::SdkConfig, arn: &str) -> Result<String, SettingsError> {
    let out = aws_sdk_secretsmanager::Client::new(conf)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SettingsError::Secret {
            arn: arn.to_string(),
            source: Box::new(e),
        })?;
    Ok(out.secret_string().unwrap_or_default().to_string())
}

async fn read_doc(conf: &aws_config::SdkConfig, arn: &str) -> Result<SecretDoc, SettingsError> {
    serde_json::from_str(&read_secret(conf, arn).await?).map_err(|source| {
        SettingsError::SecretShape {
            arn: arn.to_string(),
            source,
        }
    })
}

/// The link-token keys (newest first), for the sender and the webhook: the plain-text secret
/// named by `LINK_SECRET_ARN` (comma-separated keys), else `link_key` of the secret named by
/// `SECRETS_ARN`, else `WINBACK_LINK_KEY` (comma-separated, for local runs).
pub async fn load_link_keys(conf: &aws_config::SdkConfig) -> Result<LinkKeys, SettingsError> {
    load_link_keys_with(conf, &optional).await
}

/// [`load_link_keys`] with the variables looked up by `var` (a test's own set).
pub async fn load_link_keys_with(
    conf: &aws_config::SdkConfig,
    var: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<LinkKeys, SettingsError> {
    let (list, source) = if let Some(arn) = var("LINK_SECRET_ARN") {
        (read_secret(conf, &arn).await?, format!("secret {arn}"))
    } else if let Some(arn) = var("SECRETS_ARN") {
        (
            read_doc(conf, &arn).await?.link_key,
            format!("link_key of secret {arn}"),
        )
    } else {
        (
            var("WINBACK_LINK_KEY").unwrap_or_default(),
            "WINBACK_LINK_KEY".to_string(),
        )
    };
    let keys = LinkKeys::new(split_keys(&list));
    if keys.is_empty() {
        return Err(SettingsError::MissingKeys(source));
    }
    Ok(keys)
}

impl Keys {
    /// From `WINBACK_WEBHOOK_KEYS` (comma-separated, newest first) and `WINBACK_LINK_KEY`
    /// (comma-separated, newest first).
    pub fn from_env_vars() -> Result<Keys, SettingsError> {
        let webhook = optional("WINBACK_WEBHOOK_KEYS").map(|w| split_keys(&w));
        let link = optional("WINBACK_LINK_KEY").map(|l| LinkKeys::new(split_keys(&l)));
        match (webhook, link) {
            (Some(w), Some(l)) if !w.is_empty() && !l.is_empty() => Ok(Keys {
                webhook: w,
                link: l,
                platforms: PlatformKeys::from_env_vars(),
            }),
            (w, l) => {
                let mut missing = Vec::new();
                if w.is_none_or(|w| w.is_empty()) {
                    missing.push("WINBACK_WEBHOOK_KEYS");
                }
                if l.is_none_or(|l| l.is_empty()) {
                    missing.push("WINBACK_LINK_KEY");
                }
                Err(SettingsError::MissingKeys(missing.join(", ")))
            }
        }
    }

    /// The webhook's keys: webhook and platform keys from the secret named by
    /// `WEBHOOK_SECRET_ARN` (else `SECRETS_ARN`), link keys by [`load_link_keys`]; with neither
    /// variable set, from the local variables.
    pub async fn load(conf: &aws_config::SdkConfig) -> Result<Keys, SettingsError> {
        Keys::load_with(conf, &optional).await
    }

    /// [`Keys::load`] with the secrets' variables looked up by `var` (a test's own set).
    pub async fn load_with(
        conf: &aws_config::SdkConfig,
        var: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Keys, SettingsError> {
        let Some(arn) = var("WEBHOOK_SECRET_ARN").or_else(|| var("SECRETS_ARN")) else {
            return Keys::from_env_vars();
        };
        let doc = read_doc(conf, &arn).await?;
        let webhook = split_keys(&doc.webhook_keys);
        if webhook.is_empty() {
            return Err(SettingsError::MissingKeys(format!(
                "webhook_keys of secret {arn}"
            )));
        }
        // A platform secret missing from the document may still come from the environment.
        let env = PlatformKeys::from_env_vars();
        let pick = |doc: &str, env: Vec<Vec<u8>>| {
            let from_doc = split_keys(doc);
            if from_doc.is_empty() {
                env
            } else {
                from_doc
            }
        };
        Ok(Keys {
            webhook,
            link: load_link_keys_with(conf, var).await?,
            platforms: PlatformKeys {
                shopify: pick(&doc.shopify_secret, env.shopify),
                woocommerce: pick(&doc.woocommerce_secret, env.woocommerce),
                stripe: pick(&doc.stripe_secret, env.stripe),
            },
        })
    }
}

/// Initialises JSON logs for a Lambda function (no personal data is ever logged).
///
/// `RUST_LOG` sets the level: one level (`debug`), or a default and levels per target
/// (`info,aws_smithy_runtime=debug`). Span and field filters are not supported; without a
/// default level (unset, `aws_smithy_runtime=debug`, or a value that does not parse), it is `info`.
pub fn init_logging() {
    use tracing_subscriber::prelude::*;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .without_time()
                .with_target(false)
                .with_filter(log_filter(optional("RUST_LOG").as_deref())),
        )
        .try_init();
}

/// The log filter for a `RUST_LOG` value; `info` for whatever it leaves unset (all of it when
/// the variable is unset or does not parse).
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    // Empty directives dropped: an empty target would match every target, at `trace`.
    let directives: Vec<&str> = rust_log
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let targets = if directives.is_empty() {
        Targets::new()
    } else {
        directives.join(",").parse().unwrap_or_default()
    };
    match targets.default_level() {
        Some(_) => targets,
        None => targets.with_default(LevelFilter::INFO),
    }
}

/// The HTTPS client of every AWS SDK client: rustls with the `ring` crypto provider and the
/// system's root certificates. Built here rather than by the SDK so that the much larger aws-lc
/// library is not linked into the functions.
pub fn https_client() -> aws_types::sdk_config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The AWS SDK configuration from the standard environment (`AWS_ENDPOINT_URL*` included), with
/// the whole default credential chain (profiles, SSO, IMDS, …): for the CLI, tests and benches.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// The AWS SDK configuration of a Lambda function, from its environment only: region from
/// `AWS_REGION` (else `AWS_DEFAULT_REGION`), credentials from `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, endpoints from `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>` (unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), as
/// [`aws_config()`] reads them. No profile files and no other credential sources, so none of
/// their code is linked into the functions.
///
/// Every call is bounded by [`sdk_timeouts`], so a stalled connection fails the call (a
/// transient error the caller retries or hands back) well inside the function's own timeout.
pub fn lambda_aws_config() -> aws_config::SdkConfig {
    lambda_aws_config_with(
        Env::real(),
        SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ),
        sdk_timeouts(),
    )
}

/// A connection must open within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One attempt of a call must be answered within this.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// A call, its retries included, must end within this (the webhook's Lambda timeout is 15 s).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The functions' time limits on AWS calls: [`CONNECT_TIMEOUT`], [`ATTEMPT_TIMEOUT`],
/// [`OPERATION_TIMEOUT`].
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

fn lambda_aws_config_with(
    env: Env,
    credentials: SharedCredentialsProvider,
    timeouts: aws_config::timeout::TimeoutConfig,
) -> aws_config::SdkConfig {
    let endpoints = EnvEndpoints {
        ignore: env
            .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")),
        env,
    };
    let region = endpoints
        .env
        .get("AWS_REGION")
        .or_else(|_| endpoints.env.get("AWS_DEFAULT_REGION"))
        .ok()
        .map(aws_config::Region::new);
    let endpoint_url = endpoints.global(ENDPOINT_URL);
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .timeout_config(timeouts)
        .http_client(https_client());
    builder.set_endpoint_url(endpoint_url);
    builder.service_config(endpoints).build()
}

/// Service-specific settings from the environment, as the SDK clients ask for them when built:
/// `AWS_ENDPOINT_URL_DYNAMODB` before `AWS_ENDPOINT_URL`, and so on.
#[derive(Debug)]
struct EnvEndpoints {
    env: Env,
    ignore: bool,
}

impl EnvEndpoints {
    fn global(&self, key: &str) -> Option<String> {
        if self.ignore && key == ENDPOINT_URL {
            return None;
        }
        self.env.get(key).ok()
    }
}

impl LoadServiceConfig for EnvEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if self.ignore && key.env() == ENDPOINT_URL {
            return None;
        }
        let service = key.service_id().to_uppercase().replace(' ', "_");
        self.env
            .get(&format!("{}_{service}", key.env()))
            .ok()
            .or_else(|| self.global(key.env()))
    }
}

/// How long the warm-up requests at init may take together, at most.
pub const WARM_UP_LIMIT: Duration = Duration::from_secs(2);

/// Waits for one warm-up request (made to open the connection before the first event), within
/// [`WARM_UP_LIMIT`]. A failure or a timeout is logged as a warning and otherwise ignored.
pub async fn warm_up<T, E>(what: &'static str, request: impl Future<Output = Result<T, E>>)
where
    E: std::error::Error + 'static,
{
    match tokio::time::timeout(WARM_UP_LIMIT, request).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(
            request = what,
            error = %error_chain(&e),
            "warm-up request failed; the first event opens the connection"
        ),
        Err(_) => tracing::warn!(
            request = what,
            "warm-up request timed out; the first event opens the connection"
        ),
    }
}

/// An error and its sources, by their `Display` only (never the raw response).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Opens the DynamoDB connection, and runs `also` (another warm-up) beside it, in the background
/// so that init goes on meanwhile: await the handle before the first event.
pub fn spawn_warm_up(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    also: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let (dynamodb, table) = (dynamodb.clone(), table.to_string());
    tokio::spawn(async move {
        tokio::join!(warm_dynamodb(&dynamodb, &table), also);
    })
}

/// Opens the DynamoDB connection: one `GetItem` of a key that never exists, without retries.
pub async fn warm_dynamodb(client: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let request = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("WARM".into()))
        .key("sk", AttributeValue::S("WARM".into()))
        .customize()
        .config_override(
            aws_sdk_dynamodb::Config::builder()
                .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()),
        )
        .send();
    warm_up("DynamoDB GetItem", request).await;
}

/// Opens the SES connection: one `GetAccount`, without retries.
pub async fn warm_ses(client: aws_sdk_sesv2::Client) {
    let request = client
        .get_account()
        .customize()
        .config_override(
            aws_sdk_sesv2::Config::builder()
                .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled()),
        )
        .send();
    warm_up("SES GetAccount", request).await;
}

#[cfg(test)]
mod tests {

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use aws_credential_types::Credentials;

    use super::*;

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

    #[test]
    fn rust_log_sets_the_level_overall_or_per_target_and_falls_back_to_info() {
        use tracing::Level;
        let debug = log_filter(Some("debug"));
        assert!(debug.would_enable("sender", &Level::DEBUG));
        let mixed = log_filter(Some("warn,aws_smithy_runtime=debug"));
        assert!(mixed.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!mixed.would_enable("sender", &Level::INFO));
        assert!(mixed.would_enable("sender", &Level::WARN));
        let only = log_filter(Some("aws_smithy_runtime=debug"));
        assert!(only.would_enable("aws_smithy_runtime", &Level::DEBUG));
        assert!(only.would_enable("sender", &Level::INFO));
        for fallback in [
            None,
            Some("no such level"),
            Some(""),
            Some(" , "),
            Some("sender=loud"),
        ] {
            let f = log_filter(fallback);
            assert!(f.would_enable("sender", &Level::INFO), "{fallback:?}");
            assert!(!f.would_enable("sender", &Level::DEBUG), "{fallback:?}");
        }
    }

    fn config(vars: &[(&str, &str)]) -> aws_config::SdkConfig {
        config_with(vars, sdk_timeouts())
    }

    fn config_with(
        vars: &[(&str, &str)],
        timeouts: aws_config::timeout::TimeoutConfig,
    ) -> aws_config::SdkConfig {
        lambda_aws_config_with(
            Env::from_slice(vars),
            SharedCredentialsProvider::new(Credentials::new("AKID", "SECRET", None, None, "test")),
            timeouts,
        )
    }

    #[tokio::test]
    async fn a_call_to_an_endpoint_that_never_answers_fails_with_a_timeout() {
        // Accepts connections and reads, never answers.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        let short = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(200))
            .operation_attempt_timeout(Duration::from_millis(200))
            .operation_timeout(Duration::from_millis(700))
            .build();
        let conf = config_with(
            &[("AWS_REGION", "eu-west-1"), ("AWS_ENDPOINT_URL", &url)],
            short,
        );
        let err = aws_sdk_dynamodb::Client::new(&conf)
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("k".into()))
            .send()
            .await
            .expect_err("nobody answers");
        assert!(
            matches!(
                err,
                aws_sdk_dynamodb::error::SdkError::TimeoutError(_)
                    | aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)
            ),
            "{err:?}"
        );
        assert!(
            format!("{err:?}").to_lowercase().contains("timeout"),
            "{err:?}"
        );
        let limits = lambda_aws_config().timeout_config().cloned().expect("set");
        assert_eq!(limits.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(limits.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(limits.connect_timeout(), Some(CONNECT_TIMEOUT));
    }

    /// A one-request HTTP server answering `{}`; sends the request line and headers it got.
    fn endpoint() -> (String, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let (mut head, mut length) = (String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = (&stream).write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}",
                );
                let _ = tx.send(head);
            }
        });
        (url, rx)
    }

    #[test]
    fn region_from_aws_region_then_aws_default_region() {
        let both = config(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ]);
        assert_eq!(both.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let fallback = config(&[("AWS_DEFAULT_REGION", "us-east-1")]);
        assert_eq!(fallback.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert!(config(&[]).region().is_none());
        assert!(lambda_aws_config().credentials_provider().is_some());
    }

    #[test]
    fn service_endpoint_before_the_global_one_unless_ignored() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://global:1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://ddb:2"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://sm:3"),
        ];
        let key = |service| {
            ServiceConfigKey::builder()
                .service_id(service)
                .env(ENDPOINT_URL)
                .profile("endpoint_url")
                .build()
                .expect("key")
        };
        let conf = config(&vars);
        let services = conf.service_config().expect("service config");
        assert_eq!(conf.endpoint_url(), Some("http://global:1"));
        assert_eq!(
            services.load_config(key("DynamoDB")).as_deref(),
            Some("http://ddb:2")
        );
        assert_eq!(
            services.load_config(key("Secrets Manager")).as_deref(),
            Some("http://sm:3")
        );
        assert_eq!(
            services.load_config(key("SESv2")).as_deref(),
            Some("http://global:1")
        );

        let mut ignored = vars.to_vec();
        ignored.push(("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"));
        let conf = config(&ignored);
        assert_eq!(conf.endpoint_url(), None);
        assert_eq!(
            conf.service_config()
                .expect("service config")
                .load_config(key("DynamoDB")),
            None
        );
    }

    #[tokio::test]
    async fn clients_send_to_their_service_endpoint_in_the_region() {
        let (dynamodb, dynamodb_seen) = endpoint();
        let (global, global_seen) = endpoint();
        let conf = config(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", &global),
            ("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb),
        ]);
        let ddb = aws_sdk_dynamodb::Client::new(&conf);
        assert_eq!(ddb.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
        ddb.get_item()
            .table_name("t")
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("WARM".into()),
            )
            .send()
            .await
            .expect("DynamoDB answered");
        let head = dynamodb_seen.recv().expect("request");
        assert!(head.contains("DynamoDB_20120810.GetItem"), "{head}");
        assert!(head.contains("/eu-west-1/dynamodb/aws4_request"), "{head}");
        assert!(global_seen.try_recv().is_err());

        // SES v2 has no variable of its own here: the global endpoint.
        let ses = aws_sdk_sesv2::Client::new(&conf);
        let _ = ses.get_account().send().await;
        let head = global_seen.recv().expect("request");
        assert!(head.starts_with("GET /v2/email/account"), "{head}");
    }

    #[tokio::test]
    async fn warm_up_failures_do_not_stop_start_up() {
        // Nothing listens on port 9 of loopback: the request fails, and only a warning is logged.
        let conf = config(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ]);
        let ses = warm_ses(aws_sdk_sesv2::Client::new(&conf));
        spawn_warm_up(&aws_sdk_dynamodb::Client::new(&conf), "t", ses)
            .await
            .expect("the warm-up does not panic");
    }
}
