//! Events the product publishes on the bus (source `winback`), and reliable publishing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::survey::{FollowUp, Reason};
use crate::ports::{BusError, EventBus};

/// The `source` of every event.
pub const SOURCE: &str = "winback";

/// A sequence step is due: the sender's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDue {
    pub campaign: String,
    pub customer_id: String,
    pub enrollment_id: String,
    pub step: u8,
    pub due_at: DateTime<Utc>,
}

/// Everything published on the bus. Serialized as `{"detail-type": ..., "detail": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detail-type", content = "detail")]
pub enum BusEvent {
    CustomerEnrolled {
        campaign: String,
        customer_id: String,
        enrollment_id: String,
        variant: String,
        group: String,
        at: DateTime<Utc>,
    },
    WinbackStepDue(StepDue),
    CustomerReactivated {
        campaign: String,
        customer_id: String,
        enrollment_id: String,
        variant: String,
        revenue: String,
        currency: String,
        reward_code: Option<String>,
        at: DateTime<Utc>,
    },
    SurveyAnswered {
        campaign: String,
        customer_id: String,
        reason: Option<Reason>,
        nps: Option<u8>,
        at: DateTime<Utc>,
    },
    FollowUpNeeded {
        campaign: String,
        customer_id: String,
        why: FollowUp,
        at: DateTime<Utc>,
    },
    CustomerSunset {
        campaign: String,
        customer_id: String,
        at: DateTime<Utc>,
    },
    CustomerSuppressed {
        customer_id: String,
        why: String,
        at: DateTime<Utc>,
    },
    /// The shop fixed a reason it pauses customers for (`POST /v1/resolutions/{reason}`): the
    /// scheduler marks every customer who gave it resolved (it reads every profile; the public
    /// webhook may not).
    ResolutionRequested {
        campaign: String,
        reason: Reason,
        note: String,
        at: DateTime<Utc>,
    },
}

impl BusEvent {
    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            BusEvent::CustomerEnrolled { .. } => "CustomerEnrolled",
            BusEvent::WinbackStepDue(_) => "WinbackStepDue",
            BusEvent::CustomerReactivated { .. } => "CustomerReactivated",
            BusEvent::SurveyAnswered { .. } => "SurveyAnswered",
            BusEvent::FollowUpNeeded { .. } => "FollowUpNeeded",
            BusEvent::CustomerSunset { .. } => "CustomerSunset",
            BusEvent::CustomerSuppressed { .. } => "CustomerSuppressed",
            BusEvent::ResolutionRequested { .. } => "ResolutionRequested",
        }
    }

    /// The EventBridge `detail` as JSON.
    pub fn detail_json(&self) -> String {
        let v = serde_json::to_value(self).expect("events serialize");
        v.get("detail").map(|d| d.to_string()).unwrap_or_default()
    }

    /// Rebuilds an event from `detail-type` and `detail`.
    pub fn from_parts(
        detail_type: &str,
        detail: serde_json::Value,
    ) -> Result<BusEvent, serde_json::Error> {
        serde_json::from_value(serde_json::json!({"detail-type": detail_type, "detail": detail}))
    }
}

/// An EventBridge envelope as it arrives in an SQS body.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub id: Option<String>,
    pub detail: serde_json::Value,
}

/// How hard [`publish_all`] tries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(50),
        }
    }
}

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
            let delay = policy.base_delay * 2u32.saturating_pow(attempt - 1);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
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
