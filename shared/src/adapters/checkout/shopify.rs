//! Shopify's Admin GraphQL API ([`super::SHOPIFY_API_VERSION`]): `discountCodeBasicCreate` makes
//! a code for one customer, usable `usageLimit` times until `endsAt`; `codeDiscountNodeByCode`
//! and `discountCodeDeactivate` disable it. A code Shopify already has (`TAKEN`: a retry after
//! a lost answer) counts as created. A `THROTTLED` answer (the cost bucket is empty) waits for
//! the bucket to refill.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::http::Client;
use super::SHOPIFY_API_VERSION;
use crate::domain::checkout::{Buyer, CodeRequest, Value as Off};
use crate::ports::{Checkout, CheckoutError};

const CREATE: &str = "mutation WinbackCreateCode($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}";

const FIND: &str = "query WinbackFindCode($code: String!) {
  codeDiscountNodeByCode(code: $code) { id }
}";

const DEACTIVATE: &str = "mutation WinbackDisableCode($id: ID!) {
  discountCodeDeactivate(id: $id) {
    userErrors { field code message }
  }
}";

pub(crate) struct Shopify {
    client: Client,
    /// The access token's header.
    headers: Vec<(&'static str, String)>,
}

impl Shopify {
    pub fn new(client: Client, headers: Vec<(&'static str, String)>) -> Shopify {
        Shopify { client, headers }
    }

    /// Runs one GraphQL operation; top-level errors are a refusal, or a wait when throttled.
    async fn call(&self, query: &str, variables: Value) -> Result<Value, CheckoutError> {
        let body = serde_json::to_vec(&json!({ "query": query, "variables": variables }))
            .expect("JSON serializes");
        let answer = self
            .client
            .send(
                http::Method::POST,
                &format!("/admin/api/{SHOPIFY_API_VERSION}/graphql.json"),
                &self.headers,
                Some(("application/json", body)),
            )
            .await?;
        if !answer.ok() {
            return Err(answer.refused());
        }
        let v = answer.json();
        if let Some(errors) = v.get("errors").and_then(Value::as_array) {
            let throttled = errors.iter().any(|e| {
                e.pointer("/extensions/code").and_then(Value::as_str) == Some("THROTTLED")
            });
            if throttled {
                return Err(CheckoutError::RateLimited {
                    retry_after_seconds: refill_seconds(&v),
                });
            }
            return Err(answer.refused());
        }
        Ok(v)
    }
}

/// Seconds until the cost bucket holds what the throttled query asked for.
pub fn refill_seconds(v: &Value) -> u64 {
    let cost = v.pointer("/extensions/cost");
    let num = |p: &str| cost.and_then(|c| c.pointer(p)).and_then(Value::as_f64);
    match (
        num("/requestedQueryCost"),
        num("/throttleStatus/currentlyAvailable"),
        num("/throttleStatus/restoreRate"),
    ) {
        (Some(asked), Some(left), Some(rate)) if rate > 0.0 => {
            ((asked - left).max(0.0) / rate).ceil().max(1.0) as u64
        }
        _ => 2,
    }
}

/// The `DiscountCodeBasicInput` of a code.
pub(crate) fn input(code: &CodeRequest) -> Value {
    let value = match code.value {
        Off::Amount(m) => {
            json!({ "discountAmount": { "amount": m.to_string(), "appliesOnEachItem": false } })
        }
        Off::Percent(hundredths) => json!({ "percentage": hundredths as f64 / 10_000.0 }),
    };
    let customer = match &code.buyer {
        Buyer::ShopifyCustomer(id) => format!("gid://shopify/Customer/{id}"),
        Buyer::Email(id) | Buyer::StripeCustomer(id) => id.clone(),
    };
    json!({
        "title": code.title,
        "code": code.code,
        "startsAt": code.starts_at.to_rfc3339(),
        "endsAt": code.ends_at.to_rfc3339(),
        "usageLimit": code.usage_limit,
        "appliesOncePerCustomer": code.usage_limit == 1,
        "context": { "customers": { "add": [customer] } },
        "customerGets": { "value": value, "items": { "all": true } },
    })
}

#[async_trait]
impl Checkout for Shopify {
    async fn create_code(&self, code: &CodeRequest) -> Result<(), CheckoutError> {
        let v = self
            .call(CREATE, json!({ "basicCodeDiscount": input(code) }))
            .await?;
        let errors = v
            .pointer("/data/discountCodeBasicCreate/userErrors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let taken = |e: &Value| e.get("code").and_then(Value::as_str) == Some("TAKEN");
        if errors.is_empty() || errors.iter().all(taken) {
            return Ok(());
        }
        Err(CheckoutError::Refused {
            status: 200,
            message: Value::Array(errors).to_string(),
        })
    }

    async fn disable_code(&self, code: &str) -> Result<(), CheckoutError> {
        let found = self.call(FIND, json!({ "code": code })).await?;
        let Some(id) = found
            .pointer("/data/codeDiscountNodeByCode/id")
            .and_then(Value::as_str)
        else {
            return Ok(());
        };
        self.call(DEACTIVATE, json!({ "id": id })).await?;
        Ok(())
    }
}
