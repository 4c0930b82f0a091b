//! Tests of the domain's rules under the shipped example campaign.

mod due;
mod eligibility;
mod engagement;
mod enroll;
mod outlook;
mod reward;
mod send;
mod sequence;
