//! The DynamoDB store: one table, keys `pk`/`sk`, a sparse write-sharded GSI `due`
//! (`due_shard`/`due_key`) and a TTL attribute `ttl`.
//!
//! | entity | `pk` | `sk` |
//! | --- | --- | --- |
//! | profile | `C#<customer>` | `PROFILE` |
//! | enrollment (latest) | `C#<customer>` | `ENR#<campaign>` |
//! | reward | `R#<code>` | `REWARD` |
//! | reward issued to a customer (for erasure) | `C#<customer>` | `REWARD#<code>` |
//! | order index: the customer of an order (`customer_id`, + `ttl`) | `O#<source>#<order id>` | `ORDER` |
//! | order index item listed under its customer (for erasure, + `ttl`) | `C#<customer>` | `ORDER#<source>#<order id>` |
//! | idempotency record | `IDEM#<key>` | `IDEM` (+ `ttl`) |
//! | counters | `M#<campaign>` | `TOTAL#<variant>#<group>`, `DAY#<yyyy-mm-dd>#<variant>#<group>` |
//! | scheduler checkpoint | `SCHED` | `CHECKPOINT` |
//! | a campaign's fitted customer model | `FIT#<campaign>` | `FIT` |
//! | a flow's learned uplift model | `TARGETING#<campaign>#<flow>` | `TARGETING` |
//!
//! Entities are stored as `doc` (their JSON) beside `version`; a versioned save is a `PutItem`
//! conditioned on the stored version, so a full replace also removes `due_shard`/`due_key` when
//! the entity is no longer due. Counters are numeric attributes `c_<name>` changed with `ADD`.
//!
//! Write costs. The due index projects `doc` and `version` only (`INCLUDE`), so the scheduler
//! reads due profiles straight from the index. Enrollments keep their JSON and version in `body`
//! and `rev` instead, outside the projection: a save that leaves the due time alone (the
//! sender's claim and mark) writes the table item and not the index, and the scheduler fetches
//! due enrollments with one `BatchGetItem` per page. Counters are written to day rows only; the
//! running totals are their sums, made when read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::customer::Profile;
use crate::domain::experiment::Group;
use crate::domain::metrics::{with_totals, CohortKey, CounterRow, Counts};
use crate::domain::model::CampaignFit;
use crate::domain::reward::{Reward, RewardCode};
use crate::domain::sequence::Enrollment;
use crate::domain::targeting::TargetingModel;
use crate::ports::*;

/// Name of the due-time GSI.
pub const DUE_INDEX: &str = "due";
/// Items per `BatchWriteItem` call (the service's limit).
const BATCH_SIZE: usize = 25;
/// Attempts at writing a batch's unprocessed items before giving up.
const BATCH_ATTEMPTS: u32 = 8;
/// Prefix of counter attributes, so counter names never collide with the item's own attributes.
const COUNTER_PREFIX: &str = "c_";

type Item = HashMap<String, AttributeValue>;

mod checkpoint;
mod codec;
mod due;
mod enrollments;
mod erasure;
mod errors;
mod fit;
mod idempotency;
mod metrics;
mod orders;
mod profiles;
mod rewards;
#[cfg(test)]
mod tests;

pub use self::codec::due_key;
use self::codec::*;
use self::errors::*;
pub use self::errors::{DynamoError, DynamoSetupError};

/// The DynamoDB [`Store`]. Cheap to share behind an `Arc`; counts the items it reads and writes.
pub struct DynamoStore {
    client: Client,
    table: String,
    items_read: AtomicU64,
    writes: AtomicU64,
}

impl DynamoStore {
    /// A store on `table`, using a client built once at start.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            items_read: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    /// A function's store on `table` whose connection starts opening now, with `also` beside it
    /// (see [`crate::aws::spawn_warm_up`]): await the handle before the first request.
    pub fn warming(
        conf: &aws_config::SdkConfig,
        table: String,
        also: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> (DynamoStore, tokio::task::JoinHandle<()>) {
        let client = Client::new(conf);
        let warming = crate::aws::spawn_warm_up(&client, &table, also);
        (DynamoStore::new(client, table), warming)
    }

    /// A store from the standard AWS environment (`AWS_REGION`, `AWS_ENDPOINT_URL_DYNAMODB`, …)
    /// and `TABLE_NAME`.
    pub async fn from_env() -> Result<DynamoStore, DynamoSetupError> {
        let table = std::env::var("TABLE_NAME")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or(DynamoSetupError::MissingTableName)?;
        let config = crate::aws::aws_config().await;
        Ok(DynamoStore::new(Client::new(&config), table))
    }

    /// The table this store uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The client this store uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Items read so far: found gets plus the `ScannedCount` of queries and scans.
    pub fn items_read(&self) -> u64 {
        self.items_read.load(Ordering::Relaxed)
    }

    /// Item writes so far (puts, updates, deletes; batch items one each).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn read(&self, n: u64) {
        self.items_read.fetch_add(n, Ordering::Relaxed);
    }

    fn wrote(&self, n: u64) {
        self.writes.fetch_add(n, Ordering::Relaxed);
    }

    async fn get_item(&self, pk: String, sk: String) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(e, "GetItem", &self.table, None))?;
        let item = out.item;
        if item.is_some() {
            self.read(1);
        }
        Ok(item)
    }

    async fn get_entity<T: Versioned>(&self, pk: String, sk: String) -> StoreResult<Option<T>> {
        self.get_item(pk, sk)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// Puts `item` (a `T`) with its version `expected + 1` if the stored version is `expected`
    /// (0 = the item must not exist).
    async fn put_versioned<T: Versioned>(
        &self,
        mut item: Item,
        expected: u64,
        entity: &'static str,
        id: &str,
    ) -> StoreResult<u64> {
        item.insert(T::VERSION.into(), n(expected + 1));
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let (condition, names, values) = version_condition(T::VERSION, expected);
        req.condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(self.on_conflict("PutItem", entity, id, expected))?;
        self.wrote(1);
        Ok(expected + 1)
    }

    /// Writes `items` with BatchWriteItem, retrying unprocessed items with exponential backoff.
    async fn batch_put(&self, items: Vec<Item>) -> StoreResult<()> {
        for chunk in items.chunks(BATCH_SIZE) {
            let requests = chunk
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(|e| StoreError::Backend(Box::new(e)))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let send = |batch: Vec<WriteRequest>| async move {
                let sent = batch.len() as u64;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.clone(), batch)
                    .send()
                    .await
                    .map_err(|e| classify(e, "BatchWriteItem", &self.table, None))?;
                let unprocessed = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                self.wrote(sent - unprocessed.len() as u64);
                Ok(unprocessed)
            };
            write_until_processed(requests, &self.table, BATCH_BACKOFF, send).await?;
        }
        Ok(())
    }
}

/// First wait before resending unprocessed batch items; doubles with each attempt.
const BATCH_BACKOFF: Duration = Duration::from_millis(50);

/// Sends `pending` with `send` (which returns what was left unprocessed) until nothing is left:
/// [`until_processed`] of a `BatchWriteItem`.
async fn write_until_processed<T, F, Fut>(
    pending: Vec<T>,
    table: &str,
    backoff: Duration,
    mut send: F,
) -> StoreResult<()>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Vec<T>>>,
{
    let sent = |batch| {
        let left = send(batch);
        async move { Ok((Vec::<()>::new(), left.await?)) }
    };
    until_processed("BatchWriteItem", pending, table, backoff, sent).await?;
    Ok(())
}

/// Sends `pending` with `send` (which returns what it got back and what was left unprocessed)
/// until nothing is left, at most [`BATCH_ATTEMPTS`] times, backing off exponentially from
/// `backoff` (capped at 32×); returns all it got back.
async fn until_processed<T, O, F, Fut>(
    op: &str,
    mut pending: Vec<T>,
    table: &str,
    backoff: Duration,
    mut send: F,
) -> StoreResult<Vec<O>>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<(Vec<O>, Vec<T>)>>,
{
    let total = pending.len();
    let mut done = Vec::new();
    for attempt in 0..BATCH_ATTEMPTS {
        if pending.is_empty() {
            return Ok(done);
        }
        if attempt > 0 {
            tokio::time::sleep(backoff * (1u32 << (attempt - 1).min(5))).await;
        }
        let (got, left) = send(pending).await?;
        done.extend(got);
        pending = left;
    }
    if pending.is_empty() {
        return Ok(done);
    }
    Err(StoreError::Transient(
        format!(
            "{} of {total} items were still unprocessed after {BATCH_ATTEMPTS} {op} attempts on table {table}: the table is throttled, retry later",
            pending.len()
        )
        .into(),
    ))
}
