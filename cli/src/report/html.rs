//! The HTML report: one self-contained page with inline SVG charts drawn by `plotters`.

use std::path::{Path, PathBuf};

use minijinja::context;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use shared::domain::experiment::Group;
use shared::domain::metrics::{counter, Rate};

use super::{DayPoint, Report};
use crate::error::{CliError, CliResult};
use crate::pages;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), String>;

const TREATED: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const HOLDOUT: RGBColor = RGBColor(0xd9, 0x6c, 0x1e);
const BAR: RGBColor = RGBColor(0x3a, 0x8f, 0x6e);

fn draw_svg(
    chart: &'static str,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> CliResult<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        let fail = |reason: String| CliError::Chart { chart, reason };
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(buf)
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// The label of the category at `x` on an axis of categories `0, 1, …`: only at whole numbers.
fn category_label(names: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 0.01 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Cumulative reactivation rate per day, treated against holdout.
pub fn reactivation_chart(r: &Report) -> CliResult<String> {
    draw_svg("reactivation over time", (760, 360), |root| {
        let pct = |a: i64, b: i64| {
            if b > 0 {
                a as f64 * 100.0 / b as f64
            } else {
                0.0
            }
        };
        // One point a day: the share of an arm's enrolled who came back, by then.
        let curve = |came_back: fn(&DayPoint) -> (i64, i64)| -> Vec<(f64, f64)> {
            let days = r.series.iter().map(came_back).enumerate();
            days.map(|(i, (back, enrolled))| (i as f64, pct(back, enrolled)))
                .collect()
        };
        let treated = curve(|p| (p.treated_reactivated, p.treated_enrolled));
        let holdout = curve(|p| (p.holdout_reactivated, p.holdout_enrolled));
        let ymax = treated
            .iter()
            .chain(&holdout)
            .map(|(_, y)| *y)
            .fold(5.0f64, f64::max)
            * 1.15;
        let xmax = (r.series.len().max(2) - 1) as f64;
        let days = r.series.clone();
        let mut chart = ChartBuilder::on(root)
            .caption("Reactivation over time (cumulative)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_desc("% of enrolled who came back")
            .x_label_formatter(&|x| {
                days.get(x.round() as usize)
                    .map_or_else(String::new, |p| p.day.format("%b %d").to_string())
            })
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(LineSeries::new(treated, TREATED.stroke_width(2)))
            .map_err(e)?
            .label("treated")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], TREATED.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(holdout, HOLDOUT.stroke_width(2)))
            .map_err(e)?
            .label("holdout")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], HOLDOUT.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(e)
    })
}

/// Lift over the holdout per variant, with 95% intervals, in percentage points.
pub fn lift_chart(r: &Report) -> CliResult<String> {
    let variants: Vec<(String, f64, f64, f64)> = r
        .variants
        .iter()
        .filter_map(|v| {
            v.lift.map(|l| {
                (
                    v.variant.clone(),
                    l.value * 100.0,
                    l.low * 100.0,
                    l.high * 100.0,
                )
            })
        })
        .collect();
    draw_svg("lift per variant", (760, 360), |root| {
        let lo = variants.iter().map(|v| v.2).fold(0.0f64, f64::min);
        let hi = variants.iter().map(|v| v.3).fold(1.0f64, f64::max);
        let pad = (hi - lo) * 0.1 + 0.5;
        let n = variants.len().max(1);
        let names: Vec<String> = variants.iter().map(|v| v.0.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Lift over the holdout per variant (95% CI)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo - pad)..(hi + pad))
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| category_label(&names, *x))
            .y_desc("percentage points")
            .y_label_formatter(&|y| format!("{y:+.0}"))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
                BLACK.mix(0.5),
            )))
            .map_err(e)?;
        for (i, (_, value, low, high)) in variants.iter().enumerate() {
            let x = i as f64;
            chart
                .draw_series([
                    PathElement::new(vec![(x, *low), (x, *high)], TREATED.stroke_width(2)),
                    PathElement::new(
                        vec![(x - 0.08, *low), (x + 0.08, *low)],
                        TREATED.stroke_width(2),
                    ),
                    PathElement::new(
                        vec![(x - 0.08, *high), (x + 0.08, *high)],
                        TREATED.stroke_width(2),
                    ),
                ])
                .map_err(e)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (x, *value),
                    5,
                    TREATED.filled(),
                )))
                .map_err(e)?;
        }
        Ok(())
    })
}

/// Lines over a shared x axis (e.g. the Qini curve against the random line), with a legend.
pub fn line_chart(
    chart: &'static str,
    title: &str,
    series: &[(Vec<(f64, f64)>, &str)],
    x_desc: &str,
    y_desc: &str,
) -> CliResult<String> {
    draw_svg(chart, (760, 360), |root| {
        let points = || series.iter().flat_map(|s| s.0.iter());
        let (xmin, xmax) =
            points().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (ymin, ymax) = points().fold((0.0f64, 0.0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let pad = ((ymax - ymin) * 0.1).max(1e-9);
        let (xmin, xmax) = if xmin < xmax {
            (xmin, xmax)
        } else {
            (0.0, 1.0)
        };
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(xmin..xmax, (ymin - pad)..(ymax + pad))
            .map_err(e)?;
        c.configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(e)?;
        for (k, (points, name)) in series.iter().enumerate() {
            let colour = [TREATED, HOLDOUT, BAR][k % 3];
            c.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(e)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(e)
    })
}

/// A bar chart of labelled counts.
pub fn bar_chart(
    chart: &'static str,
    title: &str,
    labels: &[String],
    values: &[f64],
    y_desc: &str,
) -> CliResult<String> {
    bars(chart, title, labels, &[(values, "", BAR)], y_desc)
}

/// Two series of bars side by side per label, with a legend (e.g. predicted against observed).
pub fn paired_bar_chart(
    chart: &'static str,
    title: &str,
    labels: &[String],
    first: (&[f64], &str),
    second: (&[f64], &str),
    y_desc: &str,
) -> CliResult<String> {
    bars(
        chart,
        title,
        labels,
        &[(first.0, first.1, HOLDOUT), (second.0, second.1, TREATED)],
        y_desc,
    )
}

fn bars(
    chart: &'static str,
    title: &str,
    labels: &[String],
    series: &[(&[f64], &str, RGBColor)],
    y_desc: &str,
) -> CliResult<String> {
    draw_svg(chart, (760, 340), |root| {
        let n = labels.len().max(1);
        let top = series
            .iter()
            .flat_map(|s| s.0.iter().copied())
            .fold(1.0f64, f64::max)
            * 1.15;
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
            .map_err(e)?;
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| category_label(labels, *x))
            .y_desc(y_desc)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(e)?;
        let width = 0.7 / series.len().max(1) as f64;
        for (k, (values, name, colour)) in series.iter().enumerate() {
            let colour = *colour;
            let drawn = c
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let x = i as f64 - 0.35 + k as f64 * width;
                    Rectangle::new([(x, 0.0), (x + width, *v)], colour.filled())
                }))
                .map_err(e)?;
            if !name.is_empty() {
                drawn.label(*name).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
            }
        }
        if series.iter().any(|s| !s.1.is_empty()) {
            c.configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(e)?;
        }
        Ok(())
    })
}

/// A rate's cells as the page prints them: trials, successes, percent and 95% interval.
#[derive(Serialize)]
struct RateCells {
    trials: i64,
    successes: i64,
    value: String,
    low: String,
    high: String,
}

fn rate_cells(r: &Rate) -> RateCells {
    RateCells {
        trials: r.trials,
        successes: r.successes,
        value: format!("{:.1}", r.value * 100.0),
        low: format!("{:.1}", r.low * 100.0),
        high: format!("{:.1}", r.high * 100.0),
    }
}

/// A section of preformatted text after the report (what the simulated customers did).
#[derive(Serialize)]
pub struct Extra<'a> {
    pub title: &'a str,
    pub text: &'a str,
}

/// Another flow's figures (at-risk, celebration, re-engagement), from its own counters: a section
/// of its own after the win-back flow's, with its headline, chart, cohorts, variants and money.
pub struct FlowSection<'a> {
    pub title: String,
    pub report: &'a Report,
}

/// A variant's row: its rate, its lift over the holdout and its revenue.
fn variant_rows(r: &Report) -> Vec<minijinja::Value> {
    r.variants
        .iter()
        .map(|v| {
            let lift = v.lift.map_or_else(
                || "—".to_string(),
                |l| {
                    format!(
                        "{:+.1} pts ({:+.1} to {:+.1})",
                        l.value * 100.0,
                        l.low * 100.0,
                        l.high * 100.0
                    )
                },
            );
            context! {
                variant => &v.variant,
                group => v.group.as_str(),
                rate => rate_cells(&v.rate),
                lift,
                revenue => r.money(v.counts.get(counter::REVENUE) + v.counts.get(counter::REVENUE_AFTER)),
            }
        })
        .collect()
}

/// The headline figures of a report, as the page prints them (percent, points, customers).
#[derive(Serialize)]
struct Headline {
    treated: String,
    holdout: String,
    lift: String,
    lift_lo: String,
    lift_hi: String,
    incremental: String,
}

fn headline(r: &Report) -> Headline {
    Headline {
        treated: format!("{:.1}", r.treated_rate.value * 100.0),
        holdout: format!("{:.1}", r.holdout_rate.value * 100.0),
        lift: format!("{:+.1}", r.lift.value * 100.0),
        lift_lo: format!("{:+.1}", r.lift.low * 100.0),
        lift_hi: format!("{:+.1}", r.lift.high * 100.0),
        incremental: format!("{:.0}", r.lift.incremental_customers),
    }
}

/// A flow section's values for the page.
fn flow_context(f: &FlowSection) -> CliResult<minijinja::Value> {
    let r = f.report;
    Ok(context! {
        title => &f.title,
        h => headline(r),
        reactivation_svg => pages::safe(reactivation_chart(r)?),
        treated_rate => rate_cells(&r.treated_rate),
        holdout_rate => rate_cells(&r.holdout_rate),
        variants => variant_rows(r),
        comparisons => r.comparison_lines(),
        revenue => r.money(r.revenue_minor),
        incremental_revenue => r.money(r.incremental_revenue_minor),
        unsubscribed => format!("{:.2}", r.unsubscribe_rate.value * 100.0),
        sent => r.unsubscribe_rate.trials,
    })
}

/// The whole page: the win-back flow's report, then each other flow's section, then `extra`.
pub fn render(r: &Report, flows: &[FlowSection], extra: &[Extra]) -> CliResult<String> {
    let reactivation = reactivation_chart(r)?;
    let lift = lift_chart(r)?;
    let reason_labels: Vec<String> = r
        .reasons
        .iter()
        .map(|(x, _)| x.as_str().replace('_', " "))
        .collect();
    let reason_values: Vec<f64> = r.reasons.iter().map(|(_, n)| *n as f64).collect();
    let reasons = bar_chart(
        "reasons",
        "Reasons for leaving (survey answers)",
        &reason_labels,
        &reason_values,
        "answers",
    )?;
    let step_labels: Vec<String> = r.steps.iter().map(|s| format!("step {}", s.step)).collect();
    let step_values: Vec<f64> = r.steps.iter().map(|s| s.sent as f64).collect();
    let steps = bar_chart(
        "emails per step",
        "Emails sent per step",
        &step_labels,
        &step_values,
        "emails",
    )?;

    let variants = variant_rows(r);
    let steps_rows: Vec<_> = r
        .steps
        .iter()
        .map(|s| context! { step => s.step, rate => rate_cells(&s.rate) })
        .collect();
    let health: Vec<_> = [
        ("opened", &r.open_rate),
        ("clicked", &r.click_rate),
        ("unsubscribed", &r.unsubscribe_rate),
        ("asked for fewer emails", &r.fewer_emails_rate),
        ("bounced", &r.bounce_rate),
        ("complained", &r.complaint_rate),
    ]
    .iter()
    .map(|(name, rate)| {
        context! {
            name,
            rate => format!("{:.2}", rate.value * 100.0),
            successes => rate.successes,
            trials => rate.trials,
        }
    })
    .collect();
    let reason_rows: Vec<_> = r
        .reason_outcomes
        .iter()
        .map(|(reason, rate)| context! { reason => reason.as_str(), rate => rate_cells(rate) })
        .collect();
    let roi = r.return_on_rewards.map_or_else(
        || "no reward redeemed yet".to_string(),
        |x| format!("{x:.1}×"),
    );
    let treated_group = r
        .variants
        .iter()
        .filter(|v| v.group == Group::Treated)
        .count();
    Ok(pages::render(
        "report.html",
        context! {
            campaign => &r.campaign,
            source => &r.source,
            h => headline(r),
            treated_group,
            reactivation_svg => pages::safe(reactivation),
            lift_svg => pages::safe(lift),
            steps_svg => pages::safe(steps),
            reasons_svg => pages::safe(reasons),
            treated_rate => rate_cells(&r.treated_rate),
            holdout_rate => rate_cells(&r.holdout_rate),
            variants,
            comparisons => r.comparison_lines(),
            steps => steps_rows,
            reason_rows,
            revenue => r.money(r.revenue_minor),
            incremental_revenue => r.money(r.incremental_revenue_minor),
            redeemed => r.treated.get(counter::REDEEMED),
            reward_cost => r.money(r.reward_cost_minor),
            roi,
            still => format!("{:.1}", r.still_active_90d.value * 100.0),
            still_n => r.still_active_90d.successes,
            still_d => r.still_active_90d.trials,
            detractors => r.nps[0].1,
            passives => r.nps[1].1,
            promoters => r.nps[2].1,
            health,
            flows => flows.iter().map(flow_context).collect::<CliResult<Vec<_>>>()?,
            extra,
        },
    ))
}

/// Writes `<out>/index.html`; returns its path.
pub fn write(r: &Report, flows: &[FlowSection], extra: &[Extra], out: &Path) -> CliResult<PathBuf> {
    std::fs::create_dir_all(out).map_err(CliError::io("create", out))?;
    let path = out.join("index.html");
    std::fs::write(&path, render(r, flows, extra)?).map_err(CliError::io("write", &path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::metrics::{CohortKey, CounterRow, Counts};

    #[test]
    fn the_page_is_self_contained_with_four_svg_charts() {
        let mut c = Counts::default();
        c.add("enrolled", 10);
        c.add("reactivated", 3);
        let rows = vec![
            CounterRow {
                key: CohortKey {
                    campaign: "x".into(),
                    variant: "a".into(),
                    group: Group::Treated,
                },
                day: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
                counts: c.clone(),
            },
            CounterRow {
                key: CohortKey {
                    campaign: "x".into(),
                    variant: "a".into(),
                    group: Group::Treated,
                },
                day: None,
                counts: c,
            },
        ];
        let r = Report::from_rows("x", "EUR", 3, "a <test>", &rows);
        let page = render(&r, &[], &[]).unwrap();
        assert_eq!(page.matches("<svg").count(), 4);
        assert!(page.contains("a &lt;test&gt;"));
        assert!(!page.contains("<script"), "no scripts, nothing fetched");
        assert!(!page.contains("src=\"http"));
        // Another flow gets its own section: headline, chart, cohort and variant tables.
        let mut held = Counts::default();
        held.add("enrolled", 4);
        let mut flow_rows = rows.clone();
        for row in &mut flow_rows {
            row.key.campaign = "x-at-risk".into();
        }
        flow_rows.push(CounterRow {
            key: CohortKey {
                campaign: "x-at-risk".into(),
                variant: "holdout".into(),
                group: Group::Holdout,
            },
            day: None,
            counts: held,
        });
        let fr = Report::from_rows("x-at-risk", "EUR", 2, "", &flow_rows);
        let flow = FlowSection {
            title: "Flow at-risk".into(),
            report: &fr,
        };
        let page = render(&r, &[flow], &[]).unwrap();
        assert_eq!(page.matches("<svg").count(), 5);
        let section = &page[page
            .find("<h2>Flow at-risk</h2>")
            .expect("the flow's heading")..];
        assert!(
            section.contains("<b>30.0%</b> treated vs <b>0.0%</b> holdout"),
            "{section}"
        );
        assert!(section.contains("<td>holdout</td><td>4</td><td>0</td>"));
        assert!(!section.contains("<pre>"), "tables, not preformatted text");
    }
}
