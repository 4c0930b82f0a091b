//! One pass of the scheduler over what is due (or over every profile, in a rebuild): each
//! customer read, decided on by the domain ([`enroll::decide`]) and written.

use chrono::{DateTime, Utc};
use shared::domain::customer::Profile;
use shared::domain::due;
use shared::domain::eligibility;
use shared::domain::engagement;
use shared::domain::enroll::{self, Lookup, NextAction, Program};
use shared::domain::experiment::Group;
use shared::domain::lapse::{self, LapseState};
use shared::domain::metrics::counter;
use shared::domain::model;
use shared::domain::sequence::{Enrollment, Flow, Status};
use shared::domain::targeting;
use shared::events::{BusEvent, StepDue};
use shared::ports::{update_profile, Change, DueItem, StoreError, DUE_SHARDS};
use shared::ports::{DueQuery, PageAt, ScanSegment};
use shared::publish::publish_all;
use shared::retry::RetryPolicy;
use shared::telemetry::Telemetry;

use crate::input::{Budget, Mode};
use crate::summary::Summary;
use crate::telemetry::{CustomerEnrolled, CustomerSunset, PublishFailed};
use crate::{Deps, SchedulerError};

/// Items fetched per due-index page.
const PAGE: u32 = 100;
/// Segments of the rebuild scan.
pub const REBUILD_SEGMENTS: u32 = 4;
/// A published step the sender never acted on is published again when the next step would have
/// been due, and never sooner than this.
const REPUBLISH_AFTER_HOURS: i64 = 6;

pub(crate) struct Run<'a> {
    deps: &'a Deps,
    now: DateTime<Utc>,
    /// What the campaign says about enrolling, gathered once.
    program: Program<'a>,
    pub(crate) summary: Summary,
    events: Vec<BusEvent>,
    /// Enrollments saved as published whose event is in `events`, as they were before, to put
    /// back if the bus refuses the event.
    published: Vec<Enrollment>,
    budget: Budget,
    pub(crate) seen: u64,
    /// Pages read in this invocation: the first is always read, whatever the budget, so every
    /// invocation makes progress.
    pub(crate) pages: u64,
    /// What the customer model needs of each customer a rebuild read, for the refit.
    pub(crate) summaries: Vec<model::Summary>,
    /// Each category's rhythm, gathered from the same customers, for the refit.
    pub(crate) rhythms: shared::domain::rhythm::Pool,
    /// What each flow's uplift model learns from the finished enrollments a rebuild read.
    pub(crate) examples: Vec<(Flow, targeting::Example)>,
}

impl<'a> Run<'a> {
    /// A pass at `now`, within `budget`, after `seen` items and `pages` pages of this invocation.
    pub(crate) fn new(
        deps: &'a Deps,
        now: DateTime<Utc>,
        budget: Budget,
        seen: u64,
        pages: u64,
    ) -> Run<'a> {
        Run {
            deps,
            now,
            program: deps.campaign.program(),
            summary: Summary::default(),
            events: Vec::new(),
            published: Vec::new(),
            budget,
            seen,
            pages,
            summaries: Vec::new(),
            rhythms: Default::default(),
            examples: Vec::new(),
        }
    }

    fn out_of_budget(&self) -> bool {
        self.pages > 0 && self.budget.spent(self.seen)
    }

    /// Evaluates one customer: read what the domain asks for, decide, then write a new due
    /// time or the enrollment.
    #[tracing::instrument(name = "customer", skip_all, fields(customer_id = %profile.customer_id))]
    async fn evaluate(&mut self, profile: Profile) -> Result<(), SchedulerError> {
        self.summary.evaluated += 1;
        let campaign = self.deps.campaign.as_ref();
        let first = enroll::decide(
            &enroll::Facts {
                profile: &profile,
                latest: None,
                assessment: None,
            },
            campaign,
            &self.program,
            self.now,
        );
        // The one read the decision may ask for (the latest enrollment, when a flow is in
        // question), then the decision again, on the assessment it already made.
        let evaluation = match first.next {
            NextAction::Look(Lookup::Enrollment) => {
                let latest = self
                    .deps
                    .store
                    .get_enrollment(&profile.customer_id, &campaign.name)
                    .await?;
                let facts = enroll::Facts {
                    profile: &profile,
                    latest: Some(latest.as_ref()),
                    assessment: Some(&first.assessment),
                };
                enroll::decide(&facts, campaign, &self.program, self.now)
            }
            _ => first,
        };
        let (mut enrollment, enrolled) = match evaluation.next {
            NextAction::Enroll {
                enrollment,
                profile,
            } => (*enrollment, profile),
            NextAction::Wait { due, kept_out } => {
                if let (Some(why), Some(flow)) = (kept_out, evaluation.flow) {
                    tracing::debug!(rule = why.rule(), flow = flow.as_str(), "not eligible");
                }
                return self.set_profile_due(profile, due).await;
            }
            NextAction::Look(_) => unreachable!("the decision asks for one read, answered above"),
        };
        match self.deps.store.save_enrollment(&enrollment).await {
            Ok(v) => enrollment.version = v,
            // Another run enrolled them first.
            Err(e) if e.is_conflict() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = self.deps.store.save_profile(&enrolled).await {
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
        *self
            .summary
            .flow(enrollment.flow)
            .enrolled_by_variant
            .entry(enrollment.variant.clone())
            .or_insert(0) += 1;
        if enrollment.group == Group::Treated {
            let t = enrollment
                .treatment
                .unwrap_or(targeting::Treatment::AsTheRules);
            *self
                .summary
                .flow(enrollment.flow)
                .targeting
                .entry(t.as_str().to_string())
                .or_insert(0) += 1;
        }
        CustomerEnrolled(&enrollment).log();
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
        let (campaign, now) = (&self.deps.campaign, self.now);
        let saved = update_profile(self.deps.store.as_ref(), &e.customer_id, |p| match p {
            Some(mut p) => {
                p.due_at = due::next_due(&p, &campaign.lapse, campaign.watch(), now);
                Change::Save(p, ())
            }
            None => Change::Keep(()),
        })
        .await;
        gave_way(saved)
    }

    async fn sunset_profile(&mut self, e: &Enrollment) -> Result<(), SchedulerError> {
        let (eligibility, now) = (&self.deps.campaign.eligibility, self.now);
        let saved = update_profile(self.deps.store.as_ref(), &e.customer_id, |p| match p {
            Some(mut p) => {
                p.sunset_at = Some(now);
                // Looked at again when the sunset has run its time (an order wakes them sooner).
                p.due_at = eligibility::sunset_until(&p, eligibility);
                Change::Save(p, ())
            }
            None => Change::Keep(()),
        })
        .await;
        gave_way(saved)?;
        let key = e.cohort();
        self.deps
            .store
            .add_counts(&key, Some(self.now.date_naive()), &[(counter::SUNSET, 1)])
            .await?;
        self.summary.flow(e.flow).sunset += 1;
        CustomerSunset(e).log();
        self.events.push(BusEvent::CustomerSunset {
            campaign: e.campaign.clone(),
            customer_id: e.customer_id.clone(),
            at: self.now,
        });
        Ok(())
    }

    pub(crate) async fn flush(&mut self) -> Result<(), SchedulerError> {
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
            PublishFailed(&report.failed).emit(self.deps.metrics.as_ref(), self.now);
            return Err(SchedulerError::Publish(report.failed.len()));
        }
        Ok(())
    }

    /// Reads page after page from `position` (a due-index shard, or a rebuild scan's segment)
    /// on, acting on each; returns a checkpoint if cut short.
    pub(crate) async fn pass(
        &mut self,
        mode: Mode,
        mut position: u32,
        mut cursor: Option<String>,
    ) -> Result<Option<(u32, Option<String>)>, SchedulerError> {
        let (deps, now) = (self.deps, self.now);
        let positions = match mode {
            Mode::Due => DUE_SHARDS,
            Mode::Rebuild => REBUILD_SEGMENTS,
        };
        while position < positions {
            loop {
                if self.out_of_budget() {
                    return Ok(Some((position, cursor)));
                }
                cursor = match mode {
                    Mode::Due => {
                        let page = deps
                            .store
                            .due_page(
                                DueQuery {
                                    shard: position,
                                    now,
                                },
                                PageAt::new(cursor, PAGE),
                            )
                            .await?;
                        self.read_page(page.items_read);
                        for item in page.items {
                            self.seen += 1;
                            // On a failed item, `run` still flushes the steps this page saved as
                            // published.
                            match item {
                                DueItem::Profile(p) => self.evaluate(p).await?,
                                DueItem::Enrollment(e) => self.act_on_enrollment(e).await?,
                            }
                        }
                        self.flush().await?;
                        page.cursor
                    }
                    Mode::Rebuild => {
                        let page = deps
                            .store
                            .scan_profiles(
                                ScanSegment::new(position, REBUILD_SEGMENTS),
                                PageAt::new(cursor, PAGE),
                            )
                            .await?;
                        self.read_page(page.items_read);
                        for p in page.items {
                            self.seen += 1;
                            self.rebuild_one(p).await?;
                        }
                        page.cursor
                    }
                };
                if cursor.is_none() {
                    break;
                }
            }
            position += 1;
        }
        Ok(None)
    }

    /// Counts a page read, and the items the store read for it.
    fn read_page(&mut self, items_read: u64) {
        self.pages += 1;
        self.summary.items_read += items_read;
    }

    #[tracing::instrument(name = "customer", skip_all, fields(customer_id = %profile.customer_id))]
    async fn rebuild_one(&mut self, profile: Profile) -> Result<(), SchedulerError> {
        self.summary.evaluated += 1;
        if !profile.erased {
            let valuation = self.deps.campaign.valuation();
            self.summaries
                .extend(model::fit_summary(&profile, self.now, &valuation));
            self.rhythms
                .add(&profile.order_times(), profile.last_category());
        }
        let latest = self
            .deps
            .store
            .get_enrollment(&profile.customer_id, &self.deps.campaign.name)
            .await?;
        if let Some(e) = &latest {
            let campaign = &self.deps.campaign;
            let example = e.learning_example(
                profile.enrolled_on.as_ref(),
                campaign.experiment.variant_without_reward(&e.variant),
                campaign.sending.attribution_days,
                self.now,
            );
            self.examples.extend(example.map(|x| (e.flow, x)));
        }
        // Earlier enrollments that were over when a later one replaced them.
        self.examples.extend(
            profile
                .finished
                .iter()
                .filter_map(|f| Some((Flow::named(&f.flow)?, f.example.clone()))),
        );
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

/// A profile write that kept losing its race to other writers gives way: theirs is newer, and
/// the customer's next look (or their next order) sets what this one would have.
fn gave_way(saved: Result<(), StoreError>) -> Result<(), SchedulerError> {
    match saved {
        Err(e) if !e.is_conflict() => Err(e.into()),
        _ => Ok(()),
    }
}
