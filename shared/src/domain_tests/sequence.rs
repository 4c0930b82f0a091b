//! Tests of `domain::sequence` that need the shipped example campaign (which the domain crate
//! cannot build: the campaign file is parsed here, in `shared`).

use crate::campaign::testing::example_campaign;
use crate::domain::customer::EmailStatus;
use crate::domain::experiment::{Assignment, Group};
use crate::domain::sequence::*;
use chrono::TimeZone;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..5).prop_map(Op::Send),
        Just(Op::WinBack),
        Just(Op::Close),
        Just(Op::Exit),
        Just(Op::Defer),
    ]
}

#[test]
fn the_re_engagement_flow_draws_its_own_holdout_among_customers_the_others_treat() {
    let c = example_campaign();
    let ids: Vec<String> = (0..2000).map(|i| format!("c{i}")).collect();
    let arm = |id: &str, flow| assign(id, &c.name, flow, &c.experiment);
    // The win-back, at-risk and celebration flows: one arm per customer.
    for id in &ids {
        let win_back = arm(id, Flow::WinBack);
        assert_eq!(arm(id, Flow::AtRisk), win_back);
        assert_eq!(arm(id, Flow::Celebration), win_back);
    }
    // Re-engagement reaches only customers treated before; about holdout_percent of them
    // are held out of it.
    let treated: Vec<&String> = ids
        .iter()
        .filter(|id| arm(id, Flow::WinBack).group == Group::Treated)
        .collect();
    let held = treated
        .iter()
        .filter(|id| arm(id, Flow::ReEngagement).group == Group::Holdout)
        .count();
    let share = held as f64 / treated.len() as f64 * 100.0;
    assert!(
        (share - c.experiment.holdout_percent).abs() < 3.0,
        "{held} of {} held out ({share:.1}%)",
        treated.len()
    );
}

#[test]
fn a_treated_enrollment_walks_the_steps_then_sunsets() {
    let c = example_campaign();
    let mut e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", now());
    for step in 1..=c.steps.len() as u8 {
        assert_eq!(e.due_step(), Some(step));
        e = e.record_sent(step, e.due_at.unwrap(), None, &c).unwrap();
    }
    assert_eq!(e.status, Status::AwaitingSunset);
    let at = e.due_at.unwrap();
    let kept = e.close(at, true).unwrap();
    assert_eq!(kept.status, Status::Closed { at });
    let e = e.close(at, false).unwrap();
    assert_eq!(e.status, Status::Sunset { at });
    assert!(e.record_sent(1, at, None, &c).is_err());
}

#[test]
fn a_step_cannot_be_sent_twice_or_out_of_order() {
    let c = example_campaign();
    let e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", now());
    assert!(matches!(
        e.record_sent(2, now(), None, &c),
        Err(TransitionError::NotNextStep { .. })
    ));
    let e = e.record_sent(1, now(), None, &c).unwrap();
    assert!(e.record_sent(1, now(), None, &c).is_err());
}

#[test]
fn a_published_step_keeps_its_due_time_when_marked_sent() {
    let c = example_campaign();
    let e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", now());
    let six_hours = Duration::hours(6);
    let published = e.publish(1, now(), &c, six_hours).unwrap();
    assert_eq!(published.published_step, 1);
    assert_eq!(published.due_at, Some(now() + e.gap_after(1, &c)));
    // Sent a few seconds later: the next step is still due when the scheduler said.
    let sent = published
        .record_sent(1, now() + Duration::seconds(40), None, &c)
        .unwrap();
    assert_eq!(sent.due_at, published.due_at);
    assert_eq!(sent.status, Status::Active { next_step: 2 });
    // Unpublished (or deferred) steps count the delay from the send.
    let direct = e.record_sent(1, now(), None, &c).unwrap();
    assert_eq!(direct.due_at, Some(now() + e.gap_after(1, &c)));
    let deferred = published.defer(now() + Duration::hours(3)).unwrap();
    assert_eq!(deferred.published_at, None);
    let later = now() + Duration::hours(3);
    let sent = deferred.record_sent(1, later, None, &c).unwrap();
    assert_eq!(sent.due_at, Some(later + e.gap_after(1, &c)));
    // The last step waits for the sunset; only the next step can be published.
    assert!(e.publish(2, now(), &c, six_hours).is_err());
    let last = c.steps.len() as u8;
    assert_eq!(
        e.gap_after(last, &c),
        Duration::days(i64::from(c.sending.sunset_after_days))
    );
}

#[test]
fn holdout_waits_the_whole_window_and_sends_nothing() {
    let c = example_campaign();
    let e = Enrollment::start(
        &"c1".parse().unwrap(),
        &c,
        1,
        Group::Holdout,
        "holdout",
        now(),
    );
    assert_eq!(e.due_step(), None);
    assert!(e.due_at.unwrap() > now() + Duration::days(7));
    assert!(matches!(
        e.close(now(), false).unwrap().status,
        Status::Closed { .. }
    ));
}

#[test]
fn fewer_emails_means_fewer_steps_and_no_sunset() {
    let c = example_campaign();
    let total = c.steps.len() as u8;
    for step in 1..=total {
        assert!(sends_step(step, total, EmailStatus::Subscribed));
        assert_eq!(
            sends_step(step, total, EmailStatus::FewerEmails),
            step == total
        );
    }
    assert!(sunsets_address(EmailStatus::Subscribed));
    assert!(!sunsets_address(EmailStatus::FewerEmails));
    // A skipped step keeps the timing of the rest and records no email.
    let e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", now());
    let skipped = e.skip(1, now(), &c).unwrap();
    let sent = e.record_sent(1, now(), None, &c).unwrap();
    assert_eq!(skipped.status, sent.status);
    assert_eq!(skipped.due_at, sent.due_at);
    assert!(skipped.sent.is_empty());
    assert!(skipped.skip(1, now(), &c).is_err());
}

#[test]
fn any_order_stops_the_sequence_and_the_window_decides_only_the_win() {
    let c = example_campaign();
    let e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", now());
    let fx = |kind, days: i64, still: &[ActivityKind]| {
        activity_effect(&e, kind, now() + Duration::days(days), 30, still)
    };
    assert_eq!(fx(ActivityKind::Order, 3, &[]), ActivityEffect::WinBack);
    assert_eq!(fx(ActivityKind::Order, 30, &[]), ActivityEffect::WinBack);
    assert_eq!(
        fx(ActivityKind::Order, 31, &[]),
        ActivityEffect::Stop(ExitReason::OrderedAfterWindow)
    );
    assert_eq!(
        activity_effect(&e, ActivityKind::Order, now() - Duration::days(1), 30, &[]),
        ActivityEffect::Nothing
    );
    // Logins and renewals are never wins; "still with us" ones stop the sequence.
    for kind in [ActivityKind::Login, ActivityKind::SubscriptionRenewed] {
        assert_eq!(fx(kind, 3, &[]), ActivityEffect::Nothing);
        assert_eq!(
            fx(kind, 3, &[kind]),
            ActivityEffect::Stop(ExitReason::StillWithUs)
        );
    }
    let all = [ActivityKind::Login, ActivityKind::SubscriptionRenewed];
    assert_eq!(
        fx(ActivityKind::SubscriptionCancelled, 3, &all),
        ActivityEffect::Nothing
    );
    let won = e.win_back(now()).unwrap();
    assert_eq!(
        activity_effect(&won, ActivityKind::Order, now(), 30, &[]),
        ActivityEffect::Nothing
    );
}

#[test]
fn timing_variants_stretch_the_steps_and_the_holdout_window_follows_them() {
    let mut c = example_campaign();
    c.experiment.variants[1].delay_factor = 1.5;
    let slow = c.experiment.variants[1].name.clone();
    let fast = c.experiment.variants[0].name.clone();
    let treated = |v: &str| Assignment {
        group: Group::Treated,
        variant: v.into(),
        timing: v.into(),
    };
    let e = Enrollment::start_assigned(
        &"c1".parse().unwrap(),
        &c,
        1,
        &treated(&slow),
        Flow::WinBack,
        now(),
    );
    assert_eq!(e.gap_after(1, &c), days(c.steps[1].delay_days * 1.5));
    let f = Enrollment::start_assigned(
        &"c1".parse().unwrap(),
        &c,
        1,
        &treated(&fast),
        Flow::WinBack,
        now(),
    );
    assert_eq!(f.gap_after(1, &c), days(c.steps[1].delay_days));
    // The last step waits the sunset, unstretched.
    let last = c.steps.len() as u8;
    assert_eq!(e.gap_after(last, &c), f.gap_after(last, &c));
    for (timing, factor) in [(&slow, 1.5), (&fast, 1.0)] {
        let a = Assignment {
            group: Group::Holdout,
            variant: "holdout".into(),
            timing: timing.clone(),
        };
        let h = Enrollment::start_assigned(&"c1".parse().unwrap(), &c, 1, &a, Flow::WinBack, now());
        assert_eq!(h.due_at, Some(now() + days(sequence_days(&c, factor))));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Send(u8),
    WinBack,
    Close,
    Exit,
    Defer,
}

proptest! {
    #[test]
    fn nothing_leaves_a_final_state(ops in proptest::collection::vec(op(), 1..20), holdout in any::<bool>()) {
        let c = example_campaign();
        let g = if holdout { Group::Holdout } else { Group::Treated };
        let mut e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, g, "a", now());
        for o in ops {
            let was_final = e.status.is_final();
            let before = e.clone();
            let r = match o {
                Op::Send(s) => e.record_sent(s, now(), None, &c),
                Op::WinBack => e.win_back(now()),
                Op::Close => e.close(now(), false),
                Op::Exit => e.exit(ExitReason::Unsubscribed, now()),
                Op::Defer => e.defer(now()),
            };
            if was_final {
                prop_assert!(r.is_err());
                prop_assert_eq!(&e, &before);
            }
            if let Ok(next) = r {
                prop_assert!(next.sent.len() <= c.steps.len());
                if next.status.is_final() { prop_assert!(next.due_at.is_none()); }
                e = next;
            }
        }
    }
}

/// A length in days, as the sequence rounds it (to the second).
fn days(d: f64) -> Duration {
    Duration::seconds((d * 86_400.0).round() as i64)
}
