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
