//! [`OrderIndex`] on DynamoDB: `O#<source>#<order id>` / `ORDER` holds the customer id, listed
//! under the customer as `C#<customer>` / `ORDER#<source>#<order id>`; both carry `ttl`.

use super::*;

impl DynamoStore {
    /// The order index item of `o`, or its listing under the customer.
    fn order_items(o: &OrderOwner) -> (Item, Item) {
        let ttl = n(o.expires_at.timestamp());
        let mut listing = key(
            profile_pk(&o.customer_id),
            format!("{ORDER_OF_PREFIX}{}#{}", o.source, o.order_id),
        );
        listing.insert("ttl".into(), ttl.clone());
        let mut item = key(order_pk(&o.source, &o.order_id), ORDER_SK.into());
        item.insert("customer_id".into(), s(o.customer_id.clone()));
        item.insert("ttl".into(), ttl);
        (listing, item)
    }

    /// Reads a listing's sort key back into (source, order id).
    pub(super) fn order_of(item: &Item) -> StoreResult<(String, String)> {
        match item.get("sk") {
            Some(AttributeValue::S(sk)) => sk
                .strip_prefix(ORDER_OF_PREFIX)
                .and_then(|rest| rest.split_once('#'))
                .map(|(source, id)| (source.to_string(), id.to_string()))
                .ok_or_else(|| corrupt(item, "sort key is not an order listing's")),
            _ => Err(corrupt(item, "no sort key")),
        }
    }

    /// Deletes the order index item of `source`/`order_id` if it names `customer_id`.
    pub(super) async fn delete_order_item(
        &self,
        customer_id: &str,
        source: &str,
        order_id: &str,
    ) -> StoreResult<()> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(order_pk(source, order_id), ORDER_SK.into())))
            .condition_expression("customer_id = :c")
            .expression_attribute_values(":c", s(customer_id))
            .send()
            .await;
        match out {
            Ok(_) => {
                self.wrote(1);
                Ok(())
            }
            // Another customer's now, or gone: nothing of this customer's is left in it.
            Err(e) => match self.on_conflict("DeleteItem", "order index item", order_id, 0)(e) {
                StoreError::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}

#[async_trait]
impl OrderIndex for DynamoStore {
    async fn put_order_owners(&self, owners: &[OrderOwner]) -> StoreResult<()> {
        // One item per key (a batch may not name a key twice): the last owner given wins the
        // order's item; each customer it was given for keeps a listing.
        let mut latest: HashMap<(&str, &str), &OrderOwner> = HashMap::new();
        let mut listed: HashMap<(&str, &str, &str), &OrderOwner> = HashMap::new();
        for o in owners {
            latest.insert((&o.source, &o.order_id), o);
            listed.insert((&o.customer_id, &o.source, &o.order_id), o);
        }
        let listings: Vec<Item> = listed
            .into_values()
            .map(|o| Self::order_items(o).0)
            .collect();
        let items: Vec<Item> = latest
            .into_values()
            .map(|o| Self::order_items(o).1)
            .collect();
        // Listed first, so an erasure finds every index item that was written.
        self.batch_put(listings).await?;
        self.batch_put(items).await
    }

    async fn order_owner(
        &self,
        source: &str,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let Some(item) = self
            .get_item(order_pk(source, order_id), ORDER_SK.into())
            .await?
        else {
            return Ok(None);
        };
        let expired = match item.get("ttl") {
            Some(AttributeValue::N(t)) => t.parse::<i64>().is_ok_and(|t| t <= now.timestamp()),
            _ => false,
        };
        match item.get("customer_id") {
            _ if expired => Ok(None),
            Some(AttributeValue::S(c)) => Ok(Some(c.clone())),
            _ => Err(corrupt(&item, "an order index item without customer_id")),
        }
    }
}
