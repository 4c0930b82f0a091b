//! A scheduler page that fails part-way still publishes the steps it already saved as published:
//! a step saved as published but never put on the bus would wait for the republish delay.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use scheduler::{run, Budget, Input, Mode, SchedulerError};
use shared::adapters::embedded::{MemoryBus, MemoryStore};
use shared::campaign::testing::example_campaign;
use shared::domain::customer::Profile;
use shared::domain::experiment::Group;
use shared::domain::sequence::Enrollment;
use shared::events::BusEvent;
use shared::ports::{due_shard, EnrollmentStore, ProfileStore};
use shared::retry::RetryPolicy;
use winback_tests::faults::{Crash, FaultPlan, FaultyStore, Sequencer};

/// Four customers in one due shard, so that their steps come in one page.
fn customers() -> Vec<String> {
    let ids: Vec<String> = (0..200).map(|i| format!("c{i}")).collect();
    let shard = due_shard(&ids[0]);
    let same: Vec<String> = ids
        .into_iter()
        .filter(|id| due_shard(id) == shard)
        .take(4)
        .collect();
    assert_eq!(same.len(), 4);
    same
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

/// Customers enrolled a month ago with step 1 due; their profiles are not due.
async fn seeded() -> Arc<MemoryStore> {
    let memory = Arc::new(MemoryStore::new());
    let c = example_campaign();
    for id in customers() {
        let id = id.as_str();
        let mut p = Profile::new(id.parse().unwrap());
        p.email = Some(format!("{id}@example.com"));
        memory.save_profile(&p).await.unwrap();
        let e = Enrollment::start(
            &id.parse().unwrap(),
            &c,
            1,
            Group::Treated,
            "amount-10",
            now() - Duration::days(30),
        );
        assert!(e.due_at.is_some_and(|d| d <= now()));
        memory.save_enrollment(&e).await.unwrap();
    }
    memory
}

async fn saved_as_published(memory: &MemoryStore) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for id in customers() {
        let e = memory
            .get_enrollment(&id, "example")
            .await
            .unwrap()
            .unwrap();
        if e.published_step == 1 {
            out.insert(e.id);
        }
    }
    out
}

#[tokio::test]
async fn steps_saved_before_an_item_fails_the_page_are_still_published() {
    let memory = seeded().await;
    // Every second write is throttled and the read-back finds it unapplied: the second
    // enrollment of the page fails it after the first was saved as published.
    let store = FaultyStore::new(
        memory.clone(),
        Arc::new(Sequencer::default()),
        Arc::new(Crash::default()),
    )
    .throttling(FaultPlan::never(), FaultPlan::every(2));
    let bus = Arc::new(MemoryBus::new());
    let retry = RetryPolicy {
        attempts: 1,
        base_delay: std::time::Duration::ZERO,
    };
    let deps = winback_tests::scheduler_deps_on(Arc::new(store), bus.clone(), retry);
    let input = Input {
        now: now(),
        mode: Mode::Due,
    };
    let err = run(&deps, input, Budget::unlimited()).await.unwrap_err();
    assert!(matches!(err, SchedulerError::Store(_)), "{err}");

    let saved = saved_as_published(&memory).await;
    assert!(
        !saved.is_empty() && saved.len() < customers().len(),
        "the fault should hit after some steps were saved and before all: {saved:?}"
    );
    let on_bus: BTreeSet<String> = bus
        .drain()
        .into_iter()
        .filter_map(|e| match e {
            BusEvent::WinbackStepDue(s) => Some(s.enrollment_id),
            _ => None,
        })
        .collect();
    assert_eq!(
        on_bus, saved,
        "every step saved as published is on the bus, and no other"
    );
}
