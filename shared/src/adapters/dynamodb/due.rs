//! [`DueIndex`] on DynamoDB: the sparse, write-sharded GSI `due`.

use super::*;

/// An entry of the due index: a profile (projected whole) or the keys of an enrollment.
pub(super) enum DueEntry {
    Profile(Box<Profile>),
    Enrollment(Item),
}

pub(super) fn due_entry(item: &Item) -> StoreResult<DueEntry> {
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
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
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
