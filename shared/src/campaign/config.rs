//! The campaign file's shape: what a marketer writes in `shared/campaigns/<name>/campaign.toml`.

//! Each policy lives in the domain module it governs; this file composes them (and re-exports
//! them under the names the campaign file's readers know).

use serde::{Deserialize, Serialize};

pub use crate::domain::eligibility::EligibilityPolicy;
pub use crate::domain::experiment::{ExperimentConfig, VariantConfig};
pub use crate::domain::lapse::{FittedModel, LapseModel, LapsePolicy};
use crate::domain::money::{ExchangeRates, Valuation};
pub use crate::domain::reward::{CheckoutConfig, CheckoutPlatform, RewardPolicy};
pub use crate::domain::sequence::{AtRiskFlow, CelebrationFlow, SendingPolicy, StepConfig};
use crate::domain::sequence::{Flow, Flows};

/// A whole campaign: who lapses, who is eligible, the sequence, rewards and the experiment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Identifier used in keys, metrics and links (`[a-z0-9-]`).
    pub name: String,
    /// Shop name shown in emails.
    pub shop_name: String,
    /// Shop URL, the landing page of every call to action.
    pub shop_url: String,
    /// Currency of reward amounts and revenue when an order does not say.
    pub currency: String,
    /// What one unit of another currency is worth in `currency` (`SEK = 0.087`): value rules
    /// and the report convert with them. Without a rate a currency is kept apart.
    #[serde(default, skip_serializing_if = "ExchangeRates::is_empty")]
    pub exchange_rates: ExchangeRates,
    /// Locale used when the customer's locale has no templates.
    pub default_locale: String,
    /// Locales with templates under `templates/<locale>/`.
    pub locales: Vec<String>,
    /// Time zone used when a customer has none.
    #[serde(default = "default_time_zone")]
    pub default_time_zone: String,
    pub lapse: LapsePolicy,
    pub eligibility: EligibilityPolicy,
    pub sending: SendingPolicy,
    /// The sequence, in order. At most `max_steps` (3 unless raised).
    pub steps: Vec<StepConfig>,
    pub rewards: RewardPolicy,
    pub experiment: ExperimentConfig,
    /// The at-risk flow, for customers not lapsed yet but showing early signals. Without it,
    /// at-risk customers are only watched.
    #[serde(default)]
    pub at_risk: Option<AtRiskFlow>,
    /// Where the email's reward button goes: a checkout link that applies the code. Without it
    /// the button goes to `shop_url` and the customer types the code.
    #[serde(default)]
    pub checkout: Option<CheckoutConfig>,
    /// The birthday and anniversary flow (see [`crate::domain::celebration`]).
    #[serde(default)]
    pub celebration: Option<CelebrationFlow>,
    /// The re-engagement flow, for customers who do not read the emails (see
    /// [`crate::domain::engagement`]).
    #[serde(default)]
    pub re_engagement: Option<ReEngagementFlow>,
    /// Settings across the flows: which one a customer enters when they qualify for several.
    #[serde(default, skip_serializing_if = "FlowSettings::is_default")]
    pub flows: FlowSettings,
    /// `[targeting]`: whether the rules or the uplift model decide whom to email and reward
    /// (see [`crate::domain::targeting`]); the rules by default.
    #[serde(default, skip_serializing_if = "is_rules_default")]
    pub targeting: crate::domain::targeting::TargetingConfig,
    /// Each flow's uplift model as the weekly rebuild learned and stored it: not part of the
    /// file, read from the store by whoever enrolls ([`crate::fitted::targeting_models`]).
    #[serde(skip)]
    pub learned: Vec<crate::domain::targeting::TargetingModel>,
    /// Chances known in advance per customer and flow, taken instead of the learned models'
    /// (`winback simulate --targeting oracle`; never set in a deployment).
    #[serde(skip)]
    pub known_chances: std::sync::Arc<crate::domain::enroll::KnownChances>,
}

fn is_rules_default(t: &crate::domain::targeting::TargetingConfig) -> bool {
    *t == crate::domain::targeting::TargetingConfig::default()
}

/// `[flows]`: settings across the flows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlowSettings {
    /// Flow names (as in `CAMPAIGNS`), first preferred, for a customer who qualifies for more
    /// than one (see [`crate::domain::priority`]); flows left out follow in the default order.
    #[serde(default)]
    pub priority: Vec<String>,
}

impl FlowSettings {
    fn is_default(&self) -> bool {
        self.priority.is_empty()
    }
}

/// The re-engagement flow: a re-permission message ("do you still want our emails?") for
/// customers who were emailed and never opened one, sunset sooner than the win-back flow to
/// protect the sender's reputation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReEngagementFlow {
    pub steps: Vec<StepConfig>,
    /// Days after its last step, with no reaction, until the address is sunset (shorter than
    /// `sending.sunset_after_days`).
    pub sunset_after_days: u32,
}

impl CampaignConfig {
    /// Days after a flow's last step, with no reaction, until it ends (in a sunset for the
    /// win-back and re-engagement flows).
    pub fn sunset_after_days(&self, flow: Flow) -> u32 {
        match (flow, &self.re_engagement) {
            (Flow::ReEngagement, Some(r)) => r.sunset_after_days,
            _ => self.sending.sunset_after_days,
        }
    }

    /// `[flows] priority` as flows (the file's names are checked at load).
    pub fn flow_priority(&self) -> Vec<Flow> {
        self.flows
            .priority
            .iter()
            .filter_map(|n| Flow::named(n))
            .collect()
    }

    /// The campaign currency with its exchange rates.
    pub fn valuation(&self) -> Valuation<'_> {
        Valuation {
            currency: &self.currency,
            rates: &self.exchange_rates,
        }
    }

    /// The steps of a flow (none for the at-risk flow of a campaign without one).
    pub fn steps_of(&self, flow: Flow) -> &[StepConfig] {
        if flow == Flow::ReEngagement {
            return self.re_engagement.as_ref().map_or(&[], |r| &r.steps);
        }
        match (flow, &self.at_risk, &self.celebration) {
            (Flow::WinBack | Flow::ReEngagement, _, _) => &self.steps,
            (Flow::AtRisk, Some(a), _) => &a.steps,
            (Flow::AtRisk, None, _) => &[],
            (Flow::Celebration, _, Some(c)) => &c.steps,
            (Flow::Celebration, _, None) => &[],
        }
    }

    /// What the campaign says about enrolling ([`crate::domain::enroll::decide`]).
    pub fn program(&self) -> crate::domain::enroll::Program<'_> {
        crate::domain::enroll::Program {
            lapse: &self.lapse,
            eligibility: &self.eligibility,
            valuation: self.valuation(),
            priority: self.flow_priority(),
            watch: self.watch(),
            re_engagement: self.re_engagement.is_some(),
            targeting: crate::domain::enroll::Targeting {
                config: &self.targeting,
                models: &self.learned,
                rewards: &self.rewards,
                known: (!self.known_chances.is_empty()).then_some(&*self.known_chances),
            },
        }
    }

    /// What the scheduler's next look at a customer in no flow watches for (see
    /// [`crate::domain::due::next_due`]): this campaign's at-risk and celebration flows.
    pub fn watch(&self) -> crate::domain::due::Watch<'_> {
        crate::domain::due::Watch {
            at_risk: self.at_risk.is_some(),
            celebration: self.celebration.is_some(),
            default_time_zone: &self.default_time_zone,
        }
    }
}

impl Flows for CampaignConfig {
    fn campaign_name(&self) -> &str {
        &self.name
    }

    fn steps_of(&self, flow: Flow) -> &[StepConfig] {
        CampaignConfig::steps_of(self, flow)
    }

    fn sending(&self) -> &SendingPolicy {
        &self.sending
    }

    fn sunset_after_days(&self, flow: Flow) -> u32 {
        CampaignConfig::sunset_after_days(self, flow)
    }

    fn experiment(&self) -> &ExperimentConfig {
        &self.experiment
    }
}

fn default_time_zone() -> String {
    "UTC".to_string()
}
