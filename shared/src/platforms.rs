//! What the shop platforms' records mean to winback, read one way wherever they come in: the
//! platforms' webhooks (`functions/webhook/src/platforms/`) and `winback import --from` (the CLI)
//! both take a Shopify, WooCommerce or Stripe customer to the same [`CustomerId`], a Stripe
//! amount to the same [`Money`], and a Shopify marketing consent to the same choice.

use crate::pseudonym::Pseudonyms;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use crate::domain::edge::CustomerId;
use crate::domain::hygiene::EmailAddress;
use crate::domain::money::Money;

/// An id given as a JSON number or a non-empty string (at most 200 characters).
pub fn id_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() && s.len() <= 200 => Some(s.trim().to_string()),
        _ => None,
    }
}

/// A customer id given as a JSON number or a string ([`CustomerId`]'s rules).
pub fn customer_id_at(v: &Value, pointer: &str) -> Option<CustomerId> {
    id_at(v, pointer).and_then(|id| CustomerId::parse(&id).ok())
}

/// An RFC 3339 time, or (WooCommerce's `_gmt` fields) a naive one taken as UTC.
pub fn time_at(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let s = v.pointer(pointer)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|n| n.and_utc())
        })
}

/// A Shopify customer: its numeric id, as the REST webhooks send it (`"customer": {"id":
/// 7408}`), or the Admin GraphQL global id (`gid://shopify/Customer/7408`): both are `7408`, the
/// id the checkout's codes are restricted to (`gid://shopify/Customer/<id>`).
pub fn shopify_customer(id: &Value) -> Option<CustomerId> {
    let id = match id {
        Value::String(s) => match s.trim().strip_prefix("gid://shopify/Customer/") {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                Value::String(n.to_string())
            }
            Some(_) => return None,
            None if s.trim().starts_with("gid://") => return None,
            None => id.clone(),
        },
        other => other.clone(),
    };
    customer_id_at(&id, "")
}

/// Whether a Shopify email marketing consent state (`email_marketing_consent.state` of the
/// webhooks, `marketingState` of the Admin GraphQL API, in any case) keeps the customer from
/// email: anything but subscribed or pending. A "yes" never resubscribes anyone.
pub fn shopify_opted_out(state: &str) -> bool {
    !matches!(
        state.to_ascii_lowercase().as_str(),
        "subscribed" | "pending"
    )
}

/// The customer of a WooCommerce order (a webhook's body or an order of `GET /orders`): its
/// `customer_id`, or for a guest (`customer_id` 0) the keyed hash of the billing email
/// ([`Pseudonyms::woocommerce_guest`]); `None` for a guest order without a billing address.
pub fn woocommerce_customer(order: &Value, pseudonyms: &Pseudonyms) -> Option<CustomerId> {
    if let Some(id) = customer_id_at(order, "/customer_id") {
        return Some(id);
    }
    let email = EmailAddress::parse(order.pointer("/billing/email")?.as_str()?).ok()?;
    Some(
        CustomerId::parse(&pseudonyms.woocommerce_guest(email.as_str()))
            .expect("a guest id is an id"),
    )
}

/// The customer of a Stripe object (an invoice, a charge, a subscription): its `customer`, an
/// id (`cus_…`) or the expanded customer object.
pub fn stripe_customer(object: &Value) -> Option<CustomerId> {
    let id = match object.get("customer")? {
        Value::String(s) => s,
        Value::Object(o) => o.get("id").and_then(Value::as_str)?,
        _ => return None,
    };
    CustomerId::parse(id).ok()
}

/// The order a Stripe invoice or charge is: the invoice (its own id; a charge's `invoice`),
/// else, for a charge of no invoice, its payment intent. The webhooks' refunds and an imported
/// charge name their order by it. Since API version 2025-03-31 a charge no longer names its
/// invoice: a webhook endpoint on such a version has its refunds of invoices matched by nothing
/// (docs/shop.md says to pin the endpoint's version, or to send refunds as activity).
pub fn stripe_payment(obj: &Value) -> Option<String> {
    let id = |v: Option<&Value>| match v? {
        Value::String(s) if !s.is_empty() && s.len() <= 200 => Some(s.clone()),
        Value::Object(o) => o
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 200)
            .map(str::to_string),
        _ => None,
    };
    if obj.get("object").and_then(Value::as_str) == Some("invoice") {
        return id(obj.get("id"));
    }
    id(obj.get("invoice")).or_else(|| id(obj.get("payment_intent")))
}

/// Currencies Stripe counts in whole units.
const STRIPE_ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Currencies Stripe counts in thousandths.
const STRIPE_THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Stripe's integer amount in `currency` (upper case) as two-decimal minor units; `None` above
/// [`Money::MAX_MAJOR`].
pub fn stripe_money(minor: i64, currency: &str) -> Option<Money> {
    let m = if STRIPE_ZERO_DECIMAL.contains(&currency) {
        Money::from_major(minor)?
    } else if STRIPE_THREE_DECIMAL.contains(&currency) {
        Money(minor / 10)
    } else {
        Money(minor)
    };
    (m.0.unsigned_abs() <= Money::MAX_MAJOR.unsigned_abs() * 100).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_shopify_customer_is_the_same_id_from_a_webhook_and_from_graphql() {
        let rest = shopify_customer(&json!(7408)).unwrap();
        let graphql = shopify_customer(&json!("gid://shopify/Customer/7408")).unwrap();
        assert_eq!(rest, graphql);
        assert_eq!(rest.as_str(), "7408");
        assert_eq!(shopify_customer(&json!("gid://shopify/Order/7408")), None);
        assert_eq!(shopify_customer(&json!("gid://shopify/Customer/x")), None);
        assert_eq!(shopify_customer(&json!(0)), None);
    }

    #[test]
    fn only_subscribed_or_pending_lets_a_shopify_customer_be_emailed() {
        for (state, out) in [
            ("subscribed", false),
            ("PENDING", false),
            ("NOT_SUBSCRIBED", true),
            ("unsubscribed", true),
            ("REDACTED", true),
        ] {
            assert_eq!(shopify_opted_out(state), out, "{state}");
        }
    }

    #[test]
    fn a_woocommerce_guest_is_known_by_the_address_in_any_case_without_showing_it() {
        let p = Pseudonyms::new(b"pseudonym key");
        let a = p.woocommerce_guest("Guest.Buyer@Example.com");
        let guest = json!({"customer_id": 0, "billing": {"email": "Guest.Buyer@example.com"}});
        assert_eq!(woocommerce_customer(&guest, &p).unwrap().as_str(), a);
        let member = json!({"customer_id": 42, "billing": {"email": "a@example.com"}});
        assert_eq!(woocommerce_customer(&member, &p).unwrap().as_str(), "42");
        assert_eq!(woocommerce_customer(&json!({"customer_id": 0}), &p), None);
        let other = Pseudonyms::new(b"another key");
        assert_ne!(woocommerce_customer(&guest, &other).unwrap().as_str(), a);
    }

    #[test]
    fn a_stripe_customer_is_its_id_expanded_or_not() {
        let id = stripe_customer(&json!({"customer": "cus_1"})).unwrap();
        assert_eq!(
            Some(id),
            stripe_customer(&json!({"customer": {"id": "cus_1"}}))
        );
        assert_eq!(stripe_customer(&json!({"customer": null})), None);
    }

    #[test]
    fn stripe_amounts_become_two_decimal_minor_units() {
        assert_eq!(stripe_money(1900, "EUR"), Some(Money(1900)));
        assert_eq!(
            stripe_money(1000, "JPY"),
            Some(Money(100_000)),
            "¥1000 is 1000.00"
        );
        assert_eq!(
            stripe_money(12_340, "KWD"),
            Some(Money(1234)),
            "12.340 KWD is 12.34"
        );
        // No wrapping: 184467440737095517 yen × 100 overflows i64.
        assert_eq!(stripe_money(184_467_440_737_095_517, "JPY"), None);
        assert_eq!(stripe_money(i64::MAX, "EUR"), None);
    }
}
