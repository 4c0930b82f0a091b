//! What a fit says of one customer: P(active), the chance of an order within a horizon, the
//! moment either falls below a threshold, expected purchases, spend and value.

use super::fit::Fit;
use super::math::hyp2f1;
use super::summary::Summary;
use super::Variant;

impl Fit {
    /// Probability that the customer is still active (0–1).
    pub fn p_active(&self, s: &Summary) -> f64 {
        let p = &self.params;
        let x = s.frequency as f64;
        let Some(c) = p.dropout_odds(self.variant, x) else {
            return 1.0;
        };
        let ratio = (p.alpha + s.age_days) / (p.alpha + s.recency_days);
        let odds = (c.ln() + (p.r + x) * ratio.ln()).exp();
        let v = 1.0 / (1.0 + odds);
        if v.is_finite() {
            v
        } else {
            0.0
        }
    }

    /// Probability of no order in the next `t` days (drop-out within them neglected).
    pub fn p_no_order_within(&self, s: &Summary, t: f64) -> f64 {
        let p = &self.params;
        let rx = p.r + s.frequency as f64;
        let quiet_if_active = ((p.alpha + s.age_days) / (p.alpha + s.age_days + t)).powf(rx);
        1.0 - self.p_active(s) * (1.0 - quiet_if_active)
    }

    /// Probability of at least one order in the next `t` days.
    pub fn p_order_within(&self, s: &Summary, t: f64) -> f64 {
        (1.0 - self.p_no_order_within(s, t)).clamp(0.0, 1.0)
    }

    /// The age (days since the first occasion) at which the chance of an order in the next
    /// `horizon` days falls below `threshold`, with no new order. That chance only falls while the
    /// customer stays quiet (both P(active) and the rate they would buy at if active fall). It is
    /// P(active) × w, where w (the chance while active) falls slowly, so the crossing lies between
    /// two closed-form P(active) moments: where P(active) reaches `threshold` (the chance is then
    /// below it) and where it reaches `threshold / w` there (the chance is still above it).
    /// Newton's method finds the crossing in that bracket in about four steps (a step that would
    /// leave the bracket halves it instead). The last occasion's age when it is already below; `None`
    /// when `threshold` is not in (0, 1) or the chance stays above it for a hundred years.
    pub fn order_chance_lapse_age(&self, s: &Summary, horizon: f64, threshold: f64) -> Option<f64> {
        if !(threshold > 0.0 && threshold < 1.0 && horizon > 0.0) {
            return None;
        }
        let p = &self.params;
        let rx = p.r + s.frequency as f64;
        let while_active = |age: f64| 1.0 - ((p.alpha + age) / (p.alpha + age + horizon)).powf(rx);
        // The chance minus the threshold at `age`, and its slope: with A = alpha + age,
        // P(active) = 1 / (1 + E), E = c (A / (alpha + recency))^(r + x), and
        // w = 1 - q, q = (A / (A + horizon))^(r + x). Two logarithms and two exponentials.
        let c = p
            .dropout_odds(self.variant, s.frequency as f64)
            .unwrap_or(0.0);
        let base = p.alpha + s.recency_days;
        let gap = |age: f64| {
            let a = p.alpha + age;
            let e = c * (rx * (a / base).ln()).exp();
            let q = (rx * (a / (a + horizon)).ln()).exp();
            let w = 1.0 - q;
            let value = w / (1.0 + e) - threshold;
            let dw = -q * rx * horizon / (a * (a + horizon));
            let de = rx * e / a;
            let slope = (dw * (1.0 + e) - w * de) / ((1.0 + e) * (1.0 + e));
            (value, slope)
        };
        let start = s.recency_days;
        let limit = start + 36_500.0;
        let (mut lo, mut hi) = match self.lapse_age(s, threshold) {
            Some(hi) if hi <= limit => {
                let w = while_active(hi);
                let lo = if threshold < w {
                    self.lapse_age(s, threshold / w).unwrap_or(start)
                } else {
                    start
                };
                (lo.clamp(start, hi), hi)
            }
            // P(active) never falls that low (BG/NBD, one order): double the quiet time.
            _ => {
                if gap(start).0 < 0.0 {
                    return Some(start);
                }
                let mut lo = start;
                let mut step = 1.0;
                loop {
                    let hi = start + step;
                    if hi > limit {
                        return None;
                    }
                    if gap(hi).0 < 0.0 {
                        break (lo, hi);
                    }
                    lo = hi;
                    step *= 2.0;
                }
            }
        };
        // From `lo`: the chance there is P(active) × w(lo) = threshold × w(lo) / w(hi), at or
        // above the threshold (w falls with age), unless `lo` is the last occasion, where it may
        // already be below. Invariant below: at or above the threshold at `lo`, below at `hi`.
        let mut age = lo;
        for i in 0..60 {
            let (value, slope) = gap(age);
            if i == 0 && value < 0.0 {
                return Some(age);
            }
            if value == 0.0 {
                break;
            }
            if value < 0.0 {
                hi = age;
            } else {
                lo = age;
            }
            let newton = (slope < 0.0 && slope.is_finite())
                .then(|| age - value / slope)
                .filter(|next| *next > lo && *next < hi);
            let next = newton.unwrap_or(0.5 * (lo + hi));
            // Newton's steps shrink quadratically: once one is under ten seconds (1e-4 days),
            // the age it reaches is within a fraction of a second of the crossing. A halving
            // step that small leaves a bracket of 2e-4 days around it.
            let step = (next - age).abs();
            age = next;
            if step < 1e-4 {
                break;
            }
        }
        Some(age)
    }

    /// Expected purchase occasions in the next `t` days.
    pub fn expected_purchases(&self, s: &Summary, t: f64) -> f64 {
        let p = &self.params;
        let x = s.frequency as f64;
        let rx = p.r + x;
        let z = t / (p.alpha + s.age_days + t);
        let head = ((p.alpha + s.age_days) / (p.alpha + s.age_days + t)).powf(rx);
        let (lead, h) = match self.variant {
            Variant::Mbgnbd => (
                (p.a + p.b + x) / (p.a - 1.0),
                hyp2f1(rx, p.b + x + 1.0, p.a + p.b + x, z),
            ),
            Variant::Bgnbd => (
                (p.a + p.b + x - 1.0) / (p.a - 1.0),
                hyp2f1(rx, p.b + x, p.a + p.b + x - 1.0, z),
            ),
        };
        let v = lead * (1.0 - head * h) * self.p_active(s);
        if v.is_finite() {
            v.max(0.0)
        } else {
            // Fall back to the rate while active, times the horizon.
            self.p_active(s) * rx / (p.alpha + s.age_days) * t
        }
    }

    /// Days from now to the next order if the customer is still active (1 / expected daily rate).
    pub fn days_to_next_order(&self, s: &Summary) -> f64 {
        let p = &self.params;
        (p.alpha + s.age_days) / (p.r + s.frequency as f64)
    }

    /// Expected value of one purchase occasion (minor units).
    pub fn expected_spend(&self, s: &Summary) -> f64 {
        let g = &self.spend;
        // A one-order customer's order counts as one observed occasion.
        let x = (s.frequency as f64).max(1.0);
        let v = if g.gamma <= 0.0 {
            s.mean_value
        } else {
            g.p * (g.gamma + x * s.mean_value) / (g.p * x + g.q - 1.0)
        };
        if v.is_finite() {
            v.max(0.0)
        } else {
            0.0
        }
    }

    /// Predicted value over the next `t` days (minor units).
    pub fn predicted_value(&self, s: &Summary, t: f64) -> f64 {
        self.expected_purchases(s, t) * self.expected_spend(s)
    }

    /// The age (days since the first occasion) at which P(active) falls below `threshold`, with no
    /// new order. `None` when it never does (BG/NBD one-order customers) or `threshold` is not in
    /// (0, 1). Never earlier than the last occasion.
    pub fn lapse_age(&self, s: &Summary, threshold: f64) -> Option<f64> {
        if !(threshold > 0.0 && threshold < 1.0) {
            return None;
        }
        let p = &self.params;
        let x = s.frequency as f64;
        let c = p.dropout_odds(self.variant, x)?;
        let k = ((1.0 / threshold - 1.0) / c).ln() / (p.r + x);
        let age = (p.alpha + s.recency_days) * k.exp() - p.alpha;
        age.is_finite().then_some(age.max(s.recency_days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fit::spend_prior;
    use crate::model::tests::{close, s};
    use crate::model::Params;

    #[test]
    fn p_active_falls_with_quiet_time_and_the_lapse_moment_solves_it() {
        let fit = Fit::prior(Variant::Mbgnbd);
        let c = s(3, 60.0, 90.0);
        let later = s(3, 60.0, 200.0);
        assert!(fit.p_active(&c) > fit.p_active(&later));
        let age = fit.lapse_age(&c, 0.3).unwrap();
        let at = fit.p_active(&s(3, 60.0, age));
        assert!(close(at, 0.3, 1e-9), "{at}");
        // One-order customers lapse too under MBG/NBD, never under BG/NBD.
        assert!(Fit::prior(Variant::Mbgnbd)
            .lapse_age(&s(0, 0.0, 10.0), 0.3)
            .is_some());
        assert!(Fit::prior(Variant::Bgnbd)
            .lapse_age(&s(0, 0.0, 10.0), 0.3)
            .is_none());
        assert_eq!(Fit::prior(Variant::Bgnbd).p_active(&s(0, 0.0, 400.0)), 1.0);
    }

    #[test]
    fn the_chance_of_an_order_falls_with_quiet_time_and_its_lapse_moment_solves_it() {
        for variant in [Variant::Mbgnbd, Variant::Bgnbd] {
            let fit = Fit::prior(variant);
            for c in [s(3, 60.0, 61.0), s(0, 0.0, 1.0), s(12, 80.0, 81.0)] {
                let age = fit.order_chance_lapse_age(&c, 90.0, 0.25).unwrap();
                assert!(age >= c.recency_days);
                let at = |a: f64| fit.p_order_within(&s(c.frequency, c.recency_days, a), 90.0);
                if age > c.recency_days {
                    assert!(
                        at(age - 0.01) >= 0.25 && at(age + 0.01) < 0.25,
                        "{c:?} {age}"
                    );
                }
                assert!(at(age + 30.0) < at(age));
            }
            // Over a grid of histories and thresholds the moment is the crossing, to 20 seconds.
            for x in [0u32, 1, 2, 5, 20] {
                for tx in [0.0, 30.0, 200.0] {
                    for q in [0.02, 0.1, 0.25, 0.5, 0.8] {
                        let c = s(x, if x == 0 { 0.0 } else { tx }, tx + 1.0);
                        let chance =
                            |a: f64| fit.p_order_within(&s(c.frequency, c.recency_days, a), 90.0);
                        match fit.order_chance_lapse_age(&c, 90.0, q) {
                            Some(age) if age > c.recency_days => assert!(
                                chance(age - 2e-4) >= q && chance(age + 2e-4) < q,
                                "{variant:?} {c:?} q {q}: {age}"
                            ),
                            Some(age) => assert!(chance(age) < q),
                            None => assert!(chance(c.recency_days + 36_500.0) >= q),
                        }
                    }
                }
            }
            // A threshold outside (0, 1) has no moment.
            assert_eq!(
                fit.order_chance_lapse_age(&s(3, 60.0, 61.0), 90.0, 1.0),
                None
            );
        }
    }

    /// Values from Python `lifetimes` 0.11.3 (`BetaGeoFitter` / `ModifiedBetaGeoFitter` with the
    /// parameters set by hand), see infra/model/reference.py.
    #[test]
    fn matches_lifetimes() {
        let params = Params {
            r: 0.25,
            alpha: 30.0,
            a: 0.8,
            b: 2.5,
        };
        for (variant, cases) in [
            (Variant::Bgnbd, REFERENCE_BG),
            (Variant::Mbgnbd, REFERENCE_MBG),
        ] {
            let fit = Fit {
                variant,
                params,
                spend: spend_prior(&[]),
                customers: 0,
                repeat_customers: 0,
                mean_log_likelihood: 0.0,
                warning: None,
                categories: Default::default(),
            };
            for &(x, tx, t, p_alive, e90, ll) in cases {
                let c = s(x, tx, t);
                assert!(
                    close(fit.p_active(&c), p_alive, 1e-6),
                    "{variant:?} {x} {tx} {t}"
                );
                assert!(
                    close(fit.expected_purchases(&c, 90.0), e90, 1e-6),
                    "{variant:?} {x} {tx} {t}: {} vs {e90}",
                    fit.expected_purchases(&c, 90.0)
                );
                let mine = params.log_likelihood(variant, &[c]);
                assert!(close(mine, ll, 1e-6), "{variant:?} {x}: {mine} vs {ll}");
            }
        }
    }

    // (x, t_x, T, P(alive), expected purchases in 90 days, log-likelihood)
    const REFERENCE_BG: &[(u32, f64, f64, f64, f64, f64)] = &[
        (
            0,
            0.0,
            40.0,
            1.000000000000e+00,
            2.755099808704e-01,
            -2.118244650968e-01,
        ),
        (
            1,
            10.0,
            100.0,
            4.172957749216e-01,
            3.189365712081e-01,
            -6.024084799138e+00,
        ),
        (
            3,
            60.0,
            90.0,
            6.883151486857e-01,
            1.417787906323e+00,
            -1.533487414582e+01,
        ),
        (
            3,
            60.0,
            300.0,
            7.617785608080e-02,
            6.306447658913e-02,
            -1.642140112862e+01,
        ),
        (
            12,
            200.0,
            210.0,
            9.092472233019e-01,
            3.721241899215e+00,
            -5.079616692841e+01,
        ),
    ];
    const REFERENCE_MBG: &[(u32, f64, f64, f64, f64, f64)] = &[
        (
            0,
            0.0,
            40.0,
            7.165901179039e-01,
            2.037727164683e-01,
            -1.562049372346e-01,
        ),
        (
            1,
            10.0,
            100.0,
            5.006469432346e-01,
            3.909049524234e-01,
            -6.412042739136e+00,
        ),
        (
            3,
            60.0,
            90.0,
            7.296652591989e-01,
            1.533903266916e+00,
            -1.552901476891e+01,
        ),
        (
            3,
            60.0,
            300.0,
            9.155636463903e-02,
            7.647176299372e-02,
            -1.674108664154e+01,
        ),
        (
            12,
            200.0,
            210.0,
            9.149738729278e-01,
            3.768845336906e+00,
            -5.085614958804e+01,
        ),
    ];
}
