//! The special functions the likelihood and the predictions need.

pub(super) fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// The digamma function ψ(x) = d ln Γ(x) / dx for x > 0: the recurrence ψ(x) = ψ(x+1) − 1/x up
/// to x ≥ 10, then its asymptotic series (to about 1e-12).
pub(super) fn digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv2 = 1.0 / (x * x);
    shift + x.ln()
        - 0.5 / x
        - inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 / 240.0)))
}

pub(super) fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

pub(super) fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Gauss hypergeometric ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its series, to a relative 1e-10 (the
/// expected purchases it feeds are estimates; lifetimes agrees to 1e-6). When c < a + b (as in
/// both models' expected purchases), Euler's transformation
/// ₂F₁(a, b; c; z) = (1 − z)^(c − a − b) ₂F₁(c − a, c − b; c; z) gives a series whose terms fall
/// faster (by k^(2(c − a − b)) at the k-th), about half as many for a year's horizon.
pub(super) fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if c < a + b {
        return (1.0 - z).powf(c - a - b) * hyp2f1_series(c - a, c - b, c, z);
    }
    hyp2f1_series(a, b, c, z)
}

fn hyp2f1_series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 0..100_000 {
        let k = k as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-10 * sum.abs() {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::close;
    use crate::model::{prior, Variant};

    #[test]
    fn digamma_is_the_derivative_of_ln_gamma() {
        // ψ(1) = −γ (Euler's constant), ψ(1/2) = −γ − 2 ln 2, and the slope of ln Γ elsewhere.
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-12);
        assert!((digamma(0.5) + euler + 2.0 * 2f64.ln()).abs() < 1e-12);
        for x in [0.05, 0.7, 3.3, 12.0, 250.0] {
            let h = 1e-5 * x;
            let slope = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(
                close(digamma(x), slope, 1e-6),
                "{x}: {} vs {slope}",
                digamma(x)
            );
        }
    }

    #[test]
    fn euler_transformed_series_is_the_same_function() {
        // The two models' arguments over a range of histories and horizons (z up to 0.95).
        let prior = prior(Variant::Mbgnbd);
        for x in [0.0, 1.0, 3.0, 12.0] {
            let (a, b, c) = (prior.r + x, prior.b + x + 1.0, prior.a + prior.b + x);
            assert!(c < a + b, "the transformation is the one used");
            for z in [0.05, 0.3, 0.5, 0.8, 0.95] {
                let (fast, plain) = (hyp2f1(a, b, c, z), hyp2f1_series(a, b, c, z));
                assert!(close(fast, plain, 1e-8), "x {x} z {z}: {fast} vs {plain}");
            }
        }
    }
}
