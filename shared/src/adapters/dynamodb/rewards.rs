//! [`RewardStore`] on DynamoDB.

use super::*;

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
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":expected", n(reward.version))
            .send()
            .await
            .map_err(self.on_conflict("PutItem", "reward", code, reward.version))?;
        self.wrote(1);
        Ok(reward.version + 1)
    }
}
