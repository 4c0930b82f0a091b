//! A person in the loop: when a survey answer needs a person (a detractor, a bad experience), a
//! follow-up opens on the customer, a person is told, and the customer's emails pause until the
//! person closes it or `pause_days` pass, whichever comes first. The follow-up stays open (listed
//! for the team) after the pause lapses: the emails resume, the call is still owed.

use chrono::{DateTime, Duration, Utc};

/// The case a profile records is its own vocabulary (in `customer`): this module keeps the
/// rules over it.
pub use super::customer::FollowUpCase;
use super::customer::Profile;
use super::money::Money;
use super::survey::{FollowUp, Reason};

/// What closing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// It was open and is now closed.
    Now,
    /// It was closed already (a second click, a replay): nothing changes.
    Already,
    /// There is no follow-up on this customer.
    NoneOpen,
}

/// Opens a follow-up on `profile` (replacing a closed one, keeping an open one's start so a
/// second answer does not stretch the pause). Returns whether a new one was opened.
pub fn open(
    profile: &mut Profile,
    campaign: &str,
    why: FollowUp,
    nps: Option<u8>,
    reason: Option<Reason>,
    now: DateTime<Utc>,
) -> bool {
    if let Some(case) = profile.follow_up.as_mut().filter(|c| c.is_open()) {
        case.nps = nps.or(case.nps);
        case.reason = reason.or(case.reason);
        return false;
    }
    profile.follow_up = Some(FollowUpCase {
        campaign: campaign.to_string(),
        why,
        nps,
        reason,
        opened_at: now,
        closed_at: None,
    });
    true
}

/// Closes the customer's follow-up at `now`.
pub fn close(profile: &mut Profile, now: DateTime<Utc>) -> Closed {
    match profile.follow_up.as_mut() {
        None => Closed::NoneOpen,
        Some(c) if !c.is_open() => Closed::Already,
        Some(c) => {
            c.closed_at = Some(now);
            Closed::Now
        }
    }
}

/// Until when the customer's emails are held for an open follow-up, if they are at `now`: the
/// follow-up's start plus `pause_days`. `None` once it is closed or the pause has passed.
pub fn holds_until(
    profile: &Profile,
    pause_days: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let case = profile.follow_up.as_ref().filter(|c| c.is_open())?;
    let until = case.opened_at + Duration::days(i64::from(pause_days));
    (now < until).then_some(until)
}

/// The facts a person needs to act, and nothing more personal than the customer id.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice<'a> {
    pub customer_id: &'a str,
    pub case: &'a FollowUpCase,
    pub last_order_at: Option<DateTime<Utc>>,
    pub last_order_amount: Option<Money>,
    pub lifetime_value: Money,
    pub currency: &'a str,
    pub order_count: u32,
    pub pause_days: u32,
    /// The signed link to the customer's record (and the button that closes the follow-up).
    pub record_url: &'a str,
}

impl Notice<'_> {
    /// The notification's subject (SNS allows 100 characters).
    pub fn subject(&self) -> String {
        let s = format!(
            "Follow-up needed: customer {}, {}",
            self.customer_id,
            match self.case.why {
                FollowUp::Detractor => "detractor",
                FollowUp::BadExperience => "bad experience",
            }
        );
        s.chars().take(100).collect()
    }

    /// The notification's plain-text body.
    pub fn body(&self) -> String {
        let answer = match (self.case.nps, self.case.reason) {
            (Some(score), _) => format!("NPS score: {score} of 10"),
            (None, Some(r)) => format!("Reason given: {}", r.as_str()),
            (None, None) => "Answer: none recorded".to_string(),
        };
        let last_order = match (self.last_order_at, self.last_order_amount) {
            (Some(at), Some(amount)) => {
                format!("{} ({} {})", at.format("%Y-%m-%d"), amount, self.currency)
            }
            (Some(at), None) => at.format("%Y-%m-%d").to_string(),
            _ => "none".to_string(),
        };
        let resume = self.case.opened_at + Duration::days(i64::from(self.pause_days));
        format!(
            "A customer needs a person to get in touch.\n\n\
             Customer id: {id}\n\
             Flow: {flow}\n\
             Why: {why}\n\
             {answer}\n\
             Last order: {last_order}\n\
             Orders: {orders}\n\
             Lifetime value: {ltv} {cur}\n\
             Opened: {opened}\n\n\
             Their emails are paused until you close this follow-up, or until {resume} at the latest.\n\n\
             Customer record (and the button that closes the follow-up):\n{url}\n\n\
             Or from a terminal: winback follow-up close {id}\n",
            id = self.customer_id,
            flow = self.case.campaign,
            why = why_text(self.case.why),
            orders = self.order_count,
            ltv = self.lifetime_value,
            cur = self.currency,
            opened = self.case.opened_at.format("%Y-%m-%d %H:%M UTC"),
            resume = resume.format("%Y-%m-%d %H:%M UTC"),
            url = self.record_url,
        )
    }
}

/// Why, in words a person reads.
pub fn why_text(why: FollowUp) -> &'static str {
    match why {
        FollowUp::Detractor => "a detractor (NPS 0-6): call them",
        FollowUp::BadExperience => "reported a bad experience: apologise personally",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
    }

    #[test]
    fn an_open_follow_up_holds_emails_until_closed_or_the_pause_passes() {
        let mut p = Profile::new("c1".parse().unwrap());
        assert_eq!(holds_until(&p, 14, t(1, 0)), None);
        assert!(open(
            &mut p,
            "example",
            FollowUp::Detractor,
            Some(3),
            None,
            t(1, 9)
        ));
        assert_eq!(holds_until(&p, 14, t(2, 0)), Some(t(15, 9)));
        assert_eq!(holds_until(&p, 14, t(15, 9)), None, "the pause has passed");
        assert_eq!(close(&mut p, t(3, 0)), Closed::Now);
        assert_eq!(holds_until(&p, 14, t(3, 1)), None);
        assert_eq!(close(&mut p, t(4, 0)), Closed::Already);
        assert_eq!(
            close(&mut Profile::new("x".parse().unwrap()), t(4, 0)),
            Closed::NoneOpen
        );
    }

    #[test]
    fn a_second_answer_keeps_the_open_follow_up_and_its_start() {
        let mut p = Profile::new("c1".parse().unwrap());
        open(
            &mut p,
            "example",
            FollowUp::BadExperience,
            None,
            Some(Reason::BadExperience),
            t(1, 9),
        );
        assert!(!open(
            &mut p,
            "example",
            FollowUp::Detractor,
            Some(2),
            None,
            t(5, 9)
        ));
        let c = p.follow_up.as_ref().unwrap();
        assert_eq!(
            (c.opened_at, c.nps, c.reason),
            (t(1, 9), Some(2), Some(Reason::BadExperience))
        );
        close(&mut p, t(6, 0));
        assert!(open(
            &mut p,
            "example",
            FollowUp::Detractor,
            Some(1),
            None,
            t(7, 0)
        ));
        assert_eq!(holds_until(&p, 14, t(8, 0)), Some(t(21, 0)));
    }

    #[test]
    fn the_notice_names_what_a_person_needs_and_no_personal_data() {
        let mut p = Profile::new("c-42".parse().unwrap());
        p.email = Some("ana@example.com".into());
        p.first_name = Some("Ana".into());
        open(
            &mut p,
            "example-at-risk",
            FollowUp::Detractor,
            Some(2),
            None,
            t(1, 9),
        );
        let n = Notice {
            customer_id: &p.customer_id,
            case: p.follow_up.as_ref().unwrap(),
            last_order_at: Some(t(1, 8) - Duration::days(70)),
            last_order_amount: Some(Money(4_250)),
            lifetime_value: Money(31_000),
            currency: "EUR",
            order_count: 6,
            pause_days: 14,
            record_url: "https://hooks.example.com/v1/follow-ups/c-42?t=abc",
        };
        let body = n.body();
        for want in [
            "Customer id: c-42",
            "Flow: example-at-risk",
            "NPS score: 2 of 10",
            "Last order: 2025-12-21 (42.50 EUR)",
            "Lifetime value: 310.00 EUR",
            "until 2026-03-15 09:00 UTC",
            "https://hooks.example.com/v1/follow-ups/c-42?t=abc",
            "winback follow-up close c-42",
        ] {
            assert!(body.contains(want), "{want} missing in:\n{body}");
        }
        assert!(!body.contains("ana@") && !body.contains("Ana"));
        assert_eq!(n.subject(), "Follow-up needed: customer c-42, detractor");
    }
}
