//! Webhook: signed activity requests per second in-process, and signature verification cost.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::adapters::embedded::{MemoryBus, MemoryStore};
use shared::campaign::testing::example;
use shared::emf::MemoryMetrics;
use shared::signing::{sign_webhook, verify_webhook};
use webhook::{Deps, HttpRequest, Keys};

use crate::report::Figure;
use crate::world;

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
    HttpRequest {
        method: "POST".into(),
        path: "/v1/activity".into(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (
                "winback-signature".into(),
                sign_webhook(KEY, world::now().timestamp(), body.as_bytes()),
            ),
        ],
        body: body.into_bytes(),
    }
}

/// Runs the webhook benchmark on the current thread.
pub async fn run(out: &mut Vec<Figure>) {
    let store = Arc::new(MemoryStore::new());
    store.set_clock(world::now());
    let deps = Deps {
        store: store.clone(),
        bus: Arc::new(MemoryBus::new()),
        campaign: Arc::new(example().clone()),
        keys: Keys {
            webhook: vec![KEY.to_vec()],
            link: b"bench-link-key".to_vec(),
        },
        public_base_url: "https://hooks.example.com".into(),
        metrics: Arc::new(MemoryMetrics::default()),
    };
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
    out.push(Figure::info(
        BENCH,
        "signed POST /v1/activity (orders) per second, in-process, one core",
        n as f64 / secs,
        "req/s",
    ));
    out.push(Figure::info(
        BENCH,
        "per request",
        secs / n as f64 * 1e6,
        "µs",
    ));
    out.push(Figure::info(
        BENCH,
        "requests answered 200",
        ok as f64,
        "requests",
    ));

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
        out.push(Figure::info(
            BENCH,
            format!("{name} ({} B body)", body.len()),
            began.elapsed().as_secs_f64() / calls as f64 * 1e6,
            "µs",
        ));
    }
}
