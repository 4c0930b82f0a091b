//! What the sender needs, built once at cold start.

use std::sync::Arc;

use chrono::Duration;
use shared::campaign::Campaign;
use shared::emf::MetricSink;
use shared::ports::{Mailer, SenderStore};
use shared::signing::LinkKeys;

use crate::rate::RateLimiter;

/// What the sender needs, built once at cold start.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn SenderStore>,
    pub mailer: Arc<dyn Mailer>,
    pub campaign: Arc<Campaign>,
    pub metrics: Arc<dyn MetricSink>,
    /// The link-token keys, newest first (the newest signs).
    pub link_keys: LinkKeys,
    /// The webhook's public URL, without a trailing slash.
    pub public_base_url: String,
    pub sender_address: String,
    pub limiter: Arc<RateLimiter>,
    /// How long a claim keeps other senders off a step.
    pub lease: Duration,
}
