//! Events the product publishes on the bus (source `winback`); `shared::publish` publishes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::edge::CustomerId;
use crate::survey::{FollowUp, Reason};

/// The `source` of every event.
pub const SOURCE: &str = "winback";

/// A sequence step is due: the sender's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDue {
    pub campaign: String,
    pub customer_id: CustomerId,
    pub enrollment_id: String,
    pub step: u8,
    pub due_at: DateTime<Utc>,
}

/// Everything published on the bus. Serialized as `{"detail-type": ..., "detail": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detail-type", content = "detail")]
pub enum BusEvent {
    CustomerEnrolled {
        campaign: String,
        customer_id: CustomerId,
        enrollment_id: String,
        variant: String,
        group: String,
        at: DateTime<Utc>,
    },
    WinbackStepDue(StepDue),
    CustomerReactivated {
        campaign: String,
        customer_id: CustomerId,
        enrollment_id: String,
        variant: String,
        revenue: String,
        currency: String,
        reward_code: Option<String>,
        at: DateTime<Utc>,
    },
    /// A win taken back: every order counted for it was refunded or cancelled within the
    /// attribution window (`domain::refund`). The `CustomerReactivated` of `enrollment_id` no
    /// longer counts.
    WinTakenBack {
        campaign: String,
        customer_id: CustomerId,
        enrollment_id: String,
        variant: String,
        at: DateTime<Utc>,
    },
    SurveyAnswered {
        campaign: String,
        customer_id: CustomerId,
        reason: Option<Reason>,
        nps: Option<u8>,
        at: DateTime<Utc>,
    },
    FollowUpNeeded {
        campaign: String,
        customer_id: CustomerId,
        why: FollowUp,
        at: DateTime<Utc>,
    },
    CustomerSunset {
        campaign: String,
        customer_id: CustomerId,
        at: DateTime<Utc>,
    },
    CustomerSuppressed {
        customer_id: CustomerId,
        why: String,
        at: DateTime<Utc>,
    },
    /// The shop fixed a reason it pauses customers for (`POST /v1/resolutions/{reason}`): the
    /// scheduler marks every customer who gave it resolved (it reads every profile; the public
    /// webhook may not).
    ResolutionRequested {
        campaign: String,
        reason: Reason,
        note: String,
        at: DateTime<Utc>,
        /// Where an earlier pass over the profiles stopped when its time ran out: the scheduler
        /// publishes the request again with it, and the next invocation goes on from there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeAt>,
    },
}

/// Where a pass over every profile goes on: the scan segment and the cursor in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeAt {
    pub segment: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl BusEvent {
    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            BusEvent::CustomerEnrolled { .. } => "CustomerEnrolled",
            BusEvent::WinbackStepDue(_) => "WinbackStepDue",
            BusEvent::CustomerReactivated { .. } => "CustomerReactivated",
            BusEvent::WinTakenBack { .. } => "WinTakenBack",
            BusEvent::SurveyAnswered { .. } => "SurveyAnswered",
            BusEvent::FollowUpNeeded { .. } => "FollowUpNeeded",
            BusEvent::CustomerSunset { .. } => "CustomerSunset",
            BusEvent::CustomerSuppressed { .. } => "CustomerSuppressed",
            BusEvent::ResolutionRequested { .. } => "ResolutionRequested",
        }
    }

    /// The EventBridge `detail` as JSON.
    pub fn detail_json(&self) -> String {
        let v = serde_json::to_value(self).expect("events serialize");
        v.get("detail").map(|d| d.to_string()).unwrap_or_default()
    }

    /// Rebuilds an event from `detail-type` and `detail`.
    pub fn from_parts(
        detail_type: &str,
        detail: serde_json::Value,
    ) -> Result<BusEvent, serde_json::Error> {
        serde_json::from_value(serde_json::json!({"detail-type": detail_type, "detail": detail}))
    }
}

/// An EventBridge envelope as it arrives in an SQS body.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub id: Option<String>,
    pub detail: serde_json::Value,
}
