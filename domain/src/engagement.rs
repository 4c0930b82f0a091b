//! Kinds of inactivity and the early signals beyond the order history.
//!
//! **Segments** come from what is already stored: the opens and clicks SES reported on the
//! customer's profile, when they last clicked, the emails their latest enrollment sent, and the
//! order history's "buying less often" signal. Each is routed to the flow and copy that fits:
//! a customer who does not read the emails qualifies for the re-engagement flow (a
//! re-permission message, sunset sooner) instead of more offers, and enters it unless the
//! campaign's `[flows] priority` puts another first (see [`super::priority`]); the others keep
//! their flow and its templates see the segment (`segment`) to speak to it.
//!
//! **Early signals**: a visit to the terms or cancellation page (activity `page_view` with
//! `page_kind`) within `page_view_signal_days`, and a subscription renewal due within
//! `renewal_notice_days` (`renewal_due_at` in the profile), make an active customer at risk.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::customer::Profile;
use super::sequence::Flow;
/// The segment an enrollment records is the enrollment's vocabulary (in `sequence`).
pub use super::sequence::Segment;

/// An early signal that a customer is drifting away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskSignal {
    /// Quiet for most of their usual window.
    QuietLongerThanUsual,
    /// Latest gap between orders much longer than their usual gap.
    FrequencyFalling,
    /// Recent orders much smaller than earlier ones.
    OrderValueFalling,
    /// Visited the terms or cancellation page lately (activity `page_view`).
    CancellationPageViewed,
    /// Their subscription renews soon (`renewal_due_at`).
    RenewalDue,
}

/// Emails sent without an open before a customer counts as not reading them (one unopened email
/// says little).
pub const NEVER_OPENED_AFTER: usize = 2;

/// The customer's segment. `emails_sent`: the emails their latest enrollment (any flow) sent;
/// `signals`: their lapse assessment's early signals. `None` when nothing sets them apart (never
/// emailed and buying as usual, or clicking and buying).
pub fn segment(profile: &Profile, emails_sent: usize, signals: &[RiskSignal]) -> Option<Segment> {
    let clicked_since_order = profile
        .last_clicked_at
        .is_some_and(|c| profile.last_order_at.is_none_or(|o| c > o));
    if emails_sent >= NEVER_OPENED_AFTER
        && profile.emails_opened == 0
        && profile.emails_clicked == 0
    {
        Some(Segment::NeverOpened)
    } else if profile.emails_clicked > 0 && clicked_since_order {
        Some(Segment::ClickedNotBought)
    } else if profile.emails_opened > 0 && profile.emails_clicked == 0 {
        Some(Segment::OpenedNotClicked)
    } else if signals.contains(&RiskSignal::FrequencyFalling) {
        Some(Segment::BuysLessOften)
    } else {
        None
    }
}

/// Whether an enrollment that ends without a reaction keeps the address (closes) rather than
/// sunsetting it: who chose "fewer emails" keeps it (see [`super::sequence::sunsets_address`]),
/// and so does who clicked the re-engagement flow's re-permission email ("yes, keep me").
pub fn keeps_address(profile: &Profile, enrollment: &super::sequence::Enrollment) -> bool {
    let reconfirmed = enrollment.flow == Flow::ReEngagement
        && profile
            .last_clicked_at
            .is_some_and(|c| c >= enrollment.enrolled_at);
    reconfirmed || !super::sequence::sunsets_address(profile.email_status)
}

/// Which page of the shop a `page_view` activity was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// The terms (of a subscription, of sale).
    Terms,
    /// How to cancel, or the cancellation form.
    Cancellation,
    /// Any other page: recorded as activity, no signal.
    Other,
}

impl PageKind {
    pub const NAMES: &'static str = "terms, cancellation or other";

    pub fn parse(s: &str) -> Option<PageKind> {
        match s {
            "terms" => Some(PageKind::Terms),
            "cancellation" => Some(PageKind::Cancellation),
            "other" => Some(PageKind::Other),
            _ => None,
        }
    }

    /// Whether a visit is an early signal of leaving.
    pub fn is_signal(self) -> bool {
        matches!(self, PageKind::Terms | PageKind::Cancellation)
    }
}

/// A renewal time as the shop or an import sends it: an RFC 3339 time, or a date (its start, UTC).
pub fn parse_renewal(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// Windows of the early signals (`[lapse]` in the campaign file).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalWindows {
    /// A terms or cancellation page visit counts this many days.
    pub page_view_days: f64,
    /// A renewal due within this many days is a signal.
    pub renewal_notice_days: f64,
}

fn days(d: f64) -> Duration {
    Duration::seconds((d * 86_400.0).round() as i64)
}

/// Early signals beyond the order history at `now`: a terms or cancellation page visited within
/// the window (and after the last order: an order since answers it), a renewal due within the
/// notice (not past).
pub fn early_signals(profile: &Profile, w: &SignalWindows, now: DateTime<Utc>) -> Vec<RiskSignal> {
    let mut signals = Vec::new();
    if let Some(at) = profile.signal_page_viewed_at {
        let after_order = profile.last_order_at.is_none_or(|o| at > o);
        if after_order && at <= now && now < at + days(w.page_view_days) {
            signals.push(RiskSignal::CancellationPageViewed);
        }
    }
    if let Some(due) = profile.renewal_due_at {
        if now <= due && due <= now + days(w.renewal_notice_days) {
            signals.push(RiskSignal::RenewalDue);
        }
    }
    signals
}

/// When the early signals would next make this customer at risk with nothing else happening: the
/// start of the renewal notice, when that is still ahead.
pub fn next_signal_at(
    profile: &Profile,
    w: &SignalWindows,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    profile
        .renewal_due_at
        .map(|due| due - days(w.renewal_notice_days))
        .filter(|t| *t > now)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
    }

    fn buyer() -> Profile {
        let mut p = Profile::new("c1".parse().unwrap());
        p.last_order_at = Some(at(1));
        p
    }

    const W: SignalWindows = SignalWindows {
        page_view_days: 30.0,
        renewal_notice_days: 14.0,
    };

    #[test]
    fn each_kind_of_inactivity_is_told_apart() {
        let mut p = buyer();
        // Never emailed, buying as usual: nothing to set them apart.
        assert_eq!(segment(&p, 0, &[]), None);
        // Emailed, never opened: one email says little, two say they do not read them.
        assert_eq!(segment(&p, 1, &[]), None);
        assert_eq!(segment(&p, 2, &[]), Some(Segment::NeverOpened));
        // Opened, never clicked.
        p.emails_opened = 3;
        assert_eq!(segment(&p, 2, &[]), Some(Segment::OpenedNotClicked));
        // Clicked after the last order, no order since.
        p.emails_clicked = 1;
        p.last_clicked_at = Some(at(5));
        assert_eq!(segment(&p, 2, &[]), Some(Segment::ClickedNotBought));
        // Clicked, then ordered: the click was answered; buying less often shows.
        p.last_order_at = Some(at(9));
        assert_eq!(segment(&p, 2, &[]), None);
        assert_eq!(
            segment(&p, 2, &[RiskSignal::FrequencyFalling]),
            Some(Segment::BuysLessOften)
        );
    }

    #[test]
    fn a_cancellation_page_visit_is_a_signal_until_the_window_passes_or_an_order_answers_it() {
        let mut p = buyer();
        p.signal_page_viewed_at = Some(at(10));
        assert_eq!(early_signals(&p, &W, at(9)), vec![]);
        assert_eq!(
            early_signals(&p, &W, at(11)),
            vec![RiskSignal::CancellationPageViewed]
        );
        assert_eq!(early_signals(&p, &W, at(10) + Duration::days(31)), vec![]);
        p.last_order_at = Some(at(12));
        assert_eq!(early_signals(&p, &W, at(13)), vec![]);
    }

    #[test]
    fn a_renewal_is_a_signal_within_its_notice_and_the_notice_is_the_next_look() {
        let mut p = buyer();
        p.renewal_due_at = Some(at(30));
        assert_eq!(early_signals(&p, &W, at(10)), vec![]);
        assert_eq!(next_signal_at(&p, &W, at(10)), Some(at(16)));
        assert_eq!(early_signals(&p, &W, at(16)), vec![RiskSignal::RenewalDue]);
        assert_eq!(next_signal_at(&p, &W, at(16)), None);
        // Past the renewal: no signal.
        assert_eq!(early_signals(&p, &W, at(31)), vec![]);
    }
}
