//! What targeting by an uplift score would have done, read off a randomized experiment: the Qini
//! curve and coefficient, and the incremental orders, revenue and profit of treating the top k%
//! with 95% intervals, against treating everyone and against treating k% at random.
//!
//! The scores must come from models that did not see the customers (cross-fitted), or the figures
//! flatter the model.

use serde::Serialize;

use super::Outcome;
use crate::metrics::Z95;

/// One customer of the experiment, with their score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    pub score: f64,
    pub treated: bool,
    pub ordered: bool,
    pub revenue: f64,
}

/// What treating a customer is worth: `margin` is the share of revenue kept as profit, `cost`
/// what treating one customer costs (the email and the reward), in revenue's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Economics {
    pub margin: f64,
    pub cost: f64,
}

/// A figure with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Estimate {
    fn new(value: f64, se: f64) -> Estimate {
        Estimate {
            value,
            low: value - Z95 * se,
            high: value + Z95 * se,
        }
    }
}

/// One point of the Qini curve: treating the top `share`, the incremental outcome per customer
/// of the whole experiment, and what treating the same share at random would give.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QiniPoint {
    pub share: f64,
    pub model: f64,
    pub random: f64,
}

/// An incremental figure of treating the top k%: alone (against treating nobody), against
/// treating everyone and against treating the same number at random.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Effect {
    pub incremental: Estimate,
    pub vs_everyone: Estimate,
    pub vs_random: Estimate,
}

/// Treating the top `share` of customers by score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Targeting {
    pub share: f64,
    pub customers: usize,
    pub orders: Effect,
    pub revenue: Effect,
    pub profit: Effect,
}

/// Everything the fit's report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub outcome: Outcome,
    pub customers: usize,
    pub treated: usize,
    pub holdout: usize,
    /// The incremental outcome per customer of treating everyone (the average effect).
    pub average_effect: Estimate,
    /// The Qini curve at every percent.
    pub curve: Vec<QiniPoint>,
    /// Area between the Qini curve and the random line, in incremental outcome per customer.
    pub qini: f64,
    /// The same area over the average effect: 0 for a random ranking, higher is better.
    pub qini_normalised: Option<f64>,
    pub targeting: Vec<Targeting>,
}

/// Sums of one group in a slice of customers.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    n: f64,
    orders: f64,
    revenue: f64,
    revenue2: f64,
}

impl Group {
    fn add(&mut self, u: &Unit) {
        self.n += 1.0;
        self.orders += u.ordered as u8 as f64;
        self.revenue += u.revenue;
        self.revenue2 += u.revenue * u.revenue;
    }
    fn mean(&self, outcome: Outcome) -> f64 {
        if self.n == 0.0 {
            return 0.0;
        }
        match outcome {
            Outcome::Ordered => self.orders / self.n,
            Outcome::Revenue => self.revenue / self.n,
        }
    }
    /// Variance of the mean.
    fn var_mean(&self, outcome: Outcome) -> f64 {
        if self.n < 2.0 {
            return 0.0;
        }
        let m = self.mean(outcome);
        let second = match outcome {
            Outcome::Ordered => m,
            Outcome::Revenue => self.revenue2 / self.n,
        };
        ((second - m * m) * self.n / (self.n - 1.0)).max(0.0) / self.n
    }
}

/// Treated and holdout sums of a slice.
#[derive(Debug, Clone, Copy, Default)]
struct Slice {
    t: Group,
    h: Group,
}

impl Slice {
    fn of(units: &[Unit]) -> Slice {
        let mut s = Slice::default();
        for u in units {
            s.add(u);
        }
        s
    }
    fn add(&mut self, u: &Unit) {
        if u.treated {
            self.t.add(u)
        } else {
            self.h.add(u)
        }
    }
    fn size(&self) -> f64 {
        self.t.n + self.h.n
    }
    /// Incremental total outcome if everyone in the slice is treated, and its standard error.
    fn incremental(&self, outcome: Outcome) -> (f64, f64) {
        if self.t.n == 0.0 || self.h.n == 0.0 {
            return (0.0, 0.0);
        }
        let n = self.size();
        (
            n * (self.t.mean(outcome) - self.h.mean(outcome)),
            n * (self.t.var_mean(outcome) + self.h.var_mean(outcome)).sqrt(),
        )
    }
}

/// The shares of the targeting table.
pub const SHARES: [f64; 6] = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0];

fn effect(top: (f64, f64), bottom: (f64, f64), share: f64, scale: f64, cost: (f64, f64)) -> Effect {
    let (t, st) = (top.0 * scale - cost.0, top.1 * scale);
    let (b, sb) = (bottom.0 * scale - cost.1, bottom.1 * scale);
    Effect {
        incremental: Estimate::new(t, st),
        // Everyone = top + bottom: the difference is the bottom's effect, given up.
        vs_everyone: Estimate::new(-b, sb),
        // Random = the share of everyone's effect.
        vs_random: Estimate::new(
            (1.0 - share) * t - share * b,
            ((1.0 - share) * (1.0 - share) * st * st + share * share * sb * sb).sqrt(),
        ),
    }
}

/// Evaluates ranking the customers by score, highest first.
pub fn evaluate(units: &[Unit], outcome: Outcome, economics: Economics) -> Evaluation {
    let mut sorted = units.to_vec();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    let n = sorted.len();
    let all = Slice::of(&sorted);
    let (everyone, everyone_se) = all.incremental(outcome);
    let per = |x: f64| if n > 0 { x / n as f64 } else { 0.0 };

    // The curve at every customer, for the area; kept at every percent.
    let mut cum = Slice::default();
    let mut area = 0.0;
    let mut curve = vec![QiniPoint {
        share: 0.0,
        model: 0.0,
        random: 0.0,
    }];
    let mut next_percent = 1;
    for (i, u) in sorted.iter().enumerate() {
        cum.add(u);
        let share = (i + 1) as f64 / n as f64;
        let model = per(cum.incremental(outcome).0);
        let random = share * per(everyone);
        area += (model - random) / n as f64;
        while next_percent <= 100 && (i + 1) * 100 >= next_percent * n {
            curve.push(QiniPoint {
                share: next_percent as f64 / 100.0,
                model,
                random,
            });
            next_percent += 1;
        }
    }
    let targeting = SHARES
        .iter()
        .map(|&share| {
            let k = ((share * n as f64).round() as usize).min(n);
            let (top, bottom) = (Slice::of(&sorted[..k]), Slice::of(&sorted[k..]));
            let revenue = |s: &Slice| s.incremental(Outcome::Revenue);
            let costs = (k as f64 * economics.cost, (n - k) as f64 * economics.cost);
            Targeting {
                share,
                customers: k,
                orders: effect(
                    top.incremental(Outcome::Ordered),
                    bottom.incremental(Outcome::Ordered),
                    share,
                    1.0,
                    (0.0, 0.0),
                ),
                revenue: effect(revenue(&top), revenue(&bottom), share, 1.0, (0.0, 0.0)),
                profit: effect(
                    revenue(&top),
                    revenue(&bottom),
                    share,
                    economics.margin,
                    costs,
                ),
            }
        })
        .collect();
    Evaluation {
        outcome,
        customers: n,
        treated: all.t.n as usize,
        holdout: all.h.n as usize,
        average_effect: Estimate::new(per(everyone), per(everyone_se)),
        curve,
        qini: area,
        qini_normalised: (everyone.abs() > 0.0).then(|| area / per(everyone).abs()),
        targeting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(score: f64, treated: bool, ordered: bool) -> Unit {
        Unit {
            score,
            treated,
            ordered,
            revenue: if ordered { 10.0 } else { 0.0 },
        }
    }

    #[test]
    fn the_qini_area_and_the_targeting_table_match_a_hand_count() {
        // Ranked: a treated buyer, a holdout non-buyer, a treated non-buyer, a holdout buyer.
        // Emailing everyone changes nothing (50% against 50%); the top half gains 2 orders.
        let units = [
            unit(1.0, false, true),
            unit(3.0, false, false),
            unit(4.0, true, true),
            unit(2.0, true, false),
        ];
        let economics = Economics {
            margin: 0.5,
            cost: 1.0,
        };
        let ev = evaluate(&units, Outcome::Ordered, economics);
        assert_eq!(ev.average_effect.value, 0.0);
        // Curve per customer: 0 (no holdout yet), 2/4, 1.5/4, 0; random line flat at 0.
        assert!((ev.qini - (0.5 + 0.375) / 4.0).abs() < 1e-12, "{}", ev.qini);
        assert_eq!(ev.qini_normalised, None);
        assert_eq!(ev.curve.len(), 101);
        assert_eq!(ev.curve[50].model, 0.5);

        let half = ev.targeting.iter().find(|t| t.share == 0.5).unwrap();
        assert_eq!(half.customers, 2);
        assert_eq!(half.orders.incremental.value, 2.0);
        assert_eq!(half.orders.vs_everyone.value, 2.0);
        assert_eq!(half.orders.vs_random.value, 2.0);
        // 20 more in revenue, half of it kept, less two customers' cost.
        assert_eq!(half.revenue.incremental.value, 20.0);
        assert_eq!(half.profit.incremental.value, 8.0);
        // The bottom half lost 2 orders (20 in revenue, 10 in margin) and cost 2.
        assert_eq!(half.profit.vs_everyone.value, 12.0);
    }

    #[test]
    fn intervals_widen_with_fewer_customers_and_bracket_the_figure() {
        let many: Vec<Unit> = (0..4000)
            .map(|i| unit(i as f64, i % 2 == 0, i % 3 == 0))
            .collect();
        let few = &many[..400];
        let width = |u: &[Unit]| {
            let e = evaluate(
                u,
                Outcome::Ordered,
                Economics {
                    margin: 1.0,
                    cost: 0.0,
                },
            )
            .average_effect;
            assert!(e.low <= e.value && e.value <= e.high);
            e.high - e.low
        };
        assert!(width(few) > 2.0 * width(&many));
    }
}
