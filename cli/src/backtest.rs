//! `winback backtest`: how well the customer model would have told, on a shop's own history, who
//! came back by themselves. Orders before `--at` fit the model; an order in the next `--horizon`
//! days is the outcome.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::campaign::config::LapsePolicy;
use shared::domain::lapse;
use shared::domain::model::{self, Fit, Summary, Variant};

use crate::error::CliResult;
use crate::orders::OrderRow;
use crate::report::html;

/// One customer as of the cut-off, and what happened next.
#[derive(Debug, Clone)]
pub struct Case {
    pub summary: Summary,
    /// Orders before the cut-off (rows, not occasions).
    pub orders: usize,
    /// Ordered within the horizon.
    pub came_back: bool,
    /// When they ordered before the cut-off, oldest first (the most recent
    /// [`ORDER_HISTORY`](shared::domain::customer::ORDER_HISTORY), as a profile keeps): their own
    /// rhythm is read from these.
    pub times: Vec<DateTime<Utc>>,
}

/// A customer's orders before the cut-off, and whether they ordered within the horizon.
type History = (Vec<(DateTime<Utc>, f64)>, bool);

/// The customers known at `at`, with their outcome over `horizon_days`.
pub fn cases(rows: &[OrderRow], at: DateTime<Utc>, horizon_days: u32) -> Vec<Case> {
    let end = at + Duration::days(horizon_days as i64);
    let mut by_customer: BTreeMap<&str, History> = BTreeMap::new();
    for r in rows {
        let e = by_customer.entry(&r.customer_id).or_default();
        if r.ordered_at < at {
            e.0.push((r.ordered_at, r.amount.0 as f64));
        } else if r.ordered_at < end {
            e.1 = true;
        }
    }
    by_customer
        .into_values()
        .filter_map(|(orders, came_back)| {
            let mut times: Vec<DateTime<Utc>> = orders.iter().map(|o| o.0).collect();
            times.sort_unstable();
            let keep = shared::domain::customer::ORDER_HISTORY;
            times.drain(..times.len().saturating_sub(keep));
            model::summarize(&orders, at).map(|summary| Case {
                summary,
                orders: orders.len(),
                came_back,
                times,
            })
        })
        .collect()
}

/// Area under the ROC curve of the score for ranking the `true` cases above the rest (ties count
/// half). `None` without both kinds.
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let mut v: Vec<(f64, bool)> = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = v.iter().filter(|(_, p)| *p).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    // Mann-Whitney: the sum of the positives' mid-ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0;
        rank_sum += v[i..j].iter().filter(|(_, p)| *p).count() as f64 * mid;
        i = j;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// AUCs of one group of customers.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub group: String,
    pub customers: usize,
    /// Share with no order in the horizon.
    pub gone: f64,
    /// Score 1 - P(active).
    pub auc_p_active: Option<f64>,
    /// Score P(no order in the horizon).
    pub auc_no_order: Option<f64>,
    /// Score minus the expected purchases in the horizon.
    pub auc_expected: Option<f64>,
    /// Score days since the last order.
    pub auc_recency: Option<f64>,
    /// Score one minus the decision's chance of an order in the horizon (a regular buyer's own,
    /// else the model's).
    pub auc_decision: Option<f64>,
}

/// The flagged and how many of them came back anyway, against the recency rule at the same count.
#[derive(Debug, Clone, Serialize)]
pub struct Flagged {
    /// The campaign's lapse rule: a chance of an order within `lapse_horizon_days` below this.
    pub threshold: f64,
    pub lapse_horizon_days: f64,
    pub flagged: usize,
    pub share_flagged: f64,
    pub came_back_anyway: f64,
    pub recency_came_back_anyway: f64,
}

/// One decile of predicted P(order in the horizon) against the observed share.
#[derive(Debug, Clone, Serialize)]
pub struct Decile {
    pub predicted: f64,
    pub observed: f64,
    pub customers: usize,
}

/// What `backtest` found.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    pub at: DateTime<Utc>,
    pub horizon_days: u32,
    pub fit: Fit,
    /// The whole fit (purchases and spend).
    pub fit_seconds: f64,
    /// The purchase model's fit alone (what `lifetimes`' fitters do).
    pub purchase_fit_seconds: f64,
    /// Customers evaluated per second (P(active), the chance of an order, 12-month value).
    pub evaluations_per_second: f64,
    /// Lapse moments solved per second (once per customer when their activity arrives).
    pub lapse_moments_per_second: f64,
    pub rows: Vec<Row>,
    pub flagged: Flagged,
    pub calibration: Vec<Decile>,
}

fn row(group: &str, fit: &Fit, cases: &[&Case], horizon: f64, at: DateTime<Utc>) -> Row {
    let score = |f: &dyn Fn(&Case) -> f64| -> Option<f64> {
        auc(&cases
            .iter()
            .map(|c| (f(c), !c.came_back))
            .collect::<Vec<_>>())
    };
    Row {
        group: group.to_string(),
        customers: cases.len(),
        gone: cases.iter().filter(|c| !c.came_back).count() as f64 / cases.len().max(1) as f64,
        auc_p_active: score(&|c| 1.0 - fit.p_active(&c.summary)),
        auc_no_order: score(&|c| fit.p_no_order_within(&c.summary, horizon)),
        auc_expected: score(&|c| -fit.expected_purchases(&c.summary, horizon)),
        auc_recency: score(&|c| c.summary.age_days - c.summary.recency_days),
        auc_decision: score(&|c| {
            1.0 - lapse::decision_chance(&c.times, &c.summary, fit, horizon, at)
        }),
    }
}

/// Fits on the customers as of the cut-off and scores the outcome.
pub fn run(
    cases: &[Case],
    at: DateTime<Utc>,
    horizon_days: u32,
    variant: Variant,
    policy: &LapsePolicy,
) -> Backtest {
    let (lapse_horizon_days, threshold) = (policy.horizon_days, policy.p_order_threshold);
    let summaries: Vec<Summary> = cases.iter().map(|c| c.summary).collect();
    let started = std::time::Instant::now();
    let fit = model::fit_purchases(variant, &summaries);
    let purchase_fit_seconds = started.elapsed().as_secs_f64();
    let fit = fit.with_spend_fitted(&summaries);
    let fit_seconds = started.elapsed().as_secs_f64();
    let horizon = horizon_days as f64;
    let started = std::time::Instant::now();
    let mut checksum = 0.0;
    for c in cases {
        checksum += fit.p_active(&c.summary)
            + fit.p_order_within(&c.summary, lapse_horizon_days)
            + fit.predicted_value(&c.summary, 365.0);
    }
    std::hint::black_box(checksum);
    let evaluations_per_second = cases.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let started = std::time::Instant::now();
    for c in cases {
        checksum += fit
            .order_chance_lapse_age(&c.summary, lapse_horizon_days, threshold)
            .unwrap_or(0.0);
    }
    std::hint::black_box(checksum);
    let lapse_moments_per_second = cases.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let all: Vec<&Case> = cases.iter().collect();
    let three: Vec<&Case> = cases.iter().filter(|c| c.orders >= 3).collect();
    let rows = vec![
        row("all customers", &fit, &all, horizon, at),
        row("customers with ≥ 3 orders", &fit, &three, horizon, at),
    ];

    let flagged: Vec<&Case> = all
        .iter()
        .copied()
        .filter(|c| lapse::lapsed_by_decision(&c.times, &c.summary, &fit, policy, at))
        .collect();
    let back =
        |cs: &[&Case]| cs.iter().filter(|c| c.came_back).count() as f64 / cs.len().max(1) as f64;
    let quiet = |c: &Case| c.summary.age_days - c.summary.recency_days;
    let mut by_recency = all.clone();
    by_recency.sort_by(|a, b| quiet(b).total_cmp(&quiet(a)));
    let flagged = Flagged {
        threshold,
        lapse_horizon_days,
        flagged: flagged.len(),
        share_flagged: flagged.len() as f64 / all.len().max(1) as f64,
        came_back_anyway: back(&flagged),
        recency_came_back_anyway: back(&by_recency[..flagged.len()]),
    };

    let mut predicted: Vec<(f64, bool)> = all
        .iter()
        .map(|c| {
            (
                1.0 - fit.p_no_order_within(&c.summary, horizon),
                c.came_back,
            )
        })
        .collect();
    predicted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let calibration = (0..10)
        .filter_map(|d| {
            let part = &predicted[predicted.len() * d / 10..predicted.len() * (d + 1) / 10];
            (!part.is_empty()).then(|| Decile {
                predicted: part.iter().map(|p| p.0).sum::<f64>() / part.len() as f64,
                observed: part.iter().filter(|p| p.1).count() as f64 / part.len() as f64,
                customers: part.len(),
            })
        })
        .collect();
    Backtest {
        at,
        horizon_days,
        fit,
        fit_seconds,
        purchase_fit_seconds,
        evaluations_per_second,
        lapse_moments_per_second,
        rows,
        flagged,
        calibration,
    }
}

fn figure(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.3}"))
}

impl Backtest {
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let f = &self.fit;
        let _ = writeln!(
            s,
            "Backtest at {} over {} days: {:?} fitted on {} customers ({} with a repeat order) in {:.3} s ({:.3} s the purchase model)",
            self.at.format("%Y-%m-%d"),
            self.horizon_days,
            f.variant,
            f.customers,
            f.repeat_customers,
            self.fit_seconds,
            self.purchase_fit_seconds
        );
        let _ = writeln!(s, "Fit: {}", f.figures());
        let _ = writeln!(
            s,
            "Evaluation (P(active), chance of an order, 12-month value): {:.0} customers per second; lapse moments: {:.0} per second",
            self.evaluations_per_second, self.lapse_moments_per_second
        );
        let _ = writeln!(
            s,
            "To use this fit, put in the campaign's campaign.toml:\n{}",
            f.fitted_block()
        );
        let _ = writeln!(
            s,
            "\nAUC for ranking customers with no order in the horizon above those who ordered:"
        );
        let _ = writeln!(
            s,
            "{:<28} {:>9} {:>6} {:>12} {:>12} {:>12} {:>10} {:>10}",
            "group",
            "customers",
            "gone",
            "1-P(active)",
            "P(no order)",
            "-E[orders]",
            "recency",
            "decision"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<28} {:>9} {:>5.1}% {:>12} {:>12} {:>12} {:>10} {:>10}",
                r.group,
                r.customers,
                r.gone * 100.0,
                figure(r.auc_p_active),
                figure(r.auc_no_order),
                figure(r.auc_expected),
                figure(r.auc_recency),
                figure(r.auc_decision)
            );
        }
        let fl = &self.flagged;
        let _ = writeln!(
            s,
            "\nFlagged lapsed (the decision: P(order within {:.0} d) < {}, regular and seasonal buyers by their own rhythm): {} ({:.1}%); of them {:.1}% ordered anyway within {} days, against {:.1}% for the same number flagged by days since the last order",
            fl.lapse_horizon_days,
            fl.threshold,
            fl.flagged,
            fl.share_flagged * 100.0,
            fl.came_back_anyway * 100.0,
            self.horizon_days,
            fl.recency_came_back_anyway * 100.0
        );
        let _ = writeln!(
            s,
            "\nCalibration by decile (predicted vs observed share who ordered):"
        );
        for (i, d) in self.calibration.iter().enumerate() {
            let _ = writeln!(
                s,
                "  decile {:>2}: predicted {:>5.1}%, observed {:>5.1}% ({} customers)",
                i + 1,
                d.predicted * 100.0,
                d.observed * 100.0,
                d.customers
            );
        }
        s
    }

    /// Writes `<out>/index.html` with the figures and the calibration chart; returns its path.
    pub fn write_html(&self, out: &Path) -> CliResult<PathBuf> {
        let labels: Vec<String> = (1..=self.calibration.len())
            .map(|i| i.to_string())
            .collect();
        let predicted: Vec<f64> = self
            .calibration
            .iter()
            .map(|d| d.predicted * 100.0)
            .collect();
        let observed: Vec<f64> = self
            .calibration
            .iter()
            .map(|d| d.observed * 100.0)
            .collect();
        let chart = html::paired_bar_chart(
            "calibration",
            &format!(
                "Ordered within {} days, by decile of prediction",
                self.horizon_days
            ),
            &labels,
            (&predicted, "predicted"),
            (&observed, "observed"),
            "% of customers",
        )?;
        let page = crate::pages::render(
            "backtest.html",
            minijinja::context! {
                chart => crate::pages::safe(chart),
                figures => self.to_text(),
            },
        );
        crate::pages::write_index(out, &page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared::domain::money::Money;

    #[test]
    fn auc_counts_ties_half_and_needs_both_kinds() {
        assert_eq!(auc(&[(1.0, true), (0.0, false)]), Some(1.0));
        assert_eq!(auc(&[(0.0, true), (1.0, false)]), Some(0.0));
        assert_eq!(auc(&[(1.0, true), (1.0, false)]), Some(0.5));
        assert_eq!(
            auc(&[(0.9, true), (0.1, false), (0.5, true), (0.6, false)]),
            Some(0.75)
        );
        assert_eq!(auc(&[(1.0, true)]), None);
    }

    fn order(id: &str, day: u32, amount: i64) -> OrderRow {
        OrderRow {
            line: 0,
            customer_id: id.parse().unwrap(),
            email: format!("{id}@example.com"),
            ordered_at: Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap()
                + Duration::days(day as i64),
            amount: Money(amount),
            refunded: Money(0),
            currency: None,
            first_name: None,
            locale: None,
            time_zone: None,
            category: None,
            product: None,
            birthday: None,
            renewal_due_at: None,
            signed_up_at: None,
            email_status: None,
            order_id: None,
            quantity: None,
            price: None,
        }
    }

    #[test]
    fn a_small_shop_falls_back_to_the_prior_and_still_ranks() {
        let mut rows = Vec::new();
        for i in 0..40u32 {
            let id = format!("c{i}");
            if i % 2 == 0 {
                // Regulars who keep buying every 10 days.
                for d in (0..200).step_by(10) {
                    rows.push(order(&id, d, 2000));
                }
            } else {
                rows.push(order(&id, i, 1500));
            }
        }
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(150);
        let cases = cases(&rows, at, 90);
        assert_eq!(cases.len(), 40);
        let policy = shared::campaign::testing::example_campaign().lapse;
        let b = run(&cases, at, 90, Variant::Mbgnbd, &policy);
        assert!(b.fit.warning.is_some());
        assert_eq!(b.rows[0].auc_no_order, Some(1.0));
        assert_eq!(b.flagged.came_back_anyway, 0.0);
        assert!(b.to_text().contains("AUC"));
        let dir = std::env::temp_dir().join(format!("winback-backtest-{}", std::process::id()));
        let page = std::fs::read_to_string(b.write_html(&dir).unwrap()).unwrap();
        assert!(page.contains("<svg") && page.contains("observed"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
