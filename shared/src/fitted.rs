//! The lapse policy a function works with: the campaign's, with the fitted customer model that
//! `winback import` or the scheduler's rebuild stored for it (see
//! [`crate::campaign::config::LapsePolicy::with_stored_fit`]).

use crate::campaign::config::LapsePolicy;
use crate::ports::FitStore;

/// The campaign's lapse policy with its stored fit. One read; when the store cannot be read the
/// campaign's own policy is used (its `[lapse.fitted]` block or the shipped prior) with a warning,
/// never a failed request: the scheduler corrects a due time on its next look.
pub async fn lapse_policy(
    store: &dyn FitStore,
    campaign: &str,
    policy: &LapsePolicy,
) -> LapsePolicy {
    if policy.fitted.is_some() {
        return policy.clone();
    }
    match store.get_fit(campaign).await {
        Ok(stored) => policy.with_stored_fit(stored.as_ref().map(|s| &s.fit)),
        Err(e) => {
            tracing::warn!(campaign, error = %e, "could not read the stored customer model; using the campaign's");
            policy.clone()
        }
    }
}

/// Each flow's learned uplift model, as the weekly rebuild stored it (one read per flow). A flow
/// whose model cannot be read has none, with a warning: until the next read the rules decide
/// for it (`[targeting]`'s fallback), never a failed run.
pub async fn targeting_models(
    store: &dyn FitStore,
    campaign: &str,
) -> Vec<crate::domain::targeting::TargetingModel> {
    let mut out = Vec::new();
    for flow in crate::domain::sequence::Flow::ALL {
        match store.get_targeting(campaign, flow.as_str()).await {
            Ok(Some(m)) => out.push(m),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(campaign, flow = flow.as_str(), error = %e, "could not read the flow's uplift model; the rules decide");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::MemoryStore;
    use crate::campaign::testing::example_campaign;
    use crate::domain::model::{prior, CampaignFit, Fit, Params, Variant};
    use chrono::TimeZone;

    fn stored(r: f64) -> CampaignFit {
        let mut f = Fit::prior(Variant::Mbgnbd);
        f.params = Params {
            r,
            ..prior(Variant::Mbgnbd)
        };
        CampaignFit {
            campaign: "example".into(),
            fit: f,
            fitted_at: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            version: 0,
        }
    }

    #[tokio::test]
    async fn the_stored_fit_applies_unless_the_campaign_file_pins_one() {
        let store = MemoryStore::new();
        let c = example_campaign();
        // Nothing stored: the prior.
        let p = lapse_policy(&store, "example", &c.lapse).await;
        assert_eq!(p.fitted_model().params, prior(Variant::Mbgnbd));
        store.save_fit(&stored(2.5)).await.unwrap();
        let p = lapse_policy(&store, "example", &c.lapse).await;
        assert_eq!(p.fitted_model().params.r, 2.5);
        // Another campaign's fit is not this one's.
        let other = lapse_policy(&store, "other", &c.lapse).await;
        assert_eq!(other.fitted_model().params, prior(Variant::Mbgnbd));
        // A [lapse.fitted] block pins the parameters.
        let mut pinned = c.lapse.clone();
        pinned.fitted = pinned.with_stored_fit(Some(&stored(0.9).fit)).fitted;
        let p = lapse_policy(&store, "example", &pinned).await;
        assert_eq!(p.fitted_model().params.r, 0.9);
    }
}
