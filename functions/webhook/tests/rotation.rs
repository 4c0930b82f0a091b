//! Key rotation through the Lambda entry: keys are read again every few minutes in the
//! background, so a webhook key removed from the secret stops working and a link key added
//! starts verifying; a retired link key verifies unsubscribe links only; the documented
//! rotation order never leaves a link unverifiable; a stalled or failing Secrets Manager never
//! holds a request and never keeps a removed key valid past the keys' max age.

mod common;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use common::*;
use serde_json::{json, Value};
use shared::refresh::{MAX_AGE, SECRET_REFRESH};
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

/// What the secret answers: the keys, or a failure.
type Secret = Arc<Mutex<Result<Keys, String>>>;

/// A service whose secret the test edits; its keys were read at `now() - 4 min`.
fn service(w: &World) -> (Service, Secret) {
    let secret: Secret = Arc::new(Mutex::new(Ok(w.deps.keys.clone())));
    let s = secret.clone();
    let keys = Refreshing::new(
        w.deps.keys.clone(),
        now() - Duration::minutes(4),
        SECRET_REFRESH,
        move || {
            let k = s.lock().unwrap().clone();
            async move { k.map_err(shared::settings::SettingsError::MissingKeys) }
        },
    );
    (Service::new(w.deps.clone(), keys), secret)
}

/// The answer's status; the keys' background read (if the request started one) finished.
async fn status(service: &Service, req: &HttpRequest, at: DateTime<Utc>) -> i64 {
    let out = service.handle(event(req), at).await.unwrap();
    service.keys_settled().await;
    out["statusCode"].as_i64().unwrap()
}

fn set_link_keys(secret: &Secret, keys: LinkKeys) {
    if let Ok(k) = secret.lock().unwrap().as_mut() {
        k.link = keys;
    }
}

fn claims(purpose: Purpose, enrollment_id: &str) -> LinkClaims {
    LinkClaims {
        purpose,
        customer_id: CUSTOMER.parse().unwrap(),
        campaign: "example".into(),
        enrollment_id: enrollment_id.into(),
        step: 1,
        expires: (now() + Duration::days(30)).timestamp(),
    }
}

fn survey(keys: &LinkKeys, enrollment_id: &str) -> HttpRequest {
    let t = sign_link(keys, &claims(Purpose::Survey, enrollment_id));
    link("GET", "/v1/survey", &format!("t={t}&a=quality"), "")
}

fn one_click(keys: &LinkKeys, enrollment_id: &str) -> HttpRequest {
    let t = sign_link(keys, &claims(Purpose::Unsubscribe, enrollment_id));
    link(
        "POST",
        "/v1/unsubscribe",
        &format!("t={t}"),
        "List-Unsubscribe=One-Click",
    )
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
    if let Ok(k) = secret.lock().unwrap().as_mut() {
        k.webhook = vec![b"newer-key".to_vec()];
    }
    let soon = now() + Duration::seconds(30);
    assert_eq!(
        status(&service, &signed("e2", soon), soon).await,
        200,
        "until the refresh, the keys read before"
    );
    // The refresh is due: this request is answered with the keys it has, while they are read
    // again in the background; the next one finds the key removed.
    let later = now() + Duration::minutes(2);
    assert_eq!(status(&service, &signed("e3", later), later).await, 200);
    assert_eq!(
        status(&service, &signed("e4", later), later).await,
        401,
        "the removed key is refused after the refresh"
    );
    let by_newer = signed_post(
        "/v1/activity",
        &order("e5", later - Duration::days(1), "5.00").to_string(),
        b"newer-key",
        later,
    );
    assert_eq!(status(&service, &by_newer, later).await, 200);
}

/// The rotation order docs/operations.md gives: add the new key second, wait a refresh, promote
/// it, then retire the old one (`retired:`), and remove it only once its emails are too old to
/// matter. The sender and the webhook read the secret at different moments; at no step does an
/// email carry a link the webhook refuses, and a retired key unsubscribes but answers nothing.
#[tokio::test]
async fn the_documented_rotation_order_keeps_every_link_working_and_a_retired_key_only_unsubscribes(
) {
    let (w, e) = world_with_enrollment().await;
    let (service, secret) = service(&w);
    let old = LinkKeys::one(LINK_KEY);
    let new_key = b"rotated-link-key".to_vec();
    let mut t = now();
    let mut tick = |minutes: i64| {
        t += Duration::minutes(minutes);
        t
    };

    // 1. Add the new key second. A sender that reads the secret first still signs with the old
    //    key, which the webhook (not refreshed yet) knows.
    set_link_keys(&secret, LinkKeys::new([LINK_KEY.to_vec(), new_key.clone()]));
    let sender_keys = LinkKeys::new([LINK_KEY.to_vec(), new_key.clone()]);
    let at = tick(1);
    assert_eq!(
        status(&service, &survey(&sender_keys, &e.id), at).await,
        200
    );
    // 2. Wait a refresh: the webhook now knows the new key too.
    let at = tick(5);
    let _ = status(&service, &survey(&old, &e.id), at).await;
    let promoted = LinkKeys::new([new_key.clone(), LINK_KEY.to_vec()]);
    assert_eq!(
        status(&service, &survey(&promoted, &e.id), at).await,
        200,
        "a link signed with the new key verifies before any sender signs with it"
    );
    // 3. Promote it: new emails are signed with it; the old emails' links still work.
    set_link_keys(&secret, promoted.clone());
    let at = tick(5);
    let _ = status(&service, &survey(&old, &e.id), at).await;
    assert_eq!(status(&service, &survey(&promoted, &e.id), at).await, 200);
    assert_eq!(status(&service, &survey(&old, &e.id), at).await, 200);
    // 4. Retire the old key: its survey links stop (400, "expired"), its unsubscribe links go on.
    set_link_keys(
        &secret,
        LinkKeys::parse("rotated-link-key, retired:test-link-key"),
    );
    let at = tick(5);
    let _ = status(&service, &survey(&promoted, &e.id), at).await;
    assert_eq!(status(&service, &survey(&old, &e.id), at).await, 400);
    assert_eq!(status(&service, &survey(&promoted, &e.id), at).await, 200);
    assert_eq!(
        status(&service, &one_click(&old, &e.id), at).await,
        200,
        "an old email's one-click unsubscribe still unsubscribes"
    );
    assert_eq!(
        w.profile(CUSTOMER).await.email_status,
        shared::domain::customer::EmailStatus::Unsubscribed
    );
    // 5. Removed entirely, the old key verifies nothing.
    set_link_keys(&secret, LinkKeys::one(&new_key));
    let at = tick(5);
    let _ = status(&service, &survey(&promoted, &e.id), at).await;
    assert_eq!(status(&service, &one_click(&old, &e.id), at).await, 400);
}

#[tokio::test]
async fn a_stalled_secrets_manager_never_holds_a_request() {
    let w = enrolled_world().await;
    let keys = Refreshing::new(
        w.deps.keys.clone(),
        now() - Duration::minutes(4),
        SECRET_REFRESH,
        || async {
            // Secrets Manager answers nothing for an hour.
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            Err::<Keys, _>(shared::settings::SettingsError::MissingKeys("never".into()))
        },
    );
    let service = Service::new(w.deps.clone(), keys);
    let at = now() + Duration::minutes(2);
    let body = order("e1", at - Duration::days(1), "5.00").to_string();
    let started = std::time::Instant::now();
    let out = service
        .handle(
            event(&signed_post("/v1/activity", &body, WEBHOOK_KEY, at)),
            at,
        )
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "answered in {:?}, without waiting for the read",
        started.elapsed()
    );
}

#[tokio::test]
async fn keys_no_read_confirms_for_the_max_age_are_refused_until_secrets_manager_answers() {
    let w = enrolled_world().await;
    let (service, secret) = service(&w);
    let down = Err("Secrets Manager is unreachable".to_string());
    let keys_before = std::mem::replace(&mut *secret.lock().unwrap(), down);
    let body = |id: &str, at: DateTime<Utc>| {
        let b = order(id, at - Duration::days(1), "5.00").to_string();
        signed_post("/v1/activity", &b, WEBHOOK_KEY, at)
    };
    // Failing reads keep the keys read before while they are recent...
    let at = now() + Duration::minutes(20);
    assert_eq!(status(&service, &body("e1", at), at).await, 200);
    // ...and past the max age nothing is verified with them: 503, retry later.
    let late = now() - Duration::minutes(4) + MAX_AGE + Duration::minutes(1);
    let refused = service
        .handle(event(&body("e2", late)), late)
        .await
        .unwrap();
    assert_eq!(refused["statusCode"], 503, "{refused}");
    assert_eq!(refused["headers"]["retry-after"], "5");
    let page = service
        .handle(event(&survey(&LinkKeys::one(LINK_KEY), "e-1")), late)
        .await
        .unwrap();
    assert_eq!(page["statusCode"], 503);
    assert!(
        page["body"].as_str().unwrap().contains("<html"),
        "a page for a link"
    );
    // An SES event verifies no signature: it is still recorded.
    let bounce = fixture("ses-bounce.json");
    assert_eq!(service.handle(bounce, late).await.unwrap()["status"], "ok");
    // Secrets Manager answers again, without the old key: the next request reads it and the
    // removed key is refused, the new one taken.
    let mut rotated = keys_before.unwrap();
    rotated.webhook = vec![b"newer-key".to_vec()];
    *secret.lock().unwrap() = Ok(rotated);
    let back = late + Duration::minutes(1);
    assert_eq!(status(&service, &body("e3", back), back).await, 401);
    let by_newer = signed_post(
        "/v1/activity",
        &order("e4", back - Duration::days(1), "5.00").to_string(),
        b"newer-key",
        back,
    );
    assert_eq!(status(&service, &by_newer, back).await, 200);
}
