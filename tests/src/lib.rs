//! Support for the end-to-end tests that run the three functions against the local stack:
//! DynamoDB Local for the table, moto's server for EventBridge, SQS and SES v2.
//!
//! The stack's environment comes from `infra/local/stack.sh` (`infra/test` starts the stack and
//! runs the tests with it). Every test gets its own table, bus, queue and sender domain, so tests
//! run in parallel on one stack and never reset it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sesv2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sesv2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sesv2::error::BoxError;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;
use shared::adapters::eventbridge::EventBridgeBus;
use shared::adapters::ses::SesMailer;
use shared::adapters::sns::SnsNotifier;
use shared::campaign::testing::example;
use shared::domain::customer::{OrderRecord, Profile};
use shared::domain::experiment::{self, Group};
use shared::domain::money::Money;
use shared::emf::MemoryMetrics;
use shared::ports::ProfileStore;
use shared::retry::RetryPolicy;
pub use test_support::requests::{self, signed_activity};
pub use test_support::table::LocalTable;

/// The key the sender signs links with and the webhook verifies them with.
pub const LINK_KEY: &[u8] = b"local-stack-link-key";
/// The shop's webhook signing key.
pub const WEBHOOK_KEY: &[u8] = b"local-stack-webhook-key";
/// The shop platforms' webhook secrets (Shopify, WooCommerce, Stripe).
pub const SHOPIFY_SECRET: &[u8] = b"local-stack-shopify-secret";
pub const WOOCOMMERCE_SECRET: &[u8] = b"local-stack-woocommerce-secret";
pub const STRIPE_SECRET: &[u8] = b"whsec_local_stack_stripe_secret";
/// The webhook's public URL as the emails carry it.
pub const PUBLIC_BASE_URL: &str = "https://hooks.winback.test";
/// The campaign every test runs: the shipped example.
pub const CAMPAIGN: &str = "example";

/// The business "now" of the tests: 10:00 UTC is 11:00 in Stockholm, outside quiet hours.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

/// A name no other test (or earlier run on the same stack) uses: `label` plus a process-unique
/// suffix.
pub fn unique(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{label}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests run against the local stack (DynamoDB Local and moto). \
             Run them through `infra/test`, or start the stack with `infra/local/stack.sh start`, \
             source its env file (`. $(infra/local/stack.sh env)`) and run `cargo test -p winback-tests`."
        ),
    }
}

/// The local stack as the environment describes it.
#[derive(Clone)]
pub struct LocalStack {
    /// The SDK configuration every client is built from (endpoints, fake credentials, region).
    pub conf: aws_config::SdkConfig,
    /// moto's base URL (`WINBACK_MOTO_URL`), without a trailing slash.
    pub moto_url: String,
    /// The CreateTable JSON written from `template.yaml` (`WINBACK_TABLE_SPEC`).
    pub table_spec: PathBuf,
}

impl LocalStack {
    /// Reads the stack's environment; fails (never skips) with a message naming what is missing.
    pub async fn from_env() -> LocalStack {
        for name in [
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
        ] {
            required_env(name);
        }
        let moto_url = required_env("WINBACK_MOTO_URL")
            .trim_end_matches('/')
            .to_string();
        let table_spec = PathBuf::from(required_env("WINBACK_TABLE_SPEC"));
        let conf = shared::settings::aws_config().await;
        LocalStack {
            conf,
            moto_url,
            table_spec,
        }
    }

    /// A new, uniquely named table on DynamoDB Local, made from the template's table spec.
    pub async fn fresh_table(&self, label: &str) -> LocalTable {
        let client = aws_sdk_dynamodb::Client::new(&self.conf);
        LocalTable::create_with(client, &format!("winback-{label}"), &self.table_spec)
            .await
            .unwrap_or_else(|e| panic!("creating a {label} table on DynamoDB Local: {e}"))
    }

    /// A fresh table and a bus whose steps due go to a new queue, both named for `label`.
    pub async fn steps_table(&self, label: &str) -> (LocalTable, BusQueue) {
        let table = self.fresh_table(label).await;
        let queue = self.bus_to_queue(label, &["WinbackStepDue"]).await;
        (table, queue)
    }

    /// A new bus on moto whose rule sends the events of `detail_types` (source `winback`) to a
    /// new SQS queue, as the template wires the step queue on AWS.
    pub async fn bus_to_queue(&self, label: &str, detail_types: &[&str]) -> BusQueue {
        let events = aws_sdk_eventbridge::Client::new(&self.conf);
        let sqs = aws_sdk_sqs::Client::new(&self.conf);
        let bus_name = unique(&format!("bus-{label}"));
        let queue_name = unique(&format!("q-{label}"));
        let rule_name = unique(&format!("rule-{label}"));
        events
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateEventBus {bus_name} on moto: {e:?}"));
        let (queue_url, queue_arn) = new_queue(&sqs, &queue_name).await;
        let pattern = serde_json::json!({
            "source": [shared::events::SOURCE],
            "detail-type": detail_types,
        });
        events
            .put_rule()
            .name(&rule_name)
            .event_bus_name(&bus_name)
            .event_pattern(pattern.to_string())
            .state(aws_sdk_eventbridge::types::RuleState::Enabled)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRule {rule_name}: {e:?}"));
        events
            .put_targets()
            .rule(&rule_name)
            .event_bus_name(&bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(&queue_arn)
                    .build()
                    .expect("a target with id and arn"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutTargets {rule_name} -> {queue_name}: {e:?}"));
        BusQueue {
            bus: Arc::new(EventBridgeBus::new(events, bus_name.clone())),
            sqs,
            bus_name,
            queue_url,
        }
    }

    /// A new SNS topic on moto with a new SQS queue subscribed to it.
    pub async fn topic_to_queue(&self, label: &str) -> TopicQueue {
        let sns = aws_sdk_sns::Client::new(&self.conf);
        let sqs = aws_sdk_sqs::Client::new(&self.conf);
        let topic_name = unique(&format!("topic-{label}"));
        let queue_name = unique(&format!("tq-{label}"));
        let topic_arn = sns
            .create_topic()
            .name(&topic_name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateTopic {topic_name} on moto: {e:?}"))
            .topic_arn
            .expect("CreateTopic answers with the topic ARN");
        let (queue_url, queue_arn) = new_queue(&sqs, &queue_name).await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Subscribe {queue_name} to {topic_name}: {e:?}"));
        TopicQueue {
            notifier: Arc::new(SnsNotifier::new(sns, topic_arn.clone())),
            topic_arn,
            sqs,
            queue_url,
        }
    }

    /// Verifies `identity` (an address or a domain) in moto's SES: moto refuses unverified senders.
    pub async fn verify_sender(&self, identity: &str) {
        aws_sdk_sesv2::Client::new(&self.conf)
            .create_email_identity()
            .email_identity(identity)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateEmailIdentity {identity} on moto: {e:?}"));
    }

    /// The SES adapter on moto, with a log of the SendEmail requests as they went on the wire.
    pub fn mailer(&self) -> (Arc<SesMailer>, WireLog) {
        let log = WireLog::default();
        let config = aws_sdk_sesv2::config::Builder::from(&self.conf)
            .interceptor(log.clone())
            .build();
        (
            Arc::new(SesMailer::new(
                aws_sdk_sesv2::Client::from_conf(config),
                None,
            )),
            log,
        )
    }

    /// Everything moto says SES sent (all tests' emails: filter by recipient).
    pub fn sent_emails(&self) -> Vec<SentEmail> {
        let data = self.moto_data();
        let messages = data
            .pointer("/ses/Message")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "moto's data.json has no ses.Message list; its ses section holds: {:?}",
                    data.get("ses")
                        .and_then(Value::as_object)
                        .map(|o| o.keys().cloned().collect::<Vec<_>>())
                )
            });
        messages
            .into_iter()
            .map(|m| serde_json::from_value(m.clone()).unwrap_or_else(|e| panic!("{e}: {m}")))
            .collect()
    }

    /// The emails moto recorded for `recipient`, oldest first.
    pub fn emails_to(&self, recipient: &str) -> Vec<SentEmail> {
        self.sent_emails()
            .into_iter()
            .filter(|m| m.destinations.to_addresses.iter().any(|a| a == recipient))
            .collect()
    }

    /// moto's `GET /moto-api/data.json`: the state of every backend. moto cannot write an
    /// EventBridge rule into it (500, "Object of type Rule is not JSON serializable") while a
    /// test that runs at the same time holds one, so a 500 is asked again for up to 15 s.
    pub fn moto_data(&self) -> Value {
        let mut attempt = 0;
        let body = loop {
            attempt += 1;
            match http_get(&self.moto_url, "/moto-api/data.json") {
                Ok(body) => break body,
                Err(status) if attempt < 60 && status.contains(" 500 ") => {
                    std::thread::sleep(StdDuration::from_millis(250))
                }
                Err(status) => panic!("moto answered GET /moto-api/data.json with {status}"),
            }
        };
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("moto's data.json is not JSON ({e}): {body:.200}"))
    }
}

/// A plain HTTP/1.0 GET on a loopback `http://` base URL (moto's own API needs no client); the
/// status line of an answer other than 200 is the error.
/// A new SQS queue `name` on moto: its URL and ARN.
async fn new_queue(sqs: &aws_sdk_sqs::Client, queue_name: &str) -> (String, String) {
    let queue_url = sqs
        .create_queue()
        .queue_name(queue_name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {queue_name} on moto: {e:?}"))
        .queue_url
        .expect("CreateQueue answers with the queue URL");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetQueueAttributes {queue_name}: {e:?}"))
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("the queue has an ARN");
    (queue_url, queue_arn)
}

fn http_get(base: &str, path: &str) -> Result<String, String> {
    let host = base
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("WINBACK_MOTO_URL {base} is not an http:// URL"));
    let mut stream =
        TcpStream::connect(host).unwrap_or_else(|e| panic!("connecting to moto at {base}: {e}"));
    stream
        .set_read_timeout(Some(StdDuration::from_secs(30)))
        .expect("a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("writing to moto");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reading from moto");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("moto's answer to GET {path} has no header end: {text:.200}"));
    if !(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200")) {
        return Err(head.lines().next().unwrap_or_default().to_string());
    }
    Ok(body.to_string())
}

/// One email as moto's SES records it. moto keeps only these fields of a Simple-content
/// SendEmail: the HTML part (the text part only when there is no HTML), subject, sender and
/// destinations. It drops custom headers, the text part, message tags and the configuration set.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SentEmail {
    pub id: String,
    pub source: String,
    pub subject: String,
    pub body: String,
    pub destinations: Destinations,
}

/// The destinations of a recorded email.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Destinations {
    #[serde(rename = "ToAddresses", default)]
    pub to_addresses: Vec<String>,
}

/// The SendEmail request bodies (JSON) the SES client put on the wire, in order: what moto does
/// not record (headers, message tags) is checked here.
#[derive(Debug, Clone, Default)]
pub struct WireLog(Arc<Mutex<Vec<Value>>>);

impl WireLog {
    /// The SendEmail requests sent so far.
    pub fn send_requests(&self) -> Vec<Value> {
        self.0.lock().expect("wire log lock").clone()
    }
}

impl Intercept for WireLog {
    fn name(&self) -> &'static str {
        "WireLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        if request.uri().contains("/v2/email/outbound-emails") {
            if let Some(bytes) = request.body().bytes() {
                let json: Value = serde_json::from_slice(bytes)?;
                self.0.lock().expect("wire log lock").push(json);
            }
        }
        Ok(())
    }
}

/// A bus of its own on moto with a rule to a queue of its own.
pub struct BusQueue {
    /// The EventBridge adapter publishing to the bus.
    pub bus: Arc<EventBridgeBus>,
    pub sqs: aws_sdk_sqs::Client,
    pub bus_name: String,
    pub queue_url: String,
}

/// A message read from the queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub message_id: String,
    pub body: String,
}

impl QueuedMessage {
    /// The body as JSON (an EventBridge envelope).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("queue message is not JSON ({e}): {}", self.body))
    }
}

impl BusQueue {
    /// Receives (and deletes) every message now in the queue.
    pub async fn drain(&self) -> Vec<QueuedMessage> {
        drain_queue(&self.sqs, &self.queue_url).await
    }
}

/// An SNS topic on moto with an SQS queue subscribed, as a person's email is on AWS: what the
/// topic publishes is read from the queue.
pub struct TopicQueue {
    pub topic_arn: String,
    /// The SNS adapter publishing to the topic.
    pub notifier: Arc<SnsNotifier>,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl TopicQueue {
    /// Receives (and deletes) every message now in the queue: SNS envelopes (`Subject`, `Message`).
    pub async fn drain(&self) -> Vec<QueuedMessage> {
        drain_queue(&self.sqs, &self.queue_url).await
    }
}

/// Receives (and deletes) every message now in the queue at `queue_url`.
async fn drain_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<QueuedMessage> {
    let mut out = Vec::new();
    {
        loop {
            let received = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap_or_else(|e| panic!("ReceiveMessage {}: {e:?}", queue_url));
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                if let Some(handle) = &m.receipt_handle {
                    sqs.delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("DeleteMessage {}: {e:?}", queue_url));
                }
                out.push(QueuedMessage {
                    message_id: m.message_id.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                });
            }
        }
    }
}

/// The SQS event Lambda would hand the sender for these messages.
pub fn sqs_event(messages: &[QueuedMessage]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for m in messages {
        let mut record = SqsMessage::default();
        record.message_id = Some(m.message_id.clone());
        record.body = Some(m.body.clone());
        event.records.push(record);
    }
    event
}

/// `n` customer ids starting with `prefix` that the example campaign's experiment treats (emails
/// them) with a variant that carries a reward, rather than holds out.
pub fn treated_ids(prefix: &str, n: usize) -> Vec<String> {
    let cfg = &example().config().experiment;
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|id| {
            let a = experiment::assign(id, CAMPAIGN, cfg);
            a.group == Group::Treated && !cfg.variant_without_reward(&a.variant)
        })
        .take(n)
        .collect()
}

/// A customer of `email` who ordered every `gap` days, the last time `quiet` days before [`now`],
/// and whom the due index lists as due an hour ago.
pub fn customer(id: &str, email: &str, gap: i64, quiet: i64) -> Profile {
    let mut p = Profile::new(id.parse().unwrap());
    p.email = Some(email.to_string());
    p.first_name = Some("Alex".into());
    p.locale = Some("en".into());
    p.time_zone = Some("Europe/Stockholm".into());
    let last = now() - Duration::days(quiet);
    for i in (0..4).rev() {
        p.record_order(OrderRecord {
            // At scattered hours of the day: no usual hour for the sender to wait for.
            at: last - Duration::days(gap * i) - Duration::hours(5 * i),
            amount: Money(2500),
            product: Some("Ethiopia Yirgacheffe".into()),
            category: Some("coffee".into()),
            currency: None,
            order_id: None,
            refunded: Default::default(),
            refund_ids: Vec::new(),
            lines: Vec::new(),
        });
    }
    p.due_at = Some(now() - Duration::hours(1));
    p
}

/// The scheduler's dependencies on the local stack.
pub fn scheduler_deps(table: &LocalTable, bus: &BusQueue) -> scheduler::Deps {
    let retry = RetryPolicy {
        attempts: 4,
        base_delay: StdDuration::from_millis(20),
    };
    scheduler_deps_on(table.store.clone(), bus.bus.clone(), retry)
}

/// The scheduler's dependencies on `store` and `bus` under the example campaign, retrying a
/// throttled store as `retry` says.
pub fn scheduler_deps_on(
    store: Arc<dyn shared::ports::Store>,
    bus: Arc<dyn shared::ports::EventBus>,
    retry: RetryPolicy,
) -> scheduler::Deps {
    scheduler::Deps {
        store,
        bus,
        campaign: Arc::new(example().config().clone()),
        metrics: Arc::new(MemoryMetrics::default()),
        retry,
    }
}

/// The sender's dependencies on the local stack, sending as `sender_address`.
pub fn sender_deps(
    table: &LocalTable,
    mailer: Arc<SesMailer>,
    sender_address: &str,
) -> sender::Deps {
    sender::Deps {
        store: table.store.clone(),
        mailer,
        campaign: Arc::new(example().clone()),
        metrics: Arc::new(MemoryMetrics::default()),
        link_keys: shared::signing::LinkKeys::one(LINK_KEY),
        public_base_url: PUBLIC_BASE_URL.into(),
        sender_address: sender_address.into(),
        limiter: Arc::new(sender::RateLimiter::new(None)),
        lease: Duration::minutes(5),
        checkout: None,
    }
}

/// The webhook's dependencies on the local stack.
pub fn webhook_deps(table: &LocalTable, bus: &BusQueue) -> webhook::Deps {
    webhook::Deps {
        store: table.store.clone(),
        bus: bus.bus.clone(),
        campaign: Arc::new(example().clone()),
        keys: webhook::Keys {
            webhook: vec![WEBHOOK_KEY.to_vec()],
            link: shared::signing::LinkKeys::one(LINK_KEY),
            staff: shared::signing::LinkKeys::one(b"staff-key"),
            platforms: platform_keys(),
            signature_v1: true,
            pseudonym: shared::pseudonym::Pseudonyms::new(b"test-pseudonym-key"),
        },
        public_base_url: PUBLIC_BASE_URL.into(),
        metrics: Arc::new(MemoryMetrics::default()),
        notifier: None,
    }
}

/// Puts one lapsed customer `id` of address `to` (a [`customer`] every 7 days, quiet for 120) in
/// `table`, runs the scheduler at [`now`] and returns the one step due it published to `queue`.
pub async fn one_step_due(
    table: &LocalTable,
    queue: &BusQueue,
    scheduler: &scheduler::Deps,
    id: &str,
    to: &str,
) -> Vec<QueuedMessage> {
    table
        .store
        .put_profiles(&[customer(id, to, 7, 120)])
        .await
        .unwrap();
    invoke_scheduler(scheduler, &scheduled_event(now()))
        .await
        .unwrap();
    let steps = queue.drain().await;
    assert_eq!(steps.len(), 1);
    steps
}

/// The profile `table` holds for `id`, which must exist.
pub async fn stored_profile(table: &LocalTable, id: &str) -> Profile {
    table
        .store
        .get_profile(id)
        .await
        .unwrap()
        .expect("the profile is stored")
}

/// Invokes the scheduler as its Lambda entry does: parse the payload, then run.
pub async fn invoke_scheduler(
    deps: &scheduler::Deps,
    payload: &Value,
) -> Result<scheduler::Summary, scheduler::SchedulerError> {
    let input = scheduler::parse_input(payload, None)?;
    scheduler::run(deps, input, scheduler::Budget::unlimited()).await
}

/// An EventBridge scheduled event at `at`.
pub fn scheduled_event(at: DateTime<Utc>) -> Value {
    serde_json::json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "eu-north-1",
        "resources": ["arn:aws:scheduler:eu-north-1:123456789012:schedule/default/winback-hourly"],
        "detail": {}
    })
}

/// The first link in an email's HTML whose URL contains `path`, with HTML escapes undone.
pub fn link_in(html: &str, path: &str) -> String {
    let start = html
        .find(&format!("{PUBLIC_BASE_URL}{path}"))
        .unwrap_or_else(|| panic!("no {path} link in:\n{html}"));
    html[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '<' || c == '>')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&")
}

/// Every link in an email's HTML whose URL contains `path`.
pub fn links_in(html: &str, path: &str) -> Vec<String> {
    let needle = format!("{PUBLIC_BASE_URL}{path}");
    html.match_indices(&needle)
        .map(|(at, _)| link_in(&html[at..], path))
        .collect()
}

/// The request a browser (or a mail client's one-click POST) makes for a link in an email.
pub fn request_for(url: &str, method: &str, body: &str) -> webhook::HttpRequest {
    let rest = url
        .strip_prefix(PUBLIC_BASE_URL)
        .unwrap_or_else(|| panic!("{url} does not start with {PUBLIC_BASE_URL}"));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    requests::form(method, path, query, body)
}

/// The webhook's answer at `at` to following a link in an email (see [`request_for`]).
pub async fn follow(
    deps: &webhook::Deps,
    url: &str,
    method: &str,
    body: &str,
    at: DateTime<Utc>,
) -> webhook::HttpResponse {
    webhook::handle_http(deps, request_for(url, method, body), at).await
}

pub mod browser;
pub mod faults;
pub mod shop;
pub mod spam;

/// The platforms connected in the local-stack tests.
pub fn platform_keys() -> webhook::PlatformKeys {
    webhook::PlatformKeys {
        shopify: vec![SHOPIFY_SECRET.to_vec()],
        woocommerce: vec![WOOCOMMERCE_SECRET.to_vec()],
        stripe: vec![STRIPE_SECRET.to_vec()],
        shopify_shop: None,
        woocommerce_source: None,
    }
}

/// A Shopify webhook delivery on `topic`, signed as Shopify signs.
pub fn shopify_delivery(topic: &str, body: &Value) -> webhook::HttpRequest {
    requests::shopify_delivery(SHOPIFY_SECRET, topic, body)
}

/// A WooCommerce webhook delivery on `topic`, signed as WooCommerce signs.
pub fn woocommerce_delivery(topic: &str, body: &Value) -> webhook::HttpRequest {
    requests::woocommerce_delivery(WOOCOMMERCE_SECRET, topic, body)
}

/// A Stripe event delivery signed at `t` as Stripe signs.
pub fn stripe_delivery(body: &Value, t: DateTime<Utc>) -> webhook::HttpRequest {
    requests::stripe_delivery(STRIPE_SECRET, body, t)
}
