//! The reward a step offers: the enrollment's code reused, or a new one issued (and a replaced
//! one voided).

use chrono::{DateTime, Utc};
use shared::campaign::CampaignConfig;
use shared::domain::customer::Profile;
use shared::domain::reward::{self, Offer, Reward, RewardCode};
use shared::domain::sequence::Enrollment;
use shared::domain::survey::Reason;
use shared::ports::{update_reward, Change, RewardStore, StoreError};

use crate::error::SendError;

/// The reward for this send: the claim's (take-over), the enrollment's current one when it still
/// fits (see [`reward::next_offer`]), or a new one. `insert` says whether it still has to be
/// stored; `replaces` is the enrollment's earlier code, voided once this email has gone out.
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
) -> Result<Chosen, SendError> {
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
                return Ok(Chosen {
                    reward: r,
                    insert: false,
                    replaces,
                });
            }
        }
    }
    let spec = reward::choose(
        &config.rewards,
        config.experiment.variant_reward(&e.variant),
        reason,
    );
    let replaces = match reward::next_offer(current.as_ref(), &spec, now) {
        Offer::Keep => {
            let reward = current.expect("kept reward exists");
            return Ok(Chosen {
                reward,
                insert: false,
                replaces: None,
            });
        }
        Offer::Issue { replaces } => replaces,
    };
    let code = shared::entropy::reward_code().map_err(SendError::Entropy)?;
    let currency = profile
        .currency
        .clone()
        .unwrap_or_else(|| config.currency.clone());
    Ok(Chosen {
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
    })
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

/// Voids the code a newer email replaced, so the checkout honours only the newest. A failure is
/// logged: the email went out, and the old code still expires by itself.
pub(crate) async fn void_replaced(
    rewards: &dyn RewardStore,
    code: &RewardCode,
    now: DateTime<Utc>,
) {
    let voided = update_reward(rewards, code, |old| match old {
        Some(r) if r.voided_at.is_none() => Change::Save(r.void(now), ()),
        _ => Change::Keep(()),
    })
    .await;
    if let Err(err) = voided {
        tracing::warn!(event = "void_failed", error = %err);
    }
}

pub(crate) fn hex_token() -> Result<String, SendError> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(SendError::Entropy)?;
    Ok(hex::encode(b))
}
