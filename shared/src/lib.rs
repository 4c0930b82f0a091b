//! Everything the winback functions share: the pure domain, campaign configuration, ports and
//! their adapters, link and webhook signing, and metrics output.

pub mod adapters;
pub mod campaign;
pub mod domain;
pub mod emf;
pub mod events;
pub mod fitted;
pub mod ports;
pub mod publish;
pub mod refresh;
pub mod retry;
pub mod ses_tags;
pub mod settings;
pub mod signing;
