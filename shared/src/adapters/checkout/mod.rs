//! The shop platforms' APIs, where reward codes are created before the email that carries them
//! ([`crate::ports::Checkout`]): Shopify's Admin GraphQL API, WooCommerce's REST API v3 and
//! Stripe's coupons and promotion codes. [`Connection`] says which, with its keys; [`connect`]
//! makes the checkout. [`MemoryCheckout`] is the in-process shop of the simulator and tests.

pub mod http;
mod memory;
mod shopify;
mod stripe;
mod woocommerce;

use std::sync::Arc;

use serde::Deserialize;

pub use memory::MemoryCheckout;
pub use shopify::refill_seconds as shopify_refill_seconds;

use crate::domain::reward::CheckoutPlatform;
use crate::ports::Checkout;

/// The Shopify Admin API version the requests are written against.
pub const SHOPIFY_API_VERSION: &str = "2025-10";
/// The Stripe API version the requests are written against (sent as `Stripe-Version`).
pub const STRIPE_API_VERSION: &str = "2026-10-28.endive";

/// A shop's connection: which platform, and the keys its API takes. It lives in the Secrets
/// Manager secret of `CHECKOUT_SECRET_ARN` as JSON (docs/shop.md), read by the sender only.
/// `endpoint` replaces the platform's address (a proxy, or a local test shop); it must be
/// `https`, or `http` on a loopback address.
#[derive(Clone, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case", deny_unknown_fields)]
pub enum Connection {
    /// A custom app's Admin API access token, with the `write_discounts` scope.
    Shopify {
        /// `<name>.myshopify.com`.
        shop: String,
        access_token: String,
        #[serde(default)]
        endpoint: Option<String>,
    },
    /// A REST API key (Read/Write) of a WooCommerce shop.
    Woocommerce {
        /// The shop's address, `https://shop.example.com`.
        url: String,
        consumer_key: String,
        consumer_secret: String,
        #[serde(default)]
        endpoint: Option<String>,
    },
    /// A restricted key with write access to Coupons and Promotion Codes.
    Stripe {
        secret_key: String,
        #[serde(default)]
        endpoint: Option<String>,
    },
}

impl std::fmt::Debug for Connection {
    /// The platform and address only: keys are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.platform_name(), self.base())
    }
}

/// Why a connection cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionError {
    #[error("the checkout connection is not JSON of the documented shape (docs/shop.md): {0}")]
    Shape(String),
    #[error("the checkout connection is for {connected}, but the campaign's [checkout] platform is {campaign}: connect the campaign's platform or change [checkout]")]
    OtherPlatform {
        connected: &'static str,
        campaign: &'static str,
    },
    #[error("the checkout connection's address {0:?} must be https (or http on 127.0.0.1 for a local test shop)")]
    Insecure(String),
}

impl Connection {
    /// Reads a connection from its JSON.
    pub fn parse(json: &str) -> Result<Connection, ConnectionError> {
        let c: Connection =
            serde_json::from_str(json).map_err(|e| ConnectionError::Shape(e.to_string()))?;
        let base = c.base();
        let loopback = base.starts_with("http://127.0.0.1") || base.starts_with("http://localhost");
        if !base.starts_with("https://") && !loopback {
            return Err(ConnectionError::Insecure(base));
        }
        Ok(c)
    }

    pub fn platform(&self) -> CheckoutPlatform {
        match self {
            Connection::Shopify { .. } => CheckoutPlatform::Shopify,
            Connection::Woocommerce { .. } => CheckoutPlatform::Woocommerce,
            Connection::Stripe { .. } => CheckoutPlatform::Stripe,
        }
    }

    fn platform_name(&self) -> &'static str {
        platform_name(self.platform())
    }

    /// The headers that authenticate a request to the platform's API (its keys: never log
    /// them): Shopify's access token, WooCommerce's key as HTTP Basic, Stripe's key as a bearer
    /// token with the API version.
    pub fn auth_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Connection::Shopify { access_token, .. } => {
                vec![("x-shopify-access-token", access_token.clone())]
            }
            Connection::Woocommerce {
                consumer_key,
                consumer_secret,
                ..
            } => {
                use base64::Engine;
                let basic = base64::engine::general_purpose::STANDARD
                    .encode(format!("{consumer_key}:{consumer_secret}"));
                vec![("authorization", format!("Basic {basic}"))]
            }
            Connection::Stripe { secret_key, .. } => vec![
                ("authorization", format!("Bearer {secret_key}")),
                ("stripe-version", STRIPE_API_VERSION.to_string()),
            ],
        }
    }

    /// A client of the platform's API.
    pub fn client(&self) -> http::Client {
        http::Client::new(self.base())
    }

    /// The API's address, without a trailing slash.
    pub fn base(&self) -> String {
        let (endpoint, default) = match self {
            Connection::Shopify { shop, endpoint, .. } => (endpoint, format!("https://{shop}")),
            Connection::Woocommerce { url, endpoint, .. } => (endpoint, url.clone()),
            Connection::Stripe { endpoint, .. } => (endpoint, "https://api.stripe.com".to_string()),
        };
        endpoint
            .clone()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_string()
    }
}

fn platform_name(p: CheckoutPlatform) -> &'static str {
    match p {
        CheckoutPlatform::Shopify => "shopify",
        CheckoutPlatform::Woocommerce => "woocommerce",
        CheckoutPlatform::Stripe => "stripe",
        CheckoutPlatform::Generic => "generic",
    }
}

/// The checkout of `connection`, for a campaign whose `[checkout]` platform is `campaign`.
pub fn connect(
    connection: Connection,
    campaign: CheckoutPlatform,
) -> Result<Arc<dyn Checkout>, ConnectionError> {
    if connection.platform() != campaign {
        return Err(ConnectionError::OtherPlatform {
            connected: connection.platform_name(),
            campaign: platform_name(campaign),
        });
    }
    let (client, headers) = (connection.client(), connection.auth_headers());
    Ok(match connection {
        Connection::Shopify { .. } => Arc::new(shopify::Shopify::new(client, headers)),
        Connection::Woocommerce { .. } => Arc::new(woocommerce::WooCommerce::new(client, headers)),
        Connection::Stripe { .. } => Arc::new(stripe::Stripe::new(client, headers)),
    })
}

/// The amount in the currency's smallest unit (Stripe's `amount_off`): cents, or whole units of
/// a currency without decimals (JPY, KRW, …), whose [`Money`](crate::domain::money::Money) is
/// still kept with two decimals.
pub(crate) fn smallest_unit(cents: i64, currency: &str) -> i64 {
    if crate::domain::money::zero_decimal(currency) {
        cents / 100
    } else {
        cents
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_names_its_platform_and_never_prints_its_keys() {
        let c = Connection::parse(
            r#"{"platform":"shopify","shop":"demo.myshopify.com","access_token":"shpat_secret"}"#,
        )
        .unwrap();
        assert_eq!(c.platform(), CheckoutPlatform::Shopify);
        let shown = format!("{c:?}");
        assert_eq!(shown, "shopify at https://demo.myshopify.com");
        assert!(!shown.contains("shpat_secret"));
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let insecure =
            r#"{"platform":"stripe","secret_key":"rk","endpoint":"http://api.example.com"}"#;
        assert!(matches!(
            Connection::parse(insecure),
            Err(ConnectionError::Insecure(_))
        ));
        let local = r#"{"platform":"stripe","secret_key":"rk","endpoint":"http://127.0.0.1:9/"}"#;
        assert!(Connection::parse(local).is_ok());
        assert!(matches!(
            Connection::parse(r#"{"platform":"magento"}"#),
            Err(ConnectionError::Shape(_))
        ));
    }

    #[test]
    fn a_connection_to_another_platform_than_the_campaigns_is_refused() {
        let c = Connection::parse(r#"{"platform":"stripe","secret_key":"rk"}"#).unwrap();
        assert!(matches!(
            connect(c, CheckoutPlatform::Shopify),
            Err(ConnectionError::OtherPlatform { .. })
        ));
    }

    #[test]
    fn zero_decimal_currencies_are_sent_in_whole_units() {
        assert_eq!(smallest_unit(1000, "EUR"), 1000);
        assert_eq!(smallest_unit(150_000, "jpy"), 1500);
    }
}
