//! Tests of `domain::engagement` that need the shipped example campaign (which the domain crate
//! cannot build: the campaign file is parsed here, in `shared`).

use crate::domain::customer::Profile;
use crate::domain::engagement::*;
use crate::domain::sequence::Flow;
use chrono::TimeZone;
use chrono::{DateTime, Utc};

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
}

fn buyer() -> Profile {
    let mut p = Profile::new("c1".parse().unwrap());
    p.last_order_at = Some(at(1));
    p
}

#[test]
fn a_click_on_the_re_permission_email_keeps_the_address() {
    use crate::domain::experiment::Group;
    use crate::domain::sequence::Enrollment;
    let c = crate::campaign::testing::example_campaign();
    let mut e = Enrollment::start(&"c1".parse().unwrap(), &c, 1, Group::Treated, "a", at(10));
    e.flow = Flow::ReEngagement;
    let mut p = buyer();
    assert!(!keeps_address(&p, &e));
    p.last_clicked_at = Some(at(5));
    assert!(
        !keeps_address(&p, &e),
        "a click before the flow is no answer"
    );
    p.last_clicked_at = Some(at(11));
    assert!(keeps_address(&p, &e));
    e.flow = Flow::WinBack;
    assert!(
        !keeps_address(&p, &e),
        "in the win-back flow a click is no answer"
    );
    p.email_status = crate::domain::customer::EmailStatus::FewerEmails;
    assert!(keeps_address(&p, &e));
}
