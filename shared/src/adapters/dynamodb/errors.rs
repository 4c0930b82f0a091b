//! DynamoDB errors: setting up the store, and a failed request classified as a [`StoreError`].

use super::*;

/// Errors setting up the store (not per-request errors: those are [`StoreError`]).
#[derive(Debug, thiserror::Error)]
pub enum DynamoSetupError {
    /// `TABLE_NAME` is missing.
    #[error("TABLE_NAME is not set: set it to the DynamoDB table's name (the SAM template sets it on every function; locally use the table infra/local/seed.py created)")]
    MissingTableName,
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
pub(super) const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

/// What a conditional-check failure means for the caller.
pub(super) struct OnConflict<'a> {
    pub(super) entity: &'static str,
    pub(super) id: &'a str,
    pub(super) expected: u64,
}

impl DynamoStore {
    /// Classifies a failed `op` on this store's table that wrote `entity` `id` conditionally on
    /// version `expected`: a failed condition is a [`StoreError::Conflict`].
    pub(super) fn on_conflict<'a, E>(
        &'a self,
        op: &'static str,
        entity: &'static str,
        id: &'a str,
        expected: u64,
    ) -> impl FnOnce(SdkError<E, HttpResponse>) -> StoreError + 'a
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| {
            let conflict = OnConflict {
                entity,
                id,
                expected,
            };
            classify(e, op, &self.table, Some(conflict))
        }
    }
}

pub(super) fn classify<E>(
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
