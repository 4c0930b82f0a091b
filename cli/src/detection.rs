//! `winback backtest --synthetic N`: the lapse rules on synthetic customers whose hidden churn
//! moments are known (the simulator's behaviour model). For each rule: how long after a customer
//! really stopped it flags them (detection delay), against how many still-buying customers it
//! flags before their next order (false alarms). Days since the last order is compared at the
//! customer model's false-alarm rate, so the delays are comparable. The rules are the campaign's
//! decision (the fitted model with each customer's own rhythm and category), the fitted MBG/NBD
//! model alone, and the median-gap threshold rule; the figures are given for all customers and
//! for each kind of buyer (the behaviour model's segments: regular weekly and monthly buyers,
//! seasonal Christmas buyers, irregular equipment buyers, one-off buyers).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;
use shared::campaign::config::{LapseModel, LapsePolicy};
use shared::domain::lapse::{self, LapseState};
use shared::domain::model;

use crate::orders;
use crate::simulate::behaviour::Behaviour;
use crate::simulate::population::{self, Person};

/// One rule's figures.
#[derive(Debug, Clone, Serialize)]
pub struct RuleFigures {
    pub rule: String,
    /// Share of the still-buying customers flagged before their next order.
    pub false_alarms: f64,
    /// Days from the hidden churn moment to the flag, over the customers who stopped.
    pub median_delay_days: f64,
    pub mean_delay_days: f64,
    /// Share of those who stopped that the rule flags within 90 days of stopping.
    pub detected_within_90_days: f64,
}

/// The rules' figures on one kind of buyer.
#[derive(Debug, Clone, Serialize)]
pub struct KindFigures {
    /// The behaviour model's segment name (`weekly groceries`, `seasonal christmas`, …).
    pub kind: String,
    pub customers: usize,
    pub rules: Vec<RuleFigures>,
}

/// What the comparison found.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub customers: usize,
    pub stopped: usize,
    pub buying: usize,
    pub fit: model::Fit,
    pub rules: Vec<RuleFigures>,
    /// The decision, the model alone and the threshold rule on each kind of buyer.
    pub kinds: Vec<KindFigures>,
}

/// A customer at the cut-off: when they last ordered, when they really stopped (if they did)
/// and when they would order next (if they did not).
#[derive(Clone)]
struct Known {
    last: DateTime<Utc>,
    churn_at: Option<DateTime<Utc>>,
    next_order_at: Option<DateTime<Utc>>,
}

fn days(d: chrono::Duration) -> f64 {
    d.num_seconds() as f64 / 86_400.0
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

/// The figures of a rule given each customer's lapse moment (with no new order).
fn figures(rule: &str, known: &[Known], lapse_at: &[DateTime<Utc>]) -> RuleFigures {
    let mut delays = Vec::new();
    let (mut alarms, mut buying) = (0usize, 0usize);
    for (k, l) in known.iter().zip(lapse_at) {
        match (k.churn_at, k.next_order_at) {
            (Some(c), _) => delays.push(days(*l - c.max(k.last))),
            (None, Some(next)) => {
                buying += 1;
                alarms += usize::from(*l < next);
            }
            (None, None) => {}
        }
    }
    let stopped = delays.len().max(1) as f64;
    let within = delays.iter().filter(|d| **d <= 90.0).count() as f64 / stopped;
    let mean = delays.iter().sum::<f64>() / stopped;
    RuleFigures {
        rule: rule.to_string(),
        false_alarms: alarms as f64 / buying.max(1) as f64,
        median_delay_days: median(&mut delays),
        mean_delay_days: mean,
        detected_within_90_days: within,
    }
}

/// Each customer's lapse moment under `policy`, judged just after their last order.
fn moments(
    profiles: &[shared::domain::customer::Profile],
    policy: &LapsePolicy,
) -> Vec<DateTime<Utc>> {
    profiles
        .iter()
        .map(|p| {
            let last = p.last_order_at.expect("synthetic customers have orders");
            match lapse::assess(p, policy, last).state {
                LapseState::Active { lapses_at } | LapseState::AtRisk { lapses_at, .. } => {
                    lapses_at
                }
                LapseState::Lapsed { since } => since,
                LapseState::NoOrders => last,
            }
        })
        .collect()
}

/// The median-gap rule's lapse moments `threshold_at` stretched (every customer's quiet time
/// times one factor, the least between 0.05 and 20; never under the campaign's `min_days`, as
/// the rule and the decision are not) to flag no more of the buying than `false_alarms`: the
/// factor and the moments.
fn stretch_to(
    known: &[Known],
    threshold_at: &[DateTime<Utc>],
    false_alarms: f64,
    min_days: f64,
) -> (f64, Vec<DateTime<Utc>>) {
    let stretched_at = |c: f64| -> Vec<DateTime<Utc>> {
        known
            .iter()
            .zip(threshold_at)
            .map(|(k, t)| {
                let quiet = ((*t - k.last).num_seconds() as f64 * c).max(min_days * 86_400.0);
                k.last + chrono::Duration::seconds(quiet as i64)
            })
            .collect()
    };
    let (mut lo, mut hi) = (0.05_f64, 20.0_f64);
    for _ in 0..50 {
        let mid = (lo * hi).sqrt();
        if figures("", known, &stretched_at(mid)).false_alarms <= false_alarms {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    (hi, stretched_at(hi))
}

/// Years of order history the backtest's customers have: a yearly buyer has two orders.
const HISTORY_DAYS: u32 = 730;
/// The day of the year the Christmas segment's orders centre on (16 December).
const CHRISTMAS_DAY_OF_YEAR: u32 = 350;

/// The simulator's behaviour model as the backtest reads it: [`HISTORY_DAYS`] of history, and the
/// Christmas buyers ordering at Christmas (the simulation's own Christmas buyers order once a year
/// on any day, and have one year of history).
fn backtest_model() -> Behaviour {
    let mut b = Behaviour::default_model();
    b.history_days = b.history_days.max(HISTORY_DAYS);
    for s in &mut b.segments {
        if s.category == "christmas" && s.season_day.is_none() {
            s.season_day = Some(CHRISTMAS_DAY_OF_YEAR);
        }
    }
    b
}

/// Runs the comparison on `n` synthetic customers (seeded) under `policy`.
pub fn run(n: usize, seed: u64, policy: &LapsePolicy, currency: &str) -> Detection {
    let behaviour = backtest_model();
    let start = crate::simulate::default_start();
    let mut rng = SmallRng::seed_from_u64(seed);
    // The churn moments fall over the history and the next 365 days: some stop after the cut-off.
    let (people, rows) = population::synthetic(n, &behaviour, currency, start, 365, &mut rng);
    let mut profiles = orders::build_profiles(&rows, policy, start, Some(start));
    profiles.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    let mut people: Vec<&Person> = people.iter().collect();
    people.sort_by(|a, b| a.id.cmp(&b.id));
    let known: Vec<Known> = profiles
        .iter()
        .zip(&people)
        .map(|(p, person)| {
            debug_assert_eq!(p.customer_id, person.id);
            Known {
                last: p.last_order_at.expect("orders"),
                // Stopped: no order after the cut-off (they stopped before it, or after it but
                // before their next order). Still buying: their next order is known.
                churn_at: person.churn_at.filter(|_| person.next_order_at.is_none()),
                next_order_at: person.next_order_at,
            }
        })
        .collect();
    // As in production: the model fitted on the shop's customers at the cut-off.
    let summaries: Vec<model::Summary> = profiles
        .iter()
        .filter_map(|p| model::profile_summary(p, start))
        .collect();
    let mut rhythms = shared::domain::rhythm::Pool::default();
    for p in &profiles {
        rhythms.add(&p.order_times(), p.last_category());
    }
    let mut fit = model::fit(policy.model_variant(), &summaries);
    fit.categories = rhythms.finish();
    let fitted = policy.with_stored_fit(model::worth_storing(&fit).then_some(&fit));
    let model_at = moments(&profiles, &fitted);
    const DECISION: &str = "the decision (model with own rhythm and category)";
    const MODEL_ALONE: &str = "MBG/NBD model alone (chance of an order within the horizon)";
    const THRESHOLD: &str = "median-gap threshold rule";
    let model_rule = figures(DECISION, &known, &model_at);
    // The model alone: its own lapse moment, within the campaign's bounds (as before the
    // decision read rhythms); a customer whose chance never falls that low keeps the decision's.
    let alone_at: Vec<DateTime<Utc>> = profiles
        .iter()
        .zip(&model_at)
        .map(|(p, d)| {
            let last = p.last_order_at.expect("synthetic customers have orders");
            lapse::lapse_moment_by_model(p, &fitted, last).unwrap_or(*d)
        })
        .collect();
    let alone_rule = figures(MODEL_ALONE, &known, &alone_at);
    let mut threshold = policy.clone();
    threshold.model = LapseModel::Threshold;
    let threshold_at = moments(&profiles, &threshold);
    let threshold_rule = figures(THRESHOLD, &known, &threshold_at);
    // The median-gap rule stretched (every customer's threshold times one factor) to flag no more
    // of the buying than the decision: the two compared at the same false alarms.
    let (stretch, stretched) = stretch_to(
        &known,
        &threshold_at,
        model_rule.false_alarms,
        policy.min_days,
    );
    let stretched_name = format!("median-gap rule × {stretch:.2} (same false alarms)");
    let stretched_rule = figures(&stretched_name, &known, &stretched);
    let mut kinds = Vec::new();
    for (i, segment) in behaviour.segments.iter().enumerate() {
        let of_kind: Vec<usize> = (0..people.len())
            .filter(|k| people[*k].segment == Some(i))
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        let pick = |v: &[DateTime<Utc>]| of_kind.iter().map(|k| v[*k]).collect::<Vec<_>>();
        let known_kind: Vec<Known> = of_kind.iter().map(|k| known[*k].clone()).collect();
        let decision = figures(DECISION, &known_kind, &pick(&model_at));
        let mut rules = vec![
            decision.clone(),
            figures(MODEL_ALONE, &known_kind, &pick(&alone_at)),
            figures(THRESHOLD, &known_kind, &pick(&threshold_at)),
            figures(&stretched_name, &known_kind, &pick(&stretched)),
        ];
        // The rule's own trade-off on this kind: stretched to the decision's false alarms among
        // this kind's buying customers (where it has any). A decision with a shorter delay here
        // is the better of the two on this kind, at the same false alarms.
        if known_kind
            .iter()
            .any(|k| k.churn_at.is_none() && k.next_order_at.is_some())
        {
            let (c, at) = stretch_to(
                &known_kind,
                &pick(&threshold_at),
                decision.false_alarms,
                policy.min_days,
            );
            rules.push(figures(
                &format!("median-gap rule × {c:.2} (this kind's false alarms)"),
                &known_kind,
                &at,
            ));
        }
        kinds.push(KindFigures {
            kind: segment.name.clone(),
            customers: of_kind.len(),
            rules,
        });
    }
    // Days since the last order, one number for everyone, set to the model's false-alarm rate:
    // the smallest quiet time that flags no more of the buying than the model does.
    let mut waits: Vec<f64> = known
        .iter()
        .filter(|k| k.churn_at.is_none())
        .filter_map(|k| k.next_order_at.map(|n| days(n - k.last)))
        .collect();
    waits.sort_by(f64::total_cmp);
    let allowed = (model_rule.false_alarms * waits.len() as f64).floor() as usize;
    let d = if waits.is_empty() {
        90.0
    } else {
        waits[waits.len().saturating_sub(allowed + 1)]
    };
    let recency_at: Vec<DateTime<Utc>> = known
        .iter()
        .map(|k| k.last + chrono::Duration::seconds((d * 86_400.0).ceil() as i64 + 1))
        .collect();
    let recency_rule = figures(
        &format!("days since the last order ≥ {d:.0} (same false alarms)"),
        &known,
        &recency_at,
    );
    Detection {
        customers: profiles.len(),
        stopped: known.iter().filter(|k| k.churn_at.is_some()).count(),
        buying: known
            .iter()
            .filter(|k| k.churn_at.is_none() && k.next_order_at.is_some())
            .count(),
        fit,
        rules: vec![
            model_rule,
            recency_rule,
            alone_rule,
            threshold_rule,
            stretched_rule,
        ],
        kinds,
    }
}

impl Detection {
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Synthetic customers: {} ({} stopped buying, {} still buying); model fitted on them: {}",
            self.customers,
            self.stopped,
            self.buying,
            self.fit.figures()
        );
        let _ = writeln!(
            s,
            "{:<58} {:>12} {:>13} {:>11} {:>14}",
            "rule", "false alarms", "median delay", "mean delay", "found ≤ 90 d"
        );
        let line = |s: &mut String, r: &RuleFigures| {
            let _ = writeln!(
                s,
                "{:<58} {:>11.1}% {:>11.1} d {:>9.1} d {:>13.1}%",
                r.rule,
                r.false_alarms * 100.0,
                r.median_delay_days,
                r.mean_delay_days,
                r.detected_within_90_days * 100.0
            );
        };
        for r in &self.rules {
            line(&mut s, r);
        }
        for k in &self.kinds {
            let _ = writeln!(s, "\n{} ({} customers):", k.kind, k.customers);
            for r in &k.rules {
                line(&mut s, r);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_are_compared_on_the_same_customers_and_recency_at_the_models_false_alarms() {
        let policy = shared::campaign::testing::example_campaign().lapse;
        let d = run(1_500, 3, &policy, "EUR");
        assert_eq!(d.customers, 1_500);
        assert!(d.stopped > 100 && d.buying > 100, "{d:?}");
        assert_eq!(d.rules.len(), 5);
        // Every kind of buyer of the behaviour model, with the three rules.
        let kinds: Vec<&str> = d.kinds.iter().map(|k| k.kind.as_str()).collect();
        assert!(
            kinds.contains(&"monthly coffee") && kinds.contains(&"seasonal christmas"),
            "{kinds:?}"
        );
        // A kind with buying customers also gets the rule at its own false alarms.
        assert!(d
            .kinds
            .iter()
            .all(|k| k.rules.len() == 4 || k.rules.len() == 5));
        let monthly = d.kinds.iter().find(|k| k.kind == "monthly coffee").unwrap();
        assert_eq!(monthly.rules.len(), 5);
        assert!(monthly.rules[4].false_alarms <= monthly.rules[0].false_alarms + 1e-9);
        assert_eq!(
            d.kinds.iter().map(|k| k.customers).sum::<usize>(),
            d.customers
        );
        let (model, recency) = (&d.rules[0], &d.rules[1]);
        // The recency rule is set to flag no more of the buying than the model.
        assert!(recency.false_alarms <= model.false_alarms + 1e-9, "{d:?}");
        for r in &d.rules {
            assert!(r.median_delay_days.is_finite() && (0.0..=1.0).contains(&r.false_alarms));
        }
        // The same seed gives the same figures.
        let again = run(1_500, 3, &policy, "EUR");
        assert_eq!(again.rules[0].median_delay_days, model.median_delay_days);
        assert!(d.to_text().contains("median delay"));
    }
}
