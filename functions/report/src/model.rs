//! The campaign report, from the stored counters alone: reactivation with confidence intervals,
//! lift over the holdout, money, reasons, list health. Printed as text and written as HTML. Its
//! headline figures are [`FlowFigures`], the domain's, which the daily metrics and the weekly
//! email show too.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use serde::Serialize;
use shared::campaign::CampaignConfig;
use shared::domain::experiment::Group;
use shared::domain::figures::{self, Economics, Estimate, FlowFigures, ProgramFigures};
use shared::domain::metrics::{
    compare_variants, counter, CounterRow, Counts, Lift, Pairwise, Rate, Verdict,
};
use shared::domain::money::Money;
use shared::domain::sequence::{cohort_campaign, Flow};
use shared::domain::survey::Reason;

/// One arm of the experiment.
#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    pub variant: String,
    pub group: Group,
    pub counts: Counts,
    pub rate: Rate,
    /// Against the holdout; `None` for the holdout itself.
    pub lift: Option<Lift>,
}

/// One step of the sequence.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub step: u8,
    pub sent: i64,
    /// Won back while this step was their latest email, over those who got it.
    pub rate: Rate,
}

/// Cumulative counts at the end of a day.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DayPoint {
    pub day: NaiveDate,
    pub treated_enrolled: i64,
    pub treated_reactivated: i64,
    pub holdout_enrolled: i64,
    pub holdout_reactivated: i64,
}

/// Everything the report says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub campaign: String,
    /// What the figures come from (a simulation's settings, a store).
    pub source: String,
    pub currency: String,
    pub treated: Counts,
    pub holdout: Counts,
    pub treated_rate: Rate,
    pub holdout_rate: Rate,
    pub lift: Lift,
    pub variants: Vec<VariantRow>,
    /// The treated variants against each other, every pair (none with a single variant).
    pub comparisons: Vec<Pairwise>,
    pub steps: Vec<StepRow>,
    pub reasons: Vec<(Reason, i64)>,
    /// Per reason, of the treated customers who gave it: how many came back.
    pub reason_outcomes: Vec<(Reason, Rate)>,
    pub nps: [(String, i64); 3],
    pub series: Vec<DayPoint>,
    /// The domain's figures of this flow: what every view of it shows.
    pub figures: FlowFigures,
    /// Attributed revenue of treated customers plus their later orders, minor units.
    pub revenue_minor: i64,
    /// Revenue per treated customer above the holdout's, times treated customers, minor units
    /// (`None` without a holdout).
    pub incremental_revenue_minor: Option<i64>,
    pub reward_cost_minor: i64,
    /// Revenue (attributed and later orders) of treated customers in other currencies than the
    /// campaign's, by currency, minor units: kept apart, never added to the figures above.
    pub revenue_other_currencies: BTreeMap<String, i64>,
    /// Reward cost in other currencies, by currency, minor units.
    pub reward_cost_other_currencies: BTreeMap<String, i64>,
    /// The campaign's `[exchange_rates]`: each other currency's amounts are also shown at its
    /// rate, as an indication beside them (still never added to the figures above).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exchange_rates: shared::domain::money::ExchangeRates,
    /// Incremental revenue per unit of reward cost (`None` when nothing was given away, or
    /// without a holdout).
    pub return_on_rewards: Option<f64>,
    pub unsubscribe_rate: Rate,
    pub fewer_emails_rate: Rate,
    pub bounce_rate: Rate,
    pub complaint_rate: Rate,
    pub open_rate: Rate,
    pub click_rate: Rate,
}

impl Report {
    /// One sentence per pair of treated variants: the difference, and who wins or how many more
    /// customers it would take to know.
    pub fn comparison_lines(&self) -> Vec<String> {
        self.comparisons
            .iter()
            .map(|c| {
                let figures = format!(
                    "{} vs {}: {:+.1} pts [{:+.1}, {:+.1}]",
                    c.first,
                    c.second,
                    c.difference * 100.0,
                    c.low * 100.0,
                    c.high * 100.0
                );
                match &c.verdict {
                    Verdict::Wins { winner } => {
                        format!("{figures}: {winner} wins, it brings back more customers")
                    }
                    Verdict::TooClose {
                        more_per_variant: Some(more),
                    } => format!(
                        "{figures}: no winner yet; about {more} more enrolled customers in each would tell a difference this size apart (80% of the time, if it is real)"
                    ),
                    Verdict::TooClose {
                        more_per_variant: None,
                    } => format!("{figures}: no winner; they came back at the same rate"),
                }
            })
            .collect()
    }

    /// The report of one flow of a campaign, from the counter rows kept under the flow's name,
    /// in the campaign's currency and with its exchange rates.
    pub fn of_flow(
        config: &CampaignConfig,
        flow: Flow,
        source: &str,
        rows: &[CounterRow],
        as_of: NaiveDate,
    ) -> Report {
        Report::from_rows(
            &cohort_campaign(&config.name, flow),
            &config.currency,
            config.steps_of(flow).len() as u8,
            source,
            rows,
            as_of,
            economics(config),
        )
        .with_exchange_rates(&config.exchange_rates)
    }

    /// Builds the report of `campaign` from its counter rows, as of the end of `as_of`.
    pub fn from_rows(
        campaign: &str,
        currency: &str,
        steps: u8,
        source: &str,
        rows: &[CounterRow],
        as_of: NaiveDate,
        economics: Economics,
    ) -> Report {
        let figures = figures::of_flow(rows, campaign, as_of, economics);
        let mut days: BTreeMap<NaiveDate, [i64; 4]> = BTreeMap::new();
        for row in rows
            .iter()
            .filter(|r| r.key.campaign == campaign && !figures::is_program_holdout(&r.key))
        {
            if let Some(d) = row.day {
                let slot = days.entry(d).or_default();
                let off = if row.key.group == Group::Treated {
                    0
                } else {
                    2
                };
                slot[off] += row.counts.get(counter::ENROLLED);
                slot[off + 1] += row.counts.get(counter::REACTIVATED);
            }
        }
        let treated = figures.treated_counts.clone();
        let holdout = figures.holdout_counts.clone();
        let treated_rate = figures.treated;
        let holdout_rate = figures.holdout;
        let variants: Vec<VariantRow> = figures
            .arms
            .iter()
            .map(|a| VariantRow {
                variant: a.variant.clone(),
                group: a.group,
                counts: a.counts.clone(),
                rate: a.rate,
                lift: a.lift,
            })
            .collect();
        let steps = (1..=steps)
            .map(|s| {
                let sent = treated.get(&counter::sent_step(s));
                StepRow {
                    step: s,
                    sent,
                    rate: Rate::new(treated.get(&counter::reactivated_after_step(s)), sent),
                }
            })
            .collect();
        let mut all = treated.clone();
        all.merge(&holdout);
        let reasons = Reason::ALL
            .iter()
            .map(|r| (*r, all.get(&counter::reason(*r))))
            .collect();
        let reason_outcomes = Reason::ALL
            .iter()
            .map(|r| {
                let rate = Rate::new(
                    treated.get(&counter::reactivated_reason(*r)),
                    treated.get(&counter::reason(*r)),
                );
                (*r, rate)
            })
            .collect();
        let nps = [
            ("detractor".to_string(), all.get("nps_detractor")),
            ("passive".to_string(), all.get("nps_passive")),
            ("promoter".to_string(), all.get("nps_promoter")),
        ];
        let mut acc = [0i64; 4];
        let series = days
            .into_iter()
            .map(|(day, d)| {
                for k in 0..4 {
                    acc[k] += d[k];
                }
                DayPoint {
                    day,
                    treated_enrolled: acc[0],
                    treated_reactivated: acc[1],
                    holdout_enrolled: acc[2],
                    holdout_reactivated: acc[3],
                }
            })
            .collect();
        let incremental = figures.incremental_revenue.map(|e| e.value.round() as i64);
        let reward_cost = treated.get(counter::REWARD_COST);
        let sent = treated.get(counter::SENT);
        let delivered = treated
            .get(counter::DELIVERED)
            .max(sent - treated.get(counter::BOUNCED));
        Report {
            campaign: campaign.to_string(),
            source: source.to_string(),
            currency: currency.to_string(),
            lift: figures.lift,
            treated_rate,
            holdout_rate,
            comparisons: compare_variants(
                &variants
                    .iter()
                    .filter(|v| v.group == Group::Treated)
                    .map(|v| (v.variant.clone(), v.rate))
                    .collect::<Vec<_>>(),
            ),
            variants,
            steps,
            reasons,
            reason_outcomes,
            nps,
            series,
            revenue_minor: figures.revenue_minor,
            incremental_revenue_minor: incremental,
            reward_cost_minor: reward_cost,
            revenue_other_currencies: {
                let mut m = treated.other_currencies(counter::REVENUE);
                for (c, v) in treated.other_currencies(counter::REVENUE_AFTER) {
                    *m.entry(c).or_default() += v;
                }
                m
            },
            reward_cost_other_currencies: treated.other_currencies(counter::REWARD_COST),
            exchange_rates: BTreeMap::new(),
            return_on_rewards: incremental
                .filter(|_| reward_cost > 0)
                .map(|i| i as f64 / reward_cost as f64),
            unsubscribe_rate: Rate::new(treated.get(counter::UNSUBSCRIBED), sent),
            fewer_emails_rate: Rate::new(treated.get(counter::FEWER_EMAILS), sent),
            bounce_rate: Rate::new(treated.get(counter::BOUNCED), sent),
            complaint_rate: Rate::new(treated.get(counter::COMPLAINED), sent),
            open_rate: Rate::new(treated.get(counter::OPENED), delivered),
            click_rate: Rate::new(treated.get(counter::CLICKED), delivered),
            treated,
            holdout,
            figures,
        }
    }

    /// Money in the report's currency.
    /// The report with the campaign's exchange rates, for the other currencies' lines.
    pub fn with_exchange_rates(mut self, rates: &shared::domain::money::ExchangeRates) -> Report {
        self.exchange_rates = rates.clone();
        self
    }

    pub fn money(&self, minor: i64) -> String {
        format!("{} {}", Money(minor), self.currency)
    }

    /// A money estimate as every view prints it: the value and its 95% interval, to the cent.
    pub fn estimate(&self, e: Option<Estimate>) -> String {
        match e {
            Some(e) => format!(
                "{} (95% CI {} to {})",
                self.money(cents(e.value)),
                self.money(cents(e.low)),
                self.money(cents(e.high))
            ),
            None => "no holdout to compare with".to_string(),
        }
    }

    /// Still active 90 days after coming back, treated against holdout, in words.
    pub fn still_active_text(&self) -> String {
        let st = &self.figures.still_active;
        let rate = |r: &Rate| format!("{:.1}% ({} of {})", r.value * 100.0, r.successes, r.trials);
        if st.treated.trials == 0 {
            return "no reactivation is 90 days old yet".to_string();
        }
        let holdout = if st.holdout.trials > 0 {
            rate(&st.holdout)
        } else {
            "none 90 days old".to_string()
        };
        format!(
            "{} of those who came back 90+ days ago; holdout {}",
            rate(&st.treated),
            holdout
        )
    }

    /// The whole program's figures in words (money in this report's currency): what `winback
    /// report`, `simulate` and the weekly email print.
    pub fn program_text(&self, p: &ProgramFigures) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "The whole program (every flow's enrollments offered it, their own holdouts included, against the program holdout, held out of every flow)"
        );
        if p.held_out.trials == 0 {
            let _ = writeln!(
                s,
                "  no enrollment in the program holdout yet ({} offered): [experiment] program_holdout sets its share",
                p.offered.trials
            );
            return s;
        }
        let rate = |r: &Rate| {
            format!(
                "{:.1}% of {} (95% CI {:.1}% to {:.1}%)",
                r.value * 100.0,
                r.trials,
                r.low * 100.0,
                r.high * 100.0
            )
        };
        let _ = writeln!(
            s,
            "  came back: offered {}, held out {}",
            rate(&p.offered),
            rate(&p.held_out)
        );
        let _ = writeln!(
            s,
            "  lift {:+.1} points (95% CI {:+.1} to {:+.1}): about {:.0} customers brought back (95% CI {:.0} to {:.0})",
            p.lift.value * 100.0,
            p.lift.low * 100.0,
            p.lift.high * 100.0,
            p.brought_back.value,
            p.brought_back.low,
            p.brought_back.high
        );
        let _ = writeln!(
            s,
            "  incremental revenue {}; incremental profit {}; over the last {} days {}",
            self.estimate(p.incremental_revenue),
            self.estimate(p.incremental_profit),
            p.window.days,
            self.estimate(p.window.incremental_profit)
        );
        let _ = writeln!(
            s,
            "  orders merely pulled forward: {}",
            pulled_forward_text(p)
        );
        if !p.measured() {
            let _ = writeln!(
                s,
                "  the program holdout has {} of the {} enrollments the headline waits for",
                p.held_out.trials,
                figures::MIN_PROGRAM_HOLDOUT
            );
        }
        s
    }

    /// Whether anyone gave a reason or an NPS answer: a flow that asks none shows no tables of
    /// zeros.
    pub fn answers_reasons(&self) -> bool {
        self.reasons.iter().any(|(_, n)| *n > 0) || self.nps.iter().any(|(_, n)| *n > 0)
    }

    /// The report as a text table.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Campaign {} — {}", self.campaign, self.source);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Reactivation (came back with an order within the attribution window)"
        );
        let _ = writeln!(
            s,
            "  {:<22} {:>9} {:>9} {:>8}  {:<17} {:<24}",
            "cohort", "enrolled", "returned", "rate", "95% CI", "lift over holdout"
        );
        let line = |s: &mut String, name: &str, r: &Rate, l: Option<&Lift>| {
            let lift = l.map_or_else(String::new, |l| {
                format!(
                    "{:+.1} pts [{:+.1}, {:+.1}]",
                    l.value * 100.0,
                    l.low * 100.0,
                    l.high * 100.0
                )
            });
            let _ = writeln!(
                s,
                "  {:<22} {:>9} {:>9} {:>7.1}%  [{:>5.1}%, {:>5.1}%]  {}",
                name,
                r.trials,
                r.successes,
                r.value * 100.0,
                r.low * 100.0,
                r.high * 100.0,
                lift
            );
        };
        line(
            &mut s,
            "treated (all variants)",
            &self.treated_rate,
            Some(&self.lift),
        );
        line(&mut s, "holdout", &self.holdout_rate, None);
        for v in self.variants.iter().filter(|v| v.group == Group::Treated) {
            line(
                &mut s,
                &format!("  variant {}", v.variant),
                &v.rate,
                v.lift.as_ref(),
            );
        }
        let _ = writeln!(
            s,
            "  → {:.0} customers came back because of the campaign (lift × treated enrolled)",
            self.lift.incremental_customers
        );
        if !self.comparisons.is_empty() {
            let _ = writeln!(
                s,
                "Variants against each other (95% for all pairs together)"
            );
            for line in self.comparison_lines() {
                let _ = writeln!(s, "  {line}");
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "Per step (treated)");
        let _ = writeln!(
            s,
            "  {:<6} {:>8} {:>12} {:>8}  {:<17}",
            "step", "sent", "won back", "rate", "95% CI"
        );
        for st in &self.steps {
            let _ = writeln!(
                s,
                "  {:<6} {:>8} {:>12} {:>7.1}%  [{:>5.1}%, {:>5.1}%]",
                st.step,
                st.sent,
                st.rate.successes,
                st.rate.value * 100.0,
                st.rate.low * 100.0,
                st.rate.high * 100.0
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "Emails (treated, this flow's only)");
        let pct = |r: &Rate| format!("{:.2}% ({} of {})", r.value * 100.0, r.successes, r.trials);
        let _ = writeln!(s, "  opened          {}", pct(&self.open_rate));
        let _ = writeln!(s, "  clicked         {}", pct(&self.click_rate));
        let _ = writeln!(s, "  unsubscribed    {}", pct(&self.unsubscribe_rate));
        let _ = writeln!(s, "  fewer emails    {}", pct(&self.fewer_emails_rate));
        let _ = writeln!(s, "  bounced         {}", pct(&self.bounce_rate));
        let _ = writeln!(s, "  complained      {}", pct(&self.complaint_rate));
        let _ = writeln!(s);
        let _ = writeln!(s, "Money (treated, this flow's only)");
        let _ = writeln!(
            s,
            "  revenue since reactivation   {}",
            self.money(self.revenue_minor)
        );
        let refunded = self.treated.get(counter::REFUNDED);
        if refunded != 0 {
            let _ = writeln!(
                s,
                "  refunded or cancelled        {} (already taken off the revenue)",
                self.money(refunded)
            );
        }
        let _ = writeln!(
            s,
            "  incremental over holdout     {}",
            self.estimate(self.figures.incremental_revenue)
        );
        let _ = writeln!(
            s,
            "  incremental profit           {}",
            self.estimate(self.figures.incremental_profit)
        );
        let _ = writeln!(
            s,
            "  profit, last {} days         {}",
            self.figures.window.days,
            self.estimate(self.figures.window.incremental_profit)
        );
        let _ = writeln!(
            s,
            "  rewards redeemed             {} (cost {})",
            self.treated.get(counter::REDEEMED),
            self.money(self.reward_cost_minor)
        );
        for (what, amounts) in [
            ("revenue", &self.revenue_other_currencies),
            ("reward cost", &self.reward_cost_other_currencies),
        ] {
            let valuation = shared::domain::money::Valuation {
                currency: &self.currency,
                rates: &self.exchange_rates,
            };
            for (currency, minor) in amounts {
                let converted = match valuation.convert(Money(*minor), currency) {
                    Some(m) => format!("≈ {} at the configured rate", self.money(m.0)),
                    None => "not converted".to_string(),
                };
                let _ = writeln!(
                    s,
                    "  {what} in {currency}: {} {currency} ({converted}; not in the {} figures)",
                    Money(*minor),
                    self.currency
                );
            }
        }
        match self.return_on_rewards {
            Some(r) => {
                let _ = writeln!(s, "  return on rewards            {r:.1}× incremental revenue per unit of reward cost");
            }
            None if self.figures.incremental_revenue.is_none() => {
                let _ = writeln!(
                    s,
                    "  return on rewards            no holdout to compare with"
                );
            }
            None => {
                let _ = writeln!(s, "  return on rewards            no reward redeemed yet");
            }
        }
        let _ = writeln!(
            s,
            "  still active 90 days later   {}",
            self.still_active_text()
        );
        if !self.answers_reasons() {
            return s;
        }
        let _ = writeln!(s);
        let answered: i64 = self.reasons.iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            s,
            "Reasons for leaving ({answered} survey answers to this flow's emails)"
        );
        for (r, n) in &self.reasons {
            let share = if answered > 0 {
                *n as f64 * 100.0 / answered as f64
            } else {
                0.0
            };
            let _ = writeln!(s, "  {:<20} {:>6} {:>6.1}%", r.as_str(), n, share);
        }
        let _ = writeln!(
            s,
            "Outcome per reason (treated who answered, and came back with an order)"
        );
        for (r, rate) in &self.reason_outcomes {
            let _ = writeln!(
                s,
                "  {:<20} {:>6} {:>6}  {:>5.1}%",
                r.as_str(),
                rate.trials,
                rate.successes,
                rate.value * 100.0
            );
        }
        let nps_total: i64 = self.nps.iter().map(|(_, n)| n).sum();
        if nps_total > 0 {
            let _ = writeln!(
                s,
                "  NPS answers: {} detractors, {} passives, {} promoters",
                self.nps[0].1, self.nps[1].1, self.nps[2].1
            );
        }
        s
    }
}

/// Orders merely pulled forward, in words (after "orders merely pulled forward: "): the customers, their interval and their base, or why
/// there is no figure yet.
pub fn pulled_forward_text(p: &ProgramFigures) -> String {
    let horizon = figures::PULLED_FORWARD_DAYS;
    match &p.pulled_forward {
        None => format!(
            "not measured yet: it needs enrollments of both arms old enough to have lived the attribution window and {horizon} days more"
        ),
        Some(pf) => {
            let share = |r: &Rate| format!("{:.1}% ({} of {})", r.value * 100.0, r.successes, r.trials);
            format!(
                "about {:.0} customers (95% CI {:.0} to {:.0}) of the enrollments of {} or before: their win within the attribution window was an order they would have placed anyway in the {horizon} days after it (first order after the window: held out {}, offered {})",
                pf.customers.value.max(0.0),
                pf.customers.low.max(0.0),
                pf.customers.high.max(0.0),
                pf.enrolled_by,
                share(&pf.held_out_late),
                share(&pf.offered_late)
            )
        }
    }
}

/// Minor units rounded to the cent, as every view shows them.
pub fn cents(minor: f64) -> i64 {
    minor.round() as i64
}

/// The campaign's economics for the profit figures: `[targeting]`'s margin and email cost.
pub fn economics(config: &CampaignConfig) -> Economics {
    Economics {
        margin: config.targeting.margin,
        email_cost_minor: config.targeting.email_cost * 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::metrics::CohortKey;

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 3).unwrap()
    }

    fn economics() -> Economics {
        Economics {
            margin: 0.5,
            email_cost_minor: 0.0,
        }
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
                campaign: "example".into(),
                variant: variant.into(),
                group,
            },
            day,
            counts: c,
        }
    }

    fn rows() -> Vec<CounterRow> {
        let d1 = NaiveDate::from_ymd_opt(2026, 1, 1);
        let d2 = NaiveDate::from_ymd_opt(2026, 1, 2);
        vec![
            row(
                "a",
                Group::Treated,
                None,
                &[
                    ("enrolled", 400),
                    ("reactivated", 100),
                    ("sent", 900),
                    ("sent_step_1", 400),
                    ("reactivated_after_step_1", 60),
                    ("revenue_minor", 300_000),
                    ("reward_cost_minor", 50_000),
                    ("reason_too_expensive", 30),
                    ("reason_forgot", 10),
                    ("reactivated_reason_too_expensive", 12),
                    ("opened", 110),
                    ("delivered", 890),
                ],
            ),
            row(
                "b",
                Group::Treated,
                None,
                &[
                    ("enrolled", 400),
                    ("reactivated", 60),
                    ("sent", 900),
                    ("revenue_minor", 200_000),
                ],
            ),
            row(
                "holdout",
                Group::Holdout,
                None,
                &[
                    ("enrolled", 100),
                    ("reactivated", 10),
                    ("revenue_minor", 10_000),
                ],
            ),
            row(
                "a",
                Group::Treated,
                d1,
                &[("enrolled", 300), ("reactivated", 10)],
            ),
            row(
                "a",
                Group::Treated,
                d2,
                &[("enrolled", 100), ("reactivated", 90)],
            ),
            row(
                "holdout",
                Group::Holdout,
                d1,
                &[("enrolled", 100), ("reactivated", 10)],
            ),
        ]
    }

    #[test]
    fn money_in_another_currency_is_reported_apart_and_never_summed() {
        let mut rs = rows();
        rs.push(row(
            "b",
            Group::Treated,
            None,
            &[
                ("revenue_minor#SEK", 49_900),
                ("revenue_after_minor#SEK", 100),
                ("reward_cost_minor#SEK", 5_000),
            ],
        ));
        let r = Report::from_rows("example", "EUR", 3, "test", &rs, as_of(), economics());
        assert_eq!(r.revenue_minor, 500_000, "the EUR figures are unchanged");
        assert_eq!(r.reward_cost_minor, 50_000);
        assert_eq!(r.revenue_other_currencies.get("SEK"), Some(&50_000));
        assert_eq!(r.reward_cost_other_currencies.get("SEK"), Some(&5_000));
        let text = r.to_text();
        assert!(
            text.contains("revenue in SEK: 500.00 SEK (not converted; not in the EUR figures)"),
            "{text}"
        );
        let rates = shared::domain::money::ExchangeRates::from([("SEK".to_string(), 0.087)]);
        let r = r.with_exchange_rates(&rates);
        assert_eq!(r.revenue_minor, 500_000, "a rate changes no figure");
        let text = r.to_text();
        assert!(
            text.contains(&format!(
                "revenue in SEK: 500.00 SEK (≈ {} at the configured rate; not in the EUR figures)",
                r.money(4_350)
            )),
            "{text}"
        );
    }

    #[test]
    fn rates_lift_and_money_come_from_the_counters() {
        let r = Report::from_rows("example", "EUR", 3, "test", &rows(), as_of(), economics());
        assert_eq!(r.treated_rate.trials, 800);
        assert_eq!(r.treated_rate.successes, 160);
        assert!((r.lift.value - (0.2 - 0.1)).abs() < 1e-12);
        assert_eq!(r.variants.len(), 3);
        let a = r.variants.iter().find(|v| v.variant == "a").unwrap();
        assert!((a.lift.unwrap().value - 0.15).abs() < 1e-12);
        assert_eq!(r.steps[0].rate.successes, 60);
        assert_eq!(r.revenue_minor, 500_000);
        // 500000/800 − 10000/100 = 525 per customer, × 800.
        assert_eq!(r.incremental_revenue_minor, Some(420_000));
        assert!((r.return_on_rewards.unwrap() - 8.4).abs() < 1e-9);
        assert_eq!(r.reasons[0], (Reason::TooExpensive, 30));
        let (reason, came_back) = r.reason_outcomes[0];
        assert_eq!(reason, Reason::TooExpensive);
        assert_eq!((came_back.successes, came_back.trials), (12, 30));
        assert!(r.to_text().contains("Outcome per reason"));
    }

    #[test]
    fn variants_are_compared_with_each_other_and_a_clear_winner_is_named() {
        // a: 100 of 400 came back (25%), b: 60 of 400 (15%).
        let r = Report::from_rows("example", "EUR", 3, "test", &rows(), as_of(), economics());
        assert_eq!(r.comparisons.len(), 1);
        let text = r.to_text();
        assert!(text.contains("Variants against each other"), "{text}");
        assert!(text.contains("a vs b: +10.0 pts"), "{text}");
        assert!(text.contains("a wins"), "{text}");

        // 28 more of b's customers came back: 22% against 25% is too close to call, and the
        // report says how many more customers it would take.
        let mut close = rows();
        close.push(row("b", Group::Treated, None, &[("reactivated", 28)]));
        let r = Report::from_rows("example", "EUR", 3, "test", &close, as_of(), economics());
        let text = r.to_text();
        assert!(text.contains("a vs b: +3.0 pts"), "{text}");
        assert!(text.contains("no winner yet; about "), "{text}");
        assert!(text.contains("more enrolled customers in each"), "{text}");
        let page = crate::page::render(
            &r,
            &[],
            &[],
            &crate::page::Frame::default(),
            crate::page::Embed::Inline,
        )
        .unwrap()
        .html;
        assert!(page.contains("Variants against each other"), "{page}");
    }

    #[test]
    fn the_series_is_cumulative_per_group() {
        let r = Report::from_rows("example", "EUR", 3, "test", &rows(), as_of(), economics());
        assert_eq!(r.series.len(), 2);
        assert_eq!(r.series[1].treated_enrolled, 400);
        assert_eq!(r.series[1].treated_reactivated, 100);
        assert_eq!(r.series[1].holdout_enrolled, 100);
    }

    #[test]
    fn the_text_names_the_rate_the_interval_and_the_lift() {
        let t =
            Report::from_rows("example", "EUR", 3, "test", &rows(), as_of(), economics()).to_text();
        assert!(t.contains("treated (all variants)"), "{t}");
        assert!(t.contains("+10.0 pts"), "{t}");
        assert!(t.contains("95% CI"));
        assert!(t.contains("too_expensive"));
    }
}
