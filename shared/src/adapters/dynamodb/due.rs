//! [`DueIndex`] on DynamoDB: the sparse, write-sharded GSI `due`.

use super::*;
use crate::ports::{DueQuery, PageAt, ScanSegment};

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
            let send = |pending: Vec<Item>| async move {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
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
                let left = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                Ok((items, left))
            };
            let items = until_processed(
                "BatchGetItem",
                chunk.to_vec(),
                &self.table,
                BATCH_BACKOFF,
                send,
            )
            .await?;
            found.extend(items);
        }
        Ok(found)
    }

    /// Counts a query's or a scan's `ScannedCount` as read, and decodes its items with `item`.
    fn scanned<T>(
        &self,
        scanned_count: i32,
        items: Option<Vec<Item>>,
        item: impl Fn(&Item) -> StoreResult<T>,
    ) -> StoreResult<(u64, Vec<T>)> {
        let read = scanned_count.max(0) as u64;
        self.read(read);
        let items = items
            .unwrap_or_default()
            .iter()
            .map(item)
            .collect::<StoreResult<_>>()?;
        Ok((read, items))
    }
}

#[async_trait]
impl DueIndex for DynamoStore {
    /// Reads the GSI, which is eventually consistent: a save a moment ago may not show yet.
    async fn due_page(&self, due: DueQuery, page: PageAt) -> StoreResult<Page<DueItem>> {
        let (DueQuery { shard, now }, PageAt { cursor, limit }) = (due, page);
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
        let (index_read, entries) = self.scanned(out.scanned_count, out.items, due_entry)?;
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
    async fn scan_profiles(&self, scan: ScanSegment, page: PageAt) -> StoreResult<Page<Profile>> {
        let (
            ScanSegment {
                segment,
                total: total_segments,
            },
            PageAt { cursor, limit },
        ) = (scan, page);
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
        let (items_read, items) = self.scanned(out.scanned_count, out.items, decode)?;
        Ok(Page {
            items,
            cursor: encode_cursor(out.last_evaluated_key.as_ref())?,
            items_read,
        })
    }
}
