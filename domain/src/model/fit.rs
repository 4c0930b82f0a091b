//! Fitting the model to a campaign's customers by penalised maximum likelihood (BFGS on the
//! analytic gradients over the log-parameters, Nelder-Mead where BFGS stops short), and the fit as
//! stored.

use argmin::core::{CostFunction, Error as ArgminError, Executor, State};
use argmin::solver::neldermead::NelderMead;
use argmin_math::{ArgminAdd, ArgminMul, ArgminSub};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::likelihood::Grouped;
use super::math::{digamma, ln_gamma};
use super::summary::Summary;
use super::{
    prior, Params, SpendParams, Variant, MIN_REPEAT_CUSTOMERS, PRIOR_SPEND_P, PRIOR_SPEND_Q,
    PRIOR_WEIGHT,
};

/// A fitted (or prior) model for one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub variant: Variant,
    pub params: Params,
    pub spend: SpendParams,
    /// Customers the fit saw, and how many of them ordered again.
    pub customers: usize,
    pub repeat_customers: usize,
    /// Mean log-likelihood per customer at the fitted parameters.
    pub mean_log_likelihood: f64,
    /// Why the prior was used instead of the shop's own fit.
    pub warning: Option<String>,
    /// Each category's rhythm, fitted on the same customers ([`crate::rhythm::Pool`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub categories: std::collections::BTreeMap<String, crate::rhythm::CategoryRhythm>,
}

/// A campaign's fit as stored in the table by `winback import` and the scheduler's rebuild, so
/// every function uses the shop's own model without editing the campaign file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignFit {
    pub campaign: String,
    pub fit: Fit,
    pub fitted_at: DateTime<Utc>,
    /// Optimistic-concurrency version; 0 means "not stored yet".
    #[serde(default)]
    pub version: u64,
}

/// Whether a new fit should replace the stored one: only a fit of the shop's own data (a fit that
/// fell back to the prior is logged and dropped, so a bad or tiny refit never replaces a good one).
pub fn worth_storing(fit: &Fit) -> bool {
    fit.warning.is_none() && fit.params.valid()
}

struct Penalised<'a> {
    variant: Variant,
    customers: &'a Grouped,
    prior: [f64; 4],
}

impl Penalised<'_> {
    /// The penalised cost and its gradient in the log-parameters; `None` where not finite.
    fn value_and_gradient(&self, v: &[f64; 4]) -> Option<(f64, [f64; 4])> {
        let p = Params {
            r: v[0].exp(),
            alpha: v[1].exp(),
            a: v[2].exp(),
            b: v[3].exp(),
        };
        let (ll, g) = p.grouped_log_likelihood_and_gradient(self.variant, self.customers);
        let mut cost = -ll;
        let mut grad = [0.0; 4];
        for i in 0..4 {
            let d = v[i] - self.prior[i];
            cost += PRIOR_WEIGHT * d * d;
            grad[i] = -g[i] + 2.0 * PRIOR_WEIGHT * d;
        }
        (cost.is_finite() && grad.iter().all(|x| x.is_finite())).then_some((cost, grad))
    }
}

impl CostFunction for Penalised<'_> {
    type Param = Point;
    type Output = f64;
    fn cost(&self, v: &Self::Param) -> Result<f64, ArgminError> {
        let p = Params {
            r: v[0].exp(),
            alpha: v[1].exp(),
            a: v[2].exp(),
            b: v[3].exp(),
        };
        let penalty: f64 = v
            .iter()
            .zip(self.prior)
            .map(|(x, m)| (x - m).powi(2))
            .sum::<f64>()
            * PRIOR_WEIGHT;
        let cost = -p.grouped_log_likelihood(self.variant, self.customers) + penalty;
        Ok(if cost.is_finite() { cost } else { f64::MAX })
    }
}

struct SpendCost<'a> {
    repeaters: &'a Repeaters,
    prior: [f64; 3],
}

/// The repeat customers' spend, grouped by repeat occasions (the terms in `x` alone once per
/// distinct `x`), with each customer's `ln m` taken once.
struct Repeaters {
    /// (x, x ln x, customers with it, Σ ln m over them, their (m) values).
    by_x: Vec<(f64, f64, f64, f64, Vec<f64>)>,
}

impl Repeaters {
    fn new(repeaters: &[(f64, f64)]) -> Repeaters {
        let mut groups: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
        for (x, m) in repeaters {
            groups.entry(x.to_bits()).or_default().push(*m);
        }
        Repeaters {
            by_x: groups
                .into_iter()
                .map(|(x, ms)| {
                    let x = f64::from_bits(x);
                    let ln_m: f64 = ms.iter().map(|m| m.ln()).sum();
                    (x, x * x.ln(), ms.len() as f64, ln_m, ms)
                })
                .collect(),
        }
    }

    /// The spend log-likelihood (Gamma-Gamma) and its gradient in (ln p, ln q, ln γ).
    fn log_likelihood_and_gradient(&self, p: f64, q: f64, g: f64) -> (f64, [f64; 3]) {
        let (ln_g, psi_q, lg_q) = (g.ln(), digamma(q), ln_gamma(q));
        let (mut ll, mut dp, mut dq, mut dg) = (0.0, 0.0, 0.0, 0.0);
        for (x, x_ln_x, n, ln_m, ms) in &self.by_x {
            let px = p * x;
            let (lg_sum, lg_px) = (ln_gamma(px + q), ln_gamma(px));
            let (psi_sum, psi_px) = (digamma(px + q), digamma(px));
            // Σ ln(x m + γ) and Σ 1/(x m + γ) over the group.
            let (mut ln_sum, mut inv_sum) = (0.0, 0.0);
            for m in ms {
                let d = x * m + g;
                ln_sum += d.ln();
                inv_sum += 1.0 / d;
            }
            ll += n * (lg_sum - lg_px - lg_q + q * ln_g + p * x_ln_x) + (px - 1.0) * ln_m
                - (px + q) * ln_sum;
            dp += x * (n * (psi_sum - psi_px + x.ln()) + ln_m - ln_sum);
            dq += n * (psi_sum - psi_q + ln_g) - ln_sum;
            dg += n * q / g - (px + q) * inv_sum;
        }
        (ll, [dp * p, dq * q, dg * g])
    }
}

impl SpendCost<'_> {
    /// The penalised cost and its gradient in the log-parameters; `None` where not finite.
    fn value_and_gradient(&self, v: &[f64; 3]) -> Option<(f64, [f64; 3])> {
        let (ll, g) =
            self.repeaters
                .log_likelihood_and_gradient(v[0].exp(), v[1].exp(), v[2].exp());
        let mut cost = -ll;
        let mut grad = [0.0; 3];
        for i in 0..3 {
            let d = v[i] - self.prior[i];
            cost += PRIOR_WEIGHT * d * d;
            grad[i] = -g[i] + 2.0 * PRIOR_WEIGHT * d;
        }
        (cost.is_finite() && grad.iter().all(|x| x.is_finite())).then_some((cost, grad))
    }
}

impl CostFunction for SpendCost<'_> {
    type Param = Point;
    type Output = f64;
    fn cost(&self, v: &Self::Param) -> Result<f64, ArgminError> {
        let (p, q, g) = (v[0].exp(), v[1].exp(), v[2].exp());
        let ll = self.repeaters.log_likelihood_and_gradient(p, q, g).0;
        let penalty: f64 = v
            .iter()
            .zip(self.prior)
            .map(|(x, m)| (x - m).powi(2))
            .sum::<f64>()
            * PRIOR_WEIGHT;
        let cost = -ll + penalty;
        Ok(if cost.is_finite() { cost } else { f64::MAX })
    }
}

/// A point of the search space: the log-parameters. Its own type, so the solver's vector
/// arithmetic is these few lines rather than `argmin-math`'s `vec` backend (which would bring a
/// random number generator into the domain).
#[derive(Debug, Clone, PartialEq)]
struct Point(Vec<f64>);

impl std::ops::Deref for Point {
    type Target = [f64];
    fn deref(&self) -> &[f64] {
        &self.0
    }
}

impl Point {
    fn zip(&self, other: &Point, f: impl Fn(f64, f64) -> f64) -> Point {
        Point(
            self.0
                .iter()
                .zip(&other.0)
                .map(|(a, b)| f(*a, *b))
                .collect(),
        )
    }
}

impl ArgminAdd<Point, Point> for Point {
    fn add(&self, other: &Point) -> Point {
        self.zip(other, |a, b| a + b)
    }
}

impl ArgminSub<Point, Point> for Point {
    fn sub(&self, other: &Point) -> Point {
        self.zip(other, |a, b| a - b)
    }
}

impl ArgminMul<f64, Point> for Point {
    fn mul(&self, k: &f64) -> Point {
        Point(self.0.iter().map(|a| a * k).collect())
    }
}

fn nelder_mead<C>(cost: C, start: &[f64]) -> Option<Vec<f64>>
where
    C: CostFunction<Param = Point, Output = f64>,
{
    let mut simplex = vec![Point(start.to_vec())];
    for i in 0..start.len() {
        let mut v = start.to_vec();
        v[i] += 0.5;
        simplex.push(Point(v));
    }
    let solver = NelderMead::new(simplex).with_sd_tolerance(1e-9).ok()?;
    let result = Executor::new(cost, solver)
        .configure(|s| s.max_iters(3000))
        .run()
        .ok()?;
    let best = result.state().get_best_param()?.0.clone();
    best.iter().all(|v| v.is_finite()).then_some(best)
}

pub(super) fn spend_prior(customers: &[Summary]) -> SpendParams {
    let values: Vec<f64> = customers
        .iter()
        .filter(|s| s.frequency > 0 && s.mean_value > 0.0)
        .map(|s| s.mean_value)
        .collect();
    if values.is_empty() {
        // No shop data: each customer's expected spend is their own mean (see `expected_spend`).
        return SpendParams {
            p: PRIOR_SPEND_P,
            q: PRIOR_SPEND_Q,
            gamma: 0.0,
        };
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    SpendParams {
        p: PRIOR_SPEND_P,
        q: PRIOR_SPEND_Q,
        // Mean spend p·γ/(q-1) equals the shop's own mean.
        gamma: mean * (PRIOR_SPEND_Q - 1.0) / PRIOR_SPEND_P,
    }
}

fn fit_spend(customers: &[Summary]) -> SpendParams {
    let prior = spend_prior(customers);
    let repeaters: Vec<(f64, f64)> = customers
        .iter()
        .filter(|s| s.frequency > 0 && s.mean_value > 0.0)
        .map(|s| (s.frequency as f64, s.mean_value))
        .collect();
    if repeaters.len() < MIN_REPEAT_CUSTOMERS {
        return prior;
    }
    let start = [prior.p.ln(), prior.q.ln(), prior.gamma.ln()];
    let repeaters = Repeaters::new(&repeaters);
    let cost = SpendCost {
        repeaters: &repeaters,
        prior: start,
    };
    // BFGS on the analytic gradient; Nelder-Mead where it stops short.
    let found = super::bfgs::minimise(&|v| cost.value_and_gradient(v), start)
        .map(|v| v.to_vec())
        .or_else(|| nelder_mead(cost, &start));
    match found {
        Some(v) => {
            let s = SpendParams {
                p: v[0].exp(),
                q: v[1].exp(),
                gamma: v[2].exp(),
            };
            // q ≤ 1 has no finite mean spend.
            if s.p.is_finite() && s.q > 1.0 && s.q.is_finite() && s.gamma.is_finite() {
                s
            } else {
                prior
            }
        }
        None => prior,
    }
}

/// The customers a fit can read (finite, ordered recency and age).
fn usable(customers: &[Summary]) -> Vec<Summary> {
    customers
        .iter()
        .filter(|s| {
            s.recency_days.is_finite()
                && s.age_days.is_finite()
                && s.recency_days >= 0.0
                && s.age_days >= s.recency_days
        })
        .copied()
        .collect()
}

/// Fits the model to a campaign's customers (see the module docs); never fails, never NaN.
pub fn fit(variant: Variant, customers: &[Summary]) -> Fit {
    let customers = usable(customers);
    let mut fit = fit_usable(variant, &customers, spend_prior(&customers));
    fit.spend = fit_spend(&customers);
    fit
}

/// [`fit`] of the purchase model alone, with the spend prior scaled to the shop's mean order
/// value (what `winback backtest` times apart from the spend fit, to compare with other tools'
/// purchase-model fits).
pub fn fit_purchases(variant: Variant, customers: &[Summary]) -> Fit {
    let customers = usable(customers);
    fit_usable(variant, &customers, spend_prior(&customers))
}

impl Fit {
    /// This fit with the spend model fitted on `customers` (what [`fit`] adds to
    /// [`fit_purchases`]).
    pub fn with_spend_fitted(mut self, customers: &[Summary]) -> Fit {
        self.spend = fit_spend(&usable(customers));
        self
    }
}

fn fit_usable(variant: Variant, customers: &[Summary], spend: SpendParams) -> Fit {
    let prior = prior(variant);
    let repeat_customers = customers.iter().filter(|s| s.frequency > 0).count();
    let with = |params: Params, warning: Option<String>| {
        let ll = params.log_likelihood(variant, customers);
        Fit {
            variant,
            params,
            spend,
            customers: customers.len(),
            repeat_customers,
            mean_log_likelihood: if customers.is_empty() || !ll.is_finite() {
                0.0
            } else {
                ll / customers.len() as f64
            },
            warning,
            categories: Default::default(),
        }
    };
    if repeat_customers < MIN_REPEAT_CUSTOMERS {
        return with(
            prior,
            Some(format!(
                "only {repeat_customers} customers ordered more than once (at least {MIN_REPEAT_CUSTOMERS} needed for a fit of its own): using the shipped prior"
            )),
        );
    }
    let start = [prior.r.ln(), prior.alpha.ln(), prior.a.ln(), prior.b.ln()];
    let grouped = Grouped::new(customers);
    let cost = Penalised {
        variant,
        customers: &grouped,
        prior: start,
    };
    // BFGS on the analytic gradient; Nelder-Mead where it stops short.
    let found = super::bfgs::minimise(&|v| cost.value_and_gradient(v), start)
        .map(|v| v.to_vec())
        .or_else(|| nelder_mead(cost, &start));
    match found {
        Some(v) => {
            let params = Params {
                r: v[0].exp(),
                alpha: v[1].exp(),
                a: v[2].exp(),
                b: v[3].exp(),
            };
            if params.valid() && params.log_likelihood(variant, customers).is_finite() {
                with(params, None)
            } else {
                with(
                    prior,
                    Some("the fit gave non-finite parameters: using the shipped prior".into()),
                )
            }
        }
        None => with(
            prior,
            Some("the fit did not converge: using the shipped prior".into()),
        ),
    }
}

impl Fit {
    /// The prior alone (no data yet).
    pub fn prior(variant: Variant) -> Fit {
        fit(variant, &[])
    }

    /// A model from stored parameters (no fitting, no warning).
    pub fn from_params(variant: Variant, params: Params, spend: Option<SpendParams>) -> Fit {
        Fit {
            variant,
            params,
            spend: spend.unwrap_or_else(|| spend_prior(&[])),
            customers: 0,
            repeat_customers: 0,
            mean_log_likelihood: 0.0,
            warning: None,
            categories: Default::default(),
        }
    }

    /// One line of fit figures for logs.
    pub fn figures(&self) -> String {
        let p = &self.params;
        format!(
            "{:?} on {} customers ({} repeat): r {:.4}, alpha {:.3} d, a {:.4}, b {:.4}; spend p {:.3}, q {:.3}, gamma {:.1}; mean log-likelihood {:.4}{}",
            self.variant,
            self.customers,
            self.repeat_customers,
            p.r,
            p.alpha,
            p.a,
            p.b,
            self.spend.p,
            self.spend.q,
            self.spend.gamma,
            self.mean_log_likelihood,
            self.warning
                .as_deref()
                .map_or_else(String::new, |w| format!(" (warning: {w})"))
        )
    }

    /// The `[lapse.fitted]` block of campaign.toml that stores these parameters.
    pub fn fitted_block(&self) -> String {
        let p = &self.params;
        let g = &self.spend;
        let mut s = format!(
            "[lapse.fitted]\nr = {}\nalpha = {}\na = {}\nb = {}\n",
            p.r, p.alpha, p.a, p.b
        );
        if g.gamma > 0.0 {
            s.push_str(&format!(
                "spend_p = {}\nspend_q = {}\nspend_gamma = {}\n",
                g.p, g.q, g.gamma
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::s;

    #[test]
    fn tiny_or_degenerate_data_falls_back_to_the_prior_without_nan() {
        let none = fit(Variant::Mbgnbd, &[]);
        assert!(none.warning.is_some());
        assert_eq!(none.params, prior(Variant::Mbgnbd));
        let same_day = vec![s(0, 0.0, 0.0); 30];
        let f = fit(Variant::Mbgnbd, &same_day);
        assert!(f.warning.is_some());
        for c in &same_day {
            assert!(f.p_active(c).is_finite());
            assert!(f.expected_purchases(c, 365.0).is_finite());
            assert!(f.predicted_value(c, 365.0).is_finite());
        }
        let nan = Summary {
            frequency: 1,
            recency_days: f64::NAN,
            age_days: 3.0,
            mean_value: 1.0,
        };
        assert_eq!(fit(Variant::Mbgnbd, &[nan]).customers, 0);
    }

    fn varied() -> Vec<Summary> {
        let mut data = Vec::new();
        for i in 0..400u32 {
            let t = 200.0 + (i % 37) as f64 * 3.0;
            let x = i % 9;
            let tx = if x == 0 {
                0.0
            } else {
                t * ((i % 11) as f64 + 1.0) / 12.0
            };
            data.push(s(x, tx.floor(), t));
        }
        data
    }

    #[test]
    fn the_analytic_gradient_matches_finite_differences() {
        let grouped = Grouped::new(&varied());
        for variant in [Variant::Mbgnbd, Variant::Bgnbd] {
            let cost = Penalised {
                variant,
                customers: &grouped,
                prior: [0.0; 4],
            };
            let v = [-0.4, 3.5, -0.3, 0.4];
            let (f0, g) = cost.value_and_gradient(&v).unwrap();
            for i in 0..4 {
                let h = 1e-6;
                let mut up = v;
                up[i] += h;
                let mut down = v;
                down[i] -= h;
                let numeric = (cost.value_and_gradient(&up).unwrap().0
                    - cost.value_and_gradient(&down).unwrap().0)
                    / (2.0 * h);
                assert!(
                    (numeric - g[i]).abs() <= 1e-5 * numeric.abs().max(1.0),
                    "{variant:?} {i}: {numeric} vs {} (f {f0})",
                    g[i]
                );
            }
            // The value is the Nelder-Mead cost.
            assert!((cost.cost(&Point(v.to_vec())).unwrap() - f0).abs() < 1e-9 * f0.abs());
        }
    }

    /// One repeat customer's Gamma-Gamma log-likelihood, as written in Fader, Hardie & Lee (2005b).
    fn spend_ll(p: f64, q: f64, gamma: f64, x: f64, m: f64) -> f64 {
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * m + gamma).ln()
    }

    #[test]
    fn the_spend_likelihood_and_its_gradient_are_the_gamma_gamma_model_s() {
        let data: Vec<(f64, f64)> = (0..300)
            .map(|i| (1.0 + (i % 6) as f64, 800.0 + 37.0 * (i % 29) as f64))
            .collect();
        let grouped = Repeaters::new(&data);
        let (p, q, g) = (2.1, 3.4, 950.0);
        let (ll, grad) = grouped.log_likelihood_and_gradient(p, q, g);
        let direct: f64 = data.iter().map(|(x, m)| spend_ll(p, q, g, *x, *m)).sum();
        assert!(
            (ll - direct).abs() < 1e-9 * direct.abs(),
            "{ll} vs {direct}"
        );
        let cost = SpendCost {
            repeaters: &grouped,
            prior: [0.0; 3],
        };
        let v = [p.ln(), q.ln(), g.ln()];
        let (_, analytic) = cost.value_and_gradient(&v).unwrap();
        assert!((analytic[0] - (-grad[0] + 2.0 * PRIOR_WEIGHT * v[0])).abs() < 1e-9);
        for i in 0..3 {
            let h = 1e-6;
            let (mut up, mut down) = (v, v);
            up[i] += h;
            down[i] -= h;
            let numeric = (cost.value_and_gradient(&up).unwrap().0
                - cost.value_and_gradient(&down).unwrap().0)
                / (2.0 * h);
            assert!(
                (numeric - analytic[i]).abs() <= 1e-5 * numeric.abs().max(1.0),
                "{i}: {numeric} vs {}",
                analytic[i]
            );
        }
    }

    #[test]
    fn bfgs_reaches_at_least_the_likelihood_nelder_mead_reaches() {
        let data = varied();
        let grouped = Grouped::new(&data);
        for variant in [Variant::Mbgnbd, Variant::Bgnbd] {
            let p = prior(variant);
            let start = [p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()];
            let cost = Penalised {
                variant,
                customers: &grouped,
                prior: start,
            };
            let by_bfgs = crate::model::bfgs::minimise(&|v| cost.value_and_gradient(v), start)
                .expect("BFGS converges");
            let by_nm = nelder_mead(
                Penalised {
                    variant,
                    customers: &grouped,
                    prior: start,
                },
                &start,
            )
            .unwrap();
            let at = |v: &[f64]| cost.cost(&Point(v.to_vec())).unwrap();
            assert!(
                at(&by_bfgs) <= at(&by_nm) + 1e-6,
                "{variant:?}: {} vs {}",
                at(&by_bfgs),
                at(&by_nm)
            );
        }
    }

    #[test]
    fn a_fit_recovers_its_own_kind_of_data() {
        // Two groups: frequent buyers still buying, and buyers who stopped long ago.
        let mut data = Vec::new();
        for i in 0..300 {
            let t = 300.0 + (i % 7) as f64;
            data.push(s(6 + i % 3, t - 5.0, t));
            data.push(s(1 + i % 2, 20.0, t));
            data.push(s(0, 0.0, t));
        }
        let f = fit(Variant::Mbgnbd, &data);
        assert!(f.warning.is_none(), "{:?}", f.warning);
        let prior_ll = prior(Variant::Mbgnbd).log_likelihood(Variant::Mbgnbd, &data);
        assert!(f.mean_log_likelihood * data.len() as f64 > prior_ll);
        assert!(f.p_active(&data[0]) > 0.8);
        assert!(f.p_active(&data[1]) < f.p_active(&data[0]));
    }
}
