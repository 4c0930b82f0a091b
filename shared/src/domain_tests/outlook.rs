//! Tests of `domain::outlook` that need the shipped example campaign (which the domain crate
//! cannot build: the campaign file is parsed here, in `shared`).

use crate::campaign::testing::example_campaign;
use crate::domain::customer::Profile;
use crate::domain::lapse::{assess, LapseState};
use crate::domain::outlook::*;
use chrono::Utc;
use chrono::{Duration, TimeZone};

fn buyer(amounts: &[i64], gap: i64) -> Profile {
    let mut p = Profile::new("c".parse().unwrap());
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for (i, a) in amounts.iter().enumerate() {
        p.record_order(super::order_at(start + Duration::days(gap * i as i64), *a));
    }
    p
}

#[test]
fn a_steady_buyer_a_little_late_returns_alone_and_a_fading_one_does_not() {
    let c = example_campaign();
    let steady = buyer(&[3000; 6], 14);
    let quiet = |p: &Profile, days: f64| {
        p.last_order_at.unwrap() + Duration::seconds((days * 86_400.0) as i64)
    };
    // Quiet days until they lapse under the campaign's model.
    let last = steady.last_order_at.unwrap();
    let t = assess(&steady, &c.lapse, last).threshold.unwrap().days;
    // Quiet for 90% of that (past the at-risk moment their own rhythm sets, at about 85%), and
    // nothing else wrong.
    let at = quiet(&steady, t * 0.9);
    assert!(matches!(
        assess(&steady, &c.lapse, at).state,
        LapseState::AtRisk { .. }
    ));
    assert!(likely_to_return_alone(&steady, &c.lapse, at));
    // Lapsed: not by themselves.
    assert!(!likely_to_return_alone(
        &steady,
        &c.lapse,
        quiet(&steady, t + 1.0)
    ));
    // Their last gap already twice the usual: slipping away.
    let slowing = {
        let mut p = buyer(&[3000; 5], 14);
        p.record_order(super::order_at(
            p.last_order_at.unwrap() + Duration::days(40),
            3000,
        ));
        p
    };
    assert!(!likely_to_return_alone(
        &slowing,
        &c.lapse,
        quiet(&slowing, 5.0)
    ));
    // Spending far less lately: not likely to come back on their own.
    let fading = buyer(&[5000, 5000, 5000, 5000, 1000, 1000], 14);
    let at_fading = quiet(&fading, t * 0.8);
    assert!(!likely_to_return_alone(&fading, &c.lapse, at_fading));
    // One or two orders: no rhythm to trust.
    let new = buyer(&[3000, 3000], 14);
    assert!(!likely_to_return_alone(&new, &c.lapse, quiet(&new, 20.0)));
}
