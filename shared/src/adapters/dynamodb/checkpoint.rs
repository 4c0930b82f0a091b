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
        let (condition, names, values) = version_condition("version", version);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key("SCHED".into(), "CHECKPOINT".into())))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(self.on_conflict("DeleteItem", "checkpoint", "scheduler", version))?;
        self.wrote(1);
        Ok(())
    }
}
