//! Whether a customer is likely to come back by themselves. Today this reads the early signals of
//! the order history; a fitted customer model can take its place behind the same function.

use chrono::{DateTime, Utc};

use super::customer::Profile;
use super::lapse::LapsePolicy;
use super::lapse::{assess, median, LapseState, RiskSignal};

/// Orders a customer needs before their rhythm is trusted to bring them back unprompted.
const ESTABLISHED_ORDERS: u32 = 3;

/// Whether `profile` would likely order again without an incentive: an established buyer (three
/// or more orders) not lapsed, whose orders came at their usual pace until the last one (the
/// latest gap at most 1.5× the usual) and who is not spending less. Being quiet a while is not
/// counted against them: that is what made them at risk. A discount to them would be money given
/// to someone who would have bought anyway.
pub fn likely_to_return_alone(profile: &Profile, policy: &LapsePolicy, now: DateTime<Utc>) -> bool {
    if profile.order_count < ESTABLISHED_ORDERS {
        return false;
    }
    let mut gaps = profile.gaps_days();
    let Some((latest, earlier)) = gaps.split_last_mut() else {
        return false;
    };
    if earlier.is_empty() || *latest > 1.5 * median(earlier) {
        return false;
    }
    match assess(profile, policy, now).state {
        LapseState::Active { .. } => true,
        LapseState::AtRisk { signals, .. } => !signals.contains(&RiskSignal::OrderValueFalling),
        LapseState::Lapsed { .. } | LapseState::NoOrders => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::testing::example_campaign;
    use crate::domain::customer::OrderRecord;
    use crate::domain::money::Money;
    use chrono::{Duration, TimeZone};

    fn buyer(amounts: &[i64], gap: i64) -> Profile {
        let mut p = Profile::new("c");
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for (i, a) in amounts.iter().enumerate() {
            p.record_order(OrderRecord {
                at: start + Duration::days(gap * i as i64),
                amount: Money(*a),
                product: None,
                category: None,
                currency: None,
            });
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
        // Quiet for 80% of that, and nothing else wrong.
        let at = quiet(&steady, t * 0.8);
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
            p.record_order(OrderRecord {
                at: p.last_order_at.unwrap() + Duration::days(40),
                amount: Money(3000),
                product: None,
                category: None,
                currency: None,
            });
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
}
