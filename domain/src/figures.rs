//! The figures a marketer reads, computed once from a flow's stored counters: `winback report`,
//! the daily metrics behind the dashboard and the weekly email all show these values, so they
//! cannot disagree.
//!
//! Every figure compares enrollment cohorts, never events of a time range: a cohort's counters
//! hold what happened to the customers enrolled in it, so the reactivation rate is the share of
//! everyone ever enrolled who came back, whatever day it is read. The figures of the last
//! [`WINDOW_DAYS`] days compare what each arm's customers earned in those days, per customer
//! enrolled by then: both arms are enrolled at the same times (the split is random), so the
//! difference is what the emails added in the window.

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::experiment::Group;
use crate::metrics::{counter, lift, CounterRow, Counts, Lift, Rate, Z95};

/// The days of the recent window: the profit the alarm watches.
pub const WINDOW_DAYS: u64 = 28;
/// How long after coming back a customer must still order to count as still active.
pub const STILL_ACTIVE_DAYS: u64 = 90;

/// A money figure with its 95% interval, minor units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Estimate {
    /// `self` times `factor`, less `cost` (the interval moves with it).
    fn times_less(self, factor: f64, cost: f64) -> Estimate {
        Estimate {
            value: self.value * factor - cost,
            low: self.low * factor - cost,
            high: self.high * factor - cost,
        }
    }
}

/// What an order earns and an email costs: the campaign's `[targeting]` economics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Economics {
    /// Share of revenue kept as profit.
    pub margin: f64,
    /// What one email costs, minor units.
    pub email_cost_minor: f64,
}

/// The revenue a cohort's customers brought: the order that won each back and their later
/// orders, in the campaign's currency, minor units; net of refunds and cancellations, which the
/// webhook takes off these counters as they arrive (and counts in `refunded_minor`). This is the
/// one place revenue is read from the counters, so every figure follows it.
pub fn net_revenue(c: &Counts) -> i64 {
    c.get(counter::REVENUE) + c.get(counter::REVENUE_AFTER)
}

/// One variant of a flow (or the holdout): its reactivation rate and, for a treated variant,
/// what it adds over the holdout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    pub variant: String,
    pub group: Group,
    pub counts: Counts,
    pub rate: Rate,
    /// Against the holdout; `None` for the holdout itself, or with no holdout.
    pub lift: Option<Lift>,
    pub revenue_minor: i64,
    pub incremental_revenue: Option<Estimate>,
    pub incremental_profit: Option<Estimate>,
}

/// Reactivated customers still ordering [`STILL_ACTIVE_DAYS`] after they came back, out of
/// those who came back long enough ago, treated against holdout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StillActive {
    pub treated: Rate,
    pub holdout: Rate,
    /// Treated minus holdout, `None` with no holdout reactivation old enough.
    pub difference: Option<Lift>,
}

/// The recent window's money: what the emails added in the last [`WINDOW_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub days: u64,
    pub incremental_revenue: Option<Estimate>,
    pub incremental_profit: Option<Estimate>,
}

/// A flow's figures as of a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowFigures {
    /// The name the flow's counters are kept under.
    pub cohort: String,
    pub as_of: NaiveDate,
    pub treated: Rate,
    pub holdout: Rate,
    /// Treated (every variant) against the holdout.
    pub lift: Lift,
    /// The treated variants, then the holdout.
    pub arms: Vec<Arm>,
    pub treated_counts: Counts,
    pub holdout_counts: Counts,
    /// The treated customers' revenue since they came back ([`net_revenue`]).
    pub revenue_minor: i64,
    pub reward_cost_minor: i64,
    pub email_cost_minor: i64,
    /// `None` without a holdout: nothing to compare with.
    pub incremental_revenue: Option<Estimate>,
    /// Incremental revenue times the margin, less rewards and emails.
    pub incremental_profit: Option<Estimate>,
    pub window: Window,
    pub still_active: StillActive,
}

/// Revenue per enrolled customer of one arm, for [`incremental`].
#[derive(Debug, Clone, Copy)]
struct ArmMoney {
    enrolled: i64,
    revenue: i64,
}

/// `treated`'s revenue above what the holdout's rate per customer would give it, with a 95%
/// interval. A customer's revenue is taken as spent or not at the pooled revenue per reactivated
/// customer (`per_winner`), so the interval holds the chance in how many spent in each arm (the
/// larger part with a small holdout), not the spread of order values, which the counters do
/// not keep. `None` with no holdout.
fn incremental(treated: ArmMoney, holdout: ArmMoney, per_winner: f64) -> Option<Estimate> {
    if holdout.enrolled <= 0 || treated.enrolled <= 0 {
        return None;
    }
    let (nt, nh) = (treated.enrolled as f64, holdout.enrolled as f64);
    let value = treated.revenue as f64 - nt * holdout.revenue as f64 / nh;
    let var = |a: ArmMoney| {
        if per_winner <= 0.0 {
            return 0.0;
        }
        let n = a.enrolled as f64;
        let p = (a.revenue as f64 / (per_winner * n)).clamp(0.0, 1.0);
        per_winner * per_winner * p * (1.0 - p) / n
    };
    let half = Z95 * nt * (var(treated) + var(holdout)).sqrt();
    Some(Estimate {
        value,
        low: value - half,
        high: value + half,
    })
}

/// Sums of a cohort's day rows in `(from, to]`.
fn days_between(rows: &[&CounterRow], from: NaiveDate, to: NaiveDate) -> Counts {
    let mut c = Counts::default();
    for r in rows {
        if r.day.is_some_and(|d| d > from && d <= to) {
            c.merge(&r.counts);
        }
    }
    c
}

/// The figures of the flow whose counters are kept under `cohort`, as of the end of `as_of`,
/// from its counter rows (running totals, day `None`, and day rows: [`crate::metrics::with_totals`]).
pub fn of_flow(
    rows: &[CounterRow],
    cohort: &str,
    as_of: NaiveDate,
    economics: Economics,
) -> FlowFigures {
    let rows: Vec<&CounterRow> = rows.iter().filter(|r| r.key.campaign == cohort).collect();
    let mut by_arm: std::collections::BTreeMap<(Group, String), Counts> = Default::default();
    for r in rows.iter().filter(|r| r.day.is_none()) {
        by_arm
            .entry((r.key.group, r.key.variant.clone()))
            .or_default()
            .merge(&r.counts);
    }
    let group_total = |g: Group| {
        let mut c = Counts::default();
        for ((group, _), counts) in &by_arm {
            if *group == g {
                c.merge(counts);
            }
        }
        c
    };
    let (treated, holdout) = (group_total(Group::Treated), group_total(Group::Holdout));
    let (treated_rate, holdout_rate) = (treated.reactivation_rate(), holdout.reactivation_rate());
    let has_holdout = holdout.get(counter::ENROLLED) > 0;

    let per_winner = {
        let won = treated.get(counter::REACTIVATED) + holdout.get(counter::REACTIVATED);
        let revenue = net_revenue(&treated) + net_revenue(&holdout);
        if won > 0 {
            revenue as f64 / won as f64
        } else {
            0.0
        }
    };
    let money = |c: &Counts| ArmMoney {
        enrolled: c.get(counter::ENROLLED),
        revenue: net_revenue(c),
    };
    let costs = |c: &Counts| {
        c.get(counter::REWARD_COST) as f64
            + (c.get(counter::SENT) as f64 * economics.email_cost_minor).round()
    };
    let profit =
        |inc: Option<Estimate>, c: &Counts| inc.map(|i| i.times_less(economics.margin, costs(c)));

    let mut arms: Vec<Arm> = by_arm
        .iter()
        .map(|((group, variant), c)| {
            let treated_arm = *group == Group::Treated;
            let inc = treated_arm
                .then(|| incremental(money(c), money(&holdout), per_winner))
                .flatten();
            Arm {
                variant: variant.clone(),
                group: *group,
                counts: c.clone(),
                rate: c.reactivation_rate(),
                lift: (treated_arm && has_holdout)
                    .then(|| lift(c.reactivation_rate(), holdout_rate)),
                revenue_minor: net_revenue(c),
                incremental_revenue: inc,
                incremental_profit: profit(inc, c),
            }
        })
        .collect();
    arms.sort_by_key(|a| a.group == Group::Holdout);

    let window_start = as_of
        .checked_sub_days(Days::new(WINDOW_DAYS))
        .unwrap_or(NaiveDate::MIN);
    let in_window = |g: Group| {
        let of_group: Vec<&CounterRow> =
            rows.iter().copied().filter(|r| r.key.group == g).collect();
        days_between(&of_group, window_start, as_of)
    };
    let (treated_w, holdout_w) = (in_window(Group::Treated), in_window(Group::Holdout));
    let window_money = |c: &Counts, total: &Counts| ArmMoney {
        enrolled: total.get(counter::ENROLLED),
        revenue: net_revenue(c),
    };
    let window_inc = incremental(
        window_money(&treated_w, &treated),
        window_money(&holdout_w, &holdout),
        per_winner,
    );

    let mature_until = as_of
        .checked_sub_days(Days::new(STILL_ACTIVE_DAYS))
        .unwrap_or(NaiveDate::MIN);
    let still = |g: Group, total: &Counts| {
        let of_group: Vec<&CounterRow> =
            rows.iter().copied().filter(|r| r.key.group == g).collect();
        let old_enough =
            days_between(&of_group, NaiveDate::MIN, mature_until).get(counter::REACTIVATED);
        Rate::new(
            total.get(counter::STILL_ACTIVE_90D).min(old_enough),
            old_enough,
        )
    };
    let (still_t, still_h) = (
        still(Group::Treated, &treated),
        still(Group::Holdout, &holdout),
    );

    let inc = incremental(money(&treated), money(&holdout), per_winner);
    FlowFigures {
        cohort: cohort.to_string(),
        as_of,
        lift: lift(treated_rate, holdout_rate),
        treated: treated_rate,
        holdout: holdout_rate,
        arms,
        revenue_minor: net_revenue(&treated),
        reward_cost_minor: treated.get(counter::REWARD_COST),
        email_cost_minor: (treated.get(counter::SENT) as f64 * economics.email_cost_minor).round()
            as i64,
        incremental_revenue: inc,
        incremental_profit: profit(inc, &treated),
        window: Window {
            days: WINDOW_DAYS,
            incremental_revenue: window_inc,
            incremental_profit: profit(window_inc, &treated_w),
        },
        still_active: StillActive {
            treated: still_t,
            holdout: still_h,
            difference: (still_t.trials > 0 && still_h.trials > 0).then(|| lift(still_t, still_h)),
        },
        treated_counts: treated,
        holdout_counts: holdout,
    }
}

/// Whose figures the program's headline shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadlineBasis {
    /// The win-back flow's own holdout: the program has no holdout of its own yet, so the
    /// headline is the win-back flow's, and says so.
    WinBackFlow,
}

/// The program's headline: customers brought back, points of lift, profit in the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Headline {
    pub basis: HeadlineBasis,
    /// Customers who came back because of the emails, with the 95% interval.
    pub brought_back: Estimate,
    pub lift: Lift,
    pub window_profit: Option<Estimate>,
}

impl Headline {
    /// What the headline is based on, in words.
    pub fn basis_text(&self) -> &'static str {
        match self.basis {
            HeadlineBasis::WinBackFlow => {
                "the win-back flow's figures against its own holdout (the program as a whole has no holdout yet)"
            }
        }
    }
}

/// The headline from the win-back flow's figures.
pub fn headline(win_back: &FlowFigures) -> Headline {
    let n = win_back.treated.trials as f64;
    Headline {
        basis: HeadlineBasis::WinBackFlow,
        brought_back: Estimate {
            value: win_back.lift.value * n,
            low: win_back.lift.low * n,
            high: win_back.lift.high * n,
        },
        lift: win_back.lift,
        window_profit: win_back.window.incremental_profit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CohortKey;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Days::new(u64::from(d))
    }

    fn row(
        variant: &str,
        group: Group,
        day: Option<NaiveDate>,
        counts: &[(&str, i64)],
    ) -> CounterRow {
        let mut c = Counts::default();
        for (k, v) in counts {
            c.add(k, *v);
        }
        CounterRow {
            key: CohortKey {
                campaign: "shop".into(),
                variant: variant.into(),
                group,
            },
            day,
            counts: c,
        }
    }

    fn economics() -> Economics {
        Economics {
            margin: 0.5,
            email_cost_minor: 1.0,
        }
    }

    /// Day rows, then the totals made from them.
    fn stored(days: Vec<CounterRow>) -> Vec<CounterRow> {
        crate::metrics::with_totals(days)
    }

    #[test]
    fn incremental_revenue_is_the_treated_revenue_above_the_holdout_rate_with_an_interval() {
        let rows = stored(vec![
            row(
                "a",
                Group::Treated,
                Some(day(0)),
                &[
                    ("enrolled", 1000),
                    ("reactivated", 200),
                    ("revenue_minor", 1_000_000),
                    ("sent", 2000),
                    ("reward_cost_minor", 50_000),
                ],
            ),
            row(
                "holdout",
                Group::Holdout,
                Some(day(0)),
                &[
                    ("enrolled", 100),
                    ("reactivated", 10),
                    ("revenue_minor", 50_000),
                ],
            ),
        ]);
        let f = of_flow(&rows, "shop", day(10), economics());
        let inc = f.incremental_revenue.unwrap();
        // 1,000,000 − 1000 × 50,000 / 100.
        assert!((inc.value - 500_000.0).abs() < 1e-6);
        assert!(inc.low < inc.value && inc.high > inc.value);
        // Margin 0.5, rewards 50,000, 2000 emails at 1.
        let profit = f.incremental_profit.unwrap();
        assert!((profit.value - (250_000.0 - 52_000.0)).abs() < 1e-6);
        assert!((profit.high - profit.low - (inc.high - inc.low) * 0.5).abs() < 1e-6);
        assert!((f.lift.value - 0.1).abs() < 1e-12);
        assert_eq!(f.arms[0].variant, "a");
        assert_eq!(f.arms[1].group, Group::Holdout);
    }

    #[test]
    fn a_small_holdout_gives_a_wide_money_interval_and_none_gives_no_figure() {
        let with_holdout = |holdout: i64| {
            stored(vec![
                row(
                    "a",
                    Group::Treated,
                    Some(day(0)),
                    &[
                        ("enrolled", 5000),
                        ("reactivated", 1000),
                        ("revenue_minor", 5_000_000),
                    ],
                ),
                row(
                    "holdout",
                    Group::Holdout,
                    Some(day(0)),
                    &[
                        ("enrolled", holdout),
                        ("reactivated", holdout / 10),
                        ("revenue_minor", holdout / 10 * 5000),
                    ],
                ),
            ])
        };
        let width = |holdout| {
            let e = of_flow(&with_holdout(holdout), "shop", day(1), economics())
                .incremental_revenue
                .unwrap();
            e.high - e.low
        };
        assert!(
            width(60) > 3.0 * width(5000),
            "{} {}",
            width(60),
            width(5000)
        );
        let none = of_flow(&with_holdout(0), "shop", day(1), economics());
        assert_eq!(none.incremental_revenue, None);
        assert_eq!(none.incremental_profit, None);
    }

    #[test]
    fn still_active_counts_only_reactivations_old_enough_against_the_holdout() {
        let rows = stored(vec![
            row(
                "a",
                Group::Treated,
                Some(day(0)),
                &[("enrolled", 200), ("reactivated", 20)],
            ),
            // Came back 30 days before the report: too young to have been active 90 days later.
            row("a", Group::Treated, Some(day(120)), &[("reactivated", 117)]),
            row(
                "a",
                Group::Treated,
                Some(day(100)),
                &[("still_active_90d", 8)],
            ),
            row(
                "holdout",
                Group::Holdout,
                Some(day(0)),
                &[("enrolled", 100), ("reactivated", 10)],
            ),
            row(
                "holdout",
                Group::Holdout,
                Some(day(95)),
                &[("still_active_90d", 2)],
            ),
        ]);
        let f = of_flow(&rows, "shop", day(150), economics());
        assert_eq!(
            (
                f.still_active.treated.successes,
                f.still_active.treated.trials
            ),
            (8, 20)
        );
        assert_eq!(
            (
                f.still_active.holdout.successes,
                f.still_active.holdout.trials
            ),
            (2, 10)
        );
        assert!((f.still_active.difference.unwrap().value - 0.2).abs() < 1e-12);
    }

    #[test]
    fn the_window_holds_only_its_own_days_per_customer_enrolled_by_then() {
        let rows = stored(vec![
            row(
                "a",
                Group::Treated,
                Some(day(0)),
                &[
                    ("enrolled", 1000),
                    ("revenue_minor", 900_000),
                    ("sent", 1000),
                ],
            ),
            row(
                "a",
                Group::Treated,
                Some(day(40)),
                &[
                    ("revenue_minor", 100_000),
                    ("sent", 500),
                    ("reward_cost_minor", 1_000),
                ],
            ),
            row(
                "holdout",
                Group::Holdout,
                Some(day(0)),
                &[("enrolled", 100), ("revenue_minor", 10_000)],
            ),
            row(
                "holdout",
                Group::Holdout,
                Some(day(45)),
                &[("revenue_minor", 2_000)],
            ),
        ]);
        let f = of_flow(&rows, "shop", day(50), economics());
        let w = f.window.incremental_revenue.unwrap();
        // 100,000 − 1000 × 2,000 / 100.
        assert!((w.value - 80_000.0).abs() < 1e-6);
        let p = f.window.incremental_profit.unwrap();
        assert!(
            (p.value - (40_000.0 - 1_000.0 - 500.0)).abs() < 1e-6,
            "{p:?}"
        );
    }

    #[test]
    fn the_headline_is_the_win_back_flow_s_and_says_so() {
        let rows = stored(vec![
            row(
                "a",
                Group::Treated,
                Some(day(0)),
                &[("enrolled", 1000), ("reactivated", 200)],
            ),
            row(
                "holdout",
                Group::Holdout,
                Some(day(0)),
                &[("enrolled", 1000), ("reactivated", 100)],
            ),
        ]);
        let h = headline(&of_flow(&rows, "shop", day(1), economics()));
        assert!((h.brought_back.value - 100.0).abs() < 1e-9);
        assert!(h.brought_back.low < 100.0 && h.brought_back.high > 100.0);
        assert!(h.basis_text().contains("win-back flow"));
    }
}
