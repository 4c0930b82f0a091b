//! Tests of `domain::due` that need the shipped example campaign (which the domain crate
//! cannot build: the campaign file is parsed here, in `shared`).

use crate::campaign::testing::example_campaign;
use crate::domain::celebration::Birthday;
use crate::domain::customer::Profile;
use crate::domain::due::*;
use chrono::{DateTime, Utc};
use chrono::{Duration, TimeZone};

fn customer(last: DateTime<Utc>) -> Profile {
    let mut p = Profile::new("c1".parse().unwrap());
    p.record_order(super::order_at(last, 1000));
    p
}

#[test]
fn without_other_flows_the_next_look_is_the_lapse_moment_or_now_once_lapsed() {
    let c = example_campaign();
    let last = Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap();
    let p = customer(last);
    let early = last + Duration::days(1);
    let due = next_due(&p, &c.lapse, Watch::LAPSE_ONLY, early).unwrap();
    assert!(due > early);
    assert_eq!(next_due(&p, &c.lapse, Watch::LAPSE_ONLY, due), Some(due));
    assert_eq!(
        next_due(
            &Profile::new("c2".parse().unwrap()),
            &c.lapse,
            Watch::LAPSE_ONLY,
            early
        ),
        None
    );
}

#[test]
fn a_celebration_flow_looks_on_the_birthday_and_now_when_it_is_today() {
    let c = example_campaign();
    let last = Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap();
    let mut p = customer(last);
    p.birthday = Some(Birthday::parse("--01-20").unwrap());
    let watch = Watch {
        celebration: true,
        ..Watch::LAPSE_ONLY
    };
    let before = last + Duration::days(2);
    let birthday = Utc.with_ymd_and_hms(2025, 1, 20, 0, 0, 0).unwrap();
    assert_eq!(next_due(&p, &c.lapse, watch, before), Some(birthday));
    let on_the_day = birthday + Duration::hours(9);
    assert_eq!(next_due(&p, &c.lapse, watch, on_the_day), Some(on_the_day));
    assert!(after_today(&p, &c.lapse, watch, on_the_day).unwrap() > on_the_day);
}
