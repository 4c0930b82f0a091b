//! Which flow a customer enters when they qualify for more than one.
//!
//! A customer is in at most one flow at a time. When the scheduler looks at them they may
//! qualify for several: the lapse rules put them in the win-back flow (lapsed) or the at-risk
//! flow (at risk, when the campaign has one); a customer who does not read the emails also
//! qualifies for the re-engagement flow; and on their birthday or first-order anniversary
//! (whatever their lapse state) for the celebration flow. The campaign's `[flows] priority`
//! ranks the flows; those it leaves out follow in the default order, [`DEFAULT`]: re-engagement
//! (who does not read email gets a re-permission message, not more offers), win-back, at-risk,
//! celebration.

use super::engagement::Segment;
use super::sequence::Flow;

/// The order used when the campaign sets none, and for the flows its list leaves out.
pub const DEFAULT: [Flow; 4] = [
    Flow::ReEngagement,
    Flow::WinBack,
    Flow::AtRisk,
    Flow::Celebration,
];

/// What decides which flows a customer qualifies for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qualification {
    /// The flow the lapse rules put them in: the win-back flow when lapsed, the at-risk flow
    /// when at risk and the campaign has one; `None` when active (or at risk and only watched).
    pub lapse_flow: Option<Flow>,
    /// Their kind of inactivity ([`super::engagement::segment`]).
    pub segment: Option<Segment>,
    /// The campaign has a re-engagement flow.
    pub has_re_engagement: bool,
    /// The campaign has a celebration flow and their birthday or anniversary is today.
    pub occasion_today: bool,
}

/// The flows a customer qualifies for, in no particular order.
pub fn qualifying(q: &Qualification) -> Vec<Flow> {
    let mut flows = Vec::new();
    if let Some(flow) = q.lapse_flow {
        flows.push(flow);
        if q.has_re_engagement && q.segment == Some(Segment::NeverOpened) {
            flows.push(Flow::ReEngagement);
        }
    }
    if q.occasion_today {
        flows.push(Flow::Celebration);
    }
    flows
}

/// The flow a customer enters: the first of `priority`, then of [`DEFAULT`], they qualify for.
pub fn choose(q: &Qualification, priority: &[Flow]) -> Option<Flow> {
    let flows = qualifying(q);
    priority
        .iter()
        .chain(DEFAULT.iter())
        .find(|f| flows.contains(f))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(
        lapse_flow: Option<Flow>,
        segment: Option<Segment>,
        occasion_today: bool,
    ) -> Qualification {
        Qualification {
            lapse_flow,
            segment,
            has_re_engagement: true,
            occasion_today,
        }
    }

    #[test]
    fn by_default_who_does_not_read_email_gets_re_engagement_and_a_lapse_beats_an_occasion() {
        let never = Some(Segment::NeverOpened);
        for flow in [Flow::WinBack, Flow::AtRisk] {
            assert_eq!(
                choose(&q(Some(flow), never, true), &[]),
                Some(Flow::ReEngagement)
            );
            assert_eq!(choose(&q(Some(flow), None, true), &[]), Some(flow));
            for s in [
                Segment::OpenedNotClicked,
                Segment::ClickedNotBought,
                Segment::BuysLessOften,
            ] {
                assert_eq!(choose(&q(Some(flow), Some(s), false), &[]), Some(flow));
            }
            // Without a re-engagement flow they keep theirs.
            let mut without = q(Some(flow), never, false);
            without.has_re_engagement = false;
            assert_eq!(choose(&without, &[]), Some(flow));
        }
        // Active (or only watched): their day, or nothing.
        assert_eq!(choose(&q(None, never, true), &[]), Some(Flow::Celebration));
        assert_eq!(choose(&q(None, never, false), &[]), None);
    }

    #[test]
    fn the_campaigns_priority_decides_between_the_flows_a_customer_qualifies_for() {
        let lapsed_deaf_birthday = q(Some(Flow::WinBack), Some(Segment::NeverOpened), true);
        assert_eq!(
            qualifying(&lapsed_deaf_birthday),
            vec![Flow::WinBack, Flow::ReEngagement, Flow::Celebration]
        );
        let first = |p: &[Flow]| choose(&lapsed_deaf_birthday, p);
        assert_eq!(first(&[Flow::Celebration]), Some(Flow::Celebration));
        assert_eq!(
            first(&[Flow::WinBack, Flow::ReEngagement]),
            Some(Flow::WinBack)
        );
        // A flow they do not qualify for is passed over; the unlisted ones follow by default.
        assert_eq!(first(&[Flow::AtRisk]), Some(Flow::ReEngagement));
        assert_eq!(
            choose(&q(Some(Flow::AtRisk), None, true), &[Flow::Celebration]),
            Some(Flow::Celebration)
        );
    }
}
