//! The campaign file's shape: what a marketer writes in `shared/campaigns/<name>/campaign.toml`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::hygiene::HygienePolicy;
use crate::domain::money::{ExchangeRates, Money, Valuation};
use crate::domain::reward::RewardSpec;
use crate::domain::sequence::{ActivityKind, Flow};
use crate::domain::survey::Reason;

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

/// The shop's checkout link that applies a code: `[checkout]` in the campaign file. See
/// [`crate::domain::reward::checkout_url`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckoutConfig {
    pub platform: CheckoutPlatform,
    /// `generic`: the link with `{code}` where the code goes (required). `shopify`,
    /// `woocommerce`: the shop's base URL when it is not `shop_url`.
    #[serde(default)]
    pub url: Option<String>,
}

/// Which platform's link applies a code.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutPlatform {
    /// `<base>/discount/{code}` (Shopify's shareable discount link).
    Shopify,
    /// `<base>/?coupon={code}`.
    Woocommerce,
    /// The `url` template as written.
    Generic,
}

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
/// [`crate::domain::outlook::likely_to_return_alone`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AtRiskFlow {
    /// The sequence, in order; `reward = true` only on the last step.
    pub steps: Vec<StepConfig>,
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
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

/// How each customer's own lapse threshold is found. See [`crate::domain::lapse`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LapsePolicy {
    /// Threshold = median gap between the customer's orders × this.
    pub multiplier: f64,
    /// Days used for customers with one order, and as the prior the others are pulled toward.
    pub default_days: f64,
    /// How many orders' worth of weight the default carries (0 = trust the customer's own rhythm fully).
    pub prior_weight: f64,
    pub min_days: f64,
    pub max_days: f64,
    /// Share of the threshold after which a quiet customer counts as at risk.
    #[serde(default = "default_at_risk_fraction")]
    pub at_risk_fraction: f64,
    /// Default days per product category (e.g. Christmas decorations: long; groceries: short).
    #[serde(default)]
    pub category_days: BTreeMap<String, f64>,
    /// How the lapse moment is found: `mbgnbd` (the default) or `bgnbd`, the fitted customer model
    /// of [`crate::domain::model`], or `threshold`, the median-gap rule above.
    #[serde(default)]
    pub model: LapseModel,
    /// With a fitted model: the window the chance of an order is judged over (days).
    #[serde(default = "default_horizon_days")]
    pub horizon_days: f64,
    /// With a fitted model: lapsed once the chance of an order within `horizon_days` falls below
    /// this.
    #[serde(default = "default_p_order_threshold")]
    pub p_order_threshold: f64,
    /// With a fitted model: at risk once that chance falls below this (above the threshold).
    #[serde(default = "default_at_risk_p_order")]
    pub at_risk_p_order: f64,
    /// A visit to the terms or cancellation page makes a customer at risk for this many days.
    #[serde(default = "default_page_view_signal_days")]
    pub page_view_signal_days: f64,
    /// A subscription renewal due within this many days makes a customer at risk.
    #[serde(default = "default_renewal_notice_days")]
    pub renewal_notice_days: f64,
    /// The campaign's fitted parameters (`winback backtest` and `winback import` print this block);
    /// without it, the shipped prior.
    #[serde(default)]
    pub fitted: Option<FittedModel>,
}

/// `[lapse.fitted]`: purchase and drop-out parameters (alpha in days) and, optionally, spend.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FittedModel {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    #[serde(default)]
    pub spend_p: Option<f64>,
    #[serde(default)]
    pub spend_q: Option<f64>,
    /// Minor currency units.
    #[serde(default)]
    pub spend_gamma: Option<f64>,
}

/// The `[lapse] model` setting.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LapseModel {
    #[default]
    Mbgnbd,
    Bgnbd,
    Threshold,
}

impl LapsePolicy {
    /// The windows of the early signals (see [`crate::domain::engagement`]).
    pub fn signal_windows(&self) -> crate::domain::engagement::SignalWindows {
        crate::domain::engagement::SignalWindows {
            page_view_days: self.page_view_signal_days,
            renewal_notice_days: self.renewal_notice_days,
        }
    }

    /// The fitted model's variant (MBG/NBD for the `threshold` rule, whose campaigns still see it
    /// in `plan` and `backtest`).
    pub fn model_variant(&self) -> crate::domain::model::Variant {
        match self.model {
            LapseModel::Bgnbd => crate::domain::model::Variant::Bgnbd,
            LapseModel::Mbgnbd | LapseModel::Threshold => crate::domain::model::Variant::Mbgnbd,
        }
    }

    /// The policy with the campaign's stored fit (see [`crate::domain::model::CampaignFit`]): a
    /// `[lapse.fitted]` block in the campaign file pins the parameters and wins; else the stored
    /// fit; else (no stored fit) the shipped prior.
    pub fn with_stored_fit(&self, stored: Option<&crate::domain::model::Fit>) -> LapsePolicy {
        let mut policy = self.clone();
        if policy.fitted.is_none() {
            policy.fitted = stored.map(|f| FittedModel {
                r: f.params.r,
                alpha: f.params.alpha,
                a: f.params.a,
                b: f.params.b,
                spend_p: Some(f.spend.p),
                spend_q: Some(f.spend.q),
                spend_gamma: Some(f.spend.gamma),
            });
        }
        policy
    }

    /// The campaign's model: its `[lapse.fitted]` parameters, else the shipped prior.
    pub fn fitted_model(&self) -> crate::domain::model::Fit {
        use crate::domain::model::{prior, Fit, Params, SpendParams};
        let variant = self.model_variant();
        match &self.fitted {
            Some(f) => Fit::from_params(
                variant,
                Params {
                    r: f.r,
                    alpha: f.alpha,
                    a: f.a,
                    b: f.b,
                },
                match (f.spend_p, f.spend_q, f.spend_gamma) {
                    (Some(p), Some(q), Some(gamma)) => Some(SpendParams { p, q, gamma }),
                    _ => None,
                },
            ),
            None => Fit::from_params(variant, prior(variant), None),
        }
    }
}

fn default_at_risk_fraction() -> f64 {
    0.75
}

fn default_horizon_days() -> f64 {
    90.0
}

fn default_p_order_threshold() -> f64 {
    0.25
}

fn default_at_risk_p_order() -> f64 {
    0.4
}

fn default_page_view_signal_days() -> f64 {
    30.0
}

fn default_renewal_notice_days() -> f64 {
    14.0
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
    /// Which addresses are kept out before the first send (role addresses, disposable domains):
    /// `[eligibility.hygiene]`. See [`crate::domain::hygiene`].
    #[serde(default)]
    pub hygiene: HygienePolicy,
    /// Days a customer's emails pause after a follow-up opens (a detractor, a bad experience)
    /// unless a person closes it sooner.
    #[serde(default = "default_follow_up_pause_days")]
    pub follow_up_pause_days: u32,
}

fn default_follow_up_pause_days() -> u32 {
    14
}

fn default_sunset_days() -> u32 {
    180
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

fn default_best_hour() -> bool {
    true
}

fn default_link_validity() -> u32 {
    60
}

fn default_max_steps() -> u8 {
    3
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

/// Which reward is given.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RewardPolicy {
    /// The reward when nothing more specific applies.
    pub default: RewardSpec,
    /// Per survey reason (too expensive → discount, hard to understand → consultation, …).
    #[serde(default)]
    pub by_reason: BTreeMap<Reason, RewardSpec>,
}

/// Holdout and variants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Changing the salt reshuffles assignment.
    pub salt: String,
    /// Share of eligible customers who get no email and are measured for lift (0–50).
    pub holdout_percent: f64,
    pub variants: Vec<VariantConfig>,
}

/// One arm of the experiment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    pub name: String,
    pub weight: u32,
    /// Replaces the default reward for this variant.
    #[serde(default)]
    pub reward: Option<RewardSpec>,
    /// Multiplies every step delay (timing experiments).
    #[serde(default = "one")]
    pub delay_factor: f64,
    /// Subject line prefix or copy tweak available to templates as `variant.copy`.
    #[serde(default)]
    pub copy: Option<String>,
}

fn one() -> f64 {
    1.0
}
