//! Gradient-boosted regression trees over binned features, the learner behind each side of the
//! uplift model. Every feature has at most [`BINS`] bins, bin 0 holding the missing values; a
//! split sends a set of bins left (a prefix of the ordered bins for a number, a set of categories
//! ordered by their mean gradient for a category, the optimal partition for this loss). Each
//! booster gathers its customers' bins once, customers with the same bin in every feature as one
//! weighted row (their count and summed outcome: the trees cannot tell them apart, so their
//! gradients are equal and the fit is the same as on every customer); a node's histograms are
//! counted for the smaller child only, the larger child's being its parent's less those.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Bins a feature has at most, bin 0 being "missing".
pub const BINS: usize = 64;

/// What a booster predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// A chance (of ordering): log-loss, the trees add up log-odds.
    Logistic,
    /// An amount (revenue): squared error.
    Squared,
}

/// How the trees are grown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub trees: usize,
    pub depth: usize,
    pub learning_rate: f64,
    /// L2 penalty on a leaf's value.
    pub lambda: f64,
    /// Fewest customers in a leaf.
    pub min_leaf: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            trees: 60,
            depth: 3,
            learning_rate: 0.1,
            lambda: 10.0,
            min_leaf: 200,
        }
    }
}

/// Binned features, one column per feature, one byte per customer; `numeric[f]` says whether
/// feature `f`'s bins are ordered.
#[derive(Debug, Clone, PartialEq)]
pub struct Binned {
    pub columns: Vec<Vec<u8>>,
    pub numeric: Vec<bool>,
}

impl Binned {
    fn bin(&self, feature: usize, row: usize) -> u8 {
        self.columns[feature][row]
    }

    /// The distinct bin vectors among `rows` (in order of first appearance) and, for each of
    /// `rows`, which of them is its own.
    pub fn distinct(&self, rows: &[usize]) -> Distinct {
        let width = self.columns.len();
        let mut keys = vec![0u8; rows.len() * width];
        for (f, column) in self.columns.iter().enumerate() {
            for (j, &r) in rows.iter().enumerate() {
                keys[j * width + f] = column[r];
            }
        }
        let mut seen: HashMap<&[u8], u32> = HashMap::with_capacity(rows.len().min(1 << 16));
        let mut firsts: Vec<usize> = Vec::new();
        let of: Vec<u32> = (0..rows.len())
            .map(|j| {
                let key = &keys[j * width..(j + 1) * width];
                *seen.entry(key).or_insert_with(|| {
                    firsts.push(rows[j]);
                    (firsts.len() - 1) as u32
                })
            })
            .collect();
        Distinct {
            len: firsts.len(),
            x: Binned {
                columns: self
                    .columns
                    .iter()
                    .map(|c| firsts.iter().map(|&r| c[r]).collect())
                    .collect(),
                numeric: self.numeric.clone(),
            },
            of,
        }
    }
}

/// Rows with the same bins in every feature, once each ([`Binned::distinct`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Distinct {
    /// How many distinct rows there are (also without any feature).
    pub len: usize,
    /// Their bins.
    pub x: Binned,
    /// For each row asked about, the index of its distinct row.
    pub of: Vec<u32>,
}

/// One node of a tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Node {
    /// Customers whose bin of `feature` is in the bit set `left` go to node `yes`, the others to `no`.
    Split {
        feature: usize,
        left: u64,
        yes: usize,
        no: usize,
    },
    Leaf {
        value: f64,
    },
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    fn value(&self, x: &Binned, row: usize) -> f64 {
        let mut k = 0;
        loop {
            match self.nodes[k] {
                Node::Leaf { value } => return value,
                Node::Split {
                    feature,
                    left,
                    yes,
                    no,
                } => {
                    k = if left >> x.bin(feature, row) & 1 == 1 {
                        yes
                    } else {
                        no
                    }
                }
            }
        }
    }
}

/// A fitted sum of trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booster {
    pub loss: Loss,
    pub base: f64,
    pub trees: Vec<Tree>,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Booster {
    /// The prediction for customer `row` of `x`: a chance with [`Loss::Logistic`], an amount with
    /// [`Loss::Squared`].
    pub fn predict(&self, x: &Binned, row: usize) -> f64 {
        let raw = self.base + self.trees.iter().map(|t| t.value(x, row)).sum::<f64>();
        match self.loss {
            Loss::Logistic => sigmoid(raw),
            Loss::Squared => raw,
        }
    }
}

/// Fits a booster on the customers `rows` of `x`, whose outcomes are `y[row]`.
pub fn fit(x: &Binned, rows: &[usize], y: &[f64], loss: Loss, p: &Params) -> Booster {
    let n = rows.len().max(1) as f64;
    let mean = rows.iter().map(|&r| y[r]).sum::<f64>() / n;
    let base = match loss {
        Loss::Logistic => {
            let m = mean.clamp(1e-6, 1.0 - 1e-6);
            (m / (1.0 - m)).ln()
        }
        Loss::Squared => mean,
    };
    // The customers' bins gathered once, one weighted row per distinct bin vector: every tree
    // sends the customers of one row the same way, so they share a prediction and a gradient.
    let Distinct {
        len: distinct,
        x: local,
        of,
    } = x.distinct(rows);
    let mut count = vec![0usize; distinct];
    let mut y_sum = vec![0.0; distinct];
    for (&u, &r) in of.iter().zip(rows) {
        count[u as usize] += 1;
        y_sum[u as usize] += y[r];
    }
    let mut raw = vec![base; distinct];
    // Each row's gradient and hessian summed over its customers, and their count, side by side.
    let mut sums: Vec<Sums> = count
        .iter()
        .map(|&n| Sums {
            n,
            ..Sums::default()
        })
        .collect();
    let mut trees = Vec::with_capacity(p.trees);
    for _ in 0..p.trees {
        for (u, row) in sums.iter_mut().enumerate() {
            let w = row.n as f64;
            match loss {
                Loss::Logistic => {
                    let q = sigmoid(raw[u]);
                    row.g = w * q - y_sum[u];
                    row.h = w * (q * (1.0 - q)).max(1e-9);
                }
                Loss::Squared => {
                    row.g = w * raw[u] - y_sum[u];
                    row.h = w;
                }
            }
        }
        let mut grower = Grower {
            x: &local,
            rows: &sums,
            p,
            nodes: Vec::new(),
        };
        grower.grow((0..distinct as u32).collect(), 0, None);
        let tree = Tree {
            nodes: grower.nodes,
        };
        for (u, r) in raw.iter_mut().enumerate() {
            *r += tree.value(&local, u);
        }
        trees.push(tree);
    }
    Booster { loss, base, trees }
}

/// Grows one tree over the booster's own rows (`x` gathered, one row per distinct bin vector;
/// `rows` its gradient and hessian summed over its customers, and their count).
struct Grower<'a> {
    x: &'a Binned,
    rows: &'a [Sums],
    p: &'a Params,
    nodes: Vec<Node>,
}

/// Gradient, hessian and count of a bin.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    g: f64,
    h: f64,
    n: usize,
}

impl Sums {
    fn add(&mut self, o: Sums) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
}

/// A feature's sums per bin over a node's customers.
type Histogram = [Sums; BINS];

struct Split {
    feature: usize,
    left: u64,
    gain: f64,
}

impl Grower<'_> {
    /// Grows the node holding local customers `idx` at `depth` (with each feature's histogram
    /// over them, when its parent had them); returns its index.
    fn grow(&mut self, idx: Vec<u32>, depth: usize, histograms: Option<Vec<Histogram>>) -> usize {
        let total = idx.iter().fold(Sums::default(), |mut s, &j| {
            s.add(self.rows[j as usize]);
            s
        });
        let me = self.nodes.len();
        self.nodes.push(Node::Leaf {
            value: -self.p.learning_rate * total.g / (total.h + self.p.lambda),
        });
        if depth >= self.p.depth || total.n < 2 * self.p.min_leaf {
            return me;
        }
        let histograms = histograms.unwrap_or_else(|| self.histograms(&idx));
        let Some(split) = (0..self.x.columns.len())
            .filter_map(|f| self.best_split(f, &histograms[f], total))
            .max_by(|a, b| a.gain.total_cmp(&b.gain))
        else {
            return me;
        };
        let (l, r): (Vec<u32>, Vec<u32>) = idx
            .into_iter()
            .partition(|&j| split.left >> self.x.bin(split.feature, j as usize) & 1 == 1);
        // Children that look for a split need their histograms: the smaller child's are counted,
        // the larger's are the parent's less those.
        let (yes_h, no_h) = if depth + 1 < self.p.depth {
            let left_smaller = l.len() <= r.len();
            let small = self.histograms(if left_smaller { &l } else { &r });
            let large: Vec<Histogram> = histograms
                .iter()
                .zip(&small)
                .map(|(parent, child)| {
                    let mut rest = *parent;
                    for (b, c) in rest.iter_mut().zip(child) {
                        b.g -= c.g;
                        b.h -= c.h;
                        b.n -= c.n;
                    }
                    rest
                })
                .collect();
            if left_smaller {
                (Some(small), Some(large))
            } else {
                (Some(large), Some(small))
            }
        } else {
            (None, None)
        };
        let yes = self.grow(l, depth + 1, yes_h);
        let no = self.grow(r, depth + 1, no_h);
        self.nodes[me] = Node::Split {
            feature: split.feature,
            left: split.left,
            yes,
            no,
        };
        me
    }

    fn score(&self, s: Sums) -> f64 {
        s.g * s.g / (s.h + self.p.lambda)
    }

    /// Each feature's histogram over the local customers `idx`.
    fn histograms(&self, idx: &[u32]) -> Vec<Histogram> {
        self.x
            .columns
            .iter()
            .map(|column| {
                let mut hist = [Sums::default(); BINS];
                for &j in idx {
                    let j = j as usize;
                    hist[column[j] as usize].add(self.rows[j]);
                }
                hist
            })
            .collect()
    }

    fn best_split(&self, f: usize, hist: &Histogram, total: Sums) -> Option<Split> {
        let parent = self.score(total);
        let mut best: Option<Split> = None;
        let mut consider = |order: &[usize], start: Sums, start_mask: u64, ordinal: bool| {
            let (mut left, mut mask) = (start, start_mask);
            for &b in order {
                left.add(hist[b]);
                mask |= if ordinal {
                    // Every bin up to this one, seen here or not, so that scoring is ordered too.
                    (u64::MAX >> (63 - b)) & !1
                } else {
                    1 << b
                };
                let right = Sums {
                    g: total.g - left.g,
                    h: total.h - left.h,
                    n: total.n - left.n,
                };
                let min = self.p.min_leaf.max(1);
                if left.n < min || right.n < min {
                    continue;
                }
                let gain = self.score(left) + self.score(right) - parent;
                if gain > 1e-9 && best.as_ref().is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        feature: f,
                        left: mask,
                        gain,
                    });
                }
            }
        };
        if self.x.numeric[f] {
            let order: Vec<usize> = (1..BINS).filter(|&b| hist[b].n > 0).collect();
            // Missing values go right, then left.
            consider(&order, Sums::default(), 0, true);
            if hist[0].n > 0 {
                consider(&order, hist[0], 1, true);
            }
        } else {
            let mut order: Vec<usize> = (0..BINS).filter(|&b| hist[b].n > 0).collect();
            let ratio = |b: usize| hist[b].g / (hist[b].h + self.p.lambda);
            order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
            consider(&order, Sums::default(), 0, false);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squared(x: &Binned, y: &[f64]) -> Booster {
        let rows: Vec<usize> = (0..y.len()).collect();
        let p = Params {
            min_leaf: 5,
            lambda: 0.0,
            learning_rate: 0.5,
            ..Params::default()
        };
        fit(x, &rows, y, Loss::Squared, &p)
    }

    #[test]
    fn a_number_splits_in_order_and_missing_values_go_their_own_way() {
        // Bins 1..=9; missing (0) behaves like the high values.
        let bins: Vec<u8> = (0..500).map(|i| (i % 10) as u8).collect();
        let y: Vec<f64> = bins
            .iter()
            .map(|&b| (b == 0 || b >= 5) as u8 as f64)
            .collect();
        let x = Binned {
            columns: vec![bins],
            numeric: vec![true],
        };
        let b = squared(&x, &y);
        for (row, want) in [(0, 1.0), (1, 0.0), (4, 0.0), (5, 1.0), (9, 1.0)] {
            assert!((b.predict(&x, row) - want).abs() < 0.01, "row {row}");
        }
        // A bin never seen in training is still ordered: 7 lies among the high ones.
        let unseen = Binned {
            columns: vec![vec![7]],
            numeric: vec![true],
        };
        let without_7: Vec<usize> = (0..500).filter(|i| i % 10 != 7).collect();
        let b = fit(
            &x,
            &without_7,
            &y,
            Loss::Squared,
            &Params {
                min_leaf: 5,
                lambda: 0.0,
                learning_rate: 0.5,
                ..Params::default()
            },
        );
        assert!((b.predict(&unseen, 0) - 1.0).abs() < 0.01);
    }

    #[test]
    fn categories_are_grouped_by_their_outcome_whatever_their_bin() {
        let bins: Vec<u8> = (0..600).map(|i| (i % 6) as u8).collect();
        let y: Vec<f64> = bins
            .iter()
            .map(|&b| [1.0, 0.0, 1.0, 0.0, 1.0, 0.0][b as usize])
            .collect();
        let x = Binned {
            columns: vec![bins],
            numeric: vec![false],
        };
        let b = squared(&x, &y);
        for (row, want) in y.iter().enumerate().take(6) {
            assert!((b.predict(&x, row) - want).abs() < 0.01, "row {row}");
        }
    }

    #[test]
    fn customers_with_the_same_bins_are_one_row() {
        let x = Binned {
            columns: vec![vec![1, 2, 1, 3, 1, 2], vec![0, 5, 0, 5, 4, 5]],
            numeric: vec![true, false],
        };
        let d = x.distinct(&[5, 0, 1, 2, 3, 4]);
        assert_eq!(d.len, 4);
        assert_eq!(d.x.columns, vec![vec![2, 1, 3, 1], vec![5, 0, 5, 4]]);
        assert_eq!(d.of, vec![0, 1, 0, 1, 2, 3]);
        assert_eq!(d.x.numeric, x.numeric);
        // Without features every row is the same one.
        let none = Binned {
            columns: Vec::new(),
            numeric: Vec::new(),
        };
        assert_eq!(none.distinct(&[0, 1, 2]).len, 1);
    }

    #[test]
    fn the_logistic_booster_predicts_chances() {
        let bins: Vec<u8> = (0..2000).map(|i| (i % 2) as u8 + 1).collect();
        // Bin 1 orders one time in four, bin 2 three times in four.
        let y: Vec<f64> = (0..2000)
            .map(|i| ((i / 2) % 4 < if i % 2 == 0 { 1 } else { 3 }) as u8 as f64)
            .collect();
        let x = Binned {
            columns: vec![bins],
            numeric: vec![true],
        };
        let rows: Vec<usize> = (0..2000).collect();
        let p = Params {
            trees: 200,
            ..Params::default()
        };
        let b = fit(&x, &rows, &y, Loss::Logistic, &p);
        assert!(
            (b.predict(&x, 0) - 0.25).abs() < 0.02,
            "{}",
            b.predict(&x, 0)
        );
        assert!(
            (b.predict(&x, 1) - 0.75).abs() < 0.02,
            "{}",
            b.predict(&x, 1)
        );
    }
}
