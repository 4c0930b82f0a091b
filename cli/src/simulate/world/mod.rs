//! The simulated world: the real scheduler, sender and webhook handlers, driven day by day by a
//! simulated clock, and simulated recipients who react to the emails they actually receive.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::SmallRng;
use serde_json::{json, Value};
use shared::adapters::embedded::{MemoryBus, MemoryMailer, MemoryStore};
use shared::domain::edge::CustomerId;
use shared::domain::money::Money;
use shared::domain::reward::{RewardCode, RewardKind};
use shared::domain::survey::Reason;
use shared::events::BusEvent;
use shared::ports::{BusError, Email, EventBus, MailError, Mailer, PutResult, RewardStore};
use shared::signing::sign_webhook;

use super::behaviour::{Behaviour, Kind};
use super::population::{at_habit, days, local_hour, next_gap, Draw, Person};
use crate::error::{CliError, CliResult};

mod copying;
mod oracle;
mod reading;
mod recipient;

pub use self::copying::{CopyingBus, CopyingMailer, Outbox};
pub use self::reading::*;

/// Counts of what the simulated recipients did (the simulation's own ground truth, next to the
/// product's counters).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Tally {
    pub emails: u64,
    pub emails_per_step: [u64; 8],
    pub opens: u64,
    pub clicks: u64,
    pub survey_answers: u64,
    pub nps_answers: u64,
    pub unsubscribes: u64,
    pub fewer_emails: u64,
    pub bounces: u64,
    pub complaints: u64,
    pub natural_orders: u64,
    pub returns_after_email: u64,
    pub natural_returns: u64,
    pub codes_used: u64,
    pub steps_deferred: u64,
    pub steps_skipped: u64,
    /// Requests the webhook refused (4xx/5xx): should stay 0.
    pub refused_requests: u64,
    pub refused_examples: Vec<String>,
    pub scheduler_items_read: u64,
    /// Emails by whether they arrived within the recipient's habitual local hour (the best-hour
    /// effect): customers with a habit reached at it, reached at another hour, and customers
    /// without a habit.
    pub at_habit_hour: HourFigures,
    pub off_habit_hour: HourFigures,
    pub no_habit: HourFigures,
    /// Emails and opens by the local hour the email arrived at.
    pub emails_by_local_hour: [u64; 24],
    pub opens_by_local_hour: [u64; 24],
    /// Treated enrollments per flow by what targeting gave them.
    pub targeting: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// Flows whose uplift model a weekly rebuild learned, and how many times.
    pub targeting_learned: std::collections::BTreeMap<String, u64>,
    /// What each response kind did (the ground truth of uplift: who an email changed).
    pub by_kind: std::collections::BTreeMap<Kind, KindFigures>,
}

/// What the customers of one response kind received and did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct KindFigures {
    pub customers: u64,
    pub emails: u64,
    /// Emails that carried a reward code.
    pub codes_sent: u64,
    /// Reward codes used, and what they cost the shop (campaign currency, major units).
    pub codes_used: u64,
    pub reward_cost: f64,
    /// Returns after an email that they would not have made by themselves before the end of
    /// the run (brought), and natural returns an email cancelled (lost).
    pub orders_brought: u64,
    pub orders_lost: u64,
    /// Value of those orders (major units).
    pub value_brought: f64,
    pub value_lost: f64,
    pub unsubscribes: u64,
}

/// What emails of one kind of timing brought.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct HourFigures {
    pub emails: u64,
    pub opens: u64,
    /// Recipients who decided to come back with an order after opening it.
    pub orders: u64,
}

impl HourFigures {
    /// Share of the emails opened.
    pub fn open_rate(&self) -> f64 {
        self.opens as f64 / self.emails.max(1) as f64
    }

    /// Share of the emails that brought an order.
    pub fn order_rate(&self) -> f64 {
        self.orders as f64 / self.emails.max(1) as f64
    }
}

/// Which habit figures an email counts in.
#[derive(Debug, Clone, Copy)]
enum Timing {
    Within,
    Other,
    Without,
}

/// What a recipient does at a moment.
#[derive(Debug, Clone)]
enum Action {
    /// A rhythm order, if still buying and still the pending one.
    RhythmOrder(usize),
    /// Coming back after stopping (naturally or after an email), if still the pending one.
    Return {
        person: usize,
        code: Option<String>,
        after_email: bool,
    },
    /// An SES event of an email.
    Ses {
        person: usize,
        detail_type: &'static str,
        message_id: String,
        email: Box<Email>,
        link: Option<String>,
    },
    /// Following a survey or NPS link from an email: the page, then the answer its form posts.
    FollowLink { url: String },
    /// One-click unsubscribe (RFC 8058) through the email's List-Unsubscribe header.
    OneClickUnsubscribe { url: String },
    /// The fewer-emails link: open its page, then send the page's form with `choice=fewer`.
    FewerEmails { url: String },
    /// A scheduler run at a whole hour a deferred step waits for (the product runs the scheduler
    /// hourly; the simulation every `scheduler_every_hours`, plus these).
    SchedulerRun,
}

struct Scheduled {
    at: DateTime<Utc>,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The running world.
pub struct World {
    pub scheduler: scheduler::Deps,
    pub sender: sender::Deps,
    pub webhook: webhook::Deps,
    /// The embedded store, when the world runs on it (its clock is moved with the simulation).
    pub memory: Option<Arc<MemoryStore>>,
    pub bus: Arc<MemoryBus>,
    pub outbox: Arc<dyn Outbox>,
    pub people: Vec<Person>,
    pub index: HashMap<CustomerId, usize>,
    pub model: Behaviour,
    pub rng: SmallRng,
    pub tally: Tally,
    pub webhook_key: Vec<u8>,
    /// The last simulated moment: a natural return after it is one the run never sees.
    pub end: DateTime<Utc>,
    /// The oracle's known chances are given to the scheduler (`simulate --targeting oracle`).
    pub oracle: bool,
    oracle_day: Option<chrono::NaiveDate>,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    /// Hours an extra scheduler run is already queued for.
    runs: HashSet<DateTime<Utc>>,
}

impl World {
    /// A world over the given handlers and people.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scheduler: scheduler::Deps,
        sender: sender::Deps,
        webhook: webhook::Deps,
        memory: Option<Arc<MemoryStore>>,
        bus: Arc<MemoryBus>,
        outbox: Arc<dyn Outbox>,
        people: Vec<Person>,
        model: Behaviour,
        rng: SmallRng,
    ) -> World {
        let index = people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let webhook_key = webhook.keys.webhook.first().cloned().unwrap_or_default();
        let mut tally = Tally::default();
        for p in &people {
            tally.by_kind.entry(p.kind).or_default().customers += 1;
        }
        let mut w = World {
            scheduler,
            sender,
            webhook,
            memory,
            bus,
            outbox,
            people,
            index,
            model,
            rng,
            tally,
            webhook_key,
            end: DateTime::<Utc>::MAX_UTC,
            oracle: false,
            oracle_day: None,
            queue: BinaryHeap::new(),
            seq: 0,
            runs: HashSet::new(),
        };
        for i in 0..w.people.len() {
            if let Some(at) = w.people[i].next_order_at {
                w.push(at, Action::RhythmOrder(i));
            }
        }
        w
    }

    fn push(&mut self, at: DateTime<Utc>, action: Action) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            action,
        });
    }

    /// The rewards, as the webhook sees them.
    fn rewards(&self) -> &dyn RewardStore {
        self.webhook.store.as_ref()
    }

    fn set_clock(&self, now: DateTime<Utc>) {
        if let Some(m) = &self.memory {
            m.set_clock(now);
        }
    }

    /// Schedules the natural return of everyone who has already stopped at `start`.
    pub fn schedule_natural_returns(&mut self, start: DateTime<Utc>) {
        for i in 0..self.people.len() {
            if self.people[i].churned {
                self.schedule_natural_return(i, start);
            }
        }
    }

    fn schedule_natural_return(&mut self, i: usize, from: DateTime<Utc>) {
        let Some(mean) = self.natural_return_mean(i) else {
            return;
        };
        let at = from + days(self.rng.exp_mean(mean));
        let at = self.habit_time(i, at, from);
        self.people[i].return_at = Some(at);
        self.people[i].natural_return_at = Some(at);
        self.push(
            at,
            Action::Return {
                person: i,
                code: None,
                after_email: false,
            },
        );
    }

    /// Mean days until customer `i`, who has stopped, comes back by themselves (`None`: never):
    /// a sure thing soon, a lost cause or someone an email drove away never, others at the
    /// natural rate.
    pub fn natural_return_mean(&self, i: usize) -> Option<f64> {
        let p = &self.people[i];
        let rate = self.model.churn.natural_return_per_year;
        match p.kind {
            _ if p.driven_away => None,
            Kind::LostCause => None,
            Kind::SureThing => Some(self.model.response.sure_thing_return_days),
            Kind::Persuadable | Kind::DoNotDisturb => (rate > 0.0).then(|| 365.0 / rate),
        }
    }

    /// One scheduler run at `now`, then the sender for every published step, then the
    /// recipients' reactions to what was sent.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> CliResult<()> {
        self.run_until(now).await?;
        if self.oracle && self.oracle_day != Some(now.date_naive()) {
            self.oracle_day = Some(now.date_naive());
            self.give_oracle_chances(now);
        }
        self.scheduler_pass(now).await
    }

    /// When customer `i` does what they planned for `at`: at their habitual hour when they have
    /// one (`[habit]`), never before `not_before`.
    fn habit_time(
        &mut self,
        i: usize,
        at: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let t = at_habit(&self.people[i], at, &self.model.habit, &mut self.rng);
        if t > not_before {
            t
        } else if t + Duration::days(1) > not_before {
            t + Duration::days(1)
        } else {
            at
        }
    }

    /// Queues a scheduler run at the whole hour at or after `until`, as the product's hourly
    /// schedule would pick a deferred step up then.
    fn run_scheduler_at(&mut self, until: DateTime<Utc>) {
        let secs = until.timestamp();
        let hour = secs.div_euclid(3600) * 3600 + if secs % 3600 == 0 { 0 } else { 3600 };
        let Some(at) = DateTime::from_timestamp(hour, 0) else {
            return;
        };
        if self.runs.insert(at) {
            self.push(at, Action::SchedulerRun);
        }
    }

    /// The weekly rebuild at `now` (what the stack's `RefitSchedule` sends): due times again,
    /// the customer model refitted, each flow's uplift model learned. Steps due meanwhile are
    /// handed to the sender as after a scheduler run.
    pub async fn rebuild(&mut self, now: DateTime<Utc>) -> CliResult<()> {
        self.run_until(now).await?;
        let summary = self.run_scheduler(now, scheduler::Mode::Rebuild).await?;
        for flow in summary.targeting_learned {
            *self.tally.targeting_learned.entry(flow).or_default() += 1;
        }
        Ok(())
    }

    /// One scheduler invocation at `now` in `mode`, with the simulated clock moved there and the
    /// items it read counted.
    async fn run_scheduler(
        &mut self,
        now: DateTime<Utc>,
        mode: scheduler::Mode,
    ) -> CliResult<scheduler::Summary> {
        self.set_clock(now);
        let summary = scheduler::run(
            &self.scheduler,
            scheduler::Input { now, mode },
            scheduler::Budget::unlimited(),
        )
        .await
        .map_err(|e| CliError::Scheduler(e.to_string()))?;
        self.tally.scheduler_items_read += summary.items_read;
        Ok(summary)
    }

    /// The scheduler at `now`, the sender for what it published, and the recipients.
    async fn scheduler_pass(&mut self, now: DateTime<Utc>) -> CliResult<()> {
        self.runs.remove(&now);
        let summary = self.run_scheduler(now, scheduler::Mode::Due).await?;
        for (flow, f) in &summary.flows {
            let into = self
                .tally
                .targeting
                .entry(flow.as_str().to_string())
                .or_default();
            for (k, n) in &f.targeting {
                *into.entry(k.clone()).or_default() += n;
            }
        }
        for event in self.bus.drain() {
            if let BusEvent::WinbackStepDue(due) = event {
                match sender::process_step(&self.sender, &due, now).await {
                    Ok(sender::Outcome::Deferred { until }) => {
                        self.tally.steps_deferred += 1;
                        self.run_scheduler_at(until);
                    }
                    Ok(sender::Outcome::Skipped { .. }) => self.tally.steps_skipped += 1,
                    Ok(_) => {}
                    Err(e) => {
                        return Err(CliError::Simulation(format!(
                            "the sender failed on step {} of customer {}: {e}",
                            due.step, due.customer_id
                        )))
                    }
                }
            }
        }
        for (message_id, email) in self.outbox.take() {
            self.receive(now, message_id, email).await?;
        }
        Ok(())
    }

    /// Performs every scheduled action up to (not including) `until`, in time order.
    pub async fn run_until(&mut self, until: DateTime<Utc>) -> CliResult<()> {
        while self.queue.peek().is_some_and(|s| s.at < until) {
            let Some(s) = self.queue.pop() else { break };
            self.set_clock(s.at);
            self.perform(s.at, s.action).await?;
        }
        Ok(())
    }

    async fn perform(&mut self, at: DateTime<Utc>, action: Action) -> CliResult<()> {
        match action {
            Action::RhythmOrder(i) => {
                if self.people[i].next_order_at != Some(at) || self.people[i].churned {
                    return Ok(());
                }
                if self.people[i].churn_at.is_some_and(|c| at >= c) {
                    self.people[i].churned = true;
                    self.people[i].next_order_at = None;
                    self.schedule_natural_return(i, at);
                    return Ok(());
                }
                let code = self.code_to_use(i, at);
                self.order(i, at, code).await?;
                self.tally.natural_orders += 1;
                self.schedule_next_rhythm_order(i, at);
            }
            Action::Return {
                person: i,
                code,
                after_email,
            } => {
                if !self.people[i].churned || self.people[i].return_at != Some(at) {
                    return Ok(());
                }
                self.people[i].churned = false;
                self.people[i].return_at = None;
                let natural = self.people[i].natural_return_at.take();
                // Who comes back by themselves uses a reward code they still hold.
                let code = if after_email {
                    code
                } else {
                    self.code_to_use(i, at)
                };
                let value = self.order(i, at, code).await?;
                if after_email {
                    self.tally.returns_after_email += 1;
                    // Brought by the email unless they would have come back before the end.
                    if natural.is_none_or(|n| n >= self.end) {
                        let k = self.tally.by_kind.entry(self.people[i].kind).or_default();
                        k.orders_brought += 1;
                        k.value_brought += value;
                    }
                } else {
                    self.tally.natural_returns += 1;
                }
                if self.rng.chance(self.model.churn.lapse_again_after_return) {
                    self.people[i].churn_at = Some(at + Duration::seconds(1));
                } else if self.people[i].churn_at.is_some_and(|c| c <= at) {
                    self.people[i].churn_at = None;
                }
                self.schedule_next_rhythm_order(i, at);
                if self.people[i].next_order_at.is_none() && self.people[i].churn_at.is_some() {
                    self.people[i].churned = true;
                    self.schedule_natural_return(i, at);
                }
            }
            Action::Ses {
                person,
                detail_type,
                message_id,
                email,
                link,
            } => {
                let event = ses_event(
                    self.seq,
                    detail_type,
                    &message_id,
                    &email,
                    link.as_deref(),
                    at,
                );
                self.seq += 1;
                webhook::handle_ses_event(&self.webhook, &event, at)
                    .await
                    .map_err(|e| {
                        CliError::Simulation(format!(
                            "the webhook failed on an SES event of customer {}: {e}",
                            self.people[person].id
                        ))
                    })?;
            }
            Action::FollowLink { url } => {
                // The browser opens the answer page, whose script sends its form at once.
                let page = self.http("GET", &url, Vec::new(), Vec::new(), at).await?;
                match form_action(&page.body, "answer", &url) {
                    Some(action) => self.post_form(&action, "choice=answer", at).await?,
                    None => self.refused(format!(
                        "the survey page has no form to send: {}",
                        page.status
                    )),
                }
            }
            Action::OneClickUnsubscribe { url } => {
                self.post_form(&url, "List-Unsubscribe=One-Click", at)
                    .await?;
            }
            Action::SchedulerRun => self.scheduler_pass(at).await?,
            Action::FewerEmails { url } => {
                let page = self.http("GET", &url, Vec::new(), Vec::new(), at).await?;
                if let Some(action) = form_action(&page.body, "fewer", &url) {
                    self.post_form(&action, "choice=fewer", at).await?;
                } else {
                    self.refused(format!(
                        "the fewer-emails page has no form to send: {}",
                        page.status
                    ));
                }
            }
        }
        Ok(())
    }

    /// Posts a form body (`application/x-www-form-urlencoded`) to `url`, as a browser would.
    async fn post_form(&mut self, url: &str, body: &str, at: DateTime<Utc>) -> CliResult<()> {
        self.http(
            "POST",
            url,
            vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body.as_bytes().to_vec(),
            at,
        )
        .await?;
        Ok(())
    }

    fn schedule_next_rhythm_order(&mut self, i: usize, at: DateTime<Utc>) {
        let p = &self.people[i];
        if p.gap_days <= 0.0 {
            self.people[i].next_order_at = None;
            if self.people[i].churn_at.is_none() {
                // No rhythm of their own: a returned one-off buyer goes quiet again.
                self.people[i].churn_at = Some(at + Duration::seconds(1));
            }
            return;
        }
        let (gap, jitter) = (p.gap_days, p.gap_jitter);
        let next = at + days(next_gap(gap, jitter, &mut self.rng));
        let next = self.habit_time(i, next, at);
        self.people[i].next_order_at = Some(next);
        self.push(next, Action::RhythmOrder(i));
    }

    fn code_to_use(&mut self, i: usize, at: DateTime<Utc>) -> Option<String> {
        let (code, until) = self.people[i].code.clone()?;
        if at < until && self.rng.chance(self.model.email.use_code) {
            self.people[i].code = None;
            Some(code)
        } else {
            None
        }
    }

    /// The shop reports an order: a signed `POST /v1/activity`. Returns its value (major units).
    async fn order(&mut self, i: usize, at: DateTime<Utc>, code: Option<String>) -> CliResult<f64> {
        let amount = Money(
            ((self.people[i].amount.0 as f64) * (0.85 + 0.3 * self.rng.unit())).round() as i64,
        );
        let value = amount.0 as f64 / 100.0;
        if let Some(c) = &code {
            let spec = match RewardCode::parse(c) {
                Ok(rc) => self.rewards().get_reward(&rc).await?.map(|r| r.spec),
                Err(_) => None,
            };
            let k = self.tally.by_kind.entry(self.people[i].kind).or_default();
            k.codes_used += 1;
            k.reward_cost += spec.map_or(0.0, |s| {
                shared::domain::reward::expected_cost(&s, value).min(value)
            });
        }
        let p = &self.people[i];
        self.seq += 1;
        let mut body = json!({
            "event_id": format!("sim-order-{}", self.seq),
            "customer_id": p.id,
            "type": "order",
            "occurred_at": at.to_rfc3339(),
            "amount": {"value": amount.to_string(), "currency": p.currency},
            "product": p.product,
            "category": p.category,
        });
        if let Some(c) = &code {
            body["reward_code"] = json!(c);
            self.tally.codes_used += 1;
        }
        if let Some(b) = p.birthday {
            body["profile"] = json!({"birthday": b.to_string()});
        }
        let raw = serde_json::to_vec(&body).expect("json");
        let signature = sign_webhook(&self.webhook_key, at.timestamp(), &raw);
        let resp = webhook::handle_http(
            &self.webhook,
            webhook::HttpRequest {
                method: "POST".into(),
                path: "/v1/activity".into(),
                query: String::new(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("winback-signature".into(), signature),
                ],
                body: raw,
            },
            at,
        )
        .await;
        if resp.status >= 400 {
            self.refused(format!(
                "POST /v1/activity answered {}: {}",
                resp.status, resp.body
            ));
        }
        Ok(value)
    }

    async fn http(
        &mut self,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        at: DateTime<Utc>,
    ) -> CliResult<webhook::HttpResponse> {
        let parsed = url::Url::parse(url).map_err(|e| {
            CliError::Simulation(format!(
                "an email holds a link that is not a URL ({e}): {url}"
            ))
        })?;
        let resp = webhook::handle_http(
            &self.webhook,
            webhook::HttpRequest {
                method: method.into(),
                path: parsed.path().to_string(),
                query: parsed.query().unwrap_or_default().to_string(),
                headers,
                body,
            },
            at,
        )
        .await;
        if resp.status >= 400 {
            self.refused(format!(
                "{method} {} answered {}",
                parsed.path(),
                resp.status
            ));
        }
        Ok(resp)
    }

    fn refused(&mut self, what: String) {
        self.tally.refused_requests += 1;
        if self.tally.refused_examples.len() < 5 {
            self.tally.refused_examples.push(what);
        }
    }

    fn figures(&mut self, timing: Timing) -> &mut HourFigures {
        match timing {
            Timing::Within => &mut self.tally.at_habit_hour,
            Timing::Other => &mut self.tally.off_habit_hour,
            Timing::Without => &mut self.tally.no_habit,
        }
    }
}
