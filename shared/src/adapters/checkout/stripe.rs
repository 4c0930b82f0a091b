//! Stripe ([`super::STRIPE_API_VERSION`]): a coupon whose id is the code (`POST /v1/coupons`),
//! then a promotion code of that text for the customer (`POST /v1/promotion_codes`), each sent
//! with an `Idempotency-Key` derived from the code, so a retry within Stripe's 24 hours gets
//! the first answer back; after that, `resource_already_exists` counts as created. Disabling
//! sets the promotion code inactive.

use async_trait::async_trait;
use serde_json::Value;

use super::http::{form, Answer, Client};
use super::smallest_unit;
use crate::domain::checkout::{Buyer, CodeRequest, Value as Off};
use crate::ports::{Checkout, CheckoutError};

pub(crate) struct Stripe {
    client: Client,
    /// The key as a bearer token, and the API version.
    headers: Vec<(&'static str, String)>,
}

impl Stripe {
    pub fn new(client: Client, headers: Vec<(&'static str, String)>) -> Stripe {
        Stripe { client, headers }
    }

    async fn post(
        &self,
        path: &str,
        idempotency_key: Option<String>,
        pairs: &[(&str, String)],
    ) -> Result<Answer, CheckoutError> {
        let mut headers = self.headers.clone();
        if let Some(k) = idempotency_key {
            headers.push(("idempotency-key", k));
        }
        self.client
            .send(
                http::Method::POST,
                path,
                &headers,
                Some(("application/x-www-form-urlencoded", form(pairs))),
            )
            .await
    }
}

/// A created object, or the same one made before.
fn created(answer: Answer) -> Result<(), CheckoutError> {
    if answer.ok() {
        return Ok(());
    }
    let code = answer.json();
    if code.pointer("/error/code").and_then(Value::as_str) == Some("resource_already_exists") {
        return Ok(());
    }
    Err(answer.refused())
}

/// The coupon's parameters.
pub(crate) fn coupon(code: &CodeRequest) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("id", code.code.clone()),
        ("name", code.title.chars().take(40).collect()),
        ("duration", "once".to_string()),
        ("max_redemptions", code.usage_limit.to_string()),
        ("redeem_by", code.ends_at.timestamp().to_string()),
    ];
    match code.value {
        Off::Amount(m) => {
            p.push(("amount_off", smallest_unit(m.0, &code.currency).to_string()));
            p.push(("currency", code.currency.to_ascii_lowercase()));
        }
        Off::Percent(h) => p.push(("percent_off", format!("{}.{:02}", h / 100, h % 100))),
    }
    p
}

/// The promotion code's parameters.
pub(crate) fn promotion_code(code: &CodeRequest) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("promotion[type]", "coupon".to_string()),
        ("promotion[coupon]", code.code.clone()),
        ("code", code.code.clone()),
        ("max_redemptions", code.usage_limit.to_string()),
        ("expires_at", code.ends_at.timestamp().to_string()),
    ];
    if let Buyer::StripeCustomer(id) = &code.buyer {
        p.push(("customer", id.clone()));
    }
    p
}

#[async_trait]
impl Checkout for Stripe {
    async fn create_code(&self, code: &CodeRequest) -> Result<(), CheckoutError> {
        let key = |what: &str| Some(format!("winback-{what}-{}", code.code));
        created(
            self.post("/v1/coupons", key("coupon"), &coupon(code))
                .await?,
        )?;
        created(
            self.post(
                "/v1/promotion_codes",
                key("promotion-code"),
                &promotion_code(code),
            )
            .await?,
        )
    }

    async fn disable_code(&self, code: &str) -> Result<(), CheckoutError> {
        let found = self
            .client
            .find_code("/v1/promotion_codes", code, &self.headers)
            .await?;
        let Some(id) = found
            .pointer("/data/0/id")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Ok(());
        };
        let answer = self
            .post(
                &format!("/v1/promotion_codes/{id}"),
                None,
                &[("active", "false".to_string())],
            )
            .await?;
        if answer.ok() {
            Ok(())
        } else {
            Err(answer.refused())
        }
    }
}
