//! The oracle of the sink's promise: does the table hold exactly the newest record of every key
//! of the topic? Reads what the topic says each key should be, then what the table holds, and
//! names every difference by class; and repairs the differences through the sink's own
//! conditional write.
//!
//! Core layer: the comparison is plain code over [`SourceRecord`]s and [`TableItem`]s; the two
//! reads go through the ports [`TopicReader`] and [`ItemScanner`], which the adapters implement
//! with the Kafka protocol and DynamoDB. The record → item mapping is [`map_record`] and the
//! order is [`Coordinates::supersedes`]: the very code the sink writes with, not a second copy.
//!
//! Memory: per key of the topic, its id, its newest accepted record's coordinates (the topic
//! name interned) and a 64-bit hash of the item that record maps to — never the value.
//!
//! The classes (DESIGN.md, "verify classes"), one per differing key:
//!
//! | class | the topic's newest accepted record | the table | a loss |
//! |---|---|---|---|
//! | `missing` | a put | no live item (none, an older tombstone, the old service's item) | yes |
//! | `regressed` | a put or a tombstone | an older version than that record | yes |
//! | `resurrected` | a tombstone | a live item not newer than it | yes |
//! | `mismatched` | a put | the same version with other content | yes |
//! | `lost` | refused by the mapping | — and not in the dead-letter queue | yes |
//! | `ahead` | any | a newer version (the sink ran on after the topic was read) | no |
//! | `extra` | none retained | a live item the sink wrote | with `strict` |
//! | `foreign` | none retained | an item the sink did not write (no `@kafka`) | no |
//! | `refused` | refused by the mapping (a record, not a key: dead-lettered) | — | no |

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::monitor::judge::finding::{Category, Finding, Severity};

use super::mapping::{ATTR_DELETED, ATTR_KAFKA, Mapped, RESERVED_ATTRIBUTES, Table, Write, WriteOp, map_record};
use super::number;
use super::ports::{Applied, BoxError, RecordStore};
use super::record::{Coordinates, SourceRecord};

/// How a key (or, for `refused` and `lost`, a record) differs between topic and table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// The topic's newest record is a put; the table has no live item for it.
    Missing,
    /// The table's item is an older version of the key than the topic's newest.
    Regressed,
    /// The topic's newest is a tombstone; the table holds a live item.
    Resurrected,
    /// Same version, other content than the mapping of the record would write.
    Mismatched,
    /// A refused record that is not in the dead-letter queue.
    Lost,
    /// The table holds a newer version than any record read.
    Ahead,
    /// A live item of the sink's whose key no record read names.
    Extra,
    /// An item the sink did not write (no `@kafka`) whose key no record read names.
    Foreign,
    /// A record the mapping refuses: it belongs in the dead-letter queue, not the table.
    Refused,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 9] = [
        Class::Missing,
        Class::Regressed,
        Class::Resurrected,
        Class::Mismatched,
        Class::Lost,
        Class::Ahead,
        Class::Extra,
        Class::Foreign,
        Class::Refused,
    ];

    /// The kebab-case name used in reports, metrics and runbooks.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Missing => "missing",
            Class::Regressed => "regressed",
            Class::Resurrected => "resurrected",
            Class::Mismatched => "mismatched",
            Class::Lost => "lost",
            Class::Ahead => "ahead",
            Class::Extra => "extra",
            Class::Foreign => "foreign",
            Class::Refused => "refused",
        }
    }

    /// Whether this class means the promise was broken: a record lost, rolled back or undone.
    /// `extra` counts only when `strict` (retention or compaction may explain it).
    pub fn is_loss(self, strict: bool) -> bool {
        match self {
            Class::Missing | Class::Regressed | Class::Resurrected | Class::Mismatched | Class::Lost => true,
            Class::Extra => strict,
            Class::Ahead | Class::Foreign | Class::Refused => false,
        }
    }

    /// Whether writing the topic's newest record puts it right.
    pub fn is_repairable(self) -> bool {
        matches!(
            self,
            Class::Missing | Class::Regressed | Class::Resurrected | Class::Mismatched
        )
    }
}

/// One item as the table holds it, reduced to what the comparison needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TableItem {
    /// The record id (`PK`).
    pub id: String,
    /// The coordinates of the record that wrote it; `None` for an item the sink did not write.
    pub coordinates: Option<Coordinates>,
    /// A tombstone marker (`@deleted`), not a live item.
    pub deleted: bool,
    /// Hash of the item's own fields (see [`content_hash`]).
    pub content: u64,
}

impl TableItem {
    /// An item read back as JSON (DynamoDB numbers as JSON numbers). `None` without a string
    /// `PK`: not an item of a sink table.
    pub fn from_json(mut item: Map<String, Value>) -> Option<TableItem> {
        let id = item.get("PK")?.as_str()?.to_string();
        let coordinates = item.get(ATTR_KAFKA).and_then(coordinates_of);
        let deleted = item.get(ATTR_DELETED).and_then(Value::as_bool) == Some(true);
        for name in RESERVED_ATTRIBUTES {
            item.remove(name);
        }
        Some(TableItem {
            id,
            coordinates,
            deleted,
            content: content_hash(&item),
        })
    }
}

/// The coordinates a stored `@kafka` map holds, if it is one the sink wrote.
fn coordinates_of(value: &Value) -> Option<Coordinates> {
    let int = |name: &str| value.get(name)?.as_i64();
    Some(Coordinates {
        topic: value.get("topic")?.as_str()?.to_string(),
        partition: i32::try_from(int("partition")?).ok()?,
        offset: int("offset")?,
        timestamp: int("timestamp")?,
        epoch: u32::try_from(int("epoch").unwrap_or(0)).ok()?,
    })
}

/// A hash of an item's fields (the sink's own attributes removed), numbers in DynamoDB's
/// canonical text so that `1.50` read back as `1.5` is the same content.
pub fn content_hash(fields: &Map<String, Value>) -> u64 {
    let mut value = Value::Object(fields.clone());
    // A number the canonical form refuses was not written by the mapping: hash it as it is.
    let _ = number::canonicalize(&mut value, "");
    let mut hasher = DefaultHasher::new();
    // serde_json's maps are ordered by key, so equal items print equal.
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

/// A record's place without its topic's name (an index into the verifier's topics): what is
/// kept per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    topic: u16,
    partition: i32,
    offset: i64,
    timestamp: i64,
    epoch: u32,
}

#[derive(Debug, Clone, Copy)]
struct Expected {
    version: Version,
    /// The put's item hash; `None` for a tombstone.
    content: Option<u64>,
    seen: bool,
}

/// One differing key as reported: where the topic's newest record and the table's item sit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The record id.
    pub key: String,
    /// The class.
    #[serde(skip)]
    pub class: Class,
    /// The topic's newest accepted record (or the refused record), if the topic names the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<Side>,
    /// The table's item, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Side>,
}

/// One side of a difference: coordinates (absent for the old service's items) and what is there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The record's coordinates.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
    /// A tombstone (the topic) or a tombstone marker (the table).
    pub deleted: bool,
}

/// The verdict: counts per class and samples of each, in the JSON shape `connectorctl verify
/// --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The DynamoDB table.
    pub table: String,
    /// The topic.
    pub topic: String,
    /// Records read from the topic.
    pub records: u64,
    /// Distinct keys those records name (accepted by the mapping).
    pub keys: u64,
    /// Items scanned.
    pub items: u64,
    /// Of those, tombstone markers.
    pub tombstones: u64,
    /// Records the mapping skips on purpose (not a class: nothing to store).
    pub skipped: u64,
    /// Records not judged yet: after the request's `until`, or past the committed offsets.
    pub pending: u64,
    /// Per class, how many keys (records for `refused` and `lost`).
    pub counts: BTreeMap<&'static str, u64>,
    /// Per class, up to the sample limit.
    pub samples: BTreeMap<&'static str, Vec<Difference>>,
    /// How long it took, ms (filled in by the edge that owns the clock).
    pub elapsed_ms: u64,
    /// Whether `extra` counts as a loss.
    pub strict: bool,
}

impl VerifyReport {
    /// How many of `class`.
    pub fn count(&self, class: Class) -> u64 {
        self.counts.get(class.as_str()).copied().unwrap_or(0)
    }

    /// Whether anything was lost, regressed, resurrected or mismatched (or extra, when strict).
    pub fn has_loss(&self) -> bool {
        Class::ALL.iter().any(|c| c.is_loss(self.strict) && self.count(*c) > 0)
    }

    /// The losses in words, in report order: `2 missing, 1 regressed` (empty without any).
    pub fn losses(&self) -> String {
        let losses: Vec<String> = Class::ALL
            .iter()
            .filter(|c| c.is_loss(self.strict) && self.count(**c) > 0)
            .map(|c| format!("{} {}", self.count(*c), c.as_str()))
            .collect();
        losses.join(", ")
    }
}

/// The comparison: feed it every record of the topic, then every item of the table.
#[derive(Debug)]
pub struct Verifier {
    table: Table,
    epoch: u32,
    topics: Vec<String>,
    expected: HashMap<String, Expected>,
    refused: Vec<Version>,
    records: u64,
    items: u64,
    tombstones: u64,
    skipped: u64,
    pending: u64,
    counts: BTreeMap<Class, u64>,
    samples: BTreeMap<Class, Vec<Difference>>,
    max_samples: usize,
    /// Every repairable difference, when a repair will follow.
    keep: Option<Vec<Difference>>,
}

impl Verifier {
    /// A verifier of a `table` sink whose records are in topic epoch `epoch` (the functions'
    /// `SINK_TOPIC_EPOCH`), keeping `max_samples` per class.
    pub fn new(table: Table, epoch: u32, max_samples: usize) -> Self {
        Self {
            table,
            epoch,
            topics: Vec::new(),
            expected: HashMap::new(),
            refused: Vec::new(),
            records: 0,
            items: 0,
            tombstones: 0,
            skipped: 0,
            pending: 0,
            counts: BTreeMap::new(),
            samples: BTreeMap::new(),
            max_samples,
            keep: None,
        }
    }

    /// Also keeps every repairable difference, for [`repair`].
    pub fn keeping_differences(mut self) -> Self {
        self.keep = Some(Vec::new());
        self
    }

    fn intern(&mut self, topic: &str) -> u16 {
        match self.topics.iter().position(|t| t == topic) {
            Some(i) => i as u16,
            None => {
                self.topics.push(topic.to_string());
                (self.topics.len() - 1) as u16
            }
        }
    }

    fn version(&mut self, c: &Coordinates) -> Version {
        Version {
            topic: self.intern(&c.topic),
            partition: c.partition,
            offset: c.offset,
            timestamp: c.timestamp,
            epoch: c.epoch,
        }
    }

    fn coordinates(&self, v: Version) -> Coordinates {
        Coordinates {
            topic: self.topics[v.topic as usize].clone(),
            partition: v.partition,
            offset: v.offset,
            timestamp: v.timestamp,
            epoch: v.epoch,
        }
    }

    /// One record of the topic, in any order: the sink's mapping decides what it means and the
    /// sink's order which record of a key is the newest.
    pub fn observe_record(&mut self, record: &SourceRecord) {
        self.records += 1;
        match map_record(self.table, record) {
            Mapped::Skip { .. } => self.skipped += 1,
            Mapped::DeadLetter { .. } => {
                let mut c = record.coordinates.clone();
                c.epoch = self.epoch;
                let v = self.version(&c);
                self.refused.push(v);
            }
            Mapped::Write(mut write) => {
                write.coordinates.epoch = self.epoch;
                let content = match &write.op {
                    WriteOp::Put(fields) => Some(content_hash(fields)),
                    WriteOp::Delete => None,
                };
                let version = self.version(&write.coordinates);
                let newer = match self.expected.get(&write.id) {
                    Some(kept) => write.coordinates.supersedes(&self.coordinates(kept.version)),
                    None => true,
                };
                if newer {
                    let seen = false;
                    self.expected.insert(write.id, Expected { version, content, seen });
                }
            }
        }
    }

    /// A record too recent to judge: read, counted, not compared.
    pub fn observe_pending(&mut self) {
        self.records += 1;
        self.pending += 1;
    }

    /// The keys the records read name, sorted: what a window's lookup reads from the table.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.expected.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The records refused by the mapping, in the order read (to look for in the dead-letter
    /// queue).
    pub fn refused(&self) -> Vec<Coordinates> {
        self.refused.iter().map(|v| self.coordinates(*v)).collect()
    }

    /// The dead letters found in the queue (their coordinates): each refused record not among
    /// them is `lost`. Without this call, refused records are only counted.
    pub fn check_letters(&mut self, letters: &[Coordinates]) {
        let found: std::collections::HashSet<(&str, i32, i64)> = letters
            .iter()
            .map(|c| (c.topic.as_str(), c.partition, c.offset))
            .collect();
        let lost: Vec<Coordinates> = self
            .refused()
            .into_iter()
            .filter(|c| !found.contains(&(c.topic.as_str(), c.partition, c.offset)))
            .collect();
        for c in lost {
            let key = c.place();
            let side = Side {
                coordinates: Some(c),
                deleted: false,
            };
            self.note(Class::Lost, key, Some(side), None);
        }
    }

    fn note(&mut self, class: Class, key: String, topic: Option<Side>, table: Option<Side>) {
        *self.counts.entry(class).or_default() += 1;
        let samples = self.samples.entry(class).or_default();
        let keep = self.keep.as_mut().filter(|_| class.is_repairable());
        if samples.len() >= self.max_samples && keep.is_none() {
            return;
        }
        let difference = Difference {
            key,
            class,
            topic,
            table,
        };
        if samples.len() < self.max_samples {
            samples.push(difference.clone());
        }
        if let Some(keep) = keep {
            keep.push(difference);
        }
    }

    /// One item of the table. Call only after every record of the topic was observed.
    pub fn observe_item(&mut self, item: TableItem) {
        self.items += 1;
        if item.deleted {
            self.tombstones += 1;
        }
        let table_side = Some(Side {
            coordinates: item.coordinates.clone(),
            deleted: item.deleted,
        });
        let Some(expected) = self.expected.get_mut(&item.id) else {
            match (&item.coordinates, item.deleted) {
                (None, _) => self.note(Class::Foreign, item.id, None, table_side),
                (Some(_), false) => self.note(Class::Extra, item.id, None, table_side),
                (Some(_), true) => {} // a tombstone marker of a key no retained record names
            }
            return;
        };
        expected.seen = true;
        let expected = *expected;
        let want = self.coordinates(expected.version);
        let topic_side = Some(Side {
            coordinates: Some(want.clone()),
            deleted: expected.content.is_none(),
        });
        let class = match (&item.coordinates, expected.content) {
            // The old service's item is older than any record: the newest record never landed.
            (None, Some(_)) => Some(Class::Missing),
            (None, None) => Some(Class::Resurrected),
            (Some(stored), content) => {
                if want.supersedes(stored) {
                    Some(match (content, item.deleted) {
                        (Some(_), true) => Class::Missing,
                        (None, false) => Class::Resurrected,
                        _ => Class::Regressed,
                    })
                } else if stored.supersedes(&want) {
                    Some(Class::Ahead)
                } else {
                    // The same version: the same record, so the same content.
                    match (content, item.deleted) {
                        (None, true) => None,
                        (Some(hash), false) if hash == item.content => None,
                        (None, false) => Some(Class::Resurrected),
                        _ => Some(Class::Mismatched),
                    }
                }
            }
        };
        if let Some(class) = class {
            self.note(class, item.id, topic_side, table_side);
        }
    }

    /// The verdict, after every item: keys whose newest record is a put and that the table never
    /// showed are `missing`.
    pub fn finish(mut self, table_name: &str, topic: &str, strict: bool) -> (VerifyReport, Vec<Difference>) {
        let mut unseen: Vec<(String, Expected)> = self
            .expected
            .iter()
            .filter(|(_, e)| !e.seen && e.content.is_some())
            .map(|(id, e)| (id.clone(), *e))
            .collect();
        unseen.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, e) in unseen {
            let side = Side {
                coordinates: Some(self.coordinates(e.version)),
                deleted: false,
            };
            self.note(Class::Missing, id, Some(side), None);
        }
        let refused = self.refused.len() as u64;
        if refused > 0 {
            self.counts.insert(Class::Refused, refused);
            let samples: Vec<Difference> = self
                .refused()
                .into_iter()
                .take(self.max_samples)
                .map(|c| Difference {
                    key: c.place(),
                    class: Class::Refused,
                    topic: Some(Side {
                        coordinates: Some(c),
                        deleted: false,
                    }),
                    table: None,
                })
                .collect();
            self.samples.insert(Class::Refused, samples);
        }
        let report = VerifyReport {
            table: table_name.to_string(),
            topic: topic.to_string(),
            records: self.records,
            keys: self.expected.len() as u64,
            items: self.items,
            tombstones: self.tombstones,
            skipped: self.skipped,
            pending: self.pending,
            counts: Class::ALL
                .iter()
                .map(|c| (c.as_str(), self.counts.get(c).copied().unwrap_or(0)))
                .collect(),
            samples: self
                .samples
                .into_iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(c, s)| (c.as_str(), s))
                .collect(),
            elapsed_ms: 0,
            strict,
        };
        (report, self.keep.unwrap_or_default())
    }
}

/// The finding for a verified window that is not clean: `sink-diverged`, critical when a reader
/// sees wrong data (`missing`, `resurrected`) or a refused record is not in the dead-letter
/// queue (`lost`), one incident per table. `None` when nothing was lost.
pub fn divergence(report: &VerifyReport, window: &str) -> Option<Finding> {
    if !report.has_loss() {
        return None;
    }
    let mut finding = Finding::new(
        Category::SinkDiverged,
        format!(
            "Table {} does not hold the newest record of every key of topic {} {window}: {} (of {} keys).",
            report.table,
            report.topic,
            report.losses(),
            report.keys
        ),
    );
    if [Class::Missing, Class::Resurrected, Class::Lost]
        .iter()
        .any(|c| report.count(*c) > 0)
    {
        finding.severity = Severity::Critical;
    }
    finding.resource = Some(format!("table/{}", report.table));
    let samples: BTreeMap<&str, &Vec<Difference>> = report
        .samples
        .iter()
        .filter(|(class, _)| {
            Class::ALL
                .iter()
                .any(|c| c.as_str() == **class && c.is_loss(report.strict))
        })
        .map(|(class, s)| (*class, s))
        .collect();
    finding.detail = Some(format!(
        "Counts: {}\nSamples (partition@offset in the topic and the table):\n{}",
        serde_json::to_string(&report.counts).unwrap_or_default(),
        serde_json::to_string_pretty(&samples).unwrap_or_default()
    ));
    finding.action = Some("nothing repaired: confirm with connectorctl verify, then --repair (runbook)".into());
    Some(finding)
}

/// Why a part of a verify could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The topic or the table does not exist: a mistake in what was asked, not an outage.
    #[error("{0}")]
    NotFound(String),
    /// It could not be reached or refused (after retries and the timeout).
    #[error("{what}")]
    Unavailable {
        /// What was being read.
        what: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}

/// The offsets of one partition to read: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    /// The partition.
    pub partition: i32,
    /// The first offset to read.
    pub start: i64,
    /// One past the last: the end when the read began, so records produced meanwhile are left.
    pub end: i64,
}

/// The topic, read as the sink's connector would deliver it.
pub trait TopicReader: Send + Sync {
    /// Every partition of `topic` with the offsets to read: from the earliest retained, or from
    /// the first record at or after `since` (ms since the epoch), up to the end now.
    fn ranges(
        &self,
        topic: &str,
        since: Option<i64>,
    ) -> impl Future<Output = Result<Vec<PartitionRange>, ReadError>> + Send;

    /// Records of `topic`-`partition` from `offset` on, in offset order (epoch 0; the key and
    /// value as the sink would get them). Empty when there are none to read yet.
    fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> impl Future<Output = Result<Vec<SourceRecord>, ReadError>> + Send;
}

/// The table, page by page, in parallel segments.
pub trait ItemScanner: Send + Sync {
    /// Where the next page of a segment starts.
    type Cursor: Send;

    /// One page of segment `segment` of `segments`, from `cursor` (the start when `None`), and
    /// where the next page starts (`None` at the segment's end).
    fn scan_page(
        &self,
        segment: u32,
        segments: u32,
        cursor: Option<Self::Cursor>,
    ) -> impl Future<Output = Result<(Vec<TableItem>, Option<Self::Cursor>), ReadError>> + Send;
}

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// Whose mapping.
    pub table: Table,
    /// The DynamoDB table's name.
    pub table_name: String,
    /// The topic.
    pub topic: String,
    /// Read from the first record at or after this time (ms) instead of the earliest.
    pub since: Option<i64>,
    /// Records after this time (ms) are not judged yet: still within the sink's expected delay
    /// (they are counted as `pending`).
    pub until: Option<i64>,
    /// Per partition, the offset the sink's connector has committed up to (as the monitor last
    /// measured it): records at or past it have not been delivered yet, so they are `pending`
    /// however old. Partitions not named are judged by `until` alone.
    pub committed: BTreeMap<i32, i64>,
    /// The sink's topic epoch.
    pub epoch: u32,
    /// Parallel scan segments (at least 1).
    pub segments: u32,
    /// Samples per class.
    pub samples: usize,
    /// `extra` is a loss.
    pub strict: bool,
    /// Keep every repairable difference (for [`repair`]).
    pub keep_differences: bool,
}

/// Reads the topic (as `request` says) into a verifier, with the dead letters when given.
async fn read_topic<R: TopicReader>(
    reader: &R,
    request: &VerifyRequest,
    letters: Option<&[Coordinates]>,
) -> Result<Verifier, ReadError> {
    let mut verifier = Verifier::new(request.table, request.epoch, request.samples);
    if request.keep_differences {
        verifier = verifier.keeping_differences();
    }
    let until = request.until.unwrap_or(i64::MAX);
    for range in reader.ranges(&request.topic, request.since).await? {
        let delivered = request.committed.get(&range.partition).copied().unwrap_or(i64::MAX);
        read_partition(reader, &request.topic, range, |r| {
            if r.coordinates.timestamp > until || r.coordinates.offset >= delivered {
                verifier.observe_pending();
            } else {
                verifier.observe_record(r);
            }
        })
        .await?;
    }
    if let Some(letters) = letters {
        verifier.check_letters(letters);
    }
    Ok(verifier)
}

/// Reads the topic whole (as `request` says), then scans the table, and compares. `letters`: the
/// coordinates of the dead letters in the queue, when it was read (then refused records not
/// among them are `lost`).
pub async fn verify<R: TopicReader, S: ItemScanner>(
    reader: &R,
    scanner: &S,
    request: &VerifyRequest,
    letters: Option<&[Coordinates]>,
) -> Result<(VerifyReport, Vec<Difference>), ReadError> {
    let verifier = read_topic(reader, request, letters).await?;
    // The table after the topic: what the sink writes meanwhile is newer (`ahead`), never a
    // false `missing`.
    let segments = request.segments.max(1);
    let shared = Mutex::new(verifier);
    let scans = (0..segments).map(|segment| {
        let shared = &shared;
        async move {
            let mut cursor = None;
            loop {
                let (items, next) = scanner.scan_page(segment, segments, cursor).await?;
                let mut verifier = shared.lock().unwrap_or_else(|e| e.into_inner());
                for item in items {
                    verifier.observe_item(item);
                }
                drop(verifier);
                match next {
                    Some(next) => cursor = Some(next),
                    None => return Ok::<(), ReadError>(()),
                }
            }
        }
    });
    futures_util::future::try_join_all(scans).await?;
    let verifier = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(verifier.finish(&request.table_name, &request.topic, request.strict))
}

/// Keys a lookup asks for at once (DynamoDB's `BatchGetItem` takes 100).
pub const LOOKUP_BATCH: usize = 100;
/// Lookups in flight.
const LOOKUPS_IN_FLIGHT: usize = 4;

/// The table, key by key (batched reads): for a window of the topic, where a scan of the whole
/// table would be mostly keys the window does not name.
pub trait ItemLookup: Send + Sync {
    /// The items of `ids` (at most [`LOOKUP_BATCH`]) that exist, in any order.
    fn get_items(&self, ids: &[String]) -> impl Future<Output = Result<Vec<TableItem>, ReadError>> + Send;
}

/// As [`verify`], for the keys the records read name only: each looked up in the table. No
/// `extra` or `foreign` then (the table's other keys are not read).
pub async fn verify_window<R: TopicReader, L: ItemLookup>(
    reader: &R,
    lookup: &L,
    request: &VerifyRequest,
    letters: Option<&[Coordinates]>,
) -> Result<(VerifyReport, Vec<Difference>), ReadError> {
    use futures_util::{StreamExt, TryStreamExt, stream};
    let mut verifier = read_topic(reader, request, letters).await?;
    let keys = verifier.keys();
    let mut pages = stream::iter(keys.chunks(LOOKUP_BATCH))
        .map(|ids| lookup.get_items(ids))
        .buffer_unordered(LOOKUPS_IN_FLIGHT);
    while let Some(items) = pages.try_next().await? {
        for item in items {
            verifier.observe_item(item);
        }
    }
    Ok(verifier.finish(&request.table_name, &request.topic, request.strict))
}

/// Empty answers in a row below a partition's end after which the rest of it holds no record.
/// Below the high watermark every record can be read, and a fetch returns megabytes of batches:
/// an empty answer means only transaction markers are left (a producer with exactly-once, as
/// ksqlDB's can be), which the client drops. Twice, so that a broker's odd empty answer is not
/// taken for it.
const EMPTY_FETCHES: u32 = 2;

async fn read_partition<R: TopicReader>(
    reader: &R,
    topic: &str,
    range: PartitionRange,
    mut each: impl FnMut(&SourceRecord),
) -> Result<(), ReadError> {
    let mut offset = range.start;
    let mut empty = 0;
    while offset < range.end && empty < EMPTY_FETCHES {
        let records = reader.fetch(topic, range.partition, offset).await?;
        let mut next = offset;
        for record in records.iter().filter(|r| r.coordinates.offset >= offset) {
            if record.coordinates.offset >= range.end {
                break;
            }
            each(record);
            next = record.coordinates.offset + 1;
        }
        empty = if next == offset { empty + 1 } else { 0 };
        offset = next;
    }
    Ok(())
}

/// What a repair did for one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Repaired {
    /// The topic's record was written.
    Written,
    /// Something at least as new was stored meanwhile: nothing written.
    SkippedNewer,
    /// It could not be written (or read back from the topic): why.
    Failed(String),
}

/// Writes the topic's newest record of each repairable difference through `store`'s
/// [`RecordStore::rewrite`]: the sink's conditional write, which also puts right an item of the
/// very same record, and never overwrites a newer one.
pub async fn repair<R: TopicReader, W: RecordStore>(
    reader: &R,
    store: &W,
    table: Table,
    epoch: u32,
    differences: &[Difference],
) -> Vec<(Difference, Repaired)> {
    let mut done = Vec::new();
    for difference in differences.iter().filter(|d| d.class.is_repairable()) {
        let outcome = match repair_one(reader, store, table, epoch, difference).await {
            Ok(outcome) => outcome,
            Err(why) => Repaired::Failed(why),
        };
        done.push((difference.clone(), outcome));
    }
    done
}

async fn repair_one<R: TopicReader, W: RecordStore>(
    reader: &R,
    store: &W,
    table: Table,
    epoch: u32,
    difference: &Difference,
) -> Result<Repaired, String> {
    let Some(at) = difference.topic.as_ref().and_then(|s| s.coordinates.as_ref()) else {
        return Err("no record in the topic to write".into());
    };
    let records = reader
        .fetch(&at.topic, at.partition, at.offset)
        .await
        .map_err(|e| crate::error_chain(&e))?;
    let Some(record) = records.iter().find(|r| r.coordinates.offset == at.offset) else {
        return Err(format!("{} is no longer in the topic", at.place()));
    };
    let mut write: Write = match map_record(table, record) {
        Mapped::Write(w) if w.id == difference.key => w,
        other => return Err(format!("the record no longer maps to this key: {other:?}")),
    };
    write.coordinates.epoch = epoch;
    match store.rewrite(&write).await {
        Ok(Applied::Applied | Applied::Adopted) => Ok(Repaired::Written),
        Ok(Applied::Stale { .. }) => Ok(Repaired::SkippedNewer),
        Err(e) => Err(crate::error_chain(&e)),
    }
}

/// The report as JSON, with the repair's outcome per key when there was one.
pub fn repair_json(done: &[(Difference, Repaired)]) -> Value {
    let rows: Vec<Value> = done
        .iter()
        .map(|(d, r)| json!({"key": d.key, "class": d.class, "outcome": r}))
        .collect();
    let count = |want: fn(&Repaired) -> bool| done.iter().filter(|(_, r)| want(r)).count();
    json!({
        "written": count(|r| matches!(r, Repaired::Written)),
        "skippedNewer": count(|r| matches!(r, Repaired::SkippedNewer)),
        "failed": count(|r| matches!(r, Repaired::Failed(_))),
        "keys": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::record::Field;

    const TOPIC: &str = "aws.ksqldb.seatool.agg.State_Plan";

    fn record(key: &str, value: Option<&str>, partition: i32, offset: i64) -> SourceRecord {
        SourceRecord {
            coordinates: Coordinates {
                topic: TOPIC.into(),
                partition,
                offset,
                timestamp: 1_000 + offset,
                epoch: 0,
            },
            key: Field::Text(format!("\"{key}\"")),
            value: value.map_or(Field::Null, |v| Field::Text(v.into())),
        }
    }

    /// The item the sink would store for `r`, as the table gives it back.
    fn stored(r: &SourceRecord) -> TableItem {
        let Mapped::Write(w) = map_record(Table::Seatool, r) else {
            panic!("{r:?} does not map to a write")
        };
        let (deleted, content) = match &w.op {
            WriteOp::Put(fields) => (false, content_hash(fields)),
            WriteOp::Delete => (true, content_hash(&Map::new())),
        };
        TableItem {
            id: w.id,
            coordinates: Some(w.coordinates),
            deleted,
            content,
        }
    }

    fn verdict(records: &[SourceRecord], items: Vec<TableItem>) -> VerifyReport {
        let mut v = Verifier::new(Table::Seatool, 0, 10);
        for r in records {
            v.observe_record(r);
        }
        for i in items {
            v.observe_item(i);
        }
        v.finish("t", TOPIC, false).0
    }

    fn nonzero(report: &VerifyReport) -> Vec<(&'static str, u64)> {
        report
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| (*c, *n))
            .collect()
    }

    #[test]
    fn the_table_the_sink_would_leave_is_clean() {
        let records = [
            record("A", Some(r#"{"v":1}"#), 0, 0),
            record("A", Some(r#"{"v":2}"#), 0, 1),
            record("B", Some(r#"{"v":1.50}"#), 1, 0),
            record("C", Some(r#"{"v":1}"#), 0, 2),
            record("C", None, 0, 3),
        ];
        let items = vec![stored(&records[1]), stored(&records[2]), stored(&records[4])];
        let report = verdict(&records, items);
        assert_eq!(nonzero(&report), vec![]);
        assert!(!report.has_loss());
        assert_eq!(
            (report.records, report.keys, report.items, report.tombstones),
            (5, 3, 3, 1)
        );
        // A tombstone whose marker has expired is no difference either.
        assert_eq!(nonzero(&verdict(&records[4..], vec![])), vec![]);
    }

    #[test]
    fn each_kind_of_difference_falls_in_its_own_class() {
        let put = |k, v, o| record(k, Some(v), 0, o);
        let newest = [
            put("missing", r#"{"v":1}"#, 10),
            put("missing-over-tombstone", r#"{"v":1}"#, 11),
            put("regressed", r#"{"v":2}"#, 12),
            record("resurrected", None, 0, 13),
            put("mismatched", r#"{"v":1}"#, 14),
            put("ahead", r#"{"v":1}"#, 15),
            put("over-old-service", r#"{"v":1}"#, 16),
            record("tombstone-regressed", None, 0, 17),
        ];
        let older = |key: &str, value: Option<&str>| stored(&record(key, value, 0, 1));
        let mut mismatched = stored(&newest[4]);
        mismatched.content ^= 1;
        let items = vec![
            older("missing-over-tombstone", None),
            older("regressed", Some(r#"{"v":1}"#)),
            older("resurrected", Some(r#"{"v":1}"#)),
            mismatched,
            stored(&put("ahead", r#"{"v":9}"#, 99)),
            TableItem {
                id: "over-old-service".into(),
                coordinates: None,
                deleted: false,
                content: 0,
            },
            older("tombstone-regressed", None),
            stored(&put("extra", r#"{"v":1}"#, 5)),
            TableItem {
                id: "old-service-only".into(),
                coordinates: None,
                deleted: false,
                content: 0,
            },
            stored(&record("gone", None, 0, 6)), // a marker no record names: nothing to say
        ];
        let report = verdict(&newest, items);
        assert_eq!(
            nonzero(&report),
            vec![
                ("ahead", 1),
                ("extra", 1),
                ("foreign", 1),
                ("mismatched", 1),
                ("missing", 3),
                ("regressed", 2),
                ("resurrected", 1),
            ]
        );
        let keys = |class: &str| -> Vec<&str> { report.samples[class].iter().map(|d| d.key.as_str()).collect() };
        assert_eq!(
            keys("missing"),
            ["missing-over-tombstone", "over-old-service", "missing"]
        );
        assert_eq!(keys("regressed"), ["regressed", "tombstone-regressed"]);
        assert!(report.has_loss());
        assert_eq!(report.samples["missing"][2].table, None, "no item at all");
    }

    #[test]
    fn extra_is_a_loss_only_when_strict() {
        let mut v = Verifier::new(Table::Seatool, 0, 10);
        v.observe_item(stored(&record("x", Some("{}"), 0, 0)));
        let (report, _) = v.finish("t", TOPIC, false);
        assert_eq!((report.count(Class::Extra), report.has_loss()), (1, false));
        let mut v = Verifier::new(Table::Seatool, 0, 10);
        v.observe_item(stored(&record("x", Some("{}"), 0, 0)));
        assert!(v.finish("t", TOPIC, true).0.has_loss());
    }

    #[test]
    fn a_refused_record_is_expected_in_the_queue_and_lost_when_not_there() {
        let records = [
            record("A", Some(r#"{"v":1}"#), 0, 0),
            record("A", Some("not json"), 0, 1), // refused: the key's newest accepted is offset 0
            record("B", Some("[1]"), 0, 2),
        ];
        let mut v = Verifier::new(Table::Seatool, 0, 10);
        for r in &records {
            v.observe_record(r);
        }
        v.check_letters(&[records[1].coordinates.clone()]);
        v.observe_item(stored(&records[0]));
        let (report, _) = v.finish("t", TOPIC, false);
        assert_eq!(nonzero(&report), vec![("lost", 1), ("refused", 2)]);
        assert_eq!(report.samples["lost"][0].key, format!("{TOPIC}-0@2"));
    }

    #[test]
    fn the_newest_record_is_the_sinks_newest_across_partitions_and_epochs() {
        // Appian ids can arrive on several partitions: the timestamp orders them, as the sink's
        // condition does; the record read last is not necessarily the newest.
        let appian = |partition, offset, timestamp, status: &str| SourceRecord {
            coordinates: Coordinates {
                topic: "appian".into(),
                partition,
                offset,
                timestamp,
                epoch: 0,
            },
            key: Field::Null,
            value: Field::Text(format!(r#"{{"payload":{{"PCKG_ID":7,"S":"{status}"}}}}"#)),
        };
        let newer = appian(0, 5, 2_000, "new");
        let mut v = Verifier::new(Table::Appian, 2, 10);
        v.observe_record(&newer);
        v.observe_record(&appian(1, 50, 1_000, "old"));
        let Mapped::Write(mut w) = map_record(Table::Appian, &newer) else {
            panic!()
        };
        w.coordinates.epoch = 2;
        let WriteOp::Put(fields) = &w.op else { panic!() };
        v.observe_item(TableItem {
            id: "7".into(),
            content: content_hash(fields),
            coordinates: Some(w.coordinates.clone()),
            deleted: false,
        });
        assert_eq!(nonzero(&v.finish("t", "appian", false).0), vec![]);
    }

    #[test]
    fn an_item_read_back_compares_with_the_mapping_whatever_the_number_text() {
        let r = record("A", Some(r#"{"n":1.50,"s":"x","PK":"spoof"}"#), 0, 3);
        let item = json!({"PK": "A", "SK": "A", "n": 1.5, "s": "x",
                          "@kafka": {"topic": TOPIC, "partition": 0, "offset": 3, "timestamp": 1003, "epoch": 0}});
        let Value::Object(item) = item else { panic!() };
        let item = TableItem::from_json(item).unwrap();
        assert_eq!(item, stored(&r));
        assert_eq!(TableItem::from_json(Map::new()), None, "no PK: not a sink item");
    }

    #[test]
    fn a_window_with_a_loss_is_one_finding_per_table_critical_when_readers_see_wrong_data() {
        let records = [record("A", Some("{}"), 0, 0), record("B", Some("{}"), 0, 1)];
        let (clean, _) = {
            let mut v = Verifier::new(Table::Seatool, 0, 5);
            records.iter().for_each(|r| v.observe_record(r));
            records.iter().for_each(|r| v.observe_item(stored(r)));
            v.finish("seatool-t", TOPIC, false)
        };
        assert_eq!(divergence(&clean, "in the last hour"), None);
        let mut older = stored(&record("B", Some("{}"), 0, 0));
        older.id = "B".into();
        let regressed = verdict(&records, vec![stored(&records[0]), older]);
        let finding = divergence(&regressed, "in the last hour").unwrap();
        assert_eq!(
            (finding.category, finding.severity, finding.resource.as_deref()),
            (Category::SinkDiverged, Severity::Warning, Some("table/t"))
        );
        assert_eq!(
            finding.summary,
            format!(
                "Table t does not hold the newest record of every key of topic {TOPIC} in the last hour: 1 regressed (of 2 keys)."
            )
        );
        assert!(finding.detail.unwrap().contains("\"regressed\""));
        let missing = verdict(&records, vec![stored(&records[0])]);
        assert_eq!(divergence(&missing, "").unwrap().severity, Severity::Critical);
    }

    /// A partition of records at the given offsets (gaps: compaction, transaction markers),
    /// two records per fetch.
    struct Offsets(Vec<i64>);

    impl TopicReader for Offsets {
        async fn ranges(&self, _: &str, _: Option<i64>) -> Result<Vec<PartitionRange>, ReadError> {
            Ok(vec![PartitionRange {
                partition: 0,
                start: 0,
                end: 10,
            }])
        }

        async fn fetch(&self, _: &str, _: i32, offset: i64) -> Result<Vec<SourceRecord>, ReadError> {
            let page = self.0.iter().filter(|o| **o >= offset).take(2);
            Ok(page.map(|o| record("A", Some("{}"), 0, *o)).collect())
        }
    }

    #[test]
    fn a_partition_is_read_past_its_gaps_and_stops_at_its_end_or_its_markers() {
        let read = |offsets: Vec<i64>| {
            let mut seen = Vec::new();
            let reader = Offsets(offsets);
            let range = futures_executor::block_on(reader.ranges("t", None)).unwrap()[0];
            futures_executor::block_on(read_partition(&reader, "t", range, |r| seen.push(r.coordinates.offset)))
                .unwrap();
            seen
        };
        assert_eq!(
            read(vec![0, 3, 4, 8, 9, 10, 11]),
            [0, 3, 4, 8, 9],
            "not past the end found first"
        );
        assert_eq!(read(vec![1, 2, 5]), [1, 2, 5], "offsets 6 to 9 are transaction markers");
        assert_eq!(read(vec![]), Vec::<i64>::new());
    }

    #[test]
    fn records_past_the_committed_offset_are_pending_however_old() {
        // Keys A (offsets 0..5) and B (offset 6): the sink stored A's first three records.
        struct Two;
        impl TopicReader for Two {
            async fn ranges(&self, _: &str, _: Option<i64>) -> Result<Vec<PartitionRange>, ReadError> {
                Ok(vec![PartitionRange {
                    partition: 0,
                    start: 0,
                    end: 7,
                }])
            }
            async fn fetch(&self, _: &str, _: i32, offset: i64) -> Result<Vec<SourceRecord>, ReadError> {
                Ok((offset..7)
                    .map(|o| record(if o < 6 { "A" } else { "B" }, Some("{}"), 0, o))
                    .collect())
            }
        }
        let judged = |committed: &[(i32, i64)]| {
            let request = VerifyRequest {
                table: Table::Seatool,
                table_name: "t".into(),
                topic: TOPIC.into(),
                since: None,
                until: None,
                committed: committed.iter().copied().collect(),
                epoch: 0,
                segments: 1,
                samples: 5,
                strict: false,
                keep_differences: false,
            };
            let mut v = futures_executor::block_on(read_topic(&Two, &request, None)).unwrap();
            v.observe_item(stored(&record("A", Some("{}"), 0, 2)));
            let (report, _) = v.finish("t", TOPIC, false);
            (report.pending, nonzero(&report))
        };
        assert_eq!(
            judged(&[(0, 3)]),
            (4, vec![]),
            "behind the commit: nothing to judge yet"
        );
        assert_eq!(
            judged(&[(1, 0)]),
            (0, vec![("missing", 1), ("regressed", 1)]),
            "another partition's"
        );
        assert_eq!(judged(&[(0, 7)]), (0, vec![("missing", 1), ("regressed", 1)]));
    }

    #[test]
    fn samples_are_capped_and_kept_differences_are_not() {
        let records: Vec<SourceRecord> = (0..20).map(|i| record(&format!("k{i}"), Some("{}"), 0, i)).collect();
        let mut v = Verifier::new(Table::Seatool, 0, 3).keeping_differences();
        for r in &records {
            v.observe_record(r);
        }
        let (report, kept) = v.finish("t", TOPIC, false);
        assert_eq!(
            (
                report.count(Class::Missing),
                report.samples["missing"].len(),
                kept.len()
            ),
            (20, 3, 20)
        );
    }
}
