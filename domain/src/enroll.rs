//! Whom the scheduler enrolls, in which flow, and when it looks at the others again: one pure
//! decision over what has been read, in the shape of [`super::send::decide`]. The scheduler
//! reads, decides and writes; `winback plan` prints the same decision; `winback simulate` runs
//! the scheduler. The customer's latest enrollment is read only when a flow is in question: the
//! decision asks for it with [`NextAction::Look`].

use chrono::{DateTime, Utc};

use super::celebration::{self, Occasion};
use super::customer::Profile;
use super::due::{self, earliest, Watch};
use super::eligibility::{self, EligibilityPolicy, Ineligible};
use super::engagement::{self, Segment};
use super::experiment;
use super::lapse::{self, Assessment, LapsePolicy, LapseState};
use super::money::Valuation;
use super::priority;
use super::reward::{self, RewardPolicy};
use super::schedule;
use super::sequence::{self, Enrollment, Flow, Flows};
use super::survey;
use super::targeting::{self, TargetingConfig, TargetingModel};

/// What the campaign says about enrolling, gathered once per run.
#[derive(Debug, Clone)]
pub struct Program<'a> {
    pub lapse: &'a LapsePolicy,
    pub eligibility: &'a EligibilityPolicy,
    pub valuation: Valuation<'a>,
    /// `[flows] priority`: which flow a customer enters when they qualify for several.
    pub priority: Vec<Flow>,
    /// The campaign's at-risk and celebration flows, and its default time zone.
    pub watch: Watch<'a>,
    /// The campaign has a re-engagement flow.
    pub re_engagement: bool,
    /// `[targeting]`, and what decides with it.
    pub targeting: Targeting<'a>,
}

/// Chances known in advance instead of learned, per customer and flow (the simulator's oracle).
pub type KnownChances =
    std::collections::BTreeMap<(super::edge::CustomerId, Flow), targeting::Chances>;

/// What the targeting decision works with.
#[derive(Debug, Clone, Copy)]
pub struct Targeting<'a> {
    pub config: &'a TargetingConfig,
    /// Each flow's learned uplift model (the weekly rebuild's; none until it has learned).
    pub models: &'a [TargetingModel],
    /// The campaign's rewards: a variant's reward cost is its own reward's, else the default's.
    pub rewards: &'a RewardPolicy,
    /// Chances known in advance, per customer and flow, taken instead of a learned model's: the
    /// simulator's oracle, which knows each synthetic customer's response (none in a shop).
    pub known: Option<&'a KnownChances>,
}

/// What the scheduler knows about a customer so far.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub profile: &'a Profile,
    /// Their latest enrollment in the campaign: `None` not read yet, `Some(None)` there is none.
    pub latest: Option<Option<&'a Enrollment>>,
    /// The lapse assessment an earlier answer for this customer at this `now` carried (after a
    /// look), so the model is not evaluated twice; `None` assesses.
    pub assessment: Option<&'a Assessment>,
}

/// A read the decision needs before it can say more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The customer's latest enrollment in the campaign.
    Enrollment,
}

/// What to do with the customer.
#[derive(Debug, Clone, PartialEq)]
pub enum NextAction {
    /// Read this, then decide again.
    Look(Lookup),
    /// Enter no flow now; look at them again at `due` (`None`: only when something happens).
    /// `kept_out` names the eligibility rule that kept them out of `flow`, if one did.
    Wait {
        due: Option<DateTime<Utc>>,
        kept_out: Option<Ineligible>,
    },
    /// Save the new enrollment (conditional on the latest's version: another run may have
    /// enrolled them first), then the profile as it becomes with it (out of the due index, a
    /// celebrated occasion or a resolution told marked).
    Enroll {
        enrollment: Box<Enrollment>,
        profile: Box<Profile>,
    },
}

/// The decision, with what it was made from (what `plan` shows).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The lapse rules' view of the customer.
    pub assessment: Assessment,
    /// Their birthday or first-order anniversary today, when the campaign celebrates it (kept
    /// only when the celebration flow is the one chosen).
    pub occasion: Option<Occasion>,
    /// Their kind of inactivity, once a flow is in question.
    pub segment: Option<Segment>,
    /// The flow they enter, or the one a rule kept them out of.
    pub flow: Option<Flow>,
    /// What the targeting decision gives them, when they are enrolled and emailed (treated),
    /// and the chances the flow's model gave them.
    pub targeting: Option<targeting::Decision>,
    pub chances: Option<targeting::Chances>,
    pub next: NextAction,
}

/// Decides whether to enroll the customer in `facts` at `now`, and in which flow of `campaign`
/// (`program` is what its file says about enrolling).
pub fn decide<F: Flows + ?Sized>(
    facts: &Facts<'_>,
    campaign: &F,
    program: &Program<'_>,
    now: DateTime<Utc>,
) -> Evaluation {
    let profile = facts.profile;
    let assessment = match facts.assessment {
        Some(a) => a.clone(),
        None => lapse::assess(profile, program.lapse, now),
    };
    let mut evaluation = Evaluation {
        occasion: None,
        segment: None,
        flow: None,
        targeting: None,
        chances: None,
        next: NextAction::Wait {
            due: None,
            kept_out: None,
        },
        assessment,
    };
    let wait = |due| NextAction::Wait {
        due,
        kept_out: None,
    };
    // The flow the lapse rules put them in, and when to look again if they enter none. With an
    // at-risk flow, customers showing early signals get it before they lapse.
    let (lapse_flow, lapses_at, signals) = match &evaluation.assessment.state {
        LapseState::NoOrders => return evaluation,
        LapseState::Active { .. } => (
            None,
            due::after_today(profile, program.lapse, program.watch, now),
            &[][..],
        ),
        // Without an at-risk flow they are only watched (unless it is their day).
        LapseState::AtRisk { lapses_at, signals } => (
            program.watch.at_risk.then_some(Flow::AtRisk),
            Some(*lapses_at),
            signals.as_slice(),
        ),
        LapseState::Lapsed { .. } => (Some(Flow::WinBack), None, &[][..]),
    };
    // Their birthday or first-order anniversary today (in their time zone) qualifies them for
    // the celebration flow, once a year per occasion.
    let tz = schedule::zone(
        profile.time_zone.as_deref(),
        program.watch.default_time_zone,
    );
    let occasion = program
        .watch
        .celebration
        .then(|| celebration::due_today(profile, &tz, now))
        .flatten();
    if lapse_flow.is_none() && occasion.is_none() {
        evaluation.next = wait(lapses_at);
        return evaluation;
    }
    let Some(latest) = facts.latest else {
        evaluation.next = NextAction::Look(Lookup::Enrollment);
        return evaluation;
    };
    // The kind of inactivity picks the copy, and who does not read email qualifies for the
    // re-engagement flow; the campaign's priority picks among the flows they qualify for.
    let sent = latest.map_or(0, |e| e.sent.len());
    let segment = engagement::segment(profile, sent, signals);
    evaluation.segment = segment;
    let qualification = priority::Qualification {
        lapse_flow,
        segment,
        has_re_engagement: program.re_engagement,
        occasion_today: occasion.is_some(),
    };
    let Some(flow) = priority::choose(&qualification, &program.priority) else {
        evaluation.next = wait(lapses_at);
        return evaluation;
    };
    evaluation.flow = Some(flow);
    let occasion = occasion.filter(|_| flow == Flow::Celebration);
    evaluation.occasion = occasion;
    if let Err(why) = eligibility::check_enrollment(
        profile,
        latest,
        program.eligibility,
        flow,
        evaluation.assessment.outlook.as_ref(),
        &program.valuation,
        now,
    ) {
        // Kept out of the at-risk flow: look again when they lapse, if not sooner (out of the
        // celebration flow: at their next look or occasion, if not sooner).
        evaluation.next = NextAction::Wait {
            due: earliest(why.retry_at(), lapses_at),
            kept_out: Some(why),
        };
        return evaluation;
    }

    let experiment = campaign.experiment();
    // The program holdout is held out of every flow (in the counters of the flow they would
    // have entered); a reason fixed meanwhile waits, untold, as they get no email.
    let mut assignment = experiment::program(
        sequence::assign(
            &profile.customer_id,
            campaign.campaign_name(),
            flow,
            experiment,
        ),
        &profile.customer_id,
        campaign.campaign_name(),
        experiment,
    );
    // A paused reason the shop has fixed: this enrollment tells them, once.
    let resolved = survey::pending_resolution(profile)
        .filter(|_| !experiment::is_program_holdout(&assignment));
    if resolved.is_some() {
        assignment = experiment::never_held_out(assignment, experiment);
    }
    let round = latest.map_or(1, |e| e.round + 1);
    let mut enrollment = Enrollment::start_assigned(
        &profile.customer_id,
        campaign,
        round,
        &assignment,
        flow,
        now,
    );
    let mut enrolled = profile.clone();
    if let Some(r) = &resolved {
        enrolled.told_resolved.insert(r.reason);
    }
    if let Some(o) = occasion {
        celebration::mark(&mut enrolled, o, &tz, now);
    }
    enrolled.due_at = None;
    enrollment.occasion = occasion;
    enrollment.segment = segment;
    enrollment.resolved = resolved;
    enrollment.version = latest.map_or(0, |e| e.version);
    // Whom to email, and whom to reward: the features at this moment are kept for learning,
    // whatever decides.
    let model = evaluation
        .assessment
        .outlook
        .as_ref()
        .map(|o| targeting::ModelView {
            p_active: o.p_active,
            p_order: o.p_order,
            predicted_value: o.predicted_value,
        });
    let features = targeting::snapshot(profile, model, segment.map(|s| s.as_str()), now);
    let decision = (assignment.group == experiment::Group::Treated
        && enrollment.resolved.is_none())
    .then(|| decide_targeting(profile, &enrollment, &features, campaign, program));
    let treatment = decision
        .as_ref()
        .map_or(targeting::Treatment::AsTheRules, |(d, _)| d.treatment);
    enrollment.apply_targeting(campaign, treatment, now);
    // The enrollment this one replaces is over: what it teaches stays on the profile.
    if let Some(previous) = latest {
        keep_finished(&mut enrolled, previous, campaign, now);
    }
    enrolled.enrolled_on = Some(targeting::EnrolledOn {
        enrollment_id: enrollment.id.clone(),
        features,
    });
    evaluation.chances = decision.as_ref().and_then(|(_, c)| *c);
    evaluation.targeting = decision.map(|(d, _)| d);
    evaluation.next = NextAction::Enroll {
        enrollment: Box::new(enrollment),
        profile: Box::new(enrolled),
    };
    evaluation
}

/// Keeps `previous` (the enrollment a new one replaces) on `profile` as a learning example, when
/// it teaches (see [`Enrollment::learning_example`]), with the newest
/// [`crate::customer::MAX_FINISHED`] kept.
fn keep_finished<F: Flows + ?Sized>(
    profile: &mut Profile,
    previous: &Enrollment,
    campaign: &F,
    now: DateTime<Utc>,
) {
    let Some(example) = previous.learning_example(
        profile.enrolled_on.as_ref(),
        campaign
            .experiment()
            .variant_without_reward(&previous.variant),
        campaign.sending().attribution_days,
        now,
    ) else {
        return;
    };
    if profile
        .finished
        .iter()
        .any(|f| f.enrollment_id == previous.id)
    {
        return;
    }
    profile.finished.push(crate::customer::Finished {
        enrollment_id: previous.id.clone(),
        flow: previous.flow.as_str().to_string(),
        example,
    });
    let extra = profile
        .finished
        .len()
        .saturating_sub(crate::customer::MAX_FINISHED);
    profile.finished.drain(..extra);
}

/// The targeting decision for a treated customer about to be enrolled (`enrollment`), with the
/// chances it was made on.
fn decide_targeting<F: Flows + ?Sized>(
    profile: &Profile,
    enrollment: &Enrollment,
    features: &targeting::Snapshot,
    campaign: &F,
    program: &Program<'_>,
) -> (targeting::Decision, Option<targeting::Chances>) {
    let t = &program.targeting;
    let model = t.models.iter().find(|m| m.flow == enrollment.flow.as_str());
    let known = t
        .known
        .and_then(|k| k.get(&(profile.customer_id.clone(), enrollment.flow)))
        .copied();
    let chances = known.or_else(|| model.and_then(|m| m.chances(features).ok()));
    // Known chances need no learning first.
    let learned_from = match known {
        Some(_) => (t.config.min_enrollments, t.config.min_enrollments),
        None => model.map_or((0, 0), |m| m.learned_from),
    };
    let order_value = usual_order_value(profile, &program.valuation);
    let spec = campaign
        .experiment()
        .variant_reward(&enrollment.variant)
        .unwrap_or(&t.rewards.default);
    let facts = targeting::Facts {
        learned_from,
        chances,
        order_value,
        reward_cost: reward::expected_cost(spec, order_value),
        draw: experiment::bucket(
            &profile.customer_id,
            campaign.campaign_name(),
            &format!("explore#{}", enrollment.round),
        ),
    };
    (targeting::decide(t.config, &facts), chances)
}

/// The customer's usual order in the campaign's currency (major units): their lifetime value
/// over their orders, converted; 0 when unknown.
fn usual_order_value(profile: &Profile, valuation: &Valuation<'_>) -> f64 {
    if profile.order_count == 0 {
        return 0.0;
    }
    let mean = super::money::Money(profile.lifetime_value.0 / i64::from(profile.order_count));
    valuation
        .convert(
            mean,
            profile.currency.as_deref().unwrap_or(valuation.currency),
        )
        .map_or(0.0, |m| m.0 as f64 / 100.0)
}
