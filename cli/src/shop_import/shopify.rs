//! Shopify's Admin GraphQL API ([`SHOPIFY_API_VERSION`]): the `orders` query, oldest first
//! (`sortKey: CREATED_AT`), paged by cursor (`pageInfo { hasNextPage endCursor }`).
//!
//! A page asks for `first: 250` orders. A query may cost at most Shopify's single-query limit
//! (1 000 points); each order with its customer, totals and first [`LINE_ITEMS`] line items costs
//! about 30, so Shopify refuses the first request with `MAX_COST_EXCEEDED` and the cost it
//! computed, and the page size is scaled down to fit (34 orders here) for the rest of the run.
//! After each page the cost bucket (`extensions.cost.throttleStatus`) is read: when it holds
//! less than the page cost, the next page waits until it has refilled; a `THROTTLED` answer
//! waits as long as the refill takes.

use async_trait::async_trait;
use serde_json::{json, Value};
use shared::adapters::checkout::http::Client;
use shared::adapters::checkout::{shopify_refill_seconds, SHOPIFY_API_VERSION};
use shared::domain::edge::Locale;
use shared::domain::hygiene::EmailAddress;
use shared::platforms::{shopify_customer, shopify_opted_out, time_at};
use shared::ports::CheckoutError;

use super::{currency, decimal, Line, Page, Reader, ShopOrder, Skip};

/// The page size asked for first (Shopify's largest).
pub const FIRST: u64 = 250;
/// Line items read per order.
pub const LINE_ITEMS: u64 = 5;

const ORDERS: &str = "query WinbackOrders($first: Int!, $after: String, $lines: Int!) {
  orders(first: $first, after: $after, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      createdAt
      processedAt
      cancelledAt
      test
      displayFinancialStatus
      email
      customerLocale
      customer {
        id
        firstName
        locale
        defaultEmailAddress { emailAddress marketingState }
      }
      totalPriceSet { shopMoney { amount currencyCode } }
      totalRefundedSet { shopMoney { amount currencyCode } }
      lineItems(first: $lines) {
        nodes {
          title
          quantity
          product { productType }
          originalUnitPriceSet { shopMoney { amount } }
        }
      }
    }
  }
}";

pub(super) struct Shopify {
    client: Client,
    headers: Vec<(&'static str, String)>,
    first: u64,
    calls: u64,
}

impl Shopify {
    pub fn new(client: Client, headers: Vec<(&'static str, String)>) -> Shopify {
        Shopify {
            client,
            headers,
            first: FIRST,
            calls: 0,
        }
    }
}

/// What one GraphQL answer said.
enum Answer {
    Data(Value),
    /// `MAX_COST_EXCEEDED`: the query's cost and the limit.
    TooCostly {
        cost: f64,
        max: f64,
    },
}

impl Shopify {
    async fn call(&mut self, cursor: Option<&str>) -> Result<Answer, CheckoutError> {
        let body = json!({
            "query": ORDERS,
            "variables": { "first": self.first, "after": cursor, "lines": LINE_ITEMS },
        });
        self.calls += 1;
        let answer = self
            .client
            .send(
                http::Method::POST,
                &format!("/admin/api/{SHOPIFY_API_VERSION}/graphql.json"),
                &self.headers,
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await?;
        if !answer.ok() {
            return Err(answer.refused());
        }
        let v = answer.json();
        let Some(errors) = v.get("errors").and_then(Value::as_array) else {
            return Ok(Answer::Data(v));
        };
        let code = |c: &str| {
            errors
                .iter()
                .find(|e| e.pointer("/extensions/code").and_then(Value::as_str) == Some(c))
        };
        if code("THROTTLED").is_some() {
            return Err(CheckoutError::RateLimited {
                retry_after_seconds: shopify_refill_seconds(&v),
            });
        }
        if let Some(e) = code("MAX_COST_EXCEEDED") {
            let num = |p: &str| e.pointer(p).and_then(Value::as_f64);
            if let (Some(cost), Some(max)) = (num("/extensions/cost"), num("/extensions/maxCost")) {
                return Ok(Answer::TooCostly { cost, max });
            }
        }
        Err(answer.refused())
    }
}

/// The page size whose cost fits under `max`, from a page of `first` that cost `cost`
/// (a connection costs 2 plus its nodes').
pub(super) fn fitting(first: u64, cost: f64, max: f64) -> u64 {
    let per_order = ((cost - 2.0) / first as f64).max(1.0);
    (((max - 2.0) / per_order).floor() as u64).clamp(1, first.saturating_sub(1).max(1))
}

/// How long to wait before a query of `cost` when the bucket holds `available` and refills at
/// `rate` a second.
pub(super) fn bucket_wait(v: &Value) -> std::time::Duration {
    let cost = v.pointer("/extensions/cost");
    let num = |p: &str| cost.and_then(|c| c.pointer(p)).and_then(Value::as_f64);
    match (
        num("/requestedQueryCost"),
        num("/throttleStatus/currentlyAvailable"),
        num("/throttleStatus/restoreRate"),
    ) {
        (Some(asked), Some(left), Some(rate)) if rate > 0.0 && left < asked => {
            std::time::Duration::from_secs_f64((asked - left) / rate)
        }
        _ => std::time::Duration::ZERO,
    }
}

#[async_trait]
impl Reader for Shopify {
    async fn page(&mut self, cursor: Option<&str>) -> Result<Page, CheckoutError> {
        let v = loop {
            match self.call(cursor).await? {
                Answer::Data(v) => break v,
                Answer::TooCostly { cost, max } => {
                    if self.first == 1 {
                        return Err(CheckoutError::Refused {
                            status: 200,
                            message: format!("one order costs {cost} points, over {max}"),
                        });
                    }
                    self.first = fitting(self.first, cost, max);
                }
            }
        };
        let orders = v
            .pointer("/data/orders")
            .ok_or_else(|| CheckoutError::Refused {
                status: 200,
                message: "the answer has no data.orders".into(),
            })?;
        let mut page = Page {
            wait: bucket_wait(&v),
            ..Page::default()
        };
        for o in orders
            .get("nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match order(o) {
                Ok(o) => page.orders.push(o),
                Err(skip) => page.skipped.push(skip),
            }
        }
        let more = orders
            .pointer("/pageInfo/hasNextPage")
            .and_then(Value::as_bool)
            == Some(true);
        page.next = orders
            .pointer("/pageInfo/endCursor")
            .and_then(Value::as_str)
            .filter(|_| more)
            .map(str::to_string);
        Ok(page)
    }

    fn calls(&self) -> u64 {
        self.calls
    }
}

/// An order of the `orders` query, as the `orders/paid` webhook would record it: paid (or
/// partly), not cancelled, not a test; refunds taken off.
fn order(o: &Value) -> Result<ShopOrder, Skip> {
    if o.get("test").and_then(Value::as_bool) == Some(true) {
        return Err(Skip::Test);
    }
    if !o.get("cancelledAt").is_none_or(Value::is_null) {
        return Err(Skip::NotPaid);
    }
    match o.get("displayFinancialStatus").and_then(Value::as_str) {
        Some("PAID" | "PARTIALLY_PAID" | "PARTIALLY_REFUNDED") => {}
        Some("REFUNDED") => return Err(Skip::Refunded),
        _ => return Err(Skip::NotPaid),
    }
    let customer = o
        .get("customer")
        .filter(|c| c.is_object())
        .ok_or(Skip::NoCustomer)?;
    let customer_id = customer
        .get("id")
        .and_then(shopify_customer)
        .ok_or(Skip::NoCustomer)?;
    let address = customer.get("defaultEmailAddress");
    let email = address
        .and_then(|a| a.get("emailAddress"))
        .or_else(|| o.get("email"))
        .and_then(Value::as_str)
        .and_then(|e| EmailAddress::parse(e).ok())
        .ok_or(Skip::NoEmail)?;
    let money = |p: &str| decimal(o.pointer(p).and_then(Value::as_str));
    let total = money("/totalPriceSet/shopMoney/amount").ok_or(Skip::Unreadable)?;
    let refunded = money("/totalRefundedSet/shopMoney/amount").unwrap_or_default();
    if total.0 - refunded.0 <= 0 && refunded.0 > 0 {
        return Err(Skip::Refunded);
    }
    let currency = currency(
        o.pointer("/totalPriceSet/shopMoney/currencyCode")
            .and_then(Value::as_str),
    )
    .ok_or(Skip::Unreadable)?;
    let ordered_at = time_at(o, "/processedAt")
        .or_else(|| time_at(o, "/createdAt"))
        .ok_or(Skip::Unreadable)?;
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let lines = o
        .pointer("/lineItems/nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            Some(Line {
                product: text(l.get("title"))?,
                category: text(l.pointer("/product/productType")),
                quantity: l.get("quantity").and_then(Value::as_u64).unwrap_or(1) as u32,
                price: decimal(
                    l.pointer("/originalUnitPriceSet/shopMoney/amount")
                        .and_then(Value::as_str),
                ),
            })
        })
        .collect();
    Ok(ShopOrder {
        customer_id,
        email,
        first_name: text(customer.get("firstName")),
        locale: customer
            .get("locale")
            .or_else(|| o.get("customerLocale"))
            .and_then(Value::as_str)
            .and_then(|l| Locale::parse(l).ok()),
        currency,
        // The order's legacy id (the webhooks' `id`): the last part of `gid://shopify/Order/<id>`.
        order_id: o
            .get("id")
            .and_then(Value::as_str)
            .and_then(|g| g.rsplit('/').next())
            .filter(|id| !id.is_empty())
            .map(str::to_string),
        amount: total,
        refunded,
        ordered_at,
        opted_out: address
            .and_then(|a| a.get("marketingState"))
            .and_then(Value::as_str)
            .is_some_and(shopify_opted_out),
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::money::Money;

    #[test]
    fn a_page_too_costly_shrinks_to_fit_the_limit() {
        // 250 orders of 29 points and the connection's 2.
        let first = fitting(250, 2.0 + 250.0 * 29.0, 1000.0);
        assert_eq!(first, 34);
        assert!(2 + first * 29 <= 1000);
        assert_eq!(fitting(2, 5000.0, 1000.0), 1);
    }

    #[test]
    fn the_next_page_waits_for_the_bucket_to_hold_its_cost() {
        let v = json!({"extensions": {"cost": {"requestedQueryCost": 988,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 488.0, "restoreRate": 100.0}}}});
        assert_eq!(bucket_wait(&v), std::time::Duration::from_secs(5));
        let full = json!({"extensions": {"cost": {"requestedQueryCost": 988,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1500.0, "restoreRate": 100.0}}}});
        assert_eq!(bucket_wait(&full), std::time::Duration::ZERO);
    }

    #[test]
    fn an_order_is_read_as_the_webhook_reads_it_with_its_refunds() {
        let o = json!({
            "id": "gid://shopify/Order/1", "createdAt": "2026-01-02T10:00:00Z",
            "processedAt": "2026-01-02T10:00:05Z", "cancelledAt": null, "test": false,
            "displayFinancialStatus": "PARTIALLY_REFUNDED", "email": "ada@example.com",
            "customerLocale": "sv-SE",
            "customer": {"id": "gid://shopify/Customer/7408", "firstName": "Ada", "locale": "sv",
                "defaultEmailAddress": {"emailAddress": "ada@example.com", "marketingState": "UNSUBSCRIBED"}},
            "totalPriceSet": {"shopMoney": {"amount": "30.00", "currencyCode": "EUR"}},
            "totalRefundedSet": {"shopMoney": {"amount": "5.50", "currencyCode": "EUR"}},
            "lineItems": {"nodes": [{"title": "Espresso", "quantity": 2,
                "product": {"productType": "coffee"}, "originalUnitPriceSet": {"shopMoney": {"amount": "15.00"}}}]}
        });
        let got = order(&o).unwrap();
        assert_eq!(got.customer_id.as_str(), "7408");
        assert_eq!(
            (got.amount, got.refunded),
            (Money(3000), Money(550)),
            "paid, and what was refunded of it"
        );
        assert_eq!(got.order_id.as_deref(), Some("1"), "the webhooks' order id");
        assert!(got.opted_out);
        assert_eq!(got.locale.unwrap().as_str(), "sv");
        assert_eq!(got.lines[0].category.as_deref(), Some("coffee"));
        let mut refunded = o.clone();
        refunded["displayFinancialStatus"] = json!("REFUNDED");
        assert_eq!(order(&refunded), Err(Skip::Refunded));
        let mut cancelled = o.clone();
        cancelled["cancelledAt"] = json!("2026-01-03T00:00:00Z");
        assert_eq!(order(&cancelled), Err(Skip::NotPaid));
        let mut guest = o;
        guest["customer"] = Value::Null;
        assert_eq!(order(&guest), Err(Skip::NoCustomer));
    }
}
