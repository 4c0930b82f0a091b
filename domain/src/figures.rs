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

use crate::experiment::{Group, PROGRAM_HOLDOUT};
use crate::metrics::{counter, lift, CohortKey, CounterRow, Counts, Lift, Rate, Z95};

/// The days of the recent window: the profit the alarm watches.
pub const WINDOW_DAYS: u64 = 28;
/// How long after coming back a customer must still order to count as still active.
pub const STILL_ACTIVE_DAYS: u64 = 90;
/// How long after the attribution window an order still counts as one the customer "would have
/// placed anyway" when telling orders merely pulled forward from customers won: the horizon is
/// the attribution window and these days.
pub const PULLED_FORWARD_DAYS: u64 = 90;
/// Program-holdout enrollments needed before the headline is the program's: below it a rate's
/// 95% interval is more than ±10 points wide, and the headline stays the win-back flow's.
pub const MIN_PROGRAM_HOLDOUT: i64 = 100;

/// Whether a counter row is the program holdout's (kept in each flow's counters, but no part of
/// the flow's own experiment).
pub fn is_program_holdout(key: &CohortKey) -> bool {
    key.variant == PROGRAM_HOLDOUT
}

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
    // The program holdout is no part of the flow's own experiment: its figures are the
    // program's ([`of_program`]).
    let rows: Vec<&CounterRow> = rows
        .iter()
        .filter(|r| r.key.campaign == cohort && !is_program_holdout(&r.key))
        .collect();
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

/// Orders merely pulled forward: customers the program brought back within the attribution
/// window who would have ordered a little later anyway. Over a horizon of the attribution window
/// and [`PULLED_FORWARD_DAYS`] more, for the enrollments old enough to have lived it whole, the
/// customers brought back within the window less those brought back within the horizon: the
/// held-out customers whose first order came after the window (within the horizon) outnumber,
/// per enrollment, the offered customers who did, by the orders the emails only moved earlier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PulledForward {
    /// The attribution window and [`PULLED_FORWARD_DAYS`].
    pub horizon_days: u64,
    /// The enrollments counted are those of this day or before: old enough to have lived the
    /// whole horizon.
    pub enrolled_by: NaiveDate,
    /// Of the offered enrollments old enough: those whose first order came after the window,
    /// within the horizon.
    pub offered_late: Rate,
    /// The same of the program holdout's.
    pub held_out_late: Rate,
    /// Enrollments whose win was an order merely pulled forward, with the 95% interval: the
    /// held-out late share less the offered one, times the offered enrollments old enough.
    /// Not above 0: nothing measured as pulled forward.
    pub customers: Estimate,
}

/// The whole program's figures as of a day: every enrollment of every flow outside the program
/// holdout (offered the program: the flows' own holdouts included, by intention to treat)
/// against the program holdout, pooled over the flows. The unit is the enrollment: a customer
/// enrolled in two flows counts twice, in both arms alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgramFigures {
    pub as_of: NaiveDate,
    /// Offered enrollments and how many of them came back within the attribution window.
    pub offered: Rate,
    /// Program-holdout enrollments and how many came back.
    pub held_out: Rate,
    /// Offered minus held out.
    pub lift: Lift,
    /// Customers the program brought back: the lift times the offered enrollments.
    pub brought_back: Estimate,
    pub offered_counts: Counts,
    pub held_out_counts: Counts,
    pub reward_cost_minor: i64,
    pub email_cost_minor: i64,
    /// `None` with nobody in the program holdout.
    pub incremental_revenue: Option<Estimate>,
    /// Incremental revenue times the margin, less every flow's rewards and emails.
    pub incremental_profit: Option<Estimate>,
    pub window: Window,
    /// `None` until some enrollments of both arms are old enough.
    pub pulled_forward: Option<PulledForward>,
}

impl ProgramFigures {
    /// Whether the program holdout holds enough enrollments ([`MIN_PROGRAM_HOLDOUT`]) for the
    /// headline to be the program's.
    pub fn measured(&self) -> bool {
        self.held_out.trials >= MIN_PROGRAM_HOLDOUT
    }
}

/// The whole program's figures from the counter rows of every flow (as [`of_flow`] takes them;
/// each flow's program-holdout rows are its [`PROGRAM_HOLDOUT`] variant), as of the end of
/// `as_of`, for a campaign whose attribution window is `attribution_days`.
pub fn of_program(
    rows: &[CounterRow],
    as_of: NaiveDate,
    economics: Economics,
    attribution_days: u32,
) -> ProgramFigures {
    let (held, offered): (Vec<&CounterRow>, Vec<&CounterRow>) =
        rows.iter().partition(|r| is_program_holdout(&r.key));
    let total = |rows: &[&CounterRow]| {
        let mut c = Counts::default();
        for r in rows.iter().filter(|r| r.day.is_none()) {
            c.merge(&r.counts);
        }
        c
    };
    let (offered_c, held_c) = (total(&offered), total(&held));
    let (offered_rate, held_rate) = (offered_c.reactivation_rate(), held_c.reactivation_rate());
    let l = lift(offered_rate, held_rate);
    let n = offered_rate.trials as f64;

    let per_winner = {
        let won = offered_c.get(counter::REACTIVATED) + held_c.get(counter::REACTIVATED);
        let revenue = net_revenue(&offered_c) + net_revenue(&held_c);
        if won > 0 {
            revenue as f64 / won as f64
        } else {
            0.0
        }
    };
    let costs = |c: &Counts| {
        c.get(counter::REWARD_COST) as f64
            + (c.get(counter::SENT) as f64 * economics.email_cost_minor).round()
    };
    let profit =
        |inc: Option<Estimate>, c: &Counts| inc.map(|i| i.times_less(economics.margin, costs(c)));
    let money = |c: &Counts, enrolled: &Counts| ArmMoney {
        enrolled: enrolled.get(counter::ENROLLED),
        revenue: net_revenue(c),
    };
    let inc = incremental(
        money(&offered_c, &offered_c),
        money(&held_c, &held_c),
        per_winner,
    );
    let window_start = as_of
        .checked_sub_days(Days::new(WINDOW_DAYS))
        .unwrap_or(NaiveDate::MIN);
    let (offered_w, held_w) = (
        days_between(&offered, window_start, as_of),
        days_between(&held, window_start, as_of),
    );
    let window_inc = incremental(
        money(&offered_w, &offered_c),
        money(&held_w, &held_c),
        per_winner,
    );

    let horizon_days = u64::from(attribution_days) + PULLED_FORWARD_DAYS;
    let pulled_forward = as_of
        .checked_sub_days(Days::new(horizon_days))
        .and_then(|enrolled_by| {
            // The late orders are counted on their enrollment's day, so these are the
            // enrollments of the days old enough, and what they did over the whole horizon.
            let old = |rows: &[&CounterRow]| {
                let c = days_between(rows, NaiveDate::MIN, enrolled_by);
                Rate::new(c.get(counter::ORDERED_LATE), c.get(counter::ENROLLED))
            };
            let (offered_late, held_out_late) = (old(&offered), old(&held));
            if offered_late.trials == 0 || held_out_late.trials == 0 {
                return None;
            }
            let d = lift(held_out_late, offered_late);
            let m = offered_late.trials as f64;
            Some(PulledForward {
                horizon_days,
                enrolled_by,
                offered_late,
                held_out_late,
                customers: Estimate {
                    value: d.value * m,
                    low: d.low * m,
                    high: d.high * m,
                },
            })
        });

    ProgramFigures {
        as_of,
        offered: offered_rate,
        held_out: held_rate,
        brought_back: Estimate {
            value: l.value * n,
            low: l.low * n,
            high: l.high * n,
        },
        lift: l,
        reward_cost_minor: offered_c.get(counter::REWARD_COST),
        email_cost_minor: (offered_c.get(counter::SENT) as f64 * economics.email_cost_minor).round()
            as i64,
        incremental_revenue: inc,
        incremental_profit: profit(inc, &offered_c),
        window: Window {
            days: WINDOW_DAYS,
            incremental_revenue: window_inc,
            incremental_profit: profit(window_inc, &offered_w),
        },
        pulled_forward,
        offered_counts: offered_c,
        held_out_counts: held_c,
    }
}

/// Whose figures the program's headline shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadlineBasis {
    /// The whole program against the program holdout.
    Program,
    /// The win-back flow's own holdout: the program holdout is not large enough yet (or the
    /// campaign has none), so the headline is the win-back flow's, and says so.
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
    /// Program-holdout enrollments so far.
    pub program_held_out: i64,
}

impl Headline {
    /// What the headline is based on, in words.
    pub fn basis_text(&self) -> String {
        match self.basis {
            HeadlineBasis::Program => {
                "the whole program's figures: every flow's enrollments (their own holdouts included) against the program holdout, held out of every flow".to_string()
            }
            HeadlineBasis::WinBackFlow => format!(
                "the win-back flow's figures against its own holdout: the program holdout has {} of the {} enrollments it needs before the headline is the whole program's",
                self.program_held_out, MIN_PROGRAM_HOLDOUT
            ),
        }
    }
}

/// The headline: the program's figures once its holdout is large enough
/// ([`ProgramFigures::measured`]), until then the win-back flow's.
pub fn headline(win_back: &FlowFigures, program: Option<&ProgramFigures>) -> Headline {
    let held_out = program.map_or(0, |p| p.held_out.trials);
    if let Some(program) = program.filter(|p| p.measured()) {
        return Headline {
            basis: HeadlineBasis::Program,
            brought_back: program.brought_back,
            lift: program.lift,
            window_profit: program.window.incremental_profit,
            program_held_out: program.held_out.trials,
        };
    }
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
        program_held_out: held_out,
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
        let program = of_program(&rows, day(1), economics(), 14);
        let h = headline(&of_flow(&rows, "shop", day(1), economics()), Some(&program));
        assert!((h.brought_back.value - 100.0).abs() < 1e-9);
        assert!(h.brought_back.low < 100.0 && h.brought_back.high > 100.0);
        assert_eq!(h.basis, HeadlineBasis::WinBackFlow);
        assert!(h.basis_text().contains("win-back flow"));
        assert!(
            h.basis_text().contains("0 of the 100"),
            "{}",
            h.basis_text()
        );
    }

    /// A flow's rows under `flow` (the cohort name), as `row` makes them.
    fn flow_row(
        flow: &str,
        variant: &str,
        group: Group,
        day: Option<NaiveDate>,
        counts: &[(&str, i64)],
    ) -> CounterRow {
        let mut r = row(variant, group, day, counts);
        r.key.campaign = flow.into();
        r
    }

    /// Two flows, each with its treated, its own holdout and its program holdout.
    fn two_flows(held_out_per_flow: i64) -> Vec<CounterRow> {
        let mut days = Vec::new();
        for flow in ["shop", "shop-at-risk"] {
            days.push(flow_row(
                flow,
                "a",
                Group::Treated,
                Some(day(0)),
                &[
                    ("enrolled", 900),
                    ("reactivated", 270),
                    ("revenue_minor", 270_000),
                    ("sent", 2_000),
                    ("reward_cost_minor", 20_000),
                ],
            ));
            days.push(flow_row(
                flow,
                "holdout",
                Group::Holdout,
                Some(day(0)),
                &[
                    ("enrolled", 100),
                    ("reactivated", 20),
                    ("revenue_minor", 20_000),
                ],
            ));
            days.push(flow_row(
                flow,
                "program-holdout",
                Group::Holdout,
                Some(day(0)),
                &[
                    ("enrolled", held_out_per_flow),
                    ("reactivated", held_out_per_flow / 10),
                    ("revenue_minor", held_out_per_flow / 10 * 1_000),
                ],
            ));
        }
        stored(days)
    }

    #[test]
    fn the_program_pools_every_flow_s_offered_enrollments_against_the_program_holdout() {
        let rows = two_flows(100);
        let p = of_program(&rows, day(10), economics(), 14);
        // Offered: both flows' treated and own holdouts (intention to treat).
        assert_eq!((p.offered.successes, p.offered.trials), (580, 2_000));
        assert_eq!((p.held_out.successes, p.held_out.trials), (20, 200));
        assert!((p.lift.value - (0.29 - 0.10)).abs() < 1e-12);
        assert!((p.brought_back.value - 380.0).abs() < 1e-9);
        assert!(p.brought_back.low < 380.0 && p.brought_back.high > 380.0);
        // 580,000 − 2,000 × 20,000 / 200; margin 0.5, rewards 40,000 and 4,000 emails at 1.
        let inc = p.incremental_revenue.unwrap();
        assert!((inc.value - 380_000.0).abs() < 1e-6);
        let profit = p.incremental_profit.unwrap();
        assert!((profit.value - (190_000.0 - 44_000.0)).abs() < 1e-6);
        assert!(profit.low < profit.value && profit.high > profit.value);
        assert!(p.measured());
        // The headline is the program's now.
        let wb = of_flow(&rows, "shop", day(10), economics());
        let h = headline(&wb, Some(&p));
        assert_eq!(h.basis, HeadlineBasis::Program);
        assert!((h.brought_back.value - 380.0).abs() < 1e-9);
        assert!(h.basis_text().contains("whole program"));
        // The flow's own figures leave the program holdout out.
        assert_eq!(wb.holdout.trials, 100);
        assert!(wb.arms.iter().all(|a| a.variant != "program-holdout"));
        // Too few held out: the win-back flow's headline, saying how many it has.
        let small = of_program(&two_flows(40), day(10), economics(), 14);
        assert!(!small.measured());
        let h = headline(&wb, Some(&small));
        assert_eq!(h.basis, HeadlineBasis::WinBackFlow);
        assert!(
            h.basis_text().contains("80 of the 100"),
            "{}",
            h.basis_text()
        );
    }

    #[test]
    fn orders_merely_pulled_forward_are_the_late_orders_the_offered_did_not_place() {
        // Enrolled on day 0 and day 150; the report on day 200 with a 14-day window: only day
        // 0's enrollments have lived the 104-day horizon.
        let mut days = Vec::new();
        for (d, late_offered, late_held) in [(0, 100, 30), (150, 0, 0)] {
            days.push(row(
                "a",
                Group::Treated,
                Some(day(d)),
                &[
                    ("enrolled", 1000),
                    ("reactivated", 300),
                    ("ordered_late", late_offered),
                ],
            ));
            days.push(row(
                "program-holdout",
                Group::Holdout,
                Some(day(d)),
                &[
                    ("enrolled", 100),
                    ("reactivated", 15),
                    ("ordered_late", late_held),
                ],
            ));
        }
        let rows = stored(days);
        let p = of_program(&rows, day(200), economics(), 14);
        let pf = p.pulled_forward.unwrap();
        assert_eq!(pf.horizon_days, 104);
        assert_eq!(pf.enrolled_by, day(96));
        assert_eq!(
            (pf.offered_late.successes, pf.offered_late.trials),
            (100, 1000)
        );
        assert_eq!(
            (pf.held_out_late.successes, pf.held_out_late.trials),
            (30, 100)
        );
        // (30% − 10%) × 1,000 offered: 200 of the wins would have come later anyway.
        assert!((pf.customers.value - 200.0).abs() < 1e-9);
        assert!(
            pf.customers.low > 100.0 && pf.customers.high < 300.0,
            "{pf:?}"
        );
        // Too early: no cohort has lived the horizon.
        assert_eq!(
            of_program(&rows, day(100), economics(), 14).pulled_forward,
            None
        );
    }
}
