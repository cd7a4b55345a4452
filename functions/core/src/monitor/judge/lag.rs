//! Consumer lag: progress, not just status. A sink task can report RUNNING while it consumes
//! nothing (the zombie task); only its committed offsets against the topics' end offsets show it.
//!
//! Pure: the committed offsets (Kafka Connect, KIP-875), the partitions' ends and the oldest
//! waiting record's timestamp (the brokers) come in; the lag, the state to keep, findings and a
//! bounded restart come out. `now` is a parameter.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

use super::cause::Cause;
use super::finding::{Category, Finding};
use super::restart::{Decision, RestartHistory};
use super::state::{Action, ConnectorState, Evaluation, Progress, Settings};
use crate::connect::SinkOffset;
use crate::monitor::time::iso8601;
use crate::sink::ports::BoxError;

/// The fingerprint the restarts of a stalled consumer are counted under.
pub const STALLED_FINGERPRINT: &str = "consumer-stalled";

/// A partition's first kept and next offsets, from the brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionEnds {
    /// The earliest offset still kept (retention moves it).
    pub earliest: i64,
    /// The offset the next record will get (the high watermark).
    pub latest: i64,
}

/// The brokers failed or could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("Kafka brokers: {what}")]
pub struct BrokerError {
    /// What was being done.
    pub what: String,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

/// What the lag check needs from the Kafka brokers.
pub trait Brokers: Send + Sync {
    /// The ends of every partition of `topics` (a topic that does not exist is left out).
    fn ends(
        &self,
        topics: &[String],
    ) -> impl Future<Output = Result<BTreeMap<(String, i32), PartitionEnds>, BrokerError>> + Send;
    /// The names of every topic on the brokers (for a `topics.regex` connector).
    fn topics(&self) -> impl Future<Output = Result<Vec<String>, BrokerError>> + Send;
    /// For each (topic, partition, offset) of `wanted`, in its order: the timestamp (ms since
    /// the epoch) of the record at `offset`, or of the first after it when it was compacted
    /// away; `None` when there is none.
    fn timestamps_at(
        &self,
        wanted: &[(String, i32, i64)],
    ) -> impl Future<Output = Vec<Result<Option<i64>, BrokerError>>> + Send;
}

/// No brokers: the type of a monitor that measures no lag.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBrokers;

impl Brokers for NoBrokers {
    async fn ends(&self, _topics: &[String]) -> Result<BTreeMap<(String, i32), PartitionEnds>, BrokerError> {
        Ok(BTreeMap::new())
    }

    async fn topics(&self) -> Result<Vec<String>, BrokerError> {
        Ok(Vec::new())
    }

    async fn timestamps_at(&self, wanted: &[(String, i32, i64)]) -> Vec<Result<Option<i64>, BrokerError>> {
        wanted.iter().map(|_| Ok(None)).collect()
    }
}

/// Why a committed offset is not where the consumer resumes: it lies outside what the
/// partition holds, so the consumer starts again where `auto.offset.reset` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutOfRange {
    /// Past the partition's end: the topic was deleted and created again (or truncated).
    PastEnd,
    /// Below the earliest offset kept: retention removed records the consumer had not read.
    BeforeEarliest,
}

impl OutOfRange {
    fn says(self) -> &'static str {
        match self {
            OutOfRange::PastEnd => "past the end: the topic was deleted and created again, or truncated",
            OutOfRange::BeforeEarliest => "before the earliest offset kept: retention removed records it had not read",
        }
    }
}

/// One partition's lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset, when the connector has committed one.
    pub committed: Option<i64>,
    /// Set when the committed offset lies outside the partition (the consumer resets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_range: Option<OutOfRange>,
    /// Where the consumer stands: the committed offset, or where it starts without one or
    /// with one out of range (the earliest kept, Connect's default for sinks, or the end
    /// under `auto.offset.reset=latest`).
    pub position: i64,
    /// The partition's next offset.
    pub end: i64,
    /// Records waiting: `end - position`.
    pub records: i64,
    /// The timestamp of the oldest waiting record (ms), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_waiting_at: Option<i64>,
    /// Why that timestamp could not be read (the brokers did not answer the Fetch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_unknown: Option<String>,
}

/// A connector's lag over its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorLag {
    /// Records waiting over all partitions.
    pub records: i64,
    /// The age of the oldest waiting record (s): 0 with nothing waiting, `None` when records
    /// wait but no timestamp could be read.
    pub seconds: Option<i64>,
    /// Per partition.
    pub partitions: Vec<PartitionLag>,
    /// Why some partitions it may read are not measured (a `topics.regex` not understood here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

/// A connector's lag this run, or why it is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LagReading {
    /// Measured.
    Measured(ConnectorLag),
    /// Not measured this run (the reason names the call that failed).
    Unknown(String),
}

/// The partitions' lag from the committed offsets and the partitions' ends. Partitions the
/// brokers do not know (a deleted topic) are left out. A partition without a commit, or with
/// one outside what it holds, counts from where its consumer starts: the earliest offset kept,
/// or the end when it `starts_at_latest` (then nothing waits for it); never a negative lag.
pub fn partition_lags(
    committed: &[SinkOffset],
    ends: &BTreeMap<(String, i32), PartitionEnds>,
    starts_at_latest: bool,
) -> Vec<PartitionLag> {
    ends.iter()
        .map(|((topic, partition), e)| {
            let committed = committed
                .iter()
                .find(|c| &c.topic == topic && c.partition == *partition)
                .map(|c| c.offset);
            let out_of_range = match committed {
                Some(c) if c > e.latest => Some(OutOfRange::PastEnd),
                Some(c) if c < e.earliest => Some(OutOfRange::BeforeEarliest),
                _ => None,
            };
            let start = if starts_at_latest { e.latest } else { e.earliest };
            let position = match committed {
                Some(c) if out_of_range.is_none() => c,
                _ => start,
            };
            PartitionLag {
                topic: topic.clone(),
                partition: *partition,
                committed,
                out_of_range,
                position,
                end: e.latest,
                records: (e.latest - position).max(0),
                oldest_waiting_at: None,
                age_unknown: None,
            }
        })
        .collect()
}

/// The connector's lag as of `now`, from its partitions (with the oldest waiting records'
/// timestamps filled in where they were read).
pub fn connector_lag(partitions: Vec<PartitionLag>, now: i64) -> ConnectorLag {
    let records = partitions.iter().map(|p| p.records).sum();
    let oldest = partitions
        .iter()
        .filter(|p| p.records > 0)
        .filter_map(|p| p.oldest_waiting_at)
        .min();
    let seconds = match oldest {
        _ if records == 0 => Some(0),
        Some(at) => Some(((now - at) / 1000).max(0)),
        None => None,
    };
    ConnectorLag {
        records,
        seconds,
        partitions,
        unresolved: None,
    }
}

/// Why a connector's lag could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The worker has no offsets API (Kafka Connect before 3.5): nothing to measure against.
    #[error("{worker} has no GET /connectors/{{name}}/offsets (Kafka Connect before 3.5): consumer lag is unknown")]
    NoOffsetsApi {
        /// The worker's URL.
        worker: String,
    },
    /// The worker did not give the offsets.
    #[error("cannot read the committed offsets")]
    Connect(#[source] crate::connect::ConnectError),
    /// The brokers did not give the partitions' ends.
    #[error("consumer lag is unknown")]
    Brokers(#[source] BrokerError),
}

/// Measures one sink connector's lag as of `now`: its committed offsets from the worker, its
/// topics' ends (from `config` and the commits) and the oldest waiting records' timestamps from
/// the brokers. The monitor and `connectorctl describe` both call it.
pub async fn measure<A: crate::connect::ConnectApi, B: Brokers>(
    api: &A,
    brokers: &B,
    name: &str,
    config: &BTreeMap<String, String>,
    now: i64,
) -> Result<(Vec<SinkOffset>, ConnectorLag), MeasureError> {
    let committed = match api.sink_offsets(name).await {
        Ok(committed) => committed,
        Err(crate::connect::ConnectError::NotFound { .. }) => {
            return Err(MeasureError::NoOffsetsApi {
                worker: api.url().to_string(),
            });
        }
        Err(e) => return Err(MeasureError::Connect(e)),
    };
    let mut topics = topics_of(config, &committed);
    let mut unresolved = None;
    if let Some(pattern) = config.get(TOPICS_REGEX) {
        match topic_pattern(pattern) {
            Ok(regex) => {
                let listed = brokers.topics().await.map_err(MeasureError::Brokers)?;
                // Kafka's consumer leaves its internal topics out of a pattern subscription.
                topics.extend(listed.into_iter().filter(|t| !t.starts_with("__") && regex.is_match(t)));
                topics.sort();
                topics.dedup();
            }
            Err(why) => unresolved = Some(why),
        }
    }
    let ends = brokers.ends(&topics).await.map_err(MeasureError::Brokers)?;
    let mut partitions = partition_lags(&committed, &ends, Consumer::starts_at_latest(config));
    // The oldest waiting records' timestamps, asked together (the brokers group them by
    // leader). Without one the lag in records still stands; the lag in time is left unknown,
    // and why is kept (a broker failing Fetch is reported).
    let waiting: Vec<usize> = (0..partitions.len()).filter(|i| partitions[*i].records > 0).collect();
    let wanted: Vec<(String, i32, i64)> = waiting
        .iter()
        .map(|i| {
            let p = &partitions[*i];
            (p.topic.clone(), p.partition, p.position)
        })
        .collect();
    let ages = if wanted.is_empty() {
        Vec::new()
    } else {
        brokers.timestamps_at(&wanted).await
    };
    for (i, age) in waiting.into_iter().zip(ages) {
        match age {
            Ok(at) => partitions[i].oldest_waiting_at = at,
            Err(e) => partitions[i].age_unknown = Some(crate::error_chain(&e)),
        }
    }
    let mut lag = connector_lag(partitions, now);
    lag.unresolved = unresolved;
    Ok((committed, lag))
}

/// The config key of a sink connector's topic pattern.
const TOPICS_REGEX: &str = "topics.regex";

/// `topics.regex` as Kafka's consumer applies it: matched against the whole topic name. A
/// pattern beyond this matcher (Java's lookaround, possessive quantifiers) is an error saying
/// so, never a guess.
pub fn topic_pattern(pattern: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        format!(
            "topics.regex {pattern:?} cannot be read here ({e}): only the topics it has committed offsets on are measured"
        )
    })
}

/// Whether a sink connector of `config` reads `topic` (named in `topics`, or matched by
/// `topics.regex`); `None` when its pattern cannot be read here.
pub fn reads_topic(config: &BTreeMap<String, String>, topic: &str) -> Option<bool> {
    if topics_of(config, &[]).iter().any(|t| t == topic) {
        return Some(true);
    }
    match config.get(TOPICS_REGEX).map(|p| topic_pattern(p)) {
        Some(Ok(regex)) => Some(regex.is_match(topic)),
        Some(Err(_)) => None,
        None => Some(false),
    }
}

/// What the lag check needs to know of a connector besides its lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer<'a> {
    /// The connector.
    pub name: &'a str,
    /// Its task ids.
    pub tasks: Vec<i32>,
    /// The connector and every task say RUNNING.
    pub running: bool,
    /// Its consumer starts a partition it has never committed at the end
    /// (`consumer.override.auto.offset.reset=latest`): the records before are not waiting for it.
    pub starts_at_latest: bool,
}

impl Consumer<'_> {
    /// Whether `config` (the connector's running config) starts its consumer at the end.
    pub fn starts_at_latest(config: &BTreeMap<String, String>) -> bool {
        config
            .get("consumer.override.auto.offset.reset")
            .is_some_and(|v| v.eq_ignore_ascii_case("latest"))
    }
}

/// Judges one connector's progress: keeps its positions, reports `consumer-stalled` (and asks
/// for a bounded restart of its tasks) or `consumer-lagging` (reported only).
pub fn judge(consumer: &Consumer<'_>, lag: &ConnectorLag, settings: &Settings, now: i64, out: &mut Evaluation) {
    let name = consumer.name;
    let before = out.states.get(name).cloned().unwrap_or_default();
    let previous = &before.progress;
    // A stall is judged on partitions with a commit only: one without has no position that
    // could have stood still (a group that starts at the end, auto.offset.reset=latest, commits
    // nothing while nothing new arrives). Its records still wait for a consumer that starts at
    // the earliest (Connect's default for sinks), so they count for the lag in time, unless it
    // starts at the end; the report shows them either way, uncommitted.
    let committed = connector_lag(
        lag.partitions
            .iter()
            .filter(|p| p.committed.is_some())
            .cloned()
            .collect(),
        now,
    );
    let judged = if consumer.starts_at_latest { &committed } else { lag };
    let (mut progress, stalled, moved) = progress_of(consumer, &committed, judged, previous, settings);
    let muted = settings.mutes(name, before.muted_until, now);
    let waited = match judged.seconds {
        Some(s) => format!("{} records wait, the oldest for {s} s", judged.records),
        None => format!("{} records wait", judged.records),
    };
    let mut finding = |category: Category, summary: String, action: String| {
        let mut f = Finding::new(category, summary);
        f.connector = Some(name.to_string());
        f.detail = Some(detail(lag));
        f.action = Some(action);
        f.muted = muted;
        out.findings.push(f);
    };

    if !stalled.is_empty() {
        let policy = &settings.policy;
        let budget = policy.budget;
        let decision = if muted {
            None
        } else {
            Some(policy.decide(&previous.restart, Cause::Unknown, STALLED_FINGERPRINT, now))
        };
        let (summary, action) = stall_text(
            name,
            (&stalled, moved),
            &progress,
            &previous.restart,
            decision.as_ref(),
            &waited,
            budget,
        );
        finding(Category::ConsumerStalled, summary, action);
        match decision {
            Some(Decision::Restart { attempt }) => {
                out.actions.push(Action::RestartStalled {
                    connector: name.to_string(),
                    attempt,
                    budget,
                    tasks: consumer.tasks.clone(),
                });
                progress.restart = policy.record_restart(&previous.restart, STALLED_FINGERPRINT, now);
            }
            Some(Decision::GiveUp | Decision::TooMany { .. }) => {
                if let Some(f) = out.findings.last_mut() {
                    f.hold = Some(crate::monitor::judge::finding::Hold::GaveUp);
                }
                progress.restart = policy.record_failing(&previous.restart);
            }
            Some(_) => progress.restart = policy.record_failing(&previous.restart),
            None => {}
        }
    } else {
        if progress.lagging_runs >= settings.lag.lagging_after_runs {
            finding(
                Category::ConsumerLagging,
                format!(
                    "Connector {name} is {} s behind: {waited} (over {} s for {} runs)",
                    judged.seconds.unwrap_or_default(),
                    settings.lag.lagging_seconds,
                    progress.lagging_runs
                ),
                "reported only: the consumer moves; a restart would not make it faster".into(),
            );
        }
        if progress.still.is_empty() {
            progress.restart = settings.policy.record_healthy(&previous.restart, now);
        }
    }
    out.states
        .insert(name.to_string(), ConnectorState { progress, ..before });
}

/// The connector's progress this run, from its committed partitions (`judged` for the lag in
/// time): the partitions still for `STALL_AFTER_RUNS` runs (stalled), and how many moved.
fn progress_of(
    consumer: &Consumer<'_>,
    committed: &ConnectorLag,
    judged: &ConnectorLag,
    previous: &Progress,
    settings: &Settings,
) -> (Progress, Vec<String>, usize) {
    let positions: BTreeMap<String, i64> = committed
        .partitions
        .iter()
        .map(|p| (format!("{}/{}", p.topic, p.partition), p.position))
        .collect();
    // Still, per partition: records waiting, and at the same position as last run, while every
    // task says RUNNING (one zombie task's partitions stand while the others move).
    let still: BTreeMap<String, u32> = committed
        .partitions
        .iter()
        .filter(|p| p.records > 0 && consumer.running)
        .filter_map(|p| {
            let key = format!("{}/{}", p.topic, p.partition);
            (previous.positions.get(&key) == Some(&p.position))
                .then(|| (key.clone(), previous.still.get(&key).copied().unwrap_or(0) + 1))
        })
        .collect();
    let stalled: Vec<String> = still
        .iter()
        .filter(|(_, runs)| **runs >= settings.lag.stall_after_runs)
        .map(|(key, _)| key.clone())
        .collect();
    // Partitions that advanced since the last run: beside a stalled one, a single stuck task.
    let moved = committed
        .partitions
        .iter()
        .filter(|p| {
            previous
                .positions
                .get(&format!("{}/{}", p.topic, p.partition))
                .is_some_and(|before| *before != p.position)
        })
        .count();
    let lagging = judged.seconds.is_some_and(|s| s > settings.lag.lagging_seconds);
    let progress = Progress {
        positions,
        still_runs: still.values().copied().max().unwrap_or(0),
        lagging_runs: if lagging { previous.lagging_runs + 1 } else { 0 },
        restart: previous.restart.clone(),
        still,
    };
    (progress, stalled, moved)
}

/// The summary and the action of a `consumer-stalled` finding: all its partitions still, or
/// some still beside others that move (one stuck task).
fn stall_text(
    name: &str,
    (stalled, moved): (&[String], usize),
    progress: &Progress,
    restarts: &RestartHistory,
    decision: Option<&Decision>,
    waited: &str,
    budget: u32,
) -> (String, String) {
    let action = match decision {
        None => "muted: not restarted".to_string(),
        Some(Decision::Restart { attempt }) => format!("restart {attempt} of {budget} of its tasks"),
        Some(Decision::Wait { until }) => format!(
            "restart {} of {budget} already made; next restart not before {}",
            restarts.count,
            iso8601(*until)
        ),
        Some(_) => format!("restarts stopped: still stalled after {budget} restarts; a person must look"),
    };
    let summary = if moved == 0 {
        format!(
            "Connector {name} is RUNNING but has committed no progress for {} runs while {waited}",
            progress.still_runs
        )
    } else {
        format!(
            "Connector {name} is RUNNING but partition(s) {} committed no progress for {} runs while records \
                 wait there, and its other partitions move: one task is likely stuck. Kafka Connect does not \
                 say which task holds which partition, so its tasks are restarted ({waited})",
            stalled
                .iter()
                .map(|k| k.replace('/', "-"))
                .collect::<Vec<_>>()
                .join(", "),
            progress.still_runs
        )
    };
    (summary, action)
}

/// One line per partition with records waiting, then what could not be measured.
fn detail(lag: &ConnectorLag) -> String {
    let mut text = String::new();
    for p in lag.partitions.iter().filter(|p| p.records > 0) {
        let committed = match (p.committed, p.out_of_range) {
            (None, _) => "none".to_string(),
            (Some(c), None) => c.to_string(),
            (Some(c), Some(out)) => format!("{c} ({}; its consumer starts again at {})", out.says(), p.position),
        };
        text.push_str(&format!(
            "{}-{}: committed {committed}, end {}, {} waiting",
            p.topic, p.partition, p.end, p.records
        ));
        if let Some(at) = p.oldest_waiting_at {
            text.push_str(&format!(", oldest from {}", iso8601(at)));
        }
        text.push('\n');
    }
    if let Some(why) = &lag.unresolved {
        text.push_str(why);
        text.push('\n');
    }
    text
}

/// The topics a sink connector reads as far as its config (`topics`) and its commits say;
/// [`measure`] adds the brokers' topics that `topics.regex` matches.
pub fn topics_of(config: &BTreeMap<String, String>, committed: &[SinkOffset]) -> Vec<String> {
    let mut topics: Vec<String> = config
        .get("topics")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    topics.extend(committed.iter().map(|c| c.topic.clone()));
    topics.sort();
    topics.dedup();
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn ends(parts: &[(&str, i32, i64, i64)]) -> BTreeMap<(String, i32), PartitionEnds> {
        parts
            .iter()
            .map(|(t, p, earliest, latest)| {
                (
                    (t.to_string(), *p),
                    PartitionEnds {
                        earliest: *earliest,
                        latest: *latest,
                    },
                )
            })
            .collect()
    }

    fn offset(topic: &str, partition: i32, offset: i64) -> SinkOffset {
        SinkOffset {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    fn lag_of(committed: &[SinkOffset], e: &[(&str, i32, i64, i64)], oldest: Option<i64>, now: i64) -> ConnectorLag {
        let mut parts = partition_lags(committed, &ends(e), false);
        for p in parts.iter_mut().filter(|p| p.records > 0) {
            p.oldest_waiting_at = oldest;
        }
        connector_lag(parts, now)
    }

    fn consumer() -> Consumer<'static> {
        Consumer {
            name: "c",
            tasks: vec![0],
            running: true,
            starts_at_latest: false,
        }
    }

    #[test]
    fn lag_counts_from_the_commit_or_from_the_earliest_offset_when_there_is_none_or_it_is_past_the_end() {
        let lag = lag_of(
            &[offset("t", 0, 5), offset("t", 2, 90)],
            &[("t", 0, 0, 8), ("t", 1, 3, 10), ("t", 2, 0, 4)],
            Some(1_000),
            11_000,
        );
        let records: Vec<(i64, i64)> = lag.partitions.iter().map(|p| (p.position, p.records)).collect();
        // Partition 2's commit (90) is past its end (4): the topic was recreated.
        assert_eq!(records, vec![(5, 3), (3, 7), (0, 4)]);
        assert_eq!(lag.records, 14);
        assert_eq!(lag.seconds, Some(10));
        let none = lag_of(&[offset("t", 0, 8)], &[("t", 0, 0, 8)], None, 11_000);
        assert_eq!((none.records, none.seconds), (0, Some(0)));
        let unread = lag_of(&[], &[("t", 0, 0, 8)], None, 11_000);
        assert_eq!((unread.records, unread.seconds), (8, None));
    }

    #[test]
    fn a_commit_outside_the_partition_counts_from_where_the_consumer_starts_again_and_says_why() {
        // Committed 90 on a partition that now ends at 4 (recreated); 2 below an earliest of 5
        // (retention passed it).
        let committed = [offset("t", 0, 90), offset("t", 1, 2)];
        let e = ends(&[("t", 0, 0, 4), ("t", 1, 5, 9)]);
        let earliest = partition_lags(&committed, &e, false);
        let seen: Vec<_> = earliest
            .iter()
            .map(|p| (p.out_of_range, p.position, p.records))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Some(OutOfRange::PastEnd), 0, 4),
                (Some(OutOfRange::BeforeEarliest), 5, 4)
            ]
        );
        let text = detail(&connector_lag(earliest, 0));
        assert!(
            text.contains("t-0: committed 90 (past the end: the topic was deleted and created again"),
            "{text}"
        );
        assert!(
            text.contains("t-1: committed 2 (before the earliest offset kept: retention"),
            "{text}"
        );
        // auto.offset.reset=latest: the consumer starts again at the end, nothing waits.
        let latest = partition_lags(&committed, &e, true);
        let seen: Vec<_> = latest.iter().map(|p| (p.position, p.records)).collect();
        assert_eq!(seen, vec![(4, 0), (9, 0)]);
        // Without a commit at all: from the end too, under latest.
        let fresh = partition_lags(&[], &e, true);
        assert!(
            fresh.iter().all(|p| p.records == 0 && p.out_of_range.is_none()),
            "{fresh:?}"
        );
    }

    #[test]
    fn topics_regex_matches_whole_names_and_a_pattern_beyond_the_matcher_is_said_not_guessed() {
        let config = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let regex = config(&[("topics.regex", "aws\\.seatool\\..*")]);
        assert_eq!(reads_topic(&regex, "aws.seatool.plans"), Some(true));
        // Whole names only, as Kafka's consumer matches: no match inside a longer name.
        assert_eq!(reads_topic(&regex, "x.aws.seatool.plans"), Some(false));
        assert_eq!(reads_topic(&config(&[("topics", "a, b")]), "b"), Some(true));
        assert_eq!(reads_topic(&config(&[("topics", "a")]), "b"), Some(false));
        // Java lookahead: this matcher cannot read it, and says so.
        let java = config(&[("topics.regex", "(?!internal).*")]);
        assert_eq!(reads_topic(&java, "anything"), None);
        let why = topic_pattern("(?!internal).*").unwrap_err();
        assert!(
            why.contains("(?!internal).*") && why.contains("only the topics it has committed"),
            "{why}"
        );
    }

    #[test]
    fn a_consumer_without_commits_is_never_stalled_and_lagging_only_when_it_starts_at_the_earliest() {
        // No commit on any partition: no position that could have stood still, so no stall (and
        // no restart) however many runs; the records wait for a consumer that starts at the
        // earliest (Connect's default for sinks: lagging, a warning), not for one that starts at
        // the end (auto.offset.reset=latest: nothing).
        let settings = Settings::default();
        let never = lag_of(&[], &[("t", 0, 0, 9), ("t", 1, 0, 4)], Some(0), 20 * MIN);
        for (starts_at_latest, lagging) in [(false, true), (true, false)] {
            let latest = Consumer {
                starts_at_latest,
                ..consumer()
            };
            let mut eval = Evaluation::default();
            for run in 0..6 {
                eval.findings.clear();
                judge(&latest, &never, &settings, (20 + run) * MIN, &mut eval);
            }
            let categories: Vec<Category> = eval.findings.iter().map(|f| f.category).collect();
            assert!(!categories.contains(&Category::ConsumerStalled), "{categories:?}");
            assert_eq!(
                categories.contains(&Category::ConsumerLagging),
                lagging,
                "{categories:?}"
            );
            assert!(eval.actions.is_empty(), "{:?}", eval.actions);
        }
        assert!(never.partitions.iter().all(|p| p.committed.is_none()));
        // One partition committed and still, another never committed: stalled on the first.
        let mut eval = Evaluation::default();
        let half = lag_of(
            &[offset("t", 0, 5)],
            &[("t", 0, 0, 9), ("t", 1, 0, 4)],
            Some(0),
            10 * MIN,
        );
        for run in 0..4 {
            judge(&consumer(), &half, &settings, (10 + run) * MIN, &mut eval);
        }
        let stalled = eval.findings.iter().find(|f| f.category == Category::ConsumerStalled);
        assert!(
            stalled.is_some_and(|f| f.summary.contains("8 records wait")),
            "{:?}",
            eval.findings
        );
    }

    #[test]
    fn a_running_consumer_that_does_not_move_while_records_wait_is_stalled_after_three_runs_and_restarted() {
        let settings = Settings::default();
        let mut eval = Evaluation::default();
        let stuck = lag_of(&[offset("t", 0, 5)], &[("t", 0, 0, 9)], Some(0), 10 * MIN);
        for run in 0..3 {
            eval.findings.clear();
            eval.actions.clear();
            judge(&consumer(), &stuck, &settings, (10 + run) * MIN, &mut eval);
            assert!(eval.findings.is_empty(), "run {run}: {:?}", eval.findings);
        }
        judge(&consumer(), &stuck, &settings, 13 * MIN, &mut eval);
        assert_eq!(eval.findings[0].category, Category::ConsumerStalled);
        assert!(
            eval.findings[0].summary.contains("4 records wait"),
            "{}",
            eval.findings[0].summary
        );
        assert_eq!(
            eval.actions,
            vec![Action::RestartStalled {
                connector: "c".into(),
                attempt: 1,
                budget: 3,
                tasks: vec![0]
            }]
        );
        // The next run waits out the backoff (2 minutes after the first restart).
        eval.findings.clear();
        eval.actions.clear();
        judge(&consumer(), &stuck, &settings, 14 * MIN, &mut eval);
        assert!(eval.actions.is_empty());
        assert!(eval.findings[0].action.as_deref().unwrap().contains("not before"));
        // Moving again clears it.
        eval.findings.clear();
        let moved = lag_of(&[offset("t", 0, 9)], &[("t", 0, 0, 9)], None, 15 * MIN);
        judge(&consumer(), &moved, &settings, 15 * MIN, &mut eval);
        assert!(eval.findings.is_empty());
        assert_eq!(eval.states["c"].progress.still_runs, 0);
    }

    #[test]
    fn one_partition_standing_still_while_the_others_move_is_stalled_and_named() {
        // Partition 0 (a zombie task's) stays at 5 with records waiting; partition 1 moves.
        let settings = Settings::default();
        let mut eval = Evaluation::default();
        for run in 0..4 {
            eval.findings.clear();
            eval.actions.clear();
            let moving = 10 * (run + 1);
            let lag = lag_of(
                &[offset("t", 0, 5), offset("t", 1, moving)],
                &[("t", 0, 0, 9), ("t", 1, 0, moving + 3)],
                Some(0),
                (10 + run) * MIN,
            );
            judge(&consumer(), &lag, &settings, (10 + run) * MIN, &mut eval);
        }
        let stalled = eval
            .findings
            .iter()
            .find(|f| f.category == Category::ConsumerStalled)
            .unwrap_or_else(|| panic!("{:?}", eval.findings));
        assert!(
            stalled
                .summary
                .contains("partition(s) t-0 committed no progress for 3 runs")
                && stalled.summary.contains("other partitions move")
                && stalled
                    .summary
                    .contains("does not say which task holds which partition"),
            "{}",
            stalled.summary
        );
        assert_eq!(eval.actions.len(), 1, "its tasks restarted: {:?}", eval.actions);
        assert_eq!(
            eval.states["c"].progress.still.keys().collect::<Vec<_>>(),
            ["t/0"],
            "the moving partition is not still"
        );
    }

    #[test]
    fn nothing_waiting_or_not_every_task_running_is_never_stalled() {
        let settings = Settings::default();
        let mut eval = Evaluation::default();
        let idle = lag_of(&[offset("t", 0, 9)], &[("t", 0, 0, 9)], None, 0);
        let paused = Consumer {
            running: false,
            ..consumer()
        };
        let waiting = lag_of(&[offset("t", 0, 5)], &[("t", 0, 0, 9)], Some(0), 0);
        for run in 0..6 {
            judge(&consumer(), &idle, &settings, run * MIN, &mut eval);
            judge(&paused, &waiting, &settings, run * MIN, &mut eval);
        }
        assert!(eval.findings.is_empty(), "{:?}", eval.findings);
        assert!(eval.actions.is_empty());
    }

    #[test]
    fn a_consumer_that_moves_but_stays_far_behind_is_lagging_and_never_restarted() {
        let settings = Settings::default();
        let mut eval = Evaluation::default();
        for run in 0..3 {
            let lag = lag_of(
                &[offset("t", 0, 100 + run)],
                &[("t", 0, 0, 1_000)],
                Some(0),
                (20 + run) * MIN,
            );
            judge(&consumer(), &lag, &settings, (20 + run) * MIN, &mut eval);
        }
        let lagging: Vec<&Finding> = eval
            .findings
            .iter()
            .filter(|f| f.category == Category::ConsumerLagging)
            .collect();
        // Over 900 s from the first run; reported from the second.
        assert_eq!(lagging.len(), 2);
        assert!(lagging[0].summary.contains("1260 s behind"), "{}", lagging[0].summary);
        assert!(eval.actions.is_empty());
    }

    #[test]
    fn a_muted_stalled_consumer_is_reported_muted_and_not_restarted() {
        let settings = Settings {
            mute_all: true,
            ..Settings::default()
        };
        let mut eval = Evaluation::default();
        let stuck = lag_of(&[offset("t", 0, 5)], &[("t", 0, 0, 9)], Some(0), 0);
        for run in 0..4 {
            judge(&consumer(), &stuck, &settings, run * MIN, &mut eval);
        }
        assert!(eval.findings.iter().all(|f| f.muted));
        assert!(eval.actions.is_empty());
    }

    #[test]
    fn topics_come_from_the_config_and_the_commits() {
        let config = BTreeMap::from([("topics".to_string(), " a, b ,,".to_string())]);
        assert_eq!(
            topics_of(&config, &[offset("c", 0, 1), offset("a", 1, 1)]),
            vec!["a", "b", "c"]
        );
    }
}
