//! `POST /v1/resolutions/{reason}`: a paused reason is fixed.

mod common;

use common::*;
use serde_json::json;
use shared::domain::survey::Reason;
use shared::ports::ProfileStore;

async fn paused_over_quality(w: &World, id: &str) {
    let mut p = shared::domain::customer::Profile::new(id.parse().unwrap());
    p.email = Some(format!("{id}@example.com"));
    p.tags.insert(Reason::Quality.tag());
    p.survey_reason = Some(Reason::Quality);
    p.due_at = None;
    w.store.save_profile(&p).await.unwrap();
}

fn resolve(reason: &str, body: &serde_json::Value) -> webhook::HttpRequest {
    signed_post(
        &format!("/v1/resolutions/{reason}"),
        &body.to_string(),
        WEBHOOK_KEY,
        now(),
    )
}

/// The scheduler of this world, invoked with what the bus carried, as the template's rule does.
async fn scheduler_handles(w: &World, event: &shared::events::BusEvent) -> serde_json::Value {
    scheduler_handles_within(w, event, scheduler::Budget::unlimited()).await
}

/// [`scheduler_handles`] with the invocation's `budget`.
async fn scheduler_handles_within(
    w: &World,
    event: &shared::events::BusEvent,
    budget: scheduler::Budget,
) -> serde_json::Value {
    let deps = scheduler::Deps {
        store: w.store.clone(),
        bus: w.bus.clone(),
        campaign: std::sync::Arc::new(w.deps.campaign.config().clone()),
        metrics: std::sync::Arc::new(shared::emf::NullMetrics),
        retry: shared::retry::RetryPolicy::default(),
    };
    let payload = json!({
        "version": "0",
        "source": "winback",
        "detail-type": event.detail_type(),
        "detail": serde_json::from_str::<serde_json::Value>(&event.detail_json()).unwrap(),
    });
    let later = now() + chrono::Duration::minutes(1);
    scheduler::handle(&deps, &payload, later, budget)
        .await
        .unwrap()
}

#[tokio::test]
async fn resolving_hands_the_reason_to_the_scheduler_which_frees_each_customer_once() {
    let w = world();
    paused_over_quality(&w, "c-1").await;
    paused_over_quality(&w, "c-2").await;
    w.enrolled_customer().await; // gave no reason
    let before = w.snapshot().await;
    let note = json!({"note": "Our new roaster is in."});
    let resp = w.http(resolve("quality", &note)).await;
    assert_eq!(resp.status, 202, "{}", resp.body);
    assert_eq!(resp.json()["status"], "accepted");
    // The webhook reads no profile and changes none: the scheduler does the work.
    assert_eq!(w.snapshot().await, before);
    let events = w.bus.drain();
    assert_eq!(events.len(), 1);
    assert!(matches!(
        &events[0],
        shared::events::BusEvent::ResolutionRequested { reason: Reason::Quality, note, .. }
            if note == "Our new roaster is in."
    ));
    let done = scheduler_handles(&w, &events[0]).await;
    assert_eq!(done["resolved"], 2, "{done}");
    assert_eq!(done["scanned"], 3, "{done}");
    for id in ["c-1", "c-2"] {
        let p = w.profile(id).await;
        assert!(p.resolved_reasons.contains(&Reason::Quality));
        assert_eq!(
            p.resolution_notes.get(&Reason::Quality).map(String::as_str),
            Some("Our new roaster is in.")
        );
        assert_eq!(p.due_at, Some(now()), "the scheduler looks at them next");
    }
    let other = w.profile(CUSTOMER).await;
    assert!(other.resolved_reasons.is_empty());
    // Resolving again changes nothing: the same request within a day is a replay the webhook
    // answers without handing it on, and the scheduler given the event again frees no one twice.
    let before = w.snapshot().await;
    let again = w.http(resolve("quality", &note)).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["duplicate"], true);
    assert!(w.bus.drain().is_empty());
    assert_eq!(scheduler_handles(&w, &events[0]).await["resolved"], 0);
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn an_unsigned_unknown_or_noteless_resolution_is_refused_and_changes_nothing() {
    let w = world();
    paused_over_quality(&w, "c-1").await;
    let before = w.snapshot().await;
    let note = json!({"note": "fixed"});
    let mut unsigned = resolve("quality", &note);
    unsigned.headers.retain(|(k, _)| k != "winback-signature");
    assert_eq!(w.http(unsigned).await.status, 401);
    let resp = w.http(resolve("cheap", &note)).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["field"], "reason");
    for body in [json!({}), json!({"note": "  "}), json!({"note": 7})] {
        let resp = w.http(resolve("quality", &body)).await;
        assert_eq!(resp.status, 400, "{body}");
        assert_eq!(resp.json()["field"], "note");
    }
    let mut get = resolve("quality", &note);
    get.method = "GET".into();
    assert_eq!(w.http(get).await.status, 405);
    assert_eq!(w.snapshot().await, before);
    assert!(w.bus.drain().is_empty(), "nothing handed to the scheduler");
}

#[tokio::test]
async fn a_replayed_resolution_is_handed_on_once_and_its_signature_opens_no_other_reason() {
    let w = world();
    let note = json!({"note": "Cheaper shipping from today."});
    let req = resolve("too_expensive", &note);
    for _ in 0..3 {
        let resp = w.http(req.clone()).await;
        assert_eq!(resp.status, 202, "{}", resp.body);
    }
    assert_eq!(
        w.bus.drain().len(),
        1,
        "one ResolutionRequested for three deliveries"
    );
    // The signature of the too_expensive request at the quality path: refused.
    let mut moved = req.clone();
    moved.path = "/v1/resolutions/quality".into();
    let resp = w.http(moved).await;
    assert_eq!(resp.status, 401, "{}", resp.body);
    assert!(w.bus.drain().is_empty());
    // Another note is another resolution.
    let resp = w
        .http(resolve(
            "too_expensive",
            &json!({"note": "And a loyalty price."}),
        ))
        .await;
    assert_eq!(resp.status, 202);
    assert_eq!(w.bus.drain().len(), 1);
}

#[tokio::test]
async fn a_resolution_pass_out_of_budget_hands_the_rest_to_the_next_invocation() {
    let w = world();
    for i in 0..450 {
        paused_over_quality(&w, &format!("c-{i}")).await;
    }
    let resp = w
        .http(resolve(
            "quality",
            &json!({"note": "Our new roaster is in."}),
        ))
        .await;
    assert_eq!(resp.status, 202);
    let mut events = w.bus.drain();
    // Each invocation may read 100 profiles: a page of 200 each, then the rest is handed on.
    let budget = scheduler::Budget {
        stop_at: None,
        max_items: Some(100),
    };
    let (mut invocations, mut resolved, mut scanned) = (0, 0, 0);
    while let Some(event) = events.pop() {
        invocations += 1;
        assert!(invocations < 20, "the passes end");
        let done = scheduler_handles_within(&w, &event, budget).await;
        resolved += done["resolved"].as_u64().unwrap();
        scanned += done["scanned"].as_u64().unwrap();
        events.extend(w.bus.drain());
    }
    assert!(invocations > 1, "the pass was cut: {invocations}");
    assert_eq!(scanned, 450, "every profile read once");
    assert_eq!(resolved, 450);
}
