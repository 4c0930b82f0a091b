//! What a customer's activity does to their latest enrollment: a win, a stop without a win, a
//! later order after a win, or nothing.

use chrono::{DateTime, Duration, Utc};

use super::activity::ActivityKind;
use super::enrollment::{CountedOrder, Enrollment, ExitReason, Status, COUNTED_ORDERS};

/// What an activity does to an enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityEffect {
    /// An order within the attribution window: won back (counted as a reactivation).
    WinBack,
    /// The sequence stops without a win.
    Stop(ExitReason),
    Nothing,
}

/// What `kind` at `at` does to enrollment `e`. Any order stops the sequence: within
/// `attribution_days` of enrollment it is a win, after it the enrollment simply ends (the window
/// decides only what counts). Logins and renewals never count as wins; those the campaign lists in
/// `still_with_us` stop the sequence, the others change nothing. Activity from before the
/// enrollment (a late delivery) changes nothing.
pub fn activity_effect(
    e: &Enrollment,
    kind: ActivityKind,
    at: DateTime<Utc>,
    attribution_days: u32,
    still_with_us: &[ActivityKind],
) -> ActivityEffect {
    if e.status.is_final() || at < e.enrolled_at {
        return ActivityEffect::Nothing;
    }
    match kind {
        ActivityKind::Order
            if at - e.enrolled_at <= Duration::days(i64::from(attribution_days)) =>
        {
            ActivityEffect::WinBack
        }
        ActivityKind::Order => ActivityEffect::Stop(ExitReason::OrderedAfterWindow),
        k if still_with_us.contains(&k) => ActivityEffect::Stop(ExitReason::StillWithUs),
        _ => ActivityEffect::Nothing,
    }
}

/// What an activity did to the customer's latest enrollment.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribution {
    None,
    /// Won back by this activity.
    Reactivated(Enrollment),
    /// Stopped the sequence without a win (an order after the window, a "still with us" login).
    Stopped(Enrollment, ExitReason),
    /// An order after an earlier win-back.
    LaterOrder {
        enrollment: Enrollment,
        won_at: DateTime<Utc>,
    },
    /// A refund or cancellation of an order the enrollment counted (`domain::refund`).
    Refunded {
        enrollment: Enrollment,
        taken: TakenBack,
    },
}

/// What a refund took back from an enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenBack {
    /// The revenue taken back, in minor units of `currency`.
    pub minor: i64,
    pub currency: String,
    /// The order was the one that won the customer back (else a later one).
    pub from_win: bool,
    /// The win itself is taken back.
    pub win_taken_back: bool,
}

impl Attribution {
    /// The same attribution of `saved` (the enrollment as stored, with its new version).
    pub fn of_saved(self, saved: &Enrollment) -> Attribution {
        match self {
            Attribution::Reactivated(_) => Attribution::Reactivated(saved.clone()),
            Attribution::LaterOrder { won_at, .. } => Attribution::LaterOrder {
                enrollment: saved.clone(),
                won_at,
            },
            Attribution::Stopped(_, why) => Attribution::Stopped(saved.clone(), why),
            Attribution::Refunded { taken, .. } => Attribution::Refunded {
                enrollment: saved.clone(),
                taken,
            },
            Attribution::None => Attribution::None,
        }
    }
}

/// What activity `kind` at `at` does to enrollment `e` (see [`activity_effect`]): the enrollment
/// to save (`None`: nothing to write) and the attribution. `minor` is an order's revenue in the
/// campaign currency (0 for other currencies and other activity); `order`, the order as its
/// refunds will find it, is remembered in the enrollment when it counts. A retry of the order
/// that won the customer back finds the win saved and attributes it again, writing nothing.
pub fn attribute(
    e: &Enrollment,
    kind: ActivityKind,
    at: DateTime<Utc>,
    minor: i64,
    order: Option<CountedOrder>,
    attribution_days: u32,
    still_with_us: &[ActivityKind],
) -> (Option<Enrollment>, Attribution) {
    match (
        activity_effect(e, kind, at, attribution_days, still_with_us),
        &e.status,
    ) {
        (ActivityEffect::WinBack, _) => match e.win_back(at) {
            Ok(mut won) => {
                won.revenue_minor += minor;
                count(&mut won, order);
                (Some(won.clone()), Attribution::Reactivated(won))
            }
            Err(_) => (None, Attribution::None),
        },
        (ActivityEffect::Stop(why), _) => match e.exit(why, at) {
            Ok(stopped) => (Some(stopped.clone()), Attribution::Stopped(stopped, why)),
            Err(_) => (None, Attribution::None),
        },
        (_, Status::WonBack { at: won }) if *won == at && kind == ActivityKind::Order => {
            (None, Attribution::Reactivated(e.clone()))
        }
        (_, Status::WonBack { at: won }) if kind == ActivityKind::Order && at > *won => {
            let mut later = e.clone();
            later.revenue_minor += minor;
            count(&mut later, order);
            (
                Some(later.clone()),
                Attribution::LaterOrder {
                    enrollment: later,
                    won_at: *won,
                },
            )
        }
        _ => (None, Attribution::None),
    }
}

/// Remembers an order counted for `e`, for its refunds: the first (the win) always, then the
/// latest later ones.
fn count(e: &mut Enrollment, order: Option<CountedOrder>) {
    let Some(order) = order else { return };
    if e.orders.iter().any(|o| o.order_id == order.order_id) {
        return;
    }
    e.orders.push(order);
    if e.orders.len() > COUNTED_ORDERS {
        e.orders.remove(1);
    }
}
