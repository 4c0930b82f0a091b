//! What an activity does to the customer's latest enrollment and to the reward code of an order:
//! the domain decides ([`shared::domain::sequence::attribute`], [`Reward::redeem`]), this saves.

use shared::domain::money::Money;
use shared::domain::reward::{RedeemError, Reward, RewardCode};
use shared::domain::sequence::{attribute, Attribution, Enrollment};
use shared::ports::StoreError;

use super::Activity;
use crate::{Deps, SAVE_ATTEMPTS};

/// What happened to the reward code of an order.
#[derive(Debug, Clone)]
pub(super) enum Redemption {
    None,
    Redeemed {
        reward: Box<Reward>,
        cost: Money,
    },
    Refused {
        code: String,
        status: &'static str,
        error: String,
    },
}

pub(super) async fn attribute_activity(
    deps: &Deps,
    a: &Activity,
) -> Result<(Attribution, Option<Enrollment>), StoreError> {
    let config = deps.campaign.config();
    // The enrollment's revenue is in the campaign currency: an order in another currency is
    // counted in its own counter (see `process`), never added to it.
    let minor = a
        .amount
        .as_ref()
        .filter(|(_, c)| c.eq_ignore_ascii_case(&config.currency))
        .map_or(0, |(m, _)| m.0);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(e) = deps
            .store
            .get_enrollment(&a.customer_id, &config.name)
            .await?
        else {
            return Ok((Attribution::None, None));
        };
        let (next, outcome) = attribute(
            &e,
            a.kind,
            a.occurred_at,
            minor,
            config.sending.attribution_days,
            &config.sending.still_with_us,
        );
        let Some(next) = next else {
            return Ok((outcome, Some(e)));
        };
        match deps.store.save_enrollment(&next).await {
            Ok(v) => {
                let mut saved = next;
                saved.version = v;
                let outcome = outcome.of_saved(&saved);
                return Ok((outcome, Some(saved)));
            }
            Err(err) if err.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(err) => return Err(err),
        }
    }
}

pub(super) async fn redeem(deps: &Deps, a: &Activity) -> Result<Redemption, StoreError> {
    let (Some(raw), Some((amount, _))) = (&a.reward_code, &a.amount) else {
        return Ok(Redemption::None);
    };
    let refused = |code: &str, status: &'static str, error: String| Redemption::Refused {
        code: code.to_string(),
        status,
        error,
    };
    let Ok(code) = RewardCode::parse(raw) else {
        return Ok(refused(raw, "unknown", "this is not a reward code".into()));
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(reward) = deps.store.get_reward(&code).await? else {
            return Ok(refused(
                code.as_str(),
                "unknown",
                "no reward has this code".into(),
            ));
        };
        // A retry of this same event after a failure further on: the redemption is already saved.
        if reward.customer_id == a.customer_id.as_str()
            && reward.redeemed_at == Some(a.occurred_at)
            && reward.uses_left == 0
        {
            let cost = reward.cost_for(*amount);
            return Ok(Redemption::Redeemed {
                reward: Box::new(reward),
                cost,
            });
        }
        let order_ref = a.order_ref.as_deref().unwrap_or(&a.event_id);
        let used = match reward.redeem(&a.customer_id, order_ref, a.occurred_at) {
            Ok(r) => r,
            Err(e) => {
                let status = match e {
                    RedeemError::AlreadyRedeemed => "redeemed",
                    RedeemError::Expired => "expired",
                    RedeemError::OtherCustomer => "other_customer",
                    RedeemError::Voided => "voided",
                    RedeemError::ReservedByAnotherOrder => "reserved",
                };
                return Ok(refused(code.as_str(), status, e.to_string()));
            }
        };
        match deps.store.save_reward(&used).await {
            Ok(v) => {
                let cost = used.cost_for(*amount);
                let mut saved = used;
                saved.version = v;
                return Ok(Redemption::Redeemed {
                    reward: Box::new(saved),
                    cost,
                });
            }
            Err(err) if err.is_conflict() && attempt < SAVE_ATTEMPTS => continue,
            Err(err) => return Err(err),
        }
    }
}
