//! Tests of `domain::send` that need the shipped example campaign (which the domain crate
//! cannot build: the campaign file is parsed here, in `shared`).

use crate::campaign::testing::example_campaign;
use crate::campaign::CampaignConfig;
use crate::domain::customer::{EmailStatus, Profile};
use crate::domain::experiment::Group;
use crate::domain::send::*;
use crate::domain::sequence::{Enrollment, ExitReason};
use chrono::Utc;
use chrono::{DateTime, TimeZone};

fn facts<'a>(e: &'a Enrollment, p: Option<Option<&'a Profile>>) -> Facts<'a> {
    Facts {
        step: 1,
        enrollment_id: &e.id,
        enrollment: Some(e),
        profile: p,
        listed: None,
        lapse: None,
    }
}

/// Customer c1's treated enrollment in the `percent-15` variant, started at `now`.
fn started(c: &CampaignConfig, now: DateTime<Utc>) -> Enrollment {
    Enrollment::start(
        &"c1".parse().unwrap(),
        c,
        1,
        Group::Treated,
        "percent-15",
        now,
    )
}

#[test]
fn the_decision_asks_for_each_read_only_when_it_needs_it_then_sends() {
    let c = example_campaign();
    // Noon UTC on a weekday, outside the example's quiet hours, whatever the day it runs.
    let now = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap();
    let e = started(&c, now);
    let decide = |f: &Facts<'_>| decide(f, &c, &c.eligibility, &c.default_time_zone, now);
    let mut f = facts(&e, None);
    assert_eq!(decide(&f), NextAction::Look(Lookup::Profile));
    f.profile = Some(None);
    assert_eq!(decide(&f), NextAction::Skip { why: "no_profile" });
    let mut p = Profile::new("c1".parse().unwrap());
    p.email = Some("ada@example.com".into());
    f.profile = Some(Some(&p));
    assert_eq!(decide(&f), NextAction::Look(Lookup::SuppressionList));
    f.listed = Some(true);
    assert_eq!(
        decide(&f),
        NextAction::End {
            reason: ExitReason::Suppressed,
            why: "account_suppression_list",
            suppress: true
        }
    );
    f.listed = Some(false);
    assert!(matches!(decide(&f), NextAction::Send { .. }));
    f.step = 2;
    assert_eq!(
        decide(&f),
        NextAction::Skip {
            why: "not_the_next_step"
        }
    );
}

#[test]
fn an_unmailable_customer_ends_the_enrollment_with_the_reason() {
    let c = example_campaign();
    let now = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap();
    let e = started(&c, now);
    let mut p = Profile::new("c1".parse().unwrap());
    p.email = Some("ada@example.com".into());
    p.email_status = EmailStatus::Unsubscribed;
    let f = facts(&e, Some(Some(&p)));
    assert_eq!(
        decide(&f, &c, &c.eligibility, &c.default_time_zone, now),
        NextAction::End {
            reason: ExitReason::Unsubscribed,
            why: "not_mailable",
            suppress: false
        }
    );
}

#[test]
fn a_customer_on_fewer_emails_gets_the_email_written_for_them_offering_no_fewer_emails() {
    use crate::domain::sequence::Flow;
    use crate::domain::survey::{Reason, Resolved};
    let c = example_campaign();
    let now = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap();
    let e = started(&c, now);
    let mut p = Profile::new("c1".parse().unwrap());
    let goodbye = c.steps[2].template.as_str();
    assert_eq!(goodbye, "goodbye");
    let letter =
        |e: &Enrollment, p: &Profile, step, own| email_for(e, p, step, own, &c.eligibility);
    assert_eq!(
        letter(&e, &p, 3, goodbye),
        Letter {
            template: "goodbye",
            offer_fewer_emails: true
        }
    );
    p.email_status = EmailStatus::FewerEmails;
    assert_eq!(
        letter(&e, &p, 3, goodbye),
        Letter {
            template: "rarely",
            offer_fewer_emails: false
        }
    );
    // Another flow's step keeps its own template, still without "fewer emails".
    let mut at_risk = e.clone();
    at_risk.flow = Flow::AtRisk;
    assert_eq!(
        letter(&at_risk, &p, 3, "nudge"),
        Letter {
            template: "nudge",
            offer_fewer_emails: false
        }
    );
    // A campaign without the key sends the last step's own template.
    let mut without = c.eligibility.clone();
    without.fewer_emails_template = None;
    assert_eq!(email_for(&e, &p, 3, goodbye, &without).template, "goodbye");
    // The first email after a fixed reason is the "we fixed it" email, whoever gets it.
    let mut resolved = e.clone();
    resolved.resolved = Some(Resolved {
        reason: Reason::Quality,
        note: "fixed".into(),
    });
    assert_eq!(letter(&resolved, &p, 1, "offer").template, "fixed");
    p.email_status = EmailStatus::Subscribed;
    assert_eq!(letter(&resolved, &p, 1, "offer").template, "fixed");
    assert_eq!(letter(&resolved, &p, 2, "missing").template, "missing");
}
