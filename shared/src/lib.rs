//! Everything the winback functions share around the pure domain (the `winback-domain` crate,
//! re-exported here as [`domain`] and [`events`]): campaign configuration, ports and their
//! adapters, settings and secrets, the AWS SDK's configuration, logging, link and webhook
//! signing, and metrics output.

pub mod adapters;
pub mod aws;
/// The pure domain (`winback-domain`).
pub use domain;
/// The events the product publishes (`winback-domain`).
pub use domain::events;
pub mod campaign;
#[cfg(test)]
mod domain_tests;
pub mod emf;
pub mod entropy;
pub mod fitted;
pub mod logging;
pub mod platforms;
pub mod ports;
pub mod pseudonym;
pub mod publish;
pub mod refresh;
pub mod retry;
pub mod ses_tags;
pub mod settings;
pub mod signing;
pub mod telemetry;
