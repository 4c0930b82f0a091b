//! Fault injection around the ports: a store that throttles or dies at a chosen write, a mailer
//! that throttles or dies after SES accepted, and a bus whose PutEvents fails part of a batch.
//!
//! Every wrapper counts the faults it injected, and the store and the mailer stamp what they do
//! with one shared [`Sequencer`], so a test can tell which happened first across tasks.

use shared::ports::{DueQuery, PageAt, ScanSegment};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::domain::customer::{EmailStatus, Profile};
use shared::domain::metrics::{CohortKey, CounterRow};
use shared::domain::model::CampaignFit;
use shared::domain::reward::{Reward, RewardCode};
use shared::domain::sequence::Enrollment;
use shared::events::BusEvent;
use shared::ports::{
    BusError, Checkpoint, CheckpointStore, Claimed, DueIndex, DueItem, Email, EnrollmentStore,
    ErasureStore, EventBus, FitStore, IdempotencyStore, MailError, Mailer, MetricsStore,
    OrderIndex, OrderOwner, Page, ProfileStore, PutResult, RewardStore, Store, StoreError,
    StoreResult,
};

/// A global order of events across tasks: every stamp is larger than every earlier one.
#[derive(Debug, Default)]
pub struct Sequencer(AtomicU64);

impl Sequencer {
    /// The next stamp.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// When to inject a fault: every `every`-th call, or with `probability` drawn from a seeded RNG.
#[derive(Debug)]
pub struct FaultPlan {
    every: Option<u64>,
    probability: f64,
    rng: Mutex<StdRng>,
    calls: AtomicU64,
}

impl FaultPlan {
    /// Never injects.
    pub fn never() -> FaultPlan {
        FaultPlan::probability(0.0, 0)
    }

    /// Injects on every `n`-th call (n = 2: every other call).
    pub fn every(n: u64) -> FaultPlan {
        FaultPlan {
            every: Some(n.max(1)),
            ..FaultPlan::never()
        }
    }

    /// Injects with probability `p`, reproducibly for a given `seed`.
    pub fn probability(p: f64, seed: u64) -> FaultPlan {
        FaultPlan {
            every: None,
            probability: p,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            calls: AtomicU64::new(0),
        }
    }

    /// Whether this call gets a fault.
    pub fn hit(&self) -> bool {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(every) = self.every {
            return n.is_multiple_of(every);
        }
        self.probability > 0.0 && self.rng.lock().unwrap().gen_bool(self.probability)
    }

    /// A draw in `0..n` from the plan's RNG.
    pub fn below(&self, n: u64) -> u64 {
        self.rng.lock().unwrap().gen_range(0..n.max(1))
    }
}

/// A point in the sender where the process dies (the task panics) or a write fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Right after the claim (a versioned enrollment save carrying a claim) was written.
    AfterClaim,
    /// Right after the reward item was inserted.
    AfterRewardInsert,
    /// Right after SES accepted the email, before anything else.
    AfterSesAccepted,
    /// The process dies as it is about to write the mark (SES already has the email).
    BeforeMark,
    /// Webhook: right after an event id (`ses#`, `activity#`) was claimed.
    AfterEventClaim,
    /// Webhook: right after an email's open or click was claimed for counting.
    AfterCountClaim,
    /// Webhook: a panic while recording, after both claims (the profile save panics).
    WhileRecording,
}

impl CrashPoint {
    /// Every point, in the order the sender passes them.
    pub const ALL: [CrashPoint; 4] = [
        CrashPoint::AfterClaim,
        CrashPoint::AfterRewardInsert,
        CrashPoint::AfterSesAccepted,
        CrashPoint::BeforeMark,
    ];

    /// The webhook's points.
    pub const WEBHOOK: [CrashPoint; 3] = [
        CrashPoint::AfterEventClaim,
        CrashPoint::AfterCountClaim,
        CrashPoint::WhileRecording,
    ];

    /// A short name for figures.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterClaim => "after claim",
            CrashPoint::AfterRewardInsert => "after reward insert",
            CrashPoint::AfterSesAccepted => "after SES accepted",
            CrashPoint::BeforeMark => "before mark",
            CrashPoint::AfterEventClaim => "webhook after event claim",
            CrashPoint::AfterCountClaim => "webhook after open/click claim",
            CrashPoint::WhileRecording => "webhook panics while recording",
        }
    }
}

/// A one-shot crash shared by a [`FaultyStore`] and a [`FaultyMailer`].
#[derive(Debug, Default)]
pub struct Crash {
    armed: Mutex<Option<CrashPoint>>,
    fired: AtomicU64,
}

/// The panic message of a simulated crash.
pub const CRASH_MESSAGE: &str = "simulated crash of the sender process";

impl Crash {
    /// Arms `point`: the next time the sender passes it, it crashes once.
    pub fn arm(&self, point: CrashPoint) {
        *self.armed.lock().unwrap() = Some(point);
    }

    /// How many crashes fired.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    fn take(&self, point: CrashPoint) -> bool {
        let mut armed = self.armed.lock().unwrap();
        if *armed == Some(point) {
            *armed = None;
            self.fired.fetch_add(1, Ordering::SeqCst);
            true
        } else {
            false
        }
    }
}

fn transient(what: &str) -> StoreError {
    StoreError::Transient(format!("injected throttling on {what}").into())
}

/// One store write, stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteStamp {
    pub seq: u64,
    pub op: &'static str,
    pub customer_id: String,
}

/// A store that injects `Transient` errors and crashes around any other store.
///
/// `reads` and `writes` decide which calls fail *before* reaching the store (throttling: nothing
/// is applied); `lost_acks` decides which writes fail *after* the store applied them (a timeout
/// whose write went through).
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    reads: FaultPlan,
    writes: FaultPlan,
    lost_acks: FaultPlan,
    crash: Arc<Crash>,
    seq: Arc<Sequencer>,
    injected: AtomicU64,
    calls: AtomicU64,
    log: Mutex<Vec<WriteStamp>>,
    latency_micros: u64,
    unsubscribe_after_claim: bool,
}

impl FaultyStore {
    /// Wraps `inner` with no faults.
    pub fn new(inner: Arc<dyn Store>, seq: Arc<Sequencer>, crash: Arc<Crash>) -> FaultyStore {
        FaultyStore {
            inner,
            reads: FaultPlan::never(),
            writes: FaultPlan::never(),
            lost_acks: FaultPlan::never(),
            crash,
            seq,
            injected: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            latency_micros: 0,
            unsubscribe_after_claim: false,
        }
    }

    /// Right after each new claim is stored, the customer's profile is marked unsubscribed (as
    /// the first write of a one-click unsubscribe that lands between the claim and SES).
    pub fn unsubscribing_after_claim(mut self) -> FaultyStore {
        self.unsubscribe_after_claim = true;
        self
    }

    /// Store calls made through this wrapper so far, reads and writes.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Each write takes up to `micros` (seeded), like a networked store does.
    pub fn with_latency(mut self, micros: u64) -> FaultyStore {
        self.latency_micros = micros;
        self
    }

    async fn pause(&self) {
        if self.latency_micros > 0 {
            let wait = self.lost_acks.below(self.latency_micros);
            tokio::time::sleep(std::time::Duration::from_micros(wait)).await;
        }
    }

    /// Throttles reads by `reads` and writes by `writes`.
    pub fn throttling(mut self, reads: FaultPlan, writes: FaultPlan) -> FaultyStore {
        self.reads = reads;
        self.writes = writes;
        self
    }

    /// Reports applied writes as failed by `plan`.
    pub fn losing_acks(mut self, plan: FaultPlan) -> FaultyStore {
        self.lost_acks = plan;
        self
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Every successful write, stamped, in order.
    pub fn writes_log(&self) -> Vec<WriteStamp> {
        self.log.lock().unwrap().clone()
    }

    fn read(&self, what: &str) -> StoreResult<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.reads.hit() {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(transient(what));
        }
        Ok(())
    }

    fn before_write(&self, what: &str) -> StoreResult<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.writes.hit() {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(transient(what));
        }
        Ok(())
    }

    fn after_write<T>(
        &self,
        op: &'static str,
        customer_id: &str,
        r: StoreResult<T>,
    ) -> StoreResult<T> {
        let v = r?;
        self.log.lock().unwrap().push(WriteStamp {
            seq: self.seq.next(),
            op,
            customer_id: customer_id.to_string(),
        });
        if self.lost_acks.hit() {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(transient(op));
        }
        Ok(v)
    }
}

#[async_trait]
impl ProfileStore for FaultyStore {
    async fn get_profile(&self, customer_id: &str) -> StoreResult<Option<Profile>> {
        self.read("get_profile")?;
        self.inner.get_profile(customer_id).await
    }

    async fn save_profile(&self, profile: &Profile) -> StoreResult<u64> {
        if self.crash.take(CrashPoint::WhileRecording) {
            panic!("{CRASH_MESSAGE}: {}", CrashPoint::WhileRecording.name());
        }
        self.before_write("save_profile")?;
        self.pause().await;
        let r = self.inner.save_profile(profile).await;
        self.after_write("save_profile", &profile.customer_id, r)
    }

    async fn put_profiles(&self, profiles: &[Profile]) -> StoreResult<usize> {
        self.before_write("put_profiles")?;
        let r = self.inner.put_profiles(profiles).await;
        self.after_write("put_profiles", "", r)
    }
}

#[async_trait]
impl EnrollmentStore for FaultyStore {
    async fn get_enrollment(
        &self,
        customer_id: &str,
        campaign: &str,
    ) -> StoreResult<Option<Enrollment>> {
        self.read("get_enrollment")?;
        self.inner.get_enrollment(customer_id, campaign).await
    }

    async fn save_enrollment(&self, enrollment: &Enrollment) -> StoreResult<u64> {
        let is_mark_shaped = enrollment.claim.is_none() && !enrollment.sent.is_empty();
        let stored = if is_mark_shaped || enrollment.claim.is_some() {
            self.inner
                .get_enrollment(&enrollment.customer_id, &enrollment.campaign)
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let stored_claim = stored.as_ref().and_then(|s| s.claim.as_ref());
        let is_mark = is_mark_shaped
            && stored.as_ref().is_some_and(|stored| {
                stored_claim.is_some_and(|c| {
                    enrollment.sent.iter().any(|s| s.step == c.step)
                        && stored.sent.iter().all(|s| s.step != c.step)
                })
            });
        // A new claim (a new token), not the release of one (same token, lease ended).
        let is_claim = enrollment
            .claim
            .as_ref()
            .is_some_and(|c| stored_claim.is_none_or(|s| s.token != c.token));
        if is_mark && self.crash.take(CrashPoint::BeforeMark) {
            // The process dies as it is about to mark: SES has the email, the store does not
            // know. (A failed mark write is retried by the sender, so it is no crash.)
            self.injected.fetch_add(1, Ordering::SeqCst);
            panic!("{CRASH_MESSAGE}: {}", CrashPoint::BeforeMark.name());
        }
        self.before_write("save_enrollment")?;
        self.pause().await;
        let r = self.inner.save_enrollment(enrollment).await;
        let claimed = r.is_ok() && is_claim;
        let r = self.after_write("save_enrollment", &enrollment.customer_id, r);
        if claimed && self.crash.take(CrashPoint::AfterClaim) {
            panic!("{CRASH_MESSAGE}: {}", CrashPoint::AfterClaim.name());
        }
        if claimed && self.unsubscribe_after_claim {
            let id = &enrollment.customer_id;
            if let Ok(Some(mut p)) = self.inner.get_profile(id).await {
                p.email_status = EmailStatus::Unsubscribed;
                self.inner.save_profile(&p).await?;
            }
        }
        r
    }
}

#[async_trait]
impl ErasureStore for FaultyStore {
    async fn enrollments_of(&self, customer_id: &str) -> StoreResult<Vec<Enrollment>> {
        self.read("enrollments_of")?;
        self.inner.enrollments_of(customer_id).await
    }

    async fn rewards_of(&self, customer_id: &str) -> StoreResult<Vec<RewardCode>> {
        self.read("rewards_of")?;
        self.inner.rewards_of(customer_id).await
    }

    async fn delete_enrollment(&self, customer_id: &str, campaign: &str) -> StoreResult<()> {
        self.before_write("delete_enrollment")?;
        let r = self.inner.delete_enrollment(customer_id, campaign).await;
        self.after_write("delete_enrollment", customer_id, r)
    }

    async fn delete_reward(&self, customer_id: &str, code: &RewardCode) -> StoreResult<()> {
        self.before_write("delete_reward")?;
        let r = self.inner.delete_reward(customer_id, code).await;
        self.after_write("delete_reward", customer_id, r)
    }

    async fn orders_of(&self, customer_id: &str) -> StoreResult<Vec<(String, String)>> {
        self.read("orders_of")?;
        self.inner.orders_of(customer_id).await
    }

    async fn delete_order_owner(
        &self,
        customer_id: &str,
        source: &str,
        order_id: &str,
    ) -> StoreResult<()> {
        self.before_write("delete_order_owner")?;
        let r = self
            .inner
            .delete_order_owner(customer_id, source, order_id)
            .await;
        self.after_write("delete_order_owner", customer_id, r)
    }
}

#[async_trait]
impl OrderIndex for FaultyStore {
    async fn put_order_owners(&self, owners: &[OrderOwner]) -> StoreResult<()> {
        self.before_write("put_order_owners")?;
        let r = self.inner.put_order_owners(owners).await;
        let customer = owners.first().map_or("", |o| o.customer_id.as_str());
        self.after_write("put_order_owners", customer, r)
    }

    async fn order_owner(
        &self,
        source: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        self.read("order_owner")?;
        self.inner.order_owner(source, order_id, now).await
    }
}

#[async_trait]
impl RewardStore for FaultyStore {
    async fn insert_reward(&self, reward: &Reward) -> StoreResult<()> {
        self.before_write("insert_reward")?;
        self.pause().await;
        let r = self.inner.insert_reward(reward).await;
        let inserted = r.is_ok();
        let r = self.after_write("insert_reward", &reward.customer_id, r);
        if inserted && self.crash.take(CrashPoint::AfterRewardInsert) {
            panic!("{CRASH_MESSAGE}: {}", CrashPoint::AfterRewardInsert.name());
        }
        r
    }

    async fn get_reward(&self, code: &RewardCode) -> StoreResult<Option<Reward>> {
        self.read("get_reward")?;
        self.inner.get_reward(code).await
    }

    async fn save_reward(&self, reward: &Reward) -> StoreResult<u64> {
        self.before_write("save_reward")?;
        let r = self.inner.save_reward(reward).await;
        self.after_write("save_reward", &reward.customer_id, r)
    }
}

#[async_trait]
impl IdempotencyStore for FaultyStore {
    async fn claim_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<Claimed> {
        self.before_write("claim_key")?;
        let r = self.inner.claim_key(key, expires_at).await;
        let r = self.after_write("claim_key", "", r);
        if matches!(r, Ok(Claimed::New)) {
            let point = if key.starts_with("ses-opened#") || key.starts_with("ses-clicked#") {
                CrashPoint::AfterCountClaim
            } else {
                CrashPoint::AfterEventClaim
            };
            if self.crash.take(point) {
                panic!("{CRASH_MESSAGE}: {}", point.name());
            }
        }
        r
    }

    async fn record_result(
        &self,
        key: &str,
        result: &str,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.before_write("record_result")?;
        let r = self.inner.record_result(key, result, keep_until).await;
        self.after_write("record_result", "", r)
    }

    async fn release_key(&self, key: &str) -> StoreResult<()> {
        self.before_write("release_key")?;
        let r = self.inner.release_key(key).await;
        self.after_write("release_key", "", r)
    }
}

#[async_trait]
impl MetricsStore for FaultyStore {
    async fn add_counts(
        &self,
        key: &CohortKey,
        day: Option<NaiveDate>,
        deltas: &[(&str, i64)],
    ) -> StoreResult<()> {
        self.before_write("add_counts")?;
        let r = self.inner.add_counts(key, day, deltas).await;
        self.after_write("add_counts", "", r)
    }

    async fn counter_rows(&self, campaign: &str) -> StoreResult<Vec<CounterRow>> {
        self.read("counter_rows")?;
        self.inner.counter_rows(campaign).await
    }
}

#[async_trait]
impl DueIndex for FaultyStore {
    async fn due_page(&self, due: DueQuery, page: PageAt) -> StoreResult<Page<DueItem>> {
        self.read("due_page")?;
        self.inner.due_page(due, page).await
    }

    async fn scan_profiles(&self, scan: ScanSegment, page: PageAt) -> StoreResult<Page<Profile>> {
        self.read("scan_profiles")?;
        self.inner.scan_profiles(scan, page).await
    }
}

#[async_trait]
impl CheckpointStore for FaultyStore {
    async fn get_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        self.read("get_checkpoint")?;
        self.inner.get_checkpoint().await
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<u64> {
        self.before_write("save_checkpoint")?;
        let r = self.inner.save_checkpoint(checkpoint).await;
        self.after_write("save_checkpoint", "", r)
    }

    async fn clear_checkpoint(&self, version: u64) -> StoreResult<()> {
        self.before_write("clear_checkpoint")?;
        let r = self.inner.clear_checkpoint(version).await;
        self.after_write("clear_checkpoint", "", r)
    }
}

#[async_trait]
impl FitStore for FaultyStore {
    async fn get_fit(&self, campaign: &str) -> StoreResult<Option<CampaignFit>> {
        self.read("get_fit")?;
        self.inner.get_fit(campaign).await
    }

    async fn save_fit(&self, fit: &CampaignFit) -> StoreResult<u64> {
        self.before_write("save_fit")?;
        let r = self.inner.save_fit(fit).await;
        self.after_write("save_fit", "", r)
    }

    async fn get_targeting(
        &self,
        campaign: &str,
        flow: &str,
    ) -> StoreResult<Option<shared::domain::targeting::TargetingModel>> {
        self.read("get_targeting")?;
        self.inner.get_targeting(campaign, flow).await
    }

    async fn save_targeting(
        &self,
        model: &shared::domain::targeting::TargetingModel,
    ) -> StoreResult<u64> {
        self.before_write("save_targeting")?;
        let r = self.inner.save_targeting(model).await;
        self.after_write("save_targeting", "", r)
    }
}

/// One email SES accepted, stamped when the send call began.
#[derive(Debug, Clone, PartialEq)]
pub struct SendStamp {
    pub seq: u64,
    pub customer_id: String,
    pub step: String,
    pub message_id: String,
}

/// A mailer that throttles by a plan, can crash right after SES accepted, may take a little
/// while (seeded), and stamps every accepted email.
pub struct FaultyMailer {
    inner: Arc<dyn Mailer>,
    throttle: FaultPlan,
    latency_micros: u64,
    crash: Arc<Crash>,
    seq: Arc<Sequencer>,
    throttled: AtomicU64,
    paused: AtomicBool,
    refused_paused: AtomicU64,
    sent: Mutex<Vec<SendStamp>>,
}

impl FaultyMailer {
    /// Wraps `inner` with no faults.
    pub fn new(inner: Arc<dyn Mailer>, seq: Arc<Sequencer>, crash: Arc<Crash>) -> FaultyMailer {
        FaultyMailer {
            inner,
            throttle: FaultPlan::never(),
            latency_micros: 0,
            crash,
            seq,
            throttled: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            refused_paused: AtomicU64::new(0),
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Pauses (true) or resumes (false) sending for the account: while paused, every call is
    /// answered `Paused`, as SES answers `SendingPausedException`.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Calls answered `Paused`.
    pub fn refused_paused(&self) -> u64 {
        self.refused_paused.load(Ordering::SeqCst)
    }

    /// Answers `Throttled` on the calls `plan` picks.
    pub fn throttling(mut self, plan: FaultPlan) -> FaultyMailer {
        self.throttle = plan;
        self
    }

    /// Each send takes up to `micros` (drawn from the throttle plan's RNG), like SES does.
    pub fn with_latency(mut self, micros: u64) -> FaultyMailer {
        self.latency_micros = micros;
        self
    }

    /// Calls answered `Throttled`.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
    }

    /// Every accepted email, stamped.
    pub fn sent(&self) -> Vec<SendStamp> {
        self.sent.lock().unwrap().clone()
    }

    /// Accepted emails per `(customer, step)`.
    pub fn per_step(&self) -> BTreeMap<(String, String), u64> {
        let mut m = BTreeMap::new();
        for s in self.sent() {
            *m.entry((s.customer_id, s.step)).or_insert(0) += 1;
        }
        m
    }
}

fn tag(email: &Email, name: &str) -> String {
    email
        .tags
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[async_trait]
impl Mailer for FaultyMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let seq = self.seq.next();
        if self.paused.load(Ordering::SeqCst) {
            self.refused_paused.fetch_add(1, Ordering::SeqCst);
            return Err(MailError::Paused("injected: SendingPausedException".into()));
        }
        if self.throttle.hit() {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(MailError::Throttled(
                "injected: maximum sending rate exceeded".into(),
            ));
        }
        if self.latency_micros > 0 {
            let wait = self.throttle.below(self.latency_micros);
            tokio::time::sleep(std::time::Duration::from_micros(wait)).await;
        }
        let message_id = self.inner.send(email).await?;
        self.sent.lock().unwrap().push(SendStamp {
            seq,
            customer_id: tag(email, "customer_id"),
            step: tag(email, "step"),
            message_id: message_id.clone(),
        });
        if self.crash.take(CrashPoint::AfterSesAccepted) {
            panic!("{CRASH_MESSAGE}: {}", CrashPoint::AfterSesAccepted.name());
        }
        Ok(message_id)
    }
}

/// An event bus whose PutEvents fails some entries of a batch (and sometimes the whole call).
pub struct FlakyBus {
    inner: Arc<dyn EventBus>,
    entries: FaultPlan,
    calls: FaultPlan,
    offered: AtomicU64,
    failed_entries: AtomicU64,
    failed_calls: AtomicU64,
}

impl FlakyBus {
    /// Fails each entry by `entries` and each whole call by `calls`.
    pub fn new(inner: Arc<dyn EventBus>, entries: FaultPlan, calls: FaultPlan) -> FlakyBus {
        FlakyBus {
            inner,
            entries,
            calls,
            offered: AtomicU64::new(0),
            failed_entries: AtomicU64::new(0),
            failed_calls: AtomicU64::new(0),
        }
    }

    /// Entries handed to `put_batch`, retries included.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::SeqCst)
    }

    /// Entries answered as failed inside an accepted call.
    pub fn failed_entries(&self) -> u64 {
        self.failed_entries.load(Ordering::SeqCst)
    }

    /// Whole calls that failed.
    pub fn failed_calls(&self) -> u64 {
        self.failed_calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventBus for FlakyBus {
    async fn put_batch(&self, events: &[BusEvent]) -> Result<PutResult, BusError> {
        self.offered
            .fetch_add(events.len() as u64, Ordering::SeqCst);
        if self.calls.hit() {
            self.failed_calls.fetch_add(1, Ordering::SeqCst);
            return Err(BusError::Backend("injected: service unavailable".into()));
        }
        let mut pass = Vec::new();
        let mut result = PutResult::default();
        for (i, e) in events.iter().enumerate() {
            if self.entries.hit() {
                result
                    .failed
                    .push((i, "injected: ThrottlingException".to_string()));
            } else {
                pass.push(e.clone());
            }
        }
        self.failed_entries
            .fetch_add(result.failed.len() as u64, Ordering::SeqCst);
        if !pass.is_empty() {
            let inner = self.inner.put_batch(&pass).await?;
            if !inner.failed.is_empty() {
                return Err(BusError::Backend(
                    "the wrapped bus failed entries itself".into(),
                ));
            }
        }
        Ok(result)
    }
}

/// The figures one reliability case proves, printed as one line and written to RELIABILITY.md.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The case number of the suite (1–8).
    pub case: u8,
    pub title: String,
    /// `embedded` or `DynamoDB Local`.
    pub backend: String,
    /// Named counts: messages replayed, faults injected, bad inputs tried, duplicates, losses.
    pub values: Vec<(String, u64)>,
}

impl Figure {
    /// Starts a figure.
    pub fn new(case: u8, title: &str, backend: &str) -> Figure {
        Figure {
            case,
            title: title.to_string(),
            backend: backend.to_string(),
            values: Vec::new(),
        }
    }

    /// Adds a named count.
    pub fn with(mut self, name: &str, value: u64) -> Figure {
        self.values.push((name.to_string(), value));
        self
    }

    /// The value named `name` (0 when absent).
    pub fn get(&self, name: &str) -> u64 {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// One line: `case 1 [embedded] title: a=1, b=2`.
    pub fn line(&self) -> String {
        let values: Vec<String> = self
            .values
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        format!(
            "case {} [{}] {}: {}",
            self.case,
            self.backend,
            self.title,
            values.join(", ")
        )
    }

    /// Prints the line and returns the figure.
    pub fn print(self) -> Figure {
        println!("{}", self.line());
        self
    }
}
