//! Lapse and at-risk moments from a customer's own rhythm or their category, where these replace
//! the fitted model's (see [`crate::rhythm`]): a regular buyer is judged by their own gaps, a
//! seasonal one by their time of year, and a customer with few orders in a category the campaign
//! gives its own days (`[lapse.category_days]`) by the threshold rule with that default, when
//! that lapses them later than the model would (a one-order Christmas customer is not lapsed at
//! the 21-day floor).

use chrono::{DateTime, Utc};

use super::{days, state_at, threshold, Assessment, Basis, LapsePolicy, Outlook, RiskSignal};
use crate::customer::Profile;
use crate::model::{Fit, Summary};
use crate::rhythm::{self, Rhythm};

/// The moments a customer's own rhythm or category sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Own {
    pub basis: Basis,
    pub lapses_at: DateTime<Utc>,
    pub at_risk_at: DateTime<Utc>,
    /// A regular buyer's own P(active), chance of an order at the moment asked about, and the
    /// window that chance is over.
    pub chances: Option<(f64, f64, f64)>,
}

/// P(active) at the last order that a regular buyer's rhythm starts from: the fitted model's, at
/// most [`rhythm::MAX_P_LAST`] (a fit that holds almost nobody to drop out would otherwise keep a
/// regular buyer active through many missed gaps).
pub(super) fn p_at_last_order(fit: &Fit, s: &Summary) -> f64 {
    fit.p_active(&Summary {
        age_days: s.recency_days,
        ..*s
    })
    .min(rhythm::MAX_P_LAST)
}

/// The moments for `profile` at `now`, when their rhythm or category sets them; `None` leaves
/// them to the model. `s` is the profile's summary.
pub(super) fn of_profile(
    profile: &Profile,
    policy: &LapsePolicy,
    fit: &Fit,
    s: &Summary,
    now: DateTime<Utc>,
) -> Option<Own> {
    let last = profile.last_order_at?;
    let category = profile
        .last_category()
        .filter(|c| policy.category_days.contains_key(*c))
        .map(|_| threshold(profile, policy).days)
        .filter(|_| profile.orders.len() <= rhythm::MIN_GAPS)
        // The category's days only hold back a lapse the model would call sooner.
        .filter(|d| {
            super::lapse_moment(profile, policy, fit, s).is_none_or(|m| last + days(*d) > m)
        });
    moments(&profile.order_times(), category, last, s, fit, policy, now)
}

/// The moments for a customer with these order times (oldest first, the last at `last`) and
/// summary at `now`; `category_days` is their threshold by their category, when it applies.
pub(super) fn moments(
    order_times: &[DateTime<Utc>],
    category_days: Option<f64>,
    last: DateTime<Utc>,
    s: &Summary,
    fit: &Fit,
    policy: &LapsePolicy,
    now: DateTime<Utc>,
) -> Option<Own> {
    let (soonest, latest) = (
        last + days(policy.min_days),
        last + days(policy.max_days.max(policy.min_days)),
    );
    let earliest_risk = |lapses: DateTime<Utc>| {
        (last + days(policy.min_days * policy.at_risk_fraction)).min(lapses)
    };
    match rhythm::of(order_times) {
        Some(Rhythm::Regular(r)) => {
            let p_last = p_at_last_order(fit, s);
            let h = policy.horizon_days;
            let after = |q: Option<f64>| q.map(|q| last + days(q));
            let lapses_at = after(r.quiet_until(p_last, h, policy.p_order_threshold))
                .unwrap_or(latest)
                .clamp(soonest, latest);
            let at_risk_at = after(r.quiet_until(p_last, h, policy.at_risk_p_order))
                .unwrap_or(lapses_at)
                .clamp(earliest_risk(lapses_at), lapses_at);
            let quiet = ((now - last).num_seconds() as f64 / 86_400.0).max(0.0);
            Some(Own {
                basis: Basis::Regular,
                lapses_at,
                at_risk_at,
                chances: Some((
                    r.p_active(p_last, quiet),
                    r.chance(p_last, h, quiet),
                    r.window(h),
                )),
            })
        }
        Some(Rhythm::Seasonal(season)) => {
            let lapses_at = season.lapses_at().clamp(soonest, latest);
            Some(Own {
                basis: Basis::Seasonal,
                lapses_at,
                at_risk_at: season
                    .at_risk_from()
                    .clamp(earliest_risk(lapses_at), lapses_at),
                chances: None,
            })
        }
        None => category_days.map(|d| Own {
            basis: Basis::Category,
            lapses_at: last + days(d),
            at_risk_at: last + days(d * policy.at_risk_fraction),
            chances: None,
        }),
    }
}

/// The assessment by these moments; `outlook` is the model's, which a regular buyer's own
/// chances replace.
pub(super) fn assess(
    profile: &Profile,
    policy: &LapsePolicy,
    own: Own,
    mut outlook: Outlook,
    now: DateTime<Utc>,
) -> Assessment {
    outlook.basis = own.basis;
    if let Some((p_active, p_order, window)) = own.chances {
        outlook.p_active = p_active;
        outlook.p_order = p_order;
        outlook.horizon_days = window;
    }
    let mut t = threshold(profile, policy);
    if let Some(last) = profile.last_order_at {
        t.days = (own.lapses_at - last).num_seconds() as f64 / 86_400.0;
    }
    let state = state_at(now, own.lapses_at, || {
        // The quiet signal comes from the moments; the others from the order history.
        let mut signals = super::risk_signals(profile, &t, 1.0, now);
        if now >= own.at_risk_at {
            signals.insert(0, RiskSignal::QuietLongerThanUsual);
        }
        signals
    });
    Assessment {
        threshold: Some(t),
        state,
        outlook: Some(outlook),
    }
}
