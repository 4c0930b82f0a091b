//! The one retry policy of the product's own loops, and how it stacks on the AWS SDK's.
//!
//! Two kinds of loop retry in this code base, and both take their numbers from here:
//!
//! - **Waiting retries** ([`RetryPolicy`]): a call that failed for a reason that passes (a bus
//!   entry refused, a write whose answer was lost) is tried again after an exponential backoff,
//!   `base_delay`, then twice that, and so on, at most `attempts` times in all.
//!   [`RetryPolicy::DEFAULT`] (5 attempts, 50 ms doubling: at most 750 ms of waiting) publishes
//!   events; [`RetryPolicy::ACKNOWLEDGED_WRITE`] (6 attempts, 40 ms doubling: at most 1.2 s)
//!   looks for a write whose answer was lost (the sender's mark after SES accepted an email, the
//!   scheduler's publish), which is worth waiting a little longer for.
//! - **Conflict retries** ([`CONFLICT_ATTEMPTS`]): a read-modify-write that lost an optimistic
//!   concurrency race reads again at once and re-applies its change ([`crate::ports::update`]);
//!   no wait, since the other writer has finished. The DynamoDB adapter's idempotency claim is
//!   one too: a claim that lost reads the key, and claims it again when it was released between.
//!
//! **How this stacks on the SDK.** Every AWS client is built with the SDK's standard retry mode
//! (3 attempts per call, exponential backoff with jitter, for throttling, 5xx and timeouts) and
//! its time limits (see [`crate::aws`]: 5 s an attempt, 10 s a call with its retries). One
//! attempt of ours is therefore one SDK call of up to 3 tries: the sender's mark can reach
//! 6 × 3 = 18 DynamoDB requests, publishing 5 × 3 = 15 PutEvents requests per batch of 10, and a
//! conflict loop 5 × 3 per read and write. Our loops retry what the SDK cannot (a conflict, a
//! per-entry failure inside a successful PutEvents, an answer lost after the write went through);
//! the SDK retries the transport. Not yet on this policy: the DynamoDB adapter's batch calls,
//! which retry unprocessed items on their own capped schedule (`BatchWriteItem` and
//! `BatchGetItem`: 8 attempts each, doubling from a base delay up to 32 or 64 times it).

use std::time::Duration;

/// How many times a read-modify-write that lost a concurrency race is tried in all.
pub const CONFLICT_ATTEMPTS: u32 = 5;

/// How hard a waiting retry tries: `attempts` in all, `base_delay` after the first failure,
/// doubling after each further one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
}

impl RetryPolicy {
    /// Publishing on the bus, and any waiting retry without a reason to differ.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        attempts: 5,
        base_delay: Duration::from_millis(50),
    };

    /// Looking for a write whose answer was lost (see the module's documentation).
    pub const ACKNOWLEDGED_WRITE: RetryPolicy = RetryPolicy {
        attempts: 6,
        base_delay: Duration::from_millis(40),
    };

    /// The wait after failed attempt `attempt` (1-based) before the next one.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        self.base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
    }

    /// Waits [`Self::delay_after`] `attempt` (not at all with a zero base delay).
    pub async fn pause_after(&self, attempt: u32) {
        let delay = self.delay_after(attempt);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_the_base_after_each_failed_attempt() {
        let p = RetryPolicy::DEFAULT;
        let waits: Vec<u128> = (1..p.attempts)
            .map(|a| p.delay_after(a).as_millis())
            .collect();
        assert_eq!(waits, [50, 100, 200, 400]);
        let m = RetryPolicy::ACKNOWLEDGED_WRITE;
        let total: u128 = (1..m.attempts).map(|a| m.delay_after(a).as_millis()).sum();
        assert_eq!(total, 40 + 80 + 160 + 320 + 640);
    }
}
