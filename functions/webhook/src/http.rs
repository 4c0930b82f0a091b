//! The HTTP types the handlers see, whatever carried the request, and plain helpers: responses,
//! headers, query strings, languages, and the Function URL / HTTP API v2 payloads.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderName, HeaderValue};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use shared::ports::StoreError;

use crate::deps::WebhookError;

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

/// Why a handler ends before its last line: a response it has decided on (a refusal), or a
/// failure ([`WebhookError::retryable`] picks the status). `?` gives either.
#[derive(Debug)]
pub(crate) enum Stop {
    Respond(HttpResponse),
    Fail(WebhookError),
}

/// What a handler answers.
pub(crate) type Handled = Result<HttpResponse, Stop>;

impl From<HttpResponse> for Stop {
    fn from(r: HttpResponse) -> Self {
        Stop::Respond(r)
    }
}

impl From<WebhookError> for Stop {
    fn from(e: WebhookError) -> Self {
        Stop::Fail(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Fail(e.into())
    }
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Bodies of the platforms' webhooks (whole orders) above this are refused with 413.
pub const PLATFORM_MAX_BODY_BYTES: usize = 512 * 1024;

impl HttpRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// What bodiless signed requests sign: the path, and `?query` when there is one.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: body.to_string(),
    }
}

/// A JSON error: `{"error": message}` plus `field` when one field is at fault.
pub fn json_error(status: u16, message: &str, field: Option<&str>) -> HttpResponse {
    let mut body = json!({ "error": message });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    json_response(status, &body)
}

/// The pages' content security policy: nothing loads but the inline style; no site may frame
/// the page (clickjacking a "Send my answer" or "Unsubscribe" button), forms post only to this
/// origin, and no `<base>` may redirect its links.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
                            frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// An HTML page. Link pages carry tokens in their URL: no caching, no referrer, no indexing, no
/// framing, no content-type sniffing.
pub fn html_response(status: u16, html: String) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("x-robots-tag".into(), "noindex".into()),
            ("x-content-type-options".into(), "nosniff".into()),
            ("content-security-policy".into(), PAGE_CSP.into()),
        ],
        body: html,
    }
}

/// Decodes `%XX` escapes of a path segment; `None` if an escape is malformed (`%` not followed
/// by two hex digits, which `percent-encoding` would keep as it is) or the bytes are not UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let malformed = segment.match_indices('%').any(|(i, _)| {
        !segment
            .get(i + 1..i + 3)
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if malformed {
        return None;
    }
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The languages of an `Accept-Language` header, best first (quality order, ties in order).
pub fn accepted_languages(header: Option<&str>) -> Vec<String> {
    let Some(h) = header else {
        return Vec::new();
    };
    let mut langs: Vec<(f32, usize, String)> = h
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            if tag.is_empty() || tag == "*" {
                return None;
            }
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((q, i, tag.to_string()))
        })
        .collect();
    langs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    langs.into_iter().map(|(_, _, t)| t).collect()
}

/// The request of a Function URL / HTTP API v2 payload, or the 400 that says why it has none.
pub(crate) fn from_apigw(r: ApiGatewayV2httpRequest) -> Result<HttpRequest, HttpResponse> {
    let body = match (r.body, r.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(b), false) => b.into_bytes(),
        (Some(b), true) => BASE64
            .decode(b.as_bytes())
            .map_err(|_| json_error(400, "the body is marked base64 but is not base64", None))?,
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

/// The HTTP API v2 payload of a response.
pub(crate) fn to_apigw(resp: HttpResponse) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode_and_broken_ones_are_refused() {
        assert_eq!(percent_decode("c%2D1%20x").as_deref(), Some("c-1 x"));
        assert_eq!(percent_decode("plain"), Some("plain".into()));
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("cut%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn accept_language_is_read_in_quality_order() {
        assert_eq!(
            accepted_languages(Some("en;q=0.5, sv-SE, da;q=0.8")),
            vec!["sv-SE", "da", "en"]
        );
        assert!(accepted_languages(None).is_empty());
        assert!(accepted_languages(Some("*")).is_empty());
    }
}
