//! CloudWatch Embedded Metric Format: one JSON line per record on stdout, which Lambda ships to
//! CloudWatch Logs and CloudWatch turns into metrics. Hand-written: the format is a small JSON
//! object, and a recorder crate would add a global registry the simulator does not want.

use std::sync::Mutex;

use serde_json::{json, Map, Value};

/// The metrics namespace.
pub const NAMESPACE: &str = "Winback";

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Percent,
    None,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Percent => "Percent",
            Unit::None => "None",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF record: a dimension set and its metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub dimensions: Vec<(String, String)>,
    pub metrics: Vec<(String, f64, Unit)>,
}

impl Record {
    pub fn new(dimensions: &[(&str, &str)]) -> Record {
        Record {
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metrics: Vec::new(),
        }
    }

    pub fn metric(mut self, name: &str, value: f64, unit: Unit) -> Record {
        self.metrics.push((name.to_string(), value, unit));
        self
    }

    /// The EMF JSON for `timestamp_ms`.
    pub fn to_json(&self, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        for (k, v) in &self.dimensions {
            root.insert(k.clone(), Value::String(v.clone()));
        }
        for (name, value, _) in &self.metrics {
            root.insert(name.clone(), json!(value));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [self.dimensions.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()],
                    "Metrics": self.metrics.iter().map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()})).collect::<Vec<_>>(),
                }]
            }),
        );
        Value::Object(root)
    }
}

/// Where metric records go.
pub trait MetricSink: Send + Sync {
    fn record(&self, record: Record, timestamp_ms: i64);
}

/// Prints EMF lines to stdout (on Lambda).
pub struct StdoutEmf;

impl MetricSink for StdoutEmf {
    fn record(&self, record: Record, timestamp_ms: i64) {
        println!("{}", record.to_json(timestamp_ms));
    }
}

/// Keeps nothing: for tools that report their own figures (the CLI's import and simulate).
pub struct NullMetrics;

impl MetricSink for NullMetrics {
    fn record(&self, _record: Record, _timestamp_ms: i64) {}
}

/// Keeps records in memory (simulation and tests).
#[derive(Default)]
pub struct MemoryMetrics {
    records: Mutex<Vec<Record>>,
}

impl MemoryMetrics {
    /// Sum of a metric over all records whose dimensions include `dims`.
    pub fn sum(&self, name: &str, dims: &[(&str, &str)]) -> f64 {
        self.records
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| {
                dims.iter()
                    .all(|(k, v)| r.dimensions.iter().any(|(a, b)| a == k && b == v))
            })
            .flat_map(|r| r.metrics.iter())
            .filter(|(n, _, _)| n == name)
            .map(|(_, v, _)| v)
            .sum()
    }

    pub fn records(&self) -> Vec<Record> {
        self.records.lock().expect("lock").clone()
    }
}

impl MetricSink for MemoryMetrics {
    fn record(&self, record: Record, _timestamp_ms: i64) {
        self.records.lock().expect("lock").push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_emf_shape() {
        let r = Record::new(&[("Campaign", "example"), ("Step", "1")]).metric(
            "EmailsSent",
            1.0,
            Unit::Count,
        );
        let v = r.to_json(1_700_000_000_000);
        assert_eq!(v["Campaign"], "example");
        assert_eq!(v["EmailsSent"], 1.0);
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Winback");
        assert_eq!(cw["Dimensions"][0], json!(["Campaign", "Step"]));
        assert_eq!(cw["Metrics"][0]["Unit"], "Count");
    }
}
