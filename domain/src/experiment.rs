//! Deterministic experiment assignment: holdout or a variant, from a hash of customer, campaign
//! and salt. The same customer always lands in the same arm until the salt changes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reward::RewardSpec;

/// The holdout's variant name in counters and metrics.
pub const HOLDOUT: &str = "holdout";
/// The program holdout's variant name: customers held out of every flow, in the counters of the
/// flow they would have entered (group holdout).
pub const PROGRAM_HOLDOUT: &str = "program-holdout";
/// The program holdout's salt: fixed, so a new `[experiment] salt` reshuffles the flows' arms
/// but never lets the program's held-out customers in (nor takes new ones out).
pub const PROGRAM_SALT: &str = "program";

/// Treated (emailed) or holdout (measured, never emailed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Treated,
    Holdout,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Treated => "treated",
            Group::Holdout => "holdout",
        }
    }
}

/// Where a customer lands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub group: Group,
    pub variant: String,
    /// The variant whose timing (`delay_factor`) sets the enrollment's windows: the variant
    /// itself, or for the holdout a variant picked by the same weights, so the holdout's
    /// observation windows are spread like the treated ones and timing variants do not bias lift.
    #[serde(default)]
    pub timing: String,
}

/// A uniform number in `[0, 1)` from customer, campaign and salt.
pub fn bucket(customer_id: &str, campaign: &str, salt: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(campaign.as_bytes());
    h.update([0]);
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(customer_id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Assigns a customer. Holdout takes the first `holdout_percent` of the unit interval; the rest is
/// split among variants by weight.
pub fn assign(customer_id: &str, campaign: &str, cfg: &ExperimentConfig) -> Assignment {
    let u = bucket(customer_id, campaign, &cfg.salt);
    let holdout = (cfg.holdout_percent / 100.0).clamp(0.0, 1.0);
    if cfg.variants.is_empty() {
        return Assignment {
            group: Group::Holdout,
            variant: HOLDOUT.to_string(),
            timing: String::new(),
        };
    }
    let promoted = cfg.promoted();
    if u < holdout {
        // Where the customer sits inside the holdout band picks the variant timing it shadows
        // (the promoted variant's, when one is: the only timing the treated have).
        let shadow = promoted.unwrap_or_else(|| pick_variant(u / holdout, cfg));
        return Assignment {
            group: Group::Holdout,
            variant: HOLDOUT.to_string(),
            timing: shadow.variant,
        };
    }
    promoted.unwrap_or_else(|| pick_variant((u - holdout) / (1.0 - holdout), cfg))
}

/// Whether the customer is in campaign `campaign`'s program holdout: the first
/// `program_holdout` of the unit interval under [`PROGRAM_SALT`], whatever the flow.
pub fn in_program_holdout(customer_id: &str, campaign: &str, cfg: &ExperimentConfig) -> bool {
    bucket(customer_id, campaign, PROGRAM_SALT) < cfg.program_holdout
}

/// The assignment in a flow of a customer of campaign `campaign`, given `flow`'s own
/// (`a`): a program-holdout customer is held out under [`PROGRAM_HOLDOUT`], shadowing the
/// timing they would have had, so their window is spread like everyone else's.
pub fn program(
    a: Assignment,
    customer_id: &str,
    campaign: &str,
    cfg: &ExperimentConfig,
) -> Assignment {
    if !in_program_holdout(customer_id, campaign, cfg) {
        return a;
    }
    let timing = match a.group {
        Group::Treated => a.variant,
        Group::Holdout => a.timing,
    };
    Assignment {
        group: Group::Holdout,
        variant: PROGRAM_HOLDOUT.to_string(),
        timing,
    }
}

/// Whether an assignment is the program holdout's.
pub fn is_program_holdout(a: &Assignment) -> bool {
    a.variant == PROGRAM_HOLDOUT
}

/// The variant at `v` in `[0, 1)` of the weight-split variants (which must not be empty).
fn pick_variant(v: f64, cfg: &ExperimentConfig) -> Assignment {
    let total: u64 = cfg.variants.iter().map(|v| u64::from(v.weight)).sum();
    let mut acc = 0u64;
    let target = v * total as f64;
    for variant in &cfg.variants {
        acc += u64::from(variant.weight);
        if target < acc as f64 {
            return Assignment {
                group: Group::Treated,
                variant: variant.name.clone(),
                timing: variant.name.clone(),
            };
        }
    }
    let last = cfg.variants[cfg.variants.len() - 1].name.clone();
    Assignment {
        group: Group::Treated,
        variant: last.clone(),
        timing: last,
    }
}

/// The assignment of a customer who must be emailed (told a reason they left over is fixed: a
/// promise, not an experiment): a flow-holdout customer gets the variant it shadows instead. A
/// program-holdout customer stays held out: the program's measure is kept whole, and they are
/// emailed nothing at all, so there is no email to tell them in.
pub fn never_held_out(a: Assignment, cfg: &ExperimentConfig) -> Assignment {
    if a.group == Group::Treated || cfg.variants.is_empty() || is_program_holdout(&a) {
        return a;
    }
    match cfg.variants.iter().find(|v| v.name == a.timing) {
        Some(v) => Assignment {
            group: Group::Treated,
            variant: v.name.clone(),
            timing: v.name.clone(),
        },
        None => pick_variant(0.0, cfg),
    }
}

/// Holdout and variants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Changing the salt reshuffles assignment.
    pub salt: String,
    /// Share of eligible customers who get no email and are measured for lift (0–50).
    pub holdout_percent: f64,
    /// Share (0 to under 0.5) of the campaign's customers held out of every flow for good: the
    /// program holdout, against which the whole program is measured ([`in_program_holdout`]).
    #[serde(default = "default_program_holdout")]
    pub program_holdout: f64,
    /// A variant every treated customer gets (the winner of the variants' comparison): the
    /// flow holdout and the program holdout keep their shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<String>,
    pub variants: Vec<VariantConfig>,
}

/// The program holdout's share when the campaign sets none: small enough to cost little, large
/// enough that a campaign of a few thousand enrollments a quarter can measure the program.
pub const DEFAULT_PROGRAM_HOLDOUT: f64 = 0.05;

fn default_program_holdout() -> f64 {
    DEFAULT_PROGRAM_HOLDOUT
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
    /// This variant's emails carry no reward at all (not the default, not a survey reason's):
    /// the "email alone" arm the uplift model learns what the reward adds from.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_reward: bool,
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

impl ExperimentConfig {
    /// The promoted variant's assignment, when `promote` names a variant.
    fn promoted(&self) -> Option<Assignment> {
        let name = self.promote.as_deref()?;
        let v = self.variants.iter().find(|v| v.name == name)?;
        Some(Assignment {
            group: Group::Treated,
            variant: v.name.clone(),
            timing: v.name.clone(),
        })
    }

    /// The reward a variant gives instead of the default, if it sets one.
    pub fn variant_reward(&self, variant: &str) -> Option<&RewardSpec> {
        self.variants
            .iter()
            .find(|v| v.name == variant)
            .and_then(|v| v.reward.as_ref())
    }

    /// Whether the variant's emails carry no reward (`no_reward = true`).
    pub fn variant_without_reward(&self, variant: &str) -> bool {
        self.variants
            .iter()
            .any(|v| v.name == variant && v.no_reward)
    }

    /// The variant's timing factor (1 when the variant sets none).
    pub fn delay_factor(&self, variant: &str) -> f64 {
        self.variants
            .iter()
            .find(|v| v.name == variant)
            .map_or(1.0, |v| v.delay_factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(holdout: f64) -> ExperimentConfig {
        let v = |name: &str, weight| VariantConfig {
            name: name.into(),
            weight,
            reward: None,
            no_reward: false,
            delay_factor: 1.0,
            copy: None,
        };
        ExperimentConfig {
            salt: "s1".into(),
            holdout_percent: holdout,
            program_holdout: 0.05,
            promote: None,
            variants: vec![v("a", 1), v("b", 3)],
        }
    }

    #[test]
    fn split_is_close_to_the_configured_shares() {
        let c = cfg(10.0);
        let n = 20_000;
        let mut counts = std::collections::HashMap::new();
        for i in 0..n {
            *counts
                .entry(assign(&format!("cust-{i}"), "camp", &c).variant)
                .or_insert(0usize) += 1;
        }
        let share = |k: &str| counts[k] as f64 / n as f64;
        assert!((share(HOLDOUT) - 0.10).abs() < 0.01, "{}", share(HOLDOUT));
        assert!((share("a") - 0.225).abs() < 0.015, "{}", share("a"));
        assert!((share("b") - 0.675).abs() < 0.015, "{}", share("b"));
    }

    #[test]
    fn the_holdout_shadows_the_variants_timing_by_their_weights() {
        let c = cfg(20.0);
        let n = 20_000;
        let mut shadows = std::collections::HashMap::new();
        for i in 0..n {
            let a = assign(&format!("cust-{i}"), "camp", &c);
            match a.group {
                Group::Treated => assert_eq!(a.timing, a.variant),
                Group::Holdout => *shadows.entry(a.timing).or_insert(0usize) += 1,
            }
        }
        let held: usize = shadows.values().sum();
        let share = |k: &str| shadows[k] as f64 / held as f64;
        assert!((share("a") - 0.25).abs() < 0.03, "{}", share("a"));
        assert!((share("b") - 0.75).abs() < 0.03, "{}", share("b"));
    }

    #[test]
    fn a_new_salt_reshuffles() {
        let mut c2 = cfg(50.0);
        c2.salt = "s2".into();
        let moved = (0..1000)
            .filter(|i| {
                let id = format!("c{i}");
                assign(&id, "x", &cfg(50.0)).group != assign(&id, "x", &c2).group
            })
            .count();
        assert!(moved > 300, "{moved}");
    }

    #[test]
    fn the_program_holdout_takes_its_share_of_every_flow_and_keeps_the_flow_s_split() {
        let c = cfg(10.0);
        let n = 20_000;
        let (mut held_out, mut flow_holdout, mut treated) = (0usize, 0usize, 0usize);
        for i in 0..n {
            let id = format!("cust-{i}");
            let own = assign(&id, "camp", &c);
            let a = program(own.clone(), &id, "camp", &c);
            if is_program_holdout(&a) {
                held_out += 1;
                assert_eq!(a.group, Group::Holdout);
                // The window they are watched for is the one they would have had.
                assert_eq!(
                    a.timing,
                    if own.group == Group::Treated {
                        own.variant
                    } else {
                        own.timing
                    }
                );
                // In every flow: the same customer is held out whatever the flow's salt.
                let mut other = c.clone();
                other.salt = "another-flow".into();
                assert!(is_program_holdout(&program(
                    assign(&id, "camp", &other),
                    &id,
                    "camp",
                    &other
                )));
                // A fixed reason is no reason to email them.
                assert!(is_program_holdout(&never_held_out(a, &c)));
            } else if a.group == Group::Holdout {
                flow_holdout += 1;
            } else {
                treated += 1;
            }
        }
        let share = |k: usize, of: usize| k as f64 / of as f64;
        assert!((share(held_out, n) - 0.05).abs() < 0.005, "{held_out}");
        // The flow's own holdout keeps its 10% of the customers left.
        let rest = n - held_out;
        assert!(
            (share(flow_holdout, rest) - 0.10).abs() < 0.01,
            "{flow_holdout}"
        );
        assert_eq!(flow_holdout + treated, rest);
        let mut none = c.clone();
        none.program_holdout = 0.0;
        assert!((0..1000).all(|i| !in_program_holdout(&format!("c{i}"), "camp", &none)));
    }

    #[test]
    fn a_promoted_variant_goes_to_every_treated_customer_and_the_holdout_keeps_its_share() {
        let mut c = cfg(10.0);
        c.promote = Some("a".into());
        let n = 20_000;
        let mut held = 0usize;
        for i in 0..n {
            let a = assign(&format!("cust-{i}"), "camp", &c);
            match a.group {
                Group::Treated => assert_eq!((a.variant.as_str(), a.timing.as_str()), ("a", "a")),
                Group::Holdout => {
                    held += 1;
                    assert_eq!(a.timing, "a");
                }
            }
        }
        assert!((held as f64 / n as f64 - 0.10).abs() < 0.01, "{held}");
        // The same customers are held out as without the promotion.
        let mut plain = c.clone();
        plain.promote = None;
        assert!((0..2000).all(|i| {
            let id = format!("cust-{i}");
            assign(&id, "camp", &c).group == assign(&id, "camp", &plain).group
        }));
    }

    proptest! {
        #[test]
        fn assignment_is_stable(id in "[a-z0-9-]{1,30}", camp in "[a-z]{1,10}") {
            let c = cfg(10.0);
            prop_assert_eq!(assign(&id, &camp, &c), assign(&id, &camp, &c));
            let u = bucket(&id, &camp, "s");
            prop_assert!((0.0..1.0).contains(&u));
        }
    }
}
