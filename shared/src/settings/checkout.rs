//! The sender's connection to the shop's checkout ([`crate::adapters::checkout`]), read once at
//! cold start: the Secrets Manager secret of `CHECKOUT_SECRET_ARN` (JSON, docs/shop.md), or for
//! local runs the same JSON in `WINBACK_CHECKOUT_CONNECTION`. A campaign whose `[checkout]`
//! platform is shopify, woocommerce or stripe needs one: without it the sender does not start,
//! rather than send codes the shop's checkout would refuse.

use std::sync::Arc;

use crate::adapters::checkout::{connect, Connection, ConnectionError};
use crate::campaign::CampaignConfig;
use crate::domain::reward::CheckoutPlatform;
use crate::ports::Checkout;

use super::SettingsError;

/// Why the checkout cannot be connected.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutSettingsError {
    #[error("the campaign's [checkout] platform is {0:?}: set CHECKOUT_SECRET_ARN to the secret with the shop's API keys (docs/shop.md), or for local runs WINBACK_CHECKOUT_CONNECTION; or use platform = \"generic\"")]
    NotConnected(CheckoutPlatform),
    #[error("{0}")]
    Secret(#[from] SettingsError),
    #[error("{0}")]
    Connection(#[from] ConnectionError),
}

/// The connection's JSON (keys included: never log it): the secret of `CHECKOUT_SECRET_ARN`,
/// else `WINBACK_CHECKOUT_CONNECTION`; `None` when neither is set. The sender reads it at cold
/// start, `winback import --from` when it is given no `--connection` file.
pub async fn connection_json(
    conf: &aws_config::SdkConfig,
) -> Result<Option<String>, SettingsError> {
    match std::env::var("CHECKOUT_SECRET_ARN")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(arn) => Ok(Some(super::secrets::read_secret(conf, &arn).await?)),
        None => Ok(std::env::var("WINBACK_CHECKOUT_CONNECTION")
            .ok()
            .filter(|v| !v.is_empty())),
    }
}

/// The checkout the campaign's `[checkout]` needs: `None` for a generic checkout (or none).
pub async fn load_checkout(
    conf: &aws_config::SdkConfig,
    campaign: &CampaignConfig,
) -> Result<Option<Arc<dyn Checkout>>, CheckoutSettingsError> {
    let platform = match campaign.checkout.as_ref().map(|c| c.platform) {
        None | Some(CheckoutPlatform::Generic) => return Ok(None),
        Some(p) => p,
    };
    let json = connection_json(conf)
        .await?
        .ok_or(CheckoutSettingsError::NotConnected(platform))?;
    let connection = Connection::parse(&json)?;
    tracing::info!(event = "checkout_connected", connection = ?connection);
    Ok(Some(connect(connection, platform)?))
}
