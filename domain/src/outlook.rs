//! Whether a customer is likely to come back by themselves. Today this reads the early signals of
//! the order history; a fitted customer model can take its place behind the same function.

use chrono::{DateTime, Utc};

use super::customer::Profile;
use super::lapse::LapsePolicy;
use super::lapse::{assess, LapseState, RiskSignal};
use super::rhythm::median;

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
