//! `verifySinks` against the real broker (over TLS) and moto: a planted divergence in a window
//! opens one `sink-diverged` incident and alerts once; a repaired table resolves it.

use std::time::Duration;

use connector_adapters::monitor_state::DynamoDbMonitorStore;
use connector_adapters::sink_table::DynamoDbTableReader;
use connector_adapters::sns::SnsAlertPublisher;
use connector_core::sink::Table;
use connector_lambdas::ecs_task_state::EcsConfig;
use connector_lambdas::verify_sinks::{SinkTarget, VerifyConfig, handle};
use connector_tests::sink::Sink;
use connector_tests::{
    alert_inbox, confluent_batch, create_sink_table, produce, read_alerts, tls_brokers, topic_records, unique,
};

/// `verifySinks` of the seatool `sink` reading `topic` over the broker's TLS listener: an hour's
/// window settled a minute, its state and alerts under `cluster`.
fn verify_config(sink: &Sink, topic: &str, state_table: &str, alert_topic: &str, cluster: &str) -> VerifyConfig {
    VerifyConfig {
        alerting: EcsConfig {
            cluster: cluster.to_string(),
            state_table: state_table.to_string(),
            alert_topic_arn: alert_topic.to_string(),
            warning_topic_arn: None,
            runbook_base_url: "https://example.org/runbooks".into(),
            metrics_namespace: "connector-test".into(),
        },
        sinks: vec![SinkTarget {
            table: Table::Seatool,
            table_name: sink.config.table_name.clone(),
            topic: topic.to_string(),
            epoch: 0,
        }],
        window: Duration::from_secs(3600),
        settle: Duration::from_secs(60),
        kafka_bootstrap: std::env::var("KAFKA_TLS_BOOTSTRAP").unwrap(),
        kafka_tls: true,
        kafka_tls_ca_file: Some(connector_tests::monitor::broker_ca()),
    }
}

#[tokio::test]
async fn a_diverged_window_alerts_once_and_a_clean_one_resolves_it() {
    let sink = Sink::new(Table::Seatool).await;
    let sdk = sink.sdk.clone();
    let topic = unique("verify-sinks");
    produce(
        &topic,
        &[
            (Some("\"KEPT\"".to_string()), Some(r#"{"S":1}"#.to_string())),
            (Some("\"DROPPED\"".to_string()), Some(r#"{"S":1}"#.to_string())),
        ],
    )
    .await;
    let records = topic_records(&topic).await;
    // The sink missed DROPPED.
    sink.send_batch(&confluent_batch(&[&records[0]])).await.expect("stored");

    let state_table = unique("verify-sinks-state");
    create_sink_table(&sdk, &state_table).await;
    let (alert_topic, inbox) = alert_inbox(&sdk, "verify-sinks").await;
    let config = verify_config(
        &sink,
        &topic,
        &state_table,
        &alert_topic,
        &unique("verify-sinks-cluster"),
    );
    let store = DynamoDbMonitorStore::new(aws_sdk_dynamodb::Client::new(&sdk), &state_table);
    let alerts = SnsAlertPublisher::new(aws_sdk_sns::Client::new(&sdk), &alert_topic);
    let reader = |s: &SinkTarget| DynamoDbTableReader::new(aws_sdk_dynamodb::Client::new(&sdk), &s.table_name, true);
    let brokers = tls_brokers();
    let now = connector_adapters::now_millis();

    // Just produced: within the settle time, not judged yet.
    let early = handle(&config, &brokers, reader, &store, &alerts, now).await.unwrap();
    assert_eq!(
        (
            early["tables"][0]["pending"].as_u64(),
            early["tables"][0]["keys"].as_u64()
        ),
        (Some(2), Some(0)),
        "{early:#}"
    );
    assert_eq!(early["tables"][0]["incident"], "none");

    // Two minutes on, the records are in the window.
    let later = now + 120_000;
    let run = handle(&config, &brokers, reader, &store, &alerts, later).await.unwrap();
    assert_eq!(run["tables"][0]["counts"]["missing"], 1, "{run:#}");
    assert_eq!(run["tables"][0]["incident"], "opened", "{run:#}");
    let sent = read_alerts(&sdk, &inbox).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].subject.starts_with("[CRITICAL] sink-diverged"),
        "{}",
        sent[0].subject
    );
    assert_eq!(sent[0].attributes.get("state").map(String::as_str), Some("open"));
    assert!(
        sent[0].body.contains("1 missing") && sent[0].body.contains("DROPPED"),
        "{}",
        sent[0].body
    );
    assert!(
        sent[0].body.contains("sink-diverged.md"),
        "the runbook: {}",
        sent[0].body
    );

    let again = handle(&config, &brokers, reader, &store, &alerts, later + 60_000)
        .await
        .unwrap();
    assert_eq!(again["tables"][0]["incident"], "open");
    assert!(read_alerts(&sdk, &inbox).await.is_empty(), "one incident, one alert");

    // Repaired (the record stored): the next window is clean and resolves it.
    sink.send_batch(&confluent_batch(&[&records[1]])).await.expect("stored");
    let healed = handle(&config, &brokers, reader, &store, &alerts, later + 120_000)
        .await
        .unwrap();
    assert_eq!(healed["tables"][0]["incident"], "resolved", "{healed:#}");
    let sent = read_alerts(&sdk, &inbox).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].attributes.get("state").map(String::as_str), Some("resolved"));

    // A topic that is gone fails the invocation, naming it.
    let mut broken = config.clone();
    broken.sinks[0].topic = "no-such-topic-for-verify-sinks".into();
    let err = handle(&broken, &brokers, reader, &store, &alerts, later)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no topic no-such-topic-for-verify-sinks"),
        "{err}"
    );
}

/// A sink that lags past the settle time (an outage, a slow batch) has not lost what it has not
/// reached: records at or past the offsets its connector committed, as the monitor last measured
/// them, are pending, not `missing`. What it committed and did not store is a loss.
#[tokio::test]
async fn records_past_the_committed_offsets_the_monitor_measured_are_not_judged_missing() {
    use connector_core::monitor::judge::state::{ConnectorState, Progress};
    use connector_core::monitor::ports::MonitorStore;

    let sink = Sink::new(Table::Seatool).await;
    let sdk = sink.sdk.clone();
    let topic = unique("verify-sinks-lag");
    produce(
        &topic,
        &[
            (Some("\"STORED\"".to_string()), Some(r#"{"S":1}"#.to_string())),
            (Some("\"NOT-YET\"".to_string()), Some(r#"{"S":1}"#.to_string())),
        ],
    )
    .await;
    let records = topic_records(&topic).await;
    sink.send_batch(&confluent_batch(&[&records[0]])).await.expect("stored");

    let state_table = unique("verify-sinks-lag-state");
    create_sink_table(&sdk, &state_table).await;
    let (alert_topic, inbox) = alert_inbox(&sdk, "verify-sinks-lag").await;
    let cluster = unique("verify-sinks-lag-cluster");
    let config = verify_config(&sink, &topic, &state_table, &alert_topic, &cluster);
    let store = DynamoDbMonitorStore::new(aws_sdk_dynamodb::Client::new(&sdk), &state_table);
    let alerts = SnsAlertPublisher::new(aws_sdk_sns::Client::new(&sdk), &alert_topic);
    let reader = |s: &SinkTarget| DynamoDbTableReader::new(aws_sdk_dynamodb::Client::new(&sdk), &s.table_name, true);
    let brokers = tls_brokers();
    let partition = records[0].coordinates.partition;
    let committed = |offset: i64| ConnectorState {
        progress: Progress {
            positions: [(format!("{topic}/{partition}"), offset)].into(),
            ..Progress::default()
        },
        ..ConnectorState::default()
    };
    // The monitor measured the connector's commit past the first record only.
    assert!(
        store
            .save_connector(
                &cluster,
                "seatool-sink",
                &committed(records[1].coordinates.offset),
                None
            )
            .await
            .unwrap()
    );
    let later = connector_adapters::now_millis() + 120_000;
    let run = handle(&config, &brokers, reader, &store, &alerts, later).await.unwrap();
    assert_eq!(
        (
            run["tables"][0]["counts"]["missing"].as_u64().unwrap_or(0),
            run["tables"][0]["pending"].as_u64(),
            run["tables"][0]["keys"].as_u64()
        ),
        (0, Some(1), Some(1)),
        "the record past the commit is pending: {run:#}"
    );
    assert_eq!(run["tables"][0]["incident"], "none", "{run:#}");
    assert!(read_alerts(&sdk, &inbox).await.is_empty());

    // The connector committed the second record too, and the table does not hold it: lost.
    let version = store.load(&cluster).await.unwrap().connectors["seatool-sink"].version;
    assert!(
        store
            .save_connector(
                &cluster,
                "seatool-sink",
                &committed(records[1].coordinates.offset + 1),
                Some(version)
            )
            .await
            .unwrap()
    );
    let run = handle(&config, &brokers, reader, &store, &alerts, later + 60_000)
        .await
        .unwrap();
    assert_eq!(run["tables"][0]["counts"]["missing"], 1, "{run:#}");
    assert_eq!(run["tables"][0]["incident"], "opened", "{run:#}");
}
