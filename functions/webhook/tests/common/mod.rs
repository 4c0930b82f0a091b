//! A fresh in-memory world per test: store, bus, metrics and the example campaign.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;
use shared::adapters::embedded::{MemoryBus, MemoryNotifier, MemoryStore};
use shared::campaign::testing::example;
use shared::domain::customer::{EmailStatus, Profile};
use shared::domain::experiment::Group;
use shared::domain::metrics::{CohortKey, Counts};
use shared::domain::reward::{Reward, RewardCode};
use shared::domain::sequence::{Enrollment, ExitReason, Status};
use shared::emf::MemoryMetrics;
use shared::ports::{EnrollmentStore, MetricsStore, ProfileStore, RewardStore};
use shared::signing::{sign_link, LinkClaims, Purpose};
use test_support::requests;
use webhook::{Deps, HttpRequest, HttpResponse, Keys};

pub const WEBHOOK_KEY: &[u8] = b"test-webhook-key";
pub const LINK_KEY: &[u8] = b"test-link-key";
pub const STAFF_KEY: &[u8] = b"test-staff-key";
pub const CUSTOMER: &str = "c-1001";
pub const CODE: &str = "WB-7Q2K-9XPD-4HMR";
pub const VARIANT: &str = "amount-10";
/// The platforms' secrets the fixtures are signed with (tests/fixtures/platforms/sign.py).
pub const SHOPIFY_SECRET: &[u8] = b"test-shopify-client-secret";
pub const WOOCOMMERCE_SECRET: &[u8] = b"test-woocommerce-webhook-secret";
pub const STRIPE_SECRET: &[u8] = b"whsec_test_stripe_endpoint_secret";

pub fn platform_keys() -> webhook::PlatformKeys {
    webhook::PlatformKeys {
        shopify: vec![b"newer-shopify-secret".to_vec(), SHOPIFY_SECRET.to_vec()],
        woocommerce: vec![WOOCOMMERCE_SECRET.to_vec()],
        stripe: vec![STRIPE_SECRET.to_vec()],
        shopify_shop: Some(SHOPIFY_SHOP.into()),
        woocommerce_source: Some(WOOCOMMERCE_SOURCE.into()),
    }
}

/// The shop and store the tests' deployment is connected to (the deliveries' headers).
pub const SHOPIFY_SHOP: &str = "roastery.myshopify.com";
pub const WOOCOMMERCE_SOURCE: &str = "https://roastery.example/";

/// The fixtures' time: 2026-11-22T10:15:00Z.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 0).unwrap()
}

pub struct World {
    pub store: Arc<MemoryStore>,
    pub bus: Arc<MemoryBus>,
    pub metrics: Arc<MemoryMetrics>,
    pub notifier: Arc<MemoryNotifier>,
    pub deps: Deps,
}

pub fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    store.set_clock(now());
    let bus = Arc::new(MemoryBus::new());
    let metrics = Arc::new(MemoryMetrics::default());
    let notifier = Arc::new(MemoryNotifier::new());
    let deps = Deps {
        store: store.clone(),
        bus: bus.clone(),
        campaign: Arc::new(example().clone()),
        keys: Keys {
            webhook: vec![b"newer-key".to_vec(), WEBHOOK_KEY.to_vec()],
            link: shared::signing::LinkKeys::one(LINK_KEY),
            staff: shared::signing::LinkKeys::one(STAFF_KEY),
            platforms: platform_keys(),
            signature_v1: true,
            pseudonym: shared::pseudonym::Pseudonyms::new(b"test-pseudonym-key"),
        },
        public_base_url: "https://hooks.example.com/".into(),
        metrics: metrics.clone(),
        notifier: Some(notifier.clone()),
    };
    World {
        store,
        bus,
        metrics,
        notifier,
        deps,
    }
}

/// A world with [`CUSTOMER`] enrolled as [`World::enrolled_customer`] enrols them.
pub async fn enrolled_world() -> World {
    world_with_enrollment().await.0
}

/// A world with [`CUSTOMER`] enrolled, and the enrollment.
pub async fn world_with_enrollment() -> (World, Enrollment) {
    let w = world();
    let e = w.enrolled_customer().await;
    (w, e)
}

/// A world with `customer` enrolled (treated, step 1 sent, the reward issued) a day ago.
pub async fn enrolled_world_of(customer: &str) -> World {
    let w = world();
    w.enrolled(customer, Group::Treated, VARIANT, now() - Duration::days(1))
        .await;
    w
}

/// The raw bytes of a platform fixture and the signature header sign.py made for it.
pub fn platform_fixture(name: &str) -> (Vec<u8>, String) {
    let dir = format!("{}/tests/fixtures/platforms", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(format!("{dir}/{name}")).expect("fixture exists");
    let sigs: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/signatures.json")).expect("signatures exist"),
    )
    .expect("signatures are JSON");
    let sig = sigs[name]
        .as_str()
        .expect("sign.py signed the fixture")
        .to_string();
    (body, sig)
}

/// A platform's webhook delivery of `body` with `headers`.
pub fn platform_post(platform: &str, headers: &[(&str, &str)], body: Vec<u8>) -> HttpRequest {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    requests::platform_delivery(platform, headers, body)
}

/// A Shopify delivery of a fixture on `topic`, signed as sign.py signed it.
pub fn shopify(topic: &str, fixture: &str) -> HttpRequest {
    let (body, sig) = platform_fixture(fixture);
    platform_post(
        "shopify",
        &[
            ("X-Shopify-Topic", topic),
            ("X-Shopify-Hmac-Sha256", &sig),
            ("X-Shopify-Shop-Domain", SHOPIFY_SHOP),
            ("X-Shopify-Triggered-At", &now().to_rfc3339()),
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
        ],
        body,
    )
}

/// A WooCommerce delivery of a fixture on `topic`.
pub fn woocommerce(topic: &str, fixture: &str) -> HttpRequest {
    let (body, sig) = platform_fixture(fixture);
    platform_post(
        "woocommerce",
        &[
            ("X-WC-Webhook-Topic", topic),
            ("X-WC-Webhook-Signature", &sig),
            ("X-WC-Webhook-Source", "https://roastery.example/"),
            (
                "X-WC-Webhook-Delivery-ID",
                "36e520ebabc2fa725092ff4a47acedf2",
            ),
        ],
        body,
    )
}

/// A Stripe delivery of a fixture, signed by Stripe's library at [`now`].
pub fn stripe(fixture: &str) -> HttpRequest {
    let (body, sig) = platform_fixture(fixture);
    platform_post("stripe", &[("Stripe-Signature", &sig)], body)
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists"))
        .expect("fixture is JSON")
}

/// Everything the store holds, to compare before and after.
pub type Snapshot = (
    Vec<Profile>,
    Vec<Enrollment>,
    Vec<Reward>,
    Vec<shared::domain::metrics::CounterRow>,
    Vec<shared::ports::OrderOwner>,
);

impl World {
    pub async fn snapshot(&self) -> Snapshot {
        let mut rewards = self.store.all_rewards();
        rewards.sort_by(|a, b| a.code.cmp(&b.code));
        (
            self.store.all_profiles(),
            self.store.all_enrollments(),
            rewards,
            self.store.counter_rows("example").await.unwrap(),
            self.store.all_order_owners(),
        )
    }

    pub async fn http(&self, req: HttpRequest) -> HttpResponse {
        webhook::handle_http(&self.deps, req, now()).await
    }

    /// A known customer with two orders, enrolled (treated, step 1 sent a day ago) with a reward.
    pub async fn enrolled_customer(&self) -> Enrollment {
        self.enrolled(CUSTOMER, Group::Treated, VARIANT, now() - Duration::days(1))
            .await
    }

    pub async fn enrolled(
        &self,
        customer: &str,
        group: Group,
        variant: &str,
        at: DateTime<Utc>,
    ) -> Enrollment {
        let mut p = Profile::new(customer.parse().unwrap());
        p.email = Some("ada@example.com".into());
        p.first_name = Some("Ada".into());
        p.locale = Some("sv-SE".into());
        for days in [200, 170] {
            p.record_order(shared::domain::customer::OrderRecord {
                at: now() - Duration::days(days),
                amount: shared::domain::money::Money(3000),
                product: Some("beans".into()),
                category: Some("coffee".into()),
                currency: None,
                order_id: None,
                refunded: Default::default(),
                refund_ids: Vec::new(),
                lines: Vec::new(),
            });
        }
        self.store.save_profile(&p).await.unwrap();
        let c = example().config();
        let mut e = Enrollment::start(&customer.parse().unwrap(), c, 1, group, variant, at);
        if group == Group::Treated {
            e = e.record_sent(1, at, Some("m-1".into()), c).unwrap();
            let r = Reward::issue(
                RewardCode::parse(CODE).unwrap(),
                c.rewards.default.clone(),
                &customer.parse().unwrap(),
                &c.name,
                &e.id,
                variant,
                1,
                "EUR",
                at,
            );
            self.store.insert_reward(&r).await.unwrap();
            e.reward_code = Some(CODE.into());
        }
        self.store.save_enrollment(&e).await.unwrap();
        let key = CohortKey {
            campaign: c.name.clone(),
            variant: variant.into(),
            group,
        };
        self.store
            .add_counts(&key, Some(at.date_naive()), &[("enrolled", 1)])
            .await
            .unwrap();
        self.store
            .get_enrollment(customer, &c.name)
            .await
            .unwrap()
            .unwrap()
    }

    /// `customer` enrolled in the holdout group at `at`.
    pub async fn holdout(&self, customer: &str, at: DateTime<Utc>) -> Enrollment {
        self.enrolled(customer, Group::Holdout, "holdout", at).await
    }

    pub async fn profile(&self, id: &str) -> Profile {
        self.store
            .get_profile(id)
            .await
            .unwrap()
            .expect("profile exists")
    }

    pub async fn enrollment(&self, id: &str) -> Enrollment {
        self.store
            .get_enrollment(id, "example")
            .await
            .unwrap()
            .expect("enrollment exists")
    }

    /// [`CUSTOMER`]'s email status is `email`, their enrollment ended for `reason`, and the
    /// treated cohort counted `counter` once.
    pub async fn assert_ended(&self, email: EmailStatus, reason: ExitReason, counter: &str) {
        assert_eq!(self.profile(CUSTOMER).await.email_status, email);
        let status = self.enrollment(CUSTOMER).await.status;
        assert!(
            matches!(status, Status::Exited { reason: r, .. } if r == reason),
            "{status:?}"
        );
        assert_eq!(self.totals(VARIANT, Group::Treated).await.get(counter), 1);
    }

    /// Totals of one cohort.
    pub async fn totals(&self, variant: &str, group: Group) -> Counts {
        let mut c = Counts::default();
        for r in self.store.counter_rows("example").await.unwrap() {
            if r.day.is_none() && r.key.variant == variant && r.key.group == group {
                c.merge(&r.counts);
            }
        }
        c
    }
}

pub fn signed_post(path: &str, body: &str, key: &[u8], t: DateTime<Utc>) -> HttpRequest {
    requests::signed_post(path, body, key, t)
}

pub fn activity(body: &Value) -> HttpRequest {
    signed_post("/v1/activity", &body.to_string(), WEBHOOK_KEY, now())
}

pub fn signed_bodiless(method: &str, path: &str) -> HttpRequest {
    requests::signed_bodiless(method, path, WEBHOOK_KEY, now())
}

pub fn token(purpose: Purpose, enrollment_id: &str) -> String {
    sign_link(
        &shared::signing::LinkKeys::one(LINK_KEY),
        &LinkClaims {
            purpose,
            customer_id: CUSTOMER.parse().unwrap(),
            campaign: "example".into(),
            enrollment_id: enrollment_id.into(),
            step: 1,
            expires: (now() + Duration::days(30)).timestamp(),
        },
    )
}

pub fn link(method: &str, path: &str, query: &str, body: &str) -> HttpRequest {
    requests::form(method, path, query, body)
}

pub fn order(event_id: &str, occurred_at: DateTime<Utc>, value: &str) -> Value {
    serde_json::json!({
        "event_id": event_id,
        "customer_id": CUSTOMER,
        "type": "order",
        "occurred_at": occurred_at.to_rfc3339(),
        "amount": {"value": value, "currency": "EUR"},
    })
}
