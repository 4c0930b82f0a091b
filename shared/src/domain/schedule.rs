//! When an email may go out: quiet hours in the customer's time zone and the frequency cap.

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

/// The earliest time an email may go out: not before `due`, not within `cap_days` of the last
/// email, not in quiet hours.
pub fn next_send_time(
    due: DateTime<Utc>,
    last_sent: Option<DateTime<Utc>>,
    cap_days: u32,
    tz: &Zone,
    quiet_start: u32,
    quiet_end: u32,
) -> DateTime<Utc> {
    let mut t = due;
    if let Some(last) = last_sent {
        t = t.max(last + Duration::days(i64::from(cap_days)));
    }
    after_quiet_hours(t, tz, quiet_start, quiet_end)
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
        let next = next_send_time(due, Some(last), 7, &Zone::UTC, 21, 8);
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

    proptest! {
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
