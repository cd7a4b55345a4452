//! Consumer lag on the real broker (its TLS listener) and the real worker: progress, not just
//! status. The stand-in Lambda sink connector (a test component) can be told to stall while its
//! task stays RUNNING, or to answer slowly.

use std::collections::BTreeMap;
use std::time::Duration;

use connector_adapters::connect::HttpConnectApi;
use connector_adapters::kafka::{KafkaBrokers, tls_config};
use connector_core::connect::{ConnectApi, State};
use connector_core::monitor::judge::lag::Brokers;
use connector_tests::monitor::{Monitor, findings};
use connector_tests::{connect_url, file_sink, now_millis, produce, task_is, unique};
use serde_json::Value;

fn api() -> HttpConnectApi {
    HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap()
}

fn broker_ca() -> String {
    connector_tests::monitor::broker_ca()
}

fn tls_brokers(ca: Option<&str>) -> KafkaBrokers {
    let bootstrap = std::env::var("KAFKA_TLS_BOOTSTRAP").expect("KAFKA_TLS_BOOTSTRAP: run through scripts/test");
    KafkaBrokers::new(&bootstrap, Some(tls_config(ca).unwrap()), Duration::from_secs(5))
}

/// The connector's entry in a run's report.
fn entry(report: &Value, name: &str) -> Value {
    report["connectors"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not in the report: {report}"))
}

fn lag_records(report: &Value, name: &str) -> Option<i64> {
    entry(report, name)["lag"]["records"].as_i64()
}

/// Runs the monitor (as of `at()`) until the connector's lag in records is `want`, or fails
/// saying what it last saw.
async fn run_until_lag(m: &Monitor, name: &str, want: i64, what: &str, at: impl Fn() -> i64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let report = m.run_at(at()).await;
        if lag_records(&report, name) == Some(want) {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the lag of {name} never reached {want} records in 60 s; last report: {}",
            entry(&report, name)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn the_brokers_tls_listener_gives_partition_ends_and_the_oldest_waiting_records_timestamp() {
    let topic = unique("lag-topic");
    let before = now_millis();
    produce(
        &topic,
        &[(Some("a"), Some("1")), (Some("b"), Some("2")), (Some("c"), Some("3"))],
    )
    .await;
    let after = now_millis();
    let brokers = tls_brokers(Some(&broker_ca()));
    let ends = brokers.ends(std::slice::from_ref(&topic)).await.unwrap();
    let sum: i64 = ends.values().map(|e| e.latest - e.earliest).sum();
    assert_eq!(sum, 3, "{ends:?}");
    let (&(ref t, partition), e) = ends.iter().find(|(_, e)| e.latest > 0).unwrap();
    let at = brokers
        .timestamps_at(&[(t.clone(), partition, e.earliest)])
        .await
        .remove(0)
        .unwrap()
        .unwrap();
    assert!(
        (before - 1_000..=after).contains(&at),
        "{at} not within [{before}, {after}]"
    );
    assert!(
        brokers.ends(&["no-such-topic".to_string()]).await.unwrap().is_empty(),
        "a topic that does not exist has no partitions"
    );
}

/// Batches the Java producer compressed with each codec Kafka has give the oldest waiting
/// record's timestamp (lz4 and zstd through the pure-Rust stand-ins for rskafka's C codecs).
#[tokio::test]
async fn the_lag_in_time_is_read_from_batches_of_every_compression_codec() {
    let brokers = tls_brokers(Some(&broker_ca()));
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("lag-{codec}"));
        let before = now_millis();
        let records: Vec<(Option<String>, Option<String>)> = (0..50)
            .map(|i| {
                (
                    Some(format!("key-{i}")),
                    Some(format!("{{\"id\":{i},\"text\":\"{}\"}}", "x".repeat(i))),
                )
            })
            .collect();
        connector_tests::produce_compressed(&topic, &records, codec).await;
        let after = now_millis();
        let ends = brokers.ends(std::slice::from_ref(&topic)).await.unwrap();
        let (&(ref t, partition), e) = ends
            .iter()
            .find(|(_, e)| e.latest > 0)
            .expect("a partition with records");
        // The middle of a batch: the record is inside the compressed part.
        let at = brokers
            .timestamps_at(&[(t.clone(), partition, e.earliest + 25)])
            .await
            .remove(0)
            .unwrap_or_else(|e| panic!("{codec}: {}", connector_core::error_chain(&e)));
        let at = at.unwrap_or_else(|| panic!("{codec}: no timestamp for a record that exists"));
        assert!(
            (before - 1_000..=after).contains(&at),
            "{codec}: {at} not within [{before}, {after}]"
        );
    }
}

#[tokio::test]
async fn a_broker_certificate_no_ca_vouches_for_is_an_error_naming_the_brokers_not_a_hang() {
    let started = std::time::Instant::now();
    let err = tls_brokers(None).ends(&["any".to_string()]).await.unwrap_err();
    let text = connector_core::error_chain(&err);
    assert!(text.contains("cannot connect") && text.contains("bootstrap"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by the call timeout"
    );
}

#[tokio::test]
async fn a_file_sinks_lag_is_measured_and_falls_to_zero_once_it_has_consumed() {
    let m = Monitor::with_url(&connect_url()).await.with_lag(3);
    let (name, topic) = (unique("lag-file-sink"), unique("topic"));
    let config = file_sink(&topic, &std::env::temp_dir().join(format!("{name}.out")));
    m.desire(&name, &config).await;
    produce(&topic, &[(Some("a"), Some("1")), (Some("b"), Some("2"))]).await;
    api().put_config(&name, &config).await.unwrap();
    connector_tests::wait_status(
        &api(),
        &name,
        "RUNNING",
        Duration::from_secs(60),
        task_is(State::Running),
    )
    .await;
    let report = run_until_lag(&m, &name, 0, "consumed", now_millis).await;
    let lag = &entry(&report, &name)["lag"];
    assert_eq!(lag["seconds"], 0, "{lag}");
    assert_eq!(lag["partitions"][0]["committed"], 2, "{lag}");
    let out = m.run_full(now_millis()).await;
    let line = out
        .metrics
        .iter()
        .find(|l| l.contains("ConsumerLagRecords") && l.contains(&name))
        .unwrap_or_else(|| panic!("no lag metric for {name}: {:?}", out.metrics));
    let emf: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        (emf["ConsumerLagRecords"].as_f64(), emf["ConsumerLagSeconds"].as_f64()),
        (Some(0.0), Some(0.0))
    );
    assert!(findings(&out.report, &name).is_empty(), "{}", out.report);
    api().delete(&name).await.unwrap();
}

fn stand_in(topic: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    [
        ("connector.class", "connector.standin.lambda.LambdaSinkConnector"),
        ("tasks.max", "1"),
        ("topics", topic),
        ("aws.lambda.function.name", "never-called"),
        // Nothing answers there: with behavior.on.error=log each record is handed over and
        // logged, so the consumer moves unless it is told to stall.
        ("aws.lambda.endpoint.override", "http://127.0.0.1:9"),
        ("behavior.on.error", "log"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::test]
async fn stand_in_a_running_task_that_stops_consuming_is_consumer_stalled_restarted_and_heals_to_zero_lag() {
    use connector_tests::faults::Faults;
    let faults_url = Faults::for_connector("-").url().to_string();
    let m = Monitor::with_url(&faults_url).await.with_lag(2);
    let (name, topic) = (unique("stall-sink"), unique("topic"));
    let stall = std::env::temp_dir().join(unique("stall"));
    let config = stand_in(&topic, &[("standin.stall.file", &stall.to_string_lossy())]);
    m.desire(&name, &config).await;
    produce(&topic, &[(Some("a"), Some("1"))]).await;
    api().put_config(&name, &config).await.unwrap();
    run_until_lag(&m, &name, 0, "consumed before the stall", now_millis).await;

    std::fs::write(&stall, "").unwrap();
    produce(&topic, &[(Some("b"), Some("2")), (Some("c"), Some("3"))]).await;
    let minute = 60_000;
    let t0 = now_millis();
    let first = m.run_at(t0).await;
    assert_eq!(lag_records(&first, &name), Some(2), "{}", entry(&first, &name));
    assert_eq!(entry(&first, &name)["state"], "RUNNING");
    produce(&topic, &[(Some("d"), Some("4"))]).await;
    let second = m.run_at(t0 + minute).await;
    assert_eq!(
        lag_records(&second, &name),
        Some(3),
        "the lag grows: {}",
        entry(&second, &name)
    );
    let f = findings(&second, &name)
        .into_iter()
        .find(|f| f["category"] == "consumer-stalled")
        .unwrap_or_else(|| panic!("RUNNING, 3 records waiting, no progress for 2 runs: {second}"));
    assert_eq!(f["severity"], "critical");
    assert!(f["summary"].as_str().unwrap().contains("3 records wait"), "{f}");
    assert!(
        f["action"]
            .as_str()
            .unwrap()
            .starts_with("restart 1 of 3 of the stalled consumer: task 0 restarted"),
        "{f}"
    );
    let faults = Faults::for_connector(&name);
    let counts = faults.counts().await;
    assert_eq!(
        counts.get("POST /connectors/{name}/tasks/{id}/restart 2xx"),
        Some(&1),
        "{counts:?}"
    );
    let alerts = m.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0].subject,
        format!("[CRITICAL] consumer-stalled {}/{name}", m.cluster)
    );
    assert!(
        alerts[0].body.contains("runbooks/consumer-stalled.md")
            && alerts[0]
                .body
                .contains(&format!("{topic}-0: committed 1, end 4, 3 waiting")),
        "the partition detail and the runbook: {}",
        alerts[0].body
    );

    // Within the backoff it waits; the restarted task is still stalled by the file.
    let third = m.run_at(t0 + minute + 30_000).await;
    let f = findings(&third, &name)
        .into_iter()
        .find(|f| f["category"] == "consumer-stalled")
        .unwrap_or_else(|| panic!("still stalled: {third}"));
    assert!(f["action"].as_str().unwrap().contains("next restart not before"), "{f}");

    std::fs::remove_file(&stall).unwrap();
    let healed = run_until_lag(&m, &name, 0, "moving again once the stall is lifted", || {
        now_millis() + 3 * minute
    })
    .await;
    assert!(
        findings(&healed, &name)
            .iter()
            .all(|f| f["category"] != "consumer-stalled"),
        "{healed}"
    );
    assert!(
        m.alerts().await.iter().all(|a| a.attributes["state"] != "resolved"),
        "moving for no time yet: not resolved"
    );
    // Resolved once it has moved for the settle time (RESOLVE_AFTER_MINUTES, 10).
    run_until_lag(&m, &name, 0, "still moving ten minutes on", || {
        now_millis() + 14 * minute
    })
    .await;
    let resolved: Vec<_> = m
        .alerts()
        .await
        .into_iter()
        .filter(|a| a.attributes["state"] == "resolved")
        .collect();
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert!(resolved[0].subject.contains("consumer-stalled"), "{resolved:?}");
    let history = m.store_history(&name).await;
    assert!(
        history
            .iter()
            .any(|e| e.kind.as_str() == "restart" && e.fingerprint.as_deref() == Some("consumer-stalled")),
        "{history:?}"
    );
    api().delete(&name).await.unwrap();
}

#[tokio::test]
async fn stand_in_a_slow_consumer_falls_behind_and_is_consumer_lagging_never_restarted() {
    let m = Monitor::with_url(&connect_url()).await.with_lag(3);
    let (name, topic) = (unique("slow-sink"), unique("topic"));
    // One record per put(), each answered after 700 ms: it moves, slowly.
    let config = stand_in(
        &topic,
        &[
            ("standin.put.delay.ms", "700"),
            ("aws.lambda.batch.size", "1"),
            ("consumer.override.max.poll.records", "1"),
        ],
    );
    m.desire(&name, &config).await;
    let records: Vec<(Option<String>, Option<String>)> = (0..40)
        .map(|i| (Some(format!("k{i}")), Some(format!("v{i}"))))
        .collect();
    produce(&topic, &records).await;
    api().put_config(&name, &config).await.unwrap();
    connector_tests::wait_status(
        &api(),
        &name,
        "RUNNING",
        Duration::from_secs(60),
        task_is(State::Running),
    )
    .await;

    // As of 20 minutes from now, the waiting records are 20 minutes old: over 900 s.
    let later = || now_millis() + 20 * 60_000;
    let position = |report: &Value| entry(report, &name)["lag"]["partitions"][0]["position"].as_i64();
    let first = m.run_at(later()).await;
    let waiting = lag_records(&first, &name).expect("lag measured");
    assert!(waiting > 0, "{}", entry(&first, &name));
    // Records keep coming faster than it answers: it moves, and falls further behind.
    let more: Vec<(Option<String>, Option<String>)> = (40..100)
        .map(|i| (Some(format!("k{i}")), Some(format!("v{i}"))))
        .collect();
    produce(&topic, &more).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = m.run_at(later()).await;
    let behind = lag_records(&second, &name).expect("lag measured");
    assert!(behind > waiting, "the lag grows: {waiting} then {behind}");
    assert!(
        position(&second) > position(&first),
        "it moves: {}",
        entry(&second, &name)
    );
    let f = findings(&second, &name)
        .into_iter()
        .find(|f| f["category"] == "consumer-lagging")
        .unwrap_or_else(|| panic!("over 900 s behind for 2 runs: {second}"));
    assert_eq!(f["severity"], "warning");
    assert!(f["action"].as_str().unwrap().starts_with("reported only"), "{f}");
    assert!(
        entry(&second, &name)["actions"].as_array().unwrap().is_empty(),
        "lag alone is never restarted: {second}"
    );
    api().delete(&name).await.unwrap();
}

#[tokio::test]
async fn emulator_a_worker_without_the_offsets_api_says_lag_unknown_once_and_the_run_goes_on() {
    let emu = connector_tests::emulator::Emulator::start().await;
    emu.set_faults(connector_tests::emulator::Faults {
        no_offsets_api: true,
        ..Default::default()
    });
    let m = Monitor::with_url(&emu.url).await.with_lag(2);
    for name in ["old-a", "old-b"] {
        let config = file_sink("t", std::path::Path::new("/tmp/emulated.out"));
        m.desire(name, &config).await;
        emu.add_running(name, &config, 1);
    }
    for _ in 0..3 {
        let report = m.run().await;
        let unknown: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["summary"].as_str().unwrap_or("").contains("consumer lag is unknown"))
            .collect();
        assert_eq!(
            unknown.len(),
            1,
            "one finding for the run, not one per connector: {report}"
        );
        assert_eq!(unknown[0]["severity"], "info", "{report}");
        assert!(
            unknown[0]["summary"].as_str().unwrap().contains("before 3.5"),
            "{report}"
        );
        for name in ["old-a", "old-b"] {
            assert!(entry(&report, name)["lagUnknown"].is_string(), "{report}");
            assert!(findings(&report, name).is_empty(), "{report}");
        }
        assert_eq!(report["healthy"], true, "the rest of the run works: {report}");
    }
    assert!(m.alerts().await.is_empty(), "nothing to page for");
}

fn plain_bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect("KAFKA_BOOTSTRAP_SERVERS: run through scripts/test")
}

async fn create_topic(client: &rskafka::client::Client, name: &str, partitions: i32) {
    client
        .controller_client()
        .unwrap()
        .create_topic(name, partitions, 1, 10_000)
        .await
        .unwrap();
    wait_served(client, name, partitions).await;
}

async fn wait_served(client: &rskafka::client::Client, name: &str, partitions: i32) {
    // The broker names a new topic's leaders a moment before it serves their offsets; a test
    // that counts requests must not count the adapter's retry over that moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for partition in 0..partitions {
        loop {
            let served = match client
                .partition_client(name, partition, rskafka::client::partition::UnknownTopicHandling::Error)
                .await
            {
                // rskafka retries on its own; the bound keeps the deadline below ours.
                Ok(p) => matches!(
                    tokio::time::timeout(
                        Duration::from_secs(5),
                        p.get_offset(rskafka::client::partition::OffsetAt::Latest)
                    )
                    .await,
                    Ok(Ok(_))
                ),
                Err(_) => false,
            };
            if served {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name}[{partition}] was created but its offsets were not served within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A topic of `partitions` partitions, made on the broker's plain listener, into which a test
/// puts records partition by partition (the console producer picks the partition by key).
struct Partitioned {
    client: rskafka::client::Client,
    topic: String,
}

impl Partitioned {
    async fn create(prefix: &str, partitions: i32) -> Self {
        let client = rskafka::client::ClientBuilder::new(vec![plain_bootstrap()])
            .build()
            .await
            .unwrap();
        let topic = unique(prefix);
        create_topic(&client, &topic, partitions).await;
        Partitioned { client, topic }
    }

    /// Another topic (`name`) on the same broker, of `partitions` partitions.
    async fn sibling(&self, name: &str, partitions: i32) -> Self {
        let client = rskafka::client::ClientBuilder::new(vec![plain_bootstrap()])
            .build()
            .await
            .unwrap();
        create_topic(&client, name, partitions).await;
        Partitioned {
            client,
            topic: name.to_string(),
        }
    }

    /// Deletes the topic and creates it again, empty, as a team rebuilding its stream does.
    async fn recreate(&self, partitions: i32) {
        let controller = self.client.controller_client().unwrap();
        controller.delete_topic(&self.topic, 10_000).await.unwrap();
        // Deletion finishes in the background: creating the name again fails until it has.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match controller.create_topic(&self.topic, partitions, 1, 10_000).await {
                Ok(()) => return wait_served(&self.client, &self.topic, partitions).await,
                Err(e) => assert!(
                    std::time::Instant::now() < deadline,
                    "{} was not created again within 30 s of its deletion: {e}",
                    self.topic
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One record, stamped now, into `partition`.
    async fn produce_to(&self, partition: i32) {
        use rskafka::client::partition::{Compression, UnknownTopicHandling};
        let record = rskafka::record::Record {
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        };
        self.client
            .partition_client(&self.topic, partition, UnknownTopicHandling::Retry)
            .await
            .unwrap()
            .produce(vec![record], Compression::NoCompression)
            .await
            .unwrap();
    }
}

/// The tests that put a proxy on the broker's DELAYED listener, one at a time.
static DELAYED_LISTENER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A Kafka proxy with `faults` on the port the broker's DELAYED listener advertises, held for
/// this test alone: (the hold, the proxy, its port).
async fn delayed_proxy(
    faults: connector_tests::proxy::KafkaFaults,
) -> (
    tokio::sync::MutexGuard<'static, ()>,
    connector_tests::proxy::KafkaProxy,
    u16,
) {
    let hold = DELAYED_LISTENER.lock().await;
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}: run through scripts/test"));
    let port: u16 = var("KAFKA_DELAY_PROXY_PORT").parse().unwrap();
    let proxy = connector_tests::proxy::KafkaProxy::start(port, &var("KAFKA_DELAYED_LISTENER"), faults).await;
    (hold, proxy, port)
}

/// A connector's partitions' ends are read in one ListOffsets per broker and end, its waiting
/// partitions' oldest records in one Fetch per broker, and the metadata once for every
/// connector of the run (rskafka sent two ListOffsets and a Fetch per partition, each after a
/// metadata request of its own).
#[tokio::test]
async fn a_connectors_partition_ends_are_read_in_one_request_per_broker_and_end() {
    let (_hold, proxy, port) = delayed_proxy(Default::default()).await;
    let topic = Partitioned::create("per-broker", 12).await;
    for partition in [0, 5, 5, 11] {
        topic.produce_to(partition).await;
    }
    let other = topic.sibling(&unique("per-broker-other"), 3).await;
    let brokers = KafkaBrokers::new(&format!("127.0.0.1:{port}"), None, Duration::from_secs(5));
    let ends = brokers.ends(std::slice::from_ref(&topic.topic)).await.unwrap();
    assert_eq!(ends.len(), 12, "{ends:?}");
    let waiting: Vec<(i32, i64)> = ends
        .iter()
        .filter(|(_, e)| e.latest > e.earliest)
        .map(|((_, p), e)| (*p, e.latest - e.earliest))
        .collect();
    assert_eq!(waiting, vec![(0, 1), (5, 2), (11, 1)]);
    let calls = proxy.calls();
    assert_eq!(
        (calls.get("Metadata"), calls.get("ListOffsets")),
        (Some(&1), Some(&2)),
        "one broker: one metadata request, one ListOffsets per end: {calls:?}"
    );
    // The oldest waiting records' timestamps: one Fetch for the broker's three partitions.
    let wanted: Vec<(String, i32, i64)> = ends
        .iter()
        .filter(|(_, e)| e.latest > e.earliest)
        .map(|((t, p), e)| (t.clone(), *p, e.earliest))
        .collect();
    let stamps = brokers.timestamps_at(&wanted).await;
    assert!(
        stamps.iter().all(|s| matches!(s, Ok(Some(_)))),
        "{:?}",
        stamps
            .iter()
            .map(|s| s.as_ref().map_err(|e| connector_core::error_chain(e)))
            .collect::<Vec<_>>()
    );
    assert_eq!(proxy.calls().get("Fetch"), Some(&1), "{:?}", proxy.calls());
    // Another connector's topic in the same run: the metadata already names it.
    assert_eq!(brokers.ends(std::slice::from_ref(&other.topic)).await.unwrap().len(), 3);
    let calls = proxy.calls();
    assert_eq!(
        (calls.get("Metadata"), calls.get("ListOffsets")),
        (Some(&1), Some(&4)),
        "{calls:?}"
    );
}

/// A broker that restarted between two runs closed the connections the brokers' reads keep:
/// the next reads take new ones instead of failing once on each dead one.
#[tokio::test]
async fn connections_a_restarted_broker_closed_are_replaced_not_failed_on() {
    let (_hold, proxy, port) = delayed_proxy(Default::default()).await;
    let topic = Partitioned::create("reconnect", 2).await;
    topic.produce_to(1).await;
    let brokers = KafkaBrokers::new(&format!("127.0.0.1:{port}"), None, Duration::from_secs(5));
    let wanted = [(topic.topic.clone(), 1, 0)];
    assert_eq!(brokers.ends(std::slice::from_ref(&topic.topic)).await.unwrap().len(), 2);
    assert!(matches!(brokers.timestamps_at(&wanted).await[0], Ok(Some(_))));
    proxy.cut_connections();
    // A moment for the closes to reach the client's side.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ends = brokers.ends(std::slice::from_ref(&topic.topic)).await;
    assert!(ends.is_ok(), "{:?}", ends.map_err(|e| connector_core::error_chain(&e)));
    let stamps = brokers.timestamps_at(&wanted).await;
    assert!(
        matches!(stamps[0], Ok(Some(_))),
        "{:?}",
        stamps[0].as_ref().map_err(|e| connector_core::error_chain(e))
    );
    // A new topic: the metadata is asked again, on a new bootstrap connection too.
    proxy.cut_connections();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other = topic.sibling(&unique("reconnect-other"), 1).await;
    let ends = brokers.ends(std::slice::from_ref(&other.topic)).await;
    assert!(ends.is_ok(), "{:?}", ends.map_err(|e| connector_core::error_chain(&e)));
}

/// A broker that answers ListOffsets but never a Fetch (a proxy in front of the real one
/// swallows Fetch requests) costs the run the lag it could not read, not its alerts: the run
/// ends inside the Lambda's deadline with the failed connector paged, the connector whose lag
/// hung reported `unjudged`, and the other connector's lag judged.
#[tokio::test]
async fn a_broker_hanging_on_fetch_costs_the_run_its_lag_not_its_alerts() {
    let faults = connector_tests::proxy::KafkaFaults {
        hang_fetch: true,
        ..Default::default()
    };
    let (_hold, proxy, port) = delayed_proxy(faults).await;

    // Twelve partitions with a record each, read by a sink that fails as it starts: nothing
    // committed, every partition waits, and the age of each oldest record needs a Fetch.
    let topic = Partitioned::create("hung-fetch", 12).await;
    for partition in 0..12 {
        topic.produce_to(partition).await;
    }
    let topic = topic.topic;
    // A call timeout (10 s) longer than the lag's half of the budget (7.5 s): the hung Fetch
    // outlasts the lag's deadline.
    let m = Monitor::with_url(&connect_url()).await.reconfigured(|c| {
        c.kafka_bootstrap = Some(format!("127.0.0.1:{port}"));
        c.kafka_tls = false;
        c.run_budget = Duration::from_secs(15);
        c.connect_timeout = Duration::from_secs(10);
    });
    let failing = unique("hung-fetch-sink");
    let config = file_sink(&topic, &std::env::temp_dir().join(unique("gone")).join("out.txt"));
    m.desire(&failing, &config).await;
    api().put_config(&failing, &config).await.unwrap();
    let idle = unique("hung-fetch-idle");
    let config = file_sink(&unique("idle-topic"), &std::env::temp_dir().join(format!("{idle}.out")));
    m.desire(&idle, &config).await;
    api().put_config(&idle, &config).await.unwrap();
    let limit = Duration::from_secs(60);
    connector_tests::wait_status(&api(), &failing, "FAILED", limit, task_is(State::Failed)).await;
    connector_tests::wait_status(&api(), &idle, "RUNNING", limit, task_is(State::Running)).await;

    // As the Lambda runs it: cut a second before its own deadline.
    let fleet = connector_lambdas::monitor::deployed_fleet(vec![m.config.clone()], &m.sdk).unwrap();
    let request = serde_json::json!({"cluster": m.cluster});
    let report = connector_lambdas::monitor::handle(&fleet, &request, Duration::from_secs(21))
        .await
        .expect("the run ends inside its deadline");
    assert!(
        proxy.swallowed.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the broker was asked for a Fetch"
    );
    let alerts = m.alerts().await;
    assert!(
        alerts
            .iter()
            .any(|a| a.subject.starts_with("[CRITICAL] task-failed") && a.subject.contains(&failing)),
        "the failure is paged: {alerts:?}"
    );
    let hung = entry(&report, &failing);
    assert!(
        hung["lagUnknown"].as_str().is_some_and(|why| why.contains("deadline")),
        "{hung}"
    );
    assert!(
        hung["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["category"] == "unjudged"),
        "{hung}"
    );
    assert_eq!(lag_records(&report, &idle), Some(0), "the other is judged: {report}");

    // With time enough for a Fetch to time out (5 s) inside the lag's half of the budget, the
    // lag in records is judged, and the broker failing Fetch is said, not swallowed. The first
    // Fetches to time out stop the rest: one timeout, not one per partition.
    let m = m.reconfigured(|c| {
        c.run_budget = Duration::from_secs(30);
        c.connect_timeout = Duration::from_secs(5);
    });
    let asked = proxy.swallowed.load(std::sync::atomic::Ordering::Relaxed);
    let fleet = connector_lambdas::monitor::deployed_fleet(vec![m.config.clone()], &m.sdk).unwrap();
    let report = connector_lambdas::monitor::handle(&fleet, &request, Duration::from_secs(40))
        .await
        .expect("the run ends inside its deadline");
    let hung = entry(&report, &failing);
    assert_eq!(hung["lag"]["records"], 12, "{hung}");
    assert!(
        hung["lag"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["ageUnknown"].is_string()),
        "{hung}"
    );
    let said = report["findings"].as_array().unwrap().iter().any(|f| {
        f["summary"]
            .as_str()
            .is_some_and(|s| s.contains("did not give the oldest waiting record"))
    });
    assert!(said, "{report}");
    let asked = proxy.swallowed.load(std::sync::atomic::Ordering::Relaxed) - asked;
    assert!(
        (1..12).contains(&asked),
        "{asked} Fetches sent for 12 partitions: after the first to time out, none is tried"
    );
    for name in [&failing, &idle] {
        api().delete(name).await.unwrap();
    }
}

/// One task's partition stands still while the connector's other partition moves (the
/// stand-in hands partition 0's records back and pauses it, delivering partition 1's): after
/// the runs the stall takes, the connector is `consumer-stalled`, the finding names the
/// partition that stands and says why all its tasks are restarted. Before, a stall needed every
/// partition to stand still, so this zombie was never seen.
#[tokio::test]
async fn stand_in_one_partition_standing_while_the_other_moves_is_consumer_stalled_and_named() {
    let partitioned = Partitioned::create("partition-stall", 2).await;
    let (topic, produce_to) = (&partitioned.topic, |p| partitioned.produce_to(p));
    let m = Monitor::with_url(&connect_url()).await.with_lag(2);
    let name = unique("partition-stall-sink");
    let stall = std::env::temp_dir().join(unique("partition-stall"));
    let config = stand_in(
        topic,
        &[
            ("standin.stall.file", &stall.to_string_lossy()),
            ("standin.stall.partitions", "0"),
        ],
    );
    m.desire(&name, &config).await;
    for partition in [0, 1] {
        produce_to(partition).await;
    }
    api().put_config(&name, &config).await.unwrap();
    run_until_lag(&m, &name, 0, "both partitions consumed before the stall", now_millis).await;

    std::fs::write(&stall, "").unwrap();
    let t0 = now_millis();
    let mut report = Value::Null;
    for run in 0..5 {
        produce_to(0).await;
        produce_to(1).await;
        // Partition 1 is delivered and committed (every second) before the run looks.
        let moved = connector_tests::wait_for(Duration::from_secs(30), || async {
            let offsets = api().sink_offsets(&name).await.ok()?;
            offsets
                .iter()
                .any(|o| o.partition == 1 && o.offset == 2 + run)
                .then_some(())
        })
        .await;
        assert!(moved.is_some(), "partition 1 never committed {}", 2 + run);
        report = m.run_at(t0 + run * 60_000).await;
        let found = findings(&report, &name)
            .iter()
            .any(|f| f["category"] == "consumer-stalled");
        if found {
            break;
        }
    }
    let entry = entry(&report, &name);
    assert_eq!(entry["state"], "RUNNING", "{entry}");
    let stalled = findings(&report, &name)
        .into_iter()
        .find(|f| f["category"] == "consumer-stalled")
        .unwrap_or_else(|| panic!("one partition standing is a stall: {entry}"));
    let summary = stalled["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("partition(s) {topic}-0 committed no progress"))
            && summary.contains("other partitions move"),
        "{summary}"
    );
    assert!(
        stalled["action"].as_str().unwrap().starts_with("restart 1 of 3"),
        "{stalled}"
    );
    std::fs::remove_file(&stall).unwrap();
    api().delete(&name).await.unwrap();
}

/// Runs `name` (a FileStreamSink of `config`) until it has committed `offsets`, then stops it:
/// a stopped connector keeps its committed offsets and reads nothing.
async fn consume_then_stop(name: &str, config: &BTreeMap<String, String>, offsets: usize) {
    api().put_config(name, config).await.unwrap();
    let committed = connector_tests::wait_for(Duration::from_secs(60), || async {
        let c = api().sink_offsets(name).await.ok()?;
        (c.len() == offsets).then_some(c)
    })
    .await;
    assert!(
        committed.is_some(),
        "{name} committed no offsets on {offsets} partition(s) within 60 s"
    );
    api().stop(name).await.unwrap();
    connector_tests::wait_status(&api(), name, "STOPPED", Duration::from_secs(60), |s| {
        s.connector.state == State::Stopped
    })
    .await;
}

/// A topic deleted and created again under a stopped sink. The broker drops the group's
/// commits on a deleted topic, so the new topic's records count from its earliest offset like a
/// group that never committed. A commit that does lie past the end (a consumer that committed
/// its old position after the deletion; here set through the worker's offsets API) counts from
/// where the consumer will start again (the earliest offset, or the end under
/// `auto.offset.reset=latest`) and says it is out of range: never a negative lag.
#[tokio::test]
async fn a_topic_created_again_behind_a_commit_counts_from_where_the_consumer_starts_again() {
    use connector_core::connect::SinkOffset;
    use connector_core::monitor::judge::lag::{OutOfRange, measure};
    let topic = Partitioned::create("lag-recreated", 1).await;
    for _ in 0..5 {
        topic.produce_to(0).await;
    }
    let name = unique("lag-recreated-sink");
    let config = file_sink(&topic.topic, &std::env::temp_dir().join(format!("{name}.out")));
    consume_then_stop(&name, &config, 1).await;
    let committed = api().sink_offsets(&name).await.unwrap();
    assert_eq!(committed[0].offset, 5, "{committed:?}");
    topic.recreate(1).await;
    topic.produce_to(0).await;
    topic.produce_to(0).await;
    let brokers = tls_brokers(Some(&broker_ca()));
    let shape = |lag: &connector_core::monitor::judge::lag::ConnectorLag| {
        let p = &lag.partitions[0];
        (p.committed, p.out_of_range, p.position, p.end, p.records)
    };
    let (_, lag) = measure(&api(), &brokers, &name, &config, now_millis()).await.unwrap();
    assert_eq!(shape(&lag), (None, None, 0, 2, 2), "{lag:?}");
    assert!(
        lag.seconds.is_some(),
        "the oldest waiting record's age is read: {lag:?}"
    );
    let past = SinkOffset {
        topic: topic.topic.clone(),
        partition: 0,
        offset: 50,
    };
    api().alter_sink_offsets(&name, &[past]).await.unwrap();
    let (_, lag) = measure(&api(), &brokers, &name, &config, now_millis()).await.unwrap();
    assert_eq!(shape(&lag), (Some(50), Some(OutOfRange::PastEnd), 0, 2, 2), "{lag:?}");
    let mut latest = config.clone();
    latest.insert("consumer.override.auto.offset.reset".into(), "latest".into());
    let (_, lag) = measure(&api(), &brokers, &name, &latest, now_millis()).await.unwrap();
    assert_eq!(shape(&lag), (Some(50), Some(OutOfRange::PastEnd), 2, 2, 0), "{lag:?}");
    api().delete(&name).await.unwrap();
}

/// A `topics.regex` sink that has committed nothing yet: its lag covers every partition of the
/// topics on the brokers its pattern matches whole (not only the ones it has committed on),
/// from the earliest offset; a topic whose name merely contains a match is left out.
#[tokio::test]
async fn a_topics_regex_sink_without_commits_is_measured_on_every_topic_its_pattern_matches() {
    let prefix = unique("lag-regex");
    let name = format!("{prefix}-sink");
    let mut config = file_sink("unused", &std::env::temp_dir().join(format!("{name}.out")));
    config.remove("topics");
    config.insert("topics.regex".into(), format!("{}\\.(a|b)", prefix.replace('-', "\\-")));
    // Stopped before any topic exists: nothing is ever committed.
    api().put_config(&name, &config).await.unwrap();
    connector_tests::wait_status(&api(), &name, "RUNNING", Duration::from_secs(60), |s| {
        s.connector.state == State::Running
    })
    .await;
    api().stop(&name).await.unwrap();
    connector_tests::wait_status(&api(), &name, "STOPPED", Duration::from_secs(60), |s| {
        s.connector.state == State::Stopped
    })
    .await;
    let a = Partitioned::create("unused", 1)
        .await
        .sibling(&format!("{prefix}.a"), 2)
        .await;
    let b = a.sibling(&format!("{prefix}.b"), 1).await;
    let other = a.sibling(&format!("{prefix}.ab"), 1).await;
    a.produce_to(0).await;
    a.produce_to(1).await;
    a.produce_to(1).await;
    b.produce_to(0).await;
    other.produce_to(0).await;
    let brokers = tls_brokers(Some(&broker_ca()));
    let (committed, lag) = connector_core::monitor::judge::lag::measure(&api(), &brokers, &name, &config, now_millis())
        .await
        .unwrap();
    assert!(committed.is_empty(), "{committed:?}");
    let seen: Vec<(String, i32, i64)> = lag
        .partitions
        .iter()
        .map(|p| (p.topic.clone(), p.partition, p.records))
        .collect();
    assert_eq!(
        seen,
        vec![
            (a.topic.clone(), 0, 1),
            (a.topic.clone(), 1, 2),
            (b.topic.clone(), 0, 1)
        ],
        "{lag:?}"
    );
    assert_eq!(lag.records, 4);
    assert!(lag.seconds.is_some(), "{lag:?}");
    api().delete(&name).await.unwrap();
}
