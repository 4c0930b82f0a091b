//! Requests to the webhook as shops, platforms and mail clients send them, signed where the
//! webhook asks for a signature.

use chrono::{DateTime, Utc};
use serde_json::Value;
use webhook::HttpRequest;

/// `winback-signature` of `body` at `t` with `key` in the older scheme `v1` (the body only), as
/// shops signed before `v2`.
pub fn signature(key: &[u8], t: DateTime<Utc>, body: &[u8]) -> String {
    shared::signing::sign_webhook(key, t.timestamp(), body)
}

/// `winback-signature` of a request at `t` with `key` in scheme `v2`: its method, path and query
/// (`path_and_query`) and body, as a shop signs it.
pub fn signature_v2(
    key: &[u8],
    t: DateTime<Utc>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> String {
    let request = shared::signing::SignedRequest {
        method,
        path_and_query,
        body,
    };
    shared::signing::sign_request(key, t.timestamp(), &request)
}

/// A JSON `POST` to `path` with `signature` (none: unsigned).
pub fn post(path: &str, body: impl Into<Vec<u8>>, signature: Option<String>) -> HttpRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(signature.map(|s| ("winback-signature".to_string(), s)));
    HttpRequest {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers,
        body: body.into(),
    }
}

/// A JSON `POST` to `path`, signed (`v2`) at `t` with `key`.
pub fn signed_post(
    path: &str,
    body: impl Into<Vec<u8>>,
    key: &[u8],
    t: DateTime<Utc>,
) -> HttpRequest {
    let body = body.into();
    let sig = signature_v2(key, t, "POST", path, &body);
    post(path, body, Some(sig))
}

/// A shop's `POST /v1/activity`, signed at `t` with `key`.
pub fn signed_activity(body: &Value, key: &[u8], t: DateTime<Utc>) -> HttpRequest {
    signed_post("/v1/activity", body.to_string(), key, t)
}

/// A request without a body (look-ups, erasure), its method and path signed (`v2`) at `t` with
/// `key`.
pub fn signed_bodiless(method: &str, path: &str, key: &[u8], t: DateTime<Utc>) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: vec![(
            "winback-signature".into(),
            signature_v2(key, t, method, path, b""),
        )],
        body: Vec::new(),
    }
}

/// What a browser or a mail client sends for a link: `query` as is, `body` as a form.
pub fn form(method: &str, path: &str, query: &str, body: &str) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: body.as_bytes().to_vec(),
    }
}

/// Base64 HMAC-SHA256 of `body`, as Shopify and WooCommerce sign their deliveries.
pub fn base64_hmac(key: &[u8], body: &[u8]) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(body);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// A platform's JSON delivery to `/v1/platforms/<platform>` with its own `headers`.
pub fn platform_delivery(
    platform: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> HttpRequest {
    let mut all = vec![("content-type".to_string(), "application/json".to_string())];
    all.extend(headers);
    HttpRequest {
        method: "POST".into(),
        path: format!("/v1/platforms/{platform}"),
        query: String::new(),
        headers: all,
        body,
    }
}

/// A Shopify delivery on `topic`, signed with `secret` as Shopify signs.
pub fn shopify_delivery(secret: &[u8], topic: &str, body: &Value) -> HttpRequest {
    hmac_topic_delivery(
        "shopify",
        ["X-Shopify-Topic", "X-Shopify-Hmac-Sha256"],
        secret,
        topic,
        body,
    )
}

/// A WooCommerce delivery on `topic`, signed with `secret` as WooCommerce signs.
pub fn woocommerce_delivery(secret: &[u8], topic: &str, body: &Value) -> HttpRequest {
    hmac_topic_delivery(
        "woocommerce",
        ["X-WC-Webhook-Topic", "X-WC-Webhook-Signature"],
        secret,
        topic,
        body,
    )
}

/// A delivery naming its topic in one header and carrying the body's base64 HMAC-SHA256 under
/// `secret` in another, as Shopify and WooCommerce sign.
fn hmac_topic_delivery(
    platform: &str,
    [topic_header, signature_header]: [&str; 2],
    secret: &[u8],
    topic: &str,
    body: &Value,
) -> HttpRequest {
    let raw = body.to_string().into_bytes();
    let sig = base64_hmac(secret, &raw);
    platform_delivery(
        platform,
        vec![
            (topic_header.into(), topic.into()),
            (signature_header.into(), sig),
        ],
        raw,
    )
}

/// A Stripe event delivery signed at `t` with `secret` as Stripe signs.
pub fn stripe_delivery(secret: &[u8], body: &Value, t: DateTime<Utc>) -> HttpRequest {
    let raw = body.to_string().into_bytes();
    let sig = signature(secret, t, &raw);
    platform_delivery("stripe", vec![("Stripe-Signature".into(), sig)], raw)
}
