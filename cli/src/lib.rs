//! `winback`, the operator's tool: simulate a campaign, import orders, plan who would be enrolled,
//! preview the emails, and report what a campaign achieved.

pub mod aws;
pub mod backtest;
mod commands;
pub mod detection;
pub mod error;
pub mod import;
pub mod orders;
pub mod pages;
pub mod plan;
pub mod preview;
pub mod report;
pub mod shop_import;
pub mod simulate;
pub mod snapshot;
pub mod time;
pub mod uplift;

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
    about = "Win lapsed customers back: simulate, import, plan, preview, report, resolve, follow-up, backtest, uplift"
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
    /// Import an orders CSV, or a shop's order history (--from), into the store, then rebuild the due index.
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
    /// Learn from an experiment file whom an email changes, and score customers with it.
    #[command(subcommand)]
    Uplift(uplift::UpliftCommand),
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

/// Where a command reads and writes: a store snapshot or the DynamoDB table.
#[derive(Debug, Args)]
pub struct WriteTarget {
    /// Use this store snapshot (import creates it if missing).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "aws",
        conflicts_with = "aws"
    )]
    pub store: Option<PathBuf>,
    /// Use the DynamoDB table of TABLE_NAME.
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
    /// Who decides whom to email and reward: the campaign's rules, each flow's uplift model
    /// once the weekly rebuild has learned it, or the oracle, which knows every simulated
    /// customer's true response (the ceiling; default: the campaign's `[targeting] mode`). Run
    /// each with the same --seed to compare them on the same customers.
    #[arg(long, value_name = "rules|uplift|oracle", value_parser = parse_targeting)]
    pub targeting: Option<simulate::Targeting>,
    /// The flows to run, as the stack's CAMPAIGNS lists them: win-back, at-risk, re-engagement, celebration (default: every flow the campaign defines).
    #[arg(long, value_name = "LIST", default_value = "")]
    pub flows: String,
}

fn parse_targeting(s: &str) -> Result<simulate::Targeting, String> {
    match s {
        "rules" => Ok(simulate::Targeting::Rules),
        "uplift" => Ok(simulate::Targeting::Uplift),
        "oracle" => Ok(simulate::Targeting::Oracle),
        _ => Err(format!("'{s}' is none of rules, uplift and oracle")),
    }
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
    #[arg(
        value_name = "FILE",
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    pub file: Option<PathBuf>,
    /// Read the order history from the shop's platform instead of a file (docs/shop.md).
    #[arg(long, value_name = "PLATFORM")]
    pub from: Option<shop_import::Platform>,
    /// With --from: the connection's JSON, as in the CheckoutSecret (docs/shop.md); default:
    /// the secret of CHECKOUT_SECRET_ARN, else WINBACK_CHECKOUT_CONNECTION. Never printed.
    #[arg(long, value_name = "FILE", requires = "from")]
    pub connection: Option<PathBuf>,
    /// With --from: where the import keeps its place, to resume after an interruption
    /// (default: next to the --store file, or ./winback-import-PLATFORM-TABLE.json with --aws).
    #[arg(long, value_name = "FILE", requires = "from")]
    pub resume: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
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
    /// The counters' store (read only).
    #[command(flatten)]
    pub target: WriteTarget,
    /// The campaign whose counters to read: a name under shared/campaigns/ or a folder holding
    /// campaign.toml (its other flows' counters are read too).
    #[arg(long, default_value = "example", value_name = "NAME|DIR")]
    pub campaign: String,
    /// The day the figures are of (YYYY-MM-DD, UTC): still active after 90 days counts those
    /// who came back 90 days before it, the recent profit the 28 days up to it. Today by default.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<chrono::NaiveDate>,
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
        Command::Simulate(a) => commands::simulate_command(a).await,
        Command::Resolve(a) => commands::resolve_command(a).await,
        Command::FollowUp(FollowUpCommand::Close(a)) => commands::follow_up_close_command(a).await,
        Command::Backtest(a) => commands::backtest_command(a).await,
        Command::Import(a) => commands::import_command(a).await,
        Command::Plan(a) => commands::plan_command(a).await,
        Command::Preview(a) => commands::preview_command(a).await,
        Command::Report(a) => commands::report_command(a).await,
        Command::Uplift(uplift::UpliftCommand::Fit(a)) => commands::uplift_fit_command(a),
        Command::Uplift(uplift::UpliftCommand::Score(a)) => commands::uplift_score_command(a),
    }
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
        "{prefix}campaign {}): {} {verb}, {:.1}% ordered within the window vs {:.1}% of its holdout ({} held out); lift {:+.1} points (95% CI {:+.1} to {:+.1}); incremental profit {}\n",
        r.campaign,
        r.treated_rate.trials + r.holdout_rate.trials,
        r.treated_rate.value * 100.0,
        r.holdout_rate.value * 100.0,
        r.holdout_rate.trials,
        r.lift.value * 100.0,
        r.lift.low * 100.0,
        r.lift.high * 100.0,
        r.estimate(r.figures.incremental_profit)
    )
}
