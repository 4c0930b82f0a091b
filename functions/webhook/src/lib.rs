//! The webhook function: the shop's activity (orders, logins, renewals), the links in emails
//! (survey answers, unsubscribe, fewer emails), reward look-ups for the shop's checkout, erasure
//! requests, and SES feedback (bounces, complaints, deliveries, opens, clicks) from EventBridge.
//!
//! One Lambda serves both: [`handle`] tells a Function URL / HTTP API v2 request from an SES event.
//! The handlers decide nothing the domain can decide (`winback_domain::activity::decide` for the
//! shop's activity): they validate everything before they write, write with versioned saves
//! (`shared::ports::update`, which reads again after a lost race), count in the metrics store,
//! and print one EMF record per counter change.
//!
//! [`router`] picks the handler; `http` holds the request and response types ([`HttpRequest`],
//! [`HttpResponse`]); `deps` what every handler is given ([`Deps`]) and what can go wrong
//! ([`WebhookError`]); `extract` reads signed requests and link tokens once, for every handler.
//!
//! # Responses of `POST /v1/activity`
//!
//! `200` with `{"status": "recorded", "event_id", "customer_id", "reactivated": bool, "reward"?}`.
//! A `reward_code` that cannot be redeemed (already used, expired, another customer's, unknown) does
//! not refuse the order: the order is recorded and `reward` says
//! `{"code", "status": "refused", "code_status": "redeemed"|"expired"|"other_customer"|"unknown",
//! "error"}`; a redeemed one says `{"code", "status": "redeemed"}`. A 4xx always means nothing was
//! written, so the shop can retry it after fixing the request. A replayed `event_id` answers `200`
//! with the first answer and `"duplicate": true`; one still being processed answers `409`.

mod activity;
mod deps;
mod extract;
pub mod follow_up;
mod http;
pub mod lambda;
mod links;
pub mod pages;
mod platforms;
mod report;
pub mod resolve;
pub mod router;
mod ses;
mod signed;
mod telemetry;

pub use deps::{Deps, WebhookError};
pub use http::{HttpRequest, HttpResponse, MAX_BODY_BYTES, PLATFORM_MAX_BODY_BYTES};
pub use router::{handle, handle_http, handle_ses_event, Service};
pub use shared::refresh::Refreshing;
pub use shared::settings::{Keys, PlatformKeys};
