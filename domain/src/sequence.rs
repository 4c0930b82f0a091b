//! An enrollment and its sequence: enrolled → step 1..N → won back | sunset | exited.
//!
//! Every change goes through a method that returns an error for an illegal transition; a final
//! state accepts none.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::customer::EmailStatus;
use super::experiment::ExperimentConfig;
use super::experiment::{Assignment, Group};
use super::metrics::{counter, CohortKey};
use super::survey::{Answer, NpsClass, Reason, Resolved};

/// Why an enrollment ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Unsubscribed,
    Suppressed,
    /// A survey reason the campaign pauses for (e.g. quality) until it is resolved.
    Paused,
    Erased,
    /// Ordered after the attribution window: the sequence stops, but it is not a win.
    OrderedAfterWindow,
    /// A login or renewal the campaign counts as "still with us" (`sending.still_with_us`):
    /// the sequence stops, and it is not a win either.
    StillWithUs,
}

/// What the shop reports a customer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Order,
    Login,
    SubscriptionRenewed,
    SubscriptionCancelled,
    /// Profile fields only (a platform's customer record): no activity. Not part of the JSON
    /// contract; only the platform webhooks produce it.
    Profile,
    /// A subscription renews soon (Stripe `invoice.upcoming`): an early signal, not activity.
    RenewalUpcoming,
    /// A visit to a page of the shop (`page_kind`): the terms or cancellation page is an early
    /// signal (see `domain::engagement`).
    PageView,
}

impl ActivityKind {
    pub fn parse(s: &str) -> Option<ActivityKind> {
        match s {
            "order" => Some(ActivityKind::Order),
            "login" => Some(ActivityKind::Login),
            "subscription_renewed" => Some(ActivityKind::SubscriptionRenewed),
            "subscription_cancelled" => Some(ActivityKind::SubscriptionCancelled),
            "page_view" => Some(ActivityKind::PageView),
            _ => None,
        }
    }
}

/// What an activity does to an enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityEffect {
    /// An order within the attribution window: won back (counted as a reactivation).
    WinBack,
    /// The sequence stops without a win.
    Stop(ExitReason),
    Nothing,
}

/// What `kind` at `at` does to enrollment `e`. Any order stops the sequence: within
/// `attribution_days` of enrollment it is a win, after it the enrollment simply ends (the window
/// decides only what counts). Logins and renewals never count as wins; those the campaign lists in
/// `still_with_us` stop the sequence, the others change nothing. Activity from before the
/// enrollment (a late delivery) changes nothing.
pub fn activity_effect(
    e: &Enrollment,
    kind: ActivityKind,
    at: DateTime<Utc>,
    attribution_days: u32,
    still_with_us: &[ActivityKind],
) -> ActivityEffect {
    if e.status.is_final() || at < e.enrolled_at {
        return ActivityEffect::Nothing;
    }
    match kind {
        ActivityKind::Order
            if at - e.enrolled_at <= Duration::days(i64::from(attribution_days)) =>
        {
            ActivityEffect::WinBack
        }
        ActivityKind::Order => ActivityEffect::Stop(ExitReason::OrderedAfterWindow),
        k if still_with_us.contains(&k) => ActivityEffect::Stop(ExitReason::StillWithUs),
        _ => ActivityEffect::Nothing,
    }
}

/// What an activity did to the customer's latest enrollment.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribution {
    None,
    /// Won back by this activity.
    Reactivated(Enrollment),
    /// Stopped the sequence without a win (an order after the window, a "still with us" login).
    Stopped(Enrollment, ExitReason),
    /// An order after an earlier win-back.
    LaterOrder {
        enrollment: Enrollment,
        won_at: DateTime<Utc>,
    },
}

impl Attribution {
    /// The same attribution of `saved` (the enrollment as stored, with its new version).
    pub fn of_saved(self, saved: &Enrollment) -> Attribution {
        match self {
            Attribution::Reactivated(_) => Attribution::Reactivated(saved.clone()),
            Attribution::LaterOrder { won_at, .. } => Attribution::LaterOrder {
                enrollment: saved.clone(),
                won_at,
            },
            Attribution::Stopped(_, why) => Attribution::Stopped(saved.clone(), why),
            Attribution::None => Attribution::None,
        }
    }
}

/// What activity `kind` at `at` does to enrollment `e` (see [`activity_effect`]): the enrollment
/// to save (`None`: nothing to write) and the attribution. `minor` is an order's revenue in the
/// campaign currency (0 for other currencies and other activity). A retry of the order that won
/// the customer back finds the win saved and attributes it again, writing nothing.
pub fn attribute(
    e: &Enrollment,
    kind: ActivityKind,
    at: DateTime<Utc>,
    minor: i64,
    attribution_days: u32,
    still_with_us: &[ActivityKind],
) -> (Option<Enrollment>, Attribution) {
    match (
        activity_effect(e, kind, at, attribution_days, still_with_us),
        &e.status,
    ) {
        (ActivityEffect::WinBack, _) => match e.win_back(at) {
            Ok(mut won) => {
                won.revenue_minor += minor;
                (Some(won.clone()), Attribution::Reactivated(won))
            }
            Err(_) => (None, Attribution::None),
        },
        (ActivityEffect::Stop(why), _) => match e.exit(why, at) {
            Ok(stopped) => (Some(stopped.clone()), Attribution::Stopped(stopped, why)),
            Err(_) => (None, Attribution::None),
        },
        (_, Status::WonBack { at: won }) if *won == at && kind == ActivityKind::Order => {
            (None, Attribution::Reactivated(e.clone()))
        }
        (_, Status::WonBack { at: won }) if kind == ActivityKind::Order && at > *won => {
            let mut later = e.clone();
            later.revenue_minor += minor;
            (
                Some(later.clone()),
                Attribution::LaterOrder {
                    enrollment: later,
                    won_at: *won,
                },
            )
        }
        _ => (None, Attribution::None),
    }
}

/// Where an enrollment stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// Step `next_step` (1-based) is due at the enrollment's `due_at`.
    Active {
        next_step: u8,
    },
    /// The last step went out; at `due_at` the enrollment ends (sunset, or closed for those who
    /// chose fewer emails and in the at-risk flow) unless the customer orders, unsubscribes or is
    /// suppressed first.
    AwaitingSunset,
    /// Holdout: no email; the window closes at `due_at`.
    Holdout,
    WonBack {
        at: DateTime<Utc>,
    },
    Sunset {
        at: DateTime<Utc>,
    },
    /// The holdout window closed without an order, or the sequence of a customer who chose
    /// fewer emails ended without a reaction (the address is kept, not sunset).
    Closed {
        at: DateTime<Utc>,
    },
    Exited {
        reason: ExitReason,
        at: DateTime<Utc>,
    },
}

impl Status {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Status::WonBack { .. }
                | Status::Sunset { .. }
                | Status::Closed { .. }
                | Status::Exited { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Status::Active { .. } => "active",
            Status::AwaitingSunset => "awaiting_sunset",
            Status::Holdout => "holdout",
            Status::WonBack { .. } => "won_back",
            Status::Sunset { .. } => "sunset",
            Status::Closed { .. } => "closed",
            Status::Exited { .. } => "exited",
        }
    }
}

/// A send in progress: the lease that keeps a second sender off the same step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub step: u8,
    pub token: String,
    pub lease_until: DateTime<Utc>,
    /// The reward code chosen for this send, so a take-over reuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_code: Option<String>,
}

/// One email that went out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentStep {
    pub step: u8,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// The id of a customer's `round`-th enrollment in `campaign`.
pub fn enrollment_id(customer_id: &str, campaign: &str, round: u32) -> String {
    format!("{customer_id}#{campaign}#{round}")
}

/// One customer's pass through one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub customer_id: String,
    pub campaign: String,
    /// `<customer>#<campaign>#<n>`: unique across re-enrollments.
    pub id: String,
    /// Optimistic-concurrency version; 0 means "not stored yet".
    #[serde(default)]
    pub version: u64,
    /// How many times this customer has been enrolled in this campaign, this one included.
    pub round: u32,
    pub group: Group,
    pub variant: String,
    pub enrolled_at: DateTime<Utc>,
    pub status: Status,
    /// When the scheduler should next act (drives the due index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// The step whose `WinbackStepDue` was last published, to avoid publishing it every run.
    #[serde(default)]
    pub published_step: u8,
    /// When `published_step` was handed to the sender. The next step's delay counts from here,
    /// so the sender's mark keeps the due time the scheduler set (and the due index unwritten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sent: Vec<SentStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nps: Option<u8>,
    /// Revenue from orders after winning back, in minor units.
    #[serde(default)]
    pub revenue_minor: i64,
    /// A paused reason the shop has fixed: the first step tells the customer (the campaign's
    /// `resolved_template` instead of the step's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolved>,
    /// The sequence this enrollment follows.
    #[serde(default, skip_serializing_if = "Flow::is_win_back")]
    pub flow: Flow,
    /// What a celebration enrollment celebrates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occasion: Option<super::celebration::Occasion>,
    /// The customer's kind of inactivity when enrolled (see `domain::engagement`): the
    /// templates see it as `segment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
}

/// A transition the state machine does not allow.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransitionError {
    #[error("enrollment {id} is {state}: it accepts no more changes")]
    Final { id: String, state: &'static str },
    #[error("step {step} is not the next step of enrollment {id} ({state})")]
    NotNextStep {
        id: String,
        step: u8,
        state: &'static str,
    },
    #[error("enrollment {id} is {state}, not {expected}")]
    WrongState {
        id: String,
        state: &'static str,
        expected: &'static str,
    },
}

fn days(d: f64) -> Duration {
    Duration::seconds((d * 86_400.0).round() as i64)
}

/// Which sequence an enrollment follows. One spelling everywhere, [`Flow::as_str`]: in
/// `CAMPAIGNS`, `[flows] priority`, the `Flow` metric dimension, SES tags, stored enrollments and
/// `plan --json` (stored enrollments and tags written as `win_back`, `at_risk` or
/// `re_engagement` by earlier versions are still read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// Lapsed: the win-back sequence (`[[steps]]`).
    #[default]
    #[serde(alias = "win_back")]
    WinBack,
    /// Not lapsed yet but at risk: the at-risk sequence (`[[at_risk.steps]]`).
    #[serde(alias = "at_risk")]
    AtRisk,
    /// A birthday or first-order anniversary (`[[celebration.steps]]`).
    Celebration,
    /// Emailed and never opened one: a re-permission message, sunset sooner
    /// (`[[re_engagement.steps]]`, see `domain::engagement`).
    #[serde(alias = "re_engagement")]
    ReEngagement,
}

impl Flow {
    /// Every flow, in the order `CAMPAIGNS` and reports list them.
    pub const ALL: [Flow; 4] = [
        Flow::WinBack,
        Flow::AtRisk,
        Flow::ReEngagement,
        Flow::Celebration,
    ];

    /// The flow's one name: `win-back`, `at-risk`, `re-engagement`, `celebration`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::WinBack => "win-back",
            Flow::AtRisk => "at-risk",
            Flow::Celebration => "celebration",
            Flow::ReEngagement => "re-engagement",
        }
    }

    /// The flow named `name` ([`Flow::as_str`]); `None` for any other text.
    pub fn named(name: &str) -> Option<Flow> {
        Flow::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The flow named `name`, also in the spelling of earlier versions (`at_risk`), for what
    /// was written before: SES tags of emails already sent.
    pub fn read(name: &str) -> Option<Flow> {
        Flow::named(name).or_else(|| Flow::named(&name.replace('_', "-")))
    }

    fn is_win_back(&self) -> bool {
        *self == Flow::WinBack
    }
}

/// The name a flow's counters are kept under: the campaign's for the win-back flow, and
/// `<campaign>-at-risk` for the at-risk flow, so its figures never mix into the win-back lift
/// (`winback report --campaign <campaign>-at-risk` shows them).
pub fn cohort_campaign(campaign: &str, flow: Flow) -> String {
    match flow {
        Flow::WinBack => campaign.to_string(),
        other => format!("{campaign}-{}", other.as_str()),
    }
}

/// A customer's arm in the experiment on entering `flow` of campaign `campaign`: the same in every
/// flow (a held-out customer gets no email from any of them), except the re-engagement flow. Only
/// customers emailed before reach that one (never the held-out), so it draws its own arm, under
/// its counters' name, which gives it a holdout of its own and its report a lift.
pub fn assign(customer_id: &str, campaign: &str, flow: Flow, cfg: &ExperimentConfig) -> Assignment {
    match flow {
        Flow::ReEngagement => {
            super::experiment::assign(customer_id, &cohort_campaign(campaign, flow), cfg)
        }
        _ => super::experiment::assign(customer_id, campaign, cfg),
    }
}

impl Enrollment {
    /// The enrollment with a survey answer recorded (ended, when the answer is a `paused` reason
    /// and the enrollment still runs); `None` when it already holds this answer.
    pub fn answered(&self, answer: Answer, paused: bool, now: DateTime<Utc>) -> Option<Enrollment> {
        if answer.same_as(self.survey_reason, self.nps) {
            return None;
        }
        let mut after = if paused && !self.status.is_final() {
            self.exit(ExitReason::Paused, now)
                .unwrap_or_else(|_| self.clone())
        } else {
            self.clone()
        };
        match answer {
            Answer::Reason(r) => after.survey_reason = Some(r),
            Answer::Nps(s) => after.nps = Some(s),
        }
        Some(after)
    }

    /// Counter changes when this enrollment's answer goes from what it is to `answer`: each
    /// answer counts once per enrollment; a changed answer moves its count.
    pub fn answer_deltas(&self, answer: Answer) -> Vec<(String, i64)> {
        let mut d = Vec::new();
        if self.survey_reason.is_none() && self.nps.is_none() {
            d.push((counter::ANSWERED.to_string(), 1));
        }
        match answer {
            Answer::Reason(r) if self.survey_reason != Some(r) => {
                d.push((counter::reason(r), 1));
                if let Some(old) = self.survey_reason {
                    d.push((counter::reason(old), -1));
                }
            }
            Answer::Nps(score) => {
                let new = NpsClass::of(Some(score));
                let old = NpsClass::of(self.nps);
                if new != old {
                    if let Some(c) = new {
                        d.push((counter::nps(c), 1));
                    }
                    if let Some(c) = old {
                        d.push((counter::nps(c), -1));
                    }
                }
            }
            Answer::Reason(_) => {}
        }
        d
    }
}

impl CohortKey {
    /// The cohort of `variant` and `group` in `campaign`'s `flow` (see [`cohort_campaign`]).
    pub fn of(campaign: &str, flow: Flow, variant: &str, group: Group) -> CohortKey {
        CohortKey {
            campaign: cohort_campaign(campaign, flow),
            variant: variant.to_string(),
            group,
        }
    }
}

/// What the sequence needs of a campaign: its flows' steps, the sending policy and the
/// experiment's variants. The campaign file ([`crate::campaign::CampaignConfig`]) composes it.
pub trait Flows {
    /// The campaign's name (in enrollment ids and keys).
    fn campaign_name(&self) -> &str;
    /// The steps of a flow (none for a flow the campaign does not have).
    fn steps_of(&self, flow: Flow) -> &[StepConfig];
    fn sending(&self) -> &SendingPolicy;
    fn experiment(&self) -> &ExperimentConfig;
    /// Days after a flow's last step, with no reaction, until it ends (a sunset for the win-back
    /// and re-engagement flows).
    fn sunset_after_days(&self, _flow: Flow) -> u32 {
        self.sending().sunset_after_days
    }
}

impl<F: Flows + ?Sized> Flows for std::sync::Arc<F> {
    fn campaign_name(&self) -> &str {
        (**self).campaign_name()
    }
    fn steps_of(&self, flow: Flow) -> &[StepConfig] {
        (**self).steps_of(flow)
    }
    fn sending(&self) -> &SendingPolicy {
        (**self).sending()
    }
    fn experiment(&self) -> &ExperimentConfig {
        (**self).experiment()
    }
    fn sunset_after_days(&self, flow: Flow) -> u32 {
        (**self).sunset_after_days(flow)
    }
}

/// Days of the whole win-back sequence plus sunset wait: the holdout's observation window.
pub fn sequence_days(campaign: &(impl Flows + ?Sized), delay_factor: f64) -> f64 {
    flow_days(campaign, Flow::WinBack, delay_factor)
}

/// Days of a flow's whole sequence plus the wait after its last step.
pub fn flow_days(campaign: &(impl Flows + ?Sized), flow: Flow, delay_factor: f64) -> f64 {
    campaign
        .steps_of(flow)
        .iter()
        .map(|s| s.delay_days * delay_factor)
        .sum::<f64>()
        + f64::from(campaign.sunset_after_days(flow))
}

impl Enrollment {
    /// A new enrollment (round `round`) at `now`.
    pub fn start(
        customer_id: &str,
        campaign: &(impl Flows + ?Sized),
        round: u32,
        group: Group,
        variant: &str,
        now: DateTime<Utc>,
    ) -> Enrollment {
        let factor = delay_factor(campaign, variant);
        let (status, due) = match group {
            Group::Treated => (
                Status::Active { next_step: 1 },
                now + days(
                    campaign
                        .steps_of(Flow::WinBack)
                        .first()
                        .map_or(0.0, |s| s.delay_days)
                        * factor,
                ),
            ),
            Group::Holdout => (Status::Holdout, now + days(sequence_days(campaign, 1.0))),
        };
        Enrollment {
            customer_id: customer_id.to_string(),
            campaign: campaign.campaign_name().to_string(),
            id: enrollment_id(customer_id, campaign.campaign_name(), round),
            version: 0,
            round,
            group,
            variant: variant.to_string(),
            enrolled_at: now,
            status,
            due_at: Some(due),
            published_step: 0,
            published_at: None,
            sent: Vec::new(),
            claim: None,
            reward_code: None,
            survey_reason: None,
            nps: None,
            revenue_minor: 0,
            resolved: None,
            flow: Flow::WinBack,
            occasion: None,
            segment: None,
        }
    }

    /// A new enrollment as the experiment assigned it. A holdout enrollment's window is the
    /// whole sequence and sunset wait at the timing of the variant it shadows
    /// ([`Assignment::timing`]), so holdout windows are spread like the treated ones.
    pub fn start_assigned(
        customer_id: &str,
        campaign: &(impl Flows + ?Sized),
        round: u32,
        assignment: &Assignment,
        flow: Flow,
        now: DateTime<Utc>,
    ) -> Enrollment {
        let mut e = Enrollment::start(
            customer_id,
            campaign,
            round,
            assignment.group,
            &assignment.variant,
            now,
        );
        e.flow = flow;
        let due = match assignment.group {
            Group::Holdout => {
                let factor = delay_factor(campaign, &assignment.timing);
                flow_days(campaign, flow, factor)
            }
            Group::Treated => {
                let factor = delay_factor(campaign, &assignment.variant);
                campaign
                    .steps_of(flow)
                    .first()
                    .map_or(0.0, |s| s.delay_days)
                    * factor
            }
        };
        e.due_at = Some(now + days(due));
        e
    }

    /// The steps of this enrollment's flow.
    pub fn steps<'c, F: Flows + ?Sized>(&self, campaign: &'c F) -> &'c [StepConfig] {
        campaign.steps_of(self.flow)
    }

    /// The counters this enrollment's figures go to.
    pub fn cohort(&self) -> CohortKey {
        CohortKey::of(&self.campaign, self.flow, &self.variant, self.group)
    }

    fn final_error(&self) -> TransitionError {
        TransitionError::Final {
            id: self.id.clone(),
            state: self.status.name(),
        }
    }

    /// When the last email went out.
    pub fn last_sent_at(&self) -> Option<DateTime<Utc>> {
        self.sent.last().map(|s| s.at)
    }

    /// When the enrollment ended, if it has.
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            Status::WonBack { at }
            | Status::Sunset { at }
            | Status::Closed { at }
            | Status::Exited { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The step due now, if the enrollment is waiting to send one.
    pub fn due_step(&self) -> Option<u8> {
        match self.status {
            Status::Active { next_step } => Some(next_step),
            _ => None,
        }
    }

    /// Fails unless `step` is the one the enrollment is waiting to send.
    fn expect_next(&self, step: u8) -> Result<(), TransitionError> {
        if self.status.is_final() {
            return Err(self.final_error());
        }
        if self.due_step() != Some(step) {
            return Err(TransitionError::NotNextStep {
                id: self.id.clone(),
                step,
                state: self.status.name(),
            });
        }
        Ok(())
    }

    /// How long after `step` goes out the next step (or, after the last, the sunset) is due.
    pub fn gap_after(&self, step: u8, campaign: &(impl Flows + ?Sized)) -> Duration {
        match self.steps(campaign).get(usize::from(step)) {
            Some(next) => days(next.delay_days * delay_factor(campaign, &self.variant)),
            None => Duration::days(i64::from(campaign.sunset_after_days(self.flow))),
        }
    }

    /// Hands `step` to the sender at `now`. The enrollment comes due again when the next step
    /// would (at least `retry_after` later): the sender's mark then leaves that time as it is,
    /// and a step the sender never acted on is published again at that time.
    pub fn publish(
        &self,
        step: u8,
        now: DateTime<Utc>,
        campaign: &(impl Flows + ?Sized),
        retry_after: Duration,
    ) -> Result<Enrollment, TransitionError> {
        self.expect_next(step)?;
        let mut e = self.clone();
        e.published_step = step;
        e.published_at = Some(now);
        e.due_at = Some(now + self.gap_after(step, campaign).max(retry_after));
        Ok(e)
    }

    /// Records that `step` went out at `at`; schedules the next step, or the sunset after the last.
    /// The delay counts from when the step was published, when it was (see [`Self::publish`]).
    pub fn record_sent(
        &self,
        step: u8,
        at: DateTime<Utc>,
        message_id: Option<String>,
        campaign: &(impl Flows + ?Sized),
    ) -> Result<Enrollment, TransitionError> {
        let mut e = self.advance(step, at, campaign)?;
        e.sent.push(SentStep {
            step,
            at,
            message_id,
        });
        Ok(e)
    }

    /// Passes over `step` without an email (the customer asked for fewer emails, see
    /// [`sends_step`]): the sequence goes on as if it had been sent, with nothing recorded as sent.
    pub fn skip(
        &self,
        step: u8,
        at: DateTime<Utc>,
        campaign: &(impl Flows + ?Sized),
    ) -> Result<Enrollment, TransitionError> {
        self.advance(step, at, campaign)
    }

    fn advance(
        &self,
        step: u8,
        at: DateTime<Utc>,
        campaign: &(impl Flows + ?Sized),
    ) -> Result<Enrollment, TransitionError> {
        self.expect_next(step)?;
        let mut e = self.clone();
        e.claim = None;
        let from = match self.published_at {
            Some(p) if self.published_step == step && p <= at => p,
            _ => at,
        };
        e.due_at = Some(from + self.gap_after(step, campaign));
        e.status = if usize::from(step) < self.steps(campaign).len() {
            Status::Active {
                next_step: step + 1,
            }
        } else {
            Status::AwaitingSunset
        };
        Ok(e)
    }

    /// The customer came back: stop the sequence.
    pub fn win_back(&self, at: DateTime<Utc>) -> Result<Enrollment, TransitionError> {
        if self.status.is_final() {
            return Err(self.final_error());
        }
        let mut e = self.clone();
        e.status = Status::WonBack { at };
        e.due_at = None;
        e.claim = None;
        Ok(e)
    }

    /// Nothing happened after the goodbye (or the holdout window closed). After the goodbye the
    /// address is sunset, unless `keep_address` (the customer chose fewer emails, see
    /// [`sunsets_address`]): then the enrollment just closes.
    pub fn close(
        &self,
        at: DateTime<Utc>,
        keep_address: bool,
    ) -> Result<Enrollment, TransitionError> {
        let mut e = self.clone();
        e.status = match self.status {
            // An at-risk customer has not lapsed: the flow just ends, the address stays.
            Status::AwaitingSunset
                if keep_address || !matches!(self.flow, Flow::WinBack | Flow::ReEngagement) =>
            {
                Status::Closed { at }
            }
            Status::AwaitingSunset => Status::Sunset { at },
            Status::Holdout => Status::Closed { at },
            _ if self.status.is_final() => return Err(self.final_error()),
            _ => {
                return Err(TransitionError::WrongState {
                    id: self.id.clone(),
                    state: self.status.name(),
                    expected: "awaiting_sunset or holdout",
                })
            }
        };
        e.due_at = None;
        Ok(e)
    }

    /// The customer left the sequence (unsubscribed, suppressed, paused, erased).
    pub fn exit(
        &self,
        reason: ExitReason,
        at: DateTime<Utc>,
    ) -> Result<Enrollment, TransitionError> {
        if self.status.is_final() {
            return Err(self.final_error());
        }
        let mut e = self.clone();
        e.status = Status::Exited { reason, at };
        e.due_at = None;
        e.claim = None;
        Ok(e)
    }

    /// Moves the due time (deferral for quiet hours or the frequency cap).
    pub fn defer(&self, until: DateTime<Utc>) -> Result<Enrollment, TransitionError> {
        if self.status.is_final() {
            return Err(self.final_error());
        }
        let mut e = self.clone();
        e.due_at = Some(until);
        e.published_step = 0;
        e.published_at = None;
        Ok(e)
    }
}

/// Whether a customer with `status` gets step `step` of a `total`-step sequence. Those who chose
/// "fewer emails" get fewer emails: only the last step (the goodbye, with the reward), at its
/// usual time; the others are skipped, not delayed.
pub fn sends_step(step: u8, total: u8, status: EmailStatus) -> bool {
    status != EmailStatus::FewerEmails || step >= total
}

/// Whether the goodbye without a reaction sunsets the address. Not for a customer who chose
/// "fewer emails": they asked to keep hearing from the shop now and then, and a sunset would
/// silence them; their enrollment closes instead.
pub fn sunsets_address(status: EmailStatus) -> bool {
    status != EmailStatus::FewerEmails
}

/// The variant's timing factor (1 when the variant sets none).
pub fn delay_factor(campaign: &(impl Flows + ?Sized), variant: &str) -> f64 {
    campaign.experiment().delay_factor(variant)
}

/// Birthdays and anniversaries of the first order: once a year per occasion, on the day in the
/// customer's time zone, to active customers (not lapsed, not at risk, in no other flow).
/// Templates see `occasion` (`birthday` or `anniversary`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CelebrationFlow {
    /// The sequence (usually one step with `reward = true`).
    pub steps: Vec<StepConfig>,
}

/// The at-risk flow: a buying process before they lapse. Interest (content, a satisfaction or
/// NPS question), then evaluation (answer the objection), then a last step that may carry a
/// reward, given only to customers judged unlikely to come back by themselves (see
/// [`crate::outlook::likely_to_return_alone`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AtRiskFlow {
    /// The sequence, in order; `reward = true` only on the last step.
    pub steps: Vec<StepConfig>,
}

/// When and how emails go out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SendingPolicy {
    /// Local hour (0–23) at which quiet hours start.
    pub quiet_hours_start: u32,
    /// Local hour (0–23) at which quiet hours end.
    pub quiet_hours_end: u32,
    /// An order within this many days of enrollment counts as won back.
    pub attribution_days: u32,
    /// Days after the last step, without reaction, before the customer is sunset.
    pub sunset_after_days: u32,
    /// Activity other than orders that shows the customer is still with the shop and stops the
    /// sequence (never counted as a win): `login`, `subscription_renewed`. Empty: they change
    /// nothing.
    #[serde(default)]
    pub still_with_us: Vec<ActivityKind>,
    /// Validity of the signed links in emails.
    #[serde(default = "default_link_validity")]
    pub link_validity_days: u32,
    /// Steps allowed; raising it past 3 is a deliberate choice (more lands in spam).
    #[serde(default = "default_max_steps")]
    pub max_steps: u8,
    /// Send each email at the local hour the customer usually orders at, when they have one
    /// outside quiet hours (waiting up to a day); otherwise as soon as the step is due.
    #[serde(default = "default_best_hour")]
    pub best_hour: bool,
}

fn default_best_hour() -> bool {
    true
}

fn default_link_validity() -> u32 {
    60
}

fn default_max_steps() -> u8 {
    3
}

/// One email of the sequence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Template name: `templates/<locale>/<template>.{subject,html,txt}`.
    pub template: String,
    /// Days after enrollment (first step) or after the previous step.
    pub delay_days: f64,
    /// Whether this step carries a reward.
    #[serde(default)]
    pub reward: bool,
    /// Whether the email asks why they left (one-click reason links).
    #[serde(default)]
    pub survey: bool,
    /// Whether the email asks the NPS question (0–10 links).
    #[serde(default)]
    pub nps: bool,
}

/// How a quiet customer has been (not) responding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Was emailed and never opened one: does not read the emails.
    NeverOpened,
    /// Opens, never clicks: reads, but the emails do not speak to them.
    OpenedNotClicked,
    /// Clicked after their last order and did not buy: interested, something held them back.
    ClickedNotBought,
    /// Still buys, less often than before.
    BuysLessOften,
}

impl Segment {
    pub const ALL: [Segment; 4] = [
        Segment::NeverOpened,
        Segment::OpenedNotClicked,
        Segment::ClickedNotBought,
        Segment::BuysLessOften,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::NeverOpened => "never_opened",
            Segment::OpenedNotClicked => "opened_not_clicked",
            Segment::ClickedNotBought => "clicked_not_bought",
            Segment::BuysLessOften => "buys_less_often",
        }
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
