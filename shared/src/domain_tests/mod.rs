//! Tests of the domain's rules under the shipped example campaign.

mod due;
mod eligibility;
mod engagement;
mod enroll;
mod outlook;
mod reward;
mod rhythm;
mod send;
mod sequence;

use crate::domain::customer::OrderRecord;
use crate::domain::money::Money;
use chrono::{DateTime, Utc};

/// An order of `amount` minor units at `at`, in the profile's currency, with no product.
fn order_at(at: DateTime<Utc>, amount: i64) -> OrderRecord {
    OrderRecord {
        at,
        amount: Money(amount),
        product: None,
        category: None,
        currency: None,
        order_id: None,
        refunded: Default::default(),
        refund_ids: Vec::new(),
        lines: Vec::new(),
    }
}
