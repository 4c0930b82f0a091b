//! What an activity does to the customer's latest enrollment and to the reward code of an order:
//! the domain decides ([`activity::attribute`], [`activity::redeem`]), this saves.

use shared::domain::activity::{self, Activity, Policy, Redemption};
use shared::domain::sequence::{Attribution, Enrollment};
use shared::ports::{
    update_enrollment, update_reward, Change, EnrollmentStore, RewardStore, StoreResult,
};

/// Saves what `a` does to the customer's latest enrollment in `campaign`; answers the
/// attribution and the enrollment as saved (or as read, when nothing changed).
pub(super) async fn attribute(
    store: &dyn EnrollmentStore,
    campaign: &str,
    a: &Activity,
    policy: &Policy<'_>,
) -> StoreResult<(Attribution, Option<Enrollment>)> {
    update_enrollment(store, &a.customer_id, campaign, |stored| {
        let Some(e) = stored else {
            return Change::Keep((Attribution::None, None));
        };
        match activity::attribute(&e, a, policy) {
            (Some(next), outcome) => Change::Save(next.clone(), (outcome, Some(next))),
            (None, outcome) => Change::Keep((outcome, Some(e))),
        }
    })
    .await
}

/// Saves what order `a` does to the reward of its code, if it has one.
pub(super) async fn redeem(store: &dyn RewardStore, a: &Activity) -> StoreResult<Redemption> {
    let code = match activity::reward_code(a) {
        Ok(Some(code)) => code,
        Ok(None) => return Ok(Redemption::None),
        Err(refused) => return Ok(refused),
    };
    update_reward(store, &code, |stored| {
        match activity::redeem(stored.as_ref(), &code, a) {
            (Some(used), redemption) => Change::Save(used, redemption),
            (None, redemption) => Change::Keep(redemption),
        }
    })
    .await
}
