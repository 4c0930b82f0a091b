//! A fitted model of each customer's buying and dropping out: who is still active, when they will
//! order next, what they are worth, and the moment they lapse.
//!
//! # The model
//!
//! MBG/NBD (Batislam, Denizel & Filiztekin 2007), the BG/NBD of Fader, Hardie & Lee (2005) with one
//! change: a customer may drop out right after any purchase occasion, the first included. Plain BG/NBD
//! ([`Variant::BgNbd`]) is kept and can be chosen, but it holds every one-order customer active for
//! ever (its P(active) is 1 at frequency 0), so it cannot tell when a one-time buyer lapses, and most
//! of a shop's lapsed customers are one-time buyers.
//!
//! While active, a customer orders at rate λ ~ Gamma(r, α) per day; after each purchase occasion they
//! drop out with probability p ~ Beta(a, b). Per customer only three numbers count (in days):
//! `x` repeat purchase occasions (orders on the same UTC day are one occasion), `t_x` the time from
//! the first to the last occasion, `T` the time from the first occasion to now. Then
//!
//! ```text
//! P(active) = 1 / (1 + a/(b+x) × ((α+T)/(α+t_x))^(r+x))        (MBG/NBD; BG/NBD: a/(b+x-1), 1 at x = 0)
//! ```
//!
//! which falls as `T` grows with no new order. The **lapse moment** is the `T` at which P(active)
//! falls below the campaign's threshold, in closed form:
//! `T* = (α+t_x) × ((1/θ - 1)(b+x)/a)^(1/(r+x)) - α`.
//!
//! Spend: Gamma-Gamma (Fader, Hardie & Lee 2005b) on the mean value of the repeat occasions.
//! Predicted value over a horizon = expected purchase occasions in it × expected spend per occasion.
//!
//! # Fitting
//!
//! Per campaign, by maximum likelihood over the log-parameters: BFGS (`bfgs.rs`) on the analytic
//! gradient of the likelihood summed over distinct `(x, t_x, T)` histories (and the spend model's
//! over customers grouped by `x`), Nelder-Mead (`argmin`) where BFGS stops short; with a
//! penalty `PRIOR_WEIGHT × Σ (ln θ - ln θ_prior)²` toward a shipped prior (parameters fitted on CDNOW,
//! a real CD retailer's history): it weighs like a handful of customers, so a large shop's own fit
//! wins and a small one is held near the prior. A fit with fewer than [`MIN_REPEAT_CUSTOMERS`] repeat
//! customers, one that fails, or one that gives non-finite values is replaced by the prior, with the
//! reason in [`Fit::warning`].
//!
//! # Where it is
//!
//! `summary.rs` reduces a customer's orders to the model's three numbers, `likelihood.rs` is the
//! models' likelihood (`math.rs` the special functions it needs), `fit.rs` fits it or falls back
//! to the prior, and `predict.rs` answers from a fit: P(active), the chance of an order, the
//! lapse moment, expected purchases and value.

use serde::{Deserialize, Serialize};

mod bfgs;
mod fit;
mod likelihood;
mod math;
mod predict;
mod summary;

pub use fit::{fit, fit_purchases, worth_storing, CampaignFit, Fit};
pub use summary::{at_age, fit_summary, profile_summary, summarize, Summary};

/// Below this many customers with a repeat order, the shop's own fit is not trusted.
pub const MIN_REPEAT_CUSTOMERS: usize = 50;
/// How strongly the fit is pulled toward the prior (in units of one customer's log-likelihood).
pub const PRIOR_WEIGHT: f64 = 5.0;

/// Which model of dropping out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Drop-out possible after every occasion, the first included (the default).
    #[default]
    Mbgnbd,
    /// Fader, Hardie & Lee's BG/NBD: drop-out only after a repeat occasion.
    Bgnbd,
}

/// Purchase and drop-out parameters; `alpha` is in days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Gamma-Gamma spend parameters; `gamma` is in the shop's minor currency units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpendParams {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// Prior purchase parameters: the maximum-likelihood fit on CDNOW (orders to 1997-09-30, 23,570
/// customers, days; infra/model/compare.py prints them).
pub fn prior(variant: Variant) -> Params {
    match variant {
        Variant::Mbgnbd => Params {
            r: 0.6391,
            alpha: 51.114,
            a: 0.8212,
            b: 1.2402,
        },
        Variant::Bgnbd => Params {
            r: 0.2507,
            alpha: 33.355,
            a: 0.7460,
            b: 2.2160,
        },
    }
}

/// Prior spend shape (Gamma-Gamma fitted on CDNOW: p 6.26, q 3.63); its scale follows the shop's
/// own mean order value.
const PRIOR_SPEND_P: f64 = 6.26;
const PRIOR_SPEND_Q: f64 = 3.63;

#[cfg(test)]
mod tests {
    //! What the submodules' tests share.

    use super::Summary;

    pub(super) fn s(x: u32, tx: f64, t: f64) -> Summary {
        Summary {
            frequency: x,
            recency_days: tx,
            age_days: t,
            mean_value: 0.0,
        }
    }

    pub(super) fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-12)
    }
}
