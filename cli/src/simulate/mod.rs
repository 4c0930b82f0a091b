//! `winback simulate`: months of a win-back campaign in seconds, with the real scheduler, sender
//! and webhook, on the embedded store (or `--aws`), over synthetic customers or an orders file.

pub mod behaviour;
pub mod population;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use shared::adapters::checkout::MemoryCheckout;
use shared::adapters::embedded::{MemoryBus, MemoryMailer, MemoryNotifier, MemoryStore};
use shared::campaign::Campaign;
use shared::domain::sequence::{cohort_campaign, Flow};
use shared::ports::{EventBus, Mailer, Store};
use shared::retry::RetryPolicy;
use shared::settings::Keys;

use crate::error::{CliError, CliResult};
use crate::import;
use crate::report::{Extra, FlowSection, Report};
use crate::snapshot::Snapshot;
use behaviour::Behaviour;
use world::{CopyingBus, CopyingMailer, Outbox, Tally, World};

/// The public URL the simulated emails link to (the webhook is called in-process).
pub const SIM_BASE_URL: &str = "https://winback.example/hooks";

/// Settings of one simulation.
#[derive(Debug, Clone)]
pub struct Options {
    pub customers: usize,
    pub days: u32,
    pub seed: u64,
    pub orders: Option<PathBuf>,
    pub campaign: String,
    pub behaviour: Option<PathBuf>,
    pub out: PathBuf,
    pub aws: bool,
    pub save_store: Option<PathBuf>,
    pub start: Option<DateTime<Utc>>,
    pub progress: bool,
    /// Overrides the campaign's `sending.best_hour` (`None`: the campaign's own setting).
    pub best_hour: Option<bool>,
    /// Overrides the campaign's `[targeting] mode` (`None`: the campaign's own).
    pub targeting: Option<Targeting>,
    /// The flows to run, as `CAMPAIGNS` lists them (empty: every flow the campaign defines).
    pub flows: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            customers: 10_000,
            days: 180,
            seed: 42,
            orders: None,
            campaign: "example".into(),
            behaviour: None,
            out: PathBuf::from("report"),
            aws: false,
            save_store: None,
            start: None,
            progress: true,
            best_hour: None,
            targeting: None,
            flows: String::new(),
        }
    }
}

/// Who decides whom to email and reward in a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targeting {
    /// The campaign's rules (`[targeting] mode = "rules"`).
    Rules,
    /// Each flow's learned uplift model (`mode = "uplift"`).
    Uplift,
    /// The uplift decision on each customer's true chances, which only the simulation knows.
    Oracle,
}

impl Targeting {
    pub fn as_str(self) -> &'static str {
        match self {
            Targeting::Rules => "rules",
            Targeting::Uplift => "uplift",
            Targeting::Oracle => "oracle",
        }
    }
}

/// What a simulation produced.
pub struct Outcome {
    pub report: Report,
    /// The whole program's figures: every flow's enrollments against the program holdout.
    pub program: shared::domain::figures::ProgramFigures,
    /// The at-risk flow's own figures (its counters are kept apart), when the campaign has one.
    pub at_risk: Option<Report>,
    /// The birthday and anniversary flow's figures (counted apart, like the at-risk flow's).
    pub celebration: Option<Report>,
    /// The re-engagement flow's figures (who never opened an email), counted apart too.
    pub re_engagement: Option<Report>,
    pub tally: Tally,
    pub customers: usize,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub elapsed_seconds: f64,
    pub report_path: PathBuf,
    pub notes: Vec<String>,
    /// Follow-ups the team was told about (detractors, bad experiences); each held the
    /// customer's emails for the campaign's `follow_up_pause_days`.
    pub follow_ups_notified: usize,
    /// Whether the run sent at each customer's usual hour (`sending.best_hour`).
    pub best_hour: bool,
    /// Who decided whom to email and reward (`[targeting] mode`, or the oracle).
    pub targeting: Targeting,
    /// `[targeting] margin` and `email_cost`, for the profit the simulation's ground truth gives.
    pub margin: f64,
    pub email_cost: f64,
    pub currency: String,
}

/// The handlers' ports, embedded or AWS.
struct Wiring {
    store: Arc<dyn Store>,
    memory: Option<Arc<MemoryStore>>,
    bus: Arc<dyn EventBus>,
    mailer: Arc<dyn Mailer>,
    outbox: Arc<dyn Outbox>,
    keys: Keys,
    base_url: String,
    sender_address: String,
}

/// The default first simulated day.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// Runs a simulation and writes its report.
pub async fn run(opts: &Options) -> CliResult<Outcome> {
    let began = Instant::now();
    let mut campaign = Campaign::open(&opts.campaign).map_err(|source| CliError::Campaign {
        name: opts.campaign.clone(),
        source: Box::new(source),
    })?;
    if let Some(on) = opts.best_hour {
        campaign = campaign.with_best_hour(on);
    }
    if let Some(t) = opts.targeting {
        campaign = campaign.with_targeting(match t {
            Targeting::Rules => shared::domain::targeting::Mode::Rules,
            Targeting::Uplift | Targeting::Oracle => shared::domain::targeting::Mode::Uplift,
        });
    }
    let campaign = campaign
        .with_flows(&opts.flows)
        .map_err(|source| CliError::Campaign {
            name: opts.campaign.clone(),
            source: Box::new(source),
        })?;
    let campaign = Arc::new(campaign);
    let config = campaign.config().clone();
    let model = match &opts.behaviour {
        Some(p) => Behaviour::load(p)?,
        None => Behaviour::default_model(),
    };
    let mut rng = SmallRng::seed_from_u64(opts.seed);

    let (people, history, start) = match &opts.orders {
        None => {
            let start = opts.start.unwrap_or_else(default_start);
            let (people, rows) = population::synthetic(
                opts.customers,
                &model,
                &config.currency,
                start,
                opts.days,
                &mut rng,
            );
            (people, rows, start)
        }
        Some(path) => {
            let parsed = crate::orders::read_orders(path)?;
            for bad in &parsed.bad {
                eprintln!("{}:{}: skipped: {}", path.display(), bad.line, bad.reason);
            }
            let last = parsed
                .rows
                .iter()
                .map(|r| r.ordered_at)
                .max()
                .ok_or_else(|| CliError::NothingImported {
                    path: path.clone(),
                    skipped: parsed.bad.len(),
                })?;
            let start = opts.start.unwrap_or_else(|| {
                let next = (last + Duration::days(1)).date_naive();
                Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0).expect("midnight"))
            });
            let people =
                population::from_orders(&parsed.rows, &model, &config.currency, start, &mut rng);
            (people, parsed.rows, start)
        }
    };

    let mut notes = Vec::new();
    let bus = Arc::new(MemoryBus::new());
    let memory_mailer = Arc::new(MemoryMailer::new());
    let wiring = if opts.aws {
        let aws = crate::aws::connect().await?;
        notes.extend(aws.notes.iter().cloned());
        notes.push(format!("store: DynamoDB table {}", aws.store.table()));
        let deps_bus: Arc<dyn EventBus> = match &aws.bus {
            Some(b) => {
                notes.push("events: EventBridge (and handed to the sender in-process, as the rule and queue would)".into());
                Arc::new(CopyingBus {
                    inner: b.clone(),
                    local: bus.clone(),
                })
            }
            None => bus.clone(),
        };
        let (mailer, outbox): (Arc<dyn Mailer>, Arc<dyn Outbox>) = match &aws.mailer {
            Some(m) => {
                notes.push("emails: SES v2".into());
                let c = Arc::new(CopyingMailer::new(m.clone()));
                (c.clone(), c)
            }
            None => (memory_mailer.clone(), memory_mailer.clone()),
        };
        let keys = Keys::from_env_vars().unwrap_or_else(|_| sim_keys());
        let base = shared::settings::optional("PUBLIC_BASE_URL")
            .unwrap_or_else(|| SIM_BASE_URL.to_string());
        let from = shared::settings::optional("SENDER_ADDRESS")
            .unwrap_or_else(|| "shop@winback.example".to_string());
        Wiring {
            store: aws.store,
            memory: None,
            bus: deps_bus,
            mailer,
            outbox,
            keys,
            base_url: base,
            sender_address: from,
        }
    } else {
        let m = Arc::new(MemoryStore::new());
        Wiring {
            store: m.clone(),
            memory: Some(m),
            bus: bus.clone(),
            mailer: memory_mailer.clone(),
            outbox: memory_mailer.clone(),
            keys: sim_keys(),
            base_url: SIM_BASE_URL.to_string(),
            sender_address: "shop@winback.example".to_string(),
        }
    };
    let Wiring {
        store,
        memory,
        bus: deps_bus,
        mailer,
        outbox,
        keys,
        base_url,
        sender_address,
    } = wiring;

    if let Some(m) = &memory {
        m.set_clock(start);
    }
    let profiles = import::merge_profiles(store.as_ref(), &history, &config.lapse, start).await?;
    let pb = import::bar(profiles.len() as u64, "loading customers");
    if !opts.progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    import::write_profiles(store.as_ref(), &profiles, &pb).await?;
    pb.finish_and_clear();
    import::rebuild(store.clone(), &config, start).await?;

    let metrics: Arc<dyn shared::emf::MetricSink> = Arc::new(shared::emf::NullMetrics);
    // Follow-ups are told to this in-memory notifier (the stack's SNS topic on AWS).
    let notifier = Arc::new(MemoryNotifier::new());
    let scheduler_deps = scheduler::Deps {
        store: store.clone(),
        bus: deps_bus.clone(),
        campaign: Arc::new(config.clone()),
        metrics: metrics.clone(),
        retry: RetryPolicy::default(),
    };
    let sender_deps = sender::Deps {
        store: store.clone(),
        mailer,
        campaign: campaign.clone(),
        metrics: metrics.clone(),
        link_keys: keys.link.clone(),
        public_base_url: base_url.clone(),
        sender_address,
        limiter: Arc::new(sender::RateLimiter::new(None)),
        lease: Duration::minutes(10),
        // A platform checkout is simulated by an in-memory shop: codes are created in it before
        // the emails that carry them, as the sender does with the real one.
        checkout: campaign
            .config()
            .checkout
            .as_ref()
            .filter(|c| c.platform != shared::domain::reward::CheckoutPlatform::Generic)
            .map(|_| Arc::new(MemoryCheckout::new()) as Arc<dyn shared::ports::Checkout>),
    };
    let webhook_deps = webhook::Deps {
        store: store.clone(),
        bus: deps_bus.clone(),
        campaign: campaign.clone(),
        keys,
        public_base_url: base_url,
        metrics,
        notifier: Some(notifier.clone()),
    };
    let customers = people.len();
    // With --aws and EventBridge, the copying bus keeps what it published in `bus` too.
    let mut world = World::new(
        scheduler_deps,
        sender_deps,
        webhook_deps,
        memory.clone(),
        bus,
        outbox,
        people,
        model.clone(),
        rng,
    );
    world.end = start + Duration::days(i64::from(opts.days));
    world.oracle = opts.targeting == Some(Targeting::Oracle);
    world.schedule_natural_returns(start);

    let every = i64::from(model.scheduler_every_hours);
    let ticks = (24 / every).max(1);
    let pb = import::bar(u64::from(opts.days), "simulating days");
    if !opts.progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for day in 0..i64::from(opts.days) {
        // The weekly rebuild, as the stack's RefitSchedule runs it: the customer model refits
        // and each flow's uplift model learns from the enrollments that are over.
        if day > 0 && day % 7 == 0 {
            world.rebuild(start + Duration::days(day)).await?;
        }
        for t in 0..ticks {
            let now = start + Duration::days(day) + Duration::hours(t * every);
            world.tick(now).await?;
        }
        pb.set_message(format!(
            "{} emails, {} opens",
            world.tally.emails, world.tally.opens
        ));
        pb.inc(1);
    }
    let end = start + Duration::days(i64::from(opts.days));
    world.run_until(end).await?;
    pb.finish_and_clear();

    let rows = store.counter_rows(&config.name).await?;
    let source = format!(
        "simulation: {} customers{}, {} days from {}, seed {}, {}",
        customers,
        opts.orders
            .as_ref()
            .map_or(String::new(), |p| format!(" from {}", p.display())),
        opts.days,
        start.format("%Y-%m-%d"),
        opts.seed,
        if opts.aws {
            "against AWS endpoints"
        } else {
            "embedded store"
        }
    );
    let as_of = end.date_naive();
    let report = Report::of_flow(&config, Flow::WinBack, &source, &rows, as_of);
    // Each other flow's figures, from its own counters (none when the campaign lacks the flow).
    let flow_report = |flow: Flow| {
        let name = cohort_campaign(&config.name, flow);
        let steps = config.steps_of(flow).len();
        let (store, source, config) = (store.clone(), source.clone(), config.clone());
        async move {
            if steps == 0 {
                return Ok::<_, CliError>(None);
            }
            let rows = store.counter_rows(&name).await?;
            Ok(Some(Report::of_flow(&config, flow, &source, &rows, as_of)))
        }
    };
    let at_risk = flow_report(Flow::AtRisk).await?;
    let celebration = flow_report(Flow::Celebration).await?;
    let re_engagement = flow_report(Flow::ReEngagement).await?;
    let at_risk_name = cohort_campaign(&config.name, Flow::AtRisk);
    let celebration_name = cohort_campaign(&config.name, Flow::Celebration);
    let re_engagement_name = cohort_campaign(&config.name, Flow::ReEngagement);
    if let Some(path) = &opts.save_store {
        match &memory {
            Some(m) => Snapshot::take(
                m,
                &[
                    config.name.clone(),
                    at_risk_name.clone(),
                    celebration_name.clone(),
                    re_engagement_name.clone(),
                ],
            )
            .await?
            .save(path)?,
            None => notes.push(format!(
                "--save-store {} skipped: with --aws the data is in DynamoDB already",
                path.display()
            )),
        }
    }
    let elapsed_seconds = began.elapsed().as_secs_f64();
    let targeting = match (opts.targeting, config.targeting.mode) {
        (Some(t), _) => t,
        (None, shared::domain::targeting::Mode::Rules) => Targeting::Rules,
        (None, shared::domain::targeting::Mode::Uplift) => Targeting::Uplift,
    };
    // The page shows what the text shows: the tally, the best hour, targeting and the responses.
    let tally = format!(
        "{}{}{}\n{}",
        tally_text(&world.tally, customers, elapsed_seconds),
        best_hour_text(&world.tally, config.sending.best_hour),
        targeting_text(&world.tally, targeting),
        responses_text(
            &world.tally,
            config.targeting.margin,
            config.targeting.email_cost,
            &config.currency
        )
    );
    let extra = Extra {
        title: "What the simulated customers did",
        text: &tally,
    };
    let flow_sections: Vec<FlowSection> = [
        (Flow::AtRisk, &at_risk),
        (Flow::Celebration, &celebration),
        (Flow::ReEngagement, &re_engagement),
    ]
    .into_iter()
    .filter_map(|(flow, r)| {
        r.as_ref().map(|report| FlowSection {
            title: format!(
                "Flow {} (counters of campaign {})",
                flow.as_str(),
                cohort_campaign(&config.name, flow)
            ),
            report,
        })
    })
    .collect();
    // The whole program: every flow's enrollments against the program holdout.
    let mut by_cohort = std::collections::BTreeMap::new();
    for flow in Flow::ALL {
        let name = cohort_campaign(&config.name, flow);
        let rows = if flow == Flow::WinBack {
            rows.clone()
        } else {
            store.counter_rows(&name).await?
        };
        by_cohort.insert(name, rows);
    }
    let program = ::report::program::program_figures(&config, as_of, |name| {
        by_cohort.get(name).cloned().unwrap_or_default()
    });
    let report_path =
        ::report::page::write(&report, Some(&program), &flow_sections, &[extra], &opts.out)
            .map_err(CliError::io("write", &opts.out))?;
    Ok(Outcome {
        report,
        program,
        at_risk,
        celebration,
        re_engagement,
        tally: world.tally,
        customers,
        start,
        end,
        elapsed_seconds,
        report_path,
        notes,
        follow_ups_notified: notifier.count(),
        best_hour: config.sending.best_hour,
        targeting,
        margin: config.targeting.margin,
        email_cost: config.targeting.email_cost,
        currency: config.currency.clone(),
    })
}

/// What targeting did: who decided, the treated enrollments of each flow by what they were
/// given, and the flows whose uplift model the weekly rebuilds learned.
pub fn targeting_text(t: &Tally, targeting: Targeting) -> String {
    let mut s = match targeting {
        Targeting::Oracle => "targeting (the oracle: the uplift decision on each customer's true chances): treated enrollments by what they were given\n".to_string(),
        _ => format!(
            "targeting ([targeting] mode = \"{}\"): treated enrollments by what they were given\n",
            targeting.as_str()
        ),
    };
    for (flow, by) in &t.targeting {
        let parts: Vec<String> = by.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s.push_str(&format!("  {flow}: {}\n", parts.join(", ")));
    }
    if t.targeting_learned.is_empty() {
        s.push_str("  no flow's uplift model was learned (too few finished enrollments held out and emailed)");
    } else {
        let learned: Vec<String> = t
            .targeting_learned
            .iter()
            .map(|(f, n)| format!("{f} ({n} times)"))
            .collect();
        s.push_str(&format!(
            "  uplift models learned by the weekly rebuild: {}",
            learned.join(", ")
        ));
    }
    s
}

/// The ground truth of targeting: what each response kind received and did, the rewards sure
/// things were given, and the incremental orders and profit per 1,000 emails (`margin` of the
/// orders emails brought less those they lost, less every reward used and every email's cost).
pub fn responses_text(t: &Tally, margin: f64, email_cost: f64, currency: &str) -> String {
    let mut s = String::from(
        "responses (each customer's true kind, which only the simulation knows): customers, emails, reward codes sent and used (their cost), orders the emails brought and lost, unsubscribed\n",
    );
    let mut total = world::KindFigures::default();
    for (kind, k) in &t.by_kind {
        s.push_str(&format!(
            "  {}: {} customers, {} emails, codes {} sent and {} used ({:.2} {currency}), orders brought {} and lost {}, unsubscribed {}\n",
            kind.as_str(),
            k.customers,
            k.emails,
            k.codes_sent,
            k.codes_used,
            k.reward_cost,
            k.orders_brought,
            k.orders_lost,
            k.unsubscribes
        ));
        total.emails += k.emails;
        total.codes_used += k.codes_used;
        total.reward_cost += k.reward_cost;
        total.orders_brought += k.orders_brought;
        total.orders_lost += k.orders_lost;
        total.value_brought += k.value_brought;
        total.value_lost += k.value_lost;
        total.unsubscribes += k.unsubscribes;
    }
    let sure = t
        .by_kind
        .get(&behaviour::Kind::SureThing)
        .copied()
        .unwrap_or_default();
    s.push_str(&format!(
        "  rewards given to sure things: {} codes used ({:.2} {currency}) of {} sent\n",
        sure.codes_used, sure.reward_cost, sure.codes_sent
    ));
    let f = ground_truth(&total, margin, email_cost);
    s.push_str(&format!(
        "  per 1,000 emails: {:.1} incremental orders, profit {:.2} {currency}, {:.1} unsubscribes (margin {:.0}% of the orders brought less those lost, less rewards used and {email_cost} {currency} per email; {} emails in all)",
        f.orders_per_1000,
        f.profit_per_1000,
        f.unsubscribes_per_1000,
        margin * 100.0,
        total.emails
    ));
    s
}

/// Incremental orders, profit and unsubscribes per 1,000 emails, from the simulation's ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundTruth {
    pub orders_per_1000: f64,
    pub profit_per_1000: f64,
    pub unsubscribes_per_1000: f64,
}

/// [`GroundTruth`] of the kinds' figures added up.
pub fn ground_truth(total: &world::KindFigures, margin: f64, email_cost: f64) -> GroundTruth {
    let per = 1000.0 / total.emails.max(1) as f64;
    let profit = margin * (total.value_brought - total.value_lost)
        - total.reward_cost
        - email_cost * total.emails as f64;
    GroundTruth {
        orders_per_1000: (total.orders_brought as f64 - total.orders_lost as f64) * per,
        profit_per_1000: profit * per,
        unsubscribes_per_1000: total.unsubscribes as f64 * per,
    }
}

/// Fixed keys for the embedded world (nothing leaves the process).
pub fn sim_keys() -> Keys {
    Keys {
        webhook: vec![b"simulation-webhook-key".to_vec()],
        link: shared::signing::LinkKeys::one(b"simulation-link-key"),
        staff: shared::signing::LinkKeys::one(b"staff-key"),
        platforms: Default::default(),
        signature_v1: true,
        pseudonym: shared::pseudonym::Pseudonyms::new(b"simulation-pseudonym-key"),
    }
}

/// The best-hour effect: emails that arrived within the recipient's habitual local hour against
/// those that arrived at another hour and those to customers without a habit, and emails by the
/// local hour they arrived at.
pub fn best_hour_text(t: &Tally, best_hour: bool) -> String {
    let line = |what: &str, f: &world::HourFigures| {
        format!(
            "  {what}: {} emails, opened {:.1}%, brought an order {:.1}%\n",
            f.emails,
            f.open_rate() * 100.0,
            f.order_rate() * 100.0
        )
    };
    let habitual = t.at_habit_hour.emails + t.off_habit_hour.emails;
    let mut s = format!(
        "best hour (campaign sending.best_hour = {}): {:.1}% of the emails to customers with a habitual hour arrived within it\n",
        if best_hour { "on" } else { "off" },
        t.at_habit_hour.emails as f64 * 100.0 / habitual.max(1) as f64
    );
    s.push_str(&line("within the habitual hour", &t.at_habit_hour));
    s.push_str(&line("at another hour", &t.off_habit_hour));
    s.push_str(&line("no habitual hour", &t.no_habit));
    let hours: Vec<String> = (0..24)
        .filter(|h| t.emails_by_local_hour[*h] > 0)
        .map(|h| {
            format!(
                "{h:02}h {} ({:.0}%)",
                t.emails_by_local_hour[h],
                t.opens_by_local_hour[h] as f64 * 100.0 / t.emails_by_local_hour[h] as f64
            )
        })
        .collect();
    s.push_str(&format!(
        "  emails by local hour (opened): {}\n",
        hours.join(", ")
    ));
    s
}

/// The simulation's own account of what recipients did.
pub fn tally_text(t: &Tally, customers: usize, elapsed: f64) -> String {
    let steps: Vec<String> = t
        .emails_per_step
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("step {s}: {n}"))
        .collect();
    let mut s = format!(
        "What the simulated customers did, in every flow together:\ncustomers {customers}\nemails received {} ({})\nopened {}, clicked {}\nsurvey answers {}, NPS answers {}\n\
         unsubscribed {}, asked for fewer emails {}, bounced {}, complained {}\n\
         orders: {} on their usual rhythm, {} returns after an email, {} returns by themselves; {} with a reward code\n\
         steps deferred (quiet hours, frequency cap) {}, skipped {}\nscheduler items read {}\nelapsed {elapsed:.1} s\n",
        t.emails,
        steps.join(", "),
        t.opens,
        t.clicks,
        t.survey_answers,
        t.nps_answers,
        t.unsubscribes,
        t.fewer_emails,
        t.bounces,
        t.complaints,
        t.natural_orders,
        t.returns_after_email,
        t.natural_returns,
        t.codes_used,
        t.steps_deferred,
        t.steps_skipped,
        t.scheduler_items_read,
    );
    if t.refused_requests > 0 {
        s.push_str(&format!(
            "requests the webhook refused: {} (e.g. {})\n",
            t.refused_requests,
            t.refused_examples.join("; ")
        ));
    }
    s
}
