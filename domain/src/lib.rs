//! winback's domain: plain functions over plain data, and the events the product publishes.
//!
//! Cargo keeps it pure: this crate depends on no AWS SDK, no async runtime, no HTTP client and
//! no source of randomness, and its `chrono` has no clock. Whoever calls it passes the time
//! (`now`) and any random draw in; the functions, `winback plan` and `winback simulate` then get
//! the same answer from the same facts.

#[macro_use]
mod macros;

pub mod activity;
pub mod celebration;
pub mod checkout;
pub mod customer;
pub mod due;
pub mod edge;
pub mod eligibility;
pub mod engagement;
pub mod enroll;
pub mod events;
pub mod experiment;
pub mod feedback;
pub mod figures;
pub mod follow_up;
pub mod hygiene;
pub mod lapse;
pub mod metrics;
pub mod model;
pub mod money;
pub mod outlook;
pub mod priority;
pub mod refund;
pub mod reward;
pub mod rhythm;
pub mod schedule;
pub mod send;
pub mod sequence;
pub mod survey;
pub mod targeting;
pub mod uplift;
pub mod zone;
