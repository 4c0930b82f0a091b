//! Webhook: signed activity requests per second in-process, signature verification cost, and
//! the DynamoDB reads a counted event costs as a campaign ages.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::adapters::embedded::{MemoryBus, MemoryStore};
use shared::campaign::testing::example;
use shared::emf::MemoryMetrics;
use shared::signing::{sign_webhook, verify_webhook};
use webhook::{Deps, HttpRequest, Keys};

use crate::report::{Figure, Figures, Target};
use crate::world::{self, is_write, LocalTable};
use crate::BenchError;

const BENCH: &str = "webhook";
const KEY: &[u8] = b"bench-webhook-key";

fn order(i: usize) -> String {
    let at = world::now() - chrono::Duration::minutes(5);
    serde_json::json!({
        "event_id": format!("evt-{i}"),
        "customer_id": format!("c-{:07}", i % 5000),
        "type": "order",
        "occurred_at": at.to_rfc3339(),
        "amount": {"value": "42.50", "currency": "EUR"},
        "profile": {
            "email": format!("customer{}@example.com", i % 5000),
            "first_name": "Alex",
            "locale": "sv-SE",
            "time_zone": "Europe/Stockholm",
        },
    })
    .to_string()
}

fn signed(body: String) -> HttpRequest {
    test_support::requests::signed_post("/v1/activity", body, KEY, world::now())
}

/// The webhook's dependencies over `store`, with the bench's keys and in-memory bus and metrics.
fn deps(store: Arc<dyn shared::ports::Store>) -> Deps {
    Deps {
        store,
        bus: Arc::new(MemoryBus::new()),
        campaign: Arc::new(example().clone()),
        keys: Keys {
            webhook: vec![KEY.to_vec()],
            link: shared::signing::LinkKeys::one(b"bench-link-key"),
            staff: shared::signing::LinkKeys::one(b"staff-key"),
            platforms: Default::default(),
            signature_v1: true,
            pseudonym: shared::pseudonym::Pseudonyms::new(b"test-pseudonym-key"),
        },
        public_base_url: "https://hooks.example.com".into(),
        metrics: Arc::new(MemoryMetrics::default()),
        notifier: None,
    }
}

/// Counted SES events per campaign age.
const AGED_EVENTS: usize = 40;

/// DynamoDB read units per counted SES event (`Email Delivered`) on DynamoDB Local, for a campaign
/// whose counters hold `days` days of rows for two variants and a holdout.
async fn read_units_per_event(days: i64) -> Result<(f64, f64), BenchError> {
    use shared::domain::experiment::Group;
    use shared::domain::metrics::CohortKey;
    use shared::ports::MetricsStore;

    let table = LocalTable::create("bench-webhook").await?;
    let result = async {
        let store = table.store.clone();
        let now = world::now();
        for day in 0..days {
            for (variant, group) in [
                ("amount-10", Group::Treated),
                ("percent-15", Group::Treated),
                ("holdout", Group::Holdout),
            ] {
                let key = CohortKey {
                    campaign: "example".into(),
                    variant: variant.into(),
                    group,
                };
                let date = (now - chrono::Duration::days(day)).date_naive();
                store
                    .add_counts(
                        &key,
                        Some(date),
                        &[("enrolled", 3), ("sent", 3), ("delivered", 3)],
                    )
                    .await?;
            }
        }
        let deps = deps(store.clone());
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../../functions/webhook/tests/fixtures/ses-delivery.json"
        ))
        .map_err(|e| BenchError::Setup(format!("the SES delivery fixture: {e}")))?;
        table.capacity.take();
        for i in 0..AGED_EVENTS {
            let mut event = fixture.clone();
            event["id"] = format!("bench-delivery-{days}-{i}").into();
            event["detail"]["mail"]["messageId"] = format!("bench-message-{days}-{i}").into();
            webhook::handle(&deps, event, now)
                .await
                .map_err(|e| BenchError::Setup(format!("an SES event was refused: {e}")))?;
        }
        let log = table.capacity.take();
        let reads: f64 = log
            .iter()
            .filter(|c| !is_write(&c.label))
            .map(|c| c.units)
            .sum();
        let writes: f64 = log
            .iter()
            .filter(|c| is_write(&c.label))
            .map(|c| c.units)
            .sum();
        Ok::<_, BenchError>((reads / AGED_EVENTS as f64, writes / AGED_EVENTS as f64))
    }
    .await;
    table.delete().await;
    result
}

/// Read units per counted event for a campaign 1 day and 365 days old.
async fn aging(out: &mut Vec<Figure>) -> Result<(), BenchError> {
    let mut fig = Figures::new(BENCH, out);
    let (young, young_writes) = read_units_per_event(1).await?;
    let (old, old_writes) = read_units_per_event(365).await?;
    for (age, reads, writes) in [(1, young, young_writes), (365, old, old_writes)] {
        fig.info(format!("DynamoDB Local: read units per counted SES event, campaign {age} day(s) old (ConsumedCapacity)"),
            reads,
            "RCU");
        fig.info(
            format!("write units per counted SES event, campaign {age} day(s) old"),
            writes,
            "WCU",
        );
    }
    fig.held(
        "read units per event, 365-day-old campaign over 1-day-old",
        old / young.max(f64::MIN_POSITIVE),
        "×",
        Target::AtMost(1.10),
    );
    Ok(())
}

/// Runs the webhook benchmark on the current thread.
pub async fn run(out: &mut Vec<Figure>) -> Result<(), BenchError> {
    let mut fig = Figures::new(BENCH, out);
    let store = Arc::new(MemoryStore::new());
    store.set_clock(world::now());
    let deps = deps(store.clone());
    let n = 20_000;
    let requests: Vec<HttpRequest> = (0..n).map(|i| signed(order(i))).collect();
    let mut ok = 0u64;
    let began = Instant::now();
    for req in requests {
        if webhook::handle_http(&deps, req, world::now()).await.status == 200 {
            ok += 1;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    fig.info(
        "signed POST /v1/activity (orders) per second, in-process, one core",
        n as f64 / secs,
        "req/s",
    );
    fig.info("per request", secs / n as f64 * 1e6, "µs");
    fig.info("requests answered 200", ok as f64, "requests");

    let body = order(1);
    let header = sign_webhook(KEY, world::now().timestamp(), body.as_bytes());
    for (name, keys) in [
        ("verify_webhook, one key", vec![KEY.to_vec()]),
        (
            "verify_webhook, two keys (during rotation)",
            vec![b"older".to_vec(), KEY.to_vec()],
        ),
    ] {
        let began = Instant::now();
        let mut calls = 0u64;
        while began.elapsed() < Duration::from_secs(1) {
            for _ in 0..1000 {
                let r = verify_webhook(
                    Some(black_box(&header)),
                    black_box(body.as_bytes()),
                    &keys,
                    world::now(),
                );
                debug_assert!(r.is_ok());
                black_box(r).ok();
            }
            calls += 1000;
        }
        fig.info(
            format!("{name} ({} B body)", body.len()),
            began.elapsed().as_secs_f64() / calls as f64 * 1e6,
            "µs",
        );
    }
    eprintln!("  webhook: read units per event as a campaign ages, on DynamoDB Local");
    aging(out).await
}
