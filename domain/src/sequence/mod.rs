//! An enrollment and its sequence: enrolled → step 1..N → won back | sunset | exited.
//!
//! Every change goes through a method that returns an error for an illegal transition; a final
//! state accepts none.
//!
//! The sequence's parts: [`Enrollment`] and where it stands ([`Status`]), the transitions between
//! them, the [`Flow`]s and what they need of a campaign ([`Flows`], [`StepConfig`],
//! [`SendingPolicy`]), and what the shop's reports of a customer's activity do to an enrollment
//! ([`attribute`]).

mod activity;
mod attribution;
mod config;
mod enrollment;
mod flows;
mod transitions;

pub use activity::ActivityKind;
pub use attribution::{activity_effect, attribute, ActivityEffect, Attribution, TakenBack};
pub use config::{AtRiskFlow, CelebrationFlow, SendingPolicy, StepConfig};
pub use enrollment::{
    enrollment_id, Claim, CountedOrder, Enrollment, ExitReason, Segment, SentStep, Status,
    COUNTED_ORDERS,
};
pub use flows::{assign, cohort_campaign, delay_factor, flow_days, sequence_days, Flow, Flows};
pub use transitions::{sends_step, sunsets_address, TransitionError};
