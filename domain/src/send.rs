//! What the sender does with a due step: one pure decision over what it has read, then the
//! handler acts on it (the shape of an idempotency "next action"). Reads the decision needs only
//! on some paths (the profile, the account's suppression list, the fitted customer model) are
//! asked for with [`NextAction::Look`], so the handler reads nothing it does not need: it reads,
//! asks again, and acts on the first answer that is not a look.

use chrono::{DateTime, Utc};

use super::customer::{EmailStatus, Profile};
use super::eligibility::{self, EligibilityPolicy};
use super::follow_up;
use super::hygiene::{self, KeptOut};
use super::lapse::LapsePolicy;
use super::outlook;
use super::schedule;
use super::sequence::{self, Enrollment, ExitReason, Flow, Flows};

/// What the sender knows about a due step so far.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The step the message says is due, and the enrollment it was published for.
    pub step: u8,
    pub enrollment_id: &'a str,
    /// The customer's latest enrollment in the campaign (`None`: none).
    pub enrollment: Option<&'a Enrollment>,
    /// The customer's profile: `None` not read yet, `Some(None)` there is none.
    pub profile: Option<Option<&'a Profile>>,
    /// Whether the address is on the account's suppression list (`None`: not looked up yet).
    pub listed: Option<bool>,
    /// The campaign's lapse policy with its stored customer model (`None`: not read yet).
    pub lapse: Option<&'a LapsePolicy>,
}

/// A read the decision needs before it can say more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Profile,
    /// The account-level suppression list, for the profile's address.
    SuppressionList,
    /// The campaign's stored customer model (for an at-risk reward).
    FittedLapse,
}

/// What to do with the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAction {
    /// Read this, then decide again.
    Look(Lookup),
    /// An earlier delivery sent it.
    AlreadySent,
    /// Nothing to send and nothing to write.
    Skip { why: &'static str },
    /// End the enrollment with `reason` (and first mark the address suppressed when
    /// `suppress`): nothing will be sent to this customer.
    End {
        reason: ExitReason,
        why: &'static str,
        suppress: bool,
    },
    /// Pass over this step without an email (a customer on fewer emails gets fewer steps); the
    /// rest keep their times.
    PassOver,
    /// Not now: quiet hours, the frequency cap or an open follow-up. Due again at `until`.
    Defer { until: DateTime<Utc> },
    /// Another sender holds the step until `until`.
    Busy { until: DateTime<Utc> },
    /// Send the step, with a reward when `rewarded`.
    Send { rewarded: bool },
}

/// How the email of a step is written for its customer: which template, and whether it offers
/// "fewer emails". Asked by the sender once it sends (see [`email_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Letter<'a> {
    /// The template (`templates/<locale>/<name>.*`) the email is rendered from.
    pub template: &'a str,
    /// Whether the email offers "fewer emails": not to a customer who already chose it (they
    /// are offered "unsubscribe" only).
    pub offer_fewer_emails: bool,
}

/// The email step `step` of enrollment `e` sends to the customer of `profile`, whose own
/// template is `step_template`:
/// - the first email of an enrollment that follows a fixed paused reason is the campaign's
///   `resolved_template` (when it has one);
/// - a customer who chose "fewer emails" gets only the last step of the win-back flow (see
///   [`sequence::sends_step`]): it is the campaign's `fewer_emails_template` (when it has one),
///   written for them, instead of the goodbye, which says it is the last email and offers
///   "fewer emails" again;
/// - else the step's own.
pub fn email_for<'a>(
    e: &Enrollment,
    profile: &Profile,
    step: u8,
    step_template: &'a str,
    eligibility: &'a EligibilityPolicy,
) -> Letter<'a> {
    let fewer = profile.email_status == EmailStatus::FewerEmails;
    let template = match (
        &e.resolved,
        &eligibility.resolved_template,
        &eligibility.fewer_emails_template,
    ) {
        (Some(_), Some(t), _) if step == 1 => t.as_str(),
        (_, _, Some(t)) if fewer && e.flow == Flow::WinBack => t.as_str(),
        _ => step_template,
    };
    Letter {
        template,
        offer_fewer_emails: !fewer,
    }
}

/// Why no email may go to the customer of `profile` any more (`None`: it may). The sender asks
/// it in [`decide`], and again with the profile read once more after it has claimed the step,
/// right before SES: an unsubscribe from any flow's email that landed between the two reads ends
/// the claimed enrollment instead of being followed by an email.
pub fn mail_refused(profile: Option<&Profile>) -> Option<ExitReason> {
    let Some(profile) = profile else {
        return Some(ExitReason::Erased);
    };
    if profile.is_mailable() {
        return None;
    }
    Some(match profile.email_status {
        EmailStatus::Suppressed => ExitReason::Suppressed,
        _ if profile.erased || profile.email.is_none() => ExitReason::Erased,
        _ => ExitReason::Unsubscribed,
    })
}

/// Decides what to do with a due step, given what has been read (`facts`), the campaign's
/// flows, eligibility policy and default time zone, at `now`.
pub fn decide<F: Flows + ?Sized>(
    facts: &Facts<'_>,
    flows: &F,
    eligibility: &EligibilityPolicy,
    default_time_zone: &str,
    now: DateTime<Utc>,
) -> NextAction {
    let step = facts.step;
    let Some(e) = facts.enrollment else {
        return NextAction::Skip {
            why: "no_enrollment",
        };
    };
    if e.id != facts.enrollment_id {
        return NextAction::Skip {
            why: "stale_enrollment",
        };
    }
    if e.sent.iter().any(|s| s.step == step) {
        return NextAction::AlreadySent;
    }
    if e.status.is_final() {
        return NextAction::Skip {
            why: "enrollment_ended",
        };
    }
    if e.due_step() != Some(step) {
        return NextAction::Skip {
            why: "not_the_next_step",
        };
    }
    let Some(profile) = facts.profile else {
        return NextAction::Look(Lookup::Profile);
    };
    let Some(profile) = profile else {
        return NextAction::Skip { why: "no_profile" };
    };
    if let Some(reason) = mail_refused(Some(profile)) {
        return NextAction::End {
            reason,
            why: "not_mailable",
            suppress: false,
        };
    }
    let steps = e.steps(flows);
    if !sequence::sends_step(step, steps.len() as u8, profile.email_status) {
        return NextAction::PassOver;
    }

    let sending = flows.sending();
    let tz = schedule::zone(profile.time_zone.as_deref(), default_time_zone);
    let habit = sending
        .best_hour
        .then(|| schedule::habitual_hour(&profile.order_times(), &tz))
        .flatten();
    // An open follow-up holds the email (deferred, not dropped) until a person closes it or the
    // pause passes; then the usual hours apply from there.
    let hold = follow_up::holds_until(profile, eligibility.follow_up_pause_days, now);
    let allowed = schedule::next_send_time(
        hold.unwrap_or(now),
        e.last_sent_at(),
        eligibility::cap_days(profile, eligibility),
        &tz,
        sending.quiet_hours_start,
        sending.quiet_hours_end,
        habit,
    );
    if allowed > now {
        return NextAction::Defer { until: allowed };
    }

    // Hygiene again right before the send (the campaign file may have changed since
    // enrollment), then the account-level suppression list.
    let Some(listed) = facts.listed else {
        return NextAction::Look(Lookup::SuppressionList);
    };
    let address = profile.email.as_deref().unwrap_or_default();
    if let Err(kept_out) = hygiene::assess_send(address, &eligibility.hygiene, listed) {
        return NextAction::End {
            reason: ExitReason::Suppressed,
            why: kept_out.rule(),
            suppress: kept_out == KeptOut::AccountSuppressionList,
        };
    }

    if let Some(c) = &e.claim {
        if c.step == step && c.lease_until > now {
            return NextAction::Busy {
                until: c.lease_until,
            };
        }
    }
    let Some(step_config) = steps.get(usize::from(step) - 1) else {
        return NextAction::Skip {
            why: "no_such_step",
        };
    };
    // In the at-risk flow a reward is the last resort, and only for customers judged unlikely
    // to come back by themselves: never a discount to someone who would have bought anyway. A
    // birthday or anniversary reward is a thank-you for loyalty: always given.
    let rewarded = step_config.reward
        && (e.flow != Flow::AtRisk || {
            let Some(lapse) = facts.lapse else {
                return NextAction::Look(Lookup::FittedLapse);
            };
            !outlook::likely_to_return_alone(profile, lapse, now)
        });
    NextAction::Send { rewarded }
}
