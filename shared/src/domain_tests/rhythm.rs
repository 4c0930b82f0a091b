//! The customer's own rhythm under the shipped example campaign, through `enroll::decide` (what
//! the scheduler and `winback plan` both run), at fixed dates.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::campaign::testing::example_campaign;
use crate::domain::customer::Profile;
use crate::domain::enroll::*;
use crate::domain::lapse::{Basis, LapseState, RiskSignal};
use crate::domain::sequence::Flow;

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
}

fn buyer(id: &str, category: &str, orders: &[(DateTime<Utc>, i64)]) -> Profile {
    let mut p = Profile::new(id.parse().unwrap());
    p.email = Some(format!("{id}@example.com"));
    for (at, amount) in orders {
        let mut o = super::order_at(*at, *amount);
        o.category = Some(category.to_string());
        p.record_order(o);
    }
    p
}

/// Orders every `gap` days, the last at `last`.
fn every(gap: i64, count: i64, last: DateTime<Utc>, amount: i64) -> Vec<(DateTime<Utc>, i64)> {
    (0..count)
        .rev()
        .map(|k| (last - Duration::days(gap * k), amount))
        .collect()
}

fn decide_at(p: &Profile, now: DateTime<Utc>) -> Evaluation {
    let c = example_campaign();
    let program = c.program();
    decide(
        &Facts {
            profile: p,
            latest: Some(None),
            assessment: None,
        },
        &c,
        &program,
        now,
    )
}

#[test]
fn a_monthly_buyer_quiet_for_almost_five_of_their_gaps_has_lapsed() {
    // The customer: 24 monthly coffee orders, quiet for 143 days (the model alone said
    // "P(active) 0.94, P(order in 90 d) 0.85").
    let last = day(2025, 6, 1);
    let p = buyer("coffee", "coffee", &every(30, 24, last, 4000));
    let e = decide_at(&p, last + Duration::days(143));
    assert!(
        matches!(e.assessment.state, LapseState::Lapsed { .. }),
        "{:?}",
        e.assessment.state
    );
    assert_eq!(e.flow, Some(Flow::WinBack));
    let o = e.assessment.outlook.expect("the outlook");
    assert_eq!(o.basis, Basis::Regular);
    assert!(o.p_active < 0.1 && o.p_order < 0.1, "{o:?}");
    // They lapsed after missing about two gaps, not five.
    let LapseState::Lapsed { since } = e.assessment.state else {
        unreachable!()
    };
    let quiet = (since - last).num_days();
    assert!((60..=70).contains(&quiet), "{quiet}");
    // Inside their rhythm they are active, with a high chance of an order.
    let e = decide_at(&p, last + Duration::days(27));
    assert!(matches!(e.assessment.state, LapseState::Active { .. }));
    assert!(e.assessment.outlook.unwrap().p_order > 0.8);
}

#[test]
fn christmas_decorations_against_groceries() {
    // The seeds' first example: a customer who buys Christmas decorations every December is
    // naturally quiet longer than one who buys groceries every week.
    let christmas = buyer(
        "decorations",
        "christmas",
        &[
            (day(2021, 12, 12), 9000),
            (day(2022, 12, 9), 8000),
            (day(2023, 12, 14), 9500),
            (day(2024, 12, 11), 9000),
        ],
    );
    let groceries = buyer(
        "groceries",
        "groceries",
        &every(7, 20, day(2025, 2, 1), 3000),
    );
    let state = |p: &Profile, now| decide_at(p, now).assessment.state;
    // In March the Christmas buyer is neither lapsed nor at risk; the grocery buyer, quiet for
    // six weeks, has lapsed.
    let march = day(2025, 3, 15);
    assert!(matches!(
        state(&christmas, march),
        LapseState::Active { .. }
    ));
    assert!(matches!(
        state(&groceries, march),
        LapseState::Lapsed { .. }
    ));
    let e = decide_at(&christmas, march);
    assert_eq!(e.assessment.outlook.unwrap().basis, Basis::Seasonal);
    assert_eq!(e.flow, None);
    // Still active in October; at risk in early November with no order, and the at-risk flow
    // takes them; lapsed once Christmas passed without one.
    assert!(matches!(
        state(&christmas, day(2025, 10, 20)),
        LapseState::Active { .. }
    ));
    let november = decide_at(&christmas, day(2025, 11, 10));
    match &november.assessment.state {
        LapseState::AtRisk { signals, .. } => {
            assert!(signals.contains(&RiskSignal::QuietLongerThanUsual))
        }
        other => panic!("expected at risk, got {other:?}"),
    }
    assert_eq!(november.flow, Some(Flow::AtRisk));
    assert!(matches!(
        state(&christmas, day(2026, 1, 20)),
        LapseState::Lapsed { .. }
    ));
    // The scheduler looks at them again when the at-risk window opens, in early November.
    let NextAction::Wait { due: Some(due), .. } = decide_at(&christmas, march).next else {
        panic!("an active customer waits")
    };
    assert_eq!(due.date_naive(), day(2025, 11, 6).date_naive());
}

#[test]
fn a_one_order_christmas_customer_is_judged_by_the_category_s_days() {
    // Under the model alone one order lapsed at the 21-day floor; `christmas = 330` sets it.
    let p = buyer("once", "christmas", &[(day(2024, 12, 10), 5000)]);
    let e = decide_at(&p, day(2025, 3, 15));
    assert!(
        matches!(e.assessment.state, LapseState::Active { .. }),
        "{:?}",
        e.assessment.state
    );
    assert_eq!(e.assessment.outlook.unwrap().basis, Basis::Category);
    assert!(matches!(
        decide_at(&p, day(2025, 11, 10)).assessment.state,
        LapseState::Lapsed { .. }
    ));
    // A one-order customer without such a category is still judged by the model.
    let q = buyer("plain", "unlisted", &[(day(2024, 12, 10), 5000)]);
    let e = decide_at(&q, day(2025, 3, 15));
    assert_eq!(e.assessment.outlook.unwrap().basis, Basis::Model);
    assert!(matches!(e.assessment.state, LapseState::Lapsed { .. }));
}

#[test]
fn a_monthly_buyer_with_one_smaller_order_27_days_ago_is_not_at_risk() {
    // The case: enrolled with a discount because one order was smaller than usual.
    let last = day(2025, 6, 1);
    let mut orders = every(30, 12, last, 4000);
    orders[11].1 = 1500;
    let p = buyer("smaller", "coffee", &orders);
    let e = decide_at(&p, last + Duration::days(27));
    assert!(
        matches!(e.assessment.state, LapseState::Active { .. }),
        "{:?}",
        e.assessment.state
    );
    assert_eq!(e.flow, None);
    // Two orders in a row at under half the usual is a trend: at risk, buying smaller.
    orders[10].1 = 1500;
    let p = buyer("smaller", "coffee", &orders);
    match decide_at(&p, last + Duration::days(27)).assessment.state {
        LapseState::AtRisk { signals, .. } => {
            assert_eq!(signals, vec![RiskSignal::OrderValueFalling])
        }
        other => panic!("expected at risk, got {other:?}"),
    }
}
