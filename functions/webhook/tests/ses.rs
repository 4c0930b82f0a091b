//! SES feedback through EventBridge, from real event fixtures.

mod common;

use common::*;
use shared::domain::customer::EmailStatus;
use shared::domain::experiment::Group;
use shared::domain::metrics::counter;
use shared::domain::sequence::ExitReason;
use shared::events::BusEvent;

#[tokio::test]
async fn a_permanent_bounce_suppresses_the_customer_once() {
    let w = enrolled_world().await;
    let event = fixture("ses-bounce.json");
    webhook::handle_ses_event(&w.deps, &event, now())
        .await
        .unwrap();
    webhook::handle_ses_event(&w.deps, &event, now())
        .await
        .unwrap();
    w.assert_ended(
        EmailStatus::Suppressed,
        ExitReason::Suppressed,
        counter::BOUNCED,
    )
    .await;
    let events = w.bus.drain();
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], BusEvent::CustomerSuppressed { customer_id, .. } if customer_id == CUSTOMER)
    );
    assert!((w.metrics.sum("Bounced", &[("Campaign", "example")]) - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn a_transient_bounce_changes_nothing() {
    let w = enrolled_world().await;
    let before = w.snapshot().await;
    let mut event = fixture("ses-bounce.json");
    event["detail"]["bounce"]["bounceType"] = "Transient".into();
    webhook::handle_ses_event(&w.deps, &event, now())
        .await
        .unwrap();
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_complaint_suppresses_and_is_counted() {
    let w = enrolled_world().await;
    webhook::handle_ses_event(&w.deps, &fixture("ses-complaint.json"), now())
        .await
        .unwrap();
    assert_eq!(
        w.profile(CUSTOMER).await.email_status,
        EmailStatus::Suppressed
    );
    assert_eq!(
        w.totals(VARIANT, Group::Treated)
            .await
            .get(counter::COMPLAINED),
        1
    );
}

#[tokio::test]
async fn deliveries_opens_and_clicks_are_counted_and_each_email_opens_once() {
    let w = enrolled_world().await;
    for name in ["ses-delivery.json", "ses-open.json", "ses-click.json"] {
        webhook::handle_ses_event(&w.deps, &fixture(name), now())
            .await
            .unwrap();
    }
    let mut second_open = fixture("ses-open.json");
    second_open["id"] = "another-open-of-the-same-email".into();
    webhook::handle_ses_event(&w.deps, &second_open, now())
        .await
        .unwrap();
    let t = w.totals(VARIANT, Group::Treated).await;
    assert_eq!(
        (
            t.get(counter::DELIVERED),
            t.get(counter::OPENED),
            t.get(counter::CLICKED)
        ),
        (1, 1, 1)
    );
    let p = w.profile(CUSTOMER).await;
    assert_eq!((p.emails_opened, p.emails_clicked), (1, 1));
    assert_eq!(p.email_status, EmailStatus::Subscribed);
    assert!((w.metrics.sum("Delivered", &[("Campaign", "example")]) - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn the_lambda_entry_routes_ses_events_and_refuses_strangers() {
    let w = enrolled_world().await;
    let out = webhook::handle(&w.deps, fixture("ses-delivery.json"), now())
        .await
        .unwrap();
    assert_eq!(out["status"], "ok");
    let err = webhook::handle(&w.deps, serde_json::json!({"hello": "world"}), now())
        .await
        .unwrap_err();
    assert!(!err.retryable());
    let mut no_id = fixture("ses-delivery.json");
    no_id.as_object_mut().unwrap().remove("id");
    assert!(webhook::handle(&w.deps, no_id, now()).await.is_err());
}

#[tokio::test]
async fn a_bounce_finds_a_customer_whose_id_ses_tags_cannot_hold_as_it_is() {
    let w = world();
    let id = "gid://shopify/Customer/123";
    w.enrolled(
        id,
        Group::Treated,
        VARIANT,
        now() - chrono::Duration::days(1),
    )
    .await;
    let mut event = fixture("ses-bounce.json");
    // The tags as the SES adapter sends them (and SES echoes them).
    for (name, value) in shared::ses_tags::tags("customer_id", id) {
        assert!(!value.contains('/'), "{value}");
        event["detail"]["mail"]["tags"][name] = serde_json::json!([value]);
    }
    webhook::handle_ses_event(&w.deps, &event, now())
        .await
        .unwrap();
    assert_eq!(w.profile(id).await.email_status, EmailStatus::Suppressed);
    assert!(w.enrollment(id).await.status.is_final());
}

/// A bus that refuses every event.
struct DownBus;

#[async_trait::async_trait]
impl shared::ports::EventBus for DownBus {
    async fn put_batch(
        &self,
        _events: &[BusEvent],
    ) -> Result<shared::ports::PutResult, shared::ports::BusError> {
        Err(shared::ports::BusError::Backend("bus unreachable".into()))
    }
}

#[tokio::test]
async fn an_event_that_cannot_be_published_is_counted_for_the_alarm() {
    let mut w = world();
    w.deps.bus = std::sync::Arc::new(DownBus);
    w.enrolled_customer().await;
    webhook::handle_ses_event(&w.deps, &fixture("ses-bounce.json"), now())
        .await
        .unwrap();
    assert_eq!(
        w.profile(CUSTOMER).await.email_status,
        EmailStatus::Suppressed,
        "the bounce is recorded all the same"
    );
    assert_eq!(
        w.metrics.sum("PublishFailures", &[("Service", "webhook")]),
        1.0
    );
}
