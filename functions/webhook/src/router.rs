//! The entry: which kind of event this is, which route a request takes, and what a failed or
//! panicking handler answers.

use std::panic::AssertUnwindSafe;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde_json::{json, Value};
use shared::refresh::Refreshing;
use shared::settings::{Keys, SettingsError};

use crate::deps::{Deps, WebhookError};
use crate::http::{self, HttpRequest, HttpResponse, Stop, MAX_BODY_BYTES, PLATFORM_MAX_BODY_BYTES};
use crate::pages;
use crate::platforms::{self, Platform};
use crate::{activity, follow_up, links, resolve, ses, signed};

/// The handler with keys that are read again every few minutes (see [`Refreshing`]): each
/// event is handled with the keys current at its `now`, so a webhook key removed from the
/// secret stops working within minutes, and a link key added starts verifying. Keys that no
/// read has confirmed for 30 minutes (Secrets Manager failing) verify nothing: every request
/// is answered 503 until a read succeeds; SES events, which verify no signature, go on.
pub struct Service {
    deps: Deps,
    keys: Refreshing<Keys, SettingsError>,
}

impl Service {
    /// `deps.keys` is replaced by the current keys of `keys` for each event.
    pub fn new(deps: Deps, keys: Refreshing<Keys, SettingsError>) -> Service {
        Service { deps, keys }
    }

    pub async fn handle(&self, event: Value, now: DateTime<Utc>) -> Result<Value, WebhookError> {
        let keys = match self.keys.get(now).await {
            Ok(keys) => keys,
            Err(too_old) if event.pointer("/requestContext/http").is_some() => {
                let e = WebhookError::KeysTooOld {
                    minutes: too_old.age.num_minutes(),
                };
                tracing::error!(event = "request_failed", error = %e, retryable = true);
                return Ok(unavailable(event, &e));
            }
            Err(too_old) => too_old.stale,
        };
        let deps = Deps {
            keys: (*keys).clone(),
            ..self.deps.clone()
        };
        handle(&deps, event, now).await
    }

    /// Waits until a background read of the keys started by an event is over (tests, which
    /// inject the clock and want the read's effect on their next event).
    pub async fn keys_settled(&self) {
        self.keys.settled().await;
    }
}

/// The answer to an HTTP request that cannot be handled at all (`e`): 503 and a page or JSON as
/// its route answers.
fn unavailable(event: Value, e: &WebhookError) -> Value {
    let response = match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
        Ok(request) => match http::from_apigw(request) {
            Ok(req) => {
                let is_page = route(&req.path).is_some_and(|r| r.is_page());
                failure(e, is_page, &req)
            }
            Err(resp) => resp,
        },
        Err(err) => http::json_error(400, &format!("unreadable HTTP request: {err}"), None),
    };
    http::to_apigw(response)
}

/// The Lambda entry: an HTTP request (Function URL / HTTP API v2 payload) gets an HTTP API v2
/// response; an SES event from EventBridge is recorded and answered with `{"status": "ok"}`.
pub async fn handle(deps: &Deps, event: Value, now: DateTime<Utc>) -> Result<Value, WebhookError> {
    if event.pointer("/requestContext/http").is_some() {
        let response = match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
            Ok(request) => match http::from_apigw(request) {
                Ok(req) => handle_http(deps, req, now).await,
                Err(resp) => resp,
            },
            Err(e) => http::json_error(400, &format!("unreadable HTTP request: {e}"), None),
        };
        return Ok(http::to_apigw(response));
    }
    let source = event.get("source").and_then(Value::as_str);
    if event.get("detail-type").is_some() && source == Some("aws.ses") {
        ses::handle_ses_event(deps, &event, now).await?;
        return Ok(json!({ "status": "ok" }));
    }
    Err(WebhookError::UnrecognisedEvent(match source {
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
    Platform(Platform),
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
        ("platforms", Some(name)) => Platform::parse(name).map(Route::Platform),
        _ => None,
    }
}

/// The 405 or 413 a request gets before any handler sees it, if it gets one.
fn refuse_early(route: &Route, method: &str, req: &HttpRequest) -> Option<HttpResponse> {
    if !route.allowed().contains(&method) {
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
        return Some(resp);
    }
    (req.body.len() > route.max_body()).then(|| {
        http::json_error(
            413,
            &format!(
                "the body is {} bytes: at most {} are accepted",
                req.body.len(),
                route.max_body()
            ),
            None,
        )
    })
}

/// Answers one HTTP request. Bad input gets a 4xx that says why and changes nothing; a failure
/// worth retrying (the store) answers 503 (retry later). Never panics.
pub async fn handle_http(deps: &Deps, req: HttpRequest, now: DateTime<Utc>) -> HttpResponse {
    let method = req.method.to_ascii_uppercase();
    let Some(route) = route(&req.path) else {
        return http::json_error(
            404,
            "no such route: the webhook serves POST /v1/activity, GET|POST /v1/survey, GET|POST /v1/unsubscribe, GET|POST /v1/preferences, GET /v1/rewards/{code}, POST /v1/rewards/{code}/reserve, DELETE /v1/customers/{id}, POST /v1/resolutions/{reason}, POST /v1/platforms/{shopify|woocommerce|stripe}",
            None,
        );
    };
    if let Some(refused) = refuse_early(&route, &method, &req) {
        return refused;
    }
    let is_page = route.is_page();
    let get = method == "GET";
    let work = async {
        match route {
            Route::Activity => activity::post(deps, &req, now).await,
            Route::Survey if get => links::survey_page(deps, &req, now).await,
            Route::Survey => links::survey(deps, &req, now).await,
            Route::Unsubscribe | Route::Preferences if get => {
                links::choice_page(deps, &req, now).await
            }
            Route::Unsubscribe => links::post_unsubscribe(deps, &req, now).await,
            Route::Preferences => links::post_preferences(deps, &req, now).await,
            Route::Reward(code) => signed::reward(deps, &req, &code, now).await,
            Route::Reserve(code) => signed::reserve(deps, &req, &code, now).await,
            Route::Customer(id) => signed::erase(deps, &req, &id, now).await,
            Route::FollowUp(id) if get => follow_up::record_page(deps, &req, &id, now).await,
            Route::FollowUp(id) => follow_up::post_close(deps, &req, &id, now).await,
            Route::Resolution(reason) => resolve::post(deps, &req, &reason, now).await,
            Route::Platform(p) => platforms::post(deps, &req, p, now).await,
        }
    };
    let failed = match AssertUnwindSafe(work).catch_unwind().await {
        Ok(Ok(resp)) | Ok(Err(Stop::Respond(resp))) => return resp,
        Ok(Err(Stop::Fail(e))) => e,
        Err(_) => WebhookError::HandlerPanicked,
    };
    tracing::error!(event = "request_failed", error = %failed, retryable = failed.retryable());
    failure(&failed, is_page, &req)
}

/// What a failed request answers: 503 with `retry-after` when the same request may succeed
/// later, else 500; a page in the customer's browser language for link pages.
fn failure(e: &WebhookError, is_page: bool, req: &HttpRequest) -> HttpResponse {
    let status = if e.retryable() { 503 } else { 500 };
    let mut resp = if is_page {
        let lang = pages::Lang::pick(
            http::accepted_languages(req.header("accept-language"))
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        http::html_response(status, pages::error(lang, pages::PageError::Unavailable))
    } else if e.retryable() {
        http::json_error(
            status,
            "temporarily unavailable: retry the same request later",
            None,
        )
    } else {
        http::json_error(status, "the request could not be handled", None)
    };
    if e.retryable() {
        resp.headers.push(("retry-after".into(), "5".into()));
    }
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
