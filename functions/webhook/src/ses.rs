//! SES feedback from EventBridge: bounces and complaints suppress; deliveries, opens and clicks
//! are counted.

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::domain::edge::CustomerId;
use shared::domain::feedback::{self, Feedback, Tags};
use shared::domain::metrics::CohortKey;
use shared::domain::sequence::{Enrollment, Flow};
use shared::events::BusEvent;
use shared::ports::{
    update_enrollment, update_profile, Change, Claimed, EnrollmentStore, StoreResult,
};

use crate::deps::{Deps, WebhookError, DEDUP, LEASE};
use crate::report;

/// The feedback an SES event carries (see [`Feedback::of`]).
fn feedback(event: &Value) -> Feedback {
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    let bounce_type = event
        .pointer("/detail/bounce/bounceType")
        .and_then(Value::as_str);
    detail_type.map_or(Feedback::Ignored, |t| Feedback::of(t, bounce_type))
}

/// The message tag `name` as the sender set it (decoded by [`shared::ses_tags::read`]).
fn tag(event: &Value, name: &str) -> Option<String> {
    let tags = event.pointer("/detail/mail/tags")?;
    shared::ses_tags::read(name, |n| {
        tags.get(n)
            .and_then(|v| v.get(0))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    })
    .filter(|s| !s.is_empty())
}

pub(crate) async fn handle_ses_event(
    deps: &Deps,
    event: &Value,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(WebhookError::SesEventIncomplete("id"))?;
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or(WebhookError::SesEventIncomplete("detail-type"))?;
    let fb = feedback(event);
    if fb == Feedback::Ignored {
        tracing::debug!(event = "ses_event_ignored", detail_type = detail_type);
        return Ok(());
    }
    let Some(customer_id) = tag(event, "customer_id").and_then(|t| CustomerId::parse(&t).ok())
    else {
        tracing::warn!(
            event = "ses_event_untagged",
            detail_type = detail_type,
            ses_event_id = id,
            "the email carries no valid customer_id tag: not one of ours"
        );
        return Ok(());
    };
    let key = format!("ses#{id}");
    match deps.store.claim_key(&key, now + LEASE).await? {
        Claimed::New => {}
        Claimed::Seen(Some(_)) => {
            tracing::info!(event = "ses_event_duplicate", ses_event_id = id);
            return Ok(());
        }
        // Claimed, not finished: fail so that EventBridge retries it. If that invocation died,
        // its lease runs out and the retry records the event.
        Claimed::Seen(None) => return Err(WebhookError::SesEventInProgress(id.to_string())),
    }
    // A panic while recording gives the event back before it goes on, so EventBridge's retry
    // records it at once rather than after the lease.
    let recorded = deps
        .releasing_on_panic(Some(&key), record(deps, event, fb, &customer_id, now))
        .await;
    match recorded {
        Ok(()) => {
            if let Err(e) = deps.store.record_result(&key, "done", now + DEDUP).await {
                tracing::warn!(event = "result_not_recorded", error = %e, ses_event_id = id);
            }
            Ok(())
        }
        Err(e) => {
            if let Err(release) = deps.store.release_key(&key).await {
                tracing::error!(event = "release_failed", error = %release, ses_event_id = id);
            }
            Err(e)
        }
    }
}

/// The cohort an SES event counts in (see [`feedback::cohort`]).
fn cohort(event: &Value, campaign: &str, enrollment: Option<&Enrollment>) -> Option<CohortKey> {
    let (variant, group, flow) = (
        tag(event, "variant"),
        tag(event, "group"),
        tag(event, "flow"),
    );
    let tags = Tags {
        variant: variant.as_deref(),
        group: group.as_deref(),
        flow: flow.as_deref().and_then(Flow::read),
    };
    feedback::cohort(campaign, tags, enrollment)
}

#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %customer_id))]
async fn record(
    deps: &Deps,
    event: &Value,
    fb: Feedback,
    customer_id: &CustomerId,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let campaign = tag(event, "campaign").unwrap_or_else(|| deps.campaign.config().name.clone());
    let enrollment = deps.store.get_enrollment(customer_id, &campaign).await?;
    let cohort = cohort(event, &campaign, enrollment.as_ref());
    let message_id = event
        .pointer("/detail/mail/messageId")
        .and_then(Value::as_str)
        .unwrap_or_default();

    let Some(decision) = feedback::decide(fb) else {
        return Ok(());
    };
    // An email opened or clicked many times counts once: claimed with a lease, kept once
    // counted, given back if counting failed (so the retry counts it).
    let unique_key = match (decision.once_per_email, message_id.is_empty()) {
        (Some(what), false) => {
            let k = unique_key(what, message_id);
            match deps.store.claim_key(&k, now + LEASE).await? {
                Claimed::New => {}
                // Counted already.
                Claimed::Seen(Some(_)) => return Ok(()),
                // Held by an attempt that has not finished (or died holding it): fail, so the
                // event is given back and retried, and counted once the lease runs out.
                Claimed::Seen(None) => {
                    return Err(WebhookError::CountInProgress {
                        what,
                        message_id: message_id.to_string(),
                    })
                }
            }
            Some(k)
        }
        _ => None,
    };
    // A panic while counting gives the open or click back before it goes on.
    let applied = deps
        .releasing_on_panic(unique_key.as_deref(), async {
            let suppressed_now =
                update_profile(
                    deps.store.as_ref(),
                    customer_id,
                    |stored| match feedback::apply(fb, stored, now) {
                        Some((p, newly)) => Change::Save(p, newly),
                        None => Change::Keep(false),
                    },
                )
                .await?;
            if let Some(why) = decision.suppress {
                suppress(deps, customer_id, &campaign, why, suppressed_now, now).await?;
            }
            match &cohort {
                Some(key) => report::count(deps, key, now, &[(decision.counter, 1)]).await?,
                None => {
                    tracing::warn!(
                        event = "ses_event_uncounted",
                        "no variant tag and no enrollment: the event is not counted"
                    )
                }
            }
            Ok::<(), WebhookError>(())
        })
        .await;
    if let Some(k) = &unique_key {
        let settled = match &applied {
            Ok(()) => deps.store.record_result(k, "done", now + DEDUP).await,
            Err(_) => deps.store.release_key(k).await,
        };
        if let Err(e) = settled {
            tracing::warn!(event = "unique_key_not_settled", error = %e, "the lease frees it");
        }
    }
    applied
}

/// Ends the customer's enrollment in `campaign` (suppressed), says so and publishes it.
async fn suppress(
    deps: &Deps,
    customer_id: &CustomerId,
    campaign: &str,
    why: &'static str,
    newly: bool,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let enrollments: &dyn EnrollmentStore = deps.store.as_ref();
    update_enrollment(
        enrollments,
        customer_id,
        campaign,
        |stored| match feedback::end(stored, now) {
            Some(exited) => Change::Save(exited, ()),
            None => Change::Keep(()),
        },
    )
    .await?;
    tracing::info!(event = "customer_suppressed", campaign = %campaign, why = why, newly = newly);
    deps.publish(
        vec![BusEvent::CustomerSuppressed {
            customer_id: customer_id.clone(),
            why: why.to_string(),
            at: now,
        }],
        customer_id,
        now,
    )
    .await;
    Ok(())
}

/// The record that an email's open or click was counted.
pub(crate) fn unique_key(what: &str, message_id: &str) -> String {
    format!("ses-{what}#{message_id}")
}
