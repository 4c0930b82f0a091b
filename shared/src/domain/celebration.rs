//! Birthdays and anniversaries: a genuine reward for past loyalty, once a year per occasion, on
//! the day itself in the customer's time zone. Pure: the day is given, never read.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::customer::Profile;
use super::zone::Zone;
use crate::campaign::config::{CampaignConfig, LapsePolicy};

/// A birthday: month and day, with the year when the shop knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Birthday {
    pub year: Option<i32>,
    pub month: u32,
    pub day: u32,
}

/// A birthday that is not a date.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("birthday {0:?} is not a date: write YYYY-MM-DD (1990-04-17) or, without the year, --MM-DD (--04-17)")]
pub struct BirthdayError(pub String);

impl Birthday {
    /// Parses `YYYY-MM-DD` or `--MM-DD` (ISO 8601 without the year). February 29 is accepted
    /// without a year; with one, only in a leap year.
    pub fn parse(text: &str) -> Result<Birthday, BirthdayError> {
        let err = || BirthdayError(text.to_string());
        let t = text.trim();
        if let Some(md) = t.strip_prefix("--") {
            let (m, d) = md.split_once('-').ok_or_else(err)?;
            if m.len() != 2 || d.len() != 2 {
                return Err(err());
            }
            let (month, day) = (m.parse().map_err(|_| err())?, d.parse().map_err(|_| err())?);
            // 2000 is a leap year: every month-day that ever exists is valid in it.
            NaiveDate::from_ymd_opt(2000, month, day).ok_or_else(err)?;
            return Ok(Birthday {
                year: None,
                month,
                day,
            });
        }
        let date = NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| err())?;
        if t.len() != 10 || !(1900..=2100).contains(&date.year()) {
            return Err(err());
        }
        Ok(Birthday {
            year: Some(date.year()),
            month: date.month(),
            day: date.day(),
        })
    }
}

impl fmt::Display for Birthday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.year {
            Some(y) => write!(f, "{y:04}-{:02}-{:02}", self.month, self.day),
            None => write!(f, "--{:02}-{:02}", self.month, self.day),
        }
    }
}

impl TryFrom<String> for Birthday {
    type Error = BirthdayError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Birthday::parse(&s)
    }
}

impl From<Birthday> for String {
    fn from(b: Birthday) -> String {
        b.to_string()
    }
}

/// What is celebrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Occasion {
    Birthday,
    /// The anniversary of becoming a customer: the sign-up, or the first order when that came
    /// first or no sign-up date is known.
    Anniversary,
}

impl Occasion {
    pub fn as_str(self) -> &'static str {
        match self {
            Occasion::Birthday => "birthday",
            Occasion::Anniversary => "anniversary",
        }
    }
}

/// The day of `month`-`day` in `year`; February 29 falls on the 28th in other years.
fn in_year(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day).or_else(|| {
        (month == 2 && day == 29)
            .then(|| NaiveDate::from_ymd_opt(year, 2, 28))
            .flatten()
    })
}

/// The day of `occasion` for this customer in `year`, in their time zone `tz`, if there is one
/// (a birthday they gave; an anniversary from the year after they became a customer on, see
/// [`Profile::customer_since`]).
pub fn day_in(profile: &Profile, occasion: Occasion, tz: &Zone, year: i32) -> Option<NaiveDate> {
    match occasion {
        Occasion::Birthday => {
            let b = profile.birthday?;
            in_year(year, b.month, b.day)
        }
        Occasion::Anniversary => {
            let first = tz.date(profile.customer_since()?);
            (year > first.year())
                .then(|| in_year(year, first.month(), first.day()))
                .flatten()
        }
    }
}

/// The occasion to celebrate at `now` (on its day in the customer's time zone), if any and not
/// celebrated yet this year. A birthday comes first when both fall on the same day; the
/// anniversary is then not sent that year (one reward a day is enough).
pub fn due_today(profile: &Profile, tz: &Zone, now: DateTime<Utc>) -> Option<Occasion> {
    let today = tz.date(now);
    [Occasion::Birthday, Occasion::Anniversary]
        .into_iter()
        .find(|o| day_in(profile, *o, tz, today.year()) == Some(today))
        .filter(|o| profile.celebrated.get(o) != Some(&today.year()))
}

/// The start (local midnight) of the next occasion day after today's, for the due index.
pub fn next_day_start(profile: &Profile, tz: &Zone, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = tz.date(now);
    [Occasion::Birthday, Occasion::Anniversary]
        .into_iter()
        .flat_map(|o| {
            [today.year(), today.year() + 1]
                .into_iter()
                .filter_map(move |y| day_in(profile, o, tz, y))
        })
        .filter(|d| *d > today)
        .min()
        .and_then(|d| {
            // Midnight may not exist (a daylight-saving gap): the first hour that does.
            (0..3).find_map(|h| tz.earliest(d.and_hms_opt(h, 0, 0)?))
        })
}

/// When the scheduler should next look at a customer in no flow: when they lapse (or turn at
/// risk, with an at-risk flow), or on their next birthday or anniversary (with a celebration
/// flow; now, if one is due today), whichever comes first. `lapse` is the campaign's policy with
/// its fitted customer model.
pub fn next_look(
    profile: &Profile,
    lapse: &LapsePolicy,
    config: &CampaignConfig,
    tz: &Zone,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let lapse = super::lapse::next_look(profile, lapse, config.at_risk.is_some(), now);
    if config.celebration.is_none() {
        return lapse;
    }
    let occasion = match due_today(profile, tz, now) {
        Some(_) => Some(now),
        None => next_day_start(profile, tz, now),
    };
    match (lapse, occasion) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Records that `occasion` was celebrated in the year of `now` (in the customer's time zone).
pub fn mark(profile: &mut Profile, occasion: Occasion, tz: &Zone, now: DateTime<Utc>) {
    profile.celebrated.insert(occasion, tz.date(now).year());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::customer::OrderRecord;
    use crate::domain::money::Money;
    use chrono::TimeZone;

    fn zone(name: &str) -> Zone {
        name.parse().unwrap()
    }

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    #[test]
    fn birthdays_parse_with_or_without_the_year_and_bad_ones_are_named() {
        assert_eq!(
            Birthday::parse("1990-04-17"),
            Ok(Birthday {
                year: Some(1990),
                month: 4,
                day: 17
            })
        );
        assert_eq!(Birthday::parse("--02-29").unwrap().to_string(), "--02-29");
        for bad in [
            "17/04/1990",
            "1990-02-30",
            "1991-02-29",
            "--13-01",
            "--4-17",
            "",
            "tomorrow",
            "1990-4-7",
        ] {
            let e = Birthday::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let b: Birthday = serde_json::from_str("\"--12-24\"").unwrap();
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"--12-24\"");
        assert!(serde_json::from_str::<Birthday>("\"12-24\"").is_err());
    }

    #[test]
    fn a_birthday_is_due_on_its_day_in_the_customers_zone_once_a_year() {
        let tz = zone("Asia/Tokyo");
        let mut p = Profile::new("c");
        p.birthday = Some(Birthday::parse("--04-17").unwrap());
        // 16 April 16:00 UTC is already 17 April 01:00 in Tokyo.
        assert_eq!(due_today(&p, &tz, at(2026, 4, 16, 14)), None);
        assert_eq!(
            due_today(&p, &tz, at(2026, 4, 16, 16)),
            Some(Occasion::Birthday)
        );
        assert_eq!(due_today(&p, &zone("UTC"), at(2026, 4, 16, 16)), None);
        mark(&mut p, Occasion::Birthday, &tz, at(2026, 4, 16, 16));
        assert_eq!(
            due_today(&p, &tz, at(2026, 4, 17, 3)),
            None,
            "once this year"
        );
        assert_eq!(
            due_today(&p, &tz, at(2027, 4, 17, 3)),
            Some(Occasion::Birthday)
        );
        assert_eq!(
            next_day_start(&p, &tz, at(2026, 4, 17, 3)),
            Some(at(2027, 4, 16, 15))
        );
    }

    #[test]
    fn the_anniversary_of_the_first_order_comes_from_the_next_year_on() {
        let tz = zone("Europe/Stockholm");
        let mut p = Profile::new("c");
        p.record_order(OrderRecord {
            at: at(2024, 2, 29, 12),
            amount: Money(1000),
            product: None,
            category: None,
            currency: None,
        });
        assert_eq!(
            due_today(&p, &tz, at(2024, 2, 29, 13)),
            None,
            "not the first order's own day"
        );
        assert_eq!(
            next_day_start(&p, &tz, at(2024, 3, 1, 0)),
            Some(at(2025, 2, 27, 23))
        );
        assert_eq!(
            due_today(&p, &tz, at(2025, 2, 28, 9)),
            Some(Occasion::Anniversary),
            "the 28th outside leap years"
        );
        assert_eq!(
            due_today(&p, &tz, at(2028, 2, 29, 9)),
            Some(Occasion::Anniversary)
        );
        // A birthday the same day wins.
        p.birthday = Some(Birthday::parse("1980-02-28").unwrap());
        assert_eq!(
            due_today(&p, &tz, at(2025, 2, 28, 9)),
            Some(Occasion::Birthday)
        );
    }
}
