//! A client-side send-rate limit (the SES maximum send rate) that holds across a batch and
//! across concurrent sends in one process.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces sends at least `1 / rate` seconds apart. `None` rate means no limit.
pub struct RateLimiter {
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// At most `per_second` sends a second; `None` or 0 for no limit.
    pub fn new(per_second: Option<f64>) -> RateLimiter {
        RateLimiter {
            interval: per_second
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Mutex::new(None),
        }
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let wait_until = {
            let mut next = self.next.lock().expect("limiter lock");
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(wait_until).await;
    }

    /// After a throttle: skip one slot to let the service recover.
    pub fn slow_down(&self) {
        if let Some(interval) = self.interval {
            let mut next = self.next.lock().expect("limiter lock");
            let now = Instant::now();
            *next = Some(next.map_or(now, |n| n.max(now)) + interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sends_are_spaced_by_the_rate() {
        let l = RateLimiter::new(Some(10.0));
        let start = Instant::now();
        for _ in 0..11 {
            l.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1000), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_means_no_wait() {
        let l = RateLimiter::new(None);
        let start = Instant::now();
        for _ in 0..100 {
            l.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
