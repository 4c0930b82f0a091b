//! Uplift: how much an email changes each customer's chance of ordering (or their revenue),
//! learned from a randomized experiment (treated against holdout).
//!
//! The method is the two-model ("T-learner") estimate with gradient-boosted trees: one booster
//! learns the treated customers' outcome, one the holdout's, and a customer's uplift is the
//! difference of the two predictions. The figures of a fit are cross-fitted: each customer is
//! scored by models that never saw them (their fold is a hash of their id, so a fit is the same
//! every time), and the Qini curve and the targeting table ([`evaluate`]) are drawn from those
//! scores.

pub mod boost;
pub mod evaluate;
pub mod features;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use boost::Params;
pub use features::{Column, Feature};

use boost::{Binned, Booster, Loss};

/// The outcome an uplift is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Whether the customer ordered: uplift is a difference of chances.
    Ordered,
    /// The customer's revenue: uplift is a difference of expected revenue.
    Revenue,
}

/// A randomized experiment, one entry per customer in every vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub customer_ids: Vec<String>,
    /// `true` for the treated group, `false` for the holdout.
    pub treated: Vec<bool>,
    pub ordered: Vec<bool>,
    pub revenue: Vec<f64>,
    pub features: Vec<Column>,
}

/// How a model is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub outcome: Outcome,
    /// Cross-fitting folds (at least 2).
    pub folds: usize,
    pub boost: Params,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            outcome: Outcome::Ordered,
            folds: 2,
            boost: Params::default(),
        }
    }
}

/// Fewest customers each group needs for a fit.
pub const MIN_PER_GROUP: usize = 20;

/// Why an uplift model cannot be fitted or used, said so the operator knows what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpliftError {
    #[error("the experiment has {count} {group} customer(s); it needs at least {MIN_PER_GROUP} treated and {MIN_PER_GROUP} holdout customers to compare")]
    OneSided { group: &'static str, count: usize },
    #[error("row {row}, column {column}: '{value}' is not a number, and the model learned {column} as a number")]
    NotNumeric {
        row: usize,
        column: String,
        value: String,
    },
    #[error("column {column} is not a feature of the model (it knows: {}); remove it or fit the model with it", known.join(", "))]
    UnknownFeature { column: String, known: Vec<String> },
    #[error("column {column} is missing: the model was fitted with it (leave its values empty where unknown)")]
    MissingFeature { column: String },
    #[error("the experiment's columns have different lengths")]
    Ragged,
}

/// A fitted uplift model: the features' encodings and the two boosters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub outcome: Outcome,
    pub settings: Settings,
    pub features: Vec<Feature>,
    pub treated: Booster,
    pub holdout: Booster,
}

/// A fit: the model on every customer, and each customer's cross-fitted uplift.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub model: Model,
    /// Uplift of customer i from the models that did not see customer i.
    pub cross_fitted: Vec<f64>,
}

/// The cross-fitting fold of a customer: the same for the same id and number of folds.
pub fn fold(customer_id: &str, folds: usize) -> usize {
    let d = Sha256::digest(customer_id.as_bytes());
    let x = u64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]));
    (x % folds.max(1) as u64) as usize
}

fn loss(outcome: Outcome) -> Loss {
    match outcome {
        Outcome::Ordered => Loss::Logistic,
        Outcome::Revenue => Loss::Squared,
    }
}

fn pair(x: &Binned, rows: &[usize], e: &Experiment, y: &[f64], s: &Settings) -> (Booster, Booster) {
    let (t, h): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&r| e.treated[r]);
    let l = loss(s.outcome);
    (
        boost::fit(x, &t, y, l, &s.boost),
        boost::fit(x, &h, y, l, &s.boost),
    )
}

fn uplift(x: &Binned, row: usize, treated: &Booster, holdout: &Booster) -> f64 {
    treated.predict(x, row) - holdout.predict(x, row)
}

/// Fits an uplift model on `e`, with cross-fitted scores for its figures.
pub fn fit(e: &Experiment, s: &Settings) -> Result<Fitted, UpliftError> {
    let n = e.customer_ids.len();
    if e.treated.len() != n
        || e.ordered.len() != n
        || e.revenue.len() != n
        || e.features.iter().any(|c| c.values.len() != n)
    {
        return Err(UpliftError::Ragged);
    }
    let treated = e.treated.iter().filter(|t| **t).count();
    for (group, count) in [("treated", treated), ("holdout", n - treated)] {
        if count < MIN_PER_GROUP {
            return Err(UpliftError::OneSided { group, count });
        }
    }
    let features = features::learn(&e.features);
    let x = features::encode(&features, &e.features)?;
    let y: Vec<f64> = match s.outcome {
        Outcome::Ordered => e.ordered.iter().map(|&o| o as u8 as f64).collect(),
        Outcome::Revenue => e.revenue.clone(),
    };
    let folds = s.folds.max(2);
    let fold_of: Vec<usize> = e.customer_ids.iter().map(|id| fold(id, folds)).collect();
    // Customers with the same bins get the same prediction: each distinct row is scored once.
    let all: Vec<usize> = (0..n).collect();
    let distinct = x.distinct(&all);
    let mut cross_fitted = vec![0.0; n];
    for k in 0..folds {
        let train: Vec<usize> = (0..n).filter(|&r| fold_of[r] != k).collect();
        let (t, h) = pair(&x, &train, e, &y, s);
        let mut scored: Vec<Option<f64>> = vec![None; distinct.len];
        for r in (0..n).filter(|&r| fold_of[r] == k) {
            let u = distinct.of[r] as usize;
            cross_fitted[r] = *scored[u].get_or_insert_with(|| uplift(&distinct.x, u, &t, &h));
        }
    }
    let (t, h) = pair(&x, &all, e, &y, s);
    Ok(Fitted {
        model: Model {
            outcome: s.outcome,
            settings: *s,
            features,
            treated: t,
            holdout: h,
        },
        cross_fitted,
    })
}

/// The experiment's customers with `scores`, for [`evaluate::evaluate`].
pub fn units(e: &Experiment, scores: &[f64]) -> Vec<evaluate::Unit> {
    (0..e.customer_ids.len())
        .map(|i| evaluate::Unit {
            score: scores[i],
            treated: e.treated[i],
            ordered: e.ordered[i],
            revenue: e.revenue[i],
        })
        .collect()
}

impl Model {
    /// Each customer's uplift: the treated minus the holdout chance of ordering (or expected
    /// revenue). `columns` are the model's features, by name, in any order, with a value for
    /// each of the `customers`.
    pub fn score(&self, customers: usize, columns: &[Column]) -> Result<Vec<f64>, UpliftError> {
        let x = features::encode(&self.features, columns)?;
        let n = customers;
        if columns.iter().any(|c| c.values.len() != n) {
            return Err(UpliftError::Ragged);
        }
        let all: Vec<usize> = (0..n).collect();
        let distinct = x.distinct(&all);
        let scored: Vec<f64> = (0..distinct.len)
            .map(|u| uplift(&distinct.x, u, &self.treated, &self.holdout))
            .collect();
        Ok(distinct.of.iter().map(|&u| scored[u as usize]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::evaluate::{evaluate, Economics};
    use super::*;

    /// A fixed-seed generator for test data (the domain has no source of randomness).
    pub(crate) struct Draws(u64);

    impl Draws {
        pub(crate) fn new(seed: u64) -> Draws {
            Draws(seed)
        }
        pub(crate) fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Persuadables (segment "a", young) order 50% when emailed and 20% when not; everyone else
    /// orders 30% either way. `age` is missing for one customer in ten.
    fn experiment(n: usize, seed: u64) -> Experiment {
        let mut d = Draws::new(seed);
        let mut e = Experiment {
            customer_ids: Vec::new(),
            treated: Vec::new(),
            ordered: Vec::new(),
            revenue: Vec::new(),
            features: vec![
                Column {
                    name: "segment".into(),
                    values: Vec::new(),
                },
                Column {
                    name: "age".into(),
                    values: Vec::new(),
                },
            ],
        };
        for i in 0..n {
            let segment = if d.uniform() < 0.4 { "a" } else { "b" };
            let age = 20.0 + (d.uniform() * 50.0).floor();
            let treated = d.uniform() < 0.5;
            let persuadable = segment == "a" && age < 45.0;
            let chance = match (persuadable, treated) {
                (true, true) => 0.5,
                (true, false) => 0.2,
                _ => 0.3,
            };
            let ordered = d.uniform() < chance;
            e.customer_ids.push(format!("c{i}"));
            e.treated.push(treated);
            e.ordered.push(ordered);
            e.revenue.push(if ordered { 40.0 } else { 0.0 });
            e.features[0].values.push(Some(segment.into()));
            e.features[1]
                .values
                .push((i % 10 != 0).then(|| format!("{age}")));
        }
        e
    }

    fn mean_score(scores: &[f64], e: &Experiment, persuadable: bool) -> f64 {
        let picked: Vec<f64> = (0..scores.len())
            .filter(|&i| {
                let seg = e.features[0].values[i].as_deref() == Some("a");
                let young = e.features[1].values[i]
                    .as_deref()
                    .is_some_and(|a| a.parse::<f64>().unwrap() < 45.0);
                (seg && young) == persuadable && e.features[1].values[i].is_some()
            })
            .map(|i| scores[i])
            .collect();
        picked.iter().sum::<f64>() / picked.len() as f64
    }

    #[test]
    fn the_model_finds_the_persuadables_and_its_cross_fitted_figures_show_it() {
        let e = experiment(20_000, 7);
        let f = fit(&e, &Settings::default()).unwrap();
        let persuadable = mean_score(&f.cross_fitted, &e, true);
        let others = mean_score(&f.cross_fitted, &e, false);
        assert!(persuadable > 0.2, "{persuadable}");
        assert!(others.abs() < 0.06, "{others}");

        let units = units(&e, &f.cross_fitted);
        let ev = evaluate(
            &units,
            Outcome::Ordered,
            Economics {
                margin: 0.5,
                cost: 1.0,
            },
        );
        assert!(ev.qini > 0.01, "{}", ev.qini);
        assert!(ev.qini_normalised.unwrap() > 0.2);
        let top20 = ev.targeting.iter().find(|t| t.share == 0.2).unwrap();
        // The top fifth holds most persuadables: more orders than a random fifth, and nearly as
        // many as emailing everyone, for far less cost.
        assert!(top20.orders.vs_random.low > 0.0, "{:?}", top20.orders);
        assert!(top20.profit.vs_everyone.value > 0.0, "{:?}", top20.profit);
        let everyone = ev.targeting.last().unwrap();
        assert_eq!(everyone.orders.vs_everyone.value, 0.0);
    }

    #[test]
    fn scoring_the_fitted_model_matches_its_segments_and_takes_missing_values() {
        let e = experiment(10_000, 11);
        let model = fit(&e, &Settings::default()).unwrap().model;
        let columns = vec![
            Column {
                name: "age".into(),
                values: vec![Some("30".into()), Some("30".into()), None],
            },
            Column {
                name: "segment".into(),
                values: vec![
                    Some("a".into()),
                    Some("b".into()),
                    Some("never seen".into()),
                ],
            },
        ];
        let s = model.score(3, &columns).unwrap();
        assert!(s[0] > s[1] + 0.1, "{s:?}");
        assert!(s[2].is_finite());
        let round_trip: Model =
            serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
        assert_eq!(round_trip.score(3, &columns).unwrap(), s);
    }

    #[test]
    fn revenue_uplift_is_a_difference_of_expected_revenue() {
        let e = experiment(10_000, 5);
        let s = Settings {
            outcome: Outcome::Revenue,
            ..Settings::default()
        };
        let f = fit(&e, &s).unwrap();
        // Persuadables: 40 × (0.5 − 0.2) = 12 more in revenue.
        let persuadable = mean_score(&f.cross_fitted, &e, true);
        assert!((persuadable - 12.0).abs() < 4.0, "{persuadable}");
    }

    #[test]
    fn an_experiment_without_a_holdout_is_refused() {
        let mut e = experiment(200, 3);
        e.treated.iter_mut().for_each(|t| *t = true);
        assert_eq!(
            fit(&e, &Settings::default()).unwrap_err(),
            UpliftError::OneSided {
                group: "holdout",
                count: 0
            }
        );
    }

    #[test]
    fn scoring_names_the_row_and_column_of_a_bad_value_and_any_unknown_column() {
        let model = fit(&experiment(2_000, 1), &Settings::default())
            .unwrap()
            .model;
        let segment = Column {
            name: "segment".into(),
            values: vec![Some("a".into()), Some("a".into())],
        };
        let age = |v: &str| Column {
            name: "age".into(),
            values: vec![Some("30".into()), Some(v.into())],
        };
        assert_eq!(
            model.score(2, &[segment.clone(), age("old")]).unwrap_err(),
            UpliftError::NotNumeric {
                row: 1,
                column: "age".into(),
                value: "old".into()
            }
        );
        let extra = Column {
            name: "shoe_size".into(),
            values: vec![None, None],
        };
        assert!(matches!(
            model.score(2, &[segment.clone(), age("31"), extra]),
            Err(UpliftError::UnknownFeature { column, .. }) if column == "shoe_size"
        ));
        assert_eq!(
            model.score(2, &[segment]).unwrap_err(),
            UpliftError::MissingFeature {
                column: "age".into()
            }
        );
    }

    #[test]
    fn folds_are_a_stable_hash_of_the_id_and_balanced() {
        assert_eq!(fold("c42", 2), fold("c42", 2));
        let ones = (0..10_000)
            .filter(|i| fold(&format!("c{i}"), 2) == 1)
            .count();
        assert!((4_800..5_200).contains(&ones), "{ones}");
    }
}
