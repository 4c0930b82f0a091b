//! One function per command: reads its arguments, does the work, prints what it did.

use crate::error::{CliError, CliResult};
use crate::{
    aws, backtest, detection, flow_line, import, open_campaign, open_store, orders, plan, preview,
    report, shop_import, simulate, snapshot, time, uplift, BacktestArgs, FollowUpCloseArgs,
    ImportArgs, PlanArgs, PreviewArgs, ReportArgs, ResolveArgs, SimulateArgs,
};

/// `winback`: Simulates a campaign with the real handlers and prints what it did.
pub(crate) async fn simulate_command(a: SimulateArgs) -> CliResult<()> {
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
        targeting: a.targeting,
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
    println!("{}", simulate::targeting_text(&o.tally, o.targeting));
    println!(
        "{}",
        simulate::responses_text(&o.tally, o.margin, o.email_cost, &o.currency)
    );
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
    let head = shared::domain::figures::headline(&o.report.figures, Some(&o.program));
    print!("{}", o.report.program_text(&o.program));
    println!("{}", headline_text(&o.report, &head));
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
    Ok(())
}

/// `winback`: Marks a paused reason resolved for every customer who gave it.
pub(crate) async fn resolve_command(a: ResolveArgs) -> CliResult<()> {
    let reason: shared::domain::survey::Reason =
        a.reason
            .parse()
            .map_err(
                |e: shared::domain::survey::UnknownReason| CliError::BadArgument {
                    flag: "REASON",
                    reason: e.to_string(),
                },
            )?;
    let note = webhook::resolve::check_note(&a.note).map_err(|why| CliError::BadArgument {
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
            let done = scheduler::resolve::resolve_reason(&memory, reason, note, at).await?;
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
    Ok(())
}

/// `winback`: Closes a customer's follow-up.
pub(crate) async fn follow_up_close_command(a: FollowUpCloseArgs) -> CliResult<()> {
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
    Ok(())
}

/// `winback`: Backtests the customer model.
pub(crate) async fn backtest_command(a: BacktestArgs) -> CliResult<()> {
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
    Ok(())
}

/// `winback`: Imports an order history.
pub(crate) async fn import_command(a: ImportArgs) -> CliResult<()> {
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
    let file = match (a.from, a.file) {
        (Some(platform), _) => {
            return shop_import_command(
                platform,
                a.connection,
                a.resume,
                target,
                &campaign,
                at,
                !a.quiet,
            )
            .await
        }
        (None, Some(file)) => file,
        (None, None) => return Err(CliError::NoSource { command: "import" }),
    };
    let s = import::run(&file, &target, campaign.config(), at).await?;
    println!(
        "Imported {} orders of {} customers ({} rows read, {} skipped); {} profiles written, {} due now; due index rebuilt over {} customers",
        s.orders, s.customers, s.rows_read, s.skipped, s.written, s.due_now, s.rebuild_evaluated
    );
    println!(
        "Kept out before the first send: {} row(s) with an email that is not an address (skipped); customers imported but never emailed: {}",
        s.invalid_emails,
        orders::describe_kept_out(&s.kept_out)
    );
    match &s.fit {
        Some(f) if s.model_stored => {
            println!(
                "Customer model fitted on the store's customers: {}",
                f.figures()
            );
            println!(
                "Stored as campaign {}'s model: the functions, plan and report use it (a [lapse.fitted] block in campaign.toml would pin other parameters).",
                campaign.config().name
            );
        }
        // A fit that fell back to the prior has no figures of its own worth printing.
        Some(_) => println!(
            "Customer model: the store's customers gave no fit of their own (it fell back to the prior), so none was stored; the campaign keeps its stored model or the shipped prior."
        ),
        None => {}
    }
    Ok(())
}

/// The deployment's pseudonym key, as the webhook reads it: `PSEUDONYM_SECRET_ARN`, else
/// `WINBACK_PSEUDONYM_KEY`, else the one a local webhook derives from `WINBACK_WEBHOOK_KEYS`.
async fn pseudonyms() -> CliResult<Option<shared::pseudonym::Pseudonyms>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let conf = shared::settings::aws_config().await;
    let found = shared::settings::load_pseudonyms_with(&conf, &var)
        .await
        .map_err(|e| CliError::BadArgument {
            flag: "--from",
            reason: e.to_string(),
        })?;
    Ok(found.or_else(|| {
        var("WINBACK_WEBHOOK_KEYS")
            .and_then(|_| shared::settings::Keys::from_env_vars().ok())
            .map(|k| k.pseudonym)
    }))
}

/// `winback import --from`: reads the shop's order history through its platform's API.
async fn shop_import_command(
    platform: shop_import::Platform,
    connection: Option<std::path::PathBuf>,
    resume: Option<std::path::PathBuf>,
    target: import::Target,
    campaign: &shared::campaign::Campaign,
    at: chrono::DateTime<chrono::Utc>,
    progress: bool,
) -> CliResult<()> {
    let connection = match connection {
        Some(path) => std::fs::read_to_string(&path).map_err(CliError::io("read", path))?,
        None => {
            let conf = shared::settings::aws_config().await;
            shared::settings::checkout::connection_json(&conf)
                .await
                .map_err(|e| CliError::BadArgument {
                    flag: "--connection",
                    reason: e.to_string(),
                })?
                .ok_or(CliError::BadArgument {
                    flag: "--connection",
                    reason: "give the shop's connection: --connection FILE (its JSON, docs/shop.md), or set CHECKOUT_SECRET_ARN or WINBACK_CHECKOUT_CONNECTION".into(),
                })?
        }
    };
    let opts = shop_import::Options {
        platform,
        connection,
        pseudonyms: pseudonyms().await?,
        resume_file: resume.unwrap_or_else(|| shop_import::default_resume_file(platform, &target)),
        target,
        at,
        patience: shop_import::Patience::DEFAULT,
        progress,
    };
    let s = shop_import::run(&opts, campaign.config()).await?;
    let skipped: Vec<String> = s.skipped.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "Imported {} orders of {} customers from {} ({} pages, {} requests{}); {} profile writes; due index rebuilt over {} customers",
        s.orders,
        s.customers,
        platform.name(),
        s.pages,
        s.calls,
        if s.resumed_at_page > 0 { format!(", resumed after page {}", s.resumed_at_page) } else { String::new() },
        s.written,
        s.rebuild_evaluated
    );
    println!(
        "Not imported: {}; rate limits waited out: {}, failures retried: {}",
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        },
        s.rate_limit_waits,
        s.retries
    );
    println!(
        "Kept out before the first send: customers imported but never emailed: {}",
        orders::describe_kept_out(&s.kept_out)
    );
    Ok(())
}

/// `winback`: Plans who would be enrolled, and why.
pub(crate) async fn plan_command(a: PlanArgs) -> CliResult<()> {
    let at = time::parse_flag("--at", &a.at)?;
    let campaign = open_campaign(&a.campaign)?;
    let config = campaign.config();
    match &a.orders {
        Some(path) => {
            // One customer at a time: the file is kept as its rows' text, each profile built
            // when it is needed (once for the fit, once for the decision) and dropped after.
            let file = orders::read_customer_orders(path, Some(at))?;
            for bad in &file.bad {
                eprintln!("{}:{}: skipped: {}", path.display(), bad.line, bad.reason);
            }
            // The file's own customers fit the model, as an import would store it.
            let mut fitted = config.clone();
            fitted.lapse = plan::lapse_fitted_on(
                file.profiles(&config.lapse, at),
                &config.lapse,
                &config.valuation(),
                at,
            );
            let rows = file
                .profiles(&config.lapse, at)
                .map(|p| plan::plan_one(&p, None, &fitted, at));
            print_plan(rows, a.json, at)
        }
        None => {
            let store = open_store(a.store.as_ref(), a.aws, "plan").await?;
            let mut config = config.clone();
            config.lapse =
                shared::fitted::lapse_policy(store.as_ref(), &config.name, &config.lapse).await;
            config.learned = shared::fitted::targeting_models(store.as_ref(), &config.name).await;
            // Each row is printed (on a thread of its own) as the scan decides it.
            let (tx, mut rx) = tokio::sync::mpsc::channel(256);
            let json = a.json;
            let printer = tokio::task::spawn_blocking(move || {
                print_plan(std::iter::from_fn(|| rx.blocking_recv()), json, at)
            });
            let scanned = plan::plan_store(store.as_ref(), &config, at, &tx).await;
            drop(tx);
            let printed = match printer.await {
                Ok(printed) => printed,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            scanned.and(printed)
        }
    }
}

/// Prints the plan's rows as they come, as a table or (`json`) as JSON.
fn print_plan(
    rows: impl IntoIterator<Item = plan::PlanRow>,
    json: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> CliResult<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        plan::write_json(&mut out, rows).and_then(|()| writeln!(out))
    } else {
        plan::write_text(&mut out, rows, at)
    }
    .and_then(|()| out.flush())
    .map_err(CliError::io("write", "standard output"))
}

/// `winback`: Renders every email of a campaign.
pub(crate) async fn preview_command(a: PreviewArgs) -> CliResult<()> {
    let s = preview::run(&a.campaign, &a.out)?;
    println!("Rendered {} emails; open {}", s.emails, s.index.display());
    Ok(())
}

/// `winback`: Reports what a campaign achieved, as text or JSON and an HTML page.
pub(crate) async fn report_command(a: ReportArgs) -> CliResult<()> {
    let campaign = open_campaign(&a.campaign)?;
    let config = campaign.config();
    let store = open_store(a.target.store.as_ref(), a.target.aws, "report").await?;
    let mut rows = std::collections::BTreeMap::new();
    for flow in shared::domain::sequence::Flow::ALL {
        let name = shared::domain::sequence::cohort_campaign(&config.name, flow);
        rows.insert(name.clone(), store.counter_rows(&name).await?);
    }
    let source = match (&a.target.store, a.target.aws) {
        (_, true) => "stored counters in DynamoDB".to_string(),
        (Some(p), _) => format!("stored counters in {}", p.display()),
        _ => String::new(),
    };
    let as_of = a.as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let program = report::Program::from_rows(config, &source, as_of, |name| {
        rows.get(name).cloned().unwrap_or_default()
    });
    let r = &program.win_back;
    // The other flows keep their own counters: each gets its own section, in the text
    // and on the HTML page.
    let mut sections = Vec::new();
    let mut flow_reports = serde_json::Map::new();
    for (flow, title, fr) in &program.flows {
        sections.push((title.clone(), fr.to_text()));
        flow_reports.insert(
            flow.as_str().to_string(),
            serde_json::to_value(fr).expect("report serializes"),
        );
    }
    let path = ::report::page::write(r, Some(&program.figures), &program.sections(), &[], &a.out)
        .map_err(CliError::io("write", &a.out))?;
    if a.json {
        // The win-back flow's report as before, each other flow's under `flows`, the whole
        // program's under `program`.
        let mut json = serde_json::to_value(r).expect("report serializes");
        if let Some(o) = json.as_object_mut() {
            o.insert("flows".into(), serde_json::Value::Object(flow_reports));
            o.insert(
                "program".into(),
                serde_json::to_value(&program.figures).expect("figures serialize"),
            );
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("report serializes")
        );
    } else {
        println!("{}", headline_text(r, &program.headline()));
        println!("{}", r.program_text(&program.figures));
        println!("{}", r.to_text());
        for (title, text) in &sections {
            println!("{title}\n{text}");
        }
        println!("Report: {}", path.display());
    }
    Ok(())
}

/// `winback uplift fit`: fits, writes the model and the report, prints the figures.
pub(crate) fn uplift_fit_command(a: uplift::FitArgs) -> CliResult<()> {
    let r = uplift::fit(&a)?;
    let page = r.write_html(&a.report)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        print!("{}", r.to_text());
        println!("Report: {}", page.display());
    }
    Ok(())
}

/// `winback uplift score`: prints each customer's uplift.
pub(crate) fn uplift_score_command(a: uplift::ScoreArgs) -> CliResult<()> {
    print!("{}", uplift::scores_text(&uplift::score(&a)?, a.json));
    Ok(())
}

/// The program's headline in a sentence: the whole program's figures, or the win-back flow's
/// until the program holdout is large enough, saying whose they are.
fn headline_text(r: &report::Report, head: &shared::domain::figures::Headline) -> String {
    format!(
        "Program headline: {:.0} customers brought back (95% CI {:.0} to {:.0}), lift {:+.1} points (95% CI {:+.1} to {:+.1}), incremental profit over the last {} days {}. These are {}.",
        head.brought_back.value,
        head.brought_back.low.max(0.0),
        head.brought_back.high.max(0.0),
        head.lift.value * 100.0,
        head.lift.low * 100.0,
        head.lift.high * 100.0,
        r.figures.window.days,
        r.estimate(head.window_profit),
        head.basis_text()
    )
}
