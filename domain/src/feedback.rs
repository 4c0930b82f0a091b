//! What SES's feedback on an email does. A permanent bounce or a complaint suppresses the
//! address and ends the enrollment it came from; a delivery is counted; an open or a click is
//! counted once per email and remembered on the profile. The webhook reads the event, asks
//! [`decide`] and [`apply`], and writes what they say.

use chrono::{DateTime, Utc};

use crate::customer::{EmailStatus, Profile};
use crate::experiment::{Group, HOLDOUT};
use crate::metrics::{counter, CohortKey};
use crate::sequence::{Enrollment, ExitReason, Flow};

/// What an SES event reports, as far as winback acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// A permanent bounce (`complaint: false`) or a complaint.
    Suppress {
        complaint: bool,
    },
    Delivered,
    Opened,
    Clicked,
    /// Counted elsewhere or not acted on (sends, transient bounces, delays).
    Ignored,
}

impl Feedback {
    /// The feedback of an SES event of type `detail_type` (EventBridge's `detail-type`), with
    /// `bounce_type` its `bounce.bounceType` when it is a bounce: only a `Permanent` bounce
    /// suppresses.
    pub fn of(detail_type: &str, bounce_type: Option<&str>) -> Feedback {
        match detail_type {
            "Email Bounced" if bounce_type == Some("Permanent") => {
                Feedback::Suppress { complaint: false }
            }
            "Email Complaint Received" => Feedback::Suppress { complaint: true },
            "Email Delivered" => Feedback::Delivered,
            "Email Opened" => Feedback::Opened,
            "Email Clicked" => Feedback::Clicked,
            _ => Feedback::Ignored,
        }
    }
}

/// What to do about one piece of feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The counter of the email's cohort it adds one to.
    pub counter: &'static str,
    /// Counted once per email under this name (an email opened many times counts once).
    pub once_per_email: Option<&'static str>,
    /// The address is suppressed and the enrollment ends, for this reason.
    pub suppress: Option<&'static str>,
}

/// What `feedback` asks for; `None` for feedback winback does not act on.
pub fn decide(feedback: Feedback) -> Option<Decision> {
    let (counter, once_per_email, suppress) = match feedback {
        Feedback::Suppress { complaint: false } => {
            (counter::BOUNCED, None, Some("permanent bounce"))
        }
        Feedback::Suppress { complaint: true } => (counter::COMPLAINED, None, Some("complaint")),
        Feedback::Delivered => (counter::DELIVERED, None, None),
        Feedback::Opened => (counter::OPENED, Some("opened"), None),
        Feedback::Clicked => (counter::CLICKED, Some("clicked"), None),
        Feedback::Ignored => return None,
    };
    Some(Decision {
        counter,
        once_per_email,
        suppress,
    })
}

/// What one email counts once: its first open and its first click.
pub const ONCE_PER_EMAIL: [&str; 2] = ["opened", "clicked"];

/// The profile after `feedback` at `now`, or `None` when nothing changes: a suppression (once;
/// nothing lifts it), one more open, or one more click and its time. An erased customer's
/// tombstone records nothing. The flag says whether the address was suppressed just now.
pub fn apply(
    feedback: Feedback,
    stored: Option<Profile>,
    now: DateTime<Utc>,
) -> Option<(Profile, bool)> {
    let mut p = stored.filter(|p| !p.erased)?;
    match feedback {
        Feedback::Suppress { .. } => {
            if !p.email_status.moves_to(EmailStatus::Suppressed) {
                return None;
            }
            p.email_status = EmailStatus::Suppressed;
            Some((p, true))
        }
        Feedback::Opened => {
            p.emails_opened += 1;
            Some((p, false))
        }
        Feedback::Clicked => {
            p.emails_clicked += 1;
            p.last_clicked_at = Some(p.last_clicked_at.map_or(now, |c| c.max(now)));
            Some((p, false))
        }
        Feedback::Delivered | Feedback::Ignored => None,
    }
}

/// The enrollment a suppression ends, or `None` when there is none running.
pub fn end(stored: Option<Enrollment>, now: DateTime<Utc>) -> Option<Enrollment> {
    stored?.exit(ExitReason::Suppressed, now).ok()
}

/// The tags the sender put on an email, as SES reports them back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tags<'a> {
    pub variant: Option<&'a str>,
    pub group: Option<&'a str>,
    pub flow: Option<Flow>,
}

/// The cohort feedback on an email of `campaign` counts in: its tags, else the customer's
/// enrollment (`None`: no variant to count it under). The at-risk flow's emails carry `flow`,
/// so their counters are kept apart from the win-back's.
pub fn cohort(
    campaign: &str,
    tags: Tags<'_>,
    enrollment: Option<&Enrollment>,
) -> Option<CohortKey> {
    let variant = tags
        .variant
        .map(str::to_string)
        .or_else(|| enrollment.map(|e| e.variant.clone()))?;
    let group = match tags.group {
        Some("holdout") => Group::Holdout,
        Some(_) => Group::Treated,
        None => match (enrollment, variant.as_str()) {
            (_, HOLDOUT) => Group::Holdout,
            (Some(e), _) => e.group,
            _ => Group::Treated,
        },
    };
    let flow = tags
        .flow
        .unwrap_or_else(|| enrollment.map_or(Flow::WinBack, |e| e.flow));
    Some(CohortKey::of(campaign, flow, &variant, group))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, h, 0, 0).unwrap()
    }

    fn profile() -> Profile {
        let mut p = Profile::new("c1".parse().unwrap());
        p.email = Some("c1@example.com".into());
        p
    }

    #[test]
    fn only_a_permanent_bounce_or_a_complaint_suppresses() {
        assert_eq!(
            Feedback::of("Email Bounced", Some("Permanent")),
            Feedback::Suppress { complaint: false }
        );
        assert_eq!(
            Feedback::of("Email Bounced", Some("Transient")),
            Feedback::Ignored
        );
        assert_eq!(
            Feedback::of("Email Complaint Received", None),
            Feedback::Suppress { complaint: true }
        );
        assert_eq!(Feedback::of("Email Sent", None), Feedback::Ignored);
        assert_eq!(decide(Feedback::Ignored), None);
        let bounce = decide(Feedback::Suppress { complaint: false }).unwrap();
        assert_eq!(bounce.counter, counter::BOUNCED);
        assert_eq!(bounce.suppress, Some("permanent bounce"));
        let open = decide(Feedback::Opened).unwrap();
        assert_eq!(open.once_per_email, Some("opened"));
        assert_eq!(open.suppress, None);
    }

    #[test]
    fn a_suppression_happens_once_and_a_tombstone_records_nothing() {
        let fb = Feedback::Suppress { complaint: true };
        let (suppressed, newly) = apply(fb, Some(profile()), at(1)).unwrap();
        assert!(newly);
        assert_eq!(suppressed.email_status, EmailStatus::Suppressed);
        assert_eq!(
            apply(fb, Some(suppressed), at(2)),
            None,
            "already suppressed"
        );
        let mut tombstone = profile();
        tombstone.erase_personal_data();
        assert_eq!(apply(Feedback::Opened, Some(tombstone), at(1)), None);
        assert_eq!(apply(Feedback::Opened, None, at(1)), None);
        assert_eq!(apply(Feedback::Delivered, Some(profile()), at(1)), None);
    }

    #[test]
    fn a_click_keeps_the_latest_click_time() {
        let (p, _) = apply(Feedback::Clicked, Some(profile()), at(5)).unwrap();
        let (p, newly) = apply(Feedback::Clicked, Some(p), at(3)).unwrap();
        assert!(!newly);
        assert_eq!(p.emails_clicked, 2);
        assert_eq!(
            p.last_clicked_at,
            Some(at(5)),
            "a late report keeps the later click"
        );
    }

    #[test]
    fn the_cohort_comes_from_the_tags_before_the_enrollment() {
        let tags = Tags {
            variant: Some("amount-10"),
            group: Some("treated"),
            flow: Some(Flow::AtRisk),
        };
        let key = cohort("example", tags, None).unwrap();
        assert_eq!(
            key,
            CohortKey::of("example", Flow::AtRisk, "amount-10", Group::Treated)
        );
        assert_eq!(
            cohort("example", Tags::default(), None),
            None,
            "no variant to count under"
        );
        let holdout = Tags {
            variant: Some(HOLDOUT),
            ..Tags::default()
        };
        assert_eq!(
            cohort("example", holdout, None).unwrap(),
            CohortKey::of("example", Flow::WinBack, HOLDOUT, Group::Holdout)
        );
    }
}
