//! [`ErasureStore`] on DynamoDB, and the partition reads it shares with the counters.

use super::*;

impl DynamoStore {
    pub(super) async fn delete(&self, pk: String, sk: String) -> StoreResult<()> {
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
    pub(super) async fn customer_items(
        &self,
        customer_id: &str,
        prefix: &str,
    ) -> StoreResult<Vec<Item>> {
        self.partition(profile_pk(customer_id), Some(prefix)).await
    }

    /// Every item of partition `pk` (whose sort key starts with `prefix`, if given), all pages.
    pub(super) async fn partition(
        &self,
        pk: String,
        prefix: Option<&str>,
    ) -> StoreResult<Vec<Item>> {
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

    async fn orders_of(&self, customer_id: &str) -> StoreResult<Vec<(String, String)>> {
        self.customer_items(customer_id, ORDER_OF_PREFIX)
            .await?
            .iter()
            .map(Self::order_of)
            .collect()
    }

    async fn delete_order_owner(
        &self,
        customer_id: &str,
        source: &str,
        order_id: &str,
    ) -> StoreResult<()> {
        self.delete_order_item(customer_id, source, order_id)
            .await?;
        self.delete(
            profile_pk(customer_id),
            format!("{ORDER_OF_PREFIX}{source}#{order_id}"),
        )
        .await
    }
}
