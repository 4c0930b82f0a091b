//! Reliable publishing on the bus: batches of at most 10, only the failed entries retried, under
//! the product's [`RetryPolicy`].

use crate::events::BusEvent;
use crate::ports::{BusError, EventBus};
use crate::retry::RetryPolicy;

/// What publishing achieved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishReport {
    pub published: usize,
    /// Entries retried (each retry counted once).
    pub retried: usize,
    /// Events that still failed after every attempt, with the last reason.
    pub failed: Vec<(BusEvent, String)>,
}

/// Publishes in batches of at most 10, retrying only the entries that failed, with exponential
/// backoff. Nothing is dropped silently: what still fails is returned in `failed`.
pub async fn publish_all(
    bus: &dyn EventBus,
    events: Vec<BusEvent>,
    policy: RetryPolicy,
) -> PublishReport {
    let mut report = PublishReport::default();
    for chunk in events.chunks(10) {
        let mut pending: Vec<BusEvent> = chunk.to_vec();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = bus.put_batch(&pending).await;
            let failed: Vec<(usize, String)> = match outcome {
                Ok(r) => r.failed,
                Err(e) => (0..pending.len()).map(|i| (i, e.to_string())).collect(),
            };
            report.published += pending.len() - failed.len();
            if failed.is_empty() {
                break;
            }
            let next: Vec<(BusEvent, String)> = failed
                .into_iter()
                .filter_map(|(i, why)| pending.get(i).cloned().map(|e| (e, why)))
                .collect();
            if attempt >= policy.attempts {
                report.failed.extend(next);
                break;
            }
            report.retried += next.len();
            pending = next.into_iter().map(|(e, _)| e).collect();
            policy.pause_after(attempt).await;
        }
    }
    report
}

impl From<&PublishReport> for Result<(), BusError> {
    fn from(r: &PublishReport) -> Self {
        if r.failed.is_empty() {
            Ok(())
        } else {
            Err(BusError::Partial {
                failed: r.failed.len(),
                total: r.published + r.failed.len(),
                reason: r.failed[0].1.clone(),
            })
        }
    }
}
