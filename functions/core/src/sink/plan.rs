//! One batch in, the writes to make out: map every record, keep only the newest per id.

use std::collections::HashMap;

use serde::Serialize;

use super::mapping::{Mapped, Table, Write, map_record};
use super::record::{Coordinates, Field, SourceRecord};

/// What became of one record; the Confluent response carries it per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The item was stored.
    Written,
    /// A newer record for the same id is already stored, or is in the same batch.
    Stale,
    /// A tombstone removed the item (or marked an id that was never stored).
    Deleted,
    /// Nothing to do, on purpose.
    Skipped,
    /// The record can never be stored; it was sent to the dead-letter queue.
    DeadLettered,
}

impl Outcome {
    /// The name used in responses and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Written => "written",
            Outcome::Stale => "stale",
            Outcome::Deleted => "deleted",
            Outcome::Skipped => "skipped",
            Outcome::DeadLettered => "dead-lettered",
        }
    }
}

/// A record that can never be stored, with everything needed to replay it by hand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// The table the record was meant for.
    pub table: &'static str,
    /// Why it cannot be stored.
    pub reason: String,
    /// Where it sits in Kafka.
    #[serde(flatten)]
    pub coordinates: Coordinates,
    /// The key as delivered.
    pub key: Option<String>,
    /// The value as delivered.
    pub value: Option<String>,
}

impl DeadLetter {
    /// The queue message body: JSON, at most `max_bytes` long, with only characters SQS takes.
    /// A key or value that is not plain text (control characters, which JSON escapes to six
    /// bytes each, or characters SQS refuses: Avro or Protobuf bytes read as a string) is sent as
    /// `keyBase64`/`valueBase64`, the base64 of its bytes. What still does not fit is cut, the
    /// value first, and `truncated` says so; the coordinates always fit, and the record stays in
    /// Kafka for its retention, so it can still be read back in full.
    pub fn to_message(&self, max_bytes: usize) -> String {
        let mut body = self.body();
        let full = body.to_string();
        if full.len() <= max_bytes {
            return full;
        }
        body["truncated"] = serde_json::Value::Bool(true);
        for field in ["valueBase64", "value", "keyBase64", "key"] {
            loop {
                let excess = body.to_string().len().saturating_sub(max_bytes);
                let Some(text) = body.get(field).and_then(|v| v.as_str()) else {
                    break;
                };
                if excess == 0 || text.is_empty() {
                    break;
                }
                // Each byte cut shortens the body by at least one; base64 stays whole quads.
                let mut keep = text.len().saturating_sub(excess);
                if field.ends_with("Base64") {
                    keep -= keep % 4;
                }
                body[field] = serde_json::Value::String(truncate(text, keep));
            }
        }
        body.to_string()
    }
}

/// A dead letter read back from its queue message: the table it was meant for and the record
/// as it was delivered, ready to go through the sink again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadLetter {
    /// The table's logical name (`seatool`, `appian`).
    pub table: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// The record, key and value as delivered.
    pub record: SourceRecord,
}

impl ReadLetter {
    /// The letter's name in listings: `topic-partition@offset`.
    pub fn name(&self) -> String {
        self.record.coordinates.place()
    }
}

/// Where the record of a dead letter sits, from any letter the sink writes (whole, truncated or
/// a claim check): `None` for a message that is not one.
pub fn letter_coordinates(body: &str) -> Option<Coordinates> {
    let doc: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(Coordinates {
        topic: doc.get("topic")?.as_str()?.to_string(),
        partition: i32::try_from(doc.get("partition")?.as_i64()?).ok()?,
        offset: doc.get("offset")?.as_i64()?,
        timestamp: doc.get("timestamp").and_then(|v| v.as_i64()).unwrap_or(-1),
        epoch: doc
            .get("epoch")
            .and_then(|v| v.as_u64())
            .and_then(|e| u32::try_from(e).ok())
            .unwrap_or(0),
    })
}

/// Reads a message [`DeadLetter::to_message`] wrote. A truncated letter cannot be replayed (its
/// record is still in Kafka for the topic's retention), nor can anything not shaped like one.
pub fn read_letter(body: &str) -> Result<ReadLetter, String> {
    use base64::Engine;
    let doc: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not a dead letter (not JSON: {e})"))?;
    let text = |name: &str| doc.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let number = |name: &str| doc.get(name).and_then(|v| v.as_i64());
    let (Some(table), Some(topic), Some(partition), Some(offset)) =
        (text("table"), text("topic"), number("partition"), number("offset"))
    else {
        return Err("not a dead letter (no table, topic, partition or offset)".into());
    };
    let coordinates = Coordinates {
        topic,
        partition: i32::try_from(partition).map_err(|_| format!("partition {partition} is out of range"))?,
        offset,
        timestamp: number("timestamp").unwrap_or(-1),
        epoch: number("epoch").and_then(|e| u32::try_from(e).ok()).unwrap_or(0),
    };
    let at = coordinates.place();
    if let Some(claim) = doc.get("claimCheck") {
        return Err(format!(
            "{at} is a claim check: its body is s3://{}/{} (read that instead)",
            claim["bucket"].as_str().unwrap_or("?"),
            claim["key"].as_str().unwrap_or("?")
        ));
    }
    if doc.get("truncated").and_then(|v| v.as_bool()) == Some(true) {
        return Err(format!(
            "truncated to fit SQS: replay {at} from Kafka instead (it stays there for the topic's retention)"
        ));
    }
    let field = |name: &str| -> Result<Field, String> {
        if let Some(encoded) = text(&format!("{name}Base64")) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("{name}Base64 is not base64: {e}"))?;
            let text = String::from_utf8(bytes).map_err(|_| format!("{name}Base64 is not UTF-8"))?;
            return Ok(Field::Text(text));
        }
        Ok(text(name).map_or(Field::Null, Field::Text))
    };
    Ok(ReadLetter {
        table,
        reason: text("reason").unwrap_or_default(),
        record: SourceRecord {
            coordinates,
            key: field("key")?,
            value: field("value")?,
        },
    })
}

impl DeadLetter {
    /// The body with key and value whole (base64 when not plain text), for a claim check.
    pub fn full_message(&self) -> String {
        self.body().to_string()
    }

    fn body(&self) -> serde_json::Value {
        use base64::Engine;
        let mut body = serde_json::to_value(self).unwrap_or_default();
        for field in ["key", "value"] {
            if let Some(text) = body[field].as_str()
                && !sqs_text(text)
            {
                let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
                body[field] = serde_json::Value::Null;
                body[format!("{field}Base64")] = serde_json::Value::String(encoded);
            }
        }
        body
    }

    /// The object key of this letter's claim check, `sha256` the body's digest in hex: one per
    /// record and body, so a replayed batch writes the same object again.
    pub fn claim_key(&self, sha256: &str) -> String {
        let c = &self.coordinates;
        format!(
            "dead-letters/{}/{}/{}/{}-{}.json",
            self.table, c.topic, c.partition, c.offset, sha256
        )
    }

    /// The letter sent when the body does not fit the queue: the table, reason, coordinates and
    /// the claim check, plus the key when it fits (`max_bytes`) as plain text.
    pub fn claim_message(&self, claim: &ClaimCheck, max_bytes: usize) -> String {
        let mut body = serde_json::to_value(self).unwrap_or_default();
        body["value"] = serde_json::Value::Null;
        body["claimCheck"] = serde_json::to_value(claim).unwrap_or_default();
        if body.to_string().len() > max_bytes || body["key"].as_str().is_some_and(|k| !sqs_text(k)) {
            body["key"] = serde_json::Value::Null;
        }
        body.to_string()
    }
}

/// Where the body of a letter too large for the queue is kept (S3), as the letter names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ClaimCheck {
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// SHA-256 of the object's bytes, hex.
    pub sha256: String,
    /// The object's size.
    pub bytes: usize,
}

/// The claim check a letter carries, if it is one.
pub fn claim_check_of(body: &str) -> Option<ClaimCheck> {
    let doc: serde_json::Value = serde_json::from_str(body).ok()?;
    serde_json::from_value(doc.get("claimCheck")?.clone()).ok()
}

/// Whether SQS takes `text` as it is and JSON keeps it about its size: tab, newline, carriage
/// return and the characters SQS allows from U+0020 up, without U+FFFE and U+FFFF.
pub fn sqs_text(text: &str) -> bool {
    text.chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
}

fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// What to do for a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per input record, the outcome already known from the batch alone (skipped, dead-lettered,
    /// or stale because a newer record for the same id is in the batch); `None` for a write.
    pub decided: Vec<Option<Outcome>>,
    /// The writes to make, at most one per id, with the index of the record each came from.
    pub writes: Vec<(usize, Write)>,
    /// Per id, its older writes in the batch, newest first: decided `Stale` above, and written
    /// in turn only if the store rejects every newer one (an item over DynamoDB's size limit).
    pub older: HashMap<String, Vec<(usize, Write)>>,
    /// Records to dead-letter, with their index.
    pub dead_letters: Vec<(usize, DeadLetter)>,
}

/// Maps every record of a batch for `table` and keeps only the newest write per id.
pub fn plan_batch(table: Table, records: &[SourceRecord]) -> Plan {
    let mut decided = vec![None; records.len()];
    let mut dead_letters = Vec::new();
    let mut newest: HashMap<String, (usize, Write)> = HashMap::new();
    let mut older: HashMap<String, Vec<(usize, Write)>> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        match map_record(table, record) {
            Mapped::Skip { .. } => decided[index] = Some(Outcome::Skipped),
            Mapped::DeadLetter { reason } => {
                decided[index] = Some(Outcome::DeadLettered);
                dead_letters.push((index, dead_letter(table, record, reason)));
            }
            Mapped::Write(write) => match newest.get_mut(&write.id) {
                Some((_, kept)) if !write.coordinates.supersedes(&kept.coordinates) => {
                    decided[index] = Some(Outcome::Stale);
                    older.entry(write.id.clone()).or_default().push((index, write));
                }
                Some(slot) => {
                    decided[slot.0] = Some(Outcome::Stale);
                    let replaced = std::mem::replace(slot, (index, write));
                    older.entry(replaced.1.id.clone()).or_default().push(replaced);
                }
                None => {
                    newest.insert(write.id.clone(), (index, write));
                }
            },
        }
    }
    let mut writes: Vec<(usize, Write)> = newest.into_values().collect();
    writes.sort_by_key(|(index, _)| *index);
    for list in older.values_mut() {
        list.sort_by(|(_, a), (_, b)| {
            if a.coordinates.supersedes(&b.coordinates) {
                std::cmp::Ordering::Less
            } else if b.coordinates.supersedes(&a.coordinates) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
    }
    Plan {
        decided,
        writes,
        older,
        dead_letters,
    }
}

/// The dead letter for a record that cannot be stored in `table`.
pub fn dead_letter(table: Table, record: &SourceRecord, reason: String) -> DeadLetter {
    DeadLetter {
        table: table.name(),
        reason,
        coordinates: record.coordinates.clone(),
        key: record.key.raw_text(),
        value: record.value.raw_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::decode::decode_batch;
    use crate::sink::mapping::WriteOp;
    use crate::sink::test_events::event;

    #[test]
    fn keeps_only_the_newest_record_per_id_in_a_batch() {
        let batch = decode_batch(&event("confluent-seatool-batch.json")).unwrap();
        let plan = plan_batch(Table::Seatool, &batch.records);
        assert_eq!(plan.decided, [Some(Outcome::Stale), None, None, None]);
        let kept: Vec<(usize, &str, i64)> = plan
            .writes
            .iter()
            .map(|(i, w)| (*i, w.id.as_str(), w.coordinates.offset))
            .collect();
        assert_eq!(
            kept,
            [(1, "VA-24-0007", 1042), (2, "NC-11-020", 1043), (3, "MD-23-0031", 877)]
        );
    }

    #[test]
    fn across_partitions_the_newer_timestamp_wins_whatever_the_order_in_the_batch() {
        let batch = decode_batch(&event("confluent-appian-batch.json")).unwrap();
        let plan = plan_batch(Table::Appian, &batch.records);
        assert_eq!(
            plan.decided,
            [
                Some(Outcome::Stale),
                None,
                None,
                Some(Outcome::DeadLettered),
                None // the tombstone of 98004: a delete
            ]
        );
        let (_, kept) = plan.writes.iter().find(|(_, w)| w.id == "98001").unwrap();
        assert_eq!((kept.coordinates.partition, kept.coordinates.offset), (1, 120));
        assert_eq!(plan.dead_letters.len(), 1);
        assert_eq!(plan.dead_letters[0].1.coordinates.offset, 311);
    }

    #[test]
    fn a_tombstone_after_a_put_in_one_batch_leaves_only_the_delete() {
        let mut records = decode_batch(&event("confluent-seatool-batch.json")).unwrap().records;
        records.extend(
            decode_batch(&event("confluent-seatool-tombstone.json"))
                .unwrap()
                .records,
        );
        let plan = plan_batch(Table::Seatool, &records);
        let va: Vec<&Write> = plan
            .writes
            .iter()
            .map(|(_, w)| w)
            .filter(|w| w.id == "VA-24-0007")
            .collect();
        assert_eq!(va.len(), 1);
        assert_eq!(va[0].op, WriteOp::Delete);
        assert_eq!(plan.decided[1], Some(Outcome::Stale));
    }

    #[test]
    fn dead_letter_message_fits_the_limit_and_says_when_it_was_cut() {
        let letter = DeadLetter {
            table: "seatool",
            reason: "value is not JSON".into(),
            coordinates: Coordinates {
                topic: "t".into(),
                partition: 3,
                offset: 99,
                timestamp: 7,
                epoch: 0,
            },
            key: Some("\"K\"".into()),
            value: Some("\u{e9}\"x".repeat(200_000)),
        };
        let small = DeadLetter {
            value: Some("{".into()),
            ..letter.clone()
        };
        let body: serde_json::Value = serde_json::from_str(&small.to_message(1000)).unwrap();
        assert_eq!(body["offset"], 99);
        assert_eq!(body["value"], "{");
        assert!(body.get("truncated").is_none());

        let limit = 256 * 1024;
        let message = letter.to_message(limit);
        assert!(message.len() <= limit, "{} bytes", message.len());
        let body: serde_json::Value = serde_json::from_str(&message).unwrap();
        assert_eq!(body["truncated"], true);
        assert_eq!(
            (body["partition"].as_i64(), body["offset"].as_i64()),
            (Some(3), Some(99))
        );
        assert_eq!(body["key"], "\"K\"");
        assert!(
            body["value"].as_str().unwrap().len() > 50_000,
            "keeps as much of the value as fits"
        );
    }

    #[test]
    fn binary_keys_and_values_go_as_base64_and_the_final_body_always_fits() {
        use base64::Engine;
        let decode = |v: &serde_json::Value| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap()
        };
        let limit = 261_120;
        let letter = |value: String| DeadLetter {
            table: "seatool",
            reason: "value is not JSON".into(),
            coordinates: Coordinates {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                timestamp: 2,
                epoch: 0,
            },
            key: Some("\"K\u{FFFF}\"".into()),
            value: Some(value),
        };
        // 50 KB of 0x01: 300 KB as escaped JSON, 67 KB as base64.
        let binary = "\u{1}".repeat(50_000) + "\u{FFFE}end";
        let message = letter(binary.clone()).to_message(limit);
        assert!(message.len() <= limit && sqs_text(&message), "{} bytes", message.len());
        let body: serde_json::Value = serde_json::from_str(&message).unwrap();
        assert_eq!((body["value"].is_null(), body.get("truncated")), (true, None));
        assert_eq!(decode(&body["valueBase64"]), binary.as_bytes());
        assert_eq!(decode(&body["keyBase64"]), "\"K\u{FFFF}\"".as_bytes());
        // 300 KB of it: cut, still whole base64 quads, still within the limit.
        let message = letter("\u{1}".repeat(300_000)).to_message(limit);
        assert!(message.len() <= limit && sqs_text(&message), "{} bytes", message.len());
        let body: serde_json::Value = serde_json::from_str(&message).unwrap();
        assert_eq!(body["truncated"], true);
        assert!(decode(&body["valueBase64"]).len() > 150_000, "keeps what fits");
    }

    #[test]
    fn a_letter_reads_back_as_the_record_it_was_whatever_its_encoding() {
        let letter = |value: &str| DeadLetter {
            table: "seatool",
            reason: "why".into(),
            coordinates: Coordinates {
                topic: "t".into(),
                partition: 2,
                offset: 9,
                timestamp: 5,
                epoch: 1,
            },
            key: Some("\"K\"".into()),
            value: Some(value.into()),
        };
        for value in ["{\"a\":1}", "\u{1}\u{FFFF} binary"] {
            let read = read_letter(&letter(value).to_message(256 * 1024)).unwrap();
            assert_eq!((read.table.as_str(), read.reason.as_str()), ("seatool", "why"));
            assert_eq!(read.record.coordinates, letter(value).coordinates);
            assert_eq!(read.record.key, Field::Text("\"K\"".into()));
            assert_eq!(read.record.value, Field::Text(value.into()), "{value:?}");
            assert_eq!(read.name(), "t-2@9");
        }
        let cut = read_letter(&letter(&"x".repeat(5000)).to_message(1000)).unwrap_err();
        assert!(
            cut.starts_with("truncated to fit SQS: replay t-2@9 from Kafka"),
            "{cut}"
        );
        assert!(read_letter("{}").unwrap_err().starts_with("not a dead letter"));
    }
}
