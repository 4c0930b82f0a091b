//! `winback uplift`: learns from an experiment file whom an email changes (`fit`), and scores
//! customers with the learned model (`score`). The file's contract: `customer_id`, `group`
//! (`treated` or `holdout`), `ordered` (0 or 1), `revenue` (a decimal; optional unless the outcome
//! is revenue), and any further columns as features. The model and its figures come from
//! `shared::domain::uplift`; this module reads the files, times the fit and prints.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use shared::domain::uplift::evaluate::{self, Economics, Evaluation};
use shared::domain::uplift::{self, Column, Experiment, Model, Outcome, Settings, UpliftError};

use crate::error::{CliError, CliResult};
use crate::report::html;

/// `winback uplift`.
#[derive(Debug, Subcommand)]
pub enum UpliftCommand {
    /// Learn each customer's uplift from an experiment file (treated against holdout).
    Fit(FitArgs),
    /// Print each customer's uplift from a fitted model.
    Score(ScoreArgs),
}

/// The outcome flag.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutcomeFlag {
    /// The chance of ordering.
    Ordered,
    /// Expected revenue.
    Revenue,
}

/// `winback uplift fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The experiment CSV: customer_id, group (treated|holdout), ordered (0|1), revenue, features…
    #[arg(long, value_name = "FILE")]
    pub experiment: PathBuf,
    /// Where to write the model (JSON).
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
    /// What uplift is measured in.
    #[arg(long, value_enum, default_value = "ordered")]
    pub outcome: OutcomeFlag,
    /// Share of revenue kept as profit, for the profit figures.
    #[arg(long, default_value_t = 1.0)]
    pub margin: f64,
    /// What treating one customer costs (the email and the reward), in revenue's unit.
    #[arg(long, default_value_t = 0.0)]
    pub cost: f64,
    /// Directory of the HTML report.
    #[arg(long, default_value = "report/uplift", value_name = "DIR")]
    pub report: PathBuf,
    /// Print the figures as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `winback uplift score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// A model written by `winback uplift fit`.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// The customers CSV: customer_id and the model's feature columns (group, ordered and
    /// revenue are ignored if present).
    #[arg(long, value_name = "FILE")]
    pub customers: PathBuf,
    /// Print a JSON array of {"customer_id", "uplift"} instead of CSV.
    #[arg(long)]
    pub json: bool,
}

const ID: &str = "customer_id";
const GROUP: &str = "group";
const ORDERED: &str = "ordered";
const REVENUE: &str = "revenue";

/// A CSV read into an experiment, with each customer's line in the file.
#[derive(Debug)]
pub struct Table {
    pub experiment: Experiment,
    pub lines: Vec<u64>,
}

fn cell_error(path: &Path, line: u64, column: &str, reason: String) -> CliError {
    CliError::BadCell {
        path: path.to_path_buf(),
        line,
        column: column.to_string(),
        reason,
    }
}

/// Reads an experiment (`outcomes`: group, ordered and revenue are required) or a customers
/// file (they are ignored).
pub fn read(path: &Path, outcomes: bool, outcome: Outcome) -> CliResult<Table> {
    let bad = |reason: String| CliError::BadCsv {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(e.to_string()))?;
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let position = |name: &str| headers.iter().position(|h| h == name);
    let Some(id_at) = position(ID) else {
        return Err(bad(format!(
            "no {ID} column (the header is: {})",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    };
    let required = |name: &'static str| {
        position(name).ok_or_else(|| {
            bad(format!(
                "no {name} column: an experiment needs {ID}, {GROUP} (treated or holdout), {ORDERED} (0 or 1) and {REVENUE}"
            ))
        })
    };
    let (group_at, ordered_at) = if outcomes {
        (Some(required(GROUP)?), Some(required(ORDERED)?))
    } else {
        (None, None)
    };
    let revenue_at = match (outcomes, outcome, position(REVENUE)) {
        (true, Outcome::Revenue, None) => Some(required(REVENUE)?),
        (_, _, at) => at,
    };
    let reserved = [ID, GROUP, ORDERED, REVENUE];
    let feature_at: Vec<usize> = (0..headers.len())
        .filter(|&i| !reserved.contains(&&headers[i]))
        .collect();
    let mut e = Experiment {
        customer_ids: Vec::new(),
        treated: Vec::new(),
        ordered: Vec::new(),
        revenue: Vec::new(),
        features: feature_at
            .iter()
            .map(|&i| Column {
                name: headers[i].to_string(),
                values: Vec::new(),
            })
            .collect(),
    };
    let mut lines = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| bad(e.to_string()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let id = record.get(id_at).unwrap_or("");
        if id.is_empty() {
            return Err(cell_error(
                path,
                line,
                ID,
                "empty: every row needs its customer".into(),
            ));
        }
        if let Some(first) = seen.insert(id.to_string(), line) {
            return Err(cell_error(
                path,
                line,
                ID,
                format!("{id} appears again (first on row {first}): one row per customer"),
            ));
        }
        if let (Some(g), Some(o)) = (group_at, ordered_at) {
            e.treated.push(match record.get(g).unwrap_or("") {
                "treated" => true,
                "holdout" => false,
                "" => {
                    return Err(cell_error(
                        path,
                        line,
                        GROUP,
                        "empty: write treated or holdout".into(),
                    ))
                }
                other => {
                    return Err(cell_error(
                        path,
                        line,
                        GROUP,
                        format!("'{other}' is neither treated nor holdout"),
                    ))
                }
            });
            e.ordered.push(match record.get(o).unwrap_or("") {
                "1" => true,
                "0" => false,
                other => {
                    return Err(cell_error(
                        path,
                        line,
                        ORDERED,
                        format!("'{other}' is not 0 or 1"),
                    ))
                }
            });
        }
        let revenue = match revenue_at.map(|r| record.get(r).unwrap_or("")) {
            None => 0.0,
            Some("") if !outcomes => 0.0,
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => x,
                _ if !outcomes => 0.0,
                _ => {
                    return Err(cell_error(
                        path,
                        line,
                        REVENUE,
                        format!("'{v}' is not a decimal amount (write 12.50, or 0)"),
                    ))
                }
            },
        };
        e.revenue.push(revenue);
        for (c, &i) in e.features.iter_mut().zip(&feature_at) {
            let v = record.get(i).unwrap_or("");
            c.values.push((!v.is_empty()).then(|| v.to_string()));
        }
        e.customer_ids.push(id.to_string());
        lines.push(line);
    }
    Ok(Table {
        experiment: e,
        lines,
    })
}

/// The domain's error on `path`, a data row turned into the file's row.
fn uplift_error(path: &Path, lines: &[u64], source: UpliftError) -> CliError {
    match source {
        UpliftError::NotNumeric { row, column, value } => cell_error(
            path,
            lines.get(row).copied().unwrap_or(0),
            &column,
            format!("'{value}' is not a number, and the model learned {column} as a number"),
        ),
        source => CliError::Uplift {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// What `uplift fit` found.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub experiment: PathBuf,
    pub model: PathBuf,
    pub features: Vec<String>,
    pub fit_seconds: f64,
    pub economics: Economics,
    pub evaluation: Evaluation,
}

/// Fits, writes the model, and evaluates the cross-fitted scores.
pub fn fit(a: &FitArgs) -> CliResult<FitReport> {
    let outcome = match a.outcome {
        OutcomeFlag::Ordered => Outcome::Ordered,
        OutcomeFlag::Revenue => Outcome::Revenue,
    };
    let table = read(&a.experiment, true, outcome)?;
    let settings = Settings {
        outcome,
        ..Settings::default()
    };
    let started = std::time::Instant::now();
    let fitted = uplift::fit(&table.experiment, &settings)
        .map_err(|e| uplift_error(&a.experiment, &table.lines, e))?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let json = serde_json::to_string(&fitted.model).unwrap_or_default();
    std::fs::write(&a.out, json).map_err(CliError::io("write", &a.out))?;
    let units = uplift::units(&table.experiment, &fitted.cross_fitted);
    let economics = Economics {
        margin: a.margin,
        cost: a.cost,
    };
    Ok(FitReport {
        experiment: a.experiment.clone(),
        model: a.out.clone(),
        features: fitted
            .model
            .features
            .iter()
            .map(|f| f.name.clone())
            .collect(),
        fit_seconds,
        economics,
        evaluation: evaluate::evaluate(&units, outcome, economics),
    })
}

/// One scored customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub customer_id: String,
    pub uplift: f64,
}

/// Scores the customers of `a.customers` with the model of `a.model`.
pub fn score(a: &ScoreArgs) -> CliResult<Vec<Scored>> {
    let text = std::fs::read_to_string(&a.model).map_err(CliError::io("read", &a.model))?;
    let model: Model = serde_json::from_str(&text).map_err(|e| CliError::BadCsv {
        path: a.model.clone(),
        reason: format!("not a model written by `winback uplift fit`: {e}"),
    })?;
    let table = read(&a.customers, false, model.outcome)?;
    let e = table.experiment;
    let scores = model
        .score(e.customer_ids.len(), &e.features)
        .map_err(|err| uplift_error(&a.customers, &table.lines, err))?;
    Ok(e.customer_ids
        .into_iter()
        .zip(scores)
        .map(|(customer_id, uplift)| Scored {
            customer_id,
            uplift,
        })
        .collect())
}

/// Scores as the command prints them: CSV, or a JSON array.
pub fn scores_text(scores: &[Scored], json: bool) -> String {
    if json {
        return serde_json::to_string(scores).unwrap_or_default();
    }
    let mut s = String::from("customer_id,uplift\n");
    for c in scores {
        let _ = writeln!(s, "{},{:.6}", c.customer_id, c.uplift);
    }
    s
}

fn unit_of(outcome: Outcome) -> (&'static str, f64) {
    match outcome {
        Outcome::Ordered => ("orders", 1.0),
        Outcome::Revenue => ("revenue", 1.0),
    }
}

fn estimate(e: &evaluate::Estimate, decimals: usize) -> String {
    format!(
        "{:+.d$} ({:+.d$} to {:+.d$})",
        e.value,
        e.low,
        e.high,
        d = decimals
    )
}

impl FitReport {
    /// The report as text.
    pub fn to_text(&self) -> String {
        let ev = &self.evaluation;
        let (unit, _) = unit_of(ev.outcome);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Uplift model ({unit}) fitted on {} customers ({} treated, {} holdout) in {:.2} s; features: {}",
            ev.customers,
            ev.treated,
            ev.holdout,
            self.fit_seconds,
            if self.features.is_empty() { "none".to_string() } else { self.features.join(", ") }
        );
        let _ = writeln!(s, "Model written to {}", self.model.display());
        let _ = writeln!(
            s,
            "Treating everyone: {} {unit} per customer (95% CI {:+.4} to {:+.4})",
            format_args!("{:+.4}", ev.average_effect.value),
            ev.average_effect.low,
            ev.average_effect.high
        );
        let _ = writeln!(
            s,
            "Qini coefficient (cross-fitted: each customer scored by models that did not see them): {:.5} {unit} per customer{}",
            ev.qini,
            ev.qini_normalised
                .map(|q| format!(", {q:.3} of the average effect (0 = no better than random)"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "\nTreating the top k% by uplift (incremental over the {} customers of this file, 95% CI; profit at margin {} and cost {} per customer treated):",
            ev.customers, self.economics.margin, self.economics.cost
        );
        for t in &ev.targeting {
            let _ = writeln!(
                s,
                "  top {:>3.0}% ({} customers): orders {}, vs everyone {}, vs random {}",
                t.share * 100.0,
                t.customers,
                estimate(&t.orders.incremental, 1),
                estimate(&t.orders.vs_everyone, 1),
                estimate(&t.orders.vs_random, 1)
            );
            for (name, e) in [("revenue", &t.revenue), ("profit", &t.profit)] {
                let _ = writeln!(
                    s,
                    "{:>24} {name} {}, vs everyone {}, vs random {}",
                    "",
                    estimate(&e.incremental, 2),
                    estimate(&e.vs_everyone, 2),
                    estimate(&e.vs_random, 2)
                );
            }
        }
        s
    }

    /// Writes `<dir>/index.html` with the Qini curve, the targeting chart and the figures.
    pub fn write_html(&self, dir: &Path) -> CliResult<PathBuf> {
        let ev = &self.evaluation;
        let (unit, _) = unit_of(ev.outcome);
        let pct = |p: &evaluate::QiniPoint| p.share * 100.0;
        let qini = html::line_chart(
            "qini",
            "Qini curve: incremental outcome of treating the top k% (cross-fitted)",
            &[
                (
                    ev.curve.iter().map(|p| (pct(p), p.model)).collect(),
                    "by uplift",
                ),
                (
                    ev.curve.iter().map(|p| (pct(p), p.random)).collect(),
                    "at random",
                ),
            ],
            "% of customers treated, highest uplift first",
            &format!("incremental {unit} per customer"),
        )?;
        let labels: Vec<String> = ev
            .targeting
            .iter()
            .map(|t| format!("top {:.0}%", t.share * 100.0))
            .collect();
        let model: Vec<f64> = ev
            .targeting
            .iter()
            .map(|t| t.orders.incremental.value)
            .collect();
        let random: Vec<f64> = ev
            .targeting
            .iter()
            .map(|t| t.orders.incremental.value - t.orders.vs_random.value)
            .collect();
        let targeting = html::paired_bar_chart(
            "targeting",
            "Incremental orders: the top k% by uplift against k% at random",
            &labels,
            (&random, "k% at random"),
            (&model, "top k% by uplift"),
            "incremental orders",
        )?;
        let page = crate::pages::render(
            "uplift.html",
            minijinja::context! {
                qini => crate::pages::safe(qini),
                targeting => crate::pages::safe(targeting),
                figures => self.to_text(),
            },
        );
        crate::pages::write_index(dir, &page)
    }
}
