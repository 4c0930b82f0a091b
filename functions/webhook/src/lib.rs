//! The webhook function: the shop's activity (orders, logins, renewals), the links in emails
//! (survey answers, unsubscribe, fewer emails), reward look-ups for the shop's checkout, erasure
//! requests, and SES feedback (bounces, complaints, deliveries, opens, clicks) from EventBridge.
//!
//! One Lambda serves both: [`handle`] tells a Function URL / HTTP API v2 request from an SES event.
//! The handlers decide nothing the domain in `shared` can decide; they validate everything before
//! they write, write with versioned saves (retrying a lost race a few times), count in the
//! metrics store, and print one EMF record per counter change.
//!
//! # Responses of `POST /v1/activity`
//!
//! `200` with `{"status": "recorded", "event_id", "customer_id", "reactivated": bool, "reward"?}`.
//! A `reward_code` that cannot be redeemed (already used, expired, another customer's, unknown) does
//! not refuse the order: the order is recorded and `reward` says
//! `{"code", "status": "refused", "code_status": "redeemed"|"expired"|"other_customer"|"unknown",
//! "error"}`; a redeemed one says `{"code", "status": "redeemed"}`. A 4xx always means nothing was
//! written, so the shop can retry it after fixing the request. A replayed `event_id` answers `200`
//! with the first answer and `"duplicate": true`; one still being processed answers `409`.

mod activity;
pub mod follow_up;
mod http;
pub mod lambda;
mod links;
pub mod pages;
mod platforms;
mod report;
pub mod resolve;
mod ses;
mod signed;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderName, HeaderValue};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde_json::{json, Value};
use shared::campaign::Campaign;
use shared::emf::MetricSink;
use shared::ports::{EventBus, Store, StoreError};

pub use http::{MAX_BODY_BYTES, PLATFORM_MAX_BODY_BYTES};
pub use shared::refresh::Refreshing;
pub use shared::settings::{Keys, PlatformKeys};

pub(crate) use shared::retry::CONFLICT_ATTEMPTS as SAVE_ATTEMPTS;

/// Everything the handlers need, built once at cold start (or by a test or the simulator).
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    /// The campaign this deployment runs.
    pub campaign: Arc<Campaign>,
    /// Webhook signing keys (newest first) and the link-token key.
    pub keys: Keys,
    /// The webhook's public URL (no trailing slash needed), used in the forms of link pages;
    /// empty means relative links.
    pub public_base_url: String,
    /// Where EMF metric records go: [`shared::emf::StdoutEmf`] on Lambda.
    pub metrics: Arc<dyn MetricSink>,
    /// Tells the team about follow-ups (the SNS topic of `FOLLOW_UP_TOPIC_ARN`); `None` keeps
    /// them (the pause, the dashboard) without telling anyone.
    pub notifier: Option<Arc<dyn shared::ports::Notifier>>,
}

/// The handler with keys that are read again every few minutes (see [`Refreshing`]): each
/// event is handled with the keys current at its `now`, so a webhook key removed from the
/// secret stops working within minutes, and a link key added starts verifying.
pub struct Service {
    deps: Deps,
    keys: Refreshing<Keys, shared::settings::SettingsError>,
}

impl Service {
    /// `deps.keys` is replaced by the current keys of `keys` for each event.
    pub fn new(deps: Deps, keys: Refreshing<Keys, shared::settings::SettingsError>) -> Service {
        Service { deps, keys }
    }

    pub async fn handle(&self, event: Value, now: DateTime<Utc>) -> Result<Value, WebhookError> {
        let keys = self.keys.get(now).await;
        let deps = Deps {
            keys: (*keys).clone(),
            ..self.deps.clone()
        };
        handle(&deps, event, now).await
    }
}

/// An HTTP request as the function sees it, whatever carried it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Errors of the function itself (bad HTTP input never becomes one: it gets a 4xx response).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the event is neither a Function URL / HTTP API v2 request nor an SES event from EventBridge ({0}): point only those at this function")]
    UnknownPayload(String),
    #[error(
        "the SES event has no {0}: deliver SES configuration-set events from EventBridge unchanged"
    )]
    BadSesEvent(&'static str),
    #[error("SES event {0} is being processed by another invocation (its claim holds for at most a minute): retry it later")]
    InProgress(String),
}

impl WebhookError {
    /// Whether retrying the same event may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, WebhookError::Store(_) | WebhookError::InProgress(_))
    }
}

impl From<WebhookError> for lambda_runtime::Diagnostic {
    fn from(e: WebhookError) -> Self {
        let kind = if e.is_retryable() {
            "Retryable.StoreError"
        } else {
            "NotRetryable.BadEvent"
        };
        lambda_runtime::Diagnostic {
            error_type: kind.to_string(),
            error_message: e.to_string(),
        }
    }
}

/// The Lambda entry: an HTTP request (Function URL / HTTP API v2 payload) gets an HTTP API v2
/// response; an SES event from EventBridge is recorded and answered with `{"status": "ok"}`.
pub async fn handle(deps: &Deps, event: Value, now: DateTime<Utc>) -> Result<Value, WebhookError> {
    if event.pointer("/requestContext/http").is_some() {
        let response = match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
            Ok(request) => match http_request_from_apigw(request) {
                Ok(req) => handle_http(deps, req, now).await,
                Err(resp) => resp,
            },
            Err(e) => http::json_error(400, &format!("unreadable HTTP request: {e}"), None),
        };
        return Ok(apigw_response(response));
    }
    let source = event.get("source").and_then(Value::as_str);
    if event.get("detail-type").is_some() && source == Some("aws.ses") {
        ses::handle_ses_event(deps, &event, now).await?;
        return Ok(json!({ "status": "ok" }));
    }
    Err(WebhookError::UnknownPayload(match source {
        Some(s) => format!("source {s}"),
        None => "no requestContext.http and no source".to_string(),
    }))
}

/// Records one SES event (bounce, complaint, delivery, open, click) delivered by EventBridge.
/// Deduplicated by the event's `id`.
pub async fn handle_ses_event(
    deps: &Deps,
    event: &Value,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    ses::handle_ses_event(deps, event, now).await
}

fn http_request_from_apigw(r: ApiGatewayV2httpRequest) -> Result<HttpRequest, HttpResponse> {
    let body = match (r.body, r.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(b), false) => b.into_bytes(),
        (Some(b), true) => BASE64.decode(b.as_bytes()).map_err(|_| {
            http::json_error(400, "the body is marked base64 but is not base64", None)
        })?,
    };
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(HttpRequest {
        method: r.request_context.http.method.as_str().to_string(),
        path: r
            .raw_path
            .or(r.request_context.http.path)
            .unwrap_or_else(|| "/".to_string()),
        query: r.raw_query_string.unwrap_or_default(),
        headers,
        body,
    })
}

fn apigw_response(resp: HttpResponse) -> Value {
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(resp.status);
    for (k, v) in &resp.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            out.headers.insert(k, v);
        }
    }
    out.body = Some(Body::Text(resp.body));
    out.is_base64_encoded = false;
    serde_json::to_value(out)
        .unwrap_or_else(|e| json!({ "statusCode": 500, "body": e.to_string() }))
}

/// The refusal of a shop request whose body is not signed with one of the webhook keys, if it is
/// not (`Winback-Signature` over `"<t>.<raw body>"`).
pub(crate) fn refuse_unsigned_body(
    deps: &Deps,
    req: &HttpRequest,
    now: DateTime<Utc>,
) -> Option<HttpResponse> {
    shared::signing::verify_webhook(
        req.header("winback-signature"),
        &req.body,
        &deps.keys.webhook,
        now,
    )
    .err()
    .map(|e| http::json_error(401, &e.to_string(), None))
}

/// A route: which handler, from the path alone.
enum Route {
    Activity,
    Survey,
    Unsubscribe,
    Preferences,
    Reward(String),
    Reserve(String),
    Customer(String),
    FollowUp(String),
    Resolution(String),
    Platform(platforms::Platform),
}

impl Route {
    fn allowed(&self) -> &'static [&'static str] {
        match self {
            Route::Activity => &["POST"],
            Route::Survey => &["GET", "POST"],
            Route::Unsubscribe | Route::Preferences => &["GET", "POST"],
            Route::Reward(_) => &["GET"],
            Route::Reserve(_) => &["POST"],
            Route::Customer(_) => &["DELETE"],
            Route::FollowUp(_) => &["GET", "POST"],
            Route::Resolution(_) => &["POST"],
            Route::Platform(_) => &["POST"],
        }
    }

    /// Platforms send whole orders (line items and all): they get more room.
    fn max_body(&self) -> usize {
        match self {
            Route::Platform(_) => PLATFORM_MAX_BODY_BYTES,
            _ => MAX_BODY_BYTES,
        }
    }

    /// Link pages answer in HTML; the shop's API in JSON.
    fn is_page(&self) -> bool {
        matches!(
            self,
            Route::Survey | Route::Unsubscribe | Route::Preferences
        )
    }
}

fn route(path: &str) -> Option<Route> {
    // Behind an HTTP API stage or a path prefix the routes start at `/v1/`.
    let at = path.find("/v1/")?;
    let rest = &path[at + "/v1/".len()..];
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut parts = rest.split('/');
    let first = parts.next()?;
    let second = parts.next();
    let third = parts.next();
    if parts.next().is_some() {
        return None;
    }
    if let (("rewards", Some(code)), Some("reserve")) = ((first, second), third) {
        return (!code.is_empty()).then(|| Route::Reserve(code.to_string()));
    }
    if third.is_some() {
        return None;
    }
    match (first, second) {
        ("activity", None) => Some(Route::Activity),
        ("survey", None) => Some(Route::Survey),
        ("unsubscribe", None) => Some(Route::Unsubscribe),
        ("preferences", None) => Some(Route::Preferences),
        ("rewards", Some(code)) if !code.is_empty() => Some(Route::Reward(code.to_string())),
        ("customers", Some(id)) if !id.is_empty() => Some(Route::Customer(id.to_string())),
        ("follow-ups", Some(id)) if !id.is_empty() => Some(Route::FollowUp(id.to_string())),
        ("resolutions", Some(r)) if !r.is_empty() => Some(Route::Resolution(r.to_string())),
        ("platforms", Some(name)) => platforms::Platform::parse(name).map(Route::Platform),
        _ => None,
    }
}

/// Answers one HTTP request. Bad input gets a 4xx that says why and changes nothing; only a
/// failing store answers 503 (retry later). Never panics.
pub async fn handle_http(deps: &Deps, req: HttpRequest, now: DateTime<Utc>) -> HttpResponse {
    let method = req.method.to_ascii_uppercase();
    let Some(route) = route(&req.path) else {
        return http::json_error(
            404,
            "no such route: the webhook serves POST /v1/activity, GET|POST /v1/survey, GET|POST /v1/unsubscribe, GET|POST /v1/preferences, GET /v1/rewards/{code}, POST /v1/rewards/{code}/reserve, DELETE /v1/customers/{id}, POST /v1/resolutions/{reason}, POST /v1/platforms/{shopify|woocommerce|stripe}",
            None,
        );
    };
    if !route.allowed().contains(&method.as_str()) {
        let mut resp = http::json_error(
            405,
            &format!(
                "{method} is not allowed here: use {}",
                route.allowed().join(" or ")
            ),
            None,
        );
        resp.headers
            .push(("allow".into(), route.allowed().join(", ")));
        return resp;
    }
    if req.body.len() > route.max_body() {
        return http::json_error(
            413,
            &format!(
                "the body is {} bytes: at most {} are accepted",
                req.body.len(),
                route.max_body()
            ),
            None,
        );
    }
    let is_page = route.is_page();
    let lang = pages::Lang::pick(
        http::accepted_languages(req.header("accept-language"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let work = async {
        match route {
            Route::Activity => activity::post(deps, &req, now).await,
            Route::Survey if method == "GET" => links::survey_page(deps, &req, now).await,
            Route::Survey => links::survey(deps, &req, now).await,
            Route::Unsubscribe if method == "GET" => links::choice_page(deps, &req, now).await,
            Route::Unsubscribe => links::post_unsubscribe(deps, &req, now).await,
            Route::Preferences if method == "GET" => links::choice_page(deps, &req, now).await,
            Route::Preferences => links::post_preferences(deps, &req, now).await,
            Route::Reward(code) => signed::reward(deps, &req, &code, now).await,
            Route::Reserve(code) => signed::reserve(deps, &req, &code, now).await,
            Route::Customer(id) => signed::erase(deps, &req, &id, now).await,
            Route::FollowUp(id) if method == "GET" => {
                follow_up::record_page(deps, &req, &id, now).await
            }
            Route::FollowUp(id) => follow_up::post_close(deps, &req, &id, now).await,
            Route::Resolution(reason) => resolve::post(deps, &req, &reason, now).await,
            Route::Platform(p) => platforms::post(deps, &req, p, now).await,
        }
    };
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            tracing::error!(event = "request_failed", error = %e, "the store failed; the client may retry");
            unavailable(is_page, lang)
        }
        Err(_) => {
            tracing::error!(event = "request_panicked", "a handler panicked");
            unavailable(is_page, lang)
        }
    }
}

/// How long a webhook event is held while it is being processed (over the function's 15 s
/// timeout): a claim whose work died (panic, timeout, a release that failed) frees itself then,
/// and the sender's retry is processed.
pub(crate) const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// How long a processed event id is remembered (replays within it are answered from the record).
pub(crate) const DEDUP: chrono::Duration = chrono::Duration::days(30);

/// Runs `work` under a claimed idempotency `key`: when `work` panics, the claim is given back
/// and the panic goes on (the caller answers 503 or fails the invocation), so the retry is
/// processed at once instead of after the claim's lease. A release that fails is logged; the
/// lease frees the key then.
pub(crate) async fn releasing_on_panic<T>(
    deps: &Deps,
    key: Option<&str>,
    work: impl std::future::Future<Output = T>,
) -> T {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(v) => v,
        Err(panic) => {
            if let Some(key) = key {
                tracing::error!(event = "claim_released_after_panic", key = %key);
                if let Err(e) = deps.store.release_key(key).await {
                    tracing::error!(event = "release_failed", error = %e, key = %key);
                }
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// Publishes `events` for `customer_id`; what the bus still refuses after retries is logged and
/// counted (`PublishFailures`, Service=webhook), which an alarm watches.
pub(crate) async fn publish(
    deps: &Deps,
    events: Vec<shared::events::BusEvent>,
    customer_id: &str,
    now: DateTime<Utc>,
) {
    if events.is_empty() {
        return;
    }
    let report = shared::publish::publish_all(
        deps.bus.as_ref(),
        events,
        shared::retry::RetryPolicy::DEFAULT,
    )
    .await;
    if report.failed.is_empty() {
        return;
    }
    for (e, why) in &report.failed {
        tracing::error!(event = "publish_failed", detail_type = e.detail_type(), reason = %why, customer_id = %customer_id);
    }
    deps.metrics.record(
        shared::emf::Record::new(&[("Service", "webhook")]).metric(
            "PublishFailures",
            report.failed.len() as f64,
            shared::emf::Unit::Count,
        ),
        now.timestamp_millis(),
    );
}

fn unavailable(is_page: bool, lang: pages::Lang) -> HttpResponse {
    let mut resp = if is_page {
        http::html_response(503, pages::error(lang, pages::PageError::Unavailable))
    } else {
        http::json_error(
            503,
            "temporarily unavailable: retry the same request later",
            None,
        )
    };
    resp.headers.push(("retry-after".into(), "5".into()));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_behind_a_stage_prefix_and_with_a_trailing_slash() {
        assert!(matches!(route("/v1/activity"), Some(Route::Activity)));
        assert!(matches!(route("/prod/v1/survey/"), Some(Route::Survey)));
        assert!(matches!(route("/v1/rewards/WB-1"), Some(Route::Reward(c)) if c == "WB-1"));
        assert!(route("/v1/rewards/").is_none());
        assert!(
            matches!(route("/v1/rewards/WB-1/reserve"), Some(Route::Reserve(c)) if c == "WB-1")
        );
        assert!(route("/v1/rewards//reserve").is_none());
        assert!(route("/v1/rewards/WB-1/other").is_none());
        assert!(route("/v1/rewards/WB-1/reserve/x").is_none());
        assert!(route("/v1/customers/a/b").is_none());
        assert!(route("/v2/activity").is_none());
        assert!(route("/").is_none());
    }
}
