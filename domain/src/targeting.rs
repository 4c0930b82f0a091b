//! Whom to email, and whom to reward, by what the email and the reward change: the decision
//! beside [`super::enroll::decide`] for a customer who qualifies for a flow. With
//! `[targeting] mode = "rules"` (the default) the campaign's rules decide, as they always have;
//! with `"uplift"`, once the flow's uplift model has learned from enough finished enrollments,
//! each customer gets the treatment with the highest expected incremental margin: an email with
//! the reward, an email without it, or no email. A share of customers (`exploration`) is still
//! decided by the rules, so the holdout stays randomized and the model keeps learning.

use serde::{Deserialize, Serialize};

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
/// attribution window with an email and the reward, with an email alone, and with no email.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Chances {
    pub with_reward: f64,
    pub email_only: f64,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    /// What the campaign's rules give: the email with the sequence's reward.
    AsTheRules,
    EmailWithReward,
    EmailWithoutReward,
    NoEmail,
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
    /// The expected incremental margin of each treatment, in the campaign's currency.
    Margin { with_reward: f64, email_only: f64 },
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
    let with_reward =
        (c.with_reward - c.no_email) * margin - c.with_reward * facts.reward_cost - cfg.email_cost;
    let email_only = (c.email_only - c.no_email) * margin - cfg.email_cost;
    let treatment = if with_reward <= 0.0 && email_only <= 0.0 {
        Treatment::NoEmail
    } else if with_reward > email_only {
        Treatment::EmailWithReward
    } else {
        Treatment::EmailWithoutReward
    };
    Decision {
        treatment,
        why: Why::Margin {
            with_reward,
            email_only,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                with_reward,
                email_only,
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
        assert!((with_reward - (0.30 * 40.0 - 0.35 * 10.0 - 0.01)).abs() < 1e-9);
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
}
