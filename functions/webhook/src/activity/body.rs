//! The activity body: read and checked completely before anything is written.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use shared::domain::engagement::PageKind;
use shared::domain::hygiene::Address;
use shared::domain::money::{Currency, Money};

/// How far in the future `occurred_at` may lie (clock skew between shop and AWS).
const FUTURE_TOLERANCE_HOURS: i64 = 24;

/// The kinds of activity (the domain's).
pub(crate) use shared::domain::sequence::ActivityKind as Kind;

/// Personal fields the shop may send along.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProfileFields {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// The platform says the customer does not (or no longer) want marketing email: an opt-out
    /// is applied, never an opt-in (only the customer's own links resubscribe nobody either).
    pub marketing_opt_out: bool,
    /// `profile.birthday`: `YYYY-MM-DD` or `--MM-DD`.
    pub birthday: Option<shared::domain::celebration::Birthday>,
    /// `profile.renewal_due_at`: when the subscription next renews (an RFC 3339 time or a date).
    pub renewal_due_at: Option<DateTime<Utc>>,
}

/// A validated activity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Activity {
    pub event_id: String,
    pub customer_id: String,
    pub kind: Kind,
    pub occurred_at: DateTime<Utc>,
    pub amount: Option<(Money, Currency)>,
    pub reward_code: Option<String>,
    /// The shop's reference of the order (what it reserved the code with); the event id when
    /// the shop sends none.
    pub order_ref: Option<String>,
    pub product: Option<String>,
    pub category: Option<String>,
    /// Which page a `page_view` was.
    pub page_kind: Option<PageKind>,
    pub profile: ProfileFields,
}

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

fn text<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    field: &str,
    max: usize,
    required: bool,
) -> Result<Option<&'a str>, Invalid> {
    match obj.get(name) {
        None | Some(Value::Null) if required => Err(invalid(field, format!("{field} is missing"))),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                Err(invalid(field, format!("{field} is empty")))
            } else if t.chars().count() > max {
                Err(invalid(
                    field,
                    format!("{field} is longer than {max} characters"),
                ))
            } else if t.chars().any(char::is_control) {
                Err(invalid(
                    field,
                    format!("{field} contains control characters"),
                ))
            } else {
                Ok(Some(t))
            }
        }
        Some(_) => Err(invalid(field, format!("{field} must be a string"))),
    }
}

/// Parses and checks a body completely, before anything is written.
pub(crate) fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Activity, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid("body", format!("the body is not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("body", "the body must be a JSON object"))?;
    let event_id = text(obj, "event_id", "event_id", 200, true)?.unwrap_or_default();
    let customer_id = text(obj, "customer_id", "customer_id", 200, true)?.unwrap_or_default();
    let kind_text = text(obj, "type", "type", 40, true)?.unwrap_or_default();
    let kind = Kind::parse(kind_text).ok_or_else(|| {
        invalid(
            "type",
            "type must be order, login, subscription_renewed, subscription_cancelled or page_view",
        )
    })?;
    let page_kind = text(obj, "page_kind", "page_kind", 40, kind == Kind::PageView)?
        .map(|k| {
            PageKind::parse(k).ok_or_else(|| {
                invalid(
                    "page_kind",
                    format!("page_kind must be {}", PageKind::NAMES),
                )
            })
        })
        .transpose()?;
    if page_kind.is_some() && kind != Kind::PageView {
        return Err(invalid(
            "page_kind",
            "page_kind belongs to type page_view only: leave it out",
        ));
    }
    let occurred_text = text(obj, "occurred_at", "occurred_at", 64, true)?.unwrap_or_default();
    let occurred_at = DateTime::parse_from_rfc3339(occurred_text)
        .map_err(|_| {
            invalid(
                "occurred_at",
                "occurred_at must be an RFC 3339 time like 2026-11-22T10:15:00Z",
            )
        })?
        .with_timezone(&Utc);
    if occurred_at > now + Duration::hours(FUTURE_TOLERANCE_HOURS) {
        return Err(invalid(
            "occurred_at",
            "occurred_at lies in the future: send the time the activity happened",
        ));
    }

    let amount = match obj.get("amount") {
        None | Some(Value::Null) => None,
        Some(Value::Object(a)) => {
            let value = a
                .get("value")
                .ok_or_else(|| invalid("amount.value", "amount.value is missing"))?;
            let money: Money = serde_json::from_value(value.clone()).map_err(|_| {
                invalid(
                    "amount.value",
                    "amount.value must be a decimal string like \"12.50\"",
                )
            })?;
            if money.0 < 0 {
                return Err(invalid("amount.value", "amount.value must not be negative"));
            }
            let currency = text(a, "currency", "amount.currency", 3, true)?.unwrap_or_default();
            let currency = Currency::parse(currency).map_err(|_| {
                invalid(
                    "amount.currency",
                    "amount.currency must be an ISO 4217 code like EUR",
                )
            })?;
            Some((money, currency))
        }
        Some(_) => {
            return Err(invalid(
                "amount",
                "amount must be an object {\"value\": \"12.50\", \"currency\": \"EUR\"}",
            ))
        }
    };
    if kind == Kind::Order && amount.is_none() {
        return Err(invalid(
            "amount",
            "amount is missing: an order needs {\"value\", \"currency\"}",
        ));
    }
    let reward_code = text(obj, "reward_code", "reward_code", 64, false)?.map(str::to_string);
    let order_ref = text(obj, "order_ref", "order_ref", 200, false)?.map(str::to_string);
    let product = text(obj, "product", "product", 200, false)?.map(str::to_string);
    let category = text(obj, "category", "category", 100, false)?.map(str::to_string);

    let profile = match obj.get("profile") {
        None | Some(Value::Null) => ProfileFields::default(),
        Some(Value::Object(p)) => {
            let email = text(p, "email", "profile.email", 254, false)?
                .map(|e| {
                    Address::parse(e)
                        .map_err(|why| invalid("profile.email", format!("profile.email: {why}")))
                })
                .transpose()?;
            let locale = text(p, "locale", "profile.locale", 35, false)?;
            if let Some(l) = locale {
                if !l
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(invalid(
                        "profile.locale",
                        "profile.locale must be a language tag like sv-SE",
                    ));
                }
            }
            let time_zone = text(p, "time_zone", "profile.time_zone", 64, false)?;
            if let Some(tz) = time_zone {
                if tz.parse::<shared::domain::zone::Zone>().is_err() {
                    return Err(invalid(
                        "profile.time_zone",
                        "profile.time_zone must be an IANA zone like Europe/Berlin",
                    ));
                }
            }
            let birthday = text(p, "birthday", "profile.birthday", 10, false)?
                .map(shared::domain::celebration::Birthday::parse)
                .transpose()
                .map_err(|e| invalid("profile.birthday", format!("profile.{e}")))?;
            let renewal_due_at = text(p, "renewal_due_at", "profile.renewal_due_at", 64, false)?
                .map(|t| {
                    shared::domain::engagement::parse_renewal(t).ok_or_else(|| {
                        invalid(
                            "profile.renewal_due_at",
                            "profile.renewal_due_at must be an RFC 3339 time like 2026-11-22T10:15:00Z or a date like 2026-11-22",
                        )
                    })
                })
                .transpose()?;
            ProfileFields {
                birthday,
                renewal_due_at,
                email: email.map(|a| a.as_str().to_string()),
                first_name: text(p, "first_name", "profile.first_name", 100, false)?
                    .map(str::to_string),
                locale: locale.map(str::to_string),
                time_zone: time_zone.map(str::to_string),
                marketing_opt_out: false,
            }
        }
        Some(_) => return Err(invalid("profile", "profile must be an object")),
    };

    Ok(Activity {
        event_id: event_id.to_string(),
        customer_id: customer_id.to_string(),
        kind,
        occurred_at,
        amount,
        reward_code,
        order_ref,
        product,
        category,
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
            ("type", Box::new(|v| v["type"] = json!("refund"))),
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
            // What the orders CSV refuses too (one parser: shared::domain::hygiene::Address).
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
    fn logins_need_no_amount() {
        let v = json!({"event_id": "e2", "customer_id": "c1", "type": "login", "occurred_at": "2026-11-22T10:00:00Z"});
        assert_eq!(parse(&body(v), now()).unwrap().kind, Kind::Login);
    }
}
