//! The scheduler's input: the invocation's payload, and how long a run may take.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::SchedulerError;

/// Which work a run does.
pub use shared::ports::RunMode as Mode;

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub now: DateTime<Utc>,
    pub mode: Mode,
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop (with a checkpoint) once this instant is reached.
    pub stop_at: Option<Instant>,
    /// Stop (with a checkpoint) after this many items: lets tests cut a run deterministically.
    pub max_items: Option<u64>,
}

/// What a run may use when the invocation's deadline is absent, already past, or shorter than
/// any real Lambda timeout (local runners can send such deadlines).
pub const DEFAULT_RUN_TIME: Duration = Duration::from_secs(60);
/// A deadline with less than this left is not a real Lambda deadline (the shortest timeout is 1 s).
const SHORTEST_REAL_DEADLINE: Duration = Duration::from_secs(1);

impl Budget {
    pub fn unlimited() -> Budget {
        Budget {
            stop_at: None,
            max_items: None,
        }
    }

    /// The budget of an invocation started at `started` with `left` until its deadline: the time
    /// left less a margin for the checkpoint write (10 s, or a quarter of a short deadline), or
    /// [`DEFAULT_RUN_TIME`] when the deadline is absent, past or unrealistically short.
    pub fn from_deadline(left: Option<Duration>, started: Instant) -> Budget {
        let left = left
            .filter(|l| *l >= SHORTEST_REAL_DEADLINE)
            .unwrap_or(DEFAULT_RUN_TIME);
        let margin = Duration::from_secs(10).min(left / 4);
        Budget {
            stop_at: Some(started + left.saturating_sub(margin)),
            max_items: None,
        }
    }

    /// Whether the budget is spent after `seen` items.
    pub(crate) fn spent(&self, seen: u64) -> bool {
        self.max_items.is_some_and(|m| seen >= m)
            || self.stop_at.is_some_and(|t| Instant::now() >= t)
    }
}

/// Reads the Lambda payload: a scheduled event (its `time`), optionally with `"mode": "rebuild"`.
/// A bare `{"mode": "rebuild"}` without `time` uses `fallback_now` (the invocation time).
pub fn parse_input(
    event: &serde_json::Value,
    fallback_now: Option<DateTime<Utc>>,
) -> Result<Input, SchedulerError> {
    let mode = match event
        .get("mode")
        .or_else(|| event.get("detail").and_then(|d| d.get("mode")))
    {
        None | Some(serde_json::Value::Null) => Mode::Due,
        Some(serde_json::Value::String(m)) if m == "rebuild" => Mode::Rebuild,
        Some(serde_json::Value::String(m)) if m == "due" => Mode::Due,
        Some(other) => {
            return Err(SchedulerError::UnknownMode(
                other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_string),
            ))
        }
    };
    let now = match event.get("time").and_then(|t| t.as_str()) {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map_err(|e| SchedulerError::BadTime(format!("{t}: {e}")))?
            .with_timezone(&Utc),
        None => match (mode, fallback_now) {
            (Mode::Rebuild, Some(now)) => now,
            _ => return Err(SchedulerError::MissingTime),
        },
    };
    Ok(Input { now, mode })
}
