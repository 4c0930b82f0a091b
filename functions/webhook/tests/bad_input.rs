//! Random bodies, headers, paths and tokens: never a 5xx, never a change.

mod common;

use common::*;
use proptest::prelude::*;
use shared::signing::{sign_webhook, Purpose};
use webhook::HttpRequest;

/// One of `values`, each as likely.
fn known(values: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(values)
        .prop_map(str::to_string)
        .boxed()
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => known(&["GET", "POST", "DELETE", "PUT"]),
        1 => "[A-Za-z]{0,8}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => known(&[
            "/v1/activity",
            "/v1/survey",
            "/v1/unsubscribe",
            "/v1/preferences"
        ]),
        1 => "/v1/rewards/[A-Za-z0-9%-]{0,24}",
        1 => "/v1/rewards/(WB-7Q2K-9XPD-4HMR|[A-Za-z0-9%-]{0,24})/reserve",
        1 => "/v1/customers/[A-Za-z0-9%-]{0,24}",
        1 => "/v1/platforms/(shopify|woocommerce|stripe|[a-z]{0,8})",
        1 => "/[ -~]{0,40}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let forged_token = (any::<u8>(), "[A-Za-z0-9_-]{0,6}").prop_map(|(n, junk)| {
        let t = token(
            if n % 2 == 0 {
                Purpose::Survey
            } else {
                Purpose::Unsubscribe
            },
            "c-1001#example#1",
        );
        let (body, sig) = t.split_once('.').unwrap();
        format!("t={body}{junk}.{}A&a={}", &sig[..sig.len() - 1], n % 13)
    });
    prop_oneof![
        "[ -~]{0,80}",
        forged_token,
        "t=[A-Za-z0-9._-]{0,120}&a=[a-z0-9_]{0,14}",
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let sig = prop_oneof![
        "t=[0-9]{0,12},v1=[0-9a-f]{0,64}",
        "[ -~]{0,80}",
        any::<i64>().prop_map(|t| sign_webhook(WEBHOOK_KEY, t, b"{}")),
    ];
    (
        proptest::option::of(sig),
        proptest::option::of("[ -~]{0,40}"),
        proptest::collection::vec(("[a-z-]{1,16}", "[ -~]{0,40}"), 0..4),
    )
        .prop_map(|(sig, lang, mut other)| {
            if let Some(s) = sig {
                // The same junk under each platform's signature header too.
                for name in [
                    "x-shopify-hmac-sha256",
                    "x-wc-webhook-signature",
                    "stripe-signature",
                ] {
                    other.push((name.into(), s.clone()));
                }
                other.push(("winback-signature".into(), s));
            }
            other.push(("x-shopify-topic".into(), "orders/paid".into()));
            other.push(("x-wc-webhook-topic".into(), "order.created".into()));
            if let Some(l) = lang {
                other.push(("accept-language".into(), l));
            }
            other
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[ -~]{0,200}".prop_map(String::into_bytes),
        Just(b"List-Unsubscribe=One-Click".to_vec()),
        Just(b"choice=unsubscribe".to_vec()),
        "[ -~]{0,40}".prop_map(|r| serde_json::json!({ "order_ref": r }).to_string().into_bytes()),
        (0usize..3).prop_map(|n| {
            let kind = ["order", "login", "x"][n];
            let v = serde_json::json!({"event_id": "e", "customer_id": CUSTOMER, "type": kind,
                                       "occurred_at": now().to_rfc3339(), "amount": {"value": "1.00", "currency": "EUR"}});
            v.to_string().into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_get_a_5xx_and_never_change_state(
        method in method(), path in path(), query in query(), headers in headers(), body in body()
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let w = enrolled_world().await;
            let before = w.snapshot().await;
            let resp = w.http(HttpRequest { method, path, query, headers, body }).await;
            prop_assert!(resp.status < 500, "status {} body {}", resp.status, resp.body);
            prop_assert!(resp.status >= 400 || resp.status == 200);
            if resp.status >= 400 {
                prop_assert_eq!(w.snapshot().await, before);
                prop_assert!(w.bus.drain().is_empty());
            }
            Ok(())
        })?;
    }

    #[test]
    fn random_lambda_payloads_never_panic(payload in "[ -~]{0,200}", key in "[a-zA-Z]{1,12}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let w = world();
            let before = w.snapshot().await;
            let event = serde_json::json!({ "requestContext": { "http": { "method": "POST" } }, key.clone(): payload.clone() });
            let out = webhook::handle(&w.deps, event, now()).await.unwrap();
            prop_assert!(out["statusCode"].as_i64().unwrap() < 500);
            let stranger = serde_json::json!({ "source": payload, "detail-type": key });
            prop_assert!(webhook::handle(&w.deps, stranger, now()).await.is_err());
            prop_assert_eq!(w.snapshot().await, before);
            Ok(())
        })?;
    }
}
