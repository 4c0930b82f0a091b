//! Time zones by IANA name, resolved against the tz database bundled into the binary.
//!
//! The database is jiff's bundled copy: about 200 KB of compressed TZif bytes, parsed on first
//! use of a zone and cached. It replaces chrono-tz, whose transition tables compile into about
//! 1.8 MB of pointer-laden data that each function's binary had to relocate at start. Nothing is
//! read from the host's `/usr/share/zoneinfo`, so a zone means the same on every machine.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use jiff::tz::{AmbiguousOffset, TimeZone};

/// An IANA time zone (`Europe/Stockholm`, `UTC`, …). Read from JSON as its name.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Zone(TimeZone);

/// A name that is not in the bundled time-zone database.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a time zone: use an IANA name like \"Europe/Stockholm\" or \"UTC\"")]
pub struct UnknownZone(pub String);

impl Zone {
    pub const UTC: Zone = Zone(TimeZone::UTC);

    /// The zone's IANA name.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The wall-clock time in this zone at `at`.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        let offset = jiff::Timestamp::from_second(at.timestamp())
            .map(|t| self.0.to_offset(t).seconds())
            .unwrap_or(0);
        at.naive_utc() + Duration::seconds(i64::from(offset))
    }

    /// The calendar day in this zone at `at`.
    pub fn date(&self, at: DateTime<Utc>) -> NaiveDate {
        self.local(at).date()
    }

    /// The first instant whose wall-clock time here is `local`; `None` when that time does not
    /// exist (it falls in a daylight-saving gap). Of a time that occurs twice, the earlier.
    pub fn earliest(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let civil = jiff::civil::DateTime::new(
            i16::try_from(local.year()).ok()?,
            i8::try_from(local.month()).ok()?,
            i8::try_from(local.day()).ok()?,
            i8::try_from(local.hour()).ok()?,
            i8::try_from(local.minute()).ok()?,
            i8::try_from(local.second()).ok()?,
            0,
        )
        .ok()?;
        let offset = match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Fold { before, .. } => before,
            AmbiguousOffset::Gap { .. } => return None,
        };
        Some((local - Duration::seconds(i64::from(offset.seconds()))).and_utc())
    }
}

impl FromStr for Zone {
    type Err = UnknownZone;

    fn from_str(name: &str) -> Result<Zone, UnknownZone> {
        TimeZone::get(name)
            .map(Zone)
            .map_err(|_| UnknownZone(name.to_string()))
    }
}

impl TryFrom<String> for Zone {
    type Error = UnknownZone;
    /// The name as sent, less surrounding white space.
    fn try_from(name: String) -> Result<Zone, UnknownZone> {
        name.trim().parse()
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        at(y, mo, d, h, mi).naive_utc()
    }

    #[test]
    fn names_resolve_and_unknown_ones_are_refused() {
        let z: Zone = "Europe/Stockholm".parse().unwrap();
        assert_eq!(z.name(), "Europe/Stockholm");
        assert_eq!("UTC".parse::<Zone>().unwrap(), Zone::UTC);
        let err = "Mars/Olympus".parse::<Zone>().unwrap_err();
        assert!(err.to_string().contains("IANA name"), "{err}");
        assert!("".parse::<Zone>().is_err());
    }

    #[test]
    fn wall_clock_follows_daylight_saving_time() {
        let z: Zone = "Europe/Warsaw".parse().unwrap();
        assert_eq!(z.local(at(2026, 1, 10, 12, 0)), local(2026, 1, 10, 13, 0));
        assert_eq!(z.local(at(2026, 7, 10, 12, 0)), local(2026, 7, 10, 14, 0));
        let sp: Zone = "America/Sao_Paulo".parse().unwrap();
        assert_eq!(
            sp.date(at(2026, 1, 10, 2, 0)),
            local(2026, 1, 9, 0, 0).date()
        );
    }

    #[test]
    fn local_times_map_back_to_instants() {
        let z: Zone = "Europe/Lisbon".parse().unwrap();
        // Ordinary: 08:00 WEST = 07:00 UTC.
        assert_eq!(
            z.earliest(local(2026, 7, 1, 8, 0)),
            Some(at(2026, 7, 1, 7, 0))
        );
        // Spring forward, 29 March 2026: 01:00 → 02:00, so 01:30 does not exist.
        assert_eq!(z.earliest(local(2026, 3, 29, 1, 30)), None);
        // Fall back, 25 October 2026: 01:30 happens twice; the earlier is 00:30 UTC.
        assert_eq!(
            z.earliest(local(2026, 10, 25, 1, 30)),
            Some(at(2026, 10, 25, 0, 30))
        );
    }
}
