//! One `testConnectors` watching several Connect clusters (`CLUSTERS`), through its Lambda
//! handler: the 4.x worker and the 3.6 worker that `scripts/test` starts as two Connect clusters
//! of the same broker, and an emulated worker that hangs. State in moto's DynamoDB, alerts read
//! back from an SQS queue subscribed to moto's SNS topic.

use std::time::Duration;

use connector_adapters::connect::HttpConnectApi;
use connector_adapters::deployed::deployed_fleet;
use connector_core::connect::{ConnectApi, State};
use connector_core::monitor::config::MonitorConfig;
use connector_core::monitor::ports::MonitorStore;
use connector_lambdas::monitor::handle;
use connector_tests::emulator::{Emulator, Faults};
use connector_tests::{
    alert_inbox, connect_url, create_sink_table, file_sink, put_connector_secret, read_alerts, sdk, task_is, unique,
};
use serde_json::{Value, json};

fn second_url() -> String {
    std::env::var("CONNECT_SECOND_URL")
        .expect("CONNECT_SECOND_URL is not set: run through scripts/test, which starts a second Connect cluster")
}

/// The report of `cluster` in a fleet's report.
fn report_of<'a>(report: &'a Value, cluster: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["cluster"] == cluster))
        .map(|c| &c["report"])
        .unwrap_or_else(|| panic!("no cluster {cluster} in {report}"))
}

fn connector_findings(report: &Value, name: &str) -> Vec<Value> {
    connector_tests::monitor::findings(report, name)
}

#[tokio::test]
async fn one_deployment_judges_two_real_clusters_and_a_hung_one_each_on_its_own() {
    let sdk = sdk().await;
    let table = unique("fleet-state");
    create_sink_table(&sdk, &table).await;
    let (topic_arn, queue) = alert_inbox(&sdk, "fleet-alerts").await;
    let (a, b, c) = (unique("fleet-a"), unique("fleet-b"), unique("fleet-c"));
    let prefix = |cluster: &str| format!("{cluster}/");

    // A: the 4.x worker, a task that fails on start (its file's directory is missing), budget 1.
    let failing = unique("fleet-failing");
    let gone = std::env::temp_dir().join(unique("fleet-gone")).join("out.txt");
    let failing_config = file_sink(&unique("topic"), &gone);
    put_connector_secret(&sdk, &prefix(&a), &failing, &failing_config).await;
    let api_a = HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap();
    api_a.put_config(&failing, &failing_config).await.unwrap();
    connector_tests::wait_status(
        &api_a,
        &failing,
        "FAILED",
        Duration::from_secs(60),
        task_is(State::Failed),
    )
    .await;

    // B: the 3.6 worker, a healthy sink.
    let healthy = unique("fleet-healthy");
    let healthy_config = file_sink(&unique("topic"), &std::env::temp_dir().join(format!("{healthy}.out")));
    put_connector_secret(&sdk, &prefix(&b), &healthy, &healthy_config).await;
    let api_b = HttpConnectApi::new(&second_url(), Duration::from_secs(10)).unwrap();
    api_b.put_config(&healthy, &healthy_config).await.unwrap();
    connector_tests::wait_status(
        &api_b,
        &healthy,
        "RUNNING",
        Duration::from_secs(60),
        task_is(State::Running),
    )
    .await;

    // C: a worker that accepts connections and never answers.
    let emu = Emulator::start().await;
    put_connector_secret(&sdk, &prefix(&c), "fleet-hung-sink", &failing_config).await;
    emu.set_faults(Faults {
        hang: true,
        ..Faults::default()
    });

    let clusters = json!([
        {"CLUSTER": a, "CONNECT_URL": connect_url(), "CONFIG_SECRET_PREFIX": prefix(&a), "RESTART_BUDGET": 1},
        {"CLUSTER": b, "CONNECT_URL": second_url(), "CONFIG_SECRET_PREFIX": prefix(&b)},
        {"CLUSTER": c, "CONNECT_URL": emu.url, "CONFIG_SECRET_PREFIX": prefix(&c)},
    ])
    .to_string();
    let env = |k: &str| match k {
        "CLUSTERS" => Some(clusters.clone()),
        "MONITOR_STATE_TABLE" => Some(table.clone()),
        "ALERT_TOPIC_ARN" => Some(topic_arn.clone()),
        "RUNBOOK_BASE_URL" => Some("https://runbooks.example/connector/runbooks".into()),
        "CONNECT_TIMEOUT_SECONDS" => Some("2".into()),
        _ => None,
    };
    let fleet = deployed_fleet(MonitorConfig::fleet_from_lookup(env).unwrap(), &sdk).unwrap();
    assert_eq!(fleet.members().len(), 3);

    let report = handle(&fleet, &json!({}), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("the run failed: {e:?}"));
    let names: Vec<&str> = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [a.as_str(), b.as_str(), c.as_str()],
        "every cluster, in order: {report}"
    );

    let f = &connector_findings(report_of(&report, &a), &failing)[0];
    assert_eq!(
        (f["category"].as_str(), f["action"].as_str()),
        (Some("task-failed"), Some("restart 1 of 1 requested")),
        "{f}"
    );
    let on_b = report_of(&report, &b);
    assert!(connector_findings(on_b, &healthy).is_empty(), "{on_b}");
    assert_eq!(on_b["desired"], json!([healthy]), "A's connector is not B's: {on_b}");
    let on_c = report_of(&report, &c);
    assert_eq!(on_c["findings"][0]["category"], "worker-unreachable", "{on_c}");

    let subjects: Vec<String> = read_alerts(&sdk, &queue).await.into_iter().map(|a| a.subject).collect();
    let mut expected = vec![
        format!("[CRITICAL] task-failed {a}/{failing}"),
        format!("[CRITICAL] worker-unreachable {c}"),
    ];
    let mut got = subjects.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "alerts keyed per cluster, none for B");

    // State is per cluster: A counted its restart, B holds nothing of A's.
    let store = connector_adapters::monitor_state::DynamoDbMonitorStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table.clone(),
    );
    let state_a = store.load(&a).await.unwrap();
    assert_eq!(state_a.connectors[&failing].value.restart.count, 1);
    assert!(!store.load(&b).await.unwrap().connectors.contains_key(&failing));

    // The runbook's payload names one cluster: only it runs. An unknown one is an error.
    let only_b = handle(&fleet, &json!({"cluster": b}), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(only_b["clusters"].as_array().unwrap().len(), 1, "{only_b}");
    let unknown = handle(&fleet, &json!({"cluster": "no-such-cluster"}), Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(unknown.error_type, "UnknownCluster", "{unknown:?}");

    // A's budget of 1 is its own: past the backoff, the same failure is restart-exhausted there.
    let later = connector_tests::now_millis() + 3 * 60_000;
    let again = fleet.members()[0].run_at(&json!({"cluster": a}), later).await.unwrap();
    let findings = connector_findings(&again.report, &failing);
    assert!(
        findings.iter().any(|f| f["category"] == "restart-exhausted"),
        "{}",
        again.report
    );

    api_a.delete(&failing).await.unwrap();
    api_b.delete(&healthy).await.unwrap();
}
