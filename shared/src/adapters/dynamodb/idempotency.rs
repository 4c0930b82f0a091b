//! [`IdempotencyStore`] on DynamoDB.

use super::*;

#[async_trait]
impl IdempotencyStore for DynamoStore {
    /// Expiry is compared with the wall clock at second precision (TTL housekeeping only).
    ///
    /// A conflict retry (see [`crate::retry`]), not a read-modify-write of a versioned item, so
    /// not [`crate::ports::update`]: a lost claim reads the key, and only a key released between
    /// the two (its holder failed) is claimed again, at once.
    async fn claim_key(&self, key_: &str, expires_at: DateTime<Utc>) -> StoreResult<Claimed> {
        for _ in 0..crate::retry::CONFLICT_ATTEMPTS {
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
                    let err = self.on_conflict("PutItem", "idempotency key", key_, 0)(e);
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
            Err(e) => match self.on_conflict("UpdateItem", "idempotency key", key_, 0)(e) {
                StoreError::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn release_key(&self, key_: &str) -> StoreResult<()> {
        self.delete(idem_pk(key_), "IDEM".into()).await
    }
}
