//! Each customer's own lapse threshold, and whether they are active, at risk or lapsed.
//!
//! # The formula
//!
//! With `g` the gaps in days between the customer's consecutive orders (`n = g.len()`), `m` the
//! campaign multiplier, `d` the default days (the category's, else the campaign's), `k` the prior
//! weight and `[lo, hi]` the campaign bounds:
//!
//! ```text
//! own       = median(g) × m                       (no own rhythm when n = 0)
//! threshold = clamp((n × own + k × d) / (n + k), lo, hi)
//! ```
//!
//! A one-order customer (`n = 0`) gets `clamp(d)`. The more orders a customer has, the more their own
//! rhythm counts. Worked example: orders 14 days apart (`g = [14, 14, 14]`), `m = 2.0`, `d = 60`,
//! `k = 2`: own = 28, threshold = (3 × 28 + 2 × 60) / 5 = 40.8 days after the last order.
//!
//! A customer is **lapsed** once the time since their last order reaches the threshold, and **at
//! risk** before that when the quiet time passes `at_risk_fraction × threshold`, or their last two
//! intervals are each much longer than their usual gap (frequency falling), or their last two orders
//! are each much smaller than their usual one (order value falling), beyond their own noise (see
//! [`risk_signals`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::customer::Profile;
/// The signals are found by `lapse` and `engagement` both; the type lives with `engagement`'s.
pub use super::engagement::RiskSignal;
use super::model;

mod own;

/// A customer's threshold and how it was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    pub days: f64,
    /// Median gap between orders, when there are at least two orders.
    pub median_gap_days: Option<f64>,
    /// The default the threshold was pulled toward.
    pub default_days: f64,
    /// Gaps that counted.
    pub gaps: usize,
}

/// Where a customer stands at a given moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LapseState {
    /// No order yet: nothing to win back.
    NoOrders,
    Active {
        lapses_at: DateTime<Utc>,
    },
    AtRisk {
        lapses_at: DateTime<Utc>,
        signals: Vec<RiskSignal>,
    },
    Lapsed {
        since: DateTime<Utc>,
    },
}

/// The threshold and state together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    pub threshold: Option<Threshold>,
    pub state: LapseState,
    /// The fitted model's view of the customer (with a `bgnbd`/`mbgnbd` lapse model).
    pub outlook: Option<Outlook>,
}

/// What the fitted customer model says of one customer at the moment of the assessment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlook {
    /// Probability that the customer is still active (0–1).
    pub p_active: f64,
    /// Probability of an order within the campaign's `horizon_days` (0–1): the lapse criterion.
    pub p_order: f64,
    /// When their next order is expected if they are still active.
    pub expected_next_order_at: DateTime<Utc>,
    /// Expected spend over the next 365 days, in minor units.
    pub predicted_value: f64,
    /// Expected purchase occasions over the next 365 days.
    pub expected_orders_12m: f64,
    /// The window `p_order` is over (days): `horizon_days`, or for a regular buyer with long gaps
    /// three of their gaps (see [`crate::rhythm`]).
    pub horizon_days: f64,
    /// What set the lapse and at-risk moments.
    pub basis: Basis,
}

/// What sets a customer's lapse and at-risk moments under a fitted model (see [`crate::rhythm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The fitted model's chance of an order.
    #[default]
    Model,
    /// Their own regular gaps ([`crate::rhythm::Regular`]): `p_order` and `p_active` are theirs.
    Regular,
    /// Their time of year ([`crate::rhythm::Season`]).
    Seasonal,
    /// Few orders in a category with its own `category_days`: the threshold rule with that default.
    Category,
}

impl Basis {
    /// Its name in `plan --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Model => "model",
            Basis::Regular => "regular",
            Basis::Seasonal => "seasonal",
            Basis::Category => "category",
        }
    }
}

use crate::rhythm::median;

/// The customer's own threshold (see the module docs for the formula).
pub fn threshold(profile: &Profile, policy: &LapsePolicy) -> Threshold {
    let default_days = profile
        .last_category()
        .and_then(|c| policy.category_days.get(c))
        .copied()
        .unwrap_or(policy.default_days);
    let mut gaps: Vec<f64> = profile
        .gaps_days()
        .into_iter()
        .filter(|g| g.is_finite())
        .map(|g| g.max(0.0))
        .collect();
    let clamp = |d: f64| d.clamp(policy.min_days, policy.max_days);
    if gaps.is_empty() {
        return Threshold {
            days: clamp(default_days),
            median_gap_days: None,
            default_days,
            gaps: 0,
        };
    }
    let med = median(&mut gaps);
    let own = med * policy.multiplier;
    let n = gaps.len() as f64;
    let k = policy.prior_weight.max(0.0);
    let blended = (n * own + k * default_days) / (n + k);
    Threshold {
        days: clamp(blended),
        median_gap_days: Some(med),
        default_days,
        gaps: gaps.len(),
    }
}

fn days(d: f64) -> Duration {
    Duration::seconds((d * 86_400.0).round() as i64)
}

/// Early signals from the order history alone; quiet for `at_risk_fraction` of the threshold is one.
///
/// The order-history signals need a change beyond the customer's own noise, over more than one
/// order (see [`shifted`]): **frequency falling** when their last two intervals (the latest gap,
/// and the gap before it or the quiet time since) are each over 1.5× their usual gap, or the quiet
/// time since their last order alone is over twice it; **order value falling** when their last
/// two orders are each under 70% of their usual order. One late order or one smaller basket is not
/// a trend.
pub fn risk_signals(
    profile: &Profile,
    threshold: &Threshold,
    at_risk_fraction: f64,
    now: DateTime<Utc>,
) -> Vec<RiskSignal> {
    let mut signals = Vec::new();
    let Some(last) = profile.last_order_at else {
        return signals;
    };
    let quiet = (now - last).num_seconds() as f64 / 86_400.0;
    let gaps = profile.gaps_days();
    if gaps.len() >= 3 {
        // Two intervals against the gaps before them: the latest gap and the one before, or the
        // latest gap and the quiet time since.
        let trend = gaps.len() >= 4 && {
            let (earlier, recent) = gaps.split_at(gaps.len() - 2);
            let latest = gaps[gaps.len() - 1];
            let long = |recent: &[f64]| shifted(&logs(earlier), &logs(recent), GAP_EFFECT.ln());
            long(recent) || long(&[latest, quiet])
        };
        // Or the quiet time since the last order alone, at over twice the usual gap.
        let quiet_long = shifted(&logs(&gaps), &logs(&[quiet]), QUIET_EFFECT.ln());
        if trend || quiet_long {
            signals.push(RiskSignal::FrequencyFalling);
        }
    }
    if profile.orders.len() >= 5 {
        // Smaller is a shift of the negated logarithms upward.
        let neg_logs: Vec<f64> = profile
            .orders
            .iter()
            .map(|o| -(o.net().0.max(1) as f64).ln())
            .collect();
        let (earlier, recent) = neg_logs.split_at(neg_logs.len() - 2);
        if shifted(earlier, recent, -VALUE_EFFECT.ln()) {
            signals.push(RiskSignal::OrderValueFalling);
        }
    }
    if quiet >= 0.0 && quiet < threshold.days && quiet >= threshold.days * at_risk_fraction {
        signals.insert(0, RiskSignal::QuietLongerThanUsual);
    }
    signals
}

/// An interval counts as long beyond 1.5× the usual gap.
const GAP_EFFECT: f64 = 1.5;
/// The quiet time alone counts as a long interval beyond twice the usual gap.
const QUIET_EFFECT: f64 = 2.0;
/// An order counts as small under 70% of the usual one.
const VALUE_EFFECT: f64 = 0.7;
/// The least spread of a customer's own log values that noise is measured with (a history of
/// identical values would otherwise make any change significant).
const MIN_LOG_SPREAD: f64 = 0.15;

fn logs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.max(1e-3).ln()).collect()
}

/// Whether `recent` values (logarithms) sit above the `earlier` ones beyond noise: each of them
/// above the earlier median by at least `min_effect`, and their mean above the earlier mean by
/// more than two standard errors (the earlier values' own spread, at least [`MIN_LOG_SPREAD`]).
/// Needs two earlier values and one recent one.
fn shifted(earlier: &[f64], recent: &[f64], min_effect: f64) -> bool {
    if earlier.len() < 2 || recent.is_empty() {
        return false;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (me, mr) = (mean(earlier), mean(recent));
    let var = earlier.iter().map(|x| (x - me).powi(2)).sum::<f64>() / (earlier.len() - 1) as f64;
    let spread = var.sqrt().max(MIN_LOG_SPREAD);
    let se = spread * (1.0 / recent.len() as f64 + 1.0 / earlier.len() as f64).sqrt();
    let usual = median(&mut earlier.to_vec());
    recent.iter().all(|r| *r > usual + min_effect) && mr - me > 2.0 * se
}

/// When the scheduler should next look at a customer who is not enrolled: now once lapsed (or at
/// risk, when the campaign has an at-risk flow), else the moment that would change. With an
/// at-risk flow that is when they would turn at risk (see [`at_risk_from`]);
/// without one, when they lapse. `None` for a customer without orders.
pub fn next_look(
    profile: &Profile,
    policy: &LapsePolicy,
    watch_at_risk: bool,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    profile.last_order_at?;
    let signal_at = super::engagement::next_signal_at(profile, &policy.signal_windows(), now)
        .filter(|_| watch_at_risk);
    let look = next_look_by_lapse(profile, policy, watch_at_risk, now);
    match (look, signal_at) {
        (Some(l), Some(s)) => Some(l.min(s)),
        (l, s) => l.or(s),
    }
}

fn next_look_by_lapse(
    profile: &Profile,
    policy: &LapsePolicy,
    watch_at_risk: bool,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match assess(profile, policy, now).state {
        LapseState::NoOrders => None,
        LapseState::Lapsed { .. } => Some(now),
        LapseState::AtRisk { .. } if watch_at_risk => Some(now),
        LapseState::AtRisk { lapses_at, .. } => Some(lapses_at),
        LapseState::Active { lapses_at } if watch_at_risk => {
            let shift = sign_of_life_shift(profile, now);
            Some((at_risk_from(profile, policy, now - shift) + shift).clamp(now, lapses_at))
        }
        LapseState::Active { lapses_at } => Some(lapses_at),
    }
}

/// When a customer who is active at `now` turns at risk with no new order: under a fitted model when
/// the chance of an order within `horizon_days` falls below `at_risk_p_order`; under the threshold rule when the quiet time reaches
/// `at_risk_fraction` of the threshold. (The other early signals come from the order history, so
/// only a new order changes them.)
fn at_risk_from(profile: &Profile, policy: &LapsePolicy, now: DateTime<Utc>) -> DateTime<Utc> {
    let last = profile.last_order_at.unwrap_or(now);
    let by_threshold = || last + days(threshold(profile, policy).days * policy.at_risk_fraction);
    if policy.model == LapseModel::Threshold {
        return by_threshold();
    }
    let fit = policy.fitted_model();
    model::profile_summary(profile, now)
        .and_then(|s| {
            let model_lapse = || lapse_moment(profile, policy, &fit, &s);
            match own::of_profile(profile, policy, &s, &fit, &model_lapse, now) {
                Some(own) => Some(own.at_risk_at()),
                None => at_risk_moment(profile, policy, &fit, &s),
            }
        })
        .unwrap_or_else(by_threshold)
}

/// Whether a customer with this summary has lapsed under a fitted model: the same rule as
/// [`assess_with_model`] (quiet at least `min_days`, and the chance of an order within
/// `horizon_days` below `p_order_threshold` or quiet `max_days`), for callers that hold summaries
/// rather than profiles (`winback backtest`).
pub fn lapsed_by_model(s: &model::Summary, fit: &model::Fit, policy: &LapsePolicy) -> bool {
    let quiet = s.age_days - s.recency_days;
    quiet >= policy.min_days
        && (quiet >= policy.max_days.max(policy.min_days)
            || fit.p_order_within(s, policy.horizon_days) < policy.p_order_threshold)
}

/// Whether a customer with these order times (oldest first) and summary at `now` has lapsed under
/// the campaign's decision with a fitted model: by their own rhythm when they have one (see
/// [`crate::rhythm`]), else as [`lapsed_by_model`]. For callers that hold order times rather than
/// profiles (`winback backtest`, which reads no categories).
pub fn lapsed_by_decision(
    order_times: &[DateTime<Utc>],
    s: &model::Summary,
    fit: &model::Fit,
    policy: &LapsePolicy,
    now: DateTime<Utc>,
) -> bool {
    let Some(&last) = order_times.iter().max() else {
        return false;
    };
    match own::moments(order_times, None, None, last, s, fit, policy, now) {
        Some(o) => now >= o.lapses_at,
        None => lapsed_by_model(s, fit, policy),
    }
}

/// The chance of an order within `horizon` days that the decision reads for a customer with these
/// order times and summary at `now`: a regular buyer's own (see [`crate::rhythm::Regular`]), else
/// the fitted model's.
pub fn decision_chance(
    order_times: &[DateTime<Utc>],
    s: &model::Summary,
    fit: &model::Fit,
    horizon: f64,
    now: DateTime<Utc>,
) -> f64 {
    match (super::rhythm::of(order_times), order_times.iter().max()) {
        (Some(super::rhythm::Rhythm::Regular(r)), Some(&last)) => {
            let p_last = own::p_at_last_order(fit, s);
            let quiet = ((now - last).num_seconds() as f64 / 86_400.0).max(0.0);
            r.chance(p_last, horizon, quiet)
        }
        _ => fit.p_order_within(s, horizon),
    }
}

/// When a customer lapses under the fitted model alone, with no new order (their own rhythm and
/// category not read): what the decision was before it knew them, for comparisons
/// (`winback backtest --synthetic`). `None` without orders or when the chance never falls that
/// low.
pub fn lapse_moment_by_model(
    profile: &Profile,
    policy: &LapsePolicy,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let s = model::profile_summary(profile, now)?;
    lapse_moment(profile, policy, &policy.fitted_model(), &s)
}

/// When a customer turns at risk under a fitted model, with no new order: when the chance of an
/// order within `horizon_days` falls below `at_risk_p_order`, within the campaign's bounds (never
/// sooner than `at_risk_fraction` of `min_days` after the last order, never after the lapse; see
/// [`lapse_moment`]). `None` without orders, or when the chance of an order never falls below the
/// lapse threshold. `s` is the profile's summary (the moment does not depend on the time it was
/// taken at).
fn at_risk_moment(
    profile: &Profile,
    policy: &LapsePolicy,
    fit: &model::Fit,
    s: &model::Summary,
) -> Option<DateTime<Utc>> {
    let lapses = lapse_moment(profile, policy, fit, s)?;
    Some(
        chance_moment(profile, policy, fit, s, policy.at_risk_p_order)
            .unwrap_or(lapses)
            .clamp(earliest_risk(profile, policy, lapses)?, lapses),
    )
}

/// When the customer lapses under the model, within the campaign's bounds: never sooner than
/// `min_days` nor later than `max_days` after the last order (an email days after a first order is
/// not a win-back, and nobody waits for ever).
fn lapse_moment(
    profile: &Profile,
    policy: &LapsePolicy,
    fit: &model::Fit,
    s: &model::Summary,
) -> Option<DateTime<Utc>> {
    let last = profile.last_order_at?;
    Some(
        chance_moment(profile, policy, fit, s, policy.p_order_threshold)?.clamp(
            last + days(policy.min_days),
            last + days(policy.max_days.max(policy.min_days)),
        ),
    )
}

/// The soonest a customer who lapses at `lapses` can be at risk.
fn earliest_risk(
    profile: &Profile,
    policy: &LapsePolicy,
    lapses: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let last = profile.last_order_at?;
    Some((last + days(policy.min_days * policy.at_risk_fraction)).min(lapses))
}

/// When the chance of an order within `horizon_days` falls below `threshold`, never before the
/// last order.
fn chance_moment(
    profile: &Profile,
    policy: &LapsePolicy,
    fit: &model::Fit,
    s: &model::Summary,
    threshold: f64,
) -> Option<DateTime<Utc>> {
    let (first, last) = (profile.first_order_at?, profile.last_order_at?);
    fit.order_chance_lapse_age(s, policy.horizon_days, threshold)
        .map(|age| model::at_age(first, age).max(last))
}

/// How far a sign of life after the last order (`Profile::still_with_us_at`, up to `now`) moves
/// the lapse clock: the quiet time counts from it instead of from the last order, so a subscriber
/// who renews without ordering is judged as if their last order were at the renewal.
fn sign_of_life_shift(profile: &Profile, now: DateTime<Utc>) -> chrono::Duration {
    match (profile.last_order_at, profile.still_with_us_at) {
        (Some(last), Some(seen)) if seen > last && seen <= now => seen - last,
        _ => chrono::Duration::zero(),
    }
}

/// Assesses a customer at `now` by the campaign's lapse model (`[lapse] model`). The quiet time
/// counts from their latest sign of life: the last order, or a later activity the campaign counts
/// as "still with us".
pub fn assess(profile: &Profile, policy: &LapsePolicy, now: DateTime<Utc>) -> Assessment {
    let mut a = assess_by_orders(profile, policy, now);
    // Early signals beyond the order history (a cancellation page visit, a renewal due) make an
    // active customer at risk and join an at-risk one's signals.
    let early = super::engagement::early_signals(profile, &policy.signal_windows(), now);
    if !early.is_empty() {
        a.state = match a.state {
            LapseState::Active { lapses_at } => LapseState::AtRisk {
                lapses_at,
                signals: early,
            },
            LapseState::AtRisk {
                lapses_at,
                mut signals,
            } => {
                signals.extend(early);
                LapseState::AtRisk { lapses_at, signals }
            }
            other => other,
        };
    }
    a
}

/// [`assess`] by the order history and signs of life alone.
fn assess_by_orders(profile: &Profile, policy: &LapsePolicy, now: DateTime<Utc>) -> Assessment {
    let shift = sign_of_life_shift(profile, now);
    if shift.is_zero() {
        return assess_orders(profile, policy, now);
    }
    let mut a = assess_orders(profile, policy, now - shift);
    a.state = match a.state {
        LapseState::NoOrders => LapseState::NoOrders,
        LapseState::Active { lapses_at } => LapseState::Active {
            lapses_at: lapses_at + shift,
        },
        LapseState::AtRisk { lapses_at, signals } => LapseState::AtRisk {
            lapses_at: lapses_at + shift,
            signals,
        },
        LapseState::Lapsed { since } => LapseState::Lapsed {
            since: since + shift,
        },
    };
    if let Some(o) = a.outlook.as_mut() {
        o.expected_next_order_at += shift;
    }
    a
}

/// [`assess`] by the orders alone.
fn assess_orders(profile: &Profile, policy: &LapsePolicy, now: DateTime<Utc>) -> Assessment {
    match policy.model {
        LapseModel::Threshold => assess_threshold(profile, policy, now),
        LapseModel::Bgnbd | LapseModel::Mbgnbd => {
            assess_with_model(profile, policy, &policy.fitted_model(), now)
        }
    }
}

/// Assesses a customer with a fitted model: lapsed once the chance of an order within
/// `horizon_days` falls below `p_order_threshold` (the moment is solved when activity arrives, see
/// [`model::Fit::order_chance_lapse_age`]), at risk below `at_risk_p_order` or on an early signal.
/// A customer whose chance never falls that low falls back to the threshold rule.
///
/// Why the chance of an order and not P(active) alone: on CDNOW, ranking by P(active) put frequent
/// buyers who were merely late among the gone (17% of the flagged ordered within 90 days, against 7%
/// for days since the last order); the chance of an order in the window ranks the gone better than
/// days since the last order at the count it flags (BENCHMARKS.md, customer model).
pub fn assess_with_model(
    profile: &Profile,
    policy: &LapsePolicy,
    fit: &model::Fit,
    now: DateTime<Utc>,
) -> Assessment {
    let (Some(last), Some(s)) = (profile.last_order_at, model::profile_summary(profile, now))
    else {
        return assess_threshold(profile, policy, now);
    };
    let p_order = fit.p_order_within(&s, policy.horizon_days);
    let orders_12m = fit.expected_purchases(&s, 365.0);
    let outlook = Outlook {
        p_active: fit.p_active(&s),
        p_order,
        expected_next_order_at: now.max(last) + days(fit.days_to_next_order(&s).min(36_500.0)),
        predicted_value: orders_12m * fit.expected_spend(&s),
        expected_orders_12m: orders_12m,
        horizon_days: policy.horizon_days,
        basis: Basis::Model,
    };
    // The model's lapse moment, solved once whether a category or the model wants it.
    let model_lapse = std::cell::OnceCell::new();
    let model_lapse_at = || *model_lapse.get_or_init(|| lapse_moment(profile, policy, fit, &s));
    if let Some(own) = own::of_profile(profile, policy, &s, fit, &model_lapse_at, now) {
        return own::assess(profile, policy, own, outlook, now);
    }
    let Some((lapses_at, earliest_risk)) =
        model_lapse_at().and_then(|l| Some((l, earliest_risk(profile, policy, l)?)))
    else {
        let mut a = assess_threshold(profile, policy, now);
        a.outlook = Some(outlook);
        return a;
    };
    // At risk from the moment the chance of an order within the horizon falls below
    // `at_risk_p_order` (the moment [`at_risk_moment`] solves for), never before `earliest_risk`.
    // The chance only falls while the customer stays quiet, so reading it at `now` tells whether
    // that moment has passed without solving for it.
    let at_risk = now >= earliest_risk && p_order < policy.at_risk_p_order;
    let mut t = threshold(profile, policy);
    t.days = (lapses_at - last).num_seconds() as f64 / 86_400.0;
    assessed(profile, t, lapses_at, at_risk, outlook, now)
}

/// The assessment of a customer who lapses at `lapses_at` and is `at_risk` by a model (the
/// fitted one, or their own rhythm): the quiet signal comes from it, the others from the order
/// history.
fn assessed(
    profile: &Profile,
    t: Threshold,
    lapses_at: DateTime<Utc>,
    at_risk: bool,
    outlook: Outlook,
    now: DateTime<Utc>,
) -> Assessment {
    let state = state_at(now, lapses_at, || {
        let mut signals: Vec<RiskSignal> = risk_signals(profile, &t, 1.0, now);
        if at_risk {
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

/// Assesses a customer at `now` by the median-gap threshold rule (see the module docs).
pub fn assess_threshold(profile: &Profile, policy: &LapsePolicy, now: DateTime<Utc>) -> Assessment {
    let Some(last) = profile.last_order_at else {
        return Assessment {
            threshold: None,
            state: LapseState::NoOrders,
            outlook: None,
        };
    };
    let t = threshold(profile, policy);
    let lapses_at = last + days(t.days);
    let state = state_at(now, lapses_at, || {
        risk_signals(profile, &t, policy.at_risk_fraction, now)
    });
    Assessment {
        threshold: Some(t),
        state,
        outlook: None,
    }
}

/// Lapsed since `lapses_at` once `now` reaches it; before, at risk with the `signals` there are,
/// or active without any.
fn state_at(
    now: DateTime<Utc>,
    lapses_at: DateTime<Utc>,
    signals: impl FnOnce() -> Vec<RiskSignal>,
) -> LapseState {
    if now >= lapses_at {
        return LapseState::Lapsed { since: lapses_at };
    }
    let signals = signals();
    if signals.is_empty() {
        LapseState::Active { lapses_at }
    } else {
        LapseState::AtRisk { lapses_at, signals }
    }
}

/// How each customer's own lapse threshold is found. See [`crate::lapse`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LapsePolicy {
    /// Threshold = median gap between the customer's orders × this.
    pub multiplier: f64,
    /// Days used for customers with one order, and as the prior the others are pulled toward.
    pub default_days: f64,
    /// How many orders' worth of weight the default carries (0 = trust the customer's own rhythm fully).
    pub prior_weight: f64,
    pub min_days: f64,
    pub max_days: f64,
    /// Share of the threshold after which a quiet customer counts as at risk.
    #[serde(default = "default_at_risk_fraction")]
    pub at_risk_fraction: f64,
    /// Default days per product category (e.g. Christmas decorations: long; groceries: short).
    #[serde(default)]
    pub category_days: BTreeMap<String, f64>,
    /// How the lapse moment is found: `mbgnbd` (the default) or `bgnbd`, the fitted customer model
    /// of [`crate::model`], or `threshold`, the median-gap rule above.
    #[serde(default)]
    pub model: LapseModel,
    /// With a fitted model: the window the chance of an order is judged over (days).
    #[serde(default = "default_horizon_days")]
    pub horizon_days: f64,
    /// With a fitted model: lapsed once the chance of an order within `horizon_days` falls below
    /// this.
    #[serde(default = "default_p_order_threshold")]
    pub p_order_threshold: f64,
    /// With a fitted model: at risk once that chance falls below this (above the threshold).
    #[serde(default = "default_at_risk_p_order")]
    pub at_risk_p_order: f64,
    /// A visit to the terms or cancellation page makes a customer at risk for this many days.
    #[serde(default = "default_page_view_signal_days")]
    pub page_view_signal_days: f64,
    /// A subscription renewal due within this many days makes a customer at risk.
    #[serde(default = "default_renewal_notice_days")]
    pub renewal_notice_days: f64,
    /// The campaign's fitted parameters (`winback backtest` and `winback import` print this block);
    /// without it, the shipped prior.
    #[serde(default)]
    pub fitted: Option<FittedModel>,
    /// Each category's rhythm, fitted with the customer model (see
    /// [`crate::rhythm::CategoryRhythm`]): the prior of a customer with few orders. Filled from
    /// the stored fit; a campaign file may pin it like `[lapse.fitted]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub category_rhythms: BTreeMap<String, crate::rhythm::CategoryRhythm>,
}

/// `[lapse.fitted]`: purchase and drop-out parameters (alpha in days) and, optionally, spend.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FittedModel {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    #[serde(default)]
    pub spend_p: Option<f64>,
    #[serde(default)]
    pub spend_q: Option<f64>,
    /// Minor currency units.
    #[serde(default)]
    pub spend_gamma: Option<f64>,
}

/// The `[lapse] model` setting.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LapseModel {
    #[default]
    Mbgnbd,
    Bgnbd,
    Threshold,
}

impl LapsePolicy {
    /// The windows of the early signals (see [`crate::engagement`]).
    pub fn signal_windows(&self) -> crate::engagement::SignalWindows {
        crate::engagement::SignalWindows {
            page_view_days: self.page_view_signal_days,
            renewal_notice_days: self.renewal_notice_days,
        }
    }

    /// The fitted model's variant (MBG/NBD for the `threshold` rule, whose campaigns still see it
    /// in `plan` and `backtest`).
    pub fn model_variant(&self) -> crate::model::Variant {
        match self.model {
            LapseModel::Bgnbd => crate::model::Variant::Bgnbd,
            LapseModel::Mbgnbd | LapseModel::Threshold => crate::model::Variant::Mbgnbd,
        }
    }

    /// The policy with the campaign's stored fit (see [`crate::model::CampaignFit`]): a
    /// `[lapse.fitted]` block in the campaign file pins the parameters and wins; else the stored
    /// fit; else (no stored fit) the shipped prior.
    pub fn with_stored_fit(&self, stored: Option<&crate::model::Fit>) -> LapsePolicy {
        let mut policy = self.clone();
        if policy.category_rhythms.is_empty() {
            if let Some(f) = stored {
                policy.category_rhythms = f.categories.clone();
            }
        }
        if policy.fitted.is_none() {
            policy.fitted = stored.map(|f| FittedModel {
                r: f.params.r,
                alpha: f.params.alpha,
                a: f.params.a,
                b: f.params.b,
                spend_p: Some(f.spend.p),
                spend_q: Some(f.spend.q),
                spend_gamma: Some(f.spend.gamma),
            });
        }
        policy
    }

    /// The campaign's model: its `[lapse.fitted]` parameters, else the shipped prior.
    pub fn fitted_model(&self) -> crate::model::Fit {
        use crate::model::{prior, Fit, Params, SpendParams};
        let variant = self.model_variant();
        match &self.fitted {
            Some(f) => Fit::from_params(
                variant,
                Params {
                    r: f.r,
                    alpha: f.alpha,
                    a: f.a,
                    b: f.b,
                },
                match (f.spend_p, f.spend_q, f.spend_gamma) {
                    (Some(p), Some(q), Some(gamma)) => Some(SpendParams { p, q, gamma }),
                    _ => None,
                },
            ),
            None => Fit::from_params(variant, prior(variant), None),
        }
    }
}

serde_defaults! {
    default_at_risk_fraction: f64 = 0.75;
    default_horizon_days: f64 = 90.0;
    default_p_order_threshold: f64 = 0.25;
    default_page_view_signal_days: f64 = 30.0;
    default_renewal_notice_days: f64 = 14.0;
    default_at_risk_p_order: f64 = 0.4;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::OrderRecord;
    use crate::money::Money;
    use chrono::TimeZone;
    use proptest::prelude::*;

    pub(crate) fn policy() -> LapsePolicy {
        LapsePolicy {
            multiplier: 2.0,
            default_days: 60.0,
            prior_weight: 2.0,
            min_days: 14.0,
            max_days: 365.0,
            at_risk_fraction: 0.75,
            category_days: [("christmas".to_string(), 330.0)].into_iter().collect(),
            model: LapseModel::Threshold,
            horizon_days: 90.0,
            p_order_threshold: 0.25,
            at_risk_p_order: 0.4,
            page_view_signal_days: 30.0,
            renewal_notice_days: 14.0,
            fitted: None,
            category_rhythms: BTreeMap::new(),
        }
    }

    fn profile_with_gaps(gaps: &[f64], amount: i64) -> Profile {
        let mut p = Profile::new("c".parse().unwrap());
        let mut at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        p.record_order(OrderRecord {
            at,
            amount: Money(amount),
            product: None,
            category: None,
            currency: None,
            order_id: None,
            refunded: Default::default(),
            refund_ids: Vec::new(),
            lines: Vec::new(),
        });
        for g in gaps {
            at += days(*g);
            p.record_order(OrderRecord {
                at,
                amount: Money(amount),
                product: None,
                category: None,
                currency: None,
                order_id: None,
                refunded: Default::default(),
                refund_ids: Vec::new(),
                lines: Vec::new(),
            });
        }
        p
    }

    #[test]
    fn worked_example_from_the_docs() {
        let p = profile_with_gaps(&[14.0, 14.0, 14.0], 1000);
        let t = threshold(&p, &policy());
        assert!((t.days - 40.8).abs() < 1e-9, "{}", t.days);
        assert_eq!(t.median_gap_days, Some(14.0));
    }

    #[test]
    fn one_order_customers_use_the_default_and_categories_their_own() {
        let mut p = profile_with_gaps(&[], 1000);
        assert_eq!(threshold(&p, &policy()).days, 60.0);
        p.orders[0].category = Some("christmas".into());
        assert_eq!(threshold(&p, &policy()).days, 330.0);
    }

    #[test]
    fn weekly_buyers_lapse_sooner_than_seasonal_buyers() {
        let weekly = threshold(&profile_with_gaps(&[7.0; 10], 1000), &policy()).days;
        let seasonal = threshold(&profile_with_gaps(&[120.0; 4], 1000), &policy()).days;
        assert!(weekly < 30.0 && seasonal > 150.0, "{weekly} {seasonal}");
    }

    #[test]
    fn states_move_from_active_to_at_risk_to_lapsed() {
        let p = profile_with_gaps(&[14.0, 14.0, 14.0], 1000);
        let last = p.last_order_at.unwrap();
        let a = |d: f64| assess(&p, &policy(), last + days(d)).state;
        assert!(matches!(a(5.0), LapseState::Active { .. }));
        assert!(matches!(a(35.0), LapseState::AtRisk { .. }));
        assert!(matches!(a(41.0), LapseState::Lapsed { .. }));
    }

    #[test]
    fn at_risk_fraction_sets_when_quiet_counts_as_at_risk() {
        // Two orders 30 days apart: threshold (1 × 60 + 2 × 60) / 3 = 60 days, no other signal.
        let p = profile_with_gaps(&[30.0], 1000);
        let at = p.last_order_at.unwrap() + days(48.0);
        let state = |fraction| {
            let mut pol = policy();
            pol.at_risk_fraction = fraction;
            assess(&p, &pol, at).state
        };
        assert!(matches!(state(0.75), LapseState::AtRisk { .. }));
        assert!(matches!(state(0.9), LapseState::Active { .. }));
    }

    #[test]
    fn with_an_at_risk_flow_customers_are_looked_at_when_they_become_at_risk() {
        let p = profile_with_gaps(&[30.0], 1000);
        let last = p.last_order_at.unwrap();
        let pol = policy();
        // Threshold 60 days: at risk from day 45, lapsed from day 60.
        let early = last + days(10.0);
        assert_eq!(next_look(&p, &pol, false, early), Some(last + days(60.0)));
        assert_eq!(next_look(&p, &pol, true, early), Some(last + days(45.0)));
        let at_risk = last + days(50.0);
        assert_eq!(next_look(&p, &pol, true, at_risk), Some(at_risk));
        assert_eq!(next_look(&p, &pol, false, at_risk), Some(last + days(60.0)));
        let lapsed = last + days(61.0);
        assert_eq!(next_look(&p, &pol, false, lapsed), Some(lapsed));
    }

    #[test]
    fn smaller_recent_orders_are_an_early_signal() {
        let mut p = profile_with_gaps(&[10.0, 10.0, 10.0, 10.0], 5000);
        let n = p.orders.len();
        p.orders[n - 1].amount = Money(1000);
        p.orders[n - 2].amount = Money(1000);
        let last = p.last_order_at.unwrap();
        match assess(&p, &policy(), last + days(2.0)).state {
            LapseState::AtRisk { signals, .. } => {
                assert!(signals.contains(&RiskSignal::OrderValueFalling))
            }
            other => panic!("expected at risk, got {other:?}"),
        }
    }

    #[test]
    fn order_history_signals_need_a_trend_beyond_the_customer_s_own_noise() {
        let signals = |amounts: &[i64], gaps: &[f64], quiet: f64| {
            let mut p = profile_with_gaps(gaps, 1000);
            for (o, a) in p.orders.iter_mut().zip(amounts) {
                o.amount = Money(*a);
            }
            let t = threshold(&p, &policy());
            risk_signals(&p, &t, 1.0, p.last_order_at.unwrap() + days(quiet))
        };
        let steady = [10.0; 6];
        // One smaller order is not a trend; two much smaller ones are.
        let one = [5000, 5000, 5000, 5000, 5000, 5000, 2000];
        assert_eq!(signals(&one, &steady, 2.0), vec![]);
        let two = [5000, 5000, 5000, 5000, 5000, 2000, 2000];
        assert_eq!(
            signals(&two, &steady, 2.0),
            vec![RiskSignal::OrderValueFalling]
        );
        // A customer whose baskets always vary by that much: within their noise.
        let varied = [1500, 9000, 2500, 8000, 3000, 2000, 2500];
        assert_eq!(signals(&varied, &steady, 2.0), vec![]);
        // A little smaller twice (80%): below the least effect.
        let little = [5000, 5000, 5000, 5000, 5000, 4000, 4000];
        assert_eq!(signals(&little, &steady, 2.0), vec![]);
        let same = [5000; 7];
        // One long gap is not a trend; two are; so is a long gap and a long quiet since.
        assert_eq!(
            signals(&same, &[10.0, 10.0, 10.0, 10.0, 10.0, 25.0], 2.0),
            vec![]
        );
        assert_eq!(
            signals(&same, &[10.0, 10.0, 10.0, 10.0, 25.0, 25.0], 2.0),
            vec![RiskSignal::FrequencyFalling]
        );
        assert_eq!(
            signals(&same, &[10.0, 10.0, 10.0, 10.0, 10.0, 25.0], 20.0),
            vec![RiskSignal::FrequencyFalling]
        );
        // Quiet for over twice every usual gap: buying less often, with three gaps already.
        assert_eq!(
            signals(&[5000; 4], &[7.0, 7.0, 7.0], 22.0),
            vec![RiskSignal::FrequencyFalling]
        );
        assert_eq!(signals(&[5000; 4], &[7.0, 7.0, 7.0], 12.0), vec![]);
        // Irregular gaps: two long ones are within their noise.
        assert_eq!(
            signals(&same, &[3.0, 30.0, 5.0, 25.0, 30.0, 28.0], 2.0),
            vec![]
        );
    }

    #[test]
    fn with_the_model_a_customer_is_at_risk_from_the_solved_at_risk_moment() {
        // assess reads the chance of an order at `now` instead of solving for the at-risk moment;
        // both must agree, for every kind of buyer (regular ones by their own rhythm) and at every
        // hour between the last order and the lapse.
        for variant in [LapseModel::Mbgnbd, LapseModel::Bgnbd] {
            let mut pol = policy();
            pol.model = variant;
            let fit = pol.fitted_model();
            for gaps in [
                &[][..],
                &[7.0; 10][..],
                &[14.0, 14.0, 14.0][..],
                &[30.0, 45.0][..],
                &[120.0; 4][..],
                &[2.0, 200.0, 3.0][..],
            ] {
                let p = profile_with_gaps(gaps, 1000);
                let last = p.last_order_at.unwrap();
                let s = model::profile_summary(&p, last).unwrap();
                // A regular buyer's moments come from their own rhythm (own.rs); the rest solve
                // the model's.
                let model_lapse = || lapse_moment(&p, &pol, &fit, &s);
                let own = own::of_profile(&p, &pol, &s, &fit, &model_lapse, last);
                let (Some(at_risk), Some(lapses)) = (
                    own.map(|o| o.at_risk_at())
                        .or_else(|| at_risk_moment(&p, &pol, &fit, &s)),
                    own.map(|o| o.lapses_at)
                        .or_else(|| lapse_moment(&p, &pol, &fit, &s)),
                ) else {
                    continue;
                };
                let mut checked = 0;
                let mut now = last;
                while now < lapses {
                    // Seconds around the moment itself are rounding, not disagreement.
                    if (now - at_risk).num_seconds().abs() > 60 {
                        let quiet_signal = match assess(&p, &pol, now).state {
                            LapseState::AtRisk { signals, .. } => {
                                signals.contains(&RiskSignal::QuietLongerThanUsual)
                            }
                            _ => false,
                        };
                        assert_eq!(
                            quiet_signal,
                            now >= at_risk,
                            "{variant:?} {gaps:?} at {now}: at risk from {}",
                            at_risk
                        );
                        checked += 1;
                    }
                    now += Duration::hours(5);
                }
                assert!(checked > 10, "{variant:?} {gaps:?}");
            }
        }
    }

    #[test]
    fn with_the_model_the_lapse_moment_is_where_the_chance_of_an_order_crosses_the_threshold() {
        let mut pol = policy();
        pol.model = LapseModel::Mbgnbd;
        let p = profile_with_gaps(&[14.0, 14.0, 14.0], 1000);
        let last = p.last_order_at.unwrap();
        let a = assess(&p, &pol, last + days(1.0));
        let LapseState::Active { lapses_at } = a.state else {
            panic!("expected active, got {:?}", a.state)
        };
        let o = a.outlook.expect("the model's outlook");
        assert!(o.p_active > 0.8 && o.predicted_value > 0.0, "{o:?}");
        assert!(o.expected_next_order_at > last);
        let fit = pol.fitted_model();
        let at = |t| model::profile_summary(&p, t).unwrap();
        let chance = |t| fit.p_order_within(&at(t), pol.horizon_days);
        assert!(chance(lapses_at - days(0.01)) >= pol.p_order_threshold);
        assert!(chance(lapses_at + days(0.01)) < pol.p_order_threshold);
        assert!(matches!(
            assess(&p, &pol, lapses_at).state,
            LapseState::Lapsed { .. }
        ));
        // At risk between the band and the threshold.
        let risky = fit
            .order_chance_lapse_age(&at(last), pol.horizon_days, pol.at_risk_p_order)
            .unwrap();
        let first = p.first_order_at.unwrap();
        let mid = model::at_age(first, risky) + (lapses_at - model::at_age(first, risky)) / 2;
        assert!(matches!(
            assess(&p, &pol, mid).state,
            LapseState::AtRisk { .. }
        ));
        // A weekly buyer lapses sooner after their last order than a seasonal one.
        let weekly = profile_with_gaps(&[7.0; 10], 1000);
        let seasonal = profile_with_gaps(&[120.0; 4], 1000);
        let quiet_until_lapse = |p: &Profile| {
            let last = p.last_order_at.unwrap();
            match assess(p, &pol, last).state {
                LapseState::Active { lapses_at } | LapseState::AtRisk { lapses_at, .. } => {
                    (lapses_at - last).num_days()
                }
                other => panic!("{other:?}"),
            }
        };
        assert!(quiet_until_lapse(&weekly) < quiet_until_lapse(&seasonal));
    }

    #[test]
    fn a_sign_of_life_restarts_the_quiet_clock() {
        for model in [LapseModel::Mbgnbd, LapseModel::Threshold] {
            let mut pol = policy();
            pol.model = model;
            let mut p = profile_with_gaps(&[7.0, 7.0, 7.0], 1000);
            let last = p.last_order_at.unwrap();
            let LapseState::Active { lapses_at } = assess(&p, &pol, last).state else {
                panic!("active after an order")
            };
            let quiet = lapses_at - last;
            let later = lapses_at + days(30.0);
            assert!(matches!(
                assess(&p, &pol, later).state,
                LapseState::Lapsed { .. }
            ));
            // A renewal 40 days after the last order: the quiet time counts from it.
            let renewed = last + days(40.0);
            p.still_with_us_at = Some(renewed);
            match assess(&p, &pol, later).state {
                LapseState::Active { lapses_at } | LapseState::AtRisk { lapses_at, .. } => {
                    assert_eq!(lapses_at, renewed + quiet, "{model:?}")
                }
                other => panic!("{model:?}: {other:?}"),
            }
            assert!(matches!(
                assess(&p, &pol, renewed + quiet).state,
                LapseState::Lapsed { .. }
            ));
            // The next look follows it too.
            assert!(next_look(&p, &pol, false, later) == Some(renewed + quiet));
            // Before the renewal happened (or a renewal before the last order) nothing moves.
            assert_eq!(
                assess(&p, &pol, renewed - days(1.0)).state,
                assess(
                    &profile_with_gaps(&[7.0, 7.0, 7.0], 1000),
                    &pol,
                    renewed - days(1.0)
                )
                .state
            );
        }
    }

    proptest! {
        #[test]
        fn thresholds_never_leave_the_bounds(gaps in proptest::collection::vec(0.0f64..2000.0, 0..30),
                                             mult in 0.1f64..10.0, prior in 0.0f64..20.0) {
            let mut pol = policy();
            pol.multiplier = mult;
            pol.prior_weight = prior;
            let t = threshold(&profile_with_gaps(&gaps, 100), &pol);
            prop_assert!(t.days >= pol.min_days && t.days <= pol.max_days, "{}", t.days);
        }
    }
}
