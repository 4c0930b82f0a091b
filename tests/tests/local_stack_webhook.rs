//! The webhook against DynamoDB Local and moto: the shop's signed orders, and the links of an
//! email the sender really sent through moto's SES. Events on the bus are read from an SQS queue.

use chrono::Duration;
use serde_json::json;
use shared::domain::customer::EmailStatus;
use shared::domain::experiment::Group;
use shared::domain::metrics::{counter, Counts};
use shared::domain::sequence::{Enrollment, ExitReason, Status};
use shared::domain::survey::Reason;
use shared::ports::{EnrollmentStore, MetricsStore, ProfileStore, RewardStore};
use winback_tests::*;

/// A customer emailed step 1 for real: scheduler, EventBridge, SQS, sender, moto's SES.
struct Emailed {
    table: LocalTable,
    queue: BusQueue,
    deps: webhook::Deps,
    customer_id: String,
    html: String,
    code: String,
    /// The message tags of the SendEmail request, as SES would echo them in its events.
    tags: serde_json::Map<String, serde_json::Value>,
}

async fn emailed(stack: &LocalStack, label: &str) -> Emailed {
    emailed_customer(stack, label, &treated_ids(label, 1).remove(0)).await
}

async fn emailed_customer(stack: &LocalStack, label: &str, customer_id: &str) -> Emailed {
    let table = stack.fresh_table(label).await;
    let queue = stack
        .bus_to_queue(
            label,
            &[
                "WinbackStepDue",
                "CustomerReactivated",
                "WinTakenBack",
                "SurveyAnswered",
            ],
        )
        .await;
    let domain = format!("{}.test", unique(label));
    stack.verify_sender(&domain).await;
    let customer_id = customer_id.to_string();
    let to = format!("{}@{domain}", unique("to"));
    let scheduler = scheduler_deps(&table, &queue);
    let steps = one_step_due(&table, &queue, &scheduler, &customer_id, &to).await;
    let (mailer, wire) = stack.mailer();
    let out = sender::handle_batch(
        &sender_deps(&table, mailer, &format!("shop@{domain}")),
        sqs_event(&steps),
        now(),
    )
    .await;
    assert!(out.batch_item_failures.is_empty());
    let emails = stack.emails_to(&to);
    assert_eq!(emails.len(), 1);
    let code = table
        .store
        .get_enrollment(&customer_id, CAMPAIGN)
        .await
        .unwrap()
        .unwrap()
        .reward_code
        .unwrap();
    let tags = wire
        .send_requests()
        .iter()
        .find(|r| r["Destination"]["ToAddresses"][0] == to.as_str())
        .and_then(|r| r["EmailTags"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t["Name"].as_str().unwrap_or_default().to_string(),
                json!([t["Value"]]),
            )
        })
        .collect();
    let deps = webhook_deps(&table, &queue);
    Emailed {
        table,
        queue,
        deps,
        customer_id,
        html: emails[0].body.clone(),
        code,
        tags,
    }
}

async fn treated_totals(table: &LocalTable) -> Counts {
    let mut c = Counts::default();
    for r in table.store.counter_rows(CAMPAIGN).await.unwrap() {
        if r.day.is_none() && r.key.group == Group::Treated {
            c.merge(&r.counts);
        }
    }
    c
}

fn order(customer_id: &str, event_id: &str, code: &str) -> serde_json::Value {
    json!({
        "event_id": event_id,
        "customer_id": customer_id,
        "type": "order",
        "occurred_at": (now() + Duration::hours(2)).to_rfc3339(),
        "amount": {"value": "42.50", "currency": "EUR"},
        "reward_code": code,
    })
}

#[tokio::test]
async fn a_signed_order_from_an_emailed_customer_wins_them_back_counts_revenue_and_reaches_the_bus()
{
    let stack = LocalStack::from_env().await;
    let w = emailed(&stack, "hook-order").await;
    let at = now() + Duration::hours(2);
    let resp = webhook::handle_http(
        &w.deps,
        signed_activity(
            &order(&w.customer_id, "evt-order-1", &w.code),
            WEBHOOK_KEY,
            at,
        ),
        at,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["reactivated"], true);
    assert_eq!(resp.json()["reward"]["status"], "redeemed");

    let reactivated = won_back(&w, 4250, true).await;
    let reward = w
        .table
        .store
        .get_reward(&shared::domain::reward::RewardCode::parse(&w.code).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reward.uses_left, 0, "the code is redeemed");
    assert_eq!(reactivated["source"], "winback");
    assert_eq!(reactivated["detail"]["customer_id"], w.customer_id.as_str());
    assert_eq!(reactivated["detail"]["revenue"], "42.50");
    assert_eq!(reactivated["detail"]["reward_code"], w.code.as_str());
    w.table.delete().await;
}

#[tokio::test]
async fn a_survey_link_from_a_sent_email_is_recorded_once_when_clicked_twice() {
    let stack = LocalStack::from_env().await;
    let w = emailed(&stack, "hook-survey").await;
    let link = links_in(&w.html, "/v1/survey?")
        .into_iter()
        .find(|l| l.ends_with("&a=too_expensive"))
        .expect("a too_expensive answer link");
    for _ in 0..2 {
        // The answer page's form (a GET of the link records nothing: scanners fetch links).
        let resp = follow(&w.deps, &link, "POST", "choice=answer", now()).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert!(resp
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
    }
    let p = w
        .table
        .store
        .get_profile(&w.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.survey_reason, Some(Reason::TooExpensive));
    assert!(p.tags.contains("reason:too_expensive"), "{:?}", p.tags);
    let e = w
        .table
        .store
        .get_enrollment(&w.customer_id, CAMPAIGN)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.survey_reason, Some(Reason::TooExpensive));
    let totals = treated_totals(&w.table).await;
    assert_eq!(totals.get(counter::ANSWERED), 1, "two clicks, one answer");
    assert_eq!(totals.get("reason_too_expensive"), 1);
    let answered = w
        .queue
        .drain()
        .await
        .iter()
        .filter(|m| m.json()["detail-type"] == "SurveyAnswered")
        .count();
    assert_eq!(answered, 1, "the second click publishes nothing");
    w.table.delete().await;
}

#[tokio::test]
async fn the_one_click_unsubscribe_post_from_a_sent_email_unsubscribes_the_customer() {
    let stack = LocalStack::from_env().await;
    let w = emailed(&stack, "hook-unsub").await;
    let link = link_in(&w.html, "/v1/unsubscribe?");
    let resp = follow(&w.deps, &link, "POST", "List-Unsubscribe=One-Click", now()).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let p = w
        .table
        .store
        .get_profile(&w.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.email_status, EmailStatus::Unsubscribed);
    assert!(!p.is_mailable());
    let e = w
        .table
        .store
        .get_enrollment(&w.customer_id, CAMPAIGN)
        .await
        .unwrap()
        .unwrap();
    assert!(e.status.is_final(), "the sequence stops: {e:?}");
    assert_eq!(treated_totals(&w.table).await.get(counter::UNSUBSCRIBED), 1);
    w.table.delete().await;
}

#[tokio::test]
async fn an_order_with_a_bad_signature_gets_401_and_changes_no_item() {
    let stack = LocalStack::from_env().await;
    let w = emailed(&stack, "hook-badsig").await;
    w.queue.drain().await;
    let before = w.table.items().await;
    let at = now() + Duration::hours(2);
    let body = order(&w.customer_id, "evt-forged", &w.code);

    let forged = signed_activity(&body, b"not-the-shops-key", at);
    let stale = signed_activity(&body, WEBHOOK_KEY, at - Duration::minutes(10));
    let mut unsigned = signed_activity(&body, WEBHOOK_KEY, at);
    unsigned
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("winback-signature"));
    let mut tampered = signed_activity(&body, WEBHOOK_KEY, at);
    tampered.body = body.to_string().replace("42.50", "4250.00").into_bytes();

    for (what, req) in [
        ("wrong key", forged),
        ("stale timestamp", stale),
        ("no signature", unsigned),
        ("body changed after signing", tampered),
    ] {
        let resp = webhook::handle_http(&w.deps, req, at).await;
        assert_eq!(resp.status, 401, "{what}: {}", resp.body);
        assert!(
            resp.json()["error"].is_string(),
            "{what}: says why: {}",
            resp.body
        );
    }
    assert_eq!(w.table.items().await, before, "no item changed");
    assert!(w.queue.drain().await.is_empty(), "nothing was published");
    w.table.delete().await;
}

/// The customer's enrollment as stored.
async fn enrollment_of(w: &Emailed) -> Enrollment {
    w.table
        .store
        .get_enrollment(&w.customer_id, CAMPAIGN)
        .await
        .unwrap()
        .unwrap()
}

/// The one event of `detail_type` the bus carried since the last drain (any others are
/// dropped).
async fn the_one_event(w: &Emailed, detail_type: &str) -> serde_json::Value {
    let events: Vec<_> = w
        .queue
        .drain()
        .await
        .iter()
        .map(QueuedMessage::json)
        .collect();
    let mut found = events.iter().filter(|j| j["detail-type"] == detail_type);
    match (found.next(), found.next()) {
        (Some(one), None) => one.clone(),
        _ => panic!("not exactly one {detail_type}: {events:?}"),
    }
}

/// What a win-back left on the stack: the enrollment won back with `revenue`, the code redeemed
/// (when the order carried it), counted once, and one `CustomerReactivated` on the bus (returned).
async fn won_back(w: &Emailed, revenue: i64, redeemed: bool) -> serde_json::Value {
    let e = enrollment_of(w).await;
    assert!(matches!(e.status, Status::WonBack { .. }), "{e:?}");
    assert_eq!(e.revenue_minor, revenue);
    let totals = treated_totals(&w.table).await;
    assert_eq!(totals.get(counter::REACTIVATED), 1);
    assert_eq!(totals.get(counter::REVENUE), revenue);
    assert_eq!(totals.get(counter::REDEEMED), i64::from(redeemed));
    the_one_event(w, "CustomerReactivated").await
}

/// What a refund of the whole win left on the stack: the enrollment ended as refunded, the win
/// and its revenue off the counters (the redemption kept), one `WinTakenBack` on the bus.
async fn win_taken_back(w: &Emailed, redeemed: bool) {
    let e = enrollment_of(w).await;
    assert!(
        matches!(
            e.status,
            Status::Exited {
                reason: ExitReason::Refunded,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.revenue_minor, 0);
    let totals = treated_totals(&w.table).await;
    assert_eq!(totals.get(counter::REACTIVATED), 0);
    assert_eq!(totals.get(counter::WINS_REFUNDED), 1);
    assert_eq!(totals.get(counter::REVENUE), 0);
    assert_eq!(totals.get(counter::REDEEMED), i64::from(redeemed));
    the_one_event(w, "WinTakenBack").await;
}

#[tokio::test]
async fn a_shopify_refunds_create_naming_only_the_order_takes_the_win_back_once() {
    let stack = LocalStack::from_env().await;
    let at = now() + Duration::hours(2);
    let w = emailed(&stack, "hook-shopify-refund").await;
    let order = json!({
        "id": 450789470, "created_at": at.to_rfc3339(), "updated_at": at.to_rfc3339(),
        "processed_at": at.to_rfc3339(), "currency": "EUR", "total_price": "42.50",
        "financial_status": "paid",
        "discount_codes": [{"code": w.code, "amount": "4.25", "type": "fixed_amount"}],
        "customer": {"id": w.customer_id, "first_name": "Ada"},
        "line_items": [{"title": "Beans 1 kg", "quantity": 1, "price": "46.75"}],
    });
    let resp = webhook::handle_http(&w.deps, shopify_delivery("orders/paid", &order), at).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    won_back(&w, 4250, true).await;

    // refunds/create names the order and not the customer: the table's order index does.
    let later = at + Duration::hours(1);
    let refund = json!({
        "id": 929361464, "order_id": 450789470, "created_at": later.to_rfc3339(),
        "note": "wrong size", "restock": false, "refund_line_items": [], "order_adjustments": [],
        "transactions": [{"id": 179259969, "order_id": 450789470, "kind": "refund",
                          "gateway": "bogus", "status": "success", "amount": "42.50",
                          "currency": "EUR"}],
    });
    let resp =
        webhook::handle_http(&w.deps, shopify_delivery("refunds/create", &refund), later).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["status"], "recorded", "{}", resp.body);
    win_taken_back(&w, true).await;

    // The orders/updated Shopify sends after it carries the same refund: nothing more.
    let mut updated = order.clone();
    updated["updated_at"] = json!(later.to_rfc3339());
    updated["financial_status"] = json!("refunded");
    updated["refunds"] = json!([refund]);
    let resp =
        webhook::handle_http(&w.deps, shopify_delivery("orders/updated", &updated), later).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let totals = treated_totals(&w.table).await;
    assert_eq!(totals.get(counter::WINS_REFUNDED), 1);
    assert_eq!(totals.get(counter::REFUNDED), 4250, "taken off once");
    assert!(w.queue.drain().await.is_empty(), "nothing more published");
    w.table.delete().await;
}

#[tokio::test]
async fn a_shop_on_each_platform_wins_an_emailed_customer_back() {
    let stack = LocalStack::from_env().await;
    let at = now() + Duration::hours(2);

    // Shopify: orders/paid with the email's code as the discount code; orders/create of the same
    // order afterwards is a duplicate.
    let w = emailed(&stack, "hook-shopify").await;
    let order = json!({
        "id": 450789469, "admin_graphql_api_id": "gid://shopify/Order/450789469",
        "created_at": at.to_rfc3339(), "updated_at": at.to_rfc3339(), "processed_at": at.to_rfc3339(),
        "currency": "EUR", "total_price": "42.50", "financial_status": "paid",
        "discount_codes": [{"code": w.code, "amount": "4.25", "type": "fixed_amount"}],
        "customer": {"id": w.customer_id, "first_name": "Ada"},
        "line_items": [{"title": "Beans 1 kg", "quantity": 1, "price": "46.75"}],
    });
    for (topic, duplicate) in [("orders/paid", false), ("orders/create", true)] {
        let resp = webhook::handle_http(&w.deps, shopify_delivery(topic, &order), at).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.json()["reactivated"], true);
        assert_eq!(
            resp.json()["duplicate"].as_bool().unwrap_or(false),
            duplicate
        );
    }
    won_back(&w, 4250, true).await;
    // ... and orders/cancelled takes the win back.
    let mut cancelled = order.clone();
    cancelled["cancelled_at"] = json!((at + Duration::hours(1)).to_rfc3339());
    cancelled["updated_at"] = cancelled["cancelled_at"].clone();
    cancelled["financial_status"] = json!("refunded");
    let later = at + Duration::hours(1);
    let resp = webhook::handle_http(
        &w.deps,
        shopify_delivery("orders/cancelled", &cancelled),
        later,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    win_taken_back(&w, true).await;
    w.table.delete().await;

    // WooCommerce: order.created once paid, the coupon lower-cased as WooCommerce stores it.
    let w = emailed(&stack, "hook-woo").await;
    let gmt = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let order = json!({
        "id": 727, "order_key": "wc_order_7Kq2mZ9x", "status": "processing", "currency": "EUR", "total": "42.50",
        "date_created_gmt": gmt, "date_modified_gmt": gmt, "date_paid_gmt": gmt,
        "customer_id": w.customer_id, "billing": {"first_name": "Ada"},
        "coupon_lines": [{"code": w.code.to_lowercase()}],
        "line_items": [{"name": "Beans 1 kg", "quantity": 1}],
    });
    let resp =
        webhook::handle_http(&w.deps, woocommerce_delivery("order.created", &order), at).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["reward"]["status"], "redeemed");
    won_back(&w, 4250, true).await;
    // ... and order.updated with status refunded takes it back.
    let mut refunded = order.clone();
    refunded["status"] = json!("refunded");
    refunded["refunds"] = json!([{"id": 726, "total": "-42.50"}]);
    let resp = webhook::handle_http(
        &w.deps,
        woocommerce_delivery("order.updated", &refunded),
        at,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    win_taken_back(&w, true).await;
    w.table.delete().await;

    // Stripe: a paid renewal invoice.
    let w = emailed(&stack, "hook-stripe").await;
    let event = json!({
        "id": "evt_local_stack_1", "object": "event", "type": "invoice.paid",
        "created": at.timestamp(),
        "data": {"object": {"id": "in_local_stack_1", "object": "invoice", "customer": w.customer_id, "currency": "eur",
                            "amount_paid": 1900, "billing_reason": "subscription_cycle",
                            "status_transitions": {"paid_at": at.timestamp()}}},
    });
    let resp = webhook::handle_http(&w.deps, stripe_delivery(&event, at), at).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    won_back(&w, 1900, false).await;
    // ... and charge.refunded of the invoice's charge takes it back.
    let refund = json!({
        "id": "evt_local_stack_2", "object": "event", "type": "charge.refunded",
        "created": at.timestamp(),
        "data": {"object": {"id": "ch_local_stack_1", "object": "charge", "customer": w.customer_id,
                            "currency": "eur", "amount": 1900, "amount_refunded": 1900,
                            "refunded": true, "invoice": "in_local_stack_1"}},
    });
    let resp = webhook::handle_http(&w.deps, stripe_delivery(&refund, at), at).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    win_taken_back(&w, false).await;
    w.table.delete().await;
}

#[tokio::test]
async fn a_bounce_suppresses_a_customer_whose_id_ses_tags_cannot_hold() {
    let stack = LocalStack::from_env().await;
    let cfg = &shared::campaign::testing::example().config().experiment;
    let id = (1000..)
        .map(|n| format!("gid://shopify/Customer/{n}"))
        .find(|id| {
            let a = shared::domain::experiment::assign(id, CAMPAIGN, cfg);
            a.group == Group::Treated && !cfg.variant_without_reward(&a.variant)
        })
        .unwrap();
    let w = emailed_customer(&stack, "hook-gid", &id).await;
    let tag_values: Vec<&str> = w.tags.values().filter_map(|v| v[0].as_str()).collect();
    assert!(
        !tag_values
            .iter()
            .any(|v| v.contains('/') || v.contains(':')),
        "SES takes only [A-Za-z0-9_.@-]: {tag_values:?}"
    );
    let bounce = json!({
        "version": "0", "id": unique("bounce"), "detail-type": "Email Bounced",
        "source": "aws.ses", "account": "123456789012", "time": now().to_rfc3339(),
        "region": "eu-west-1", "resources": [],
        "detail": {
            "eventType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                       "bouncedRecipients": [{"emailAddress": "x@example.com"}],
                       "timestamp": now().to_rfc3339(), "feedbackId": "f-1"},
            "mail": {"timestamp": now().to_rfc3339(), "messageId": "m-gid-1",
                     "source": "shop@example.com", "destination": ["x@example.com"],
                     "tags": w.tags},
        },
    });
    webhook::handle_ses_event(&w.deps, &bounce, now())
        .await
        .unwrap();
    let p = w.table.store.get_profile(&id).await.unwrap().unwrap();
    assert_eq!(p.email_status, EmailStatus::Suppressed);
    let e = w
        .table
        .store
        .get_enrollment(&id, CAMPAIGN)
        .await
        .unwrap()
        .unwrap();
    assert!(e.status.is_final(), "{e:?}");
    assert_eq!(treated_totals(&w.table).await.get(counter::BOUNCED), 1);
    w.table.delete().await;
}

fn signed_reserve(
    code: &str,
    customer_id: &str,
    order_ref: &str,
    t: chrono::DateTime<chrono::Utc>,
) -> webhook::HttpRequest {
    let raw = json!({ "order_ref": order_ref, "customer_id": customer_id }).to_string();
    winback_tests::requests::signed_post(
        &format!("/v1/rewards/{code}/reserve"),
        raw,
        WEBHOOK_KEY,
        t,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_emails_button_applies_the_code_and_of_orders_racing_to_reserve_it_one_wins() {
    let stack = LocalStack::from_env().await;
    let w = emailed(&stack, "hook-reserve").await;
    // The reward button goes to the shop's checkout with the code applied (`[checkout]`).
    assert!(
        w.html.contains(&format!(
            "href=\"https://shop.example.com/discount/{}\"",
            w.code
        )),
        "{}",
        w.html
    );
    // Half an hour before the orders below are placed (`order` puts them at now + 2 h).
    let at = now() + Duration::minutes(90);
    let tries = (0..8).map(|i| {
        let deps = w.deps.clone();
        let req = signed_reserve(&w.code, &w.customer_id, &format!("order-{i}"), at);
        tokio::spawn(async move { webhook::handle_http(&deps, req, at).await })
    });
    let answers: Vec<webhook::HttpResponse> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let won: Vec<&webhook::HttpResponse> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    assert!(answers
        .iter()
        .all(|a| a.status == 200
            || (a.status == 409 && a.json()["status"] == "held_by_another_order")));
    let winner = won[0].json()["order_ref"].as_str().unwrap().to_string();

    // Another order reporting the code is refused it; the winner's order redeems it.
    let loser = if winner == "order-0" {
        "order-1"
    } else {
        "order-0"
    };
    let mut other = order(&w.customer_id, "evt-other", &w.code);
    other["order_ref"] = json!(loser);
    let t = now() + Duration::hours(2);
    let resp = webhook::handle_http(&w.deps, signed_activity(&other, WEBHOOK_KEY, t), t).await;
    assert_eq!(
        resp.json()["reward"]["code_status"],
        "reserved",
        "{}",
        resp.body
    );
    let mut mine = order(&w.customer_id, "evt-mine", &w.code);
    mine["order_ref"] = json!(winner);
    let resp = webhook::handle_http(&w.deps, signed_activity(&mine, WEBHOOK_KEY, t), t).await;
    assert_eq!(resp.json()["reward"]["status"], "redeemed", "{}", resp.body);
    let reward = w
        .table
        .store
        .get_reward(&shared::domain::reward::RewardCode::parse(&w.code).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reward.uses_left, 0);
    assert_eq!(reward.reserved, None);
    w.table.delete().await;
}

#[tokio::test]
async fn a_bad_experience_from_a_sent_email_reaches_a_person_through_sns_and_the_link_closes_it() {
    let stack = LocalStack::from_env().await;
    let mut w = emailed(&stack, "hook-follow-up").await;
    let topic = stack.topic_to_queue("hook-follow-up").await;
    w.deps.notifier = Some(topic.notifier.clone());
    let link = links_in(&w.html, "/v1/survey?")
        .into_iter()
        .find(|l| l.ends_with("&a=bad_experience"))
        .expect("a bad_experience answer link");
    let resp = follow(&w.deps, &link, "POST", "choice=answer", now()).await;
    assert_eq!(resp.status, 200, "{}", resp.body);

    // What the person reads: the SNS message, as delivered to the subscribed queue.
    let delivered = topic.drain().await;
    assert_eq!(delivered.len(), 1, "one message on the topic");
    let envelope = delivered[0].json();
    assert_eq!(envelope["TopicArn"], topic.topic_arn.as_str());
    assert_eq!(
        envelope["Subject"],
        format!(
            "Follow-up needed: customer {}, bad experience",
            w.customer_id
        )
        .as_str()
    );
    let message = envelope["Message"].as_str().unwrap();
    for want in [
        format!("Customer id: {}", w.customer_id),
        format!("Flow: {CAMPAIGN}"),
        "Reason given: bad_experience".into(),
        "Last order: ".into(),
        "Lifetime value: ".into(),
    ] {
        assert!(message.contains(&want), "{want} missing in:\n{message}");
    }
    let p = w
        .table
        .store
        .get_profile(&w.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !message.contains(p.email.as_deref().unwrap()),
        "no email address"
    );
    assert!(p.follow_up.as_ref().unwrap().is_open());

    // The record link in the message opens the record and closes the follow-up.
    let record = message
        .lines()
        .find(|l| l.contains("/v1/follow-ups/"))
        .expect("a record link")
        .trim()
        .to_string();
    let page = follow(&w.deps, &record, "GET", "", now()).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(p.email.as_deref().unwrap()),
        "the record names the address"
    );
    let closed = follow(&w.deps, &record, "POST", "", now()).await;
    assert!(closed.body.contains("Follow-up closed"), "{}", closed.body);
    let p = w
        .table
        .store
        .get_profile(&w.customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.follow_up.unwrap().closed_at, Some(now()));
    assert_eq!(
        treated_totals(&w.table)
            .await
            .get(counter::FOLLOW_UPS_CLOSED),
        1
    );
}
