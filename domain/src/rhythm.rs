//! Each customer's own rhythm: how regular their orders are, and whether they come at the same
//! time of year. Pure: the orders and the moment are given.
//!
//! # Regular buyers
//!
//! The fitted MBG/NBD model (see [`crate::model`]) treats a customer's orders as a Poisson process:
//! it knows their rate, not how regular they are, so a customer with 24 monthly orders who has been
//! quiet for almost five months still looks likely to be active. With at least [`MIN_GAPS`] gaps
//! between their purchase occasions (distinct UTC days), a customer's gaps are read as a gamma
//! renewal process: the scale is their median gap `μ`, the shape `k` comes from the variance `v`
//! of the gaps' logarithms (for a gamma, `v ≈ 1/k + 1/(2k²)`), pulled toward the Poisson model's
//! `v = 1.645` (shape 1) with the weight of [`PRIOR_GAPS`] gap. Logarithms, so one long holiday
//! among monthly orders does not make a regular buyer irregular. With `k ≥` [`REGULAR_SHAPE`]
//! (a coefficient of variation of about 0.5 or less) they are **regular**:
//!
//! ```text
//! S(q)        = (1 − ε) × Q(k, k q / μ) + ε × exp(−q / μ)       chance an active customer's gap is longer than q
//! P(active|q) = π S(q) / (π S(q) + 1 − π)                          π: the model's P(active) at their last order, at most 0.97
//! chance      = P(active|q) × (1 − S(w)),   w = max(horizon, 3μ)
//! ```
//!
//! `Q` is the regularized upper incomplete gamma function and `ε` = [`BREAK_SHARE`] the share of
//! gaps assumed to be breaks out of rhythm (a holiday, a stocked-up cupboard), which keeps a
//! regular buyer from lapsing the day after their usual gap. The chance is their own chance of an
//! order in the horizon (stretched to three gaps for slow buyers, so a quarterly buyer is not
//! judged over a window shorter than their gap). It replaces the model's chance in the lapse rules.
//! A customer whose gaps are not that regular is judged by the model alone.
//!
//! # Seasonal buyers
//!
//! A customer whose purchase occasions fall in at least two calendar years, over at least
//! [`MIN_SEASON_SPAN_DAYS`], and cluster at one time of year (their days of the year, as angles on
//! a circle, have a mean resultant length of at least [`SEASONAL_CONCENTRATION`]: within about
//! ±25 days of each other) is **seasonal**. Their season is the circular mean day; its spread
//! `σ = √(−2 ln R)` in days, at least a week. Their next season is its first day at least half a
//! year after their last order. They are at risk from [`SEASON_LEAD_DAYS`] + `σ` before it (the
//! at-risk flow reaches a Christmas buyer in early November) and lapsed once it has passed by
//! `max(`[`SEASON_GRACE_DAYS`]`, 3σ)` with no order.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;

mod category;

pub use category::{CategoryRhythm, GapPrior, Pool, SeasonPrior, MIN_CATEGORY_CUSTOMERS};

/// Gaps (five purchase occasions) a customer needs before their own regularity is judged.
pub const MIN_GAPS: usize = 4;
/// Gaps' worth of weight that the Poisson model's irregularity (shape 1) carries in a customer's
/// estimated shape.
pub const PRIOR_GAPS: f64 = 1.0;
/// The shape from which a customer's gaps count as regular.
pub const REGULAR_SHAPE: f64 = 4.0;
/// Share of a regular customer's gaps taken to be breaks out of their rhythm.
pub const BREAK_SHARE: f64 = 0.1;
/// The most P(active) at their last order that a regular buyer's rhythm starts from.
pub const MAX_P_LAST: f64 = 0.97;
/// Mean resultant length of the days of the year from which orders count as seasonal.
pub const SEASONAL_CONCENTRATION: f64 = 0.9;
/// A seasonal customer's orders must span at least this many days.
pub const MIN_SEASON_SPAN_DAYS: f64 = 300.0;
/// A seasonal customer is at risk this many days (plus the season's spread) before their season.
pub const SEASON_LEAD_DAYS: f64 = 28.0;
/// A seasonal customer lapses once their season passed by this many days (at least 3σ).
pub const SEASON_GRACE_DAYS: f64 = 28.0;
/// Variance of the logarithm of an exponential gap (trigamma(1) = π²/6).
const EXPONENTIAL_LOG_VARIANCE: f64 = 1.644_934_066_848_226_4;
const YEAR_DAYS: f64 = 365.2425;

/// How a customer's orders come, when they come in a recognisable rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rhythm {
    Regular(Regular),
    Seasonal(Season),
}

/// A regular buyer's gaps: a gamma renewal process with breaks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Regular {
    /// Gaps between purchase occasions that were read.
    pub gaps: usize,
    /// Their median gap (days): the scale of the renewal process.
    pub median_gap_days: f64,
    /// The gamma shape (1 is as irregular as a Poisson process; higher is more regular).
    pub shape: f64,
    /// Share of gaps taken to be breaks out of rhythm: [`BREAK_SHARE`] for a customer read by
    /// their own gaps alone, their category's for one read with its prior
    /// ([`CategoryRhythm`]).
    pub break_share: f64,
}

/// A seasonal buyer's time of year.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Season {
    /// Calendar years with an order.
    pub years: usize,
    /// The middle of their season, as a share of the year (0 = 1 January).
    pub year_fraction: f64,
    /// The season's spread (days).
    pub spread_days: f64,
    /// The middle of their next season (the first at least half a year after their last order).
    pub next: DateTime<Utc>,
}

/// The customer's rhythm from the times of their orders (oldest first), if they have one:
/// seasonal before regular (a yearly buyer with one order a year is both; the season is the
/// stricter reading).
pub fn of(order_times: &[DateTime<Utc>]) -> Option<Rhythm> {
    of_in(order_times, None)
}

/// [`of`] for a customer in a category with a fitted rhythm ([`CategoryRhythm`]): their own
/// season first; else the category's season when every order of theirs fell in it; else, when
/// the category has a gap prior, their gaps read with it (a customer with one order gets the
/// category's rhythm, one with many their own); else their own gaps alone, as [`of`].
pub fn of_in(order_times: &[DateTime<Utc>], category: Option<&CategoryRhythm>) -> Option<Rhythm> {
    let days = occasion_days(order_times);
    if let Some(s) = season(&days) {
        return Some(Rhythm::Seasonal(s));
    }
    if let Some(c) = category {
        if let Some(s) = c.season_for(&days) {
            return Some(Rhythm::Seasonal(s));
        }
        if let Some(g) = &c.gaps {
            return g.regular_for(&days).map(Rhythm::Regular);
        }
    }
    regular(&days).map(Rhythm::Regular)
}

/// The distinct UTC days of these orders, oldest first.
pub(crate) fn occasion_days(order_times: &[DateTime<Utc>]) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = order_times.iter().map(|t| t.date_naive()).collect();
    days.sort_unstable();
    days.dedup();
    days
}

fn regular(days: &[NaiveDate]) -> Option<Regular> {
    let mut gaps: Vec<f64> = days
        .windows(2)
        .map(|w| (w[1] - w[0]).num_days() as f64)
        .collect();
    if gaps.len() < MIN_GAPS {
        return None;
    }
    let n = gaps.len() as f64;
    let logs: Vec<f64> = gaps.iter().map(|g| g.ln()).collect();
    let mean_log = logs.iter().sum::<f64>() / n;
    let var = logs.iter().map(|l| (l - mean_log).powi(2)).sum::<f64>() / (n - 1.0);
    let pulled = (n * var + PRIOR_GAPS * EXPONENTIAL_LOG_VARIANCE) / (n + PRIOR_GAPS);
    // v = 1/k + 1/(2k²) solved for k.
    let shape = (1.0 + (1.0 + 2.0 * pulled).sqrt()) / (2.0 * pulled);
    let median_gap_days = median(&mut gaps);
    (shape >= REGULAR_SHAPE && median_gap_days > 0.0).then_some(Regular {
        gaps: gaps.len(),
        median_gap_days,
        shape,
        break_share: BREAK_SHARE,
    })
}

fn season(days: &[NaiveDate]) -> Option<Season> {
    let (first, last) = (*days.first()?, *days.last()?);
    let mut years: Vec<i32> = days.iter().map(|d| d.year()).collect();
    years.dedup();
    if years.len() < 2 || ((last - first).num_days() as f64) < MIN_SEASON_SPAN_DAYS {
        return None;
    }
    let angle = |d: &NaiveDate| year_fraction(*d) * std::f64::consts::TAU;
    let n = days.len() as f64;
    let c = days.iter().map(|d| angle(d).cos()).sum::<f64>() / n;
    let s = days.iter().map(|d| angle(d).sin()).sum::<f64>() / n;
    let r = c.hypot(s);
    if r < SEASONAL_CONCENTRATION {
        return None;
    }
    let fraction = (s.atan2(c) / std::f64::consts::TAU).rem_euclid(1.0);
    Season::after(last, years.len(), fraction, spread_of(r))
}

/// A season's spread (days, at least a week) from the mean resultant length of its days.
fn spread_of(r: f64) -> f64 {
    ((-2.0 * r.ln()).max(0.0).sqrt() * YEAR_DAYS / std::f64::consts::TAU).max(7.0)
}

impl Season {
    /// The season centred `fraction` of the way through the year for a customer whose last
    /// order was on `last`: its next middle is the first at least half a year after it.
    fn after(last: NaiveDate, years: usize, fraction: f64, spread_days: f64) -> Option<Season> {
        let last_at = day_start(last);
        let next = (last.year()..=last.year() + 2)
            .map(|y| season_day(y, fraction))
            .find(|c| *c >= last_at + Duration::days(182))?;
        Some(Season {
            years,
            year_fraction: fraction,
            spread_days,
            next,
        })
    }
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

fn year_length(year: i32) -> f64 {
    if NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
        366.0
    } else {
        365.0
    }
}

/// Where in its year a day falls (0 = 1 January).
fn year_fraction(d: NaiveDate) -> f64 {
    d.ordinal0() as f64 / year_length(d.year())
}

/// The moment `fraction` of the way through `year`.
fn season_day(year: i32, fraction: f64) -> DateTime<Utc> {
    let jan1 = NaiveDate::from_ymd_opt(year, 1, 1).expect("1 January");
    day_start(jan1) + days(fraction * year_length(year))
}

fn days(d: f64) -> Duration {
    Duration::seconds((d * 86_400.0).round() as i64)
}

impl Season {
    /// When the season's at-risk window opens.
    pub fn at_risk_from(&self) -> DateTime<Utc> {
        self.next - days(SEASON_LEAD_DAYS + self.spread_days)
    }

    /// When the season has passed without an order.
    pub fn lapses_at(&self) -> DateTime<Utc> {
        self.next + days(SEASON_GRACE_DAYS.max(3.0 * self.spread_days))
    }
}

impl Regular {
    /// The chance that an active customer's gap is longer than `quiet` days.
    pub fn survival(&self, quiet: f64) -> f64 {
        if quiet <= 0.0 {
            return 1.0;
        }
        let (k, mu) = (self.shape, self.median_gap_days);
        let e = self.break_share;
        (1.0 - e) * gamma_q(k, k * quiet / mu) + e * (-quiet / mu).exp()
    }

    /// The window the chance of an order is judged over: the horizon, or three gaps if longer.
    pub fn window(&self, horizon: f64) -> f64 {
        horizon.max(3.0 * self.median_gap_days)
    }

    /// P(active) after `quiet` days with no order, for a customer the model holds active with
    /// probability `p_last` at their last order.
    pub fn p_active(&self, p_last: f64, quiet: f64) -> f64 {
        let s = self.survival(quiet);
        let v = p_last * s / (p_last * s + 1.0 - p_last);
        if v.is_finite() {
            v
        } else {
            0.0
        }
    }

    /// The chance of an order within the window, after `quiet` days with no order.
    pub fn chance(&self, p_last: f64, horizon: f64, quiet: f64) -> f64 {
        self.p_active(p_last, quiet) * (1.0 - self.survival(self.window(horizon)))
    }

    /// The chance that an active customer's gap ends at `quiet` days, per day (the slope of
    /// [`Regular::survival`], negated).
    fn density(&self, quiet: f64) -> f64 {
        let (k, mu) = (self.shape, self.median_gap_days);
        let gamma = if quiet > 0.0 {
            ((k - 1.0) * quiet.ln() - k * quiet / mu + k * (k / mu).ln() - libm::lgamma(k)).exp()
        } else {
            0.0
        };
        let e = self.break_share;
        (1.0 - e) * gamma + e / mu * (-quiet / mu).exp()
    }

    /// The quiet days after which [`Regular::chance`] falls below `threshold` (0 when it already
    /// is at the last order; `None` when `threshold` is not in (0, 1) or it stays above it for a
    /// hundred years). The chance is below `threshold` exactly when the survival `S(q)` is below
    /// `s* = θ'(1 − π) / (π (1 − θ'))`, `θ' = threshold / (1 − S(w))`; `S` only falls, so
    /// Newton's method on it, kept inside a bracket that halves when a step would leave it,
    /// finds the crossing in a few steps (to under ten seconds).
    pub fn quiet_until(&self, p_last: f64, horizon: f64, threshold: f64) -> Option<f64> {
        if !(threshold > 0.0 && threshold < 1.0) {
            return None;
        }
        let t = threshold / (1.0 - self.survival(self.window(horizon)));
        if t >= 1.0 || p_last <= 0.0 {
            return Some(0.0);
        }
        if p_last >= 1.0 {
            return None;
        }
        let target = t * (1.0 - p_last) / (p_last * (1.0 - t));
        if target >= 1.0 {
            return Some(0.0);
        }
        let mu = self.median_gap_days;
        let (mut lo, mut hi) = (0.0, mu.max(1.0));
        while self.survival(hi) >= target {
            lo = hi;
            hi *= 2.0;
            if hi > 36_500.0 {
                return None;
            }
        }
        // Where the breaks' tail alone crosses: close when it dominates.
        let guess = mu * (self.break_share / target).ln();
        let mut q = if guess > lo && guess < hi {
            guess
        } else {
            0.5 * (lo + hi)
        };
        for _ in 0..100 {
            let gap = self.survival(q) - target;
            if gap >= 0.0 {
                lo = q;
            } else {
                hi = q;
            }
            let slope = -self.density(q);
            let next = (slope < 0.0)
                .then(|| q - gap / slope)
                .filter(|n| *n > lo && *n < hi)
                .unwrap_or(0.5 * (lo + hi));
            let step = (next - q).abs();
            q = next;
            if step < 1e-4 || hi - lo < 1e-4 {
                break;
            }
        }
        // The first moment below: a last step under 1e-4 days (Newton's steps shrink
        // quadratically) leaves the crossing within that of `q`.
        Some(if self.survival(q) < target {
            q
        } else {
            (q + 1e-4).min(hi)
        })
    }
}

/// The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a), for a > 0, x ≥ 0:
/// its series below a + 1, its continued fraction (modified Lentz) above (Numerical Recipes §6.2).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - libm::lgamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..500 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-14 {
                break;
            }
        }
        return (1.0 - sum * front).clamp(0.0, 1.0);
    }
    let tiny = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..500 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-14 {
            break;
        }
    }
    (front * h).clamp(0.0, 1.0)
}

/// The median of a non-empty slice, which it sorts in place (callers own a scratch copy).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    fn every(start: DateTime<Utc>, gaps: &[f64]) -> Vec<DateTime<Utc>> {
        let mut t = start;
        let mut v = vec![t];
        for g in gaps {
            t += days(*g);
            v.push(t);
        }
        v
    }

    #[test]
    fn the_incomplete_gamma_function_matches_known_values() {
        // Q(1, x) = e^-x; Q(2, x) = (1 + x) e^-x; Q(0.5, x) = erfc(√x).
        for x in [0.0, 0.1, 1.0, 2.5, 10.0] {
            assert!((gamma_q(1.0, x) - (-x).exp()).abs() < 1e-12, "{x}");
            assert!(
                (gamma_q(2.0, x) - (1.0 + x) * (-x).exp()).abs() < 1e-12,
                "{x}"
            );
            assert!(
                (gamma_q(0.5, x) - libm::erfc(x.sqrt())).abs() < 1e-12,
                "{x}"
            );
        }
        // A large shape: Q(25, 25) is a little under one half.
        let q = gamma_q(25.0, 25.0);
        assert!((q - 0.4734).abs() < 1e-3, "{q}");
    }

    #[test]
    fn monthly_buyers_are_regular_and_irregular_ones_are_not() {
        let monthly = every(at(2023, 1, 5), &[30.0; 23]);
        let Some(Rhythm::Regular(r)) = of(&monthly) else {
            panic!("{:?}", of(&monthly))
        };
        assert_eq!((r.gaps, r.median_gap_days), (23, 30.0));
        assert!(r.shape > 10.0, "{r:?}");
        // One long holiday among them does not make them irregular.
        let mut gaps = vec![30.0; 22];
        gaps[10] = 120.0;
        assert!(matches!(
            of(&every(at(2023, 1, 5), &gaps)),
            Some(Rhythm::Regular(_))
        ));
        // Gaps of 3 to 200 days are no rhythm; nor are four orders (three gaps).
        let irregular = every(at(2023, 1, 5), &[3.0, 200.0, 15.0, 90.0, 7.0, 60.0]);
        assert_eq!(of(&irregular), None);
        assert_eq!(of(&every(at(2023, 1, 5), &[30.0; 3])), None);
        // Orders on one day are one occasion.
        let mut same_day = monthly.clone();
        same_day.push(monthly[5] + Duration::hours(3));
        same_day.sort();
        assert_eq!(of(&same_day), of(&monthly));
    }

    #[test]
    fn a_regular_buyers_chance_falls_once_they_miss_their_gaps() {
        let r = Regular {
            gaps: 23,
            median_gap_days: 30.0,
            shape: 12.0,
            break_share: BREAK_SHARE,
        };
        let p_last = 0.967;
        let chance = |q| r.chance(p_last, 90.0, q);
        assert!(chance(27.0) > 0.9, "{}", chance(27.0));
        assert!(chance(143.0) < 0.05, "{}", chance(143.0));
        let mut q = 0.0;
        while q < 400.0 {
            assert!(chance(q + 1.0) <= chance(q));
            q += 1.0;
        }
        let lapse = r.quiet_until(p_last, 90.0, 0.25).unwrap();
        let risk = r.quiet_until(p_last, 90.0, 0.4).unwrap();
        // At risk after missing about one and a half gaps, lapsed after missing two.
        assert!(
            risk > 40.0 && risk < lapse && lapse < 75.0,
            "{risk} {lapse}"
        );
        assert!(chance(lapse - 0.01) >= 0.25 && chance(lapse + 0.01) < 0.25);
        assert_eq!(r.quiet_until(p_last, 90.0, 1.0), None);
        assert_eq!(r.quiet_until(0.1, 90.0, 0.25), Some(0.0));
    }

    #[test]
    fn christmas_buyers_are_seasonal_with_their_next_season_in_december() {
        let orders = [
            at(2021, 12, 12),
            at(2022, 12, 9),
            at(2022, 12, 20),
            at(2023, 12, 14),
            at(2024, 12, 11),
        ];
        let Some(Rhythm::Seasonal(s)) = of(&orders) else {
            panic!("{:?}", of(&orders))
        };
        assert_eq!(s.years, 4);
        assert_eq!(s.next.date_naive().year(), 2025);
        assert_eq!(s.next.date_naive().month(), 12);
        let risk = s.at_risk_from().date_naive();
        assert_eq!(risk.month(), 11);
        assert!(risk.day() <= 10, "{risk}");
        assert_eq!(s.lapses_at().date_naive().year(), 2026);
        // Two Decembers a year apart are a season too; one year of orders is not.
        assert!(matches!(
            of(&[at(2023, 12, 10), at(2024, 12, 12)]),
            Some(Rhythm::Seasonal(_))
        ));
        assert_eq!(of(&[at(2024, 1, 10), at(2024, 12, 12)]), None);
        // Orders all year round are no season.
        let monthly = every(at(2022, 1, 5), &[30.0; 30]);
        assert!(matches!(of(&monthly), Some(Rhythm::Regular(_))));
    }
}
