//! Each platform's checkout against the fake shop of the local stack (infra/local/fake_shop.py),
//! which checks every request against the platform's published schema (infra/local/schemas/:
//! Shopify Admin GraphQL 2025-10, WooCommerce REST v3, Stripe 2026-10-28.endive) and answers as
//! the platform documents it, errors included. Run through `infra/test`, or with the stack's env
//! file sourced.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use shared::adapters::checkout::{connect, Connection};
use shared::domain::checkout::{request, CodeRequest};
use shared::domain::money::Money;
use shared::domain::reward::{CheckoutPlatform, Reward, RewardCode, RewardKind, RewardSpec};
use shared::ports::{Checkout, CheckoutError};
use tokio::sync::Mutex;
use winback_tests::shop::FakeShop;

/// The shop's modes are shared: one test at a time.
static SHOP: Mutex<()> = Mutex::const_new(());

const PLATFORMS: [CheckoutPlatform; 3] = [
    CheckoutPlatform::Shopify,
    CheckoutPlatform::Woocommerce,
    CheckoutPlatform::Stripe,
];

fn checkout(shop: &FakeShop, platform: CheckoutPlatform) -> std::sync::Arc<dyn Checkout> {
    let json = match platform {
        CheckoutPlatform::Shopify => json!({"platform": "shopify", "shop": "demo.myshopify.com",
            "access_token": "shpat-local", "endpoint": shop.url}),
        CheckoutPlatform::Woocommerce => json!({"platform": "woocommerce",
            "url": "https://shop.example.com", "consumer_key": "ck_local",
            "consumer_secret": "cs_local", "endpoint": shop.url}),
        _ => json!({"platform": "stripe", "secret_key": "rk_test_local", "endpoint": shop.url}),
    };
    connect(Connection::parse(&json.to_string()).unwrap(), platform).unwrap()
}

fn code(platform: CheckoutPlatform, kind: RewardKind, value: i64, seed: u8) -> CodeRequest {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let spec = RewardSpec {
        amounts: Default::default(),
        kind,
        value: Some(Money(value)),
        product: None,
        orders: None,
        validity_days: 14,
    };
    let customer = match platform {
        CheckoutPlatform::Stripe => "cus_Q1w2E3r4",
        _ => "7408",
    };
    let r = Reward::issue(
        RewardCode::from_entropy([seed, 2, 3, 4, 5, 6, 7, 8]),
        spec,
        &customer.parse().unwrap(),
        "example",
        "e#1",
        "amount-10",
        1,
        "EUR",
        at,
    );
    request(platform, &r, Some("ada@example.com"))
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn each_platform_gets_one_code_per_reward_for_that_customer_whatever_is_retried() {
    let _one = SHOP.lock().await;
    let shop = FakeShop::from_env();
    for platform in PLATFORMS {
        for (kind, value) in [
            (RewardKind::AmountOff, 1000),
            (RewardKind::PercentOff, 1500),
        ] {
            shop.reset();
            let c = checkout(&shop, platform);
            let req = code(platform, kind, value, 1);
            c.create_code(&req).await.unwrap();
            c.create_code(&req)
                .await
                .expect("a retry finds the code made: done");
            assert_eq!(shop.codes(), 1, "{platform:?} {kind:?}: exactly one code");
            let kept = shop.code(&req.code).expect("the shop has the code");
            assert_eq!(kept["active"], true);
            let sent = &kept["request"];
            let ends = req.ends_at;
            match platform {
                CheckoutPlatform::Shopify => {
                    assert_eq!(sent["usageLimit"], 1);
                    assert_eq!(
                        sent["context"]["customers"]["add"],
                        json!(["gid://shopify/Customer/7408"])
                    );
                    assert_eq!(sent["endsAt"], ends.to_rfc3339());
                    match kind {
                        RewardKind::AmountOff => assert_eq!(
                            sent["customerGets"]["value"]["discountAmount"]["amount"],
                            "10.00"
                        ),
                        _ => assert_eq!(sent["customerGets"]["value"]["percentage"], 0.15),
                    }
                }
                CheckoutPlatform::Woocommerce => {
                    assert_eq!(sent["email_restrictions"], json!(["ada@example.com"]));
                    assert_eq!(sent["usage_limit"], 1);
                    assert_eq!(
                        sent["date_expires_gmt"],
                        ends.format("%Y-%m-%dT%H:%M:%S").to_string()
                    );
                    let (t, a) = match kind {
                        RewardKind::AmountOff => ("fixed_cart", "10.00"),
                        _ => ("percent", "15.00"),
                    };
                    assert_eq!(
                        (sent["discount_type"].as_str(), sent["amount"].as_str()),
                        (Some(t), Some(a))
                    );
                }
                _ => {
                    assert_eq!(sent["customer"], "cus_Q1w2E3r4");
                    assert_eq!(sent["max_redemptions"], 1);
                    assert_eq!(sent["expires_at"], ends.timestamp());
                    let coupon = &kept["coupon"];
                    match kind {
                        RewardKind::AmountOff => {
                            assert_eq!(
                                (coupon["amount_off"].clone(), coupon["currency"].clone()),
                                (json!(1000), json!("eur"))
                            )
                        }
                        _ => assert_eq!(coupon["percent_off"], 15.0),
                    }
                }
            }
            c.disable_code(&req.code).await.unwrap();
            let kept = shop.code(&req.code).unwrap();
            assert_eq!(kept["active"], false, "{platform:?}: disabled");
            assert_eq!(shop.violations(), Vec::<Value>::new(), "{platform:?}");
        }
    }
}

#[tokio::test]
async fn an_outage_or_a_rate_limit_is_an_error_to_wait_on_and_the_retry_makes_one_code() {
    let _one = SHOP.lock().await;
    let shop = FakeShop::from_env();
    for platform in PLATFORMS {
        shop.reset();
        let c = checkout(&shop, platform);
        let req = code(platform, RewardKind::AmountOff, 1000, 2);
        shop.mode(json!({"down": true}));
        let down = c.create_code(&req).await.unwrap_err();
        assert!(
            matches!(down, CheckoutError::Unavailable(_)),
            "{platform:?}: {down}"
        );
        shop.mode(json!({"down": false, "rate_limited": 1}));
        let limited = c.create_code(&req).await.unwrap_err();
        match limited {
            CheckoutError::RateLimited {
                retry_after_seconds,
            } => {
                assert_eq!(
                    retry_after_seconds, 3,
                    "{platform:?}: the wait the shop asked for"
                )
            }
            other => panic!("{platform:?}: {other}"),
        }
        c.create_code(&req).await.unwrap();
        assert_eq!(shop.codes(), 1, "{platform:?}");
        assert_eq!(shop.violations(), Vec::<Value>::new());
    }
}

#[tokio::test]
async fn wrong_keys_are_a_refusal_not_an_outage() {
    let _one = SHOP.lock().await;
    let shop = FakeShop::from_env();
    shop.reset();
    let json = json!({"platform": "stripe", "secret_key": "rk_wrong", "endpoint": shop.url});
    let c = connect(
        Connection::parse(&json.to_string()).unwrap(),
        CheckoutPlatform::Stripe,
    )
    .unwrap();
    let err = c
        .create_code(&code(
            CheckoutPlatform::Stripe,
            RewardKind::AmountOff,
            1000,
            3,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CheckoutError::Refused { status: 401, .. }),
        "{err}"
    );
    assert!(
        !err.to_string().contains("rk_wrong"),
        "no key in the message"
    );
    assert_eq!(shop.codes(), 0);
}

#[tokio::test]
async fn the_fake_shop_refuses_what_each_schema_refuses() {
    let _one = SHOP.lock().await;
    let shop = FakeShop::from_env();
    shop.reset();
    let gql = json!({"query": "mutation M($b: DiscountCodeBasicInput!) { discountCodeBasicCreate(basicCodeDiscount: $b) { userErrors { code } } }",
        "variables": {"b": {"code": "X", "usageLimit": "one"}}});
    shop.raw(
        "POST",
        "/admin/api/2025-10/graphql.json",
        &[("X-Shopify-Access-Token", "shpat-local")],
        &gql.to_string(),
    );
    shop.raw(
        "POST",
        "/wp-json/wc/v3/coupons",
        &[("Authorization", "Basic Y2tfbG9jYWw6Y3NfbG9jYWw=")],
        &json!({"code": "X", "amount": 10, "usage_count": 3}).to_string(),
    );
    shop.raw(
        "POST",
        "/v1/promotion_codes",
        &[
            ("Authorization", "Bearer rk_test_local"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "coupon=X&max_redemptions=one",
    );
    let seen: Vec<String> = shop
        .violations()
        .iter()
        .map(|v| v["platform"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(seen, ["shopify", "woocommerce", "stripe"]);
    assert_eq!(shop.codes(), 0);
}
