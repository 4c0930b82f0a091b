//! One small HTTPS client for the platforms' APIs (the sender's codes, and the order history
//! `winback import --from` reads): hyper over rustls (ring) with the system's roots, built on
//! first use, a time limit on every call, and the answers every platform shares mapped to
//! [`CheckoutError`] (429 → slow down, 5xx and no answer → unavailable, other 4xx → refused).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::OnceCell;

use crate::ports::CheckoutError;

/// How long one call may take before the step is deferred.
const TIMEOUT: Duration = Duration::from_secs(8);
/// How long to wait after a 429 that does not say.
const DEFAULT_RETRY_AFTER: u64 = 2;

type Inner = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A platform's API at `base`.
pub struct Client {
    base: String,
    inner: OnceCell<Inner>,
}

/// An answer the platform gave (2xx, or a 4xx other than 429).
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// Its headers (WooCommerce's `X-WP-TotalPages`, …).
    pub headers: http::HeaderMap,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The answer as a refusal, with the platform's own words (no keys are in them).
    pub fn refused(&self) -> CheckoutError {
        let text = String::from_utf8_lossy(&self.body);
        CheckoutError::Refused {
            status: self.status,
            message: text.chars().take(300).collect(),
        }
    }
}

impl Client {
    pub fn new(base: String) -> Client {
        Client {
            base,
            inner: OnceCell::new(),
        }
    }

    async fn inner(&self) -> Result<&Inner, CheckoutError> {
        self.inner
            .get_or_try_init(|| async {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| CheckoutError::Unavailable(format!("no TLS roots: {e}")))?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https))
            })
            .await
    }

    /// Sends `method path` with `headers` and `body`; a 429, a 5xx, a failed connection or a
    /// call over [`TIMEOUT`] is an error, any other answer is returned.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Answer, CheckoutError> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .header("user-agent", "winback");
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| CheckoutError::Unavailable(format!("bad request: {e}")))?;
        let client = self.inner().await?;
        let call = async {
            let res = client
                .request(req)
                .await
                .map_err(|e| CheckoutError::Unavailable(format!("no answer: {e}")))?;
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| CheckoutError::Unavailable(format!("answer cut short: {e}")))?
                .to_bytes()
                .to_vec();
            Ok::<_, CheckoutError>((status, retry_after, headers, body))
        };
        let (status, retry_after, headers, body) = tokio::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| CheckoutError::Unavailable(format!("no answer within {TIMEOUT:?}")))??;
        match status {
            429 => Err(CheckoutError::RateLimited {
                retry_after_seconds: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            }),
            500..=599 => Err(CheckoutError::Unavailable(format!("status {status}"))),
            _ => Ok(Answer {
                status,
                body,
                headers,
            }),
        }
    }
}

/// `application/x-www-form-urlencoded` of `pairs` (Stripe's bracketed keys written as they are).
pub fn form(pairs: &[(&str, String)]) -> Vec<u8> {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

/// The answer to `GET path?code=<code>`: how both REST platforms find a code they hold.
impl Client {
    pub async fn find_code(
        &self,
        path: &str,
        code: &str,
        headers: &[(&str, String)],
    ) -> Result<serde_json::Value, CheckoutError> {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", code)
            .finish();
        let found = self
            .send(http::Method::GET, &format!("{path}?{q}"), headers, None)
            .await?;
        if !found.ok() {
            return Err(found.refused());
        }
        Ok(found.json())
    }
}
