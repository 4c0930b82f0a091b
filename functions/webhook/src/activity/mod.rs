//! `POST /v1/activity`: the shop's orders, logins and subscription changes. The body is read
//! in [`body`]; the enrollment and reward changes are saved in [`attribution`], the profile's in
//! [`profile`], each as the domain decides ([`shared::domain::activity`]); this module records an
//! event once, and counts and publishes what [`activity::decide`] says follows.

mod attribution;
mod body;
mod profile;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared::campaign::config::CampaignConfig;
use shared::domain::activity::{self, Decision, Facts, Lookup, Outcome, Policy, Redemption};
use shared::domain::reward::RewardCode;
use shared::ports::{Claimed, OrderOwner};
use shared::telemetry::Telemetry;

use crate::deps::{Deps, WebhookError, DEDUP, LEASE};
use crate::extract::signed_body;
use crate::http::{json_error, json_response, Handled, HttpRequest};
use crate::report;
use crate::telemetry::ActivityRecorded;
pub(crate) use body::{parse, Invalid};
pub(crate) use shared::domain::activity::{Activity, Kind, ProfileFields};

/// How long the record that a customer was counted still active is kept: longer than any
/// enrollment lives.
const STILL_ACTIVE_KEPT: Duration = Duration::days(3650);

/// What the campaign says about activity.
fn policy(config: &CampaignConfig) -> Policy<'_> {
    Policy {
        currency: &config.currency,
        attribution_days: config.sending.attribution_days,
        still_with_us: &config.sending.still_with_us,
        watch: config.watch(),
    }
}

/// Does the work of a claimed event: reads, asks the domain, writes; returns the response body.
async fn process(deps: &Deps, a: &Activity, now: DateTime<Utc>) -> Result<Value, WebhookError> {
    let config = deps.campaign.config();
    let policy = policy(config);
    let store = deps.store.as_ref();
    let (attribution, enrollment) = attribution::attribute(store, &config.name, a, &policy).await?;
    let redemption = attribution::redeem(store, a).await?;
    let erased =
        profile::update_profile(store, store, config, a, enrollment.as_ref(), &policy, now).await?;
    remember_order(store, a, erased).await?;

    let mut facts = Facts {
        activity: a,
        attribution: &attribution,
        redemption: &redemption,
        enrollment: enrollment.as_ref(),
        first_still_active: None,
        first_late_order: None,
    };
    let outcome = loop {
        match activity::decide(&facts, &policy) {
            Decision::Look(Lookup::StillActive { enrollment_id }) => {
                let key = still_active_key(&enrollment_id);
                let claimed = store.claim_key(&key, now + STILL_ACTIVE_KEPT).await?;
                facts.first_still_active = Some(claimed == Claimed::New);
            }
            Decision::Look(Lookup::LateOrder { enrollment_id }) => {
                let key = late_order_key(&enrollment_id);
                let claimed = store.claim_key(&key, now + STILL_ACTIVE_KEPT).await?;
                facts.first_late_order = Some(claimed == Claimed::New);
            }
            Decision::Record(outcome) => break outcome,
        }
    };
    for count in &outcome.counts {
        report::count(deps, &count.cohort, now, &count.deltas).await?;
    }
    for (day, count) in &outcome.by_enrollment_day {
        report::count_on(deps, &count.cohort, *day, now, &count.deltas).await?;
    }
    ActivityRecorded {
        activity: a,
        attribution: &attribution,
        redemption: &redemption,
        currency: &config.currency,
    }
    .log();
    let body = response(a, &outcome, &redemption);
    deps.publish(outcome.events, &a.customer_id, now).await;
    Ok(body)
}

/// Remembers whose order `a` is, by its order id, for the refunds that name only the order
/// (Shopify's `refunds/create`): not for an erased customer, whose activity records nothing.
async fn remember_order(
    store: &dyn shared::ports::OrderIndex,
    a: &Activity,
    erased: bool,
) -> Result<(), WebhookError> {
    if let (Kind::Order, Some(order_id), false) = (a.kind, &a.order_id, erased) {
        let owner = OrderOwner::new(a.source, order_id, &a.customer_id, a.occurred_at);
        store.put_order_owners(&[owner]).await?;
    }
    Ok(())
}

/// The answer to the shop.
fn response(a: &Activity, outcome: &Outcome, redemption: &Redemption) -> Value {
    let mut body = json!({
        "status": "recorded",
        "event_id": a.event_id,
        "customer_id": a.customer_id,
        "reactivated": outcome.reactivated,
    });
    match redemption {
        Redemption::None => {}
        Redemption::Redeemed { reward, .. } => {
            body["reward"] = json!({ "code": reward.code.as_str(), "status": "redeemed" });
        }
        Redemption::Refused {
            code,
            status,
            error,
        } => {
            body["reward"] =
                json!({ "code": code, "status": "refused", "code_status": status, "error": error });
        }
    }
    body
}

/// `POST /v1/activity`.
pub(crate) async fn post(deps: &Deps, req: &HttpRequest, now: DateTime<Utc>) -> Handled {
    let body = signed_body(req, &deps.keys, now)?;
    let activity = parse(body, now).map_err(|e| json_error(400, &e.message, Some(&e.field)))?;
    record(deps, &activity, now).await
}

/// Records a validated activity once per `event_id`: the shop's contract and the platforms'
/// webhooks alike. The event is remembered by a keyed hash of its id (an id may carry the
/// customer's, as Shopify's `shopify:customer:<id>:<time>` do), so the 30-day record holds
/// nothing readable of it once the customer is erased.
#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %activity.customer_id))]
pub(crate) async fn record(deps: &Deps, activity: &Activity, now: DateTime<Utc>) -> Handled {
    let key = deps
        .keys
        .pseudonym
        .dedupe_key("activity", &activity.event_id);
    match deps.store.claim_key(&key, now + LEASE).await? {
        Claimed::Seen(Some(result)) => {
            let mut body: Value =
                serde_json::from_str(&result).unwrap_or_else(|_| json!({ "status": "recorded" }));
            body["duplicate"] = json!(true);
            body["event_id"] = json!(activity.event_id);
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
    match deps
        .releasing_on_panic(Some(&key), process(deps, activity, now))
        .await
    {
        Ok(body) => {
            // Kept 30 days under the event id's keyed hash: without the event id and the
            // customer id (the replay carries both), so nothing in it points to a customer
            // once they are erased. Nor the reward code (the replay carries that too).
            let mut kept = body.clone();
            if let Some(o) = kept.as_object_mut() {
                o.remove("customer_id");
                o.remove("event_id");
            }
            if let Some(r) = kept.get_mut("reward").and_then(Value::as_object_mut) {
                r.remove("code");
            }
            if let Err(e) = deps
                .store
                .record_result(&key, &kept.to_string(), now + DEDUP)
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
            Err(e.into())
        }
    }
}

/// The record that an enrollment's customer was counted still active 90 days after being won
/// back (counted once).
pub(crate) fn still_active_key(enrollment_id: &str) -> String {
    format!("still-active-90d#{enrollment_id}")
}

/// The record that an enrollment's customer was counted as ordering late: after its attribution
/// window, within the pulled-forward horizon (counted once).
pub(crate) fn late_order_key(enrollment_id: &str) -> String {
    format!("ordered-late#{enrollment_id}")
}
