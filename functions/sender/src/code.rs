//! The reward a step offers: the enrollment's code reused, or a new one issued (and a replaced
//! one voided), created in the shop's checkout before the email carries it.

use chrono::{DateTime, Utc};
use shared::campaign::CampaignConfig;
use shared::domain::checkout;
use shared::domain::customer::Profile;
use shared::domain::reward::{self, Offer, Reward, RewardCode};
use shared::domain::sequence::Enrollment;
use shared::domain::survey::Reason;
use shared::ports::{update_reward, Change, Checkout, RewardStore, StoreError};

use crate::deps::Deps;
use crate::error::SendError;

/// The reward for this send: the claim's (take-over), the enrollment's current one when it still
/// fits (see [`reward::next_offer`]), or a new one. `insert` says whether it still has to be
/// stored; `replaces` is the enrollment's earlier code, voided once this email has gone out.
/// `None` from [`reward_for`]: the email carries no reward (targeting sent it without one, the
/// variant has none), or none can be priced in the customer's currency.
pub(crate) struct Chosen {
    pub(crate) reward: Reward,
    pub(crate) insert: bool,
    pub(crate) replaces: Option<RewardCode>,
}

pub(crate) async fn reward_for(
    rewards: &dyn RewardStore,
    config: &CampaignConfig,
    e: &Enrollment,
    profile: &Profile,
    step: u8,
    reason: Option<Reason>,
    now: DateTime<Utc>,
) -> Result<Option<Chosen>, SendError> {
    // An email the targeting decision sends without a reward, or a variant without one.
    if e.without_reward(config.experiment.variant_without_reward(&e.variant)) {
        return Ok(None);
    }
    let current = match e.reward_code.as_deref().map(RewardCode::parse) {
        Some(Ok(code)) => rewards
            .get_reward(&code)
            .await?
            .filter(|r| r.enrollment_id == e.id),
        _ => None,
    };
    let pending = e
        .claim
        .as_ref()
        .filter(|c| c.step == step)
        .and_then(|c| c.reward_code.as_deref())
        .and_then(|c| RewardCode::parse(c).ok());
    let previous = |kept: &RewardCode| {
        current
            .as_ref()
            .filter(|r| r.code != *kept && r.voided_at.is_none())
            .map(|r| r.code.clone())
    };
    if let Some(code) = pending {
        if let Some(r) = rewards.get_reward(&code).await? {
            if r.enrollment_id == e.id && r.reusable(now) {
                let replaces = previous(&r.code);
                return Ok(Some(Chosen {
                    reward: r,
                    insert: false,
                    replaces,
                }));
            }
        }
    }
    let chosen = reward::choose(
        &config.rewards,
        config.experiment.variant_reward(&e.variant),
        reason,
    );
    let currency = profile
        .currency
        .clone()
        .unwrap_or_else(|| config.currency.clone());
    // A fixed amount in the customer's own currency: its own amount, or converted at the
    // campaign's rate. Without either the email goes without a reward (and says none).
    let spec = match reward::priced(&chosen, &currency, &config.valuation()) {
        Ok(spec) => spec,
        Err(unpriced) => {
            tracing::warn!(event = "reward_unpriced", error = %unpriced);
            return Ok(None);
        }
    };
    let replaces = match reward::next_offer(current.as_ref(), &spec, now) {
        Offer::Keep => {
            let reward = current.expect("kept reward exists");
            return Ok(Some(Chosen {
                reward,
                insert: false,
                replaces: None,
            }));
        }
        Offer::Issue { replaces } => replaces,
    };
    let code = shared::entropy::reward_code().map_err(SendError::Entropy)?;
    Ok(Some(Chosen {
        reward: Reward::issue(
            code,
            spec,
            &e.customer_id,
            &e.campaign,
            &e.id,
            &e.variant,
            step,
            &currency,
            now,
        ),
        insert: true,
        replaces,
    }))
}

/// Stores a newly issued reward before the email that carries it goes out. A take-over finds it
/// already stored by the attempt it takes over; a code another enrollment holds is
/// [`SendError::RewardCodeTaken`].
pub(crate) async fn store_new(rewards: &dyn RewardStore, r: &Reward) -> Result<(), SendError> {
    match rewards.insert_reward(r).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict { .. }) => {
            let existing = rewards.get_reward(&r.code).await?;
            if existing.is_none_or(|x| x.enrollment_id != r.enrollment_id) {
                return Err(SendError::RewardCodeTaken);
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Has the shop's checkout (`[checkout]` shopify, woocommerce or stripe) create `reward`'s code,
/// unless it already did: the email that carries a code goes out only once the checkout knows
/// it. The creation is marked on the reward, so a later email that reuses the code asks nothing.
/// A failure is [`SendError::Checkout`]: the step is handed back and tried again later.
pub(crate) async fn in_checkout(
    deps: &Deps,
    rewards: &dyn RewardStore,
    reward: &Reward,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    let (Some(shop), Some(config)) = (&deps.checkout, &deps.campaign.config().checkout) else {
        return Ok(());
    };
    // `reward` is as stored (read by `reward_for`, or just issued): its mark is current.
    if reward.in_checkout_at.is_some() {
        return Ok(());
    }
    let Some(request) = checkout::request(config.platform, reward, profile.email.as_deref())
        .map_err(SendError::CheckoutUnsupported)?
    else {
        return Ok(());
    };
    shop.create_code(&request)
        .await
        .map_err(SendError::Checkout)?;
    let marked = update_reward(rewards, &reward.code, |r| match r {
        Some(mut r) if r.in_checkout_at.is_none() => {
            r.in_checkout_at = Some(now);
            Change::Save(r, ())
        }
        _ => Change::Keep(()),
    })
    .await;
    if let Err(err) = marked {
        // The code exists in the shop; the next email asks again, and "exists" is done.
        tracing::warn!(event = "checkout_mark_failed", error = %err);
    }
    Ok(())
}

/// Voids the code a newer email replaced, so the checkout honours only the newest, and disables
/// it in the shop's checkout. A failure is logged: the email went out, and the old code still
/// expires by itself (in the shop too: it was created with the reward's expiry).
pub(crate) async fn void_replaced(
    rewards: &dyn RewardStore,
    shop: Option<&dyn Checkout>,
    code: &RewardCode,
    now: DateTime<Utc>,
) {
    let voided = update_reward(rewards, code, |old| match old {
        Some(r) if r.voided_at.is_none() => Change::Save(r.void(now), r.in_checkout_at.is_some()),
        Some(r) => Change::Keep(r.in_checkout_at.is_some()),
        None => Change::Keep(false),
    })
    .await;
    match (voided, shop) {
        (Err(err), _) => tracing::warn!(event = "void_failed", error = %err),
        (Ok(true), Some(shop)) => {
            if let Err(err) = shop.disable_code(code.as_str()).await {
                tracing::warn!(event = "checkout_disable_failed", error = %err);
            }
        }
        _ => {}
    }
}

pub(crate) fn hex_token() -> Result<String, SendError> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(SendError::Entropy)?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use shared::adapters::checkout::MemoryCheckout;
    use shared::adapters::embedded::MemoryStore;
    use shared::domain::checkout::{request, Value};
    use shared::domain::money::Money;
    use shared::domain::reward::{CheckoutPlatform, RewardKind, RewardSpec};

    use super::*;

    #[tokio::test]
    async fn a_replaced_code_is_voided_and_disabled_in_the_shop() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let spec = RewardSpec {
            amounts: Default::default(),
            kind: RewardKind::AmountOff,
            value: Some(Money(1000)),
            product: None,
            orders: None,
            validity_days: 14,
        };
        let mut r = Reward::issue(
            RewardCode::from_entropy([9; 8]),
            spec,
            &"c1".parse().unwrap(),
            "example",
            "c1#example#1",
            "amount-10",
            1,
            "EUR",
            now,
        );
        r.in_checkout_at = Some(now);
        let store = MemoryStore::new();
        store.insert_reward(&r).await.unwrap();
        let shop = MemoryCheckout::new();
        let made = request(CheckoutPlatform::Shopify, &r, None)
            .unwrap()
            .unwrap();
        assert_eq!(made.value, Value::Amount(Money(1000)));
        shop.create_code(&made).await.unwrap();

        void_replaced(&store, Some(&shop), &r.code, now).await;
        let stored = store.get_reward(&r.code).await.unwrap().unwrap();
        assert_eq!(stored.voided_at, Some(now));
        let (_, active) = shop.code(r.code.as_str()).unwrap();
        assert!(!active, "the shop no longer takes the replaced code");
    }
}
