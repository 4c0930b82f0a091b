//! `POST /v1/activity`: the shop's orders, logins and subscription changes. The body is read
//! in [`body`]; the enrollment and reward changes are in [`attribution`], the profile's in
//! [`profile`]; this module records an event once and counts what it did.

mod attribution;
mod body;
mod profile;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared::domain::experiment::Group;
use shared::domain::metrics::{counter, CohortKey};
use shared::domain::money::Money;
use shared::domain::reward::RewardCode;
use shared::domain::sequence::{Attribution, Flow};
use shared::events::BusEvent;
use shared::ports::{Claimed, StoreError};

use crate::http::{json_error, json_response};
use crate::{report, Deps, HttpRequest, HttpResponse};
use attribution::{attribute_activity, redeem, Redemption};
pub(crate) use body::{parse, Activity, Invalid, Kind, ProfileFields};
use profile::update_profile;

/// Orders this long after winning back count a customer as still active.
const STILL_ACTIVE_DAYS: i64 = 90;

/// Does the work of a claimed event; returns the response body.
async fn process(deps: &Deps, a: &Activity, now: DateTime<Utc>) -> Result<Value, StoreError> {
    let (attribution, enrollment) = attribute_activity(deps, a).await?;
    let redemption = redeem(deps, a).await?;
    update_profile(deps, a, enrollment.as_ref(), now).await?;

    let minor = a.amount.as_ref().map_or(0, |(m, _)| m.0);
    let currency = a.amount.as_ref().map_or_else(
        || deps.campaign.config().currency.clone(),
        |(_, c)| c.to_string(),
    );
    let mut events = Vec::new();
    match &attribution {
        Attribution::Reactivated(e) => {
            let campaign_currency = &deps.campaign.config().currency;
            let mut deltas: Vec<(String, i64)> = vec![
                (counter::REACTIVATED.into(), 1),
                (
                    counter::in_currency(counter::REVENUE, &currency, campaign_currency),
                    minor,
                ),
            ];
            if let Some(step) = e.sent.last().map(|s| s.step) {
                deltas.push((counter::reactivated_after_step(step), 1));
            }
            if let Some(reason) = e.survey_reason {
                deltas.push((counter::reactivated_reason(reason), 1));
            }
            let refs: Vec<(&str, i64)> = deltas.iter().map(|(n, d)| (n.as_str(), *d)).collect();
            report::count(deps, &e.cohort(), now, &refs).await?;
            let revenue = Money(minor).to_string();
            tracing::info!(
                event = "customer_reactivated",
                revenue = %revenue,
                currency = %currency,
                campaign = %e.campaign,
                variant = %e.variant,
                group = e.group.as_str(),
                activity = ?a.kind,
            );
            events.push(BusEvent::CustomerReactivated {
                campaign: e.campaign.clone(),
                customer_id: a.customer_id.to_string(),
                enrollment_id: e.id.clone(),
                variant: e.variant.clone(),
                revenue,
                currency: currency.clone(),
                reward_code: match &redemption {
                    Redemption::Redeemed { reward, .. } => Some(reward.code.to_string()),
                    _ => None,
                },
                at: a.occurred_at,
            });
        }
        Attribution::LaterOrder {
            enrollment: e,
            won_at,
        } => {
            let revenue_after = counter::in_currency(
                counter::REVENUE_AFTER,
                &currency,
                &deps.campaign.config().currency,
            );
            let mut deltas = vec![(revenue_after.as_str(), minor)];
            if a.occurred_at - *won_at >= Duration::days(STILL_ACTIVE_DAYS) {
                let key = still_active_key(&e.id);
                if deps
                    .store
                    .claim_key(&key, now + Duration::days(3650))
                    .await?
                    == Claimed::New
                {
                    deltas.push((counter::STILL_ACTIVE_90D, 1));
                }
            }
            report::count(deps, &e.cohort(), now, &deltas).await?;
        }
        Attribution::Stopped(e, why) => {
            tracing::info!(event = "sequence_stopped", campaign = %e.campaign, why = ?why, activity = ?a.kind);
        }
        Attribution::None => {}
    }
    let reward_json = match &redemption {
        Redemption::None => None,
        Redemption::Redeemed { reward, cost } => {
            // The reward's own enrollment says which flow's counters it belongs to.
            let flow = enrollment
                .as_ref()
                .filter(|e| e.id == reward.enrollment_id)
                .map_or(Flow::WinBack, |e| e.flow);
            let key = CohortKey::of(&reward.campaign, flow, &reward.variant, Group::Treated);
            report::count(
                deps,
                &key,
                now,
                &[
                    (counter::REDEEMED, 1),
                    (
                        counter::in_currency(
                            counter::REWARD_COST,
                            &reward.currency,
                            &deps.campaign.config().currency,
                        )
                        .as_str(),
                        cost.0,
                    ),
                ],
            )
            .await?;
            tracing::info!(event = "reward_redeemed", campaign = %reward.campaign, variant = %reward.variant, kind = reward.spec.kind.as_str());
            Some(json!({ "code": reward.code.as_str(), "status": "redeemed" }))
        }
        Redemption::Refused {
            code,
            status,
            error,
        } => {
            tracing::info!(event = "reward_refused", code_status = *status);
            Some(
                json!({ "code": code, "status": "refused", "code_status": status, "error": error }),
            )
        }
    };
    crate::publish(deps, events, &a.customer_id, now).await;
    tracing::info!(event = "activity_recorded", activity = ?a.kind, event_id = %a.event_id);
    let mut body = json!({
        "status": "recorded",
        "event_id": a.event_id,
        "customer_id": a.customer_id,
        "reactivated": matches!(attribution, Attribution::Reactivated(_)),
    });
    if let Some(r) = reward_json {
        body["reward"] = r;
    }
    Ok(body)
}

/// `POST /v1/activity`.
pub(crate) async fn post(
    deps: &Deps,
    req: &HttpRequest,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    if let Some(refused) = crate::refuse_unsigned_body(deps, req, now) {
        return Ok(refused);
    }
    let activity = match parse(&req.body, now) {
        Ok(a) => a,
        Err(e) => return Ok(json_error(400, &e.message, Some(&e.field))),
    };
    record(deps, &activity, now).await
}

/// Records a validated activity once per `event_id`: the shop's contract and the platforms'
/// webhooks alike.
#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %activity.customer_id))]
pub(crate) async fn record(
    deps: &Deps,
    activity: &Activity,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    let key = format!("activity#{}", activity.event_id);
    match deps.store.claim_key(&key, now + crate::LEASE).await? {
        Claimed::Seen(Some(result)) => {
            let mut body: Value =
                serde_json::from_str(&result).unwrap_or_else(|_| json!({ "status": "recorded" }));
            body["duplicate"] = json!(true);
            body["customer_id"] = json!(activity.customer_id);
            if let (Some(r), Some(code)) = (body.get_mut("reward"), &activity.reward_code) {
                let code = RewardCode::parse(code).map_or_else(|_| code.clone(), |c| c.to_string());
                r["code"] = json!(code);
            }
            return Ok(json_response(200, &body));
        }
        Claimed::Seen(None) => {
            return Ok(json_error(
                409,
                &format!(
                    "event {} is being processed: retry in a moment",
                    activity.event_id
                ),
                Some("event_id"),
            ));
        }
        Claimed::New => {}
    }
    // A panic while processing gives the event back before it goes on (answered 503), so the
    // shop's retry is processed at once rather than after the lease.
    match crate::releasing_on_panic(deps, Some(&key), process(deps, activity, now)).await {
        Ok(body) => {
            // Kept 30 days by event id: without the customer id (the replay carries it), so
            // nothing in it points to a customer once they are erased.
            // Nor the reward code (the replay carries that too).
            let mut kept = body.clone();
            if let Some(o) = kept.as_object_mut() {
                o.remove("customer_id");
            }
            if let Some(r) = kept.get_mut("reward").and_then(Value::as_object_mut) {
                r.remove("code");
            }
            if let Err(e) = deps
                .store
                .record_result(&key, &kept.to_string(), now + crate::DEDUP)
                .await
            {
                tracing::warn!(event = "result_not_recorded", error = %e, event_id = %activity.event_id);
            }
            Ok(json_response(200, &body))
        }
        Err(e) => {
            if let Err(release) = deps.store.release_key(&key).await {
                tracing::error!(event = "release_failed", error = %release, event_id = %activity.event_id);
            }
            Err(e)
        }
    }
}

/// The record that an enrollment's customer was counted still active 90 days after being won
/// back (counted once).
pub(crate) fn still_active_key(enrollment_id: &str) -> String {
    format!("still-active-90d#{enrollment_id}")
}
