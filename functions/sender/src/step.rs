//! One step: the sender's decision ([`shared::domain::send`]) asked once, then acted on: claim,
//! send, mark, or skip, defer, end the enrollment.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::customer::{EmailStatus, Profile};
use shared::domain::metrics::counter;
use shared::domain::send::{self, Facts, Lookup, NextAction};
use shared::domain::sequence::{Enrollment, ExitReason};
use shared::events::StepDue;
use shared::ports::{
    update_profile, Change, Email, EnrollmentStore, MailError, ProfileStore, RewardStore,
    StoreError,
};
use shared::telemetry::Telemetry;

use crate::claim::{claim, mark_sent, while_claimed};
use crate::code::{in_checkout, reward_for, store_new, void_replaced};
use crate::compose::compose;
use crate::deps::Deps;
use crate::error::SendError;
use crate::tally::Tally;
use crate::telemetry::{
    EmailDeferred, EmailSent, EmailSkipped, SendFailed, SendThrottled, SendingPaused,
};

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

/// Sends one step, at most once, and writes its counts.
pub async fn process_step(
    deps: &Deps,
    due: &StepDue,
    now: DateTime<Utc>,
) -> Result<Outcome, SendError> {
    let mut tally = Tally::default();
    let outcome = send_step(deps, due, now, &mut tally).await;
    tally
        .flush(deps.store.as_ref(), deps.metrics.as_ref(), now)
        .await;
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
    let (Some(enrollment), Some(Some(profile))) = (enrollment, profile) else {
        return match action {
            NextAction::AlreadySent => Ok(Outcome::AlreadySent),
            NextAction::Skip { why } => Ok(Outcome::Skipped { why }),
            _ => Err(SendError::NothingToActOn { step: due.step }),
        };
    };
    let refused = |action| {
        move |source| SendError::StepRefused {
            step: due.step,
            action,
            source,
        }
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
                suppress(deps.store.as_ref(), &profile, now).await?;
            }
            end_enrollment(deps, enrollment, reason, now).await?;
            Ok(Outcome::Skipped { why })
        }
        NextAction::PassOver => {
            let skipped = enrollment
                .skip(due.step, now, config)
                .map_err(refused("passed over"))?;
            save_unless_conflict(deps.store.as_ref(), &skipped).await?;
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
            let deferred = enrollment.defer(until).map_err(refused("deferred"))?;
            save_unless_conflict(deps.store.as_ref(), &deferred).await?;
            EmailDeferred {
                campaign: &config.name,
                flow: enrollment.flow,
                until,
            }
            .emit(deps.metrics.as_ref(), now);
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
async fn save_unless_conflict(
    enrollments: &dyn EnrollmentStore,
    e: &Enrollment,
) -> Result<(), SendError> {
    match enrollments.save_enrollment(e).await {
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
    let enrollments: &dyn EnrollmentStore = deps.store.as_ref();
    let rewards: &dyn RewardStore = deps.store.as_ref();
    let reason = enrollment.survey_reason.or(profile.survey_reason);
    let chosen = if rewarded {
        reward_for(rewards, config, &enrollment, profile, due.step, reason, now).await?
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

    let code = reward.as_ref().map(|(r, _)| r.code.to_string());
    let Some(claimed) = claim(enrollments, deps.lease, &enrollment, due.step, code, now).await?
    else {
        return Ok(Outcome::Skipped {
            why: "ended_before_send",
        });
    };
    let delivery = while_claimed(enrollments, &claimed, now, async {
        // The profile once more, now that the claim is stored: an unsubscribe (from this or any
        // other flow's email) acknowledged before this read ends the enrollment here; one after
        // it finds the claim and waits for this send to settle.
        let fresh = deps.store.get_profile(&due.customer_id).await?;
        if let Some(reason) = send::mail_refused(fresh.as_ref()) {
            end_enrollment(deps, claimed.clone(), reason, now).await?;
            return Ok(Delivery::Withdrawn);
        }
        // Issue the reward (a take-over finds it already issued), and have the shop's checkout
        // know it before the email carries it.
        if let Some((r, insert)) = &reward {
            if *insert {
                store_new(rewards, r).await?;
            }
            in_checkout(deps, rewards, r, profile, now).await?;
        }
        deliver(deps, &email, profile, &claimed, now).await
    })
    .await?;
    let message_id = match delivery {
        Delivery::Accepted(message_id) => message_id,
        Delivery::AddressRejected => {
            return Ok(Outcome::Skipped {
                why: "address_rejected",
            })
        }
        Delivery::Withdrawn => {
            return Ok(Outcome::Skipped {
                why: "not_mailable_after_claim",
            })
        }
    };

    mark_sent(
        enrollments,
        config,
        claimed,
        due.step,
        &message_id,
        reward.map(|(r, _)| r.code),
        now,
    )
    .await?;
    if let Some(old) = &replaces {
        void_replaced(rewards, deps.checkout.as_deref(), old, now).await;
    }
    tally.add(
        enrollment.cohort(),
        now.date_naive(),
        &[(counter::SENT, 1), (&counter::sent_step(due.step), 1)],
    );
    EmailSent {
        campaign: &deps.campaign.config().name,
        flow: enrollment.flow,
        step: due.step,
    }
    .emit(deps.metrics.as_ref(), now);
    Ok(Outcome::Sent { message_id })
}

/// What SES did with an email.
enum Delivery {
    /// Accepted, with its message id.
    Accepted(String),
    /// Refused for the address: the customer is suppressed and the enrollment ended.
    AddressRejected,
    /// Not handed to SES: the profile read after the claim says no email may go any more
    /// (unsubscribed, suppressed or erased meanwhile), and the enrollment ended.
    Withdrawn,
}

/// Hands the email to SES. A rejected address suppresses the customer and ends the claimed
/// enrollment; every other failure is an error (after slowing down for a throttle).
async fn deliver(
    deps: &Deps,
    email: &Email,
    profile: &Profile,
    claimed: &Enrollment,
    now: DateTime<Utc>,
) -> Result<Delivery, SendError> {
    let metrics = deps.metrics.as_ref();
    match deps.mailer.send(email).await {
        Ok(id) => Ok(Delivery::Accepted(id)),
        Err(MailError::Rejected(why)) => {
            tracing::warn!(event = "address_rejected", error = %why);
            suppress(deps.store.as_ref(), profile, now).await?;
            end_enrollment(deps, claimed.clone(), ExitReason::Suppressed, now).await?;
            Ok(Delivery::AddressRejected)
        }
        Err(e @ MailError::Throttled(_)) => {
            deps.limiter.slow_down();
            SendThrottled.emit(metrics, now);
            Err(SendError::Throttled(e))
        }
        Err(e @ MailError::Paused(_)) => {
            SendingPaused(&e).emit(metrics, now);
            Err(SendError::Paused(e))
        }
        Err(e) => {
            SendFailed(&e).emit(metrics, now);
            Err(SendError::Mail(e))
        }
    }
}

async fn end_enrollment(
    deps: &Deps,
    e: Enrollment,
    reason: ExitReason,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    if let Ok(ended) = e.exit(reason, now) {
        save_unless_conflict(deps.store.as_ref(), &ended).await?;
    }
    EmailSkipped {
        campaign: &e.campaign,
        flow: e.flow,
    }
    .emit(deps.metrics.as_ref(), now);
    Ok(())
}

/// Marks the customer's address suppressed (and due no more). A profile gone meanwhile needs
/// nothing; one that keeps changing under the write is logged and left.
async fn suppress(
    profiles: &dyn ProfileStore,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    let suppressed = update_profile(profiles, &profile.customer_id, |p| match p {
        Some(mut p) => {
            p.email_status = EmailStatus::Suppressed;
            p.due_at = None;
            Change::Save(p, ())
        }
        None => Change::Keep(()),
    })
    .await;
    match suppressed {
        Err(StoreError::Conflict { .. }) => {
            tracing::warn!(event = "suppress_conflict", at = %now);
            Ok(())
        }
        done => Ok(done?),
    }
}
