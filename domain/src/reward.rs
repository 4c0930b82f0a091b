//! Rewards: what is offered, the code that carries it, and when it expires.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::edge::CustomerId;
use super::money::Money;
use super::survey::Reason;

/// The kinds of reward. Money off is the default: it performs about twice as well as percent off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    #[default]
    AmountOff,
    PercentOff,
    FreeShipping,
    FreeProduct,
    Consultation,
    /// A discount on each of the next N orders, to rebuild a habit.
    MultiOrder,
}

impl RewardKind {
    pub const ALL: [RewardKind; 6] = [
        RewardKind::AmountOff,
        RewardKind::PercentOff,
        RewardKind::FreeShipping,
        RewardKind::FreeProduct,
        RewardKind::Consultation,
        RewardKind::MultiOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RewardKind::AmountOff => "amount_off",
            RewardKind::PercentOff => "percent_off",
            RewardKind::FreeShipping => "free_shipping",
            RewardKind::FreeProduct => "free_product",
            RewardKind::Consultation => "consultation",
            RewardKind::MultiOrder => "multi_order",
        }
    }

    /// Whether the reward costs the shop money off an order (for reward-cost accounting).
    pub fn is_discount(self) -> bool {
        matches!(
            self,
            RewardKind::AmountOff | RewardKind::PercentOff | RewardKind::MultiOrder
        )
    }
}

/// A reward as configured in the campaign file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSpec {
    pub kind: RewardKind,
    /// Amount (`amount_off`, `multi_order`: money per order) in the campaign's currency, or
    /// percent (`percent_off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Money>,
    /// The amount in other currencies (`amounts = { SEK = "110" }`), for customers who pay in
    /// them; a currency not listed is converted at `exchange_rates` ([`priced`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub amounts: BTreeMap<String, Money>,
    /// The free product (`free_product`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// How many orders (`multi_order`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<u8>,
    /// Days from issue to expiry.
    pub validity_days: u32,
}

/// Why a fixed amount has no price in a customer's currency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reward's amount has no price in {currency}: add `amounts = {{ {currency} = \"...\" }}` to the reward, or `{currency} = <rate>` to [exchange_rates]")]
pub struct Unpriced {
    pub currency: String,
}

/// `spec` for a customer who pays in `currency`: a fixed amount (`amount_off`, `multi_order`) in
/// that currency, from the reward's own `amounts`, else converted from the campaign currency at
/// the valuation's rate and rounded to the currency's smallest unit (whole units for JPY and
/// the other currencies without decimals). Percentages and other kinds are the same everywhere.
pub fn priced(
    spec: &RewardSpec,
    currency: &str,
    valuation: &crate::money::Valuation<'_>,
) -> Result<RewardSpec, Unpriced> {
    let (Some(value), true) = (
        spec.value,
        matches!(spec.kind, RewardKind::AmountOff | RewardKind::MultiOrder),
    ) else {
        return Ok(spec.clone());
    };
    if currency.eq_ignore_ascii_case(valuation.currency) {
        return Ok(spec.clone());
    }
    let own = spec
        .amounts
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(currency))
        .map(|(_, m)| *m);
    let amount = match own {
        Some(m) => m,
        None => valuation
            .convert_to(value, currency)
            .ok_or_else(|| Unpriced {
                currency: currency.to_ascii_uppercase(),
            })?,
    };
    Ok(RewardSpec {
        value: Some(amount),
        amounts: BTreeMap::new(),
        ..spec.clone()
    })
}

/// A spec that cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("{kind} needs `value`")]
    MissingValue { kind: &'static str },
    #[error("percent_off `value` must be between 1 and 100")]
    PercentOutOfRange,
    #[error("`value` must be more than 0")]
    NonPositiveValue,
    #[error("free_product needs `product`")]
    MissingProduct,
    #[error("multi_order needs `orders` between 2 and 12")]
    BadOrders,
    #[error("`validity_days` must be between 1 and 365")]
    BadValidity,
    #[error("`amounts` are fixed amounts by currency: only amount_off and multi_order take them, each a three-letter code with an amount over 0 (`amounts = {{ SEK = \"115.00\" }}`); {0}")]
    BadAmounts(String),
}

impl RewardSpec {
    /// Checks the fields each kind needs.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !(1..=365).contains(&self.validity_days) {
            return Err(SpecError::BadValidity);
        }
        if !self.amounts.is_empty()
            && !matches!(self.kind, RewardKind::AmountOff | RewardKind::MultiOrder)
        {
            return Err(SpecError::BadAmounts(format!(
                "{} takes none",
                self.kind.as_str()
            )));
        }
        for (currency, amount) in &self.amounts {
            let code = currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase());
            if !code || amount.0 <= 0 {
                return Err(SpecError::BadAmounts(format!("got {currency} = {amount}")));
            }
        }
        match self.kind {
            RewardKind::AmountOff | RewardKind::PercentOff | RewardKind::MultiOrder => {
                let v = self.value.ok_or(SpecError::MissingValue {
                    kind: self.kind.as_str(),
                })?;
                if v.0 <= 0 {
                    return Err(SpecError::NonPositiveValue);
                }
                if self.kind == RewardKind::PercentOff && v.0 > 10_000 {
                    return Err(SpecError::PercentOutOfRange);
                }
                if self.kind == RewardKind::MultiOrder
                    && !matches!(self.orders, Some(n) if (2..=12).contains(&n))
                {
                    return Err(SpecError::BadOrders);
                }
            }
            RewardKind::FreeProduct if self.product.is_none() => {
                return Err(SpecError::MissingProduct)
            }
            _ => {}
        }
        Ok(())
    }
}

/// Picks the reward: the survey reason's rule first, then the variant's (`variant_reward`, see
/// [`super::experiment::ExperimentConfig::variant_reward`]), then the default.
pub fn choose(
    rewards: &RewardPolicy,
    variant_reward: Option<&RewardSpec>,
    reason: Option<Reason>,
) -> RewardSpec {
    reason
        .and_then(|r| rewards.by_reason.get(&r))
        .or(variant_reward)
        .unwrap_or(&rewards.default)
        .clone()
}

/// What a reward costs the shop when an order of `order_value` uses it, in the campaign's
/// currency (major units): a fixed amount its value, a percentage that share of the order, a
/// per-order discount its value on each of its orders; a free product, free shipping or a
/// consultation its `value` when the campaign gives one, else nothing known.
pub fn expected_cost(spec: &RewardSpec, order_value: f64) -> f64 {
    let value = spec.value.map_or(0.0, |m| m.0 as f64 / 100.0);
    match spec.kind {
        RewardKind::PercentOff => order_value * value / 100.0,
        RewardKind::MultiOrder => value * f64::from(spec.orders.unwrap_or(1)),
        _ => value,
    }
}

/// What a step does with the enrollment's reward, given the one it should carry now.
#[derive(Debug, Clone, PartialEq)]
pub enum Offer {
    /// The code already issued still fits and is valid: the email repeats it.
    Keep,
    /// A new code; `replaces` is the still-valid code it voids (the reward changed with the
    /// survey answer), so only the newest one is honoured at checkout.
    Issue { replaces: Option<RewardCode> },
}

/// Decides between repeating the enrollment's current code and issuing a new one: a valid code
/// with the wanted reward is kept; a valid code with another reward (another kind or value, e.g.
/// "too expensive" answered after a percent-off email) is replaced and voided; a used, expired
/// or voided code is followed by a fresh one.
pub fn next_offer(current: Option<&Reward>, wanted: &RewardSpec, now: DateTime<Utc>) -> Offer {
    match current {
        Some(r) if r.reusable(now) && r.spec == *wanted => Offer::Keep,
        Some(r) if r.reusable(now) => Offer::Issue {
            replaces: Some(r.code.clone()),
        },
        _ => Offer::Issue { replaces: None },
    }
}

/// The Crockford base32 alphabet: no I, L, O or U, so codes survive being read aloud and typed.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A reward code: `WB-XXXX-XXXX-XXXX`, 12 symbols of 5 bits = 60 random bits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RewardCode(String);

/// A string that is not a reward code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a reward code: codes look like WB-7K3M-Q9XD-2HFP")]
pub struct BadCode(pub String);

impl RewardCode {
    /// Builds a code from 8 random bytes (the low 60 bits are used).
    pub fn from_entropy(bytes: [u8; 8]) -> RewardCode {
        let mut n = u64::from_be_bytes(bytes) & ((1u64 << 60) - 1);
        let mut symbols = [0u8; 12];
        for s in symbols.iter_mut().rev() {
            *s = ALPHABET[(n & 31) as usize];
            n >>= 5;
        }
        let s = std::str::from_utf8(&symbols).expect("ascii");
        RewardCode(format!("WB-{}-{}-{}", &s[0..4], &s[4..8], &s[8..12]))
    }

    /// Reads a code as a customer may type it: any case, spaces or dashes, O for 0, I/L for 1.
    pub fn parse(text: &str) -> Result<RewardCode, BadCode> {
        let bad = || BadCode(text.chars().take(40).collect());
        let upper = text.trim().to_ascii_uppercase();
        let body = upper.strip_prefix("WB").unwrap_or(&upper);
        let mut symbols = String::with_capacity(12);
        for c in body.chars() {
            let c = match c {
                '-' | ' ' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return Err(bad()),
            };
            symbols.push(c);
        }
        if symbols.len() != 12 {
            return Err(bad());
        }
        Ok(RewardCode(format!(
            "WB-{}-{}-{}",
            &symbols[0..4],
            &symbols[4..8],
            &symbols[8..12]
        )))
    }
}

parsed_text!(RewardCode, BadCode);

/// An issued reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reward {
    pub code: RewardCode,
    #[serde(default)]
    pub version: u64,
    pub customer_id: CustomerId,
    pub campaign: String,
    pub enrollment_id: String,
    pub variant: String,
    pub step: u8,
    pub spec: RewardSpec,
    pub currency: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_at: Option<DateTime<Utc>>,
    /// Replaced by a different reward in a later email (the survey answer changed what fits):
    /// no longer honoured at checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided_at: Option<DateTime<Utc>>,
    /// Orders still to be discounted (`multi_order`), else 1 until redeemed.
    #[serde(default)]
    pub uses_left: u8,
    /// The order that holds the code at checkout (`POST /v1/rewards/{code}/reserve`) until it is
    /// reported or the hold runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<Reservation>,
    /// When the code was created in the shop's checkout (Shopify, WooCommerce, Stripe): an email
    /// carries the code only once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_checkout_at: Option<DateTime<Utc>>,
}

/// How long a reservation holds a code for its order: long enough to pay, short enough that an
/// abandoned checkout does not lock the customer's code for the day.
pub const RESERVATION_MINUTES: i64 = 60;

/// The longest one order may hold a code, renewals included: a checkout that keeps reserving
/// (or someone who does it on purpose) cannot lock the code away from its customer for longer.
pub const MAX_HOLD_MINUTES: i64 = 2 * RESERVATION_MINUTES;

/// A code held by one order at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The shop's order reference (its order id or checkout token).
    pub order_ref: String,
    pub until: DateTime<Utc>,
    /// When this order first reserved the code (renewals keep it). Holds stored before it was
    /// kept count from their last renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl Reservation {
    /// When the order first reserved the code.
    pub fn since(&self) -> DateTime<Utc> {
        self.since
            .unwrap_or(self.until - Duration::minutes(RESERVATION_MINUTES))
    }
}

/// Why a code cannot be reserved.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ReserveError {
    /// Expired, redeemed or voided: no order may use it.
    #[error("this reward code cannot be used: it is {status:?}")]
    NotValid { status: CodeStatus },
    /// Another order holds it until `until` (or until that order is reported).
    #[error("another order holds this reward code")]
    HeldByAnotherOrder { until: DateTime<Utc> },
    /// The code was issued to another customer: the shop must reserve it for the customer who
    /// is checking out, and only a code of theirs.
    #[error("this reward code belongs to another customer")]
    OtherCustomer,
    /// This order has held the code for [`MAX_HOLD_MINUTES`] since `since`: it is not renewed.
    #[error("this order has held the reward code as long as a hold may last: report the order, or reserve with a new order")]
    HoldSpent { since: DateTime<Utc> },
}
/// The link of the email's reward button: the shop's checkout with `code` applied (per
/// [`CheckoutConfig`]), or `shop_url` when the campaign has no `[checkout]`. The code is
/// percent-encoded.
pub fn checkout_url(checkout: Option<&CheckoutConfig>, shop_url: &str, code: &str) -> String {
    let Some(c) = checkout else {
        return shop_url.to_string();
    };
    let code: String = url::form_urlencoded::byte_serialize(code.as_bytes()).collect();
    let base = c.url.as_deref().unwrap_or(shop_url).trim_end_matches('/');
    match c.platform {
        CheckoutPlatform::Shopify => format!("{base}/discount/{code}"),
        CheckoutPlatform::Woocommerce if base.contains('?') => format!("{base}&coupon={code}"),
        CheckoutPlatform::Woocommerce => format!("{base}/?coupon={code}"),
        CheckoutPlatform::Generic | CheckoutPlatform::Stripe => c
            .url
            .as_deref()
            .unwrap_or(shop_url)
            .replace("{code}", &code),
    }
}

/// Why a code cannot be redeemed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedeemError {
    #[error("this reward code has already been used")]
    AlreadyRedeemed,
    #[error("this reward code has expired")]
    Expired,
    #[error("this reward code belongs to another customer")]
    OtherCustomer,
    #[error("this reward code was replaced by the one in a later email")]
    Voided,
    #[error("another order holds this reward code at checkout")]
    ReservedByAnotherOrder,
}

/// What a shop's checkout is told about a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeStatus {
    Valid,
    Expired,
    Redeemed,
    /// Replaced by a newer code of the same enrollment.
    Voided,
}

impl Reward {
    /// Issues a reward from a spec at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        code: RewardCode,
        spec: RewardSpec,
        customer_id: &CustomerId,
        campaign: &str,
        enrollment_id: &str,
        variant: &str,
        step: u8,
        currency: &str,
        now: DateTime<Utc>,
    ) -> Reward {
        let uses_left = if spec.kind == RewardKind::MultiOrder {
            spec.orders.unwrap_or(1)
        } else {
            1
        };
        Reward {
            code,
            version: 0,
            customer_id: customer_id.clone(),
            campaign: campaign.to_string(),
            enrollment_id: enrollment_id.to_string(),
            variant: variant.to_string(),
            step,
            expires_at: now + Duration::days(i64::from(spec.validity_days)),
            spec,
            currency: currency.to_string(),
            issued_at: now,
            redeemed_at: None,
            voided_at: None,
            uses_left,
            reserved: None,
            in_checkout_at: None,
        }
    }

    pub fn status(&self, now: DateTime<Utc>) -> CodeStatus {
        if self.voided_at.is_some() {
            CodeStatus::Voided
        } else if self.uses_left == 0 {
            CodeStatus::Redeemed
        } else if now >= self.expires_at {
            CodeStatus::Expired
        } else {
            CodeStatus::Valid
        }
    }

    /// Whether the enrollment can keep offering this code instead of minting a new one.
    pub fn reusable(&self, now: DateTime<Utc>) -> bool {
        self.status(now) == CodeStatus::Valid && self.redeemed_at.is_none()
    }

    /// The reservation that still holds the code at `now`, if any.
    pub fn held(&self, now: DateTime<Utc>) -> Option<&Reservation> {
        self.reserved.as_ref().filter(|r| now < r.until)
    }

    /// Reserves the code for `customer_id`'s order `order_ref` at `now`: only the customer the
    /// code was issued to may hold it; the same order reserving again keeps (and renews) its hold,
    /// but never beyond [`MAX_HOLD_MINUTES`] from its first reservation; another order is refused
    /// while the hold lasts. The caller saves the result with a conditional (versioned) write, so
    /// of two orders racing only one wins.
    pub fn reserve(
        &self,
        customer_id: &CustomerId,
        order_ref: &str,
        now: DateTime<Utc>,
    ) -> Result<Reward, ReserveError> {
        if *customer_id != self.customer_id {
            return Err(ReserveError::OtherCustomer);
        }
        match self.status(now) {
            CodeStatus::Valid => {}
            status => return Err(ReserveError::NotValid { status }),
        }
        if let Some(h) = self.held(now).filter(|h| h.order_ref != order_ref) {
            return Err(ReserveError::HeldByAnotherOrder { until: h.until });
        }
        // The same order's earlier hold, running or run out, counts from its first reservation.
        let since = self
            .reserved
            .as_ref()
            .filter(|h| h.order_ref == order_ref)
            .map_or(now, Reservation::since);
        let cap = since + Duration::minutes(MAX_HOLD_MINUTES);
        if now >= cap {
            return Err(ReserveError::HoldSpent { since });
        }
        let mut r = self.clone();
        r.reserved = Some(Reservation {
            order_ref: order_ref.to_string(),
            until: (now + Duration::minutes(RESERVATION_MINUTES)).min(cap),
            since: Some(since),
        });
        Ok(r)
    }

    /// Redeems one use by `customer_id` for order `order_ref` at `now`. A code another order
    /// holds is refused; the use releases the hold (a multi-order code can be reserved again).
    pub fn redeem(
        &self,
        customer_id: &str,
        order_ref: &str,
        now: DateTime<Utc>,
    ) -> Result<Reward, RedeemError> {
        if customer_id != self.customer_id {
            return Err(RedeemError::OtherCustomer);
        }
        if self.held(now).is_some_and(|h| h.order_ref != order_ref) {
            return Err(RedeemError::ReservedByAnotherOrder);
        }
        match self.status(now) {
            CodeStatus::Redeemed => Err(RedeemError::AlreadyRedeemed),
            CodeStatus::Expired => Err(RedeemError::Expired),
            CodeStatus::Voided => Err(RedeemError::Voided),
            CodeStatus::Valid => {
                let mut r = self.clone();
                r.uses_left -= 1;
                r.redeemed_at.get_or_insert(now);
                r.reserved = None;
                Ok(r)
            }
        }
    }

    /// The code no longer holds: a later email of the same enrollment carries a different reward.
    pub fn void(&self, at: DateTime<Utc>) -> Reward {
        let mut r = self.clone();
        r.voided_at.get_or_insert(at);
        r
    }

    /// The money value of one use against an order of `order_amount` (reward cost accounting).
    pub fn cost_for(&self, order_amount: Money) -> Money {
        match self.spec.kind {
            RewardKind::AmountOff | RewardKind::MultiOrder => {
                Money(self.spec.value.unwrap_or_default().0.min(order_amount.0))
            }
            RewardKind::PercentOff => order_amount.percent(self.spec.value.unwrap_or_default().0),
            _ => Money::ZERO,
        }
    }
}

/// The shop's checkout link that applies a code: `[checkout]` in the campaign file. See
/// [`crate::reward::checkout_url`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckoutConfig {
    pub platform: CheckoutPlatform,
    /// `generic`: the link with `{code}` where the code goes (required). `shopify`,
    /// `woocommerce`: the shop's base URL when it is not `shop_url`.
    #[serde(default)]
    pub url: Option<String>,
}

/// Which platform's link applies a code.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutPlatform {
    /// `<base>/discount/{code}` (Shopify's shareable discount link).
    Shopify,
    /// `<base>/?coupon={code}`.
    Woocommerce,
    /// The `url` template as written (a Payment Link with `?prefilled_promo_code={code}`); the
    /// code is a Stripe promotion code.
    Stripe,
    /// The `url` template as written.
    Generic,
}

/// Which reward is given.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RewardPolicy {
    /// The reward when nothing more specific applies.
    pub default: RewardSpec,
    /// Per survey reason (too expensive → discount, hard to understand → consultation, …).
    #[serde(default)]
    pub by_reason: BTreeMap<Reason, RewardSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    mod pricing {
        use super::*;
        use crate::money::{ExchangeRates, Valuation};

        fn amount(value: i64, amounts: &[(&str, i64)]) -> RewardSpec {
            RewardSpec {
                kind: RewardKind::AmountOff,
                value: Some(Money(value)),
                amounts: amounts
                    .iter()
                    .map(|(c, m)| (c.to_string(), Money(*m)))
                    .collect(),
                product: None,
                orders: None,
                validity_days: 14,
            }
        }

        #[test]
        fn a_fixed_amount_is_the_customers_own_currency_never_the_campaigns_relabelled() {
            let rates =
                ExchangeRates::from([("SEK".to_string(), 0.087), ("JPY".to_string(), 0.0062)]);
            let eur = Valuation {
                currency: "EUR",
                rates: &rates,
            };
            let ten = amount(1000, &[("DKK", 7500)]);
            assert_eq!(priced(&ten, "EUR", &eur).unwrap().value, Some(Money(1000)));
            // 10 EUR at 0.087 EUR per krona: 114.94 SEK, not "10.00 SEK".
            assert_eq!(priced(&ten, "SEK", &eur).unwrap().value, Some(Money(11494)));
            // JPY has no minor unit: 1,613 yen, whole.
            assert_eq!(
                priced(&ten, "jpy", &eur).unwrap().value,
                Some(Money(161_300))
            );
            // The reward's own amount wins over the rate.
            let dkk = priced(&ten, "DKK", &eur).unwrap();
            assert_eq!(dkk.value, Some(Money(7500)));
            assert!(dkk.amounts.is_empty());
            assert_eq!(
                priced(&ten, "NOK", &eur),
                Err(Unpriced {
                    currency: "NOK".into()
                })
            );
            let pct = RewardSpec {
                kind: RewardKind::PercentOff,
                value: Some(Money(1500)),
                ..ten.clone()
            };
            assert_eq!(
                priced(&pct, "NOK", &eur),
                Ok(pct.clone()),
                "a percentage is the same everywhere"
            );
        }
    }

    #[test]
    fn the_checkout_link_applies_the_code_on_each_platform() {
        let shop = "https://shop.example.com/";
        let on = |platform, url: Option<&str>| CheckoutConfig {
            platform,
            url: url.map(str::to_string),
        };
        assert_eq!(checkout_url(None, shop, "WB-1"), shop);
        assert_eq!(
            checkout_url(Some(&on(CheckoutPlatform::Shopify, None)), shop, "WB-1"),
            "https://shop.example.com/discount/WB-1"
        );
        assert_eq!(
            checkout_url(
                Some(&on(
                    CheckoutPlatform::Woocommerce,
                    Some("https://w.example/shop")
                )),
                shop,
                "WB-1"
            ),
            "https://w.example/shop/?coupon=WB-1"
        );
        assert_eq!(
            checkout_url(
                Some(&on(
                    CheckoutPlatform::Woocommerce,
                    Some("https://w.example/?lang=sv")
                )),
                shop,
                "WB-1"
            ),
            "https://w.example/?lang=sv&coupon=WB-1"
        );
        assert_eq!(
            checkout_url(
                Some(&on(
                    CheckoutPlatform::Generic,
                    Some("https://s.example/cart?promo={code}&src=email")
                )),
                shop,
                "WB 1/&"
            ),
            "https://s.example/cart?promo=WB+1%2F%26&src=email",
            "the code is percent-encoded"
        );
    }

    fn c1() -> CustomerId {
        CustomerId::parse("c1").unwrap()
    }

    #[test]
    fn only_the_code_s_customer_reserves_it_and_one_order_holds_it_two_hours_at_most() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let r = issued([1; 8], now);
        let stranger = CustomerId::parse("c2").unwrap();
        assert_eq!(
            r.reserve(&stranger, "order-9", now),
            Err(ReserveError::OtherCustomer)
        );
        // One order renewing every 50 minutes keeps the code no longer than the cap.
        let mut held = r.reserve(&c1(), "order-1", now).unwrap();
        let mut t = now;
        let mut renewals = 0;
        loop {
            t += Duration::minutes(50);
            match held.reserve(&c1(), "order-1", t) {
                Ok(again) => {
                    held = again;
                    renewals += 1;
                }
                Err(e) => {
                    assert_eq!(e, ReserveError::HoldSpent { since: now });
                    break;
                }
            }
            assert!(renewals < 10, "renewals end");
        }
        let until = held.reserved.as_ref().unwrap().until;
        assert_eq!(until, now + Duration::minutes(MAX_HOLD_MINUTES));
        assert_eq!(renewals, 2);
        // The customer's own checkout gets the code once that hold has run out.
        assert!(held.reserve(&c1(), "order-2", until).is_ok());
    }

    #[test]
    fn one_order_holds_a_code_until_it_is_reported_or_the_hold_runs_out() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let r = issued([1; 8], now);
        let held = r.reserve(&c1(), "order-1", now).unwrap();
        assert_eq!(held.held(now).unwrap().order_ref, "order-1");
        // The same order again keeps it; another order is refused while it holds.
        assert!(held
            .reserve(&c1(), "order-1", now + Duration::minutes(5))
            .is_ok());
        assert!(matches!(
            held.reserve(&c1(), "order-2", now + Duration::minutes(5)),
            Err(ReserveError::HeldByAnotherOrder { .. })
        ));
        assert_eq!(
            held.redeem("c1", "order-2", now + Duration::minutes(5)),
            Err(RedeemError::ReservedByAnotherOrder)
        );
        let used = held
            .redeem("c1", "order-1", now + Duration::minutes(5))
            .unwrap();
        assert_eq!(used.reserved, None);
        assert_eq!(used.status(now), CodeStatus::Redeemed);
        assert!(matches!(
            used.reserve(&c1(), "order-3", now),
            Err(ReserveError::NotValid {
                status: CodeStatus::Redeemed
            })
        ));
        // An abandoned checkout frees the code after the hold.
        let later = now + Duration::minutes(RESERVATION_MINUTES);
        assert!(held.reserve(&c1(), "order-2", later).is_ok());
        assert!(held.redeem("c1", "order-2", later).is_ok());
    }
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn spec() -> RewardSpec {
        RewardSpec {
            amounts: Default::default(),
            kind: RewardKind::AmountOff,
            value: Some(Money(1000)),
            product: None,
            orders: None,
            validity_days: 14,
        }
    }

    fn issued(entropy: [u8; 8], now: DateTime<Utc>) -> Reward {
        Reward::issue(
            RewardCode::from_entropy(entropy),
            spec(),
            &"c1".parse().unwrap(),
            "camp",
            "e1",
            "a",
            1,
            "EUR",
            now,
        )
    }

    #[test]
    fn codes_are_well_formed_and_unique() {
        let mut seen = std::collections::HashSet::new();
        // SplitMix64: 10,000 distinct draws, as the caller's random source would give.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let c = RewardCode::from_entropy((z ^ (z >> 31)).to_be_bytes());
            assert_eq!(c.as_str().len(), 17);
            assert!(c.as_str().starts_with("WB-"));
            assert!(seen.insert(c));
        }
    }

    #[test]
    fn typed_codes_are_forgiving() {
        let c = RewardCode::from_entropy([1, 2, 3, 4, 5, 6, 7, 8]);
        let typed = c.as_str().to_lowercase().replace('-', " ");
        assert_eq!(RewardCode::parse(&typed).unwrap(), c);
        assert!(RewardCode::parse("WB-1234").is_err());
        assert!(RewardCode::parse("WB-ÅÅÅÅ-1234-5678").is_err());
    }

    #[test]
    fn a_code_redeems_once_before_it_expires_and_only_for_its_owner() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let r = issued([9; 8], now);
        assert_eq!(r.expires_at, now + Duration::days(14));
        assert_eq!(r.redeem("c2", "o-1", now), Err(RedeemError::OtherCustomer));
        let used = r.redeem("c1", "o-1", now).unwrap();
        assert_eq!(used.status(now), CodeStatus::Redeemed);
        assert_eq!(
            used.redeem("c1", "o-1", now),
            Err(RedeemError::AlreadyRedeemed)
        );
        assert_eq!(
            r.redeem("c1", "o-1", now + Duration::days(15)),
            Err(RedeemError::Expired)
        );
    }

    #[test]
    fn each_kind_checks_what_it_needs() {
        let mut s = spec();
        s.value = None;
        assert!(s.validate().is_err());
        s.kind = RewardKind::Consultation;
        assert!(s.validate().is_ok());
        s.kind = RewardKind::MultiOrder;
        s.value = Some(Money(500));
        assert_eq!(s.validate(), Err(SpecError::BadOrders));
        s.orders = Some(5);
        assert!(s.validate().is_ok());
        s.kind = RewardKind::PercentOff;
        s.value = Some(Money(15_000));
        assert_eq!(s.validate(), Err(SpecError::PercentOutOfRange));
    }

    #[test]
    fn a_changed_reward_gets_a_new_code_and_voids_the_old_one() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let issued = issued([5; 8], now);
        assert_eq!(next_offer(Some(&issued), &spec(), now), Offer::Keep);
        assert_eq!(
            next_offer(None, &spec(), now),
            Offer::Issue { replaces: None }
        );
        let mut consultation = spec();
        consultation.kind = RewardKind::Consultation;
        consultation.value = None;
        assert_eq!(
            next_offer(Some(&issued), &consultation, now),
            Offer::Issue {
                replaces: Some(issued.code.clone())
            }
        );
        let mut more = spec();
        more.value = Some(Money(1500));
        assert!(matches!(
            next_offer(Some(&issued), &more, now),
            Offer::Issue { replaces: Some(_) }
        ));
        // Expired or used codes are not voided, just followed by a fresh one.
        let later = now + Duration::days(20);
        assert_eq!(
            next_offer(Some(&issued), &spec(), later),
            Offer::Issue { replaces: None }
        );
        let used = issued.redeem("c1", "o-1", now).unwrap();
        assert_eq!(
            next_offer(Some(&used), &spec(), now),
            Offer::Issue { replaces: None }
        );
        // A voided code is refused at checkout and never kept.
        let voided = issued.void(now);
        assert_eq!(voided.status(now), CodeStatus::Voided);
        assert_eq!(voided.redeem("c1", "o-1", now), Err(RedeemError::Voided));
        assert_eq!(
            next_offer(Some(&voided), &spec(), now),
            Offer::Issue { replaces: None }
        );
    }

    proptest! {
        #[test]
        fn every_code_parses_back_to_itself(bytes in proptest::array::uniform8(any::<u8>())) {
            let c = RewardCode::from_entropy(bytes);
            prop_assert_eq!(RewardCode::parse(c.as_str()).unwrap(), c.clone());
            prop_assert!(c.as_str()[3..].chars().all(|ch| ch == '-' || ALPHABET.contains(&(ch as u8))));
        }
    }
}
