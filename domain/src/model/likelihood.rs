//! The models' likelihood: one customer's, and a campaign's summed over distinct histories.

use super::math::{ln_beta, ln_gamma, log_add_exp};
use super::summary::Summary;
use super::{Params, Variant};

impl Params {
    /// The odds factor `c` in P(active) = 1/(1 + c × ratio^(r+x)); `None` when a BG/NBD customer
    /// without repeats cannot have dropped out.
    pub(super) fn dropout_odds(&self, variant: Variant, x: f64) -> Option<f64> {
        match variant {
            Variant::Mbgnbd => Some(self.a / (self.b + x)),
            Variant::Bgnbd if x > 0.0 => Some(self.a / (self.b + x - 1.0)),
            Variant::Bgnbd => None,
        }
    }

    /// One customer's log-likelihood, without the terms that depend on `x` only.
    fn ll_tail(&self, variant: Variant, s: &Summary) -> f64 {
        let x = s.frequency as f64;
        let rx = self.r + x;
        let a3 = -rx * (self.alpha + s.age_days).ln();
        match variant {
            Variant::Mbgnbd => {
                let a4 = (self.a / (self.b + x)).ln() - rx * (self.alpha + s.recency_days).ln();
                log_add_exp(a3, a4)
            }
            Variant::Bgnbd if x > 0.0 => {
                let a4 =
                    (self.a / (self.b + x - 1.0)).ln() - rx * (self.alpha + s.recency_days).ln();
                log_add_exp(a3, a4)
            }
            Variant::Bgnbd => a3,
        }
    }

    /// The terms of one customer's log-likelihood that depend on `x` only.
    fn ll_head(&self, variant: Variant, x: f64) -> f64 {
        let a1 = ln_gamma(self.r + x) - ln_gamma(self.r) + self.r * self.alpha.ln();
        let a2 = match variant {
            Variant::Mbgnbd => ln_beta(self.a, self.b + x + 1.0) - ln_beta(self.a, self.b),
            Variant::Bgnbd => ln_beta(self.a, self.b + x) - ln_beta(self.a, self.b),
        };
        a1 + a2
    }

    /// Total log-likelihood of the customers.
    pub fn log_likelihood(&self, variant: Variant, customers: &[Summary]) -> f64 {
        self.grouped_log_likelihood(variant, &Grouped::new(customers))
    }

    /// Total log-likelihood of grouped customers: each distinct history once, times its count.
    pub(super) fn grouped_log_likelihood(&self, variant: Variant, g: &Grouped) -> f64 {
        let tail: f64 = g
            .histories
            .iter()
            .map(|(s, n)| n * self.ll_tail(variant, s))
            .sum();
        tail + g
            .by_frequency
            .iter()
            .map(|(x, n)| n * self.ll_head(variant, *x as f64))
            .sum::<f64>()
    }

    /// The total log-likelihood of grouped customers and its gradient with respect to the
    /// log-parameters `(ln r, ln α, ln a, ln b)`, in one pass over the distinct histories.
    ///
    /// With `A = α+T`, `B = α+t_x`, `a3 = −(r+x) ln A`, `a4 = ln a − ln(b+x') − (r+x) ln B`
    /// (`x' = x` for MBG/NBD, `x − 1` for BG/NBD) and `L = ln(e^a3 + e^a4)`, each history adds
    /// `L`, and `w3 ∂a3 + w4 ∂a4` to the gradient (`w3 = e^(a3−L)`, `w4 = 1 − w3`). The terms in
    /// `x` alone use, for whole `x`, `ψ(r+x) − ψ(r) = Σ_{k<x} 1/(r+k)` (and the same for
    /// `b` and `a+b`), summed once up to the largest `x`.
    pub(super) fn grouped_log_likelihood_and_gradient(
        &self,
        variant: Variant,
        g: &Grouped,
    ) -> (f64, [f64; 4]) {
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let mbg = variant == Variant::Mbgnbd;
        let ln_a = a.ln();
        let (mut ll, mut dr, mut dalpha, mut da, mut db) = (0.0, 0.0, 0.0, 0.0, 0.0);
        // The terms in x alone, per distinct x (ascending), with running sums of 1/(r+k),
        // 1/(b+k) and 1/(a+b+k).
        let (mut k, mut sum_r) = (0u32, 0.0);
        // Beta terms run to x (MBG/NBD: B(a, b+x+1)) or x − 1 (BG/NBD: B(a, b+x)).
        let beta_upto = |x: u32| if mbg { x + 1 } else { x };
        let (mut kb, mut sb, mut sab) = (0u32, 0.0, 0.0);
        for (x, n) in &g.by_frequency {
            while k < *x {
                sum_r += 1.0 / (r + k as f64);
                k += 1;
            }
            while kb < beta_upto(*x) {
                sb += 1.0 / (b + kb as f64);
                sab += 1.0 / (a + b + kb as f64);
                kb += 1;
            }
            ll += n * self.ll_head(variant, *x as f64);
            dr += n * (sum_r + alpha.ln());
            dalpha += n * r / alpha;
            da += n * -sab;
            db += n * (sb - sab);
        }
        for (s, n) in &g.histories {
            let x = s.frequency as f64;
            let rx = r + x;
            let big_a = alpha + s.age_days;
            let ln_big_a = big_a.ln();
            let a3 = -rx * ln_big_a;
            let d3 = (-ln_big_a, -rx / big_a);
            let bx = match variant {
                Variant::Mbgnbd => b + x,
                Variant::Bgnbd if s.frequency > 0 => b + x - 1.0,
                Variant::Bgnbd => {
                    ll += n * a3;
                    dr += n * d3.0;
                    dalpha += n * d3.1;
                    continue;
                }
            };
            let big_b = alpha + s.recency_days;
            let ln_big_b = big_b.ln();
            let a4 = ln_a - bx.ln() - rx * ln_big_b;
            // L = max + ln(1 + e^-|a4 - a3|); the larger term's weight 1 / (1 + e^-|a4 - a3|).
            let e = (-(a4 - a3).abs()).exp();
            let (l, w4) = if a4 >= a3 {
                (a4 + e.ln_1p(), 1.0 / (1.0 + e))
            } else {
                (a3 + e.ln_1p(), e / (1.0 + e))
            };
            let w3 = 1.0 - w4;
            ll += n * l;
            dr += n * (w3 * d3.0 - w4 * ln_big_b);
            dalpha += n * (w3 * d3.1 - w4 * rx / big_b);
            da += n * w4 / a;
            db += n * -w4 / bx;
        }
        // With respect to the log-parameters.
        (ll, [dr * r, dalpha * alpha, da * a, db * b])
    }

    pub fn valid(&self) -> bool {
        [self.r, self.alpha, self.a, self.b]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    }
}

/// Customers grouped by history: shops (and CDNOW) have many customers with the same
/// (frequency, recency, age), e.g. every one-order customer of the same day, so the likelihood is
/// summed over distinct histories, each weighted by how many customers share it.
pub(super) struct Grouped {
    histories: Vec<(Summary, f64)>,
    by_frequency: Vec<(u32, f64)>,
}

impl Grouped {
    pub(super) fn new(customers: &[Summary]) -> Grouped {
        let mut histories: std::collections::HashMap<(u32, u64, u64), (Summary, f64)> =
            Default::default();
        let mut by_frequency: std::collections::BTreeMap<u32, f64> = Default::default();
        for s in customers {
            let key = (s.frequency, s.recency_days.to_bits(), s.age_days.to_bits());
            histories.entry(key).or_insert((*s, 0.0)).1 += 1.0;
            *by_frequency.entry(s.frequency).or_default() += 1.0;
        }
        let mut histories: Vec<(Summary, f64)> = histories.into_values().collect();
        // A fixed order, so the sum (and the fit) is the same on every run.
        histories.sort_by(|a, b| {
            (a.0.frequency, a.0.recency_days, a.0.age_days)
                .partial_cmp(&(b.0.frequency, b.0.recency_days, b.0.age_days))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Grouped {
            histories,
            by_frequency: by_frequency.into_iter().collect(),
        }
    }
}
