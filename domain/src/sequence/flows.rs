//! The flows an enrollment can follow, what the sequence needs of a campaign ([`Flows`]), and the
//! names their counters are kept under.

use serde::{Deserialize, Serialize};

use super::config::{SendingPolicy, StepConfig};
use crate::experiment::{Assignment, ExperimentConfig, Group};
use crate::metrics::CohortKey;

/// Which sequence an enrollment follows. One spelling everywhere, [`Flow::as_str`]: in
/// `CAMPAIGNS`, `[flows] priority`, the `Flow` metric dimension, SES tags, stored enrollments and
/// `plan --json` (stored enrollments and tags written as `win_back`, `at_risk` or
/// `re_engagement` by earlier versions are still read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// Lapsed: the win-back sequence (`[[steps]]`).
    #[default]
    #[serde(alias = "win_back")]
    WinBack,
    /// Not lapsed yet but at risk: the at-risk sequence (`[[at_risk.steps]]`).
    #[serde(alias = "at_risk")]
    AtRisk,
    /// A birthday or first-order anniversary (`[[celebration.steps]]`).
    Celebration,
    /// Emailed and never opened one: a re-permission message, sunset sooner
    /// (`[[re_engagement.steps]]`, see `domain::engagement`).
    #[serde(alias = "re_engagement")]
    ReEngagement,
}

impl Flow {
    /// Every flow, in the order `CAMPAIGNS` and reports list them.
    pub const ALL: [Flow; 4] = [
        Flow::WinBack,
        Flow::AtRisk,
        Flow::ReEngagement,
        Flow::Celebration,
    ];

    /// The flow's one name: `win-back`, `at-risk`, `re-engagement`, `celebration`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::WinBack => "win-back",
            Flow::AtRisk => "at-risk",
            Flow::Celebration => "celebration",
            Flow::ReEngagement => "re-engagement",
        }
    }

    /// The flow named `name` ([`Flow::as_str`]); `None` for any other text.
    pub fn named(name: &str) -> Option<Flow> {
        Flow::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The flow named `name`, also in the spelling of earlier versions (`at_risk`), for what
    /// was written before: SES tags of emails already sent.
    pub fn read(name: &str) -> Option<Flow> {
        Flow::named(name).or_else(|| Flow::named(&name.replace('_', "-")))
    }

    pub(super) fn is_win_back(&self) -> bool {
        *self == Flow::WinBack
    }
}

/// The name a flow's counters are kept under: the campaign's for the win-back flow, and
/// `<campaign>-at-risk` for the at-risk flow, so its figures never mix into the win-back lift
/// (`winback report --campaign <campaign>-at-risk` shows them).
pub fn cohort_campaign(campaign: &str, flow: Flow) -> String {
    match flow {
        Flow::WinBack => campaign.to_string(),
        other => format!("{campaign}-{}", other.as_str()),
    }
}

/// A customer's arm in the experiment on entering `flow` of campaign `campaign`: the same in every
/// flow (a held-out customer gets no email from any of them), except the re-engagement flow. Only
/// customers emailed before reach that one (never the held-out), so it draws its own arm, under
/// its counters' name, which gives it a holdout of its own and its report a lift.
pub fn assign(customer_id: &str, campaign: &str, flow: Flow, cfg: &ExperimentConfig) -> Assignment {
    match flow {
        Flow::ReEngagement => {
            crate::experiment::assign(customer_id, &cohort_campaign(campaign, flow), cfg)
        }
        _ => crate::experiment::assign(customer_id, campaign, cfg),
    }
}

impl CohortKey {
    /// The cohort of `variant` and `group` in `campaign`'s `flow` (see [`cohort_campaign`]).
    pub fn of(campaign: &str, flow: Flow, variant: &str, group: Group) -> CohortKey {
        CohortKey {
            campaign: cohort_campaign(campaign, flow),
            variant: variant.to_string(),
            group,
        }
    }
}

/// What the sequence needs of a campaign: its flows' steps, the sending policy and the
/// experiment's variants. The campaign file ([`crate::campaign::CampaignConfig`]) composes it.
pub trait Flows {
    /// The campaign's name (in enrollment ids and keys).
    fn campaign_name(&self) -> &str;
    /// The steps of a flow (none for a flow the campaign does not have).
    fn steps_of(&self, flow: Flow) -> &[StepConfig];
    fn sending(&self) -> &SendingPolicy;
    fn experiment(&self) -> &ExperimentConfig;
    /// Days after a flow's last step, with no reaction, until it ends (a sunset for the win-back
    /// and re-engagement flows).
    fn sunset_after_days(&self, _flow: Flow) -> u32 {
        self.sending().sunset_after_days
    }
}

impl<F: Flows + ?Sized> Flows for std::sync::Arc<F> {
    fn campaign_name(&self) -> &str {
        (**self).campaign_name()
    }
    fn steps_of(&self, flow: Flow) -> &[StepConfig] {
        (**self).steps_of(flow)
    }
    fn sending(&self) -> &SendingPolicy {
        (**self).sending()
    }
    fn experiment(&self) -> &ExperimentConfig {
        (**self).experiment()
    }
    fn sunset_after_days(&self, flow: Flow) -> u32 {
        (**self).sunset_after_days(flow)
    }
}

/// Days of the whole win-back sequence plus sunset wait: the holdout's observation window.
pub fn sequence_days(campaign: &(impl Flows + ?Sized), delay_factor: f64) -> f64 {
    flow_days(campaign, Flow::WinBack, delay_factor)
}

/// Days of a flow's whole sequence plus the wait after its last step.
pub fn flow_days(campaign: &(impl Flows + ?Sized), flow: Flow, delay_factor: f64) -> f64 {
    campaign
        .steps_of(flow)
        .iter()
        .map(|s| s.delay_days * delay_factor)
        .sum::<f64>()
        + f64::from(campaign.sunset_after_days(flow))
}

/// The variant's timing factor (1 when the variant sets none).
pub fn delay_factor(campaign: &(impl Flows + ?Sized), variant: &str) -> f64 {
    campaign.experiment().delay_factor(variant)
}
