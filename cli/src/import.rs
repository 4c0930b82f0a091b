//! `winback import`: orders CSV → profiles (batched writes) → due-index rebuild.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use shared::adapters::embedded::{MemoryBus, MemoryStore};
use shared::campaign::config::CampaignConfig;
use shared::domain::customer::Profile;
use std::collections::HashMap;

use shared::ports::{OrderOwner, Store};
use shared::retry::RetryPolicy;

use crate::error::{CliError, CliResult};
use crate::orders::{self, OrderRow};
use crate::snapshot::Snapshot;

/// Profiles per `put_profiles` call (DynamoDB's batch-write limit).
pub const BATCH: usize = 25;

/// Where `import` writes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A JSON snapshot of the embedded store (created if missing, merged into if present).
    Snapshot(PathBuf),
    /// The DynamoDB table of `TABLE_NAME`.
    Aws,
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportSummary {
    pub rows_read: usize,
    pub orders: usize,
    pub skipped: usize,
    /// Rows skipped because their email is not an address.
    pub invalid_emails: usize,
    /// Customers whose address the campaign's hygiene keeps out of every send, by rule
    /// (`role_address`, `disposable_domain`): imported, never emailed.
    pub kept_out: std::collections::BTreeMap<&'static str, usize>,
    pub customers: usize,
    pub written: usize,
    pub due_now: usize,
    pub rebuild_evaluated: u64,
    /// The customer model the rebuild fitted on every customer in the store at the import moment.
    pub fit: Option<shared::domain::model::Fit>,
    /// Whether it was stored as the campaign's model (not when it fell back to the prior).
    pub model_stored: bool,
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} {{msg}}"
        ))
        .expect("template")
        .progress_chars("=> "),
    );
    pb
}

/// `new` (built from the file's rows) merged into the stored `old`: orders added (a repeated
/// order counts once), personal fields the file has replace the stored ones unless the customer
/// was erased, and everything else the customer or the webhook did (unsubscribes, bounces,
/// survey answers) kept; the due time set at `at`.
pub fn merge_into(
    old: Option<Profile>,
    new: Profile,
    policy: &shared::campaign::config::LapsePolicy,
    at: DateTime<Utc>,
) -> Profile {
    let Some(mut old) = old else {
        return new;
    };
    // An erased customer stays erased: the file brings no orders or details back.
    if old.erased {
        return old;
    }
    for o in new.all_orders() {
        old.record_order(o);
    }
    // The file can keep a customer from email, never bring one back.
    old.email_status = orders::stricter(old.email_status, new.email_status);
    for (slot, v) in [
        (&mut old.email, &new.email),
        (&mut old.first_name, &new.first_name),
        (&mut old.locale, &new.locale),
        (&mut old.time_zone, &new.time_zone),
    ] {
        if v.is_some() && !old.erased {
            slot.clone_from(v);
        }
    }
    if new.renewal_due_at.is_some() {
        old.renewal_due_at = new.renewal_due_at;
    }
    // The customer's currency stays the one their first order set (each order above kept its
    // own): the stored lifetime value is in it.
    if new.birthday.is_some() {
        old.birthday = new.birthday;
    }
    old.note_sign_up(new.signed_up_at);
    old.due_at =
        shared::domain::due::next_due(&old, policy, shared::domain::due::Watch::LAPSE_ONLY, at);
    old
}

/// Merges each customer's rows into their stored profile (or a new one) and sets its due time at
/// `at`. Reads once: for a store nobody else writes to (the simulator's); `winback import` uses
/// [`import_profiles`].
pub async fn merge_profiles(
    store: &dyn Store,
    rows: &[OrderRow],
    policy: &shared::campaign::config::LapsePolicy,
    at: DateTime<Utc>,
) -> CliResult<Vec<Profile>> {
    let fresh = orders::build_profiles(rows, policy, at, None);
    let mut out = Vec::with_capacity(fresh.len());
    for new in fresh {
        let old = store.get_profile(&new.customer_id).await?;
        out.push(merge_into(old, new, policy, at));
    }
    Ok(out)
}

/// Attempts of one customer's conditional write before the import reports a lost race.
pub const MERGE_ATTEMPTS: u32 = 20;
/// Customers merged at the same time.
pub const MERGE_CONCURRENCY: usize = 16;

/// Merges the file's customers into a store the webhook may be writing to at the same time:
/// each customer is read, merged and written with a conditional (versioned) write, and merged
/// again from the newer state when the webhook wrote first, so an unsubscribe, bounce or order
/// that arrives during the import is never undone. Each order with an id is then remembered in
/// the order index under `source` ([`shared::domain::activity::source`]), as the webhook
/// remembers the orders it records, so a refund naming only the order finds its customer (not
/// for an erased customer).
pub async fn import_profiles(
    store: &dyn Store,
    rows: &[OrderRow],
    source: &str,
    policy: &shared::campaign::config::LapsePolicy,
    at: DateTime<Utc>,
    pb: &ProgressBar,
) -> CliResult<Merged> {
    let fresh = orders::build_profiles(rows, policy, at, None);
    pb.set_length(fresh.len() as u64);
    let customers = fresh.len();
    let mut orders_of: HashMap<&str, Vec<OrderOwner>> = HashMap::new();
    for r in rows {
        if let Some(order_id) = &r.order_id {
            let owner = OrderOwner::new(source, order_id, &r.customer_id, r.ordered_at);
            if owner.expires_at > at {
                orders_of.entry(&r.customer_id).or_default().push(owner);
            }
        }
    }
    let orders_of = &orders_of;
    futures::stream::iter(fresh)
        .map(|new| async move {
            let mut attempt = 0;
            let (written, due, erased) = loop {
                attempt += 1;
                let old = store.get_profile(&new.customer_id).await?;
                let merged = merge_into(old.clone(), new.clone(), policy, at);
                let due = merged.due_at.is_some_and(|d| d <= at);
                if old.as_ref() == Some(&merged) {
                    break (0, due, merged.erased);
                }
                match store.save_profile(&merged).await {
                    Ok(_) => break (1, due, merged.erased),
                    Err(e) if e.is_conflict() && attempt < MERGE_ATTEMPTS => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            if let Some(owners) = orders_of.get(new.customer_id.as_str()).filter(|_| !erased) {
                store.put_order_owners(owners).await?;
            }
            Ok::<_, CliError>((written, due))
        })
        .buffer_unordered(MERGE_CONCURRENCY)
        .inspect(|_| pb.inc(1))
        .try_fold(
            Merged {
                customers,
                ..Merged::default()
            },
            |mut m, (written, due)| async move {
                m.written += written;
                m.due_now += usize::from(due);
                Ok(m)
            },
        )
        .await
}

/// What [`import_profiles`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    pub customers: usize,
    /// Customers written (new, or changed by the file).
    pub written: usize,
    /// Customers due now after the merge.
    pub due_now: usize,
}

/// Writes profiles in batches of [`BATCH`], advancing `pb`.
pub async fn write_profiles(
    store: &dyn Store,
    profiles: &[Profile],
    pb: &ProgressBar,
) -> CliResult<usize> {
    let mut written = 0;
    for chunk in profiles.chunks(BATCH) {
        written += store.put_profiles(chunk).await?;
        pb.inc(chunk.len() as u64);
    }
    Ok(written)
}

/// Runs the scheduler in rebuild mode at `now`, so every customer's due time follows the policy.
pub async fn rebuild(
    store: Arc<dyn Store>,
    campaign: &CampaignConfig,
    now: DateTime<Utc>,
) -> CliResult<scheduler::Summary> {
    let deps = scheduler::Deps {
        store,
        bus: Arc::new(MemoryBus::new()),
        campaign: Arc::new(campaign.clone()),
        metrics: Arc::new(shared::emf::NullMetrics),
        retry: RetryPolicy::default(),
    };
    scheduler::run(
        &deps,
        scheduler::Input {
            now,
            mode: scheduler::Mode::Rebuild,
        },
        scheduler::Budget::unlimited(),
    )
    .await
    .map_err(|e| CliError::Scheduler(e.to_string()))
}

/// The store an import writes to, and the embedded store behind a snapshot (to save it).
pub async fn open_target(target: &Target) -> CliResult<(Arc<dyn Store>, Option<Arc<MemoryStore>>)> {
    Ok(match target {
        Target::Snapshot(path) => {
            let m = Arc::new(Snapshot::load_or_empty(path)?.restore().await?);
            (m.clone(), Some(m))
        }
        Target::Aws => (crate::aws::store().await?, None),
    })
}

/// Saves a snapshot target (with `campaign` among its campaigns); the table needs nothing.
pub async fn save_target(
    target: &Target,
    memory: Option<&MemoryStore>,
    campaign: &CampaignConfig,
) -> CliResult<()> {
    if let (Target::Snapshot(path), Some(m)) = (target, memory) {
        let mut campaigns = Snapshot::load_or_empty(path)?.campaigns;
        if !campaigns.contains(&campaign.name) {
            campaigns.push(campaign.name.clone());
        }
        Snapshot::take(m, &campaigns).await?.save(path)?;
    }
    Ok(())
}

/// The whole command: read, report bad rows on stderr, write, rebuild, save.
pub async fn run(
    file: &Path,
    target: &Target,
    campaign: &CampaignConfig,
    at: DateTime<Utc>,
) -> CliResult<ImportSummary> {
    let parsed = orders::read_orders(file)?;
    for bad in &parsed.bad {
        eprintln!("{}:{}: skipped: {}", file.display(), bad.line, bad.reason);
    }
    if parsed.rows.is_empty() {
        return Err(CliError::NothingImported {
            path: file.to_path_buf(),
            skipped: parsed.bad.len(),
        });
    }
    let (store, memory) = open_target(target).await?;
    let kept_out = orders::kept_out(
        &orders::build_profiles(&parsed.rows, &campaign.lapse, at, None),
        &campaign.eligibility.hygiene,
    );
    let pb = bar(0, "importing customers");
    let lapse = shared::fitted::lapse_policy(store.as_ref(), &campaign.name, &campaign.lapse).await;
    let merged = import_profiles(
        store.as_ref(),
        &parsed.rows,
        shared::domain::activity::source::SHOP,
        &lapse,
        at,
        &pb,
    )
    .await?;
    pb.finish_and_clear();
    let summary = rebuild(store.clone(), campaign, at).await?;
    save_target(target, memory.as_deref(), campaign).await?;
    Ok(ImportSummary {
        rows_read: parsed.rows.len() + parsed.bad.len(),
        orders: parsed.rows.len(),
        skipped: parsed.bad.len(),
        invalid_emails: parsed.invalid_emails(),
        kept_out,
        customers: merged.customers,
        written: merged.written,
        due_now: merged.due_now,
        rebuild_evaluated: summary.evaluated,
        model_stored: summary.model_refit,
        fit: summary.model_fit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared::campaign::testing::example_campaign;

    #[tokio::test]
    async fn imported_orders_with_an_id_are_remembered_as_their_customer_s_unless_erased() {
        use shared::ports::{OrderIndex, ProfileStore};
        let store = MemoryStore::new();
        let at = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let c = example_campaign();
        let mut gone = Profile::new("c3".parse().unwrap());
        gone.erased = true;
        store.save_profile(&gone).await.unwrap();
        let rows = orders::read_orders_from(
            "customer_id,email,ordered_at,amount,order_id\n\
             c1,a@example.com,2026-01-01,10,1001\n\
             c2,b@example.com,2026-01-02,20,1002\n\
             c2,b@example.com,2023-01-02,20,900\n\
             c3,c@example.com,2026-01-03,30,1003\n"
                .as_bytes(),
            Path::new("x.csv"),
        )
        .unwrap()
        .rows;
        import_profiles(&store, &rows, "shop", &c.lapse, at, &ProgressBar::hidden())
            .await
            .unwrap();
        let owner = |id: &'static str| {
            let store = &store;
            async move { store.order_owner("shop", id, at).await.unwrap() }
        };
        assert_eq!(owner("1001").await.as_deref(), Some("c1"));
        assert_eq!(owner("1002").await.as_deref(), Some("c2"));
        assert_eq!(
            owner("900").await,
            None,
            "older than the index keeps orders"
        );
        assert_eq!(
            owner("1003").await,
            None,
            "an erased customer is not listed again"
        );
        assert_eq!(
            store.order_owner("shopify", "1001", at).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn importing_twice_merges_orders_instead_of_replacing_them() {
        let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
        let at = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let c = example_campaign();
        let merge = |text: &str| {
            let rows = orders::read_orders_from(
                format!("customer_id,email,ordered_at,amount\n{text}").as_bytes(),
                Path::new("x.csv"),
            )
            .unwrap()
            .rows;
            let (store, lapse) = (store.clone(), c.lapse.clone());
            async move {
                merge_profiles(store.as_ref(), &rows, &lapse, at)
                    .await
                    .unwrap()
            }
        };
        let first = merge("c1,a@example.com,2026-01-01,10\n").await;
        write_profiles(store.as_ref(), &first, &ProgressBar::hidden())
            .await
            .unwrap();
        let second =
            merge("c1,a@example.com,2026-01-10,20\nc1,a@example.com,2026-01-01,10\n").await;
        assert_eq!(second[0].order_count, 2, "the repeated order counts once");
        assert_eq!(second[0].lifetime_value.0, 3000);
    }

    #[tokio::test]
    async fn an_import_in_another_currency_keeps_it_apart_and_a_sign_up_date_dates_the_anniversary()
    {
        use shared::domain::celebration::{due_today, Occasion};
        use shared::domain::zone::Zone;
        use shared::ports::ProfileStore;
        let store = MemoryStore::new();
        let at = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let lapse = example_campaign().lapse;
        let import = |text: &'static str| {
            let rows = orders::read_orders_from(text.as_bytes(), Path::new("x.csv"))
                .unwrap()
                .rows;
            let store = &store;
            let lapse = &lapse;
            async move {
                import_profiles(store, &rows, "shop", lapse, at, &ProgressBar::hidden())
                    .await
                    .unwrap();
                store.get_profile("c1").await.unwrap().unwrap()
            }
        };
        let p = import(
            "customer_id,email,ordered_at,amount,currency,signed_up_at\n\
             c1,a@example.com,2025-09-01,40.00,EUR,2023-03-15\n",
        )
        .await;
        assert_eq!(p.currency.as_deref(), Some("EUR"));
        // The shop's old system: kronor, and a later sign-up date that changes nothing.
        let p = import(
            "customer_id,email,ordered_at,amount,currency,signed_up_at\n\
             c1,a@example.com,2025-10-01,500.00,SEK,2024-01-01\n\
             c1,a@example.com,2025-11-01,250.00,SEK,\n\
             c1,a@example.com,2025-12-01,10.00,EUR,\n",
        )
        .await;
        assert_eq!(p.order_count, 4);
        assert_eq!(p.currency.as_deref(), Some("EUR"));
        assert_eq!(p.lifetime_value.0, 5000, "40 + 10 EUR, never the kronor");
        assert_eq!(p.lifetime_value_other.get("SEK").map(|m| m.0), Some(75000));
        // The whole file again changes nothing.
        let again = import(
            "customer_id,email,ordered_at,amount,currency\n\
             c1,a@example.com,2025-10-01,500.00,SEK\n",
        )
        .await;
        assert_eq!(
            (again.lifetime_value, again.lifetime_value_other.clone()),
            (p.lifetime_value, p.lifetime_value_other.clone())
        );
        assert_eq!(
            p.signed_up_at,
            Some(Utc.with_ymd_and_hms(2023, 3, 15, 0, 0, 0).unwrap())
        );
        let tz: Zone = "Europe/Stockholm".parse().unwrap();
        let march_15 = Utc.with_ymd_and_hms(2026, 3, 15, 9, 0, 0).unwrap();
        assert_eq!(due_today(&p, &tz, march_15), Some(Occasion::Anniversary));
        let september_1 = Utc.with_ymd_and_hms(2026, 9, 1, 9, 0, 0).unwrap();
        assert_eq!(
            due_today(&p, &tz, september_1),
            None,
            "not the first order's day"
        );
    }

    #[tokio::test]
    async fn reimporting_a_customer_with_more_orders_than_the_history_keeps_counts_each_order_once()
    {
        async fn import(store: &MemoryStore, range: std::ops::Range<i64>) -> Profile {
            use shared::ports::ProfileStore;
            let at = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
            let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            let mut text = String::from("customer_id,email,ordered_at,amount\n");
            for d in range {
                let day = (start + chrono::Duration::days(3 * d)).format("%Y-%m-%d");
                text.push_str(&format!("c1,a@example.com,{day},{}\n", 10 + d));
            }
            let rows = orders::read_orders_from(text.as_bytes(), Path::new("x.csv"))
                .unwrap()
                .rows;
            let lapse = example_campaign().lapse;
            import_profiles(store, &rows, "shop", &lapse, at, &ProgressBar::hidden())
                .await
                .unwrap();
            store.get_profile("c1").await.unwrap().unwrap()
        }
        let all: i64 = (0..30).map(|d| (10 + d) * 100).sum();
        let store = MemoryStore::new();
        let p = import(&store, 0..30).await;
        assert_eq!((p.order_count, p.lifetime_value.0), (30, all));
        let p = import(&store, 0..30).await;
        assert_eq!(
            (p.order_count, p.lifetime_value.0),
            (30, all),
            "the whole file again"
        );
        let p = import(&store, 0..10).await;
        assert_eq!(
            (p.order_count, p.lifetime_value.0),
            (30, all),
            "its oldest orders again"
        );
        // A profile that already holds the newest order: the file's older 29 all count.
        let store = MemoryStore::new();
        assert_eq!(import(&store, 29..30).await.order_count, 1);
        let p = import(&store, 0..30).await;
        assert_eq!(
            (p.order_count, p.lifetime_value.0),
            (30, all),
            "merged into a stored profile"
        );
    }

    #[tokio::test]
    async fn consent_unsubscribes_and_bounces_in_the_file_keep_customers_from_email_and_never_resubscribe(
    ) {
        use shared::domain::customer::EmailStatus;
        use shared::ports::ProfileStore;
        let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
        let at = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let c = example_campaign();
        let file = "customer_id,email,ordered_at,amount,marketing_consent,unsubscribed,bounced\n\
                    c1,a@example.com,2026-01-01,10,yes,,\n\
                    c2,b@example.com,2026-01-01,10,no,,\n\
                    c3,c@example.com,2026-01-01,10,yes,2025-12-24,\n\
                    c4,d@example.com,2026-01-01,10,,,true\n\
                    c5,e@example.com,2026-01-01,10,maybe,,\n";
        let parsed = orders::read_orders_from(file.as_bytes(), Path::new("x.csv")).unwrap();
        assert_eq!(parsed.bad.len(), 1, "'maybe' is refused with its line");
        assert!(parsed.bad[0].reason.contains("marketing_consent"));
        let mut old = Profile::new("c1".parse().unwrap());
        old.email_status = EmailStatus::Unsubscribed;
        store.save_profile(&old).await.unwrap();
        import_profiles(
            store.as_ref(),
            &parsed.rows,
            "shop",
            &c.lapse,
            at,
            &ProgressBar::hidden(),
        )
        .await
        .unwrap();
        for (id, status) in [
            ("c1", EmailStatus::Unsubscribed),
            ("c2", EmailStatus::Unsubscribed),
            ("c3", EmailStatus::Unsubscribed),
            ("c4", EmailStatus::Suppressed),
        ] {
            let p = store.get_profile(id).await.unwrap().unwrap();
            assert_eq!(p.email_status, status, "{id}");
            assert!(!p.is_mailable() || status == EmailStatus::Subscribed);
        }
    }
}
