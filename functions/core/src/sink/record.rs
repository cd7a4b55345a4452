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
    /// The topic's incarnation, set by the operator (`SINK_TOPIC_EPOCH`) when a topic is deleted
    /// and recreated: its offsets start again at 0, so they only compare within one epoch.
    #[serde(default)]
    pub epoch: u32,
}

/// A lower offset must be at least this much newer in time than what is stored, in the same
/// topic-partition, before it counts as a sign of a recreated topic rather than a replay (whose
/// timestamps are at most slightly out of order, as producers' clocks are).
pub const REWIND_MARGIN_MS: i64 = 5 * 60 * 1000;

impl Coordinates {
    /// `topic-partition@offset`: how dead letters, reports and alerts name a record.
    pub fn place(&self) -> String {
        format!("{}-{}@{}", self.topic, self.partition, self.offset)
    }

    /// Whether a record at `self` is newer than one at `other`, and so may replace it.
    ///
    /// Within one topic-partition the offset decides: Kafka's own order. Across partitions (an
    /// Appian id is read from the value, so one id can arrive on several partitions) the record
    /// timestamp decides, and equal timestamps fall back to (topic, partition) so that every
    /// replica of this decision, here and in the DynamoDB condition, agrees. Equal coordinates
    /// are not newer: a replay of the very same record is stale.
    ///
    /// A higher epoch supersedes whatever a lower one wrote; the rest only applies within an epoch.
    pub fn supersedes(&self, other: &Coordinates) -> bool {
        if self.epoch != other.epoch {
            return self.epoch > other.epoch;
        }
        if self.topic == other.topic && self.partition == other.partition {
            return self.offset > other.offset;
        }
        (self.timestamp, self.topic.as_str(), self.partition) > (other.timestamp, other.topic.as_str(), other.partition)
    }

    /// Whether a record found stale against `stored` looks like the first of a recreated topic:
    /// same epoch and topic-partition, a lower offset, yet a timestamp clearly later than the
    /// stored record's. It is still stale (a genuine replay must never regress data): this only
    /// tells someone to check the topic and, if it was recreated, raise the epoch.
    pub fn rewound_from(&self, stored: &Coordinates) -> bool {
        self.epoch == stored.epoch
            && self.topic == stored.topic
            && self.partition == stored.partition
            && self.offset < stored.offset
            && self.timestamp >= 0
            && stored.timestamp >= 0
            && self.timestamp - stored.timestamp > REWIND_MARGIN_MS
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
            epoch: 0,
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
            (
                true,
                Coordinates {
                    epoch: 1,
                    ..at("t", 0, 0, 1)
                },
                at("t", 0, 99, 9),
            ), // a new epoch wins
            (
                false,
                at("t", 0, 99, 9),
                Coordinates {
                    epoch: 1,
                    ..at("t", 0, 0, 1)
                },
            ),
        ];
        for (i, (expected, candidate, stored)) in cases.iter().enumerate() {
            assert_eq!(
                candidate.supersedes(stored),
                *expected,
                "case {i}: {candidate:?} vs {stored:?}"
            );
        }
    }

    #[test]
    fn a_lower_offset_much_later_in_time_is_a_rewind_and_a_replay_is_not() {
        let stored = at("t", 0, 500, 1_000_000);
        let later = 1_000_000 + REWIND_MARGIN_MS + 1;
        assert!(at("t", 0, 3, later).rewound_from(&stored), "a recreated topic");
        for (why, record) in [
            ("a replay: older in time", at("t", 0, 3, 900_000)),
            (
                "a replay: clocks slightly apart",
                at("t", 0, 3, 1_000_000 + REWIND_MARGIN_MS),
            ),
            ("a higher offset is not stale at all", at("t", 0, 501, later)),
            ("another partition is ordered by time", at("t", 1, 3, later)),
            ("no timestamp", at("t", 0, 3, -1)),
            (
                "another epoch",
                Coordinates {
                    epoch: 1,
                    ..at("t", 0, 3, later)
                },
            ),
        ] {
            assert!(!record.rewound_from(&stored), "{why}");
        }
    }
}
