//! Sink items in DynamoDB: one conditional write per id that never lets an older record win.
//!
//! Layout of a table (both keys strings, both the record id): one item per id, `PK = SK = id`.
//!
//! - after a put: the value's fields and `@kafka`, the record's coordinates (a map of `topic`,
//!   `partition`, `offset`, `timestamp`, `epoch`);
//! - after a delete, the tombstone: `@kafka` (the tombstone's coordinates), `@deleted = true` and
//!   `@expires` (seconds since the epoch, the table's TTL attribute) when tombstones expire.
//!
//! Every write, put or delete, new id or not, is one `PutItem` on condition that the stored
//! record is older ([`Coordinates::supersedes`]) or that the item has no `@kafka` at all: no
//! item, or one the sink did not write (the original tables' items, before the cut-over), which
//! is older than any record. So a replayed put older than a tombstone finds the tombstone and
//! cannot bring the item back, not even for a moment. A failed condition is "stale", not an error.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use connector_core::sink::mapping::{ATTR_DELETED, ATTR_EXPIRES, ATTR_KAFKA};
use connector_core::sink::ports::{Applied, RecordStore, StoreError};
use connector_core::sink::{Coordinates, Write, WriteOp};
use serde_json::Value;

/// `#k` is `@kafka`, `#k.#t`/`#p`/`#o`/`#ts`/`#e` the stored coordinates; `:t`/`:p`/`:o`/`:ts`/`:e`
/// the record's. A higher epoch wins; within one epoch, in the same topic-partition the offset
/// decides, otherwise (timestamp, topic, partition).
macro_rules! stored_is_older {
    () => {
        "(attribute_not_exists(#k) OR #k.#e < :e OR (#k.#e = :e AND \
     ((#k.#t = :t AND #k.#p = :p AND #k.#o < :o) OR ((#k.#t <> :t OR #k.#p <> :p) AND \
     (#k.#ts < :ts OR (#k.#ts = :ts AND (#k.#t < :t OR (#k.#t = :t AND #k.#p < :p))))))))"
    };
}
const STORED_IS_OLDER: &str = stored_is_older!();

/// [`STORED_IS_OLDER`], or the stored item was written by this very record: a repair's condition.
const STORED_IS_OLDER_OR_SAME: &str = concat!(
    "((#k.#e = :e AND #k.#t = :t AND #k.#p = :p AND #k.#o = :o AND #k.#ts = :ts) OR ",
    stored_is_older!(),
    ")"
);

/// A [`RecordStore`] on one DynamoDB table keyed `PK`/`SK`.
#[derive(Debug, Clone)]
pub struct DynamoDbRecordStore {
    client: Client,
    table: String,
    tombstone_ttl: Option<Duration>,
}

impl DynamoDbRecordStore {
    /// A store writing to `table`, whose tombstones never expire.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            tombstone_ttl: None,
        }
    }

    /// Tombstones carry `@expires` = now + `ttl`, for the table's TTL to remove them. It must be
    /// longer than any replay can reach back (the topic's retention): once a tombstone is gone an
    /// older put replayed from Kafka would bring its item back.
    pub fn with_tombstone_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.tombstone_ttl = ttl;
        self
    }

    fn tombstone(&self, write: &Write) -> HashMap<String, AttributeValue> {
        let mut item = key(&write.id);
        item.insert(ATTR_KAFKA.into(), coordinates_map(&write.coordinates));
        item.insert(ATTR_DELETED.into(), AttributeValue::Bool(true));
        if let Some(ttl) = self.tombstone_ttl {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            item.insert(
                ATTR_EXPIRES.into(),
                AttributeValue::N((now + ttl).as_secs().to_string()),
            );
        }
        item
    }
}

impl RecordStore for DynamoDbRecordStore {
    async fn apply(&self, write: &Write) -> Result<Applied, StoreError> {
        self.put(write, STORED_IS_OLDER).await
    }

    async fn rewrite(&self, write: &Write) -> Result<Applied, StoreError> {
        self.put(write, STORED_IS_OLDER_OR_SAME).await
    }
}

impl DynamoDbRecordStore {
    async fn put(&self, write: &Write, condition: &str) -> Result<Applied, StoreError> {
        let new_item = match &write.op {
            WriteOp::Put(fields) => item(write, fields),
            WriteOp::Delete => self.tombstone(write),
        };
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(new_item))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(coordinate_names()))
            .set_expression_attribute_values(Some(coordinate_values(&write.coordinates)))
            // The old item tells a replaced foreign item apart, and a failed condition's the
            // stored coordinates (a recreated topic). Returned values cost no capacity.
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(out) => match out.attributes() {
                Some(old) if !old.is_empty() && !old.contains_key(ATTR_KAFKA) => {
                    tracing::info!(
                        id = write.id,
                        table = self.table,
                        "replaced an item the sink did not write"
                    );
                    Ok(Applied::Adopted)
                }
                _ => Ok(Applied::Applied),
            },
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let stored = match e.err() {
                    PutItemError::ConditionalCheckFailedException(c) => {
                        c.item().and_then(|i| i.get(ATTR_KAFKA)).and_then(stored_coordinates)
                    }
                    _ => None,
                };
                Ok(Applied::Stale { stored })
            }
            Err(e) => Err(store_error(&write.id, e)),
        }
    }
}

/// The key of the item of record id `id`: `PK` = `SK` = id.
pub(crate) fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("PK".into(), AttributeValue::S(id.into())),
        ("SK".into(), AttributeValue::S(id.into())),
    ])
}

/// The item a put of `write` stores: its fields, `PK` = `SK` = id, and `@kafka`.
pub fn item(write: &Write, fields: &serde_json::Map<String, Value>) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = fields.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect();
    item.extend(key(&write.id));
    item.insert(ATTR_KAFKA.into(), coordinates_map(&write.coordinates));
    item
}

const FIELDS: [(&str, &str); 5] = [
    ("topic", "t"),
    ("partition", "p"),
    ("offset", "o"),
    ("timestamp", "ts"),
    ("epoch", "e"),
];

fn coordinate_attributes(c: &Coordinates) -> [AttributeValue; 5] {
    [
        AttributeValue::S(c.topic.clone()),
        AttributeValue::N(c.partition.to_string()),
        AttributeValue::N(c.offset.to_string()),
        AttributeValue::N(c.timestamp.to_string()),
        AttributeValue::N(c.epoch.to_string()),
    ]
}

fn coordinates_map(c: &Coordinates) -> AttributeValue {
    let fields = FIELDS.iter().map(|(name, _)| name.to_string());
    AttributeValue::M(fields.zip(coordinate_attributes(c)).collect())
}

/// The coordinates a stored `@kafka` map holds, if it is one the sink wrote.
fn stored_coordinates(value: &AttributeValue) -> Option<Coordinates> {
    let map = value.as_m().ok()?;
    let number = |name: &str| map.get(name)?.as_n().ok()?.parse::<i64>().ok();
    Some(Coordinates {
        topic: map.get("topic")?.as_s().ok()?.clone(),
        partition: i32::try_from(number("partition")?).ok()?,
        offset: number("offset")?,
        timestamp: number("timestamp")?,
        epoch: u32::try_from(number("epoch")?).ok()?,
    })
}

fn coordinate_names() -> HashMap<String, String> {
    let mut names: HashMap<String, String> = FIELDS.iter().map(|(n, p)| (format!("#{p}"), n.to_string())).collect();
    names.insert("#k".into(), ATTR_KAFKA.into());
    names
}

fn coordinate_values(c: &Coordinates) -> HashMap<String, AttributeValue> {
    let placeholders = FIELDS.iter().map(|(_, p)| format!(":{p}"));
    placeholders.zip(coordinate_attributes(c)).collect()
}

/// A JSON value as a DynamoDB attribute, type for type.
pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attribute).collect()),
        Value::Object(o) => AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect()),
    }
}

/// A DynamoDB attribute as JSON (numbers as JSON numbers when they parse), for reading items back.
pub fn from_attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => serde_json::from_str(n).unwrap_or_else(|_| Value::String(n.clone())),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(l) => l.iter().map(from_attribute).collect(),
        AttributeValue::M(m) => m.iter().map(|(k, v)| (k.clone(), from_attribute(v))).collect(),
        AttributeValue::Ss(s) => s.iter().cloned().collect(),
        AttributeValue::Ns(n) => n
            .iter()
            .map(|n| serde_json::from_str(n).unwrap_or(Value::Null))
            .collect(),
        other => Value::String(format!("{other:?}")),
    }
}

/// What DynamoDB says when it refuses *this item* and always will (DynamoDB's texts): too large,
/// a number it cannot hold, a key too long, too deeply nested. Every other `ValidationException`
/// — a key schema other than `PK`/`SK`, a wrong type, an expression the table refuses — is a
/// fault of the configuration that would refuse every record alike.
const ITEM_SPECIFIC: [&str; 7] = [
    "item size",
    "exceeded the maximum size",
    "size limit",
    "number overflow",
    "significant digits",
    "supported range",
    "nesting levels",
];

fn item_specific(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ITEM_SPECIFIC.iter().any(|phrase| lower.contains(phrase))
}

/// DynamoDB refuses this item and always will (see [`ITEM_SPECIFIC`]): dead-letter it. Anything
/// else fails the invocation: it may pass on a later delivery, or it needs the table fixed.
fn store_error<E, R>(id: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(service) = &e
        && service.err().code() == Some("ValidationException")
        && let Some(reason) = service.err().message().filter(|m| item_specific(m))
    {
        return StoreError::Rejected {
            id: id.into(),
            reason: reason.to_string(),
        };
    }
    StoreError::Unavailable {
        id: id.into(),
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_item_itself_dead_letter() {
        for refused in [
            "Item size has exceeded the maximum allowed size",
            "Item size to update has exceeded the maximum allowed size",
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of 2048 bytes",
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
            "Attempting to store a number with more than 38 significant digits",
            "Nesting Levels have exceeded supported limits",
        ] {
            assert!(item_specific(refused), "{refused}");
        }
        for fault in [
            "One or more parameter values were invalid: Missing the key id in the item",
            "The provided key element does not match the schema",
            "One or more parameter values were invalid: Type mismatch for key PK expected: N actual: S",
            "Invalid ConditionExpression: Syntax error; token: \"<\"",
        ] {
            assert!(!item_specific(fault), "{fault}");
        }
    }

    #[test]
    fn json_and_attributes_round_trip() {
        let v = serde_json::json!({"a": 1, "b": 1.5, "c": "x", "d": null, "e": [true, {"f": "g"}], "h": ""});
        assert_eq!(from_attribute(&to_attribute(&v)), v);
    }
}
