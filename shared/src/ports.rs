//! Small traits the functions depend on; adapters implement them for DynamoDB, SES v2,
//! EventBridge and an embedded in-process world.
//!
//! Entities carry a `version`: a save succeeds only if the stored version still equals the
//! entity's (0 = must not exist yet), and then stores `version + 1`. That one rule gives
//! conditional enrollment, step claims and redemptions the same, testable semantics everywhere.

use std::future::Future;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::customer::Profile;
use crate::domain::metrics::{CohortKey, CounterRow};
use crate::domain::model::CampaignFit;
use crate::domain::reward::{Reward, RewardCode};
use crate::domain::sequence::Enrollment;
use crate::domain::targeting::TargetingModel;
use crate::events::BusEvent;

/// Number of write shards of the due index.
pub const DUE_SHARDS: u32 = 16;

/// Errors every store adapter reports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conditional write lost: someone else changed the item first.
    #[error("{entity} {id} was changed by someone else (expected version {expected})")]
    Conflict {
        entity: &'static str,
        id: String,
        expected: u64,
    },
    /// Throttling or a transient service error: safe to retry.
    #[error("the store is busy, retry: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored item could not be read back.
    #[error("stored item {id} is corrupt: {reason}")]
    Corrupt { id: String, reason: String },
    /// Anything else the backend said.
    #[error("store error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Customer profiles.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    async fn get_profile(&self, customer_id: &str) -> StoreResult<Option<Profile>>;
    /// Saves if the stored version equals `profile.version`; returns the new version.
    async fn save_profile(&self, profile: &Profile) -> StoreResult<u64>;
    /// Saves many new or changed profiles without version checks (bulk import); returns how many
    /// were written.
    async fn put_profiles(&self, profiles: &[Profile]) -> StoreResult<usize>;
}

/// Enrollments: the latest per customer and campaign.
#[async_trait]
pub trait EnrollmentStore: Send + Sync {
    async fn get_enrollment(
        &self,
        customer_id: &str,
        campaign: &str,
    ) -> StoreResult<Option<Enrollment>>;
    /// Saves if the stored version equals `enrollment.version`; returns the new version.
    async fn save_enrollment(&self, enrollment: &Enrollment) -> StoreResult<u64>;
}

/// Reward codes, unique by code.
#[async_trait]
pub trait RewardStore: Send + Sync {
    /// Inserts a new reward; `Conflict` if the code exists.
    async fn insert_reward(&self, reward: &Reward) -> StoreResult<()>;
    async fn get_reward(&self, code: &RewardCode) -> StoreResult<Option<Reward>>;
    /// Saves if the stored version equals `reward.version`; returns the new version.
    async fn save_reward(&self, reward: &Reward) -> StoreResult<u64>;
}

/// What erasure needs beyond the other ports: every item kept per customer id, found and deleted.
#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// The customer's enrollment in every campaign (also flows the deployment no longer runs).
    async fn enrollments_of(&self, customer_id: &str) -> StoreResult<Vec<Enrollment>>;
    /// The codes of every reward issued to the customer, in any round.
    async fn rewards_of(&self, customer_id: &str) -> StoreResult<Vec<RewardCode>>;
    /// Deletes an enrollment (nothing if there is none).
    async fn delete_enrollment(&self, customer_id: &str, campaign: &str) -> StoreResult<()>;
    /// Deletes a reward and what links it to the customer (nothing if there is none).
    async fn delete_reward(&self, customer_id: &str, code: &RewardCode) -> StoreResult<()>;
    /// The orders remembered as the customer's in the [`OrderIndex`], as (source, order id).
    async fn orders_of(&self, customer_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// Forgets that order `order_id` from `source` is the customer's: the index item (only if
    /// it still names this customer) and its listing under the customer.
    async fn delete_order_owner(
        &self,
        customer_id: &str,
        source: &str,
        order_id: &str,
    ) -> StoreResult<()>;
}

/// That order `order_id` from `source` is customer `customer_id`'s, remembered until
/// `expires_at`: what a refund that names only the order (Shopify's `refunds/create`) is found
/// by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderOwner {
    /// Where the order id comes from: `shopify`, `woocommerce`, `stripe`, or `shop` (the
    /// activity contract and the orders CSV).
    pub source: String,
    pub order_id: String,
    pub customer_id: String,
    /// When the store forgets it (the table's TTL).
    pub expires_at: DateTime<Utc>,
}

impl OrderOwner {
    /// How long an order is remembered: longer than any shop's refund window.
    pub const KEPT_DAYS: i64 = 730;

    /// That order `order_id` from `source`, placed at `at`, is `customer_id`'s: remembered
    /// [`OrderOwner::KEPT_DAYS`] from `at`.
    pub fn new(source: &str, order_id: &str, customer_id: &str, at: DateTime<Utc>) -> OrderOwner {
        OrderOwner {
            source: source.to_string(),
            order_id: order_id.to_string(),
            customer_id: customer_id.to_string(),
            expires_at: at + chrono::Duration::days(Self::KEPT_DAYS),
        }
    }
}

/// The order index: which customer an order is of, by the shop's order id.
#[async_trait]
pub trait OrderIndex: Send + Sync {
    /// Remembers `owners` (again: the latest customer and expiry win). Each is listed under its
    /// customer before it is written, so erasure finds every one
    /// ([`ErasureStore::orders_of`]).
    async fn put_order_owners(&self, owners: &[OrderOwner]) -> StoreResult<()>;
    /// The customer of order `order_id` from `source`; `None` when unknown, or expired at `now`
    /// (the table's TTL deletes items some time after they expire).
    async fn order_owner(
        &self,
        source: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>>;
}

/// Outcome of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// First time: go ahead.
    New,
    /// Seen before; holds what was recorded for it.
    Seen(Option<String>),
}

/// Idempotency records with an expiry (TTL).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` until `expires_at`; `Seen` if already claimed and not expired. Claim with a
    /// short lease: work that dies before it records a result frees the key when the lease ends.
    async fn claim_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<Claimed>;
    /// Attaches a result to a claimed key and keeps the key until `keep_until` (the work is done:
    /// remember it for the dedupe window).
    async fn record_result(
        &self,
        key: &str,
        result: &str,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Gives a key back (the work failed and may be retried).
    async fn release_key(&self, key: &str) -> StoreResult<()>;
}

/// Atomic metric counters per cohort, total and per day.
#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// Adds `deltas` to the cohort's total, and to its `day` row when given. Atomic per row.
    async fn add_counts(
        &self,
        key: &CohortKey,
        day: Option<NaiveDate>,
        deltas: &[(&str, i64)],
    ) -> StoreResult<()>;
    /// Every counter row of a campaign.
    async fn counter_rows(&self, campaign: &str) -> StoreResult<Vec<CounterRow>>;
}

/// Something the due index says needs attention.
// A page holds at most a few hundred items, read and handled one by one: boxing the profile
// would save little and cost an allocation per item.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DueItem {
    /// Evaluate whether the customer has lapsed.
    Profile(Profile),
    /// Act on an enrollment (publish a step, close a window).
    Enrollment(Enrollment),
}

impl DueItem {
    pub fn customer_id(&self) -> &str {
        match self {
            DueItem::Profile(p) => &p.customer_id,
            DueItem::Enrollment(e) => &e.customer_id,
        }
    }

    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        match self {
            DueItem::Profile(p) => p.due_at,
            DueItem::Enrollment(e) => e.due_at,
        }
    }
}

/// A page of a query or scan, with the cursor to continue from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; `None` when there is nothing more.
    pub cursor: Option<String>,
    /// Items the backend read to produce this page (for cost accounting).
    pub items_read: u64,
}

/// Which page of a listing to read: the one after `cursor` (the previous page's; `None` for the
/// first), at most `limit` items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageAt {
    pub cursor: Option<String>,
    pub limit: u32,
}

impl PageAt {
    /// The page after `cursor`, of at most `limit` items.
    pub fn new(cursor: Option<String>, limit: u32) -> PageAt {
        PageAt { cursor, limit }
    }
}

/// One shard of the due index, read for what is due at or before `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueQuery {
    pub shard: u32,
    pub now: DateTime<Utc>,
}

/// One segment of a parallel scan over `total` segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSegment {
    pub segment: u32,
    pub total: u32,
}

impl ScanSegment {
    /// Segment `segment` of `total`.
    pub fn new(segment: u32, total: u32) -> ScanSegment {
        ScanSegment { segment, total }
    }
}

/// The sparse, write-sharded due index, and the full scan used only for rebuilds.
#[async_trait]
pub trait DueIndex: Send + Sync {
    /// Items of the shard due at or before its `now`, oldest first.
    async fn due_page(&self, due: DueQuery, page: PageAt) -> StoreResult<Page<DueItem>>;
    /// One segment of a parallel scan over every profile.
    async fn scan_profiles(&self, scan: ScanSegment, page: PageAt) -> StoreResult<Page<Profile>>;
}

/// Where a cut-short scheduler run resumes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The run's "now".
    pub now: DateTime<Utc>,
    pub mode: RunMode,
    /// Next shard (due mode) or segment (rebuild) to read.
    pub position: u32,
    pub cursor: Option<String>,
    #[serde(default)]
    pub version: u64,
}

/// Which work a scheduler run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Read only what is due.
    Due,
    /// Recompute every customer's due time (after a policy change or an import).
    Rebuild,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Due => "due",
            RunMode::Rebuild => "rebuild",
        }
    }
}

/// The scheduler's checkpoint.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    async fn get_checkpoint(&self) -> StoreResult<Option<Checkpoint>>;
    /// Saves if the stored version equals `checkpoint.version`.
    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<u64>;
    /// Removes it once the run has finished (only if still at `version`).
    async fn clear_checkpoint(&self, version: u64) -> StoreResult<()>;
}

/// Each campaign's fitted customer model.
#[async_trait]
pub trait FitStore: Send + Sync {
    async fn get_fit(&self, campaign: &str) -> StoreResult<Option<CampaignFit>>;
    /// Saves if the stored version equals `fit.version`; returns the new version.
    async fn save_fit(&self, fit: &CampaignFit) -> StoreResult<u64>;
    /// A flow's learned uplift model (`flow`: `win-back`, `at-risk`, ...).
    async fn get_targeting(
        &self,
        campaign: &str,
        flow: &str,
    ) -> StoreResult<Option<TargetingModel>>;
    /// Saves if the stored version equals `model.version`; returns the new version.
    async fn save_targeting(&self, model: &TargetingModel) -> StoreResult<u64>;
}

/// What the scheduler may touch: profiles and enrollments, the due index and the full scan, its
/// checkpoint, the fitted model and the counters. No rewards, no idempotency keys, no erasure.
pub trait SchedulerStore:
    ProfileStore + EnrollmentStore + MetricsStore + DueIndex + CheckpointStore + FitStore
{
}

impl<T> SchedulerStore for T where
    T: ProfileStore
        + EnrollmentStore
        + MetricsStore
        + DueIndex
        + CheckpointStore
        + FitStore
        + ?Sized
{
}

/// What the sender may touch: the profile and enrollment of a step, its reward, the counters and
/// the fitted model. It neither scans nor erases.
pub trait SenderStore:
    ProfileStore + EnrollmentStore + RewardStore + MetricsStore + FitStore
{
}

impl<T> SenderStore for T where
    T: ProfileStore + EnrollmentStore + RewardStore + MetricsStore + FitStore + ?Sized
{
}

/// What the webhook may touch: one customer's profile, enrollments and rewards (erasure
/// included), the order index, idempotency keys, the counters and the fitted model. It never
/// reads the due index, scans or the scheduler's checkpoint.
pub trait WebhookStore:
    ProfileStore
    + EnrollmentStore
    + ErasureStore
    + RewardStore
    + OrderIndex
    + IdempotencyStore
    + MetricsStore
    + FitStore
{
}

impl<T> WebhookStore for T where
    T: ProfileStore
        + EnrollmentStore
        + ErasureStore
        + RewardStore
        + OrderIndex
        + IdempotencyStore
        + MetricsStore
        + FitStore
        + ?Sized
{
}

/// All of storage: what the adapters implement and the CLI and tests hold. Each function takes
/// only its part ([`SchedulerStore`], [`SenderStore`], [`WebhookStore`]), and its handlers the
/// single traits they use; an `Arc<dyn Store>` converts to any of them.
pub trait Store: SchedulerStore + SenderStore + WebhookStore {}

impl<T> Store for T where T: SchedulerStore + SenderStore + WebhookStore + ?Sized {}

/// The due-index shard of a customer.
pub fn due_shard(customer_id: &str) -> u32 {
    let h = customer_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (h % u64::from(DUE_SHARDS)) as u32
}

/// Errors publishing events.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{failed} of {total} events could not be published after retries: {reason}")]
    Partial {
        failed: usize,
        total: usize,
        reason: String,
    },
    #[error("event bus error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of one PutEvents-style call: which entries failed (by index) and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutResult {
    pub failed: Vec<(usize, String)>,
}

/// The event bus. `put_batch` takes at most 10 events and reports per-entry failures; retries
/// live in [`crate::publish::publish_all`].
#[async_trait]
pub trait EventBus: Send + Sync {
    async fn put_batch(&self, events: &[BusEvent]) -> Result<PutResult, BusError>;
}

/// One email, rendered and ready.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Extra headers (`List-Unsubscribe`, `List-Unsubscribe-Post`).
    pub headers: Vec<(String, String)>,
    /// SES message tags (campaign, step, variant, customer).
    pub tags: Vec<(String, String)>,
}

/// Why a send failed, sorted by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Slow down and retry the item later.
    #[error("sending is throttled: {0}")]
    Throttled(String),
    /// This address can never receive mail: suppress the customer, do not retry.
    #[error("the address was rejected permanently: {0}")]
    Rejected(String),
    /// SES refused this message for a reason that is not the address (its content, size or
    /// headers): a send failure to fix and retry, never a suppression.
    #[error("the message was refused: {0}")]
    Refused(String),
    /// The account cannot send at all (sending paused, suspended): alarm.
    #[error("sending is paused for the account: {0}")]
    Paused(String),
    /// Anything else, probably transient.
    #[error("mail service error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Sends email.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends; returns the provider's message id.
    async fn send(&self, email: &Email) -> Result<String, MailError>;

    /// Whether the account-level suppression list (SES's, fed by every earlier bounce and
    /// complaint of the account) holds `address`. A mailer that has no such list (a test double
    /// wrapping another) keeps the default: no address is on it.
    async fn is_suppressed(&self, address: &str) -> Result<bool, MailError> {
        let _ = address;
        Ok(false)
    }

    /// Sends a whole MIME message (the weekly report, with its charts attached) from `from` to
    /// `to`; returns the provider's message id. A mailer that sends structured emails only keeps
    /// the default, which refuses.
    async fn send_raw(&self, from: &str, to: &[String], mime: &[u8]) -> Result<String, MailError> {
        let _ = (from, to, mime);
        Err(MailError::Refused(
            "this mailer sends no raw MIME messages".to_string(),
        ))
    }
}

/// Why the shop's checkout did not take a code.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// Unreachable, timed out, or a 5xx: the step waits and is tried again.
    #[error("the shop's API failed ({0}); the step waits and is tried again")]
    Unavailable(String),
    /// A 429 (or Shopify's cost bucket empty): try again after `retry_after_seconds`.
    #[error("the shop's API asked to slow down for {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    /// The shop refused the request (401, 403, 422, a user error): nothing changes until the
    /// connection or the campaign is fixed.
    #[error("the shop refused the code ({status}): {message}; check the connection's keys and scopes (docs/shop.md)")]
    Refused { status: u16, message: String },
}

/// The shop's own checkout (Shopify, WooCommerce, Stripe), where a reward code must exist before
/// an email carries it.
#[async_trait]
pub trait Checkout: Send + Sync {
    /// Creates the code. A code that exists already (a retry after a lost answer, or a crash
    /// after the call) counts as created: exactly one exists per reward.
    async fn create_code(
        &self,
        code: &crate::domain::checkout::CodeRequest,
    ) -> Result<(), CheckoutError>;
    /// Disables the code (replaced by a later email's). A code that is not there is done.
    async fn disable_code(&self, code: &str) -> Result<(), CheckoutError>;
}

/// Why a notification to a person could not be published.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the notification could not be published: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Tells a person something they must act on (an SNS topic with an email subscription).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, subject: &str, body: &str) -> Result<(), NotifyError>;
}

/// What a read-modify-write decided once it saw the stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T, R> {
    /// Save `T` (conditional on the version it was read at), then answer `R`.
    Save(T, R),
    /// Nothing to write: answer `R`.
    Keep(R),
}

/// Runs a read-modify-write until it wins its optimistic concurrency race: `load` reads the
/// current value, `change` decides (its future may read other things on the way), `save` writes
/// conditionally. A lost race (`StoreError::Conflict`) reads again at once, at most
/// [`CONFLICT_ATTEMPTS`] times in all; any other error ends it.
///
/// Plain closures that return futures (not `async` closures): the futures of `async` closures
/// that borrow are not provably `Send`, and a handler's future must be.
///
/// [`CONFLICT_ATTEMPTS`]: crate::retry::CONFLICT_ATTEMPTS
pub async fn update<T, R, E, LF, SF, CF>(
    mut load: impl FnMut() -> LF,
    mut save: impl FnMut(T) -> SF,
    mut change: impl FnMut(Option<T>) -> CF,
) -> Result<R, E>
where
    LF: Future<Output = StoreResult<Option<T>>>,
    SF: Future<Output = StoreResult<u64>>,
    CF: Future<Output = Result<Change<T, R>, E>>,
    E: From<StoreError>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = load().await?;
        match change(current).await? {
            Change::Keep(r) => return Ok(r),
            Change::Save(value, r) => match save(value).await {
                Ok(_) => return Ok(r),
                Err(e) if e.is_conflict() && attempt < crate::retry::CONFLICT_ATTEMPTS => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
}

/// [`update`] of a customer's profile with a plain decision.
pub async fn update_profile<R>(
    store: &(impl ProfileStore + ?Sized),
    customer_id: &str,
    mut change: impl FnMut(Option<Profile>) -> Change<Profile, R>,
) -> StoreResult<R> {
    update(
        || store.get_profile(customer_id),
        |p: Profile| async move { store.save_profile(&p).await },
        |p| std::future::ready(Ok(change(p))),
    )
    .await
}

/// [`update`] of a customer's enrollment in `campaign` with a plain decision.
pub async fn update_enrollment<R>(
    store: &(impl EnrollmentStore + ?Sized),
    customer_id: &str,
    campaign: &str,
    mut change: impl FnMut(Option<Enrollment>) -> Change<Enrollment, R>,
) -> StoreResult<R> {
    update(
        || store.get_enrollment(customer_id, campaign),
        |e: Enrollment| async move { store.save_enrollment(&e).await },
        |e| std::future::ready(Ok(change(e))),
    )
    .await
}

/// [`update`] of a reward with a plain decision.
pub async fn update_reward<R>(
    store: &(impl RewardStore + ?Sized),
    code: &RewardCode,
    mut change: impl FnMut(Option<Reward>) -> Change<Reward, R>,
) -> StoreResult<R> {
    update(
        || store.get_reward(code),
        |r: Reward| async move { store.save_reward(&r).await },
        |r| std::future::ready(Ok(change(r))),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::MemoryStore;

    async fn set_locale(store: &MemoryStore, id: &str, locale: &str) {
        let mut p = store
            .get_profile(id)
            .await
            .unwrap()
            .unwrap_or_else(|| Profile::new(id.parse().unwrap()));
        p.locale = Some(locale.to_string());
        store.save_profile(&p).await.unwrap();
    }

    #[tokio::test]
    async fn a_lost_race_reads_again_and_applies_the_change_to_the_newer_value() {
        let store = MemoryStore::new();
        set_locale(&store, "c1", "sv").await;
        let mut seen = Vec::new();
        let store = &store;
        let answer = update(
            || store.get_profile("c1"),
            |p: Profile| async move { store.save_profile(&p).await },
            |p: Option<Profile>| {
                let mut p = p.unwrap();
                seen.push(p.locale.clone().unwrap());
                let first = seen.len() == 1;
                let tries = seen.len();
                async move {
                    if first {
                        // Someone else writes between this read and its save.
                        set_locale(store, "c1", "da").await;
                    }
                    p.email = Some("x@example.com".into());
                    StoreResult::Ok(Change::Save(p, tries))
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(answer, 2);
        assert_eq!(seen, ["sv", "da"]);
        let stored = store.get_profile("c1").await.unwrap().unwrap();
        assert_eq!(stored.locale.as_deref(), Some("da"));
        assert_eq!(stored.email.as_deref(), Some("x@example.com"));
    }

    #[tokio::test]
    async fn a_race_lost_every_time_gives_up_after_the_policy_s_attempts() {
        let store = MemoryStore::new();
        set_locale(&store, "c1", "sv").await;
        let mut tries = 0;
        let err = update_profile(&store, "c1", |p| {
            tries += 1;
            let mut p = p.unwrap();
            // A stale version: the save always loses.
            p.version = p.version.wrapping_sub(1);
            Change::Save(p, ())
        })
        .await
        .unwrap_err();
        assert!(err.is_conflict());
        assert_eq!(tries, crate::retry::CONFLICT_ATTEMPTS);
    }

    #[test]
    fn an_update_s_future_is_send_so_a_handler_awaiting_it_may_be_spawned() {
        fn is_send<T: Send>(_: T) {}
        let store = MemoryStore::new();
        let profiles: &dyn ProfileStore = &store;
        is_send(update_profile(profiles, "c1", |_| Change::Keep(())));
        let enrollments: &dyn EnrollmentStore = &store;
        is_send(update_enrollment(enrollments, "c1", "example", |_| {
            Change::Keep(())
        }));
    }

    #[tokio::test]
    async fn keep_writes_nothing() {
        let store = MemoryStore::new();
        let got = update_profile(&store, "nobody", |p| Change::Keep(p.is_none()))
            .await
            .unwrap();
        assert!(got);
        assert!(store.get_profile("nobody").await.unwrap().is_none());
    }
}
