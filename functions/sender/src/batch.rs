//! One SQS batch: each message's step processed in turn, throttled or paused steps handed back
//! to the scheduler instead of failed, the batch's counts written at the end.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, Utc};
use shared::events::{Envelope, StepDue};
use shared::ports::{CheckoutError, EnrollmentStore};
use shared::telemetry::Telemetry;
use tracing::Instrument;

use crate::deps::Deps;
use crate::error::SendError;
use crate::step::send_step;
use crate::tally::Tally;
use crate::telemetry::CheckoutFailed;

/// How long the steps of a batch wait after SES paused sending: they are handed back to the
/// scheduler (due again then) rather than failed, so a pause spends none of the step queue's
/// receives and sends nothing to its dead-letter queue.
pub const PAUSED_RETRY: Duration = Duration::hours(1);

/// From this receive of a message on (the step queue dead-letters at its 5th), a throttled step
/// is handed back to the scheduler, due again after [`THROTTLED_RETRY`], instead of failed for
/// another receive: long throttling delays emails, it never dead-letters them.
pub const HAND_BACK_FROM_RECEIVE: u32 = 3;

/// How long a throttled step handed back to the scheduler waits.
pub const THROTTLED_RETRY: Duration = Duration::minutes(15);

/// How long a step waits whose reward code the shop's checkout did not create (an outage, a
/// refusal): the email never goes out with a code the checkout does not know.
pub const CHECKOUT_RETRY: Duration = Duration::minutes(15);

/// How many times SQS has delivered `record` (1 the first time; 1 when SQS does not say).
fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Processes an SQS batch; failed items are returned for redelivery. The batch's counts are
/// written together at the end. A pause stops the batch: this step and every later one are
/// handed back to the scheduler ([`PAUSED_RETRY`]) without calling SES again.
pub async fn handle_batch(deps: &Deps, event: SqsEvent, now: DateTime<Utc>) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    let mut paused = false;
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let due = match parse_body(record.body.as_deref().unwrap_or_default()) {
            Ok(due) => due,
            Err(e) => {
                // A malformed message can never succeed: report it and let the DLQ keep it.
                tracing::error!(event = "bad_message", message_id = %id, error = %e);
                failures.push(failure(id));
                continue;
            }
        };
        // Every line logged for this message carries the customer and step from its span.
        let span = tracing::info_span!("step", customer_id = %due.customer_id, step = due.step);
        let failed = process_record(deps, &record, &due, now, &mut tally, &mut paused)
            .instrument(span)
            .await;
        if let Err(e) = failed {
            // Either way the message is failed: a retryable error for redelivery, any other for
            // the dead-letter queue, where it waits for the fix and a redrive (SQS moves it
            // there only at its last receive, so the receives in between fail the same way).
            if e.retryable() {
                tracing::warn!(event = "send_failed", message_id = %id, error = %e);
            } else {
                tracing::error!(event = "send_failed", message_id = %id, retryable = false, error = %e);
            }
            failures.push(failure(id));
        }
    }
    tally
        .flush(deps.store.as_ref(), deps.metrics.as_ref(), now)
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Sends one message's step, or hands it back to the scheduler (a pause, long throttling); an
/// error leaves the message for redelivery.
async fn process_record(
    deps: &Deps,
    record: &SqsMessage,
    due: &StepDue,
    now: DateTime<Utc>,
    tally: &mut Tally,
    paused: &mut bool,
) -> Result<(), SendError> {
    let result = if *paused {
        Err(SendError::Held)
    } else {
        send_step(deps, due, now, tally).await
    };
    let until = match &result {
        Ok(outcome) => {
            tracing::info!(event = "step_processed", outcome = ?outcome);
            return Ok(());
        }
        Err(SendError::Paused(_) | SendError::Held) => {
            *paused = true;
            now + PAUSED_RETRY
        }
        Err(SendError::Throttled(_)) if receive_count(record) >= HAND_BACK_FROM_RECEIVE => {
            now + THROTTLED_RETRY
        }
        Err(SendError::Checkout(error)) => {
            let until = match error {
                CheckoutError::RateLimited {
                    retry_after_seconds,
                } => now + Duration::seconds(i64::try_from(*retry_after_seconds).unwrap_or(60)),
                _ => now + CHECKOUT_RETRY,
            };
            CheckoutFailed { error, until }.emit(deps.metrics.as_ref(), now);
            until
        }
        Err(_) => return result.map(|_| ()),
    };
    hand_back(deps.store.as_ref(), due, now, until).await?;
    tracing::warn!(event = "step_handed_back", until = %until, error = %result.err().map(|e| e.to_string()).unwrap_or_default());
    Ok(())
}

/// Makes the step of `due` due again at `until`, for the scheduler to publish then, keeping the
/// claim's reward code for that send. A step that is no longer waiting (sent, ended, stale)
/// needs nothing; one another sender holds is reported busy, for redelivery.
async fn hand_back(
    enrollments: &dyn EnrollmentStore,
    due: &StepDue,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), SendError> {
    let Some(mut e) = enrollments
        .get_enrollment(&due.customer_id, &due.campaign)
        .await?
    else {
        return Ok(());
    };
    if e.id != due.enrollment_id || e.due_step() != Some(due.step) {
        return Ok(());
    }
    if let Some(c) = e.claim.as_mut() {
        if c.step == due.step && c.lease_until > now {
            return Err(SendError::Busy {
                enrollment: e.id.clone(),
                step: due.step,
                until: c.lease_until,
            });
        }
    }
    let Ok(deferred) = e.defer(until) else {
        return Ok(());
    };
    enrollments.save_enrollment(&deferred).await?;
    Ok(())
}

/// Every message of `event` handed back to the queue, untouched: the link keys are too old to
/// sign with (no read of the secret has succeeded for `age`; see [`shared::refresh`]). The
/// queue delivers them again after its visibility timeout; the `SecretRefreshFailures` alarm
/// says why.
pub fn hand_back_all(event: &SqsEvent, age: chrono::Duration) -> SqsBatchResponse {
    tracing::error!(
        event = "keys_too_old",
        minutes = age.num_minutes(),
        messages = event.records.len(),
        "the link keys could not be read again: the batch is handed back"
    );
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = event
        .records
        .iter()
        .filter_map(|m| m.message_id.clone())
        .map(failure)
        .collect();
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id;
    f
}

/// Reads a `WinbackStepDue` from an EventBridge envelope (the SQS body).
pub fn parse_body(body: &str) -> Result<StepDue, SendError> {
    let env: Envelope = serde_json::from_str(body).map_err(SendError::BadMessage)?;
    if env.detail_type != "WinbackStepDue" {
        return Err(SendError::NotStepDue(env.detail_type));
    }
    serde_json::from_value(env.detail).map_err(SendError::BadMessage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_with_keys_too_old_to_sign_with_is_handed_back_whole() {
        let mut event = SqsEvent::default();
        event.records = ["m-1", "m-2"]
            .iter()
            .map(|id| {
                let mut m = SqsMessage::default();
                m.message_id = Some((*id).to_string());
                m
            })
            .collect();
        let back = hand_back_all(&event, chrono::Duration::minutes(31));
        let ids: Vec<&str> = back
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["m-1", "m-2"]);
    }
}
