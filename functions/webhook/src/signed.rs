//! The shop's signed requests about codes and customers: reward look-ups, reservations at
//! checkout and erasure.

use chrono::{DateTime, Utc};
use serde_json::json;
use shared::domain::reward::{ReserveError, RewardCode};
use shared::domain::sequence::{enrollment_id, Enrollment};
use shared::ports::StoreError;
use shared::signing::verify_webhook;

use crate::http::{json_error, json_response, percent_decode};
use crate::{Deps, HttpRequest, HttpResponse, SAVE_ATTEMPTS};

fn verify(deps: &Deps, req: &HttpRequest, now: DateTime<Utc>) -> Option<HttpResponse> {
    verify_webhook(
        req.header("winback-signature"),
        req.path_and_query().as_bytes(),
        &deps.keys.webhook,
        now,
    )
    .err()
    .map(|e| json_error(401, &e.to_string(), None))
}

/// `GET /v1/rewards/{code}`: what the shop's checkout should do with a code.
pub(crate) async fn reward(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    if let Some(refused) = verify(deps, req, now) {
        return Ok(refused);
    }
    let unknown = json_response(200, &json!({ "status": "unknown" }));
    let Some(code) = percent_decode(segment).and_then(|s| RewardCode::parse(&s).ok()) else {
        return Ok(unknown);
    };
    let Some(r) = deps.store.get_reward(&code).await? else {
        return Ok(unknown);
    };
    Ok(json_response(
        200,
        &json!({
            "status": r.status(now),
            "code": r.code.as_str(),
            "kind": r.spec.kind.as_str(),
            "value": r.spec.value.map(|v| v.to_string()),
            "currency": r.currency,
            "expires_at": r.expires_at,
            "customer_id": r.customer_id,
            "uses_left": r.uses_left,
        }),
    ))
}

/// Longest order reference accepted.
const MAX_ORDER_REF: usize = 200;

/// `POST /v1/rewards/{code}/reserve` with `{"order_ref": "..."}`, signed over the body: holds the
/// code for that order ([`shared::domain::reward::Reward::reserve`]) with a conditional write, so
/// of two orders reserving at once exactly one gets it; the other gets 409.
pub(crate) async fn reserve(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    if let Some(refused) = crate::refuse_unsigned_body(deps, req, now) {
        return Ok(refused);
    }
    let order_ref = match serde_json::from_slice::<serde_json::Value>(&req.body) {
        Err(e) => return Ok(json_error(400, &format!("the body is not JSON: {e}"), Some("body"))),
        Ok(v) => match v.get("order_ref") {
            Some(serde_json::Value::String(s))
                if !s.trim().is_empty()
                    && s.len() <= MAX_ORDER_REF
                    && !s.chars().any(char::is_control) =>
            {
                s.trim().to_string()
            }
            _ => {
                return Ok(json_error(
                    400,
                    &format!("order_ref must be the order's reference: a string of 1 to {MAX_ORDER_REF} printable characters"),
                    Some("order_ref"),
                ))
            }
        },
    };
    let not_found = || json_error(404, "no reward has this code", Some("code"));
    let Some(code) = percent_decode(segment).and_then(|s| RewardCode::parse(&s).ok()) else {
        return Ok(not_found());
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(reward) = deps.store.get_reward(&code).await? else {
            return Ok(not_found());
        };
        let reserved = match reward.reserve(&order_ref, now) {
            Ok(r) => r,
            Err(e) => {
                let body = match &e {
                    ReserveError::HeldByAnotherOrder { until } => json!({
                        "status": "held_by_another_order", "until": until,
                    }),
                    ReserveError::NotValid { status } => json!({
                        "status": "not_valid", "code_status": status,
                    }),
                };
                let mut body = body;
                body["error"] = json!(e.to_string());
                body["code"] = json!(code.as_str());
                return Ok(json_response(409, &body));
            }
        };
        match deps.store.save_reward(&reserved).await {
            Ok(_) => {
                let held = reserved.reserved.as_ref();
                return Ok(json_response(
                    200,
                    &json!({
                        "status": "reserved",
                        "code": code.as_str(),
                        "order_ref": order_ref,
                        "until": held.map(|h| h.until),
                        "kind": reserved.spec.kind.as_str(),
                        "value": reserved.spec.value.map(|v| v.to_string()),
                        "currency": reserved.currency,
                        "customer_id": reserved.customer_id,
                    }),
                ));
            }
            // Someone else wrote first (another order's reservation, a redemption): read again.
            Err(e) if e.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `DELETE /v1/customers/{id}`: erases everything kept per customer id (see [`erase_customer`]).
pub(crate) async fn erase(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    if let Some(refused) = verify(deps, req, now) {
        return Ok(refused);
    }
    let Some(id) = percent_decode(segment).filter(|s| !s.trim().is_empty()) else {
        return Ok(json_error(
            400,
            "the customer id in the path is not valid percent-encoded UTF-8",
            Some("id"),
        ));
    };
    if !erase_customer(deps, &id, now).await? {
        return Ok(json_error(
            404,
            "no customer has this id: nothing to erase",
            Some("id"),
        ));
    }
    Ok(json_response(
        200,
        &json!({ "status": "erased", "customer_id": id }),
    ))
}

/// Erases everything kept per customer id (`false` when no such customer): the profile becomes
/// a tombstone (see [`Profile::erase_personal_data`]); the enrollment in every campaign is
/// deleted with its survey answers, and with it what is keyed by its ids (the 90-day "still
/// active" record of each round, the open and click records of each email sent); every reward
/// issued to the customer is deleted. Campaign counters (sums over customers) stay. Safe to
/// repeat: a second erasure finds less to delete.
#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %id))]
pub(crate) async fn erase_customer(
    deps: &Deps,
    id: &str,
    _now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(mut p) = deps.store.get_profile(id).await? else {
            return Ok(false);
        };
        if p.is_tombstone() {
            break;
        }
        p.erase_personal_data();
        match deps.store.save_profile(&p).await {
            Ok(_) => break,
            Err(e) if e.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
    // Rewards issued before they were listed under their customer are found through the
    // enrollment that holds their code.
    let mut codes = Vec::new();
    for e in deps.store.enrollments_of(id).await? {
        codes.extend(
            e.reward_code
                .as_deref()
                .and_then(|c| RewardCode::parse(c).ok()),
        );
        for key in erasure_keys(&e) {
            deps.store.release_key(&key).await?;
        }
        deps.store.delete_enrollment(id, &e.campaign).await?;
    }
    for code in deps.store.rewards_of(id).await? {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    for code in codes {
        // A code listed under the customer but held by someone else (a collision whose insert
        // failed) is left alone; only the listing goes.
        let theirs = deps
            .store
            .get_reward(&code)
            .await?
            .is_none_or(|r| r.customer_id == id);
        if theirs {
            deps.store.delete_reward(id, &code).await?;
        }
    }
    tracing::info!(event = "customer_erased", customer_id = %id);
    Ok(true)
}

/// The idempotency records keyed by an enrollment's ids: the 90-day "still active" record of
/// each of its rounds and the open and click records of each email it sent.
fn erasure_keys(e: &Enrollment) -> Vec<String> {
    let rounds = (1..=e.round.max(1)).map(|round| {
        crate::activity::still_active_key(&enrollment_id(&e.customer_id, &e.campaign, round))
    });
    let emails = e
        .sent
        .iter()
        .filter_map(|s| s.message_id.as_deref())
        .flat_map(|m| crate::ses::UNIQUE.map(|what| crate::ses::unique_key(what, m)));
    rounds.chain(emails).collect()
}
