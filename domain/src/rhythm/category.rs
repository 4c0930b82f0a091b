//! Each category's rhythm, fitted on the shop's own customers, as the prior of a customer with few
//! orders: a hierarchical reading of gaps, and a time of year.
//!
//! # Gaps
//!
//! The logarithm of customer `i`'s gaps is taken as normal around their own level `θᵢ`, with a
//! spread `σ²` shared in their category, and the levels as normal around the category's `m` with
//! a spread `τ²` (a lognormal gap model with a normal prior on each customer's level). From the
//! customers of a category with at least one gap ([`Pool`]):
//!
//! ```text
//! σ²  = Σᵢ Σⱼ (ln gᵢⱼ − mean ln gᵢ)² / Σᵢ (nᵢ − 1)       pooled within customers, breaks left out
//! m   = mean over customers of mean ln gᵢ
//! τ²  = var over customers of mean ln gᵢ − mean of σ²/nᵢ   at least 0.01
//! ε   = (breaks + 1) / (gaps judged + 20)                  a gap over 2.5× the customer's median is a break
//! ```
//!
//! c²  = Σᵢ Σⱼ (gᵢⱼ / mean gᵢ − 1)² / Σᵢ (nᵢ − 1)         the gaps' squared coefficient of variation
//!
//! A customer with `n` gaps (their breaks left out) is read with it: their own spreads
//! `σᵢ² = (4σ² + Σ(ln g − mean)²) / (4 + n − 1)` and `cᵢ² = (4c² + Σ(g/mean − 1)²) / (4 + n − 1)`
//! (four gaps' worth of the category's), their level's posterior
//! `θ̂ = (m/τ² + Σ ln g/σᵢ²) / (1/τ² + n/σᵢ²)` with variance `V = 1/(1/τ² + n/σᵢ²)`, and their next
//! gap's relative spread `cᵢ² + V`. That is the gamma renewal process of [`crate::rhythm`] with
//! median gap `e^θ̂`, shape `k = 1/(cᵢ² + V)` (a gamma's squared coefficient of variation is
//! `1/k`; read from the gaps themselves, so a short gap weighs no more than a long one) and break
//! share `ε`: **regular** when `k ≥` [`super::REGULAR_SHAPE`]. A customer with one order
//! has `n = 0` and gets the category's rhythm (their level is the category's, with its spread
//! among customers); one with many orders gets their own.
//!
//! A customer with one order may never order again. Of the category's customers whose first order
//! is at least `W = e^(m + 2√(τ² + σ²))` days (a long gap of the category's: 97.7% of its gaps are
//! shorter) before the shop's newest order, the share who ordered again within `W` is
//! `ρ = (repeated + 1) / (judged + 2)`; the chance that a one-order customer is still a customer
//! at their order is `ρ / 0.977` (at most [`super::MAX_P_LAST`]), in place of the fitted model's,
//! which pools every category. A category where one buyer in three never comes back lapses its
//! one-order customers sooner than one where everybody does.
//!
//! # Season
//!
//! A category whose customers' days of the year cluster (each customer's days as one mean
//! direction, the category's mean resultant length of them at least
//! [`super::SEASONAL_CONCENTRATION`]) in a shop whose orders span at least
//! [`super::MIN_SEASON_SPAN_DAYS`] has a season. A customer in it whose every order fell within
//! `max(`[`super::SEASON_GRACE_DAYS`]`, 3σ)` of its middle is judged by it, like a customer
//! whose own orders make a season: a one-order Christmas customer is at risk in early November
//! and lapses once Christmas passed without an order.
//!
//! A category needs [`MIN_CATEGORY_CUSTOMERS`] customers for either; without a fit the campaign's
//! `[lapse.category_days]` is the hand-set fallback.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{
    median, occasion_days, spread_of, year_fraction, Regular, Season, MIN_SEASON_SPAN_DAYS,
    REGULAR_SHAPE, SEASONAL_CONCENTRATION, SEASON_GRACE_DAYS, YEAR_DAYS,
};

/// Customers a category needs (with a gap, for its gaps; with an order, for its season).
pub const MIN_CATEGORY_CUSTOMERS: usize = 30;
/// Gaps' worth of weight the category's spread carries in a customer's own.
const PRIOR_SPREAD_GAPS: f64 = 4.0;
/// A gap this many times longer than the customer's median is a break.
const BREAK_RATIO: f64 = 2.5;
/// The least break share: no shop's customers keep their rhythm every time.
const MIN_BREAK_SHARE: f64 = 0.005;
const MAX_BREAK_SHARE: f64 = 0.3;
const MIN_BETWEEN_VAR: f64 = 0.01;
const MIN_WITHIN_VAR: f64 = 0.005;

/// A category's fitted rhythm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryRhythm {
    #[serde(default)]
    pub gaps: Option<GapPrior>,
    #[serde(default)]
    pub season: Option<SeasonPrior>,
}

/// The category's gaps (see the module docs); logarithms of days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GapPrior {
    /// Customers with at least one gap.
    pub customers: usize,
    /// `m`: the mean of the customers' mean log gap.
    pub mean_log_gap: f64,
    /// `τ²`: how much customers' levels differ.
    pub between_var: f64,
    /// `σ²`: how much one customer's log gaps differ.
    pub within_var: f64,
    /// `c²`: the squared coefficient of variation of one customer's gaps (the gamma's `1/k`).
    pub gap_cv2: f64,
    /// `ε`: the share of gaps that are breaks.
    pub break_share: f64,
    /// `ρ`: of the customers whose first order is a long gap (`W`) before the shop's newest
    /// order, the share who ordered again within `W` (`None` with too few of them).
    #[serde(default)]
    pub repeat_share: Option<f64>,
}

/// The category's time of year.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeasonPrior {
    pub customers: usize,
    /// Its middle, as a share of the year (0 = 1 January).
    pub year_fraction: f64,
    pub spread_days: f64,
}

/// Gathers each category's figures one customer at a time (a rebuild or `plan` reads customers
/// as it goes); [`Pool::finish`] fits them.
#[derive(Debug, Default)]
pub struct Pool {
    categories: BTreeMap<String, Figures>,
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
}

#[derive(Debug, Default)]
struct Figures {
    /// Each customer's mean log gap (breaks left out) and how many gaps it is over.
    levels: Vec<(f64, usize)>,
    within_ss: f64,
    within_df: f64,
    /// Squared deviations of each gap from the customer's mean gap, relative to it.
    relative_ss: f64,
    breaks: usize,
    judged: usize,
    /// Each customer's first and second order days.
    firsts: Vec<(NaiveDate, Option<NaiveDate>)>,
    /// Sums of each customer's mean direction of their days of the year.
    cos: f64,
    sin: f64,
    customers: usize,
}

/// The log gaps of these days with the breaks left out (a gap over [`BREAK_RATIO`] times their
/// median, judged from three gaps: a holiday, a stocked-up cupboard; at most one gap in four),
/// and how many were breaks.
fn kept_log_gaps(days: &[NaiveDate]) -> (Vec<f64>, usize) {
    let logs: Vec<f64> = days
        .windows(2)
        .map(|w| ((w[1] - w[0]).num_days() as f64).max(1.0).ln())
        .collect();
    if logs.len() < 3 {
        return (logs, 0);
    }
    let med = median(&mut logs.clone());
    let kept: Vec<f64> = logs
        .iter()
        .copied()
        .filter(|l| *l - med <= BREAK_RATIO.ln())
        .collect();
    let breaks = logs.len() - kept.len();
    // More than one gap in four far above the median is no break from a rhythm: it is the
    // customer's own irregularity.
    if breaks > (logs.len() / 4).max(1) {
        return (logs, 0);
    }
    (kept, breaks)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn sum_sq(v: &[f64], m: f64) -> f64 {
    v.iter().map(|x| (x - m).powi(2)).sum()
}

/// Σ (g / ḡ − 1)² over gaps given as logarithms.
fn relative_ss(logs: &[f64]) -> f64 {
    let gaps: Vec<f64> = logs.iter().map(|l| l.exp()).collect();
    let m = mean(&gaps);
    gaps.iter().map(|g| (g / m - 1.0).powi(2)).sum()
}

impl Pool {
    /// Adds a customer with these orders, in their category (the category of their last order).
    pub fn add(&mut self, order_times: &[DateTime<Utc>], category: Option<&str>) {
        let days = occasion_days(order_times);
        let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
            return;
        };
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        self.last = Some(self.last.map_or(last, |l| l.max(last)));
        let Some(category) = category else {
            return;
        };
        let f = self.categories.entry(category.to_string()).or_default();
        f.customers += 1;
        f.firsts.push((first, days.get(1).copied()));
        let angle = |d: &NaiveDate| year_fraction(*d) * std::f64::consts::TAU;
        let n = days.len() as f64;
        f.cos += days.iter().map(|d| angle(d).cos()).sum::<f64>() / n;
        f.sin += days.iter().map(|d| angle(d).sin()).sum::<f64>() / n;
        let (kept, breaks) = kept_log_gaps(&days);
        if days.len() >= 4 {
            f.breaks += breaks;
            f.judged += days.len() - 1;
        }
        if kept.is_empty() {
            return;
        }
        let m = mean(&kept);
        f.levels.push((m, kept.len()));
        if kept.len() >= 2 {
            f.within_ss += sum_sq(&kept, m);
            f.within_df += (kept.len() - 1) as f64;
            f.relative_ss += relative_ss(&kept);
        }
    }

    /// Each category's rhythm, where it has enough customers for one.
    pub fn finish(self) -> BTreeMap<String, CategoryRhythm> {
        let span = match (self.first, self.last) {
            (Some(f), Some(l)) => (l - f).num_days() as f64,
            _ => 0.0,
        };
        self.categories
            .into_iter()
            .filter_map(|(name, f)| {
                let rhythm = CategoryRhythm {
                    gaps: f.gap_prior(self.last),
                    season: (span >= MIN_SEASON_SPAN_DAYS)
                        .then(|| f.season_prior())
                        .flatten(),
                };
                (rhythm.gaps.is_some() || rhythm.season.is_some()).then_some((name, rhythm))
            })
            .collect()
    }
}

impl Figures {
    fn gap_prior(&self, end: Option<NaiveDate>) -> Option<GapPrior> {
        if self.levels.len() < MIN_CATEGORY_CUSTOMERS || self.within_df < 1.0 {
            return None;
        }
        let within_var = (self.within_ss / self.within_df).max(MIN_WITHIN_VAR);
        let gap_cv2 = (self.relative_ss / self.within_df).max(MIN_WITHIN_VAR);
        let levels: Vec<f64> = self.levels.iter().map(|(m, _)| *m).collect();
        let m = mean(&levels);
        let noise = self
            .levels
            .iter()
            .map(|(_, n)| within_var / *n as f64)
            .sum::<f64>()
            / levels.len() as f64;
        let between_var =
            (sum_sq(&levels, m) / (levels.len() - 1) as f64 - noise).max(MIN_BETWEEN_VAR);
        let break_share = ((self.breaks as f64 + 1.0) / (self.judged as f64 + 20.0))
            .clamp(MIN_BREAK_SHARE, MAX_BREAK_SHARE);
        let long_gap = (m + 2.0 * (between_var + within_var).sqrt()).exp();
        Some(GapPrior {
            customers: self.levels.len(),
            mean_log_gap: m,
            between_var,
            within_var,
            gap_cv2,
            break_share,
            repeat_share: end.and_then(|end| self.repeat_share(end, long_gap)),
        })
    }

    /// `ρ` (see the module docs): the customers whose first order is `long_gap` days or more
    /// before `end`, and of them those who ordered again within `long_gap` days.
    fn repeat_share(&self, end: NaiveDate, long_gap: f64) -> Option<f64> {
        let (mut judged, mut repeated) = (0usize, 0usize);
        for (first, second) in &self.firsts {
            if ((end - *first).num_days() as f64) < long_gap {
                continue;
            }
            judged += 1;
            repeated +=
                usize::from(second.is_some_and(|s| ((s - *first).num_days() as f64) <= long_gap));
        }
        (judged >= MIN_CATEGORY_CUSTOMERS).then(|| (repeated as f64 + 1.0) / (judged as f64 + 2.0))
    }

    fn season_prior(&self) -> Option<SeasonPrior> {
        if self.customers < MIN_CATEGORY_CUSTOMERS {
            return None;
        }
        let n = self.customers as f64;
        let (c, s) = (self.cos / n, self.sin / n);
        let r = c.hypot(s);
        (r >= SEASONAL_CONCENTRATION).then(|| SeasonPrior {
            customers: self.customers,
            year_fraction: (s.atan2(c) / std::f64::consts::TAU).rem_euclid(1.0),
            spread_days: spread_of(r),
        })
    }
}

impl CategoryRhythm {
    /// The category's season for a customer whose every order day fell within it.
    pub(super) fn season_for(&self, days: &[NaiveDate]) -> Option<Season> {
        let season = self.season?;
        let last = *days.last()?;
        let reach = SEASON_GRACE_DAYS.max(3.0 * season.spread_days);
        let within = days.iter().all(|d| {
            let off = (year_fraction(*d) - season.year_fraction).rem_euclid(1.0);
            off.min(1.0 - off) * YEAR_DAYS <= reach
        });
        if !within {
            return None;
        }
        let mut years: Vec<i32> = days.iter().map(|d| d.year()).collect();
        years.dedup();
        Season::after(last, years.len(), season.year_fraction, season.spread_days)
    }
}

/// Share of a category's gaps shorter than its long gap `W` (the normal's 97.7%).
const WITHIN_LONG_GAP: f64 = 0.977;

impl GapPrior {
    /// The chance that a customer with one order in the category is still a customer at that
    /// order: `ρ / 0.977`, at most [`super::MAX_P_LAST`].
    pub fn p_active_at_first_order(&self) -> Option<f64> {
        self.repeat_share
            .map(|r| (r / WITHIN_LONG_GAP).min(super::MAX_P_LAST))
    }

    /// A customer with these order days read with the category's gaps: regular or not (see the
    /// module docs).
    pub(super) fn regular_for(&self, days: &[NaiveDate]) -> Option<Regular> {
        if days.is_empty() {
            return None;
        }
        let (kept, _) = kept_log_gaps(days);
        let n = kept.len() as f64;
        let (sum, own_ss, own_relative) = if kept.is_empty() {
            (0.0, 0.0, 0.0)
        } else {
            (
                kept.iter().sum::<f64>(),
                sum_sq(&kept, mean(&kept)),
                relative_ss(&kept),
            )
        };
        let df = PRIOR_SPREAD_GAPS + (n - 1.0).max(0.0);
        let spread = (PRIOR_SPREAD_GAPS * self.within_var + own_ss) / df;
        let cv2 = (PRIOR_SPREAD_GAPS * self.gap_cv2 + own_relative) / df;
        let precision = 1.0 / self.between_var + n / spread;
        let level = (self.mean_log_gap / self.between_var + sum / spread) / precision;
        // The next gap's relative spread: the customer's own, and their level's uncertainty.
        let shape = 1.0 / (cv2 + 1.0 / precision);
        let median_gap_days = level.exp();
        (shape >= REGULAR_SHAPE && median_gap_days.is_finite()).then_some(Regular {
            gaps: days.len() - 1,
            median_gap_days,
            shape,
            break_share: self.break_share,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::super::{of, of_in, Rhythm};
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    /// The campaign's fitted-model policy with `categories` stored with the (prior) fit, as the
    /// weekly rebuild stores them.
    fn policy_storing(categories: BTreeMap<String, CategoryRhythm>) -> crate::lapse::LapsePolicy {
        use crate::model::{Fit, Variant};
        let mut stored = Fit::prior(Variant::Mbgnbd);
        stored.categories = categories;
        let policy: crate::lapse::LapsePolicy = serde_json::from_value(serde_json::json!({
            "multiplier": 2.0, "default_days": 60.0, "prior_weight": 2.0,
            "min_days": 21.0, "max_days": 400.0, "model": "mbgnbd",
        }))
        .unwrap();
        policy.with_stored_fit(Some(&stored))
    }

    /// Customers of one category: every `gap` days ± `wobble` (a fixed pattern), `orders` each,
    /// starting on different days.
    fn customers(gap: f64, wobble: f64, orders: usize, count: usize) -> Vec<Vec<DateTime<Utc>>> {
        (0..count)
            .map(|i| {
                let mut t = at(2024, 1, 1) + Duration::days(i as i64 % 60);
                let mut v = vec![t];
                for j in 1..orders {
                    let w = [0.0, 1.0, -1.0, 0.5, -0.5][(i + j) % 5] * wobble;
                    t += Duration::seconds(((gap + w) * 86_400.0) as i64);
                    v.push(t);
                }
                v
            })
            .collect()
    }

    #[test]
    fn a_regular_category_makes_a_buyer_with_few_orders_regular_at_its_rhythm() {
        let mut pool = Pool::default();
        for c in customers(30.0, 6.0, 8, 200) {
            pool.add(&c, Some("coffee"));
        }
        // Irregular buyers in another category: gaps of 3 to 200 days.
        let erratic_gaps = [3.0, 200.0, 15.0, 90.0, 7.0, 60.0];
        for i in 0..200usize {
            let mut t = at(2024, 1, 1) + Duration::days(i as i64 % 60);
            let mut v = vec![t];
            for j in 0..6 {
                t += Duration::days(erratic_gaps[(i + j) % 6] as i64);
                v.push(t);
            }
            pool.add(&v, Some("gifts"));
        }
        let fitted = pool.finish();
        let coffee = fitted["coffee"].gaps.expect("a gap prior");
        assert!((coffee.mean_log_gap.exp() - 30.0).abs() < 1.5, "{coffee:?}");
        assert!(coffee.within_var < 0.05, "{coffee:?}");
        assert!(coffee.break_share <= 0.01, "{coffee:?}");
        // Three orders are not enough for a rhythm of their own, but enough with the category's.
        let three = [at(2026, 1, 3), at(2026, 2, 2), at(2026, 3, 4)];
        assert_eq!(of(&three), None);
        let Some(Rhythm::Regular(r)) = of_in(&three, fitted.get("coffee")) else {
            panic!("{:?}", of_in(&three, fitted.get("coffee")))
        };
        assert_eq!(r.gaps, 2);
        assert!(
            (r.median_gap_days - 30.0).abs() < 1.5 && r.shape > 8.0,
            "{r:?}"
        );
        // One order: the category's rhythm.
        let Some(Rhythm::Regular(one)) = of_in(&three[..1], fitted.get("coffee")) else {
            panic!("one order")
        };
        assert_eq!(one.gaps, 0);
        assert!((one.median_gap_days - 30.0).abs() < 1.5, "{one:?}");
        // A customer whose own gaps are far from regular is not made regular by their category.
        let erratic = [
            at(2026, 1, 1),
            at(2026, 1, 4),
            at(2026, 4, 20),
            at(2026, 5, 1),
            at(2026, 9, 30),
        ];
        assert_eq!(of_in(&erratic, fitted.get("coffee")), None);
        // An irregular category makes nobody regular.
        let gifts = fitted["gifts"]
            .gaps
            .expect("a gap prior for the irregular category");
        assert_eq!(gifts.regular_for(&occasion_days(&three)), None, "{gifts:?}");
    }

    #[test]
    fn a_category_whose_first_time_buyers_often_stay_away_lapses_a_one_order_customer_sooner() {
        // Coffee: 200 monthly buyers and 100 who ordered once (early 2024) and never again;
        // tea: the same 200 monthly buyers alone. Both from January to October 2024.
        let monthly = customers(30.0, 6.0, 8, 200);
        let mut pool = Pool::default();
        for c in &monthly {
            pool.add(c, Some("coffee"));
            pool.add(c, Some("tea"));
        }
        for i in 0..100 {
            pool.add(&[at(2024, 1, 1) + Duration::days(i % 60)], Some("coffee"));
        }
        // New customers a week or two before the shop's newest order are too recent to judge.
        for i in 0..50 {
            pool.add(&[at(2024, 9, 20) + Duration::days(i % 5)], Some("coffee"));
        }
        let fitted = pool.finish();
        let (coffee, tea) = (
            fitted["coffee"].gaps.expect("coffee"),
            fitted["tea"].gaps.expect("tea"),
        );
        let share = coffee.repeat_share.expect("a repeat share");
        assert!((share - 201.0 / 302.0).abs() < 1e-9, "{coffee:?}");
        assert!(tea.repeat_share.expect("tea's") > 0.99, "{tea:?}");
        let p = coffee.p_active_at_first_order().expect("coffee");
        assert!((p - share / 0.977).abs() < 1e-9);
        assert_eq!(
            tea.p_active_at_first_order(),
            Some(crate::rhythm::MAX_P_LAST)
        );
        // Through the lapse decision: a customer with one coffee order lapses sooner than one
        // with one tea order, and starts from the category's chance of being a customer.
        use crate::customer::{OrderRecord, Profile};
        use crate::lapse::{assess, Assessment, LapseState};
        let policy = policy_storing(fitted);
        let order = at(2026, 1, 10);
        let one = |category: &str| {
            let mut p = Profile::new("c1".parse().unwrap());
            p.record_order(OrderRecord {
                at: order,
                category: Some(category.into()),
                ..OrderRecord::default()
            });
            assess(&p, &policy, order + Duration::days(1))
        };
        let lapses = |a: &Assessment| match a.state {
            LapseState::Active { lapses_at } | LapseState::AtRisk { lapses_at, .. } => lapses_at,
            ref other => panic!("{other:?}"),
        };
        let (coffee_one, tea_one) = (one("coffee"), one("tea"));
        assert!(
            lapses(&coffee_one) + Duration::days(5) < lapses(&tea_one),
            "coffee {:?}, tea {:?}",
            lapses(&coffee_one),
            lapses(&tea_one)
        );
        let p_active = |a: &Assessment| a.outlook.as_ref().expect("an outlook").p_active;
        assert!(p_active(&coffee_one) < 0.7, "{:?}", coffee_one.outlook);
        assert!(p_active(&tea_one) > 0.9, "{:?}", tea_one.outlook);
    }

    #[test]
    fn a_christmas_category_judges_a_one_order_customer_by_its_season() {
        let mut pool = Pool::default();
        for i in 0..60u32 {
            pool.add(&[at(2025, 12, 5 + i % 15)], Some("christmas"));
        }
        // Groceries all year round, from a year before: the shop's orders span the year.
        for i in 0..60u32 {
            let start = at(2024, 12, 1) + Duration::days(i64::from(i));
            let weekly: Vec<DateTime<Utc>> =
                (0..50).map(|w| start + Duration::days(7 * w)).collect();
            pool.add(&weekly, Some("groceries"));
        }
        let fitted = pool.finish();
        let season = fitted["christmas"].season.expect("a season");
        assert!(season.year_fraction > 0.9, "{season:?}");
        assert!(fitted["groceries"].season.is_none());
        // One order on 12 December 2025: their next season is December 2026; at risk from early
        // November, lapsed after it.
        let Some(Rhythm::Seasonal(s)) = of_in(&[at(2025, 12, 12)], fitted.get("christmas")) else {
            panic!("not seasonal")
        };
        assert_eq!((s.next.year(), s.next.month()), (2026, 12));
        let risk = s.at_risk_from().date_naive();
        assert_eq!((risk.year(), risk.month()), (2026, 11), "{risk}");
        assert!(s.lapses_at() > at(2026, 12, 31), "{:?}", s.lapses_at());
        // A customer of the category who ordered in June is not judged by its season.
        assert!(!matches!(
            of_in(&[at(2026, 6, 10)], fitted.get("christmas")),
            Some(Rhythm::Seasonal(_))
        ));
        // Too few customers: no fit.
        let mut small = Pool::default();
        small.add(&[at(2025, 12, 10)], Some("christmas"));
        assert!(small.finish().is_empty());

        // Through the lapse decision, with the categories stored with the fit: the one-order
        // Christmas customer is active in March and at risk in November.
        use crate::customer::{OrderRecord, Profile};
        use crate::lapse::{assess, LapseState};
        let policy = policy_storing(fitted);
        assert!(policy.category_rhythms.contains_key("christmas"));
        let mut p = Profile::new("c1".parse().unwrap());
        p.record_order(OrderRecord {
            at: at(2025, 12, 12),
            category: Some("christmas".into()),
            ..OrderRecord::default()
        });
        assert!(matches!(
            assess(&p, &policy, at(2026, 3, 15)).state,
            LapseState::Active { .. }
        ));
        assert!(matches!(
            assess(&p, &policy, at(2026, 11, 20)).state,
            LapseState::AtRisk { .. }
        ));
        // Without the stored categories, the model lapses them long before.
        let without = {
            let mut p = policy.clone();
            p.category_rhythms.clear();
            p
        };
        assert!(matches!(
            assess(&p, &without, at(2026, 11, 20)).state,
            LapseState::Lapsed { .. }
        ));
    }
}
