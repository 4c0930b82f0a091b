//! Keys and item codec: the `pk`/`sk` of each entity, the due index key, entities as `doc` +
//! `version`, cursors, and counter sort keys read back.

use super::*;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(super) fn profile_pk(customer_id: &str) -> String {
    format!("C#{customer_id}")
}

pub(super) const PROFILE_SK: &str = "PROFILE";

pub(super) fn enrollment_sk(campaign: &str) -> String {
    format!("ENR#{campaign}")
}

pub(super) fn reward_pk(code: &str) -> String {
    format!("R#{code}")
}

pub(super) fn idem_pk(key: &str) -> String {
    format!("IDEM#{key}")
}

pub(super) fn counters_pk(campaign: &str) -> String {
    format!("M#{campaign}")
}

pub(super) fn counters_sk(key: &CohortKey, day: Option<NaiveDate>) -> String {
    match day {
        None => format!("TOTAL#{}#{}", key.variant, key.group.as_str()),
        Some(d) => format!(
            "DAY#{}#{}#{}",
            d.format("%Y-%m-%d"),
            key.variant,
            key.group.as_str()
        ),
    }
}

/// Fixed-width UTC time of the due index (millisecond precision), so keys sort by time.
pub(super) fn due_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `due_key` of an item: `<time>#<P|E>#<customer>#<campaign>`.
pub fn due_key(at: DateTime<Utc>, kind: char, customer_id: &str, campaign: &str) -> String {
    format!("{}#{kind}#{customer_id}#{campaign}", due_time(at))
}

/// Entities stored as `doc` + `version`. Fields the keys already hold (and the version) are left
/// out of `doc` to keep items small, and put back from the keys when read.
pub(super) trait Versioned: Serialize + DeserializeOwned {
    /// `(field, key attribute, prefix)`: the field's value is the key attribute minus the prefix.
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)];
    /// The attributes holding the JSON and the version.
    const DOC: &'static str = "doc";
    const VERSION: &'static str = "version";

    /// Leaves out fields derivable from the rest of the (full) document.
    fn compact(_doc: &mut serde_json::Map<String, serde_json::Value>) {}

    /// Puts back what [`Versioned::compact`] left out (the key fields are already back).
    fn expand(_doc: &mut serde_json::Map<String, serde_json::Value>) {}
}

/// The enrollment id `<customer>#<campaign>#<round>` as it is usually formed.
pub(super) fn usual_enrollment_id(
    doc: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    Some(format!(
        "{}#{}#{}",
        doc.get("customer_id")?.as_str()?,
        doc.get("campaign")?.as_str()?,
        doc.get("round")?.as_u64()?
    ))
}

impl Versioned for Profile {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] =
        &[("customer_id", "pk", "C#")];
}

impl Versioned for Enrollment {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] =
        &[("customer_id", "pk", "C#"), ("campaign", "sk", "ENR#")];
    // Outside the due index's projection: see the module docs.
    const DOC: &'static str = "body";
    const VERSION: &'static str = "rev";

    fn compact(doc: &mut serde_json::Map<String, serde_json::Value>) {
        if usual_enrollment_id(doc).as_deref() == doc.get("id").and_then(|v| v.as_str()) {
            doc.remove("id");
        }
    }

    fn expand(doc: &mut serde_json::Map<String, serde_json::Value>) {
        if !doc.contains_key("id") {
            if let Some(id) = usual_enrollment_id(doc) {
                doc.insert("id".into(), id.into());
            }
        }
    }
}

impl Versioned for Reward {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] =
        &[("code", "pk", "R#")];
}

impl Versioned for Checkpoint {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] = &[];
}

impl Versioned for CampaignFit {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] = &[];
}

impl Versioned for TargetingModel {
    const FROM_KEYS: &'static [(&'static str, &'static str, &'static str)] = &[];
}

pub(super) fn corrupt(item: &Item, reason: impl Into<String>) -> StoreError {
    let part = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => "?".to_string(),
    };
    StoreError::Corrupt {
        id: format!("{}/{}", part("pk"), part("sk")),
        reason: reason.into(),
    }
}

pub(super) fn entity_item<T: Versioned>(
    pk: String,
    sk: String,
    entity: &T,
    version: u64,
) -> StoreResult<Item> {
    let mut doc = serde_json::to_value(entity).map_err(|e| StoreError::Backend(Box::new(e)))?;
    if let Some(map) = doc.as_object_mut() {
        T::compact(map);
        map.remove("version");
        for (field, _, _) in T::FROM_KEYS {
            map.remove(*field);
        }
    }
    let mut item = key(pk, sk);
    item.insert(T::DOC.into(), s(doc.to_string()));
    item.insert(T::VERSION.into(), n(version));
    Ok(item)
}

pub(super) fn with_due(mut item: Item, due: Option<(DateTime<Utc>, char, &str, &str)>) -> Item {
    if let Some((at, kind, customer, campaign)) = due {
        item.insert("due_shard".into(), s(format!("{:02}", due_shard(customer))));
        item.insert("due_key".into(), s(due_key(at, kind, customer, campaign)));
    }
    item
}

pub(super) fn profile_item(p: &Profile, version: u64) -> StoreResult<Item> {
    let item = entity_item(profile_pk(&p.customer_id), PROFILE_SK.into(), p, version)?;
    Ok(with_due(
        item,
        p.due_at.map(|at| (at, 'P', p.customer_id.as_str(), "")),
    ))
}

pub(super) fn enrollment_item(e: &Enrollment, version: u64) -> StoreResult<Item> {
    let item = entity_item(
        profile_pk(&e.customer_id),
        enrollment_sk(&e.campaign),
        e,
        version,
    )?;
    Ok(with_due(
        item,
        e.due_at
            .map(|at| (at, 'E', e.customer_id.as_str(), e.campaign.as_str())),
    ))
}

pub(super) fn decode<T: Versioned>(item: &Item) -> StoreResult<T> {
    let doc = match item.get(T::DOC) {
        Some(AttributeValue::S(d)) => d,
        _ => return Err(corrupt(item, format!("no {} attribute", T::DOC))),
    };
    let version = match item.get(T::VERSION) {
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|e| corrupt(item, format!("{} {v}: {e}", T::VERSION)))?,
        _ => return Err(corrupt(item, format!("no {} attribute", T::VERSION))),
    };
    let mut value: serde_json::Value =
        serde_json::from_str(doc).map_err(|e| corrupt(item, format!("doc: {e}")))?;
    let map = value
        .as_object_mut()
        .ok_or_else(|| corrupt(item, "doc is not a JSON object"))?;
    map.insert("version".into(), version.into());
    for (field, attr, prefix) in T::FROM_KEYS {
        let from_key = match item.get(*attr) {
            Some(AttributeValue::S(k)) => k.strip_prefix(prefix),
            _ => None,
        };
        let from_key = from_key
            .ok_or_else(|| corrupt(item, format!("{attr} does not start with {prefix}")))?;
        map.insert((*field).into(), from_key.into());
    }
    T::expand(map);
    serde_json::from_value(value).map_err(|e| corrupt(item, format!("doc: {e}")))
}

/// Encodes a LastEvaluatedKey (string attributes only) as an opaque cursor.
pub(super) fn encode_cursor(last: Option<&Item>) -> StoreResult<Option<String>> {
    let Some(last) = last.filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let mut map = serde_json::Map::new();
    for (k, v) in last {
        match v {
            AttributeValue::S(text) => {
                map.insert(k.clone(), serde_json::Value::String(text.clone()));
            }
            other => {
                return Err(StoreError::Corrupt {
                    id: "cursor".into(),
                    reason: format!("key attribute {k} is not a string: {other:?}"),
                })
            }
        }
    }
    Ok(Some(serde_json::Value::Object(map).to_string()))
}

pub(super) fn decode_cursor(cursor: &str) -> StoreResult<Item> {
    let bad = |reason: String| StoreError::Corrupt {
        id: "cursor".into(),
        reason,
    };
    let map: HashMap<String, String> = serde_json::from_str(cursor)
        .map_err(|e| bad(format!("not a cursor this store returned: {e}")))?;
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

/// Sort key prefix of the item that lists a reward under its customer (erasure finds it there).
pub(super) const REWARD_OF_PREFIX: &str = "REWARD#";

/// Sort key prefix of the item that lists an order index item under its customer.
pub(super) const ORDER_OF_PREFIX: &str = "ORDER#";

/// The `pk` of an order index item.
pub(super) fn order_pk(source: &str, order_id: &str) -> String {
    format!("O#{source}#{order_id}")
}

pub(super) const ORDER_SK: &str = "ORDER";

pub(super) fn parse_group(text: &str) -> Option<Group> {
    match text {
        "treated" => Some(Group::Treated),
        "holdout" => Some(Group::Holdout),
        _ => None,
    }
}

/// Reads a counter row's sort key back into its variant, group and day.
pub(super) fn parse_counters_sk(sk: &str) -> Option<(String, Group, Option<NaiveDate>)> {
    let (rest, group) = sk.rsplit_once('#')?;
    let group = parse_group(group)?;
    if let Some(variant) = rest.strip_prefix("TOTAL#") {
        return Some((variant.to_string(), group, None));
    }
    let (day, variant) = rest.strip_prefix("DAY#")?.split_once('#')?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some((variant.to_string(), group, Some(day)))
}

/// An item's `pk` and `sk`.
pub(super) fn primary_key(item: &Item) -> (String, String) {
    let text = |a: &str| match item.get(a) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => String::new(),
    };
    (text("pk"), text("sk"))
}

/// The condition that the stored version attribute `attr` is `expected` (0: that the item does
/// not exist), as an expression with its attribute names and values.
pub(super) fn version_condition(
    attr: &str,
    expected: u64,
) -> (&'static str, Option<HashMap<String, String>>, Option<Item>) {
    if expected == 0 {
        ("attribute_not_exists(pk)", None, None)
    } else {
        (
            "#v = :expected",
            Some(HashMap::from([("#v".to_string(), attr.to_string())])),
            Some(HashMap::from([(":expected".to_string(), n(expected))])),
        )
    }
}
