//! Sink items in DynamoDB: conditional writes that never let an older record win.
//!
//! Layout of a table (both keys strings, both the record id):
//!
//! - the item: `PK = SK = id`, the value's fields, and the record's coordinates in
//!   `kafkaTopic`, `kafkaPartition`, `kafkaOffset`, `kafkaTimestamp`;
//! - after a tombstone, a marker: `PK = id`, `SK = id + "#tombstone"`, `tombstone = true` and the
//!   tombstone's coordinates. A marker never shares a key with an item (an item's SK equals its PK).
//!
//! An item without coordinates was not written by the sink (the original tables' items, before
//! the cut-over): it is older than any record, so every write below replaces or deletes it.
//!
//! Writes, each with a condition equivalent to `Coordinates::supersedes`:
//!
//! - put, common case: `PutItem` if the item *exists* and is older. One write when a record
//!   updates a stored item: an existing item is newer than any marker, so the marker is moot.
//! - put when there is no item: one transaction of `ConditionCheck` (the marker is absent or
//!   older) and `Put` (the item is absent or older), so that a replayed put older than a
//!   tombstone can never bring the item back, not even for a moment.
//! - delete: one transaction of `Delete` (the item is absent or older) and `Put` of the marker
//!   (absent or older). A failed condition in any of these is "stale", not an error.

use std::collections::HashMap;

pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use connector_core::sink::mapping::{ATTR_OFFSET, ATTR_PARTITION, ATTR_TIMESTAMP, ATTR_TOPIC};
use connector_core::sink::ports::{Applied, RecordStore, StoreError};
use connector_core::sink::{Coordinates, Write, WriteOp};
use serde_json::Value;

/// Suffix of the tombstone marker's sort key.
pub const TOMBSTONE_SUFFIX: &str = "#tombstone";

/// `#kts`/`#kt`/`#kp`/`#ko`: the stored coordinates; `:kts`/`:kt`/`:kp`/`:ko`: the record's.
/// Same topic-partition: the offset decides; otherwise (timestamp, topic, partition).
const STORED_IS_OLDER: &str = "((#kt = :kt AND #kp = :kp AND #ko < :ko) OR ((#kt <> :kt OR #kp <> :kp) AND \
     (#kts < :kts OR (#kts = :kts AND (#kt < :kt OR (#kt = :kt AND #kp < :kp))))))";

/// The stored item is older than the record, or was not written by the sink at all.
fn item_is_older() -> String {
    format!("(attribute_not_exists(#ko) OR {STORED_IS_OLDER})")
}

/// Adds a condition on the stored coordinates, with their names and the record's values, to any
/// request builder (`PutItem`, or a transaction's `Put`, `Delete`, `ConditionCheck`).
macro_rules! conditioned {
    ($builder:expr, $expression:expr, $coordinates:expr) => {
        $builder
            .condition_expression($expression)
            .set_expression_attribute_names(Some(coordinate_names()))
            .set_expression_attribute_values(Some(coordinate_values($coordinates)))
    };
}

/// Transaction conflicts (another writer on the same item at the same instant) are retried this
/// many times; the SDK does not retry a cancelled transaction by itself.
const CONFLICT_ATTEMPTS: usize = 3;

/// A [`RecordStore`] on one DynamoDB table keyed `PK`/`SK`.
#[derive(Debug, Clone)]
pub struct DynamoDbRecordStore {
    client: Client,
    table: String,
}

impl DynamoDbRecordStore {
    /// A store writing to `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn put(&self, write: &Write, fields: &serde_json::Map<String, Value>) -> Result<Applied, StoreError> {
        let item = item(write, fields);
        let updated = conditioned!(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone())),
            format!("attribute_exists(PK) AND {}", item_is_older()),
            &write.coordinates
        )
        .return_values(ReturnValue::AllOld)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
        match updated {
            Ok(out) => {
                if out.attributes().is_some_and(|old| !old.contains_key(ATTR_OFFSET)) {
                    tracing::info!(
                        id = write.id,
                        table = self.table,
                        "replaced an item the sink did not write"
                    );
                }
                return Ok(Applied::Applied);
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                if let PutItemError::ConditionalCheckFailedException(c) = e.err()
                    && c.item().is_some_and(|i| !i.is_empty())
                {
                    return Ok(Applied::Stale);
                }
            }
            Err(e) => return Err(store_error(&write.id, e)),
        }
        // No item: create it, atomically checking the tombstone marker.
        let check = conditioned!(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(&write.id, &marker_sk(&write.id)))),
            format!("attribute_not_exists(PK) OR {STORED_IS_OLDER}"),
            &write.coordinates
        );
        let put = conditioned!(
            Put::builder().table_name(&self.table).set_item(Some(item)),
            format!("attribute_not_exists(PK) OR {}", item_is_older()),
            &write.coordinates
        );
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(check.build().map_err(|e| rejected(&write.id, e))?)
                .build(),
            TransactWriteItem::builder()
                .put(put.build().map_err(|e| rejected(&write.id, e))?)
                .build(),
        ];
        self.transact(&write.id, items).await
    }

    async fn delete(&self, write: &Write) -> Result<Applied, StoreError> {
        let mut marker = key(&write.id, &marker_sk(&write.id));
        marker.insert("tombstone".into(), AttributeValue::Bool(true));
        marker.extend(coordinate_attributes(&write.coordinates));
        let delete = conditioned!(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(&write.id, &write.id))),
            format!("attribute_not_exists(PK) OR {}", item_is_older()),
            &write.coordinates
        );
        let put_marker = conditioned!(
            Put::builder().table_name(&self.table).set_item(Some(marker)),
            format!("attribute_not_exists(PK) OR {STORED_IS_OLDER}"),
            &write.coordinates
        );
        let items = vec![
            TransactWriteItem::builder()
                .delete(delete.build().map_err(|e| rejected(&write.id, e))?)
                .build(),
            TransactWriteItem::builder()
                .put(put_marker.build().map_err(|e| rejected(&write.id, e))?)
                .build(),
        ];
        self.transact(&write.id, items).await
    }

    /// Runs a transaction whose conditions all say "the stored record is older"; a cancelled
    /// condition is stale, a conflict with another writer is tried again.
    async fn transact(&self, id: &str, items: Vec<TransactWriteItem>) -> Result<Applied, StoreError> {
        for _ in 0..CONFLICT_ATTEMPTS {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let e = match sent {
                Ok(_) => return Ok(Applied::Applied),
                Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => e,
                Err(e) => return Err(store_error(id, e)),
            };
            let (reasons, messages): (Vec<&str>, Vec<&str>) = match e.err() {
                TransactWriteItemsError::TransactionCanceledException(t) => t
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|r| Some((r.code()?, r.message().unwrap_or(""))))
                    .unzip(),
                _ => (Vec::new(), Vec::new()),
            };
            let item_refused = reasons.contains(&"ItemCollectionSizeLimitExceeded")
                || (reasons.contains(&"ValidationError") && messages.iter().any(|m| item_specific(m)));
            if reasons.contains(&"ConditionalCheckFailed") {
                return Ok(Applied::Stale);
            } else if reasons.contains(&"TransactionConflict") {
                continue;
            } else if item_refused {
                return Err(StoreError::Rejected {
                    id: id.into(),
                    reason: format!("transaction cancelled: {reasons:?} {messages:?}"),
                });
            }
            return Err(StoreError::Unavailable {
                id: id.into(),
                source: Box::new(SdkError::ServiceError(e)),
            });
        }
        Err(conflict(id))
    }
}

impl RecordStore for DynamoDbRecordStore {
    async fn apply(&self, write: &Write) -> Result<Applied, StoreError> {
        match &write.op {
            WriteOp::Put(fields) => self.put(write, fields).await,
            WriteOp::Delete => self.delete(write).await,
        }
    }
}

fn marker_sk(id: &str) -> String {
    format!("{id}{TOMBSTONE_SUFFIX}")
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("PK".into(), AttributeValue::S(pk.into())),
        ("SK".into(), AttributeValue::S(sk.into())),
    ])
}

/// The item a put of `write` stores: its fields, `PK` = `SK` = id, and the Kafka coordinates.
pub fn item(write: &Write, fields: &serde_json::Map<String, Value>) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = fields.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect();
    item.extend(key(&write.id, &write.id));
    item.extend(coordinate_attributes(&write.coordinates));
    item
}

fn coordinate_attributes(c: &Coordinates) -> [(String, AttributeValue); 4] {
    [
        (ATTR_TOPIC.into(), AttributeValue::S(c.topic.clone())),
        (ATTR_PARTITION.into(), AttributeValue::N(c.partition.to_string())),
        (ATTR_OFFSET.into(), AttributeValue::N(c.offset.to_string())),
        (ATTR_TIMESTAMP.into(), AttributeValue::N(c.timestamp.to_string())),
    ]
}

fn coordinate_names() -> HashMap<String, String> {
    HashMap::from([
        ("#kt".into(), ATTR_TOPIC.into()),
        ("#kp".into(), ATTR_PARTITION.into()),
        ("#ko".into(), ATTR_OFFSET.into()),
        ("#kts".into(), ATTR_TIMESTAMP.into()),
    ])
}

fn coordinate_values(c: &Coordinates) -> HashMap<String, AttributeValue> {
    coordinate_attributes(c)
        .into_iter()
        .map(|(name, value)| {
            let placeholder = match name.as_str() {
                ATTR_TOPIC => ":kt",
                ATTR_PARTITION => ":kp",
                ATTR_OFFSET => ":ko",
                _ => ":kts",
            };
            (placeholder.to_string(), value)
        })
        .collect()
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

fn rejected(id: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected {
        id: id.into(),
        reason: e.to_string(),
    }
}

fn conflict(id: &str) -> StoreError {
    StoreError::Unavailable {
        id: id.into(),
        source: format!("transaction conflict persisted after {CONFLICT_ATTEMPTS} attempts").into(),
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
