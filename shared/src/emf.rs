//! CloudWatch Embedded Metric Format: one JSON line per record on stdout, which Lambda ships to
//! CloudWatch Logs and CloudWatch turns into metrics. Hand-written: the format is a small JSON
//! object, and a recorder crate would add a global registry the simulator does not want.

use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::domain::sequence::{cohort_campaign, Flow};

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

/// One EMF record: a dimension set and its metrics, and with [`Record::for_flow`] the same
/// metrics once more by `Campaign` and `Flow`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub dimensions: Vec<(String, String)>,
    pub metrics: Vec<(String, f64, Unit)>,
    /// The flow (`win-back`, `at-risk`, `re-engagement`, `celebration`) these metrics are about:
    /// a `Flow` field and a second dimension set `[Campaign, Flow]`, so the dashboard has a row
    /// per flow while the first dimension set stays as it was.
    pub flow: Option<String>,
}

impl Record {
    pub fn new(dimensions: &[(&str, &str)]) -> Record {
        Record {
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metrics: Vec::new(),
            flow: None,
        }
    }

    /// A record about a flow of campaign `campaign`: `Campaign` is the name the flow's counters
    /// are kept under (the campaign's own for the win-back flow, `<campaign>-at-risk`, ...; see
    /// [`cohort_campaign`]), then `extra`, and the metrics once more by `Campaign` and `Flow`.
    pub fn of_flow(campaign: &str, flow: Flow, extra: &[(&str, &str)]) -> Record {
        let counters = cohort_campaign(campaign, flow);
        let mut dims = vec![("Campaign", counters.as_str())];
        dims.extend_from_slice(extra);
        Record::new(&dims).for_flow(flow.as_str())
    }

    /// The same metrics also by `Campaign` and `Flow` (see [`Record::flow`]).
    pub fn for_flow(mut self, flow: &str) -> Record {
        self.flow = Some(flow.to_string());
        self
    }

    /// Whether the record has dimension `key` with `value` (the flow counts as `Flow`).
    pub fn has(&self, key: &str, value: &str) -> bool {
        self.dimensions.iter().any(|(k, v)| k == key && v == value)
            || (key == "Flow" && self.flow.as_deref() == Some(value))
    }

    pub fn metric(mut self, name: &str, value: f64, unit: Unit) -> Record {
        self.metrics.push((name.to_string(), value, unit));
        self
    }

    /// A count: `metric(name, n, Unit::Count)`.
    pub fn count(self, name: &str, n: u64) -> Record {
        self.metric(name, n as f64, Unit::Count)
    }

    /// The EMF JSON for `timestamp_ms`.
    pub fn to_json(&self, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        for (k, v) in &self.dimensions {
            root.insert(k.clone(), Value::String(v.clone()));
        }
        let mut sets = vec![self
            .dimensions
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()];
        if let Some(flow) = &self.flow {
            root.insert("Flow".into(), Value::String(flow.clone()));
            sets.push(vec!["Campaign".into(), "Flow".into()]);
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
                    "Dimensions": sets,
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
            .filter(|r| dims.iter().all(|(k, v)| r.has(k, v)))
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
        assert_eq!(cw["Dimensions"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_flow_adds_a_campaign_and_flow_dimension_set_and_keeps_the_first() {
        let r = Record::new(&[("Campaign", "example-at-risk"), ("Step", "2")])
            .metric("EmailsSent", 1.0, Unit::Count)
            .for_flow("at-risk");
        let v = r.to_json(1_700_000_000_000);
        assert_eq!(v["Flow"], "at-risk");
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            cw["Dimensions"],
            json!([["Campaign", "Step"], ["Campaign", "Flow"]])
        );
        let m = MemoryMetrics::default();
        m.record(r, 0);
        assert_eq!(m.sum("EmailsSent", &[("Flow", "at-risk")]), 1.0);
        assert_eq!(m.sum("EmailsSent", &[("Flow", "win-back")]), 0.0);
    }
}
