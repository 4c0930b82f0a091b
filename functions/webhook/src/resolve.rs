//! `POST /v1/resolutions/{reason}`: the shop has fixed a reason it pauses customers for. The
//! webhook checks the request and hands it to the scheduler (`ResolutionRequested` on the bus),
//! which reads every profile: the public webhook's role has no `Scan`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::survey::Reason;
use shared::events::BusEvent;
use shared::retry::RetryPolicy;

use crate::deps::Deps;
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
    let body: Resolution = signed_json(req, &deps.keys.webhook, now)?;
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
    let event = BusEvent::ResolutionRequested {
        campaign: deps.campaign.config().name.clone(),
        reason,
        note,
        at: now,
    };
    let report =
        shared::publish::publish_all(deps.bus.as_ref(), vec![event], RetryPolicy::DEFAULT).await;
    if let Some((_, why)) = report.failed.first() {
        tracing::error!(event = "publish_failed", detail_type = "ResolutionRequested", reason = %why);
        return Ok(json_error(
            503,
            "the resolution could not be handed to the scheduler: send it again",
            None,
        ));
    }
    tracing::info!(event = "resolution_requested", reason = reason.as_str());
    Ok(json_response(
        202,
        &json!({
            "status": "accepted",
            "reason": reason.as_str(),
        }),
    ))
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
