//! `sinkSeatoolData` and `sinkAppianData`: a batch from the Kafka-to-Lambda bridge into DynamoDB.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use connector_adapters::dynamodb::DynamoDbRecordStore;
use connector_adapters::sqs::SqsDeadLetterQueue;
use connector_core::metrics::{Unit, emf_line};
use connector_core::sink::ports::{DeadLetterQueue, RecordStore};
use connector_core::sink::{DecodeError, SinkError, SinkReport, Table, decode_batch, sink_batch};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::config::{ConfigError, Env};
use crate::logging;

/// A sink function's configuration, read once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// `TABLE_NAME`: the DynamoDB table to write.
    pub table_name: String,
    /// `DEAD_LETTER_QUEUE_URL`: the SQS queue for records that can never be stored.
    pub dead_letter_queue_url: String,
    /// `SINK_MAX_IN_FLIGHT` (default 16, 1–100): DynamoDB writes in flight at once.
    pub max_in_flight: NonZeroUsize,
    /// `METRICS_NAMESPACE` (default `connector`): the CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
    /// `DEAD_LETTER_BUCKET` (optional): where dead letters too large for SQS are kept whole,
    /// the queue message carrying the claim check; without it they are cut to fit.
    pub dead_letter_bucket: Option<String>,
    /// `SINK_TOPIC_EPOCH` (default 0): the topic's incarnation; raised by the operator after the
    /// topic was deleted and recreated, so that its restarted offsets win over the old ones.
    pub epoch: u32,
    /// `SINK_TOMBSTONE_TTL_DAYS` (default 35; 0 = never): how long a tombstone is kept.
    pub tombstone_ttl: Option<Duration>,
}

impl SinkConfig {
    /// Reads the configuration through `lookup`, naming every missing or invalid variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let table_name = env.required("TABLE_NAME", "the DynamoDB table this function writes");
        let dead_letter_queue_url = env.url(
            "DEAD_LETTER_QUEUE_URL",
            "the SQS queue URL for records that can never be stored",
        );
        let max_in_flight: usize = env.parsed("SINK_MAX_IN_FLIGHT", 16, "a whole number from 1 to 100", |n| {
            (1..=100).contains(n)
        });
        let metrics_namespace = env.parsed("METRICS_NAMESPACE", "connector".to_string(), "a namespace", |_| true);
        let dead_letter_bucket = env.parsed("DEAD_LETTER_BUCKET", String::new(), "a bucket name", |_| true);
        let epoch = env.parsed("SINK_TOPIC_EPOCH", 0u32, "a whole number from 0", |_| true);
        let ttl_days: u64 = env.parsed(
            "SINK_TOMBSTONE_TTL_DAYS",
            35,
            "a whole number of days, 0 for never",
            |d| *d <= 36_500,
        );
        env.finish()?;
        Ok(Self {
            table_name,
            dead_letter_queue_url,
            max_in_flight: NonZeroUsize::new(max_in_flight).unwrap_or(NonZeroUsize::MIN),
            metrics_namespace,
            dead_letter_bucket: Some(dead_letter_bucket).filter(|b| !b.is_empty()),
            epoch,
            tombstone_ttl: (ttl_days > 0).then(|| Duration::from_secs(ttl_days * 86_400)),
        })
    }
}

/// One AWS call with its retries takes at most this long: well inside the connector's 50 s
/// socket timeout and the function's 30 s, with room for the SDK's backoff.
pub const SDK_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per AWS call (standard retry mode: throttling, 5xx, timeouts, resets).
pub const SDK_ATTEMPTS: u32 = 4;

/// Why an invocation failed; the `errorType` Lambda reports is the variant's name.
#[derive(Debug, thiserror::Error)]
pub enum SinkFailure {
    /// The event is not a batch this function understands. Redelivery will not help, but
    /// failing is the only way to make the connector stop and someone look.
    #[error(transparent)]
    InvalidEvent(#[from] DecodeError),
    /// Storage failed; the connector must deliver the batch again.
    #[error("batch not stored, deliver it again: {}", logging::chain(.0))]
    NotStored(#[from] SinkError),
}

impl From<SinkFailure> for Diagnostic {
    fn from(failure: SinkFailure) -> Self {
        let error_type = match &failure {
            SinkFailure::InvalidEvent(_) => "InvalidEvent",
            SinkFailure::NotStored(SinkError::Store(_)) => "StoreUnavailable",
            SinkFailure::NotStored(SinkError::DeadLetter(_)) => "DeadLetterQueueUnavailable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: failure.to_string(),
        }
    }
}

/// Handles one invocation: decode, apply, print the metrics line, answer.
pub async fn handle<S: RecordStore, Q: DeadLetterQueue>(
    table: Table,
    config: &SinkConfig,
    store: &S,
    dead_letters: &Q,
    event: &Value,
) -> Result<Value, SinkFailure> {
    let started = Instant::now();
    let batch = decode_batch(event)
        .inspect_err(|e| tracing::error!(error = %e, "rejected sink event"))?
        .in_epoch(config.epoch);
    let result = sink_batch(table, &batch, store, dead_letters, config.max_in_flight).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(report) => {
            println!("{}", metrics_line(table, config, &report, millis));
            if let Some(first) = report.rewinds.first() {
                tracing::warn!(
                    table = table.name(),
                    rewinds = report.rewinds.len(),
                    id = first.id,
                    record = ?first.record,
                    stored = ?first.stored,
                    "records older by offset but newer by time than what is stored: was the topic recreated? \
                     (runbook topic-recreated)"
                );
            }
            let c = report.counts();
            tracing::info!(
                table = table.name(),
                records = report.records.len(),
                written = c.written,
                stale = c.stale,
                deleted = c.deleted,
                skipped = c.skipped,
                dead_lettered = c.dead_lettered,
                adopted = c.adopted,
                rewinds = c.rewinds,
                millis,
                "batch stored"
            );
            Ok(report.response())
        }
        Err(e) => {
            tracing::error!(table = table.name(), records = batch.records.len(), error = %logging::chain(&e), "batch not stored");
            Err(e.into())
        }
    }
}

fn metrics_line(table: Table, config: &SinkConfig, report: &SinkReport, millis: f64) -> String {
    let c = report.counts();
    let now = crate::now_millis();
    emf_line(
        &config.metrics_namespace,
        &[("Table", table.name())],
        &[
            ("SinkRecordsWritten", Unit::Count, c.written as f64),
            ("SinkRecordsStale", Unit::Count, c.stale as f64),
            ("SinkRecordsDeleted", Unit::Count, c.deleted as f64),
            ("SinkRecordsFailed", Unit::Count, c.dead_lettered as f64),
            ("SinkRecordsSkipped", Unit::Count, c.skipped as f64),
            ("SinkOffsetRewinds", Unit::Count, c.rewinds as f64),
            ("SinkItemsAdopted", Unit::Count, c.adopted as f64),
            ("SinkBatchMillis", Unit::Milliseconds, millis),
        ],
        now,
    )
}

/// The sink functions' `main`: configuration and clients once, then the runtime loop.
pub async fn run(table: Table) -> Result<(), lambda_runtime::Error> {
    logging::init();
    let config = SinkConfig::from_lookup(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = connector_adapters::aws::load_sdk_config(SDK_CALL_TIMEOUT, SDK_ATTEMPTS).await;
    let store = DynamoDbRecordStore::new(connector_adapters::dynamodb::Client::new(&sdk), &config.table_name)
        .with_tombstone_ttl(config.tombstone_ttl);
    let mut dead_letters = SqsDeadLetterQueue::new(
        connector_adapters::sqs::Client::new(&sdk),
        &config.dead_letter_queue_url,
    );
    if let Some(bucket) = &config.dead_letter_bucket {
        dead_letters = dead_letters.with_claim_checks(connector_adapters::sqs::s3_client(&sdk), bucket);
    }
    let (config, store, dead_letters) = (&config, &store, &dead_letters);
    // The runtime logs a failed invocation's error with `Debug`; a `Diagnostic` keeps that to
    // one line instead of the SDK's raw HTTP response.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(table, config, store, dead_letters, &event.payload)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_reads_defaults_and_names_every_bad_variable() {
        let ok = SinkConfig::from_lookup(lookup(&[
            ("TABLE_NAME", "seatool"),
            ("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/dlq"),
        ]))
        .unwrap();
        assert_eq!(ok.max_in_flight.get(), 16);
        assert_eq!(ok.metrics_namespace, "connector");
        assert_eq!(
            (ok.epoch, ok.tombstone_ttl),
            (0, Some(Duration::from_secs(35 * 86_400)))
        );

        let err = SinkConfig::from_lookup(lookup(&[("DEAD_LETTER_QUEUE_URL", "dlq"), ("SINK_MAX_IN_FLIGHT", "0")]))
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 3, "{text}");
        assert!(text.contains("TABLE_NAME is not set"), "{text}");
        assert!(text.contains("DEAD_LETTER_QUEUE_URL must be an http(s) URL"), "{text}");
        assert!(
            text.contains("SINK_MAX_IN_FLIGHT must be a whole number from 1 to 100, got \"0\""),
            "{text}"
        );
    }

    #[test]
    fn metrics_line_counts_each_outcome_under_its_metric() {
        use connector_core::sink::{Coordinates, InputFormat, Outcome};
        let at = |offset| Coordinates {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: 0,
            epoch: 0,
        };
        let outcomes = [
            Outcome::Written,
            Outcome::Written,
            Outcome::Stale,
            Outcome::Deleted,
            Outcome::DeadLettered,
        ];
        let report = SinkReport {
            format: InputFormat::Confluent,
            records: outcomes.iter().enumerate().map(|(i, o)| (at(i as i64), *o)).collect(),
            adopted: 3,
            rewinds: vec![connector_core::sink::Rewind {
                id: "x".into(),
                record: at(1),
                stored: at(9),
            }],
        };
        let config =
            SinkConfig::from_lookup(lookup(&[("TABLE_NAME", "x"), ("DEAD_LETTER_QUEUE_URL", "http://q")])).unwrap();
        let line: Value = serde_json::from_str(&metrics_line(Table::Appian, &config, &report, 7.5)).unwrap();
        assert_eq!(line["Table"], "appian");
        let got: Vec<f64> = [
            "SinkRecordsWritten",
            "SinkRecordsStale",
            "SinkRecordsDeleted",
            "SinkRecordsFailed",
            "SinkRecordsSkipped",
            "SinkOffsetRewinds",
            "SinkItemsAdopted",
            "SinkBatchMillis",
        ]
        .iter()
        .map(|m| line[m].as_f64().unwrap())
        .collect();
        assert_eq!(got, [2.0, 1.0, 1.0, 1.0, 0.0, 1.0, 3.0, 7.5]);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "connector");
    }

    #[test]
    fn failures_map_to_fixed_error_types() {
        let invalid = SinkFailure::from(decode_batch(&serde_json::json!("x")).unwrap_err());
        let d = Diagnostic::from(invalid);
        assert_eq!(d.error_type, "InvalidEvent");
        assert!(d.error_message.contains("unsupported sink event"));
    }
}
