//! A measurement, not a test: `testConnectors` as the Lambda runs it (`handle`, the deadline of
//! a 60 s invocation) over 3 clusters × 50 connectors × 4 tasks, each connector reading its own
//! topic of 12 partitions on the real broker, lag on. Every REST call to the emulators and every
//! request to the broker (through a proxy that reads Kafka's frames) is answered 20 ms late; the
//! state and the alerts are in moto. Then the broker hangs on every Fetch: the run must still
//! end inside its deadline, every connector with nothing waiting judged.
//!
//! `scripts/bench` runs it with moto and the broker; it prints each run's wall time and the calls
//! it made (to stderr; stdout carries the runs' metric lines).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use connector_core::monitor::config::MonitorConfig;
use connector_lambdas::monitor::{deployed_fleet, handle};
use connector_tests::emulator::{Emulator, Faults};
use connector_tests::proxy::{KafkaFaults, KafkaProxy};
use connector_tests::{create_sink_table, put_connector_secret, sdk, unique};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use serde_json::{Value, json};

const CLUSTERS: usize = 3;
const CONNECTORS: usize = 50;
const TASKS: usize = 4;
const PARTITIONS: i32 = 12;
const LATENCY: Duration = Duration::from_millis(20);

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run through scripts/bench"))
}

/// The committed offset of partition `p` of connector `i`, whose topic has 2 records in each:
/// a third caught up, a third one behind, a third never committed (from the earliest).
fn committed(i: usize, p: i32) -> Option<i64> {
    match (i + p as usize) % 3 {
        0 => Some(2),
        1 => Some(1),
        _ => None,
    }
}

struct Totals {
    rest: BTreeMap<String, u64>,
    kafka: BTreeMap<String, u64>,
}

fn totals(emulators: &[Emulator], proxy: &KafkaProxy) -> Totals {
    let mut rest = BTreeMap::new();
    for (endpoint, n) in emulators.iter().flat_map(|e| e.calls()) {
        *rest.entry(endpoint).or_default() += n;
    }
    Totals {
        rest,
        kafka: proxy.calls(),
    }
}

/// `name n` for each count that grew from `before` to `after`.
fn grown(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    after
        .iter()
        .map(|(k, n)| (k, n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one invocation did: wall time, the calls since `before`, connectors judged.
fn print_run(label: &str, elapsed: Duration, report: &Value, before: &Totals, after: &Totals) {
    let entries: Vec<&Value> = report["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["report"]["connectors"].as_array().into_iter().flatten())
        .collect();
    let judged = entries.iter().filter(|c| c.get("lag").is_some()).count();
    let unjudged = entries.len() - judged;
    let age_unknown: usize = entries
        .iter()
        .filter_map(|c| c["lag"]["partitions"].as_array())
        .flatten()
        .filter(|p| p.get("ageUnknown").is_some())
        .count();
    let errors: Vec<String> = report["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("error").map(|e| format!("{}: {e}", c["cluster"])))
        .collect();
    eprintln!(
        "{label}: {:>6.2} s; {judged} connectors' lag judged, {unjudged} not ({age_unknown} partitions without their age); \
         REST calls: {}; Kafka requests: {}{}",
        elapsed.as_secs_f64(),
        grown(&before.rest, &after.rest),
        grown(&before.kafka, &after.kafka),
        if errors.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", errors.join("; "))
        }
    );
}

#[tokio::main]
async fn main() {
    let sdk = sdk().await;
    let kafka = rskafka::client::ClientBuilder::new(vec![var("KAFKA_BOOTSTRAP_SERVERS")])
        .build()
        .await
        .expect("the broker");
    let controller = kafka.controller_client().expect("controller");
    let run_id = unique("fleet");
    let prefix_of = |c: usize| format!("{run_id}/c{c}/");
    let trace = std::fs::read_to_string(format!(
        "{}/../events/connect/traces/data-exception.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("trace");

    eprintln!(
        "setting up {CLUSTERS} clusters x {CONNECTORS} connectors x {TASKS} tasks, {PARTITIONS} partitions each ({} topics, {} partitions, 2 records in each)",
        CLUSTERS * CONNECTORS,
        CLUSTERS * CONNECTORS * PARTITIONS as usize
    );
    let mut emulators = Vec::new();
    let mut clusters = Vec::new();
    for c in 0..CLUSTERS {
        let emu = Emulator::start().await;
        for i in 0..CONNECTORS {
            let name = format!("sink-{i:02}");
            let topic = format!("{run_id}.c{c}.t{i:02}");
            controller
                .create_topic(&topic, PARTITIONS, 1, 30_000)
                .await
                .expect("create topic");
            let config: BTreeMap<String, String> = [
                (
                    "connector.class",
                    "io.confluent.connect.aws.lambda.AwsLambdaSinkConnector",
                ),
                ("tasks.max", "4"),
                ("topics", topic.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            emu.add_running(&name, &config, TASKS);
            // One connector in ten has a failed task a restart cannot fix: alerts to send.
            if i % 10 == 0 {
                emu.fail_task(&name, 1, &trace, true);
            }
            let offsets: Vec<(String, i32, i64)> = (0..PARTITIONS)
                .filter_map(|p| committed(i, p).map(|o| (topic.clone(), p, o)))
                .collect();
            emu.set_offsets(&name, &offsets);
            put_connector_secret(&sdk, &prefix_of(c), &name, &config).await;
            for p in 0..PARTITIONS {
                let records = (0..2)
                    .map(|n| rskafka::record::Record {
                        key: Some(format!("k{n}").into_bytes()),
                        value: Some(b"{}".to_vec()),
                        headers: BTreeMap::new(),
                        timestamp: chrono::Utc::now(),
                    })
                    .collect();
                kafka
                    .partition_client(&topic, p, UnknownTopicHandling::Retry)
                    .await
                    .expect("partition")
                    .produce(records, Compression::NoCompression)
                    .await
                    .expect("produce");
            }
        }
        emu.set_faults(Faults {
            latency: LATENCY,
            ..Default::default()
        });
        clusters.push(json!({
            "CLUSTER": format!("{run_id}-c{c}"),
            "CONNECT_URL": emu.url,
            "CONFIG_SECRET_PREFIX": prefix_of(c),
            "KAFKA_BOOTSTRAP_SERVERS": format!("127.0.0.1:{}", var("KAFKA_DELAY_PROXY_PORT")),
            "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
            // The emulated commits stand still: without this, every connector with records
            // waiting would be consumer-stalled (and its tasks restarted) from the third run.
            "STALL_AFTER_RUNS": "60",
        }));
        emulators.push(emu);
    }
    let table = unique("fleet-monitor-state");
    create_sink_table(&sdk, &table).await;
    let topic_arn = connector_tests::sns_topic(&sdk, "fleet-alerts").await;
    let clusters = Value::Array(clusters).to_string();
    let configs = MonitorConfig::fleet_from_lookup(|k| match k {
        "CLUSTERS" => Some(clusters.clone()),
        "MONITOR_STATE_TABLE" => Some(table.clone()),
        "ALERT_TOPIC_ARN" => Some(topic_arn.clone()),
        "RUNBOOK_BASE_URL" => Some("https://runbooks.example/runbooks".into()),
        _ => None,
    })
    .expect("config");
    let fleet = deployed_fleet(configs, &sdk).expect("fleet");
    let port: u16 = var("KAFKA_DELAY_PROXY_PORT").parse().expect("port");
    let listener = var("KAFKA_DELAYED_LISTENER");

    eprintln!(
        "runs with every call 20 ms late (the Lambda's deadline: 60 s; RUN_BUDGET_SECONDS 45, half of it for lag reads):"
    );
    let proxy = KafkaProxy::start(
        port,
        &listener,
        KafkaFaults {
            latency: LATENCY,
            hang_fetch: false,
        },
    )
    .await;
    for run in 1..=4 {
        let before = totals(&emulators, &proxy);
        let started = Instant::now();
        let report = match handle(&fleet, &json!({}), Duration::from_secs(60)).await {
            Ok(report) => report,
            Err(e) => panic!("run {run} failed: {}: {}", e.error_type, e.error_message),
        };
        let label = if run == 1 {
            "run 1 (cold: secret values, states, leaders)".to_string()
        } else {
            format!("run {run}")
        };
        print_run(&label, started.elapsed(), &report, &before, &totals(&emulators, &proxy));
    }

    eprintln!("the broker hangs on every Fetch (20 ms on the rest):");
    proxy.set_faults(KafkaFaults {
        latency: LATENCY,
        hang_fetch: true,
    });
    for run in 1..=2 {
        let before = totals(&emulators, &proxy);
        let started = Instant::now();
        let outcome = handle(&fleet, &json!({}), Duration::from_secs(60)).await;
        let elapsed = started.elapsed();
        match outcome {
            Ok(report) => print_run(
                &format!("hung run {run}"),
                elapsed,
                &report,
                &before,
                &totals(&emulators, &proxy),
            ),
            Err(e) => eprintln!(
                "hung run {run}: {:.2} s, failed: {}: {}",
                elapsed.as_secs_f64(),
                e.error_type,
                e.error_message
            ),
        }
    }
}
