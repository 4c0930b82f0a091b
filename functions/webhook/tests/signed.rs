//! The shop's bodiless signed requests: reward look-ups and erasure.

mod common;

use chrono::Duration;
use common::*;
use shared::domain::experiment::Group;
use shared::domain::metrics::counter;
use shared::ports::EnrollmentStore;

#[tokio::test]
async fn a_reward_look_up_says_valid_with_kind_value_and_expiry() {
    let w = enrolled_world().await;
    let resp = w
        .http(signed_bodiless("GET", &format!("/v1/rewards/{CODE}")))
        .await;
    assert_eq!(resp.status, 200);
    let j = resp.json();
    assert_eq!(j["status"], "valid");
    assert_eq!(j["kind"], "amount_off");
    assert_eq!(j["value"], "10.00");
    assert_eq!(j["currency"], "EUR");
    assert!(j["expires_at"].as_str().unwrap().starts_with("2026-12-05"));
}

#[tokio::test]
async fn a_reward_look_up_says_redeemed_expired_or_unknown() {
    let w = enrolled_world().await;
    let unknown = w
        .http(signed_bodiless("GET", "/v1/rewards/WB-0000-0000-0000"))
        .await
        .json();
    assert_eq!(unknown, serde_json::json!({"status": "unknown"}));
    let garbage = w.http(signed_bodiless("GET", "/v1/rewards/%ff%fe")).await;
    assert_eq!(garbage.json()["status"], "unknown");

    let later = now() + Duration::days(15);
    let path = format!("/v1/rewards/{CODE}");
    let mut req = signed_bodiless("GET", &path);
    req.headers[0].1 =
        shared::signing::sign_webhook(WEBHOOK_KEY, later.timestamp(), path.as_bytes());
    assert_eq!(
        webhook::handle_http(&w.deps, req, later).await.json()["status"],
        "expired"
    );

    let mut body = order("evt-r", now(), "30.00");
    body["reward_code"] = serde_json::json!(CODE);
    w.http(activity(&body)).await;
    assert_eq!(
        w.http(signed_bodiless("GET", &path)).await.json()["status"],
        "redeemed"
    );
}

#[tokio::test]
async fn a_look_up_signed_over_another_path_is_refused() {
    let w = enrolled_world().await;
    let mut req = signed_bodiless("GET", "/v1/rewards/WB-0000-0000-0000");
    req.path = format!("/v1/rewards/{CODE}");
    assert_eq!(w.http(req).await.status, 401);
}

#[tokio::test]
async fn erasure_leaves_a_tombstone_deletes_the_enrollment_and_reward_and_keeps_campaign_counts() {
    let w = enrolled_world().await;
    let before = w.totals(VARIANT, Group::Treated).await;
    let resp = w
        .http(signed_bodiless(
            "DELETE",
            &format!("/v1/customers/{CUSTOMER}"),
        ))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let p = w.profile(CUSTOMER).await;
    assert!(p.is_tombstone(), "{p:?}");
    assert_eq!(p.order_count, 0);
    assert!(p.orders.is_empty());
    assert_eq!(
        w.store.get_enrollment(CUSTOMER, "example").await.unwrap(),
        None
    );
    assert!(w.store.all_rewards().is_empty());
    assert_eq!(w.totals(VARIANT, Group::Treated).await, before);
    assert_eq!(before.get(counter::ENROLLED), 1);

    let again = w
        .http(signed_bodiless(
            "DELETE",
            &format!("/v1/customers/{CUSTOMER}"),
        ))
        .await;
    assert_eq!(again.status, 200);
    let unknown = w
        .http(signed_bodiless("DELETE", "/v1/customers/nobody"))
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn an_erased_customer_who_orders_again_is_not_built_again() {
    let w = enrolled_world().await;
    w.http(signed_bodiless(
        "DELETE",
        &format!("/v1/customers/{CUSTOMER}"),
    ))
    .await;
    let mut body = order("evt-e", now(), "12.00");
    body["profile"] = serde_json::json!({"email": "ada@example.com", "first_name": "Ada"});
    assert_eq!(w.http(activity(&body)).await.status, 200);
    let p = w.profile(CUSTOMER).await;
    assert!(p.is_tombstone(), "{p:?}");
    assert_eq!(p.due_at, None);
}

#[tokio::test]
async fn unsigned_erasure_is_refused_and_changes_nothing() {
    let w = enrolled_world().await;
    let before = w.snapshot().await;
    let mut req = signed_bodiless("DELETE", &format!("/v1/customers/{CUSTOMER}"));
    req.headers.clear();
    assert_eq!(w.http(req).await.status, 401);
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn unknown_routes_get_404_and_wrong_methods_405() {
    let w = world();
    assert_eq!(w.http(link("GET", "/v1/nothing", "", "")).await.status, 404);
    assert_eq!(w.http(link("GET", "/", "", "")).await.status, 404);
    let resp = w.http(link("GET", "/v1/activity", "", "")).await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
    assert_eq!(
        w.http(link("PUT", "/v1/customers/c-1", "", ""))
            .await
            .status,
        405
    );
}
