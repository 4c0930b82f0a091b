//! The report's errors.

use shared::ports::{MailError, StoreError};

/// What can stop a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("drawing the {chart} chart failed: {reason}")]
    Chart { chart: &'static str, reason: String },
    #[error("reading the counters failed: {0}")]
    Store(#[from] StoreError),
    #[error("building the report email failed: {0}")]
    Mime(String),
    #[error("sending the report email failed: {0}")]
    Mail(#[from] MailError),
    #[error(
        "the scheduled event has no readable `time` ({0}); send an EventBridge Scheduler event"
    )]
    Input(String),
}
