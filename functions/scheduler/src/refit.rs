//! The weekly refit of the campaign's customer model, at the end of a rebuild.

use chrono::{DateTime, Utc};
use shared::domain::model;
use shared::domain::sequence::Flow;
use shared::domain::targeting::{self, TargetingModel};
use shared::ports::{FitStore, StoreError};
use shared::telemetry::Telemetry;

use crate::telemetry::ModelFitted;
use crate::{Deps, SchedulerError};

/// Fits the campaign's customer model (and each category's rhythm) on the customers a finished rebuild read (all of them, or
/// the part this invocation read when it resumed a checkpointed rebuild: a sample of whole scan
/// segments) and stores it, with its figures in the log and as metrics. A fit that fell back to
/// the prior (too few repeat customers, a failed optimisation) keeps the stored one.
pub(crate) async fn refit(
    deps: &Deps,
    summaries: &[model::Summary],
    rhythms: shared::domain::rhythm::Pool,
    now: DateTime<Utc>,
) -> Result<(model::Fit, bool), SchedulerError> {
    let campaign = deps.campaign.name.as_str();
    let mut fit = model::fit(deps.campaign.lapse.model_variant(), summaries);
    fit.categories = rhythms.finish();
    let stored = model::worth_storing(&fit);
    ModelFitted {
        campaign,
        fit: &fit,
        stored,
    }
    .emit(deps.metrics.as_ref(), now);
    if !stored {
        return Ok((fit, false));
    }
    Ok(store(deps.store.as_ref(), campaign, fit, now).await?)
}

/// Stores `fit` as the campaign's model; `false` when another rebuild or an import stored one
/// meanwhile (theirs is as new as this one).
async fn store(
    fits: &dyn FitStore,
    campaign: &str,
    fit: model::Fit,
    now: DateTime<Utc>,
) -> Result<(model::Fit, bool), StoreError> {
    let version = fits.get_fit(campaign).await?.map_or(0, |f| f.version);
    let new = model::CampaignFit {
        campaign: campaign.to_string(),
        fit,
        fitted_at: now,
        version,
    };
    match fits.save_fit(&new).await {
        Ok(_) => Ok((new.fit, true)),
        Err(e) if e.is_conflict() => Ok((new.fit, false)),
        Err(e) => Err(e),
    }
}

/// Learns each flow's uplift model from the finished enrollments a rebuild read (the latest of
/// each customer: [`shared::domain::sequence::Enrollment::learning_example`]) and stores it. A
/// flow with too few held-out or emailed examples keeps what it had; the rules decide for it
/// until it has a model and `[targeting] min_enrollments` of each. Returns the flows learned.
pub(crate) async fn learn_targeting(
    deps: &Deps,
    examples: &[(Flow, targeting::Example)],
    now: DateTime<Utc>,
) -> Result<Vec<String>, SchedulerError> {
    let campaign = deps.campaign.name.as_str();
    let mut learned = Vec::new();
    for flow in Flow::ALL {
        let of_flow: Vec<targeting::Example> = examples
            .iter()
            .filter(|(f, _)| *f == flow)
            .map(|(_, x)| x.clone())
            .collect();
        let model = match targeting::learn(campaign, flow.as_str(), &of_flow, now) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(
                    event = "targeting_not_learned",
                    campaign,
                    flow = flow.as_str(),
                    examples = of_flow.len(),
                    reason = %e
                );
                continue;
            }
        };
        tracing::info!(
            event = "targeting_learned",
            campaign,
            flow = flow.as_str(),
            treated = model.learned_from.0,
            holdout = model.learned_from.1,
            with_reward = model.with_reward.is_some(),
            email_only = model.email_only.is_some()
        );
        if save_targeting(deps.store.as_ref(), model).await? {
            learned.push(flow.as_str().to_string());
        }
    }
    Ok(learned)
}

/// Stores `model` over the flow's stored one; `false` when another rebuild stored one meanwhile.
async fn save_targeting(
    fits: &dyn FitStore,
    mut model: TargetingModel,
) -> Result<bool, StoreError> {
    model.version = fits
        .get_targeting(&model.campaign, &model.flow)
        .await?
        .map_or(0, |m| m.version);
    match fits.save_targeting(&model).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}
