//! The claim on a step: taken with a versioned write before the email goes out, released on
//! every failure before SES has the email ([`while_claimed`]), and turned into the record of the
//! email once SES accepted it ([`mark_sent`]).

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use shared::campaign::CampaignConfig;
use shared::domain::reward::RewardCode;
use shared::domain::sequence::{Claim, Enrollment, SentStep};
use shared::ports::{EnrollmentStore, StoreError};
use shared::retry::RetryPolicy;

use crate::code::hex_token;
use crate::error::SendError;

/// Claims `step` of `enrollment` for this sender until the lease ends, naming the reward code
/// the email will carry. `None`: the enrollment ended since it was read (nothing to send); a
/// claim lost to another writer that did not end it is [`SendError::Busy`] (try again later).
pub(crate) async fn claim(
    enrollments: &dyn EnrollmentStore,
    lease: Duration,
    enrollment: &Enrollment,
    step: u8,
    reward_code: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<Enrollment>, SendError> {
    let mut claimed = enrollment.clone();
    claimed.claim = Some(Claim {
        step,
        token: hex_token()?,
        lease_until: now + lease,
        reward_code,
    });
    match enrollments.save_enrollment(&claimed).await {
        Ok(version) => {
            claimed.version = version;
            Ok(Some(claimed))
        }
        Err(StoreError::Conflict { .. }) => {
            // Someone wrote the enrollment since it was read: ended (nothing to send), or
            // another delivery or an open or answer (try again later).
            let fresh = enrollments
                .get_enrollment(&enrollment.customer_id, &enrollment.campaign)
                .await?;
            if fresh.is_none_or(|f| f.id != enrollment.id || f.status.is_final()) {
                tracing::info!(event = "ended_before_send", step);
                return Ok(None);
            }
            Err(SendError::Busy {
                enrollment: enrollment.id.clone(),
                step,
                until: now + lease,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs `body` (the future of the work) under the claim `claimed`: whatever error it returns, the claim is released
/// ([`release`]) before the error is passed on, so a retry may claim the step at once. `body` is
/// everything up to SES accepting the email; once it has, the lease is what keeps a redelivery
/// from sending the email again, so the mark that follows is not run under this guard.
pub(crate) async fn while_claimed<T>(
    enrollments: &dyn EnrollmentStore,
    claimed: &Enrollment,
    now: DateTime<Utc>,
    body: impl Future<Output = Result<T, SendError>>,
) -> Result<T, SendError> {
    let result = body.await;
    if result.is_err() {
        release(enrollments, claimed, now).await;
    }
    result
}

/// Ends this attempt's lease so that a retry may claim the step at once. The claim itself, with
/// its reward code, stays: the retry sends the reward this attempt may already have inserted
/// instead of issuing a second one that no email would ever carry.
async fn release(enrollments: &dyn EnrollmentStore, claimed: &Enrollment, now: DateTime<Utc>) {
    let mut e = claimed.clone();
    if let Some(c) = e.claim.as_mut() {
        c.lease_until = c.lease_until.min(now);
    }
    if let Err(err) = enrollments.save_enrollment(&e).await {
        tracing::warn!(event = "release_failed", enrollment = %e.id, error = %err);
    }
}

/// Records the step sent. This write follows an email SES has accepted, so it is retried
/// harder than others: a waiting retry ([`RetryPolicy::ACKNOWLEDGED_WRITE`], not a conflict
/// loop) tries a throttled attempt again, and recognises a write that went through but whose
/// answer was lost when the stored enrollment already shows the step sent.
pub(crate) async fn mark_sent(
    enrollments: &dyn EnrollmentStore,
    config: &CampaignConfig,
    mut e: Enrollment,
    step: u8,
    message_id: &str,
    code: Option<RewardCode>,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    let mut last_error = None;
    let policy = RetryPolicy::ACKNOWLEDGED_WRITE;
    for attempt in 1..=policy.attempts {
        if attempt > 1 {
            policy.pause_after(attempt - 1).await;
        }
        let mut next = match e.record_sent(step, now, Some(message_id.to_string()), config) {
            Ok(n) => n,
            Err(_) => {
                // Won back or exited while sending: keep the record of the email, nothing else.
                let mut n = e.clone();
                if n.sent.iter().all(|s| s.step != step) {
                    n.sent.push(SentStep {
                        step,
                        at: now,
                        message_id: Some(message_id.to_string()),
                    });
                }
                n.claim = None;
                n
            }
        };
        if let Some(c) = &code {
            next.reward_code = Some(c.to_string());
        }
        match enrollments.save_enrollment(&next).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => {}
            Err(err @ StoreError::Transient(_)) => last_error = Some(err),
            Err(err) => return Err(err.into()),
        }
        // Someone else wrote, or our write went through unacknowledged: look at what is stored.
        match enrollments
            .get_enrollment(&e.customer_id, &e.campaign)
            .await
        {
            Ok(Some(fresh)) if fresh.id == e.id => {
                if fresh.sent.iter().any(|s| s.step == step) {
                    return Ok(());
                }
                e = fresh;
            }
            Ok(_) => return Ok(()),
            Err(err) => last_error = Some(err),
        }
    }
    match last_error {
        Some(err) => Err(err.into()),
        None => Err(SendError::Busy {
            enrollment: e.id.clone(),
            step,
            until: now,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use shared::adapters::embedded::MemoryStore;
    use shared::domain::experiment::Group;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    async fn claimed_step() -> (Arc<MemoryStore>, Enrollment) {
        let store = Arc::new(MemoryStore::new());
        let c = shared::campaign::testing::example_campaign();
        let mut e = Enrollment::start(
            &"c1".parse().unwrap(),
            &c,
            1,
            Group::Treated,
            "amount-10",
            now(),
        );
        e.version = store.save_enrollment(&e).await.unwrap();
        let claimed = claim(
            store.as_ref(),
            Duration::minutes(5),
            &e,
            1,
            Some("CODE".into()),
            now(),
        )
        .await
        .unwrap()
        .expect("the enrollment is active");
        (store, claimed)
    }

    async fn lease(store: &MemoryStore) -> DateTime<Utc> {
        let e = store
            .get_enrollment("c1", "example")
            .await
            .unwrap()
            .unwrap();
        e.claim.expect("the claim stays").lease_until
    }

    #[tokio::test]
    async fn any_error_under_the_claim_releases_it_and_keeps_its_reward_code() {
        let (store, claimed) = claimed_step().await;
        assert_eq!(lease(&store).await, now() + Duration::minutes(5));
        let lost = StoreError::Backend("the table is gone".into());
        let err = while_claimed(store.as_ref(), &claimed, now(), async {
            Err::<(), _>(SendError::Store(lost))
        })
        .await
        .unwrap_err();
        assert!(
            matches!(err, SendError::Store(StoreError::Backend(_))),
            "{err}"
        );
        assert_eq!(lease(&store).await, now(), "released for the retry");
        let e = store
            .get_enrollment("c1", "example")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.claim.unwrap().reward_code.as_deref(), Some("CODE"));
    }

    #[tokio::test]
    async fn a_body_that_succeeds_keeps_the_lease() {
        let (store, claimed) = claimed_step().await;
        let id = while_claimed(store.as_ref(), &claimed, now(), async { Ok("ses-1") })
            .await
            .unwrap();
        assert_eq!(id, "ses-1");
        assert_eq!(lease(&store).await, now() + Duration::minutes(5));
    }
}
