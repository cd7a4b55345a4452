//! Kafka records as the sink sees them, and the order between them.

use serde::{Deserialize, Serialize};

/// Where a record sits in Kafka. Stored on every item, so that a write can be made conditional on
/// the stored record being older.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordinates {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Record timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl Coordinates {
    /// Whether a record at `self` is newer than one at `other`, and so may replace it.
    ///
    /// Within one topic-partition the offset decides: Kafka's own order. Across partitions (an
    /// Appian id is read from the value, so one id can arrive on several partitions) the record
    /// timestamp decides, and equal timestamps fall back to (topic, partition) so that every
    /// replica of this decision, here and in the DynamoDB condition, agrees. Equal coordinates
    /// are not newer: a replay of the very same record is stale.
    pub fn supersedes(&self, other: &Coordinates) -> bool {
        if self.topic == other.topic && self.partition == other.partition {
            return self.offset > other.offset;
        }
        (self.timestamp, self.topic.as_str(), self.partition) > (other.timestamp, other.topic.as_str(), other.partition)
    }
}

/// A key or value as it arrived, before any table-specific interpretation.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// JSON `null`, an absent field, or the empty string: no key, or a tombstone value.
    Null,
    /// A string, whose text may itself be JSON (String converters deliver JSON as text).
    Text(String),
    /// A JSON value that is not a string (schema'd converters deliver objects as objects).
    Json(serde_json::Value),
    /// Bytes that could not be read as text: the reason, and what arrived, as it arrived.
    Undecodable {
        /// Why the field could not be read.
        reason: String,
        /// The field exactly as delivered (for example the base64 text).
        raw: String,
    },
}

impl Field {
    /// Whether this field carries nothing: the tombstone test for values.
    pub fn is_null(&self) -> bool {
        matches!(self, Field::Null)
    }

    /// The field as delivered, for dead letters; `None` when there is nothing.
    pub fn raw_text(&self) -> Option<String> {
        match self {
            Field::Null => None,
            Field::Text(s) => Some(s.clone()),
            Field::Json(v) => Some(v.to_string()),
            Field::Undecodable { raw, .. } => Some(raw.clone()),
        }
    }
}

/// One Kafka record, whatever format delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// Where it sits in Kafka.
    pub coordinates: Coordinates,
    /// The record key.
    pub key: Field,
    /// The record value; [`Field::Null`] is a tombstone.
    pub value: Field,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(topic: &str, partition: i32, offset: i64, timestamp: i64) -> Coordinates {
        Coordinates {
            topic: topic.into(),
            partition,
            offset,
            timestamp,
        }
    }

    #[test]
    fn supersedes_follows_offset_within_a_partition_and_timestamp_across() {
        // (newer?, candidate, stored)
        let cases = [
            (true, at("t", 0, 11, 5), at("t", 0, 10, 9)), // offset wins over an older timestamp
            (false, at("t", 0, 10, 9), at("t", 0, 11, 5)),
            (false, at("t", 0, 10, 5), at("t", 0, 10, 5)), // the same record again is stale
            (true, at("t", 1, 0, 6), at("t", 0, 99, 5)),   // across partitions the timestamp decides
            (false, at("t", 1, 99, 4), at("t", 0, 0, 5)),
            (true, at("t", 1, 0, 5), at("t", 0, 0, 5)), // equal timestamps: higher partition wins
            (false, at("t", 0, 0, 5), at("t", 1, 0, 5)),
            (true, at("u", 0, 0, 5), at("t", 0, 0, 5)), // then topic name
        ];
        for (i, (expected, candidate, stored)) in cases.iter().enumerate() {
            assert_eq!(
                candidate.supersedes(stored),
                *expected,
                "case {i}: {candidate:?} vs {stored:?}"
            );
        }
    }
}
