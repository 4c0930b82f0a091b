//! `POST /v1/activity`: reactivation, attribution, redemption, deduplication, bad input.

mod common;

use chrono::Duration;
use common::*;
use serde_json::json;
use shared::domain::customer::EmailStatus;
use shared::domain::experiment::Group;
use shared::domain::metrics::counter;
use shared::domain::sequence::{ExitReason, Status};
use shared::events::BusEvent;
use shared::signing::sign_webhook;

#[tokio::test]
async fn an_order_inside_the_window_wins_the_customer_back_and_redeems_the_code() {
    let (w, e) = world_with_enrollment().await;
    let mut body = order("evt-1", now() - Duration::minutes(1), "42.50");
    body["reward_code"] = json!(CODE.to_lowercase());
    let resp = w.http(activity(&body)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let j = resp.json();
    assert_eq!(j["reactivated"], true);
    assert_eq!(j["reward"]["status"], "redeemed");

    let after = w.enrollment(CUSTOMER).await;
    assert!(matches!(after.status, Status::WonBack { .. }));
    assert_eq!(after.due_at, None);
    assert_eq!(after.revenue_minor, 4250);
    let reward = w.store.all_rewards().pop().unwrap();
    assert_eq!(reward.uses_left, 0);

    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::REACTIVATED), 1);
    assert_eq!(t.get(counter::REVENUE), 4250);
    assert_eq!(t.get(&counter::reactivated_after_step(1)), 1);
    assert_eq!(t.get(counter::REDEEMED), 1);
    assert_eq!(t.get(counter::REWARD_COST), 1000);

    let events = w.bus.drain();
    assert!(events.iter().any(|ev| matches!(ev,
        BusEvent::CustomerReactivated { customer_id, revenue, reward_code: Some(code), enrollment_id, .. }
            if customer_id == CUSTOMER && revenue == "42.50" && code == CODE && *enrollment_id == e.id)));

    let p = w.profile(CUSTOMER).await;
    assert_eq!(p.order_count, 3);
    assert!(
        p.due_at.is_some_and(|d| d > now()),
        "a won-back customer is looked at again when they lapse: {p:?}"
    );
    assert!(
        (w.metrics.sum(
            "Reactivated",
            &[("Campaign", "example"), ("Variant", VARIANT)]
        ) - 1.0)
            .abs()
            < 1e-9
    );
    assert!((w.metrics.sum("RevenueRecovered", &[("Group", "treated")]) - 42.5).abs() < 1e-9);
    // Counts only: rates are derived where they are read, so counting reads no history.
    assert!(w
        .metrics
        .records()
        .iter()
        .all(|r| r.metrics.iter().all(|(n, _, _)| !n.ends_with("Rate"))));
}

#[tokio::test]
async fn a_replayed_event_answers_the_same_and_counts_once() {
    let w = enrolled_world().await;
    let body = order("evt-2", now(), "10.00");
    let first = w.http(activity(&body)).await;
    let second = w.http(activity(&body)).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["duplicate"], true);
    assert_eq!(second.json()["reactivated"], first.json()["reactivated"]);
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::REACTIVATED), 1);
    assert_eq!(t.get(counter::REVENUE), 1000);
    assert_eq!(w.profile(CUSTOMER).await.order_count, 3);
}

#[tokio::test]
async fn an_event_is_remembered_by_a_keyed_hash_that_holds_nothing_of_its_id() {
    let w = enrolled_world().await;
    // An id that carries the customer's, as Shopify's customers/update ids do.
    let event_id = format!("shopify:customer:{CUSTOMER}:1764000000");
    let body = order(&event_id, now(), "10.00");
    let first = w.http(activity(&body)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let kept = w.store.all_idempotency();
    assert!(!kept.is_empty());
    for (key, result) in &kept {
        let item = format!("{key} {result:?}");
        assert!(!item.contains(CUSTOMER), "{item}");
        assert!(!item.contains("shopify:customer"), "{item}");
    }
    // The replay is still recognised, and its answer names the event and the customer again.
    let again = w.http(activity(&body)).await;
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["event_id"], event_id);
    assert_eq!(again.json()["customer_id"], CUSTOMER);
    assert_eq!(w.profile(CUSTOMER).await.order_count, 3);
}

#[tokio::test]
async fn a_refused_code_still_records_the_order_and_says_why() {
    let w = enrolled_world().await;
    let mut first = order("evt-3", now() - Duration::minutes(5), "20.00");
    first["reward_code"] = json!(CODE);
    assert_eq!(
        w.http(activity(&first)).await.json()["reward"]["status"],
        "redeemed"
    );

    let mut again = order("evt-4", now(), "15.00");
    again["reward_code"] = json!(CODE);
    let resp = w.http(activity(&again)).await;
    assert_eq!(resp.status, 200);
    let j = resp.json();
    assert_eq!(j["reward"]["status"], "refused");
    assert_eq!(j["reward"]["code_status"], "redeemed");
    assert_eq!(w.profile(CUSTOMER).await.order_count, 4);
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::REDEEMED), 1, "a code never redeems twice");
    assert_eq!(t.get(counter::REVENUE_AFTER), 1500);

    let mut unknown = order("evt-5", now(), "5.00");
    unknown["reward_code"] = json!("WB-0000-0000-0000");
    assert_eq!(
        w.http(activity(&unknown)).await.json()["reward"]["code_status"],
        "unknown"
    );
}

#[tokio::test]
async fn an_expired_or_foreign_code_is_refused() {
    let w = enrolled_world().await;
    let mut foreign = order("evt-6", now(), "20.00");
    foreign["customer_id"] = json!("someone-else");
    foreign["reward_code"] = json!(CODE);
    let j = w.http(activity(&foreign)).await.json();
    assert_eq!(j["reward"]["code_status"], "other_customer");

    let later = now() + Duration::days(20);
    let mut expired = order("evt-7", later, "20.00");
    expired["reward_code"] = json!(CODE);
    let resp = webhook::handle_http(
        &w.deps,
        signed_post("/v1/activity", &expired.to_string(), WEBHOOK_KEY, later),
        later,
    )
    .await;
    assert_eq!(resp.json()["reward"]["code_status"], "expired");
    assert_eq!(w.store.all_rewards()[0].uses_left, 1);
}

#[tokio::test]
async fn an_order_after_the_window_is_no_reactivation() {
    let w = world();
    w.enrolled(
        CUSTOMER,
        Group::Treated,
        VARIANT,
        now() - Duration::days(31),
    )
    .await;
    let resp = w.http(activity(&order("evt-8", now(), "30.00"))).await;
    assert_eq!(resp.json()["reactivated"], false);
    // Any order stops the sequence; after the window it just does not count as a win.
    assert_eq!(
        w.enrollment(CUSTOMER).await.status,
        Status::Exited {
            reason: ExitReason::OrderedAfterWindow,
            at: now()
        }
    );
    assert_eq!(
        w.totals(VARIANT, Group::Treated)
            .await
            .get(counter::REACTIVATED),
        0
    );
    assert!(w.bus.drain().is_empty());
}

#[tokio::test]
async fn holdout_customers_who_come_back_count_for_the_holdout() {
    let w = world();
    w.holdout(CUSTOMER, now() - Duration::days(3)).await;
    w.enrolled("c-2", Group::Treated, VARIANT, now() - Duration::days(3))
        .await;
    w.http(activity(&order("evt-9", now(), "30.00"))).await;
    assert!(matches!(
        w.enrollment(CUSTOMER).await.status,
        Status::WonBack { .. }
    ));
    assert_eq!(
        w.totals("holdout", Group::Holdout)
            .await
            .get(counter::REACTIVATED),
        1
    );
    assert!(
        (w.metrics.sum(
            "Reactivated",
            &[("Variant", "holdout"), ("Group", "holdout")]
        ) - 1.0)
            .abs()
            < 1e-9
    );
}

#[tokio::test]
async fn a_login_is_no_win_and_changes_nothing_unless_the_campaign_says_still_with_us() {
    let w = enrolled_world().await;
    let body = json!({"event_id": "evt-10", "customer_id": CUSTOMER, "type": "login", "occurred_at": now().to_rfc3339()});
    assert_eq!(w.http(activity(&body)).await.json()["reactivated"], false);
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::REACTIVATED), 0);
    assert!(matches!(
        w.enrollment(CUSTOMER).await.status,
        Status::Active { .. }
    ));
    assert_eq!(w.profile(CUSTOMER).await.last_activity_at, Some(now()));
}

#[tokio::test]
async fn a_renewal_the_campaign_counts_as_still_with_us_stops_the_sequence_without_a_win() {
    let w = enrolled_world().await;
    let body = json!({"event_id": "evt-10", "customer_id": CUSTOMER, "type": "subscription_renewed", "occurred_at": now().to_rfc3339()});
    assert_eq!(w.http(activity(&body)).await.json()["reactivated"], false);
    assert_eq!(
        w.enrollment(CUSTOMER).await.status,
        Status::Exited {
            reason: ExitReason::StillWithUs,
            at: now()
        }
    );
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::REACTIVATED), 0);
    assert!(w.bus.drain().is_empty());
}

#[tokio::test]
async fn revenue_in_two_currencies_is_counted_per_currency_and_never_summed() {
    let w = enrolled_world().await;
    let mut sek = order("evt-sek", now(), "399.00");
    sek["amount"]["currency"] = json!("SEK");
    let resp = w.http(activity(&sek)).await;
    assert_eq!(resp.json()["reactivated"], true, "{}", resp.body);
    let later = now() + Duration::days(3);
    let body = order("evt-eur", later, "10.00");
    let resp = webhook::handle_http(
        &w.deps,
        signed_post("/v1/activity", &body.to_string(), WEBHOOK_KEY, later),
        later,
    )
    .await;
    assert_eq!(resp.status, 200);
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::REVENUE), 0, "no EUR order won them back");
    assert_eq!(t.get("revenue_minor#SEK"), 39_900);
    assert_eq!(t.get(counter::REVENUE_AFTER), 1000);
    assert_eq!(
        t.other_currencies(counter::REVENUE),
        [("SEK".to_string(), 39_900)].into()
    );
    assert_eq!(
        w.enrollment(CUSTOMER).await.revenue_minor,
        1000,
        "the enrollment's revenue is in the campaign currency only"
    );
}

#[tokio::test]
async fn a_renewal_the_campaign_counts_restarts_the_lapse_clock_and_a_login_it_does_not_count_does_not(
) {
    let w = world();
    let mut first = order("evt-20", now() - Duration::days(200), "25.00");
    first["customer_id"] = json!("sub-1");
    first["profile"] = json!({"email": "sub@example.com"});
    assert_eq!(w.http(activity(&first)).await.status, 200);
    // One order 200 days ago: lapsed, so due now.
    assert_eq!(w.profile("sub-1").await.due_at, Some(now()));
    // A login: the shipped campaign does not count it (still_with_us = ["subscription_renewed"]).
    let login = json!({"event_id": "evt-21", "customer_id": "sub-1", "type": "login", "occurred_at": now().to_rfc3339()});
    assert_eq!(w.http(activity(&login)).await.status, 200);
    let p = w.profile("sub-1").await;
    assert_eq!((p.still_with_us_at, p.due_at), (None, Some(now())));
    // A renewal: the quiet time counts from it, so the customer is looked at again when they
    // would turn at risk counted from the renewal (the campaign's earliest, 15.75 days).
    let renewal = json!({"event_id": "evt-22", "customer_id": "sub-1", "type": "subscription_renewed", "occurred_at": now().to_rfc3339()});
    assert_eq!(w.http(activity(&renewal)).await.status, 200);
    let p = w.profile("sub-1").await;
    assert_eq!(p.still_with_us_at, Some(now()));
    assert_eq!(
        p.due_at,
        Some(now() + Duration::days(15) + Duration::hours(18))
    );
}

#[tokio::test]
async fn orders_long_after_winning_back_count_as_still_active_once() {
    let w = enrolled_world().await;
    w.http(activity(&order("evt-11", now(), "10.00"))).await;
    for (i, days) in [(12, 100), (13, 120)] {
        let at = now() + Duration::days(days);
        let body = order(&format!("evt-{i}"), at, "10.00");
        let resp = webhook::handle_http(
            &w.deps,
            signed_post("/v1/activity", &body.to_string(), WEBHOOK_KEY, at),
            at,
        )
        .await;
        assert_eq!(resp.status, 200);
    }
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(t.get(counter::REVENUE_AFTER), 2000);
    assert_eq!(t.get(counter::STILL_ACTIVE_90D), 1);
    assert_eq!(w.enrollment(CUSTOMER).await.revenue_minor, 3000);
}

#[tokio::test]
async fn a_new_customer_gets_a_profile_due_when_they_would_become_at_risk() {
    let w = world();
    let mut body = order("evt-14", now(), "25.00");
    body["customer_id"] = json!("new-1");
    body["profile"] = json!({"email": "new@example.com", "locale": "da", "time_zone": "Europe/Copenhagen", "loyalty": "gold"});
    assert_eq!(w.http(activity(&body)).await.status, 200);
    let p = w.profile("new-1").await;
    assert_eq!(p.email.as_deref(), Some("new@example.com"));
    assert_eq!(p.currency.as_deref(), Some("EUR"));
    assert_eq!(p.email_status, EmailStatus::Subscribed);
    // The shipped campaign has an at-risk flow, so the customer is due when they would turn at
    // risk. Under the shipped prior a one-order customer's chance of ordering within 90 days is
    // already below at_risk_p_order, so that is the earliest the campaign allows: at_risk_fraction
    // (0.75) of min_days (21) after the order.
    use shared::domain::model::{summarize, Fit, Variant};
    let one = summarize(&[(now(), 2500.0)], now()).unwrap();
    assert!(Fit::prior(Variant::Mbgnbd).p_order_within(&one, 90.0) < 0.4);
    assert_eq!(
        p.due_at,
        Some(now() + Duration::days(15) + Duration::hours(18))
    );
}

#[tokio::test]
async fn an_unsigned_stale_or_forged_request_is_refused_and_changes_nothing() {
    let w = enrolled_world().await;
    let before = w.snapshot().await;
    let body = order("evt-15", now(), "10.00").to_string();
    let mut unsigned = signed_post("/v1/activity", &body, WEBHOOK_KEY, now());
    unsigned.headers.retain(|(k, _)| k != "winback-signature");
    let stale = signed_post(
        "/v1/activity",
        &body,
        WEBHOOK_KEY,
        now() - Duration::seconds(301),
    );
    let forged = signed_post("/v1/activity", &body, b"guess", now());
    for req in [unsigned, stale, forged] {
        let resp = w.http(req).await;
        assert_eq!(resp.status, 401);
        assert!(resp.json()["error"].as_str().unwrap().contains("ign"));
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn the_newer_of_two_rotated_keys_is_accepted_too() {
    let w = world();
    let body = order("evt-16", now(), "10.00").to_string();
    let mut req = signed_post("/v1/activity", &body, b"newer-key", now());
    req.headers[1].1 = sign_webhook(b"newer-key", now().timestamp(), body.as_bytes());
    assert_eq!(w.http(req).await.status, 200);
}

#[tokio::test]
async fn a_wrong_typed_or_missing_nested_field_is_refused_by_its_path() {
    let w = enrolled_world().await;
    let before = w.snapshot().await;
    let cases = [
        ("amount.value", json!({"value": true, "currency": "EUR"})),
        (
            "amount.currency",
            json!({"value": "10.00", "currency": 978}),
        ),
        ("amount.currency", json!({"value": "10.00"})),
    ];
    for (field, amount) in cases {
        let mut body = order("evt-17b", now(), "10.00");
        body["amount"] = amount;
        let resp = w.http(activity(&body)).await;
        assert_eq!(resp.status, 400, "{field}");
        let answer = resp.json();
        assert_eq!(answer["field"], field);
        let message = answer["error"].as_str().unwrap_or_default().to_string();
        assert!(message.starts_with(field), "{message}");
    }
    let mut body = order("evt-17b", now(), "10.00");
    body["profile"] = json!({"locale": ["sv"]});
    let resp = w.http(activity(&body)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["field"], "profile.locale");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_missing_field_is_named_and_changes_nothing() {
    let w = enrolled_world().await;
    let before = w.snapshot().await;
    let mut body = order("evt-17", now(), "10.00");
    body.as_object_mut().unwrap().remove("occurred_at");
    let resp = w.http(activity(&body)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["field"], "occurred_at");
    let resp = w
        .http(signed_post(
            "/v1/activity",
            "{\"event_id\":",
            WEBHOOK_KEY,
            now(),
        ))
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["field"], "body");
    assert_eq!(w.snapshot().await, before);
    // The refused event id stays free for the corrected request.
    body["occurred_at"] = json!(now().to_rfc3339());
    assert_eq!(w.http(activity(&body)).await.status, 200);
}

#[tokio::test]
async fn a_body_over_64_kb_is_refused_with_413() {
    let w = world();
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let resp = w
        .http(signed_post("/v1/activity", &big, WEBHOOK_KEY, now()))
        .await;
    assert_eq!(resp.status, 413);
}

#[tokio::test]
async fn an_order_wakes_a_sunset_customer() {
    let w = enrolled_world().await;
    let mut p = w.profile(CUSTOMER).await;
    p.sunset_at = Some(now() - Duration::days(10));
    shared::ports::ProfileStore::save_profile(w.store.as_ref(), &p)
        .await
        .unwrap();
    assert_eq!(
        w.http(activity(&order("evt-30", now(), "19.00")))
            .await
            .status,
        200
    );
    assert_eq!(w.profile(CUSTOMER).await.sunset_at, None);
}

#[tokio::test]
async fn a_birthday_in_the_profile_is_stored_and_one_that_is_not_a_date_is_refused_by_name() {
    let w = world();
    let mut body = order("evt-b1", now(), "25.00");
    body["customer_id"] = json!("bday-1");
    body["profile"] =
        json!({"email": "b@example.com", "time_zone": "UTC", "birthday": "1990-02-30"});
    let before = w.snapshot().await;
    let resp = w.http(activity(&body)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["field"], "profile.birthday");
    assert!(resp.body.contains("1990-02-30"), "{}", resp.body);
    assert_eq!(w.snapshot().await, before, "nothing written");

    // 22 November: a birthday on 2 December makes the profile due at its midnight, before the
    // at-risk look 45 days out.
    body["profile"]["birthday"] = json!("--12-02");
    assert_eq!(w.http(activity(&body)).await.status, 200);
    let p = w.profile("bday-1").await;
    assert_eq!(
        p.birthday.map(|b| b.to_string()).as_deref(),
        Some("--12-02")
    );
    assert_eq!(
        p.due_at,
        Some(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 12, 2, 0, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn a_visit_to_the_cancellation_page_makes_an_active_customer_at_risk_and_due_now() {
    let w = world();
    let mut body = order("evt-pv1", now() - Duration::days(3), "25.00");
    body["customer_id"] = json!("pv-1");
    body["profile"] = json!({"email": "pv@example.com", "time_zone": "UTC"});
    assert_eq!(w.http(activity(&body)).await.status, 200);
    assert!(
        w.profile("pv-1").await.due_at > Some(now()),
        "active: due later"
    );

    // Another page is activity, no signal.
    let view = |id: &str, kind: serde_json::Value| {
        json!({"event_id": id, "customer_id": "pv-1", "type": "page_view",
               "occurred_at": now().to_rfc3339(), "page_kind": kind})
    };
    assert_eq!(
        w.http(activity(&view("evt-pv2", json!("other"))))
            .await
            .status,
        200
    );
    assert!(w.profile("pv-1").await.due_at > Some(now()));

    // The cancellation page: an early signal; the scheduler looks at them now.
    assert_eq!(
        w.http(activity(&view("evt-pv3", json!("cancellation"))))
            .await
            .status,
        200
    );
    let p = w.profile("pv-1").await;
    assert_eq!(p.signal_page_viewed_at, Some(now()));
    assert_eq!(p.due_at, Some(now()));
}

#[tokio::test]
async fn a_page_view_without_a_known_page_kind_is_refused_by_name_and_changes_nothing() {
    let w = world();
    let before = w.snapshot().await;
    let mut body = json!({"event_id": "evt-pv9", "customer_id": "pv-9", "type": "page_view",
                          "occurred_at": now().to_rfc3339()});
    let resp = w.http(activity(&body)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["field"], "page_kind");
    body["page_kind"] = json!("pricing");
    let resp = w.http(activity(&body)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["field"], "page_kind");
    assert!(
        resp.body.contains("terms, cancellation or other"),
        "{}",
        resp.body
    );
    // page_kind on another type of activity is refused too.
    let mut o = order("evt-pv10", now(), "5.00");
    o["page_kind"] = json!("terms");
    assert_eq!(w.http(activity(&o)).await.json()["field"], "page_kind");
    assert_eq!(w.snapshot().await, before, "nothing written");
}

#[tokio::test]
async fn an_upcoming_renewal_makes_the_customer_due_at_its_notice_and_a_bad_one_is_refused() {
    let w = world();
    let mut body = order("evt-rn1", now() - Duration::days(3), "25.00");
    body["customer_id"] = json!("rn-1");
    body["profile"] =
        json!({"email": "rn@example.com", "time_zone": "UTC", "renewal_due_at": "next week"});
    let before = w.snapshot().await;
    let resp = w.http(activity(&body)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["field"], "profile.renewal_due_at");
    assert_eq!(w.snapshot().await, before, "nothing written");

    // A renewal in 20 days: looked at when its 14-day notice starts, 6 days from now.
    let renewal = now() + Duration::days(20);
    body["profile"]["renewal_due_at"] = json!(renewal.to_rfc3339());
    assert_eq!(w.http(activity(&body)).await.status, 200);
    let p = w.profile("rn-1").await;
    assert_eq!(p.renewal_due_at, Some(renewal));
    assert_eq!(p.due_at, Some(now() + Duration::days(6)));

    // Within the notice: at risk, due now.
    let mut again = order("evt-rn2", now() - Duration::days(2), "25.00");
    again["customer_id"] = json!("rn-1");
    again["profile"] = json!({"renewal_due_at": (now() + Duration::days(10)).to_rfc3339()});
    assert_eq!(w.http(activity(&again)).await.status, 200);
    assert_eq!(w.profile("rn-1").await.due_at, Some(now()));
}

#[tokio::test]
async fn an_older_profile_update_arriving_after_a_newer_one_changes_nothing() {
    let w = world();
    w.enrolled_customer().await;
    let update = |event_id: &str, day: u32, email: &str| {
        activity(&serde_json::json!({
            "event_id": event_id,
            "customer_id": CUSTOMER,
            "type": "login",
            "occurred_at": format!("2026-11-{day:02}T09:00:00Z"),
            "profile": {"email": email, "first_name": format!("Name{day}")},
        }))
    };
    // The shop's update of the 22nd, then its update of the 20th, delayed.
    assert_eq!(
        w.http(update("u-22", 22, "new@example.com")).await.status,
        200
    );
    assert_eq!(
        w.http(update("u-20", 20, "old@example.com")).await.status,
        200
    );
    let p = w.profile(CUSTOMER).await;
    assert_eq!(p.email.as_deref(), Some("new@example.com"));
    assert_eq!(p.first_name.as_deref(), Some("Name22"));
    // One of the 21st changes nothing either; the customer's newest details stay.
    assert_eq!(
        w.http(update("u-21", 21, "mid@example.com")).await.status,
        200
    );
    assert_eq!(
        w.profile(CUSTOMER).await.email.as_deref(),
        Some("new@example.com")
    );
    // A newer one (later on the 22nd) applies.
    let newer = activity(&serde_json::json!({
        "event_id": "u-22b",
        "customer_id": CUSTOMER,
        "type": "login",
        "occurred_at": "2026-11-22T10:00:00Z",
        "profile": {"email": "newest@example.com"},
    }));
    assert_eq!(w.http(newer).await.status, 200);
    assert_eq!(
        w.profile(CUSTOMER).await.email.as_deref(),
        Some("newest@example.com")
    );
}
