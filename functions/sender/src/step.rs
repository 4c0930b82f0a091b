//! One step: the sender's decision ([`shared::domain::send`]) asked once, then acted on: claim,
//! send, mark, or skip, defer, end the enrollment.

use chrono::{DateTime, Utc};
use shared::domain::customer::{EmailStatus, Profile};
use shared::domain::metrics::counter;
use shared::domain::reward::RewardCode;
use shared::domain::send::{self, Facts, Lookup, NextAction};
use shared::domain::sequence::{Claim, Enrollment, ExitReason};
use shared::emf::{Record, Unit};
use shared::events::StepDue;
use shared::ports::{MailError, StoreError};
use shared::retry::{RetryPolicy, CONFLICT_ATTEMPTS};

use crate::code::{hex_token, reward_for, void_replaced};
use crate::compose::compose;
use crate::{Deps, Outcome, SendError, Tally};

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
