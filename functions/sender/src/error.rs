//! What can go wrong with a step, and whether a redelivery of its message can do better.

use chrono::{DateTime, Utc};
use shared::campaign::RenderError;
use shared::domain::sequence::TransitionError;
use shared::ports::{CheckoutError, MailError, StoreError};

/// Failures that leave the message for a retry (reported as a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("message body is not an EventBridge envelope of a WinbackStepDue: {0}")]
    BadMessage(#[source] serde_json::Error),
    #[error("message is a {0}, not a WinbackStepDue")]
    NotStepDue(String),
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
        source: RenderError,
    },
    /// The decision asked for a change the enrollment's state machine refuses: the two disagree.
    #[error("step {step} cannot be {action}: {source}")]
    StepRefused {
        step: u8,
        action: &'static str,
        #[source]
        source: TransitionError,
    },
    /// The decision asked to act on an enrollment or a profile that was not read.
    #[error("the decision for step {step} acts on an enrollment or a profile that is not there")]
    NothingToActOn { step: u8 },
    /// The newly drawn reward code is already another enrollment's; a retry draws another.
    #[error("the new reward code is already another enrollment's; a retry draws another")]
    RewardCodeTaken,
    #[error("the operating system's random source failed: {0}")]
    Entropy(#[source] getrandom::Error),
    /// The shop's checkout did not create the reward's code: the email waits for it.
    #[error("the shop's checkout did not create the reward code: {0}")]
    Checkout(#[source] CheckoutError),
    /// The reward cannot be a code in the campaign's checkout platform.
    #[error("{0}")]
    CheckoutUnsupported(#[source] shared::domain::checkout::Unsupported),
    /// Not tried: SES paused sending earlier in the batch.
    #[error("not sent: SES sending is paused; the step is handed back to the scheduler")]
    Held,
}

impl SendError {
    /// Whether a later delivery of the same message may succeed without anyone changing anything.
    /// The rest wait for a fix (a message, a template, the campaign, the code) and then a redrive
    /// of the step dead-letter queue.
    pub fn retryable(&self) -> bool {
        match self {
            SendError::BadMessage(_)
            | SendError::NotStepDue(_)
            | SendError::Render { .. }
            | SendError::StepRefused { .. }
            | SendError::NothingToActOn { .. }
            | SendError::CheckoutUnsupported(_)
            | SendError::Mail(MailError::Refused(_))
            | SendError::Store(StoreError::Corrupt { .. }) => false,
            SendError::Busy { .. }
            | SendError::Store(_)
            | SendError::Throttled(_)
            | SendError::Paused(_)
            | SendError::Mail(_)
            | SendError::RewardCodeTaken
            | SendError::Entropy(_)
            | SendError::Checkout(_)
            | SendError::Held => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_redelivery_can_fix_retryable() {
        let refused = SendError::Mail(MailError::Refused("virus".into()));
        assert!(!refused.retryable());
        assert!(SendError::Mail(MailError::Other("timeout".into())).retryable());
        let not_json = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!SendError::BadMessage(not_json).retryable());
        assert!(!SendError::NotStepDue("CustomerEnrolled".into()).retryable());
        let corrupt = StoreError::Corrupt {
            id: "c1".into(),
            reason: "no body".into(),
        };
        assert!(!SendError::Store(corrupt).retryable());
        let lost = StoreError::Conflict {
            entity: "enrollment",
            id: "c1".into(),
            expected: 1,
        };
        assert!(SendError::Store(lost).retryable());
        assert!(SendError::RewardCodeTaken.retryable());
        assert!(SendError::Throttled(MailError::Throttled("slow".into())).retryable());
    }
}
