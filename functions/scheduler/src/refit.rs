//! The weekly refit of the campaign's customer model, at the end of a rebuild.

use chrono::{DateTime, Utc};
use shared::domain::model;
use shared::ports::{FitStore, StoreError};
use shared::telemetry::Telemetry;

use crate::telemetry::ModelFitted;
use crate::{Deps, SchedulerError};

/// Fits the campaign's customer model on the customers a finished rebuild read (all of them, or
/// the part this invocation read when it resumed a checkpointed rebuild: a sample of whole scan
/// segments) and stores it, with its figures in the log and as metrics. A fit that fell back to
/// the prior (too few repeat customers, a failed optimisation) keeps the stored one.
pub(crate) async fn refit(
    deps: &Deps,
    summaries: &[model::Summary],
    now: DateTime<Utc>,
) -> Result<(model::Fit, bool), SchedulerError> {
    let campaign = deps.campaign.name.as_str();
    let fit = model::fit(deps.campaign.lapse.model_variant(), summaries);
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
