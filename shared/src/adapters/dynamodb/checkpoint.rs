//! [`CheckpointStore`] on DynamoDB.

use super::*;

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
