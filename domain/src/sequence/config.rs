//! A campaign's sequences as its file writes them: the steps, the sending policy, and the at-risk
//! and celebration flows.

use serde::{Deserialize, Serialize};

use super::activity::ActivityKind;

/// Birthdays and anniversaries of the first order: once a year per occasion, on the day in the
/// customer's time zone, to active customers (not lapsed, not at risk, in no other flow).
/// Templates see `occasion` (`birthday` or `anniversary`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CelebrationFlow {
    /// The sequence (usually one step with `reward = true`).
    pub steps: Vec<StepConfig>,
}

/// The at-risk flow: a buying process before they lapse. Interest (content, a satisfaction or
/// NPS question), then evaluation (answer the objection), then a last step that may carry a
/// reward, given only to customers judged unlikely to come back by themselves (see
/// [`crate::outlook::likely_to_return_alone`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AtRiskFlow {
    /// The sequence, in order; `reward = true` only on the last step.
    pub steps: Vec<StepConfig>,
}

/// When and how emails go out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SendingPolicy {
    /// Local hour (0–23) at which quiet hours start.
    pub quiet_hours_start: u32,
    /// Local hour (0–23) at which quiet hours end.
    pub quiet_hours_end: u32,
    /// An order within this many days of enrollment counts as won back.
    pub attribution_days: u32,
    /// Days after the last step, without reaction, before the customer is sunset.
    pub sunset_after_days: u32,
    /// Activity other than orders that shows the customer is still with the shop and stops the
    /// sequence (never counted as a win): `login`, `subscription_renewed`. Empty: they change
    /// nothing.
    #[serde(default)]
    pub still_with_us: Vec<ActivityKind>,
    /// Validity of the signed links in emails.
    #[serde(default = "default_link_validity")]
    pub link_validity_days: u32,
    /// Steps allowed; raising it past 3 is a deliberate choice (more lands in spam).
    #[serde(default = "default_max_steps")]
    pub max_steps: u8,
    /// Send each email at the local hour the customer usually orders at, when they have one
    /// outside quiet hours (waiting up to a day); otherwise as soon as the step is due.
    #[serde(default = "default_best_hour")]
    pub best_hour: bool,
}

serde_defaults! {
    default_best_hour: bool = true;
    default_link_validity: u32 = 60;
    default_max_steps: u8 = 3;
}

/// One email of the sequence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Template name: `templates/<locale>/<template>.{subject,html,txt}`.
    pub template: String,
    /// Days after enrollment (first step) or after the previous step.
    pub delay_days: f64,
    /// Whether this step carries a reward.
    #[serde(default)]
    pub reward: bool,
    /// Whether the email asks why they left (one-click reason links).
    #[serde(default)]
    pub survey: bool,
    /// Whether the email asks the NPS question (0–10 links).
    #[serde(default)]
    pub nps: bool,
}
