//! Tests of `domain::enroll::decide` under the shipped example campaign.

use chrono::TimeZone;
use chrono::{DateTime, Utc};

use crate::campaign::testing::example_campaign;
use crate::domain::customer::{EmailStatus, Profile};
use crate::domain::eligibility::Ineligible;
use crate::domain::enroll::*;
use crate::domain::experiment::{Group, HOLDOUT, PROGRAM_HOLDOUT};
use crate::domain::lapse::LapseState;
use crate::domain::sequence::Flow;
use crate::domain::survey::Reason;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
}

/// Three monthly orders, the last `quiet_days` before now.
fn customer(id: &str, quiet_days: i64) -> Profile {
    let mut p = Profile::new(id.parse().unwrap());
    p.email = Some(format!("{id}@example.com"));
    for k in 0..3 {
        p.record_order(super::order_at(
            now() - chrono::Duration::days(quiet_days + 30 * k),
            4000,
        ));
    }
    p
}

fn decide_with(
    p: &Profile,
    latest: Option<Option<&crate::domain::sequence::Enrollment>>,
) -> Evaluation {
    let c = example_campaign();
    let program = c.program();
    decide(
        &Facts {
            profile: p,
            latest,
            assessment: None,
        },
        &c,
        &program,
        now(),
    )
}

#[test]
fn the_second_answer_after_a_look_uses_the_first_answer_s_assessment() {
    let c = example_campaign();
    let program = c.program();
    let p = customer("c9", 300);
    let first = decide_with(&p, None);
    let again = |assessment| {
        decide(
            &Facts {
                profile: &p,
                latest: Some(None),
                assessment,
            },
            &c,
            &program,
            now(),
        )
    };
    // Carrying the assessment over answers as assessing again would.
    assert_eq!(again(Some(&first.assessment)), decide_with(&p, Some(None)));
    // And it is that assessment the decision reads: one saying "active" keeps them waiting.
    let mut active = first.assessment.clone();
    active.state = LapseState::Active {
        lapses_at: now() + chrono::Duration::days(10),
    };
    let e = again(Some(&active));
    assert_eq!(e.flow, None);
    assert!(
        matches!(e.next, NextAction::Wait { kept_out: None, .. }),
        "{:?}",
        e.next
    );
}

/// The enrollment and profile to save of a decision to enroll.
fn enrolled(next: NextAction) -> (Box<crate::domain::sequence::Enrollment>, Box<Profile>) {
    let NextAction::Enroll {
        enrollment,
        profile,
    } = next
    else {
        panic!("not enrolled: {next:?}");
    };
    (enrollment, profile)
}

#[test]
fn a_lapsed_customer_is_enrolled_in_the_win_back_flow_after_their_enrollment_is_read() {
    let p = customer("c1", 300);
    let first = decide_with(&p, None);
    assert!(matches!(first.assessment.state, LapseState::Lapsed { .. }));
    assert_eq!(first.next, NextAction::Look(Lookup::Enrollment));
    let then = decide_with(&p, Some(None));
    assert_eq!(then.flow, Some(Flow::WinBack));
    let (enrollment, profile) = enrolled(then.next);
    assert_eq!(
        (enrollment.flow, enrollment.round, enrollment.version),
        (Flow::WinBack, 1, 0)
    );
    assert_eq!(enrollment.customer_id, "c1");
    // Out of the due index while enrolled.
    assert_eq!(profile.due_at, None);
}

#[test]
fn an_active_customer_waits_for_their_lapse_moment_without_a_read() {
    let p = customer("c2", 3);
    let e = decide_with(&p, None);
    let LapseState::Active { lapses_at } = e.assessment.state else {
        panic!("not active: {:?}", e.assessment.state);
    };
    let NextAction::Wait { due, kept_out } = e.next else {
        panic!("{:?}", e.next);
    };
    assert_eq!(kept_out, None);
    assert!(
        due.is_some_and(|d| d > now() && d <= lapses_at),
        "{due:?} {lapses_at}"
    );
    assert_eq!(e.flow, None);
}

#[test]
fn no_orders_means_nothing_to_look_at() {
    let e = decide_with(&Profile::new("c3".parse().unwrap()), None);
    assert_eq!(
        e.next,
        NextAction::Wait {
            due: None,
            kept_out: None
        }
    );
}

#[test]
fn a_rule_that_keeps_a_lapsed_customer_out_is_named_with_the_flow() {
    let mut p = customer("c4", 300);
    p.email_status = EmailStatus::Unsubscribed;
    let e = decide_with(&p, Some(None));
    assert_eq!(e.flow, Some(Flow::WinBack));
    assert!(matches!(
        e.next,
        NextAction::Wait {
            kept_out: Some(Ineligible::Unsubscribed),
            ..
        }
    ));
}

#[test]
fn a_fixed_paused_reason_is_told_and_never_held_out() {
    // Find a customer the experiment would hold out of the win-back flow.
    let held = (0..500)
        .map(|i| customer(&format!("h{i}"), 300))
        .find(|p| {
            let NextAction::Enroll { enrollment, .. } = decide_with(p, Some(None)).next else {
                return false;
            };
            enrollment.group == Group::Holdout && enrollment.variant == HOLDOUT
        })
        .expect("some customer is held out of the flow");
    let mut p = held.clone();
    let reason = Reason::TooExpensive;
    p.tags.insert(reason.tag());
    p.resolved_reasons.insert(reason);
    let e = decide_with(&p, Some(None));
    let (enrollment, profile) = enrolled(e.next);
    assert_eq!(enrollment.group, Group::Treated);
    assert_eq!(enrollment.resolved.map(|r| r.reason), Some(reason));
    assert!(profile.told_resolved.contains(&reason));
}

/// The first of `ids` whose enrollment in the win-back flow is in `variant`.
fn first_enrolled_as(variant: &str) -> Profile {
    (0..2000)
        .map(|i| customer(&format!("p{i}"), 300))
        .find(|p| {
            let NextAction::Enroll { enrollment, .. } = decide_with(p, Some(None)).next else {
                return false;
            };
            enrollment.variant == variant
        })
        .unwrap_or_else(|| panic!("some customer is enrolled as {variant}"))
}

#[test]
fn a_program_holdout_customer_is_enrolled_as_such_in_every_flow_and_never_emailed() {
    let c = example_campaign();
    assert!(c.experiment.program_holdout > 0.0);
    let p = first_enrolled_as(PROGRAM_HOLDOUT);
    let (enrollment, _) = enrolled(decide_with(&p, Some(None)).next);
    // Enrolled in the flow they would have entered, counted there, held out: no email is due.
    assert_eq!(
        (enrollment.flow, enrollment.group),
        (Flow::WinBack, Group::Holdout)
    );
    assert_eq!(enrollment.cohort().variant, PROGRAM_HOLDOUT);
    assert!(matches!(
        enrollment.status,
        crate::domain::sequence::Status::Holdout
    ));
    // Due when their window closes, as long as a treated customer's would be.
    assert!(enrollment.due_at.is_some_and(|d| d > now()));
    // The same customer in the at-risk flow (ordered monthly, quiet 40 days, an early signal
    // or not): held out there too, whatever the flow.
    let id = p.customer_id.to_string();
    let at_risk = crate::domain::sequence::assign(&id, &c.name, Flow::AtRisk, &c.experiment);
    let in_at_risk = crate::domain::experiment::program(at_risk, &id, &c.name, &c.experiment);
    assert_eq!(in_at_risk.variant, PROGRAM_HOLDOUT);
    let reengage = crate::domain::sequence::assign(&id, &c.name, Flow::ReEngagement, &c.experiment);
    let in_reengage = crate::domain::experiment::program(reengage, &id, &c.name, &c.experiment);
    assert_eq!(in_reengage.variant, PROGRAM_HOLDOUT);
}

#[test]
fn a_fixed_reason_does_not_take_a_customer_out_of_the_program_holdout() {
    let mut p = first_enrolled_as(PROGRAM_HOLDOUT);
    let reason = Reason::TooExpensive;
    p.tags.insert(reason.tag());
    p.resolved_reasons.insert(reason);
    let (enrollment, profile) = enrolled(decide_with(&p, Some(None)).next);
    assert_eq!(enrollment.variant, PROGRAM_HOLDOUT);
    assert_eq!(enrollment.group, Group::Holdout);
    // Not told (they get no email), so the news still waits for an email they may one day get.
    assert_eq!(enrollment.resolved, None);
    assert!(!profile.told_resolved.contains(&reason));
}

#[test]
fn a_promoted_variant_is_what_every_treated_customer_gets() {
    let mut c = example_campaign();
    c.experiment.promote = Some("percent-15".into());
    let program = c.program();
    let mut variants = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..600 {
        let p = customer(&format!("v{i}"), 300);
        let e = decide_in(&c, &program, &p);
        let (enrollment, _) = enrolled(e.next);
        *variants.entry(enrollment.variant.clone()).or_default() += 1;
    }
    let keys: Vec<&str> = variants.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["holdout", "percent-15", "program-holdout"],
        "{variants:?}"
    );
    // The holdouts keep their shares (10% of the 95% left, and 5%).
    assert!((35..80).contains(&variants["holdout"]), "{variants:?}");
    assert!(
        (12..50).contains(&variants["program-holdout"]),
        "{variants:?}"
    );
}

#[test]
fn chances_known_in_advance_decide_without_a_learned_model() {
    use crate::domain::targeting::{Chances, Treatment};
    let mut c = example_campaign();
    c.targeting.exploration = 0.0;
    let sure_thing = Chances {
        with_reward: Some(0.6),
        email_only: Some(0.6),
        no_email: 0.6,
    };
    let persuadable = Chances {
        with_reward: Some(0.9),
        email_only: None,
        no_email: 0.1,
    };
    let ids: Vec<String> = (100..160).map(|k| format!("c{k}")).collect();
    let mut known = KnownChances::new();
    for (k, id) in ids.iter().enumerate() {
        let chances = if k % 2 == 0 { sure_thing } else { persuadable };
        known.insert((id.parse().unwrap(), Flow::WinBack), chances);
    }
    // Without them, the example's uplift mode waits for its model: the rules decide.
    let p = customer(&ids[0], 300);
    let rules = decide_in(&c, &c.program(), &p);
    assert!(matches!(
        rules.targeting.map(|d| d.why),
        None | Some(crate::domain::targeting::Why::StillLearning { .. })
    ));
    c.known_chances = std::sync::Arc::new(known);
    let program = c.program();
    let mut seen = (0, 0);
    for (k, id) in ids.iter().enumerate() {
        let p = customer(id, 300);
        let e = decide_in(&c, &program, &p);
        // Held-out customers get no decision; every treated one gets the known chances'.
        let Some(d) = e.targeting else { continue };
        if k % 2 == 0 {
            assert_eq!(d.treatment, Treatment::NoEmail, "{id}: {d:?}");
            seen.0 += 1;
        } else {
            assert_eq!(d.treatment, Treatment::EmailWithReward, "{id}: {d:?}");
            seen.1 += 1;
        }
        assert_eq!(e.chances, known_of(&c, id));
    }
    assert!(seen.0 > 10 && seen.1 > 10, "{seen:?}");
}

/// The decision for `p`, whose latest enrollment has been read (there is none), under `c`.
fn decide_in(
    c: &crate::campaign::CampaignConfig,
    program: &Program<'_>,
    p: &Profile,
) -> Evaluation {
    decide(
        &Facts {
            profile: p,
            latest: Some(None),
            assessment: None,
        },
        c,
        program,
        now(),
    )
}

fn known_of(
    c: &crate::campaign::CampaignConfig,
    id: &str,
) -> Option<crate::domain::targeting::Chances> {
    c.known_chances
        .get(&(id.parse().unwrap(), Flow::WinBack))
        .copied()
}

#[test]
fn an_enrollment_that_is_over_stays_on_the_profile_as_an_example_when_a_new_one_replaces_it() {
    use crate::domain::sequence::Status;
    let c = example_campaign();
    let program = c.program();
    // Enrolled in the win-back flow, then back with an order five days later.
    let p = customer("c1", 300);
    let (mut first, mut profile) = enrolled(decide_with(&p, Some(None)).next);
    assert!(profile.finished.is_empty());
    let back = now() + chrono::Duration::days(5);
    first.status = Status::WonBack { at: back };
    profile.record_order(super::order_at(back, 4000));
    // A year later they have lapsed again: the new enrollment replaces the first.
    let later = now() + chrono::Duration::days(400);
    let e = decide(
        &Facts {
            profile: &profile,
            latest: Some(Some(&first)),
            assessment: None,
        },
        &c,
        &program,
        later,
    );
    let (second, profile) = enrolled(e.next);
    assert_ne!(second.id, first.id);
    assert_eq!(profile.finished.len(), 1, "{:?}", profile.finished);
    let f = &profile.finished[0];
    assert_eq!(
        (f.enrollment_id.as_str(), f.flow.as_str()),
        (first.id.as_str(), "win-back")
    );
    assert!(f.example.ordered);
    assert_eq!(
        f.example.arm == crate::domain::targeting::Arm::NoEmail,
        first.group == Group::Holdout
    );
    // The features are those the first enrollment was decided on, not the new one's.
    assert_eq!(
        profile
            .enrolled_on
            .as_ref()
            .map(|o| o.enrollment_id.as_str()),
        Some(second.id.as_str())
    );
    assert_ne!(
        Some(&f.example.features),
        profile.enrolled_on.as_ref().map(|o| &o.features)
    );
}

#[test]
fn a_profile_keeps_the_newest_finished_enrollments_only() {
    use crate::domain::customer::MAX_FINISHED;
    use crate::domain::sequence::Status;
    let c = example_campaign();
    let program = c.program();
    let (mut latest, mut profile) = enrolled(decide_with(&customer("c2", 300), Some(None)).next);
    let mut ids = vec![latest.id.clone()];
    for cycle in 1..=5 {
        let back = now() + chrono::Duration::days(400 * (cycle - 1) + 5);
        latest.status = Status::WonBack { at: back };
        profile.record_order(super::order_at(back, 4000));
        let e = decide(
            &Facts {
                profile: &profile,
                latest: Some(Some(&latest)),
                assessment: None,
            },
            &c,
            &program,
            now() + chrono::Duration::days(400 * cycle),
        );
        let (next, p) = enrolled(e.next);
        (latest, profile) = (next, p);
        ids.push(latest.id.clone());
    }
    let kept: Vec<&str> = profile
        .finished
        .iter()
        .map(|f| f.enrollment_id.as_str())
        .collect();
    let newest: Vec<&str> = ids[ids.len() - 1 - MAX_FINISHED..ids.len() - 1]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(kept, newest);
}
