//! Values read again after a while: the signing keys, so a key added or removed in Secrets
//! Manager takes effect within minutes instead of when the function's containers recycle.
//!
//! The rule:
//!
//! - every [`SECRET_REFRESH`] the keys are read again **in the background**, with a time limit
//!   of [`REFRESH_LIMIT`]: a request never waits for Secrets Manager while its keys are recent,
//!   so a stalled Secrets Manager cannot hold it past the function's timeout;
//! - a failed or timed-out read keeps the keys read before, is logged (`secret_refresh_failed`),
//!   counted (`SecretRefreshFailures` by `Service`, which an alarm watches) and tried again
//!   [`RETRY_AFTER_FAILURE`] later;
//! - keys that no read has confirmed for [`MAX_AGE`] are not used any more: the next request
//!   reads them itself (within the same limit) and, when that fails too, is refused as
//!   unavailable (the webhook answers 503, the sender hands its batch back). So a key removed
//!   from the secret stops working within 5 minutes while Secrets Manager answers, and within
//!   [`MAX_AGE`] when it does not: a failing refresh never keeps a removed key valid for longer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::emf::{MetricSink, Record};

/// How often the functions read their secrets again.
pub const SECRET_REFRESH: Duration = Duration::minutes(5);
/// After a failed read, how long until the next attempt.
pub const RETRY_AFTER_FAILURE: Duration = Duration::minutes(1);
/// How long one read may take before it counts as failed.
pub const REFRESH_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);
/// Keys no successful read has confirmed for this long are refused (fail closed).
pub const MAX_AGE: Duration = Duration::minutes(30);
/// The metric counted per failed read (dimension `Service`; alarmed in template.yaml).
pub const REFRESH_FAILURES: &str = crate::telemetry::metric::webhook::SECRET_REFRESH_FAILURES;

type Loader<T, E> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, E>> + Send>> + Send + Sync>;

/// Keys past [`MAX_AGE`] that could not be read again: the last ones read, and their age.
#[derive(Debug)]
pub struct TooOld<T> {
    pub stale: Arc<T>,
    pub age: Duration,
}

struct State<T> {
    value: Arc<T>,
    /// When a read last succeeded (the caller's `now` of the request that started it).
    loaded_at: DateTime<Utc>,
    /// When the next background read is due.
    next_try: DateTime<Utc>,
    in_flight: bool,
}

struct Shared<T, E> {
    state: Mutex<State<T>>,
    every: Duration,
    load: Option<Loader<T, E>>,
    /// One read at a time by a request that must wait for it.
    inline: tokio::sync::Mutex<()>,
    /// Where failed reads are counted, and the `Service` they are counted for.
    metrics: Option<(Arc<dyn MetricSink>, String)>,
}

/// A value (the keys) that is read again once `every` has passed, judged by the `now` the
/// caller passes (the event's time on Lambda, an injected clock in tests); see the module's
/// rule.
pub struct Refreshing<T, E> {
    shared: Arc<Shared<T, E>>,
}

impl<T: Send + Sync + 'static, E: std::fmt::Display + Send + 'static> Refreshing<T, E> {
    /// A value that never changes (keys from environment variables, tests).
    pub fn fixed(value: T) -> Self {
        Refreshing {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    value: Arc::new(value),
                    loaded_at: DateTime::<Utc>::MAX_UTC,
                    next_try: DateTime::<Utc>::MAX_UTC,
                    in_flight: false,
                }),
                every: Duration::MAX,
                load: None,
                inline: tokio::sync::Mutex::new(()),
                metrics: None,
            }),
        }
    }

    /// `value` was read at `loaded_at`; `load` reads it again once `every` has passed.
    pub fn new<F, Fut>(value: T, loaded_at: DateTime<Utc>, every: Duration, load: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        Refreshing {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    value: Arc::new(value),
                    loaded_at,
                    next_try: loaded_at + every,
                    in_flight: false,
                }),
                every,
                load: Some(Arc::new(move || Box::pin(load()))),
                inline: tokio::sync::Mutex::new(()),
                metrics: None,
            }),
        }
    }

    /// Counts failed reads as [`REFRESH_FAILURES`] with `Service=service` in `sink`.
    pub fn reporting(mut self, sink: Arc<dyn MetricSink>, service: &str) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.metrics = Some((sink, service.to_string()));
        }
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value at `now`. While it is recent, at once (a read that is due starts in the
    /// background); past [`MAX_AGE`] only once a read made now succeeds, else [`TooOld`].
    pub async fn get(&self, now: DateTime<Utc>) -> Result<Arc<T>, TooOld<T>> {
        if self.shared.load.is_none() {
            return Ok(self.lock().value.clone());
        }
        let (value, fresh, due) = {
            let mut st = self.lock();
            let fresh = now - st.loaded_at <= MAX_AGE;
            let due = fresh && now >= st.next_try && !st.in_flight;
            if due {
                st.in_flight = true;
            }
            (st.value.clone(), fresh, due)
        };
        if fresh {
            if due {
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    let _ = shared.read(now).await;
                });
            }
            return Ok(value);
        }
        // Too old to use: read now (one request at a time; whoever waited may find it done).
        let _one = self.shared.inline.lock().await;
        {
            let st = self.lock();
            if now - st.loaded_at <= MAX_AGE {
                return Ok(st.value.clone());
            }
        }
        match self.shared.read(now).await {
            Some(v) => Ok(v),
            None => {
                let st = self.lock();
                tracing::error!(
                    event = "keys_too_old",
                    minutes = (now - st.loaded_at).num_minutes(),
                    "no read of the secrets has succeeded for longer than they may be used: refusing"
                );
                Err(TooOld {
                    stale: st.value.clone(),
                    age: now - st.loaded_at,
                })
            }
        }
    }

    /// Waits until no background read is in flight (tests, which inject the clock).
    pub async fn settled(&self) {
        for _ in 0..5000 {
            if !self.lock().in_flight {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}

impl<T, E: std::fmt::Display> Shared<T, E> {
    /// One read within [`REFRESH_LIMIT`]: the new value, or `None` (logged and counted).
    async fn read(&self, now: DateTime<Utc>) -> Option<Arc<T>> {
        let load = self.load.as_ref()?;
        let out = tokio::time::timeout(REFRESH_LIMIT, load()).await;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.in_flight = false;
        let why = match out {
            Ok(Ok(v)) => {
                st.value = Arc::new(v);
                st.loaded_at = st.loaded_at.max(now);
                st.next_try = now + self.every;
                return Some(st.value.clone());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", REFRESH_LIMIT.as_secs()),
        };
        st.next_try = now + RETRY_AFTER_FAILURE;
        let age = now - st.loaded_at;
        drop(st);
        tracing::warn!(
            event = "secret_refresh_failed",
            error = %why,
            minutes_since_last_read = age.num_minutes(),
            "keeping the keys read before"
        );
        if let Some((sink, service)) = &self.metrics {
            sink.record(
                Record::new(&[("Service", service)]).count(REFRESH_FAILURES, 1),
                now.timestamp_millis(),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emf::MemoryMetrics;
    use chrono::TimeZone;
    use std::sync::atomic::{AtomicU32, Ordering};

    type Source = Arc<Mutex<Result<u32, String>>>;

    fn refreshing(
        source: &Source,
        loads: &Arc<AtomicU32>,
        t0: DateTime<Utc>,
    ) -> Refreshing<u32, String> {
        let (s, l) = (source.clone(), loads.clone());
        Refreshing::new(1u32, t0, SECRET_REFRESH, move || {
            let v = s.lock().unwrap().clone();
            l.fetch_add(1, Ordering::SeqCst);
            async move { v }
        })
    }

    async fn at(r: &Refreshing<u32, String>, t: DateTime<Utc>) -> Result<u32, u32> {
        let v = r.get(t).await.map(|v| *v).map_err(|e| *e.stale);
        r.settled().await;
        v
    }

    #[tokio::test]
    async fn the_value_is_read_again_in_the_background_and_kept_when_a_read_fails() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let source: Source = Arc::new(Mutex::new(Ok(2)));
        let loads = Arc::new(AtomicU32::new(0));
        let metrics = Arc::new(MemoryMetrics::default());
        let r = refreshing(&source, &loads, t0).reporting(metrics.clone(), "webhook");
        assert_eq!(at(&r, t0 + Duration::minutes(4)).await, Ok(1));
        assert_eq!(loads.load(Ordering::SeqCst), 0);
        // Due: this request gets the value it has; the read goes on in the background.
        assert_eq!(at(&r, t0 + Duration::minutes(5)).await, Ok(1));
        assert_eq!(at(&r, t0 + Duration::minutes(6)).await, Ok(2));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        *source.lock().unwrap() = Err("unreachable".into());
        assert_eq!(
            at(&r, t0 + Duration::minutes(11)).await,
            Ok(2),
            "kept on failure"
        );
        assert_eq!(
            metrics.sum(REFRESH_FAILURES, &[("Service", "webhook")]),
            1.0
        );
        *source.lock().unwrap() = Ok(3);
        assert_eq!(at(&r, t0 + Duration::seconds(11 * 60 + 59)).await, Ok(2));
        assert_eq!(loads.load(Ordering::SeqCst), 2, "not before a minute");
        assert_eq!(at(&r, t0 + Duration::minutes(12)).await, Ok(2));
        assert_eq!(
            at(&r, t0 + Duration::minutes(12)).await,
            Ok(3),
            "retried a minute later"
        );
        assert_eq!(loads.load(Ordering::SeqCst), 3);
        let fixed: Refreshing<u32, String> = Refreshing::fixed(7);
        assert_eq!(*fixed.get(DateTime::<Utc>::MAX_UTC).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_stalled_read_never_holds_a_request_and_counts_as_failed() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let metrics = Arc::new(MemoryMetrics::default());
        let r: Refreshing<u32, String> = Refreshing::new(1, t0, SECRET_REFRESH, || async {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            Ok(2)
        })
        .reporting(metrics.clone(), "sender");
        let started = std::time::Instant::now();
        assert_eq!(*r.get(t0 + Duration::minutes(6)).await.unwrap(), 1);
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        r.settled().await;
        assert!(
            started.elapsed() < REFRESH_LIMIT + std::time::Duration::from_secs(2),
            "given up at the limit"
        );
        assert_eq!(metrics.sum(REFRESH_FAILURES, &[("Service", "sender")]), 1.0);
    }

    #[tokio::test]
    async fn keys_no_read_has_confirmed_for_the_max_age_are_refused_until_a_read_succeeds() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let source: Source = Arc::new(Mutex::new(Err("Secrets Manager is down".into())));
        let loads = Arc::new(AtomicU32::new(0));
        let r = refreshing(&source, &loads, t0);
        // Failing reads keep the old value while it is within the max age...
        for m in (5..=30).step_by(5) {
            assert_eq!(at(&r, t0 + Duration::minutes(m)).await, Ok(1), "minute {m}");
        }
        // ...and past it, the value is refused (its stale copy is handed back only as that).
        let late = t0 + MAX_AGE + Duration::minutes(1);
        assert_eq!(at(&r, late).await, Err(1));
        assert_eq!(at(&r, late + Duration::minutes(20)).await, Err(1));
        // A read made by the request itself (it waits, within the limit) ends the refusal.
        *source.lock().unwrap() = Ok(5);
        assert_eq!(at(&r, late + Duration::minutes(21)).await, Ok(5));
        // An idle container's first request past the max age reads inline too.
        let idle = late + Duration::minutes(21) + MAX_AGE + Duration::minutes(5);
        *source.lock().unwrap() = Ok(6);
        assert_eq!(at(&r, idle).await, Ok(6));
    }
}
