//! A paused reason fixed (`POST /v1/resolutions/{reason}` on the webhook, which publishes
//! `ResolutionRequested`; or `winback resolve`): every customer who gave it is marked resolved.
//! It reads every profile, which is why the scheduler does it: the public webhook's role has no
//! `Scan`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::customer::Profile;
use shared::domain::survey::{self, Reason};
use shared::ports::{update_profile, Change, DueIndex, ProfileStore, StoreError};
use shared::ports::{PageAt, ScanSegment};

/// Segments of the scan over every profile.
const SEGMENTS: u32 = 4;
/// Profiles read per scan page.
const PAGE: u32 = 200;

/// What resolving did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// Profiles read.
    pub scanned: u64,
    /// Customers who gave the reason and are now free to be contacted again, and told.
    pub resolved: u64,
}

/// A `ResolutionRequested` event from the bus, if `event` is one: the reason, the note and when.
pub fn requested(event: &serde_json::Value) -> Option<(Reason, String, DateTime<Utc>)> {
    if event.get("detail-type").and_then(|d| d.as_str()) != Some("ResolutionRequested") {
        return None;
    }
    let detail = event.get("detail")?.clone();
    match shared::events::BusEvent::from_parts("ResolutionRequested", detail).ok()? {
        shared::events::BusEvent::ResolutionRequested {
            reason, note, at, ..
        } => Some((reason, note, at)),
        _ => None,
    }
}

/// Marks `reason` resolved for every customer who gave it, with `note` for the email that tells
/// them (see [`survey::resolve`]). Each becomes due at `now`: the scheduler's next run enrolls
/// the lapsed ones again and the sender tells them, once each, through its usual checks (quiet
/// hours, frequency cap, unsubscribes). Running it again changes nothing for those already
/// resolved. Reads every profile (a full scan, like a rebuild).
pub async fn resolve_reason(
    store: &(impl DueIndex + ProfileStore + ?Sized),
    reason: Reason,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Resolution, StoreError> {
    let mut out = Resolution::default();
    for segment in 0..SEGMENTS {
        let mut cursor = None;
        loop {
            let page = store
                .scan_profiles(
                    ScanSegment::new(segment, SEGMENTS),
                    PageAt::new(cursor, PAGE),
                )
                .await?;
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
    tracing::info!(
        event = "reason_resolved",
        reason = reason.as_str(),
        customers = out.resolved,
        scanned = out.scanned
    );
    Ok(out)
}

/// Resolves one scanned profile; one that gave the reason is read again and changed with
/// [`update_profile`], so a webhook write since the scan is kept.
async fn resolve_one(
    store: &(impl ProfileStore + ?Sized),
    mut scanned: Profile,
    reason: Reason,
    note: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !survey::resolve(&mut scanned, reason, note, now) {
        return Ok(false);
    }
    update_profile(store, &scanned.customer_id, |p| match p {
        Some(mut p) => match survey::resolve(&mut p, reason, note, now) {
            true => Change::Save(p, true),
            false => Change::Keep(false),
        },
        None => Change::Keep(false),
    })
    .await
}
