//! What the sender counts: one type per event, whose [`Telemetry::emit`] writes its log line and
//! its metric (named in [`metric::sender`]) together.

use chrono::{DateTime, Utc};
use shared::domain::metrics::CohortKey;
use shared::domain::sequence::Flow;
use shared::emf::Record;
use shared::ports::{CheckoutError, MailError, StoreError};
use shared::telemetry::{metric::sender as metric, Telemetry};

/// The dimensions of the sender's own health metrics.
const SERVICE: &[(&str, &str)] = &[("Service", "sender")];

fn service(name: &str) -> Record {
    Record::new(SERVICE).count(name, 1)
}

/// SES accepted step `step` of a `flow` enrollment in `campaign`.
pub(crate) struct EmailSent<'a> {
    pub campaign: &'a str,
    pub flow: Flow,
    pub step: u8,
}

impl Telemetry for EmailSent<'_> {
    fn log(&self) {
        tracing::debug!(
            event = "email_sent",
            flow = self.flow.as_str(),
            step = self.step
        );
    }
    fn record(&self) -> Option<Record> {
        let step = self.step.to_string();
        Some(
            Record::of_flow(self.campaign, self.flow, &[("Step", &step)])
                .count(metric::EMAILS_SENT, 1),
        )
    }
}

/// A step was put off to `until` (quiet hours, the frequency cap, an open follow-up).
pub(crate) struct EmailDeferred<'a> {
    pub campaign: &'a str,
    pub flow: Flow,
    pub until: DateTime<Utc>,
}

impl Telemetry for EmailDeferred<'_> {
    fn log(&self) {
        tracing::debug!(event = "email_deferred", flow = self.flow.as_str(), until = %self.until);
    }
    fn record(&self) -> Option<Record> {
        Some(Record::of_flow(self.campaign, self.flow, &[]).count(metric::EMAILS_DEFERRED, 1))
    }
}

/// An enrollment ended without its email (not mailable, suppressed, rejected by SES).
pub(crate) struct EmailSkipped<'a> {
    pub campaign: &'a str,
    pub flow: Flow,
}

impl Telemetry for EmailSkipped<'_> {
    fn log(&self) {
        tracing::debug!(event = "email_skipped", flow = self.flow.as_str());
    }
    fn record(&self) -> Option<Record> {
        Some(Record::of_flow(self.campaign, self.flow, &[]).count(metric::EMAILS_SKIPPED, 1))
    }
}

/// SES throttled a send: the step is released for a retry.
pub(crate) struct SendThrottled;

impl Telemetry for SendThrottled {
    fn log(&self) {
        tracing::debug!(event = "send_throttled");
    }
    fn record(&self) -> Option<Record> {
        Some(service(metric::SEND_THROTTLED))
    }
}

/// SES paused sending for the account (alarmed).
pub(crate) struct SendingPaused<'a>(pub &'a MailError);

impl Telemetry for SendingPaused<'_> {
    fn log(&self) {
        tracing::error!(event = "sending_paused", error = %self.0);
    }
    fn record(&self) -> Option<Record> {
        Some(service(metric::SENDING_PAUSED))
    }
}

/// The shop's checkout did not create a reward code; the step is handed back until `until`
/// (alarmed when it lasts).
pub(crate) struct CheckoutFailed<'a> {
    pub error: &'a CheckoutError,
    pub until: DateTime<Utc>,
}

impl Telemetry for CheckoutFailed<'_> {
    fn log(&self) {
        tracing::warn!(event = "checkout_failed", until = %self.until, error = %self.error);
    }
    fn record(&self) -> Option<Record> {
        Some(service(metric::CHECKOUT_FAILED))
    }
}

/// A send failed for any other reason; one SES refused for its content (not the address: every
/// recipient meets it) also counts as `SendRejected` (alarmed).
pub(crate) struct SendFailed<'a>(pub &'a MailError);

impl Telemetry for SendFailed<'_> {
    fn log(&self) {
        if let MailError::Refused(_) = self.0 {
            tracing::error!(event = "message_refused", error = %self.0);
        } else {
            tracing::debug!(event = "send_failed", error = %self.0);
        }
    }
    fn record(&self) -> Option<Record> {
        let record = service(metric::SEND_FAILURES);
        Some(match self.0 {
            MailError::Refused(_) => record.count(metric::SEND_REJECTED, 1),
            _ => record,
        })
    }
}

/// A batch's counts for one cohort and day could not be written (the emails went out all the
/// same).
pub(crate) struct CountFailed<'a> {
    pub cohort: &'a CohortKey,
    pub error: &'a StoreError,
}

impl Telemetry for CountFailed<'_> {
    fn log(&self) {
        tracing::error!(event = "count_failed", campaign = %self.cohort.campaign, variant = %self.cohort.variant, error = %self.error);
    }
    fn record(&self) -> Option<Record> {
        Some(service(metric::COUNT_FAILURES))
    }
}
