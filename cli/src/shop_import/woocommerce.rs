//! WooCommerce's REST API v3: `GET /wp-json/wc/v3/orders?per_page=100&page=N`, oldest first
//! by id (`orderby=id&order=asc`, so orders placed during the import never shift a page), paid
//! orders only (`status=processing,completed`, as the `order.updated` webhook records them); the
//! page count from `X-WP-TotalPages`. WooCommerce has no rate limit of its own; a host's 429
//! (with `Retry-After`) is waited out.

use async_trait::async_trait;
use serde_json::Value;
use shared::adapters::checkout::http::Client;
use shared::domain::hygiene::EmailAddress;
use shared::domain::money::Money;
use shared::platforms::{time_at, woocommerce_customer};
use shared::ports::CheckoutError;
use shared::pseudonym::Pseudonyms;

use super::{currency, decimal, Line, Page, Reader, ShopOrder, Skip};

/// Orders per page (WooCommerce's largest).
pub const PER_PAGE: u64 = 100;

pub(super) struct WooCommerce {
    client: Client,
    headers: Vec<(&'static str, String)>,
    /// Guests are known by the keyed hash of their address, as the webhook knows them.
    pseudonyms: Pseudonyms,
    calls: u64,
}

impl WooCommerce {
    pub fn new(
        client: Client,
        headers: Vec<(&'static str, String)>,
        pseudonyms: Pseudonyms,
    ) -> WooCommerce {
        WooCommerce {
            client,
            headers,
            pseudonyms,
            calls: 0,
        }
    }
}

#[async_trait]
impl Reader for WooCommerce {
    async fn page(&mut self, cursor: Option<&str>) -> Result<Page, CheckoutError> {
        let n: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(1);
        self.calls += 1;
        let answer = self
            .client
            .send(
                http::Method::GET,
                &format!(
                    "/wp-json/wc/v3/orders?per_page={PER_PAGE}&page={n}&orderby=id&order=asc&status=processing,completed"
                ),
                &self.headers,
                None,
            )
            .await?;
        if !answer.ok() {
            return Err(answer.refused());
        }
        let total_pages = answer
            .headers
            .get("x-wp-totalpages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let list = answer.json();
        let list = list.as_array().ok_or_else(|| CheckoutError::Refused {
            status: answer.status,
            message: "the answer is not a list of orders".into(),
        })?;
        let mut page = Page {
            total_pages,
            ..Page::default()
        };
        for o in list {
            match order(o, &self.pseudonyms) {
                Ok(o) => page.orders.push(o),
                Err(skip) => page.skipped.push(skip),
            }
        }
        // Without the header, a full page may have a successor.
        let more = match total_pages {
            Some(total) => n < total,
            None => list.len() as u64 == PER_PAGE,
        };
        page.next = more.then(|| (n + 1).to_string());
        Ok(page)
    }

    fn calls(&self) -> u64 {
        self.calls
    }
}

/// An order as the `order.updated` webhook records it: `processing` or `completed`, its
/// refunds (negative `total`s) taken off.
fn order(o: &Value, pseudonyms: &Pseudonyms) -> Result<ShopOrder, Skip> {
    match o.get("status").and_then(Value::as_str) {
        Some("processing" | "completed") => {}
        Some("refunded") => return Err(Skip::Refunded),
        _ => return Err(Skip::NotPaid),
    }
    let customer_id = woocommerce_customer(o, pseudonyms).ok_or(Skip::NoCustomer)?;
    let email = o
        .pointer("/billing/email")
        .and_then(Value::as_str)
        .and_then(|e| EmailAddress::parse(e).ok())
        .ok_or(Skip::NoEmail)?;
    let total = decimal(o.get("total").and_then(Value::as_str)).ok_or(Skip::Unreadable)?;
    let refunded: i64 = o
        .get("refunds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| Money::parse(r.get("total")?.as_str()?).ok())
        .map(|m| m.0.abs())
        .sum();
    if total.0 - refunded <= 0 && refunded > 0 {
        return Err(Skip::Refunded);
    }
    let currency = currency(o.get("currency").and_then(Value::as_str)).ok_or(Skip::Unreadable)?;
    let ordered_at = time_at(o, "/date_paid_gmt")
        .or_else(|| time_at(o, "/date_created_gmt"))
        .ok_or(Skip::Unreadable)?;
    let lines = o
        .get("line_items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let name = l.get("name")?.as_str()?.trim();
            (!name.is_empty()).then(|| Line {
                product: name.to_string(),
                category: None,
                quantity: l.get("quantity").and_then(Value::as_u64).unwrap_or(1) as u32,
                price: l
                    .get("price")
                    .and_then(Value::as_f64)
                    .map(|p| Money((p * 100.0).round() as i64)),
            })
        })
        .collect();
    Ok(ShopOrder {
        customer_id,
        email,
        first_name: o
            .pointer("/billing/first_name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        locale: None,
        currency,
        order_id: shared::platforms::id_at(o, "/id"),
        amount: total,
        refunded: Money(refunded),
        ordered_at,
        opted_out: false,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_guest_order_is_the_webhooks_guest_and_refunds_come_off() {
        let o = json!({"id": 5, "status": "completed", "currency": "SEK", "total": "500.00",
            "customer_id": 0, "billing": {"email": "Guest@Example.com", "first_name": "Bo"},
            "date_paid_gmt": "2026-01-02T10:00:00", "date_created_gmt": "2026-01-02T09:59:00",
            "refunds": [{"id": 9, "total": "-100.00"}],
            "line_items": [{"name": "Mug", "quantity": 1, "price": 400.0}]});
        let p = Pseudonyms::new(b"key");
        let got = order(&o, &p).unwrap();
        assert_eq!(
            got.customer_id.as_str(),
            p.woocommerce_guest("guest@example.com")
        );
        assert_eq!(got.order_id.as_deref(), Some("5"));
        assert_eq!((got.amount, got.refunded), (Money(50_000), Money(10_000)));
        assert_eq!(got.lines[0].price, Some(Money(40_000)));
        let mut all = o.clone();
        all["refunds"] = json!([{"id": 9, "total": "-500.00"}]);
        assert_eq!(order(&all, &p), Err(Skip::Refunded));
        let mut pending = o;
        pending["status"] = json!("pending");
        assert_eq!(order(&pending, &p), Err(Skip::NotPaid));
    }
}
