//! The scheduler: finds customers who are due (through the sparse due index), enrolls the
//! eligible lapsed ones, and publishes one `WinbackStepDue` per due step.
//!
//! Its "now" is the scheduled event's `time`. A run that nears the Lambda deadline saves a
//! checkpoint and stops; the next invocation resumes from it before starting its own work, so no
//! customer is skipped or repeated.

pub mod lambda;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::campaign::CampaignConfig;
use shared::domain::celebration;
use shared::domain::customer::Profile;
use shared::domain::due::{self, earliest};
use shared::domain::eligibility;
use shared::domain::engagement;
use shared::domain::experiment::{self, Group};
use shared::domain::lapse::{self, LapseState};
use shared::domain::metrics::counter;
use shared::domain::model;
use shared::domain::priority;
use shared::domain::schedule;
use shared::domain::sequence::{self, Enrollment, Flow, Status};
use shared::domain::survey;
use shared::emf::{MetricSink, Record, Unit};
use shared::events::{BusEvent, StepDue};
use shared::ports::{Checkpoint, DueItem, EventBus, Store, StoreError, DUE_SHARDS};
use shared::publish::publish_all;
use shared::retry::{RetryPolicy, CONFLICT_ATTEMPTS};

pub mod resolve;

/// Items fetched per due-index page.
const PAGE: u32 = 100;
/// Segments of the rebuild scan.
pub const REBUILD_SEGMENTS: u32 = 4;
/// A published step the sender never acted on is published again when the next step would have
/// been due, and never sooner than this.
const REPUBLISH_AFTER_HOURS: i64 = 6;

/// What the scheduler needs, built once at cold start.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub campaign: Arc<CampaignConfig>,
    pub metrics: Arc<dyn MetricSink>,
    pub retry: RetryPolicy,
}

/// Which work a run does.
pub use shared::ports::RunMode as Mode;

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub now: DateTime<Utc>,
    pub mode: Mode,
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop (with a checkpoint) once this instant is reached.
    pub stop_at: Option<Instant>,
    /// Stop (with a checkpoint) after this many items: lets tests cut a run deterministically.
    pub max_items: Option<u64>,
}

/// What a run may use when the invocation's deadline is absent, already past, or shorter than
/// any real Lambda timeout (local runners can send such deadlines).
pub const DEFAULT_RUN_TIME: Duration = Duration::from_secs(60);
/// A deadline with less than this left is not a real Lambda deadline (the shortest timeout is 1 s).
const SHORTEST_REAL_DEADLINE: Duration = Duration::from_secs(1);

impl Budget {
    pub fn unlimited() -> Budget {
        Budget {
            stop_at: None,
            max_items: None,
        }
    }

    /// The budget of an invocation started at `started` with `left` until its deadline: the time
    /// left less a margin for the checkpoint write (10 s, or a quarter of a short deadline), or
    /// [`DEFAULT_RUN_TIME`] when the deadline is absent, past or unrealistically short.
    pub fn from_deadline(left: Option<Duration>, started: Instant) -> Budget {
        let left = left
            .filter(|l| *l >= SHORTEST_REAL_DEADLINE)
            .unwrap_or(DEFAULT_RUN_TIME);
        let margin = Duration::from_secs(10).min(left / 4);
        Budget {
            stop_at: Some(started + left.saturating_sub(margin)),
            max_items: None,
        }
    }

    /// Whether the budget is spent after `seen` items.
    fn spent(&self, seen: u64) -> bool {
        self.max_items.is_some_and(|m| seen >= m)
            || self.stop_at.is_some_and(|t| Instant::now() >= t)
    }
}

/// Errors of a run. Bad input changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("the scheduled event has no `time`: invoke with an EventBridge scheduled event, or {{\"mode\": \"rebuild\", \"time\": \"<RFC 3339>\"}}")]
    MissingTime,
    #[error("`time` is not an RFC 3339 timestamp: {0}")]
    BadTime(String),
    #[error("unknown mode `{0}`: use \"rebuild\" or leave it out")]
    UnknownMode(String),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("{0} events could not be published after retries")]
    Publish(usize),
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub evaluated: u64,
    pub enrolled: u64,
    pub steps_published: u64,
    pub publish_failures: u64,
    pub items_read: u64,
    /// False when the run stopped early and left a checkpoint.
    pub complete: bool,
    /// A checkpoint from an earlier run was resumed first.
    pub resumed: bool,
    /// The resumed run used up the time, so this invocation's own due pass was left to the next
    /// scheduled run (whose due pass reads everything this one would have).
    pub left_to_next_run: bool,
    /// Per flow: enrollments per variant, the holdout and the sunsets (the run's totals are
    /// [`Summary::holdout`] and [`Summary::sunset`]).
    pub flows: std::collections::BTreeMap<Flow, FlowSummary>,
    /// A rebuild that finished refitted the campaign's customer model on the customers it read
    /// and stored it (false when the fit fell back to the prior and the stored one was kept).
    pub model_refit: bool,
    /// That refit's figures (also when it fell back to the prior and was not stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_fit: Option<model::Fit>,
}

/// What a run did in one flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowSummary {
    /// Enrollments per variant (the holdout included as `holdout`).
    pub enrolled_by_variant: std::collections::BTreeMap<String, u64>,
    pub sunset: u64,
}

impl FlowSummary {
    /// Customers held out of the flow: its enrollments in the holdout's variant.
    pub fn holdout(&self) -> u64 {
        self.enrolled_by_variant
            .get(experiment::HOLDOUT)
            .copied()
            .unwrap_or(0)
    }
}

impl Summary {
    fn flow(&mut self, flow: Flow) -> &mut FlowSummary {
        self.flows.entry(flow).or_default()
    }

    /// Customers held out, in every flow.
    pub fn holdout(&self) -> u64 {
        self.flows.values().map(FlowSummary::holdout).sum()
    }

    /// Customers sunset, in every flow.
    pub fn sunset(&self) -> u64 {
        self.flows.values().map(|f| f.sunset).sum()
    }
}

/// Reads the Lambda payload: a scheduled event (its `time`), optionally with `"mode": "rebuild"`.
/// A bare `{"mode": "rebuild"}` without `time` uses `fallback_now` (the invocation time).
pub fn parse_input(
    event: &serde_json::Value,
    fallback_now: Option<DateTime<Utc>>,
) -> Result<Input, SchedulerError> {
    let mode = match event
        .get("mode")
        .or_else(|| event.get("detail").and_then(|d| d.get("mode")))
    {
        None | Some(serde_json::Value::Null) => Mode::Due,
        Some(serde_json::Value::String(m)) if m == "rebuild" => Mode::Rebuild,
        Some(serde_json::Value::String(m)) if m == "due" => Mode::Due,
        Some(other) => {
            return Err(SchedulerError::UnknownMode(
                other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_string),
            ))
        }
    };
    let now = match event.get("time").and_then(|t| t.as_str()) {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map_err(|e| SchedulerError::BadTime(format!("{t}: {e}")))?
            .with_timezone(&Utc),
        None => match (mode, fallback_now) {
            (Mode::Rebuild, Some(now)) => now,
            _ => return Err(SchedulerError::MissingTime),
        },
    };
    Ok(Input { now, mode })
}

struct Run<'a> {
    deps: &'a Deps,
    now: DateTime<Utc>,
    summary: Summary,
    events: Vec<BusEvent>,
    /// Enrollments saved as published whose event is in `events`, as they were before, to put
    /// back if the bus refuses the event.
    published: Vec<Enrollment>,
    budget: Budget,
    seen: u64,
    /// Pages read in this invocation: the first is always read, whatever the budget, so every
    /// invocation makes progress.
    pages: u64,
    /// What the customer model needs of each customer a rebuild read, for the refit.
    summaries: Vec<model::Summary>,
}

impl Run<'_> {
    fn out_of_budget(&self) -> bool {
        self.pages > 0 && self.budget.spent(self.seen)
    }

    /// Evaluates one customer: new due time, or enrollment.
    #[tracing::instrument(name = "customer", skip_all, fields(customer_id = %profile.customer_id))]
    async fn evaluate(&mut self, mut profile: Profile) -> Result<(), SchedulerError> {
        self.summary.evaluated += 1;
        let campaign = &self.deps.campaign;
        let assessment = lapse::assess(&profile, &campaign.lapse, self.now);
        // With an at-risk flow, customers showing early signals get it before they lapse.
        let watch = campaign.at_risk.is_some();
        // Their birthday or first-order anniversary today (in their time zone) qualifies them
        // for the celebration flow, once a year per occasion.
        let tz = schedule::zone(profile.time_zone.as_deref(), &campaign.default_time_zone);
        // The flow the lapse rules put them in, and when to look again if they enter none.
        let (lapse_flow, lapses_at) = match assessment.state {
            LapseState::NoOrders => return self.set_profile_due(profile, None).await,
            LapseState::Active { .. } => (
                None,
                due::after_today(&profile, &campaign.lapse, campaign.watch(), self.now),
            ),
            LapseState::AtRisk { lapses_at, .. } if !watch => (None, Some(lapses_at)),
            LapseState::AtRisk { lapses_at, .. } => (Some(Flow::AtRisk), Some(lapses_at)),
            LapseState::Lapsed { .. } => (Some(Flow::WinBack), None),
        };
        let occasion = campaign
            .celebration
            .is_some()
            .then(|| celebration::due_today(&profile, &tz, self.now))
            .flatten();
        if lapse_flow.is_none() && occasion.is_none() {
            return self.set_profile_due(profile, lapses_at).await;
        }
        let latest = self
            .deps
            .store
            .get_enrollment(&profile.customer_id, &campaign.name)
            .await?;
        // The kind of inactivity picks the copy, and who does not read email qualifies for the
        // re-engagement flow; the campaign's priority picks among the flows they qualify for.
        let signals = match &assessment.state {
            LapseState::AtRisk { signals, .. } => signals.as_slice(),
            _ => &[],
        };
        let sent = latest.as_ref().map_or(0, |e| e.sent.len());
        let segment = engagement::segment(&profile, sent, signals);
        let qualification = priority::Qualification {
            lapse_flow,
            segment,
            has_re_engagement: campaign.re_engagement.is_some(),
            occasion_today: occasion.is_some(),
        };
        let Some(flow) = priority::choose(&qualification, &campaign.flow_priority()) else {
            return self.set_profile_due(profile, lapses_at).await;
        };
        let occasion = occasion.filter(|_| flow == Flow::Celebration);
        if let Err(why) = eligibility::check_enrollment(
            &profile,
            latest.as_ref(),
            &campaign.eligibility,
            flow,
            assessment.outlook.as_ref(),
            &campaign.valuation(),
            self.now,
        ) {
            tracing::debug!(rule = why.rule(), flow = flow.as_str(), "not eligible");
            // Kept out of the at-risk flow: look again when they lapse, if not sooner (out of
            // the celebration flow: at their next look or occasion, if not sooner).
            let retry = earliest(why.retry_at(), lapses_at);
            return self.set_profile_due(profile, retry).await;
        }
        let mut assignment = sequence::assign(
            &profile.customer_id,
            &campaign.name,
            flow,
            &campaign.experiment,
        );
        // A paused reason the shop has fixed: this enrollment tells them, once.
        let resolved = survey::pending_resolution(&profile);
        if resolved.is_some() {
            assignment = experiment::never_held_out(assignment, &campaign.experiment);
        }
        let round = latest.as_ref().map_or(1, |e| e.round + 1);
        let mut enrollment = Enrollment::start_assigned(
            &profile.customer_id,
            campaign,
            round,
            &assignment,
            flow,
            self.now,
        );
        if let Some(r) = &resolved {
            profile.told_resolved.insert(r.reason);
        }
        if let Some(o) = occasion {
            celebration::mark(&mut profile, o, &tz, self.now);
        }
        enrollment.occasion = occasion;
        enrollment.segment = segment;
        enrollment.resolved = resolved;
        enrollment.version = latest.as_ref().map_or(0, |e| e.version);
        match self.deps.store.save_enrollment(&enrollment).await {
            Ok(v) => enrollment.version = v,
            // Another run enrolled them first.
            Err(e) if e.is_conflict() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        profile.due_at = None;
        if let Err(e) = self.deps.store.save_profile(&profile).await {
            // The enrollment stands; a stale profile due entry finds them enrolled next time.
            // (Its `resolved` notice stands too: the sender tells them once, with this
            // enrollment; a later one would find the reason not yet marked as told only if this
            // write was lost to a concurrent change.)
            if !e.is_conflict() {
                return Err(e.into());
            }
        }
        let key = enrollment.cohort();
        self.deps
            .store
            .add_counts(&key, Some(self.now.date_naive()), &[(counter::ENROLLED, 1)])
            .await?;
        self.summary.enrolled += 1;
        let in_flow = self.summary.flow(enrollment.flow);
        *in_flow
            .enrolled_by_variant
            .entry(enrollment.variant.clone())
            .or_insert(0) += 1;
        tracing::info!(event = "customer_enrolled",
            campaign = %enrollment.campaign, variant = %enrollment.variant, group = enrollment.group.as_str());
        self.events.push(BusEvent::CustomerEnrolled {
            campaign: enrollment.campaign.clone(),
            customer_id: enrollment.customer_id.clone(),
            enrollment_id: enrollment.id.clone(),
            variant: enrollment.variant.clone(),
            group: enrollment.group.as_str().to_string(),
            at: self.now,
        });
        if enrollment.due_at.is_some_and(|d| d <= self.now) {
            self.act_on_enrollment(enrollment).await?;
        }
        Ok(())
    }

    async fn set_profile_due(
        &mut self,
        mut profile: Profile,
        due: Option<DateTime<Utc>>,
    ) -> Result<(), SchedulerError> {
        if profile.due_at == due {
            return Ok(());
        }
        profile.due_at = due;
        match self.deps.store.save_profile(&profile).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The stored version if this run's publish of `step` went through (a few tries: a step
    /// saved as published whose event never goes out would wait for the next step's time).
    async fn published_version(&self, e: &Enrollment, step: u8) -> Option<u64> {
        let policy = RetryPolicy::ACKNOWLEDGED_WRITE;
        for attempt in 1..=policy.attempts {
            if attempt > 1 {
                policy.pause_after(attempt - 1).await;
            }
            match self
                .deps
                .store
                .get_enrollment(&e.customer_id, &e.campaign)
                .await
            {
                Ok(Some(stored)) => {
                    let ours = stored.id == e.id
                        && stored.published_step == step
                        && stored.published_at == Some(self.now);
                    return ours.then_some(stored.version);
                }
                Ok(None) => return None,
                Err(_) => continue,
            }
        }
        None
    }

    /// Publishes the due step, or closes the enrollment.
    #[tracing::instrument(name = "customer", skip_all, fields(customer_id = %e.customer_id))]
    async fn act_on_enrollment(&mut self, e: Enrollment) -> Result<(), SchedulerError> {
        let due_at = e.due_at.unwrap_or(self.now);
        match e.status {
            Status::Active { next_step } => {
                // Saved first, so overlapping runs publish a step once; `flush` puts it back
                // if the bus refuses the event, so the next run publishes it again.
                let retry_after = chrono::Duration::hours(REPUBLISH_AFTER_HOURS);
                let Ok(published) =
                    e.publish(next_step, self.now, &self.deps.campaign, retry_after)
                else {
                    return Ok(());
                };
                let version = match self.deps.store.save_enrollment(&published).await {
                    Ok(v) => v,
                    Err(err) if err.is_conflict() => return Ok(()),
                    Err(err @ StoreError::Transient(_)) => {
                        // The write may have gone through with its answer lost: look.
                        match self.published_version(&e, next_step).await {
                            Some(v) => v,
                            None => return Err(err.into()),
                        }
                    }
                    Err(err) => return Err(err.into()),
                };
                self.summary.steps_published += 1;
                self.events.push(BusEvent::WinbackStepDue(StepDue {
                    campaign: e.campaign.clone(),
                    customer_id: e.customer_id.clone(),
                    enrollment_id: e.id.clone(),
                    step: next_step,
                    due_at,
                }));
                self.published.push(Enrollment { version, ..e });
            }
            Status::AwaitingSunset | Status::Holdout => {
                // Who chose fewer emails keeps their address: the goodbye closes, never sunsets.
                let keep_address = match self.deps.store.get_profile(&e.customer_id).await? {
                    Some(p) => engagement::keeps_address(&p, &e),
                    None => false,
                };
                let closed = match e.close(self.now, keep_address) {
                    Ok(c) => c,
                    Err(_) => return Ok(()),
                };
                match self.deps.store.save_enrollment(&closed).await {
                    Ok(_) => {}
                    Err(err) if err.is_conflict() => return Ok(()),
                    Err(err) => return Err(err.into()),
                }
                match closed.status {
                    Status::Sunset { .. } => self.sunset_profile(&closed).await?,
                    // An emailed sequence that closed without a sunset (the at-risk flow, or a
                    // customer on fewer emails): look at them again when that may change.
                    Status::Closed { .. } if closed.group == Group::Treated => {
                        self.look_again(&closed).await?
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sets the profile's due time from its lapse state, so the scheduler evaluates them again
    /// (e.g. for the win-back flow once they lapse after an at-risk flow).
    async fn look_again(&mut self, e: &Enrollment) -> Result<(), SchedulerError> {
        let campaign = &self.deps.campaign;
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(mut p) = self.deps.store.get_profile(&e.customer_id).await? else {
                return Ok(());
            };
            p.due_at = due::next_due(&p, &campaign.lapse, campaign.watch(), self.now);
            match self.deps.store.save_profile(&p).await {
                Ok(_) => return Ok(()),
                Err(err) if err.is_conflict() => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    async fn sunset_profile(&mut self, e: &Enrollment) -> Result<(), SchedulerError> {
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(mut p) = self.deps.store.get_profile(&e.customer_id).await? else {
                break;
            };
            p.sunset_at = Some(self.now);
            // Looked at again when the sunset has run its time (an order wakes them sooner).
            p.due_at = eligibility::sunset_until(&p, &self.deps.campaign.eligibility);
            match self.deps.store.save_profile(&p).await {
                Ok(_) => break,
                Err(err) if err.is_conflict() => continue,
                Err(err) => return Err(err.into()),
            }
        }
        let key = e.cohort();
        self.deps
            .store
            .add_counts(&key, Some(self.now.date_naive()), &[(counter::SUNSET, 1)])
            .await?;
        self.summary.flow(e.flow).sunset += 1;
        tracing::info!(event = "customer_sunset", campaign = %e.campaign);
        self.events.push(BusEvent::CustomerSunset {
            campaign: e.campaign.clone(),
            customer_id: e.customer_id.clone(),
            at: self.now,
        });
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SchedulerError> {
        if self.events.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.events);
        let published = std::mem::take(&mut self.published);
        let report = publish_all(self.deps.bus.as_ref(), events, self.deps.retry).await;
        // A refused step goes back to how it was (still due), for the next run to publish.
        for (event, _) in &report.failed {
            let BusEvent::WinbackStepDue(step) = event else {
                continue;
            };
            let Some(before) = published.iter().find(|e| e.id == step.enrollment_id) else {
                continue;
            };
            self.summary.steps_published = self.summary.steps_published.saturating_sub(1);
            match self.deps.store.save_enrollment(before).await {
                Ok(_) => {}
                // Moved on meanwhile (sent from an earlier event, won back): nothing to redo.
                Err(err) if err.is_conflict() => {}
                Err(err) => {
                    tracing::error!(event = "unpublish_failed", enrollment = %before.id, step = step.step, error = %err);
                }
            }
        }
        if !report.failed.is_empty() {
            self.summary.publish_failures += report.failed.len() as u64;
            for (event, why) in &report.failed {
                tracing::error!(event = "publish_failed", detail_type = event.detail_type(), error = %why);
            }
            self.deps.metrics.record(
                Record::new(&[("Service", "scheduler")]).metric(
                    "PublishFailures",
                    report.failed.len() as f64,
                    Unit::Count,
                ),
                self.now.timestamp_millis(),
            );
            return Err(SchedulerError::Publish(report.failed.len()));
        }
        Ok(())
    }

    /// Processes due items from `position` (shard) on; returns a checkpoint if cut short.
    async fn due_pass(
        &mut self,
        mut position: u32,
        mut cursor: Option<String>,
    ) -> Result<Option<(u32, Option<String>)>, SchedulerError> {
        while position < DUE_SHARDS {
            loop {
                if self.out_of_budget() {
                    return Ok(Some((position, cursor)));
                }
                let page = self
                    .deps
                    .store
                    .due_page(position, self.now, cursor.clone(), PAGE)
                    .await?;
                self.pages += 1;
                self.summary.items_read += page.items_read;
                let mut failed = None;
                for item in page.items {
                    self.seen += 1;
                    let done = match item {
                        DueItem::Profile(p) => self.evaluate(p).await,
                        DueItem::Enrollment(e) => self.act_on_enrollment(e).await,
                    };
                    if let Err(e) = done {
                        failed = Some(e);
                        break;
                    }
                }
                // On a failed item, `run` still flushes the steps this page saved as published.
                if let Some(e) = failed {
                    return Err(e);
                }
                self.flush().await?;
                cursor = page.cursor;
                if cursor.is_none() {
                    break;
                }
            }
            position += 1;
        }
        Ok(None)
    }

    /// Recomputes every profile's due time from a parallel scan.
    async fn rebuild_pass(
        &mut self,
        mut position: u32,
        mut cursor: Option<String>,
    ) -> Result<Option<(u32, Option<String>)>, SchedulerError> {
        while position < REBUILD_SEGMENTS {
            loop {
                if self.out_of_budget() {
                    return Ok(Some((position, cursor)));
                }
                let page = self
                    .deps
                    .store
                    .scan_profiles(position, REBUILD_SEGMENTS, cursor.clone(), PAGE)
                    .await?;
                self.pages += 1;
                self.summary.items_read += page.items_read;
                for p in page.items {
                    self.seen += 1;
                    self.rebuild_one(p).await?;
                }
                cursor = page.cursor;
                if cursor.is_none() {
                    break;
                }
            }
            position += 1;
        }
        Ok(None)
    }

    #[tracing::instrument(name = "customer", skip_all, fields(customer_id = %profile.customer_id))]
    async fn rebuild_one(&mut self, profile: Profile) -> Result<(), SchedulerError> {
        self.summary.evaluated += 1;
        if !profile.erased {
            self.summaries
                .extend(model::profile_summary(&profile, self.now));
        }
        let latest = self
            .deps
            .store
            .get_enrollment(&profile.customer_id, &self.deps.campaign.name)
            .await?;
        if latest.as_ref().is_some_and(|e| !e.status.is_final()) {
            return self.set_profile_due(profile, None).await;
        }
        let campaign = &self.deps.campaign;
        let due = match lapse::assess(&profile, &campaign.lapse, self.now).state {
            LapseState::Lapsed { .. } if !profile.is_mailable() => None,
            _ => due::next_due(&profile, &campaign.lapse, campaign.watch(), self.now),
        };
        self.set_profile_due(profile, due).await
    }
}

/// Handles one invocation's payload: a `ResolutionRequested` event from the bus (see
/// [`resolve`]), else a scheduled run ([`parse_input`], then [`run`]). Answers what was done.
pub async fn handle(
    deps: &Deps,
    payload: &serde_json::Value,
    invoked_at: DateTime<Utc>,
    budget: Budget,
) -> Result<serde_json::Value, SchedulerError> {
    if let Some((reason, note, at)) = resolve::requested(payload) {
        let done = resolve::resolve_reason(deps.store.as_ref(), reason, &note, at).await?;
        return Ok(serde_json::to_value(done).expect("a resolution serializes"));
    }
    let input = parse_input(payload, Some(invoked_at))?;
    Ok(serde_json::to_value(run(deps, input, budget).await?).expect("a summary serializes"))
}

/// Runs the scheduler once: first any checkpointed run, then this invocation's own work.
pub async fn run(deps: &Deps, input: Input, budget: Budget) -> Result<Summary, SchedulerError> {
    // The campaign's lapse policy with its stored customer model: one read per invocation.
    let mut campaign = (*deps.campaign).clone();
    campaign.lapse =
        shared::fitted::lapse_policy(deps.store.as_ref(), &campaign.name, &campaign.lapse).await;
    let deps = &Deps {
        campaign: Arc::new(campaign),
        ..deps.clone()
    };
    let mut summary = Summary::default();
    let checkpoint = deps.store.get_checkpoint().await?;
    let mut version = checkpoint.as_ref().map_or(0, |c| c.version);
    let mut jobs: Vec<(DateTime<Utc>, Mode, u32, Option<String>)> = Vec::new();
    if let Some(c) = checkpoint {
        summary.resumed = true;
        jobs.push((c.now, c.mode, c.position, c.cursor));
    }
    jobs.push((input.now, input.mode, 0, None));
    let mut seen = 0;
    let mut pages = 0;
    for (i, (now, mode, position, cursor)) in jobs.into_iter().enumerate() {
        // A resumed run finished with no time left. Checkpointing this invocation's own due pass
        // at its start would chain invocations forever (each finishing the last one's pass and
        // leaving its own); the next scheduled due pass reads everything this one would.
        if i > 0 && mode == Mode::Due && pages > 0 && budget.spent(seen) {
            summary.left_to_next_run = true;
            tracing::info!(
                event = "scheduler_pass_left_to_next_run",
                "the resumed run used the time"
            );
            break;
        }
        let mut r = Run {
            deps,
            now,
            summary: Summary::default(),
            events: Vec::new(),
            published: Vec::new(),
            budget,
            seen,
            pages,
            summaries: Vec::new(),
        };
        let cut = match mode {
            Mode::Due => r.due_pass(position, cursor).await,
            Mode::Rebuild => r.rebuild_pass(position, cursor).await,
        };
        // Also after a failed pass: steps saved as published must reach the bus.
        let flushed = r.flush().await;
        seen = r.seen;
        pages = r.pages;
        merge(&mut summary, &r.summary);
        emit(deps, &r.summary, now);
        let cut = cut?;
        flushed?;
        if mode == Mode::Rebuild && cut.is_none() {
            let (fit, stored) = refit(deps, &r.summaries, now).await?;
            summary.model_refit = stored;
            summary.model_fit = Some(fit);
        }
        match cut {
            Some((position, cursor)) => {
                let c = Checkpoint {
                    now,
                    mode,
                    position,
                    cursor,
                    version,
                };
                deps.store.save_checkpoint(&c).await?;
                tracing::info!(
                    event = "scheduler_checkpoint",
                    position,
                    mode = mode.as_str()
                );
                summary.complete = false;
                return Ok(summary);
            }
            None if version > 0 => {
                deps.store.clear_checkpoint(version).await?;
                version = 0;
            }
            None => {}
        }
    }
    summary.complete = true;
    Ok(summary)
}

/// Fits the campaign's customer model on the customers a finished rebuild read (all of them, or
/// the part this invocation read when it resumed a checkpointed rebuild: a sample of whole scan
/// segments) and stores it, with its figures in the log and as metrics. A fit that fell back to
/// the prior (too few repeat customers, a failed optimisation) keeps the stored one.
async fn refit(
    deps: &Deps,
    summaries: &[model::Summary],
    now: DateTime<Utc>,
) -> Result<(model::Fit, bool), SchedulerError> {
    let campaign = deps.campaign.name.as_str();
    let fit = model::fit(deps.campaign.lapse.model_variant(), summaries);
    let stored = model::worth_storing(&fit);
    tracing::info!(
        event = "customer_model_fit",
        campaign,
        customers = fit.customers,
        repeat_customers = fit.repeat_customers,
        mean_log_likelihood = fit.mean_log_likelihood,
        figures = %fit.figures(),
        stored,
        warning = fit.warning.as_deref().unwrap_or(""),
    );
    deps.metrics.record(
        Record::new(&[("Campaign", campaign)])
            .metric("ModelCustomers", fit.customers as f64, Unit::Count)
            .metric(
                "ModelRepeatCustomers",
                fit.repeat_customers as f64,
                Unit::Count,
            )
            .metric(
                "ModelMeanLogLikelihood",
                fit.mean_log_likelihood,
                Unit::None,
            )
            .metric(
                "ModelFellBackToPrior",
                f64::from(u8::from(!stored)),
                Unit::Count,
            ),
        now.timestamp_millis(),
    );
    if !stored {
        tracing::warn!(
            event = "customer_model_kept",
            campaign,
            "the refit fell back to the prior; the stored model stays"
        );
        return Ok((fit, false));
    }
    let version = deps.store.get_fit(campaign).await?.map_or(0, |f| f.version);
    let new = model::CampaignFit {
        campaign: campaign.to_string(),
        fit,
        fitted_at: now,
        version,
    };
    match deps.store.save_fit(&new).await {
        Ok(_) => Ok((new.fit, true)),
        // Another rebuild or an import stored a fit meanwhile: theirs is as new as this one.
        Err(e) if e.is_conflict() => Ok((new.fit, false)),
        Err(e) => Err(e.into()),
    }
}

fn merge(a: &mut Summary, b: &Summary) {
    a.evaluated += b.evaluated;
    a.enrolled += b.enrolled;
    a.steps_published += b.steps_published;
    a.publish_failures += b.publish_failures;
    a.items_read += b.items_read;
    for (flow, f) in &b.flows {
        let into = a.flows.entry(*flow).or_default();
        into.sunset += f.sunset;
        for (variant, n) in &f.enrolled_by_variant {
            *into.enrolled_by_variant.entry(variant.clone()).or_insert(0) += n;
        }
    }
}

fn emit(deps: &Deps, s: &Summary, now: DateTime<Utc>) {
    let campaign = deps.campaign.name.as_str();
    let ts = now.timestamp_millis();
    deps.metrics.record(
        Record::new(&[("Campaign", campaign)]).metric(
            "CustomersEvaluated",
            s.evaluated as f64,
            Unit::Count,
        ),
        ts,
    );
    // Each flow's enrollments, holdout and sunsets under the name its counters are kept under
    // (the campaign's own for the win-back flow), also by `Flow`.
    for (&flow, f) in &s.flows {
        deps.metrics.record(
            Record::of_flow(campaign, flow, &[])
                .metric("HoldoutAssigned", f.holdout() as f64, Unit::Count)
                .metric("CustomersSunset", f.sunset as f64, Unit::Count),
            ts,
        );
        for (variant, n) in &f.enrolled_by_variant {
            deps.metrics.record(
                Record::of_flow(campaign, flow, &[("Variant", variant)]).metric(
                    "CustomersEnrolled",
                    *n as f64,
                    Unit::Count,
                ),
                ts,
            );
        }
    }
}
