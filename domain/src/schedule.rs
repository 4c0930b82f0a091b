//! When an email may go out: quiet hours in the customer's time zone, the frequency cap, and the
//! hour of day this customer usually buys at.

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};

use super::zone::Zone;

/// The customer's time zone, falling back to `default` and then UTC.
pub fn zone(customer: Option<&str>, default: &str) -> Zone {
    customer
        .and_then(|z| z.parse::<Zone>().ok())
        .or_else(|| default.parse::<Zone>().ok())
        .unwrap_or(Zone::UTC)
}

/// Whether `hour` (local) is inside quiet hours `[start, end)`, which may wrap midnight.
pub fn is_quiet(hour: u32, start: u32, end: u32) -> bool {
    if start == end {
        false
    } else if start < end {
        hour >= start && hour < end
    } else {
        hour >= start || hour < end
    }
}

/// The first moment at or after `at` that is outside quiet hours in `tz`.
pub fn after_quiet_hours(at: DateTime<Utc>, tz: &Zone, start: u32, end: u32) -> DateTime<Utc> {
    let local = tz.local(at);
    if !is_quiet(local.hour(), start, end) {
        return at;
    }
    let mut day = local.date();
    if local.hour() >= end && start > end {
        day = day.succ_opt().unwrap_or(day);
    }
    let naive = day.and_time(NaiveTime::from_hms_opt(end, 0, 0).unwrap_or(NaiveTime::MIN));
    match tz.earliest(naive) {
        Some(t) => t,
        // The end hour does not exist that day (a DST gap): an hour later does.
        None => after_quiet_hours(at + Duration::hours(1), tz, start, end),
    }
}

/// Orders needed before their hours are read as a habit.
const HABIT_MIN_ORDERS: usize = 3;

/// The local hour (0–23) this customer usually orders at: the busiest hour, in `tz`, of the
/// three-hour window holding the most orders, when that window holds at least half of at least
/// three orders. `None` when they order at scattered hours (or too rarely to tell). (Ten orders
/// at 17:xx and one at 19:xx give 17, not the window's middle hour 18.)
pub fn habitual_hour(order_times: &[DateTime<Utc>], tz: &Zone) -> Option<u32> {
    if order_times.len() < HABIT_MIN_ORDERS {
        return None;
    }
    let mut per_hour = [0usize; 24];
    for t in order_times {
        per_hour[tz.local(*t).hour() as usize] += 1;
    }
    let around = |h: usize| per_hour[(h + 23) % 24] + per_hour[h] + per_hour[(h + 1) % 24];
    // The busiest window; on a tie the busier hour itself, then the earliest, so it is stable.
    let best = (0..24).max_by_key(|h| (around(*h), per_hour[*h], std::cmp::Reverse(*h)))?;
    let busiest = [(best + 23) % 24, best, (best + 1) % 24]
        .into_iter()
        .max_by_key(|h| (per_hour[*h], *h == best))?;
    (2 * around(best) >= order_times.len()).then_some(busiest as u32)
}

/// The first moment at or after `at` whose local hour is `hour` (at once when it already is), in
/// at most a day. A `hour` inside quiet hours is no habit to wait for: `at` itself.
pub fn at_hour(
    at: DateTime<Utc>,
    tz: &Zone,
    hour: u32,
    quiet_start: u32,
    quiet_end: u32,
) -> DateTime<Utc> {
    if hour > 23 || is_quiet(hour, quiet_start, quiet_end) {
        return at;
    }
    let local = tz.local(at);
    if local.hour() == hour {
        return at;
    }
    let time = NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN);
    let mut day = local.date();
    if local.time() > time {
        day = day.succ_opt().unwrap_or(day);
    }
    // The hour does not exist that day (a DST gap): send when it was due instead.
    tz.earliest(day.and_time(time))
        .filter(|t| *t >= at)
        .unwrap_or(at)
}

/// The earliest time an email may go out: not before `due`, not within `cap_days` of the last
/// email, not in quiet hours, and at the customer's `habit` hour when they have one (deferred up
/// to a day, never dropped).
pub fn next_send_time(
    due: DateTime<Utc>,
    last_sent: Option<DateTime<Utc>>,
    cap_days: u32,
    tz: &Zone,
    quiet_start: u32,
    quiet_end: u32,
    habit: Option<u32>,
) -> DateTime<Utc> {
    let mut t = due;
    if let Some(last) = last_sent {
        t = t.max(last + Duration::days(i64::from(cap_days)));
    }
    let t = after_quiet_hours(t, tz, quiet_start, quiet_end);
    match habit {
        Some(hour) => at_hour(t, tz, hour, quiet_start, quiet_end),
        None => t,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn late_evening_in_stockholm_waits_until_morning() {
        let tz = zone(Some("Europe/Stockholm"), "UTC");
        // 21:30 UTC = 22:30 in Stockholm in winter.
        let at = Utc.with_ymd_and_hms(2026, 1, 10, 21, 30, 0).unwrap();
        let next = after_quiet_hours(at, &tz, 21, 8);
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 1, 11, 7, 0, 0).unwrap());
    }

    #[test]
    fn early_morning_waits_until_the_end_of_quiet_hours_the_same_day() {
        let tz = zone(Some("America/Sao_Paulo"), "UTC");
        let at = Utc.with_ymd_and_hms(2026, 1, 10, 6, 0, 0).unwrap(); // 03:00 local
        let next = after_quiet_hours(at, &tz, 21, 8);
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 1, 10, 11, 0, 0).unwrap());
    }

    #[test]
    fn the_frequency_cap_pushes_the_send_out() {
        let due = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
        let last = due - Duration::days(2);
        let next = next_send_time(due, Some(last), 7, &Zone::UTC, 21, 8, None);
        assert_eq!(next, last + Duration::days(7));
    }

    #[test]
    fn unknown_time_zones_fall_back() {
        assert_eq!(
            zone(Some("Mars/Olympus"), "Europe/Warsaw").name(),
            "Europe/Warsaw"
        );
        assert_eq!(zone(None, "nonsense"), Zone::UTC);
    }

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, h, m, 0).unwrap()
    }

    #[test]
    fn a_customer_who_orders_in_the_evening_has_an_evening_habit() {
        let tz = zone(Some("Europe/Warsaw"), "UTC");
        // 18:10, 18:40, 19:05 and 17:55 local (UTC+1 in January), and one lunchtime order.
        let times = [
            at(2, 17, 10),
            at(9, 17, 40),
            at(16, 18, 5),
            at(23, 16, 55),
            at(30, 11, 0),
        ];
        assert_eq!(habitual_hour(&times, &tz), Some(18));
        // Most orders in one hour and one two hours later: that hour, not the window's middle.
        let mut steady: Vec<_> = (1..=10).map(|d| at(d, 16, 20)).collect();
        steady.push(at(11, 18, 10));
        assert_eq!(habitual_hour(&steady, &tz), Some(17));
        // Scattered hours, or too few orders: no habit.
        let scattered = [at(2, 3, 0), at(3, 9, 0), at(4, 15, 0), at(5, 20, 0)];
        assert_eq!(habitual_hour(&scattered, &tz), None);
        assert_eq!(habitual_hour(&times[..2], &tz), None);
    }

    #[test]
    fn an_email_waits_for_the_habitual_hour_but_never_more_than_a_day() {
        let tz = zone(Some("Europe/Warsaw"), "UTC");
        // Due 09:30 local: goes at 18:00 local the same day.
        assert_eq!(
            next_send_time(at(10, 8, 30), None, 7, &tz, 21, 8, Some(18)),
            at(10, 17, 0)
        );
        // Due 19:30 local: past the hour today, so 18:00 tomorrow.
        assert_eq!(
            next_send_time(at(10, 18, 30), None, 7, &tz, 21, 8, Some(18)),
            at(11, 17, 0)
        );
        // Due within the habitual hour: at once.
        assert_eq!(
            next_send_time(at(10, 17, 20), None, 7, &tz, 21, 8, Some(18)),
            at(10, 17, 20)
        );
        // A habit inside quiet hours (a night owl) is not followed: the campaign's hours are.
        assert_eq!(
            next_send_time(at(10, 8, 30), None, 7, &tz, 21, 8, Some(23)),
            at(10, 8, 30)
        );
    }

    proptest! {
        #[test]
        fn the_habitual_hour_is_reached_within_a_day_and_is_never_quiet(secs in 0i64..400_000_000, hour in 0u32..24) {
            let due = Utc.timestamp_opt(1_600_000_000 + secs, 0).unwrap();
            let tz = zone(Some("America/Sao_Paulo"), "UTC");
            let next = next_send_time(due, None, 7, &tz, 21, 8, Some(hour));
            prop_assert!(next >= due);
            prop_assert!(next - due <= Duration::hours(25) + Duration::hours(24));
            prop_assert!(!is_quiet(tz.local(next).hour(), 21, 8));
            if !is_quiet(hour, 21, 8) && next != due {
                prop_assert_eq!(tz.local(next).hour(), hour);
            }
        }

        #[test]
        fn the_result_is_never_earlier_nor_quiet(secs in 0i64..400_000_000, start in 0u32..24, end in 0u32..24) {
            let at = Utc.timestamp_opt(1_600_000_000 + secs, 0).unwrap();
            let tz = zone(Some("Europe/Lisbon"), "UTC");
            let next = after_quiet_hours(at, &tz, start, end);
            prop_assert!(next >= at);
            prop_assert!(!is_quiet(tz.local(next).hour(), start, end));
            prop_assert!(next - at <= Duration::hours(25));
        }
    }
}
