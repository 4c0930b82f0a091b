//! Shopify, WooCommerce and Stripe webhooks: fixtures in each platform's documented payload
//! shape, signed by tests/fixtures/platforms/sign.py (Stripe's with Stripe's own library).

mod common;

use chrono::Duration;
use common::*;
use serde_json::{json, Value};
use shared::domain::customer::{EmailStatus, Profile};
use shared::domain::experiment::Group;
use shared::domain::money::Money;
use shared::domain::sequence::{ExitReason, Status};
use shared::ports::ProfileStore;
use test_support::requests::base64_hmac;
use webhook::HttpRequest;

const SHOPIFY_CUSTOMER: &str = "115310627314723954";
const WOO_CUSTOMER: &str = "26";
const STRIPE_CUSTOMER: &str = "cus_NffrFeUfNV2Hib";

/// A delivery seen before answers as a duplicate and changes nothing.
async fn replay_changes_nothing(w: &World, req: HttpRequest) {
    let before = w.snapshot().await;
    assert_eq!(ok(w, req).await["duplicate"], true);
    assert_eq!(w.snapshot().await, before);
}

/// A delivery the product does not act on answers `ignored` and changes nothing.
async fn ignored_changes_nothing(w: &World, req: HttpRequest) {
    let before = w.snapshot().await;
    assert_eq!(ok(w, req).await["status"], "ignored");
    assert_eq!(w.snapshot().await, before);
}

/// A Shopify delivery of `body` on `topic` with the signature header `sig` (none if `None`).
fn shopify_signed(topic: &str, sig: Option<&str>, body: Vec<u8>) -> HttpRequest {
    let at = now().to_rfc3339();
    let mut headers = vec![
        ("X-Shopify-Topic", topic),
        ("X-Shopify-Shop-Domain", SHOPIFY_SHOP),
        ("X-Shopify-Triggered-At", &at),
    ];
    headers.extend(sig.map(|s| ("X-Shopify-Hmac-Sha256", s)));
    platform_post("shopify", &headers, body)
}

/// Posts, expects 200, and returns the body.
async fn ok(w: &World, req: HttpRequest) -> Value {
    let resp = w.http(req).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

/// Posts, expects `status`, and checks that nothing changed.
async fn refused(w: &World, req: HttpRequest, status: u16) -> Value {
    let before = w.snapshot().await;
    let resp = w.http(req).await;
    assert_eq!(resp.status, status, "{}", resp.body);
    assert_eq!(
        w.snapshot().await,
        before,
        "a refused delivery changed nothing"
    );
    assert!(w.bus.drain().is_empty());
    resp.json()
}

async fn wins_back(w: &World, customer: &str, req: HttpRequest, revenue_minor: i64) {
    let body = ok(w, req).await;
    assert_eq!(body["status"], "recorded");
    assert_eq!(body["customer_id"], customer);
    assert_eq!(body["reactivated"], true, "{body}");
    assert!(matches!(
        w.enrollment(customer).await.status,
        Status::WonBack { .. }
    ));
    let totals = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(totals.get("reactivated"), 1);
    assert_eq!(totals.get("revenue_minor"), revenue_minor);
    let events = w.bus.drain();
    assert!(events
        .iter()
        .any(|e| e.detail_type() == "CustomerReactivated"));
}

#[tokio::test]
async fn a_shopify_shop_wins_a_customer_back_with_the_reward_code() {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    wins_back(
        &w,
        SHOPIFY_CUSTOMER,
        shopify("orders/paid", "shopify_orders_paid.json"),
        3850,
    )
    .await;
    let p = w.profile(SHOPIFY_CUSTOMER).await;
    assert_eq!(p.order_count, 3);
    assert_eq!(p.email.as_deref(), Some("john@example.com"));
    assert_eq!(p.first_name.as_deref(), Some("John"));
    assert_eq!(p.locale.as_deref(), Some("sv-SE"));
    let basket = &p.orders.last().unwrap().lines;
    assert_eq!(basket.len(), 1);
    assert_eq!(basket[0].product, "Ethiopia Yirgacheffe 500 g");
    assert_eq!(basket[0].price, Some(Money(4200)));
    assert_eq!(p.email_status, EmailStatus::Subscribed);
    let totals = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(
        totals.get("redeemed"),
        1,
        "the discount code redeemed the reward"
    );

    // orders/create of the same order (or Shopify's retry) counts nothing again.
    replay_changes_nothing(&w, shopify("orders/create", "shopify_orders_paid.json")).await;
}

/// The win taken back: no longer counted as reactivated, its revenue off, the enrollment
/// ended as refunded, `WinTakenBack` published; the redeemed code stays redeemed.
async fn win_taken_back(w: &World, customer: &str, req: HttpRequest) {
    let body = ok(w, req).await;
    assert_eq!(body["status"], "recorded", "{body}");
    assert!(matches!(
        w.enrollment(customer).await.status,
        Status::Exited {
            reason: ExitReason::Refunded,
            ..
        }
    ));
    let totals = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(totals.get("reactivated"), 0, "the win no longer counts");
    assert_eq!(totals.get("wins_refunded"), 1);
    assert_eq!(totals.get("revenue_minor"), 0, "its revenue is off");
    let events = w.bus.drain();
    assert!(events.iter().any(|e| e.detail_type() == "WinTakenBack"));
    for r in w.store.all_rewards() {
        if r.redeemed_at.is_some() {
            assert_eq!(r.uses_left, 0, "a refunded code is not re-enabled");
        }
    }
}

#[tokio::test]
async fn a_shopify_refund_takes_its_amount_and_a_cancellation_takes_the_win_back() {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    wins_back(
        &w,
        SHOPIFY_CUSTOMER,
        shopify("orders/paid", "shopify_orders_paid.json"),
        3850,
    )
    .await;
    let ltv = w.profile(SHOPIFY_CUSTOMER).await.lifetime_value;

    // A partial refund (10.00 succeeded, 5.00 failed) takes 10.00 off; the win stands.
    let body = ok(
        &w,
        shopify("orders/updated", "shopify_orders_updated_refund.json"),
    )
    .await;
    assert_eq!(body["status"], "recorded", "{body}");
    let totals = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(totals.get("reactivated"), 1);
    assert_eq!(totals.get("revenue_minor"), 2850);
    assert_eq!(totals.get("refunded_minor"), 1000);
    assert_eq!(
        w.profile(SHOPIFY_CUSTOMER).await.lifetime_value.0,
        ltv.0 - 1000
    );
    replay_changes_nothing(
        &w,
        shopify("orders/updated", "shopify_orders_updated_refund.json"),
    )
    .await;

    // Cancelled: the rest goes, and the win with it.
    win_taken_back(
        &w,
        SHOPIFY_CUSTOMER,
        shopify("orders/cancelled", "shopify_orders_cancelled.json"),
    )
    .await;
    assert_eq!(
        w.totals(VARIANT, Group::Treated).await.get("redeemed"),
        1,
        "the code stays redeemed"
    );
    let p = w.profile(SHOPIFY_CUSTOMER).await;
    assert_eq!(p.order_count, 2, "the cancelled order no longer counts");
    assert_eq!(p.lifetime_value.0, ltv.0 - 3850);
    replay_changes_nothing(
        &w,
        shopify("orders/cancelled", "shopify_orders_cancelled.json"),
    )
    .await;

    // An order's body is no refund: refused, as a refund's body is no order.
    refused(
        &w,
        shopify("refunds/create", "shopify_orders_updated_refund.json"),
        400,
    )
    .await;
    refused(
        &w,
        shopify("orders/updated", "shopify_refunds_create.json"),
        400,
    )
    .await;
}

/// What is refunded of the Shopify fixture order in the profile and the campaign's counters.
async fn shopify_refunded(w: &World) -> (i64, i64, i64) {
    let totals = w.totals(VARIANT, Group::Treated).await;
    let p = w.profile(SHOPIFY_CUSTOMER).await;
    let order = p
        .orders
        .iter()
        .find(|o| o.order_id.as_deref() == Some("820982911946154508"));
    (
        totals.get("refunded_minor"),
        totals.get("revenue_minor"),
        order.map_or(-1, |o| o.refunded.0),
    )
}

#[tokio::test]
async fn a_shopify_refunds_create_finds_the_customer_by_the_order_and_counts_once_with_orders_updated(
) {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    wins_back(
        &w,
        SHOPIFY_CUSTOMER,
        shopify("orders/paid", "shopify_orders_paid.json"),
        3850,
    )
    .await;
    let owners = w.store.all_order_owners();
    assert_eq!(owners.len(), 1, "the order is remembered: {owners:?}");
    assert_eq!(
        (owners[0].source.as_str(), owners[0].order_id.as_str()),
        ("shopify", "820982911946154508")
    );
    assert_eq!(owners[0].customer_id, SHOPIFY_CUSTOMER);
    assert!(owners[0].expires_at > now() + Duration::days(700));

    // refunds/create names only the order: its 10.00 come off that order's customer.
    let body = ok(&w, shopify("refunds/create", "shopify_refunds_create.json")).await;
    assert_eq!(body["status"], "recorded", "{body}");
    assert_eq!(body["customer_id"], SHOPIFY_CUSTOMER);
    assert_eq!(shopify_refunded(&w).await, (1000, 2850, 1000));
    replay_changes_nothing(&w, shopify("refunds/create", "shopify_refunds_create.json")).await;

    // The orders/updated that follows carries the same refund: nothing more comes off.
    let before = w.snapshot().await;
    let body = ok(
        &w,
        shopify("orders/updated", "shopify_orders_updated_refund.json"),
    )
    .await;
    assert_eq!(body["status"], "recorded", "{body}");
    assert_eq!(shopify_refunded(&w).await, (1000, 2850, 1000));
    assert_eq!(w.snapshot().await.0, before.0, "the profile is as it was");

    // The rest, refunded by its line item: the whole order is refunded, the win taken back.
    win_taken_back(
        &w,
        SHOPIFY_CUSTOMER,
        shopify("refunds/create", "shopify_refunds_create_rest.json"),
    )
    .await;
    assert_eq!(
        w.totals(VARIANT, Group::Treated)
            .await
            .get("refunded_minor"),
        3850
    );
}

#[tokio::test]
async fn a_shopify_refund_by_orders_updated_first_is_not_taken_again_by_refunds_create() {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    wins_back(
        &w,
        SHOPIFY_CUSTOMER,
        shopify("orders/paid", "shopify_orders_paid.json"),
        3850,
    )
    .await;
    ok(
        &w,
        shopify("orders/updated", "shopify_orders_updated_refund.json"),
    )
    .await;
    assert_eq!(shopify_refunded(&w).await, (1000, 2850, 1000));
    let body = ok(&w, shopify("refunds/create", "shopify_refunds_create.json")).await;
    assert_eq!(body["status"], "recorded", "{body}");
    assert_eq!(
        shopify_refunded(&w).await,
        (1000, 2850, 1000),
        "the refund orders/updated brought is not taken off twice"
    );
}

#[tokio::test]
async fn a_shopify_refund_of_an_order_not_known_here_is_ignored() {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    let before = w.snapshot().await;
    let body = ok(&w, shopify("refunds/create", "shopify_refunds_create.json")).await;
    assert_eq!(body["status"], "ignored");
    assert!(
        body["reason"].as_str().unwrap().contains("not known"),
        "{body}"
    );
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn erasure_forgets_whose_orders_they_were() {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    ok(&w, shopify("orders/paid", "shopify_orders_paid.json")).await;
    assert_eq!(w.store.all_order_owners().len(), 1);
    let resp = w
        .http(signed_bodiless(
            "DELETE",
            &format!("/v1/customers/{SHOPIFY_CUSTOMER}"),
        ))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(w.store.all_order_owners().is_empty());
    // The customer's refund finds no one now; nor does their order, replayed, list them again.
    let body = ok(&w, shopify("refunds/create", "shopify_refunds_create.json")).await;
    assert_eq!(body["status"], "ignored");
    assert!(w.store.all_order_owners().is_empty());
}

#[tokio::test]
async fn a_woocommerce_partial_refund_and_a_refunded_order() {
    let w = enrolled_world_of(WOO_CUSTOMER).await;
    wins_back(
        &w,
        WOO_CUSTOMER,
        woocommerce("order.created", "woocommerce_order_created.json"),
        2935,
    )
    .await;
    ok(
        &w,
        woocommerce(
            "order.updated",
            "woocommerce_order_updated_partial_refund.json",
        ),
    )
    .await;
    let totals = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(totals.get("revenue_minor"), 2000);
    assert_eq!(totals.get("reactivated"), 1);
    win_taken_back(
        &w,
        WOO_CUSTOMER,
        woocommerce("order.updated", "woocommerce_order_refunded.json"),
    )
    .await;
    // The same refunded order delivered again changes nothing.
    replay_changes_nothing(
        &w,
        woocommerce("order.updated", "woocommerce_order_refunded.json"),
    )
    .await;
}

#[tokio::test]
async fn a_stripe_refunded_charge_takes_the_invoice_win_back() {
    let w = enrolled_world_of(STRIPE_CUSTOMER).await;
    wins_back(
        &w,
        STRIPE_CUSTOMER,
        stripe("stripe_invoice_paid.json"),
        1900,
    )
    .await;
    win_taken_back(&w, STRIPE_CUSTOMER, stripe("stripe_charge_refunded.json")).await;
    assert_eq!(w.profile(STRIPE_CUSTOMER).await.order_count, 2);
    replay_changes_nothing(&w, stripe("stripe_charge_refunded.json")).await;
}

#[tokio::test]
async fn an_unpaid_shopify_order_waits_for_orders_paid() {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    let before = w.snapshot().await;
    ignored_changes_nothing(
        &w,
        shopify("orders/create", "shopify_orders_create_pending.json"),
    )
    .await;
    ignored_changes_nothing(&w, shopify("products/update", "shopify_orders_paid.json")).await;
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn shopify_consent_withdrawn_unsubscribes_and_never_wins_back() {
    let w = world();
    let id = "706405506930370084";
    w.enrolled(id, Group::Treated, VARIANT, now() - Duration::days(1))
        .await;
    let body = ok(
        &w,
        shopify("customers/update", "shopify_customers_update.json"),
    )
    .await;
    assert_eq!(body["reactivated"], false);
    let p = w.profile(id).await;
    assert_eq!(p.email_status, EmailStatus::Unsubscribed);
    assert_eq!(p.email.as_deref(), Some("bob@biller.com"));
    assert_eq!(p.first_name.as_deref(), Some("Bob"));
    assert!(!matches!(
        w.enrollment(id).await.status,
        Status::WonBack { .. }
    ));

    // The consent topic of API versions from 2025-01 on does the same for a new customer.
    let w = world();
    let body = ok(
        &w,
        shopify(
            "customers/email_marketing_consent_update",
            "shopify_customers_email_marketing_consent_update.json",
        ),
    )
    .await;
    assert_eq!(body["status"], "recorded");
    assert_eq!(w.profile(id).await.email_status, EmailStatus::Unsubscribed);
}

#[tokio::test]
async fn shopify_never_resubscribes_a_customer_who_unsubscribed() {
    let w = world();
    let mut p = Profile::new(SHOPIFY_CUSTOMER.parse().unwrap());
    p.email_status = EmailStatus::Unsubscribed;
    w.store.save_profile(&p).await.unwrap();
    // The order's customer says "subscribed": the order counts, the unsubscribe stays.
    ok(&w, shopify("orders/paid", "shopify_orders_paid.json")).await;
    let p = w.profile(SHOPIFY_CUSTOMER).await;
    assert_eq!(p.order_count, 1);
    assert_eq!(p.email_status, EmailStatus::Unsubscribed);
}

#[tokio::test]
async fn shopify_privacy_topics_erase_and_are_acknowledged() {
    let w = world();
    w.enrolled("191167", Group::Treated, VARIANT, now() - Duration::days(1))
        .await;
    let body = ok(
        &w,
        shopify("customers/redact", "shopify_customers_redact.json"),
    )
    .await;
    assert_eq!(body["status"], "erased");
    let p = w.profile("191167").await;
    assert!(p.is_tombstone(), "{p:?}");
    assert!(
        w.bus.drain().iter().any(|e| matches!(
            e,
            shared::events::BusEvent::CustomerErased { customer_id, .. } if customer_id == "191167"
        )),
        "a redact is announced on the bus as CustomerErased"
    );
    assert!(
        w.store.all_enrollments().is_empty(),
        "the enrollment is deleted"
    );

    let before = w.snapshot().await;
    let body = ok(
        &w,
        shopify(
            "customers/data_request",
            "shopify_customers_data_request.json",
        ),
    )
    .await;
    assert_eq!(body["status"], "data_request_logged");
    let body = ok(&w, shopify("shop/redact", "shopify_shop_redact.json")).await;
    assert_eq!(body["status"], "shop_redact_logged");
    assert_eq!(w.snapshot().await, before);

    let w = world();
    let body = ok(
        &w,
        shopify("customers/redact", "shopify_customers_redact.json"),
    )
    .await;
    assert_eq!(body["status"], "unknown_customer");
}

#[tokio::test]
async fn a_woocommerce_shop_wins_a_customer_back_with_the_coupon() {
    let w = enrolled_world_of(WOO_CUSTOMER).await;
    wins_back(
        &w,
        WOO_CUSTOMER,
        woocommerce("order.created", "woocommerce_order_created.json"),
        2935,
    )
    .await;
    assert_eq!(w.totals(VARIANT, Group::Treated).await.get("redeemed"), 1);
    let p = w.profile(WOO_CUSTOMER).await;
    assert_eq!(p.email.as_deref(), Some("john.doe@example.com"));
    let line = &p.orders.last().unwrap().lines[0];
    assert_eq!((line.product.as_str(), line.quantity), ("Woo Single #1", 2));
    assert_eq!(line.price, Some(Money(300)), "a price sent as a number");
    // Each later order.updated of the same order is a duplicate.
    replay_changes_nothing(
        &w,
        woocommerce("order.updated", "woocommerce_order_created.json"),
    )
    .await;
}

#[tokio::test]
async fn woocommerce_guests_unpaid_orders_and_pings() {
    let w = world();
    let body = ok(
        &w,
        woocommerce("order.updated", "woocommerce_order_updated_guest.json"),
    )
    .await;
    let id = body["customer_id"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("woo-guest-") && id.len() == "woo-guest-".len() + 16,
        "{id}"
    );
    assert!(!id.contains('@'));
    // A keyed hash of the address with the deployment's pseudonym key, not the unkeyed SHA-256
    // anyone could compute from a guessed address.
    assert_eq!(
        id,
        w.deps
            .keys
            .pseudonym
            .woocommerce_guest("guest.buyer@example.com")
    );
    let unkeyed = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"guest.buyer@example.com"))
    };
    assert_ne!(id, format!("woo-guest-{}", &unkeyed[..16]));
    let p = w.profile(&id).await;
    // The domain is stored in lower case (shared::domain::hygiene::EmailAddress), the local part as sent.
    assert_eq!(p.email.as_deref(), Some("Guest.Buyer@example.com"));
    assert_eq!(p.order_count, 1);

    let before = w.snapshot().await;
    ignored_changes_nothing(
        &w,
        woocommerce("order.created", "woocommerce_order_created_pending.json"),
    )
    .await;
    let ping = platform_post("woocommerce", &[], b"webhook_id=12".to_vec());
    assert_eq!(ok(&w, ping).await["status"], "ping");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_stripe_account_wins_a_subscriber_back() {
    let w = enrolled_world_of(STRIPE_CUSTOMER).await;
    wins_back(
        &w,
        STRIPE_CUSTOMER,
        stripe("stripe_invoice_paid.json"),
        1900,
    )
    .await;
    let p = w.profile(STRIPE_CUSTOMER).await;
    assert_eq!(p.email.as_deref(), Some("jenny.rosen@example.com"));
    assert_eq!(p.first_name.as_deref(), Some("Jenny"));
    let line = &p.orders.last().unwrap().lines[0];
    assert_eq!(line.product, "1 × Coffee subscription (at €19.00 / month)");
    assert_eq!(line.price, Some(Money(1900)));
    assert_eq!(p.order_count, 3);
    replay_changes_nothing(&w, stripe("stripe_invoice_paid.json")).await;
}

#[tokio::test]
async fn stripe_cancellations_and_upcoming_renewals_are_signals_not_win_backs() {
    let w = world();
    let enrolled_at = now() - Duration::days(1);
    w.enrolled("cus_OtherCustomer01", Group::Treated, VARIANT, enrolled_at)
        .await;
    w.holdout("cus_ThirdCustomer1", enrolled_at).await;
    let body = ok(&w, stripe("stripe_customer_subscription_deleted.json")).await;
    assert_eq!(body["reactivated"], false);
    assert!(w
        .profile("cus_OtherCustomer01")
        .await
        .tags
        .contains("subscription:cancelled"));
    let body = ok(&w, stripe("stripe_customer_subscription_updated.json")).await;
    assert_eq!(body["reactivated"], false);
    let body = ok(&w, stripe("stripe_invoice_upcoming.json")).await;
    assert_eq!(body["reactivated"], false);
    let p = w.profile("cus_ThirdCustomer1").await;
    assert!(p.tags.contains("subscription:cancelled"));
    assert!(p.tags.contains("subscription:renewal_upcoming"));
    for id in ["cus_OtherCustomer01", "cus_ThirdCustomer1"] {
        assert!(!matches!(
            w.enrollment(id).await.status,
            Status::WonBack { .. }
        ));
    }
    assert_eq!(
        w.totals(VARIANT, Group::Treated).await.get("reactivated"),
        0
    );
}

#[tokio::test]
async fn bad_platform_deliveries_get_a_4xx_and_change_nothing() {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    w.holdout(STRIPE_CUSTOMER, now() - Duration::days(1)).await;

    // Wrong or missing signatures, a tampered body.
    let (body, _) = platform_fixture("shopify_orders_paid.json");
    let forged = base64_hmac(b"not-the-secret", &body);
    refused(
        &w,
        shopify_signed("orders/paid", Some(&forged), body.clone()),
        401,
    )
    .await;
    refused(&w, shopify_signed("orders/paid", None, body.clone()), 401).await;
    refused(
        &w,
        shopify_signed("orders/paid", Some("%%%"), body.clone()),
        401,
    )
    .await;
    let mut tampered = shopify("orders/paid", "shopify_orders_paid.json");
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("38.50", "3850.00")
        .into_bytes();
    refused(&w, tampered, 401).await;
    let mut wrong = woocommerce("order.created", "woocommerce_order_created.json");
    wrong.headers.retain(|(k, _)| k != "X-WC-Webhook-Signature");
    refused(&w, wrong, 401).await;
    let mut stripe_forged = stripe("stripe_invoice_paid.json");
    stripe_forged.body.push(b' ');
    refused(&w, stripe_forged, 401).await;

    // Replays: Stripe's signature older than 300 s; a Shopify body whose change is 8 days old.
    let late = webhook::handle_http(
        &w.deps,
        stripe("stripe_invoice_paid.json"),
        now() + Duration::seconds(301),
    )
    .await;
    assert_eq!(late.status, 401, "{}", late.body);
    let mut old: Value =
        serde_json::from_slice(&platform_fixture("shopify_orders_paid.json").0).unwrap();
    old["id"] = json!(1);
    old["updated_at"] = json!((now() - Duration::days(8)).to_rfc3339());
    let old = old.to_string().into_bytes();
    let sig = base64_hmac(SHOPIFY_SECRET, &old);
    let body = refused(&w, shopify_signed("orders/paid", Some(&sig), old), 401).await;
    assert!(body["error"].as_str().unwrap().contains("replay"), "{body}");

    // Signed but malformed: not JSON, no customer id, a total that is no amount.
    for (topic, raw) in [
        ("orders/paid", "{not json".to_string()),
        ("customers/redact", json!({"shop_id": 1}).to_string()),
        ("orders/paid", json!({"id": 5, "updated_at": now().to_rfc3339(), "financial_status": "paid", "customer": {"id": 9}, "total_price": "lots", "currency": "EUR"}).to_string()),
    ] {
        let sig = base64_hmac(SHOPIFY_SECRET, raw.as_bytes());
        refused(&w, shopify_signed(topic, Some(&sig), raw.into_bytes()), 400).await;
    }
    let raw = br#"{"id": "evt_1", "type": "invoice.paid", "created": 1795342400, "data": {"object": {"customer": "cus_NffrFeUfNV2Hib", "currency": "euro", "amount_paid": 100}}}"#;
    let sig = shared::signing::sign_webhook(STRIPE_SECRET, now().timestamp(), raw);
    refused(
        &w,
        platform_post("stripe", &[("Stripe-Signature", &sig)], raw.to_vec()),
        400,
    )
    .await;

    // Oversized, and a platform this deployment has no secret for.
    let big = vec![b' '; webhook::PLATFORM_MAX_BODY_BYTES + 1];
    let sig = base64_hmac(SHOPIFY_SECRET, &big);
    refused(&w, shopify_signed("orders/paid", Some(&sig), big), 413).await;
    let mut unconnected = world();
    unconnected.deps.keys.platforms.stripe.clear();
    unconnected
        .enrolled(
            STRIPE_CUSTOMER,
            Group::Treated,
            VARIANT,
            now() - Duration::days(1),
        )
        .await;
    // Answered exactly as a wrong signature on a connected platform: a prober learns nothing.
    let body = refused(&unconnected, stripe("stripe_invoice_paid.json"), 401).await;
    let mut forged = stripe("stripe_invoice_paid.json");
    forged.body.push(b' ');
    assert_eq!(refused(&w, forged, 401).await, body);
    refused(&w, platform_post("magento", &[], b"{}".to_vec()), 404).await;
    refused(
        &w,
        HttpRequest {
            method: "GET".into(),
            ..stripe("stripe_invoice_paid.json")
        },
        405,
    )
    .await;
}

/// A Shopify delivery of `body` on `topic`, signed with the shop's secret, from `shop`, triggered
/// at `at`.
fn shopify_from(
    topic: &str,
    shop: &str,
    at: chrono::DateTime<chrono::Utc>,
    body: &Value,
) -> HttpRequest {
    let raw = body.to_string().into_bytes();
    let sig = base64_hmac(SHOPIFY_SECRET, &raw);
    let at = at.to_rfc3339();
    platform_post(
        "shopify",
        &[
            ("X-Shopify-Topic", topic),
            ("X-Shopify-Hmac-Sha256", &sig),
            ("X-Shopify-Shop-Domain", shop),
            ("X-Shopify-Triggered-At", &at),
        ],
        raw,
    )
}

#[tokio::test]
async fn a_signed_body_under_another_topic_from_another_shop_or_replayed_erases_no_one() {
    let w = enrolled_world_of(SHOPIFY_CUSTOMER).await;
    // The order the shop signed, replayed as a redact (the topic header is not signed).
    let (order, sig) = platform_fixture("shopify_orders_paid.json");
    let mut as_redact = shopify("orders/paid", "shopify_orders_paid.json");
    for (k, v) in &mut as_redact.headers {
        if k == "X-Shopify-Topic" {
            *v = "customers/redact".into();
        }
    }
    assert_eq!(
        base64_hmac(SHOPIFY_SECRET, &order),
        sig,
        "a genuinely signed body"
    );
    let body = refused(&w, as_redact, 400).await;
    assert!(
        body["error"].as_str().unwrap().contains("not a redact"),
        "{body}"
    );
    assert!(!w.profile(SHOPIFY_CUSTOMER).await.is_tombstone());

    // A redact body from another shop (signed with a secret this deployment shares), and one
    // whose header names this shop but whose signed body names another.
    let redact = |shop: &str| json!({"shop_id": 1, "shop_domain": shop, "customer": {"id": SHOPIFY_CUSTOMER.parse::<u64>().unwrap()}, "orders_to_redact": []});
    let other = "another-shop.myshopify.com";
    refused(
        &w,
        shopify_from("customers/redact", other, now(), &redact(other)),
        401,
    )
    .await;
    refused(
        &w,
        shopify_from("customers/redact", SHOPIFY_SHOP, now(), &redact(other)),
        401,
    )
    .await;
    // Triggered 400 days ago: a replay.
    let old = now() - Duration::days(400);
    let body = refused(
        &w,
        shopify_from("customers/redact", SHOPIFY_SHOP, old, &redact(SHOPIFY_SHOP)),
        401,
    )
    .await;
    assert!(body["error"].as_str().unwrap().contains("replay"), "{body}");
    assert!(!w.profile(SHOPIFY_CUSTOMER).await.is_tombstone());

    // The genuine request erases once; the same signed body again is a replay: it acts on
    // nothing (were the customer back, they would stay).
    let genuine = shopify_from(
        "customers/redact",
        SHOPIFY_SHOP,
        now(),
        &redact(SHOPIFY_SHOP),
    );
    assert_eq!(ok(&w, genuine.clone()).await["status"], "erased");
    let before = w.snapshot().await;
    let again = ok(&w, genuine).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_woocommerce_body_that_is_no_order_or_from_another_store_records_nothing() {
    let w = enrolled_world_of(WOO_CUSTOMER).await;
    let customer =
        json!({"id": 26, "email": "a@example.com", "date_modified_gmt": "2026-11-22T09:00:00"});
    let raw = customer.to_string().into_bytes();
    let sig = base64_hmac(WOOCOMMERCE_SECRET, &raw);
    let headers = |resource: &'static str, source: &'static str| {
        vec![
            ("X-WC-Webhook-Topic", "order.updated"),
            ("X-WC-Webhook-Resource", resource),
            ("X-WC-Webhook-Source", source),
        ]
    };
    let mut h = headers("order", WOOCOMMERCE_SOURCE);
    h.push(("X-WC-Webhook-Signature", &sig));
    refused(&w, platform_post("woocommerce", &h, raw.clone()), 400).await;
    // A real order under a resource header that says otherwise, and from another store.
    let (order, sig) = platform_fixture("woocommerce_order_created.json");
    for (resource, source, status) in [
        ("customer", WOOCOMMERCE_SOURCE, 400),
        ("order", "https://elsewhere.example/", 401),
    ] {
        let mut h = headers(resource, source);
        h.push(("X-WC-Webhook-Signature", &sig));
        refused(&w, platform_post("woocommerce", &h, order.clone()), status).await;
    }
}
