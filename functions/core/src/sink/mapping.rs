//! From a Kafka record to the write it means for a table: key derivation and item fields.

use serde_json::{Map, Value};

use super::number;
use super::record::{Coordinates, Field, SourceRecord};

/// Item attribute holding the record's coordinates, a map of `topic`, `partition`, `offset`,
/// `timestamp` (ms since the epoch) and `epoch`. An `@` cannot start an Avro, ksqlDB or Oracle
/// column name, so no upstream field collides with it (nor with the two below).
pub const ATTR_KAFKA: &str = "@kafka";
/// On a tombstone (the item a delete leaves): `true`. Readers skip items that have it.
pub const ATTR_DELETED: &str = "@deleted";
/// On a tombstone: when DynamoDB's TTL may remove it, in seconds since the epoch.
pub const ATTR_EXPIRES: &str = "@expires";
/// Attributes the sink owns: a value field with one of these names never overrides them.
pub const RESERVED_ATTRIBUTES: [&str; 5] = ["PK", "SK", ATTR_KAFKA, ATTR_DELETED, ATTR_EXPIRES];

/// The table a sink function writes, which decides how a record's id is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `seatool`: the id is the Kafka key.
    Seatool,
    /// `appian`: the id is `payload.PCKG_ID` of the value.
    Appian,
}

impl Table {
    /// The table's logical name, used as the metric dimension and in dead letters.
    pub fn name(self) -> &'static str {
        match self {
            Table::Seatool => "seatool",
            Table::Appian => "appian",
        }
    }
}

/// One write to make: put the record's item, or delete it for a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The record id: both `PK` and `SK` of the item.
    pub id: String,
    /// The record's Kafka coordinates; the write applies only if they are newer than the stored.
    pub coordinates: Coordinates,
    /// Put or delete.
    pub op: WriteOp,
}

/// What a write does.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Store the item: these value fields (reserved names already removed) plus key and coordinates.
    Put(Map<String, Value>),
    /// A tombstone: remove the item and leave a marker with the coordinates.
    Delete,
}

/// What a record means for a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A write to make.
    Write(Write),
    /// Nothing to do, on purpose (an Appian tombstone has no id to delete).
    Skip {
        /// Why.
        reason: String,
    },
    /// The record can never be stored: it goes to the dead-letter queue.
    DeadLetter {
        /// Why.
        reason: String,
    },
}

/// Maps one record for `table`.
pub fn map_record(table: Table, record: &SourceRecord) -> Mapped {
    match table {
        Table::Seatool => map_seatool(record),
        Table::Appian => map_appian(record),
    }
}

fn dead(reason: impl Into<String>) -> Mapped {
    Mapped::DeadLetter { reason: reason.into() }
}

fn write(id: String, record: &SourceRecord, op: WriteOp) -> Mapped {
    Mapped::Write(Write {
        id,
        coordinates: record.coordinates.clone(),
        op,
    })
}

fn map_seatool(record: &SourceRecord) -> Mapped {
    let id = match seatool_id(&record.key) {
        Ok(id) => id,
        Err(reason) => return dead(reason),
    };
    if record.value.is_null() {
        return write(id, record, WriteOp::Delete);
    }
    match value_object(&record.value).and_then(item_fields) {
        Ok(fields) => write(id, record, WriteOp::Put(fields)),
        Err(reason) => dead(reason),
    }
}

/// The Seatool id: the Kafka key, as a JSON string (`"\"NC-11-020\""`) or a bare string.
fn seatool_id(key: &Field) -> Result<String, String> {
    let id = match key {
        Field::Null => return Err("Seatool record has no key (the key is the record id)".into()),
        Field::Undecodable { reason, .. } => return Err(format!("Seatool key could not be read: {reason}")),
        Field::Json(other) => return Err(format!("Seatool key is not a string: {other}")),
        Field::Text(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::String(id)) => id,
            Ok(other) => return Err(format!("Seatool key is not a string: {}", clip(&other.to_string()))),
            Err(_) => text.clone(), // a bare string key
        },
    };
    if id.is_empty() {
        return Err("Seatool key is an empty string".into());
    }
    Ok(id)
}

fn map_appian(record: &SourceRecord) -> Mapped {
    if record.value.is_null() {
        // A tombstone: the value that names the package is gone, its key (`{"PCKG_ID": 98004}`,
        // or Connect's JSON with the id under `payload`) still names it.
        let key = match &record.key {
            Field::Null => None,
            other => value_object(other).ok(),
        };
        let id = key
            .as_ref()
            .and_then(|k| k.get("PCKG_ID").or_else(|| k.get("payload")?.get("PCKG_ID")));
        return match id.map(|id| appian_id(id, "key PCKG_ID")) {
            Some(Ok(id)) => write(id, record, WriteOp::Delete),
            Some(Err(reason)) => dead(reason),
            None => dead("Appian tombstone whose key has no PCKG_ID: which package it deletes is unknown"),
        };
    }
    let fields = match value_object(&record.value).and_then(item_fields) {
        Ok(fields) => fields,
        Err(reason) => return dead(reason),
    };
    let id = match fields.get("payload").and_then(|p| p.get("PCKG_ID")) {
        Some(id) => match appian_id(id, "payload.PCKG_ID") {
            Ok(id) => id,
            Err(reason) => return dead(reason),
        },
        None => return dead("Appian value has no payload.PCKG_ID (the id of the record)"),
    };
    write(id, record, WriteOp::Put(fields))
}

/// An Appian package id, a number or a non-empty string, as the item's key.
fn appian_id(id: &Value, what: &str) -> Result<String, String> {
    match id {
        Value::Number(n) => number::canonical(&n.to_string()).map_err(|why| format!("Appian {what} is {why}")),
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        other => Err(format!(
            "Appian {what} is not a number or a non-empty string: {}",
            clip(&other.to_string())
        )),
    }
}

/// The record value as a JSON object: parsed again when it arrived as text.
fn value_object(value: &Field) -> Result<Map<String, Value>, String> {
    let parsed = match value {
        Field::Null => return Err("value is empty".into()),
        Field::Undecodable { reason, .. } => return Err(format!("value could not be read: {reason}")),
        Field::Json(v) => v.clone(),
        Field::Text(text) => serde_json::from_str(text).map_err(|e| format!("value is not JSON: {e}"))?,
    };
    match parsed {
        Value::Object(fields) => Ok(fields),
        other => Err(format!("value is JSON but not an object: {}", clip(&other.to_string()))),
    }
}

/// The value's fields without the attributes the sink owns, numbers in their canonical text;
/// or why DynamoDB cannot hold one of them.
fn item_fields(mut fields: Map<String, Value>) -> Result<Map<String, Value>, String> {
    for name in RESERVED_ATTRIBUTES {
        fields.remove(name);
    }
    let mut value = Value::Object(fields);
    number::canonicalize(&mut value, "")?;
    match value {
        Value::Object(fields) => Ok(fields),
        _ => unreachable!("canonicalize keeps an object an object"),
    }
}

/// Keeps error messages to one readable line whatever the input.
fn clip(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::decode::decode_batch;
    use crate::sink::test_events::event;

    fn mapped(table: Table, file: &str) -> Vec<Mapped> {
        let batch = decode_batch(&event(file)).unwrap();
        batch.records.iter().map(|r| map_record(table, r)).collect()
    }

    fn id_of(m: &Mapped) -> &str {
        match m {
            Mapped::Write(w) => &w.id,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn reason_of(m: &Mapped) -> &str {
        match m {
            Mapped::DeadLetter { reason } => reason,
            other => panic!("expected a dead letter, got {other:?}"),
        }
    }

    #[test]
    fn seatool_id_is_the_key_without_its_json_quotes_or_the_bare_key() {
        let m = mapped(Table::Seatool, "confluent-seatool-batch.json");
        assert_eq!(
            m.iter().map(id_of).collect::<Vec<_>>(),
            ["NC-11-020", "VA-24-0007", "NC-11-020", "MD-23-0031"]
        );
        assert_eq!(
            id_of(&mapped(Table::Seatool, "confluent-seatool-object-value.json")[0]),
            "OH-25-0100"
        );
        assert_eq!(
            id_of(&mapped(Table::Seatool, "nordstrom-seatool-record.json")[0]),
            "NC-11-020"
        );
    }

    #[test]
    fn value_fields_named_pk_or_sk_never_override_the_key() {
        let m = mapped(Table::Seatool, "confluent-seatool-batch.json");
        let Mapped::Write(Write {
            id,
            op: WriteOp::Put(fields),
            ..
        }) = &m[3]
        else {
            panic!("{:?}", m[3])
        };
        assert_eq!(id, "MD-23-0031");
        assert!(!fields.contains_key("PK") && !fields.contains_key("SK"), "{fields:?}");
        assert!(fields.contains_key("STATE_PLAN"));
    }

    #[test]
    fn seatool_tombstone_is_a_delete() {
        let m = mapped(Table::Seatool, "confluent-seatool-tombstone.json");
        assert!(matches!(&m[0], Mapped::Write(Write { id, op: WriteOp::Delete, .. }) if id == "VA-24-0007"));
    }

    #[test]
    fn seatool_poison_records_are_dead_lettered_with_the_reason() {
        let m = mapped(Table::Seatool, "confluent-seatool-poison.json");
        assert!(reason_of(&m[0]).starts_with("value is not JSON"), "{:?}", m[0]);
        assert_eq!(reason_of(&m[1]), "Seatool key is not a string: 42");
        assert!(reason_of(&m[2]).contains("has no key"));
        assert_eq!(
            id_of(&m[3]),
            "WA-22-0003",
            "the good record after the poison ones still maps"
        );
        let esm = mapped(Table::Seatool, "esm-selfmanaged-seatool.json");
        assert!(reason_of(&esm[2]).contains("base64"), "{:?}", esm[2]);
    }

    #[test]
    fn numbers_keep_every_digit_and_an_integral_pckg_id_is_its_integer() {
        let m = mapped(Table::Appian, "confluent-appian-numbers.json");
        assert_eq!(id_of(&m[0]), "98001", "98001.0 is the package 98001");
        assert_eq!(id_of(&m[3]), "98022", "so is 9.8022E4 the package 98022");
        let Mapped::Write(Write {
            op: WriteOp::Put(fields),
            ..
        }) = &m[0]
        else {
            panic!("{:?}", m[0])
        };
        let payload = &fields["payload"];
        let text = |name: &str| payload[name].to_string();
        assert_eq!(text("FEE_AMT"), "12345678901234567890.123456789012345678", "38 digits");
        assert_eq!(text("SEQ_NBR"), "123456789012345678901234567890", "beyond 64 bits");
        assert_eq!(text("RATE"), "0.000000000000000000012345");
        assert_eq!(text("WHOLE"), "150");
        assert_eq!(text("PCKG_ID"), "98001");
    }

    #[test]
    fn a_number_dynamodb_cannot_hold_is_dead_lettered_naming_it() {
        let m = mapped(Table::Appian, "confluent-appian-numbers.json");
        assert_eq!(
            reason_of(&m[1]),
            "payload.RATIO is 1.2345678901234567890123456789012345678901, which has 41 significant digits: \
             DynamoDB holds at most 38"
        );
        assert_eq!(
            reason_of(&m[2]),
            "payload.HUGE[1].X is 1e+200, out of DynamoDB's range (magnitudes from 1E-130 to below 1E+126)"
        );
    }

    #[test]
    fn appian_id_is_pckg_id_as_a_string_and_a_tombstone_deletes_the_id_of_its_key() {
        let m = mapped(Table::Appian, "confluent-appian-batch.json");
        assert_eq!(id_of(&m[0]), "98001"); // a number
        assert_eq!(id_of(&m[1]), "98002"); // a string
        assert_eq!(id_of(&m[2]), "98001"); // a null key does not matter: the id is in the value
        assert_eq!(
            reason_of(&m[3]),
            "Appian value has no payload.PCKG_ID (the id of the record)"
        );
        // The tombstone's value is null; its key `{"PCKG_ID": 98004}` names the package.
        assert!(
            matches!(&m[4], Mapped::Write(Write { id, op: WriteOp::Delete, .. }) if id == "98004"),
            "{:?}",
            m[4]
        );
        let Mapped::Write(Write {
            op: WriteOp::Put(fields),
            ..
        }) = &m[0]
        else {
            panic!()
        };
        assert_eq!(
            fields["payload"]["PCKG_STUS"], "Draft",
            "the item is the whole parsed value"
        );
    }

    #[test]
    fn bad_values_and_ids_name_what_was_wrong() {
        let rec = |key: Field, value: Field| SourceRecord {
            coordinates: Coordinates {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                timestamp: 0,
                epoch: 0,
            },
            key,
            value,
        };
        let text = |s: &str| Field::Text(s.into());
        let cases = [
            (
                Table::Seatool,
                rec(text("\"\""), text("{}")),
                "Seatool key is an empty string",
            ),
            (
                Table::Seatool,
                rec(text("{\"a\":1}"), text("{}")),
                "Seatool key is not a string: {\"a\":1}",
            ),
            (
                Table::Seatool,
                rec(Field::Json(serde_json::json!(7)), text("{}")),
                "Seatool key is not a string: 7",
            ),
            (
                Table::Seatool,
                rec(text("k"), text("[1,2]")),
                "value is JSON but not an object: [1,2]",
            ),
            (
                Table::Appian,
                rec(Field::Null, text("{\"payload\":{\"PCKG_ID\":\"\"}}")),
                "not a number or a non-empty string: \"\"",
            ),
            (
                Table::Appian,
                rec(Field::Null, text("{\"payload\":{\"PCKG_ID\":null}}")),
                "not a number or a non-empty string: null",
            ),
            (Table::Appian, rec(Field::Null, text("not json")), "value is not JSON"),
        ];
        for (table, record, expected) in cases {
            let m = map_record(table, &record);
            assert!(reason_of(&m).contains(expected), "{record:?}: {m:?}");
        }
    }
}
