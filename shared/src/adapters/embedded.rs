//! The embedded in-process world: a store, an event bus and a mailer in memory. Used by
//! `winback simulate` and by unit tests; the contract suite holds it to the DynamoDB adapter's
//! behaviour.

use crate::ports::{DueQuery, PageAt, ScanSegment};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::customer::Profile;
use crate::domain::metrics::{with_totals, CohortKey, CounterRow, Counts};
use crate::domain::model::CampaignFit;
use crate::domain::reward::{Reward, RewardCode};
use crate::domain::sequence::Enrollment;
use crate::domain::targeting::TargetingModel;
use crate::events::BusEvent;
use crate::ports::*;

/// Due-index key: (shard, due time, kind, customer, campaign).
type DueKey = (u32, DateTime<Utc>, u8, String, String);

#[derive(Default)]
struct Tables {
    profiles: BTreeMap<String, Profile>,
    enrollments: BTreeMap<(String, String), Enrollment>,
    rewards: HashMap<String, Reward>,
    idempotency: HashMap<String, (DateTime<Utc>, Option<String>)>,
    counters: BTreeMap<(CohortKey, Option<NaiveDate>), Counts>,
    due: std::collections::BTreeSet<DueKey>,
    checkpoint: Option<Checkpoint>,
    fits: BTreeMap<String, CampaignFit>,
    targeting: BTreeMap<(String, String), TargetingModel>,
    /// The order index: (source, order id) → (customer id, expiry).
    orders: BTreeMap<(String, String), (String, DateTime<Utc>)>,
    /// Each order index item listed under the customers it was put for: (customer, source, order
    /// id).
    order_listings: std::collections::BTreeSet<(String, String, String)>,
}

/// An in-memory [`Store`]. Thread-safe; every operation is atomic.
#[derive(Default)]
pub struct MemoryStore {
    t: Mutex<Tables>,
    items_read: AtomicU64,
    writes: AtomicU64,
    /// The clock idempotency expiry is compared against (the simulation's "now").
    clock: Mutex<Option<DateTime<Utc>>>,
}

fn conflict(entity: &'static str, id: &str, expected: u64) -> StoreError {
    StoreError::Conflict {
        entity,
        id: id.to_string(),
        expected,
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Items read by index queries, scans and gets so far.
    pub fn items_read(&self) -> u64 {
        self.items_read.load(Ordering::Relaxed)
    }

    /// Item writes so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Sets the time idempotency records expire against (defaults to the wall clock).
    pub fn set_clock(&self, now: DateTime<Utc>) {
        *self.clock.lock().expect("lock") = Some(now);
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.lock().expect("lock").unwrap_or_else(Utc::now)
    }

    /// Every profile (for reports and tests).
    pub fn all_profiles(&self) -> Vec<Profile> {
        self.t
            .lock()
            .expect("lock")
            .profiles
            .values()
            .cloned()
            .collect()
    }

    /// Every latest enrollment.
    pub fn all_enrollments(&self) -> Vec<Enrollment> {
        self.t
            .lock()
            .expect("lock")
            .enrollments
            .values()
            .cloned()
            .collect()
    }

    /// Every reward.
    pub fn all_rewards(&self) -> Vec<Reward> {
        self.t
            .lock()
            .expect("lock")
            .rewards
            .values()
            .cloned()
            .collect()
    }

    /// Every idempotency record's key with what it holds (for tests).
    pub fn all_idempotency(&self) -> Vec<(String, Option<String>)> {
        self.lock()
            .idempotency
            .iter()
            .map(|(k, (_, r))| (k.clone(), r.clone()))
            .collect()
    }

    pub fn all_targeting(&self) -> Vec<TargetingModel> {
        self.lock().targeting.values().cloned().collect()
    }

    /// Every order index item (for snapshots and tests).
    pub fn all_order_owners(&self) -> Vec<OrderOwner> {
        self.lock()
            .orders
            .iter()
            .map(
                |((source, order_id), (customer_id, expires_at))| OrderOwner {
                    source: source.clone(),
                    order_id: order_id.clone(),
                    customer_id: customer_id.clone(),
                    expires_at: *expires_at,
                },
            )
            .collect()
    }

    pub fn all_fits(&self) -> Vec<CampaignFit> {
        self.lock().fits.values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.t.lock().expect("store lock poisoned")
    }
}

fn set_due(
    t: &mut Tables,
    kind: u8,
    customer: &str,
    campaign: &str,
    old: Option<DateTime<Utc>>,
    new: Option<DateTime<Utc>>,
) {
    let shard = due_shard(customer);
    if let Some(o) = old {
        t.due
            .remove(&(shard, o, kind, customer.to_string(), campaign.to_string()));
    }
    if let Some(n) = new {
        t.due
            .insert((shard, n, kind, customer.to_string(), campaign.to_string()));
    }
}

#[async_trait]
impl ProfileStore for MemoryStore {
    async fn get_profile(&self, id: &str) -> StoreResult<Option<Profile>> {
        let t = self.lock();
        let p = t.profiles.get(id).cloned();
        if p.is_some() {
            self.items_read.fetch_add(1, Ordering::Relaxed);
        }
        Ok(p)
    }

    async fn save_profile(&self, p: &Profile) -> StoreResult<u64> {
        let mut t = self.lock();
        let current = t
            .profiles
            .get(p.customer_id.as_str())
            .map_or(0, |x| x.version);
        if current != p.version {
            return Err(conflict("profile", &p.customer_id, p.version));
        }
        let old_due = t
            .profiles
            .get(p.customer_id.as_str())
            .and_then(|x| x.due_at);
        set_due(&mut t, 0, &p.customer_id, "", old_due, p.due_at);
        let mut stored = p.clone();
        stored.version = p.version + 1;
        t.profiles.insert(p.customer_id.to_string(), stored);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(p.version + 1)
    }

    async fn put_profiles(&self, profiles: &[Profile]) -> StoreResult<usize> {
        let mut t = self.lock();
        for p in profiles {
            let old_due = t
                .profiles
                .get(p.customer_id.as_str())
                .and_then(|x| x.due_at);
            set_due(&mut t, 0, &p.customer_id, "", old_due, p.due_at);
            // As in DynamoDB's batch write: `version + 1` of what was given, unchecked.
            let mut stored = p.clone();
            stored.version = p.version + 1;
            t.profiles.insert(p.customer_id.to_string(), stored);
        }
        self.writes
            .fetch_add(profiles.len() as u64, Ordering::Relaxed);
        Ok(profiles.len())
    }
}

#[async_trait]
impl EnrollmentStore for MemoryStore {
    async fn get_enrollment(
        &self,
        customer: &str,
        campaign: &str,
    ) -> StoreResult<Option<Enrollment>> {
        let t = self.lock();
        let e = t
            .enrollments
            .get(&(customer.to_string(), campaign.to_string()))
            .cloned();
        if e.is_some() {
            self.items_read.fetch_add(1, Ordering::Relaxed);
        }
        Ok(e)
    }

    async fn save_enrollment(&self, e: &Enrollment) -> StoreResult<u64> {
        let mut t = self.lock();
        let key = (e.customer_id.to_string(), e.campaign.clone());
        let current = t.enrollments.get(&key).map_or(0, |x| x.version);
        if current != e.version {
            return Err(conflict("enrollment", &e.id, e.version));
        }
        let old_due = t.enrollments.get(&key).and_then(|x| x.due_at);
        set_due(&mut t, 1, &e.customer_id, &e.campaign, old_due, e.due_at);
        let mut stored = e.clone();
        stored.version = e.version + 1;
        t.enrollments.insert(key, stored);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(e.version + 1)
    }
}

#[async_trait]
impl ErasureStore for MemoryStore {
    async fn enrollments_of(&self, customer_id: &str) -> StoreResult<Vec<Enrollment>> {
        Ok(self
            .lock()
            .enrollments
            .values()
            .filter(|e| e.customer_id == customer_id)
            .cloned()
            .collect())
    }

    async fn rewards_of(&self, customer_id: &str) -> StoreResult<Vec<RewardCode>> {
        Ok(self
            .lock()
            .rewards
            .values()
            .filter(|r| r.customer_id == customer_id)
            .map(|r| r.code.clone())
            .collect())
    }

    async fn delete_enrollment(&self, customer_id: &str, campaign: &str) -> StoreResult<()> {
        let mut t = self.lock();
        let key = (customer_id.to_string(), campaign.to_string());
        if let Some(old) = t.enrollments.remove(&key) {
            set_due(&mut t, 1, customer_id, campaign, old.due_at, None);
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn delete_reward(&self, _customer_id: &str, code: &RewardCode) -> StoreResult<()> {
        if self.lock().rewards.remove(code.as_str()).is_some() {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn orders_of(&self, customer_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .lock()
            .order_listings
            .iter()
            .filter(|(c, _, _)| c == customer_id)
            .map(|(_, source, id)| (source.clone(), id.clone()))
            .collect())
    }

    async fn delete_order_owner(
        &self,
        customer_id: &str,
        source: &str,
        order_id: &str,
    ) -> StoreResult<()> {
        let mut t = self.lock();
        let key = (source.to_string(), order_id.to_string());
        if t.orders.get(&key).is_some_and(|(c, _)| c == customer_id) {
            t.orders.remove(&key);
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let (source, order_id) = key;
        if t.order_listings
            .remove(&(customer_id.to_string(), source, order_id))
        {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[async_trait]
impl OrderIndex for MemoryStore {
    async fn put_order_owners(&self, owners: &[OrderOwner]) -> StoreResult<()> {
        let mut t = self.lock();
        for o in owners {
            t.order_listings
                .insert((o.customer_id.clone(), o.source.clone(), o.order_id.clone()));
            t.orders.insert(
                (o.source.clone(), o.order_id.clone()),
                (o.customer_id.clone(), o.expires_at),
            );
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn order_owner(
        &self,
        source: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let t = self.lock();
        let found = t
            .orders
            .get(&(source.to_string(), order_id.to_string()))
            .filter(|(_, expires)| *expires > now)
            .map(|(c, _)| c.clone());
        if found.is_some() {
            self.items_read.fetch_add(1, Ordering::Relaxed);
        }
        Ok(found)
    }
}

#[async_trait]
impl RewardStore for MemoryStore {
    async fn insert_reward(&self, r: &Reward) -> StoreResult<()> {
        let mut t = self.lock();
        if t.rewards.contains_key(r.code.as_str()) {
            return Err(conflict("reward", r.code.as_str(), 0));
        }
        let mut stored = r.clone();
        stored.version = 1;
        t.rewards.insert(r.code.as_str().to_string(), stored);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn get_reward(&self, code: &RewardCode) -> StoreResult<Option<Reward>> {
        let r = self.lock().rewards.get(code.as_str()).cloned();
        if r.is_some() {
            self.items_read.fetch_add(1, Ordering::Relaxed);
        }
        Ok(r)
    }

    async fn save_reward(&self, r: &Reward) -> StoreResult<u64> {
        let mut t = self.lock();
        let current = t.rewards.get(r.code.as_str()).map_or(0, |x| x.version);
        if current != r.version || current == 0 {
            return Err(conflict("reward", r.code.as_str(), r.version));
        }
        let mut stored = r.clone();
        stored.version = r.version + 1;
        t.rewards.insert(r.code.as_str().to_string(), stored);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(r.version + 1)
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<Claimed> {
        let now = self.now();
        let mut t = self.lock();
        if let Some((exp, result)) = t.idempotency.get(key) {
            if *exp > now {
                return Ok(Claimed::Seen(result.clone()));
            }
        }
        t.idempotency.insert(key.to_string(), (expires_at, None));
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(Claimed::New)
    }

    async fn record_result(
        &self,
        key: &str,
        result: &str,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        if let Some(entry) = self.lock().idempotency.get_mut(key) {
            *entry = (keep_until, Some(result.to_string()));
        }
        Ok(())
    }

    async fn release_key(&self, key: &str) -> StoreResult<()> {
        self.lock().idempotency.remove(key);
        Ok(())
    }
}

#[async_trait]
impl MetricsStore for MemoryStore {
    async fn add_counts(
        &self,
        key: &CohortKey,
        day: Option<NaiveDate>,
        deltas: &[(&str, i64)],
    ) -> StoreResult<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        // Like the DynamoDB store: one row per count, totals summed when read.
        let mut t = self.lock();
        let row = t.counters.entry((key.clone(), day)).or_default();
        for (name, delta) in deltas {
            row.add(name, *delta);
        }
        Ok(())
    }

    async fn counter_rows(&self, campaign: &str) -> StoreResult<Vec<CounterRow>> {
        Ok(with_totals(
            self.lock()
                .counters
                .iter()
                .filter(|((k, _), _)| k.campaign == campaign)
                .map(|((k, d), c)| CounterRow {
                    key: k.clone(),
                    day: *d,
                    counts: c.clone(),
                })
                .collect(),
        ))
    }
}

fn encode_cursor(k: &DueKey) -> String {
    format!("{}|{}|{}|{}|{}", k.0, k.1.to_rfc3339(), k.2, k.3, k.4)
}

fn decode_cursor(s: &str) -> Option<DueKey> {
    let mut it = s.splitn(5, '|');
    let shard = it.next()?.parse().ok()?;
    let at = DateTime::parse_from_rfc3339(it.next()?)
        .ok()?
        .with_timezone(&Utc);
    let kind = it.next()?.parse().ok()?;
    Some((
        shard,
        at,
        kind,
        it.next()?.to_string(),
        it.next()?.to_string(),
    ))
}

#[async_trait]
impl DueIndex for MemoryStore {
    async fn due_page(&self, due: DueQuery, page: PageAt) -> StoreResult<Page<DueItem>> {
        let (DueQuery { shard, now }, PageAt { cursor, limit }) = (due, page);
        let t = self.lock();
        let start = match cursor.as_deref().map(decode_cursor) {
            Some(Some(k)) => std::ops::Bound::Excluded(k),
            Some(None) => {
                return Err(StoreError::Corrupt {
                    id: "cursor".into(),
                    reason: "unreadable cursor".into(),
                })
            }
            None => std::ops::Bound::Included((
                shard,
                DateTime::<Utc>::MIN_UTC,
                0,
                String::new(),
                String::new(),
            )),
        };
        let mut items = Vec::new();
        let mut last = None;
        for k in t.due.range((start, std::ops::Bound::Unbounded)) {
            if k.0 != shard || k.1 > now {
                last = None;
                break;
            }
            if items.len() as u32 == limit {
                break;
            }
            let item = if k.2 == 0 {
                t.profiles.get(&k.3).cloned().map(DueItem::Profile)
            } else {
                t.enrollments
                    .get(&(k.3.clone(), k.4.clone()))
                    .cloned()
                    .map(DueItem::Enrollment)
            };
            if let Some(i) = item {
                items.push(i);
            }
            last = Some(k.clone());
        }
        // A full page may have more behind it; a short one ended the shard.
        let cursor = if items.len() as u32 == limit {
            last.as_ref().map(encode_cursor)
        } else {
            None
        };
        self.items_read
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        let n = items.len() as u64;
        Ok(Page {
            items,
            cursor,
            items_read: n,
        })
    }

    async fn scan_profiles(&self, scan: ScanSegment, page: PageAt) -> StoreResult<Page<Profile>> {
        let (ScanSegment { segment, total }, PageAt { cursor, limit }) = (scan, page);
        let t = self.lock();
        let total = total.max(1);
        let mut items = Vec::new();
        let mut scanned = 0u64;
        let mut next = None;
        let start = cursor.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        for (id, p) in t
            .profiles
            .range::<String, _>((start, std::ops::Bound::Unbounded))
        {
            if due_shard(id) % total != segment {
                continue;
            }
            scanned += 1;
            items.push(p.clone());
            if items.len() as u32 == limit {
                next = Some(id.clone());
                break;
            }
        }
        // A scan reads every item of the table, enrollments and rewards included.
        let others = if next.is_none() {
            (t.enrollments.len() + t.rewards.len()) as u64 / u64::from(total)
        } else {
            0
        };
        self.items_read
            .fetch_add(scanned + others, Ordering::Relaxed);
        Ok(Page {
            items,
            cursor: next,
            items_read: scanned + others,
        })
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn get_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        Ok(self.lock().checkpoint.clone())
    }

    async fn save_checkpoint(&self, c: &Checkpoint) -> StoreResult<u64> {
        let mut t = self.lock();
        let current = t.checkpoint.as_ref().map_or(0, |x| x.version);
        if current != c.version {
            return Err(conflict("checkpoint", "scheduler", c.version));
        }
        let mut stored = c.clone();
        stored.version = c.version + 1;
        t.checkpoint = Some(stored);
        Ok(c.version + 1)
    }

    async fn clear_checkpoint(&self, version: u64) -> StoreResult<()> {
        let mut t = self.lock();
        if t.checkpoint.as_ref().map_or(0, |x| x.version) != version {
            return Err(conflict("checkpoint", "scheduler", version));
        }
        t.checkpoint = None;
        Ok(())
    }
}

#[async_trait]
impl FitStore for MemoryStore {
    async fn get_fit(&self, campaign: &str) -> StoreResult<Option<CampaignFit>> {
        Ok(self.lock().fits.get(campaign).cloned())
    }

    async fn save_fit(&self, fit: &CampaignFit) -> StoreResult<u64> {
        let mut t = self.lock();
        let current = t.fits.get(&fit.campaign).map_or(0, |x| x.version);
        if current != fit.version {
            return Err(conflict("fit", &fit.campaign, fit.version));
        }
        let mut stored = fit.clone();
        stored.version = fit.version + 1;
        t.fits.insert(fit.campaign.clone(), stored);
        drop(t);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(fit.version + 1)
    }

    async fn get_targeting(
        &self,
        campaign: &str,
        flow: &str,
    ) -> StoreResult<Option<TargetingModel>> {
        Ok(self
            .lock()
            .targeting
            .get(&(campaign.to_string(), flow.to_string()))
            .cloned())
    }

    async fn save_targeting(&self, model: &TargetingModel) -> StoreResult<u64> {
        let key = (model.campaign.clone(), model.flow.clone());
        let mut t = self.lock();
        let current = t.targeting.get(&key).map_or(0, |x| x.version);
        if current != model.version {
            return Err(conflict("targeting", &model.flow, model.version));
        }
        let mut stored = model.clone();
        stored.version = model.version + 1;
        t.targeting.insert(key, stored);
        drop(t);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(model.version + 1)
    }
}

/// An in-memory event bus: published events wait in a queue until drained.
#[derive(Default)]
pub struct MemoryBus {
    queue: Mutex<Vec<BusEvent>>,
    published: AtomicU64,
}

impl MemoryBus {
    pub fn new() -> MemoryBus {
        MemoryBus::default()
    }

    /// Takes every event published so far.
    pub fn drain(&self) -> Vec<BusEvent> {
        std::mem::take(&mut *self.queue.lock().expect("lock"))
    }

    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn put_batch(&self, events: &[BusEvent]) -> Result<PutResult, BusError> {
        if events.len() > 10 {
            return Err(BusError::Backend("at most 10 events per batch".into()));
        }
        self.queue
            .lock()
            .expect("lock")
            .extend(events.iter().cloned());
        self.published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(PutResult::default())
    }
}

/// An in-memory mailer: keeps every email it was given.
#[derive(Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<(String, Email)>>,
    counter: AtomicU64,
    /// The account-level suppression list, lower case.
    suppressed: Mutex<std::collections::BTreeSet<String>>,
}

impl MemoryMailer {
    pub fn new() -> MemoryMailer {
        MemoryMailer::default()
    }

    /// Takes every email sent so far, with its message id.
    pub fn drain(&self) -> Vec<(String, Email)> {
        std::mem::take(&mut *self.sent.lock().expect("lock"))
    }

    /// Emails sent so far (not drained).
    pub fn count(&self) -> usize {
        self.sent.lock().expect("lock").len()
    }

    /// Puts `address` on the account-level suppression list.
    pub fn put_suppressed(&self, address: &str) {
        self.suppressed
            .lock()
            .expect("lock")
            .insert(address.to_lowercase());
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let id = format!("mem-{}", self.counter.fetch_add(1, Ordering::Relaxed) + 1);
        self.sent
            .lock()
            .expect("lock")
            .push((id.clone(), email.clone()));
        Ok(id)
    }

    async fn is_suppressed(&self, address: &str) -> Result<bool, MailError> {
        Ok(self
            .suppressed
            .lock()
            .expect("lock")
            .contains(&address.to_lowercase()))
    }
}

/// An in-memory notifier: keeps every (subject, body) it was given.
#[derive(Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<(String, String)>>,
}

impl MemoryNotifier {
    pub fn new() -> MemoryNotifier {
        MemoryNotifier::default()
    }

    /// Takes every notification so far.
    pub fn drain(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.sent.lock().expect("lock"))
    }

    /// Notifications so far (not drained).
    pub fn count(&self) -> usize {
        self.sent.lock().expect("lock").len()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn notify(&self, subject: &str, body: &str) -> Result<(), NotifyError> {
        self.sent
            .lock()
            .expect("lock")
            .push((subject.to_string(), body.to_string()));
        Ok(())
    }
}
