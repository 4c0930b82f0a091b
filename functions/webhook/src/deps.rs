//! What the handlers depend on ([`Deps`], built once at cold start) and what can go wrong in
//! them ([`WebhookError`]).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use shared::adapters::embedded::MemoryBus;
use shared::campaign::Campaign;
use shared::emf::MemoryMetrics;
use shared::emf::MetricSink;
use shared::events::BusEvent;
use shared::ports::{EventBus, Notifier, Store, StoreError, WebhookStore};
use shared::settings::Keys;
use shared::telemetry::Telemetry;

use crate::telemetry::{ClaimReleasedAfterPanic, PublishFailed};

/// How long a webhook event is held while it is being processed (over the function's 15 s
/// timeout): a claim whose work died (panic, timeout, a release that failed) frees itself then,
/// and the sender's retry is processed.
pub(crate) const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// How long a processed event id is remembered (replays within it are answered from the record).
pub(crate) const DEDUP: chrono::Duration = chrono::Duration::days(30);

/// Everything the handlers need, built once at cold start (or by a test or the simulator).
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn WebhookStore>,
    pub bus: Arc<dyn EventBus>,
    /// The campaign this deployment runs.
    pub campaign: Arc<Campaign>,
    /// Webhook signing keys (newest first) and the link-token key.
    pub keys: Keys,
    /// The webhook's public URL (no trailing slash needed), used in the forms of link pages;
    /// empty means relative links.
    pub public_base_url: String,
    /// Where EMF metric records go: [`shared::emf::StdoutEmf`] on Lambda.
    pub metrics: Arc<dyn MetricSink>,
    /// Tells the team about follow-ups (the SNS topic of `FOLLOW_UP_TOPIC_ARN`); `None` keeps
    /// them (the pause, the dashboard) without telling anyone.
    pub notifier: Option<Arc<dyn Notifier>>,
}

impl Deps {
    /// Everything in one process: an in-memory bus and metrics, no notifier (the simulator,
    /// tests and fuzzing); links point at `public_base_url`.
    pub fn in_process(
        store: Arc<dyn Store>,
        campaign: Arc<Campaign>,
        keys: Keys,
        public_base_url: &str,
    ) -> Deps {
        Deps {
            store,
            bus: Arc::new(MemoryBus::new()),
            campaign,
            keys,
            public_base_url: public_base_url.to_string(),
            metrics: Arc::new(MemoryMetrics::default()),
            notifier: None,
        }
    }

    /// Publishes `events` for `customer_id`; what the bus still refuses after retries is logged
    /// and counted (`PublishFailures`, Service=webhook), which an alarm watches.
    pub(crate) async fn publish(
        &self,
        events: Vec<BusEvent>,
        customer_id: &str,
        now: DateTime<Utc>,
    ) {
        if events.is_empty() {
            return;
        }
        let report = shared::publish::publish_all(
            self.bus.as_ref(),
            events,
            shared::retry::RetryPolicy::DEFAULT,
        )
        .await;
        if !report.failed.is_empty() {
            PublishFailed {
                failed: &report.failed,
                customer_id,
            }
            .emit(self.metrics.as_ref(), now);
        }
    }

    /// Runs `work` under a claimed idempotency `key`: when `work` panics, the claim is given
    /// back and the panic goes on (the caller answers 503 or fails the invocation), so the retry
    /// is processed at once instead of after the claim's lease. A release that fails is logged;
    /// the lease frees the key then.
    pub(crate) async fn releasing_on_panic<T>(
        &self,
        key: Option<&str>,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        match AssertUnwindSafe(work).catch_unwind().await {
            Ok(v) => v,
            Err(panic) => {
                if let Some(key) = key {
                    let released = self.store.release_key(key).await;
                    ClaimReleasedAfterPanic {
                        key,
                        failed: released.err().as_ref(),
                    }
                    .log();
                }
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// What went wrong handling an event (bad HTTP input never becomes one: it gets a 4xx).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the store failed: {0}")]
    StoreFailed(#[from] StoreError),
    #[error("the event is neither a Function URL / HTTP API v2 request nor an SES event from EventBridge ({0}): point only those at this function")]
    UnrecognisedEvent(String),
    #[error(
        "the SES event has no {0}: deliver SES configuration-set events from EventBridge unchanged"
    )]
    SesEventIncomplete(&'static str),
    #[error("SES event {0} is being processed by another invocation (its claim holds for at most a minute): retry it later")]
    SesEventInProgress(String),
    #[error(
        "the {what} of email {message_id} is being counted by another invocation: retry later"
    )]
    CountInProgress {
        what: &'static str,
        message_id: String,
    },
    #[error("the handler panicked")]
    HandlerPanicked,
    #[error("the signing keys could not be read again for {minutes} minutes (Secrets Manager): they are not used past 30 minutes; retry later")]
    KeysTooOld { minutes: i64 },
}

impl WebhookError {
    /// Whether retrying the same event may succeed: the store or a concurrent invocation may be
    /// done by then; an event of the wrong shape never will.
    pub fn retryable(&self) -> bool {
        match self {
            WebhookError::StoreFailed(_)
            | WebhookError::SesEventInProgress(_)
            | WebhookError::CountInProgress { .. }
            | WebhookError::HandlerPanicked
            | WebhookError::KeysTooOld { .. } => true,
            WebhookError::UnrecognisedEvent(_) | WebhookError::SesEventIncomplete(_) => false,
        }
    }

    /// The variant's name, for the Lambda error type.
    fn name(&self) -> &'static str {
        match self {
            WebhookError::StoreFailed(_) => "StoreFailed",
            WebhookError::UnrecognisedEvent(_) => "UnrecognisedEvent",
            WebhookError::SesEventIncomplete(_) => "SesEventIncomplete",
            WebhookError::SesEventInProgress(_) => "SesEventInProgress",
            WebhookError::CountInProgress { .. } => "CountInProgress",
            WebhookError::HandlerPanicked => "HandlerPanicked",
            WebhookError::KeysTooOld { .. } => "KeysTooOld",
        }
    }
}

impl From<WebhookError> for lambda_runtime::Diagnostic {
    fn from(e: WebhookError) -> Self {
        let retry = if e.retryable() {
            "Retryable"
        } else {
            "NotRetryable"
        };
        lambda_runtime::Diagnostic {
            error_type: format!("{retry}.{}", e.name()),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_error_type_says_whether_to_retry_and_what_happened() {
        let busy = lambda_runtime::Diagnostic::from(WebhookError::SesEventInProgress("e-1".into()));
        assert_eq!(busy.error_type, "Retryable.SesEventInProgress");
        assert!(busy.error_message.contains("e-1"));
        let stranger = lambda_runtime::Diagnostic::from(WebhookError::UnrecognisedEvent(
            "source aws.s3".into(),
        ));
        assert_eq!(stranger.error_type, "NotRetryable.UnrecognisedEvent");
        let store = WebhookError::from(StoreError::Transient("throttled".into()));
        assert!(store.retryable());
        assert!(
            std::error::Error::source(&store).is_some(),
            "the store's error is kept as the cause"
        );
    }
}
