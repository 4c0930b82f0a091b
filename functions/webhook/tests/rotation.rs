//! Key rotation through the Lambda entry: keys are read again every few minutes, so a webhook
//! key removed from the secret stops working and a link key added starts verifying.

mod common;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use common::*;
use serde_json::{json, Value};
use shared::refresh::SECRET_REFRESH;
use shared::signing::{sign_link, LinkClaims, LinkKeys, Purpose};
use webhook::{HttpRequest, Keys, Refreshing, Service};

/// The Function URL event that carries `req`.
fn event(req: &HttpRequest) -> Value {
    let headers: serde_json::Map<String, Value> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "version": "2.0",
        "rawPath": req.path,
        "rawQueryString": req.query,
        "headers": headers,
        "requestContext": { "http": { "method": req.method, "path": req.path } },
        "body": String::from_utf8(req.body.clone()).unwrap(),
        "isBase64Encoded": false,
    })
}

/// A service whose secret the test edits; its keys were read at `now() - 4 min`.
fn service(w: &World) -> (Service, Arc<Mutex<Keys>>) {
    let secret = Arc::new(Mutex::new(w.deps.keys.clone()));
    let s = secret.clone();
    let keys = Refreshing::new(
        w.deps.keys.clone(),
        now() - Duration::minutes(4),
        SECRET_REFRESH,
        move || {
            let k = s.lock().unwrap().clone();
            async move { Ok(k) }
        },
    );
    (Service::new(w.deps.clone(), keys), secret)
}

async fn status(service: &Service, req: &HttpRequest, at: DateTime<Utc>) -> i64 {
    let out = service.handle(event(req), at).await.unwrap();
    out["statusCode"].as_i64().unwrap()
}

#[tokio::test]
async fn a_webhook_key_removed_from_the_secret_stops_working_at_the_next_refresh() {
    let w = enrolled_world().await;
    let (service, secret) = service(&w);
    let signed = |id: &str, at: DateTime<Utc>| {
        let body = order(id, at - Duration::days(1), "5.00").to_string();
        signed_post("/v1/activity", &body, WEBHOOK_KEY, at)
    };
    assert_eq!(status(&service, &signed("e1", now()), now()).await, 200);
    secret.lock().unwrap().webhook = vec![b"newer-key".to_vec()];
    let soon = now() + Duration::seconds(30);
    assert_eq!(
        status(&service, &signed("e2", soon), soon).await,
        200,
        "until the refresh, the keys read before"
    );
    let later = now() + Duration::minutes(2);
    assert_eq!(
        status(&service, &signed("e3", later), later).await,
        401,
        "the removed key is refused after the refresh"
    );
    let by_newer = signed_post(
        "/v1/activity",
        &order("e4", later - Duration::days(1), "5.00").to_string(),
        b"newer-key",
        later,
    );
    assert_eq!(status(&service, &by_newer, later).await, 200);
}

#[tokio::test]
async fn a_rotated_link_key_keeps_old_links_working_until_it_is_removed() {
    let (w, e) = world_with_enrollment().await;
    let (service, secret) = service(&w);
    let new_keys = LinkKeys::new([b"rotated-link-key".to_vec(), LINK_KEY.to_vec()]);
    secret.lock().unwrap().link = new_keys.clone();
    let survey = |keys: &LinkKeys| {
        let t = sign_link(
            keys,
            &LinkClaims {
                purpose: Purpose::Survey,
                customer_id: CUSTOMER.parse().unwrap(),
                campaign: "example".into(),
                enrollment_id: e.id.clone(),
                step: 1,
                expires: (now() + Duration::days(30)).timestamp(),
            },
        );
        link("GET", "/v1/survey", &format!("t={t}&a=quality"), "")
    };
    let later = now() + Duration::minutes(2);
    let old = survey(&LinkKeys::one(LINK_KEY));
    let new = survey(&new_keys);
    assert_eq!(status(&service, &new, now()).await, 400, "not listed yet");
    assert_eq!(status(&service, &new, later).await, 200);
    assert_eq!(status(&service, &old, later).await, 200, "old link");
    secret.lock().unwrap().link = LinkKeys::one(b"rotated-link-key");
    let after = later + SECRET_REFRESH;
    assert_eq!(status(&service, &old, after).await, 400, "its key removed");
    assert_eq!(status(&service, &new, after).await, 200);
}
