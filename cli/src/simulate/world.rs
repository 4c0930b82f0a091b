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
use shared::domain::money::Money;
use shared::domain::reward::{RewardCode, RewardKind};
use shared::domain::survey::Reason;
use shared::events::BusEvent;
use shared::ports::{BusError, Email, EventBus, MailError, Mailer, PutResult, Store};
use shared::signing::sign_webhook;

use super::behaviour::Behaviour;
use super::population::{at_habit, days, local_hour, next_gap, Draw, Person};
use crate::error::{CliError, CliResult};

/// Where the emails the sender sent can be read back from.
pub trait Outbox: Send + Sync {
    /// Takes every email sent since the last call, with its message id.
    fn take(&self) -> Vec<(String, Email)>;
}

impl Outbox for MemoryMailer {
    fn take(&self) -> Vec<(String, Email)> {
        self.drain()
    }
}

/// Sends through another mailer (SES) and keeps a copy of what was sent, so the simulated
/// recipients can read it.
pub struct CopyingMailer {
    pub inner: Arc<dyn Mailer>,
    sent: Mutex<Vec<(String, Email)>>,
}

impl CopyingMailer {
    pub fn new(inner: Arc<dyn Mailer>) -> CopyingMailer {
        CopyingMailer {
            inner,
            sent: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Mailer for CopyingMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let id = self.inner.send(email).await?;
        self.sent
            .lock()
            .expect("lock")
            .push((id.clone(), email.clone()));
        Ok(id)
    }
}

impl Outbox for CopyingMailer {
    fn take(&self) -> Vec<(String, Email)> {
        std::mem::take(&mut *self.sent.lock().expect("lock"))
    }
}

/// Publishes to another bus (EventBridge) and keeps what was accepted, so the simulation can
/// hand `WinbackStepDue` to the sender the way the bus rule and queue would.
pub struct CopyingBus {
    pub inner: Arc<dyn EventBus>,
    pub local: Arc<MemoryBus>,
}

#[async_trait]
impl EventBus for CopyingBus {
    async fn put_batch(&self, events: &[shared::events::BusEvent]) -> Result<PutResult, BusError> {
        let result = self.inner.put_batch(events).await?;
        let accepted: Vec<_> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| !result.failed.iter().any(|(f, _)| f == i))
            .map(|(_, e)| e.clone())
            .collect();
        self.local.put_batch(&accepted).await.ok();
        Ok(result)
    }
}

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
    pub index: HashMap<String, usize>,
    pub model: Behaviour,
    pub rng: SmallRng,
    pub tally: Tally,
    pub webhook_key: Vec<u8>,
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
            tally: Tally::default(),
            webhook_key,
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

    fn store(&self) -> &Arc<dyn Store> {
        &self.scheduler.store
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
        let rate = self.model.churn.natural_return_per_year;
        if rate <= 0.0 {
            return;
        }
        let at = from + days(self.rng.exp_mean(365.0 / rate));
        let at = self.habit_time(i, at, from);
        self.people[i].return_at = Some(at);
        self.push(
            at,
            Action::Return {
                person: i,
                code: None,
                after_email: false,
            },
        );
    }

    /// One scheduler run at `now`, then the sender for every published step, then the
    /// recipients' reactions to what was sent.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> CliResult<()> {
        self.run_until(now).await?;
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

    /// The scheduler at `now`, the sender for what it published, and the recipients.
    async fn scheduler_pass(&mut self, now: DateTime<Utc>) -> CliResult<()> {
        self.runs.remove(&now);
        self.set_clock(now);
        let summary = scheduler::run(
            &self.scheduler,
            scheduler::Input {
                now,
                mode: scheduler::Mode::Due,
            },
            scheduler::Budget::unlimited(),
        )
        .await
        .map_err(|e| CliError::Scheduler(e.to_string()))?;
        self.tally.scheduler_items_read += summary.items_read;
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
                self.order(i, at, code).await?;
                if after_email {
                    self.tally.returns_after_email += 1;
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

    /// The shop reports an order: a signed `POST /v1/activity`.
    async fn order(&mut self, i: usize, at: DateTime<Utc>, code: Option<String>) -> CliResult<()> {
        let p = &self.people[i];
        let amount = Money(((p.amount.0 as f64) * (0.85 + 0.3 * self.rng.unit())).round() as i64);
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
        Ok(())
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

    /// A recipient receives an email at `now` and decides what to do with it.
    async fn receive(
        &mut self,
        now: DateTime<Utc>,
        message_id: String,
        email: Email,
    ) -> CliResult<()> {
        let Some(cid) = tag(&email, "customer_id") else {
            return Err(CliError::Simulation(
                "an email carries no customer_id tag".into(),
            ));
        };
        let Some(&i) = self.index.get(cid) else {
            return Err(CliError::Simulation(format!(
                "an email went to unknown customer {cid}"
            )));
        };
        self.tally.emails += 1;
        if let Some(step) = tag(&email, "step").and_then(|s| s.parse::<usize>().ok()) {
            if let Some(slot) = self.tally.emails_per_step.get_mut(step) {
                *slot += 1;
            }
        }
        let e = self.model.email.clone();
        let soon = |rng: &mut SmallRng, hours: f64| {
            now + Duration::seconds((rng.unit() * hours * 3600.0) as i64 + 1)
        };
        let ses = |detail_type: &'static str, link: Option<String>| Action::Ses {
            person: i,
            detail_type,
            message_id: message_id.clone(),
            email: Box::new(email.clone()),
            link,
        };
        if self.rng.chance(e.bounce) {
            self.tally.bounces += 1;
            self.people[i].unreachable = true;
            let at = soon(&mut self.rng, 0.1);
            self.push(at, ses("Email Bounced", None));
            return Ok(());
        }
        let at = soon(&mut self.rng, 0.05);
        self.push(at, ses("Email Delivered", None));
        if self.rng.chance(e.complaint) {
            self.tally.complaints += 1;
            self.people[i].unreachable = true;
            let at = soon(&mut self.rng, 24.0);
            self.push(at, ses("Email Complaint Received", None));
            return Ok(());
        }
        let person = self.people[i].clone();
        let reason_model = self.model.reasons[&person.reason].clone();
        let unsubscribe_chance = if person.churned {
            reason_model.unsubscribe
        } else {
            reason_model.unsubscribe / 2.0
        };
        if self.rng.chance(unsubscribe_chance) {
            if let Some(url) = list_unsubscribe(&email) {
                self.tally.unsubscribes += 1;
                self.people[i].unreachable = true;
                let at = soon(&mut self.rng, 48.0);
                self.push(at, Action::OneClickUnsubscribe { url });
                return Ok(());
            }
        }
        let code = find_code(&email.text);
        let kind = match &code {
            Some(c) => self.reward_kind(c).await?,
            None => None,
        };
        if let Some(c) = &code {
            let valid_for = Duration::days(14);
            self.people[i].code = Some((c.clone(), now + valid_for));
        }
        let hour = local_hour(&person, now);
        self.tally.emails_by_local_hour[hour as usize] += 1;
        let (timing, habit_factor) = match person.habit_hour {
            Some(h) if h == hour => (Timing::Within, self.model.habit.open_at_hour),
            Some(_) => (Timing::Other, self.model.habit.open_off_hour),
            None => (Timing::Without, 1.0),
        };
        self.figures(timing).emails += 1;
        let open = if person.churned {
            e.open
        } else {
            e.open_if_active
        } * habit_factor;
        if !self.rng.chance(open.clamp(0.0, 1.0)) {
            let reminded = e.return_without_open * reason_model.return_factor;
            if person.churned && self.rng.chance(reminded.clamp(0.0, 1.0)) {
                let at = now + days(self.rng.exp_mean(e.order_within_days_mean));
                self.schedule_return(i, at, None);
            }
            return Ok(());
        }
        self.tally.opens += 1;
        self.tally.opens_by_local_hour[hour as usize] += 1;
        self.figures(timing).opens += 1;
        // Who reads at their habitual hour reads at once; others within `open_within_hours`.
        let opened_at = match timing {
            Timing::Within => soon(&mut self.rng, 0.5),
            _ => soon(&mut self.rng, e.open_within_hours),
        };
        self.push(opened_at, ses("Email Opened", None));
        let links = links_in(&email.text, &self.webhook.public_base_url);
        if self.rng.chance(e.click_given_open) {
            self.tally.clicks += 1;
            let shop = first_shop_link(&email.text, &self.webhook.public_base_url);
            self.push(
                opened_at + Duration::seconds(40),
                ses("Email Clicked", shop),
            );
        }
        let survey: Vec<&(String, Answer)> = links
            .iter()
            .filter(|(_, a)| matches!(a, Answer::Reason(_)))
            .collect();
        if !survey.is_empty() && self.rng.chance(e.survey_given_open) {
            let answer = if self.rng.chance(e.survey_truthful) {
                person.reason
            } else {
                Reason::ALL
                    [(self.rng.unit() * Reason::ALL.len() as f64) as usize % Reason::ALL.len()]
            };
            if let Some((url, _)) = survey.iter().find(|(_, a)| *a == Answer::Reason(answer)) {
                self.tally.survey_answers += 1;
                self.push(
                    opened_at + Duration::seconds(90),
                    Action::FollowLink { url: url.clone() },
                );
            }
        }
        let nps: Vec<&(String, Answer)> = links
            .iter()
            .filter(|(_, a)| matches!(a, Answer::Nps(_)))
            .collect();
        if !nps.is_empty() && self.rng.chance(e.nps_given_open) {
            let jitter = (self.rng.unit() * 3.0) as i16 - 1;
            let score = (i16::from(reason_model.nps) + jitter).clamp(0, 10) as u8;
            if let Some((url, _)) = nps.iter().find(|(_, a)| *a == Answer::Nps(score)) {
                self.tally.nps_answers += 1;
                self.push(
                    opened_at + Duration::seconds(120),
                    Action::FollowLink { url: url.clone() },
                );
            }
        }
        if self.rng.chance(e.fewer_emails_given_open) {
            if let Some((url, _)) = links.iter().find(|(_, a)| *a == Answer::FewerEmails) {
                self.tally.fewer_emails += 1;
                self.push(
                    opened_at + Duration::seconds(150),
                    Action::FewerEmails { url: url.clone() },
                );
            }
        }
        if person.churned {
            let chance = self.model.return_chance(person.reason, kind);
            if self.rng.chance(chance) {
                self.figures(timing).orders += 1;
                let at = opened_at + days(self.rng.exp_mean(e.order_within_days_mean));
                let at = self.habit_time(i, at, opened_at);
                let use_code = code.filter(|_| self.rng.chance(e.use_code));
                self.schedule_return(i, at, use_code);
            }
        } else if let Some(next) = person.next_order_at {
            if next > opened_at {
                let sooner = opened_at
                    + (next - opened_at)
                        * ((1.0 - self.model.churn.active_customer_speed_up) * 1000.0) as i32
                        / 1000;
                self.people[i].next_order_at = Some(sooner);
                self.push(sooner, Action::RhythmOrder(i));
            }
        }
        Ok(())
    }

    fn figures(&mut self, timing: Timing) -> &mut HourFigures {
        match timing {
            Timing::Within => &mut self.tally.at_habit_hour,
            Timing::Other => &mut self.tally.off_habit_hour,
            Timing::Without => &mut self.tally.no_habit,
        }
    }

    /// Schedules a return after an email, unless an earlier one is already pending.
    fn schedule_return(&mut self, i: usize, at: DateTime<Utc>, code: Option<String>) {
        if self.people[i].return_at.is_some_and(|r| r <= at) {
            return;
        }
        self.people[i].return_at = Some(at);
        if code.is_some() {
            self.people[i].code = None;
        }
        self.push(
            at,
            Action::Return {
                person: i,
                code,
                after_email: true,
            },
        );
    }

    async fn reward_kind(&self, code: &str) -> CliResult<Option<RewardKind>> {
        let Ok(code) = RewardCode::parse(code) else {
            return Ok(None);
        };
        Ok(self.store().get_reward(&code).await?.map(|r| r.spec.kind))
    }
}

/// What a link in an email does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Reason(Reason),
    Nps(u8),
    FewerEmails,
    Unsubscribe,
}

/// The first value of an SES message tag.
pub fn tag<'a>(email: &'a Email, name: &str) -> Option<&'a str> {
    email
        .tags
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The URL of the `List-Unsubscribe` header (`<https://...>`).
pub fn list_unsubscribe(email: &Email) -> Option<String> {
    let (_, v) = email
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("List-Unsubscribe"))?;
    v.split(',')
        .map(|p| p.trim().trim_start_matches('<').trim_end_matches('>'))
        .find(|u| u.starts_with("http"))
        .map(str::to_string)
}

/// Every URL in a text.
pub fn urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let tail = &rest[at..];
        if !(tail.starts_with("http://") || tail.starts_with("https://")) {
            rest = &tail[4..];
            continue;
        }
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']'))
            .unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches(['.', ',', ';']);
        out.push(url.replace("&amp;", "&"));
        rest = &tail[end..];
    }
    out
}

/// The links of an email that point at the webhook, with what each does.
pub fn links_in(text: &str, base: &str) -> Vec<(String, Answer)> {
    let base = base.trim_end_matches('/');
    urls(text)
        .into_iter()
        .filter(|u| u.starts_with(base))
        .filter_map(|u| {
            let parsed = url::Url::parse(&u).ok()?;
            let q = |name: &str| {
                parsed
                    .query_pairs()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            let answer = if parsed.path().ends_with("/v1/survey") {
                let a = q("a")?;
                match a.parse::<u8>() {
                    Ok(score) => Answer::Nps(score),
                    Err(_) => Answer::Reason(a.parse().ok()?),
                }
            } else if parsed.path().ends_with("/v1/unsubscribe")
                || parsed.path().ends_with("/v1/preferences")
            {
                if q("offer").as_deref() == Some("fewer")
                    || parsed.path().ends_with("/v1/preferences")
                {
                    Answer::FewerEmails
                } else {
                    Answer::Unsubscribe
                }
            } else {
                return None;
            };
            Some((u, answer))
        })
        .collect()
}

/// The first link to the shop (not to the webhook).
pub fn first_shop_link(text: &str, base: &str) -> Option<String> {
    let base = base.trim_end_matches('/');
    urls(text).into_iter().find(|u| !u.starts_with(base))
}

/// The reward code in an email's text (`WB-XXXX-XXXX-XXXX`).
pub fn find_code(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find("WB-") {
        let candidate: String = rest[at..].chars().take(17).collect();
        if let Ok(code) = RewardCode::parse(&candidate) {
            return Some(code.as_str().to_string());
        }
        rest = &rest[at + 3..];
    }
    None
}

/// Undoes the HTML escaping templates apply to attribute values.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `action` of the page's form that sends `choice`, as an absolute URL.
pub fn form_action(html: &str, choice: &str, page_url: &str) -> Option<String> {
    let wanted = format!("value=\"{choice}\"");
    let body = html
        .split("<form")
        .skip(1)
        .map(|f| f.split("</form>").next().unwrap_or(f))
        .find(|f| f.contains(&wanted))?;
    let tag = &body[..body.find('>')?];
    let a = tag.find("action=\"")? + "action=\"".len();
    let action = unescape(tag[a..].split('"').next()?);
    if action.starts_with("http") {
        return Some(action);
    }
    if action.is_empty() {
        return Some(page_url.to_string());
    }
    url::Url::parse(page_url)
        .ok()?
        .join(&action)
        .ok()
        .map(String::from)
}

/// An SES event as EventBridge delivers it.
pub fn ses_event(
    seq: u64,
    detail_type: &str,
    message_id: &str,
    email: &Email,
    link: Option<&str>,
    at: DateTime<Utc>,
) -> Value {
    let mut tags = serde_json::Map::new();
    for (k, v) in &email.tags {
        tags.insert(k.clone(), json!([v]));
    }
    let ts = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mail = json!({
        "timestamp": ts,
        "source": email.from,
        "sendingAccountId": "000000000000",
        "messageId": message_id,
        "destination": [email.to],
        "headersTruncated": false,
        "tags": tags,
        "commonHeaders": {"from": [email.from], "to": [email.to], "messageId": message_id, "subject": email.subject},
    });
    let (event_type, key, body) = match detail_type {
        "Email Opened" => (
            "Open",
            "open",
            json!({"timestamp": ts, "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"}),
        ),
        "Email Clicked" => (
            "Click",
            "click",
            json!({"timestamp": ts, "link": link.unwrap_or_default(), "linkTags": {}, "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"}),
        ),
        "Email Bounced" => (
            "Bounce",
            "bounce",
            json!({"bounceType": "Permanent", "bounceSubType": "General", "timestamp": ts, "feedbackId": format!("sim-{seq}"), "bouncedRecipients": [{"emailAddress": email.to, "action": "failed", "status": "5.1.1"}]}),
        ),
        "Email Complaint Received" => (
            "Complaint",
            "complaint",
            json!({"timestamp": ts, "feedbackId": format!("sim-{seq}"), "complaintFeedbackType": "abuse", "complainedRecipients": [{"emailAddress": email.to}]}),
        ),
        _ => (
            "Delivery",
            "delivery",
            json!({"timestamp": ts, "processingTimeMillis": 420, "recipients": [email.to], "smtpResponse": "250 2.6.0 Message received"}),
        ),
    };
    json!({
        "version": "0",
        "id": format!("sim-ses-{seq:012}"),
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "000000000000",
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "eu-west-1",
        "resources": [],
        "detail": {"eventType": event_type, "mail": mail, key: body},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://hooks.example.com";

    #[test]
    fn links_in_an_email_are_read_with_what_they_do() {
        let text = format!(
            "Why did you go?\n- Too expensive: {BASE}/v1/survey?t=abc.def&a=too_expensive\n\
             Score 7: {BASE}/v1/survey?t=abc.def&a=7\nFewer: {BASE}/v1/unsubscribe?t=x.y&offer=fewer\n\
             Stop: {BASE}/v1/unsubscribe?t=x.y.\nShop: https://shop.example.com/?utm=1"
        );
        let links = links_in(&text, BASE);
        assert_eq!(links.len(), 4);
        assert_eq!(links[0].1, Answer::Reason(Reason::TooExpensive));
        assert_eq!(links[1].1, Answer::Nps(7));
        assert_eq!(links[2].1, Answer::FewerEmails);
        assert_eq!(
            links[3],
            (format!("{BASE}/v1/unsubscribe?t=x.y"), Answer::Unsubscribe)
        );
        assert_eq!(
            first_shop_link(&text, BASE).as_deref(),
            Some("https://shop.example.com/?utm=1")
        );
    }

    #[test]
    fn html_escaped_links_are_unescaped() {
        let html = format!("<a href=\"{BASE}/v1/survey?t=a.b&amp;a=forgot\">x</a>");
        assert_eq!(links_in(&html, BASE)[0].1, Answer::Reason(Reason::Forgot));
    }

    #[test]
    fn the_reward_code_is_found_in_the_text() {
        assert_eq!(
            find_code("Use WB-7K3M-Q9XD-2HFP before Friday").as_deref(),
            Some("WB-7K3M-Q9XD-2HFP")
        );
        assert_eq!(find_code("WB- nothing here"), None);
    }

    #[test]
    fn the_form_of_the_wanted_choice_is_found_and_its_action_unescaped() {
        let page = "<form method=\"post\" action=\"https:&#x2f;&#x2f;hooks.example.com&#x2f;v1&#x2f;preferences?t=a&amp;b=c\">\
                    <input type=\"hidden\" name=\"choice\" value=\"unsubscribe\"></form>\
                    <form method=\"post\" action=\"preferences?t=f\"><input type=\"hidden\" name=\"choice\" value=\"fewer\"></form>";
        let here = "https://hooks.example.com/v1/unsubscribe?t=a";
        assert_eq!(
            form_action(page, "unsubscribe", here).as_deref(),
            Some("https://hooks.example.com/v1/preferences?t=a&b=c")
        );
        assert_eq!(
            form_action(page, "fewer", here).as_deref(),
            Some("https://hooks.example.com/v1/preferences?t=f")
        );
        assert_eq!(form_action(page, "more", here), None);
        assert_eq!(unescape("a &amp; b &#39;c&#39; &bogus"), "a & b 'c' &bogus");
    }

    #[test]
    fn ses_events_look_like_what_eventbridge_delivers() {
        let email = Email {
            to: "a@customers.example".into(),
            from: "shop@example.com".into(),
            subject: "s".into(),
            html: String::new(),
            text: String::new(),
            headers: vec![(
                "List-Unsubscribe".into(),
                format!("<{BASE}/v1/unsubscribe?t=z>"),
            )],
            tags: vec![
                ("customer_id".into(), "c1".into()),
                ("step".into(), "2".into()),
            ],
        };
        let at = DateTime::parse_from_rfc3339("2026-01-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let v = ses_event(3, "Email Opened", "m-1", &email, None, at);
        assert_eq!(v["detail-type"], "Email Opened");
        assert_eq!(v["source"], "aws.ses");
        assert_eq!(v["detail"]["mail"]["messageId"], "m-1");
        assert_eq!(v["detail"]["mail"]["tags"]["customer_id"][0], "c1");
        assert_eq!(v["detail"]["eventType"], "Open");
        assert_eq!(
            list_unsubscribe(&email).as_deref(),
            Some(&*format!("{BASE}/v1/unsubscribe?t=z"))
        );
    }
}
