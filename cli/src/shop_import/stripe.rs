//! Stripe: `GET /v1/charges?limit=100&expand[]=data.customer`, newest first, paged with
//! `starting_after=<the last charge's id>` (so charges made during the import never shift a
//! page), the customer expanded in the same request for their email, name and locale. Only
//! succeeded, paid charges of a customer are orders, `amount_refunded` taken off. A 429 is
//! waited out for its `Retry-After`.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use serde_json::Value;
use shared::adapters::checkout::http::Client;
use shared::domain::edge::Locale;
use shared::domain::hygiene::EmailAddress;
use shared::platforms::{stripe_customer, stripe_money, stripe_payment};
use shared::ports::CheckoutError;

use super::{currency, Page, Reader, ShopOrder, Skip};

/// Charges per page (Stripe's largest).
pub const LIMIT: u64 = 100;

pub(super) struct Stripe {
    client: Client,
    headers: Vec<(&'static str, String)>,
    calls: u64,
}

impl Stripe {
    pub fn new(client: Client, headers: Vec<(&'static str, String)>) -> Stripe {
        Stripe {
            client,
            headers,
            calls: 0,
        }
    }
}

#[async_trait]
impl Reader for Stripe {
    async fn page(&mut self, cursor: Option<&str>) -> Result<Page, CheckoutError> {
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("limit", &LIMIT.to_string());
            q.append_pair("expand[]", "data.customer");
            if let Some(c) = cursor {
                q.append_pair("starting_after", c);
            }
            q.finish()
        };
        self.calls += 1;
        let answer = self
            .client
            .send(
                http::Method::GET,
                &format!("/v1/charges?{query}"),
                &self.headers,
                None,
            )
            .await?;
        if !answer.ok() {
            return Err(answer.refused());
        }
        let v = answer.json();
        let data =
            v.get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| CheckoutError::Refused {
                    status: answer.status,
                    message: "the answer is not a list of charges".into(),
                })?;
        let mut page = Page::default();
        for c in data {
            match charge(c) {
                Ok(o) => page.orders.push(o),
                Err(skip) => page.skipped.push(skip),
            }
        }
        let more = v.get("has_more").and_then(Value::as_bool) == Some(true);
        page.next = data
            .last()
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .filter(|_| more)
            .map(str::to_string);
        Ok(page)
    }

    fn calls(&self) -> u64 {
        self.calls
    }
}

/// A succeeded, paid charge of a customer, `amount_refunded` taken off.
fn charge(c: &Value) -> Result<ShopOrder, Skip> {
    let paid = c.get("paid").and_then(Value::as_bool) == Some(true)
        && c.get("status").and_then(Value::as_str) == Some("succeeded");
    if !paid {
        return Err(Skip::NotPaid);
    }
    let int = |k: &str| c.get(k).and_then(Value::as_i64);
    let amount = int("amount").ok_or(Skip::Unreadable)?;
    let net = amount - int("amount_refunded").unwrap_or(0);
    if net <= 0 {
        return Err(Skip::Refunded);
    }
    let customer_id = stripe_customer(c).ok_or(Skip::NoCustomer)?;
    let customer = c.get("customer").filter(|v| v.is_object());
    let currency = currency(c.get("currency").and_then(Value::as_str)).ok_or(Skip::Unreadable)?;
    let refunded = stripe_money(amount - net, currency.as_str()).ok_or(Skip::Unreadable)?;
    let amount = stripe_money(amount, currency.as_str()).ok_or(Skip::Unreadable)?;
    let email = customer
        .and_then(|k| k.get("email"))
        .or_else(|| c.pointer("/billing_details/email"))
        .or_else(|| c.get("receipt_email"))
        .and_then(Value::as_str)
        .and_then(|e| EmailAddress::parse(e).ok())
        .ok_or(Skip::NoEmail)?;
    let ordered_at = int("created")
        .and_then(|t| Utc.timestamp_opt(t, 0).single())
        .ok_or(Skip::Unreadable)?;
    Ok(ShopOrder {
        customer_id,
        email,
        first_name: customer
            .and_then(|k| k.get("name"))
            .or_else(|| c.pointer("/billing_details/name"))
            .and_then(Value::as_str)
            .and_then(|n| n.split_whitespace().next())
            .map(str::to_string),
        locale: customer
            .and_then(|k| k.pointer("/preferred_locales/0"))
            .and_then(Value::as_str)
            .and_then(|l| Locale::parse(l).ok()),
        currency,
        order_id: stripe_payment(c),
        amount,
        refunded,
        ordered_at,
        opted_out: false,
        lines: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::domain::money::Money;

    #[test]
    fn only_succeeded_paid_charges_count_with_what_was_refunded() {
        let c = json!({"id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": 1500,
            "currency": "eur", "created": 1_767_225_600, "paid": true, "status": "succeeded",
            "refunded": false, "payment_intent": "pi_1",
            "customer": {"id": "cus_1", "object": "customer", "email": "ada@example.com",
                "name": "Ada Lovelace", "preferred_locales": ["pl"]}});
        let got = charge(&c).unwrap();
        assert_eq!(
            (got.customer_id.as_str(), got.amount, got.refunded),
            ("cus_1", Money(5000), Money(1500))
        );
        assert_eq!(
            got.order_id.as_deref(),
            Some("pi_1"),
            "as its refunds name it"
        );
        assert_eq!(got.first_name.as_deref(), Some("Ada"));
        assert_eq!(got.locale.unwrap().as_str(), "pl");
        let mut all = c.clone();
        all["amount_refunded"] = json!(5000);
        assert_eq!(charge(&all), Err(Skip::Refunded));
        let mut failed = c.clone();
        failed["status"] = json!("failed");
        assert_eq!(charge(&failed), Err(Skip::NotPaid));
        let mut yen = c;
        yen["currency"] = json!("jpy");
        yen["amount_refunded"] = json!(0);
        assert_eq!(charge(&yen).unwrap().amount, Money(500_000), "¥5000");
    }
}
