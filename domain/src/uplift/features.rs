//! The experiment's further columns as features: a column whose every present value is a number
//! is used as a number (cut into at most 63 bins by its quantiles), any other as categories (the
//! 62 most frequent each in a bin, the rest together); a missing value has a bin of its own.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::boost::{Binned, BINS};
use super::UpliftError;

/// One feature column: its name and each customer's value (`None` when missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub values: Vec<Option<String>>,
}

/// How a feature's values become bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Encoding {
    /// A value goes to bin 1 + the number of cuts below it.
    Numeric { cuts: Vec<f64> },
    /// Category `categories[i]` goes to bin i + 1; any other to the last bin.
    Categorical { categories: Vec<String> },
}

/// A feature the model knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    #[serde(flatten)]
    pub encoding: Encoding,
}

const OTHER: usize = BINS - 1;

fn number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Learns each column's encoding from the experiment's values.
pub fn learn(columns: &[Column]) -> Vec<Feature> {
    columns
        .iter()
        .map(|c| {
            let present: Vec<&str> = c.values.iter().flatten().map(String::as_str).collect();
            let numbers: Option<Vec<f64>> = present.iter().map(|v| number(v)).collect();
            let encoding = match numbers {
                Some(mut xs) if !xs.is_empty() => {
                    xs.sort_by(f64::total_cmp);
                    let mut distinct = xs.clone();
                    distinct.dedup();
                    let cuts = if distinct.len() < BINS {
                        distinct[..distinct.len() - 1].to_vec()
                    } else {
                        let mut cuts: Vec<f64> = (1..BINS - 1)
                            .map(|q| xs[q * xs.len() / (BINS - 1)])
                            .collect();
                        cuts.dedup();
                        cuts
                    };
                    Encoding::Numeric { cuts }
                }
                _ => {
                    let mut counts: HashMap<&str, usize> = HashMap::new();
                    for v in &present {
                        *counts.entry(v).or_default() += 1;
                    }
                    let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
                    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    Encoding::Categorical {
                        categories: by_count
                            .into_iter()
                            .take(OTHER - 1)
                            .map(|(v, _)| v.to_string())
                            .collect(),
                    }
                }
            };
            Feature {
                name: c.name.clone(),
                encoding,
            }
        })
        .collect()
}

/// Bins `columns` as `features` say, matching columns by name. Every feature must be there
/// (and nothing else); a numeric feature's value must be a number.
pub fn encode(features: &[Feature], columns: &[Column]) -> Result<Binned, UpliftError> {
    if let Some(c) = columns
        .iter()
        .find(|c| !features.iter().any(|f| f.name == c.name))
    {
        return Err(UpliftError::UnknownFeature {
            column: c.name.clone(),
            known: features.iter().map(|f| f.name.clone()).collect(),
        });
    }
    let mut binned = Binned {
        columns: Vec::with_capacity(features.len()),
        numeric: Vec::with_capacity(features.len()),
    };
    for f in features {
        let Some(c) = columns.iter().find(|c| c.name == f.name) else {
            return Err(UpliftError::MissingFeature {
                column: f.name.clone(),
            });
        };
        let bins = match &f.encoding {
            Encoding::Numeric { cuts } => c
                .values
                .iter()
                .enumerate()
                .map(|(row, v)| match v {
                    None => Ok(0),
                    Some(v) => number(v)
                        .map(|x| 1 + cuts.partition_point(|&cut| cut < x) as u8)
                        .ok_or_else(|| UpliftError::NotNumeric {
                            row,
                            column: f.name.clone(),
                            value: v.clone(),
                        }),
                })
                .collect::<Result<Vec<u8>, _>>()?,
            Encoding::Categorical { categories } => {
                let index: HashMap<&str, u8> = categories
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.as_str(), i as u8 + 1))
                    .collect();
                c.values
                    .iter()
                    .map(|v| match v {
                        None => 0,
                        Some(v) => index.get(v.as_str()).copied().unwrap_or(OTHER as u8),
                    })
                    .collect()
            }
        };
        binned.columns.push(bins);
        binned
            .numeric
            .push(matches!(f.encoding, Encoding::Numeric { .. }));
    }
    Ok(binned)
}
