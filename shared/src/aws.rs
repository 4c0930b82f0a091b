//! The AWS SDK's configuration: the HTTPS client every SDK client uses, a Lambda function's
//! configuration (from its environment only, every call time-limited) and the CLI's and tests'
//! (the whole default chain), and the warm-up requests that open the connections at init.

use std::future::Future;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::os_shim_internal::Env;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

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
