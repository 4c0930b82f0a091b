//! Synthetic customers, the bench's clock, and stores: embedded, or a fresh table on DynamoDB
//! Local whose client asks for and records consumed capacity.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use chrono::{DateTime, Duration, TimeZone, Utc};
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::customer::{OrderRecord, Profile};
use shared::domain::money::Money;

use crate::BenchError;

/// The benchmarks' "now": a Tuesday, 11:00 UTC (inside sending hours in Europe).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 11, 0, 0).unwrap()
}

/// A customer with a few orders. Due ones lapsed long ago and are due now; the others ordered
/// recently and are due months from now.
pub fn customer(i: usize, due: bool) -> Profile {
    let mut p = Profile::new(
        format!("c-{i:07}")
            .parse()
            .expect("c- and seven digits is a customer id"),
    );
    p.email = Some(format!("customer{i}@example.com"));
    p.first_name = Some("Alex".into());
    p.locale = Some(["en", "sv", "da", "pl", "pt"][i % 5].into());
    p.time_zone = Some("Europe/Stockholm".into());
    let last = if due {
        200 + (i % 50) as i64
    } else {
        3 + (i % 20) as i64
    };
    let gap = 25 + (i % 30) as i64;
    for k in (0..(2 + i % 4) as i64).rev() {
        p.record_order(OrderRecord {
            // Scattered hours: no usual hour to wait for (the best-hour deferral is measured
            // apart from the write cost of a send).
            at: now() - Duration::days(last + k * gap) - Duration::hours((k * 7 + i as i64) % 24),
            amount: Money(1500 + (i % 7) as i64 * 500),
            product: Some("house blend".into()),
            category: Some(["coffee", "equipment", "groceries"][i % 3].into()),
            currency: None,
            order_id: None,
            refunded: Default::default(),
            refund_ids: Vec::new(),
            lines: Vec::new(),
        });
    }
    p.due_at = Some(if due {
        now() - Duration::hours(1 + (i % 24) as i64)
    } else {
        now() + Duration::days(30 + (i % 90) as i64)
    });
    p
}

/// `n` customers, every `1 / due_fraction`-th of them due.
pub fn customers(n: usize, due_every: usize) -> Vec<Profile> {
    (0..n).map(|i| customer(i, i % due_every == 0)).collect()
}

/// Whether a logged request wrote (its label starts with a write operation).
pub fn is_write(label: &str) -> bool {
    [
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    ]
    .iter()
    .any(|w| label.starts_with(w))
}

/// One DynamoDB response's consumed capacity, with what the request wrote.
#[derive(Debug, Clone)]
pub struct Consumed {
    /// `PutItem ENR#example`, `UpdateItem COUNTERS…`, …
    pub label: String,
    pub units: f64,
}

/// The log of consumed capacity the interceptor fills.
#[derive(Debug, Clone, Default)]
pub struct CapacityLog(Arc<Mutex<Vec<Consumed>>>);

impl CapacityLog {
    /// Empties the log, returning what it held.
    pub fn take(&self) -> Vec<Consumed> {
        std::mem::take(&mut *self.0.lock().expect("capacity log"))
    }
}

#[derive(Debug, Clone)]
struct Label(String);

impl Storable for Label {
    type Storer = StoreReplace<Self>;
}

/// Adds `ReturnConsumedCapacity: TOTAL` to every DynamoDB request and logs the answer.
#[derive(Debug)]
struct CapacityInterceptor(CapacityLog);

fn kind_of(sk: &str) -> String {
    sk.split('#').next().unwrap_or(sk).to_string()
}

impl Intercept for CapacityInterceptor {
    fn name(&self) -> &'static str {
        "winback-bench consumed capacity"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request_mut();
        let op = req
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_string();
        let Some(bytes) = req.body().bytes() else {
            return Ok(());
        };
        let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return Ok(());
        };
        if !doc.is_object() {
            return Ok(());
        }
        doc["ReturnConsumedCapacity"] = "TOTAL".into();
        let sk = doc
            .get("Item")
            .or_else(|| doc.get("Key"))
            .and_then(|i| i.get("sk"))
            .and_then(|s| s.get("S"))
            .and_then(|s| s.as_str())
            .map(kind_of)
            .unwrap_or_default();
        let body = serde_json::to_vec(&doc)?;
        req.headers_mut()
            .insert("content-length", body.len().to_string());
        *req.body_mut() = SdkBody::from(body);
        cfg.interceptor_state()
            .store_put(Label(format!("{op} {sk}").trim().to_string()));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let label = cfg.load::<Label>().map(|l| l.0.clone()).unwrap_or_default();
        let Some(bytes) = context.response().body().bytes() else {
            return Ok(());
        };
        let doc: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        let units = match doc.get("ConsumedCapacity") {
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|c| c.get("CapacityUnits").and_then(|u| u.as_f64()))
                .sum(),
            Some(c) => c
                .get("CapacityUnits")
                .and_then(|u| u.as_f64())
                .unwrap_or(f64::NAN),
            None => f64::NAN,
        };
        self.0
             .0
            .lock()
            .expect("capacity log")
            .push(Consumed { label, units });
        Ok(())
    }
}

/// A fresh, randomly named table on DynamoDB Local, created from the template's spec, whose
/// client records consumed capacity.
pub struct LocalTable {
    pub store: Arc<DynamoStore>,
    pub capacity: CapacityLog,
    table: test_support::table::LocalTable,
}

impl LocalTable {
    /// Needs the local stack's environment (`. $(infra/local/stack.sh env)`).
    pub async fn create(prefix: &str) -> Result<LocalTable, BenchError> {
        if !test_support::table::dynamodb_configured() {
            return Err(BenchError::Setup(
                "AWS_ENDPOINT_URL_DYNAMODB or WINBACK_TABLE_SPEC is not set: start the local stack \
                 with `infra/local/stack.sh start` and source `$(infra/local/stack.sh env)`, or run \
                 `infra/bench`, which does both"
                    .into(),
            ));
        }
        let spec =
            test_support::table::table_spec_path().map_err(|e| BenchError::Setup(e.to_string()))?;
        let config = shared::settings::aws_config().await;
        let capacity = CapacityLog::default();
        let dynamo_conf = aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(CapacityInterceptor(capacity.clone()))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(dynamo_conf);
        let table = test_support::table::LocalTable::create_with(client, prefix, &spec)
            .await
            .map_err(|e| BenchError::Setup(format!("creating a {prefix} table: {e}")))?;
        Ok(LocalTable {
            store: table.store.clone(),
            capacity,
            table,
        })
    }

    /// Deletes the table.
    pub async fn delete(self) {
        self.table.delete().await;
    }
}
