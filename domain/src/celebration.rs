//! Birthdays and anniversaries: a genuine reward for past loyalty, once a year per occasion, on
//! the day itself in the customer's time zone. Pure: the day is given, never read.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::customer::Profile;
/// The profile's dates and occasions are its own vocabulary (in `customer`): this module keeps
/// the rules over them.
pub use super::customer::{Birthday, BirthdayError, Occasion};
use super::zone::Zone;

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

/// Records that `occasion` was celebrated in the year of `now` (in the customer's time zone).
pub fn mark(profile: &mut Profile, occasion: Occasion, tz: &Zone, now: DateTime<Utc>) {
    profile.celebrated.insert(occasion, tz.date(now).year());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::OrderRecord;
    use crate::money::Money;
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
        let mut p = Profile::new("c".parse().unwrap());
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
        let mut p = Profile::new("c".parse().unwrap());
        p.record_order(OrderRecord {
            at: at(2024, 2, 29, 12),
            amount: Money(1000),
            product: None,
            category: None,
            currency: None,
            order_id: None,
            refunded: Default::default(),
            refund_ids: Vec::new(),
            lines: Vec::new(),
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
