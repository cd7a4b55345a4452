//! `runbooks/migration.md`, end to end on real things: an "old" connector (the stand-in Lambda
//! sink, under the old service's name) has consumed part of a topic into a table; the new
//! connector is created STOPPED, takes the old consumer group's offsets with `connectorctl
//! offsets set --from-group`, is resumed, and `connectorctl verify` finds nothing missing,
//! regressed or resurrected in the adopted table.
//!
//! `scripts/test` starts the sink function for it (`E2E_MIGRATION_WATCH_URL`, writing
//! `E2E_MIGRATION_TABLE`, dead-lettering to `E2E_MIGRATION_DLQ`).

use std::time::Duration;

use connector_adapters::connect::HttpConnectApi;
use connector_core::connect::{ConnectApi, State};
use connector_tests::{
    connect_url, create_queue, create_sink_table, lambda_sink_connector, produce, put_connector_secret, scan, sdk,
    unique, wait_for,
};
use serde_json::Value;

mod common;
use common::{Run, ctl_env};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run through scripts/test"))
}

fn api() -> HttpConnectApi {
    HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap()
}

/// A Seatool State_Plan record as the ksqlDB topic carries it.
fn seatool(id: &str, title: &str) -> (Option<String>, Option<String>) {
    let value = serde_json::json!({"STATE_PLAN": {
        "ID_NUMBER": id, "STATE_CODE": "NC", "PLAN_TYPE": 122, "SUBMISSION_DATE": 1_700_092_800_000_i64,
        "SPW_STATUS_ID": 4, "TITLE_NAME": title, "STATUS_DATE": 1_700_179_200_000_i64}});
    (Some(format!("\"{id}\"")), Some(value.to_string()))
}

/// Creates `topic` with `partitions` partitions (the console producer spreads keys over them).
async fn create_topic(topic: &str, partitions: u32) {
    let (home, run) = (var("KAFKA_HOME"), var("KAFKA_RUN"));
    let out = tokio::process::Command::new("java")
        .arg(format!("-Dlog4j2.configurationFile={run}/log4j2.properties"))
        .args(["-cp", &format!("{home}/lib/*"), "org.apache.kafka.tools.TopicCommand"])
        .args([
            "--bootstrap-server",
            &var("KAFKA_BOOTSTRAP_SERVERS"),
            "--create",
            "--topic",
            topic,
        ])
        .args(["--partitions", &partitions.to_string(), "--replication-factor", "1"])
        .output()
        .await
        .expect("java TopicCommand");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits (90 s at most) until `name`'s group has committed `records` records in all.
async fn wait_committed(name: &str, records: i64) {
    let api = api();
    let done = wait_for(Duration::from_secs(90), || async {
        let offsets = api.sink_offsets(name).await.ok()?;
        (offsets.iter().map(|o| o.offset).sum::<i64>() == records).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "{name} did not commit {records} records within 90 s: {:?}",
        api.sink_offsets(name).await
    );
}

#[tokio::test]
async fn the_migration_runbook_moves_a_sink_to_the_new_connector_with_no_gap_and_no_rollback() {
    let (watch, table, dlq) = (
        var("E2E_MIGRATION_WATCH_URL"),
        var("E2E_MIGRATION_TABLE"),
        var("E2E_MIGRATION_DLQ"),
    );
    let sdk = sdk().await;
    create_sink_table(&sdk, &table).await;
    create_queue(&sdk, &dlq).await;
    let topic = unique("migration");
    create_topic(&topic, 3).await;
    let stage = unique("m").replace('-', "");
    let (old, new) = (
        format!("mako-connector-{stage}.lambda.seatoolData"),
        format!("mako-connect-{stage}.seatool-sink"),
    );
    let config = lambda_sink_connector(&topic, "sinkSeatoolData", &watch);
    let api = api();

    // The old service: its connector has consumed the first records (ids updated once over).
    let first: Vec<_> = (0..20)
        .map(|i| seatool(&format!("MIG-{i}"), "v1"))
        .chain((0..10).map(|i| seatool(&format!("MIG-{i}"), "v2")))
        .collect();
    api.put_config(&old, &config).await.unwrap();
    produce(&topic, &first).await;
    wait_committed(&old, 30).await;
    // Step: stop the old connector (its commits are final).
    api.stop(&old).await.unwrap();
    let stopped = wait_for(Duration::from_secs(30), || async {
        (api.status(&old).await.ok()?.connector.state == State::Stopped).then_some(())
    })
    .await;
    assert!(stopped.is_some(), "{old} did not stop: {:?}", api.status(&old).await);
    // The topic goes on while nobody consumes it: the new connector must pick these up.
    let during: Vec<_> = (10..20)
        .map(|i| seatool(&format!("MIG-{i}"), "v2"))
        .chain((20..30).map(|i| seatool(&format!("MIG-{i}"), "v1")))
        .collect();
    produce(&topic, &during).await;

    // The new stack's connector: created STOPPED, given the old group's offsets, resumed.
    let prefix = format!("{}/", unique("migration"));
    put_connector_secret(&sdk, &prefix, &new, &config).await;
    let contexts = std::env::temp_dir().join(unique("migration")).join("contexts.json");
    let bootstrap = var("KAFKA_BOOTSTRAP_SERVERS");
    let url = connect_url();
    let flags = [
        "--connect-url",
        url.as_str(),
        "--secret-prefix",
        prefix.as_str(),
        "--kafka-bootstrap",
        bootstrap.as_str(),
        "--kafka-plaintext",
        "--seatool-table",
        table.as_str(),
        "--seatool-topic",
        topic.as_str(),
    ];
    let ctl = |args: &[&str]| {
        let all: Vec<String> = flags.iter().chain(args).map(|s| s.to_string()).collect();
        let contexts = contexts.clone();
        async move {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            ctl_env(&contexts, &all, &[]).await
        }
    };
    let ok = |run: &Run, what: &str| assert_eq!(run.code, 0, "{what}: {}\n{}", run.stdout, run.stderr);
    ok(&ctl(&["ensure", &new, "--stopped"]).await, "ensure --stopped");
    let created = wait_for(Duration::from_secs(30), || async {
        (api.status(&new).await.ok()?.connector.state == State::Stopped).then_some(())
    })
    .await;
    assert!(created.is_some(), "{new} is not STOPPED: {:?}", api.status(&new).await);
    let group = format!("connect-{old}");
    let copied = ctl(&["offsets", "set", &new, "--from-group", &group, "--yes"]).await;
    ok(&copied, "offsets set --from-group");
    let mut took = api.sink_offsets(&new).await.unwrap();
    let mut had = api.sink_offsets(&old).await.unwrap();
    took.sort();
    had.sort();
    assert_eq!(took, had, "the new connector starts where the old one stopped");
    ok(&ctl(&["resume", &new]).await, "resume");
    wait_committed(&new, 50).await;

    // Verify: the table equals the topic, nothing missing, regressed or resurrected.
    let run = ctl(&["verify", "--table", &table, "--topic", &topic, "--dlq", &dlq, "--json"]).await;
    let report: Value = run.json();
    assert_eq!(run.code, 0, "{report:#}\n{}", run.stderr);
    for class in ["missing", "regressed", "resurrected", "lost"] {
        assert_eq!(report["counts"][class].as_u64().unwrap_or(0), 0, "{class}: {report:#}");
    }
    let ids: Vec<String> = scan(&sdk, &table).await.into_keys().collect();
    assert_eq!(ids.len(), 30, "every id once: {ids:?}");

    // Remove the old service's connector (its stack goes after verify).
    api.delete(&old).await.unwrap();
    api.delete(&new).await.unwrap();
}
