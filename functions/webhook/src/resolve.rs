//! `POST /v1/resolutions/{reason}`: the shop has fixed a reason it pauses customers for. The
//! webhook checks the request and hands it to the scheduler (`ResolutionRequested` on the bus),
//! which reads every profile: the public webhook's role has no `Scan`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::survey::Reason;
use shared::events::BusEvent;
use shared::retry::RetryPolicy;

use shared::ports::Claimed;

use crate::deps::{Deps, LEASE};
use crate::extract::signed_json;
use crate::http::{json_error, json_response, percent_decode, Handled, HttpRequest};

/// The longest note accepted.
const MAX_NOTE_CHARS: usize = 500;

/// `POST /v1/resolutions/{reason}` with `{"note": "..."}`, signed like activity.
pub(crate) async fn post(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Handled {
    let body: Resolution = signed_json(req, &deps.keys, now)?;
    let reason = match percent_decode(segment).map(|s| s.parse::<Reason>()) {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Ok(json_error(400, &e.to_string(), Some("reason"))),
        None => {
            return Ok(json_error(
                400,
                "the reason in the path is not valid percent-encoded UTF-8",
                Some("reason"),
            ))
        }
    };
    let note = body
        .note()
        .map_err(|message| json_error(400, message, Some("note")))?;
    // Each resolution is handed to the scheduler once a day: a replay (or a resend of the same
    // note) answers as the first did and starts no second pass over every profile.
    let key = idempotency_key(req, reason, &note);
    let accepted = json_response(
        202,
        &json!({
            "status": "accepted",
            "reason": reason.as_str(),
        }),
    );
    match deps.store.claim_key(&key, now + LEASE).await? {
        Claimed::New => {}
        Claimed::Seen(_) => {
            tracing::info!(event = "resolution_duplicate", reason = reason.as_str());
            let mut body = accepted.json();
            body["duplicate"] = Value::Bool(true);
            return Ok(json_response(202, &body));
        }
    }
    let event = BusEvent::ResolutionRequested {
        campaign: deps.campaign.config().name.clone(),
        reason,
        note,
        at: now,
        resume: None,
    };
    let report =
        shared::publish::publish_all(deps.bus.as_ref(), vec![event], RetryPolicy::DEFAULT).await;
    if let Some((_, why)) = report.failed.first() {
        tracing::error!(event = "publish_failed", detail_type = "ResolutionRequested", reason = %why);
        if let Err(e) = deps.store.release_key(&key).await {
            tracing::warn!(event = "release_failed", error = %e);
        }
        return Ok(json_error(
            503,
            "the resolution could not be handed to the scheduler: send it again",
            None,
        ));
    }
    if let Err(e) = deps
        .store
        .record_result(&key, "accepted", now + RESOLUTION_DEDUP)
        .await
    {
        tracing::warn!(event = "result_not_recorded", error = %e);
    }
    tracing::info!(event = "resolution_requested", reason = reason.as_str());
    Ok(accepted)
}

/// How long a resolution is remembered: the same one again within it is a replay.
const RESOLUTION_DEDUP: chrono::Duration = chrono::Duration::hours(24);

/// The key a resolution is deduplicated by: the request's `Idempotency-Key` when it has one,
/// else its reason and note.
fn idempotency_key(req: &HttpRequest, reason: Reason, note: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match req.header("idempotency-key") {
        Some(k) if !k.trim().is_empty() => h.update(format!("key\n{}", k.trim())),
        _ => h.update(format!("note\n{note}")),
    }
    format!(
        "resolution#{}#{}",
        reason.as_str(),
        hex::encode(h.finalize())
    )
}

/// The body of a resolution: `{"note": "what was fixed"}`.
#[derive(Deserialize)]
struct Resolution {
    #[serde(default)]
    note: Value,
}

impl Resolution {
    /// The note: required, one short text ([`check_note`]).
    fn note(&self) -> Result<String, &'static str> {
        let note = self
            .note
            .as_str()
            .ok_or("note is missing: say what was fixed, customers read it")?;
        check_note(note).map(str::to_string)
    }
}

/// A note customers can read: not empty, at most 500 characters, no control characters.
pub fn check_note(note: &str) -> Result<&str, &'static str> {
    let note = note.trim();
    if note.is_empty() {
        return Err("note is empty: say what was fixed, customers read it");
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err("note is longer than 500 characters");
    }
    if note.chars().any(char::is_control) {
        return Err("note contains control characters");
    }
    Ok(note)
}
