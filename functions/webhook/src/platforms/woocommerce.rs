//! WooCommerce webhooks: `X-WC-Webhook-Signature` is `base64(HMAC-SHA256(webhook secret, raw
//! body))`; the topic is in `X-WC-Webhook-Topic`.
//!
//! `order.created` and `order.updated` record an order once it is paid (`processing` or
//! `completed`), deduplicated by the order id, so the many updates of one order count once.
//! An `order.updated` whose status is `refunded` or `cancelled`, or that carries `refunds`, is a
//! `refund` of the order (all of it, or the refunds' total so far), deduplicated by the order
//! and that total.
//! Registered customers keep WooCommerce's customer id; a guest (`customer_id` 0) is known by a
//! keyed hash of the billing email (`woo-guest-<16 hex>`, [`Pseudonyms::woocommerce_guest`]), so
//! the address never becomes an id in logs, SES tags or link tokens, and the id cannot be
//! turned back into it by hashing guessed addresses.
//! Replays are recognised by the order id and a last change (`date_modified_gmt`) within
//! [`super::REPLAY_WINDOW_DAYS`]. WooCommerce's unsigned ping (`webhook_id=<n>`, sent when a
//! webhook is saved) is answered 200 and changes nothing.

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::domain::money::Money;
use shared::domain::refund::Refunded;
use shared::pseudonym::Pseudonyms;

use super::{
    amount, decimal_at, email_at, id_at, lines_at, object, str_at, time_at, verify_base64_hmac,
    within_window, LineFields, MapError, Mapped, PlatformSignatureError,
};
use crate::activity::{Activity, Kind, ProfileFields};
use crate::http::HttpRequest;

const SIGNATURE: &str = "X-WC-Webhook-Signature";

pub(super) fn verify(req: &HttpRequest, keys: &[Vec<u8>]) -> Result<(), PlatformSignatureError> {
    verify_base64_hmac(req.header(SIGNATURE), SIGNATURE, &req.body, keys)
}

/// The unsigned `webhook_id=<n>` ping WooCommerce sends when a webhook is saved.
pub(super) fn is_ping(req: &HttpRequest) -> bool {
    req.header(SIGNATURE).is_none()
        && req.body.len() < 40
        && std::str::from_utf8(&req.body)
            .ok()
            .and_then(|b| b.strip_prefix("webhook_id="))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The store a delivery is from (`X-WC-Webhook-Source`), checked against the configured
/// `source` (trailing slashes aside).
fn from_store(req: &HttpRequest, source: &str) -> Result<(), MapError> {
    let given = req.header("X-WC-Webhook-Source").map(str::trim);
    let same = |s: &str| {
        s.trim_end_matches('/')
            .eq_ignore_ascii_case(source.trim_end_matches('/'))
    };
    if given.is_some_and(same) {
        Ok(())
    } else {
        Err(PlatformSignatureError::OtherShop.into())
    }
}

/// What the order's `refunds` (each `{"id", "total": "-5.00"}`) add up to, if any.
fn refunded(o: &Value) -> Result<Option<Money>, MapError> {
    let mut so_far = Money::ZERO;
    for r in o
        .get("refunds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let total = str_at(r, "/total", 32)
            .map(|t| t.trim_start_matches('-'))
            .and_then(|t| Money::parse(t).ok())
            .filter(|m| m.0 >= 0)
            .ok_or_else(|| super::invalid("refunds.total", "a refund's total is not an amount"))?;
        so_far += total;
    }
    Ok((so_far.0 > 0).then_some(so_far))
}

pub(super) fn map(
    req: &HttpRequest,
    source: Option<&str>,
    pseudonyms: &Pseudonyms,
    now: DateTime<Utc>,
) -> Result<Mapped, MapError> {
    if let Some(source) = source {
        from_store(req, source)?;
    }
    let topic = req
        .header("X-WC-Webhook-Topic")
        .map(str::trim)
        .unwrap_or_default();
    if !matches!(topic, "order.created" | "order.updated") {
        return Ok(Mapped::Ignored(format!(
            "topic '{topic}' is not used: send order.created and order.updated"
        )));
    }
    // Neither the topic nor the resource header is signed: the signed body itself must be an
    // order (a customer or product body replayed under an order topic is refused).
    let resource = req.header("X-WC-Webhook-Resource").map(str::trim);
    let o = Value::Object(object(&req.body)?);
    let is_order = o.get("line_items").is_some_and(Value::is_array)
        && o.get("total").is_some_and(|t| !t.is_null());
    if resource.is_some_and(|r| r != "order") || !is_order {
        return Err(super::invalid(
            "X-WC-Webhook-Topic",
            format!("the signed body is not an order (line_items, total), as topic {topic} says: refused"),
        )
        .into());
    }
    let order_id = id_at(&o, "/id").ok_or_else(|| super::invalid("id", "the order has no id"))?;
    let changed = time_at(&o, "/date_modified_gmt")
        .or_else(|| time_at(&o, "/date_created_gmt"))
        .ok_or_else(|| {
            super::invalid(
                "date_modified_gmt",
                "the order has no date_modified_gmt or date_created_gmt",
            )
        })?;
    within_window(changed, now)?;
    let status = o.get("status").and_then(Value::as_str).unwrap_or_default();
    let refunds = refunded(&o)?;
    let refunding = topic == "order.updated"
        && (matches!(status, "refunded" | "cancelled") || refunds.is_some());
    if !matches!(status, "processing" | "completed") && !refunding {
        return Ok(Mapped::Ignored(format!(
            "order status '{status}' is not paid: processing or completed records it"
        )));
    }
    let email = email_at(&o, "/billing/email");
    let Some(customer_id) = shared::platforms::woocommerce_customer(&o, pseudonyms) else {
        return Ok(Mapped::Ignored(
            "a guest order without a billing email".into(),
        ));
    };
    if refunding {
        // A cancelled or wholly refunded order goes all; a partly refunded one, by its refunds.
        let (refunded, key) = match (status, refunds) {
            ("refunded" | "cancelled", _) | (_, None) => (Refunded::Whole, "all".to_string()),
            (_, Some(so_far)) => (Refunded::SoFar(so_far), so_far.0.to_string()),
        };
        return Ok(Mapped::Record(Box::new(Activity {
            order_id: Some(order_id.clone()),
            refunded: Some(refunded),
            ..Activity::new(
                format!("woocommerce:refund:{order_id}:{key}"),
                customer_id,
                Kind::Refund,
                changed.min(now),
                ProfileFields::default(),
            )
        })));
    }
    let occurred_at = time_at(&o, "/date_paid_gmt")
        .or_else(|| time_at(&o, "/date_created_gmt"))
        .unwrap_or(changed);
    let total = amount(str_at(&o, "/total", 32), str_at(&o, "/currency", 8))?;
    let profile = ProfileFields {
        email,
        first_name: str_at(&o, "/billing/first_name", 100).map(str::to_string),
        ..ProfileFields::default()
    };
    Ok(Mapped::Record(Box::new(Activity {
        amount: Some(total),
        reward_code: str_at(&o, "/coupon_lines/0/code", 64).map(str::to_string),
        order_ref: Some(order_id.clone()),
        order_id: Some(order_id.clone()),
        lines: lines_at(
            &o,
            &LineFields {
                lines: "/line_items",
                product: "/name",
                category: None,
                quantity: "/quantity",
            },
            |l, _| decimal_at(l, "/price"),
        ),
        ..Activity::new(
            format!("woocommerce:order:{order_id}"),
            customer_id,
            Kind::Order,
            occurred_at.min(now),
            profile,
        )
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bare_ping_passes_unsigned() {
        let ping = |body: &[u8], sig: bool| HttpRequest {
            method: "POST".into(),
            path: "/v1/platforms/woocommerce".into(),
            body: body.to_vec(),
            headers: if sig {
                vec![(SIGNATURE.into(), "x".into())]
            } else {
                Vec::new()
            },
            ..HttpRequest::default()
        };
        assert!(is_ping(&ping(b"webhook_id=42", false)));
        assert!(!is_ping(&ping(b"webhook_id=42", true)));
        assert!(!is_ping(&ping(b"webhook_id=42&x=1", false)));
        assert!(!is_ping(&ping(b"{\"id\": 1}", false)));
    }
}
