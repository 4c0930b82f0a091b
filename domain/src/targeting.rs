//! Whom to email, and whom to reward, by what the email and the reward change: the decision
//! beside [`super::enroll::decide`] for a customer who qualifies for a flow. With
//! `[targeting] mode = "rules"` (the default) the campaign's rules decide, as they always have;
//! with `"uplift"`, once the flow's uplift model has learned from enough finished enrollments,
//! each customer gets the treatment with the highest expected incremental margin: an email with
//! the reward, an email without it, or no email. A share of customers (`exploration`) is still
//! decided by the rules, so the holdout stays randomized and the model keeps learning.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::Profile;
use crate::uplift::boost::{self, Booster, Loss};
use crate::uplift::features::{self, Column, Feature};
use crate::uplift::{Params, UpliftError, MIN_PER_GROUP};

/// Who decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The campaign's rules: everyone who qualifies is emailed, with the sequence's rewards.
    #[default]
    Rules,
    /// The uplift model, by expected incremental margin.
    Uplift,
}

/// `[targeting]` in the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetingConfig {
    #[serde(default)]
    pub mode: Mode,
    /// Share of an order's value kept as profit (0.35 = 35%).
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// What one email costs, in the campaign's currency.
    #[serde(default)]
    pub email_cost: f64,
    /// Finished enrollments each group (treated and holdout) needs before the model decides.
    #[serde(default = "default_min_enrollments")]
    pub min_enrollments: usize,
    /// Share of customers still decided by the rules, at random.
    #[serde(default = "default_exploration")]
    pub exploration: f64,
}

fn default_margin() -> f64 {
    0.3
}
fn default_min_enrollments() -> usize {
    1000
}
fn default_exploration() -> f64 {
    0.1
}

impl Default for TargetingConfig {
    fn default() -> Self {
        TargetingConfig {
            mode: Mode::Rules,
            margin: default_margin(),
            email_cost: 0.0,
            min_enrollments: default_min_enrollments(),
            exploration: default_exploration(),
        }
    }
}

/// What the flow's uplift model knows about a customer: their chance of ordering within the
/// attribution window with an email and the reward, with an email alone, and with no email. A
/// treatment the flow never tried at random (no variant without a reward, say) has no chance:
/// the decision does not choose it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Chances {
    pub with_reward: Option<f64>,
    pub email_only: Option<f64>,
    pub no_email: f64,
}

/// The customer and the flow's model, as the decision needs them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    /// Finished enrollments the flow's model learned from: treated, holdout.
    pub learned_from: (usize, usize),
    /// The model's chances for this customer (`None`: no model yet).
    pub chances: Option<Chances>,
    /// The value of the customer's next order (their usual order), in the campaign's currency.
    pub order_value: f64,
    /// What the reward costs when it is used, in the campaign's currency.
    pub reward_cost: f64,
    /// A uniform draw in [0, 1), passed in: below `exploration` the rules decide.
    pub draw: f64,
}

/// What the customer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    /// What the campaign's rules give: the email with the sequence's reward.
    AsTheRules,
    EmailWithReward,
    EmailWithoutReward,
    NoEmail,
}

impl Treatment {
    pub fn as_str(self) -> &'static str {
        match self {
            Treatment::AsTheRules => "as_the_rules",
            Treatment::EmailWithReward => "email_with_reward",
            Treatment::EmailWithoutReward => "email_without_reward",
            Treatment::NoEmail => "no_email",
        }
    }
}

/// Why, in words `plan` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Why {
    /// `mode = "rules"`.
    RulesMode,
    /// The model has not learned from enough finished enrollments yet.
    StillLearning {
        treated: usize,
        holdout: usize,
        needed: usize,
    },
    /// In the exploration share: decided by the rules at random.
    Exploring,
    /// The expected incremental margin of each treatment the flow has tried, in the campaign's
    /// currency.
    Margin {
        with_reward: Option<f64>,
        email_only: Option<f64>,
    },
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub treatment: Treatment,
    pub why: Why,
}

/// Decides what a customer who qualifies for a flow gets.
pub fn decide(cfg: &TargetingConfig, facts: &Facts) -> Decision {
    let rules = |why| Decision {
        treatment: Treatment::AsTheRules,
        why,
    };
    if cfg.mode == Mode::Rules {
        return rules(Why::RulesMode);
    }
    let (treated, holdout) = facts.learned_from;
    let Some(c) = facts
        .chances
        .filter(|_| treated.min(holdout) >= cfg.min_enrollments)
    else {
        return rules(Why::StillLearning {
            treated,
            holdout,
            needed: cfg.min_enrollments,
        });
    };
    if facts.draw < cfg.exploration {
        return rules(Why::Exploring);
    }
    let margin = cfg.margin * facts.order_value;
    // The reward is paid on every order that uses it, incremental or not.
    let with_reward = c
        .with_reward
        .map(|p| (p - c.no_email) * margin - p * facts.reward_cost - cfg.email_cost);
    let email_only = c
        .email_only
        .map(|p| (p - c.no_email) * margin - cfg.email_cost);
    let best = |x: Option<f64>| x.filter(|v| *v > 0.0);
    let treatment = match (best(with_reward), best(email_only)) {
        (None, None) => Treatment::NoEmail,
        (Some(r), Some(e)) if e >= r => Treatment::EmailWithoutReward,
        (Some(_), _) => Treatment::EmailWithReward,
        (None, Some(_)) => Treatment::EmailWithoutReward,
    };
    Decision {
        treatment,
        why: Why::Margin {
            with_reward,
            email_only,
        },
    }
}

pub use crate::customer::{Arm, EnrolledOn, Example, Finished, Snapshot, FEATURES};

/// What the fitted customer model says of the customer, as the features take it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelView {
    pub p_active: f64,
    pub p_order: f64,
    /// Expected spend over the next 365 days, in minor units.
    pub predicted_value: f64,
}

/// The customer's features at `now` (`model`: the fitted model's view, when there is one).
pub fn snapshot(
    profile: &Profile,
    model: Option<ModelView>,
    segment: Option<&str>,
    now: DateTime<Utc>,
) -> Snapshot {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    let days = |t: DateTime<Utc>| format!("{}", (now - t).num_days().max(0));
    put("days_quiet", profile.last_order_at.map(days));
    put("orders", Some(profile.order_count.to_string()));
    put("lifetime_value", Some(profile.lifetime_value.0.to_string()));
    let outlook = model.as_ref();
    put(
        "predicted_value",
        outlook.map(|o| format!("{:.0}", o.predicted_value)),
    );
    put("p_active", outlook.map(|o| format!("{:.3}", o.p_active)));
    put("p_order", outlook.map(|o| format!("{:.3}", o.p_order)));
    put("tenure_days", profile.first_order_at.map(days));
    put(
        "category",
        profile
            .orders
            .last()
            .and_then(|o| o.category.clone())
            .map(|c| c.to_lowercase()),
    );
    put("segment", segment.map(str::to_string));
    put("locale", profile.locale.clone());
    put("opens", Some(profile.emails_opened.to_string()));
    put("clicks", Some(profile.emails_clicked.to_string()));
    put(
        "survey_reason",
        profile.survey_reason.map(|r| r.as_str().to_string()),
    );
    Snapshot(m)
}

fn columns(snapshots: &[&Snapshot]) -> Vec<Column> {
    FEATURES
        .iter()
        .map(|name| Column {
            name: (*name).to_string(),
            values: snapshots.iter().map(|s| s.0.get(*name).cloned()).collect(),
        })
        .collect()
}

/// Whether a treatment was decided by the rules, whatever the customer's features (`None`: an
/// enrollment from before targeting, decided by the rules too): only those are a randomized
/// comparison with the holdout, and only they are learned from.
pub fn randomized(treatment: Option<Treatment>) -> bool {
    treatment.is_none_or(|t| t == Treatment::AsTheRules)
}

/// A flow's learned uplift model: one booster per treatment it has examples enough of (at least
/// [`MIN_PER_GROUP`]), each the chance of ordering within the attribution window under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetingModel {
    pub campaign: String,
    /// The flow's name (`win-back`, `at-risk`, ...).
    pub flow: String,
    pub fitted_at: DateTime<Utc>,
    /// Finished enrollments learned from: treated (emailed, as the rules say), holdout.
    pub learned_from: (usize, usize),
    pub features: Vec<Feature>,
    pub no_email: Booster,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_reward: Option<Booster>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_only: Option<Booster>,
    /// Optimistic-concurrency version; 0 means "not stored yet".
    #[serde(default)]
    pub version: u64,
}

/// Learns `flow`'s model from its finished enrollments (a two-model estimate per treatment with
/// gradient-boosted trees, as `winback uplift fit`). Needs [`MIN_PER_GROUP`] held-out and as many
/// emailed examples.
pub fn learn(
    campaign: &str,
    flow: &str,
    examples: &[Example],
    now: DateTime<Utc>,
) -> Result<TargetingModel, UpliftError> {
    let count = |a: Arm| examples.iter().filter(|e| e.arm == a).count();
    let holdout = count(Arm::NoEmail);
    let treated = examples.len() - holdout;
    for (group, count) in [("treated", treated), ("holdout", holdout)] {
        if count < MIN_PER_GROUP {
            return Err(UpliftError::OneSided { group, count });
        }
    }
    let snaps: Vec<&Snapshot> = examples.iter().map(|e| &e.features).collect();
    let cols = columns(&snaps);
    let features = features::learn(&cols);
    let x = features::encode(&features, &cols)?;
    let y: Vec<f64> = examples
        .iter()
        .map(|e| f64::from(u8::from(e.ordered)))
        .collect();
    let booster = |arm: Arm| {
        let rows: Vec<usize> = (0..examples.len())
            .filter(|&r| examples[r].arm == arm)
            .collect();
        let params = Params {
            // Leaves of at least 5% of the arm (20 to 200 customers), so a small flow still splits.
            min_leaf: (rows.len() / 20).clamp(MIN_PER_GROUP, 200),
            ..Params::default()
        };
        (rows.len() >= MIN_PER_GROUP).then(|| boost::fit(&x, &rows, &y, Loss::Logistic, &params))
    };
    Ok(TargetingModel {
        campaign: campaign.to_string(),
        flow: flow.to_string(),
        fitted_at: now,
        learned_from: (treated, holdout),
        no_email: booster(Arm::NoEmail).expect("enough held out"),
        with_reward: booster(Arm::WithReward),
        email_only: booster(Arm::EmailOnly),
        features,
        version: 0,
    })
}

impl TargetingModel {
    /// The customer's chances under each treatment the model learned.
    pub fn chances(&self, s: &Snapshot) -> Result<Chances, UpliftError> {
        let x = features::encode(&self.features, &columns(&[s]))?;
        Ok(Chances {
            with_reward: self.with_reward.as_ref().map(|b| b.predict(&x, 0)),
            email_only: self.email_only.as_ref().map(|b| b.predict(&x, 0)),
            no_email: self.no_email.predict(&x, 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn uplift_mode() -> TargetingConfig {
        TargetingConfig {
            mode: Mode::Uplift,
            margin: 0.5,
            email_cost: 0.01,
            min_enrollments: 1000,
            exploration: 0.1,
        }
    }

    fn facts(with_reward: f64, email_only: f64, no_email: f64) -> Facts {
        Facts {
            learned_from: (5000, 1200),
            chances: Some(Chances {
                with_reward: Some(with_reward),
                email_only: Some(email_only),
                no_email,
            }),
            order_value: 80.0,
            reward_cost: 10.0,
            draw: 0.5,
        }
    }

    #[test]
    fn the_rules_decide_by_default() {
        let d = decide(&TargetingConfig::default(), &facts(0.9, 0.9, 0.9));
        assert_eq!(d.treatment, Treatment::AsTheRules);
        assert_eq!(d.why, Why::RulesMode);
    }

    #[test]
    fn a_sure_thing_gets_no_reward_and_a_lost_cause_no_email() {
        // Orders 60% of the time whatever happens: the reward only costs.
        let sure = decide(&uplift_mode(), &facts(0.62, 0.61, 0.60));
        assert_eq!(sure.treatment, Treatment::EmailWithoutReward, "{sure:?}");
        let lost = decide(&uplift_mode(), &facts(0.02, 0.02, 0.02));
        assert_eq!(lost.treatment, Treatment::NoEmail, "{lost:?}");
        // An email drives them away.
        let do_not_disturb = decide(&uplift_mode(), &facts(0.2, 0.25, 0.4));
        assert_eq!(do_not_disturb.treatment, Treatment::NoEmail);
    }

    #[test]
    fn a_persuadable_the_reward_moves_gets_it() {
        // 5% → 35% with the reward (+0.30 × 40 = 12 in margin, 3.50 in reward cost).
        let d = decide(&uplift_mode(), &facts(0.35, 0.08, 0.05));
        assert_eq!(d.treatment, Treatment::EmailWithReward, "{d:?}");
        let Why::Margin { with_reward, .. } = d.why else {
            panic!("{d:?}");
        };
        assert!((with_reward.unwrap() - (0.30 * 40.0 - 0.35 * 10.0 - 0.01)).abs() < 1e-9);
    }

    #[test]
    fn until_each_group_has_enough_finished_enrollments_the_rules_decide_and_say_why() {
        let mut f = facts(0.35, 0.08, 0.05);
        f.learned_from = (5000, 999);
        assert_eq!(
            decide(&uplift_mode(), &f).why,
            Why::StillLearning {
                treated: 5000,
                holdout: 999,
                needed: 1000
            }
        );
        f.learned_from = (5000, 1000);
        f.chances = None;
        assert_eq!(decide(&uplift_mode(), &f).treatment, Treatment::AsTheRules);
    }

    #[test]
    fn the_exploration_share_stays_with_the_rules() {
        let mut f = facts(0.02, 0.02, 0.02);
        f.draw = 0.05;
        assert_eq!(decide(&uplift_mode(), &f).why, Why::Exploring);
        f.draw = 0.1;
        assert_eq!(decide(&uplift_mode(), &f).treatment, Treatment::NoEmail);
    }

    /// A flow's finished enrollments: customers in category "gifts" are persuadable (5% order
    /// unmailed, 45% with the reward, 10% with an email alone), "coffee" customers are sure
    /// things (60% order whatever happens). Outcomes from a fixed sequence, no randomness.
    fn examples() -> Vec<Example> {
        let mut out = Vec::new();
        for i in 0..1200usize {
            let gifts = i.is_multiple_of(2);
            let arm = match i % 6 {
                0 | 1 => Arm::NoEmail,
                2 | 3 => Arm::WithReward,
                _ => Arm::EmailOnly,
            };
            let rate = match (gifts, arm) {
                (true, Arm::NoEmail) => 0.05,
                (true, Arm::WithReward) => 0.45,
                (true, Arm::EmailOnly) => 0.10,
                (false, _) => 0.60,
            };
            // A low-discrepancy draw in [0, 1): the golden-ratio sequence.
            let u = (i as f64 * 0.618_033_988_749_895).fract();
            let mut f = BTreeMap::new();
            f.insert(
                "category".to_string(),
                if gifts { "gifts" } else { "coffee" }.to_string(),
            );
            f.insert("orders".to_string(), ((i % 5) + 1).to_string());
            out.push(Example {
                features: Snapshot(f),
                arm,
                ordered: u < rate,
            });
        }
        out
    }

    fn snap(category: &str) -> Snapshot {
        let mut f = BTreeMap::new();
        f.insert("category".to_string(), category.to_string());
        f.insert("orders".to_string(), "3".to_string());
        Snapshot(f)
    }

    #[test]
    fn the_learned_model_rewards_the_persuadable_and_spares_the_sure_thing() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let m = learn("example", "win-back", &examples(), at).unwrap();
        assert_eq!(m.learned_from, (800, 400));
        assert!(m.with_reward.is_some() && m.email_only.is_some());
        let gifts = m.chances(&snap("gifts")).unwrap();
        let coffee = m.chances(&snap("coffee")).unwrap();
        assert!(
            gifts.with_reward.unwrap() - gifts.no_email > 0.25,
            "{gifts:?}"
        );
        assert!(
            (coffee.with_reward.unwrap() - coffee.no_email).abs() < 0.1,
            "{coffee:?}"
        );
        let cfg = TargetingConfig {
            mode: Mode::Uplift,
            margin: 0.4,
            email_cost: 0.01,
            min_enrollments: 300,
            exploration: 0.0,
        };
        let facts = |c: Chances| Facts {
            learned_from: m.learned_from,
            chances: Some(c),
            order_value: 50.0,
            reward_cost: 10.0,
            draw: 0.5,
        };
        assert_eq!(
            decide(&cfg, &facts(gifts)).treatment,
            Treatment::EmailWithReward
        );
        // The sure thing orders anyway: the reward would only cost, the email changes nothing.
        let sure = decide(&cfg, &facts(coffee));
        assert_ne!(sure.treatment, Treatment::EmailWithReward, "{sure:?}");
        // A category the model never saw is scored in its "other" bin, not refused.
        assert!(m.chances(&snap("books")).is_ok());
        // A snapshot is stored as a list in FEATURES' order and read back whole.
        let json = serde_json::to_string(&snap("gifts")).unwrap();
        assert_eq!(json, r#"[null,"3",null,null,null,null,null,"gifts"]"#);
        assert_eq!(
            serde_json::from_str::<Snapshot>(&json).unwrap(),
            snap("gifts")
        );
        // Stored and read back, it scores the same.
        let back: TargetingModel =
            serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.chances(&snap("gifts")).unwrap(), gifts);
    }

    #[test]
    fn a_flow_with_too_few_held_out_examples_learns_nothing() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let few: Vec<Example> = examples()
            .into_iter()
            .filter(|e| e.arm != Arm::NoEmail)
            .chain(
                examples()
                    .into_iter()
                    .filter(|e| e.arm == Arm::NoEmail)
                    .take(19),
            )
            .collect();
        assert_eq!(
            learn("example", "win-back", &few, at),
            Err(UpliftError::OneSided {
                group: "holdout",
                count: 19
            })
        );
    }

    #[test]
    fn a_flow_that_never_tried_an_email_alone_chooses_between_the_reward_and_no_email() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let no_email_only: Vec<Example> = examples()
            .into_iter()
            .filter(|e| e.arm != Arm::EmailOnly)
            .collect();
        let m = learn("example", "win-back", &no_email_only, at).unwrap();
        assert!(m.email_only.is_none());
        let c = m.chances(&snap("coffee")).unwrap();
        assert_eq!(c.email_only, None);
        let cfg = TargetingConfig {
            mode: Mode::Uplift,
            min_enrollments: 1,
            exploration: 0.0,
            ..TargetingConfig::default()
        };
        let d = decide(
            &cfg,
            &Facts {
                learned_from: m.learned_from,
                chances: Some(c),
                order_value: 50.0,
                reward_cost: 10.0,
                draw: 0.5,
            },
        );
        assert_eq!(d.treatment, Treatment::NoEmail, "{d:?}");
        assert!(matches!(
            d.why,
            Why::Margin {
                email_only: None,
                ..
            }
        ));
    }
}
