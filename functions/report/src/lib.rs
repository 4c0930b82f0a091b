//! What a marketer sees: the campaign report (text, and an HTML page with PNG charts that mail
//! clients show), the daily metrics behind the dashboard's first row, and the weekly email. All
//! three show the figures of [`shared::domain::figures`], formatted here once.
//!
//! The `report` Lambda runs once a day on its own schedule: it publishes the metrics, and on
//! Mondays, when `REPORT_RECIPIENTS` names anyone, it emails the report.

pub mod charts;
pub mod email;
pub mod error;
pub mod lambda;
pub mod model;
pub mod page;
pub mod program;
pub mod publish;
pub mod run;

pub use error::ReportError;
pub use model::{Report, StepRow, VariantRow};
pub use program::Program;
