//! The state machine of an enrollment: enrolled → step 1..N → won back | sunset | exited. Every
//! change goes through a method that returns an error for an illegal transition; a final state
//! accepts none.

use chrono::{DateTime, Duration, Utc};

use super::config::StepConfig;
use super::enrollment::{enrollment_id, Enrollment, ExitReason, SentStep, Status};
use super::flows::{delay_factor, flow_days, sequence_days, Flow, Flows};
use crate::customer::EmailStatus;
use crate::edge::CustomerId;
use crate::experiment::{Assignment, Group};
use crate::metrics::{counter, CohortKey};
use crate::survey::{Answer, NpsClass};

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

impl Enrollment {
    /// A new enrollment (round `round`) at `now`.
    pub fn start(
        customer_id: &CustomerId,
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
            customer_id: customer_id.clone(),
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
            orders: Vec::new(),
            resolved: None,
            flow: Flow::WinBack,
            occasion: None,
            segment: None,
            treatment: None,
        }
    }

    /// A new enrollment as the experiment assigned it. A holdout enrollment's window is the
    /// whole sequence and sunset wait at the timing of the variant it shadows
    /// ([`Assignment::timing`]), so holdout windows are spread like the treated ones.
    pub fn start_assigned(
        customer_id: &CustomerId,
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

    /// Records the targeting decision. A treated customer the decision emails nobody waits out
    /// the flow's window like a holdout customer (no email, no reward; an order within the
    /// window still counts for their variant: the variant's figures are those of the policy).
    pub fn apply_targeting<F: Flows + ?Sized>(
        &mut self,
        campaign: &F,
        treatment: crate::targeting::Treatment,
        now: DateTime<Utc>,
    ) {
        use crate::targeting::Treatment;
        if self.group == Group::Treated && treatment == Treatment::NoEmail {
            self.status = Status::Holdout;
            self.due_at = Some(now + days(flow_days(campaign, self.flow, 1.0)));
        }
        self.treatment = (treatment != Treatment::AsTheRules).then_some(treatment);
    }

    /// Whether the emails of this enrollment carry no reward: the targeting decision chose an
    /// email without it, or the variant is one without a reward (`no_reward`).
    pub fn without_reward(&self, variant_without_reward: bool) -> bool {
        variant_without_reward
            || self.treatment == Some(crate::targeting::Treatment::EmailWithoutReward)
    }

    /// What the flow's uplift model learns from this enrollment, once it is over (ended, or
    /// `attribution_days` past its start): the features at enrollment (`enrolled_on`, the
    /// profile's, when it is this enrollment's), the treatment it had (`variant_without_reward`:
    /// its variant carries none) and whether the customer came back within the window. Only a
    /// randomized treatment teaches (the holdout, or a customer the rules treated).
    pub fn learning_example(
        &self,
        enrolled_on: Option<&crate::customer::EnrolledOn>,
        variant_without_reward: bool,
        attribution_days: u32,
        now: DateTime<Utc>,
    ) -> Option<crate::targeting::Example> {
        use crate::targeting::{randomized, Arm, Example};
        let on = enrolled_on.filter(|o| o.enrollment_id == self.id)?;
        let over = self.status.is_final()
            || now >= self.enrolled_at + Duration::days(i64::from(attribution_days));
        if !over || !randomized(self.treatment) {
            return None;
        }
        let arm = match self.group {
            Group::Holdout => Arm::NoEmail,
            Group::Treated if variant_without_reward => Arm::EmailOnly,
            Group::Treated => Arm::WithReward,
        };
        Some(Example {
            features: on.features.clone(),
            arm,
            ordered: matches!(self.status, Status::WonBack { .. }),
        })
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

    /// A win is taken back (every order counted for it was refunded or cancelled): the
    /// enrollment ends as [`ExitReason::Refunded`], kept as it was otherwise.
    pub fn take_back_win(&self, at: DateTime<Utc>) -> Result<Enrollment, TransitionError> {
        if !matches!(self.status, Status::WonBack { .. }) {
            return Err(self.final_error());
        }
        let mut e = self.clone();
        e.status = Status::Exited {
            reason: ExitReason::Refunded,
            at,
        };
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
