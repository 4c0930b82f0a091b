//! Stripe webhooks: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(endpoint secret,
//! "<t>.<raw body>")>` (several `v1` during a secret's rotation), refused more than 300 s from now.
//!
//! `invoice.paid` with an amount is an `order` (in the invoice's currency; Stripe's minor units
//! turned into two decimals for zero- and three-decimal currencies); a free renewal
//! (`subscription_cycle` for 0) is `subscription_renewed`. `customer.subscription.deleted`, and an
//! update that schedules the end (`cancel_at_period_end` turned on, or status `canceled`), are
//! `subscription_cancelled`; an update that takes the scheduled end back is
//! `subscription_renewed`. `invoice.upcoming` tags the profile `subscription:renewal_upcoming`
//! (an early signal, never a win-back; the next paid invoice removes the tag).
//! `charge.refunded` is a `refund` of the charge's payment (all of it when `refunded`, else its
//! `amount_refunded` so far), matched to the paid invoice by the charge's `invoice`. Every event is
//! recorded once by its Stripe event id.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use shared::domain::edge::CustomerId;
use shared::domain::money::Money;
use shared::domain::refund::Refunded;
use shared::signing::{verify_webhook, SignatureError};

use super::{
    currency_code, email_at, first_word, object, str_at, MapError, Mapped, PlatformSignatureError,
};
use crate::activity::{Activity, Kind, ProfileFields};
use crate::http::HttpRequest;

const SIGNATURE: &str = "Stripe-Signature";

/// Currencies Stripe counts in whole units.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Currencies Stripe counts in thousandths.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Stripe's scheme is winback's own (`t=…,v1=…` over `"<t>.<body>"`, 300 s): one verifier.
pub(super) fn verify(
    req: &HttpRequest,
    keys: &[Vec<u8>],
    now: DateTime<Utc>,
) -> Result<(), PlatformSignatureError> {
    verify_webhook(req.header(SIGNATURE), &req.body, keys, now).map_err(|e| match e {
        SignatureError::Missing => PlatformSignatureError::Missing(SIGNATURE),
        SignatureError::Malformed => PlatformSignatureError::Malformed(SIGNATURE),
        SignatureError::Stale => PlatformSignatureError::Stale,
        SignatureError::Mismatch | SignatureError::V1Retired => PlatformSignatureError::Mismatch,
    })
}

/// Stripe's integer amount in `currency` as two-decimal minor units; `None` above
/// [`Money::MAX_MAJOR`].
pub(crate) fn money(minor: i64, currency: &str) -> Option<Money> {
    let m = if ZERO_DECIMAL.contains(&currency) {
        Money::from_major(minor)?
    } else if THREE_DECIMAL.contains(&currency) {
        Money(minor / 10)
    } else {
        Money(minor)
    };
    (m.0.unsigned_abs() <= Money::MAX_MAJOR.unsigned_abs() * 100).then_some(m)
}

fn customer_of(object: &Value) -> Option<CustomerId> {
    let id = match object.get("customer")? {
        Value::String(s) => s,
        Value::Object(o) => o.get("id").and_then(Value::as_str)?,
        _ => return None,
    };
    CustomerId::parse(id).ok()
}

/// The order an invoice or a charge is: the invoice (its own id; a charge's `invoice`), else, for
/// a charge of no invoice, its payment intent. Since API version 2025-03-31 a charge no longer
/// names its invoice: a webhook endpoint on such a version has its refunds of invoices matched
/// by nothing (docs/shop.md says to pin the endpoint's version, or to send refunds as activity).
fn payment_of(obj: &Value) -> Option<String> {
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

pub(super) fn map(body: &[u8], now: DateTime<Utc>) -> Result<Mapped, MapError> {
    let event = Value::Object(object(body)?);
    let event_id =
        str_at(&event, "/id", 200).ok_or_else(|| super::invalid("id", "the event has no id"))?;
    let kind = str_at(&event, "/type", 100)
        .ok_or_else(|| super::invalid("type", "the event has no type"))?;
    let created = event
        .get("created")
        .and_then(Value::as_i64)
        .and_then(|t| Utc.timestamp_opt(t, 0).single())
        .ok_or_else(|| super::invalid("created", "the event has no created time"))?;
    let obj = event
        .pointer("/data/object")
        .filter(|o| o.is_object())
        .ok_or_else(|| super::invalid("data.object", "the event has no data.object"))?;
    let previous = event.pointer("/data/previous_attributes");
    let activity = |kind: Kind, occurred_at: DateTime<Utc>, amount, customer_id: CustomerId| {
        let profile = ProfileFields {
            email: email_at(obj, "/customer_email"),
            first_name: str_at(obj, "/customer_name", 100).and_then(first_word),
            ..ProfileFields::default()
        };
        Mapped::Record(Box::new(Activity {
            amount,
            order_id: (kind == Kind::Order).then(|| payment_of(obj)).flatten(),
            product: str_at(obj, "/lines/data/0/description", 200).map(str::to_string),
            ..Activity::new(
                format!("stripe:{event_id}"),
                customer_id,
                kind,
                occurred_at.min(now),
                profile,
            )
        }))
    };
    let Some(customer_id) = customer_of(obj) else {
        return Ok(Mapped::Ignored(format!("{kind} without a customer")));
    };
    Ok(match kind {
        "invoice.paid" => {
            let currency = currency_code(str_at(obj, "/currency", 8))?;
            let paid = obj
                .get("amount_paid")
                .and_then(Value::as_i64)
                .filter(|a| *a >= 0)
                .ok_or_else(|| super::invalid("amount_paid", "the invoice has no amount_paid"))?;
            let at = obj
                .pointer("/status_transitions/paid_at")
                .and_then(Value::as_i64)
                .and_then(|t| Utc.timestamp_opt(t, 0).single())
                .unwrap_or(created);
            if paid > 0 {
                let paid = money(paid, &currency).ok_or_else(|| {
                    super::invalid(
                        "amount_paid",
                        "amount_paid is larger than any order (10^13)",
                    )
                })?;
                let amount = Some((paid, currency));
                activity(Kind::Order, at, amount, customer_id)
            } else if obj.get("billing_reason").and_then(Value::as_str)
                == Some("subscription_cycle")
            {
                activity(Kind::SubscriptionRenewed, at, None, customer_id)
            } else {
                Mapped::Ignored("an invoice of 0 that renews nothing".into())
            }
        }
        "charge.refunded" => {
            let currency = currency_code(str_at(obj, "/currency", 8))?;
            let Some(order_id) = payment_of(obj) else {
                return Ok(Mapped::Ignored(
                    "a refunded charge of no payment intent or invoice".into(),
                ));
            };
            let so_far = obj
                .get("amount_refunded")
                .and_then(Value::as_i64)
                .filter(|a| *a >= 0)
                .and_then(|a| money(a, &currency))
                .ok_or_else(|| {
                    super::invalid("amount_refunded", "the charge has no amount_refunded")
                })?;
            let refunded = if obj.get("refunded").and_then(Value::as_bool) == Some(true) {
                Refunded::Whole
            } else {
                Refunded::SoFar(so_far)
            };
            Mapped::Record(Box::new(Activity {
                order_id: Some(order_id),
                refunded: Some(refunded),
                ..Activity::new(
                    format!("stripe:{event_id}"),
                    customer_id,
                    Kind::Refund,
                    created.min(now),
                    ProfileFields::default(),
                )
            }))
        }
        "invoice.upcoming" => activity(Kind::RenewalUpcoming, created, None, customer_id),
        "customer.subscription.deleted" => {
            activity(Kind::SubscriptionCancelled, created, None, customer_id)
        }
        "customer.subscription.updated" => {
            let now_ending = obj.get("cancel_at_period_end").and_then(Value::as_bool) == Some(true)
                || obj.get("status").and_then(Value::as_str) == Some("canceled");
            let was_ending = previous
                .and_then(|p| p.get("cancel_at_period_end"))
                .and_then(Value::as_bool);
            let status_changed = previous.and_then(|p| p.get("status")).is_some();
            match (now_ending, was_ending) {
                (true, Some(false)) => {
                    activity(Kind::SubscriptionCancelled, created, None, customer_id)
                }
                (true, _) if status_changed => {
                    activity(Kind::SubscriptionCancelled, created, None, customer_id)
                }
                (false, Some(true)) => {
                    activity(Kind::SubscriptionRenewed, created, None, customer_id)
                }
                _ => {
                    Mapped::Ignored("a subscription change that neither ends nor resumes it".into())
                }
            }
        }
        other => Mapped::Ignored(format!("event type {other} is not used")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_amounts_become_two_decimal_minor_units() {
        assert_eq!(money(1900, "EUR"), Some(Money(1900)));
        assert_eq!(money(1000, "JPY"), Some(Money(100_000)), "¥1000 is 1000.00");
        assert_eq!(
            money(12_340, "KWD"),
            Some(Money(1234)),
            "12.340 KWD is 12.34"
        );
        // No wrapping: 184467440737095517 yen × 100 overflows i64.
        assert_eq!(money(184_467_440_737_095_517, "JPY"), None);
        assert_eq!(money(i64::MAX, "EUR"), None);
    }

    #[test]
    fn a_resumed_subscription_is_a_renewal_and_other_changes_are_ignored() {
        let event = |object: Value, previous: Value| {
            serde_json::to_vec(&serde_json::json!({
                "id": "evt_1", "type": "customer.subscription.updated", "created": 1_795_342_000,
                "data": {"object": object, "previous_attributes": previous}
            }))
            .unwrap()
        };
        let now = Utc.timestamp_opt(1_795_342_500, 0).unwrap();
        let resumed = event(
            serde_json::json!({"customer": "cus_1", "cancel_at_period_end": false, "status": "active"}),
            serde_json::json!({"cancel_at_period_end": true}),
        );
        match map(&resumed, now).unwrap() {
            Mapped::Record(a) => assert_eq!(a.kind, Kind::SubscriptionRenewed),
            other => panic!("{other:?}"),
        }
        let quantity = event(
            serde_json::json!({"customer": "cus_1", "cancel_at_period_end": false, "status": "active"}),
            serde_json::json!({"quantity": 1}),
        );
        assert!(matches!(map(&quantity, now).unwrap(), Mapped::Ignored(_)));
        let ended = event(
            serde_json::json!({"customer": "cus_1", "cancel_at_period_end": false, "status": "canceled"}),
            serde_json::json!({"status": "past_due"}),
        );
        match map(&ended, now).unwrap() {
            Mapped::Record(a) => assert_eq!(a.kind, Kind::SubscriptionCancelled),
            other => panic!("{other:?}"),
        }
    }
}
