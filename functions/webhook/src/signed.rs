//! The shop's signed requests about codes and customers: reward look-ups, reservations at
//! checkout and erasure.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::activity;
use shared::domain::edge::CustomerId;
use shared::domain::reward::{ReserveError, Reward, RewardCode};
use shared::domain::sequence::{enrollment_id, Enrollment};
use shared::ports::{
    update_profile, update_reward, Change, ErasureStore, IdempotencyStore, ProfileStore,
    RewardStore, StoreResult,
};

use crate::deps::Deps;
use crate::extract::{signed_json, signed_path};
use crate::http::{json_error, json_response, percent_decode, Handled, HttpRequest, HttpResponse};

/// `GET /v1/rewards/{code}`: what the shop's checkout should do with a code.
pub(crate) async fn reward(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Handled {
    signed_path(req, &deps.keys, now)?;
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

/// The body of a reservation: `{"order_ref": "...", "customer_id": "..."}` (checked by
/// [`order_ref`] and [`customer_of`]).
#[derive(Deserialize)]
struct Reservation {
    #[serde(default)]
    order_ref: Value,
    #[serde(default)]
    customer_id: Value,
}

/// The customer a reservation is for: the one checking out, as the shop knows them.
fn customer_of(body: &Reservation) -> Result<CustomerId, HttpResponse> {
    let refused = |why: String| {
        json_error(
            400,
            &format!("customer_id must be the id of the customer checking out (the id the shop sends in activity): {why}"),
            Some("customer_id"),
        )
    };
    match &body.customer_id {
        Value::String(s) => CustomerId::parse(s).map_err(|e| refused(e.to_string())),
        Value::Null => Err(refused("it is missing".into())),
        _ => Err(refused("it is not a string".into())),
    }
}

/// The order reference of a reservation: 1 to [`MAX_ORDER_REF`] printable characters.
fn order_ref(body: &Reservation) -> Result<String, HttpResponse> {
    match &body.order_ref {
        Value::String(s)
            if !s.trim().is_empty() && s.len() <= MAX_ORDER_REF && !s.chars().any(char::is_control) =>
        {
            Ok(s.trim().to_string())
        }
        _ => Err(json_error(
            400,
            &format!("order_ref must be the order's reference: a string of 1 to {MAX_ORDER_REF} printable characters"),
            Some("order_ref"),
        )),
    }
}

/// `POST /v1/rewards/{code}/reserve` with `{"order_ref": "...", "customer_id": "..."}`, signed:
/// holds the code for that order of the customer it was issued to ([`shared::domain::reward::Reward::reserve`]) with a conditional write, so
/// of two orders reserving at once exactly one gets it; the other gets 409.
pub(crate) async fn reserve(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Handled {
    let body = signed_json::<Reservation>(req, &deps.keys, now)?;
    let order_ref = order_ref(&body)?;
    let customer_id = customer_of(&body)?;
    let not_found = || json_error(404, "no reward has this code", Some("code"));
    let Some(code) = percent_decode(segment).and_then(|s| RewardCode::parse(&s).ok()) else {
        return Ok(not_found());
    };
    // Someone else writing first (another order's reservation, a redemption) reads again.
    let reserved = update_reward(deps.store.as_ref(), &code, |stored| match stored {
        None => Change::Keep(None),
        Some(reward) => match reward.reserve(&customer_id, &order_ref, now) {
            Ok(reserved) => Change::Save(reserved.clone(), Some(Ok(reserved))),
            Err(e) => Change::Keep(Some(Err(e))),
        },
    })
    .await?;
    Ok(match reserved {
        None => not_found(),
        Some(Ok(reserved)) => json_response(200, &reserved_body(&reserved, &order_ref)),
        Some(Err(e)) => json_response(409, &refused_body(&e, &code)),
    })
}

fn reserved_body(reserved: &Reward, order_ref: &str) -> Value {
    json!({
        "status": "reserved",
        "code": reserved.code.as_str(),
        "order_ref": order_ref,
        "until": reserved.reserved.as_ref().map(|h| h.until),
        "kind": reserved.spec.kind.as_str(),
        "value": reserved.spec.value.map(|v| v.to_string()),
        "currency": reserved.currency,
        "customer_id": reserved.customer_id,
    })
}

fn refused_body(e: &ReserveError, code: &RewardCode) -> Value {
    let mut body = match e {
        ReserveError::HeldByAnotherOrder { until } => json!({
            "status": "held_by_another_order", "until": until,
        }),
        ReserveError::NotValid { status } => json!({
            "status": "not_valid", "code_status": status,
        }),
        ReserveError::OtherCustomer => json!({ "status": "other_customer" }),
        ReserveError::HoldSpent { since } => json!({
            "status": "hold_spent", "since": since,
        }),
    };
    body["error"] = json!(e.to_string());
    body["code"] = json!(code.as_str());
    body
}

/// `DELETE /v1/customers/{id}`: erases everything kept per customer id (see [`erase_customer`]).
pub(crate) async fn erase(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Handled {
    signed_path(req, &deps.keys, now)?;
    let Some(id) = percent_decode(segment).filter(|s| !s.trim().is_empty()) else {
        return Ok(json_error(
            400,
            "the customer id in the path is not valid percent-encoded UTF-8",
            Some("id"),
        ));
    };
    if !erase_and_announce(deps, &id, now).await? {
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

/// Erases the customer (see [`erase_customer`]) and, when they were known, publishes
/// `CustomerErased` so the bus's subscribers erase what they keep of them. Answers whether
/// they were known.
pub(crate) async fn erase_and_announce(
    deps: &Deps,
    id: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let found = erase_customer(deps.store.as_ref(), id, now).await?;
    if found {
        if let Ok(customer_id) = CustomerId::parse(id) {
            deps.publish(
                vec![shared::events::BusEvent::CustomerErased {
                    customer_id,
                    at: now,
                }],
                id,
                now,
            )
            .await;
        }
    }
    Ok(found)
}

/// Erases everything kept per customer id (`false` when no such customer): the profile becomes
/// a tombstone (see [`Profile::erase_personal_data`]); the enrollment in every campaign is
/// deleted with its survey answers, and with it what is keyed by its ids (the 90-day "still
/// active" record of each round, the open and click records of each email sent); every reward
/// issued to the customer is deleted, and every order index item naming them. Campaign counters
/// (sums over customers) stay. Safe to repeat: a second erasure finds less to delete.
#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %id))]
pub(crate) async fn erase_customer(
    store: &(impl ProfileStore + ErasureStore + RewardStore + IdempotencyStore + ?Sized),
    id: &str,
    _now: DateTime<Utc>,
) -> StoreResult<bool> {
    let found = update_profile(store, id, |stored| match stored {
        None => Change::Keep(false),
        Some(p) => match activity::erase(&p) {
            Some(tombstone) => Change::Save(tombstone, true),
            None => Change::Keep(true),
        },
    })
    .await?;
    if !found {
        return Ok(false);
    }
    // Rewards issued before they were listed under their customer are found through the
    // enrollment that holds their code.
    let mut codes = Vec::new();
    for e in store.enrollments_of(id).await? {
        codes.extend(
            e.reward_code
                .as_deref()
                .and_then(|c| RewardCode::parse(c).ok()),
        );
        for key in erasure_keys(&e) {
            store.release_key(&key).await?;
        }
        store.delete_enrollment(id, &e.campaign).await?;
    }
    for code in store.rewards_of(id).await? {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    for code in codes {
        // A code listed under the customer but held by someone else (a collision whose insert
        // failed) is left alone; only the listing goes.
        let theirs = store
            .get_reward(&code)
            .await?
            .is_none_or(|r| r.customer_id == id);
        if theirs {
            store.delete_reward(id, &code).await?;
        }
    }
    for (source, order_id) in store.orders_of(id).await? {
        store.delete_order_owner(id, &source, &order_id).await?;
    }
    tracing::info!(event = "customer_erased", customer_id = %id);
    Ok(true)
}

/// The idempotency records keyed by an enrollment's ids: the 90-day "still active" and the
/// "ordered late" records of each of its rounds and the open and click records of each email
/// it sent.
fn erasure_keys(e: &Enrollment) -> Vec<String> {
    let rounds = (1..=e.round.max(1)).flat_map(|round| {
        let id = enrollment_id(&e.customer_id, &e.campaign, round);
        [
            crate::activity::still_active_key(&id),
            crate::activity::late_order_key(&id),
        ]
    });
    let emails = e
        .sent
        .iter()
        .filter_map(|s| s.message_id.as_deref())
        .flat_map(|m| {
            shared::domain::feedback::ONCE_PER_EMAIL.map(|what| crate::ses::unique_key(what, m))
        });
    rounds.chain(emails).collect()
}
