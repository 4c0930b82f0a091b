//! Cold start and one invocation: the settings read once, the clients built once, and each SQS
//! batch handed to [`crate::batch::handle_batch`] with the current link keys.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::{dynamodb::DynamoStore, ses::SesMailer};
use shared::campaign::Campaign;
use shared::emf::StdoutEmf;
use shared::refresh::{Refreshing, SECRET_REFRESH};
use shared::settings::{self, FromVars, Lookup, SettingsError};
use shared::signing::LinkKeys;

use crate::deps::Deps;
use crate::rate::RateLimiter;

/// How long a claim keeps other senders off a step.
const LEASE_MINUTES: i64 = 5;

/// The sender's settings, read from the environment once at cold start.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table: String,
    /// `PUBLIC_BASE_URL`: the webhook's URL, which the links in emails point to.
    pub public_base_url: String,
    /// `SENDER_ADDRESS`: the verified From address.
    pub sender_address: String,
    /// `SES_CONFIGURATION_SET`: where SES sends its delivery events, if anywhere.
    pub configuration_set: Option<String>,
    /// This copy's share of the account's send rate (emails per second): `SES_MAX_SEND_RATE`
    /// divided by `SENDER_MAX_CONCURRENCY`; `None`, no limit of ours.
    pub send_rate: Option<f64>,
}

impl FromVars for Settings {
    fn from_vars<F: Fn(&str) -> Option<String>>(
        env: &Lookup<F>,
    ) -> Result<Settings, SettingsError> {
        // The SES limit is per account: each concurrent copy of the sender takes its share.
        let copies = env
            .optional_number("SENDER_MAX_CONCURRENCY", 1.0)?
            .unwrap_or(1.0);
        let rate = env.optional_number("SES_MAX_SEND_RATE", 0.001)?;
        Ok(Settings {
            table: env.table_name("TABLE_NAME")?,
            public_base_url: env
                .optional_url("PUBLIC_BASE_URL")?
                .ok_or(SettingsError::Missing("PUBLIC_BASE_URL"))?,
            sender_address: env.sender_address("SENDER_ADDRESS")?,
            configuration_set: env.optional("SES_CONFIGURATION_SET"),
            send_rate: rate.map(|r| r / copies),
        })
    }
}

/// What every invocation uses: the dependencies, and the link keys read again every few
/// minutes (so a rotated key signs new links soon after).
pub struct App {
    deps: Deps,
    keys: Refreshing<LinkKeys, SettingsError>,
}

/// Builds the clients; the DynamoDB and SES connections open while the keys and campaign load.
pub async fn cold_start() -> Result<App, Error> {
    let s = Settings::from_env().map_err(settings::refuse_at_start)?;
    let conf = settings::lambda_aws_config();
    let ses = aws_sdk_sesv2::Client::new(&conf);
    let (store, warming) = DynamoStore::warming(&conf, s.table, settings::warm_ses(ses.clone()));
    let link_keys = settings::load_link_keys(&conf)
        .await
        .map_err(settings::refuse_at_start)?;
    let campaign = Campaign::from_env().map_err(settings::refuse_at_start)?;
    let checkout = settings::checkout::load_checkout(&conf, campaign.config())
        .await
        .map_err(settings::refuse_at_start)?;
    let deps = Deps {
        store: Arc::new(store),
        mailer: Arc::new(SesMailer::new(ses, s.configuration_set)),
        campaign: Arc::new(campaign),
        metrics: Arc::new(StdoutEmf),
        link_keys: link_keys.clone(),
        public_base_url: s.public_base_url,
        sender_address: s.sender_address,
        limiter: Arc::new(RateLimiter::new(s.send_rate)),
        lease: chrono::Duration::minutes(LEASE_MINUTES),
        checkout,
    };
    let keys = Refreshing::new(link_keys, chrono::Utc::now(), SECRET_REFRESH, move || {
        let conf = conf.clone();
        async move { settings::load_link_keys(&conf).await }
    })
    .reporting(Arc::new(StdoutEmf), "sender");
    let _ = warming.await;
    Ok(App { deps, keys })
}

/// One SQS batch.
pub async fn invoke(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let now = chrono::Utc::now();
    let keys = match app.keys.get(now).await {
        Ok(keys) => keys,
        // Keys no read has confirmed for 30 minutes may include one since removed (revoked):
        // sign nothing with them. The batch is handed back to the queue and tried again.
        Err(too_old) => return Ok(crate::batch::hand_back_all(&event.payload, too_old.age)),
    };
    let deps = Deps {
        link_keys: (*keys).clone(),
        ..app.deps.clone()
    };
    Ok(crate::batch::handle_batch(&deps, event.payload, now).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: [(&str, &str); 5] = [
        ("TABLE_NAME", "winback-prod"),
        (
            "PUBLIC_BASE_URL",
            "https://abc.lambda-url.eu-west-1.on.aws/",
        ),
        ("SENDER_ADDRESS", "shop@example.com"),
        ("SES_MAX_SEND_RATE", "14"),
        ("SENDER_MAX_CONCURRENCY", "2"),
    ];

    fn with(name: &str, value: &str) -> Result<Settings, SettingsError> {
        let mut vars: Vec<(&str, &str)> =
            GOOD.iter().filter(|(k, _)| *k != name).copied().collect();
        vars.push((name, value));
        Settings::from_lookup(settings::vars(&vars))
    }

    #[test]
    fn good_settings_are_read_with_each_copys_share_of_the_send_rate() {
        let s = Settings::from_lookup(settings::vars(&GOOD)).unwrap();
        assert_eq!(s.table, "winback-prod");
        assert_eq!(s.send_rate, Some(7.0));
        assert_eq!(s.configuration_set, None);
    }

    #[test]
    fn a_malformed_or_missing_setting_stops_the_start_naming_it() {
        for (name, value) in [
            ("SES_MAX_SEND_RATE", "abc"),
            ("SES_MAX_SEND_RATE", "0"),
            ("SENDER_MAX_CONCURRENCY", "none"),
            ("PUBLIC_BASE_URL", "abc.lambda-url.eu-west-1.on.aws"),
            ("TABLE_NAME", "winback prod"),
        ] {
            let e = with(name, value).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(value), "{e}");
        }
        let e = with("SENDER_ADDRESS", "").unwrap_err().to_string();
        assert!(e.contains("SENDER_ADDRESS is not set"), "{e}");
        // A malformed From address is refused by name, showing its shape, not the address.
        let e = with("SENDER_ADDRESS", "shop.example.com")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SENDER_ADDRESS") && e.contains("aaaa.aaaaaaa.aaa"),
            "{e}"
        );
        assert!(!e.contains("shop.example"), "{e}");
        let e = with("SENDER_ADDRESS", "Shop <shop@example.com>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("SENDER_ADDRESS"), "{e}");
        let s = with("SENDER_ADDRESS", " shop@example.com ").unwrap();
        assert_eq!(s.sender_address, "shop@example.com");
    }
}
