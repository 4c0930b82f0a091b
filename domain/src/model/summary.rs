//! What the model knows of one customer: repeat occasions, recency and age, in days.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::customer::Profile;
use crate::money::{Money, Valuation};

/// What the model needs to know of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Repeat purchase occasions (distinct order days after the first).
    pub frequency: u32,
    /// Days from the first to the last occasion.
    pub recency_days: f64,
    /// Days from the first occasion to now.
    pub age_days: f64,
    /// Mean value of the repeat occasions (minor units); without repeats, the one occasion's value.
    pub mean_value: f64,
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_seconds() as f64 / 86_400.0
}

/// A summary from `(time, value in minor units)` orders in any order; `None` without orders.
/// Times are counted from the start of the first order's UTC day; a `now` before the last order
/// counts as the last order's time (never a negative age).
pub fn summarize(orders: &[(DateTime<Utc>, f64)], now: DateTime<Utc>) -> Option<Summary> {
    let valued = |(t, v): &(DateTime<Utc>, f64)| (*t, Some(*v));
    if orders.is_sorted_by_key(|(t, _)| *t) {
        return summarize_sorted(orders.iter().map(valued), now);
    }
    let mut sorted = orders.to_vec();
    sorted.sort_by_key(|(t, _)| *t);
    summarize_sorted(sorted.iter().map(valued), now)
}

/// One purchase occasion (a UTC day's orders): the sum of the values it has, and whether any.
#[derive(Clone, Copy)]
struct Occasion {
    total: f64,
    valued: bool,
}

impl Occasion {
    fn of(v: Option<f64>) -> Occasion {
        Occasion {
            total: v.unwrap_or(0.0),
            valued: v.is_some(),
        }
    }

    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.total += v;
            self.valued = true;
        }
    }
}

/// [`summarize`] of orders oldest first, in one pass: orders on one UTC day are one occasion. An
/// order without a value (`None`: paid in another currency than the customer's) is an occasion
/// like any other, but adds nothing to the mean value, so amounts of two currencies are never
/// added together.
fn summarize_sorted(
    orders: impl Iterator<Item = (DateTime<Utc>, Option<f64>)>,
    now: DateTime<Utc>,
) -> Option<Summary> {
    let mut orders = orders.map(|(t, v)| (t.date_naive(), v));
    let (first_day, v) = orders.next()?;
    let mut day = Occasion::of(v);
    let mut last_day = first_day;
    let mut first: Option<Occasion> = None;
    let (mut repeats, mut valued, mut repeat_total) = (0u32, 0u32, 0.0);
    let mut close = |o: Occasion, valued: &mut u32| {
        if o.valued {
            repeat_total += o.total;
            *valued += 1;
        }
    };
    for (d, v) in orders {
        if d == last_day {
            day.add(v);
            continue;
        }
        // The occasion on `last_day` is complete.
        match first {
            None => first = Some(day),
            Some(_) => close(day, &mut valued),
        }
        repeats += 1;
        (last_day, day) = (d, Occasion::of(v));
    }
    // The repeat occasions' mean value; a one-order customer's own order value.
    let mean_value = match first {
        None => day.total,
        Some(_) => {
            close(day, &mut valued);
            if valued > 0 {
                repeat_total / f64::from(valued)
            } else {
                0.0
            }
        }
    };
    let (first, last) = (day_start(first_day), day_start(last_day));
    let recency = days_between(first, last);
    Some(Summary {
        frequency: repeats,
        recency_days: recency,
        age_days: days_between(first, now).max(recency),
        mean_value: mean_value.max(0.0),
    })
}

impl Summary {
    /// The summary with its mean value in the campaign currency of `valuation`: a customer who
    /// pays in `currency` (`None`: the campaign's) has theirs converted at the configured rate;
    /// without a rate it is 0, which keeps the customer out of the spend fit (their orders still
    /// count in the purchase fit). So a fit over many customers never adds kronor to euros.
    pub fn valued_in(mut self, currency: Option<&str>, valuation: &Valuation<'_>) -> Summary {
        let from = currency.unwrap_or(valuation.currency);
        self.mean_value = valuation
            .convert(Money(self.mean_value.round() as i64), from)
            .map_or(0.0, |m| m.0 as f64);
        self
    }
}

/// A profile's summary at `now`. Orders dropped from the bounded history count as earlier
/// occasions. The mean value is in the customer's currency (`Profile::currency`): orders they
/// paid in another count as occasions, not in the mean.
pub fn profile_summary(profile: &Profile, now: DateTime<Utc>) -> Option<Summary> {
    let orders = profile
        .orders
        .iter()
        .map(|o| (o.at, o.currency.is_none().then(|| o.net().0 as f64)));
    let mut s = if profile.orders.is_sorted_by_key(|o| o.at) {
        summarize_sorted(orders, now)?
    } else {
        let mut all: Vec<_> = orders.collect();
        all.sort_by_key(|(t, _)| *t);
        summarize_sorted(all.into_iter(), now)?
    };
    let dropped = (profile.order_count as usize).saturating_sub(profile.orders.len());
    if dropped > 0 {
        if let Some(first) = profile.first_order_at {
            let first = day_start(first.date_naive());
            let kept_first = day_start(profile.orders[0].at.date_naive());
            let shift = days_between(first, kept_first).max(0.0);
            s.frequency += dropped as u32;
            s.recency_days += shift;
            s.age_days += shift;
        }
    }
    Some(s)
}

/// A profile's summary at `now` for a fit over many customers: its mean value in the campaign
/// currency ([`Summary::valued_in`]).
pub fn fit_summary(
    profile: &Profile,
    now: DateTime<Utc>,
    valuation: &Valuation<'_>,
) -> Option<Summary> {
    profile_summary(profile, now).map(|s| s.valued_in(profile.currency.as_deref(), valuation))
}

/// The moment a customer whose first occasion was on `first_day` reaches `age` days.
pub fn at_age(first_order_at: DateTime<Utc>, age_days: f64) -> DateTime<Utc> {
    let secs = (age_days * 86_400.0).round().clamp(0.0, 1e11) as i64;
    day_start(first_order_at.date_naive()) + Duration::seconds(secs)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn same_day_orders_are_one_occasion() {
        let d = |day, h| Utc.with_ymd_and_hms(2026, 1, day, h, 0, 0).unwrap();
        let orders = [
            (d(1, 9), 100.0),
            (d(1, 17), 50.0),
            (d(11, 8), 200.0),
            (d(21, 8), 400.0),
        ];
        let now = d(31, 0);
        let sm = summarize(&orders, now).unwrap();
        assert_eq!(sm.frequency, 2);
        assert_eq!(sm.recency_days, 20.0);
        assert_eq!(sm.age_days, 30.0);
        assert_eq!(sm.mean_value, 300.0);
        assert!(summarize(&[], now).is_none());
        let one = summarize(&orders[..2], now).unwrap();
        assert_eq!(
            (one.frequency, one.recency_days, one.mean_value),
            (0, 0.0, 150.0)
        );
        // Orders in any order summarize as the same occasions.
        let mut shuffled = orders;
        shuffled.swap(0, 3);
        shuffled.swap(1, 2);
        assert_eq!(summarize(&shuffled, now), Some(sm));
        // The last day's orders join one occasion too.
        let late = [orders[0], orders[2], (d(11, 20), 100.0)];
        let sm = summarize(&late, now).unwrap();
        assert_eq!((sm.frequency, sm.mean_value), (1, 300.0));
    }

    #[test]
    fn kronor_are_never_added_to_euros_in_a_customer_or_across_a_fit() {
        use crate::customer::OrderRecord;
        let d = |day| Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap();
        let mut p = Profile::new("c1".parse().unwrap());
        for (day, minor, currency) in [(1, 2000, "EUR"), (11, 3000, "EUR"), (21, 40000, "SEK")] {
            p.record_order_in(
                OrderRecord {
                    at: d(day),
                    amount: Money(minor),
                    ..OrderRecord::default()
                },
                currency,
            );
        }
        let s = profile_summary(&p, d(31)).unwrap();
        assert_eq!(s.frequency, 2, "the SEK order is an occasion");
        assert_eq!(s.mean_value, 3000.0, "its kronor are not in the euro mean");

        let rates = crate::money::ExchangeRates::from([("EUR".to_string(), 11.0)]);
        let sek = Valuation {
            currency: "SEK",
            rates: &rates,
        };
        assert_eq!(fit_summary(&p, d(31), &sek).unwrap().mean_value, 33000.0);
        let none = crate::money::ExchangeRates::new();
        let no_rate = Valuation {
            currency: "SEK",
            rates: &none,
        };
        assert_eq!(
            fit_summary(&p, d(31), &no_rate).unwrap().mean_value,
            0.0,
            "without a rate the customer stays out of the spend fit"
        );
    }
}
