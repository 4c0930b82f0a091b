//! Counts gathered while processing a batch, written once per cohort and day.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use shared::domain::metrics::{CohortKey, Counts};
use shared::emf::MetricSink;
use shared::ports::MetricsStore;
use shared::telemetry::Telemetry;

use crate::telemetry::CountFailed;

/// Counts gathered while processing, written once per cohort and day.
#[derive(Debug, Default)]
pub struct Tally(BTreeMap<(CohortKey, NaiveDate), Counts>);

impl Tally {
    pub(crate) fn add(&mut self, cohort: CohortKey, day: NaiveDate, counts: &[(&str, i64)]) {
        let row = self.0.entry((cohort, day)).or_default();
        for (name, n) in counts {
            row.add(name, *n);
        }
    }

    /// Writes the counts: one counter write per cohort and day. A failed write is logged and
    /// reported as `CountFailures`; the emails it counted went out and are marked all the same,
    /// so it is not a reason to redeliver them.
    pub async fn flush(
        self,
        counters: &dyn MetricsStore,
        metrics: &dyn MetricSink,
        now: DateTime<Utc>,
    ) {
        for ((cohort, day), counts) in self.0 {
            let deltas: Vec<(&str, i64)> = counts.0.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            if let Err(error) = counters.add_counts(&cohort, Some(day), &deltas).await {
                CountFailed {
                    cohort: &cohort,
                    error: &error,
                }
                .emit(metrics, now);
            }
        }
    }
}
