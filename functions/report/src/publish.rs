//! The daily metrics: each flow's figures as EMF records, by `Campaign` (the running campaign's
//! name), `Flow` and `Variant` (`all` for the flow as a whole), each with its 95% interval as two
//! more metrics (`…Low`, `…High`). The dashboard's first row and the losing-money alarm read them.
//!
//! Rates and lift are in percent and points to the tenth, money in the campaign's currency to
//! the cent: the values `winback report` and the weekly email print.

use shared::domain::experiment::Group;
use shared::domain::figures::Estimate;
use shared::domain::metrics::{Lift, Rate};
use shared::emf::{Record, Unit};

use crate::model::cents;
use crate::program::Program;

/// The metric names (namespace `Winback`).
pub mod metric {
    /// Share of the enrolled (emailed) customers who came back, percent.
    pub const REACTIVATION_RATE: &str = "ReactivationRate";
    /// Share of the held-out customers who came back, percent.
    pub const HOLDOUT_RATE: &str = "HoldoutReactivationRate";
    /// Reactivation rate minus the holdout's, points.
    pub const LIFT: &str = "LiftPoints";
    /// Customers enrolled and emailed, since the flow began (the rate's base).
    pub const ENROLLED: &str = "EnrolledToDate";
    /// Customers held out, since the flow began (the holdout rate's base).
    pub const HOLDOUT_ENROLLED: &str = "HeldOutToDate";
    /// Customers who came back because of the emails (lift × enrolled).
    pub const BROUGHT_BACK: &str = "BroughtBack";
    /// Revenue above the holdout's per customer, times the enrolled, since the flow began.
    pub const INCREMENTAL_REVENUE: &str = "IncrementalRevenue";
    /// Incremental revenue times the margin, less rewards and emails, since the flow began.
    pub const INCREMENTAL_PROFIT: &str = "IncrementalProfit";
    /// Incremental profit of the last 28 days (the alarm's metric).
    pub const PROFIT_28D: &str = "IncrementalProfit28d";
    /// Still ordering 90 days after coming back, of those who came back 90+ days ago, percent.
    pub const STILL_ACTIVE: &str = "StillActive90d";
    /// The same for the holdout, percent.
    pub const HOLDOUT_STILL_ACTIVE: &str = "HoldoutStillActive90d";
}

/// A percent (or points) value to the tenth, as the report prints it.
pub fn tenth(x: f64) -> f64 {
    (x * 1000.0).round() / 10.0
}

/// Minor units as major units to the cent, as the report prints them.
pub fn major(minor: f64) -> f64 {
    cents(minor) as f64 / 100.0
}

fn with_rate(r: Record, name: &str, rate: &Rate) -> Record {
    r.metric(name, tenth(rate.value), Unit::Percent)
        .metric(&format!("{name}Low"), tenth(rate.low), Unit::Percent)
        .metric(&format!("{name}High"), tenth(rate.high), Unit::Percent)
}

fn with_lift(r: Record, lift: &Lift) -> Record {
    r.metric(metric::LIFT, tenth(lift.value), Unit::None)
        .metric(&format!("{}Low", metric::LIFT), tenth(lift.low), Unit::None)
        .metric(
            &format!("{}High", metric::LIFT),
            tenth(lift.high),
            Unit::None,
        )
}

fn with_money(r: Record, name: &str, e: Option<Estimate>) -> Record {
    match e {
        Some(e) => r
            .metric(name, major(e.value), Unit::None)
            .metric(&format!("{name}Low"), major(e.low), Unit::None)
            .metric(&format!("{name}High"), major(e.high), Unit::None),
        None => r,
    }
}

/// The records of every flow of `program`, for campaign `campaign`.
pub fn records(campaign: &str, program: &Program) -> Vec<Record> {
    let mut out = Vec::new();
    for (flow, report) in program.all() {
        let f = &report.figures;
        let has_holdout = f.holdout.trials > 0;
        let mut all = Record::new(&[
            ("Campaign", campaign),
            ("Flow", flow.as_str()),
            ("Variant", "all"),
        ])
        .metric(metric::ENROLLED, f.treated.trials as f64, Unit::Count)
        .metric(
            metric::HOLDOUT_ENROLLED,
            f.holdout.trials as f64,
            Unit::Count,
        );
        all = with_rate(all, metric::REACTIVATION_RATE, &f.treated);
        if has_holdout {
            all = with_rate(all, metric::HOLDOUT_RATE, &f.holdout);
            all = with_lift(all, &f.lift);
            all = all
                .metric(
                    metric::BROUGHT_BACK,
                    f.lift.incremental_customers.round(),
                    Unit::Count,
                )
                .metric(
                    &format!("{}Low", metric::BROUGHT_BACK),
                    (f.lift.low * f.treated.trials as f64).round(),
                    Unit::Count,
                )
                .metric(
                    &format!("{}High", metric::BROUGHT_BACK),
                    (f.lift.high * f.treated.trials as f64).round(),
                    Unit::Count,
                );
        }
        all = with_money(all, metric::INCREMENTAL_REVENUE, f.incremental_revenue);
        all = with_money(all, metric::INCREMENTAL_PROFIT, f.incremental_profit);
        all = with_money(all, metric::PROFIT_28D, f.window.incremental_profit);
        if f.still_active.treated.trials > 0 {
            all = with_rate(all, metric::STILL_ACTIVE, &f.still_active.treated);
        }
        if f.still_active.holdout.trials > 0 {
            all = with_rate(all, metric::HOLDOUT_STILL_ACTIVE, &f.still_active.holdout);
        }
        out.push(all);
        for arm in f.arms.iter().filter(|a| a.group == Group::Treated) {
            let mut r = Record::new(&[
                ("Campaign", campaign),
                ("Flow", flow.as_str()),
                ("Variant", arm.variant.as_str()),
            ])
            .metric(metric::ENROLLED, arm.rate.trials as f64, Unit::Count);
            r = with_rate(r, metric::REACTIVATION_RATE, &arm.rate);
            if let Some(l) = &arm.lift {
                r = with_lift(r, l);
            }
            r = with_money(r, metric::INCREMENTAL_REVENUE, arm.incremental_revenue);
            r = with_money(r, metric::INCREMENTAL_PROFIT, arm.incremental_profit);
            out.push(r);
        }
    }
    out
}
