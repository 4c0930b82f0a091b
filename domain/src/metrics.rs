//! Counter names and the arithmetic of reactivation: rates, confidence intervals, lift.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::experiment::Group;

/// Names of the per-cohort counters.
pub mod counter {
    pub const ENROLLED: &str = "enrolled";
    pub const SENT: &str = "sent";
    pub const DELIVERED: &str = "delivered";
    pub const OPENED: &str = "opened";
    pub const CLICKED: &str = "clicked";
    pub const ANSWERED: &str = "answered";
    pub const REACTIVATED: &str = "reactivated";
    /// Revenue from attributed orders, minor units.
    pub const REVENUE: &str = "revenue_minor";
    /// Revenue from later orders of reactivated customers, minor units.
    pub const REVENUE_AFTER: &str = "revenue_after_minor";

    /// The name of money counter `base` for an amount in `currency`: `base` itself in the
    /// campaign's currency, `base#SEK` in another, so that amounts in different currencies are
    /// never added together.
    pub fn in_currency(base: &str, currency: &str, campaign_currency: &str) -> String {
        if currency.eq_ignore_ascii_case(campaign_currency) {
            base.to_string()
        } else {
            format!("{base}#{}", currency.to_ascii_uppercase())
        }
    }
    /// Revenue refunded or cancelled of counted orders, minor units (already taken off
    /// `revenue_minor` and `revenue_after_minor`).
    pub const REFUNDED: &str = "refunded_minor";
    /// Wins taken back: every order counted for them was refunded or cancelled within the
    /// attribution window (already taken off `reactivated`).
    pub const WINS_REFUNDED: &str = "wins_refunded";
    pub const REDEEMED: &str = "redeemed";
    /// Money given away by redeemed rewards, minor units.
    pub const REWARD_COST: &str = "reward_cost_minor";
    pub const UNSUBSCRIBED: &str = "unsubscribed";
    pub const FEWER_EMAILS: &str = "fewer_emails";
    /// Steps passed over because the customer chose fewer emails.
    pub const SKIPPED_FEWER_EMAILS: &str = "skipped_fewer_emails";
    pub const BOUNCED: &str = "bounced";
    pub const COMPLAINED: &str = "complained";
    pub const SUNSET: &str = "sunset";
    pub const FOLLOW_UPS: &str = "follow_ups";
    pub const FOLLOW_UPS_CLOSED: &str = "follow_ups_closed";
    /// Reactivated customers who ordered again 90+ days after reactivation.
    pub const STILL_ACTIVE_90D: &str = "still_active_90d";
    /// Enrollments not won back within the attribution window whose first order came after it,
    /// within [`crate::figures::PULLED_FORWARD_DAYS`] more; counted once, on the day the
    /// enrollment began (so a cohort's row says what its enrollments did over the horizon).
    pub const ORDERED_LATE: &str = "ordered_late";

    /// `sent_step_<n>`.
    pub fn sent_step(step: u8) -> String {
        format!("sent_step_{step}")
    }

    /// `reactivated_after_step_<n>`: won back after step n was the latest email.
    pub fn reactivated_after_step(step: u8) -> String {
        format!("reactivated_after_step_{step}")
    }

    /// `reason_<reason>`.
    pub fn reason(reason: crate::survey::Reason) -> String {
        format!("reason_{}", reason.as_str())
    }

    /// `reactivated_reason_<reason>`: won back after answering the survey with this reason.
    pub fn reactivated_reason(reason: crate::survey::Reason) -> String {
        format!("reactivated_reason_{}", reason.as_str())
    }

    /// `nps_<class>`.
    pub fn nps(class: crate::survey::NpsClass) -> String {
        let c = match class {
            crate::survey::NpsClass::Detractor => "detractor",
            crate::survey::NpsClass::Passive => "passive",
            crate::survey::NpsClass::Promoter => "promoter",
        };
        format!("nps_{c}")
    }
}

/// Which cohort a counter belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CohortKey {
    pub campaign: String,
    pub variant: String,
    pub group: Group,
}

/// Counters of one cohort (total, or one day's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts(pub BTreeMap<String, i64>);

impl Counts {
    pub fn get(&self, name: &str) -> i64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    pub fn add(&mut self, name: &str, delta: i64) {
        *self.0.entry(name.to_string()).or_insert(0) += delta;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (k, v) in &other.0 {
            self.add(k, *v);
        }
    }

    /// The amounts of money counter `base` (`revenue_minor`, …) held in other currencies than
    /// the campaign's ([`counter::in_currency`]), by currency.
    pub fn other_currencies(&self, base: &str) -> BTreeMap<String, i64> {
        let prefix = format!("{base}#");
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), *v)))
            .filter(|(_, v)| *v != 0)
            .collect()
    }

    /// Reactivated / enrolled.
    pub fn reactivation_rate(&self) -> Rate {
        Rate::new(self.get(counter::REACTIVATED), self.get(counter::ENROLLED))
    }
}

/// A stored counter row: the cohort, the day (None for the running total), the counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterRow {
    pub key: CohortKey,
    pub day: Option<NaiveDate>,
    pub counts: Counts,
}

/// Stored rows with each cohort's running total (day `None`) made from them: the sum of its day
/// rows and of any day-less row. Stores write day rows only, one write per count, and call this
/// when read. Sorted by cohort, the total first.
pub fn with_totals(stored: Vec<CounterRow>) -> Vec<CounterRow> {
    let mut totals: BTreeMap<CohortKey, Counts> = BTreeMap::new();
    let mut rows = Vec::with_capacity(stored.len());
    for row in stored {
        totals
            .entry(row.key.clone())
            .or_default()
            .merge(&row.counts);
        if row.day.is_some() {
            rows.push(row);
        }
    }
    rows.extend(totals.into_iter().map(|(key, counts)| CounterRow {
        key,
        day: None,
        counts,
    }));
    rows.sort_by(|a, b| (&a.key, a.day).cmp(&(&b.key, b.day)));
    rows
}

/// A proportion with its Wilson 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub successes: i64,
    pub trials: i64,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// The normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

impl Rate {
    pub fn new(successes: i64, trials: i64) -> Rate {
        let (low, high) = wilson(successes, trials);
        Rate {
            successes,
            trials,
            value: if trials > 0 {
                successes as f64 / trials as f64
            } else {
                0.0
            },
            low,
            high,
        }
    }
}

/// Wilson score interval at 95%. `(0, 0)` with no trials.
pub fn wilson(successes: i64, trials: i64) -> (f64, f64) {
    if trials <= 0 {
        return (0.0, 0.0);
    }
    let n = trials as f64;
    let p = (successes.clamp(0, trials)) as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * ((p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()) / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Treated rate minus holdout rate, with a 95% interval (normal approximation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lift {
    /// Difference in rates (0.05 = five percentage points).
    pub value: f64,
    pub low: f64,
    pub high: f64,
    /// Customers who came back because of the campaign: lift × treated enrolled.
    pub incremental_customers: f64,
}

pub fn lift(treated: Rate, holdout: Rate) -> Lift {
    let var = |r: Rate| {
        if r.trials > 0 {
            r.value * (1.0 - r.value) / r.trials as f64
        } else {
            0.0
        }
    };
    let d = treated.value - holdout.value;
    let se = (var(treated) + var(holdout)).sqrt();
    Lift {
        value: d,
        low: d - Z95 * se,
        high: d + Z95 * se,
        incremental_customers: d * treated.trials as f64,
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Two variants' reactivation rates compared: `first` minus `second`, with an interval whose
/// level is 95% for all the pairs of the report together (Bonferroni: each pair's interval is
/// at 1 − 0.05 / pairs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pairwise {
    pub first: String,
    pub second: String,
    /// Difference in rates (0.02 = two percentage points).
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    pub verdict: Verdict,
}

/// What a comparison of two variants says.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Verdict {
    /// The interval is clear of zero: `winner` brings back more customers.
    Wins { winner: String },
    /// Too close to call. `more_per_variant`: how many more enrolled customers each of the two
    /// would need for a difference of the size seen to be told apart (80% power), `None` when
    /// they came back at exactly the same rate.
    TooClose { more_per_variant: Option<u64> },
}

/// Every pair of `variants` (name and reactivation rate) compared.
pub fn compare_variants(variants: &[(String, Rate)]) -> Vec<Pairwise> {
    let pairs = variants.len() * variants.len().saturating_sub(1) / 2;
    let z = normal_quantile(1.0 - 0.025 / pairs.max(1) as f64);
    let z_power = normal_quantile(0.8);
    let var = |r: &Rate| r.value * (1.0 - r.value);
    let mut out = Vec::with_capacity(pairs);
    for (i, (a, ra)) in variants.iter().enumerate() {
        for (b, rb) in &variants[i + 1..] {
            let d = ra.value - rb.value;
            let se = if ra.trials > 0 && rb.trials > 0 {
                (var(ra) / ra.trials as f64 + var(rb) / rb.trials as f64).sqrt()
            } else {
                f64::INFINITY
            };
            let (low, high) = (d - z * se, d + z * se);
            let verdict = if low > 0.0 {
                Verdict::Wins { winner: a.clone() }
            } else if high < 0.0 {
                Verdict::Wins { winner: b.clone() }
            } else {
                let needed = (d != 0.0)
                    .then(|| ((z + z_power).powi(2) * (var(ra) + var(rb)) / (d * d)).ceil() as u64);
                let have = ra.trials.min(rb.trials).max(0) as u64;
                Verdict::TooClose {
                    more_per_variant: needed.map(|n| n.saturating_sub(have).max(1)),
                }
            };
            out.push(Pairwise {
                first: a.clone(),
                second: b.clone(),
                difference: d,
                low,
                high,
                verdict,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_brackets_the_rate() {
        let r = Rate::new(26, 100);
        assert!((r.value - 0.26).abs() < 1e-12);
        assert!(r.low < 0.26 && r.high > 0.26);
        assert!((r.low - 0.1841).abs() < 0.001, "{}", r.low);
        assert!((r.high - 0.3540).abs() < 0.001, "{}", r.high);
        assert_eq!(wilson(0, 0), (0.0, 0.0));
        let zero = Rate::new(0, 50);
        assert!(zero.low.abs() < 1e-12);
    }

    #[test]
    fn lift_is_the_difference_over_the_holdout() {
        let l = lift(Rate::new(260, 1000), Rate::new(100, 1000));
        assert!((l.value - 0.16).abs() < 1e-12);
        assert!(l.low > 0.0 && l.high < 0.32);
        assert!((l.incremental_customers - 160.0).abs() < 1e-9);
    }

    #[test]
    fn the_normal_quantile_matches_the_tables() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!((normal_quantile(0.8) - 0.841_621).abs() < 1e-6);
        assert!((normal_quantile(1.0 - 0.025 / 3.0) - 2.393_980).abs() < 1e-5);
        assert!((normal_quantile(0.01) + 2.326_348).abs() < 1e-6);
        assert!(normal_quantile(0.5).abs() < 1e-12);
    }

    #[test]
    fn a_variant_wins_only_when_its_interval_is_clear_of_the_other() {
        let v = |name: &str, back: i64, n: i64| (name.to_string(), Rate::new(back, n));
        let c = compare_variants(&[v("a", 300, 1000), v("b", 200, 1000)]);
        assert_eq!(c.len(), 1);
        assert!((c[0].difference - 0.1).abs() < 1e-12);
        assert!(c[0].low > 0.0);
        assert_eq!(c[0].verdict, Verdict::Wins { winner: "a".into() });
        let c = compare_variants(&[v("a", 200, 1000), v("b", 300, 1000)]);
        assert_eq!(c[0].verdict, Verdict::Wins { winner: "b".into() });
    }

    #[test]
    fn too_close_to_call_says_how_many_more_customers_it_would_take() {
        let v = |name: &str, back: i64, n: i64| (name.to_string(), Rate::new(back, n));
        // 22% against 20%: about 6,500 per variant tell two points apart at 95% and 80% power.
        let c = compare_variants(&[v("a", 220, 1000), v("b", 200, 1000)]);
        let Verdict::TooClose {
            more_per_variant: Some(more),
        } = c[0].verdict
        else {
            panic!("{:?}", c[0]);
        };
        assert!((5_300..5_800).contains(&more), "{more}");
        // Three variants: three pairs, each interval wider (Bonferroni).
        let three = compare_variants(&[v("a", 220, 1000), v("b", 200, 1000), v("c", 200, 1000)]);
        assert_eq!(three.len(), 3);
        assert!(three[0].high - three[0].low > c[0].high - c[0].low);
        assert_eq!(
            three[2].verdict,
            Verdict::TooClose {
                more_per_variant: None
            }
        );
    }

    #[test]
    fn counts_merge_and_default_to_zero() {
        let mut a = Counts::default();
        a.add(counter::ENROLLED, 3);
        let mut b = Counts::default();
        b.add(counter::ENROLLED, 2);
        b.add(counter::REACTIVATED, 1);
        a.merge(&b);
        assert_eq!(a.get(counter::ENROLLED), 5);
        assert_eq!(a.get(counter::BOUNCED), 0);
        assert!((a.reactivation_rate().value - 0.2).abs() < 1e-12);
    }
}
