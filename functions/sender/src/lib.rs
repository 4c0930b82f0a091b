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
mod claim;
mod code;
mod compose;
mod deps;
mod error;
pub mod lambda;
mod rate;
mod step;
mod tally;
mod telemetry;

pub use batch::{
    handle_batch, parse_body, CHECKOUT_RETRY, HAND_BACK_FROM_RECEIVE, PAUSED_RETRY, THROTTLED_RETRY,
};
pub use compose::compose;
pub use deps::Deps;
pub use error::SendError;
pub use rate::RateLimiter;
pub use step::{process_step, send_step, Outcome};
pub use tally::Tally;
