//! Shopify webhooks: `X-Shopify-Hmac-Sha256` is `base64(HMAC-SHA256(app client secret, raw
//! body))`; the topic is in `X-Shopify-Topic`.
//!
//! Orders (`orders/create` once paid, `orders/paid`) become `order` activity, deduplicated by the
//! order id, so an order delivered by both topics (or retried) counts once. Refunds come with
//! `refunds/create` (one refund: its payload names only the order, so the customer is the one the
//! order index remembers for it) and with `orders/updated` (every refund of the order so far),
//! each refund by its id, so one delivered both ways is taken off once; cancellations come with
//! `orders/cancelled`. All become `refund` activity. Customers
//! (`customers/create`, `customers/update`) update the profile (never a win-back), deduplicated by
//! customer id and `updated_at`. An email marketing consent other than `subscribed` or `pending`
//! (in a customer payload, or since API version 2025-01 in
//! `customers/email_marketing_consent_update`) unsubscribes; none ever resubscribes. `customers/redact` erases the customer; `customers/data_request` and
//! `shop/redact` are logged for the operator. The header `X-Shopify-Webhook-Id` is not signed, so
//! replays are recognised by the signed body: its event id, and a change time within
//! [`super::REPLAY_WINDOW_DAYS`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::domain::edge::Locale;
use shared::domain::hygiene::EmailAddress;
use shared::domain::money::Money;
use shared::domain::refund::Refunded;

use super::{
    amount, customer_id_at, decimal_at, email_at, id_at, lines_at, locale_at, object, str_at,
    time_at, verify_base64_hmac, within_window, LineFields, MapError, Mapped, OrderRefund,
    PlatformSignatureError,
};
use crate::activity::{Activity, Invalid, Kind, ProfileFields};
use crate::http::HttpRequest;

const SIGNATURE: &str = "X-Shopify-Hmac-Sha256";

pub(super) fn verify(req: &HttpRequest, keys: &[Vec<u8>]) -> Result<(), PlatformSignatureError> {
    verify_base64_hmac(req.header(SIGNATURE), SIGNATURE, &req.body, keys)
}

/// Whether an email marketing consent (or the older `accepts_marketing`) says "no".
fn opted_out(customer: &Value) -> bool {
    match customer
        .pointer("/email_marketing_consent/state")
        .and_then(Value::as_str)
    {
        Some(state) => shared::platforms::shopify_opted_out(state),
        None => customer.get("accepts_marketing").and_then(Value::as_bool) == Some(false),
    }
}

fn profile(
    customer: &Value,
    fallback_email: Option<EmailAddress>,
    locale: Option<Locale>,
) -> ProfileFields {
    ProfileFields {
        email: email_at(customer, "/email").or(fallback_email),
        first_name: str_at(customer, "/first_name", 100).map(str::to_string),
        locale,
        time_zone: None,
        marketing_opt_out: opted_out(customer),
        birthday: None,
        renewal_due_at: None,
    }
}

/// The privacy topics Shopify requires: each erases or hands over data, so each is checked
/// beyond its signature (see [`map`]).
const PRIVACY_TOPICS: [&str; 3] = ["customers/redact", "customers/data_request", "shop/redact"];

/// Fields only the privacy requests' bodies carry, and fields only orders carry: a body with
/// the other kind's fields was signed for another topic.
const PRIVACY_FIELDS: [&str; 4] = [
    "shop_domain",
    "orders_to_redact",
    "orders_requested",
    "data_request",
];
const ORDER_FIELDS: [&str; 4] = [
    "line_items",
    "total_price",
    "financial_status",
    "order_number",
];

/// Whether `body` is of the shape `topic` sends: the topic header is not signed (Shopify signs
/// only the body), so a signed body replayed under another topic must not pass as that topic's.
fn shape_fits(topic: &str, body: &Value) -> Result<(), Invalid> {
    let has = |f: &str| body.get(f).is_some_and(|v| !v.is_null());
    let wrong = |what: &str| {
        Err(super::invalid(
            "X-Shopify-Topic",
            format!("the signed body is not a {what}, as topic {topic} says: refused"),
        ))
    };
    let privacy_fields = PRIVACY_FIELDS.iter().any(|f| has(f));
    let order_fields = ORDER_FIELDS.iter().any(|f| has(f));
    match topic {
        "orders/create" | "orders/paid" | "orders/updated" | "orders/cancelled"
            if privacy_fields || !order_fields =>
        {
            wrong("order")
        }
        "customers/create" | "customers/update" if privacy_fields || order_fields => {
            wrong("customer")
        }
        "refunds/create"
            if privacy_fields
                || order_fields
                || !has("order_id")
                || !(has("transactions") || has("refund_line_items")) =>
        {
            wrong("refund (order_id, transactions, refund_line_items)")
        }
        "customers/redact"
            if !(has("shop_domain") && has("customer") && has("orders_to_redact"))
                || order_fields =>
        {
            wrong("redact request (shop_domain, customer, orders_to_redact)")
        }
        "customers/data_request"
            if !(has("shop_domain") && has("customer") && has("orders_requested"))
                || order_fields =>
        {
            wrong("data request (shop_domain, customer, orders_requested)")
        }
        "shop/redact" if !has("shop_domain") || has("customer") || order_fields => {
            wrong("shop redact request (shop_domain)")
        }
        _ => Ok(()),
    }
}

/// The shop a delivery is from, checked against the configured `shop`: the unsigned
/// `X-Shopify-Shop-Domain` header, and for privacy requests the signed body's `shop_domain`.
fn from_shop(req: &HttpRequest, body: &Value, topic: &str, shop: &str) -> Result<(), MapError> {
    let header = req.header("X-Shopify-Shop-Domain").map(str::trim);
    let signed = body
        .get("shop_domain")
        .and_then(Value::as_str)
        .map(str::trim);
    let is_shop = |d: Option<&str>| d.is_some_and(|d| d.eq_ignore_ascii_case(shop));
    if !is_shop(header) || (PRIVACY_TOPICS.contains(&topic) && !is_shop(signed)) {
        return Err(PlatformSignatureError::OtherShop.into());
    }
    Ok(())
}

/// A privacy request is refused when Shopify triggered it more than
/// [`super::REPLAY_WINDOW_DAYS`] ago (`X-Shopify-Triggered-At`), or without saying when.
fn triggered_recently(req: &HttpRequest, now: DateTime<Utc>) -> Result<(), MapError> {
    let at = req
        .header("X-Shopify-Triggered-At")
        .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
        .ok_or_else(|| {
            super::invalid(
                "X-Shopify-Triggered-At",
                "a privacy request needs X-Shopify-Triggered-At (RFC 3339), as Shopify sends it",
            )
        })?;
    within_window(at.with_timezone(&Utc), now)?;
    Ok(())
}

pub(super) fn map(
    req: &HttpRequest,
    shop: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Mapped, MapError> {
    let Some(topic) = req.header("X-Shopify-Topic").map(str::trim) else {
        return Err(
            super::invalid("X-Shopify-Topic", "the X-Shopify-Topic header is missing").into(),
        );
    };
    let body = Value::Object(object(&req.body)?);
    shape_fits(topic, &body)?;
    if let Some(shop) = shop {
        from_shop(req, &body, topic, shop)?;
    }
    if PRIVACY_TOPICS.contains(&topic) {
        triggered_recently(req, now)?;
    }
    match topic {
        "orders/create" | "orders/paid" => order(topic, &body, now),
        "orders/updated" | "orders/cancelled" => refund(topic, &body, now),
        "refunds/create" => refund_created(&body, now),
        "customers/create" | "customers/update" => customer(&body, now),
        "customers/email_marketing_consent_update" => consent(&body, now),
        "customers/redact" => Ok(match customer_id_at(&body, "/customer/id") {
            Some(customer_id) => Mapped::Erase { customer_id },
            None => {
                return Err(
                    super::invalid("customer.id", "customers/redact without customer.id").into(),
                )
            }
        }),
        "customers/data_request" => Ok(match customer_id_at(&body, "/customer/id") {
            Some(customer_id) => Mapped::DataRequest { customer_id },
            None => {
                return Err(super::invalid(
                    "customer.id",
                    "customers/data_request without customer.id",
                )
                .into())
            }
        }),
        "shop/redact" => Ok(Mapped::ShopRedact),
        other => Ok(Mapped::Ignored(format!("topic {other} is not used"))),
    }
}

/// When `what` (an order, a customer) last changed (`updated_at`, else `created_at`), if within
/// the replay window of `now`.
fn changed_at(v: &Value, what: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, MapError> {
    let at = time_at(v, "/updated_at")
        .or_else(|| time_at(v, "/created_at"))
        .ok_or_else(|| {
            super::invalid(
                "updated_at",
                format!("the {what} has no updated_at or created_at time"),
            )
        })?;
    within_window(at, now)?;
    Ok(at)
}

fn order(topic: &str, o: &Value, now: DateTime<Utc>) -> Result<Mapped, MapError> {
    let order_id = id_at(o, "/id").ok_or_else(|| super::invalid("id", "the order has no id"))?;
    let changed = changed_at(o, "order", now)?;
    let paid = matches!(
        o.get("financial_status").and_then(Value::as_str),
        Some("paid" | "partially_paid" | "partially_refunded")
    );
    if topic == "orders/create" && !paid {
        return Ok(Mapped::Ignored(
            "the order is not paid yet: orders/paid records it".into(),
        ));
    }
    let Some(customer_id) = o
        .pointer("/customer/id")
        .and_then(shared::platforms::shopify_customer)
    else {
        return Ok(Mapped::Ignored("the order has no customer".into()));
    };
    let occurred_at = time_at(o, "/processed_at")
        .or_else(|| time_at(o, "/created_at"))
        .unwrap_or(changed);
    let total = amount(str_at(o, "/total_price", 32), str_at(o, "/currency", 8))?;
    let customer = o.get("customer").cloned().unwrap_or(Value::Null);
    let profile = profile(
        &customer,
        email_at(o, "/email"),
        locale_at(o, "/customer_locale"),
    );
    Ok(Mapped::Record(Box::new(Activity {
        amount: Some(total),
        reward_code: str_at(o, "/discount_codes/0/code", 64).map(str::to_string),
        // A checkout reserves the code before the order exists: by its checkout token.
        order_ref: Some(
            str_at(o, "/checkout_token", 200).map_or_else(|| order_id.clone(), str::to_string),
        ),
        order_id: Some(order_id.clone()),
        lines: lines_at(
            o,
            &LineFields {
                lines: "/line_items",
                product: "/title",
                category: Some("/product_type"),
                quantity: "/quantity",
            },
            |l, _| decimal_at(l, "/price"),
        ),
        ..Activity::new(
            format!("shopify:order:{order_id}"),
            customer_id,
            Kind::Order,
            occurred_at.min(now),
            profile,
        )
    })))
}

fn customer(c: &Value, now: DateTime<Utc>) -> Result<Mapped, MapError> {
    let customer_id =
        customer_id_at(c, "/id").ok_or_else(|| super::invalid("id", "the customer has no id"))?;
    let updated = changed_at(c, "customer", now)?;
    Ok(Mapped::Record(Box::new(Activity::new(
        format!("shopify:customer:{customer_id}:{}", updated.timestamp()),
        customer_id,
        Kind::Profile,
        updated.min(now),
        profile(c, None, locale_at(c, "/locale")),
    ))))
}

/// `customers/email_marketing_consent_update`: `{"customer_id", "email_address",
/// "email_marketing_consent": {"state", "opt_in_level", "consent_updated_at"}}`.
fn consent(c: &Value, now: DateTime<Utc>) -> Result<Mapped, MapError> {
    let customer_id = customer_id_at(c, "/customer_id")
        .ok_or_else(|| super::invalid("customer_id", "the consent update has no customer_id"))?;
    let updated = time_at(c, "/email_marketing_consent/consent_updated_at");
    if let Some(at) = updated {
        within_window(at, now)?;
    }
    if !opted_out(c) {
        return Ok(Mapped::Ignored(
            "consent given: only the customer's own choice in winback's links subscribes".into(),
        ));
    }
    let at = updated.unwrap_or(now).min(now);
    let profile = ProfileFields {
        email: email_at(c, "/email_address"),
        marketing_opt_out: true,
        ..ProfileFields::default()
    };
    Ok(Mapped::Record(Box::new(Activity::new(
        format!("shopify:consent:{customer_id}:{}", at.timestamp()),
        customer_id,
        Kind::Profile,
        at,
        profile,
    ))))
}

/// What one refund (a `refunds/create` body, or an entry of an order's `refunds`) gave back:
/// its successful `refund` transactions, in `currency` (a transaction's own when it names one).
fn refunded_by(r: &Value, currency: Option<&str>) -> Result<Money, MapError> {
    let mut sum = Money::ZERO;
    for t in r
        .get("transactions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let refund = t.get("kind").and_then(Value::as_str) == Some("refund")
            && t.get("status").and_then(Value::as_str) == Some("success");
        if refund {
            let currency = str_at(t, "/currency", 8).or(currency);
            let (m, _) = amount(str_at(t, "/amount", 32), currency)?;
            sum += m;
        }
    }
    Ok(sum)
}

/// `refunds/create`: one refund of order `order_id`, by its `id`. What it gave back is its
/// successful refund transactions; a refund with no refund transaction at all is its
/// `refund_line_items` subtotals (one whose transactions failed gave nothing back). Its payload names no customer: the order index says whose
/// order it is (see [`super::act`]). Deduplicated by the refund's id.
fn refund_created(r: &Value, now: DateTime<Utc>) -> Result<Mapped, MapError> {
    let refund_id = id_at(r, "/id").ok_or_else(|| super::invalid("id", "the refund has no id"))?;
    let order_id = id_at(r, "/order_id")
        .ok_or_else(|| super::invalid("order_id", "the refund has no order_id"))?;
    let at = time_at(r, "/created_at")
        .or_else(|| time_at(r, "/processed_at"))
        .ok_or_else(|| super::invalid("created_at", "the refund has no created_at time"))?;
    within_window(at, now)?;
    let mut given = refunded_by(r, None)?;
    let has_transactions = r
        .get("transactions")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t.get("kind").and_then(Value::as_str) == Some("refund"))
        });
    if !has_transactions {
        for l in r
            .get("refund_line_items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let subtotal = decimal_at(l, "/subtotal")
                .filter(|m| m.0 >= 0)
                .ok_or_else(|| {
                    super::invalid(
                        "refund_line_items.subtotal",
                        "a refund line item's subtotal is missing or not a decimal amount",
                    )
                })?;
            given += subtotal;
        }
    }
    if given.0 == 0 {
        return Ok(Mapped::Ignored(
            "the refund gives nothing back (no successful refund transaction or line item)".into(),
        ));
    }
    Ok(Mapped::RefundOfOrder(Box::new(OrderRefund {
        event_id: format!("shopify:refund:{order_id}:r{refund_id}"),
        order_id,
        refunded: Refunded::Named {
            id: refund_id,
            amount: given,
        },
        at: at.min(now),
    })))
}

/// `orders/updated` with refunds, and `orders/cancelled`: every refund of the order so far (the
/// successful refund transactions of each of its `refunds`, by the refund's id), or all of it
/// when it is cancelled or its financial status says `refunded`. Deduplicated by the order and
/// the refunded total, so a later refund of the same order is a new event and a repeated one is
/// not; a refund `refunds/create` brought already is not taken again.
fn refund(topic: &str, o: &Value, now: DateTime<Utc>) -> Result<Mapped, MapError> {
    let order_id = id_at(o, "/id").ok_or_else(|| super::invalid("id", "the order has no id"))?;
    let changed = changed_at(o, "order", now)?;
    let Some(customer_id) = customer_id_at(o, "/customer/id") else {
        return Ok(Mapped::Ignored("the order has no customer".into()));
    };
    let cancelled = topic == "orders/cancelled" || time_at(o, "/cancelled_at").is_some();
    let status = o.get("financial_status").and_then(Value::as_str);
    let currency = str_at(o, "/currency", 8);
    let mut refunds = Vec::new();
    let mut so_far = Money::ZERO;
    for (i, r) in o
        .get("refunds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let given = refunded_by(r, currency)?;
        if given.0 > 0 {
            so_far += given;
            let id = id_at(r, "/id").unwrap_or_else(|| format!("#{i}"));
            refunds.push((id, given));
        }
    }
    let (refunded, key) = if cancelled || status == Some("refunded") {
        (Refunded::Whole, "all".to_string())
    } else if so_far.0 > 0 {
        (Refunded::AllNamed(refunds), so_far.0.to_string())
    } else {
        return Ok(Mapped::Ignored(
            "an order update that neither refunds nor cancels: orders/paid records the order"
                .into(),
        ));
    };
    let at = time_at(o, "/cancelled_at").unwrap_or(changed).min(now);
    Ok(Mapped::Record(Box::new(Activity {
        order_id: Some(order_id.clone()),
        refunded: Some(refunded),
        ..Activity::new(
            format!("shopify:refund:{order_id}:{key}"),
            customer_id,
            Kind::Refund,
            at,
            ProfileFields::default(),
        )
    })))
}
