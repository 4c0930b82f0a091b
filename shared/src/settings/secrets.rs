//! The signing keys, read from Secrets Manager at cold start and again every few minutes (see
//! [`crate::refresh`]), or from local variables for runs without a stack.

use serde::Deserialize;

use super::{optional, SettingsError};
use crate::pseudonym::Pseudonyms;
use crate::signing::LinkKeys;

/// The webhook's signing keys: webhook keys newest first, and the link-token keys.
#[derive(Clone)]
pub struct Keys {
    pub webhook: Vec<Vec<u8>>,
    /// Newest first; keys written `retired:<key>` verify unsubscribe links only.
    pub link: LinkKeys,
    /// The keys of the team's follow-up links (newest first), a family of their own: rotating
    /// them revokes every staff link and no customer link, and a leaked customer-link key opens
    /// no customer's record. Empty: follow-up notices carry no link.
    pub staff: LinkKeys,
    /// The shop platforms' webhook secrets; a platform without one is not connected.
    pub platforms: PlatformKeys,
    /// Whether shop requests signed with the older `v1` scheme (the body only, not the route)
    /// are still taken: the secret's `signature_v1` (locally `WINBACK_SIGNATURE_V1`), true
    /// unless it says `false`. Set it to `false` once every sender signs `v2`.
    pub signature_v1: bool,
    /// The key of the keyed hashes that stand in for WooCommerce guests' addresses and for the
    /// shop's event ids in dedupe keys (see [`crate::pseudonym`]).
    pub pseudonym: Pseudonyms,
}

impl Keys {
    /// One webhook key and one link key, no platform connected (local runs, tests).
    pub fn one(webhook: &[u8], link: &[u8]) -> Keys {
        Keys {
            webhook: vec![webhook.to_vec()],
            link: LinkKeys::one(link),
            staff: LinkKeys::one(&[b"staff:".as_slice(), link].concat()),
            platforms: PlatformKeys::default(),
            signature_v1: true,
            pseudonym: local_pseudonyms(webhook),
        }
    }
}

/// Where no pseudonym key is configured (local runs and tests only): one derived from the
/// webhook key. A deployment reads its own from `PSEUDONYM_SECRET_ARN`.
fn local_pseudonyms(webhook: &[u8]) -> Pseudonyms {
    Pseudonyms::new(&[b"pseudonym:".as_slice(), webhook].concat())
}

/// Webhook secrets of the shop platforms, each a list (newest first) so one can be rotated:
/// Shopify's app client secret, WooCommerce's webhook secret, Stripe's endpoint secret (`whsec_…`).
#[derive(Clone, Default)]
pub struct PlatformKeys {
    pub shopify: Vec<Vec<u8>>,
    pub woocommerce: Vec<Vec<u8>>,
    pub stripe: Vec<Vec<u8>>,
    /// The shop's `*.myshopify.com` domain (`shopify_shop_domain` in the secret, locally
    /// `WINBACK_SHOPIFY_SHOP_DOMAIN`): deliveries from another shop are refused. `None` checks
    /// nothing (a deployment that has not set it yet).
    pub shopify_shop: Option<String>,
    /// The WooCommerce store's URL as its webhooks name it in `X-WC-Webhook-Source`
    /// (`woocommerce_source` in the secret, locally `WINBACK_WOOCOMMERCE_SOURCE`).
    pub woocommerce_source: Option<String>,
}

impl PlatformKeys {
    /// From `WINBACK_SHOPIFY_SECRET`, `WINBACK_WOOCOMMERCE_SECRET` and `WINBACK_STRIPE_SECRET`
    /// (each comma-separated, newest first; unset leaves the platform unconnected).
    pub fn from_env_vars() -> PlatformKeys {
        let read = |name: &str| optional(name).map(|v| split_keys(&v)).unwrap_or_default();
        PlatformKeys {
            shopify: read("WINBACK_SHOPIFY_SECRET"),
            woocommerce: read("WINBACK_WOOCOMMERCE_SECRET"),
            stripe: read("WINBACK_STRIPE_SECRET"),
            shopify_shop: optional("WINBACK_SHOPIFY_SHOP_DOMAIN"),
            woocommerce_source: optional("WINBACK_WOOCOMMERCE_SOURCE"),
        }
    }
}

impl std::fmt::Debug for PlatformKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PlatformKeys {{ shopify: {}, woocommerce: {}, stripe: {} key(s) }}",
            self.shopify.len(),
            self.woocommerce.len(),
            self.stripe.len()
        )
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keys {{ webhook: {} key(s), link: {:?}, signature_v1: {} }}",
            self.webhook.len(),
            self.link,
            self.signature_v1
        )
    }
}

/// The webhook's secret (`WEBHOOK_SECRET_ARN`), or the combined one of stacks from before the
/// link keys had a secret of their own (`SECRETS_ARN`). The webhook's secret holds no link key:
/// a `link_key` field left there by an older template is neither read nor needed.
#[derive(Deserialize)]
struct SecretDoc {
    webhook_keys: String,
    #[serde(default)]
    shopify_secret: String,
    #[serde(default)]
    woocommerce_secret: String,
    #[serde(default)]
    stripe_secret: String,
    #[serde(default)]
    shopify_shop_domain: Option<String>,
    #[serde(default)]
    woocommerce_source: Option<String>,
    /// `false` refuses `v1` signatures (see [`Keys::signature_v1`]).
    #[serde(default = "accept_v1")]
    signature_v1: bool,
}

fn accept_v1() -> bool {
    true
}

/// The link key of the combined secret of stacks from before the split (`SECRETS_ARN` only).
#[derive(Deserialize)]
struct CombinedDoc {
    #[serde(default)]
    link_key: String,
}

fn split_keys(list: &str) -> Vec<Vec<u8>> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| k.as_bytes().to_vec())
        .collect()
}

pub(crate) async fn read_secret(
    conf: &aws_config::SdkConfig,
    arn: &str,
) -> Result<String, SettingsError> {
    let out = aws_sdk_secretsmanager::Client::new(conf)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| SettingsError::Secret {
            arn: arn.to_string(),
            source: Box::new(e),
        })?;
    Ok(out.secret_string().unwrap_or_default().to_string())
}

async fn read_doc<D: serde::de::DeserializeOwned>(
    conf: &aws_config::SdkConfig,
    arn: &str,
) -> Result<D, SettingsError> {
    serde_json::from_str(&read_secret(conf, arn).await?).map_err(|source| {
        SettingsError::SecretShape {
            arn: arn.to_string(),
            source,
        }
    })
}

/// The link-token keys (newest first, `retired:<key>` for keys that verify unsubscribe links
/// only), for the sender and the webhook: the plain-text secret named by `LINK_SECRET_ARN`
/// (comma-separated keys), else `link_key` of the combined secret of a stack from before the
/// split (`SECRETS_ARN`), else `WINBACK_LINK_KEY` (comma-separated, for local runs).
pub async fn load_link_keys(conf: &aws_config::SdkConfig) -> Result<LinkKeys, SettingsError> {
    load_link_keys_with(conf, &optional).await
}

/// [`load_link_keys`] with the variables looked up by `var` (a test's own set).
pub async fn load_link_keys_with(
    conf: &aws_config::SdkConfig,
    var: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<LinkKeys, SettingsError> {
    let (list, source) = if let Some(arn) = var("LINK_SECRET_ARN") {
        (read_secret(conf, &arn).await?, format!("secret {arn}"))
    } else if let Some(arn) = var("SECRETS_ARN") {
        (
            read_doc::<CombinedDoc>(conf, &arn).await?.link_key,
            format!("link_key of secret {arn}"),
        )
    } else {
        (
            var("WINBACK_LINK_KEY").unwrap_or_default(),
            "WINBACK_LINK_KEY".to_string(),
        )
    };
    let keys = LinkKeys::parse(&list);
    if keys.is_empty() {
        return Err(SettingsError::MissingKeys(source));
    }
    Ok(keys)
}

/// The pseudonym key (see [`crate::pseudonym`]): the plain-text secret named by
/// `PSEUDONYM_SECRET_ARN`, else `WINBACK_PSEUDONYM_KEY`; `None` when neither is set.
pub async fn load_pseudonyms_with(
    conf: &aws_config::SdkConfig,
    var: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Option<Pseudonyms>, SettingsError> {
    let (key, source) = match var("PSEUDONYM_SECRET_ARN") {
        Some(arn) => (read_secret(conf, &arn).await?, format!("secret {arn}")),
        None => match var("WINBACK_PSEUDONYM_KEY") {
            Some(k) => (k, "WINBACK_PSEUDONYM_KEY".to_string()),
            None => return Ok(None),
        },
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(SettingsError::MissingKeys(source));
    }
    Ok(Some(Pseudonyms::new(key.as_bytes())))
}

/// The staff-link keys (newest first): the plain-text secret named by `STAFF_SECRET_ARN`
/// (comma-separated keys), else `WINBACK_STAFF_KEYS`; none when neither is set. (A retired
/// staff key verifies nothing: no staff link unsubscribes.)
pub async fn load_staff_keys_with(
    conf: &aws_config::SdkConfig,
    var: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<LinkKeys, SettingsError> {
    let list = match var("STAFF_SECRET_ARN") {
        Some(arn) => read_secret(conf, &arn).await?,
        None => var("WINBACK_STAFF_KEYS").unwrap_or_default(),
    };
    Ok(LinkKeys::parse(&list))
}

impl Keys {
    /// From `WINBACK_WEBHOOK_KEYS` (comma-separated, newest first), `WINBACK_LINK_KEY`
    /// (comma-separated, newest first, `retired:<key>` for unsubscribe only) and
    /// `WINBACK_PSEUDONYM_KEY` (without it, one derived from the newest webhook key).
    pub fn from_env_vars() -> Result<Keys, SettingsError> {
        let webhook = optional("WINBACK_WEBHOOK_KEYS").map(|w| split_keys(&w));
        let link = optional("WINBACK_LINK_KEY").map(|l| LinkKeys::parse(&l));
        match (webhook, link) {
            (Some(w), Some(l)) if !w.is_empty() && !l.is_empty() => Ok(Keys {
                pseudonym: optional("WINBACK_PSEUDONYM_KEY").map_or_else(
                    || local_pseudonyms(&w[0]),
                    |k| Pseudonyms::new(k.trim().as_bytes()),
                ),
                webhook: w,
                link: l,
                staff: LinkKeys::parse(&optional("WINBACK_STAFF_KEYS").unwrap_or_default()),
                platforms: PlatformKeys::from_env_vars(),
                signature_v1: optional("WINBACK_SIGNATURE_V1").is_none_or(|v| v.trim() != "false"),
            }),
            (w, l) => {
                let mut missing = Vec::new();
                if w.is_none_or(|w| w.is_empty()) {
                    missing.push("WINBACK_WEBHOOK_KEYS");
                }
                if l.is_none_or(|l| l.is_empty()) {
                    missing.push("WINBACK_LINK_KEY");
                }
                Err(SettingsError::MissingKeys(missing.join(", ")))
            }
        }
    }

    /// The webhook's keys: webhook and platform keys from the secret named by
    /// `WEBHOOK_SECRET_ARN` (else `SECRETS_ARN`), link keys by [`load_link_keys`], the staff keys
    /// and the pseudonym key (`PSEUDONYM_SECRET_ARN`, required here); with neither variable set,
    /// from the local variables.
    pub async fn load(conf: &aws_config::SdkConfig) -> Result<Keys, SettingsError> {
        Keys::load_with(conf, &optional).await
    }

    /// [`Keys::load`] with the secrets' variables looked up by `var` (a test's own set).
    pub async fn load_with(
        conf: &aws_config::SdkConfig,
        var: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Keys, SettingsError> {
        let Some(arn) = var("WEBHOOK_SECRET_ARN").or_else(|| var("SECRETS_ARN")) else {
            return Keys::from_env_vars();
        };
        let doc: SecretDoc = read_doc(conf, &arn).await?;
        let webhook = split_keys(&doc.webhook_keys);
        if webhook.is_empty() {
            return Err(SettingsError::MissingKeys(format!(
                "webhook_keys of secret {arn}"
            )));
        }
        // A platform secret missing from the document may still come from the environment.
        let env = PlatformKeys::from_env_vars();
        let pick = |doc: &str, env: Vec<Vec<u8>>| {
            let from_doc = split_keys(doc);
            if from_doc.is_empty() {
                env
            } else {
                from_doc
            }
        };
        Ok(Keys {
            webhook,
            link: load_link_keys_with(conf, var).await?,
            staff: load_staff_keys_with(conf, var).await?,
            platforms: PlatformKeys {
                shopify: pick(&doc.shopify_secret, env.shopify),
                woocommerce: pick(&doc.woocommerce_secret, env.woocommerce),
                stripe: pick(&doc.stripe_secret, env.stripe),
                shopify_shop: doc.shopify_shop_domain.or(env.shopify_shop),
                woocommerce_source: doc.woocommerce_source.or(env.woocommerce_source),
            },
            signature_v1: doc.signature_v1,
            pseudonym: load_pseudonyms_with(conf, var).await?.ok_or_else(|| {
                SettingsError::MissingKeys(
                    "PSEUDONYM_SECRET_ARN (the pseudonym key's secret, PseudonymKeySeed)".into(),
                )
            })?,
        })
    }
}
