//! Native webhooks of the shop platforms: `POST /v1/platforms/{shopify,woocommerce,stripe}`.
//!
//! Each request is verified with the platform's own signature scheme, then mapped onto the
//! activity contract ([`crate::activity::Activity`]) and recorded by the same code as
//! `POST /v1/activity` (deduplicated by an event id taken from the signed body). Privacy requests
//! (Shopify's mandatory topics) erase through the same code as `DELETE /v1/customers/{id}`.
//!
//! Responses: `401` for a missing, wrong or stale signature (or a delivery older than
//! [`REPLAY_WINDOW_DAYS`] for the platforms whose signatures carry no time), `400` for a signed
//! body that cannot be read (a platform this deployment has no secret for is answered as a
//! signature that matches no key, so its answer tells nothing of what is connected), `200` with
//! `{"status": "ignored", "reason"}` for topics and states that mean nothing here. A 4xx never
//! changes anything.

mod shopify;
mod stripe;
mod woocommerce;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use shared::domain::customer::{OrderLine, ORDER_LINES};
use shared::domain::edge::{CustomerId, Locale};
use shared::domain::hygiene::EmailAddress;
use shared::domain::money::{Currency, Money};
use shared::domain::refund::Refunded;
use subtle::ConstantTimeEq;

use crate::activity::{self, Activity, Invalid, Kind, ProfileFields};
use crate::deps::{Deps, LEASE};
use crate::http::{json_error, json_response, Handled, HttpRequest};
use crate::signed;
use shared::ports::Claimed;

/// Deliveries whose own signed time (an order's or customer's last change) is older than this
/// are refused as replays where the signature carries no time (Shopify, WooCommerce). Shorter
/// than the 30 days event ids are remembered, so every accepted delivery is deduplicated.
pub(crate) const REPLAY_WINDOW_DAYS: i64 = 7;

/// The platforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Platform {
    Shopify,
    WooCommerce,
    Stripe,
}

impl Platform {
    pub(crate) fn parse(name: &str) -> Option<Platform> {
        match name {
            "shopify" => Some(Platform::Shopify),
            "woocommerce" => Some(Platform::WooCommerce),
            "stripe" => Some(Platform::Stripe),
            _ => None,
        }
    }

    fn secret_name(self) -> &'static str {
        match self {
            Platform::Shopify => "WINBACK_SHOPIFY_SECRET (or shopify_secret in the secret)",
            Platform::WooCommerce => {
                "WINBACK_WOOCOMMERCE_SECRET (or woocommerce_secret in the secret)"
            }
            Platform::Stripe => "WINBACK_STRIPE_SECRET (or stripe_secret in the secret)",
        }
    }

    /// Where its order ids come from ([`shared::domain::activity::source`]).
    fn source(self) -> &'static str {
        use shared::domain::activity::source;
        match self {
            Platform::Shopify => source::SHOPIFY,
            Platform::WooCommerce => source::WOOCOMMERCE,
            Platform::Stripe => source::STRIPE,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Platform::Shopify => "Shopify",
            Platform::WooCommerce => "WooCommerce",
            Platform::Stripe => "Stripe",
        }
    }
}

/// Why a platform's signature was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PlatformSignatureError {
    #[error("missing {0} header: point the platform's webhook at this URL unchanged")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("signature does not match: check that this deployment has the platform's current webhook secret")]
    Mismatch,
    #[error("signature timestamp is more than 300 s from now: the delivery is stale or replayed")]
    Stale,
    #[error("the delivery describes a change more than {REPLAY_WINDOW_DAYS} days old: refused as a replay")]
    Replay,
    #[error("the delivery is from another shop than the one this deployment is connected to")]
    OtherShop,
}

/// A refund whose payload names only its order (Shopify's `refunds/create`): recorded as the
/// `refund` activity of the customer the order index remembers for the order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderRefund {
    pub event_id: String,
    pub order_id: String,
    pub refunded: Refunded,
    pub at: DateTime<Utc>,
}

/// What a platform's webhook asks of winback.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mapped {
    Record(Box<Activity>),
    RefundOfOrder(Box<OrderRefund>),
    Erase {
        customer_id: CustomerId,
    },
    /// The shop must hand the customer's data over (Shopify `customers/data_request`).
    DataRequest {
        customer_id: CustomerId,
    },
    /// The shop uninstalled and its data must go (Shopify `shop/redact`).
    ShopRedact,
    Ignored(String),
}

fn mac(key: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(payload);
    m.finalize().into_bytes().into()
}

/// Verifies `base64(HMAC-SHA256(secret, raw body))` (Shopify, WooCommerce) against any key.
pub(crate) fn verify_base64_hmac(
    header: Option<&str>,
    name: &'static str,
    body: &[u8],
    keys: &[Vec<u8>],
) -> Result<(), PlatformSignatureError> {
    let header = header.ok_or(PlatformSignatureError::Missing(name))?;
    let given = BASE64
        .decode(header.trim())
        .map_err(|_| PlatformSignatureError::Malformed(name))?;
    let mut ok = 0u8;
    for key in keys {
        ok |= mac(key, body).ct_eq(given.as_slice()).unwrap_u8();
    }
    if ok == 1 {
        Ok(())
    } else {
        Err(PlatformSignatureError::Mismatch)
    }
}

/// Refuses a delivery whose signed change time is outside the replay window.
pub(crate) fn within_window(
    changed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), PlatformSignatureError> {
    if now - changed_at > Duration::days(REPLAY_WINDOW_DAYS) {
        Err(PlatformSignatureError::Replay)
    } else {
        Ok(())
    }
}

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A JSON object body.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(invalid("body", "the body must be a JSON object")),
        Err(e) => Err(invalid("body", format!("the body is not JSON: {e}"))),
    }
}

/// Ids and customers as every platform reader takes them (shared with `winback import --from`).
pub(crate) use shared::platforms::{customer_id_at, id_at, time_at};

/// A non-empty string without control characters, at most `max` characters.
pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str, max: usize) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control))
}

/// An email address the activity contract accepts, else none (a platform's odd address never
/// refuses its order).
pub(crate) fn email_at(v: &Value, pointer: &str) -> Option<EmailAddress> {
    EmailAddress::parse(v.pointer(pointer)?.as_str()?).ok()
}

/// A locale like `en` or `sv-SE`, else none.
pub(crate) fn locale_at(v: &Value, pointer: &str) -> Option<Locale> {
    Locale::parse(v.pointer(pointer)?.as_str()?).ok()
}

/// Where a platform's order lines keep what a line is.
pub(crate) struct LineFields {
    /// The array of lines (a JSON pointer).
    pub lines: &'static str,
    pub product: &'static str,
    pub category: Option<&'static str>,
    pub quantity: &'static str,
}

/// The order lines at `fields.lines`, at most [`ORDER_LINES`], each with its unit price from
/// `price` (a line's value, or `None`): a line without a product name is skipped, a quantity
/// that is no positive number is 1. The platforms' own bodies never refuse an order for a line.
pub(crate) fn lines_at(
    o: &Value,
    fields: &LineFields,
    price: impl Fn(&Value, u32) -> Option<Money>,
) -> Vec<OrderLine> {
    o.pointer(fields.lines)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let product = str_at(l, fields.product, 200)?.to_string();
            let quantity = l
                .pointer(fields.quantity)
                .and_then(Value::as_u64)
                .and_then(|q| u32::try_from(q).ok())
                .filter(|q| (1..=100_000).contains(q))
                .unwrap_or(1);
            Some(OrderLine {
                product,
                category: fields
                    .category
                    .and_then(|c| str_at(l, c, 100))
                    .map(str::to_string),
                quantity,
                price: price(l, quantity).filter(|p| p.0 >= 0),
            })
        })
        .take(ORDER_LINES)
        .collect()
}

/// A decimal amount written as a JSON string or number (`"18.00"`, `18`, `18.5`).
pub(crate) fn decimal_at(v: &Value, pointer: &str) -> Option<Money> {
    match v.pointer(pointer)? {
        Value::String(s) => Money::parse(s).ok(),
        Value::Number(n) if n.is_i64() => Money::from_major(n.as_i64()?),
        Value::Number(n) => Money::parse(&format!("{:.2}", n.as_f64()?)).ok(),
        _ => None,
    }
}

/// The first word of a full name.
pub(crate) fn first_word(name: &str) -> Option<String> {
    name.split_whitespace().next().map(str::to_string)
}

/// A decimal amount string and an ISO 4217 code (any case).
pub(crate) fn amount(
    value: Option<&str>,
    currency: Option<&str>,
) -> Result<(Money, Currency), Invalid> {
    let money = value
        .and_then(|v| Money::parse(v).ok())
        .filter(|m| m.0 >= 0)
        .ok_or_else(|| {
            invalid(
                "total",
                "the order total is missing or not a decimal amount",
            )
        })?;
    Ok((money, currency_code(currency)?))
}

pub(crate) fn currency_code(currency: Option<&str>) -> Result<Currency, Invalid> {
    let c = currency.unwrap_or_default().trim().to_ascii_uppercase();
    Currency::parse(&c).map_err(|_| {
        invalid(
            "currency",
            "the currency is missing or not an ISO 4217 code",
        )
    })
}

/// `POST /v1/platforms/{name}`.
pub(crate) async fn post(
    deps: &Deps,
    req: &HttpRequest,
    platform: Platform,
    now: DateTime<Utc>,
) -> Handled {
    let keys = &deps.keys.platforms;
    let keys = match platform {
        Platform::Shopify => &keys.shopify,
        Platform::WooCommerce => &keys.woocommerce,
        Platform::Stripe => &keys.stripe,
    };
    if platform == Platform::WooCommerce && woocommerce::is_ping(req) {
        // WooCommerce saves a webhook only when its unsigned ping gets a 2xx.
        return Ok(json_response(200, &json!({ "status": "ping" })));
    }
    if keys.is_empty() {
        // Answered as a signature that matches no key (no key matches it), so a prober cannot
        // tell which platforms are connected; the operator finds the reason in the log.
        tracing::warn!(
            event = "platform_not_connected",
            platform = platform.label(),
            "set {} to connect it",
            platform.secret_name()
        );
    }
    let mapped = match platform {
        Platform::Shopify => shopify::verify(req, keys)
            .map(|()| shopify::map(req, deps.keys.platforms.shopify_shop.as_deref(), now)),
        Platform::WooCommerce => {
            let source = deps.keys.platforms.woocommerce_source.as_deref();
            let pseudonyms = &deps.keys.pseudonym;
            woocommerce::verify(req, keys).map(|()| woocommerce::map(req, source, pseudonyms, now))
        }
        Platform::Stripe => stripe::verify(req, keys, now).map(|()| stripe::map(&req.body, now)),
    };
    let mapped = match mapped {
        Err(e) => return Ok(json_error(401, &e.to_string(), None)),
        Ok(Err(MapError::Invalid(e))) => return Ok(json_error(400, &e.message, Some(&e.field))),
        Ok(Err(MapError::Signature(e))) => return Ok(json_error(401, &e.to_string(), None)),
        Ok(Ok(m)) => m,
    };
    if matches!(
        mapped,
        Mapped::Erase { .. } | Mapped::DataRequest { .. } | Mapped::ShopRedact
    ) {
        return privacy_once(deps, req, platform, mapped, now).await;
    }
    act(deps, platform, mapped, now).await
}

/// How long the signed body of a privacy request is remembered: the same body again within it
/// is a replay and changes nothing (a redact replayed after the customer came back would
/// otherwise erase them again).
const PRIVACY_DEDUP: Duration = Duration::days(400);

/// Acts on a privacy request once per signed body (by its SHA-256): a replay answers
/// `{"status": "duplicate"}`. The body's key is claimed with a short lease and kept only once
/// the request was acted on, so a failure leaves it to the platform's retry.
async fn privacy_once(
    deps: &Deps,
    req: &HttpRequest,
    platform: Platform,
    mapped: Mapped,
    now: DateTime<Utc>,
) -> Handled {
    use sha2::Digest;
    let key = format!(
        "privacy#{}#{}",
        platform.label().to_ascii_lowercase(),
        hex::encode(Sha256::digest(&req.body))
    );
    if let Claimed::Seen(_) = deps.store.claim_key(&key, now + LEASE).await? {
        tracing::info!(
            event = "privacy_request_duplicate",
            platform = platform.label()
        );
        return Ok(json_response(200, &json!({ "status": "duplicate" })));
    }
    let done = act(deps, platform, mapped, now).await;
    let kept = match &done {
        Ok(_) => {
            deps.store
                .record_result(&key, "done", now + PRIVACY_DEDUP)
                .await
        }
        Err(_) => deps.store.release_key(&key).await,
    };
    if let Err(e) = kept {
        tracing::warn!(event = "privacy_key_not_kept", error = %e);
    }
    done
}

/// Does what a verified, mapped delivery asks.
async fn act(deps: &Deps, platform: Platform, mapped: Mapped, now: DateTime<Utc>) -> Handled {
    match mapped {
        Mapped::Record(mut a) => {
            a.source = platform.source();
            activity::record(deps, &a, now).await
        }
        Mapped::RefundOfOrder(r) => {
            let source = platform.source();
            let owner = deps.store.order_owner(source, &r.order_id, now).await?;
            let Some(customer_id) = owner.and_then(|c| CustomerId::parse(&c).ok()) else {
                return Ok(json_response(
                    200,
                    &json!({
                        "status": "ignored",
                        "reason": "the refunded order is not known here (no order of this id was recorded or imported): nothing to take back",
                    }),
                ));
            };
            let OrderRefund {
                event_id,
                order_id,
                refunded,
                at,
            } = *r;
            let a = Activity {
                source,
                order_id: Some(order_id),
                refunded: Some(refunded),
                ..Activity::new(
                    event_id,
                    customer_id,
                    Kind::Refund,
                    at,
                    ProfileFields::default(),
                )
            };
            activity::record(deps, &a, now).await
        }
        Mapped::Erase { customer_id } => {
            let found = signed::erase_and_announce(deps, &customer_id, now).await?;
            Ok(json_response(
                200,
                &json!({
                    "status": if found { "erased" } else { "unknown_customer" },
                    "customer_id": customer_id,
                }),
            ))
        }
        Mapped::DataRequest { customer_id } => {
            tracing::warn!(event = "customer_data_requested", customer_id = %customer_id, platform = platform.label(), "hand the customer's data to the shop");
            Ok(json_response(
                200,
                &json!({ "status": "data_request_logged", "customer_id": customer_id }),
            ))
        }
        Mapped::ShopRedact => {
            tracing::warn!(
                event = "shop_redact_requested",
                platform = platform.label(),
                "the shop uninstalled: delete this deployment's stack to erase its data"
            );
            Ok(json_response(
                200,
                &json!({ "status": "shop_redact_logged" }),
            ))
        }
        Mapped::Ignored(reason) => Ok(json_response(
            200,
            &json!({ "status": "ignored", "reason": reason }),
        )),
    }
}

/// Why a signed body could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MapError {
    Invalid(Invalid),
    Signature(PlatformSignatureError),
}

impl From<Invalid> for MapError {
    fn from(e: Invalid) -> Self {
        MapError::Invalid(e)
    }
}

impl From<PlatformSignatureError> for MapError {
    fn from(e: PlatformSignatureError) -> Self {
        MapError::Signature(e)
    }
}
