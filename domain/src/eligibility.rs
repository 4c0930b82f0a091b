//! Who may be enrolled, and why not.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::customer::{EmailStatus, Profile};
use super::follow_up;
use super::hygiene::{self, HygienePolicy, KeptOut};
use super::lapse::Outlook;
use super::money::{Money, Valuation};
use super::sequence::{Enrollment, ExitReason, Flow, Status};
use super::survey::{pending_resolution, Reason};

/// Why a lapsed customer is not enrolled. `retry_at` says when it may change by itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Ineligible {
    NoEmail,
    Erased,
    TooFewOrders {
        have: u32,
        need: u32,
    },
    LifetimeValueTooLow {
        have: String,
        need: String,
    },
    PredictedValueTooLow {
        have: String,
        need: String,
    },
    Unsubscribed,
    Suppressed,
    /// Sunset after a goodbye without reaction, until `until` (or an order, which lifts it).
    Sunset {
        until: DateTime<Utc>,
    },
    AlreadyEnrolled,
    ContactedRecently {
        until: DateTime<Utc>,
    },
    CoolingDown {
        until: DateTime<Utc>,
    },
    PausedReason {
        reason: Reason,
    },
    /// The address is kept out by hygiene (invalid, a role address, a disposable domain).
    Address {
        kept_out: KeptOut,
    },
    /// A person must follow up first (a detractor, a bad experience); held until they close it
    /// or `until`.
    FollowUpOpen {
        until: DateTime<Utc>,
    },
}

impl Ineligible {
    /// When to look at the customer again, if the reason can lapse by itself.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Ineligible::ContactedRecently { until }
            | Ineligible::CoolingDown { until }
            | Ineligible::Sunset { until }
            | Ineligible::FollowUpOpen { until } => Some(*until),
            _ => None,
        }
    }

    /// The rule's name, for plans and logs.
    pub fn rule(&self) -> &'static str {
        match self {
            Ineligible::NoEmail => "no_email",
            Ineligible::Erased => "erased",
            Ineligible::TooFewOrders { .. } => "too_few_orders",
            Ineligible::LifetimeValueTooLow { .. } => "lifetime_value_too_low",
            Ineligible::PredictedValueTooLow { .. } => "predicted_value_too_low",
            Ineligible::Unsubscribed => "unsubscribed",
            Ineligible::Suppressed => "suppressed",
            Ineligible::Sunset { .. } => "sunset",
            Ineligible::AlreadyEnrolled => "already_enrolled",
            Ineligible::ContactedRecently { .. } => "contacted_recently",
            Ineligible::CoolingDown { .. } => "cooling_down",
            Ineligible::PausedReason { .. } => "paused_reason",
            Ineligible::Address { kept_out } => kept_out.rule(),
            Ineligible::FollowUpOpen { .. } => "follow_up_open",
        }
    }
}

/// The frequency cap that applies to this customer, in days.
pub fn cap_days(profile: &Profile, policy: &EligibilityPolicy) -> u32 {
    if profile.email_status == EmailStatus::FewerEmails {
        policy.fewer_emails_cap_days.max(policy.frequency_cap_days)
    } else {
        policy.frequency_cap_days
    }
}

/// When a sunset address may be enrolled again: `sunset_days` after the sunset. A sunset is a
/// decision for a while, not for ever; an order lifts it earlier (the webhook clears `sunset_at`).
pub fn sunset_until(profile: &Profile, policy: &EligibilityPolicy) -> Option<DateTime<Utc>> {
    profile
        .sunset_at
        .map(|at| at + Duration::days(i64::from(policy.sunset_days)))
}

/// Whether a lapsed customer may be enrolled now, given their latest enrollment in this campaign.
pub fn check(
    profile: &Profile,
    latest: Option<&Enrollment>,
    policy: &EligibilityPolicy,
    now: DateTime<Utc>,
) -> Result<(), Ineligible> {
    check_flow(profile, latest, policy, Flow::WinBack, now)
}

/// Whether a customer may be enrolled in `flow` now, with the value the customer model predicts
/// for them ([`check_flow`], then [`check_value`]): what the scheduler and `winback plan` ask.
pub fn check_enrollment(
    profile: &Profile,
    latest: Option<&Enrollment>,
    policy: &EligibilityPolicy,
    flow: Flow,
    outlook: Option<&Outlook>,
    valuation: &Valuation,
    now: DateTime<Utc>,
) -> Result<(), Ineligible> {
    check_flow(profile, latest, policy, flow, now)?;
    check_value(profile, outlook, policy, valuation)
}

/// Value targeting, in the campaign currency: a customer whose lifetime value is below
/// `min_lifetime_value`, or whose predicted 12-month value is below `min_predicted_value`, is kept
/// out. Amounts in other currencies count at the configured exchange rates; when one has no rate
/// (or there is no outlook: the threshold rule, no orders) there is nothing to compare and the
/// rule does not apply: money in two currencies is never compared as one.
pub fn check_value(
    profile: &Profile,
    outlook: Option<&Outlook>,
    policy: &EligibilityPolicy,
    valuation: &Valuation,
) -> Result<(), Ineligible> {
    if let Some(have) = profile.lifetime_value_in(valuation) {
        if have < policy.min_lifetime_value {
            return Err(Ineligible::LifetimeValueTooLow {
                have: have.to_string(),
                need: policy.min_lifetime_value.to_string(),
            });
        }
    }
    let home = profile.currency.as_deref().unwrap_or(valuation.currency);
    let predicted = outlook
        .filter(|_| policy.min_predicted_value.0 > 0)
        .and_then(|o| valuation.convert(Money(o.predicted_value.round() as i64), home));
    if let Some(have) = predicted {
        if have < policy.min_predicted_value {
            return Err(Ineligible::PredictedValueTooLow {
                have: have.to_string(),
                need: policy.min_predicted_value.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether a customer may be enrolled in `flow` now. The same rules for both flows, except that
/// an at-risk enrollment that ended does not hold back the win-back one once they lapse (only
/// the frequency cap does): the flows follow each other.
pub fn check_flow(
    profile: &Profile,
    latest: Option<&Enrollment>,
    policy: &EligibilityPolicy,
    flow: Flow,
    now: DateTime<Utc>,
) -> Result<(), Ineligible> {
    if profile.erased {
        return Err(Ineligible::Erased);
    }
    match profile.email_status {
        EmailStatus::Unsubscribed => return Err(Ineligible::Unsubscribed),
        EmailStatus::Suppressed => return Err(Ineligible::Suppressed),
        _ => {}
    }
    if let Some(until) = sunset_until(profile, policy).filter(|u| now < *u) {
        return Err(Ineligible::Sunset { until });
    }
    if let Some(until) = follow_up::holds_until(profile, policy.follow_up_pause_days, now) {
        return Err(Ineligible::FollowUpOpen { until });
    }
    let Some(email) = &profile.email else {
        return Err(Ineligible::NoEmail);
    };
    if let Err(kept_out) = hygiene::assess(email, &policy.hygiene) {
        return Err(Ineligible::Address { kept_out });
    }
    if profile.order_count < policy.min_orders {
        return Err(Ineligible::TooFewOrders {
            have: profile.order_count,
            need: policy.min_orders,
        });
    }
    if let Some(reason) = policy
        .paused_reasons
        .iter()
        .copied()
        .find(|r| profile.tags.contains(&r.tag()) && !profile.resolved_reasons.contains(r))
    {
        return Err(Ineligible::PausedReason { reason });
    }
    if let Some(e) = latest {
        if !e.status.is_final() {
            return Err(Ineligible::AlreadyEnrolled);
        }
        if let Some(last) = e.last_sent_at() {
            let until = last + Duration::days(i64::from(cap_days(profile, policy)));
            if now < until {
                return Err(Ineligible::ContactedRecently { until });
            }
        }
        // Paused over a reason the shop has since fixed: no cooldown before telling them.
        let fixed_pause = matches!(
            e.status,
            Status::Exited {
                reason: ExitReason::Paused,
                ..
            }
        ) && pending_resolution(profile).is_some();
        let after_at_risk =
            e.flow == Flow::AtRisk && matches!(flow, Flow::WinBack | Flow::ReEngagement);
        // A birthday or anniversary is not held back by the cooldown of another flow, and does
        // not hold one back: only the frequency cap spaces them.
        let celebration = flow == Flow::Celebration || e.flow == Flow::Celebration;
        if let Some(ended) = e
            .ended_at()
            .filter(|_| !fixed_pause && !after_at_risk && !celebration)
        {
            let until = ended + Duration::days(i64::from(policy.cooldown_days));
            if now < until {
                return Err(Ineligible::CoolingDown { until });
            }
        }
    }
    Ok(())
}

/// Who may be enrolled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EligibilityPolicy {
    pub min_orders: u32,
    /// Minimum lifetime value, in the campaign currency ("25.00"); orders in other currencies
    /// count at `[exchange_rates]`, and a customer with orders in a currency without a rate is
    /// not compared.
    pub min_lifetime_value: Money,
    /// Minimum value the customer model predicts for the next 12 months, in the campaign currency
    /// ("0" = no minimum): focus the rewards on the lapsed customers worth winning back. A value
    /// in another currency is converted at `[exchange_rates]`, or not compared without a rate;
    /// applies only under a fitted model.
    #[serde(default)]
    pub min_predicted_value: Money,
    /// No email within this many days of the previous one.
    pub frequency_cap_days: u32,
    /// The cap for customers who asked for fewer emails.
    pub fewer_emails_cap_days: u32,
    /// Days after a finished enrollment before a customer may be enrolled again.
    pub cooldown_days: u32,
    /// Days a sunset address (a goodbye without reaction) stays out of this campaign; an order
    /// lifts it earlier.
    #[serde(default = "default_sunset_days")]
    pub sunset_days: u32,
    /// Survey reasons that pause the campaign for a customer until the marketer marks them resolved.
    #[serde(default)]
    pub paused_reasons: Vec<Reason>,
    /// The template (`templates/<locale>/<name>.*`) of the email that tells a customer paused
    /// over a reason that it is fixed (`winback resolve`); it replaces step 1 of their next
    /// enrollment. Without it, step 1's own template is sent (it sees `resolved` too).
    #[serde(default)]
    pub resolved_template: Option<String>,
    /// The template of the one win-back email a customer who chose "fewer emails" gets (it
    /// replaces the last step's, the goodbye): it thanks them, says the shop will write rarely and
    /// offers "unsubscribe" only. Without it, the last step's own template is sent.
    #[serde(default)]
    pub fewer_emails_template: Option<String>,
    /// Which addresses are kept out before the first send (role addresses, disposable domains):
    /// `[eligibility.hygiene]`. See [`crate::hygiene`].
    #[serde(default)]
    pub hygiene: HygienePolicy,
    /// Days a customer's emails pause after a follow-up opens (a detractor, a bad experience)
    /// unless a person closes it sooner.
    #[serde(default = "default_follow_up_pause_days")]
    pub follow_up_pause_days: u32,
}

serde_defaults! {
    default_follow_up_pause_days: u32 = 14;
    default_sunset_days: u32 = 180;
}
