//! The report as one HTML page, the same for `winback report` and the weekly email: tables that
//! read on a phone (at most four columns), PNG charts, no script, nothing fetched. The page
//! embeds its charts (`data:` URIs); the email refers to them as attachments (`cid:`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use minijinja::{context, Environment, Value};
use serde::Serialize;
use shared::domain::experiment::Group;
use shared::domain::figures::{self, ProgramFigures};
use shared::domain::metrics::{counter, Rate};

use crate::charts;
use crate::model::{cents, Report};
use crate::ReportError;

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        env.add_template("report.html", include_str!("../templates/report.html"))
            .unwrap_or_else(|e| panic!("the report's template does not parse: {e}"));
        env
    })
}

/// How the page carries its charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embed {
    /// `data:` URIs: one self-contained file (`winback report`).
    Inline,
    /// `cid:` references to attachments (the email).
    Attached,
}

/// A chart image: its content id and PNG bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub cid: String,
    pub png: Vec<u8>,
}

/// A rendered page and the images it refers to.
#[derive(Debug, Clone)]
pub struct Page {
    pub html: String,
    /// Empty for [`Embed::Inline`].
    pub images: Vec<Image>,
}

/// A section of preformatted text after the report (what the simulated customers did).
#[derive(Serialize)]
pub struct Extra<'a> {
    pub title: &'a str,
    pub text: &'a str,
}

/// Another flow's figures (at-risk, celebration, re-engagement), from its own counters.
pub struct FlowSection<'a> {
    pub title: String,
    pub report: &'a Report,
}

/// What the page says around the figures.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// A link to the CloudWatch dashboard (the email has one).
    pub dashboard_url: Option<String>,
    /// The whole program's figures: the headline once its holdout is large enough, and a
    /// section of their own.
    pub program: Option<ProgramFigures>,
}

struct Images {
    embed: Embed,
    attached: Vec<Image>,
}

impl Images {
    fn add(&mut self, name: &str, png: Vec<u8>) -> Value {
        let src = match self.embed {
            Embed::Inline => format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&png)
            ),
            Embed::Attached => {
                let cid = format!("{name}@winback.report");
                self.attached.push(Image {
                    cid: cid.clone(),
                    png,
                });
                format!("cid:{cid}")
            }
        };
        // Base64 and a content id hold no character HTML would escape.
        Value::from_safe_string(src)
    }
}

/// A rate's cells: percent and interval, to the tenth of a point.
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

/// The headline figures of a flow as printed (percent, points, customers).
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

fn flow_context(
    name: &str,
    r: &Report,
    title: &str,
    images: &mut Images,
) -> Result<Value, ReportError> {
    let variants: Vec<Value> = r
        .variants
        .iter()
        .map(|v| {
            let lift = v.lift.map_or_else(
                || {
                    if v.group == Group::Holdout {
                        "baseline".to_string()
                    } else {
                        "—".to_string()
                    }
                },
                |l| {
                    format!(
                        "{:+.1} ({:+.1} to {:+.1})",
                        l.value * 100.0,
                        l.low * 100.0,
                        l.high * 100.0
                    )
                },
            );
            context! {
                variant => &v.variant,
                enrolled => v.rate.trials,
                rate => rate_cells(&v.rate),
                lift,
            }
        })
        .collect();
    Ok(context! {
        title,
        h => headline(r),
        reactivation_src => images.add(&format!("{name}-reactivation"), charts::reactivation(r)?),
        treated_rate => rate_cells(&r.treated_rate),
        holdout_rate => rate_cells(&r.holdout_rate),
        variants,
        comparisons => r.comparison_lines(),
        revenue => r.money(r.revenue_minor),
        incremental_revenue => r.estimate(r.figures.incremental_revenue),
        incremental_profit => r.estimate(r.figures.incremental_profit),
        window_days => r.figures.window.days,
        window_profit => r.estimate(r.figures.window.incremental_profit),
        still => r.still_active_text(),
        unsubscribed => format!("{:.2}", r.unsubscribe_rate.value * 100.0),
        sent => r.unsubscribe_rate.trials,
    })
}

/// The whole page: the program's headline, the win-back flow's report, each other flow's
/// section, then `extra`.
pub fn render(
    r: &Report,
    flows: &[FlowSection],
    extra: &[Extra],
    frame: &Frame,
    embed: Embed,
) -> Result<Page, ReportError> {
    let mut images = Images {
        embed,
        attached: Vec::new(),
    };
    let main = flow_context("win-back", r, "", &mut images)?;
    let lift_src = images.add("lift", charts::lift(r)?);
    let reasons_src = if r.answers_reasons() {
        let labels: Vec<String> = r
            .reasons
            .iter()
            .map(|(x, _)| x.as_str().replace('_', " "))
            .collect();
        let values: Vec<f64> = r.reasons.iter().map(|(_, n)| *n as f64).collect();
        Some(images.add(
            "reasons",
            charts::bars(
                "reasons",
                "Reasons for leaving (survey answers)",
                &labels,
                &values,
            )?,
        ))
    } else {
        None
    };
    let mut flow_values = Vec::new();
    for (i, f) in flows.iter().enumerate() {
        flow_values.push(flow_context(
            &format!("flow{i}"),
            f.report,
            &f.title,
            &mut images,
        )?);
    }
    let head = figures::headline(&r.figures, frame.program.as_ref());
    let program = frame.program.as_ref().map(|p| {
        let line = |e: Option<figures::Estimate>| r.estimate(e);
        context! {
            offered => rate_cells(&p.offered),
            held_out => rate_cells(&p.held_out),
            lift => format!("{:+.1}", p.lift.value * 100.0),
            lift_lo => format!("{:+.1}", p.lift.low * 100.0),
            lift_hi => format!("{:+.1}", p.lift.high * 100.0),
            brought_back => format!("{:.0} (95% CI {:.0} to {:.0})", p.brought_back.value, p.brought_back.low, p.brought_back.high),
            incremental_revenue => line(p.incremental_revenue),
            incremental_profit => line(p.incremental_profit),
            window_profit => line(p.window.incremental_profit),
            pulled_forward => crate::model::pulled_forward_text(p),
        }
    });
    let steps: Vec<_> = r
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
        .map(|(reason, rate)| context! { reason => reason.as_str().replace('_', " "), rate => rate_cells(rate) })
        .collect();
    let roi = match (r.return_on_rewards, r.figures.incremental_revenue) {
        (Some(x), _) => format!("{x:.1}×"),
        (None, None) => "no holdout to compare with".to_string(),
        (None, Some(_)) => "no reward redeemed yet".to_string(),
    };
    let html = environment()
        .get_template("report.html")
        .and_then(|t| {
            t.render(context! {
                campaign => &r.campaign,
                source => &r.source,
                as_of => r.figures.as_of.to_string(),
                currency => &r.currency,
                h => headline(r),
                program,
                headline => context! {
                    lift => format!("{:+.1}", head.lift.value * 100.0),
                    brought_back => format!("{:.0}", head.brought_back.value),
                    brought_back_lo => format!("{:.0}", head.brought_back.low.max(0.0)),
                    brought_back_hi => format!("{:.0}", head.brought_back.high.max(0.0)),
                    window_profit => head.window_profit.map_or_else(
                        || "no holdout to measure".to_string(),
                        |p| format!("{} (95% CI {} to {})", r.money(cents(p.value)), r.money(cents(p.low)), r.money(cents(p.high))),
                    ),
                    basis => head.basis_text(),
                },
                window_days => r.figures.window.days,
                dashboard_url => &frame.dashboard_url,
                main,
                lift_src,
                reasons_src,
                steps,
                redeemed => r.treated.get(counter::REDEEMED),
                reward_cost => r.money(r.reward_cost_minor),
                roi,
                reason_rows,
                detractors => r.nps[0].1,
                passives => r.nps[1].1,
                promoters => r.nps[2].1,
                health,
                flows => flow_values,
                extra,
            })
        })
        .unwrap_or_else(|e| panic!("rendering the report page: {e:#}"));
    Ok(Page {
        html,
        images: images.attached,
    })
}

/// Writes `<out>/index.html`, charts embedded; returns its path.
pub fn write(
    r: &Report,
    program: Option<&ProgramFigures>,
    flows: &[FlowSection],
    extra: &[Extra],
    out: &Path,
) -> Result<PathBuf, std::io::Error> {
    std::fs::create_dir_all(out)?;
    let path = out.join("index.html");
    let frame = Frame {
        dashboard_url: None,
        program: program.cloned(),
    };
    let page = render(r, flows, extra, &frame, Embed::Inline).map_err(std::io::Error::other)?;
    std::fs::write(&path, page.html)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use shared::domain::figures::Economics;
    use shared::domain::metrics::{CohortKey, CounterRow, Counts};

    fn report(counts: &[(&str, i64)]) -> Report {
        let mut c = Counts::default();
        for (k, v) in counts {
            c.add(k, *v);
        }
        let row = |variant: &str, group, counts: Counts| CounterRow {
            key: CohortKey {
                campaign: "x".into(),
                variant: variant.into(),
                group,
            },
            day: NaiveDate::from_ymd_opt(2026, 1, 1),
            counts,
        };
        let mut held = Counts::default();
        held.add("enrolled", 40);
        held.add("reactivated", 2);
        let rows = shared::domain::metrics::with_totals(vec![
            row("a", Group::Treated, c),
            row("holdout", Group::Holdout, held),
        ]);
        let economics = Economics {
            margin: 0.3,
            email_cost_minor: 0.0,
        };
        let day = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
        Report::from_rows("x", "EUR", 3, "a <test>", &rows, day, economics)
    }

    #[test]
    fn the_page_embeds_png_charts_and_the_email_attaches_the_same_ones() {
        let r = report(&[("enrolled", 100), ("reactivated", 30), ("reason_forgot", 4)]);
        let inline = render(&r, &[], &[], &Frame::default(), Embed::Inline).unwrap();
        assert_eq!(
            inline.html.matches("src=\"data:image/png;base64,").count(),
            3
        );
        assert!(inline.images.is_empty());
        assert!(!inline.html.contains("<svg") && !inline.html.contains("<script"));
        assert!(!inline.html.contains("src=\"http"), "nothing fetched");
        assert!(inline.html.contains("a &lt;test&gt;"), "values are escaped");
        let frame = Frame {
            dashboard_url: Some("https://dash.example/d".into()),
            program: None,
        };
        let email = render(&r, &[], &[], &frame, Embed::Attached).unwrap();
        assert_eq!(email.images.len(), 3);
        for image in &email.images {
            assert!(email.html.contains(&format!("src=\"cid:{}\"", image.cid)));
            assert!(image.png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        }
        assert!(email.html.contains("Open the dashboard"));
    }

    #[test]
    fn a_flow_that_asks_no_reason_shows_no_table_of_zeros() {
        let r = report(&[("enrolled", 100), ("reactivated", 30)]);
        let page = render(&r, &[], &[], &Frame::default(), Embed::Inline).unwrap();
        assert!(!page.html.contains("Reasons for leaving"), "{}", page.html);
        assert!(!r.to_text().contains("Reasons for leaving"));
        let asked = report(&[("enrolled", 100), ("reason_forgot", 1)]);
        assert!(asked.to_text().contains("Reasons for leaving"));
    }

    #[test]
    fn the_headline_says_it_is_the_win_back_flow_s() {
        let r = report(&[("enrolled", 100), ("reactivated", 30)]);
        let page = render(&r, &[], &[], &Frame::default(), Embed::Inline).unwrap();
        assert!(
            page.html.contains("the win-back flow&#x27;s figures")
                || page.html.contains("the win-back flow's figures")
        );
        assert!(
            page.html.contains("0 of the 100 enrollments"),
            "{}",
            page.html
        );
    }

    #[test]
    fn the_headline_is_the_program_s_once_its_holdout_is_large_enough() {
        let r = report(&[("enrolled", 100), ("reactivated", 30)]);
        let mut c = Counts::default();
        c.add("enrolled", 2000);
        c.add("reactivated", 500);
        let mut held = Counts::default();
        held.add("enrolled", 150);
        held.add("reactivated", 15);
        let key = |variant: &str, group| CohortKey {
            campaign: "x".into(),
            variant: variant.into(),
            group,
        };
        let rows = shared::domain::metrics::with_totals(vec![
            CounterRow {
                key: key("a", Group::Treated),
                day: NaiveDate::from_ymd_opt(2026, 1, 1),
                counts: c,
            },
            CounterRow {
                key: key("program-holdout", Group::Holdout),
                day: NaiveDate::from_ymd_opt(2026, 1, 1),
                counts: held,
            },
        ]);
        let economics = Economics {
            margin: 0.3,
            email_cost_minor: 0.0,
        };
        let p = figures::of_program(
            &rows,
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
            economics,
            14,
        );
        let frame = Frame {
            dashboard_url: None,
            program: Some(p),
        };
        let page = render(&r, &[], &[], &frame, Embed::Inline).unwrap();
        // 25% against 10% of 2,000 offered: 300 brought back, +15 points.
        assert!(
            page.html.contains("brought back about 300 customers"),
            "{}",
            page.html
        );
        assert!(page.html.contains("+15.0 points"));
        assert!(page.html.contains("whole program"));
        assert!(
            page.html.contains("Orders merely pulled forward")
                || page.html.contains("orders merely pulled forward")
        );
    }
}
