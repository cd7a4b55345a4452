//! A measurement, not a test: whole `testConnectors` runs against the Kafka Connect emulator
//! holding 500 connectors × 4 tasks (100 with a FAILED task that a restart cannot fix, so the
//! state stays the same between runs), with the state in DynamoDB and alerts on SNS (moto).
//! `scripts/bench` starts moto and runs it; it prints the wall time of each run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use connector_adapters::deployed::deployed_monitor;
use connector_core::monitor::config::MonitorConfig;
use connector_tests::emulator::Emulator;
use connector_tests::{create_sink_table, put_connector_secret, sdk, unique};
use serde_json::json;

const CONNECTORS: usize = 500;

#[tokio::main]
async fn main() {
    let sdk = sdk().await;
    let emu = Emulator::start().await;
    let trace = std::fs::read_to_string(format!(
        "{}/../events/connect/traces/data-exception.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("trace");
    let prefix = format!("{}/", unique("perf/connector"));
    for i in 0..CONNECTORS {
        let name = format!("sink-{i:03}");
        let config: BTreeMap<String, String> = [
            (
                "connector.class",
                "io.confluent.connect.aws.lambda.AwsLambdaSinkConnector",
            ),
            ("tasks.max", "4"),
            ("topics", "aws.ksqldb.seatool.agg.State_Plan"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        emu.add_running(&name, &config, 4);
        if i % 5 == 0 {
            emu.fail_task(&name, i % 4, &trace, true);
        }
        put_connector_secret(&sdk, &prefix, &name, &config).await;
    }
    let table = unique("perf-monitor-state");
    create_sink_table(&sdk, &table).await;
    let topic = connector_tests::sns_topic(&sdk, "perf-alerts").await;
    let (url, t, tb, p) = (emu.url.clone(), topic.clone(), table.clone(), prefix.clone());
    let config = MonitorConfig::from_lookup(move |k| match k {
        "CONNECT_URL" => Some(url.clone()),
        "CONFIG_SECRET_PREFIX" => Some(p.clone()),
        "MONITOR_STATE_TABLE" => Some(tb.clone()),
        "ALERT_TOPIC_ARN" => Some(t.clone()),
        "RUNBOOK_BASE_URL" => Some("https://runbooks.example/runbooks".into()),
        "RUN_BUDGET_SECONDS" => Some("300".into()),
        _ => None,
    })
    .expect("config");
    let monitor = deployed_monitor(config, &sdk).expect("monitor");
    let event = json!({"cluster": "perf-cluster"});
    for run in 1..=4 {
        let started = Instant::now();
        let report = monitor.run(&event).await.expect("run").report;
        let elapsed = started.elapsed();
        let alerts_sent = report["alerts"].as_array().map_or(0, Vec::len);
        eprintln!(
            "run {run}: {:>6.0} ms for {CONNECTORS} connectors x 4 tasks ({alerts_sent} alerts sent){}",
            elapsed.as_secs_f64() * 1000.0,
            if run == 1 {
                "; reads the 500 secret values, writes 500 states and opens one incident for the 100 failing on one cause (later runs list the secrets and read no value)"
            } else {
                ""
            }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
