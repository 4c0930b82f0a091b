//! Values read again after a while: the signing keys, so a key added or removed in Secrets
//! Manager takes effect within minutes instead of when the function's containers recycle.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// How often the functions read their secrets again.
pub const SECRET_REFRESH: Duration = Duration::minutes(5);
/// After a failed read, how long the keys read before are used until the next attempt.
pub const RETRY_AFTER_FAILURE: Duration = Duration::minutes(1);

type Loader<T, E> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, E>> + Send>> + Send + Sync>;

/// A value (the keys) that is loaded again once `every` has passed, judged by the `now` the
/// caller passes (the event's time on Lambda, an injected clock in tests). A failed load keeps
/// the value read before and is logged; it is tried again [`RETRY_AFTER_FAILURE`] later.
pub struct Refreshing<T, E> {
    state: Mutex<(Arc<T>, DateTime<Utc>)>,
    every: Duration,
    load: Option<Loader<T, E>>,
    reloading: tokio::sync::Mutex<()>,
}

impl<T, E: std::fmt::Display> Refreshing<T, E> {
    /// A value that never changes (keys from environment variables, tests).
    pub fn fixed(value: T) -> Self {
        Refreshing {
            state: Mutex::new((Arc::new(value), DateTime::<Utc>::MAX_UTC)),
            every: Duration::MAX,
            load: None,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// `value` was loaded at `loaded_at`; `load` reads it again once `every` has passed.
    pub fn new<F, Fut>(value: T, loaded_at: DateTime<Utc>, every: Duration, load: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        Refreshing {
            state: Mutex::new((Arc::new(value), loaded_at + every)),
            every,
            load: Some(Arc::new(move || Box::pin(load()))),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self, now: DateTime<Utc>) -> Result<Arc<T>, Arc<T>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now < state.1 {
            Ok(state.0.clone())
        } else {
            Err(state.0.clone())
        }
    }

    /// The value at `now`, loaded again first when it is due.
    pub async fn get(&self, now: DateTime<Utc>) -> Arc<T> {
        let Some(load) = &self.load else {
            return self.current(now).unwrap_or_else(|v| v);
        };
        if let Ok(v) = self.current(now) {
            return v;
        }
        // One load at a time; whoever waited finds it done.
        let _one = self.reloading.lock().await;
        let stale = match self.current(now) {
            Ok(v) => return v,
            Err(v) => v,
        };
        let (value, next) = match load().await {
            Ok(v) => (Arc::new(v), now + self.every),
            Err(e) => {
                tracing::warn!(
                    event = "secret_refresh_failed",
                    error = %e,
                    "keeping the keys read before"
                );
                (stale, now + RETRY_AFTER_FAILURE)
            }
        };
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (value.clone(), next);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn the_value_is_read_again_once_the_interval_has_passed_and_kept_when_a_read_fails() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let source = Arc::new(Mutex::new(Ok::<u32, String>(2)));
        let loads = Arc::new(AtomicU32::new(0));
        let (s, l) = (source.clone(), loads.clone());
        let r = Refreshing::new(1u32, t0, SECRET_REFRESH, move || {
            let v = s.lock().unwrap().clone();
            l.fetch_add(1, Ordering::SeqCst);
            async move { v }
        });
        assert_eq!(*r.get(t0 + Duration::minutes(4)).await, 1);
        assert_eq!(loads.load(Ordering::SeqCst), 0);
        assert_eq!(*r.get(t0 + Duration::minutes(5)).await, 2);
        assert_eq!(*r.get(t0 + Duration::minutes(9)).await, 2);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        *source.lock().unwrap() = Err("unreachable".into());
        assert_eq!(
            *r.get(t0 + Duration::minutes(10)).await,
            2,
            "kept on failure"
        );
        *source.lock().unwrap() = Ok(3);
        assert_eq!(*r.get(t0 + Duration::seconds(10 * 60 + 59)).await, 2);
        assert_eq!(
            *r.get(t0 + Duration::minutes(11)).await,
            3,
            "retried a minute later"
        );
        assert_eq!(loads.load(Ordering::SeqCst), 3);
        let fixed: Refreshing<u32, String> = Refreshing::fixed(7);
        assert_eq!(*fixed.get(DateTime::<Utc>::MAX_UTC).await, 7);
    }
}
