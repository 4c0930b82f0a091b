//! The activity body: read and checked completely before anything is written.
//!
//! The body is a derived [`Body`] read through `serde_path_to_error`, so a value of the wrong
//! type or shape is refused naming where it is (`amount.value: ...`); the values that come in
//! from outside parse into the domain's own types ([`CustomerId`], [`EmailAddress`], [`Locale`],
//! [`Zone`], [`Currency`], [`Money`], [`Birthday`]) on the way in. Every field is optional to
//! serde, so that a missing one is named by [`parse`] itself (serde would name its parent).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use shared::domain::celebration::Birthday;
use shared::domain::customer::OrderLine;
use shared::domain::edge::{CustomerId, Locale};
use shared::domain::engagement::{parse_renewal, PageKind};
use shared::domain::hygiene::EmailAddress;
use shared::domain::money::{Currency, Money};
use shared::domain::refund::Refunded;
use shared::domain::zone::Zone;

/// How far in the future `occurred_at` may lie (clock skew between shop and AWS).
const FUTURE_TOLERANCE_HOURS: i64 = 24;

use super::{Activity, Kind, ProfileFields};

/// A field that is missing or wrong, and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The body as sent.
#[derive(Deserialize)]
struct Body {
    event_id: Option<Text<200>>,
    customer_id: Option<CustomerId>,
    #[serde(rename = "type")]
    kind: Option<Parsed<Kind>>,
    occurred_at: Option<Parsed<Occurred>>,
    amount: Option<Amount>,
    reward_code: Option<Text<64>>,
    order_ref: Option<Text<200>>,
    order_id: Option<Text<200>>,
    product: Option<Text<200>>,
    category: Option<Text<100>>,
    lines: Option<Vec<Line>>,
    page_kind: Option<Parsed<PageKind>>,
    profile: Option<Profile>,
}

/// How many lines an order may list.
const MAX_LINES: usize = 200;

/// One of `lines`.
#[derive(Deserialize)]
#[serde(expecting = "an object {\"product\", \"category\"?, \"quantity\"?, \"price\"?}")]
struct Line {
    product: Option<Text<200>>,
    category: Option<Text<100>>,
    quantity: Option<u32>,
    price: Option<Money>,
}

const AMOUNT_SHAPE: &str = "an object {\"value\": \"12.50\", \"currency\": \"EUR\"}";

/// `amount`.
#[derive(Deserialize)]
#[serde(expecting = "an object {\"value\": \"12.50\", \"currency\": \"EUR\"}")]
struct Amount {
    value: Option<Money>,
    currency: Option<Parsed<Currency>>,
}

/// `profile`.
#[derive(Deserialize)]
#[serde(expecting = "an object")]
struct Profile {
    email: Option<EmailAddress>,
    first_name: Option<Text<100>>,
    locale: Option<Locale>,
    time_zone: Option<Zone>,
    birthday: Option<Birthday>,
    renewal_due_at: Option<Parsed<Renewal>>,
}

/// Free text: trimmed, not empty, at most `MAX` characters, no control characters.
struct Text<const MAX: usize>(String);

fn checked(text: &str, max: usize) -> Result<&str, String> {
    let t = text.trim();
    if t.is_empty() {
        Err("is empty: send a value or leave the field out".into())
    } else if t.chars().count() > max {
        Err(format!("is longer than {max} characters"))
    } else if t.chars().any(char::is_control) {
        Err("contains control characters".into())
    } else {
        Ok(t)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        checked(&s, MAX)
            .map(|t| Text(t.to_string()))
            .map_err(serde::de::Error::custom)
    }
}

/// A value written as a string of at most [`FromText::MAX`] characters.
trait FromText: Sized {
    const MAX: usize;
    fn from_text(text: &str) -> Result<Self, String>;
}

struct Parsed<T>(T);

impl<'de, T: FromText> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        checked(&s, T::MAX)
            .and_then(T::from_text)
            .map(Parsed)
            .map_err(serde::de::Error::custom)
    }
}

impl FromText for Kind {
    const MAX: usize = 40;
    fn from_text(text: &str) -> Result<Kind, String> {
        Kind::parse(text).ok_or_else(|| {
            "must be order, refund, login, subscription_renewed, subscription_cancelled or page_view"
                .into()
        })
    }
}

impl FromText for PageKind {
    const MAX: usize = 40;
    fn from_text(text: &str) -> Result<PageKind, String> {
        PageKind::parse(text).ok_or_else(|| format!("must be {}", PageKind::NAMES))
    }
}

impl FromText for Currency {
    const MAX: usize = 3;
    fn from_text(text: &str) -> Result<Currency, String> {
        Currency::parse(text).map_err(|e| e.to_string())
    }
}

/// `occurred_at`: an RFC 3339 time.
struct Occurred(DateTime<Utc>);

impl FromText for Occurred {
    const MAX: usize = 64;
    fn from_text(text: &str) -> Result<Occurred, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Occurred(t.with_timezone(&Utc)))
            .map_err(|_| "must be an RFC 3339 time like 2026-11-22T10:15:00Z".into())
    }
}

/// `profile.renewal_due_at`: an RFC 3339 time or a date.
struct Renewal(DateTime<Utc>);

impl FromText for Renewal {
    const MAX: usize = 64;
    fn from_text(text: &str) -> Result<Renewal, String> {
        parse_renewal(text).map(Renewal).ok_or_else(|| {
            "must be an RFC 3339 time like 2026-11-22T10:15:00Z or a date like 2026-11-22".into()
        })
    }
}

/// A serde error's path as the contract names fields (`amount.value`; `body` for the whole).
fn field_of(path: &serde_path_to_error::Path) -> String {
    let p = path.to_string();
    if p.is_empty() || p == "." {
        "body".into()
    } else {
        p
    }
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, Invalid> {
    value.ok_or_else(|| invalid(field, format!("{field} is missing")))
}

/// Parses and checks a body completely, before anything is written.
pub(crate) fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Activity, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid("body", format!("the body is not JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(invalid("body", "the body must be a JSON object"));
    };
    // serde also reads a struct from an array (by position): the contract wants objects.
    for (name, shape) in [("amount", AMOUNT_SHAPE), ("profile", "an object")] {
        if obj.get(name).is_some_and(Value::is_array) {
            return Err(invalid(name, format!("{name} must be {shape}")));
        }
    }
    let b: Body = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = field_of(e.path());
        invalid(&field, format!("{field}: {}", e.inner()))
    })?;

    let event_id = required(b.event_id, "event_id")?.0;
    let customer_id = required(b.customer_id, "customer_id")?;
    let kind = required(b.kind, "type")?.0;
    let page_kind = match b.page_kind {
        None if kind == Kind::PageView => {
            return Err(invalid(
                "page_kind",
                format!(
                    "page_kind is missing: a page_view needs {}",
                    PageKind::NAMES
                ),
            ))
        }
        Some(_) if kind != Kind::PageView => {
            return Err(invalid(
                "page_kind",
                "page_kind belongs to type page_view only: leave it out",
            ))
        }
        p => p.map(|p| p.0),
    };
    let occurred_at = required(b.occurred_at, "occurred_at")?.0 .0;
    if occurred_at > now + Duration::hours(FUTURE_TOLERANCE_HOURS) {
        return Err(invalid(
            "occurred_at",
            "occurred_at lies in the future: send the time the activity happened",
        ));
    }
    let amount = match b.amount {
        None => None,
        Some(a) => {
            let money = required(a.value, "amount.value")?;
            if money.0 < 0 {
                return Err(invalid("amount.value", "amount.value must not be negative"));
            }
            Some((money, required(a.currency, "amount.currency")?.0))
        }
    };
    if kind == Kind::Order && amount.is_none() {
        return Err(invalid(
            "amount",
            "amount is missing: an order needs {\"value\", \"currency\"}",
        ));
    }
    let lines = match b.lines {
        Some(_) if kind != Kind::Order => {
            return Err(invalid(
                "lines",
                "lines belong to type order only: leave them out",
            ))
        }
        Some(lines) if lines.len() > MAX_LINES => {
            return Err(invalid(
                "lines",
                format!("an order lists at most {MAX_LINES} lines"),
            ))
        }
        lines => lines
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let field = |name: &str| format!("lines[{i}].{name}");
                let quantity = l.quantity.unwrap_or(1);
                if !(1..=100_000).contains(&quantity) {
                    return Err(invalid(&field("quantity"), "quantity must be 1 to 100000"));
                }
                if l.price.is_some_and(|p| p.0 < 0) {
                    return Err(invalid(&field("price"), "price must not be negative"));
                }
                Ok(OrderLine {
                    product: required(l.product, &field("product"))?.0,
                    category: l.category.map(|t| t.0),
                    quantity,
                    price: l.price,
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let order_id = b.order_id.map(|t| t.0);
    let order_ref = b.order_ref.map(|t| t.0);
    // A refund names its order, and its amount (when it has one) is this refund's alone.
    let refunded = match kind {
        Kind::Refund if order_id.is_none() && order_ref.is_none() => {
            return Err(invalid(
                "order_id",
                "order_id is missing: a refund names the order it refunds (its order_id, or the order_ref it was sent with)",
            ))
        }
        Kind::Refund => Some(match &amount {
            Some((money, _)) => Refunded::This(*money),
            None => Refunded::Whole,
        }),
        _ => None,
    };
    let profile = b
        .profile
        .map_or_else(ProfileFields::default, |p| ProfileFields {
            email: p.email,
            first_name: p.first_name.map(|t| t.0),
            locale: p.locale,
            time_zone: p.time_zone,
            marketing_opt_out: false,
            birthday: p.birthday,
            renewal_due_at: p.renewal_due_at.map(|r| r.0 .0),
        });
    Ok(Activity {
        event_id,
        source: shared::domain::activity::source::SHOP,
        customer_id,
        kind,
        occurred_at,
        amount,
        reward_code: b.reward_code.map(|t| t.0),
        order_ref,
        order_id,
        refunded,
        product: b.product.map(|t| t.0),
        category: b.category.map(|t| t.0),
        lines,
        page_kind,
        profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 0).unwrap()
    }

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn order() -> Value {
        json!({"event_id": "e1", "customer_id": "c1", "type": "order", "occurred_at": "2026-11-22T10:00:00Z",
               "amount": {"value": "42.50", "currency": "EUR"}})
    }

    #[test]
    fn a_refund_names_its_order_and_takes_its_amount_or_the_whole_order() {
        let mut v = order();
        v["type"] = json!("refund");
        v["order_id"] = json!("5001");
        let a = parse(&body(v.clone()), now()).unwrap();
        assert_eq!(a.refunded, Some(Refunded::This(Money(4250))));
        assert_eq!(a.order_key(), "5001");
        v.as_object_mut().unwrap().remove("amount");
        let a = parse(&body(v), now()).unwrap();
        assert_eq!(a.refunded, Some(Refunded::Whole), "a cancellation");
    }

    #[test]
    fn an_order_lists_its_basket_and_a_bad_line_is_named() {
        let mut v = order();
        v["lines"] = json!([
            {"product": "Espresso blend 1 kg", "category": "coffee", "quantity": 2, "price": "18.00"},
            {"product": "Filter papers"},
        ]);
        let a = parse(&body(v.clone()), now()).unwrap();
        assert_eq!(a.lines.len(), 2);
        assert_eq!(a.lines[0].quantity, 2);
        assert_eq!(a.lines[1].quantity, 1);
        assert_eq!(a.lines[0].price, Some(Money(1800)));
        v["lines"][1] = json!({"quantity": 3});
        assert_eq!(
            parse(&body(v.clone()), now()).unwrap_err().field,
            "lines[1].product"
        );
        v["lines"][1] = json!({"product": "x", "quantity": 0});
        assert_eq!(
            parse(&body(v), now()).unwrap_err().field,
            "lines[1].quantity"
        );
    }

    #[test]
    fn a_complete_order_parses() {
        let a = parse(&body(order()), now()).unwrap();
        assert_eq!(a.kind, Kind::Order);
        assert_eq!(
            a.amount,
            Some((Money(4250), Currency::parse("EUR").unwrap()))
        );
    }

    #[test]
    fn each_missing_or_wrong_field_is_named() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "event_id",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("event_id");
                }),
            ),
            ("customer_id", Box::new(|v| v["customer_id"] = json!(""))),
            ("type", Box::new(|v| v["type"] = json!("return"))),
            ("order_id", Box::new(|v| v["type"] = json!("refund"))),
            (
                "occurred_at",
                Box::new(|v| v["occurred_at"] = json!("yesterday")),
            ),
            (
                "occurred_at",
                Box::new(|v| v["occurred_at"] = json!("2027-01-01T00:00:00Z")),
            ),
            (
                "amount",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("amount");
                }),
            ),
            (
                "amount.value",
                Box::new(|v| v["amount"]["value"] = json!("12.345")),
            ),
            (
                "amount.value",
                Box::new(|v| v["amount"]["value"] = json!("-1")),
            ),
            (
                "amount.currency",
                Box::new(|v| v["amount"]["currency"] = json!("eur")),
            ),
            (
                "profile.email",
                Box::new(|v| v["profile"] = json!({"email": "not an address"})),
            ),
            // What the orders CSV refuses too (one parser: shared::domain::hygiene::EmailAddress).
            (
                "profile.email",
                Box::new(|v| v["profile"] = json!({"email": "a@b"})),
            ),
            (
                "profile.email",
                Box::new(|v| v["profile"] = json!({"email": "Ann <ann@example.com>"})),
            ),
            (
                "profile.email",
                Box::new(|v| v["profile"] = json!({"email": "a@[127.0.0.1]"})),
            ),
            (
                "profile.time_zone",
                Box::new(|v| v["profile"] = json!({"time_zone": "Mars/Olympus"})),
            ),
            (
                "profile.birthday",
                Box::new(|v| v["profile"] = json!({"birthday": "1990-02-30"})),
            ),
            ("profile", Box::new(|v| v["profile"] = json!("x"))),
            ("reward_code", Box::new(|v| v["reward_code"] = json!(7))),
        ];
        for (field, change) in cases {
            let mut v = order();
            change(&mut v);
            assert_eq!(parse(&body(v), now()).unwrap_err().field, field);
        }
        assert_eq!(parse(b"{not json", now()).unwrap_err().field, "body");
        assert_eq!(parse(b"[1]", now()).unwrap_err().field, "body");
    }

    #[test]
    fn a_wrong_type_is_refused_naming_its_path() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change)> = vec![
            ("event_id", Box::new(|v| v["event_id"] = json!(12))),
            (
                "customer_id",
                Box::new(|v| v["customer_id"] = json!({"id": 1})),
            ),
            (
                "customer_id",
                Box::new(|v| v["customer_id"] = json!("a\u{7}b")),
            ),
            ("type", Box::new(|v| v["type"] = json!(null))),
            ("amount", Box::new(|v| v["amount"] = json!("12.50"))),
            (
                "amount",
                Box::new(|v| v["amount"] = json!(["12.50", "EUR"])),
            ),
            (
                "amount.value",
                Box::new(|v| v["amount"]["value"] = json!([1])),
            ),
            (
                "amount.currency",
                Box::new(|v| v["amount"]["currency"] = json!(978)),
            ),
            (
                "amount.value",
                Box::new(|v| {
                    v["amount"].as_object_mut().unwrap().remove("value");
                }),
            ),
            (
                "profile.first_name",
                Box::new(|v| v["profile"] = json!({"first_name": false})),
            ),
            (
                "profile.locale",
                Box::new(|v| v["profile"] = json!({"locale": "sv SE"})),
            ),
            (
                "profile.renewal_due_at",
                Box::new(|v| v["profile"] = json!({"renewal_due_at": 5})),
            ),
            ("profile", Box::new(|v| v["profile"] = json!([]))),
        ];
        for (field, change) in cases {
            let mut v = order();
            change(&mut v);
            let e = parse(&body(v), now()).unwrap_err();
            assert_eq!(e.field, field, "{e:?}");
            assert!(e.message.starts_with(field), "{e:?}");
        }
    }

    #[test]
    fn values_parse_into_the_domain_types_at_the_edge() {
        let mut v = order();
        v["customer_id"] = json!("  c 1  ");
        v["unknown"] = json!({"kept": "ignored"});
        v["amount"]["currency"] = json!(" SEK ");
        v["profile"] = json!({"email": " Ann@Shop.SE ", "locale": "sv-SE", "time_zone": "Europe/Stockholm", "first_name": null});
        let a = parse(&body(v), now()).unwrap();
        assert_eq!(a.customer_id.as_str(), "c 1");
        assert_eq!(a.amount.unwrap().1.as_str(), "SEK");
        assert_eq!(a.profile.email.unwrap().as_str(), "Ann@shop.se");
        assert_eq!(a.profile.locale.unwrap().as_str(), "sv-SE");
        assert_eq!(a.profile.time_zone.unwrap().name(), "Europe/Stockholm");
        assert_eq!(a.profile.first_name, None);
    }

    #[test]
    fn logins_need_no_amount() {
        let v = json!({"event_id": "e2", "customer_id": "c1", "type": "login", "occurred_at": "2026-11-22T10:00:00Z"});
        assert_eq!(parse(&body(v), now()).unwrap().kind, Kind::Login);
    }
}
