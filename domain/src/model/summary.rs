//! What the model knows of one customer: repeat occasions, recency and age, in days.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::customer::Profile;

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
    if orders.is_sorted_by_key(|(t, _)| *t) {
        return summarize_sorted(orders.iter().copied(), now);
    }
    let mut sorted = orders.to_vec();
    sorted.sort_by_key(|(t, _)| *t);
    summarize_sorted(sorted.into_iter(), now)
}

/// [`summarize`] of orders oldest first, in one pass: orders on one UTC day are one occasion.
fn summarize_sorted(
    orders: impl Iterator<Item = (DateTime<Utc>, f64)>,
    now: DateTime<Utc>,
) -> Option<Summary> {
    let mut orders = orders.map(|(t, v)| (t.date_naive(), v));
    let (first_day, mut day_total) = orders.next()?;
    let mut last_day = first_day;
    let mut first_total = None;
    let (mut repeats, mut repeat_total) = (0u32, 0.0);
    for (d, v) in orders {
        if d == last_day {
            day_total += v;
            continue;
        }
        // The occasion on `last_day` is complete.
        match first_total {
            None => first_total = Some(day_total),
            Some(_) => repeat_total += day_total,
        }
        repeats += 1;
        (last_day, day_total) = (d, v);
    }
    // The repeat occasions' mean value; a one-order customer's own order value.
    let mean_value = match first_total {
        None => day_total,
        Some(_) => (repeat_total + day_total) / f64::from(repeats),
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

/// A profile's summary at `now`. Orders dropped from the bounded history count as earlier occasions.
pub fn profile_summary(profile: &Profile, now: DateTime<Utc>) -> Option<Summary> {
    let orders = profile.orders.iter().map(|o| (o.at, o.net().0 as f64));
    let mut s = if profile.orders.is_sorted_by_key(|o| o.at) {
        summarize_sorted(orders, now)?
    } else {
        summarize(&orders.collect::<Vec<_>>(), now)?
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
}
