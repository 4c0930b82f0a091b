use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use scheduler::{parse_input, run, Budget, Deps, Input, Mode, SchedulerError};
use shared::adapters::embedded::{MemoryBus, MemoryStore};
use shared::campaign::testing::example_campaign;
use shared::domain::customer::{EmailStatus, OrderRecord, Profile};
use shared::domain::experiment::Group;
use shared::domain::money::Money;
use shared::domain::sequence::Status;
use shared::emf::MemoryMetrics;
use shared::events::BusEvent;
use shared::ports::{BusError, EnrollmentStore, EventBus, MetricsStore, ProfileStore, PutResult};
use shared::retry::RetryPolicy;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

/// A customer who ordered every `gap` days, the last time `quiet` days before now.
fn customer(id: &str, gap: i64, quiet: i64) -> Profile {
    let mut p = Profile::new(id.parse().unwrap());
    p.email = Some(format!("{id}@example.com"));
    let last = now() - Duration::days(quiet);
    for i in (0..4).rev() {
        p.record_order(OrderRecord {
            at: last - Duration::days(gap * i),
            amount: Money(2500),
            product: Some("Dark roast".into()),
            category: Some("coffee".into()),
            currency: None,
            order_id: None,
            refunded: Default::default(),
            refund_ids: Vec::new(),
            lines: Vec::new(),
        });
    }
    p.due_at = Some(now() - Duration::hours(1));
    p
}

struct World {
    store: Arc<MemoryStore>,
    bus: Arc<MemoryBus>,
    metrics: Arc<MemoryMetrics>,
    deps: Deps,
}

fn world_with_bus(bus: Arc<dyn EventBus>) -> World {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(MemoryMetrics::default());
    let deps = Deps {
        store: store.clone(),
        bus,
        campaign: Arc::new(example_campaign()),
        metrics: metrics.clone(),
        retry: RetryPolicy {
            attempts: 4,
            base_delay: std::time::Duration::ZERO,
        },
    };
    World {
        store,
        bus: Arc::new(MemoryBus::new()),
        metrics,
        deps,
    }
}

fn world() -> World {
    let bus = Arc::new(MemoryBus::new());
    let mut w = world_with_bus(bus.clone());
    w.bus = bus;
    w
}

async fn seed(w: &World, profiles: &[Profile]) {
    w.store.put_profiles(profiles).await.unwrap();
}

fn input() -> Input {
    Input {
        now: now(),
        mode: Mode::Due,
    }
}

fn steps_due(events: &[BusEvent]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            BusEvent::WinbackStepDue(s) => Some(format!("{}:{}", s.customer_id, s.step)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn lapsed_customers_are_enrolled_and_their_first_step_is_published() {
    let w = world();
    // Weekly buyer quiet for 120 days: lapsed (P(active) under the prior below 0.3 after ~71 days).
    // Weekly buyer quiet for 2 days: active.
    seed(&w, &[customer("lapsed", 7, 120), customer("active", 7, 2)]).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert!(s.complete);
    assert_eq!(s.evaluated, 2);
    assert_eq!(s.enrolled, 1);
    let events = w.bus.drain();
    let enrolled = events
        .iter()
        .filter(|e| matches!(e, BusEvent::CustomerEnrolled { customer_id, .. } if customer_id == "lapsed"))
        .count();
    assert_eq!(enrolled, 1);
    let e = w
        .store
        .get_enrollment("lapsed", "example")
        .await
        .unwrap()
        .unwrap();
    if e.status == Status::Holdout {
        assert!(steps_due(&events).is_empty());
    } else {
        assert_eq!(steps_due(&events), vec!["lapsed:1".to_string()]);
        assert_eq!(e.published_step, 1);
    }
    let active = w.store.get_profile("active").await.unwrap().unwrap();
    assert!(
        active.due_at.unwrap() > now(),
        "the active customer gets a future due time"
    );
    assert!(w
        .store
        .get_enrollment("active", "example")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        w.metrics
            .sum("CustomersEvaluated", &[("Campaign", "example")]),
        2.0
    );
}

#[tokio::test]
async fn a_second_run_publishes_nothing_new() {
    let w = world();
    let many: Vec<Profile> = (0..40)
        .map(|i| customer(&format!("c{i}"), 10, 90))
        .collect();
    seed(&w, &many).await;
    run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    let first = w.bus.drain();
    assert!(!steps_due(&first).is_empty());
    let again = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(again.enrolled, 0);
    assert!(w.bus.drain().is_empty());
}

#[tokio::test]
async fn holdout_customers_are_enrolled_without_an_email_step() {
    let w = world();
    let many: Vec<Profile> = (0..200)
        .map(|i| customer(&format!("c{i}"), 10, 90))
        .collect();
    seed(&w, &many).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 200);
    assert!(
        s.holdout() > 5 && s.holdout() < 45,
        "about 10% holdout, got {}",
        s.holdout()
    );
    // The program holdout is enrolled too (under its own variant), and gets no step either.
    let program = s.flows[&shared::domain::sequence::Flow::WinBack]
        .enrolled_by_variant
        .get(shared::domain::experiment::PROGRAM_HOLDOUT)
        .copied()
        .unwrap_or(0);
    assert!(program > 0 && program < 25, "about 5%, got {program}");
    let steps = steps_due(&w.bus.drain());
    assert_eq!(steps.len() as u64, 200 - s.holdout() - program);
    for e in w.store.all_enrollments() {
        if e.status == Status::Holdout {
            assert!(!steps.contains(&format!("{}:1", e.customer_id)));
            assert!(
                ["holdout", "program-holdout"].contains(&e.variant.as_str()),
                "{}",
                e.variant
            );
        }
    }
}

#[tokio::test]
async fn unsubscribed_customers_are_not_enrolled() {
    let w = world();
    let mut p = customer("gone", 7, 120);
    p.email_status = EmailStatus::Unsubscribed;
    seed(&w, &[p]).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 0);
    assert!(w
        .store
        .get_enrollment("gone", "example")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        w.store.get_profile("gone").await.unwrap().unwrap().due_at,
        None
    );
}

#[tokio::test]
async fn overlapping_runs_never_enroll_a_customer_twice() {
    let w = world();
    let many: Vec<Profile> = (0..300)
        .map(|i| customer(&format!("c{i}"), 10, 90))
        .collect();
    seed(&w, &many).await;
    let (a, b) = tokio::join!(
        run(&w.deps, input(), Budget::unlimited()),
        run(&w.deps, input(), Budget::unlimited())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.enrolled + b.enrolled, 300);
    let events = w.bus.drain();
    let enrolled = events
        .iter()
        .filter(|e| matches!(e, BusEvent::CustomerEnrolled { .. }))
        .count();
    assert_eq!(enrolled, 300);
    let steps = steps_due(&events);
    let mut dedup = steps.clone();
    dedup.dedup();
    assert_eq!(steps, dedup, "no step published twice");
}

#[tokio::test]
async fn a_run_cut_short_resumes_from_its_checkpoint_without_skipping_or_repeating() {
    let w = world();
    let many: Vec<Profile> = (0..250)
        .map(|i| customer(&format!("c{i}"), 10, 90))
        .collect();
    seed(&w, &many).await;
    let budget = Budget {
        stop_at: None,
        max_items: Some(60),
    };
    let mut total_enrolled = 0;
    let mut runs = 0;
    loop {
        runs += 1;
        let s = run(&w.deps, input(), budget).await.unwrap();
        total_enrolled += s.enrolled;
        if s.complete {
            break;
        }
        assert!(runs < 50, "never finished");
    }
    assert!(
        runs >= 4,
        "the budget cut the work into several runs ({runs})"
    );
    assert_eq!(total_enrolled, 250);
    let events = w.bus.drain();
    let mut enrolled: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            BusEvent::CustomerEnrolled { customer_id, .. } => Some(customer_id.to_string()),
            _ => None,
        })
        .collect();
    enrolled.sort();
    let before = enrolled.len();
    enrolled.dedup();
    assert_eq!(before, enrolled.len(), "nobody repeated");
    assert_eq!(enrolled.len(), 250, "nobody skipped");
}

#[tokio::test]
async fn rebuild_recomputes_every_customers_due_time() {
    let w = world();
    let mut a = customer("a", 7, 2);
    a.due_at = None;
    let mut b = customer("b", 7, 120);
    b.due_at = None;
    seed(&w, &[a, b]).await;
    let s = run(
        &w.deps,
        Input {
            now: now(),
            mode: Mode::Rebuild,
        },
        Budget::unlimited(),
    )
    .await
    .unwrap();
    assert_eq!(s.evaluated, 2);
    assert!(
        w.store
            .get_profile("a")
            .await
            .unwrap()
            .unwrap()
            .due_at
            .unwrap()
            > now()
    );
    assert_eq!(
        w.store.get_profile("b").await.unwrap().unwrap().due_at,
        Some(now())
    );
    // The next due run then enrolls b.
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 1);
}

#[test]
fn scheduled_events_are_read_and_bad_input_is_refused() {
    let ev: serde_json::Value =
        serde_json::from_str(include_str!("../events/scheduled.json")).unwrap();
    let i = parse_input(&ev, None).unwrap();
    assert_eq!(i.mode, Mode::Due);
    let rebuild = parse_input(&serde_json::json!({"mode": "rebuild"}), Some(now())).unwrap();
    assert_eq!(
        rebuild,
        Input {
            now: now(),
            mode: Mode::Rebuild
        }
    );
    assert!(matches!(
        parse_input(&serde_json::json!({}), Some(now())),
        Err(SchedulerError::MissingTime)
    ));
    assert!(matches!(
        parse_input(&serde_json::json!({"time": "yesterday"}), None),
        Err(SchedulerError::BadTime(_))
    ));
    let e = parse_input(
        &serde_json::json!({"mode": "purge", "time": "2026-11-22T10:00:00Z"}),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown mode `purge`"), "{e}");
}

/// Fails the first attempt of every other entry.
struct FlakyBus {
    inner: MemoryBus,
    calls: AtomicUsize,
    always_fail: bool,
}

#[async_trait]
impl EventBus for FlakyBus {
    async fn put_batch(&self, events: &[BusEvent]) -> Result<PutResult, BusError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let failing: Vec<usize> = if self.always_fail || call.is_multiple_of(2) {
            (0..events.len()).filter(|i| i.is_multiple_of(2)).collect()
        } else {
            Vec::new()
        };
        let ok: Vec<BusEvent> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| !failing.contains(i))
            .map(|(_, e)| e.clone())
            .collect();
        self.inner.put_batch(&ok).await?;
        Ok(PutResult {
            failed: failing
                .into_iter()
                .map(|i| (i, "ThrottlingException".to_string()))
                .collect(),
        })
    }
}

#[tokio::test]
async fn failed_publish_entries_are_retried_alone_and_none_is_lost() {
    let bus = Arc::new(FlakyBus {
        inner: MemoryBus::new(),
        calls: AtomicUsize::new(0),
        always_fail: false,
    });
    let w = world_with_bus(bus.clone());
    let many: Vec<Profile> = (0..50)
        .map(|i| customer(&format!("c{i}"), 10, 90))
        .collect();
    seed(&w, &many).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    let events = bus.inner.drain();
    let enrolled = events
        .iter()
        .filter(|e| matches!(e, BusEvent::CustomerEnrolled { .. }))
        .count();
    assert_eq!(enrolled as u64, s.enrolled);
    assert_eq!(steps_due(&events).len() as u64, s.steps_published);
    let mut all = steps_due(&events);
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "only failed entries were retried");
}

#[tokio::test]
async fn a_publish_failure_that_survives_retries_is_reported() {
    let bus = Arc::new(FlakyBus {
        inner: MemoryBus::new(),
        calls: AtomicUsize::new(0),
        always_fail: true,
    });
    let w = world_with_bus(bus);
    seed(&w, &[customer("a", 10, 90), customer("b", 10, 90)]).await;
    let err = run(&w.deps, input(), Budget::unlimited())
        .await
        .unwrap_err();
    assert!(matches!(err, SchedulerError::Publish(n) if n > 0), "{err}");
    assert!(
        w.metrics
            .sum("PublishFailures", &[("Service", "scheduler")])
            > 0.0
    );
}

/// Takes every event but the steps.
struct RefusesSteps(MemoryBus);

#[async_trait]
impl EventBus for RefusesSteps {
    async fn put_batch(&self, events: &[BusEvent]) -> Result<PutResult, BusError> {
        let refused = |e: &BusEvent| matches!(e, BusEvent::WinbackStepDue(_));
        let ok: Vec<BusEvent> = events.iter().filter(|e| !refused(e)).cloned().collect();
        self.0.put_batch(&ok).await?;
        Ok(PutResult {
            failed: (0..events.len())
                .filter(|&i| refused(&events[i]))
                .map(|i| (i, "ThrottlingException".to_string()))
                .collect(),
        })
    }
}

#[tokio::test]
async fn a_step_the_bus_refused_is_put_back_as_due_for_the_next_run() {
    let w = world_with_bus(Arc::new(RefusesSteps(MemoryBus::new())));
    seed(&w, &[customer("a", 10, 90), customer("b", 10, 90)]).await;
    let err = run(&w.deps, input(), Budget::unlimited())
        .await
        .unwrap_err();
    assert!(matches!(err, SchedulerError::Publish(n) if n > 0), "{err}");
    let mut checked = 0;
    for id in ["a", "b"] {
        let Some(e) = w.store.get_enrollment(id, "example").await.unwrap() else {
            continue; // the run stops at the first page whose events were refused
        };
        if e.group == Group::Holdout {
            continue;
        }
        checked += 1;
        assert_eq!(e.published_step, 0, "{e:?}");
        assert_eq!(e.published_at, None, "{e:?}");
        assert!(e.due_at.is_some_and(|d| d <= now()), "{e:?}");
    }
    assert!(checked > 0);
}

#[tokio::test]
async fn every_invocation_makes_progress_even_when_no_time_is_left() {
    let w = world();
    let many: Vec<Profile> = (0..250)
        .map(|i| customer(&format!("c{i}"), 10, 90))
        .collect();
    seed(&w, &many).await;
    let mut enrolled = 0;
    // With no time at all each invocation reads one page and leaves a checkpoint; the next
    // scheduled invocations carry on from it.
    for _ in 0..40 {
        let budget = Budget {
            stop_at: Some(std::time::Instant::now()),
            max_items: None,
        };
        let s = run(&w.deps, input(), budget).await.unwrap();
        enrolled += s.enrolled;
    }
    assert_eq!(enrolled, 250);
    assert_eq!(w.store.all_enrollments().len(), 250);
}

#[tokio::test]
async fn with_no_time_at_all_repeated_invocations_complete_the_run_in_a_bounded_number() {
    let w = world();
    let many: Vec<Profile> = (0..250)
        .map(|i| customer(&format!("c{i}"), 10, 90))
        .collect();
    seed(&w, &many).await;
    // Each invocation reads one page: the run ends after about one invocation per shard, instead
    // of every finished checkpoint leaving a new one for the invocation's own pass.
    let bound = 2 * shared::ports::DUE_SHARDS as usize;
    let mut calls = 0;
    loop {
        calls += 1;
        let budget = Budget {
            stop_at: Some(std::time::Instant::now()),
            max_items: None,
        };
        let s = run(&w.deps, input(), budget).await.unwrap();
        if s.complete {
            break;
        }
        assert!(
            calls < bound,
            "still not complete after {calls} invocations"
        );
    }
    assert_eq!(w.store.all_enrollments().len(), 250);
    // A run is complete, so the next invocation starts afresh and finds nothing left to do.
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert!(s.complete && !s.resumed && s.enrolled == 0, "{s:?}");
}

#[test]
fn a_missing_past_or_unrealistic_deadline_gets_the_default_budget() {
    use scheduler::DEFAULT_RUN_TIME;
    use std::time::{Duration as StdDuration, Instant};
    let start = Instant::now();
    let left = |b: Budget| b.stop_at.expect("a deadline") - start;
    let default = DEFAULT_RUN_TIME - StdDuration::from_secs(10);
    assert_eq!(left(Budget::from_deadline(None, start)), default);
    assert_eq!(
        left(Budget::from_deadline(Some(StdDuration::ZERO), start)),
        default
    );
    assert_eq!(
        left(Budget::from_deadline(
            Some(StdDuration::from_millis(300)),
            start
        )),
        default
    );
    // Real deadlines keep a margin for the checkpoint write.
    assert_eq!(
        left(Budget::from_deadline(
            Some(StdDuration::from_secs(900)),
            start
        )),
        StdDuration::from_secs(890)
    );
    assert_eq!(
        left(Budget::from_deadline(
            Some(StdDuration::from_secs(8)),
            start
        )),
        StdDuration::from_secs(6)
    );
}

/// A treated win-back enrollment that sent every step at `start`.
fn every_step_sent(id: &str, start: DateTime<Utc>) -> shared::domain::sequence::Enrollment {
    let c = example_campaign();
    let mut e = shared::domain::sequence::Enrollment::start(
        &id.parse().unwrap(),
        &c,
        1,
        Group::Treated,
        "amount-10",
        start,
    );
    for step in 1..=c.steps.len() as u8 {
        e = e.record_sent(step, start, None, &c).unwrap();
    }
    e
}

/// A customer whose goodbye went out `sunset_after_days` ago without a reaction.
async fn after_goodbye(w: &World, id: &str, status: EmailStatus) {
    let mut p = customer(id, 7, 60);
    p.email_status = status;
    p.due_at = None;
    seed(w, &[p]).await;
    let mut e = every_step_sent(id, now() - Duration::days(30));
    e.due_at = Some(now() - Duration::hours(1));
    w.store.save_enrollment(&e).await.unwrap();
}

#[tokio::test]
async fn a_goodbye_without_reaction_sunsets_except_for_who_chose_fewer_emails() {
    let w = world();
    after_goodbye(&w, "quiet", EmailStatus::Subscribed).await;
    after_goodbye(&w, "fewer", EmailStatus::FewerEmails).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.sunset(), 1);
    let quiet = w.store.get_profile("quiet").await.unwrap().unwrap();
    assert_eq!(quiet.sunset_at, Some(now()));
    let sunset_days = i64::from(example_campaign().eligibility.sunset_days);
    assert_eq!(quiet.due_at, Some(now() + Duration::days(sunset_days)));
    let e = w
        .store
        .get_enrollment("quiet", "example")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(e.status, Status::Sunset { .. }), "{:?}", e.status);
    // Fewer emails is a choice to keep hearing from the shop: no sunset overrides it.
    let fewer = w.store.get_profile("fewer").await.unwrap().unwrap();
    assert_eq!(fewer.sunset_at, None);
    assert_eq!(fewer.email_status, EmailStatus::FewerEmails);
    let e = w
        .store
        .get_enrollment("fewer", "example")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(e.status, Status::Closed { .. }), "{:?}", e.status);
}

#[tokio::test]
async fn a_sunset_lasts_sunset_days_and_then_the_customer_may_be_enrolled_again() {
    let w = world();
    after_goodbye(&w, "quiet", EmailStatus::Subscribed).await;
    run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    let sunset_days = i64::from(example_campaign().eligibility.sunset_days);
    let at = |days: i64| Input {
        now: now() + Duration::days(days),
        mode: Mode::Due,
    };
    // A rebuild during the sunset finds them kept out, due again when it ends.
    let during = Input {
        mode: Mode::Rebuild,
        ..at(sunset_days / 2)
    };
    let s = run(&w.deps, during, Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 0);
    let s = run(&w.deps, at(sunset_days / 2), Budget::unlimited())
        .await
        .unwrap();
    assert_eq!(s.enrolled, 0);
    let p = w.store.get_profile("quiet").await.unwrap().unwrap();
    assert_eq!(p.due_at, Some(now() + Duration::days(sunset_days)));
    let s = run(&w.deps, at(sunset_days), Budget::unlimited())
        .await
        .unwrap();
    assert_eq!(s.enrolled, 1, "the sunset has run its time");
    let e = w
        .store
        .get_enrollment("quiet", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.round, 2);
}

#[tokio::test]
async fn an_at_risk_customer_only_watched_gets_their_birthday_and_one_in_the_at_risk_flow_does_not()
{
    use shared::domain::celebration::Birthday;
    use shared::domain::sequence::Flow;
    // At risk (quiet 22 days of a weekly habit), birthday today in UTC.
    let mut p = customer("risk", 7, 22);
    p.time_zone = Some("UTC".into());
    p.birthday = Some(Birthday::parse("--11-22").unwrap());
    for (at_risk_flow, expected) in [(false, Flow::Celebration), (true, Flow::AtRisk)] {
        let mut w = world();
        let mut c = example_campaign();
        if !at_risk_flow {
            c.at_risk = None;
        }
        w.deps.campaign = Arc::new(c);
        seed(&w, std::slice::from_ref(&p)).await;
        let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
        assert_eq!(s.enrolled, 1);
        assert_eq!(enrollment_of(&w, "risk").await.flow, expected);
    }
}

#[tokio::test]
async fn at_risk_customers_get_the_at_risk_flow_kept_apart_from_the_win_back() {
    let w = world();
    // Weekly coffee buyer: under the shipped model they lapse after about 71 quiet days; quiet 22
    // they are at risk (their gap already 1.5× the usual), quiet 100 they have lapsed.
    seed(&w, &[customer("risk", 7, 22), customer("lapsed", 7, 100)]).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 2);
    let risk = w
        .store
        .get_enrollment("risk", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(risk.flow, shared::domain::sequence::Flow::AtRisk);
    let lapsed = w
        .store
        .get_enrollment("lapsed", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lapsed.flow, shared::domain::sequence::Flow::WinBack);
    // Its figures go to their own cohort, never into the win-back lift.
    let enrolled = |rows: Vec<shared::domain::metrics::CounterRow>| {
        rows.iter()
            .filter(|r| r.day.is_none())
            .map(|r| r.counts.get("enrolled"))
            .sum::<i64>()
    };
    let at_risk = w.store.counter_rows("example-at-risk").await.unwrap();
    let win_back = w.store.counter_rows("example").await.unwrap();
    assert_eq!(enrolled(at_risk), 1);
    assert_eq!(enrolled(win_back), 1);
    // When the at-risk flow ends without a reaction, the address is kept: they have not lapsed.
    let c = example_campaign();
    let mut e = risk.clone();
    for step in 1..=c.at_risk.as_ref().unwrap().steps.len() as u8 {
        e = e.record_sent(step, now(), None, &c).unwrap();
    }
    let closed = e.close(now(), false).unwrap();
    assert!(
        matches!(closed.status, Status::Closed { .. }),
        "{:?}",
        closed.status
    );
}

#[tokio::test]
async fn after_an_at_risk_flow_without_reaction_the_win_back_flow_follows_when_they_lapse() {
    let w = world();
    // They read the at-risk emails (one who never opened one gets the re-engagement flow, below).
    let mut reader = customer("risk", 7, 22);
    reader.emails_opened = 2;
    seed(&w, &[reader]).await;
    run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    let c = example_campaign();
    let steps = c.at_risk.as_ref().unwrap().steps.len() as u8;
    // The at-risk emails went out; the wait after the last one ends tomorrow.
    let mut e = w
        .store
        .get_enrollment("risk", "example")
        .await
        .unwrap()
        .unwrap();
    for step in 1..=steps {
        e = e.record_sent(step, now(), None, &c).unwrap();
    }
    e.due_at = Some(now() + Duration::days(1));
    w.store.save_enrollment(&e).await.unwrap();
    let at = |days: i64| Input {
        now: now() + Duration::days(days),
        mode: Mode::Due,
    };
    run(&w.deps, at(1), Budget::unlimited()).await.unwrap();
    let closed = w
        .store
        .get_enrollment("risk", "example")
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(closed.status, Status::Closed { .. }),
        "{:?}",
        closed.status
    );
    let p = w.store.get_profile("risk").await.unwrap().unwrap();
    assert_eq!(p.sunset_at, None);
    let due = p.due_at.expect("looked at again");
    // Lapsed about 71 days after the last order (22 days before now): the win-back flow follows,
    // without waiting for the cooldown.
    assert!(due <= now() + Duration::days(50), "{due}");
    let s = run(&w.deps, at(50), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 1);
    let e = w
        .store
        .get_enrollment("risk", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.flow, shared::domain::sequence::Flow::WinBack);
    assert_eq!(e.round, 2);
}

#[tokio::test]
async fn a_birthday_in_the_customers_time_zone_enrolls_them_in_the_celebration_flow_once() {
    use shared::domain::celebration::{Birthday, Occasion};
    use shared::domain::sequence::Flow;
    let w = world();
    // 10:00 UTC on 22 November is already 23 November 00:00 in Kiribati (UTC+14).
    let with_birthday = |id: &str, zone: &str, day: &str| {
        let mut p = customer(id, 7, 2);
        p.time_zone = Some(zone.into());
        p.birthday = Some(Birthday::parse(day).unwrap());
        p
    };
    // (Outside the program holdout, which is emailed nothing.)
    let kiri = with_birthday("kiritimati", "Pacific/Kiritimati", "--11-23");
    let utc = with_birthday("utc", "UTC", "--11-23");
    let mut gone = with_birthday("gone", "Pacific/Kiritimati", "1990-11-23");
    gone.email_status = EmailStatus::Unsubscribed;
    let mut sunset = with_birthday("sunset", "Pacific/Kiritimati", "--11-23");
    sunset.sunset_at = Some(now() - Duration::days(10));
    seed(&w, &[kiri, utc, gone, sunset]).await;

    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(
        s.enrolled, 1,
        "only the customer whose birthday it is, and who may be emailed"
    );
    let e = w
        .store
        .get_enrollment("kiritimati", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.flow, e.occasion),
        (Flow::Celebration, Some(Occasion::Birthday))
    );
    assert_eq!(e.cohort().campaign, "example-celebration");
    assert_eq!(steps_due(&w.bus.drain()), vec!["kiritimati:1"]);
    assert_eq!(
        w.store
            .get_profile("kiritimati")
            .await
            .unwrap()
            .unwrap()
            .celebrated
            .get(&Occasion::Birthday),
        Some(&2026)
    );
    for id in ["utc", "gone", "sunset"] {
        assert!(
            w.store
                .get_enrollment(id, "example")
                .await
                .unwrap()
                .is_none(),
            "{id}"
        );
    }
    // The UTC customer is looked at again when their day starts.
    let midnight = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
    assert_eq!(
        w.store.get_profile("utc").await.unwrap().unwrap().due_at,
        Some(midnight)
    );
    let at_midnight = Input {
        now: midnight,
        mode: Mode::Due,
    };
    let s = run(&w.deps, at_midnight, Budget::unlimited())
        .await
        .unwrap();
    assert_eq!(s.enrolled, 1);
    assert!(w
        .store
        .get_enrollment("utc", "example")
        .await
        .unwrap()
        .is_some());
    // Once a year: a later run the same day enrolls nobody again.
    let later = Input {
        now: midnight + Duration::hours(5),
        mode: Mode::Rebuild,
    };
    run(&w.deps, later, Budget::unlimited()).await.unwrap();
    let again = Input {
        now: midnight + Duration::hours(6),
        mode: Mode::Due,
    };
    assert_eq!(
        run(&w.deps, again, Budget::unlimited())
            .await
            .unwrap()
            .enrolled,
        0
    );
}

/// Customers whose rhythms vary (a gap of 5 to 60 days, quiet 1 to 300 days): enough repeat
/// buyers for a shop's own fit.
fn varied_customers(n: usize) -> Vec<Profile> {
    (0..n)
        .map(|i| {
            let gap = 5 + (i as i64 * 7) % 56;
            let quiet = 1 + (i as i64 * 37) % 300;
            let mut p = customer(&format!("v{i}"), gap, quiet);
            p.due_at = None;
            p
        })
        .collect()
}

#[tokio::test]
async fn a_rebuild_refits_the_customer_model_and_stores_it_for_the_campaign() {
    use shared::ports::FitStore;
    let w = world();
    seed(&w, &varied_customers(300)).await;
    let rebuild = Input {
        now: now(),
        mode: Mode::Rebuild,
    };
    let s = run(&w.deps, rebuild.clone(), Budget::unlimited())
        .await
        .unwrap();
    assert!(s.model_refit, "{s:?}");
    let stored = w.store.get_fit("example").await.unwrap().expect("stored");
    assert_eq!(stored.fit.customers, 300);
    assert_eq!(stored.fitted_at, now());
    assert!(stored.fit.warning.is_none());
    assert_ne!(
        stored.fit.params,
        shared::domain::model::prior(shared::domain::model::Variant::Mbgnbd)
    );
    // Its figures go out as metrics.
    assert_eq!(
        w.metrics.sum("ModelCustomers", &[("Campaign", "example")]),
        300.0
    );
    // A second rebuild refits and replaces it.
    let s = run(&w.deps, rebuild.clone(), Budget::unlimited())
        .await
        .unwrap();
    assert!(s.model_refit);
    assert_eq!(
        w.store.get_fit("example").await.unwrap().unwrap().version,
        2
    );
}

#[tokio::test]
async fn a_refit_of_too_few_customers_keeps_the_stored_model() {
    use shared::ports::FitStore;
    let w = world();
    seed(&w, &[customer("a", 7, 10), customer("b", 14, 40)]).await;
    let rebuild = Input {
        now: now(),
        mode: Mode::Rebuild,
    };
    let s = run(&w.deps, rebuild, Budget::unlimited()).await.unwrap();
    assert!(!s.model_refit);
    assert!(s.model_fit.unwrap().warning.is_some());
    assert_eq!(w.store.get_fit("example").await.unwrap(), None);
    assert_eq!(
        w.metrics
            .sum("ModelFellBackToPrior", &[("Campaign", "example")]),
        1.0
    );
}

#[tokio::test]
async fn the_stored_model_decides_who_has_lapsed() {
    use shared::domain::model::{CampaignFit, Fit, Params, Variant};
    use shared::ports::FitStore;
    // A weekly buyer quiet for 40 days: under the shipped prior at risk (they lapse after about
    // 71 quiet days), so the at-risk flow.
    let w = world();
    seed(&w, &[customer("x", 7, 40)]).await;
    run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    let e = w
        .store
        .get_enrollment("x", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.flow, shared::domain::sequence::Flow::AtRisk);
    // A shop whose customers drop out after almost every order: the same customer has lapsed.
    let w = world();
    seed(&w, &[customer("x", 7, 40)]).await;
    let mut fit = Fit::prior(Variant::Mbgnbd);
    fit.params = Params {
        r: 0.6,
        alpha: 50.0,
        a: 20.0,
        b: 0.5,
    };
    w.store
        .save_fit(&CampaignFit {
            campaign: "example".into(),
            fit,
            fitted_at: now(),
            version: 0,
        })
        .await
        .unwrap();
    run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    let e = w
        .store
        .get_enrollment("x", "example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.flow, shared::domain::sequence::Flow::WinBack);
}

/// A customer id the shipped experiment treats (not held out) in every flow.
const DEAF: &str = "deaf-1";
/// One it treats in the win-back flow but holds out of the re-engagement flow.
const DEAF_HELD_OUT: &str = "deaf-0";

/// A lapsed customer whose earlier win-back enrollment sent every step and ended long ago.
async fn emailed_long_ago(w: &World, id: &str, opened: u32) {
    let mut p = customer(id, 7, 400);
    p.emails_opened = opened;
    seed(w, &[p]).await;
    let start = now() - Duration::days(300);
    let e = every_step_sent(id, start)
        .close(start + Duration::days(30), true)
        .unwrap();
    w.store.save_enrollment(&e).await.unwrap();
}

#[tokio::test]
async fn who_never_opened_an_email_gets_the_re_permission_flow_and_is_sunset_sooner() {
    use shared::domain::engagement::Segment;
    use shared::domain::sequence::Flow;
    let w = world();
    emailed_long_ago(&w, DEAF, 0).await;
    emailed_long_ago(&w, "reader", 2).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 2);
    let get = |id: &'static str| {
        let store = w.store.clone();
        async move { store.get_enrollment(id, "example").await.unwrap().unwrap() }
    };
    let deaf = get(DEAF).await;
    assert_eq!(deaf.flow, Flow::ReEngagement);
    assert_eq!(deaf.segment, Some(Segment::NeverOpened));
    assert_eq!(deaf.group, Group::Treated);
    let reader = get("reader").await;
    assert_eq!(reader.flow, Flow::WinBack);
    assert_eq!(reader.segment, Some(Segment::OpenedNotClicked));
    // Its counters are its own.
    let enrolled: i64 = w
        .store
        .counter_rows("example-re-engagement")
        .await
        .unwrap()
        .iter()
        .filter(|r| r.day.is_none())
        .map(|r| r.counts.get("enrolled"))
        .sum();
    assert_eq!(enrolled, 1);
    // So are its metrics: by the name of its counters, and by flow for the dashboard's rows.
    let by_flow = |flow: &str| w.metrics.sum("CustomersEnrolled", &[("Flow", flow)]);
    assert_eq!((by_flow("re-engagement"), by_flow("win-back")), (1.0, 1.0));
    assert_eq!(
        w.metrics.sum(
            "CustomersEnrolled",
            &[
                ("Campaign", "example-re-engagement"),
                ("Variant", &deaf.variant)
            ]
        ),
        1.0
    );

    // One re-permission email, then the sunset after re_engagement.sunset_after_days (5), not
    // the win-back flow's 14.
    let c = example_campaign();
    assert_eq!(c.steps_of(Flow::ReEngagement).len(), 1);
    let sent = deaf.record_sent(1, now(), None, &c).unwrap();
    assert_eq!(sent.status, Status::AwaitingSunset);
    assert_eq!(sent.due_at, Some(now() + Duration::days(5)));
    w.store.save_enrollment(&sent).await.unwrap();
    let later = Input {
        now: now() + Duration::days(5),
        mode: Mode::Due,
    };
    let s = run(&w.deps, later, Budget::unlimited()).await.unwrap();
    assert_eq!(s.sunset(), 1);
    assert_eq!(s.flows[&Flow::ReEngagement].sunset, 1);
    assert_eq!(
        w.metrics
            .sum("CustomersSunset", &[("Flow", "re-engagement")]),
        1.0
    );
    assert!(matches!(get(DEAF).await.status, Status::Sunset { .. }));
}

/// The customer's latest enrollment in the example campaign.
async fn enrollment_of(w: &World, id: &str) -> shared::domain::sequence::Enrollment {
    w.store
        .get_enrollment(id, "example")
        .await
        .unwrap()
        .unwrap()
}

/// The flow and occasion `DEAF` (lapsed, never opened an email, birthday today in UTC) enters
/// under `[flows] priority`.
async fn flow_entered(priority: Vec<String>) -> (shared::domain::sequence::Flow, bool) {
    let mut w = world();
    let mut c = example_campaign();
    c.flows.priority = priority;
    w.deps.campaign = Arc::new(c);
    emailed_long_ago(&w, DEAF, 0).await;
    let mut p = w.store.get_profile(DEAF).await.unwrap().unwrap();
    p.time_zone = Some("UTC".into());
    p.birthday = Some(shared::domain::celebration::Birthday::parse("--11-22").unwrap());
    w.store.save_profile(&p).await.unwrap();
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 1);
    let e = enrollment_of(&w, DEAF).await;
    (e.flow, e.occasion.is_some())
}

#[tokio::test]
async fn the_campaigns_flow_priority_decides_which_flow_a_qualifying_customer_enters() {
    use shared::domain::sequence::Flow;
    // A lapsed customer who never opened an email and whose birthday is today (UTC): they
    // qualify for the win-back, re-engagement and celebration flows.
    let flow_with = |priority: &[&str]| {
        let priority: Vec<String> = priority.iter().map(|n| n.to_string()).collect();
        flow_entered(priority)
    };

    // The shipped order: who does not read email gets the re-permission message.
    assert_eq!(
        flow_with(&["re-engagement", "win-back", "at-risk", "celebration"]).await,
        (Flow::ReEngagement, false)
    );
    assert_eq!(flow_with(&[]).await, (Flow::ReEngagement, false));
    assert_eq!(
        flow_with(&["win-back", "re-engagement"]).await,
        (Flow::WinBack, false)
    );
    assert_eq!(flow_with(&["celebration"]).await, (Flow::Celebration, true));
}

#[tokio::test]
async fn the_re_engagement_flow_has_a_holdout_of_its_own_that_gets_no_email_and_keeps_the_address()
{
    use shared::domain::sequence::Flow;
    let w = world();
    emailed_long_ago(&w, DEAF, 0).await;
    emailed_long_ago(&w, DEAF_HELD_OUT, 0).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 2);
    assert_eq!(s.flows[&Flow::ReEngagement].holdout(), 1);
    let held = enrollment_of(&w, DEAF_HELD_OUT).await;
    assert_eq!(
        (held.flow, held.group, held.status.clone()),
        (Flow::ReEngagement, Group::Holdout, Status::Holdout)
    );
    // Only the treated one gets the re-permission email.
    let steps = steps_due(&w.bus.drain());
    assert_eq!(steps, vec![format!("{DEAF}:1")]);
    // The flow's counters have a holdout row to compare with: its report shows a lift.
    let rows = w.store.counter_rows("example-re-engagement").await.unwrap();
    let enrolled = |group: &str| -> i64 {
        rows.iter()
            .filter(|r| r.day.is_none() && r.key.group.as_str() == group)
            .map(|r| r.counts.get("enrolled"))
            .sum()
    };
    assert_eq!((enrolled("treated"), enrolled("holdout")), (1, 1));
    // When its window closes the held-out customer keeps the address (no sunset).
    let end = held.due_at.unwrap();
    let later = Input {
        now: end,
        mode: Mode::Due,
    };
    let s = run(&w.deps, later, Budget::unlimited()).await.unwrap();
    assert_eq!(s.sunset(), 0);
    assert!(matches!(
        enrollment_of(&w, DEAF_HELD_OUT).await.status,
        Status::Closed { .. }
    ));
    let p = w.store.get_profile(DEAF_HELD_OUT).await.unwrap().unwrap();
    assert_eq!(p.sunset_at, None);
}

#[tokio::test]
async fn a_click_on_the_re_permission_email_keeps_the_address() {
    let w = world();
    emailed_long_ago(&w, DEAF, 0).await;
    run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    let c = example_campaign();
    let e = enrollment_of(&w, DEAF).await;
    let sent = e.record_sent(1, now(), None, &c).unwrap();
    w.store.save_enrollment(&sent).await.unwrap();
    // SES reports the click ("yes, keep me on the list").
    let mut p = w.store.get_profile(DEAF).await.unwrap().unwrap();
    p.emails_clicked = 1;
    p.last_clicked_at = Some(now() + Duration::hours(3));
    w.store.save_profile(&p).await.unwrap();
    let later = Input {
        now: now() + Duration::days(5),
        mode: Mode::Due,
    };
    let s = run(&w.deps, later, Budget::unlimited()).await.unwrap();
    assert_eq!(s.sunset(), 0);
    let e = enrollment_of(&w, DEAF).await;
    assert!(matches!(e.status, Status::Closed { .. }), "{:?}", e.status);
    let p = w.store.get_profile(DEAF).await.unwrap().unwrap();
    assert_eq!(p.sunset_at, None);
}

/// Customers lapsed 120 days ago whose usual order is 80.00: even ones buy gifts, odd ones
/// coffee.
fn gift_and_coffee_buyers(prefix: &str, n: usize) -> Vec<Profile> {
    (0..n)
        .map(|i| {
            let mut p = customer(&format!("{prefix}{i}"), 14, 120);
            for o in p.orders.iter_mut() {
                o.amount = Money(8000);
                if i.is_multiple_of(2) {
                    o.category = Some("gifts".into());
                }
            }
            p.lifetime_value = Money(8000 * i64::from(p.order_count));
            p
        })
        .collect()
}

#[tokio::test]
async fn targeting_learns_from_finished_enrollments_and_stops_rewarding_who_buys_anyway() {
    use shared::domain::targeting::{Mode as Targeting, Treatment};
    let mut w = world();
    let mut campaign = example_campaign();
    campaign.targeting.mode = Targeting::Uplift;
    campaign.targeting.min_enrollments = 30;
    campaign.targeting.exploration = 0.0;
    campaign.targeting.margin = 0.4;
    w.deps.campaign = Arc::new(campaign);

    // Round one: no model yet, so the rules decide, and every enrollment keeps its features.
    seed(&w, &gift_and_coffee_buyers("a", 1000)).await;
    let s = run(&w.deps, input(), Budget::unlimited()).await.unwrap();
    assert_eq!(s.enrolled, 1000);
    let flow = &s.flows[&shared::domain::sequence::Flow::WinBack];
    let program_holdout = flow.enrolled_by_variant.get("program-holdout").copied();
    assert_eq!(
        flow.targeting.get("as_the_rules").copied(),
        Some(1000 - flow.holdout() - program_holdout.unwrap_or(0)),
        "{flow:?}"
    );
    // What the customers did: gift buyers come back with the emails (50%) and hardly without
    // (4%); coffee buyers come back as often either way (30%). Fixed by their number.
    for e in w.store.all_enrollments() {
        let i: usize = e.customer_id.as_str()[1..].parse().unwrap();
        let profile = w
            .store
            .get_profile(e.customer_id.as_str())
            .await
            .unwrap()
            .unwrap();
        let on = profile
            .enrolled_on
            .expect("the features at enrollment are kept");
        assert_eq!(on.enrollment_id, e.id);
        assert_eq!(
            on.features.0["category"],
            if i.is_multiple_of(2) {
                "gifts"
            } else {
                "coffee"
            }
        );
        let treated = e.group == Group::Treated;
        let per_100 = match (i.is_multiple_of(2), treated) {
            (true, true) => 50,
            (true, false) => 4,
            (false, _) => 30,
        };
        if (i / 2 * 37) % 100 < per_100 {
            let mut won = e.clone();
            won.status = Status::WonBack {
                at: now() + Duration::days(5),
            };
            won.due_at = None;
            w.store.save_enrollment(&won).await.unwrap();
        }
    }

    // The weekly rebuild, after the attribution window: the win-back flow's model is learned.
    let later = now() + Duration::days(45);
    let model = rebuild_learns_win_back(&w, later).await;
    assert_eq!(model.learned_from.0 + model.learned_from.1, 1000);
    assert!(model.with_reward.is_some());
    assert!(
        model.email_only.is_some(),
        "the example's email-only variant teaches the email alone"
    );

    // Round two: the model decides for new lapsed customers.
    let fresh: Vec<Profile> = gift_and_coffee_buyers("b", 200)
        .into_iter()
        .map(|mut p| {
            p.due_at = Some(later - Duration::hours(1));
            for o in p.orders.iter_mut() {
                o.at += Duration::days(45);
            }
            p.last_order_at = p.orders.last().map(|o| o.at);
            p.first_order_at = p.orders.first().map(|o| o.at);
            p
        })
        .collect();
    seed(&w, &fresh).await;
    w.bus.drain();
    let s = run(
        &w.deps,
        Input {
            now: later,
            mode: Mode::Due,
        },
        Budget::unlimited(),
    )
    .await
    .unwrap();
    assert_eq!(s.enrolled, 200, "{s:?}");
    let mut by = std::collections::BTreeMap::<(bool, Treatment), usize>::new();
    for e in w
        .store
        .all_enrollments()
        .into_iter()
        .filter(|e| e.customer_id.as_str().starts_with('b') && e.group == Group::Treated)
    {
        let i: usize = e.customer_id.as_str()[1..].parse().unwrap();
        let t = e.treatment.unwrap_or(Treatment::AsTheRules);
        *by.entry((i.is_multiple_of(2), t)).or_default() += 1;
        if t == Treatment::NoEmail {
            // Not emailed: the flow's window runs out as a holdout's would, counted in its variant.
            assert_eq!(e.status, Status::Holdout);
        }
    }
    // Gift buyers are emailed (the email alone brings them back as often as with the reward, so
    // mostly without it); coffee buyers, who come back as often either way, are not.
    let emails = |t: &Treatment| {
        matches!(
            t,
            Treatment::EmailWithReward | Treatment::EmailWithoutReward
        )
    };
    assert!(
        by.keys().all(|(gifts, t)| if *gifts {
            emails(t)
        } else {
            *t == Treatment::NoEmail
        }),
        "{by:?}"
    );
    // Only the emailed get a first step.
    let emailed: usize = by
        .iter()
        .filter(|((_, t), _)| emails(t))
        .map(|(_, n)| n)
        .sum();
    let stepped = steps_due(&w.bus.drain())
        .iter()
        .filter(|s| s.starts_with('b'))
        .count();
    assert_eq!(stepped, emailed);
}

#[tokio::test]
async fn a_rebuild_also_learns_from_the_earlier_enrollments_kept_on_profiles() {
    use shared::domain::customer::{Arm, Example, Finished};
    use shared::domain::targeting::Snapshot;
    let w = world();
    // 200 customers, none enrolled now, each with two earlier win-back enrollments that were over
    // when the next replaced them: one held out, one emailed with the reward.
    let profiles: Vec<Profile> = (0..200)
        .map(|i| {
            let mut p = customer(&format!("e{i}"), 30, 60);
            let features = |k: usize| {
                Snapshot(
                    [("orders".to_string(), ((i + k) % 5).to_string())]
                        .into_iter()
                        .collect(),
                )
            };
            p.finished = [(Arm::NoEmail, i % 5 == 0), (Arm::WithReward, i % 2 == 0)]
                .into_iter()
                .enumerate()
                .map(|(k, (arm, ordered))| Finished {
                    enrollment_id: format!("e{i}-{k}"),
                    flow: "win-back".into(),
                    example: Example {
                        features: features(k),
                        arm,
                        ordered,
                    },
                })
                .collect();
            p
        })
        .collect();
    seed(&w, &profiles).await;
    let model = rebuild_learns_win_back(&w, now()).await;
    assert_eq!(model.learned_from, (200, 200));
}

/// Runs the weekly rebuild at `at`, checks it learned the win-back flow's model (and no other
/// flow's), and returns the stored model.
async fn rebuild_learns_win_back(
    w: &World,
    at: DateTime<Utc>,
) -> shared::domain::targeting::TargetingModel {
    use shared::ports::FitStore;
    let s = run(
        &w.deps,
        Input {
            now: at,
            mode: Mode::Rebuild,
        },
        Budget::unlimited(),
    )
    .await
    .unwrap();
    assert_eq!(s.targeting_learned, vec!["win-back".to_string()], "{s:?}");
    w.store
        .get_targeting("example", "win-back")
        .await
        .unwrap()
        .expect("stored")
}
