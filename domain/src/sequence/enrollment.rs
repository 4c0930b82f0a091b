//! An enrollment: one customer's pass through one flow of a campaign, where it stands, and the
//! emails it sent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::flows::Flow;
use crate::edge::CustomerId;
use crate::experiment::Group;
use crate::survey::{Reason, Resolved};

/// Why an enrollment ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Unsubscribed,
    Suppressed,
    /// A survey reason the campaign pauses for (e.g. quality) until it is resolved.
    Paused,
    Erased,
    /// Ordered after the attribution window: the sequence stops, but it is not a win.
    OrderedAfterWindow,
    /// A login or renewal the campaign counts as "still with us" (`sending.still_with_us`):
    /// the sequence stops, and it is not a win either.
    StillWithUs,
    /// Won back, then every order counted for the win was refunded or cancelled within the
    /// attribution window: no longer a win.
    Refunded,
}

/// Where an enrollment stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// Step `next_step` (1-based) is due at the enrollment's `due_at`.
    Active {
        next_step: u8,
    },
    /// The last step went out; at `due_at` the enrollment ends (sunset, or closed for those who
    /// chose fewer emails and in the at-risk flow) unless the customer orders, unsubscribes or is
    /// suppressed first.
    AwaitingSunset,
    /// Holdout: no email; the window closes at `due_at`.
    Holdout,
    WonBack {
        at: DateTime<Utc>,
    },
    Sunset {
        at: DateTime<Utc>,
    },
    /// The holdout window closed without an order, or the sequence of a customer who chose
    /// fewer emails ended without a reaction (the address is kept, not sunset).
    Closed {
        at: DateTime<Utc>,
    },
    Exited {
        reason: ExitReason,
        at: DateTime<Utc>,
    },
}

impl Status {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Status::WonBack { .. }
                | Status::Sunset { .. }
                | Status::Closed { .. }
                | Status::Exited { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Status::Active { .. } => "active",
            Status::AwaitingSunset => "awaiting_sunset",
            Status::Holdout => "holdout",
            Status::WonBack { .. } => "won_back",
            Status::Sunset { .. } => "sunset",
            Status::Closed { .. } => "closed",
            Status::Exited { .. } => "exited",
        }
    }
}

/// A send in progress: the lease that keeps a second sender off the same step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub step: u8,
    pub token: String,
    pub lease_until: DateTime<Utc>,
    /// The reward code chosen for this send, so a take-over reuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_code: Option<String>,
}

/// One email that went out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentStep {
    pub step: u8,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// How many counted orders an enrollment keeps: the win, and the latest later ones.
pub const COUNTED_ORDERS: usize = 20;

/// An order counted for an enrollment (its revenue is in the counters), and what of it was
/// refunded since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountedOrder {
    /// The shop's id of the order, the one its refunds name.
    pub order_id: String,
    pub at: DateTime<Utc>,
    /// The order's amount, in minor units of `currency`.
    pub minor: i64,
    pub currency: String,
    /// How much of it was refunded, in minor units of `currency` (at most `minor`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refunded_minor: i64,
    /// The platform's ids of the refunds `refunded_minor` counts (the latest
    /// [`crate::refund::REFUND_IDS`]), so a refund delivered twice, by two topics, counts once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refund_ids: Vec<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl CountedOrder {
    /// Whether nothing of the order is left.
    pub fn wholly_refunded(&self) -> bool {
        self.refunded_minor >= self.minor
    }
}

/// The id of a customer's `round`-th enrollment in `campaign`.
pub fn enrollment_id(customer_id: &str, campaign: &str, round: u32) -> String {
    format!("{customer_id}#{campaign}#{round}")
}

/// One customer's pass through one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub customer_id: CustomerId,
    pub campaign: String,
    /// `<customer>#<campaign>#<n>`: unique across re-enrollments.
    pub id: String,
    /// Optimistic-concurrency version; 0 means "not stored yet".
    #[serde(default)]
    pub version: u64,
    /// How many times this customer has been enrolled in this campaign, this one included.
    pub round: u32,
    pub group: Group,
    pub variant: String,
    pub enrolled_at: DateTime<Utc>,
    pub status: Status,
    /// When the scheduler should next act (drives the due index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// The step whose `WinbackStepDue` was last published, to avoid publishing it every run.
    #[serde(default)]
    pub published_step: u8,
    /// When `published_step` was handed to the sender. The next step's delay counts from here,
    /// so the sender's mark keeps the due time the scheduler set (and the due index unwritten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sent: Vec<SentStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nps: Option<u8>,
    /// Revenue from orders after winning back, in minor units.
    #[serde(default)]
    pub revenue_minor: i64,
    /// The orders counted for this enrollment (the one that won the customer back first, then
    /// later ones, at most [`COUNTED_ORDERS`]), so that a refund finds what it takes back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<CountedOrder>,
    /// A paused reason the shop has fixed: the first step tells the customer (the campaign's
    /// `resolved_template` instead of the step's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolved>,
    /// The sequence this enrollment follows.
    #[serde(default, skip_serializing_if = "Flow::is_win_back")]
    pub flow: Flow,
    /// What a celebration enrollment celebrates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occasion: Option<crate::celebration::Occasion>,
    /// The customer's kind of inactivity when enrolled (see `domain::engagement`): the
    /// templates see it as `segment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
    /// What the targeting decision gave this customer, when it was not what the rules give
    /// (the features it was made on are the profile's `enrolled_on`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment: Option<crate::targeting::Treatment>,
}

/// How a quiet customer has been (not) responding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Was emailed and never opened one: does not read the emails.
    NeverOpened,
    /// Opens, never clicks: reads, but the emails do not speak to them.
    OpenedNotClicked,
    /// Clicked after their last order and did not buy: interested, something held them back.
    ClickedNotBought,
    /// Still buys, less often than before.
    BuysLessOften,
}

impl Segment {
    pub const ALL: [Segment; 4] = [
        Segment::NeverOpened,
        Segment::OpenedNotClicked,
        Segment::ClickedNotBought,
        Segment::BuysLessOften,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::NeverOpened => "never_opened",
            Segment::OpenedNotClicked => "opened_not_clicked",
            Segment::ClickedNotBought => "clicked_not_bought",
            Segment::BuysLessOften => "buys_less_often",
        }
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
