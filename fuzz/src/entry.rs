//! The parsers of untrusted input, fed from one byte string. Shared by the `cargo fuzz` target
//! and by the corpus replay in `cargo test` (`tests/tests/reliability_corpus.rs`).
//!
//! The first byte picks how the rest is split; every parser must answer without panicking, and
//! the webhook must answer bad input with a 4xx and change nothing.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use shared::adapters::embedded::MemoryStore;
use shared::campaign::Campaign;
use shared::signing::{verify_link, verify_webhook, Purpose};

/// The key the replayed signatures are checked against.
pub const WEBHOOK_KEY: &[u8] = b"fuzz-webhook-key";
/// The key the replayed link tokens are checked against.
pub const LINK_KEY: &[u8] = b"fuzz-link-key";

/// The instant every input is judged at.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

/// Splits `rest` at the first two `\n` into header, query and body.
fn parts(rest: &[u8]) -> (String, String, Vec<u8>) {
    let mut it = rest.splitn(3, |b| *b == b'\n');
    let header = String::from_utf8_lossy(it.next().unwrap_or_default()).into_owned();
    let query = String::from_utf8_lossy(it.next().unwrap_or_default()).into_owned();
    let body = it.next().unwrap_or_default().to_vec();
    (header, query, body)
}

/// Runs one input through the parsers; panics when a parser panics or the webhook answers a bad
/// request with anything but a 4xx, or changes state.
pub fn exercise(data: &[u8]) -> u16 {
    let Some((&selector, rest)) = data.split_first() else {
        return 0;
    };
    let (header, query, body) = parts(rest);
    let text = String::from_utf8_lossy(&body).into_owned();
    let _ = sender::parse_body(&text);
    let _ = verify_webhook(Some(&header), &body, &[WEBHOOK_KEY.to_vec()], now());
    for p in [
        Purpose::Survey,
        Purpose::Unsubscribe,
        Purpose::FewerEmails,
        Purpose::FollowUp,
    ] {
        let _ = verify_link(&shared::signing::LinkKeys::one(LINK_KEY), &header, p, now());
    }
    let _ = shared::domain::reward::RewardCode::parse(&header);

    let (method, path) = match selector % 6 {
        0 => ("POST", "/v1/activity".to_string()),
        1 => ("GET", "/v1/survey".to_string()),
        2 => ("POST", "/v1/unsubscribe".to_string()),
        3 => ("POST", "/v1/preferences".to_string()),
        4 => ("GET", format!("/v1/rewards/{}", header.trim())),
        _ => ("DELETE", format!("/v1/customers/{}", header.trim())),
    };
    let store = Arc::new(MemoryStore::new());
    store.set_clock(now());
    let deps = webhook::Deps::in_process(
        store.clone(),
        Arc::new(Campaign::embedded("example").expect("the example campaign")),
        webhook::Keys::one(WEBHOOK_KEY, LINK_KEY),
        "https://hooks.example.com",
    );
    let req = webhook::HttpRequest {
        method: method.into(),
        path,
        query,
        headers: vec![
            ("winback-signature".into(), header),
            ("content-type".into(), "application/json".into()),
        ],
        body,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let resp = rt.block_on(webhook::handle_http(&deps, req, now()));
    assert!(
        (400..500).contains(&resp.status),
        "a fuzzed request got {}: {}",
        resp.status,
        resp.body
    );
    assert!(
        store.all_profiles().is_empty()
            && store.all_enrollments().is_empty()
            && store.all_rewards().is_empty()
            && store.writes() == 0,
        "a fuzzed request changed state"
    );
    resp.status
}
