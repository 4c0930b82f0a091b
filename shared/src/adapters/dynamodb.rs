//! The DynamoDB store: one table, keys `pk`/`sk`, a sparse write-sharded GSI `due`
//! (`due_shard`/`due_key`) and a TTL attribute `ttl`.
//!
//! | entity | `pk` | `sk` |
//! | --- | --- | --- |
//! | profile | `C#<customer>` | `PROFILE` |
//! | enrollment (latest) | `C#<customer>` | `ENR#<campaign>` |
//! | reward | `R#<code>` | `REWARD` |
//! | reward issued to a customer (for erasure) | `C#<customer>` | `REWARD#<code>` |
//! | idempotency record | `IDEM#<key>` | `IDEM` (+ `ttl`) |
//! | counters | `M#<campaign>` | `TOTAL#<variant>#<group>`, `DAY#<yyyy-mm-dd>#<variant>#<group>` |
//! | scheduler checkpoint | `SCHED` | `CHECKPOINT` |
//! | a campaign's fitted customer model | `FIT#<campaign>` | `FIT` |
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
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, KeysAndAttributes, LocalSecondaryIndex, Projection, ProjectionType,
    PutRequest, ScalarAttributeType, TableStatus, TimeToLiveSpecification, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::customer::Profile;
use crate::domain::experiment::Group;
use crate::domain::metrics::{with_totals, CohortKey, CounterRow, Counts};
use crate::domain::model::CampaignFit;
use crate::domain::reward::{Reward, RewardCode};
use crate::domain::sequence::Enrollment;
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

/// Errors setting up the store or its table (not per-request errors: those are [`StoreError`]).
#[derive(Debug, thiserror::Error)]
pub enum DynamoSetupError {
    /// `TABLE_NAME` is missing.
    #[error("TABLE_NAME is not set: set it to the DynamoDB table's name (the SAM template sets it on every function; locally use the table infra/local/seed.py created)")]
    MissingTableName,
    /// The table spec file could not be read.
    #[error("cannot read the table spec {path}: {source} (run infra/local/stack.sh start, which writes it from template.yaml)")]
    SpecRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The table spec is not the CreateTable JSON infra/local/table_spec.py writes.
    #[error("the table spec {path} is not a CreateTable request: {reason} (regenerate it with infra/local/table_spec.py)")]
    SpecInvalid { path: String, reason: String },
    /// A DynamoDB call failed.
    #[error("{what} for table {table} failed: {source}")]
    Service {
        what: &'static str,
        table: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The table did not become ACTIVE in time.
    #[error(
        "table {table} was not ACTIVE after {seconds}s (is the DynamoDB endpoint overloaded?)"
    )]
    NotActive { table: String, seconds: u64 },
}

/// A failed DynamoDB request, with the operation, the table and the SDK's error as its source.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {op} on table {table} failed: {detail}")]
pub struct DynamoError {
    pub op: &'static str,
    pub table: String,
    detail: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Error codes DynamoDB uses for "slow down and retry".
const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

/// What a conditional-check failure means for the caller.
struct OnConflict<'a> {
    entity: &'static str,
    id: &'a str,
    expected: u64,
}

fn classify<E>(
    err: SdkError<E, HttpResponse>,
    op: &'static str,
    table: &str,
    conflict: Option<OnConflict<'_>>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().unwrap_or_default().to_string();
    if code == "ConditionalCheckFailedException" {
        if let Some(c) = conflict {
            return StoreError::Conflict {
                entity: c.entity,
                id: c.id.to_string(),
                expected: c.expected,
            };
        }
    }
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => d.is_timeout() || d.is_io(),
        SdkError::ServiceError(s) => {
            THROTTLING.contains(&code.as_str()) || s.raw().status().is_server_error()
        }
        _ => false,
    };
    let wrapped = DynamoError {
        op,
        table: table.to_string(),
        detail: DisplayErrorContext(&err).to_string(),
        source: Box::new(err),
    };
    if transient {
        StoreError::Transient(Box::new(wrapped))
    } else {
        StoreError::Backend(Box::new(wrapped))
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn profile_pk(customer_id: &str) -> String {
    format!("C#{customer_id}")
}

const PROFILE_SK: &str = "PROFILE";

fn enrollment_sk(campaign: &str) -> String {
    format!("ENR#{campaign}")
}

fn reward_pk(code: &str) -> String {
    format!("R#{code}")
}

fn idem_pk(key: &str) -> String {
    format!("IDEM#{key}")
}

fn counters_pk(campaign: &str) -> String {
    format!("M#{campaign}")
}

fn counters_sk(key: &CohortKey, day: Option<NaiveDate>) -> String {
    match day {
        None => format!("TOTAL#{}#{}", key.variant, key.group.as_str()),
        Some(d) => format!(
            "DAY#{}#{}#{}",
            d.format("%Y-%m-%d"),
            key.variant,
            key.group.as_str()
        ),
    }
}

/// Fixed-width UTC time of the due index (millisecond precision), so keys sort by time.
fn due_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `due_key` of an item: `<time>#<P|E>#<customer>#<campaign>`.
pub fn due_key(at: DateTime<Utc>, kind: char, customer_id: &str, campaign: &str) -> String {
    format!("{}#{kind}#{customer_id}#{campaign}", due_time(at))
}

/// Entities stored as `doc` + `version`. Fields the keys already hold (and the version) are left
/// out of `doc` to keep items small, and put back from the keys when read.
trait Versioned: Serialize + DeserializeOwned {
    /// `(field, key attribute, prefix)`: the field's value is the key attribute minus the prefix.
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)];
    /// The attributes holding the JSON and the version.
    const DOC: &'static str = "doc";
    const VERSION: &'static str = "version";

    /// Leaves out fields derivable from the rest of the (full) document.
    fn compact(_doc: &mut serde_json::Map<String, serde_json::Value>) {}

    /// Puts back what [`Versioned::compact`] left out (the key fields are already back).
    fn expand(_doc: &mut serde_json::Map<String, serde_json::Value>) {}
}

/// The enrollment id `<customer>#<campaign>#<round>` as it is usually formed.
fn usual_enrollment_id(doc: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    Some(format!(
        "{}#{}#{}",
        doc.get("customer_id")?.as_str()?,
        doc.get("campaign")?.as_str()?,
        doc.get("round")?.as_u64()?
    ))
}

impl Versioned for Profile {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] =
        &[("customer_id", "pk", "C#")];
}

impl Versioned for Enrollment {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] =
        &[("customer_id", "pk", "C#"), ("campaign", "sk", "ENR#")];
    // Outside the due index's projection: see the module docs.
    const DOC: &'static str = "body";
    const VERSION: &'static str = "rev";

    fn compact(doc: &mut serde_json::Map<String, serde_json::Value>) {
        if usual_enrollment_id(doc).as_deref() == doc.get("id").and_then(|v| v.as_str()) {
            doc.remove("id");
        }
    }

    fn expand(doc: &mut serde_json::Map<String, serde_json::Value>) {
        if !doc.contains_key("id") {
            if let Some(id) = usual_enrollment_id(doc) {
                doc.insert("id".into(), id.into());
            }
        }
    }
}

impl Versioned for Reward {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] =
        &[("code", "pk", "R#")];
}

impl Versioned for Checkpoint {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] = &[];
}

impl Versioned for CampaignFit {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] = &[];
}

fn corrupt(item: &Item, reason: impl Into<String>) -> StoreError {
    let part = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => "?".to_string(),
    };
    StoreError::Corrupt {
        id: format!("{}/{}", part("pk"), part("sk")),
        reason: reason.into(),
    }
}

fn entity_item<T: Versioned>(
    pk: String,
    sk: String,
    entity: &T,
    version: u64,
) -> StoreResult<Item> {
    let mut doc = serde_json::to_value(entity).map_err(|e| StoreError::Backend(Box::new(e)))?;
    if let Some(map) = doc.as_object_mut() {
        T::compact(map);
        map.remove("version");
        for (field, _, _) in T::FROM_KEYS {
            map.remove(*field);
        }
    }
    let mut item = key(pk, sk);
    item.insert(T::DOC.into(), s(doc.to_string()));
    item.insert(T::VERSION.into(), n(version));
    Ok(item)
}

fn with_due(mut item: Item, due: Option<(DateTime<Utc>, char, &str, &str)>) -> Item {
    if let Some((at, kind, customer, campaign)) = due {
        item.insert("due_shard".into(), s(format!("{:02}", due_shard(customer))));
        item.insert("due_key".into(), s(due_key(at, kind, customer, campaign)));
    }
    item
}

fn profile_item(p: &Profile, version: u64) -> StoreResult<Item> {
    let item = entity_item(profile_pk(&p.customer_id), PROFILE_SK.into(), p, version)?;
    Ok(with_due(
        item,
        p.due_at.map(|at| (at, 'P', p.customer_id.as_str(), "")),
    ))
}

fn enrollment_item(e: &Enrollment, version: u64) -> StoreResult<Item> {
    let item = entity_item(
        profile_pk(&e.customer_id),
        enrollment_sk(&e.campaign),
        e,
        version,
    )?;
    Ok(with_due(
        item,
        e.due_at
            .map(|at| (at, 'E', e.customer_id.as_str(), e.campaign.as_str())),
    ))
}

fn decode<T: Versioned>(item: &Item) -> StoreResult<T> {
    let doc = match item.get(T::DOC) {
        Some(AttributeValue::S(d)) => d,
        _ => return Err(corrupt(item, format!("no {} attribute", T::DOC))),
    };
    let version = match item.get(T::VERSION) {
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|e| corrupt(item, format!("{} {v}: {e}", T::VERSION)))?,
        _ => return Err(corrupt(item, format!("no {} attribute", T::VERSION))),
    };
    let mut value: serde_json::Value =
        serde_json::from_str(doc).map_err(|e| corrupt(item, format!("doc: {e}")))?;
    let map = value
        .as_object_mut()
        .ok_or_else(|| corrupt(item, "doc is not a JSON object"))?;
    map.insert("version".into(), version.into());
    for (field, attr, prefix) in T::FROM_KEYS {
        let from_key = match item.get(*attr) {
            Some(AttributeValue::S(k)) => k.strip_prefix(prefix),
            _ => None,
        };
        let from_key = from_key
            .ok_or_else(|| corrupt(item, format!("{attr} does not start with {prefix}")))?;
        map.insert((*field).into(), from_key.into());
    }
    T::expand(map);
    serde_json::from_value(value).map_err(|e| corrupt(item, format!("doc: {e}")))
}

/// Encodes a LastEvaluatedKey (string attributes only) as an opaque cursor.
fn encode_cursor(last: Option<&Item>) -> StoreResult<Option<String>> {
    let Some(last) = last.filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let mut map = serde_json::Map::new();
    for (k, v) in last {
        match v {
            AttributeValue::S(text) => {
                map.insert(k.clone(), serde_json::Value::String(text.clone()));
            }
            other => {
                return Err(StoreError::Corrupt {
                    id: "cursor".into(),
                    reason: format!("key attribute {k} is not a string: {other:?}"),
                })
            }
        }
    }
    Ok(Some(serde_json::Value::Object(map).to_string()))
}

fn decode_cursor(cursor: &str) -> StoreResult<Item> {
    let bad = |reason: String| StoreError::Corrupt {
        id: "cursor".into(),
        reason,
    };
    let map: HashMap<String, String> = serde_json::from_str(cursor)
        .map_err(|e| bad(format!("not a cursor this store returned: {e}")))?;
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

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

    /// A store from the standard AWS environment (`AWS_REGION`, `AWS_ENDPOINT_URL_DYNAMODB`, …)
    /// and `TABLE_NAME`.
    pub async fn from_env() -> Result<DynamoStore, DynamoSetupError> {
        let table = std::env::var("TABLE_NAME")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or(DynamoSetupError::MissingTableName)?;
        let config = crate::settings::aws_config().await;
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
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        req = if expected == 0 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("#v = :expected")
                .expression_attribute_names("#v", T::VERSION)
                .expression_attribute_values(":expected", n(expected))
        };
        req.send().await.map_err(|e| {
            classify(
                e,
                "PutItem",
                &self.table,
                Some(OnConflict {
                    entity,
                    id,
                    expected,
                }),
            )
        })?;
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

/// Sends `pending` with `send` (which returns what was left unprocessed) until nothing is left,
/// at most [`BATCH_ATTEMPTS`] times, backing off exponentially from `backoff` (capped at 32×).
async fn write_until_processed<T, F, Fut>(
    mut pending: Vec<T>,
    table: &str,
    backoff: Duration,
    mut send: F,
) -> StoreResult<()>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Vec<T>>>,
{
    let total = pending.len();
    for attempt in 0..BATCH_ATTEMPTS {
        if pending.is_empty() {
            return Ok(());
        }
        if attempt > 0 {
            tokio::time::sleep(backoff * (1u32 << (attempt - 1).min(5))).await;
        }
        pending = send(pending).await?;
    }
    if pending.is_empty() {
        return Ok(());
    }
    Err(StoreError::Transient(
        format!(
            "{} of {total} items were still unprocessed after {BATCH_ATTEMPTS} BatchWriteItem attempts on table {table}: the table is throttled, retry later",
            pending.len()
        )
        .into(),
    ))
}

#[async_trait]
impl ProfileStore for DynamoStore {
    async fn get_profile(&self, customer_id: &str) -> StoreResult<Option<Profile>> {
        self.get_entity(profile_pk(customer_id), PROFILE_SK.into())
            .await
    }

    async fn save_profile(&self, profile: &Profile) -> StoreResult<u64> {
        let item = profile_item(profile, profile.version + 1)?;
        self.put_versioned::<Profile>(item, profile.version, "profile", &profile.customer_id)
            .await
    }

    /// Without version checks; each stored profile gets `version + 1`. When a customer appears
    /// more than once, the last one wins.
    async fn put_profiles(&self, profiles: &[Profile]) -> StoreResult<usize> {
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, p) in profiles.iter().enumerate() {
            last.insert(p.customer_id.as_str(), i);
        }
        let items = profiles
            .iter()
            .enumerate()
            .filter(|(i, p)| last.get(p.customer_id.as_str()) == Some(i))
            .map(|(_, p)| profile_item(p, p.version + 1))
            .collect::<StoreResult<Vec<_>>>()?;
        self.batch_put(items).await?;
        Ok(profiles.len())
    }
}

#[async_trait]
impl EnrollmentStore for DynamoStore {
    async fn get_enrollment(
        &self,
        customer_id: &str,
        campaign: &str,
    ) -> StoreResult<Option<Enrollment>> {
        self.get_entity(profile_pk(customer_id), enrollment_sk(campaign))
            .await
    }

    async fn save_enrollment(&self, enrollment: &Enrollment) -> StoreResult<u64> {
        let item = enrollment_item(enrollment, enrollment.version + 1)?;
        self.put_versioned::<Enrollment>(item, enrollment.version, "enrollment", &enrollment.id)
            .await
    }
}

#[async_trait]
impl RewardStore for DynamoStore {
    /// Lists the code under its customer first (so erasure finds every reward issued, also one
    /// whose insert then failed), then inserts the reward.
    async fn insert_reward(&self, reward: &Reward) -> StoreResult<()> {
        let code = reward.code.as_str();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key(
                profile_pk(&reward.customer_id),
                format!("{REWARD_OF_PREFIX}{code}"),
            )))
            .send()
            .await
            .map_err(|e| classify(e, "PutItem", &self.table, None))?;
        self.wrote(1);
        let item = entity_item(reward_pk(code), "REWARD".into(), reward, 1)?;
        self.put_versioned::<Reward>(item, 0, "reward", code)
            .await?;
        Ok(())
    }

    async fn get_reward(&self, code: &RewardCode) -> StoreResult<Option<Reward>> {
        self.get_entity(reward_pk(code.as_str()), "REWARD".into())
            .await
    }

    /// Updates an inserted reward; a reward at version 0 was never inserted, so it conflicts.
    async fn save_reward(&self, reward: &Reward) -> StoreResult<u64> {
        let code = reward.code.as_str();
        let item = entity_item(reward_pk(code), "REWARD".into(), reward, reward.version + 1)?;
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":expected", n(reward.version))
            .send()
            .await;
        out.map_err(|e| {
            classify(
                e,
                "PutItem",
                &self.table,
                Some(OnConflict {
                    entity: "reward",
                    id: code,
                    expected: reward.version,
                }),
            )
        })?;
        self.wrote(1);
        Ok(reward.version + 1)
    }
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    /// Expiry is compared with the wall clock at second precision (TTL housekeeping only).
    async fn claim_key(&self, key_: &str, expires_at: DateTime<Utc>) -> StoreResult<Claimed> {
        for _ in 0..3 {
            let mut item = key(idem_pk(key_), "IDEM".into());
            item.insert("ttl".into(), n(expires_at.timestamp()));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":now", n(Utc::now().timestamp()))
                .send()
                .await;
            match put {
                Ok(_) => {
                    self.wrote(1);
                    return Ok(Claimed::New);
                }
                Err(e) => {
                    let err = classify(
                        e,
                        "PutItem",
                        &self.table,
                        Some(OnConflict {
                            entity: "idempotency key",
                            id: key_,
                            expected: 0,
                        }),
                    );
                    if !err.is_conflict() {
                        return Err(err);
                    }
                }
            }
            // Claimed and not expired: report what was recorded. If it was released meanwhile,
            // try the claim again.
            if let Some(item) = self.get_item(idem_pk(key_), "IDEM".into()).await? {
                let result = match item.get("result") {
                    Some(AttributeValue::S(r)) => Some(r.clone()),
                    _ => None,
                };
                return Ok(Claimed::Seen(result));
            }
        }
        Err(StoreError::Transient(
            format!("idempotency key {key_} was claimed and released repeatedly while claiming it")
                .into(),
        ))
    }

    /// Does nothing when the key is not claimed.
    async fn record_result(
        &self,
        key_: &str,
        result: &str,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(idem_pk(key_), "IDEM".into())))
            .update_expression("SET #r = :r, #ttl = :ttl")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#r", "result")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":r", s(result))
            .expression_attribute_values(":ttl", n(keep_until.timestamp()))
            .send()
            .await;
        match out {
            Ok(_) => {
                self.wrote(1);
                Ok(())
            }
            Err(e) => match classify(
                e,
                "UpdateItem",
                &self.table,
                Some(OnConflict {
                    entity: "idempotency key",
                    id: key_,
                    expected: 0,
                }),
            ) {
                StoreError::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn release_key(&self, key_: &str) -> StoreResult<()> {
        self.delete(idem_pk(key_), "IDEM".into()).await
    }
}

impl DynamoStore {
    async fn delete(&self, pk: String, sk: String) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(|e| classify(e, "DeleteItem", &self.table, None))?;
        self.wrote(1);
        Ok(())
    }

    /// The items of a customer's partition whose sort key starts with `prefix`.
    async fn customer_items(&self, customer_id: &str, prefix: &str) -> StoreResult<Vec<Item>> {
        self.partition(profile_pk(customer_id), Some(prefix)).await
    }

    /// Every item of partition `pk` (whose sort key starts with `prefix`, if given), all pages.
    async fn partition(&self, pk: String, prefix: Option<&str>) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            req = match prefix {
                Some(prefix) => req
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => req.key_condition_expression("pk = :pk"),
            };
            let out = req
                .send()
                .await
                .map_err(|e| classify(e, "Query", &self.table, None))?;
            self.read(out.scanned_count.max(0) as u64);
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl ErasureStore for DynamoStore {
    async fn enrollments_of(&self, customer_id: &str) -> StoreResult<Vec<Enrollment>> {
        self.customer_items(customer_id, "ENR#")
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn rewards_of(&self, customer_id: &str) -> StoreResult<Vec<RewardCode>> {
        self.customer_items(customer_id, REWARD_OF_PREFIX)
            .await?
            .iter()
            .map(|item| match item.get("sk") {
                Some(AttributeValue::S(sk)) => sk
                    .strip_prefix(REWARD_OF_PREFIX)
                    .and_then(|c| RewardCode::parse(c).ok())
                    .ok_or_else(|| corrupt(item, "sort key is not a reward code's")),
                _ => Err(corrupt(item, "no sort key")),
            })
            .collect()
    }

    async fn delete_enrollment(&self, customer_id: &str, campaign: &str) -> StoreResult<()> {
        self.delete(profile_pk(customer_id), enrollment_sk(campaign))
            .await
    }

    async fn delete_reward(&self, customer_id: &str, code: &RewardCode) -> StoreResult<()> {
        self.delete(reward_pk(code.as_str()), "REWARD".into())
            .await?;
        self.delete(
            profile_pk(customer_id),
            format!("{REWARD_OF_PREFIX}{}", code.as_str()),
        )
        .await
    }
}

/// Sort key prefix of the item that lists a reward under its customer (erasure finds it there).
const REWARD_OF_PREFIX: &str = "REWARD#";

fn parse_group(text: &str) -> Option<Group> {
    match text {
        "treated" => Some(Group::Treated),
        "holdout" => Some(Group::Holdout),
        _ => None,
    }
}

/// Reads a counter row's sort key back into its variant, group and day.
fn parse_counters_sk(sk: &str) -> Option<(String, Group, Option<NaiveDate>)> {
    let (rest, group) = sk.rsplit_once('#')?;
    let group = parse_group(group)?;
    if let Some(variant) = rest.strip_prefix("TOTAL#") {
        return Some((variant.to_string(), group, None));
    }
    let (day, variant) = rest.strip_prefix("DAY#")?.split_once('#')?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some((variant.to_string(), group, Some(day)))
}

#[async_trait]
impl MetricsStore for DynamoStore {
    async fn add_counts(
        &self,
        cohort: &CohortKey,
        day: Option<NaiveDate>,
        deltas: &[(&str, i64)],
    ) -> StoreResult<()> {
        let mut merged: Vec<(&str, i64)> = Vec::new();
        for (name, delta) in deltas {
            match merged.iter_mut().find(|(n, _)| n == name) {
                Some(m) => m.1 += delta,
                None => merged.push((name, *delta)),
            }
        }
        if merged.is_empty() {
            return Ok(());
        }
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut parts = Vec::new();
        for (i, (name, delta)) in merged.iter().enumerate() {
            names.insert(format!("#c{i}"), format!("{COUNTER_PREFIX}{name}"));
            values.insert(format!(":c{i}"), n(delta));
            parts.push(format!("#c{i} :c{i}"));
        }
        let expression = format!("ADD {}", parts.join(", "));
        // One row: the day's, or the day-less total row (totals are summed when read).
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                counters_pk(&cohort.campaign),
                counters_sk(cohort, day),
            )))
            .update_expression(&expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| classify(e, "UpdateItem", &self.table, None))?;
        self.wrote(1);
        Ok(())
    }

    async fn counter_rows(&self, campaign: &str) -> StoreResult<Vec<CounterRow>> {
        let mut rows = Vec::new();
        for item in self.partition(counters_pk(campaign), None).await? {
            let sk = match item.get("sk") {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => return Err(corrupt(&item, "no sort key")),
            };
            let (variant, group, day) = parse_counters_sk(&sk)
                .ok_or_else(|| corrupt(&item, "sort key is not a counter row's"))?;
            let mut counts = Counts::default();
            for (attr, value) in &item {
                let Some(name) = attr.strip_prefix(COUNTER_PREFIX) else {
                    continue;
                };
                let AttributeValue::N(v) = value else {
                    return Err(corrupt(&item, format!("counter {name} is not a number")));
                };
                let v = v
                    .parse::<i64>()
                    .map_err(|e| corrupt(&item, format!("counter {name}: {e}")))?;
                counts.add(name, v);
            }
            rows.push(CounterRow {
                key: CohortKey {
                    campaign: campaign.to_string(),
                    variant,
                    group,
                },
                day,
                counts,
            });
        }
        Ok(with_totals(rows))
    }
}

/// An item's `pk` and `sk`.
fn primary_key(item: &Item) -> (String, String) {
    let text = |a: &str| match item.get(a) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => String::new(),
    };
    (text("pk"), text("sk"))
}

/// An entry of the due index: a profile (projected whole) or the keys of an enrollment.
enum DueEntry {
    Profile(Box<Profile>),
    Enrollment(Item),
}

fn due_entry(item: &Item) -> StoreResult<DueEntry> {
    match item.get("sk") {
        Some(AttributeValue::S(sk)) if sk == PROFILE_SK => {
            decode(item).map(|p| DueEntry::Profile(Box::new(p)))
        }
        Some(AttributeValue::S(sk)) if sk.starts_with("ENR#") => {
            let (pk, sk) = primary_key(item);
            Ok(DueEntry::Enrollment(key(pk, sk)))
        }
        _ => Err(corrupt(
            item,
            "item in the due index is neither a profile nor an enrollment",
        )),
    }
}

impl DynamoStore {
    /// Reads the items at `keys` (consistently), retrying unprocessed keys with backoff.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| classify(e, "BatchGetItem", &self.table, None))?;
                let items = out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default();
                self.read(items.len() as u64);
                found.extend(items);
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::Transient(
                            format!(
                                "BatchGetItem on {} left {} keys unprocessed after {attempt} tries",
                                self.table,
                                pending.len()
                            )
                            .into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                }
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl DueIndex for DynamoStore {
    /// Reads the GSI, which is eventually consistent: a save a moment ago may not show yet.
    async fn due_page(
        &self,
        shard: u32,
        now: DateTime<Utc>,
        cursor: Option<String>,
        limit: u32,
    ) -> StoreResult<Page<DueItem>> {
        let start = cursor.as_deref().map(decode_cursor).transpose()?;
        // Every key due at `now` is `<now>#...`, and '~' sorts after any kind letter.
        let upper = format!("{}#~", due_time(now));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_shard = :s AND due_key <= :u")
            .expression_attribute_values(":s", s(format!("{shard:02}")))
            .expression_attribute_values(":u", s(upper))
            .scan_index_forward(true)
            .limit(limit.max(1) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify(e, "Query", &self.table, None))?;
        let index_read = out.scanned_count.max(0) as u64;
        self.read(index_read);
        let entries = out
            .items
            .unwrap_or_default()
            .iter()
            .map(due_entry)
            .collect::<StoreResult<Vec<_>>>()?;
        // Enrollments are not projected: fetch them, and keep those still due.
        let keys: Vec<Item> = entries
            .iter()
            .filter_map(|e| match e {
                DueEntry::Enrollment(k) => Some(k.clone()),
                DueEntry::Profile(_) => None,
            })
            .collect();
        let fetched_count = keys.len() as u64;
        let mut fetched: HashMap<(String, String), Enrollment> = HashMap::new();
        for item in self.batch_get(keys).await? {
            let e: Enrollment = decode(&item)?;
            if e.due_at.is_some_and(|at| at <= now) {
                fetched.insert(primary_key(&item), e);
            }
        }
        // In the index's order.
        let items = entries
            .into_iter()
            .filter_map(|entry| match entry {
                DueEntry::Profile(p) => Some(DueItem::Profile(*p)),
                DueEntry::Enrollment(k) => {
                    fetched.remove(&primary_key(&k)).map(DueItem::Enrollment)
                }
            })
            .collect();
        Ok(Page {
            items,
            cursor: encode_cursor(out.last_evaluated_key.as_ref())?,
            items_read: index_read + fetched_count,
        })
    }

    /// `items_read` is the segment's `ScannedCount`: a scan reads every item, not just profiles.
    async fn scan_profiles(
        &self,
        segment: u32,
        total_segments: u32,
        cursor: Option<String>,
        limit: u32,
    ) -> StoreResult<Page<Profile>> {
        let start = cursor.as_deref().map(decode_cursor).transpose()?;
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment as i32)
            .total_segments(total_segments.max(1) as i32)
            .filter_expression("sk = :p")
            .expression_attribute_values(":p", s(PROFILE_SK))
            .limit(limit.max(1) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify(e, "Scan", &self.table, None))?;
        let items_read = out.scanned_count.max(0) as u64;
        self.read(items_read);
        let items = out
            .items
            .unwrap_or_default()
            .iter()
            .map(decode)
            .collect::<StoreResult<Vec<Profile>>>()?;
        Ok(Page {
            items,
            cursor: encode_cursor(out.last_evaluated_key.as_ref())?,
            items_read,
        })
    }
}

#[async_trait]
impl FitStore for DynamoStore {
    async fn get_fit(&self, campaign: &str) -> StoreResult<Option<CampaignFit>> {
        self.get_entity(format!("FIT#{campaign}"), "FIT".into())
            .await
    }

    async fn save_fit(&self, fit: &CampaignFit) -> StoreResult<u64> {
        let item = entity_item(
            format!("FIT#{}", fit.campaign),
            "FIT".into(),
            fit,
            fit.version + 1,
        )?;
        self.put_versioned::<CampaignFit>(item, fit.version, "fit", &fit.campaign)
            .await
    }
}

#[async_trait]
impl CheckpointStore for DynamoStore {
    async fn get_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        self.get_entity("SCHED".into(), "CHECKPOINT".into()).await
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<u64> {
        let item = entity_item(
            "SCHED".into(),
            "CHECKPOINT".into(),
            checkpoint,
            checkpoint.version + 1,
        )?;
        self.put_versioned::<Checkpoint>(item, checkpoint.version, "checkpoint", "scheduler")
            .await
    }

    async fn clear_checkpoint(&self, version: u64) -> StoreResult<()> {
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key("SCHED".into(), "CHECKPOINT".into())));
        req = if version == 0 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":expected", n(version))
        };
        req.send().await.map_err(|e| {
            classify(
                e,
                "DeleteItem",
                &self.table,
                Some(OnConflict {
                    entity: "checkpoint",
                    id: "scheduler",
                    expected: version,
                }),
            )
        })?;
        self.wrote(1);
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableSpec {
    attribute_definitions: Vec<SpecAttribute>,
    key_schema: Vec<SpecKey>,
    #[serde(default)]
    global_secondary_indexes: Vec<SpecIndex>,
    #[serde(default)]
    local_secondary_indexes: Vec<SpecIndex>,
    #[serde(default)]
    billing_mode: Option<String>,
    #[serde(default)]
    time_to_live_attribute: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecAttribute {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecKey {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecIndex {
    index_name: String,
    key_schema: Vec<SpecKey>,
    #[serde(default)]
    projection: Option<SpecProjection>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecProjection {
    projection_type: String,
    #[serde(default)]
    non_key_attributes: Option<Vec<String>>,
}

fn key_schema(
    keys: &[SpecKey],
    invalid: &dyn Fn(String) -> DynamoSetupError,
) -> Result<Vec<KeySchemaElement>, DynamoSetupError> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(|e| invalid(format!("key {}: {e}", k.attribute_name)))
        })
        .collect()
}

fn projection(p: Option<&SpecProjection>) -> Projection {
    match p {
        Some(p) => Projection::builder()
            .projection_type(ProjectionType::from(p.projection_type.as_str()))
            .set_non_key_attributes(p.non_key_attributes.clone())
            .build(),
        None => Projection::builder()
            .projection_type(ProjectionType::All)
            .build(),
    }
}

/// Creates `table` from the CreateTable JSON `infra/local/table_spec.py` writes from
/// `template.yaml` (the path in `WINBACK_TABLE_SPEC`), waits until it and its indexes are ACTIVE,
/// and enables TTL where the service supports it.
pub async fn create_table_from_spec(
    client: &Client,
    table: &str,
    spec_path: &Path,
) -> Result<(), DynamoSetupError> {
    let path = spec_path.display().to_string();
    let text = std::fs::read_to_string(spec_path).map_err(|source| DynamoSetupError::SpecRead {
        path: path.clone(),
        source,
    })?;
    let invalid = |reason: String| DynamoSetupError::SpecInvalid {
        path: path.clone(),
        reason,
    };
    let spec: TableSpec = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let service = |what: &'static str, e: Box<dyn std::error::Error + Send + Sync>| {
        DynamoSetupError::Service {
            what,
            table: table.to_string(),
            source: e,
        }
    };

    let attributes = spec
        .attribute_definitions
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .map_err(|e| invalid(format!("attribute {}: {e}", a.attribute_name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut gsis = Vec::new();
    for i in &spec.global_secondary_indexes {
        gsis.push(
            GlobalSecondaryIndex::builder()
                .index_name(&i.index_name)
                .set_key_schema(Some(key_schema(&i.key_schema, &invalid)?))
                .projection(projection(i.projection.as_ref()))
                .build()
                .map_err(|e| invalid(format!("index {}: {e}", i.index_name)))?,
        );
    }
    let mut lsis = Vec::new();
    for i in &spec.local_secondary_indexes {
        lsis.push(
            LocalSecondaryIndex::builder()
                .index_name(&i.index_name)
                .set_key_schema(Some(key_schema(&i.key_schema, &invalid)?))
                .projection(projection(i.projection.as_ref()))
                .build()
                .map_err(|e| invalid(format!("index {}: {e}", i.index_name)))?,
        );
    }
    let billing = spec.billing_mode.as_deref().unwrap_or("PAY_PER_REQUEST");
    if billing != "PAY_PER_REQUEST" {
        return Err(invalid(format!(
            "BillingMode {billing}: only PAY_PER_REQUEST is supported here"
        )));
    }
    client
        .create_table()
        .table_name(table)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&spec.key_schema, &invalid)?))
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
        .set_local_secondary_indexes((!lsis.is_empty()).then_some(lsis))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| service("CreateTable", DisplayErrorContext(e).to_string().into()))?;

    const WAIT: Duration = Duration::from_secs(60);
    let started = std::time::Instant::now();
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| service("DescribeTable", DisplayErrorContext(e).to_string().into()))?;
        let ready = out.table.as_ref().is_some_and(|t| {
            t.table_status == Some(TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status == Some(IndexStatus::Active))
        });
        if ready {
            break;
        }
        if started.elapsed() > WAIT {
            return Err(DynamoSetupError::NotActive {
                table: table.to_string(),
                seconds: WAIT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    if let Some(attr) = spec.time_to_live_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attr)
            .enabled(true)
            .build()
            .map_err(|e| invalid(format!("TimeToLiveAttribute: {e}")))?;
        let out = client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await;
        if let Err(e) = out {
            let unsupported = e.code() == Some("UnknownOperationException")
                || e.message()
                    .is_some_and(|m| m.to_ascii_lowercase().contains("not supported"));
            if !unsupported {
                return Err(service(
                    "UpdateTimeToLive",
                    DisplayErrorContext(e).to_string().into(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sequence::{Claim, SentStep, Status};
    use crate::domain::survey::Reason;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use chrono::TimeZone;

    /// DynamoDB's item size: attribute names plus values (numbers count about one byte per two
    /// digits plus one; counted here as their text, which is larger).
    fn item_size(item: &Item) -> usize {
        item.iter()
            .map(|(k, v)| {
                k.len()
                    + match v {
                        AttributeValue::S(x) | AttributeValue::N(x) => x.len(),
                        other => panic!("unexpected attribute {other:?}"),
                    }
            })
            .sum()
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 9, 30, 0).unwrap()
    }

    #[test]
    fn a_fully_sent_enrollment_item_stays_under_one_kilobyte() {
        let customer = "5f0c2d9e-8b7a-4c3d-9e1f-2a3b4c5d6e7f";
        let campaign = "spring-winback-2026";
        let e = Enrollment {
            customer_id: customer.into(),
            campaign: campaign.into(),
            id: format!("{customer}#{campaign}#12"),
            version: 41,
            round: 12,
            group: Group::Treated,
            variant: "amount-off-large".into(),
            enrolled_at: at(1),
            status: Status::Active { next_step: 3 },
            due_at: Some(at(20)),
            published_step: 3,
            published_at: Some(at(15)),
            sent: (1..=3)
                .map(|step| SentStep {
                    step,
                    at: at(u32::from(step) * 5),
                    message_id: Some(
                        "010001899d2fa5d0-6c3c8bb8-a57b-4c12-9c3b-a5d9f7b2e0b8-000000".into(),
                    ),
                })
                .collect(),
            claim: Some(Claim {
                step: 3,
                token: "0123456789abcdef0123456789abcdef".into(),
                lease_until: at(21),
                reward_code: Some("WB-7K3M-Q9XD-2HFP".into()),
            }),
            reward_code: Some("WB-7K3M-Q9XD-2HFP".into()),
            survey_reason: Some(Reason::TooExpensive),
            nps: Some(6),
            revenue_minor: 1_234_567,
            resolved: None,
            flow: Default::default(),
            occasion: None,
            segment: None,
        };
        let item = enrollment_item(&e, 42).unwrap();
        let size = item_size(&item);
        assert!(size < 1024, "enrollment item is {size} bytes: {item:?}");

        let mut back: Enrollment = decode(&item).unwrap();
        assert_eq!(back.version, 42);
        back.version = e.version;
        assert_eq!(back, e);

        let mut unusual = e.clone();
        unusual.id = "imported-enrollment-7".into();
        let back: Enrollment = decode(&enrollment_item(&unusual, 1).unwrap()).unwrap();
        assert_eq!(back.id, "imported-enrollment-7");
    }

    #[test]
    fn profiles_read_back_whole_with_the_stored_version() {
        let mut p = Profile::new("c#with#hashes");
        p.email = Some("someone@example.com".into());
        p.due_at = Some(at(3));
        p.tags.insert("reason:quality".into());
        let item = profile_item(&p, 7).unwrap();
        assert_eq!(
            item.get("due_shard"),
            Some(&s(format!("{:02}", due_shard(&p.customer_id))))
        );
        let back: Profile = decode(&item).unwrap();
        assert_eq!(back.version, 7);
        assert_eq!(Profile { version: 0, ..back }, p);
        p.due_at = None;
        let item = profile_item(&p, 8).unwrap();
        assert!(!item.contains_key("due_shard") && !item.contains_key("due_key"));
    }

    #[test]
    fn due_keys_sort_by_time_and_include_everything_due_at_now() {
        let now = at(10);
        let upper = format!("{}#~", due_time(now));
        let exactly_now = due_key(now, 'P', "zzz", "");
        let enrollment_now = due_key(now, 'E', "~~~", "~~~");
        let later = due_key(now + chrono::Duration::milliseconds(1), 'E', "a", "b");
        let earlier = due_key(at(9), 'P', "~", "");
        assert!(exactly_now <= upper && enrollment_now <= upper && earlier <= upper);
        assert!(later > upper);
        let year_2100 = due_key(
            Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(),
            'P',
            "a",
            "",
        );
        assert!(year_2100 > exactly_now);
        assert_eq!(due_time(now).len(), due_time(year_2100_time()).len());
    }

    fn year_2100_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2100, 12, 31, 23, 59, 59).unwrap()
    }

    #[test]
    fn counter_sort_keys_read_back_with_hashes_in_the_variant() {
        let cohort = CohortKey {
            campaign: "c".into(),
            variant: "a#b".into(),
            group: Group::Holdout,
        };
        let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(
            parse_counters_sk(&counters_sk(&cohort, None)),
            Some(("a#b".into(), Group::Holdout, None))
        );
        assert_eq!(
            parse_counters_sk(&counters_sk(&cohort, Some(day))),
            Some(("a#b".into(), Group::Holdout, Some(day)))
        );
        assert_eq!(parse_counters_sk("TOTAL#x#nobody"), None);
        assert_eq!(parse_counters_sk("DAY#notaday#x#treated"), None);
    }

    fn service_error(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
        let err = PutItemError::generic(
            aws_sdk_dynamodb::error::ErrorMetadata::builder()
                .code(code)
                .message("from the test")
                .build(),
        );
        let raw = HttpResponse::new(status.try_into().unwrap(), "{}".into());
        SdkError::service_error(err, raw)
    }

    fn conflict_context() -> Option<OnConflict<'static>> {
        Some(OnConflict {
            entity: "profile",
            id: "c-1",
            expected: 3,
        })
    }

    #[test]
    fn throttling_server_errors_and_timeouts_are_transient() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            let e = classify(service_error(code, 400), "PutItem", "t", None);
            assert!(matches!(e, StoreError::Transient(_)), "{code}: {e:?}");
        }
        let e = classify(
            service_error("InternalServerError", 500),
            "PutItem",
            "t",
            None,
        );
        assert!(matches!(e, StoreError::Transient(_)), "{e:?}");
        let timeout: SdkError<PutItemError, HttpResponse> = SdkError::timeout_error("slow");
        let e = classify(timeout, "PutItem", "t", None);
        assert!(matches!(e, StoreError::Transient(_)), "{e:?}");
    }

    #[test]
    fn a_failed_condition_is_a_conflict_and_other_errors_keep_their_cause() {
        let e = classify(
            service_error("ConditionalCheckFailedException", 400),
            "PutItem",
            "t",
            conflict_context(),
        );
        assert!(
            matches!(&e, StoreError::Conflict { entity: "profile", id, expected: 3 } if id == "c-1"),
            "{e:?}"
        );
        let e = classify(
            service_error("ValidationException", 400),
            "Query",
            "winback",
            conflict_context(),
        );
        let StoreError::Backend(source) = &e else {
            panic!("expected a backend error, got {e:?}");
        };
        let text = source.to_string();
        assert!(
            text.contains("Query")
                && text.contains("winback")
                && text.contains("ValidationException"),
            "{text}"
        );
        assert!(std::error::Error::source(source.as_ref()).is_some());
    }

    #[tokio::test]
    async fn a_missing_table_spec_names_the_file_and_how_to_make_it() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        let client = Client::from_conf(config);
        let err = create_table_from_spec(&client, "t", Path::new("/nonexistent/spec.json"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, DynamoSetupError::SpecRead { .. }), "{err:?}");
        assert!(
            text.contains("/nonexistent/spec.json") && text.contains("stack.sh"),
            "{text}"
        );

        let dir = std::env::temp_dir().join(format!("winback-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("spec.json");
        std::fs::write(&bad, r#"{"KeySchema": []}"#).unwrap();
        let err = create_table_from_spec(&client, "t", &bad)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DynamoSetupError::SpecInvalid { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("AttributeDefinitions"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn unprocessed_batch_items_are_resent_until_written() {
        let mut calls = Vec::new();
        let result = write_until_processed(
            (0..25).collect::<Vec<u32>>(),
            "t",
            Duration::from_millis(1),
            |batch| {
                calls.push(batch.len());
                // The service takes the first ten of each batch.
                let left = batch.into_iter().skip(10).collect::<Vec<_>>();
                async move { Ok(left) }
            },
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(calls, vec![25, 15, 5]);
    }

    #[tokio::test]
    async fn items_still_unprocessed_after_the_last_attempt_are_a_transient_error() {
        let mut calls = 0;
        let result = write_until_processed(
            vec![1, 2, 3],
            "winback",
            Duration::from_millis(1),
            |batch| {
                calls += 1;
                let left = batch.into_iter().skip(1).chain([9]).collect::<Vec<_>>();
                async move { Ok(left) }
            },
        )
        .await;
        assert_eq!(calls, BATCH_ATTEMPTS);
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::Transient(_)), "{err:?}");
        assert!(
            err.to_string().contains("3 of 3 items") && err.to_string().contains("winback"),
            "{err}"
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_reported_as_corrupt() {
        let last = key("C#1".into(), "PROFILE".into());
        let text = encode_cursor(Some(&last)).unwrap().unwrap();
        assert_eq!(decode_cursor(&text).unwrap(), last);
        assert_eq!(encode_cursor(Some(&Item::new())).unwrap(), None);
        assert!(matches!(
            decode_cursor("not json"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
