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
