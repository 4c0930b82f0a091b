//! Tests of `domain::reward` that need the shipped example campaign (which the domain crate
//! cannot build: the campaign file is parsed here, in `shared`).

use crate::domain::reward::*;
use crate::domain::survey::Reason;

#[test]
fn the_reason_picks_the_reward_before_the_variant_and_the_default() {
    let c = crate::campaign::testing::example_campaign();
    let variant_reward = c.experiment.variants[1].reward.clone().unwrap();
    for reason in Reason::ALL {
        for (variant, fallback) in [
            ("amount-10", &c.rewards.default),
            ("percent-15", &variant_reward),
        ] {
            let want = c.rewards.by_reason.get(&reason).unwrap_or(fallback);
            assert_eq!(
                &choose(
                    &c.rewards,
                    c.experiment.variant_reward(variant),
                    Some(reason)
                ),
                want,
                "{reason} {variant}"
            );
        }
    }
    // The shipped campaign gives each reason the seeds' answer.
    let kind = |r| {
        choose(
            &c.rewards,
            c.experiment.variant_reward("percent-15"),
            Some(r),
        )
        .kind
    };
    assert_eq!(kind(Reason::TooExpensive), RewardKind::AmountOff);
    assert_eq!(kind(Reason::HardToUnderstand), RewardKind::Consultation);
    assert_eq!(kind(Reason::Forgot), RewardKind::MultiOrder);
    assert_eq!(
        choose(&c.rewards, c.experiment.variant_reward("percent-15"), None),
        variant_reward
    );
    assert_eq!(
        choose(&c.rewards, c.experiment.variant_reward("amount-10"), None),
        c.rewards.default
    );
    assert_eq!(
        choose(&c.rewards, c.experiment.variant_reward("gone"), None),
        c.rewards.default
    );
}
