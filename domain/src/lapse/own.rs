//! Lapse and at-risk moments from a customer's own rhythm or their category, where these replace
//! the fitted model's (see [`crate::rhythm`]): a regular buyer is judged by their own gaps, a
//! seasonal one by their time of year, and a customer with few orders in a category the campaign
//! gives its own days (`[lapse.category_days]`) by the threshold rule with that default, when
//! that lapses them later than the model would (a one-order Christmas customer is not lapsed at
//! the 21-day floor).

use chrono::{DateTime, Utc};

use super::{days, threshold, Assessment, Basis, LapsePolicy, Outlook};
use crate::customer::Profile;
use crate::model::{Fit, Summary};
use crate::rhythm::{self, Rhythm};

/// The moments a customer's own rhythm or category sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Own {
    pub basis: Basis,
    pub lapses_at: DateTime<Utc>,
    at_risk: AtRisk,
    /// A regular buyer's own P(active), chance of an order at the moment asked about, and the
    /// window that chance is over.
    pub chances: Option<(f64, f64, f64)>,
}

/// When the customer turns at risk: a moment, or for a regular buyer the crossing of their own
/// chance, solved only when asked for (an assessment reads the chance at its moment instead).
#[derive(Debug, Clone, Copy, PartialEq)]
enum AtRisk {
    At(DateTime<Utc>),
    Regular {
        rhythm: rhythm::Regular,
        p_last: f64,
        horizon: f64,
        /// `at_risk_p_order`.
        threshold: f64,
        last: DateTime<Utc>,
        /// The campaign's soonest at-risk moment.
        earliest: DateTime<Utc>,
    },
}

impl Own {
    /// When the customer turns at risk with no new order, within the campaign's bounds.
    pub fn at_risk_at(&self) -> DateTime<Utc> {
        match self.at_risk {
            AtRisk::At(t) => t,
            AtRisk::Regular {
                rhythm,
                p_last,
                horizon,
                threshold,
                last,
                earliest,
            } => rhythm
                .quiet_until(p_last, horizon, threshold)
                .map_or(self.lapses_at, |q| last + days(q))
                .clamp(earliest, self.lapses_at),
        }
    }

    /// Whether the customer is at risk at `now` (before their lapse), the same as
    /// `now >= self.at_risk_at()`: a regular buyer's chance only falls with quiet time, so it is
    /// read at `now` rather than solved for.
    fn at_risk_by(&self, now: DateTime<Utc>) -> bool {
        match (self.at_risk, self.chances) {
            (
                AtRisk::Regular {
                    threshold,
                    earliest,
                    ..
                },
                Some((_, chance, _)),
            ) => now >= earliest && chance < threshold,
            _ => now >= self.at_risk_at(),
        }
    }
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
/// them to the model. `s` is the profile's summary, `model_lapse` the model's lapse moment (asked
/// for only when a category is in question; the caller keeps it for its own use).
pub(super) fn of_profile(
    profile: &Profile,
    policy: &LapsePolicy,
    s: &Summary,
    fit: &Fit,
    model_lapse: &dyn Fn() -> Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Own> {
    let last = profile.last_order_at?;
    let category = profile
        .last_category()
        .filter(|c| policy.category_days.contains_key(*c))
        .map(|_| threshold(profile, policy).days)
        .filter(|_| profile.orders.len() <= rhythm::MIN_GAPS)
        // The category's days only hold back a lapse the model would call sooner.
        .filter(|d| model_lapse().is_none_or(|m| last + days(*d) > m));
    let rhythm = profile
        .last_category()
        .and_then(|c| policy.category_rhythms.get(c));
    moments(
        &profile.order_times(),
        rhythm,
        category,
        last,
        s,
        fit,
        policy,
        now,
    )
}

/// The moments for a customer with these order times (oldest first, the last at `last`) and
/// summary at `now`; `rhythm` is their category's fitted rhythm, `category_days` their threshold
/// by their category, when these apply.
#[allow(clippy::too_many_arguments)]
pub(super) fn moments(
    order_times: &[DateTime<Utc>],
    rhythm: Option<&rhythm::CategoryRhythm>,
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
    match rhythm::of_in(order_times, rhythm) {
        Some(Rhythm::Regular(r)) => {
            // One order: the category's own share of customers who come back, where it has one.
            let p_last = rhythm
                .and_then(|c| c.gaps.as_ref())
                .and_then(rhythm::GapPrior::p_active_at_first_order)
                .filter(|_| r.gaps == 0)
                .unwrap_or_else(|| p_at_last_order(fit, s));
            let h = policy.horizon_days;
            let after = |q: Option<f64>| q.map(|q| last + days(q));
            let lapses_at = after(r.quiet_until(p_last, h, policy.p_order_threshold))
                .unwrap_or(latest)
                .clamp(soonest, latest);
            let quiet = ((now - last).num_seconds() as f64 / 86_400.0).max(0.0);
            Some(Own {
                basis: Basis::Regular,
                lapses_at,
                at_risk: AtRisk::Regular {
                    rhythm: r,
                    p_last,
                    horizon: h,
                    threshold: policy.at_risk_p_order,
                    last,
                    earliest: earliest_risk(lapses_at),
                },
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
                at_risk: AtRisk::At(
                    season
                        .at_risk_from()
                        .clamp(earliest_risk(lapses_at), lapses_at),
                ),
                chances: None,
            })
        }
        None => category_days.map(|d| Own {
            basis: Basis::Category,
            lapses_at: last + days(d),
            at_risk: AtRisk::At(last + days(d * policy.at_risk_fraction)),
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
    super::assessed(profile, t, own.lapses_at, own.at_risk_by(now), outlook, now)
}
