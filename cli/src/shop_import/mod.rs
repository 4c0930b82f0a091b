//! `winback import --from shopify|woocommerce|stripe`: a shop's order history read through the
//! platform's API, page by page, each page merged into the store by the CSV import's own path
//! ([`crate::import::import_profiles`]: conditional writes, never undoing an unsubscribe), the
//! next page's cursor saved after each page so an interrupted import resumes where it stopped.
//!
//! Each platform's reader turns its records into [`ShopOrder`]s (the customer mapped by
//! [`shared::platforms`], as the platform's webhooks map it); [`row`] is the one conversion of
//! a [`ShopOrder`] into the CSV import's [`OrderRow`].

mod shopify;
mod stripe;
mod woocommerce;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use shared::adapters::checkout::Connection;
use shared::campaign::config::CampaignConfig;
use shared::domain::customer::EmailStatus;
use shared::domain::edge::{CustomerId, Locale};
use shared::domain::hygiene::EmailAddress;
use shared::domain::money::{Currency, Money};
use shared::domain::reward::CheckoutPlatform;
use shared::ports::CheckoutError;
use shared::pseudonym::Pseudonyms;
use shared::retry::RetryPolicy;

use crate::error::{CliError, CliResult};
use crate::import::{self, Target};
use crate::orders::OrderRow;

/// The platform an import reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Shopify,
    Woocommerce,
    Stripe,
}

impl Platform {
    pub fn name(self) -> &'static str {
        match self {
            Platform::Shopify => "shopify",
            Platform::Woocommerce => "woocommerce",
            Platform::Stripe => "stripe",
        }
    }

    fn checkout(self) -> CheckoutPlatform {
        match self {
            Platform::Shopify => CheckoutPlatform::Shopify,
            Platform::Woocommerce => CheckoutPlatform::Woocommerce,
            Platform::Stripe => CheckoutPlatform::Stripe,
        }
    }
}

/// One order as a platform holds it, in winback's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopOrder {
    /// As the platform's webhooks map it ([`shared::platforms`]).
    pub customer_id: CustomerId,
    pub email: EmailAddress,
    pub first_name: Option<String>,
    pub locale: Option<Locale>,
    pub currency: Currency,
    /// The shop's id of the order, the one its refund webhooks name (Shopify's and
    /// WooCommerce's order id, a Stripe charge's invoice or else its payment intent).
    pub order_id: Option<String>,
    /// What the customer paid, and how much of it was refunded since.
    pub amount: Money,
    pub refunded: Money,
    pub ordered_at: DateTime<Utc>,
    /// The platform says the customer does not want marketing email.
    pub opted_out: bool,
    /// The order's items, as far as the platform's list gives them.
    pub lines: Vec<Line>,
}

/// One item of an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub product: String,
    pub category: Option<String>,
    pub quantity: u32,
    /// The unit price, in the order's currency.
    pub price: Option<Money>,
}

/// The one conversion of a platform's order into the CSV import's rows (`line` numbers the
/// order within the import): the order-line form, a row per item sharing the order's id, so the
/// whole basket comes in; one row for an order the platform lists no items of.
pub fn rows(o: &ShopOrder, line: u64) -> Vec<OrderRow> {
    let base = OrderRow {
        line,
        customer_id: o.customer_id.clone(),
        email: o.email.as_str().to_string(),
        ordered_at: o.ordered_at,
        amount: o.amount,
        refunded: o.refunded,
        currency: Some(String::from(o.currency.clone())),
        first_name: o.first_name.clone(),
        locale: o.locale.clone().map(Locale::into_string),
        time_zone: None,
        category: None,
        product: None,
        birthday: None,
        renewal_due_at: None,
        signed_up_at: None,
        email_status: o.opted_out.then_some(EmailStatus::Unsubscribed),
        order_id: o.order_id.clone(),
        quantity: None,
        price: None,
    };
    if o.lines.is_empty() || o.order_id.is_none() {
        let first = o.lines.first();
        return vec![OrderRow {
            category: first.and_then(|l| l.category.clone()),
            product: first.map(|l| l.product.clone()),
            ..base
        }];
    }
    o.lines
        .iter()
        .map(|l| OrderRow {
            category: l.category.clone(),
            product: Some(l.product.clone()),
            quantity: Some(l.quantity),
            price: l.price,
            ..base.clone()
        })
        .collect()
}

/// Why a record the platform listed was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// Cancelled, voided, failed or still pending: never paid.
    NotPaid,
    /// Refunded in full.
    Refunded,
    /// A guest checkout a platform cannot tie to a customer (Shopify and Stripe without a
    /// customer, WooCommerce without a billing address).
    NoCustomer,
    /// No address the activity contract accepts.
    NoEmail,
    /// An amount, currency or time that cannot be read.
    Unreadable,
    /// A test order (Shopify).
    Test,
}

impl Skip {
    pub fn name(self) -> &'static str {
        match self {
            Skip::NotPaid => "not_paid",
            Skip::Refunded => "refunded",
            Skip::NoCustomer => "no_customer",
            Skip::NoEmail => "no_email",
            Skip::Unreadable => "unreadable",
            Skip::Test => "test",
        }
    }
}

/// One page of a platform's order list.
#[derive(Debug, Default)]
pub struct Page {
    pub orders: Vec<ShopOrder>,
    pub skipped: Vec<Skip>,
    /// The cursor of the next page; `None` after the last.
    pub next: Option<String>,
    /// How many pages there are, when the platform says (WooCommerce).
    pub total_pages: Option<u64>,
    /// How long to wait before asking for the next page (Shopify's cost bucket).
    pub wait: Duration,
}

/// A platform's order list, read a page at a time.
#[async_trait]
pub trait Reader: Send {
    /// The page at `cursor` (`None`: the first). One request, unless the platform asks for a
    /// smaller page (Shopify's cost limit).
    async fn page(&mut self, cursor: Option<&str>) -> Result<Page, CheckoutError>;
    /// Requests sent so far.
    fn calls(&self) -> u64;
}

/// The reader of `connection`'s platform; `None` for WooCommerce without the pseudonym key
/// (its guests could not be given the ids the webhook gives them).
pub fn reader(connection: &Connection, pseudonyms: Option<&Pseudonyms>) -> Option<Box<dyn Reader>> {
    let (client, headers) = (connection.client(), connection.auth_headers());
    Some(match connection.platform() {
        CheckoutPlatform::Shopify => Box::new(shopify::Shopify::new(client, headers)),
        CheckoutPlatform::Woocommerce => Box::new(woocommerce::WooCommerce::new(
            client,
            headers,
            pseudonyms?.clone(),
        )),
        _ => Box::new(stripe::Stripe::new(client, headers)),
    })
}

/// Where the import stopped: the next page to read. Written after each page is merged and
/// saved, removed once the last page is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    pub platform: Platform,
    /// The API's address (no keys), so a state file of another shop is not followed.
    pub shop: String,
    /// The next page's cursor (Shopify `endCursor`, WooCommerce page number, Stripe charge id).
    pub cursor: String,
    /// Pages and orders read before it.
    pub pages: u64,
    pub orders: u64,
}

impl Resume {
    fn load(path: &Path) -> CliResult<Option<Resume>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| CliError::BadArgument {
                        flag: "--resume",
                        reason: format!(
                            "{} is not an import state file ({e}): remove it to start over",
                            path.display()
                        ),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CliError::io("read", path)(e)),
        }
    }

    fn save(&self, path: &Path) -> CliResult<()> {
        let tmp = path.with_extension("tmp");
        let json = serde_json::to_vec_pretty(self).expect("JSON serializes");
        std::fs::write(&tmp, json).map_err(CliError::io("write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(CliError::io("write", path))
    }
}

/// The state file's default place: next to the store snapshot, or for `--aws` in the current
/// directory, named after the table.
pub fn default_resume_file(platform: Platform, target: &Target) -> PathBuf {
    match target {
        Target::Snapshot(store) => {
            let mut name = store.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".import-{}.json", platform.name()));
            store.with_file_name(name)
        }
        Target::Aws => {
            let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "table".into());
            PathBuf::from(format!("winback-import-{}-{table}.json", platform.name()))
        }
    }
}

/// How the import treats a platform that fails.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// 5xx, timeouts and no answer: retried with this backoff.
    pub retry: RetryPolicy,
    /// Rate limits (429, Shopify's THROTTLED) waited out in a row before giving up.
    pub rate_limit_waits: u32,
}

impl Patience {
    /// 6 attempts, 1 s doubling (31 s of waiting), and up to 30 rate-limit waits in a row.
    pub const DEFAULT: Patience = Patience {
        retry: RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_secs(1),
        },
        rate_limit_waits: 30,
    };
}

/// What the import is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub platform: Platform,
    /// The connection's JSON (docs/shop.md).
    pub connection: String,
    /// The deployment's pseudonym key (required for WooCommerce, whose guests are known by a
    /// keyed hash of their address, the same the webhook computes).
    pub pseudonyms: Option<Pseudonyms>,
    pub target: Target,
    pub resume_file: PathBuf,
    pub at: DateTime<Utc>,
    pub patience: Patience,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShopImportSummary {
    pub pages: u64,
    /// Requests sent to the platform.
    pub calls: u64,
    /// Orders imported (this run), and of how many distinct customers.
    pub orders: u64,
    pub customers: usize,
    /// Listed records not imported, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Profile writes (new, or changed by a page's orders; a customer whose orders span pages
    /// is written once per page).
    pub written: usize,
    /// Customers whose address hygiene keeps out of every send, by rule.
    pub kept_out: BTreeMap<&'static str, usize>,
    /// Rate limits waited out, and failures retried.
    pub rate_limit_waits: u32,
    pub retries: u32,
    /// The page this run started at (0: the first).
    pub resumed_at_page: u64,
    pub rebuild_evaluated: u64,
    pub seconds: f64,
}

/// The page at `cursor`, waiting out rate limits and retrying failures as `patience` says.
async fn page_with_patience(
    reader: &mut dyn Reader,
    cursor: Option<&str>,
    patience: Patience,
    summary: &mut ShopImportSummary,
) -> Result<Page, CheckoutError> {
    let (mut attempt, mut waits) = (1, 0);
    loop {
        match reader.page(cursor).await {
            Ok(page) => return Ok(page),
            Err(CheckoutError::RateLimited {
                retry_after_seconds,
            }) if waits < patience.rate_limit_waits => {
                waits += 1;
                summary.rate_limit_waits += 1;
                tokio::time::sleep(Duration::from_secs(retry_after_seconds.max(1))).await;
            }
            Err(CheckoutError::Unavailable(_)) if attempt < patience.retry.attempts => {
                summary.retries += 1;
                patience.retry.pause_after(attempt).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn progress(on: bool) -> ProgressBar {
    if !on {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{spinner} importing orders: page {pos}{msg}")
            .expect("template"),
    );
    pb
}

/// The whole command: read every page, merge each, rebuild the due index, save.
pub async fn run(opts: &Options, campaign: &CampaignConfig) -> CliResult<ShopImportSummary> {
    let (store, memory) = import::open_target(&opts.target).await?;
    run_on(opts, campaign, store, memory).await
}

/// [`run`] on an opened store (`memory`: the embedded store behind a snapshot target).
pub async fn run_on(
    opts: &Options,
    campaign: &CampaignConfig,
    store: std::sync::Arc<dyn shared::ports::Store>,
    memory: Option<std::sync::Arc<shared::adapters::embedded::MemoryStore>>,
) -> CliResult<ShopImportSummary> {
    let started = Instant::now();
    let connection = Connection::parse(&opts.connection).map_err(|e| CliError::BadArgument {
        flag: "--connection",
        reason: e.to_string(),
    })?;
    if connection.platform() != opts.platform.checkout() {
        return Err(CliError::BadArgument {
            flag: "--from",
            reason: format!(
                "the connection is for {:?}, not {}: give the {} connection",
                connection.platform(),
                opts.platform.name(),
                opts.platform.name()
            ),
        });
    }
    let shop = connection.base();
    let mut reader =
        reader(&connection, opts.pseudonyms.as_ref()).ok_or_else(|| CliError::BadArgument {
            flag: "--from",
            reason: "a WooCommerce import needs the pseudonym key, so each guest gets the id the \
                     webhook gives them: set PSEUDONYM_SECRET_ARN to the stack's PseudonymKeySeed \
                     secret (locally WINBACK_PSEUDONYM_KEY, or WINBACK_WEBHOOK_KEYS as the \
                     webhook has them)"
                .into(),
        })?;
    let lapse = shared::fitted::lapse_policy(store.as_ref(), &campaign.name, &campaign.lapse).await;

    let mut summary = ShopImportSummary::default();
    let mut cursor = None;
    let (mut pages, mut line) = (0u64, 0u64);
    if let Some(r) = Resume::load(&opts.resume_file)? {
        if r.platform != opts.platform || r.shop != shop {
            return Err(CliError::BadArgument {
                flag: "--resume",
                reason: format!(
                    "{} is the state of an import from {} at {}: give another --resume file, or remove it",
                    opts.resume_file.display(),
                    r.platform.name(),
                    r.shop
                ),
            });
        }
        eprintln!(
            "Resuming from page {} ({} orders were read before; state in {})",
            r.pages + 1,
            r.orders,
            opts.resume_file.display()
        );
        (pages, line) = (r.pages, r.orders);
        summary.resumed_at_page = r.pages;
        cursor = Some(r.cursor);
    }
    let pb = progress(opts.progress);
    pb.set_position(pages);
    let mut customers: BTreeMap<CustomerId, String> = BTreeMap::new();
    loop {
        let page = page_with_patience(
            reader.as_mut(),
            cursor.as_deref(),
            opts.patience,
            &mut summary,
        )
        .await;
        summary.calls = reader.calls();
        let page = page.map_err(|e| CliError::Platform {
            platform: opts.platform.name(),
            page: pages + 1,
            reason: e.to_string(),
            resume: opts.resume_file.clone(),
        })?;
        let rows: Vec<OrderRow> = page
            .orders
            .iter()
            .flat_map(|o| {
                line += 1;
                rows(o, line)
            })
            .collect();
        for s in &page.skipped {
            *summary.skipped.entry(s.name()).or_default() += 1;
        }
        for r in &rows {
            customers.insert(r.customer_id.clone(), r.email.clone());
        }
        let merged = import::import_profiles(
            store.as_ref(),
            &rows,
            opts.platform.name(),
            &lapse,
            opts.at,
            &ProgressBar::hidden(),
        )
        .await?;
        import::save_target(&opts.target, memory.as_deref(), campaign).await?;
        summary.written += merged.written;
        summary.orders += page.orders.len() as u64;
        pages += 1;
        summary.pages += 1;
        if let Some(total) = page.total_pages {
            pb.set_length(total);
        }
        pb.set_position(pages);
        pb.set_message(format!(", {} orders", line));
        match page.next {
            Some(next) => {
                Resume {
                    platform: opts.platform,
                    shop: shop.clone(),
                    cursor: next.clone(),
                    pages,
                    orders: line,
                }
                .save(&opts.resume_file)?;
                cursor = Some(next);
                if !page.wait.is_zero() {
                    tokio::time::sleep(page.wait).await;
                }
            }
            None => break,
        }
    }
    pb.finish_and_clear();
    if let Err(e) = std::fs::remove_file(&opts.resume_file) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(CliError::io("remove", &opts.resume_file)(e));
        }
    }
    let rebuilt = import::rebuild(store.clone(), campaign, opts.at).await?;
    import::save_target(&opts.target, memory.as_deref(), campaign).await?;
    summary.customers = customers.len();
    summary.kept_out = shared::domain::hygiene::tally(
        customers.values().map(String::as_str),
        &campaign.eligibility.hygiene,
    )
    .into_iter()
    .map(|(k, n)| (k.rule(), n))
    .collect();
    summary.rebuild_evaluated = rebuilt.evaluated;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// A decimal amount as a platform writes it (`"12.50"`), never negative.
pub(crate) fn decimal(text: Option<&str>) -> Option<Money> {
    Money::parse(text?.trim()).ok().filter(|m| m.0 >= 0)
}

/// An ISO 4217 code in any case.
pub(crate) fn currency(text: Option<&str>) -> Option<Currency> {
    Currency::parse(&text?.trim().to_ascii_uppercase()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_platforms_order_becomes_the_csv_imports_row() {
        let o = ShopOrder {
            customer_id: "7408".parse().unwrap(),
            email: EmailAddress::parse("ada@Example.com").unwrap(),
            first_name: Some("Ada".into()),
            locale: Some(Locale::parse("sv-SE").unwrap()),
            currency: Currency::parse("SEK").unwrap(),
            order_id: Some("1001".into()),
            amount: Money(49_900),
            refunded: Money(4_990),
            ordered_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            opted_out: true,
            lines: vec![
                Line {
                    product: "Espresso".into(),
                    category: Some("coffee".into()),
                    quantity: 2,
                    price: Some(Money(19_950)),
                },
                Line {
                    product: "Filter papers".into(),
                    category: None,
                    quantity: 1,
                    price: Some(Money(10_000)),
                },
            ],
        };
        let all = rows(&o, 7);
        assert_eq!(all.len(), 2, "a row per item");
        assert_eq!(
            all.iter()
                .map(|r| (r.product.as_deref(), r.quantity, r.price))
                .collect::<Vec<_>>(),
            [
                (Some("Espresso"), Some(2), Some(Money(19_950))),
                (Some("Filter papers"), Some(1), Some(Money(10_000)))
            ]
        );
        assert!(all
            .iter()
            .all(|r| r.line == 7 && r.order_id.as_deref() == Some("1001")));
        assert_eq!(all[0].refunded, Money(4_990));
        let r = &all[0];
        assert_eq!(r.line, 7);
        assert_eq!(r.customer_id.as_str(), "7408");
        assert_eq!(r.email, "ada@example.com");
        assert_eq!(r.currency.as_deref(), Some("SEK"));
        assert_eq!(r.amount, Money(49_900));
        assert_eq!(r.locale.as_deref(), Some("sv-SE"));
        assert_eq!(
            (r.product.as_deref(), r.category.as_deref()),
            (Some("Espresso"), Some("coffee"))
        );
        assert_eq!(r.email_status, Some(EmailStatus::Unsubscribed));
    }

    #[test]
    fn the_state_file_sits_next_to_the_store() {
        let t = Target::Snapshot(PathBuf::from("/tmp/x/store.json"));
        assert_eq!(
            default_resume_file(Platform::Shopify, &t),
            PathBuf::from("/tmp/x/store.json.import-shopify.json")
        );
    }
}
