//! The scheduler: finds customers who are due (through the sparse due index), enrolls the
//! eligible lapsed ones, and publishes one `WinbackStepDue` per due step.
//!
//! Its "now" is the scheduled event's `time`. A run that nears the Lambda deadline saves a
//! checkpoint and stops; the next invocation resumes from it before starting its own work, so no
//! customer is skipped or repeated.

mod input;
pub mod lambda;
mod refit;
pub mod resolve;
mod run;
mod summary;
mod telemetry;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shared::campaign::CampaignConfig;
use shared::emf::MetricSink;
use shared::ports::{Checkpoint, EventBus, SchedulerStore, StoreError};
use shared::retry::RetryPolicy;

pub use input::{parse_input, Budget, Input, Mode, DEFAULT_RUN_TIME};
pub use run::REBUILD_SEGMENTS;
pub use summary::{FlowSummary, Summary};

/// What the scheduler needs, built once at cold start.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn SchedulerStore>,
    pub bus: Arc<dyn EventBus>,
    pub campaign: Arc<CampaignConfig>,
    pub metrics: Arc<dyn MetricSink>,
    pub retry: RetryPolicy,
}

/// Errors of a run. Bad input changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("the scheduled event has no `time`: invoke with an EventBridge scheduled event, or {{\"mode\": \"rebuild\", \"time\": \"<RFC 3339>\"}}")]
    MissingTime,
    #[error("`time` is not an RFC 3339 timestamp: {0}")]
    BadTime(String),
    #[error("unknown mode `{0}`: use \"rebuild\" or leave it out")]
    UnknownMode(String),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("{0} events could not be published after retries")]
    Publish(usize),
}

/// Handles one invocation's payload: a `ResolutionRequested` event from the bus (see
/// [`resolve`]), else a scheduled run ([`parse_input`], then [`run`]). Answers what was done.
pub async fn handle(
    deps: &Deps,
    payload: &serde_json::Value,
    invoked_at: DateTime<Utc>,
    budget: Budget,
) -> Result<serde_json::Value, SchedulerError> {
    if let Some(r) = resolve::requested(payload) {
        let done = resolve::resolve_within(
            deps.store.as_ref(),
            r.reason,
            &r.note,
            r.at,
            r.resume.clone(),
            budget,
        )
        .await?;
        if let Some(left_at) = &done.left_at {
            // The rest goes to the next invocation, by the same rule that brought this one.
            let next = resolve::Requested {
                resume: Some(left_at.clone()),
                ..r
            }
            .into_event();
            let report =
                shared::publish::publish_all(deps.bus.as_ref(), vec![next], deps.retry).await;
            if !report.failed.is_empty() {
                return Err(SchedulerError::Publish(report.failed.len()));
            }
        }
        return Ok(serde_json::to_value(done).expect("a resolution serializes"));
    }
    let input = parse_input(payload, Some(invoked_at))?;
    Ok(serde_json::to_value(run(deps, input, budget).await?).expect("a summary serializes"))
}

/// Runs the scheduler once: first any checkpointed run, then this invocation's own work.
pub async fn run(deps: &Deps, input: Input, budget: Budget) -> Result<Summary, SchedulerError> {
    // The campaign's lapse policy with its stored customer model: one read per invocation.
    let mut campaign = (*deps.campaign).clone();
    campaign.lapse =
        shared::fitted::lapse_policy(deps.store.as_ref(), &campaign.name, &campaign.lapse).await;
    // Each flow's uplift model, read only when it decides (`[targeting] mode = "uplift"`).
    if campaign.targeting.mode == shared::domain::targeting::Mode::Uplift {
        campaign.learned =
            shared::fitted::targeting_models(deps.store.as_ref(), &campaign.name).await;
    }
    let deps = &Deps {
        campaign: Arc::new(campaign),
        ..deps.clone()
    };
    let mut summary = Summary::default();
    let checkpoint = deps.store.get_checkpoint().await?;
    let mut version = checkpoint.as_ref().map_or(0, |c| c.version);
    let mut jobs: Vec<(DateTime<Utc>, Mode, u32, Option<String>)> = Vec::new();
    if let Some(c) = checkpoint {
        summary.resumed = true;
        jobs.push((c.now, c.mode, c.position, c.cursor));
    }
    jobs.push((input.now, input.mode, 0, None));
    let mut seen = 0;
    let mut pages = 0;
    for (i, (now, mode, position, cursor)) in jobs.into_iter().enumerate() {
        // A resumed run finished with no time left. Checkpointing this invocation's own due pass
        // at its start would chain invocations forever (each finishing the last one's pass and
        // leaving its own); the next scheduled due pass reads everything this one would.
        if i > 0 && mode == Mode::Due && pages > 0 && budget.spent(seen) {
            summary.left_to_next_run = true;
            tracing::info!(
                event = "scheduler_pass_left_to_next_run",
                "the resumed run used the time"
            );
            break;
        }
        let mut r = run::Run::new(deps, now, budget, seen, pages);
        let cut = r.pass(mode, position, cursor).await;
        // Also after a failed pass: steps saved as published must reach the bus.
        let flushed = r.flush().await;
        seen = r.seen;
        pages = r.pages;
        summary::merge(&mut summary, &r.summary);
        telemetry::run_figures(&deps.campaign.name, &r.summary, deps.metrics.as_ref(), now);
        let cut = cut?;
        flushed?;
        if mode == Mode::Rebuild && cut.is_none() {
            let (fit, stored) =
                refit::refit(deps, &r.summaries, std::mem::take(&mut r.rhythms), now).await?;
            summary.model_refit = stored;
            summary.targeting_learned = refit::learn_targeting(deps, &r.examples, now).await?;
            summary.model_fit = Some(fit);
        }
        match cut {
            Some((position, cursor)) => {
                let c = Checkpoint {
                    now,
                    mode,
                    position,
                    cursor,
                    version,
                };
                deps.store.save_checkpoint(&c).await?;
                tracing::info!(
                    event = "scheduler_checkpoint",
                    position,
                    mode = mode.as_str()
                );
                summary.complete = false;
                return Ok(summary);
            }
            None if version > 0 => {
                deps.store.clear_checkpoint(version).await?;
                version = 0;
            }
            None => {}
        }
    }
    summary.complete = true;
    Ok(summary)
}
