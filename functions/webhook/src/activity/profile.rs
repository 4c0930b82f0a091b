//! What an activity changes on the customer's profile, and its next due time: the domain
//! decides ([`activity::profile`]), this reads the customer model when asked and saves.

use chrono::{DateTime, Utc};
use shared::campaign::config::CampaignConfig;
use shared::domain::activity::{self, Activity, Policy, ProfileChange};
use shared::domain::lapse::LapsePolicy;
use shared::domain::sequence::Enrollment;
use shared::fitted::lapse_policy;
use shared::ports::{self, Change, FitStore, ProfileStore, StoreResult};

/// Saves what `a` does to the customer's profile; answers whether the customer is erased. The
/// stored customer model is read only when the decision asks for it (not for an erased customer
/// or one an enrollment drives), once whatever the retries.
pub(super) async fn update_profile(
    profiles: &dyn ProfileStore,
    fits: &dyn FitStore,
    config: &CampaignConfig,
    a: &Activity,
    enrollment: Option<&Enrollment>,
    policy: &Policy<'_>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut lapse: Option<LapsePolicy> = None;
    let mut erased = false;
    loop {
        let needs_lapse = ports::update_profile(profiles, &a.customer_id, |stored| {
            erased = stored.as_ref().is_some_and(|p| p.erased);
            match activity::profile(stored.as_ref(), a, enrollment, lapse.as_ref(), policy, now) {
                ProfileChange::NeedsFittedLapse => Change::Keep(true),
                ProfileChange::Keep => Change::Keep(false),
                ProfileChange::Save(p) => Change::Save(*p, false),
            }
        })
        .await?;
        if !needs_lapse {
            return Ok(erased);
        }
        lapse = Some(lapse_policy(fits, &config.name, &config.lapse).await);
    }
}
