//! What the sender needs, built once at cold start.

use std::sync::Arc;

use chrono::Duration;
use shared::campaign::Campaign;
use shared::emf::MetricSink;
use shared::ports::{Checkout, Mailer, SenderStore};
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
    /// The shop's checkout, where a reward code is created before the email that carries it
    /// (`[checkout]` shopify, woocommerce or stripe). `None`: nothing is created (a generic
    /// checkout asks winback through the reserve route); the function refuses to start with a
    /// platform campaign and no connection.
    pub checkout: Option<Arc<dyn Checkout>>,
}
