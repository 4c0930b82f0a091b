//! The daily metrics: each flow's figures as EMF records, by `Campaign` (the running campaign's
//! name), `Flow` and `Variant` (`all` for the flow as a whole), each with its 95% interval as two
//! more metrics (`…Low`, `…High`); the whole program's under `Flow` [`PROGRAM_FLOW`] (offered
//! against the program holdout, with the orders merely pulled forward). The dashboard's first row
//! and the losing-money alarm read them.
//!
//! Rates and lift are in percent and points to the tenth, money in the campaign's currency to
//! the cent: the values `winback report` and the weekly email print.

use shared::domain::experiment::Group;
use shared::domain::figures::Estimate;
use shared::domain::metrics::{Lift, Rate};
use shared::emf::{Record, Unit};

use crate::model::cents;
use crate::program::Program;

/// The metric names (namespace `Winback`), each with its `…Low` and `…High` where it has an
/// interval: [`shared::telemetry::metric::report`].
pub use shared::telemetry::metric::report as metric;

/// The `Flow` dimension of the whole program's figures.
pub const PROGRAM_FLOW: &str = "program";

/// A percent (or points) value to the tenth, as the report prints it.
pub fn tenth(x: f64) -> f64 {
    (x * 1000.0).round() / 10.0
}

/// Minor units as major units to the cent, as the report prints them.
pub fn major(minor: f64) -> f64 {
    cents(minor) as f64 / 100.0
}

/// A figure's three metric names: the figure, its interval's low and high ends.
type Names = [&'static str; 3];

const RATE: Names = [
    metric::REACTIVATION_RATE,
    metric::REACTIVATION_RATE_LOW,
    metric::REACTIVATION_RATE_HIGH,
];
const HOLDOUT_RATE: Names = [
    metric::HOLDOUT_RATE,
    metric::HOLDOUT_RATE_LOW,
    metric::HOLDOUT_RATE_HIGH,
];
const LIFT: Names = [metric::LIFT, metric::LIFT_LOW, metric::LIFT_HIGH];
const BROUGHT_BACK: Names = [
    metric::BROUGHT_BACK,
    metric::BROUGHT_BACK_LOW,
    metric::BROUGHT_BACK_HIGH,
];
const REVENUE: Names = [
    metric::INCREMENTAL_REVENUE,
    metric::INCREMENTAL_REVENUE_LOW,
    metric::INCREMENTAL_REVENUE_HIGH,
];
const PROFIT: Names = [
    metric::INCREMENTAL_PROFIT,
    metric::INCREMENTAL_PROFIT_LOW,
    metric::INCREMENTAL_PROFIT_HIGH,
];
const PROFIT_28D: Names = [
    metric::PROFIT_28D,
    metric::PROFIT_28D_LOW,
    metric::PROFIT_28D_HIGH,
];
const STILL: Names = [
    metric::STILL_ACTIVE,
    metric::STILL_ACTIVE_LOW,
    metric::STILL_ACTIVE_HIGH,
];
const PULLED_FORWARD: Names = [
    metric::PULLED_FORWARD,
    metric::PULLED_FORWARD_LOW,
    metric::PULLED_FORWARD_HIGH,
];
const HOLDOUT_STILL: Names = [
    metric::HOLDOUT_STILL_ACTIVE,
    metric::HOLDOUT_STILL_ACTIVE_LOW,
    metric::HOLDOUT_STILL_ACTIVE_HIGH,
];

fn three(r: Record, names: Names, values: [f64; 3], unit: Unit) -> Record {
    r.metric(names[0], values[0], unit)
        .metric(names[1], values[1], unit)
        .metric(names[2], values[2], unit)
}

fn with_rate(r: Record, names: Names, rate: &Rate) -> Record {
    let values = [tenth(rate.value), tenth(rate.low), tenth(rate.high)];
    three(r, names, values, Unit::Percent)
}

fn with_lift(r: Record, lift: &Lift) -> Record {
    let values = [tenth(lift.value), tenth(lift.low), tenth(lift.high)];
    three(r, LIFT, values, Unit::None)
}

fn with_money(r: Record, names: Names, e: Option<Estimate>) -> Record {
    match e {
        Some(e) => three(
            r,
            names,
            [major(e.value), major(e.low), major(e.high)],
            Unit::None,
        ),
        None => r,
    }
}

/// The whole program's record, for campaign `campaign` (by `Flow` [`PROGRAM_FLOW`], `Variant`
/// `all`): enrollments offered (`EnrolledToDate`) and held out of every flow
/// (`HeldOutToDate`), their rates, the lift, customers brought back, money, and the orders
/// merely pulled forward once enrollments are old enough. Nothing but the counts before anyone
/// is in the program holdout.
fn program_record(campaign: &str, program: &Program) -> Record {
    let p = &program.figures;
    let mut r = Record::new(&[
        ("Campaign", campaign),
        ("Flow", PROGRAM_FLOW),
        ("Variant", "all"),
    ])
    .metric(
        metric::ENROLLED_TO_DATE,
        p.offered.trials as f64,
        Unit::Count,
    )
    .metric(
        metric::HELD_OUT_TO_DATE,
        p.held_out.trials as f64,
        Unit::Count,
    );
    r = with_rate(r, RATE, &p.offered);
    if p.held_out.trials > 0 {
        r = with_rate(r, HOLDOUT_RATE, &p.held_out);
        r = with_lift(r, &p.lift);
        let back = [
            p.brought_back.value,
            p.brought_back.low,
            p.brought_back.high,
        ]
        .map(f64::round);
        r = three(r, BROUGHT_BACK, back, Unit::Count);
    }
    r = with_money(r, REVENUE, p.incremental_revenue);
    r = with_money(r, PROFIT, p.incremental_profit);
    r = with_money(r, PROFIT_28D, p.window.incremental_profit);
    if let Some(pf) = &p.pulled_forward {
        // None is pulled forward when the difference is not above 0 (as the report prints it).
        let c =
            [pf.customers.value, pf.customers.low, pf.customers.high].map(|x| x.max(0.0).round());
        r = three(r, PULLED_FORWARD, c, Unit::Count);
    }
    r
}

/// The records of every flow of `program`, for campaign `campaign`: the whole program's, then
/// each flow's by `Flow` and `Variant` `all`, then by each treated variant.
pub fn records(campaign: &str, program: &Program) -> Vec<Record> {
    let mut out = vec![program_record(campaign, program)];
    for (flow, report) in program.all() {
        let f = &report.figures;
        let dims = |variant: &str| {
            Record::new(&[
                ("Campaign", campaign),
                ("Flow", flow.as_str()),
                ("Variant", variant),
            ])
        };
        let n = f.treated.trials as f64;
        let mut all = dims("all")
            .metric(metric::ENROLLED_TO_DATE, n, Unit::Count)
            .metric(
                metric::HELD_OUT_TO_DATE,
                f.holdout.trials as f64,
                Unit::Count,
            );
        all = with_rate(all, RATE, &f.treated);
        if f.holdout.trials > 0 {
            all = with_rate(all, HOLDOUT_RATE, &f.holdout);
            all = with_lift(all, &f.lift);
            let back = [f.lift.value, f.lift.low, f.lift.high].map(|l| (l * n).round());
            all = three(all, BROUGHT_BACK, back, Unit::Count);
        }
        all = with_money(all, REVENUE, f.incremental_revenue);
        all = with_money(all, PROFIT, f.incremental_profit);
        all = with_money(all, PROFIT_28D, f.window.incremental_profit);
        if f.still_active.treated.trials > 0 {
            all = with_rate(all, STILL, &f.still_active.treated);
        }
        if f.still_active.holdout.trials > 0 {
            all = with_rate(all, HOLDOUT_STILL, &f.still_active.holdout);
        }
        out.push(all);
        for arm in f.arms.iter().filter(|a| a.group == Group::Treated) {
            let mut r = dims(&arm.variant).metric(
                metric::ENROLLED_TO_DATE,
                arm.rate.trials as f64,
                Unit::Count,
            );
            r = with_rate(r, RATE, &arm.rate);
            if let Some(l) = &arm.lift {
                r = with_lift(r, l);
            }
            r = with_money(r, REVENUE, arm.incremental_revenue);
            r = with_money(r, PROFIT, arm.incremental_profit);
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_published_to_the_tenth_and_money_to_the_cent() {
        assert_eq!(tenth(0.26849), 26.8);
        assert_eq!(tenth(-0.0015), -0.2);
        assert_eq!(major(123_456.4), 1234.56);
        assert_eq!(major(-34_078.5), -340.79);
    }
}
