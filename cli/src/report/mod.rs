//! The campaign report: the `report` crate's, which the report Lambda's weekly email shares,
//! and the SVG charts of the CLI's other pages.

pub mod html;

pub use report::model::*;
pub use report::page::{Extra, FlowSection};
pub use report::Program;
