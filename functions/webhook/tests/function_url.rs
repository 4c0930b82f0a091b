//! Real Function URL (HTTP API v2) requests through the Lambda entry.

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;
use shared::domain::customer::EmailStatus;
use shared::domain::sequence::Status;

async fn invoke(w: &World, name: &str) -> Value {
    webhook::handle(&w.deps, fixture(name), now())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_order_from_the_shop_wins_the_customer_back() {
    let w = enrolled_world().await;
    let out = invoke(&w, "activity-order.json").await;
    assert_eq!(out["statusCode"], 200, "{out}");
    assert_eq!(out["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["reactivated"], true);
    assert_eq!(body["reward"]["status"], "redeemed");
    assert!(matches!(
        w.enrollment(CUSTOMER).await.status,
        Status::WonBack { .. }
    ));
}

#[tokio::test]
async fn a_survey_link_answers_with_a_page() {
    let w = enrolled_world().await;
    let out = invoke(&w, "survey-answer.json").await;
    assert_eq!(out["statusCode"], 200, "{out}");
    assert!(out["headers"]["content-type"]
        .as_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(out["body"].as_str().unwrap().contains("<html"));
}

#[tokio::test]
async fn a_base64_one_click_unsubscribe_is_decoded() {
    let w = enrolled_world().await;
    let out = invoke(&w, "unsubscribe-one-click.json").await;
    assert_eq!(out["statusCode"], 200, "{out}");
    assert_eq!(
        w.profile(CUSTOMER).await.email_status,
        EmailStatus::Unsubscribed
    );
}

#[tokio::test]
async fn a_multipart_one_click_unsubscribe_unsubscribes() {
    // RFC 8058 section 3.2 prefers multipart/form-data; these bodies are urllib3's and requests'
    // (with extra fields and a file part), see make_fixtures.py.
    for name in [
        "unsubscribe-one-click-multipart.json",
        "unsubscribe-one-click-multipart-extra-fields.json",
    ] {
        let w = enrolled_world().await;
        let out = invoke(&w, name).await;
        assert_eq!(out["statusCode"], 200, "{name}: {out}");
        assert_eq!(
            w.profile(CUSTOMER).await.email_status,
            EmailStatus::Unsubscribed,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_one_click_post_in_another_encoding_gets_400_and_changes_nothing() {
    let w = enrolled_world().await;
    let before = w.snapshot().await;
    let multipart = fixture("unsubscribe-one-click-multipart.json");
    let mut wrong_boundary = multipart.clone();
    wrong_boundary["headers"]["content-type"] =
        "multipart/form-data; boundary=not-the-body-s".into();
    let mut as_json = fixture("unsubscribe-one-click.json");
    as_json["headers"]["content-type"] = "application/json".into();
    let mut as_text = multipart.clone();
    as_text["headers"]["content-type"] = "text/plain".into();
    for req in [wrong_boundary, as_json, as_text] {
        let out = webhook::handle(&w.deps, req.clone(), now()).await.unwrap();
        assert_eq!(out["statusCode"], 400, "{}", req["headers"]);
        assert!(out["body"].as_str().unwrap().contains("<html"));
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn signed_look_ups_and_erasure_arrive_as_real_requests() {
    let w = enrolled_world().await;
    let out = invoke(&w, "reward-lookup.json").await;
    assert_eq!(out["statusCode"], 200, "{out}");
    assert!(out["body"].as_str().unwrap().contains("\"valid\""));
    w.bus.drain();
    let out = invoke(&w, "customer-erase.json").await;
    assert_eq!(out["statusCode"], 200, "{out}");
    assert!(w.profile(CUSTOMER).await.erased);
    // The bus's subscribers are told, so they erase what they keep too; again on a repeat.
    let erased = |events: Vec<shared::events::BusEvent>| {
        events
            .iter()
            .filter(|e| {
                matches!(e, shared::events::BusEvent::CustomerErased { customer_id, .. } if customer_id == CUSTOMER)
            })
            .count()
    };
    assert_eq!(erased(w.bus.drain()), 1);
    let out = invoke(&w, "customer-erase.json").await;
    assert_eq!(out["statusCode"], 200, "{out}");
    assert_eq!(erased(w.bus.drain()), 1);
}

#[tokio::test]
async fn a_body_flagged_base64_that_is_not_gets_400() {
    let w = world();
    let mut req = fixture("unsubscribe-one-click.json");
    req["body"] = "***".into();
    let out = webhook::handle(&w.deps, req, now()).await.unwrap();
    assert_eq!(out["statusCode"], 400);
    let mut ok = fixture("unsubscribe-one-click.json");
    ok["body"] = base64::engine::general_purpose::STANDARD
        .encode("choice=nothing")
        .into();
    assert_eq!(
        webhook::handle(&w.deps, ok, now()).await.unwrap()["statusCode"],
        400
    );
}

#[tokio::test]
async fn an_unreadable_http_request_gets_400_not_an_error() {
    let w = world();
    let req = serde_json::json!({"requestContext": {"http": {"method": 7}}, "headers": "x"});
    let out = webhook::handle(&w.deps, req, now()).await.unwrap();
    assert_eq!(out["statusCode"], 400);
}

/// `infra/local/sign.py` (Python's `hmac` and `hashlib`, as a shop's client would sign) signs the
/// event at the tests' fixed time, with scheme `v2` or `v1`.
fn signed_by_python(event: &str, v1: bool) -> Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(format!("{root}/infra/local/sign.py"))
        .arg(format!("{root}/functions/webhook/events/{event}"))
        .arg("--key")
        .arg(std::str::from_utf8(WEBHOOK_KEY).unwrap())
        .arg("--now")
        .arg(now().timestamp().to_string());
    if v1 {
        cmd.arg("--v1");
    }
    let out = cmd.output().expect("python3 runs sign.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_request_signed_v2_by_a_python_client_is_taken_only_at_its_own_route() {
    let w = enrolled_world().await;
    let signed = signed_by_python("function-url-activity.json", false);
    let header = signed["headers"]["winback-signature"].as_str().unwrap();
    assert!(header.contains(",v2="), "{header}");
    // The same signed body and header at another route, or with another method: refused.
    for (field, value) in [
        ("rawPath", "/v1/resolutions/quality"),
        ("rawQueryString", "a=1"),
    ] {
        let mut moved = signed.clone();
        moved[field] = Value::from(value);
        let out = webhook::handle(&w.deps, moved, now()).await.unwrap();
        assert_eq!(out["statusCode"], 401, "{field}: {out}");
    }
    let mut other_method = signed.clone();
    other_method["requestContext"]["http"]["method"] = Value::from("PUT");
    let out = webhook::handle(&w.deps, other_method, now()).await.unwrap();
    assert_ne!(out["statusCode"], 200, "{out}");
    let out = webhook::handle(&w.deps, signed, now()).await.unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
}

#[tokio::test]
async fn a_v1_request_is_taken_while_the_transition_lasts_and_refused_after() {
    let mut w = enrolled_world().await;
    let signed = signed_by_python("function-url-activity.json", true);
    assert!(signed["headers"]["winback-signature"]
        .as_str()
        .unwrap()
        .contains(",v1="));
    w.deps.keys.signature_v1 = false;
    let out = webhook::handle(&w.deps, signed.clone(), now())
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 401, "{out}");
    assert!(out["body"].as_str().unwrap().contains("v2"), "{out}");
    w.deps.keys.signature_v1 = true;
    let out = webhook::handle(&w.deps, signed, now()).await.unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
}
