//! The sender: one SES email per due step, exactly once.
//!
//! For each `WinbackStepDue` it re-checks the customer, defers for quiet hours and the frequency
//! cap, **claims** the step with a versioned write (a lease), issues or reuses the reward code,
//! renders the step for the customer's locale, sends, and **marks** the step sent, which schedules
//! the next step or the sunset. A message delivered twice finds the step sent or claimed; a
//! crashed claim is taken over once its lease has expired.
//!
//! DynamoDB writes per email: the claim and the mark (the enrollment item only: neither moves the
//! due time the scheduler set when it published the step, so the due index is not written), the
//! reward when a new code is issued, and a share of one counter write per cohort and day per
//! batch (counts are gathered in a [`Tally`] and written when the batch is done).
//!
//! The one window that can still duplicate: SES accepted the email and the process died before
//! the mark was written. Its bound is one extra email per crash in that window, only after the
//! lease expires; SES's own message id is recorded on mark so operators can reconcile.

mod batch;
mod code;
mod compose;
pub mod lambda;
mod rate;
mod step;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use shared::campaign::Campaign;
use shared::domain::metrics::{CohortKey, Counts};
use shared::emf::{MetricSink, Record, Unit};
use shared::ports::{MailError, Mailer, Store, StoreError};
use shared::signing::LinkKeys;

pub use batch::{handle_batch, parse_body, HAND_BACK_FROM_RECEIVE, PAUSED_RETRY, THROTTLED_RETRY};
pub use compose::compose;
pub use rate::RateLimiter;
pub use step::{process_step, send_step};

/// What the sender needs, built once at cold start.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub campaign: Arc<Campaign>,
    pub metrics: Arc<dyn MetricSink>,
    /// The link-token keys, newest first (the newest signs).
    pub link_keys: LinkKeys,
    /// The webhook's public URL, without a trailing slash.
    pub public_base_url: String,
    pub sender_address: String,
    pub limiter: Arc<RateLimiter>,
    /// How long a claim keeps other senders off a step.
    pub lease: Duration,
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Sent {
        message_id: String,
    },
    /// Already sent by an earlier delivery of the same message.
    AlreadySent,
    /// Nothing to send any more (unsubscribed, suppressed, won back, sunset, stale).
    Skipped {
        why: &'static str,
    },
    /// Not now: quiet hours or the frequency cap. The scheduler publishes it again then.
    Deferred {
        until: DateTime<Utc>,
    },
}

/// Failures that leave the message for a retry (reported as a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("message body is not a WinbackStepDue envelope: {0}")]
    BadMessage(String),
    #[error(
        "step {step} of enrollment {enrollment} is being sent by another sender until {until}"
    )]
    Busy {
        enrollment: String,
        step: u8,
        until: DateTime<Utc>,
    },
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("SES throttled the send; it will be retried")]
    Throttled(#[source] MailError),
    #[error("SES sending is paused for the account; fix the account before emails can go out")]
    Paused(#[source] MailError),
    #[error("SES failed: {0}")]
    Mail(#[source] MailError),
    #[error("could not render step {step}: {source}")]
    Render {
        step: u8,
        #[source]
        source: shared::campaign::RenderError,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    /// Not tried: SES paused sending earlier in the batch.
    #[error("not sent: SES sending is paused; the step is handed back to the scheduler")]
    Held,
}

/// Counts gathered while processing, written once per cohort and day.
#[derive(Debug, Default)]
pub struct Tally(BTreeMap<(CohortKey, NaiveDate), Counts>);

impl Tally {
    fn add(&mut self, cohort: CohortKey, day: NaiveDate, counts: &[(&str, i64)]) {
        let row = self.0.entry((cohort, day)).or_default();
        for (name, n) in counts {
            row.add(name, *n);
        }
    }

    /// Writes the counts: one counter write per cohort and day. A failed write is logged and
    /// reported as `CountFailures`; the emails it counted went out and are marked all the same,
    /// so it is not a reason to redeliver them.
    pub async fn flush(self, deps: &Deps, now: DateTime<Utc>) {
        for ((cohort, day), counts) in self.0 {
            let deltas: Vec<(&str, i64)> = counts.0.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            if let Err(err) = deps.store.add_counts(&cohort, Some(day), &deltas).await {
                tracing::error!(event = "count_failed", campaign = %cohort.campaign, variant = %cohort.variant, error = %err);
                deps.metrics.record(
                    Record::new(&[("Service", "sender")]).metric("CountFailures", 1.0, Unit::Count),
                    now.timestamp_millis(),
                );
            }
        }
    }
}
