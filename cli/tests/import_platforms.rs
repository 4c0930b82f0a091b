//! `winback import --from shopify|woocommerce|stripe` against the local stack: the fake shop
//! (infra/local/fake_shop.py, every request checked against the platform's vendored schema)
//! lists a few hundred seeded orders over several pages, the import merges them into a table on
//! DynamoDB Local, and the profiles hold exactly the paid orders, refunds taken off, in their
//! own currencies, however often the import runs or resumes, waiting out a rate limit and a 5xx
//! on the way, never resubscribing anyone. Run through `infra/test`, or with the stack's env
//! file sourced.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use shared::campaign::testing::example;
use shared::domain::customer::{EmailStatus, Profile};
use shared::ports::{OrderIndex, ProfileStore, Store};
use shared::retry::RetryPolicy;
use tokio::sync::Mutex;
use winback_cli::import::Target;
use winback_cli::shop_import::{self, Options, Patience, Platform, ShopImportSummary};
use winback_tests::shop::FakeShop;
use winback_tests::{LocalStack, LocalTable};

/// The shop's orders and modes are shared: one test at a time.
static SHOP: Mutex<()> = Mutex::const_new(());

const CUSTOMERS: usize = 120;
const ORDERS: usize = 300;

/// Retries within a test's time; rate limits are still waited out for as long as the shop asks.
const PATIENCE: Patience = Patience {
    retry: RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(20),
    },
    rate_limit_waits: 5,
};

/// The platform's id of customer `i` (`None`: a guest checkout, every 40th customer).
fn platform_id(platform: Platform, i: usize) -> Option<String> {
    if i % 40 == 39 {
        return None;
    }
    Some(match platform {
        Platform::Shopify => format!("{}", 7000 + i),
        Platform::Woocommerce => format!("{}", 500 + i),
        Platform::Stripe => format!("cus_T{i:04}"),
    })
}

fn email(i: usize) -> String {
    format!("buyer{i}@example.com")
}

/// The deployment's pseudonym key, as the webhook would have it.
fn pseudonyms() -> shared::pseudonym::Pseudonyms {
    shared::pseudonym::Pseudonyms::new(b"import test pseudonym key")
}

/// What winback should know customer `i` by (a WooCommerce guest by a hash of the address,
/// as the webhook knows them), if anything.
fn winback_id(platform: Platform, i: usize) -> Option<String> {
    match (platform, platform_id(platform, i)) {
        (_, Some(id)) => Some(id),
        (Platform::Woocommerce, None) => Some(pseudonyms().woocommerce_guest(&email(i))),
        _ => None,
    }
}

/// The seeded orders: every customer orders in their currency (every fifth in SEK), some
/// orders refunded in part or in full, cancelled or never paid; customer 3 unsubscribed at
/// Shopify.
fn seed() -> Vec<(usize, Value)> {
    let start = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
    (0..ORDERS)
        .map(|n| {
            let i = n % CUSTOMERS;
            let status = match n {
                n if n % 23 == 5 => "refunded",
                n if n % 17 == 4 => "cancelled",
                n if n % 19 == 7 => "pending",
                n if n % 7 == 2 => "partially_refunded",
                _ => "paid",
            };
            let amount = 10 + (n % 13) * 3;
            let at = start + chrono::Duration::hours(n as i64 * 29);
            (
                i,
                json!({
                    "id": 10_000 + n,
                    "email": email(i),
                    "first_name": "Ada",
                    "locale": if i.is_multiple_of(2) { "sv" } else { "en" },
                    "currency": if i.is_multiple_of(5) { "SEK" } else { "EUR" },
                    "amount": format!("{amount}.50"),
                    "refunded": "2.00",
                    "at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "status": status,
                    "marketing": if i == 3 { "UNSUBSCRIBED" } else { "SUBSCRIBED" },
                    "lines": [{"title": "Espresso beans", "category": "coffee", "quantity": 2,
                               "price": format!("{}.00", amount - 2)},
                              {"title": "Filter papers", "category": "accessories",
                               "quantity": 1, "price": "3.50"}],
                }),
            )
        })
        .collect()
}

/// The seed for `platform`: customers as the platform names them.
fn seed_for(platform: Platform) -> Vec<Value> {
    seed()
        .into_iter()
        .map(|(i, mut o)| {
            o["customer"] = platform_id(platform, i).map_or(Value::Null, Value::String);
            o
        })
        .collect()
}

/// Orders and the sum each customer should have: paid orders, less what was refunded.
fn expected(platform: Platform) -> BTreeMap<String, (u32, i64, &'static str)> {
    let mut out: BTreeMap<String, (u32, i64, &'static str)> = BTreeMap::new();
    for (i, o) in seed() {
        let Some(id) = winback_id(platform, i) else {
            continue;
        };
        let cents = shared::domain::money::Money::parse(o["amount"].as_str().unwrap())
            .unwrap()
            .0;
        let net = match o["status"].as_str().unwrap() {
            "paid" => cents,
            "partially_refunded" => cents - 200,
            _ => continue,
        };
        let e = out
            .entry(id)
            .or_insert((0, 0, if i.is_multiple_of(5) { "SEK" } else { "EUR" }));
        e.0 += 1;
        e.1 += net;
    }
    out
}

fn connection(platform: Platform, shop: &FakeShop) -> String {
    match platform {
        Platform::Shopify => json!({"platform": "shopify", "shop": "demo.myshopify.com",
            "access_token": "shpat-local", "endpoint": shop.url}),
        Platform::Woocommerce => json!({"platform": "woocommerce",
            "url": "https://shop.example.com", "consumer_key": "ck_local",
            "consumer_secret": "cs_local", "endpoint": shop.url}),
        Platform::Stripe => {
            json!({"platform": "stripe", "secret_key": "rk_test_local", "endpoint": shop.url})
        }
    }
    .to_string()
}

fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(winback_tests::unique(label));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("import-state.json")
}

async fn import(
    platform: Platform,
    shop: &FakeShop,
    table: &LocalTable,
    resume: &std::path::Path,
) -> winback_cli::error::CliResult<ShopImportSummary> {
    let opts = Options {
        platform,
        connection: connection(platform, shop),
        pseudonyms: Some(pseudonyms()),
        target: Target::Aws,
        resume_file: resume.to_path_buf(),
        at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        patience: PATIENCE,
        progress: false,
    };
    let store: Arc<dyn Store> = table.store.clone();
    shop_import::run_on(&opts, example().config(), store, None).await
}

async fn profiles(table: &LocalTable, platform: Platform) -> BTreeMap<String, Profile> {
    let mut out = BTreeMap::new();
    for i in 0..CUSTOMERS {
        if let Some(id) = winback_id(platform, i) {
            if let Some(p) = table.store.get_profile(&id).await.unwrap() {
                out.insert(id, p);
            }
        }
    }
    out
}

/// Every customer holds exactly the expected orders and amounts, in their currency.
fn check(platform: Platform, got: &BTreeMap<String, Profile>) {
    let want = expected(platform);
    assert_eq!(got.len(), want.len(), "{platform:?}: customers");
    for (id, (orders, cents, currency)) in &want {
        let p = &got[id];
        assert_eq!(p.order_count, *orders, "{platform:?} {id}: orders");
        assert_eq!(p.currency.as_deref(), Some(*currency), "{platform:?} {id}");
        assert_eq!(p.lifetime_value.0, *cents, "{platform:?} {id}: amount");
        assert!(p.lifetime_value_other.is_empty(), "{platform:?} {id}");
    }
}

async fn whole_history(platform: Platform) {
    let _one = SHOP.lock().await;
    let shop = FakeShop::from_env();
    shop.reset();
    shop.seed_orders(&seed_for(platform));
    let stack = LocalStack::from_env().await;
    let table = stack
        .fresh_table(&format!("import-{}", platform.name()))
        .await;
    // Customer 0 unsubscribed through winback's own link before the import.
    let zero = winback_id(platform, 0).unwrap();
    let mut unsubscribed = Profile::new(zero.parse().unwrap());
    unsubscribed.email = Some(email(0));
    unsubscribed.email_status = EmailStatus::Unsubscribed;
    table.store.save_profile(&unsubscribed).await.unwrap();

    // A rate limit on the third request, then a 503.
    shop.mode(json!({"after": 2, "rate_limited": 1, "failing": 1}));
    let state = scratch(&format!("import-{}", platform.name()));
    let first = import(platform, &shop, &table, &state).await.unwrap();
    // Requests per page and orders a second depend on the machine: printed, not asserted.
    eprintln!("{platform:?}: {first:?}");
    assert_eq!(shop.violations(), Vec::<Value>::new(), "{platform:?}");
    let want = expected(platform);
    let orders: u32 = want.values().map(|w| w.0).sum();
    assert_eq!(first.orders, u64::from(orders), "{platform:?}: {first:?}");
    assert_eq!(
        first.rate_limit_waits, 1,
        "{platform:?}: the 429 waited out"
    );
    assert_eq!(first.retries, 1, "{platform:?}: the 503 retried");
    assert!(first.pages >= 3, "{platform:?}: {} pages", first.pages);
    assert!(!state.exists(), "a finished import leaves no state");
    let got = profiles(&table, platform).await;
    check(platform, &got);
    assert_eq!(
        got[&zero].email_status,
        EmailStatus::Unsubscribed,
        "{platform:?}"
    );
    let sample = &got[&winback_id(platform, 1).unwrap()];
    if platform != Platform::Woocommerce {
        assert_eq!(sample.locale.as_deref(), Some("en"), "{platform:?}");
    }
    if platform == Platform::Shopify {
        assert_eq!(
            got[&winback_id(platform, 3).unwrap()].email_status,
            EmailStatus::Unsubscribed,
            "Shopify's UNSUBSCRIBED keeps the customer from email"
        );
        assert_eq!(sample.orders[0].category.as_deref(), Some("coffee"));
        assert_eq!(shop.throttled(), 0, "the cost bucket was honoured");
    }
    if platform != Platform::Stripe {
        assert_eq!(sample.orders[0].product.as_deref(), Some("Espresso beans"));
        // The basket comes in as lines, and each order keeps the id its refunds will name.
        assert_eq!(sample.orders[0].lines.len(), 2, "{platform:?}");
        assert_eq!(sample.favourite_product(), Some("Espresso beans"));
    }
    assert!(
        sample.orders.iter().all(|o| o.order_id.is_some()),
        "{platform:?}: {:?}",
        sample.orders
    );
    // Each order is remembered under its platform's order id, so a refund that names only the
    // order (Shopify's refunds/create) finds its customer.
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    for o in &sample.orders {
        let order_id = o.order_id.as_deref().unwrap();
        let owner = table.store.order_owner(platform.name(), order_id, at).await;
        assert_eq!(
            owner.unwrap().as_deref(),
            Some(sample.customer_id.as_str()),
            "{platform:?}: order {order_id}"
        );
    }

    // The whole history again adds nothing (only due times move: the rebuild after the first
    // run stored the model fitted on these customers, which the second run's merge reads).
    let again = import(platform, &shop, &table, &state).await.unwrap();
    assert_eq!(again.orders, first.orders, "{platform:?}: read again");
    let orders = |ps: &BTreeMap<String, Profile>| -> Vec<_> {
        ps.values()
            .map(|p| {
                (
                    p.order_count,
                    p.lifetime_value,
                    p.orders.clone(),
                    p.email_status,
                )
            })
            .collect()
    };
    let after = profiles(&table, platform).await;
    check(platform, &after);
    assert_eq!(orders(&after), orders(&got), "{platform:?}");
    table.delete().await;
}

async fn interrupted_and_resumed(platform: Platform) {
    let _one = SHOP.lock().await;
    let shop = FakeShop::from_env();
    shop.reset();
    shop.seed_orders(&seed_for(platform));
    let stack = LocalStack::from_env().await;
    let table = stack
        .fresh_table(&format!("resume-{}", platform.name()))
        .await;
    // The shop goes down after two pages (Shopify's first request only learns the page size).
    let pages_before = if platform == Platform::Shopify { 3 } else { 2 };
    shop.mode(json!({"after": pages_before, "down": true}));
    let state = scratch(&format!("resume-{}", platform.name()));
    let failed = import(platform, &shop, &table, &state).await.unwrap_err();
    assert!(
        failed.to_string().contains("page 3") && failed.to_string().contains("resume"),
        "{failed}"
    );
    assert!(
        !failed.to_string().contains("local"),
        "no key in the message"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["pages"], 2, "{saved}");
    let served = shop.pages().len();

    shop.mode(json!({"down": false}));
    let resumed = import(platform, &shop, &table, &state).await.unwrap();
    assert_eq!(resumed.resumed_at_page, 2);
    let first_again = &shop.pages()[served];
    let cursor = match platform {
        Platform::Shopify => &first_again["after"],
        Platform::Woocommerce => &first_again["page"],
        Platform::Stripe => &first_again["starting_after"],
    };
    assert!(
        !cursor.is_null() && cursor != &json!(1),
        "{platform:?}: resumed at the saved cursor, not the first page: {first_again}"
    );
    check(platform, &profiles(&table, platform).await);
    assert_eq!(shop.violations(), Vec::<Value>::new(), "{platform:?}");
    table.delete().await;
}

#[tokio::test]
async fn shopify_history_is_imported_once_whatever_is_retried_or_run_again() {
    whole_history(Platform::Shopify).await;
}

#[tokio::test]
async fn woocommerce_history_is_imported_once_whatever_is_retried_or_run_again() {
    whole_history(Platform::Woocommerce).await;
}

#[tokio::test]
async fn stripe_history_is_imported_once_whatever_is_retried_or_run_again() {
    whole_history(Platform::Stripe).await;
}

#[tokio::test]
async fn an_interrupted_import_resumes_at_its_page_and_counts_nothing_twice() {
    for platform in [Platform::Shopify, Platform::Woocommerce, Platform::Stripe] {
        interrupted_and_resumed(platform).await;
    }
}

#[tokio::test]
async fn a_request_the_schema_refuses_fails_the_import_and_is_recorded() {
    let _one = SHOP.lock().await;
    let shop = FakeShop::from_env();
    shop.reset();
    // Stripe's list takes at most 100: a request for more is refused by the vendored schema.
    let refused = shop.raw(
        "GET",
        "/v1/charges?limit=500",
        &[("Authorization", "Bearer rk_test_local")],
        "",
    );
    assert_eq!(refused["error"]["code"], "parameter_invalid");
    let refused = shop.raw(
        "GET",
        "/wp-json/wc/v3/orders?per_page=100&status=paid",
        &[("Authorization", "Basic Y2tfbG9jYWw6Y3NfbG9jYWw=")],
        "",
    );
    assert_eq!(refused["code"], "rest_invalid_param");
    let seen: Vec<String> = shop
        .violations()
        .iter()
        .map(|v| v["platform"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(seen, ["stripe", "woocommerce"]);
}
