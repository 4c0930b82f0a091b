//! `winback`, the operator's tool: simulate a campaign, import orders, plan who would be enrolled,
//! preview the emails, and report what a campaign achieved.

pub mod aws;
pub mod backtest;
pub mod detection;
pub mod error;
pub mod import;
pub mod orders;
pub mod pages;
pub mod plan;
pub mod preview;
pub mod report;
pub mod simulate;
pub mod snapshot;
pub mod time;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use shared::campaign::Campaign;
use shared::ports::Store;

use error::{CliError, CliResult};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "winback",
    version,
    about = "Win lapsed customers back: simulate, import, plan, preview, report, resolve"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a campaign over months of simulated time with the real handlers, then report.
    Simulate(SimulateArgs),
    /// Import an orders CSV into the store, then rebuild the due index.
    Import(ImportArgs),
    /// Dry run: who would be enrolled at a moment, into which variant, and why.
    Plan(PlanArgs),
    /// Render every step × locale × reward kind of a campaign to HTML files.
    Preview(PreviewArgs),
    /// Report reactivation, lift, money and reasons from the stored counters.
    Report(ReportArgs),
    /// Mark a paused reason fixed: its customers may be contacted again and are told, once.
    Resolve(ResolveArgs),
    /// Follow-ups a person must make (detractors, bad experiences).
    #[command(name = "follow-up", subcommand)]
    FollowUp(FollowUpCommand),
    /// How well the customer model would have told, on an orders CSV, who came back by themselves.
    Backtest(BacktestArgs),
}

/// `winback follow-up`.
#[derive(Debug, Subcommand)]
pub enum FollowUpCommand {
    /// Close a customer's follow-up (the id is the customer id): their emails may go again.
    Close(FollowUpCloseArgs),
}

/// `winback follow-up close`.
#[derive(Debug, Args)]
pub struct FollowUpCloseArgs {
    /// The follow-up's id: the customer id the team's message names.
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub target: WriteTarget,
    /// The campaign whose flows' held emails are released.
    #[arg(long, default_value = "example", value_name = "NAME|DIR")]
    pub campaign: String,
    /// When it was closed (default: now).
    #[arg(long, value_name = "DATE")]
    pub at: Option<String>,
}

/// `winback backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The orders CSV (the `import` format).
    #[arg(long, value_name = "FILE", required_unless_present = "synthetic")]
    pub orders: Option<PathBuf>,
    /// The cut-off: orders before it fit the model, orders after it are the outcome.
    #[arg(long, value_name = "DATE", required_unless_present = "synthetic")]
    pub at: Option<String>,
    /// Instead of a CSV: N synthetic customers (the simulator's) whose churn moments are known;
    /// prints each lapse rule's detection delay against its false alarms.
    #[arg(long, value_name = "N", conflicts_with_all = ["orders", "at"])]
    pub synthetic: Option<usize>,
    /// Seed of the synthetic customers.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days after the cut-off in which an order counts as coming back.
    #[arg(long, default_value_t = 90)]
    pub horizon: u32,
    /// The campaign whose model and P(active) threshold to test.
    #[arg(long, default_value = "example", value_name = "NAME|DIR")]
    pub campaign: String,
    /// Directory of the HTML report.
    #[arg(long, default_value = "report/backtest", value_name = "DIR")]
    pub out: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where a command writes: a store snapshot or the DynamoDB table.
#[derive(Debug, Args)]
pub struct WriteTarget {
    /// Write to this store snapshot (created if missing for import).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "aws",
        conflicts_with = "aws"
    )]
    pub store: Option<PathBuf>,
    /// Write to the DynamoDB table of TABLE_NAME.
    #[arg(long)]
    pub aws: bool,
}

/// `winback resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The reason that is fixed: too_expensive, bad_experience, hard_to_understand, forgot, quality or other.
    #[arg(value_name = "REASON")]
    pub reason: String,
    /// What was fixed, in a sentence customers read in the "we fixed it" email.
    #[arg(long)]
    pub note: String,
    #[command(flatten)]
    pub target: WriteTarget,
    /// When it was resolved: its customers are due for the scheduler from then (default: now).
    #[arg(long, value_name = "DATE")]
    pub at: Option<String>,
}

/// `winback simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Synthetic customers to simulate (ignored with --orders).
    #[arg(long, default_value_t = 10_000)]
    pub customers: usize,
    /// Days to simulate.
    #[arg(long, default_value_t = 180)]
    pub days: u32,
    /// Seed of every random choice: the same seed gives the same run.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Use this orders CSV as the customer base instead of synthetic customers.
    #[arg(long, value_name = "FILE")]
    pub orders: Option<PathBuf>,
    /// A shipped campaign's name or a campaign directory.
    #[arg(long, default_value = "example", value_name = "NAME|DIR")]
    pub campaign: String,
    /// The recipient-behaviour model (default: the shipped cli/behaviour.toml).
    #[arg(long, value_name = "FILE")]
    pub behaviour: Option<PathBuf>,
    /// Directory of the HTML report.
    #[arg(long, default_value = "report", value_name = "DIR")]
    pub out: PathBuf,
    /// Run against the AWS endpoints in the environment (TABLE_NAME, EVENT_BUS_NAME, SENDER_ADDRESS, AWS_ENDPOINT_URL*).
    #[arg(long)]
    pub aws: bool,
    /// Save the embedded store as a JSON snapshot that `report`, `plan` and `import` can read.
    #[arg(long, value_name = "FILE")]
    pub save_store: Option<PathBuf>,
    /// First simulated day (default 2026-01-05; with --orders, the day after the last order).
    #[arg(long, value_name = "DATE")]
    pub start: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Send at each customer's usual hour (`on`) or at the campaign's own timing (`off`),
    /// whatever the campaign's `sending.best_hour` says (default: as the campaign says).
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub best_hour: Option<bool>,
    /// The flows to run, as the stack's CAMPAIGNS lists them: win-back, at-risk, re-engagement, celebration (default: every flow the campaign defines).
    #[arg(long, value_name = "LIST", default_value = "")]
    pub flows: String,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("'{s}' is neither on nor off")),
    }
}

/// `winback import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The orders CSV: customer_id,email,ordered_at,amount[,currency,first_name,locale,time_zone,category,product].
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub target: WriteTarget,
    /// The moment due times are computed for (default: now).
    #[arg(long, value_name = "DATE")]
    pub at: Option<String>,
    /// The campaign whose lapse policy sets due times.
    #[arg(long, default_value = "example", value_name = "NAME|DIR")]
    pub campaign: String,
}

/// `winback plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The moment to plan for.
    #[arg(long, value_name = "DATE")]
    pub at: String,
    /// Plan over this orders CSV (orders after --at are ignored).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["store", "aws"])]
    pub orders: Option<PathBuf>,
    /// Plan over a store snapshot.
    #[arg(long, value_name = "FILE", conflicts_with = "aws")]
    pub store: Option<PathBuf>,
    /// Plan over the DynamoDB table of TABLE_NAME.
    #[arg(long)]
    pub aws: bool,
    #[arg(long, default_value = "example", value_name = "NAME|DIR")]
    pub campaign: String,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `winback preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[arg(long, default_value = "example", value_name = "NAME|DIR")]
    pub campaign: String,
    /// Directory of the rendered emails.
    #[arg(long, default_value = "preview", value_name = "DIR")]
    pub out: PathBuf,
}

/// `winback report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Read a store snapshot.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "aws",
        conflicts_with = "aws"
    )]
    pub store: Option<PathBuf>,
    /// Read the DynamoDB table of TABLE_NAME.
    #[arg(long)]
    pub aws: bool,
    #[arg(long, default_value = "example", value_name = "NAME|DIR")]
    pub campaign: String,
    /// Directory of the HTML report.
    #[arg(long, default_value = "report", value_name = "DIR")]
    pub out: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn open_campaign(name: &str) -> CliResult<Campaign> {
    Campaign::open(name).map_err(|source| CliError::Campaign {
        name: name.to_string(),
        source: Box::new(source),
    })
}

async fn open_store(
    store: Option<&PathBuf>,
    aws: bool,
    command: &'static str,
) -> CliResult<Arc<dyn Store>> {
    if aws {
        return Ok(aws::store().await?);
    }
    match store {
        Some(path) => Ok(Arc::new(snapshot::Snapshot::load(path)?.restore().await?)),
        None => Err(CliError::NoSource { command }),
    }
}

/// Runs a parsed command line; what it prints goes to stdout, progress to stderr.
pub async fn run(cli: Cli) -> CliResult<()> {
    match cli.command {
        Command::Simulate(a) => {
            let start = a
                .start
                .as_deref()
                .map(|s| time::parse_flag("--start", s))
                .transpose()?;
            let opts = simulate::Options {
                customers: a.customers,
                days: a.days,
                seed: a.seed,
                orders: a.orders,
                campaign: a.campaign,
                behaviour: a.behaviour,
                out: a.out,
                aws: a.aws,
                save_store: a.save_store,
                start,
                progress: !a.quiet,
                best_hour: a.best_hour,
                flows: a.flows,
            };
            let o = simulate::run(&opts).await?;
            for n in &o.notes {
                println!("note: {n}");
            }
            println!("{}", o.report.to_text());
            if let Some(r) = &o.at_risk {
                println!(
                    "{}",
                    flow_line("At-risk flow (its own counters, ", "enrolled", r)
                );
            }
            if let Some(r) = &o.celebration {
                println!(
                    "{}",
                    flow_line("Birthday and anniversary flow (", "celebrated", r)
                );
            }
            if let Some(r) = &o.re_engagement {
                println!(
                    "{}",
                    flow_line(
                        "Re-engagement flow (never opened an email: re-permission, sunset sooner; ",
                        "enrolled",
                        r
                    )
                );
            }
            println!(
                "{}",
                simulate::tally_text(&o.tally, o.customers, o.elapsed_seconds)
            );
            println!("{}", simulate::best_hour_text(&o.tally, o.best_hour));
            println!(
                "Follow-ups: the team was told about {} customer(s) who needed a person (detractors, bad experiences); their emails waited until closed or the pause passed",
                o.follow_ups_notified
            );
            println!(
                "Reactivation rate: treated {:.1}% vs holdout {:.1}%; lift {:+.1} points (95% CI {:+.1} to {:+.1})",
                o.report.treated_rate.value * 100.0,
                o.report.holdout_rate.value * 100.0,
                o.report.lift.value * 100.0,
                o.report.lift.low * 100.0,
                o.report.lift.high * 100.0
            );
            println!("Report: {}", o.report_path.display());
            if let Some(p) = &opts.save_store {
                if !opts.aws {
                    println!("Store snapshot: {}", p.display());
                }
            }
            println!(
                "Simulated {} customers over {} days in {:.1} s",
                o.customers, opts.days, o.elapsed_seconds
            );
        }
        Command::Resolve(a) => {
            let reason: shared::domain::survey::Reason =
                a.reason
                    .parse()
                    .map_err(
                        |e: shared::domain::survey::UnknownReason| CliError::BadArgument {
                            flag: "REASON",
                            reason: e.to_string(),
                        },
                    )?;
            let note =
                webhook::resolve::check_note(&a.note).map_err(|why| CliError::BadArgument {
                    flag: "--note",
                    reason: why.to_string(),
                })?;
            let at = match &a.at {
                Some(s) => time::parse_flag("--at", s)?,
                None => chrono::Utc::now(),
            };
            let done = match (a.target.aws, &a.target.store) {
                (true, _) => {
                    let store = aws::store().await?;
                    scheduler::resolve::resolve_reason(store.as_ref(), reason, note, at).await?
                }
                (false, Some(path)) => {
                    let snap = snapshot::Snapshot::load(path)?;
                    let memory = snap.restore().await?;
                    let done =
                        scheduler::resolve::resolve_reason(&memory, reason, note, at).await?;
                    snapshot::Snapshot::take(&memory, &snap.campaigns)
                        .await?
                        .save(path)?;
                    done
                }
                (false, None) => return Err(CliError::NoSource { command: "resolve" }),
            };
            println!(
                "Resolved {reason}: {} customer(s) who gave it may be contacted again; each is told once, in the first email of their next enrollment ({} profiles read)",
                done.resolved, done.scanned
            );
        }
        Command::FollowUp(FollowUpCommand::Close(a)) => {
            let campaign = open_campaign(&a.campaign)?;
            let at = match &a.at {
                Some(s) => time::parse_flag("--at", s)?,
                None => chrono::Utc::now(),
            };
            let name = &campaign.config().name;
            use shared::domain::sequence::{cohort_campaign, Flow};
            let flows = [
                cohort_campaign(name, Flow::WinBack),
                cohort_campaign(name, Flow::AtRisk),
                cohort_campaign(name, Flow::Celebration),
                cohort_campaign(name, Flow::ReEngagement),
            ];
            let (closed, _) = match (a.target.aws, &a.target.store) {
                (true, _) => {
                    let store = aws::store().await?;
                    webhook::follow_up::close(store.as_ref(), &a.id, &flows, at).await?
                }
                (false, Some(path)) => {
                    let snap = snapshot::Snapshot::load(path)?;
                    let memory = snap.restore().await?;
                    let done = webhook::follow_up::close(&memory, &a.id, &flows, at).await?;
                    snapshot::Snapshot::take(&memory, &snap.campaigns)
                        .await?
                        .save(path)?;
                    done
                }
                (false, None) => {
                    return Err(CliError::NoSource {
                        command: "follow-up close",
                    })
                }
            };
            use shared::domain::follow_up::Closed;
            match closed {
                Closed::Now => println!(
                    "Closed the follow-up on customer {}: their emails may go again",
                    a.id
                ),
                Closed::Already => {
                    println!("The follow-up on customer {} was closed already", a.id)
                }
                Closed::NoneOpen => {
                    return Err(CliError::BadArgument {
                        flag: "ID",
                        reason: format!(
                            "customer {} has no follow-up: check the id in the team's message",
                            a.id
                        ),
                    })
                }
            }
        }
        Command::Backtest(a) => {
            let campaign = open_campaign(&a.campaign)?;
            let config = campaign.config();
            let (Some(path), Some(at)) = (&a.orders, &a.at) else {
                let n = a.synthetic.unwrap_or(10_000);
                let d = detection::run(n, a.seed, &config.lapse, &config.currency);
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
                } else {
                    print!("{}", d.to_text());
                }
                return Ok(());
            };
            let at = time::parse_flag("--at", at)?;
            let parsed = orders::read_orders(path)?;
            for bad in &parsed.bad {
                eprintln!("{}:{}: skipped: {}", path.display(), bad.line, bad.reason);
            }
            let cases = backtest::cases(&parsed.rows, at, a.horizon);
            if cases.is_empty() {
                return Err(CliError::BadArgument {
                    flag: "--at",
                    reason: format!(
                        "no order in {} is before {}: choose a cut-off after the first orders",
                        path.display(),
                        at.format("%Y-%m-%d")
                    ),
                });
            }
            let policy = &campaign.config().lapse;
            let b = backtest::run(&cases, at, a.horizon, policy.model_variant(), policy);
            let path = b.write_html(&a.out)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&b).unwrap_or_default());
            } else {
                print!("{}", b.to_text());
                println!("Report: {}", path.display());
            }
        }
        Command::Import(a) => {
            let at = match &a.at {
                Some(s) => time::parse_flag("--at", s)?,
                None => chrono::Utc::now(),
            };
            let campaign = open_campaign(&a.campaign)?;
            let target = match (a.target.aws, a.target.store) {
                (true, _) => import::Target::Aws,
                (false, Some(p)) => import::Target::Snapshot(p),
                (false, None) => return Err(CliError::NoSource { command: "import" }),
            };
            let s = import::run(&a.file, &target, campaign.config(), at).await?;
            println!(
                "Imported {} orders of {} customers ({} rows read, {} skipped); {} profiles written, {} due now; due index rebuilt over {} customers",
                s.orders, s.customers, s.rows_read, s.skipped, s.written, s.due_now, s.rebuild_evaluated
            );
            println!(
                "Kept out before the first send: {} row(s) with an email that is not an address (skipped); customers imported but never emailed: {}",
                s.invalid_emails,
                orders::describe_kept_out(&s.kept_out)
            );
            if let Some(f) = &s.fit {
                println!(
                    "Customer model fitted on the store's customers: {}",
                    f.figures()
                );
                if s.model_stored {
                    println!(
                        "Stored as campaign {}'s model: the functions, plan and report use it (a [lapse.fitted] block in campaign.toml would pin other parameters).",
                        campaign.config().name
                    );
                } else {
                    println!(
                        "Not stored: the campaign keeps its stored model or the shipped prior."
                    );
                }
            }
        }
        Command::Plan(a) => {
            let at = time::parse_flag("--at", &a.at)?;
            let campaign = open_campaign(&a.campaign)?;
            let config = campaign.config();
            let rows = match &a.orders {
                Some(path) => {
                    let parsed = orders::read_orders(path)?;
                    for bad in &parsed.bad {
                        eprintln!("{}:{}: skipped: {}", path.display(), bad.line, bad.reason);
                    }
                    let profiles =
                        orders::build_profiles(&parsed.rows, &config.lapse, at, Some(at));
                    // The file's own customers fit the model, as an import would store it.
                    let mut config = config.clone();
                    config.lapse = plan::lapse_fitted_on(&profiles, &config.lapse, at);
                    profiles
                        .iter()
                        .map(|p| plan::plan_one(p, None, &config, at))
                        .collect()
                }
                None => {
                    let store = open_store(a.store.as_ref(), a.aws, "plan").await?;
                    let mut config = config.clone();
                    config.lapse =
                        shared::fitted::lapse_policy(store.as_ref(), &config.name, &config.lapse)
                            .await;
                    plan::plan_store(store.as_ref(), &config, at).await?
                }
            };
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan::Plan::new(rows)).expect("plan serializes")
                );
            } else {
                print!("{}", plan::to_text(&rows, at));
            }
        }
        Command::Preview(a) => {
            let s = preview::run(&a.campaign, &a.out)?;
            println!("Rendered {} emails; open {}", s.emails, s.index.display());
        }
        Command::Report(a) => {
            let campaign = open_campaign(&a.campaign)?;
            let config = campaign.config();
            let store = open_store(a.store.as_ref(), a.aws, "report").await?;
            let rows = store.counter_rows(&config.name).await?;
            let source = match (&a.store, a.aws) {
                (_, true) => "stored counters in DynamoDB".to_string(),
                (Some(p), _) => format!("stored counters in {}", p.display()),
                _ => String::new(),
            };
            let r = report::Report::of_flow(config, Flow::WinBack, &source, &rows);
            // The other flows keep their own counters: each gets its own section, in the text
            // and on the HTML page.
            use shared::domain::sequence::{cohort_campaign, Flow};
            let mut sections = Vec::new();
            let mut reports = Vec::new();
            let mut flow_reports = serde_json::Map::new();
            for flow in [Flow::AtRisk, Flow::Celebration, Flow::ReEngagement] {
                if config.steps_of(flow).is_empty() {
                    continue;
                }
                let name = cohort_campaign(&config.name, flow);
                let rows = store.counter_rows(&name).await?;
                let fr = report::Report::of_flow(config, flow, &source, &rows);
                let title = format!("Flow {} (counters of campaign {name})", flow.as_str());
                sections.push((title.clone(), fr.to_text()));
                flow_reports.insert(
                    flow.as_str().to_string(),
                    serde_json::to_value(&fr).expect("report serializes"),
                );
                reports.push((title, fr));
            }
            let flow_sections: Vec<report::html::FlowSection> = reports
                .iter()
                .map(|(title, report)| report::html::FlowSection {
                    title: title.clone(),
                    report,
                })
                .collect();
            let path = report::html::write(&r, &flow_sections, &[], &a.out)?;
            if a.json {
                // The win-back flow's report as before, and each other flow's under `flows`.
                let mut json = serde_json::to_value(&r).expect("report serializes");
                if let Some(o) = json.as_object_mut() {
                    o.insert("flows".into(), serde_json::Value::Object(flow_reports));
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).expect("report serializes")
                );
            } else {
                println!("{}", r.to_text());
                for (title, text) in &sections {
                    println!("{title}\n{text}");
                }
                println!("Report: {}", path.display());
            }
        }
    }
    Ok(())
}

/// One line for a flow counted apart from the win-back (`prefix` opens its parenthesis).
fn flow_line(prefix: &str, verb: &str, r: &report::Report) -> String {
    if r.holdout_rate.trials == 0 {
        // No customer held out of this flow yet (a small run, or holdout_percent = 0).
        return format!(
            "{prefix}campaign {}): {} {verb}, {:.1}% ordered within the window; none held out yet, so no lift\n",
            r.campaign,
            r.treated_rate.trials,
            r.treated_rate.value * 100.0
        );
    }
    format!(
        "{prefix}campaign {}): {} {verb}, {:.1}% ordered within the window vs {:.1}% of its holdout; lift {:+.1} points (95% CI {:+.1} to {:+.1})\n",
        r.campaign,
        r.treated_rate.trials + r.holdout_rate.trials,
        r.treated_rate.value * 100.0,
        r.holdout_rate.value * 100.0,
        r.lift.value * 100.0,
        r.lift.low * 100.0,
        r.lift.high * 100.0
    )
}
