//! A paused reason, resolved, reaches its customers through the normal path: the webhook route
//! marks them, the scheduler enrolls them again, the sender tells them once, with the
//! campaign's "we fixed it" email.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use shared::adapters::embedded::{MemoryBus, MemoryMailer, MemoryStore};
use shared::campaign::testing::example;
use shared::domain::customer::{EmailStatus, OrderRecord, Profile};
use shared::domain::experiment::Group;
use shared::domain::money::Money;
use shared::domain::sequence::{Enrollment, ExitReason};
use shared::domain::survey::Reason;
use shared::emf::MemoryMetrics;
use shared::events::BusEvent;
use shared::ports::{EnrollmentStore, ProfileStore};
use shared::retry::RetryPolicy;
use shared::signing::sign_webhook;

const WEBHOOK_KEY: &[u8] = b"resolve-webhook-key";

/// 10:00 UTC: outside quiet hours in Stockholm.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

struct World {
    store: Arc<MemoryStore>,
    bus: Arc<MemoryBus>,
    mailer: Arc<MemoryMailer>,
    webhook: webhook::Deps,
    scheduler: scheduler::Deps,
    sender: sender::Deps,
}

fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let bus = Arc::new(MemoryBus::new());
    let mailer = Arc::new(MemoryMailer::new());
    let metrics = Arc::new(MemoryMetrics::default());
    let campaign = Arc::new(example().clone());
    World {
        webhook: webhook::Deps {
            store: store.clone(),
            bus: bus.clone(),
            campaign: campaign.clone(),
            keys: webhook::Keys {
                webhook: vec![WEBHOOK_KEY.to_vec()],
                link: shared::signing::LinkKeys::one(b"link"),
                staff: shared::signing::LinkKeys::one(b"staff-key"),
                platforms: Default::default(),
                signature_v1: true,
                pseudonym: shared::pseudonym::Pseudonyms::new(b"test-pseudonym-key"),
            },
            public_base_url: "https://hooks.example.com".into(),
            metrics: metrics.clone(),
            notifier: None,
        },
        scheduler: scheduler::Deps {
            store: store.clone(),
            bus: bus.clone(),
            campaign: Arc::new(campaign.config().clone()),
            metrics: metrics.clone(),
            retry: RetryPolicy::default(),
        },
        sender: sender::Deps {
            store: store.clone(),
            mailer: mailer.clone(),
            campaign,
            metrics,
            link_keys: shared::signing::LinkKeys::one(b"link"),
            public_base_url: "https://hooks.example.com".into(),
            sender_address: "shop@example.com".into(),
            limiter: Arc::new(sender::RateLimiter::new(None)),
            lease: Duration::minutes(5),
            checkout: None,
        },
        store,
        bus,
        mailer,
    }
}

/// A lapsed customer who answered "quality" 30 days ago, and was paused.
async fn paused(w: &World, id: &str, status: EmailStatus) {
    let c = example().config();
    let mut p = Profile::new(id.parse().unwrap());
    p.email = Some(format!("{id}@example.com"));
    p.locale = Some("en".into());
    p.time_zone = Some("Europe/Stockholm".into());
    p.email_status = status;
    // A one-order customer lapses under the shipped prior after ~314 quiet days.
    p.record_order(OrderRecord {
        at: now() - Duration::days(400),
        amount: Money(3000),
        product: None,
        category: Some("coffee".into()),
        currency: None,
        order_id: None,
        refunded: Default::default(),
        refund_ids: Vec::new(),
        lines: Vec::new(),
    });
    p.tags.insert(Reason::Quality.tag());
    p.survey_reason = Some(Reason::Quality);
    w.store.save_profile(&p).await.unwrap();
    let at = now() - Duration::days(30);
    let mut e = Enrollment::start(&id.parse().unwrap(), c, 1, Group::Treated, "amount-10", at)
        .record_sent(1, at, None, c)
        .unwrap()
        .exit(ExitReason::Paused, at)
        .unwrap();
    e.survey_reason = Some(Reason::Quality);
    w.store.save_enrollment(&e).await.unwrap();
}

async fn resolve(w: &World, note: &str) -> serde_json::Value {
    let body = serde_json::json!({ "note": note }).to_string();
    let req = webhook::HttpRequest {
        method: "POST".into(),
        path: "/v1/resolutions/quality".into(),
        query: String::new(),
        headers: vec![(
            "winback-signature".into(),
            sign_webhook(WEBHOOK_KEY, now().timestamp(), body.as_bytes()),
        )],
        body: body.into_bytes(),
    };
    let resp = webhook::handle_http(&w.webhook, req, now()).await;
    assert_eq!(resp.status, 202, "{}", resp.body);
    // The webhook hands the reason to the scheduler on the bus, as the template's rule does.
    let events = w.bus.drain();
    assert_eq!(events.len(), 1, "{events:?}");
    let payload = serde_json::json!({
        "source": "winback",
        "detail-type": events[0].detail_type(),
        "detail": serde_json::from_str::<serde_json::Value>(&events[0].detail_json()).unwrap(),
    });
    scheduler::handle(
        &w.scheduler,
        &payload,
        now(),
        scheduler::Budget::unlimited(),
    )
    .await
    .unwrap()
}

/// One scheduler run at `at`, and every step it publishes handed to the sender.
async fn run_at(w: &World, at: DateTime<Utc>) -> Vec<sender::Outcome> {
    let input = scheduler::Input {
        now: at,
        mode: scheduler::Mode::Due,
    };
    scheduler::run(&w.scheduler, input, scheduler::Budget::unlimited())
        .await
        .unwrap();
    let mut out = Vec::new();
    for event in w.bus.drain() {
        if let BusEvent::WinbackStepDue(step) = event {
            out.push(sender::process_step(&w.sender, &step, at).await.unwrap());
        }
    }
    out
}

#[tokio::test]
async fn resolving_a_paused_reason_tells_each_customer_once_through_the_sender() {
    let w = world();
    // (A customer outside the program holdout, which is told nothing: it gets no email.)
    paused(&w, "heard", EmailStatus::Subscribed).await;
    paused(&w, "gone", EmailStatus::Unsubscribed).await;
    // Before the fix nobody is contacted.
    run_at(&w, now()).await;
    assert!(w.mailer.drain().is_empty());

    let done = resolve(&w, "Our new roaster is in, and every batch is tasted.").await;
    assert_eq!(done["resolved"], 2);
    let outcomes = run_at(&w, now()).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let emails = w.mailer.drain();
    assert_eq!(emails.len(), 1, "the unsubscribed customer gets nothing");
    let email = &emails[0].1;
    assert_eq!(email.to, "heard@example.com");
    assert!(
        email.subject.contains("fixed what you told us about"),
        "{}",
        email.subject
    );
    assert!(
        email.text.contains("Our new roaster is in"),
        "{}",
        email.text
    );
    assert!(email.headers.iter().any(|(k, _)| k == "List-Unsubscribe"));
    let p = w.store.get_profile("heard").await.unwrap().unwrap();
    assert!(p.told_resolved.contains(&Reason::Quality));
    let e = w
        .store
        .get_enrollment("heard", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.round, 2);
    assert_eq!(e.group, Group::Treated);

    // The rest of the sequence is the usual one; resolving again tells nobody twice.
    assert_eq!(resolve(&w, "again").await["resolved"], 0);
    let later = now() + Duration::days(5);
    run_at(&w, later).await;
    let emails = w.mailer.drain();
    assert_eq!(emails.len(), 1);
    assert!(
        !emails[0].1.subject.contains("fixed"),
        "{}",
        emails[0].1.subject
    );
}
