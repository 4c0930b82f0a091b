//! The sender: one SES email per due step, exactly once.
//!
//! For each `WinbackStepDue` it re-checks the customer, defers for quiet hours and the frequency
//! cap, **claims** the step with a versioned write (a lease), issues or reuses the reward code,
//! renders the step for the customer's locale, sends, and **marks** the step sent, which schedules
//! the next step or the sunset. A message delivered twice finds the step sent or claimed; a
//! crashed claim is taken over once its lease has expired.
//!
//! DynamoDB writes per email: the claim and the mark (the enrollment item only: neither moves the
//! due time the scheduler set when it published the step, so the due index is not written), the
//! reward when a new code is issued, and a share of one counter write per cohort and day per
//! batch (counts are gathered in a [`Tally`] and written when the batch is done).
//!
//! The one window that can still duplicate: SES accepted the email and the process died before
//! the mark was written. Its bound is one extra email per crash in that window, only after the
//! lease expires; SES's own message id is recorded on mark so operators can reconcile.

pub mod lambda;
mod rate;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use shared::campaign::{self as locale, Campaign, EmailContext, NpsLink, RewardView, SurveyLink};
use shared::domain::customer::{EmailStatus, Profile};
use shared::domain::metrics::{counter, CohortKey, Counts};
use shared::domain::reward::{self, Offer, Reward, RewardCode};
use shared::domain::schedule;
use shared::domain::send::{self, Facts, Lookup, NextAction};
use shared::domain::sequence::{Claim, Enrollment, ExitReason};
use shared::domain::survey::Reason;
use shared::emf::{MetricSink, Record, Unit};
use shared::events::{Envelope, StepDue};
use shared::ports::{Email, MailError, Mailer, Store, StoreError};
use shared::retry::{RetryPolicy, CONFLICT_ATTEMPTS};
use shared::signing::{sign_link, LinkClaims, LinkKeys, Purpose};
use tracing::Instrument;

pub use rate::RateLimiter;

/// What the sender needs, built once at cold start.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub campaign: Arc<Campaign>,
    pub metrics: Arc<dyn MetricSink>,
    /// The link-token keys, newest first (the newest signs).
    pub link_keys: LinkKeys,
    /// The webhook's public URL, without a trailing slash.
    pub public_base_url: String,
    pub sender_address: String,
    pub limiter: Arc<RateLimiter>,
    /// How long a claim keeps other senders off a step.
    pub lease: Duration,
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Sent {
        message_id: String,
    },
    /// Already sent by an earlier delivery of the same message.
    AlreadySent,
    /// Nothing to send any more (unsubscribed, suppressed, won back, sunset, stale).
    Skipped {
        why: &'static str,
    },
    /// Not now: quiet hours or the frequency cap. The scheduler publishes it again then.
    Deferred {
        until: DateTime<Utc>,
    },
}

/// Failures that leave the message for a retry (reported as a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("message body is not a WinbackStepDue envelope: {0}")]
    BadMessage(String),
    #[error(
        "step {step} of enrollment {enrollment} is being sent by another sender until {until}"
    )]
    Busy {
        enrollment: String,
        step: u8,
        until: DateTime<Utc>,
    },
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("SES throttled the send; it will be retried")]
    Throttled(#[source] MailError),
    #[error("SES sending is paused for the account; fix the account before emails can go out")]
    Paused(#[source] MailError),
    #[error("SES failed: {0}")]
    Mail(#[source] MailError),
    #[error("could not render step {step}: {source}")]
    Render {
        step: u8,
        #[source]
        source: shared::campaign::RenderError,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    /// Not tried: SES paused sending earlier in the batch.
    #[error("not sent: SES sending is paused; the step is handed back to the scheduler")]
    Held,
}

/// Counts gathered while processing, written once per cohort and day.
#[derive(Debug, Default)]
pub struct Tally(BTreeMap<(CohortKey, NaiveDate), Counts>);

impl Tally {
    fn add(&mut self, cohort: CohortKey, day: NaiveDate, counts: &[(&str, i64)]) {
        let row = self.0.entry((cohort, day)).or_default();
        for (name, n) in counts {
            row.add(name, *n);
        }
    }

    /// Writes the counts: one counter write per cohort and day. A failed write is logged and
    /// reported as `CountFailures`; the emails it counted went out and are marked all the same,
    /// so it is not a reason to redeliver them.
    pub async fn flush(self, deps: &Deps, now: DateTime<Utc>) {
        for ((cohort, day), counts) in self.0 {
            let deltas: Vec<(&str, i64)> = counts.0.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            if let Err(err) = deps.store.add_counts(&cohort, Some(day), &deltas).await {
                tracing::error!(event = "count_failed", campaign = %cohort.campaign, variant = %cohort.variant, error = %err);
                deps.metrics.record(
                    Record::new(&[("Service", "sender")]).metric("CountFailures", 1.0, Unit::Count),
                    now.timestamp_millis(),
                );
            }
        }
    }
}

/// How long the steps of a batch wait after SES paused sending: they are handed back to the
/// scheduler (due again then) rather than failed, so a pause spends none of the step queue's
/// receives and sends nothing to its dead-letter queue.
pub const PAUSED_RETRY: Duration = Duration::hours(1);

/// From this receive of a message on (the step queue dead-letters at its 5th), a throttled step
/// is handed back to the scheduler, due again after [`THROTTLED_RETRY`], instead of failed for
/// another receive: long throttling delays emails, it never dead-letters them.
pub const HAND_BACK_FROM_RECEIVE: u32 = 3;

/// How long a throttled step handed back to the scheduler waits.
pub const THROTTLED_RETRY: Duration = Duration::minutes(15);

/// How many times SQS has delivered `record` (1 the first time; 1 when SQS does not say).
fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Processes an SQS batch; failed items are returned for redelivery. The batch's counts are
/// written together at the end. A pause stops the batch: this step and every later one are
/// handed back to the scheduler ([`PAUSED_RETRY`]) without calling SES again.
pub async fn handle_batch(deps: &Deps, event: SqsEvent, now: DateTime<Utc>) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    let mut paused = false;
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let due = match parse_body(record.body.as_deref().unwrap_or_default()) {
            Ok(due) => due,
            Err(e) => {
                // A malformed message can never succeed: report it and let the DLQ keep it.
                tracing::error!(event = "bad_message", message_id = %id, error = %e);
                failures.push(failure(id));
                continue;
            }
        };
        // Every line logged for this message carries the customer and step from its span.
        let span = tracing::info_span!("step", customer_id = %due.customer_id, step = due.step);
        let failed = process_record(deps, &record, &due, now, &mut tally, &mut paused)
            .instrument(span)
            .await;
        if let Err(e) = failed {
            tracing::warn!(event = "send_failed", message_id = %id, error = %e);
            failures.push(failure(id));
        }
    }
    tally.flush(deps, now).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Sends one message's step, or hands it back to the scheduler (a pause, long throttling); an
/// error leaves the message for redelivery.
async fn process_record(
    deps: &Deps,
    record: &SqsMessage,
    due: &StepDue,
    now: DateTime<Utc>,
    tally: &mut Tally,
    paused: &mut bool,
) -> Result<(), SendError> {
    let result = if *paused {
        Err(SendError::Held)
    } else {
        send_step(deps, due, now, tally).await
    };
    let until = match &result {
        Ok(outcome) => {
            tracing::info!(event = "step_processed", outcome = ?outcome);
            return Ok(());
        }
        Err(SendError::Paused(_) | SendError::Held) => {
            *paused = true;
            now + PAUSED_RETRY
        }
        Err(SendError::Throttled(_)) if receive_count(record) >= HAND_BACK_FROM_RECEIVE => {
            now + THROTTLED_RETRY
        }
        Err(_) => return result.map(|_| ()),
    };
    hand_back(deps, due, now, until).await?;
    tracing::warn!(event = "step_handed_back", until = %until, error = %result.err().map(|e| e.to_string()).unwrap_or_default());
    Ok(())
}

/// Makes the step of `due` due again at `until`, for the scheduler to publish then, keeping the
/// claim's reward code for that send. A step that is no longer waiting (sent, ended, stale)
/// needs nothing; one another sender holds is reported busy, for redelivery.
async fn hand_back(
    deps: &Deps,
    due: &StepDue,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), SendError> {
    let Some(mut e) = deps
        .store
        .get_enrollment(&due.customer_id, &due.campaign)
        .await?
    else {
        return Ok(());
    };
    if e.id != due.enrollment_id || e.due_step() != Some(due.step) {
        return Ok(());
    }
    if let Some(c) = e.claim.as_mut() {
        if c.step == due.step && c.lease_until > now {
            return Err(SendError::Busy {
                enrollment: e.id.clone(),
                step: due.step,
                until: c.lease_until,
            });
        }
    }
    let Ok(deferred) = e.defer(until) else {
        return Ok(());
    };
    deps.store.save_enrollment(&deferred).await?;
    Ok(())
}

fn failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}

/// Reads a `WinbackStepDue` from an EventBridge envelope (the SQS body).
pub fn parse_body(body: &str) -> Result<StepDue, SendError> {
    let env: Envelope =
        serde_json::from_str(body).map_err(|e| SendError::BadMessage(e.to_string()))?;
    if env.detail_type != "WinbackStepDue" {
        return Err(SendError::BadMessage(format!(
            "detail-type is {}, expected WinbackStepDue",
            env.detail_type
        )));
    }
    serde_json::from_value(env.detail).map_err(|e| SendError::BadMessage(e.to_string()))
}

/// Sends one step, at most once, and writes its counts.
pub async fn process_step(
    deps: &Deps,
    due: &StepDue,
    now: DateTime<Utc>,
) -> Result<Outcome, SendError> {
    let mut tally = Tally::default();
    let outcome = send_step(deps, due, now, &mut tally).await;
    tally.flush(deps, now).await;
    outcome
}

/// Sends one step, at most once, adding what it counts to `tally`: reads what the decision
/// ([`send::decide`]) asks for, then acts on what it says.
pub async fn send_step(
    deps: &Deps,
    due: &StepDue,
    now: DateTime<Utc>,
    tally: &mut Tally,
) -> Result<Outcome, SendError> {
    let config = deps.campaign.config();
    let enrollment = deps
        .store
        .get_enrollment(&due.customer_id, &due.campaign)
        .await?;
    let mut profile: Option<Option<Profile>> = None;
    let mut listed = None;
    let mut lapse = None;
    let action = loop {
        let facts = Facts {
            step: due.step,
            enrollment_id: &due.enrollment_id,
            enrollment: enrollment.as_ref(),
            profile: profile.as_ref().map(Option::as_ref),
            listed,
            lapse: lapse.as_ref(),
        };
        match send::decide(
            &facts,
            config,
            &config.eligibility,
            &config.default_time_zone,
            now,
        ) {
            NextAction::Look(Lookup::Profile) => {
                profile = Some(deps.store.get_profile(&due.customer_id).await?);
            }
            NextAction::Look(Lookup::SuppressionList) => {
                // A lookup that fails does not hold the send back: SES drops mail to a listed
                // address itself and reports it as a bounce.
                let address = profile.iter().flatten().find_map(|p| p.email.as_deref());
                listed = Some(
                    match deps.mailer.is_suppressed(address.unwrap_or_default()).await {
                        Ok(listed) => listed,
                        Err(e) => {
                            tracing::warn!(event = "suppression_list_unavailable", error = %e);
                            false
                        }
                    },
                );
            }
            NextAction::Look(Lookup::FittedLapse) => {
                // The campaign's stored customer model: read only for an at-risk reward.
                lapse = Some(
                    shared::fitted::lapse_policy(deps.store.as_ref(), &config.name, &config.lapse)
                        .await,
                );
            }
            action => break action,
        }
    };
    let ended = || SendError::BadMessage("ended".into());
    let (Some(enrollment), Some(Some(profile))) = (enrollment, profile) else {
        return match action {
            NextAction::AlreadySent => Ok(Outcome::AlreadySent),
            NextAction::Skip { why } => Ok(Outcome::Skipped { why }),
            _ => Err(ended()),
        };
    };
    match action {
        NextAction::AlreadySent => Ok(Outcome::AlreadySent),
        NextAction::Look(_) => unreachable!("the loop above reads until the decision is no look"),
        NextAction::Skip { why } => Ok(Outcome::Skipped { why }),
        NextAction::End {
            reason,
            why,
            suppress: listed,
        } => {
            if listed {
                suppress(deps, &profile, now).await?;
            }
            end_enrollment(deps, enrollment, reason, now).await?;
            Ok(Outcome::Skipped { why })
        }
        NextAction::PassOver => {
            let skipped = enrollment
                .skip(due.step, now, config)
                .map_err(|_| ended())?;
            save_unless_conflict(deps, &skipped).await?;
            tally.add(
                enrollment.cohort(),
                now.date_naive(),
                &[(counter::SKIPPED_FEWER_EMAILS, 1)],
            );
            Ok(Outcome::Skipped {
                why: "fewer_emails",
            })
        }
        NextAction::Defer { until } => {
            let deferred = enrollment.defer(until).map_err(|_| ended())?;
            save_unless_conflict(deps, &deferred).await?;
            deps.metrics.record(
                Record::of_flow(&config.name, enrollment.flow, &[]).metric(
                    "EmailsDeferred",
                    1.0,
                    Unit::Count,
                ),
                now.timestamp_millis(),
            );
            Ok(Outcome::Deferred { until })
        }
        NextAction::Busy { until } => Err(SendError::Busy {
            enrollment: enrollment.id.clone(),
            step: due.step,
            until,
        }),
        NextAction::Send { rewarded } => {
            send(deps, due, enrollment, &profile, rewarded, now, tally).await
        }
    }
}

/// Saves an enrollment change a concurrent writer may have made moot.
async fn save_unless_conflict(deps: &Deps, e: &Enrollment) -> Result<(), SendError> {
    match deps.store.save_enrollment(e).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Claims the step, issues or reuses its reward, renders, sends and marks it sent.
async fn send(
    deps: &Deps,
    due: &StepDue,
    enrollment: Enrollment,
    profile: &Profile,
    rewarded: bool,
    now: DateTime<Utc>,
    tally: &mut Tally,
) -> Result<Outcome, SendError> {
    let config = deps.campaign.config();
    let reason = enrollment.survey_reason.or(profile.survey_reason);
    let chosen = if rewarded {
        Some(reward_for(deps, &enrollment, profile, due.step, reason, now).await?)
    } else {
        None
    };
    let replaces = chosen.as_ref().and_then(|c| c.replaces.clone());
    let reward = chosen.map(|c| (c.reward, c.insert));
    // Everything that may wait (rendering, the rate limiter) comes before the claim, so the
    // claim is the sender's commitment to send right now: an unsubscribe that ended the
    // enrollment before it makes the claim's conditional write fail and nothing is sent, and
    // one after it finds the claim and answers once SES has the email (see the webhook's
    // `links::set_status`). The link tokens name the enrollment, not the claim.
    let email = compose(
        deps,
        &enrollment,
        profile,
        due.step,
        reward.as_ref().map(|(r, _)| r),
        now,
    )?;
    deps.limiter.acquire().await;

    let token = hex_token()?;
    let mut claimed = enrollment.clone();
    claimed.claim = Some(Claim {
        step: due.step,
        token,
        lease_until: now + deps.lease,
        reward_code: reward.as_ref().map(|(r, _)| r.code.to_string()),
    });
    claimed.version = match deps.store.save_enrollment(&claimed).await {
        Ok(v) => v,
        Err(StoreError::Conflict { .. }) => {
            // Someone wrote the enrollment since it was read: ended (nothing to send), or
            // another delivery or an open or answer (try again later).
            let fresh = deps
                .store
                .get_enrollment(&enrollment.customer_id, &enrollment.campaign)
                .await?;
            if fresh.is_none_or(|f| f.id != enrollment.id || f.status.is_final()) {
                tracing::info!(event = "ended_before_send", step = due.step);
                return Ok(Outcome::Skipped {
                    why: "ended_before_send",
                });
            }
            return Err(SendError::Busy {
                enrollment: enrollment.id.clone(),
                step: due.step,
                until: now + deps.lease,
            });
        }
        Err(e) => return Err(e.into()),
    };

    // Issue the reward (a take-over finds it already issued).
    if let Some((r, true)) = &reward {
        match deps.store.insert_reward(r).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => {
                let existing = deps.store.get_reward(&r.code).await?;
                if existing.is_none_or(|x| x.enrollment_id != r.enrollment_id) {
                    release(deps, &claimed, now).await;
                    return Err(SendError::Random("reward code collision; retrying".into()));
                }
            }
            Err(e) => {
                release(deps, &claimed, now).await;
                return Err(e.into());
            }
        }
    }

    let message_id = match deps.mailer.send(&email).await {
        Ok(id) => id,
        Err(MailError::Rejected(why)) => {
            tracing::warn!(event = "address_rejected", error = %why);
            suppress(deps, profile, now).await?;
            end_enrollment(deps, claimed, ExitReason::Suppressed, now).await?;
            return Ok(Outcome::Skipped {
                why: "address_rejected",
            });
        }
        Err(e @ MailError::Throttled(_)) => {
            release(deps, &claimed, now).await;
            deps.limiter.slow_down();
            deps.metrics.record(
                Record::new(&[("Service", "sender")]).metric("SendThrottled", 1.0, Unit::Count),
                now.timestamp_millis(),
            );
            return Err(SendError::Throttled(e));
        }
        Err(e @ MailError::Paused(_)) => {
            release(deps, &claimed, now).await;
            tracing::error!(event = "sending_paused", error = %e);
            deps.metrics.record(
                Record::new(&[("Service", "sender")]).metric("SendingPaused", 1.0, Unit::Count),
                now.timestamp_millis(),
            );
            return Err(SendError::Paused(e));
        }
        Err(e) => {
            release(deps, &claimed, now).await;
            let mut record =
                Record::new(&[("Service", "sender")]).metric("SendFailures", 1.0, Unit::Count);
            if let MailError::Refused(_) = e {
                // Not the address: the step's content (every recipient meets it). Alarmed.
                tracing::error!(event = "message_refused", error = %e);
                record = record.metric("SendRejected", 1.0, Unit::Count);
            }
            deps.metrics.record(record, now.timestamp_millis());
            return Err(SendError::Mail(e));
        }
    };

    mark_sent(
        deps,
        claimed,
        due.step,
        &message_id,
        reward.map(|(r, _)| r.code),
        now,
    )
    .await?;
    if let Some(old) = &replaces {
        void_replaced(deps, old, now).await;
    }
    tally.add(
        enrollment.cohort(),
        now.date_naive(),
        &[(counter::SENT, 1), (&counter::sent_step(due.step), 1)],
    );
    deps.metrics.record(
        Record::of_flow(
            &config.name,
            enrollment.flow,
            &[("Step", &due.step.to_string())],
        )
        .metric("EmailsSent", 1.0, Unit::Count),
        now.timestamp_millis(),
    );
    Ok(Outcome::Sent { message_id })
}

/// The reward for this send: the claim's (take-over), the enrollment's current one when it still
/// fits (see [`reward::next_offer`]), or a new one. `insert` says whether it still has to be
/// stored; `replaces` is the enrollment's earlier code, voided once this email has gone out.
struct Chosen {
    reward: Reward,
    insert: bool,
    replaces: Option<RewardCode>,
}

async fn reward_for(
    deps: &Deps,
    e: &Enrollment,
    profile: &Profile,
    step: u8,
    reason: Option<Reason>,
    now: DateTime<Utc>,
) -> Result<Chosen, SendError> {
    let config = deps.campaign.config();
    let current = match e.reward_code.as_deref().map(RewardCode::parse) {
        Some(Ok(code)) => deps
            .store
            .get_reward(&code)
            .await?
            .filter(|r| r.enrollment_id == e.id),
        _ => None,
    };
    let pending = e
        .claim
        .as_ref()
        .filter(|c| c.step == step)
        .and_then(|c| c.reward_code.as_deref())
        .and_then(|c| RewardCode::parse(c).ok());
    let previous = |kept: &RewardCode| {
        current
            .as_ref()
            .filter(|r| r.code != *kept && r.voided_at.is_none())
            .map(|r| r.code.clone())
    };
    if let Some(code) = pending {
        if let Some(r) = deps.store.get_reward(&code).await? {
            if r.enrollment_id == e.id && r.reusable(now) {
                let replaces = previous(&r.code);
                return Ok(Chosen {
                    reward: r,
                    insert: false,
                    replaces,
                });
            }
        }
    }
    let spec = reward::choose(
        &config.rewards,
        config.experiment.variant_reward(&e.variant),
        reason,
    );
    let replaces = match reward::next_offer(current.as_ref(), &spec, now) {
        Offer::Keep => {
            let reward = current.expect("kept reward exists");
            return Ok(Chosen {
                reward,
                insert: false,
                replaces: None,
            });
        }
        Offer::Issue { replaces } => replaces,
    };
    let code = RewardCode::random().map_err(|err| SendError::Random(err.to_string()))?;
    let currency = profile
        .currency
        .clone()
        .unwrap_or_else(|| config.currency.clone());
    Ok(Chosen {
        reward: Reward::issue(
            code,
            spec,
            &e.customer_id,
            &e.campaign,
            &e.id,
            &e.variant,
            step,
            &currency,
            now,
        ),
        insert: true,
        replaces,
    })
}

/// Voids the code a newer email replaced, so the checkout honours only the newest. A failure is
/// logged: the email went out, and the old code still expires by itself.
async fn void_replaced(deps: &Deps, code: &RewardCode, now: DateTime<Utc>) {
    for _ in 0..CONFLICT_ATTEMPTS {
        let old = match deps.store.get_reward(code).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(event = "void_failed", error = %err);
                continue;
            }
        };
        if old.voided_at.is_some() {
            return;
        }
        match deps.store.save_reward(&old.void(now)).await {
            Ok(_) => return,
            Err(err) => tracing::warn!(event = "void_failed", error = %err),
        }
    }
}

fn hex_token() -> Result<String, SendError> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| SendError::Random(e.to_string()))?;
    Ok(hex::encode(b))
}

/// Ends this attempt's lease so that a retry may claim the step at once. The claim itself, with
/// its reward code, stays: the retry sends the reward this attempt may already have inserted
/// instead of issuing a second one that no email would ever carry.
async fn release(deps: &Deps, claimed: &Enrollment, now: DateTime<Utc>) {
    let mut e = claimed.clone();
    if let Some(c) = e.claim.as_mut() {
        c.lease_until = c.lease_until.min(now);
    }
    if let Err(err) = deps.store.save_enrollment(&e).await {
        tracing::warn!(event = "release_failed", enrollment = %e.id, error = %err);
    }
}

/// Records the step sent. This write follows an email SES has accepted, so it is retried
/// harder than others: a throttled attempt is tried again, and a write that went through but
/// whose answer was lost is recognised when the stored enrollment already shows the step sent.
async fn mark_sent(
    deps: &Deps,
    mut e: Enrollment,
    step: u8,
    message_id: &str,
    code: Option<RewardCode>,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    let config = deps.campaign.config();
    let mut last_error = None;
    let policy = RetryPolicy::ACKNOWLEDGED_WRITE;
    for attempt in 1..=policy.attempts {
        if attempt > 1 {
            policy.pause_after(attempt - 1).await;
        }
        let next = match e.record_sent(step, now, Some(message_id.to_string()), config) {
            Ok(n) => n,
            Err(_) => {
                // Won back or exited while sending: keep the record of the email, nothing else.
                let mut n = e.clone();
                if n.sent.iter().all(|s| s.step != step) {
                    n.sent.push(shared::domain::sequence::SentStep {
                        step,
                        at: now,
                        message_id: Some(message_id.to_string()),
                    });
                }
                n.claim = None;
                n
            }
        };
        let mut next = next;
        if let Some(c) = &code {
            next.reward_code = Some(c.to_string());
        }
        match deps.store.save_enrollment(&next).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => {}
            Err(err @ StoreError::Transient(_)) => last_error = Some(err),
            Err(err) => return Err(err.into()),
        }
        // Someone else wrote, or our write went through unacknowledged: look at what is stored.
        match deps.store.get_enrollment(&e.customer_id, &e.campaign).await {
            Ok(Some(fresh)) if fresh.id == e.id => {
                if fresh.sent.iter().any(|s| s.step == step) {
                    return Ok(());
                }
                e = fresh;
            }
            Ok(_) => return Ok(()),
            Err(err) => last_error = Some(err),
        }
    }
    match last_error {
        Some(err) => Err(err.into()),
        None => Err(SendError::Busy {
            enrollment: e.id.clone(),
            step,
            until: now,
        }),
    }
}

async fn end_enrollment(
    deps: &Deps,
    e: Enrollment,
    reason: ExitReason,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    if let Ok(ended) = e.exit(reason, now) {
        match deps.store.save_enrollment(&ended).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    deps.metrics.record(
        Record::of_flow(&e.campaign, e.flow, &[]).metric("EmailsSkipped", 1.0, Unit::Count),
        now.timestamp_millis(),
    );
    Ok(())
}

async fn suppress(deps: &Deps, profile: &Profile, now: DateTime<Utc>) -> Result<(), SendError> {
    let mut p = profile.clone();
    for _ in 0..CONFLICT_ATTEMPTS {
        p.email_status = EmailStatus::Suppressed;
        p.due_at = None;
        match deps.store.save_profile(&p).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => match deps.store.get_profile(&p.customer_id).await?
            {
                Some(fresh) => p = fresh,
                None => return Ok(()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    tracing::warn!(event = "suppress_conflict", at = %now);
    Ok(())
}

fn link(deps: &Deps, e: &Enrollment, purpose: Purpose, step: u8, now: DateTime<Utc>) -> String {
    let validity = i64::from(deps.campaign.config().sending.link_validity_days);
    sign_link(
        &deps.link_keys,
        &LinkClaims {
            purpose,
            customer_id: e.customer_id.clone(),
            campaign: e.campaign.clone(),
            enrollment_id: e.id.clone(),
            step,
            expires: (now + Duration::days(validity)).timestamp(),
        },
    )
}

/// Renders and addresses the email for a step.
pub fn compose(
    deps: &Deps,
    e: &Enrollment,
    profile: &Profile,
    step: u8,
    reward: Option<&Reward>,
    now: DateTime<Utc>,
) -> Result<Email, SendError> {
    let config = deps.campaign.config();
    let base = deps.public_base_url.trim_end_matches('/');
    let steps = e.steps(config);
    let step_config = &steps[usize::from(step) - 1];
    let locale_code = deps
        .campaign
        .locale_for(profile.locale.as_deref())
        .to_string();
    let tz = schedule::zone(profile.time_zone.as_deref(), &config.default_time_zone);
    let survey_token =
        (step_config.survey || step_config.nps).then(|| link(deps, e, Purpose::Survey, step, now));
    let unsubscribe_token = link(deps, e, Purpose::Unsubscribe, step, now);
    let unsubscribe_url = format!("{base}/v1/unsubscribe?t={unsubscribe_token}");
    let survey = match (&survey_token, step_config.survey) {
        (Some(t), true) => Reason::ALL
            .iter()
            .map(|r| SurveyLink {
                reason: r.as_str().to_string(),
                url: format!("{base}/v1/survey?t={t}&a={}", r.as_str()),
            })
            .collect(),
        _ => Vec::new(),
    };
    let nps = match (&survey_token, step_config.nps) {
        (Some(t), true) => (0..=10u8)
            .map(|score| NpsLink {
                score,
                url: format!("{base}/v1/survey?t={t}&a={score}"),
            })
            .collect(),
        _ => Vec::new(),
    };
    let today = tz.date(now);
    let since = profile.first_order_at.map(|f| tz.date(f)).unwrap_or(today);
    let months = locale::months_between(since, today);
    let ctx = EmailContext {
        first_name: profile.first_name.clone(),
        last_product: profile.last_product().map(str::to_string),
        last_category: profile.last_category().map(str::to_string),
        customer_since: locale::format_date(since, &locale_code),
        years_as_customer: months / 12,
        months_as_customer: months,
        order_count: profile.order_count,
        reward: reward.map(|r| {
            let url =
                reward::checkout_url(config.checkout.as_ref(), &config.shop_url, r.code.as_str());
            RewardView::new(r, &locale_code, &tz, now, url)
        }),
        survey,
        nps,
        fewer_emails_url: format!("{unsubscribe_url}&offer=fewer"),
        unsubscribe_url: unsubscribe_url.clone(),
        shop_url: config.shop_url.clone(),
        shop_name: config.shop_name.clone(),
        step,
        total_steps: steps.len() as u8,
        variant_copy: config
            .experiment
            .variants
            .iter()
            .find(|v| v.name == e.variant)
            .and_then(|v| v.copy.clone()),
        occasion: e.occasion.map(|o| o.as_str().to_string()),
        segment: e.segment.map(|s| s.as_str().to_string()),
        reason: e
            .survey_reason
            .or(profile.survey_reason)
            .map(|r| r.as_str().to_string()),
        resolved: e.resolved.clone(),
    };
    // The first email of an enrollment that tells a paused customer their reason is fixed.
    let template = match (&e.resolved, &config.eligibility.resolved_template) {
        (Some(_), Some(t)) if step == 1 => t.as_str(),
        _ => step_config.template.as_str(),
    };
    let rendered = deps
        .campaign
        .render_template(template, &locale_code, &ctx)
        .map_err(|source| SendError::Render { step, source })?;
    Ok(Email {
        to: profile.email.clone().unwrap_or_default(),
        from: deps.sender_address.clone(),
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        headers: vec![
            ("List-Unsubscribe".into(), format!("<{unsubscribe_url}>")),
            (
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            ),
        ],
        tags: vec![
            ("campaign".into(), e.campaign.clone()),
            ("step".into(), step.to_string()),
            ("variant".into(), e.variant.clone()),
            ("group".into(), e.group.as_str().to_string()),
            ("customer_id".into(), e.customer_id.clone()),
            ("enrollment_id".into(), e.id.clone()),
            ("flow".into(), e.flow.as_str().to_string()),
        ],
    })
}
