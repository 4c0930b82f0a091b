//! WooCommerce's REST API v3 (`/wp-json/wc/v3/coupons`), with the REST API key over HTTPS as
//! HTTP Basic authentication: a coupon restricted to the customer's billing email, usable
//! `usage_limit` times until `date_expires_gmt`. A code the shop already has
//! (`woocommerce_rest_coupon_code_already_exists`: a retry after a lost answer) counts as
//! created. Disabling moves the coupon back to draft, which the checkout does not accept.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::http::Client;
use crate::domain::checkout::{Buyer, CodeRequest, Value as Off};
use crate::ports::{Checkout, CheckoutError};

const COUPONS: &str = "/wp-json/wc/v3/coupons";

pub(crate) struct WooCommerce {
    client: Client,
    /// The REST API key as HTTP Basic authentication.
    headers: Vec<(&'static str, String)>,
}

impl WooCommerce {
    pub fn new(client: Client, headers: Vec<(&'static str, String)>) -> WooCommerce {
        WooCommerce { client, headers }
    }

    fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }
}

/// The coupon's JSON.
pub(crate) fn coupon(code: &CodeRequest) -> Value {
    let (discount_type, amount) = match code.value {
        Off::Amount(m) => ("fixed_cart", m.to_string()),
        Off::Percent(h) => ("percent", format!("{}.{:02}", h / 100, h % 100)),
    };
    let emails: Vec<&str> = match &code.buyer {
        Buyer::Email(e) => vec![e.as_str()],
        Buyer::ShopifyCustomer(_) | Buyer::StripeCustomer(_) => vec![],
    };
    json!({
        "code": code.code,
        "description": code.title,
        "discount_type": discount_type,
        "amount": amount,
        "date_expires_gmt": code.ends_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "usage_limit": code.usage_limit,
        "usage_limit_per_user": code.usage_limit,
        "email_restrictions": emails,
    })
}

#[async_trait]
impl Checkout for WooCommerce {
    async fn create_code(&self, code: &CodeRequest) -> Result<(), CheckoutError> {
        let body = serde_json::to_vec(&coupon(code)).expect("JSON serializes");
        let answer = self
            .client
            .send(
                http::Method::POST,
                COUPONS,
                self.headers(),
                Some(("application/json", body)),
            )
            .await?;
        if answer.ok() {
            return Ok(());
        }
        let exists = answer.json().get("code").and_then(Value::as_str)
            == Some("woocommerce_rest_coupon_code_already_exists");
        if exists {
            return Ok(());
        }
        Err(answer.refused())
    }

    async fn disable_code(&self, code: &str) -> Result<(), CheckoutError> {
        let found = self.client.find_code(COUPONS, code, self.headers()).await?;
        let Some(id) = found.pointer("/0/id").and_then(Value::as_i64) else {
            return Ok(());
        };
        let body = serde_json::to_vec(&json!({ "status": "draft" })).expect("JSON serializes");
        let answer = self
            .client
            .send(
                http::Method::PUT,
                &format!("{COUPONS}/{id}"),
                self.headers(),
                Some(("application/json", body)),
            )
            .await?;
        if answer.ok() || answer.status == 404 {
            return Ok(());
        }
        Err(answer.refused())
    }
}
