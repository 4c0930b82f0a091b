//! The store contract: one set of tests, run against the embedded store and against the DynamoDB
//! store on DynamoDB Local, so the two cannot drift.
//!
//! The DynamoDB variant needs the local stack's environment (`AWS_ENDPOINT_URL_DYNAMODB`,
//! `WINBACK_TABLE_SPEC`, credentials, region): run the tests through `infra/test`, or start the
//! stack with `infra/local/stack.sh start` and source the env file it prints. Without it the
//! DynamoDB tests fail, unless `WINBACK_SKIP_DYNAMODB=1` asks to skip them. Each DynamoDB test
//! creates its own randomly named table from the spec, so the tests run in parallel.

use shared::adapters::dynamodb::DynamoStore;
use shared::ports::{DueQuery, PageAt, ScanSegment};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use shared::adapters::embedded::MemoryStore;
use shared::campaign::testing::example;
use shared::domain::customer::Profile;
use shared::domain::experiment::Group;
use shared::domain::metrics::CohortKey;
use shared::domain::money::Money;
use shared::domain::reward::{ReserveError, Reward, RewardCode, RewardKind, RewardSpec};
use shared::domain::sequence::{Enrollment, Status};
use shared::ports::*;
use test_support::table::LocalTable;

type Shared = Arc<dyn Store>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 12, 0, 0).unwrap()
}

fn profile(id: &str, due_at: Option<DateTime<Utc>>) -> Profile {
    let mut p = Profile::new(id.parse().unwrap());
    p.email = Some(format!("{id}@example.com"));
    p.order_count = 2;
    p.lifetime_value = Money(4_990);
    p.last_order_at = Some(t0() - Duration::days(90));
    p.tags.insert("vip".into());
    p.due_at = due_at;
    p
}

/// A new treated enrollment (round 1, variant `ten-off`, three days old) in `campaign`, waiting
/// for step 1 at `due_at`.
fn enrollment(customer: &str, campaign: &str, due_at: Option<DateTime<Utc>>) -> Enrollment {
    let mut e = Enrollment::start(
        &customer.parse().unwrap(),
        example().config(),
        1,
        Group::Treated,
        "ten-off",
        t0() - Duration::days(3),
    );
    e.campaign = campaign.into();
    e.id = format!("{customer}#{campaign}#1");
    e.status = Status::Active { next_step: 1 };
    e.due_at = due_at;
    e
}

/// The enrollment `store` holds for `customer` in `campaign`, which must exist.
async fn stored_enrollment(store: &Shared, customer: &str, campaign: &str) -> Enrollment {
    store
        .get_enrollment(customer, campaign)
        .await
        .unwrap()
        .expect("stored")
}

fn reward(code: &str) -> Reward {
    Reward {
        code: RewardCode::parse(code).expect("well-formed code"),
        version: 0,
        customer_id: "c-1".parse().unwrap(),
        campaign: "spring".into(),
        enrollment_id: "c-1#spring#1".into(),
        variant: "ten-off".into(),
        step: 1,
        spec: RewardSpec {
            amounts: Default::default(),
            kind: RewardKind::AmountOff,
            value: Some(Money(1_000)),
            product: None,
            orders: None,
            validity_days: 14,
        },
        currency: "EUR".into(),
        issued_at: t0(),
        expires_at: t0() + Duration::days(14),
        redeemed_at: None,
        voided_at: None,
        uses_left: 1,
        reserved: None,
        in_checkout_at: None,
    }
}

/// `n` customer ids (starting with `prefix`) whose due-index shard is `shard`.
fn ids_in_shard(prefix: &str, shard: u32, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|id| due_shard(id) == shard)
        .take(n)
        .collect()
}

fn assert_conflict<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
    match result {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

async fn profiles_are_created_updated_and_stale_saves_conflict(store: Shared) {
    assert_eq!(store.get_profile("c-1").await.unwrap(), None);
    let mut p = profile("c-1", Some(t0()));
    assert_eq!(store.save_profile(&p).await.unwrap(), 1);
    assert_conflict(store.save_profile(&p).await, "creating twice");

    let stored = store.get_profile("c-1").await.unwrap().expect("stored");
    assert_eq!(stored.version, 1);
    assert_eq!(
        Profile {
            version: 0,
            ..stored.clone()
        },
        p
    );

    p = stored;
    p.first_name = Some("Ada".into());
    assert_eq!(store.save_profile(&p).await.unwrap(), 2);
    assert_conflict(store.save_profile(&p).await, "saving a stale version");
    let stored = store.get_profile("c-1").await.unwrap().expect("stored");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.first_name.as_deref(), Some("Ada"));

    let mut ghost = profile("c-ghost", None);
    ghost.version = 4;
    assert_conflict(
        store.save_profile(&ghost).await,
        "updating a missing profile",
    );
    assert_eq!(store.get_profile("c-ghost").await.unwrap(), None);
}

async fn enrollments_are_kept_per_customer_and_campaign_with_versioned_saves(store: Shared) {
    assert_eq!(store.get_enrollment("c-1", "spring").await.unwrap(), None);
    let spring = enrollment("c-1", "spring", Some(t0()));
    let autumn = enrollment("c-1", "autumn", None);
    assert_eq!(store.save_enrollment(&spring).await.unwrap(), 1);
    assert_eq!(store.save_enrollment(&autumn).await.unwrap(), 1);
    assert_conflict(store.save_enrollment(&spring).await, "creating twice");

    let mut stored = stored_enrollment(&store, "c-1", "spring").await;
    assert_eq!(stored.version, 1);
    assert_eq!(
        Enrollment {
            version: 0,
            ..stored.clone()
        },
        spring
    );

    let stale = stored.clone();
    stored.status = Status::Active { next_step: 2 };
    stored.published_step = 1;
    assert_eq!(store.save_enrollment(&stored).await.unwrap(), 2);
    assert_conflict(
        store.save_enrollment(&stale).await,
        "saving a stale version",
    );

    let back = stored_enrollment(&store, "c-1", "spring").await;
    assert_eq!(back.version, 2);
    assert_eq!(back.status, Status::Active { next_step: 2 });
    let other = stored_enrollment(&store, "c-1", "autumn").await;
    assert_eq!(other.version, 1);
    assert_eq!(other.campaign, "autumn");
    assert_eq!(store.get_enrollment("c-2", "spring").await.unwrap(), None);
}

async fn reward_codes_are_unique_and_rewards_save_by_version(store: Shared) {
    let r = reward("WB-7K3M-Q9XD-2HFP");
    store.insert_reward(&r).await.unwrap();
    assert_conflict(store.insert_reward(&r).await, "inserting a code twice");
    let mut other_customer = reward("WB-7K3M-Q9XD-2HFP");
    other_customer.customer_id = "c-2".parse().unwrap();
    assert_conflict(
        store.insert_reward(&other_customer).await,
        "inserting a used code for someone else",
    );

    let mut stored = store.get_reward(&r.code).await.unwrap().expect("stored");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.customer_id, "c-1");
    assert_eq!(
        Reward {
            version: 0,
            ..stored.clone()
        },
        r
    );

    let stale = stored.clone();
    stored.redeemed_at = Some(t0() + Duration::days(2));
    stored.uses_left = 0;
    assert_eq!(store.save_reward(&stored).await.unwrap(), 2);
    assert_conflict(store.save_reward(&stale).await, "saving a stale reward");
    let back = store.get_reward(&r.code).await.unwrap().expect("stored");
    assert_eq!(back.version, 2);
    assert_eq!(back.uses_left, 0);
    assert_eq!(back.redeemed_at, Some(t0() + Duration::days(2)));

    // Two orders reserve a fresh code from the same read: the conditional write lets one in.
    let fresh = reward("WB-5555-6666-7777");
    store.insert_reward(&fresh).await.unwrap();
    let read = store
        .get_reward(&fresh.code)
        .await
        .unwrap()
        .expect("stored");
    let a = read.reserve(&read.customer_id, "order-A", t0()).unwrap();
    let b = read.reserve(&read.customer_id, "order-B", t0()).unwrap();
    store.save_reward(&a).await.unwrap();
    assert_conflict(store.save_reward(&b).await, "a second order's reservation");
    let held = store
        .get_reward(&fresh.code)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(held.reserved.as_ref().unwrap().order_ref, "order-A");
    assert!(matches!(
        held.reserve(&held.customer_id, "order-B", t0()),
        Err(ReserveError::HeldByAnotherOrder { .. })
    ));

    let never_inserted = reward("WB-2222-3333-4444");
    assert_conflict(
        store.save_reward(&never_inserted).await,
        "saving a reward that was never inserted",
    );
    assert_eq!(store.get_reward(&never_inserted.code).await.unwrap(), None);
}

async fn the_checkpoint_saves_by_version_and_clears_only_at_its_version(store: Shared) {
    assert_eq!(store.get_checkpoint().await.unwrap(), None);
    store.clear_checkpoint(0).await.unwrap();
    let mut c = Checkpoint {
        now: t0(),
        mode: shared::ports::RunMode::Due,
        position: 3,
        cursor: Some("{\"opaque\":\"cursor\"}".into()),
        version: 0,
    };
    assert_eq!(store.save_checkpoint(&c).await.unwrap(), 1);
    assert_conflict(store.save_checkpoint(&c).await, "creating twice");
    c = store.get_checkpoint().await.unwrap().expect("stored");
    assert_eq!(c.version, 1);
    assert_eq!(c.position, 3);
    assert_eq!(c.cursor.as_deref(), Some("{\"opaque\":\"cursor\"}"));

    c.position = 4;
    c.cursor = None;
    assert_eq!(store.save_checkpoint(&c).await.unwrap(), 2);
    assert_conflict(store.clear_checkpoint(1).await, "clearing a stale version");
    assert_eq!(
        store.get_checkpoint().await.unwrap().map(|c| c.position),
        Some(4)
    );
    store.clear_checkpoint(2).await.unwrap();
    assert_eq!(store.get_checkpoint().await.unwrap(), None);
    assert_conflict(store.clear_checkpoint(2).await, "clearing twice");
}

async fn each_campaign_keeps_its_fitted_model_saved_by_version(store: Shared) {
    use shared::domain::model::{CampaignFit, Fit, Variant};
    assert_eq!(store.get_fit("example").await.unwrap(), None);
    let mut f = CampaignFit {
        campaign: "example".into(),
        fit: Fit::prior(Variant::Mbgnbd),
        fitted_at: t0(),
        version: 0,
    };
    f.fit.params.r = 1.25;
    f.fit.customers = 23_570;
    assert_eq!(store.save_fit(&f).await.unwrap(), 1);
    assert_conflict(store.save_fit(&f).await, "creating twice");
    let back = store.get_fit("example").await.unwrap().expect("stored");
    assert_eq!(back.version, 1);
    assert_eq!(back.fit, f.fit);
    assert_eq!(back.fitted_at, t0());
    assert_eq!(store.get_fit("other").await.unwrap(), None);
    let mut newer = back.clone();
    newer.fit.params.r = 2.5;
    assert_eq!(store.save_fit(&newer).await.unwrap(), 2);
    assert_conflict(store.save_fit(&back).await, "saving a stale version");
    let back = store.get_fit("example").await.unwrap().unwrap();
    assert_eq!((back.version, back.fit.params.r), (2, 2.5));
}

/// (kind, customer, campaign, due) of a due item, to compare pages with what was stored.
fn due_summary(item: &DueItem) -> (char, String, String, DateTime<Utc>) {
    match item {
        DueItem::Profile(p) => (
            'P',
            p.customer_id.to_string(),
            String::new(),
            p.due_at.unwrap(),
        ),
        DueItem::Enrollment(e) => (
            'E',
            e.customer_id.to_string(),
            e.campaign.clone(),
            e.due_at.unwrap(),
        ),
    }
}

async fn read_all_due(
    store: &Shared,
    shard: u32,
    now: DateTime<Utc>,
    limit: u32,
) -> (Vec<DueItem>, Vec<usize>) {
    let mut items = Vec::new();
    let mut pages = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = store
            .due_page(DueQuery { shard, now }, PageAt::new(cursor, limit))
            .await
            .unwrap();
        assert!(page.items.len() <= limit as usize);
        assert!(page.items_read >= page.items.len() as u64);
        pages.push(page.items.len());
        items.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            return (items, pages);
        }
    }
    panic!("the due index kept returning cursors after 100 pages");
}

async fn the_due_index_returns_exactly_the_due_items_of_a_shard_oldest_first_in_pages(
    store: Shared,
) {
    let shard = 5;
    let now = t0();
    let ids = ids_in_shard("due", shard, 12);
    let other_shard = ids_in_shard("due", 6, 1).remove(0);
    let mut expected = Vec::new();

    for (i, id) in ids[..5].iter().enumerate() {
        let at = now - Duration::hours(5 - i as i64);
        store.save_profile(&profile(id, Some(at))).await.unwrap();
        expected.push(('P', id.clone(), String::new(), at));
    }
    store
        .save_profile(&profile(&ids[5], Some(now)))
        .await
        .unwrap();
    expected.push(('P', ids[5].clone(), String::new(), now));
    for (id, minutes) in [(&ids[6], 90), (&ids[7], 30)] {
        let at = now - Duration::minutes(minutes);
        store
            .save_enrollment(&enrollment(id, "spring", Some(at)))
            .await
            .unwrap();
        expected.push(('E', id.clone(), "spring".into(), at));
    }
    // A profile and an enrollment of the same customer, both due.
    let at = now - Duration::minutes(150);
    store
        .save_enrollment(&enrollment(&ids[0], "spring", Some(at)))
        .await
        .unwrap();
    expected.push(('E', ids[0].clone(), "spring".into(), at));

    // Not yet due.
    store
        .save_profile(&profile(&ids[8], Some(now + Duration::seconds(1))))
        .await
        .unwrap();
    store
        .save_enrollment(&enrollment(
            &ids[9],
            "spring",
            Some(now + Duration::hours(1)),
        ))
        .await
        .unwrap();
    // Due, then cleared.
    let mut cleared = profile(&ids[10], Some(now - Duration::hours(2)));
    cleared.version = store.save_profile(&cleared).await.unwrap();
    cleared.due_at = None;
    store.save_profile(&cleared).await.unwrap();
    // Due, then moved past now.
    let mut moved = enrollment(&ids[11], "spring", Some(now - Duration::hours(3)));
    moved.version = store.save_enrollment(&moved).await.unwrap();
    moved.due_at = Some(now + Duration::days(1));
    store.save_enrollment(&moved).await.unwrap();
    // Another shard.
    store
        .save_profile(&profile(&other_shard, Some(now - Duration::hours(1))))
        .await
        .unwrap();

    let (items, pages) = read_all_due(&store, shard, now, 3).await;
    assert_eq!(pages[0], 3, "a page fills up to its limit: {pages:?}");
    assert!(
        pages.len() >= 3,
        "nine due items in pages of three: {pages:?}"
    );
    let got: Vec<_> = items.iter().map(due_summary).collect();
    assert!(
        got.windows(2).all(|w| w[0].3 <= w[1].3),
        "oldest first: {got:?}"
    );
    let mut got_sorted = got.clone();
    got_sorted.sort();
    expected.sort();
    assert_eq!(got_sorted, expected);

    // Pages hold whole entities, versions included.
    for item in &items {
        match item {
            DueItem::Profile(p) => {
                assert_eq!(p.version, 1);
                assert_eq!(
                    p.email.as_deref(),
                    Some(format!("{}@example.com", p.customer_id).as_str())
                );
            }
            DueItem::Enrollment(e) => {
                assert_eq!(e.version, 1);
                assert_eq!(e.variant, "ten-off");
            }
        }
    }

    // One big page gives the same items; later, the not-yet-due ones join.
    let (all_at_once, _) = read_all_due(&store, shard, now, 100).await;
    assert_eq!(
        all_at_once
            .iter()
            .map(due_summary)
            .collect::<Vec<_>>()
            .len(),
        9
    );
    let (later, _) = read_all_due(&store, shard, now + Duration::hours(2), 100).await;
    let later_ids: BTreeSet<_> = later.iter().map(|i| i.customer_id().to_string()).collect();
    assert!(later_ids.contains(&ids[8]) && later_ids.contains(&ids[9]));
    assert!(!later_ids.contains(&ids[10]) && !later_ids.contains(&ids[11]));

    let (elsewhere, _) = read_all_due(&store, 6, now, 100).await;
    assert!(elsewhere.iter().any(|i| i.customer_id() == other_shard));
    assert!(elsewhere.iter().all(|i| due_shard(i.customer_id()) == 6));
}

async fn scan_segments_together_cover_every_profile_exactly_once(store: Shared) {
    let profiles: Vec<Profile> = (0..60)
        .map(|i| profile(&format!("scan-{i}"), (i % 3 == 0).then_some(t0())))
        .collect();
    store.put_profiles(&profiles).await.unwrap();
    // Items that are not profiles are never returned by the scan.
    store
        .save_enrollment(&enrollment("scan-1", "spring", Some(t0())))
        .await
        .unwrap();
    store
        .insert_reward(&reward("WB-AAAA-BBBB-CCCC"))
        .await
        .unwrap();
    store
        .add_counts(
            &CohortKey {
                campaign: "spring".into(),
                variant: "ten-off".into(),
                group: Group::Treated,
            },
            None,
            &[("sent", 1)],
        )
        .await
        .unwrap();

    let total = 4;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut read = 0;
    for segment in 0..total {
        let mut cursor = None;
        for page_no in 0.. {
            assert!(page_no < 200, "segment {segment} never ended");
            let page = store
                .scan_profiles(ScanSegment::new(segment, total), PageAt::new(cursor, 7))
                .await
                .unwrap();
            assert!(page.items.len() <= 7);
            read += page.items_read;
            for p in page.items {
                assert_eq!(p.version, 1);
                *seen.entry(p.customer_id.into_string()).or_default() += 1;
            }
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    let expected: BTreeMap<String, usize> = profiles
        .iter()
        .map(|p| (p.customer_id.to_string(), 1))
        .collect();
    assert_eq!(seen, expected);
    assert!(
        read >= 60,
        "a scan reads at least every profile, read {read}"
    );
}

async fn bulk_profile_writes_beyond_one_batch_are_all_stored(store: Shared) {
    let shard = 2;
    let ids = ids_in_shard("bulk", shard, 3);
    let mut profiles: Vec<Profile> = (0..57)
        .map(|i| profile(&format!("bulk-x{i}"), None))
        .collect();
    for id in &ids {
        profiles.push(profile(id, Some(t0() - Duration::hours(1))));
    }
    // The same customer twice: the last one wins.
    let mut twice = profile("bulk-x3", None);
    twice.first_name = Some("Second".into());
    profiles.push(twice);
    assert_eq!(store.put_profiles(&profiles).await.unwrap(), profiles.len());

    for p in &profiles[..60] {
        let stored = store
            .get_profile(&p.customer_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} was not written", p.customer_id));
        assert_eq!(stored.version, 1);
        assert_eq!(stored.due_at, p.due_at);
    }
    let last = store.get_profile("bulk-x3").await.unwrap().expect("stored");
    assert_eq!(last.first_name.as_deref(), Some("Second"));

    let (due, _) = read_all_due(&store, shard, t0(), 100).await;
    let due_ids: BTreeSet<_> = due.iter().map(|i| i.customer_id().to_string()).collect();
    assert_eq!(due_ids, ids.iter().cloned().collect());

    // A bulk write stores `version + 1` of what it is given, without checking.
    let mut loaded = store
        .get_profile("bulk-x10")
        .await
        .unwrap()
        .expect("stored");
    loaded.order_count = 9;
    store.put_profiles(&[loaded.clone()]).await.unwrap();
    let stored = store
        .get_profile("bulk-x10")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!((stored.version, stored.order_count), (2, 9));
    assert_eq!(store.save_profile(&stored).await.unwrap(), 3);
    store
        .put_profiles(&[profile("bulk-x10", None)])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_profile("bulk-x10")
            .await
            .unwrap()
            .map(|p| p.version),
        Some(1)
    );
    assert_eq!(store.put_profiles(&[]).await.unwrap(), 0);
}

async fn idempotency_keys_are_claimed_once_until_released_or_expired(store: Shared) {
    let later = Utc::now() + Duration::hours(1);
    assert_eq!(store.claim_key("evt-1", later).await.unwrap(), Claimed::New);
    assert_eq!(
        store.claim_key("evt-1", later).await.unwrap(),
        Claimed::Seen(None)
    );
    store
        .record_result("evt-1", "message-42", later)
        .await
        .unwrap();
    assert_eq!(
        store.claim_key("evt-1", later).await.unwrap(),
        Claimed::Seen(Some("message-42".into()))
    );
    store.release_key("evt-1").await.unwrap();
    assert_eq!(store.claim_key("evt-1", later).await.unwrap(), Claimed::New);
    assert_eq!(
        store.claim_key("evt-1", later).await.unwrap(),
        Claimed::Seen(None)
    );

    // An expired claim is as good as none.
    let past = Utc::now() - Duration::minutes(5);
    assert_eq!(store.claim_key("evt-2", past).await.unwrap(), Claimed::New);
    assert_eq!(store.claim_key("evt-2", later).await.unwrap(), Claimed::New);
    assert_eq!(
        store.claim_key("evt-2", later).await.unwrap(),
        Claimed::Seen(None)
    );

    // A short lease that ran out before the result was recorded is freed; a recorded result
    // keeps the key until the time given with it.
    assert_eq!(store.claim_key("evt-5", past).await.unwrap(), Claimed::New);
    store.record_result("evt-5", "done", later).await.unwrap();
    assert_eq!(
        store.claim_key("evt-5", later).await.unwrap(),
        Claimed::Seen(Some("done".into()))
    );

    // Recording for a key nobody claimed claims nothing; releasing it is harmless.
    store
        .record_result("evt-3", "ignored", later)
        .await
        .unwrap();
    store.release_key("evt-4").await.unwrap();
    assert_eq!(store.claim_key("evt-3", later).await.unwrap(), Claimed::New);

    // Many claimers at once: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.claim_key("evt-race", later).await.unwrap()
        }));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.unwrap() == Claimed::New {
            new += 1;
        }
    }
    assert_eq!(new, 1);
}

async fn counters_add_atomically_and_read_back_per_cohort_and_day(store: Shared) {
    let treated = CohortKey {
        campaign: "spring".into(),
        variant: "ten-off".into(),
        group: Group::Treated,
    };
    let holdout = CohortKey {
        group: Group::Holdout,
        ..treated.clone()
    };
    let day1 = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
    let day2 = NaiveDate::from_ymd_opt(2026, 4, 2).unwrap();

    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        let key = treated.clone();
        let day = if i % 2 == 0 { day1 } else { day2 };
        tasks.push(tokio::spawn(async move {
            store
                .add_counts(&key, Some(day), &[("sent", 1), ("revenue_minor", 250)])
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    store
        .add_counts(&holdout, Some(day2), &[("enrolled", 3), ("enrolled", 2)])
        .await
        .unwrap();
    store
        .add_counts(&holdout, None, &[("reactivated", 1), ("enrolled", -1)])
        .await
        .unwrap();
    store
        .add_counts(
            &CohortKey {
                campaign: "autumn".into(),
                ..treated.clone()
            },
            Some(day1),
            &[("sent", 100)],
        )
        .await
        .unwrap();

    let rows = store.counter_rows("spring").await.unwrap();
    let by_key: BTreeMap<_, _> = rows
        .iter()
        .map(|r| ((r.key.group, r.day), r.counts.clone()))
        .collect();
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r.key.campaign == "spring" && r.key.variant == "ten-off"));
    let total = &by_key[&(Group::Treated, None)];
    assert_eq!((total.get("sent"), total.get("revenue_minor")), (24, 6_000));
    for day in [day1, day2] {
        let row = &by_key[&(Group::Treated, Some(day))];
        assert_eq!((row.get("sent"), row.get("revenue_minor")), (12, 3_000));
    }
    let hold_total = &by_key[&(Group::Holdout, None)];
    assert_eq!(
        (hold_total.get("enrolled"), hold_total.get("reactivated")),
        (4, 1)
    );
    let hold_day = &by_key[&(Group::Holdout, Some(day2))];
    assert_eq!(
        (hold_day.get("enrolled"), hold_day.get("reactivated")),
        (5, 0)
    );

    let autumn = store.counter_rows("autumn").await.unwrap();
    assert_eq!(autumn.len(), 2);
    assert!(autumn.iter().all(|r| r.counts.get("sent") == 100));
    assert_eq!(store.counter_rows("nobody").await.unwrap(), Vec::new());
}

/// A randomly named table on DynamoDB Local, created from the template's spec; `None` only when
/// `WINBACK_SKIP_DYNAMODB=1`, a panic naming what is missing when the local stack is not there.
async fn local_table() -> Option<LocalTable> {
    if std::env::var("WINBACK_SKIP_DYNAMODB").as_deref() == Ok("1") {
        eprintln!("WINBACK_SKIP_DYNAMODB=1: skipping the DynamoDB variant of this contract test");
        return None;
    }
    Some(LocalTable::create("contract").await)
}

async fn a_customers_enrollments_and_rewards_are_listed_and_deleted_for_erasure(store: Shared) {
    let mut a = enrollment("c-1", "spring", Some(t0()));
    a.version = store.save_enrollment(&a).await.unwrap();
    let b = enrollment("c-1", "autumn", None);
    store.save_enrollment(&b).await.unwrap();
    store
        .save_enrollment(&enrollment("c-10", "spring", None))
        .await
        .unwrap();
    store.save_profile(&profile("c-1", None)).await.unwrap();
    let mine = reward("WB-2222-3333-4444");
    store.insert_reward(&mine).await.unwrap();
    let mut theirs = reward("WB-5555-6666-7777");
    theirs.customer_id = "c-10".parse().unwrap();
    store.insert_reward(&theirs).await.unwrap();

    let mut campaigns: Vec<String> = store
        .enrollments_of("c-1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.campaign)
        .collect();
    campaigns.sort();
    assert_eq!(
        campaigns,
        ["autumn", "spring"],
        "every campaign, nobody else's"
    );
    assert_eq!(
        store.rewards_of("c-1").await.unwrap(),
        vec![mine.code.clone()]
    );

    store.delete_enrollment("c-1", "spring").await.unwrap();
    store.delete_enrollment("c-1", "spring").await.unwrap();
    store.delete_reward("c-1", &mine.code).await.unwrap();
    assert_eq!(store.get_enrollment("c-1", "spring").await.unwrap(), None);
    assert_eq!(store.enrollments_of("c-1").await.unwrap().len(), 1);
    assert_eq!(store.get_reward(&mine.code).await.unwrap(), None);
    assert!(store.rewards_of("c-1").await.unwrap().is_empty());
    assert!(store.get_reward(&theirs.code).await.unwrap().is_some());
    assert!(
        store.get_profile("c-1").await.unwrap().is_some(),
        "the profile is not touched"
    );
    // A deleted enrollment leaves the due index.
    let shard = due_shard("c-1");
    let (due, _) = read_all_due(&store, shard, t0() + Duration::days(1), 50).await;
    assert!(
        due.iter().all(|d| due_summary(d).1 != "c-1"),
        "{:?}",
        due.iter().map(due_summary).collect::<Vec<_>>()
    );
}

async fn the_order_index_finds_an_orders_customer_until_it_expires_and_erasure_forgets_it(
    store: Shared,
) {
    let owner = |source: &str, id: &str, customer: &str| OrderOwner {
        source: source.into(),
        order_id: id.into(),
        customer_id: customer.into(),
        expires_at: t0() + Duration::days(730),
    };
    // 30 orders (more than a batch of 25), one twice: the last given wins.
    let mut owners: Vec<OrderOwner> = (0..30)
        .map(|i| owner("shopify", &format!("{}", 1000 + i), "c-1"))
        .collect();
    owners.push(owner("shop", "1000", "c-2"));
    owners.push(owner("shop", "1000", "c-10"));
    store.put_order_owners(&owners).await.unwrap();
    let owner_of = |source: &'static str, id: &'static str, now| {
        let store = store.clone();
        async move { store.order_owner(source, id, now).await.unwrap() }
    };
    assert_eq!(
        owner_of("shopify", "1007", t0()).await.as_deref(),
        Some("c-1")
    );
    assert_eq!(
        owner_of("shop", "1000", t0()).await.as_deref(),
        Some("c-10"),
        "the same id of another source is another order"
    );
    assert_eq!(owner_of("stripe", "1007", t0()).await, None);
    assert_eq!(
        owner_of("shopify", "1007", t0() + Duration::days(731)).await,
        None,
        "expired"
    );

    let mut mine = store.orders_of("c-1").await.unwrap();
    mine.sort();
    assert_eq!(mine.len(), 30);
    assert_eq!(mine[0], ("shopify".to_string(), "1000".to_string()));
    assert_eq!(
        store.orders_of("c-2").await.unwrap(),
        [("shop".to_string(), "1000".to_string())],
        "listed under each customer it was put for"
    );
    for (source, id) in mine {
        store.delete_order_owner("c-1", &source, &id).await.unwrap();
    }
    // The listing of c-2 goes; the item, which names c-10 now, stays.
    store
        .delete_order_owner("c-2", "shop", "1000")
        .await
        .unwrap();
    assert!(store.orders_of("c-1").await.unwrap().is_empty());
    assert!(store.orders_of("c-2").await.unwrap().is_empty());
    assert_eq!(owner_of("shopify", "1007", t0()).await, None);
    assert_eq!(
        owner_of("shop", "1000", t0()).await.as_deref(),
        Some("c-10")
    );
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        /// The embedded store.
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = std::sync::Arc::new(super::MemoryStore::new());
                    super::$name(store).await;
                }
            )*
        }

        /// The DynamoDB store on DynamoDB Local, a fresh table per test.
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(table) = super::local_table().await else {
                        return;
                    };
                    let store = table.store.clone();
                    table.run(super::$name(store)).await;
                }
            )*
        }
    };
}

contract!(
    profiles_are_created_updated_and_stale_saves_conflict,
    enrollments_are_kept_per_customer_and_campaign_with_versioned_saves,
    reward_codes_are_unique_and_rewards_save_by_version,
    the_checkpoint_saves_by_version_and_clears_only_at_its_version,
    each_campaign_keeps_its_fitted_model_saved_by_version,
    the_due_index_returns_exactly_the_due_items_of_a_shard_oldest_first_in_pages,
    scan_segments_together_cover_every_profile_exactly_once,
    bulk_profile_writes_beyond_one_batch_are_all_stored,
    idempotency_keys_are_claimed_once_until_released_or_expired,
    counters_add_atomically_and_read_back_per_cohort_and_day,
    a_customers_enrollments_and_rewards_are_listed_and_deleted_for_erasure,
    the_order_index_finds_an_orders_customer_until_it_expires_and_erasure_forgets_it,
);

/// DynamoDB specifics: what the store counts, and how errors read.
mod dynamodb_only {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    #[tokio::test]
    async fn enrollments_stay_out_of_the_due_index_projection_and_come_back_whole() {
        let Some(table) = local_table().await else {
            return;
        };
        let store = table.store.clone();
        let mut e = enrollment("projected", "spring", Some(t0()));
        e.version = store.save_enrollment(&e).await.unwrap();
        let mut p = profile("projected-profile", Some(t0()));
        p.version = store.save_profile(&p).await.unwrap();

        // The index entry of an enrollment holds keys only, so saves that keep the due time
        // (the sender's claim and mark) do not write the index.
        let mut entries = Vec::new();
        for shard in 0..DUE_SHARDS {
            let out = store
                .client()
                .query()
                .table_name(store.table())
                .index_name("due")
                .key_condition_expression("due_shard = :s")
                .expression_attribute_values(":s", AttributeValue::S(format!("{shard:02}")))
                .send()
                .await
                .unwrap();
            entries.extend(out.items.unwrap_or_default());
        }
        let entry = entries
            .iter()
            .find(|i| {
                i.get("sk")
                    .is_some_and(|sk| sk.as_s().is_ok_and(|k| k.starts_with("ENR#")))
            })
            .expect("the enrollment is in the due index");
        let mut attrs: Vec<&str> = entry.keys().map(String::as_str).collect();
        attrs.sort_unstable();
        assert_eq!(attrs, ["due_key", "due_shard", "pk", "sk"]);

        // Everything due at t0, from every shard of the index.
        let due_now = async || {
            let mut found = Vec::new();
            for shard in 0..DUE_SHARDS {
                let due = DueQuery { shard, now: t0() };
                found.extend(
                    store
                        .due_page(due, PageAt::new(None, 100))
                        .await
                        .unwrap()
                        .items,
                );
            }
            found
        };
        // The scheduler still gets the whole enrollment, and the profile, from the index.
        let found = due_now().await;
        assert!(found.contains(&DueItem::Enrollment(e.clone())), "{found:?}");
        assert!(found.contains(&DueItem::Profile(p.clone())), "{found:?}");

        // One no longer due by the time it is fetched is left out.
        let mut later = e.clone();
        later.due_at = Some(t0() + Duration::days(2));
        store.save_enrollment(&later).await.unwrap();
        let found = due_now().await;
        assert!(!found
            .iter()
            .any(|i| matches!(i, DueItem::Enrollment(x) if x.customer_id == "projected")));
    }

    #[tokio::test]
    async fn the_store_counts_items_read_by_the_due_index_and_by_scans() {
        let Some(table) = local_table().await else {
            return;
        };
        let store = table.store.clone();
        let profiles: Vec<Profile> = (0..30)
            .map(|i| profile(&format!("count-{i}"), (i < 4).then_some(t0())))
            .collect();
        store.put_profiles(&profiles).await.unwrap();
        assert_eq!(store.writes(), 30);

        let before = store.items_read();
        let mut due_read = 0;
        for shard in 0..DUE_SHARDS {
            due_read += store
                .due_page(DueQuery { shard, now: t0() }, PageAt::new(None, 100))
                .await
                .unwrap()
                .items_read;
        }
        assert_eq!(due_read, 4);
        let mut scan_read = 0;
        let mut cursor = None;
        loop {
            let page = store
                .scan_profiles(ScanSegment::new(0, 1), PageAt::new(cursor, 100))
                .await
                .unwrap();
            scan_read += page.items_read;
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(scan_read, 30);
        assert_eq!(store.items_read() - before, 34);
        table.delete().await;
    }

    #[tokio::test]
    async fn tables_made_from_the_spec_have_the_due_index_and_ttl() {
        let Some(table) = local_table().await else {
            return;
        };
        let (described, ttl) = tokio::join!(
            table.client.describe_table().table_name(&table.name).send(),
            table
                .client
                .describe_time_to_live()
                .table_name(&table.name)
                .send(),
        );
        let (described, ttl) = (described.unwrap(), ttl.unwrap());
        let indexes: Vec<_> = described
            .table()
            .unwrap()
            .global_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name())
            .collect();
        assert_eq!(indexes, vec!["due"]);
        let ttl = ttl.time_to_live_description().unwrap();
        assert_eq!(ttl.attribute_name(), Some("ttl"));
        assert_eq!(
            ttl.time_to_live_status().map(|s| s.as_str()),
            Some("ENABLED")
        );
        table.delete().await;
    }

    #[tokio::test]
    async fn a_missing_table_is_a_backend_error_that_names_the_table() {
        let Some(table) = local_table().await else {
            return;
        };
        let missing = DynamoStore::new(table.client.clone(), "no-such-table-here");
        let err = missing.get_profile("c-1").await.unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        let text = format!("{err}");
        assert!(
            text.contains("GetItem") && text.contains("no-such-table-here"),
            "{text}"
        );
        assert!(text.contains("ResourceNotFoundException"), "{text}");

        let cursor_err = table
            .store
            .due_page(
                DueQuery {
                    shard: 0,
                    now: t0(),
                },
                PageAt::new(Some("not a cursor".into()), 10),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(cursor_err, StoreError::Corrupt { .. }),
            "{cursor_err:?}"
        );
        table.delete().await;
    }
}
