//! Dates and times as the operator writes them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::{CliError, CliResult};

/// Reads `2026-03-01`, `2026-03-01T09:00:00Z` (any RFC 3339 offset) or `2026-03-01 09:00:00`
/// (UTC). A bare date means midnight UTC.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| Utc.from_utc_datetime(&n))
}

/// [`parse_instant`] for a command-line flag, with the error that names the flag.
pub fn parse_flag(flag: &'static str, text: &str) -> CliResult<DateTime<Utc>> {
    parse_instant(text).ok_or_else(|| CliError::BadDate {
        flag,
        value: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_times_and_offsets_are_all_understood() {
        let midnight = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(parse_instant("2026-03-01"), Some(midnight));
        assert_eq!(parse_instant("2026-03-01T00:00:00Z"), Some(midnight));
        assert_eq!(parse_instant("2026-03-01T01:00:00+01:00"), Some(midnight));
        assert_eq!(parse_instant("2026-03-01 00:00:00"), Some(midnight));
        assert_eq!(parse_instant("01/03/2026"), None);
        assert_eq!(parse_instant("2026-02-30"), None);
    }

    #[test]
    fn a_bad_flag_date_names_the_flag() {
        let e = parse_flag("--at", "tomorrow").unwrap_err().to_string();
        assert!(e.contains("--at") && e.contains("tomorrow"), "{e}");
    }
}
