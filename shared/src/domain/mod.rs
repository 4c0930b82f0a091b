//! The pure core: plain functions over plain data. No I/O, no clock.

pub mod celebration;
pub mod customer;
pub mod due;
pub mod edge;
pub mod eligibility;
pub mod engagement;
pub mod experiment;
pub mod follow_up;
pub mod hygiene;
pub mod lapse;
pub mod metrics;
pub mod model;
pub mod money;
pub mod outlook;
pub mod priority;
pub mod reward;
pub mod schedule;
pub mod send;
pub mod sequence;
pub mod survey;
pub mod zone;
