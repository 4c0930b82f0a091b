//! Tables on DynamoDB Local for tests and benchmarks: made from the CreateTable JSON
//! `infra/local/table_spec.py` writes from `template.yaml` (the path in `WINBACK_TABLE_SPEC`),
//! uniquely named, deleted when done. Production never creates its table: the SAM template does.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, LocalSecondaryIndex, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde::Deserialize;
use shared::adapters::dynamodb::DynamoStore;

/// Errors making a table from the spec.
#[derive(Debug, thiserror::Error)]
pub enum TableSetupError {
    /// The local stack's environment is missing.
    #[error("{0} is not set: these tests run against DynamoDB Local. Run them through infra/test, or start the stack with `infra/local/stack.sh start` and source its env file (`. \"$(infra/local/stack.sh env)\"`)")]
    MissingEnv(&'static str),
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
    invalid: &dyn Fn(String) -> TableSetupError,
) -> Result<Vec<KeySchemaElement>, TableSetupError> {
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

/// The global or local secondary indexes (`$kind`) the spec's `$specs` describe.
macro_rules! indexes {
    ($kind:ident, $specs:expr, $invalid:expr) => {{
        let mut built = Vec::new();
        for i in $specs {
            built.push(
                $kind::builder()
                    .index_name(&i.index_name)
                    .set_key_schema(Some(key_schema(&i.key_schema, &$invalid)?))
                    .projection(projection(i.projection.as_ref()))
                    .build()
                    .map_err(|e| $invalid(format!("index {}: {e}", i.index_name)))?,
            );
        }
        built
    }};
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
) -> Result<(), TableSetupError> {
    let path = spec_path.display().to_string();
    let text = std::fs::read_to_string(spec_path).map_err(|source| TableSetupError::SpecRead {
        path: path.clone(),
        source,
    })?;
    let invalid = |reason: String| TableSetupError::SpecInvalid {
        path: path.clone(),
        reason,
    };
    let spec: TableSpec = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let service = |what: &'static str, e: Box<dyn std::error::Error + Send + Sync>| {
        TableSetupError::Service {
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
    let gsis = indexes!(
        GlobalSecondaryIndex,
        &spec.global_secondary_indexes,
        invalid
    );
    let lsis = indexes!(LocalSecondaryIndex, &spec.local_secondary_indexes, invalid);
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
            return Err(TableSetupError::NotActive {
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

fn required_env(name: &'static str) -> Result<String, TableSetupError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(TableSetupError::MissingEnv(name)),
    }
}

/// Whether the DynamoDB Local environment (`AWS_ENDPOINT_URL_DYNAMODB`, `WINBACK_TABLE_SPEC`)
/// is configured.
pub fn dynamodb_configured() -> bool {
    required_env("AWS_ENDPOINT_URL_DYNAMODB").is_ok() && required_env("WINBACK_TABLE_SPEC").is_ok()
}

/// The table spec's path from `WINBACK_TABLE_SPEC`.
pub fn table_spec_path() -> Result<PathBuf, TableSetupError> {
    required_env("WINBACK_TABLE_SPEC").map(PathBuf::from)
}

/// A fresh, uniquely named table on DynamoDB Local, created from the template's spec.
pub struct LocalTable {
    pub client: Client,
    pub name: String,
    pub store: Arc<DynamoStore>,
}

impl LocalTable {
    /// A table named `<prefix>-<random>` on the stack the environment names; the error says
    /// which variable is missing.
    pub async fn try_create(prefix: &str) -> Result<LocalTable, TableSetupError> {
        required_env("AWS_ENDPOINT_URL_DYNAMODB")?;
        let spec = table_spec_path()?;
        let config = shared::settings::aws_config().await;
        LocalTable::create_with(Client::new(&config), prefix, &spec).await
    }

    /// [`LocalTable::try_create`], panicking with how to start the stack.
    pub async fn create(prefix: &str) -> LocalTable {
        LocalTable::try_create(prefix)
            .await
            .unwrap_or_else(|e| panic!("creating a {prefix} table on DynamoDB Local: {e}"))
    }

    /// A table named `<prefix>-<random>` made with `client` (for clients with interceptors).
    pub async fn create_with(
        client: Client,
        prefix: &str,
        spec: &Path,
    ) -> Result<LocalTable, TableSetupError> {
        let name = unique_name(prefix);
        create_table_from_spec(&client, &name, spec).await?;
        Ok(LocalTable {
            store: Arc::new(DynamoStore::new(client.clone(), name.clone())),
            client,
            name,
        })
    }

    /// Runs a test on the table, then deletes the table, also when the test fails.
    pub async fn run(self, test: impl std::future::Future<Output = ()>) {
        let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(test)).await;
        self.delete().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    /// Deletes the table (a failure is printed, not raised: the stack is thrown away anyway).
    pub async fn delete(self) {
        if let Err(e) = self
            .client
            .delete_table()
            .table_name(&self.name)
            .send()
            .await
        {
            eprintln!(
                "could not delete table {}: {}",
                self.name,
                DisplayErrorContext(e)
            );
        }
    }

    /// Every item of the table, in key order, to compare before and after.
    pub async fn items(&self) -> Vec<BTreeMap<String, AttributeValue>> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap_or_else(|e| panic!("scanning {}: {e:?}", self.name));
            out.extend(
                page.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|i| i.into_iter().collect::<BTreeMap<_, _>>()),
            );
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by_key(|i| format!("{:?}|{:?}", i.get("pk"), i.get("sk")));
        out
    }
}

/// `<prefix>-<12 random hex digits>`: no other test or earlier run on the same stack has it.
pub fn unique_name(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::getrandom(&mut bytes).expect("OS random source");
    format!("{prefix}-{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_table_spec_names_the_file_and_how_to_make_it() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        let client = Client::from_conf(config);
        let err = create_table_from_spec(&client, "t", Path::new("/nonexistent/spec.json"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TableSetupError::SpecRead { .. }), "{err:?}");
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
            matches!(err, TableSetupError::SpecInvalid { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("AttributeDefinitions"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
