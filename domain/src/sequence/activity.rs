//! What the shop reports a customer did.

use serde::{Deserialize, Serialize};

/// What the shop reports a customer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Order,
    Login,
    SubscriptionRenewed,
    SubscriptionCancelled,
    /// Profile fields only (a platform's customer record): no activity. Not part of the JSON
    /// contract; only the platform webhooks produce it.
    Profile,
    /// A subscription renews soon (Stripe `invoice.upcoming`): an early signal, not activity.
    RenewalUpcoming,
    /// A visit to a page of the shop (`page_kind`): the terms or cancellation page is an early
    /// signal (see `domain::engagement`).
    PageView,
    /// An order refunded (wholly or in part) or cancelled (`refund`): its revenue comes off, and
    /// a win whose every counted order it took back is no longer a win (`domain::refund`).
    Refund,
}

impl ActivityKind {
    pub fn parse(s: &str) -> Option<ActivityKind> {
        match s {
            "order" => Some(ActivityKind::Order),
            "login" => Some(ActivityKind::Login),
            "subscription_renewed" => Some(ActivityKind::SubscriptionRenewed),
            "subscription_cancelled" => Some(ActivityKind::SubscriptionCancelled),
            "page_view" => Some(ActivityKind::PageView),
            "refund" => Some(ActivityKind::Refund),
            _ => None,
        }
    }
}
