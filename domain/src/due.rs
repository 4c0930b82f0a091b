//! When the scheduler should next look at a customer no enrollment drives: the one rule behind
//! every `due_at` the scheduler, the webhook and the CLI's import write. It composes the lapse
//! moment ([`super::lapse::next_look`]) with the birthday and anniversary days
//! ([`super::celebration`]). Pure: the moment is given, never read.

use chrono::{DateTime, Utc};

use super::celebration;
use super::customer::Profile;
use super::lapse::{self, LapsePolicy};
use super::schedule;

/// What a next look watches for besides the lapse itself (the campaign's flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch<'a> {
    /// The campaign has an at-risk flow: look when the customer turns at risk.
    pub at_risk: bool,
    /// The campaign has a celebration flow: look on their birthday and anniversary.
    pub celebration: bool,
    /// The time zone of a customer without one (their days start at its midnight).
    pub default_time_zone: &'a str,
}

impl Watch<'static> {
    /// The lapse alone: no at-risk or celebration flow.
    pub const LAPSE_ONLY: Watch<'static> = Watch {
        at_risk: false,
        celebration: false,
        default_time_zone: "UTC",
    };
}

/// When the scheduler should next look: when they lapse (or turn at risk, with an at-risk flow),
/// or on their next birthday or anniversary (with a celebration flow; now, if one is due today),
/// whichever comes first; now once lapsed. `policy` is the campaign's lapse policy with its
/// fitted customer model. `None` for a customer without orders and occasions.
pub fn next_due(
    profile: &Profile,
    policy: &LapsePolicy,
    watch: Watch<'_>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if watch.celebration {
        let tz = schedule::zone(profile.time_zone.as_deref(), watch.default_time_zone);
        if celebration::due_today(profile, &tz, now).is_some() {
            return Some(now);
        }
    }
    after_today(profile, policy, watch, now)
}

/// [`next_due`] leaving out an occasion due today (one the scheduler is acting on now).
pub fn after_today(
    profile: &Profile,
    policy: &LapsePolicy,
    watch: Watch<'_>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let lapse = lapse::next_look(profile, policy, watch.at_risk, now);
    let occasion = watch
        .celebration
        .then(|| {
            let tz = schedule::zone(profile.time_zone.as_deref(), watch.default_time_zone);
            celebration::next_day_start(profile, &tz, now)
        })
        .flatten();
    earliest(lapse, occasion)
}

/// The earlier of two optional moments.
pub fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
