//! `verifySinks`: on its schedule (hourly by default), each sink's last window of records —
//! produced between `VERIFY_WINDOW_MINUTES` + `VERIFY_SETTLE_MINUTES` and
//! `VERIFY_SETTLE_MINUTES` ago, so that what the sink has not written yet is not judged — is
//! compared with its table, key by key. Records at or past the offsets the sink's connector has
//! committed, as the monitor last measured them, are not judged either, however old: a sink that
//! lags (the monitor pages for that) has not lost what it has not reached (`connector_core::sink::verify::verify_window`, the
//! sink's own mapping and order). It emits `RecordsDiverged` per table and class, and keeps one
//! `sink-diverged` incident per table: opened (alerted) on a loss, alerted again if it becomes
//! critical, resolved when a later window is clean. It repairs nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use connector_adapters::kafka::KafkaBrokers;
use connector_adapters::sink_table::DynamoDbTableReader;
use connector_core::error_chain;
use connector_core::metrics::{Unit, emf_line};
use connector_core::monitor::alerting::alert::opening;
use connector_core::monitor::judge::finding::{Category, Finding};
use connector_core::monitor::lifecycle::{Cleared, Raised, clear, raise};
use connector_core::monitor::ports::{AlertPublisher, MonitorStore, StoredState};
use connector_core::monitor::time::iso8601;
use connector_core::sink::Table;
use connector_core::sink::verify::{
    Class, ItemLookup, TopicReader, VerifyReport, VerifyRequest, divergence, verify_window,
};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

use crate::config::{ConfigError, Env};
use crate::ecs_task_state::{EcsConfig, alerting_ports};

/// One sink to verify: whose mapping, its table, its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkTarget {
    /// The mapping.
    pub table: Table,
    /// The DynamoDB table.
    pub table_name: String,
    /// The topic its connector reads.
    pub topic: String,
    /// `<SINK>_TOPIC_EPOCH` (0): the topic's epoch, as that sink function's `SINK_TOPIC_EPOCH`.
    pub epoch: u32,
}

/// `verifySinks`' configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// `CLUSTER` (the name the monitor's state and alerts are kept under), `MONITOR_STATE_TABLE`,
    /// `ALERT_TOPIC_ARN`, `RUNBOOK_BASE_URL`, `METRICS_NAMESPACE`: as `alarmState`'s.
    pub alerting: EcsConfig,
    /// `SEATOOL_TABLE` + `SEATOOL_TOPIC`, `APPIAN_TABLE` + `APPIAN_TOPIC`: at least one sink.
    pub sinks: Vec<SinkTarget>,
    /// `VERIFY_WINDOW_MINUTES` (60): the records of how long are judged each run (its schedule).
    pub window: Duration,
    /// `VERIFY_SETTLE_MINUTES` (10): records younger than this are left to the next run.
    pub settle: Duration,
    /// `KAFKA_BOOTSTRAP_SERVERS`.
    pub kafka_bootstrap: String,
    /// `KAFKA_SECURITY_PROTOCOL` (SSL): `SSL` or `PLAINTEXT`.
    pub kafka_tls: bool,
    /// `KAFKA_TLS_CA_FILE`: CAs trusted besides the system's.
    pub kafka_tls_ca_file: Option<String>,
}

impl VerifyConfig {
    /// Reads the configuration through `lookup`, naming every missing or bad variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let minutes = |env: &mut Env<_>, name: &str, default: u64| {
            Duration::from_secs(
                60 * env.parsed(name, default, "whole minutes from 1 to 10080", |m| {
                    (1..=10_080).contains(m)
                }),
            )
        };
        let mut sinks = Vec::new();
        for (table, prefix) in [(Table::Seatool, "SEATOOL"), (Table::Appian, "APPIAN")] {
            if let Some(table_name) = env.optional(&format!("{prefix}_TABLE")) {
                let topic = env.required(&format!("{prefix}_TOPIC"), "the topic that sink's connector reads");
                let epoch = env.parsed(&format!("{prefix}_TOPIC_EPOCH"), 0u32, "a whole number", |_| true);
                sinks.push(SinkTarget {
                    table,
                    table_name,
                    topic,
                    epoch,
                });
            }
        }
        let config = Self {
            alerting: EcsConfig::read(&mut env),
            window: minutes(&mut env, "VERIFY_WINDOW_MINUTES", 60),
            settle: minutes(&mut env, "VERIFY_SETTLE_MINUTES", 10),
            kafka_bootstrap: env.required("KAFKA_BOOTSTRAP_SERVERS", "the brokers the sink connectors read"),
            kafka_tls: env.parsed("KAFKA_SECURITY_PROTOCOL", "SSL".to_string(), "SSL or PLAINTEXT", |p| {
                p == "SSL" || p == "PLAINTEXT"
            }) == "SSL",
            kafka_tls_ca_file: env.optional("KAFKA_TLS_CA_FILE"),
            sinks,
        };
        if config.sinks.is_empty() {
            // Reported with the rest: a function that verifies nothing is a configuration mistake.
            env.required("SEATOOL_TABLE", "a sink table to verify (or APPIAN_TABLE)");
        }
        env.finish()?;
        Ok(config)
    }
}

/// A sink could not be verified, or its incident not kept: the invocation fails (its errors
/// alarm pages), after the other sinks were verified.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VerifyFailure(String);

impl From<VerifyFailure> for Diagnostic {
    fn from(f: VerifyFailure) -> Self {
        Diagnostic {
            error_type: "SinkNotVerified".into(),
            error_message: f.0,
        }
    }
}

/// The `RecordsDiverged` lines of one verified window: every class, zeros too, so the dashboard
/// and any alarm on it have data every run.
pub fn metric_lines(namespace: &str, report: &VerifyReport, now: i64) -> Vec<String> {
    Class::ALL
        .iter()
        .map(|class| {
            emf_line(
                namespace,
                &[("Table", report.table.as_str()), ("Class", class.as_str())],
                &[("RecordsDiverged", Unit::Count, report.count(*class) as f64)],
                now,
            )
        })
        .collect()
}

/// One run: every configured sink's window verified, metrics printed, incidents kept.
pub async fn handle<R: TopicReader, L: ItemLookup, S: MonitorStore, P: AlertPublisher>(
    config: &VerifyConfig,
    reader: &R,
    lookup: impl Fn(&SinkTarget) -> L,
    store: &S,
    alerts: &P,
    now: i64,
) -> Result<Value, VerifyFailure> {
    let until = now - config.settle.as_millis() as i64;
    let since = until - config.window.as_millis() as i64;
    let window = format!("in the records produced from {} to {}", iso8601(since), iso8601(until));
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let measured = store.load(&config.alerting.cluster).await.map_err(|e| {
        VerifyFailure(format!(
            "cannot read the offsets the monitor measured: {}",
            error_chain(&e)
        ))
    })?;
    for sink in &config.sinks {
        let request = VerifyRequest {
            table: sink.table,
            table_name: sink.table_name.clone(),
            topic: sink.topic.clone(),
            since: Some(since),
            until: Some(until),
            committed: committed_offsets(&measured, &sink.topic),
            epoch: sink.epoch,
            segments: 1,
            samples: 5,
            strict: false,
            keep_differences: false,
        };
        let report = match verify_window(reader, &lookup(sink), &request, None).await {
            Ok((report, _)) => report,
            Err(e) => {
                let why = format!("{}: {}", sink.table_name, error_chain(&e));
                tracing::error!(table = %sink.table_name, error = %why, "window not verified");
                failures.push(why);
                results.push(json!({"table": sink.table_name, "topic": sink.topic, "error": error_chain(&e)}));
                continue;
            }
        };
        for line in metric_lines(&config.alerting.metrics_namespace, &report, now) {
            println!("{line}");
        }
        let finding = divergence(&report, &window);
        let incident = match keep_incident(config, store, alerts, &report, finding.as_ref(), now).await {
            Ok(state) => state,
            Err(why) => {
                failures.push(format!("{}: {why}", sink.table_name));
                "not kept"
            }
        };
        tracing::info!(table = %report.table, records = report.records, keys = report.keys,
                       counts = ?report.counts, incident, "window verified");
        results.push(
            json!({"table": report.table, "topic": report.topic, "records": report.records,
                            "pending": report.pending, "keys": report.keys, "counts": report.counts,
                            "incident": incident}),
        );
    }
    let out = json!({"window": {"from": iso8601(since), "to": iso8601(until)}, "tables": results});
    if failures.is_empty() {
        Ok(out)
    } else {
        Err(VerifyFailure(format!("not verified: {}", failures.join("; "))))
    }
}

/// Per partition of `topic`, the lowest position the monitor last measured for a connector that
/// reads it (its committed offset, or the earliest kept while it has none): the records below it
/// every such connector has delivered.
pub fn committed_offsets(state: &StoredState, topic: &str) -> BTreeMap<i32, i64> {
    let mut committed = BTreeMap::new();
    for connector in state.connectors.values() {
        for (at, position) in &connector.value.progress.positions {
            let Some(partition) = at
                .rsplit_once('/')
                .filter(|(t, _)| *t == topic)
                .and_then(|(_, p)| p.parse().ok())
            else {
                continue;
            };
            committed
                .entry(partition)
                .and_modify(|c: &mut i64| *c = (*c).min(*position))
                .or_insert(*position);
        }
    }
    committed
}

async fn keep_incident<S: MonitorStore, P: AlertPublisher>(
    config: &VerifyConfig,
    store: &S,
    alerts: &P,
    report: &VerifyReport,
    finding: Option<&Finding>,
    now: i64,
) -> Result<&'static str, String> {
    let (cluster, runbooks) = (&config.alerting.cluster, &config.alerting.runbook_base_url);
    match finding {
        Some(finding) => {
            let notice = opening(cluster, finding, now);
            match raise(store, alerts, cluster, runbooks, &notice, now).await {
                Ok(Raised::Opened) => Ok("opened"),
                Ok(Raised::Escalated) => Ok("escalated"),
                Ok(Raised::AlreadyOpen) => Ok("open"),
                Err(e) => Err(error_chain(&e)),
            }
        }
        None => {
            let mut clean = Finding::new(Category::SinkDiverged, "");
            clean.resource = Some(format!("table/{}", report.table));
            match clear(store, alerts, cluster, runbooks, &clean.incident_key(cluster), now).await {
                Ok(Cleared::Resolved | Cleared::ResolvedSilently) => Ok("resolved"),
                Ok(Cleared::NotOpen | Cleared::ResolvedElsewhere) => Ok("none"),
                Err(e) => Err(error_chain(&e)),
            }
        }
    }
}

/// `verifySinks`' `main`.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    use lambda_runtime::{LambdaEvent, service_fn};

    crate::logging::init();
    let config = VerifyConfig::from_lookup(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = connector_adapters::aws::load_sdk_config(Duration::from_secs(10), 3).await;
    let brokers = KafkaBrokers::with_security(
        &config.kafka_bootstrap,
        config.kafka_tls,
        config.kafka_tls_ca_file.as_deref(),
        Duration::from_secs(10),
    )?;
    let (store, alerts) = alerting_ports(&config.alerting, &sdk);
    let dynamodb = connector_adapters::dynamodb::Client::new(&sdk);
    let lookup = |sink: &SinkTarget| DynamoDbTableReader::new(dynamodb.clone(), &sink.table_name, false);
    let (config, brokers, store, alerts, lookup) = (&config, &brokers, &store, &alerts, &lookup);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        handle(config, brokers, lookup, store, alerts, crate::now_millis())
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<VerifyConfig, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        VerifyConfig::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 5] = [
        ("CLUSTER", "c"),
        ("MONITOR_STATE_TABLE", "s"),
        ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:a"),
        ("RUNBOOK_BASE_URL", "https://example.org/runbooks"),
        ("KAFKA_BOOTSTRAP_SERVERS", "b:9094"),
    ];

    #[test]
    fn the_commit_judged_is_the_lowest_of_the_connectors_that_read_the_topic() {
        use connector_core::monitor::judge::state::ConnectorState;
        use connector_core::monitor::ports::Versioned;
        let reading = |positions: &[(&str, i64)]| {
            let mut state = ConnectorState::default();
            state.progress.positions = positions.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            Versioned {
                value: state,
                version: 1,
            }
        };
        let mut state = StoredState::default();
        state
            .connectors
            .insert("old".into(), reading(&[("t/0", 40), ("t/1", 7), ("t2/0", 1)]));
        state
            .connectors
            .insert("new".into(), reading(&[("t/0", 30), ("t.x/2", 5)]));
        state.connectors.insert("source".into(), reading(&[]));
        assert_eq!(committed_offsets(&state, "t"), BTreeMap::from([(0, 30), (1, 7)]));
        assert!(committed_offsets(&state, "none").is_empty());
    }

    #[test]
    fn each_sink_needs_its_table_and_topic_and_one_sink_is_needed() {
        let both = config(
            &[
                &BASE[..],
                &[
                    ("SEATOOL_TABLE", "st"),
                    ("SEATOOL_TOPIC", "sp"),
                    ("APPIAN_TABLE", "at"),
                    ("APPIAN_TOPIC", "ap"),
                ],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(both.sinks.len(), 2);
        assert_eq!(
            (both.window, both.settle, both.kafka_tls),
            (Duration::from_secs(3600), Duration::from_secs(600), true)
        );
        let none = config(&BASE).unwrap_err().to_string();
        assert!(none.contains("SEATOOL_TABLE"), "{none}");
        let no_topic = config(&[&BASE[..], &[("APPIAN_TABLE", "at"), ("VERIFY_WINDOW_MINUTES", "0")]].concat())
            .unwrap_err()
            .to_string();
        assert!(
            no_topic.contains("APPIAN_TOPIC") && no_topic.contains("VERIFY_WINDOW_MINUTES"),
            "{no_topic}"
        );
    }
}
