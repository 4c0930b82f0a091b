//! `POST /v1/resolutions/{reason}`: the shop has fixed a reason it pauses customers for.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shared::domain::survey::{self, Reason};
use shared::ports::{Store, StoreError};

use crate::http::{json_error, json_response, percent_decode};
use crate::{Deps, HttpRequest, HttpResponse, SAVE_ATTEMPTS};

/// Segments of the scan over every profile.
const SEGMENTS: u32 = 4;
/// Profiles read per scan page.
const PAGE: u32 = 200;
/// The longest note accepted.
const MAX_NOTE_CHARS: usize = 500;

/// What resolving did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Profiles read.
    pub scanned: u64,
    /// Customers who gave the reason and are now free to be contacted again, and told.
    pub resolved: u64,
}

/// Marks `reason` resolved for every customer who gave it, with `note` for the email that tells
/// them (see [`survey::resolve`]). Each becomes due at `now`: the scheduler's next run enrolls
/// the lapsed ones again and the sender tells them, once each, through its usual checks (quiet
/// hours, frequency cap, unsubscribes). Running it again changes nothing for those already
/// resolved. Reads every profile (a full scan, like a rebuild).
pub async fn resolve_reason(
    store: &dyn Store,
    reason: Reason,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Resolution, StoreError> {
    let mut out = Resolution::default();
    for segment in 0..SEGMENTS {
        let mut cursor = None;
        loop {
            let page = store.scan_profiles(segment, SEGMENTS, cursor, PAGE).await?;
            for p in page.items {
                out.scanned += 1;
                if resolve_one(store, p, reason, note, now).await? {
                    out.resolved += 1;
                }
            }
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

#[tracing::instrument(name = "customer", skip_all, fields(customer_id = %p.customer_id))]
async fn resolve_one(
    store: &dyn Store,
    mut p: shared::domain::customer::Profile,
    reason: Reason,
    note: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        if !survey::resolve(&mut p, reason, note, now) {
            return Ok(false);
        }
        match store.save_profile(&p).await {
            Ok(_) => {
                tracing::info!(event = "reason_resolved", reason = reason.as_str());
                return Ok(true);
            }
            Err(e) if e.is_conflict() && attempt < SAVE_ATTEMPTS => {
                match store.get_profile(&p.customer_id).await? {
                    Some(fresh) => p = fresh,
                    None => return Ok(false),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// `POST /v1/resolutions/{reason}` with `{"note": "..."}`, signed like activity.
pub(crate) async fn post(
    deps: &Deps,
    req: &HttpRequest,
    segment: &str,
    now: DateTime<Utc>,
) -> Result<HttpResponse, StoreError> {
    if let Some(refused) = crate::refuse_unsigned_body(deps, req, now) {
        return Ok(refused);
    }
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
    let note = match note_of(&req.body) {
        Ok(n) => n,
        Err(message) => return Ok(json_error(400, message, Some("note"))),
    };
    let done = resolve_reason(deps.store.as_ref(), reason, &note, now).await?;
    Ok(json_response(
        200,
        &json!({
            "status": "resolved",
            "reason": reason.as_str(),
            "customers": done.resolved,
            "scanned": done.scanned,
        }),
    ))
}

/// The note of a resolution body: required, one short text.
pub fn note_of(body: &[u8]) -> Result<String, &'static str> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| "the body must be JSON: {\"note\": \"what was fixed\"}")?;
    let note = value
        .get("note")
        .and_then(Value::as_str)
        .map(str::trim)
        .ok_or("note is missing: say what was fixed, customers read it")?;
    check_note(note).map(str::to_string)
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
