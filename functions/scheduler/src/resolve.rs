//! A paused reason fixed (`POST /v1/resolutions/{reason}` on the webhook, which publishes
//! `ResolutionRequested`; or `winback resolve`): every customer who gave it is marked resolved.
//! It reads every profile, which is why the scheduler does it: the public webhook's role has no
//! `Scan`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::customer::Profile;
use shared::domain::survey::{self, Reason};
use shared::events::{BusEvent, ResumeAt};
use shared::ports::{update_profile, Change, DueIndex, ProfileStore, StoreError};
use shared::ports::{PageAt, ScanSegment};

use crate::input::Budget;

/// Segments of the scan over every profile.
const SEGMENTS: u32 = 4;
/// Profiles read per scan page.
const PAGE: u32 = 200;

/// What resolving did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// Profiles read.
    pub scanned: u64,
    /// Customers who gave the reason and are now free to be contacted again, and told.
    pub resolved: u64,
    /// Where the pass stopped when its budget ran out (`None`: it read every profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_at: Option<ResumeAt>,
}

/// A `ResolutionRequested` event from the bus, if `event` is one.
pub fn requested(event: &serde_json::Value) -> Option<Requested> {
    if event.get("detail-type").and_then(|d| d.as_str()) != Some("ResolutionRequested") {
        return None;
    }
    let detail = event.get("detail")?.clone();
    match BusEvent::from_parts("ResolutionRequested", detail).ok()? {
        BusEvent::ResolutionRequested {
            campaign,
            reason,
            note,
            at,
            resume,
        } => Some(Requested {
            campaign,
            reason,
            note,
            at,
            resume,
        }),
        _ => None,
    }
}

/// A resolution the bus carried: the reason, the note, when, and where an earlier pass stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Requested {
    pub campaign: String,
    pub reason: Reason,
    pub note: String,
    pub at: DateTime<Utc>,
    pub resume: Option<ResumeAt>,
}

impl Requested {
    /// The event it came as.
    pub fn into_event(self) -> BusEvent {
        BusEvent::ResolutionRequested {
            campaign: self.campaign,
            reason: self.reason,
            note: self.note,
            at: self.at,
            resume: self.resume,
        }
    }
}

/// Marks `reason` resolved for every customer who gave it, with `note` for the email that tells
/// them (see [`survey::resolve`]). Each becomes due at `now`: the scheduler's next run enrolls
/// the lapsed ones again and the sender tells them, once each, through its usual checks (quiet
/// hours, frequency cap, unsubscribes). Running it again changes nothing for those already
/// resolved. Reads every profile (a full scan, like a rebuild), with no budget (the CLI).
pub async fn resolve_reason(
    store: &(impl DueIndex + ProfileStore + ?Sized),
    reason: Reason,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Resolution, StoreError> {
    resolve_within(store, reason, note, now, None, Budget::unlimited()).await
}

/// [`resolve_reason`] from `from` (the start when `None`) until `budget` is spent: a pass that
/// runs out of time stops after a whole page and says where (`left_at`), so the scheduler hands
/// the rest to its next invocation instead of running past its deadline, and scheduled runs get
/// their turn in between.
pub async fn resolve_within(
    store: &(impl DueIndex + ProfileStore + ?Sized),
    reason: Reason,
    note: &str,
    now: DateTime<Utc>,
    from: Option<ResumeAt>,
    budget: Budget,
) -> Result<Resolution, StoreError> {
    let mut out = Resolution::default();
    let (first, mut cursor) = from.map_or((0, None), |r| (r.segment, r.cursor));
    for segment in first..SEGMENTS {
        loop {
            if budget.spent(out.scanned) {
                out.left_at = Some(ResumeAt { segment, cursor });
                tracing::info!(
                    event = "resolution_left_to_next_run",
                    reason = reason.as_str(),
                    scanned = out.scanned,
                    segment
                );
                return Ok(out);
            }
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
