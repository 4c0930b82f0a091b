//! BFGS for the models' few log-parameters (four for purchases, three for spend): with their
//! analytic gradients a quasi-Newton method converges in tens of evaluations where Nelder-Mead
//! takes hundreds.

/// What is minimised: its value and gradient at a point (`None` where it is not finite).
pub(super) type Objective<'a, const N: usize> = dyn Fn(&[f64; N]) -> Option<(f64, [f64; N])> + 'a;

/// At most this many iterations.
const MAX_ITERATIONS: usize = 200;
/// Converged once no component of the gradient exceeds this share of the value (at least 1): a
/// likelihood summed over many customers carries rounding of about this size in its gradient.
const GRADIENT_TOLERANCE: f64 = 1e-8;
/// Converged, too, once an iteration lowers the value by less than this share of it, with a
/// gradient under [`STALLED_GRADIENT`] of it (rounding, not a slope).
const STALLED: f64 = 1e-14;
const STALLED_GRADIENT: f64 = 1e-6;
/// No step moves a log-parameter by more than this.
const MAX_STEP: f64 = 2.0;

fn dot<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs<const N: usize>(a: &[f64; N]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn scaled_identity<const N: usize>(k: f64) -> [[f64; N]; N] {
    let mut h = [[0.0; N]; N];
    for (i, row) in h.iter_mut().enumerate() {
        row[i] = k;
    }
    h
}

/// Minimises `f` from `start` by BFGS (Nocedal & Wright, algorithm 6.1) with a backtracking
/// (Armijo) line search. `None` when it stops short of a point where the gradient vanishes (the
/// caller falls back to Nelder-Mead).
pub(super) fn minimise<const N: usize>(f: &Objective<'_, N>, start: [f64; N]) -> Option<[f64; N]> {
    let mut x = start;
    let (mut fx, mut g) = f(&x)?;
    let converged = |fx: f64, g: &[f64; N]| max_abs(g) <= GRADIENT_TOLERANCE * fx.abs().max(1.0);
    let mut h = scaled_identity(1.0 / max_abs(&g).max(1.0));
    let mut first = true;
    for _ in 0..MAX_ITERATIONS {
        if converged(fx, &g) {
            return Some(x);
        }
        let mut p = [0.0; N];
        for (i, pi) in p.iter_mut().enumerate() {
            *pi = -dot(&h[i], &g);
        }
        if dot(&g, &p) >= 0.0 {
            // Not a descent direction: start the curvature estimate again.
            h = scaled_identity(1.0 / max_abs(&g).max(1.0));
            p = g.map(|v| -v * h[0][0]);
        }
        let slope = dot(&g, &p);
        let mut t = (MAX_STEP / max_abs(&p)).min(1.0);
        let next = loop {
            let y: [f64; N] = std::array::from_fn(|i| x[i] + t * p[i]);
            match f(&y) {
                Some((fy, gy)) if fy <= fx + 1e-4 * t * slope => break Some((y, fy, gy)),
                _ if t < 1e-10 => break None,
                _ => t *= 0.5,
            }
        };
        let Some((y, fy, gy)) = next else {
            // No step lowers it further: converged as far as the arithmetic allows, if the
            // gradient is nearly flat.
            return (max_abs(&g) <= STALLED_GRADIENT * fx.abs().max(1.0)).then_some(x);
        };
        if fx - fy <= STALLED * fx.abs().max(1.0)
            && max_abs(&gy) <= STALLED_GRADIENT * fy.abs().max(1.0)
        {
            return Some(y);
        }
        let s: [f64; N] = std::array::from_fn(|i| y[i] - x[i]);
        let dg: [f64; N] = std::array::from_fn(|i| gy[i] - g[i]);
        let sy = dot(&s, &dg);
        if sy > 1e-12 {
            if first {
                // Scale the first estimate to the curvature seen (Nocedal & Wright 6.20).
                h = scaled_identity(sy / dot(&dg, &dg));
                first = false;
            }
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ.
            let rho = 1.0 / sy;
            let hy: [f64; N] = std::array::from_fn(|i| dot(&h[i], &dg));
            let yhy = dot(&dg, &hy);
            for i in 0..N {
                for j in 0..N {
                    h[i][j] += -rho * (s[i] * hy[j] + hy[i] * s[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
        (x, fx, g) = (y, fy, gy);
    }
    converged(fx, &g).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_curved_valley() {
        // Rosenbrock in the first two variables, a bowl in the others.
        let f = |v: &[f64; 4]| {
            let (a, b) = (v[0], v[1]);
            let value = 100.0 * (b - a * a).powi(2)
                + (1.0 - a).powi(2)
                + v[2].powi(2)
                + (v[3] - 3.0).powi(2);
            let grad = [
                -400.0 * a * (b - a * a) - 2.0 * (1.0 - a),
                200.0 * (b - a * a),
                2.0 * v[2],
                2.0 * (v[3] - 3.0),
            ];
            Some((value, grad))
        };
        let x = minimise(&f, [-1.2, 1.0, 1.0, 0.0]).expect("converges");
        for (got, want) in x.iter().zip([1.0, 1.0, 0.0, 3.0]) {
            assert!((got - want).abs() < 1e-5, "{x:?}");
        }
    }
}
