//! `POST /v1/rewards/{code}/reserve`: one order holds a code at checkout.

mod common;

use common::*;
use serde_json::json;
use shared::domain::reward::RewardCode;
use shared::ports::RewardStore;

fn reserve(code: &str, order_ref: &str) -> webhook::HttpRequest {
    reserve_as(code, CUSTOMER, order_ref)
}

/// A checkout of customer `customer_id` reserving `code` for its order `order_ref`.
fn reserve_as(code: &str, customer_id: &str, order_ref: &str) -> webhook::HttpRequest {
    signed_post(
        &format!("/v1/rewards/{code}/reserve"),
        &json!({ "order_ref": order_ref, "customer_id": customer_id }).to_string(),
        WEBHOOK_KEY,
        now(),
    )
}

/// An order (`event_id`, 40.00 now) redeeming [`CODE`], as `order_ref` if it has one.
fn redeeming(event_id: &str, order_ref: Option<&str>) -> serde_json::Value {
    let mut o = order(event_id, now(), "40.00");
    o["reward_code"] = json!(CODE);
    if let Some(r) = order_ref {
        o["order_ref"] = json!(r);
    }
    o
}

#[tokio::test]
async fn two_orders_reserving_one_code_at_once_one_gets_it_and_the_other_409() {
    let w = enrolled_world().await;
    let (a, b) = tokio::join!(
        w.http(reserve(CODE, "order-A")),
        w.http(reserve(CODE, "order-B"))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
    let (won, lost) = if a.status == 200 { (a, b) } else { (b, a) };
    let winner = won.json()["order_ref"].as_str().unwrap().to_string();
    assert_eq!(won.json()["status"], "reserved");
    assert_eq!(lost.json()["status"], "held_by_another_order");
    let stored = w
        .store
        .get_reward(&RewardCode::parse(CODE).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.reserved.unwrap().order_ref, winner);
    // The same order reserving again keeps it.
    assert_eq!(w.http(reserve(CODE, &winner)).await.status, 200);
}

#[tokio::test]
async fn the_reserving_order_redeems_the_code_and_another_order_cannot() {
    let w = enrolled_world().await;
    assert_eq!(w.http(reserve(CODE, "order-A")).await.status, 200);

    let resp = w
        .http(activity(&redeeming("e-other", Some("order-B"))))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["reward"]["status"], "refused");
    assert_eq!(resp.json()["reward"]["code_status"], "reserved");

    let resp = w
        .http(activity(&redeeming("e-mine", Some("order-A"))))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["reward"]["status"], "redeemed", "{}", resp.body);
    // Redeemed: nobody reserves it again.
    let again = w.http(reserve(CODE, "order-C")).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["code_status"], "redeemed");
}

#[tokio::test]
async fn an_order_without_order_ref_is_known_by_its_event_id() {
    let w = enrolled_world().await;
    assert_eq!(w.http(reserve(CODE, "e-77")).await.status, 200);
    let resp = w.http(activity(&redeeming("e-77", None))).await;
    assert_eq!(resp.json()["reward"]["status"], "redeemed", "{}", resp.body);
}

#[tokio::test]
async fn bad_reservations_are_refused_and_change_nothing() {
    let w = enrolled_world().await;
    let before = w.snapshot().await;
    let path = format!("/v1/rewards/{CODE}/reserve");
    let cases: Vec<(webhook::HttpRequest, u16)> = vec![
        // Unsigned, wrongly signed.
        (
            {
                let mut r = reserve(CODE, "o-1");
                r.headers.clear();
                r
            },
            401,
        ),
        (
            signed_post(
                &path,
                &json!({"order_ref": "o-1"}).to_string(),
                b"wrong",
                now(),
            ),
            401,
        ),
        // A replay five minutes later: the signature's time is stale.
        (
            signed_post(
                &path,
                &json!({"order_ref": "o-1"}).to_string(),
                WEBHOOK_KEY,
                now() - chrono::Duration::minutes(10),
            ),
            401,
        ),
        (signed_post(&path, "{not json", WEBHOOK_KEY, now()), 400),
        (signed_post(&path, "{}", WEBHOOK_KEY, now()), 400),
        (reserve(CODE, ""), 400),
        (reserve(CODE, &"x".repeat(201)), 400),
        (reserve(CODE, "a\u{7}b"), 400),
        (reserve("WB-2222-3333-4444", "o-1"), 404),
        (reserve("not-a-code", "o-1"), 404),
        (
            signed_post(&path, &"x".repeat(70 * 1024), WEBHOOK_KEY, now()),
            413,
        ),
        (signed_bodiless("GET", &path), 405),
    ];
    for (req, status) in cases {
        let resp = w.http(req).await;
        assert_eq!(resp.status, status, "{}", resp.body);
        assert_eq!(w.snapshot().await, before);
    }
}

#[tokio::test]
async fn another_customer_s_checkout_cannot_hold_the_code_and_renewals_end() {
    let w = enrolled_world().await;
    let before = w.snapshot().await;
    let stranger = w.http(reserve_as(CODE, "c-9999", "order-X")).await;
    assert_eq!(stranger.status, 409, "{}", stranger.body);
    assert_eq!(stranger.json()["status"], "other_customer");
    assert_eq!(w.snapshot().await, before, "nothing held");
    // No customer: 400 naming the field.
    let anonymous = signed_post(
        &format!("/v1/rewards/{CODE}/reserve"),
        &json!({ "order_ref": "order-Y" }).to_string(),
        WEBHOOK_KEY,
        now(),
    );
    let resp = w.http(anonymous).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(resp.json()["field"], "customer_id");
    // The owner's order renews its hold, up to two hours from its first reservation.
    assert_eq!(w.http(reserve(CODE, "order-A")).await.status, 200);
    let at = |minutes: i64| now() + chrono::Duration::minutes(minutes);
    let renew = |t| {
        signed_post(
            &format!("/v1/rewards/{CODE}/reserve"),
            &json!({ "order_ref": "order-A", "customer_id": CUSTOMER }).to_string(),
            WEBHOOK_KEY,
            t,
        )
    };
    let renewed = webhook::handle_http(&w.deps, renew(at(100)), at(100)).await;
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    assert_eq!(
        renewed.json()["until"],
        json!(at(120)),
        "the hold ends two hours after the first reservation"
    );
    let spent = webhook::handle_http(&w.deps, renew(at(130)), at(130)).await;
    assert_eq!(spent.status, 409, "{}", spent.body);
    assert_eq!(spent.json()["status"], "hold_spent");
}
