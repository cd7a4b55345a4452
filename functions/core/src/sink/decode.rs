//! The three input formats a sink function accepts, detected from the event's shape.
//!
//! - **Confluent** AWS Lambda Sink connector: a JSON array of `{"payload": {timestamp, topic,
//!   partition, offset, key, value}}`. With String converters `key` and `value` are JSON strings
//!   whose text is the record; with schema'd converters they may be objects. `null` is `null`.
//! - **Nordstrom** kafka-connect-lambda: a flat object (or an array of them) with
//!   `keySchemaName`/`timestampTypeName`; a null key or value arrives as `""`.
//! - **Event source mapping**: `{"eventSource": "aws:kafka" | "aws:SelfManagedKafka", "records":
//!   {"<topic>-<partition>": [...]}}` with base64 `key` and `value`.
//!
//! A structural problem (not one of these shapes, a record without its coordinates) fails the
//! whole event with an error that names what was expected. A problem with one record's *content*
//! (bytes that are not text) is carried in the record as [`Field::Undecodable`], so that the
//! record is dead-lettered and the rest of the batch goes on.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::record::{Coordinates, Field, SourceRecord};

/// Which format delivered a batch; it decides the shape of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Confluent AWS Lambda Sink connector batch; answered with one result per record.
    Confluent,
    /// Nordstrom kafka-connect-lambda record(s); answered with a summary.
    Nordstrom,
    /// Lambda Kafka event source mapping event; answered with a summary.
    EventSourceMapping,
}

/// A decoded event: its format and its records in delivery order.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceBatch {
    /// The format the event was recognised as.
    pub format: InputFormat,
    /// The records, in the order they were delivered.
    pub records: Vec<SourceRecord>,
}

impl SourceBatch {
    /// The batch with every record placed in the topic incarnation `epoch` (see
    /// [`Coordinates::epoch`]), which the event itself cannot tell.
    pub fn in_epoch(mut self, epoch: u32) -> Self {
        for record in &mut self.records {
            record.coordinates.epoch = epoch;
        }
        self
    }
}

/// Why an event could not be decoded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The event is none of the supported shapes.
    #[error(
        "unsupported sink event: expected a Confluent Lambda sink batch (a JSON array of \
         {{\"payload\": {{...}}}}), a Nordstrom kafka-connect-lambda record (an object or array of \
         objects with keySchemaName/timestampTypeName), or a Lambda Kafka event (eventSource \
         aws:kafka or aws:SelfManagedKafka with records); found {found}"
    )]
    UnsupportedShape {
        /// A short description of what arrived.
        found: String,
    },
    /// A record lacks a field the format requires, or has it with the wrong type.
    #[error("{format} record {index}: field `{field}` {problem}")]
    BadRecord {
        /// The format's name.
        format: &'static str,
        /// Where the record is: its position, or `topic-partition[i]` for event source mappings.
        index: String,
        /// The field's name.
        field: &'static str,
        /// What was wrong with it.
        problem: String,
    },
}

/// Decodes any supported sink event.
pub fn decode_batch(event: &Value) -> Result<SourceBatch, DecodeError> {
    match event {
        Value::Array(items) => match items.first() {
            None => Ok(SourceBatch {
                format: InputFormat::Confluent,
                records: Vec::new(),
            }),
            Some(Value::Object(first)) if first.contains_key("payload") => decode_confluent(items),
            Some(Value::Object(first)) if is_nordstrom(first) => decode_nordstrom(items),
            Some(first) => Err(unsupported(format!(
                "an array whose first element is {}",
                describe(first)
            ))),
        },
        Value::Object(obj) if obj.contains_key("eventSource") => decode_event_source_mapping(obj),
        Value::Object(obj) if is_nordstrom(obj) => decode_nordstrom(std::slice::from_ref(event)),
        other => Err(unsupported(describe(other))),
    }
}

fn bad_record(format: &'static str, index: impl ToString, field: &'static str, problem: String) -> DecodeError {
    DecodeError::BadRecord {
        format,
        index: index.to_string(),
        field,
        problem,
    }
}

fn is_nordstrom(obj: &Map<String, Value>) -> bool {
    obj.contains_key("keySchemaName") || obj.contains_key("timestampTypeName")
}

fn unsupported(found: String) -> DecodeError {
    DecodeError::UnsupportedShape { found }
}

/// A one-line description of a JSON value for error messages (field names, never contents).
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(a) => format!("an array of {} element(s)", a.len()),
        Value::Object(o) => {
            let mut names: Vec<&str> = o.keys().map(String::as_str).take(8).collect();
            if o.len() > names.len() {
                names.push("...");
            }
            format!("an object with fields [{}]", names.join(", "))
        }
    }
}

/// Reads the coordinates of one record, naming the field that is missing or mistyped.
struct FieldReader<'a> {
    format: &'static str,
    index: String,
    obj: &'a Map<String, Value>,
}

impl FieldReader<'_> {
    fn err(&self, field: &'static str, problem: impl Into<String>) -> DecodeError {
        bad_record(self.format, &self.index, field, problem.into())
    }

    fn int(&self, field: &'static str) -> Result<i64, DecodeError> {
        match self.obj.get(field) {
            None => Err(self.err(field, "is missing")),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.err(field, format!("is not an integer: {n}"))),
            // Some bridges serialise numbers as strings; accept them when they are integers.
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| self.err(field, format!("is not an integer: {s:?}"))),
            Some(other) => Err(self.err(field, format!("is {}, expected an integer", describe(other)))),
        }
    }

    fn string(&self, field: &'static str) -> Result<String, DecodeError> {
        match self.obj.get(field) {
            None => Err(self.err(field, "is missing")),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.err(field, format!("is {}, expected a string", describe(other)))),
        }
    }

    fn coordinates(&self) -> Result<Coordinates, DecodeError> {
        let partition = self.int("partition")?;
        Ok(Coordinates {
            topic: self.string("topic")?,
            partition: i32::try_from(partition)
                .map_err(|_| self.err("partition", format!("is out of range: {partition}")))?,
            offset: self.int("offset")?,
            // Kafka uses -1 for "no timestamp"; a record without one still has a place by offset.
            timestamp: match self.obj.get("timestamp") {
                None | Some(Value::Null) => -1,
                Some(_) => self.int("timestamp")?,
            },
            epoch: 0,
        })
    }
}

fn decode_confluent(items: &[Value]) -> Result<SourceBatch, DecodeError> {
    let records = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let payload = match item.get("payload") {
                Some(Value::Object(p)) => p,
                Some(other) => {
                    return Err(bad_record(
                        "Confluent",
                        i,
                        "payload",
                        format!("is {}, expected an object", describe(other)),
                    ));
                }
                None => {
                    return Err(bad_record(
                        "Confluent",
                        i,
                        "payload",
                        format!("is missing (element is {})", describe(item)),
                    ));
                }
            };
            let reader = FieldReader {
                format: "Confluent",
                index: i.to_string(),
                obj: payload,
            };
            Ok(SourceRecord {
                coordinates: reader.coordinates()?,
                key: json_field(payload.get("key")),
                value: json_field(payload.get("value")),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(SourceBatch {
        format: InputFormat::Confluent,
        records,
    })
}

/// A Confluent key or value: `null`/absent/`""` is nothing, a string is text, anything else JSON.
fn json_field(value: Option<&Value>) -> Field {
    match value {
        None | Some(Value::Null) => Field::Null,
        Some(Value::String(s)) if s.is_empty() => Field::Null,
        Some(Value::String(s)) => Field::Text(s.clone()),
        Some(other) => Field::Json(other.clone()),
    }
}

fn decode_nordstrom(items: &[Value]) -> Result<SourceBatch, DecodeError> {
    let records = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(obj) = item else {
                return Err(bad_record(
                    "Nordstrom",
                    i,
                    "record",
                    format!("is {}, expected an object", describe(item)),
                ));
            };
            let reader = FieldReader {
                format: "Nordstrom",
                index: i.to_string(),
                obj,
            };
            // PlainPayloadFormatter writes toString() of the Connect value, and "" for null.
            Ok(SourceRecord {
                coordinates: reader.coordinates()?,
                key: json_field(obj.get("key")),
                value: json_field(obj.get("value")),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(SourceBatch {
        format: InputFormat::Nordstrom,
        records,
    })
}

fn decode_event_source_mapping(obj: &Map<String, Value>) -> Result<SourceBatch, DecodeError> {
    let source = obj.get("eventSource").and_then(Value::as_str).unwrap_or_default();
    if source != "aws:kafka" && source != "aws:SelfManagedKafka" {
        return Err(unsupported(format!(
            "an event with eventSource {}",
            obj.get("eventSource").unwrap_or(&Value::Null)
        )));
    }
    let Some(Value::Object(groups)) = obj.get("records") else {
        return Err(unsupported(format!("a {source} event without a `records` object")));
    };
    let mut records = Vec::new();
    for (group, list) in groups {
        let Value::Array(list) = list else {
            return Err(bad_record(
                "event source mapping",
                group,
                "records",
                format!("is {}, expected an array", describe(list)),
            ));
        };
        for (i, item) in list.iter().enumerate() {
            let index = format!("{group}[{i}]");
            let Value::Object(rec) = item else {
                return Err(bad_record(
                    "event source mapping",
                    index,
                    "record",
                    format!("is {}, expected an object", describe(item)),
                ));
            };
            let reader = FieldReader {
                format: "event source mapping",
                index,
                obj: rec,
            };
            records.push(SourceRecord {
                coordinates: reader.coordinates()?,
                key: base64_field(rec.get("key")),
                value: base64_field(rec.get("value")),
            });
        }
    }
    Ok(SourceBatch {
        format: InputFormat::EventSourceMapping,
        records,
    })
}

/// An event source mapping key or value: base64 of the record bytes, absent for null.
fn base64_field(value: Option<&Value>) -> Field {
    let raw = match value {
        None | Some(Value::Null) => return Field::Null,
        Some(Value::String(s)) => s,
        Some(other) => {
            return Field::Undecodable {
                reason: format!("expected base64 text, found {}", describe(other)),
                raw: other.to_string(),
            };
        }
    };
    let bytes = match base64::engine::general_purpose::STANDARD.decode(raw) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Field::Undecodable {
                reason: format!("not valid base64: {e}"),
                raw: raw.clone(),
            };
        }
    };
    match bytes_field(Some(&bytes)) {
        // The base64 as it arrived, for the dead letter.
        Field::Undecodable { reason, .. } => Field::Undecodable {
            reason,
            raw: raw.clone(),
        },
        field => field,
    }
}

/// A key or value from the record's bytes, as the sink gets it: none or empty is nothing, UTF-8
/// is text, anything else is undecodable (carried as base64).
pub fn bytes_field(bytes: Option<&[u8]>) -> Field {
    use base64::Engine;
    match bytes {
        None => Field::Null,
        Some([]) => Field::Null,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Field::Text(text.to_string()),
            Err(e) => Field::Undecodable {
                reason: format!("not UTF-8 text: {e}"),
                raw: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::test_events::event;

    #[test]
    fn each_sample_is_recognised_as_its_format() {
        let cases = [
            ("confluent-seatool-batch.json", InputFormat::Confluent, 4),
            ("confluent-appian-batch.json", InputFormat::Confluent, 5),
            ("confluent-seatool-tombstone.json", InputFormat::Confluent, 1),
            ("nordstrom-seatool-record.json", InputFormat::Nordstrom, 1),
            ("nordstrom-seatool-batch.json", InputFormat::Nordstrom, 2),
            ("esm-msk-appian.json", InputFormat::EventSourceMapping, 3),
            ("esm-selfmanaged-seatool.json", InputFormat::EventSourceMapping, 3),
        ];
        for (file, format, count) in cases {
            let batch = decode_batch(&event(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(batch.format, format, "{file}");
            assert_eq!(batch.records.len(), count, "{file}");
        }
    }

    #[test]
    fn confluent_strings_stay_text_and_null_value_is_a_tombstone() {
        let batch = decode_batch(&event("confluent-seatool-tombstone.json")).unwrap();
        let r = &batch.records[0];
        assert_eq!(r.key, Field::Text("\"VA-24-0007\"".into()));
        assert!(r.value.is_null());
        assert_eq!(r.coordinates.offset, 1050);
        let batch = decode_batch(&event("confluent-seatool-object-value.json")).unwrap();
        assert!(matches!(batch.records[0].value, Field::Json(Value::Object(_))));
    }

    #[test]
    fn nordstrom_empty_strings_are_null() {
        let batch = decode_batch(&event("nordstrom-seatool-batch.json")).unwrap();
        assert!(batch.records[0].value.is_null());
        assert_eq!(batch.records[0].key, Field::Text("\"NC-11-020\"".into()));
    }

    #[test]
    fn event_source_mapping_decodes_base64_and_keeps_bad_bytes_for_the_dead_letter_queue() {
        let batch = decode_batch(&event("esm-selfmanaged-seatool.json")).unwrap();
        assert_eq!(batch.records[0].key, Field::Text("\"KY-25-0002\"".into()));
        assert!(batch.records[1].value.is_null(), "absent value is a tombstone");
        match &batch.records[2].key {
            Field::Undecodable { reason, raw } => {
                assert!(reason.contains("base64"), "{reason}");
                assert_eq!(raw, "not base64!!");
            }
            other => panic!("expected undecodable key, got {other:?}"),
        }
        let msk = decode_batch(&event("esm-msk-appian.json")).unwrap();
        assert!(msk.records[2].key.is_null(), "absent key");
    }

    #[test]
    fn unsupported_and_malformed_events_name_what_was_wrong() {
        let cases: [(Value, &str); 9] = [
            (
                event("unsupported-sqs-event.json"),
                "found an object with fields [Records]",
            ),
            (serde_json::json!("hello"), "found a string"),
            (serde_json::json!(42), "found a number"),
            (serde_json::json!([1, 2]), "an array whose first element is a number"),
            (serde_json::json!({"eventSource": "aws:sqs"}), "eventSource \"aws:sqs\""),
            (
                serde_json::json!({"eventSource": "aws:kafka"}),
                "without a `records` object",
            ),
            (
                serde_json::json!([{"payload": {"topic": "t", "partition": 0, "timestamp": 1}}]),
                "field `offset` is missing",
            ),
            (
                serde_json::json!([{"payload": {"topic": "t", "partition": "x", "offset": 1}}]),
                "field `partition` is not an integer",
            ),
            (
                serde_json::json!([{"payload": {"topic": 7, "partition": 0, "offset": 1}}]),
                "field `topic` is a number",
            ),
        ];
        for (input, expected) in cases {
            let err = decode_batch(&input).expect_err(&input.to_string()).to_string();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }

    #[test]
    fn an_empty_array_is_an_empty_confluent_batch() {
        let batch = decode_batch(&serde_json::json!([])).unwrap();
        assert_eq!(batch.format, InputFormat::Confluent);
        assert!(batch.records.is_empty());
    }
}
