//! The code a reward needs in the shop's own checkout. A Shopify, WooCommerce or Stripe shop
//! only honours codes it knows, so the sender has the code created there ([`request`]) before
//! the email that carries it goes out; a `generic` checkout asks winback instead (the reserve
//! route), and needs nothing created.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::reward::{CheckoutPlatform, Reward, RewardKind};

/// What the code takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// A fixed amount in `currency` (two decimals, as [`Money`]).
    Amount(Money),
    /// A percentage of the order, in hundredths (`1500` is 15 %).
    Percent(i64),
}

/// Who may use the code: the customer as the platform knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Buyer {
    /// Shopify's customer id (numeric; the Admin API names it `gid://shopify/Customer/<id>`).
    ShopifyCustomer(String),
    /// WooCommerce restricts a coupon to billing email addresses.
    Email(String),
    /// Stripe's customer id (`cus_…`).
    StripeCustomer(String),
}

/// A code to create in the shop: usable once, by one customer, until the reward expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRequest {
    pub code: String,
    /// A title the shop's staff see in their discount list.
    pub title: String,
    pub value: Value,
    /// The reward's currency (a fixed amount is in it).
    pub currency: String,
    pub buyer: Buyer,
    /// How many orders may use it: 1, or `orders` of a multi-order reward.
    pub usage_limit: u32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Why no code can be created for a reward.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error("a {kind} reward has no discount code in the shop: use amount_off, percent_off or multi_order with a {platform} checkout")]
    Kind {
        kind: &'static str,
        platform: &'static str,
    },
    #[error("the reward has no value to take off")]
    NoValue,
    #[error("the customer has no email address to restrict the WooCommerce coupon to")]
    NoEmail,
}

/// What the checkout of `platform` needs for `reward`: `Ok(None)` when nothing is created (a
/// generic checkout, or a reward that is not a code at checkout: a consultation), else the code
/// to create, restricted to the customer (`customer_id` is the platform's own customer id for
/// Shopify and Stripe; WooCommerce restricts by `email`).
pub fn request(
    platform: CheckoutPlatform,
    reward: &Reward,
    email: Option<&str>,
) -> Result<Option<CodeRequest>, Unsupported> {
    let name = match platform {
        CheckoutPlatform::Generic => return Ok(None),
        CheckoutPlatform::Shopify => "shopify",
        CheckoutPlatform::Woocommerce => "woocommerce",
        CheckoutPlatform::Stripe => "stripe",
    };
    let value = match reward.spec.kind {
        RewardKind::AmountOff | RewardKind::MultiOrder => {
            Value::Amount(reward.spec.value.ok_or(Unsupported::NoValue)?)
        }
        RewardKind::PercentOff => Value::Percent(reward.spec.value.ok_or(Unsupported::NoValue)?.0),
        RewardKind::Consultation => return Ok(None),
        kind @ (RewardKind::FreeShipping | RewardKind::FreeProduct) => {
            return Err(Unsupported::Kind {
                kind: kind.as_str(),
                platform: name,
            })
        }
    };
    let id = reward.customer_id.to_string();
    let buyer = match platform {
        CheckoutPlatform::Shopify => Buyer::ShopifyCustomer(id),
        CheckoutPlatform::Stripe => Buyer::StripeCustomer(id),
        _ => Buyer::Email(email.ok_or(Unsupported::NoEmail)?.to_string()),
    };
    Ok(Some(CodeRequest {
        code: reward.code.to_string(),
        title: format!("winback {} {}", reward.campaign, reward.code),
        value,
        currency: reward.currency.clone(),
        buyer,
        usage_limit: u32::from(reward.uses_left.max(1)),
        starts_at: reward.issued_at,
        ends_at: reward.expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::reward::{RewardCode, RewardSpec};

    fn reward(kind: RewardKind, value: Option<Money>) -> Reward {
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let spec = RewardSpec {
            amounts: Default::default(),
            kind,
            value,
            product: Some("mug".into()),
            orders: Some(3),
            validity_days: 14,
        };
        Reward::issue(
            RewardCode::from_entropy([1, 2, 3, 4, 5, 6, 7, 8]),
            spec,
            &"7408".parse().unwrap(),
            "example",
            "7408#example#1",
            "amount-10",
            1,
            "EUR",
            at,
        )
    }

    #[test]
    fn a_shopify_code_is_the_customers_alone_until_the_reward_expires() {
        let r = reward(RewardKind::AmountOff, Some(Money(1000)));
        let req = request(CheckoutPlatform::Shopify, &r, None)
            .unwrap()
            .unwrap();
        assert_eq!(req.code, r.code.to_string());
        assert_eq!(req.value, Value::Amount(Money(1000)));
        assert_eq!(req.buyer, Buyer::ShopifyCustomer("7408".into()));
        assert_eq!(req.usage_limit, 1);
        assert_eq!(req.ends_at, r.issued_at + Duration::days(14));
        assert_eq!(req.currency, "EUR");
    }

    #[test]
    fn woocommerce_restricts_by_email_and_stripe_by_customer() {
        let r = reward(RewardKind::PercentOff, Some(Money(1500)));
        let woo = request(CheckoutPlatform::Woocommerce, &r, Some("ada@example.com"))
            .unwrap()
            .unwrap();
        assert_eq!(woo.buyer, Buyer::Email("ada@example.com".into()));
        assert_eq!(woo.value, Value::Percent(1500));
        assert_eq!(
            request(CheckoutPlatform::Woocommerce, &r, None),
            Err(Unsupported::NoEmail)
        );
        let stripe = request(CheckoutPlatform::Stripe, &r, None)
            .unwrap()
            .unwrap();
        assert_eq!(stripe.buyer, Buyer::StripeCustomer("7408".into()));
    }

    #[test]
    fn a_multi_order_code_may_be_used_once_per_order_it_covers() {
        let r = reward(RewardKind::MultiOrder, Some(Money(500)));
        let req = request(CheckoutPlatform::Shopify, &r, None)
            .unwrap()
            .unwrap();
        assert_eq!(req.usage_limit, 3);
    }

    #[test]
    fn generic_checkouts_and_consultations_need_nothing_and_free_shipping_is_refused() {
        let r = reward(RewardKind::AmountOff, Some(Money(1000)));
        assert_eq!(request(CheckoutPlatform::Generic, &r, None), Ok(None));
        let talk = reward(RewardKind::Consultation, None);
        assert_eq!(request(CheckoutPlatform::Shopify, &talk, None), Ok(None));
        let ship = reward(RewardKind::FreeShipping, None);
        assert!(matches!(
            request(CheckoutPlatform::Stripe, &ship, None),
            Err(Unsupported::Kind { .. })
        ));
    }
}
