//! The driver of `scripts/soak`: the whole loop under a seeded mix of faults, then the oracle.
//!
//! A producer writes both topics at a steady rate over a key space, with updates and tombstones
//! (and, as faults, poison records); the stand-in Lambda sink connector in a real worker carries
//! them to `sinkSeatoolData`/`sinkAppianData` under `cargo lambda watch`, which write moto through
//! the fault proxy; the monitor runs every few seconds, its state table behind the same proxy. A
//! scheduler drawn from the seed injects faults at random times, overlapping:
//! - the worker killed with SIGKILL and started again (as ECS would);
//! - the broker stopped and started again on its data;
//! - the broker hung: Toxiproxy, the worker's only way to it, keeps connections open and passes
//!   no answer on (a `timeout` toxic of 0);
//! - DynamoDB throttling, 5xx and slow answers on the sinks' writes (the fault proxy);
//! - a sink function crashed mid-batch: killed with SIGKILL while its writes are held at the
//!   proxy, then served again by a new watch server, as Lambda starts a new environment;
//! - a task failed: a record the stand-in connector fails its task on the first time it meets it
//!   (`standin.poison.prefix`; met again after a restart, it is skipped, so a newer record of its
//!   key follows it and the table must hold that one);
//! - the monitor's state table throttled (every call refused);
//! - a connector deleted by hand; poison records (not JSON: the dead-letter queue).
//!
//! Then production stops, the faults end, the sinks drain, and it judges: `connectorctl verify` on both tables (nothing missing, regressed, resurrected,
//! mismatched, extra or lost; the poison records refused and in the dead-letter queue), every
//! incident the monitor opened resolved, no restart given up, no panic in any log; the latency
//! from a record's timestamp to the first scan that saw it stored, in quiet phases and during
//! faults; and how long a connector stayed broken as the monitor saw it (from the first run that
//! found it failed, missing or unassigned to the first that found it well), which is what the
//! monitor's schedule adds to a fault the sink cannot heal by itself. It prints a table, writes `target/soak/summary.json` and exits 0 only when all
//! hold; a failure prints the seed and the schedule, which `--seed` replays.
//!
//! `scripts/soak` starts the services and passes, besides the harness's variables,
//! `SOAK_MINUTES`, `SOAK_SEED`, `SOAK_RATE`, `SEATOOL_WATCH_URL`, `APPIAN_WATCH_URL`,
//! `SEATOOL_TABLE`, `APPIAN_TABLE`, `DEAD_LETTER_QUEUE_NAME`, `CONNECTORCTL`, `SOAK_DIR`,
//! `TOXIPROXY_URL` and `CONNECT_BOOTSTRAP` (the worker's way to the broker, through Toxiproxy).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connector_adapters::connect::HttpConnectApi;
use connector_core::connect::ConnectApi;
use connector_tests::faults::Faults;
use connector_tests::monitor::Monitor;
use connector_tests::{create_queue, create_sink_table, kafka_script, lambda_sink_connector, scan, sdk};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use serde_json::{Value, json};
use tokio::sync::Mutex;

const SEATOOL_TOPIC: &str = "aws.ksqldb.seatool.agg.State_Plan";
const APPIAN_TOPIC: &str = "aws.appian.cmcs.MCP_SPA_PCKG";
const PARTITIONS: i32 = 3;
const TICK: Duration = Duration::from_secs(3);
/// How long the sinks get to drain once production stops and the faults end.
const DRAIN: Duration = Duration::from_secs(240);

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set; run scripts/soak"))
}

/// xorshift64*: the same seed, the same schedule and the same records, on any machine.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The kinds of fault, each drawn at least once in a run long enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    WorkerKilled,
    BrokerRestarted,
    DynamoDbThrottled,
    DynamoDb5xx,
    DynamoDbSlow,
    ConnectorDeleted,
    PoisonRecord,
    BrokerHung,
    SinkCrashed,
    TaskFailed,
    MonitorStateThrottled,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::WorkerKilled,
        Kind::BrokerRestarted,
        Kind::DynamoDbThrottled,
        Kind::DynamoDb5xx,
        Kind::DynamoDbSlow,
        Kind::ConnectorDeleted,
        Kind::PoisonRecord,
        Kind::BrokerHung,
        Kind::SinkCrashed,
        Kind::TaskFailed,
        Kind::MonitorStateThrottled,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::WorkerKilled => "worker-killed",
            Kind::BrokerRestarted => "broker-restarted",
            Kind::DynamoDbThrottled => "dynamodb-throttled",
            Kind::DynamoDb5xx => "dynamodb-5xx",
            Kind::DynamoDbSlow => "dynamodb-slow",
            Kind::ConnectorDeleted => "connector-deleted",
            Kind::PoisonRecord => "poison-record",
            Kind::BrokerHung => "broker-hung",
            Kind::SinkCrashed => "sink-crashed",
            Kind::TaskFailed => "task-failed",
            Kind::MonitorStateThrottled => "monitor-state-throttled",
        }
    }
}

/// One fault of the schedule: what, on which sink, from when (s after the start) for how long.
#[derive(Debug, Clone)]
struct Fault {
    kind: Kind,
    sink: usize,
    at: u64,
    seconds: u64,
}

/// The schedule: every kind once, in random order and at random times, then more drawn at
/// random, about one a minute; their spans overlap.
fn schedule(seed: u64, minutes: u64) -> Vec<Fault> {
    let mut rng = Rng(seed.max(1));
    let span = (minutes * 60).saturating_sub(20).max(30);
    let count = (minutes as usize).max(Kind::ALL.len());
    let mut faults: Vec<Fault> = (0..count)
        .map(|i| {
            let kind = if i < Kind::ALL.len() {
                Kind::ALL[i]
            } else {
                Kind::ALL[rng.below(Kind::ALL.len() as u64) as usize]
            };
            Fault {
                kind,
                sink: rng.below(2) as usize,
                at: 10 + rng.below(span),
                seconds: 5 + rng.below(40),
            }
        })
        .collect();
    faults.sort_by_key(|f| f.at);
    faults
}

/// The two sinks: connector, topic, function, table.
struct SinkSpec {
    connector: &'static str,
    topic: &'static str,
    function: &'static str,
    table: String,
    watch: String,
    /// The watch server's name in `.run/` (its log and pid) and in `target/soak/NAME.start`.
    server: &'static str,
    mapping: &'static str,
    /// How a record that fails the task starts (`standin.poison.prefix`), before the mapping's
    /// fields: `{"SOAK_TASK_FAIL":true,` and the rest of an ordinary record of the key.
    task_fail: &'static str,
}

impl SinkSpec {
    /// The task-failing record `n` and the ordinary, newer record of its key that follows it:
    /// (partition, key, value) each. The first never reaches the table (skipped after the
    /// restart); the second must.
    fn task_fail_records(&self, n: u64) -> [(i32, Option<String>, String); 2] {
        if self.mapping == "seatool" {
            let key = Some(format!("\"SOAK-TF-{n}\""));
            let body = format!(r#""STATE_PLAN":{{"ID_NUMBER":"SOAK-TF-{n}","VERSION":1}}}}"#);
            [
                (0, key.clone(), format!("{}{body}", self.task_fail)),
                (0, key, format!("{{{body}")),
            ]
        } else {
            let body = format!(r#""PCKG_ID":{},"VERSION":1}}}}"#, 80_000 + n);
            [
                (0, None, format!("{}{body}", self.task_fail)),
                (0, None, format!(r#"{{"payload":{{{body}"#)),
            ]
        }
    }
}

/// Produced records: key → (partition, offset, timestamp) of the last one, and every record's
/// timestamp and whether a fault was active, for the latency.
#[derive(Default)]
struct Produced {
    records: u64,
    tombstones: u64,
    /// (topic, partition, offset) → (timestamp, produced during a fault).
    at: HashMap<(String, i32, i64), (i64, bool)>,
}

#[derive(Clone)]
struct Producer {
    client: Arc<Client>,
}

impl Producer {
    async fn new(bootstrap: &str) -> Result<Self, String> {
        let client = ClientBuilder::new(vec![bootstrap.to_string()])
            .client_id("soak-producer")
            .build()
            .await
            .map_err(|e| format!("the producer cannot reach {bootstrap}: {e}"))?;
        let controller = client.controller_client().map_err(|e| e.to_string())?;
        for topic in [SEATOOL_TOPIC, APPIAN_TOPIC] {
            // Made here with three partitions; a topic left by an earlier run stays as it is.
            let _ = controller.create_topic(topic, PARTITIONS, 1, 10_000).await;
        }
        Ok(Self {
            client: Arc::new(client),
        })
    }

    /// Produces one record; its offset, or why not (the broker is being restarted: retried by the
    /// caller on the next tick, as a producer with retries would).
    async fn send(
        &self,
        topic: &str,
        partition: i32,
        key: Option<String>,
        value: Option<String>,
    ) -> Result<(i64, i64), String> {
        let now = chrono::Utc::now();
        let record = Record {
            key: key.map(String::into_bytes),
            value: value.map(String::into_bytes),
            headers: BTreeMap::new(),
            timestamp: now,
        };
        // The partition's leader is looked up again while the broker is away: bounded too.
        let offsets = tokio::time::timeout(Duration::from_secs(10), async {
            let pc = self
                .client
                .partition_client(topic, partition, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| e.to_string())?;
            pc.produce(vec![record], Compression::NoCompression)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| "no answer in 10 s".to_string())??;
        Ok((offsets.first().copied().unwrap_or(-1), now.timestamp_millis()))
    }

    /// Produces the records in order, each retried until Kafka takes it (the broker may be away
    /// for a fault's span), for at most five minutes.
    async fn send_all(self, topic: &'static str, records: Vec<(i32, Option<String>, String)>) -> Result<(), String> {
        let until = Instant::now() + Duration::from_secs(300);
        for (partition, key, value) in records {
            loop {
                match self.send(topic, partition, key.clone(), Some(value.clone())).await {
                    Ok(_) => break,
                    Err(why) if Instant::now() >= until => {
                        return Err(format!("{topic}: a record not produced in 5 minutes: {why}"));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        }
        Ok(())
    }
}

/// A record of the workload: seatool keyed by id (its partition by key, as Kafka's partitioner
/// would), appian with the id in the value on any partition (the sink orders those by time).
fn workload(rng: &mut Rng, sink: usize, keys: u64) -> (i32, Option<String>, Option<String>, bool) {
    let id = rng.below(keys);
    let tombstone = rng.below(20) == 0;
    let version = rng.next() % 1_000_000;
    if sink == 0 {
        let key = format!("\"SOAK-{id:04}\"");
        let value = (!tombstone).then(|| {
            format!(r#"{{"STATE_PLAN":{{"ID_NUMBER":"SOAK-{id:04}","VERSION":{version},"AMOUNT":{version}.25}}}}"#)
        });
        ((id % PARTITIONS as u64) as i32, Some(key), value, tombstone)
    } else {
        let partition = rng.below(PARTITIONS as u64) as i32;
        if tombstone {
            (partition, Some(format!(r#"{{"PCKG_ID":{}}}"#, 90_000 + id)), None, true)
        } else {
            let value = format!(
                r#"{{"payload":{{"PCKG_ID":{},"VERSION":{version},"STATUS":"v{version}"}}}}"#,
                90_000 + id
            );
            (partition, None, Some(value), false)
        }
    }
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

/// Runs `connectorctl verify` on one sink table, as an operator would.
async fn verify(spec: &SinkSpec, dlq: &str) -> Result<Value, String> {
    let bin = var("CONNECTORCTL")?;
    let out = tokio::process::Command::new(&bin)
        .args([
            "verify",
            spec.mapping,
            "--table",
            &spec.table,
            "--topic",
            spec.topic,
            "--dlq",
            dlq,
            "--json",
        ])
        .args([
            "--kafka-bootstrap",
            &var("KAFKA_BOOTSTRAP_SERVERS")?,
            "--kafka-plaintext",
            "--consistent",
        ])
        .env_remove("CONNECT_URL")
        .env("CONNECTORCTL_CONFIG", format!("{}/contexts.json", var("SOAK_DIR")?))
        .output()
        .await
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "verify of {} printed no report ({e}): {}",
            spec.table,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const LOSS: [&str; 6] = ["missing", "regressed", "resurrected", "mismatched", "extra", "lost"];

fn losses(report: &Value) -> u64 {
    LOSS.iter().map(|c| report["counts"][c].as_u64().unwrap_or(0)).sum()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(why) => {
            eprintln!("soak: {why}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, String> {
    let minutes: u64 = var("SOAK_MINUTES")?
        .parse()
        .map_err(|_| "SOAK_MINUTES is not a number")?;
    let seed: u64 = var("SOAK_SEED")?.parse().map_err(|_| "SOAK_SEED is not a number")?;
    let rate: u64 = var("SOAK_RATE")?.parse().map_err(|_| "SOAK_RATE is not a number")?;
    let soak_dir = var("SOAK_DIR")?;
    let started = Instant::now();
    let say = |text: String| println!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
    let faults_plan = schedule(seed, minutes);
    say(format!(
        "seed {seed}, {minutes} min at {rate} records/s; faults: {}",
        faults_plan
            .iter()
            .map(|f| format!("{}@{}s+{}s", f.kind.name(), f.at, f.seconds))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let sdk = sdk().await;
    let connect = var("CONNECT_URL")?;
    let api = HttpConnectApi::new(&connect, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    // The monitor's state table behind the fault proxy, to be throttled.
    let through_faults =
        connector_adapters::aws::load_sdk_config_at(&var("FAULTS_URL")?, Duration::from_secs(10), 3).await;
    // Time runs faster here: a fault a minute, the monitor every 3 s. The backoff's cap (and so
    // the stable period that forgets restarts) is two minutes rather than an hour, or the
    // faults of half an hour would spend a connector's budget as a day's never would; a failure
    // is resolved after a minute of health rather than ten, for the same reason.
    let monitor = Monitor::with_url_and_sdk(&connect, through_faults)
        .await
        .reconfigured(|c| {
            c.policy.max_backoff_minutes = 2;
            c.resolve_after = Duration::from_secs(60);
        });
    let sinks = [
        SinkSpec {
            connector: "seatool-sink",
            topic: SEATOOL_TOPIC,
            function: "sinkSeatoolData",
            table: var("SEATOOL_TABLE")?,
            watch: var("SEATOOL_WATCH_URL")?,
            server: "soak-seatool",
            mapping: "seatool",
            task_fail: r#"{"SOAK_TASK_FAIL":true,"#,
        },
        SinkSpec {
            connector: "appian-sink",
            topic: APPIAN_TOPIC,
            function: "sinkAppianData",
            table: var("APPIAN_TABLE")?,
            watch: var("APPIAN_WATCH_URL")?,
            server: "soak-appian",
            mapping: "appian",
            task_fail: r#"{"payload":{"SOAK_TASK_FAIL":true,"#,
        },
    ];
    for s in &sinks {
        create_sink_table(&sdk, &s.table).await;
    }
    let dlq = create_queue(&sdk, &var("DEAD_LETTER_QUEUE_NAME")?).await;
    let producer = Producer::new(&var("KAFKA_BOOTSTRAP_SERVERS")?).await?;
    let seen_dir = format!("{soak_dir}/task-fail-seen");
    let _ = std::fs::remove_dir_all(&seen_dir);
    std::fs::create_dir_all(&seen_dir).map_err(|e| format!("{seen_dir}: {e}"))?;
    for s in &sinks {
        let mut config = lambda_sink_connector(s.topic, s.function, &s.watch);
        config.insert("standin.poison.prefix".into(), s.task_fail.into());
        config.insert("standin.poison.seen.dir".into(), seen_dir.clone());
        monitor.desire(s.connector, &config).await;
        api.put_config(s.connector, &config)
            .await
            .map_err(|e| format!("create {}: {e}", s.connector))?;
    }
    let disturbed = Disturbed::default();
    disturbed.created();
    say("tables, queue, topics (3 partitions each), both connectors created; producing".into());

    // Production and faults run together until the end of the soak.
    let produced = Arc::new(Mutex::new(Produced::default()));
    let active = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let end = started + Duration::from_secs(minutes * 60);
    let probe = Probe {
        api: &api,
        worker: connect.rsplit("://").next().unwrap_or_default().to_string(),
        cluster: monitor.cluster.clone(),
        connectors: sinks.iter().map(|s| s.connector).collect(),
    };
    let mut chaos = Chaos {
        disturbed: disturbed.clone(),
        sinks: &sinks,
        api: &api,
        producer: producer.clone(),
        state_table: monitor.config.state_table.clone(),
        toxiproxy: var("TOXIPROXY_URL")?,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?,
        task_failures: 0,
        sending: Vec::new(),
    };
    let producing = {
        let (produced, active) = (Arc::clone(&produced), Arc::clone(&active));
        let mut rng = Rng(seed.wrapping_mul(31).max(1));
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / rate.max(1)));
            let mut failed = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let sink = rng.below(2) as usize;
                let (partition, key, value, tombstone) = workload(&mut rng, sink, 150);
                let topic = [SEATOOL_TOPIC, APPIAN_TOPIC][sink];
                match producer.send(topic, partition, key, value).await {
                    Ok((offset, ts)) => {
                        let mut p = produced.lock().await;
                        p.records += 1;
                        p.tombstones += u64::from(tombstone);
                        let during = active.load(std::sync::atomic::Ordering::Relaxed) > 0;
                        p.at.insert((topic.to_string(), partition, offset), (ts, during));
                    }
                    Err(_) => failed += 1,
                }
            }
            (producer, failed)
        }
    };
    let injecting = async {
        let mut log = Vec::new();
        let mut pending: Vec<(Instant, Fault)> = Vec::new();
        let mut plan = faults_plan.clone().into_iter().peekable();
        let mut poison = 0u64;
        loop {
            let now = Instant::now();
            // End what is due, then start what is due.
            let (due, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(until, _)| *until <= now);
            pending = rest;
            for (_, f) in due {
                chaos.end(&f).await?;
                active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                say(format!("fault over: {} on {}", f.kind.name(), sinks[f.sink].connector));
            }
            while let Some(f) = plan.next_if(|f| started + Duration::from_secs(f.at) <= now) {
                say(format!(
                    "fault: {} on {} for {} s",
                    f.kind.name(),
                    sinks[f.sink].connector,
                    f.seconds
                ));
                if f.kind == Kind::PoisonRecord {
                    poison += 1;
                }
                chaos.start(&f).await?;
                log.push(
                    json!({"kind": f.kind.name(), "sink": sinks[f.sink].connector, "at_s": f.at, "seconds": f.seconds}),
                );
                active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                pending.push((now + Duration::from_secs(f.seconds), f));
            }
            if now >= end && plan.peek().is_none() {
                for (_, f) in pending.drain(..) {
                    chaos.end(&f).await?;
                    active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
                if !broker_running() {
                    chaos.disturbed.now();
                    kafka_script(&["start-broker"]).await;
                }
                if !worker_running() {
                    chaos.disturbed.now();
                    start_worker().await?;
                    chaos.disturbed.now();
                }
                for sending in chaos.sending.drain(..) {
                    sending.await.map_err(|e| e.to_string())??;
                }
                return Ok::<_, String>((log, poison, chaos.task_failures));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (producer_out, faults_out, ticks) = {
        let watching = async {
            let mut seen: HashMap<(String, i32, i64), i64> = HashMap::new();
            let mut runs = Runs::default();
            let mut last_scan = Instant::now();
            while Instant::now() < end + Duration::from_secs(2) {
                runs.run(&monitor, &probe).await;
                if last_scan.elapsed() >= Duration::from_secs(2) {
                    observe(&sdk, &sinks, &mut seen).await;
                    last_scan = Instant::now();
                }
                tokio::time::sleep(TICK).await;
            }
            (seen, runs)
        };
        tokio::join!(producing, injecting, watching)
    };
    let (producer, producer_failures) = producer_out;
    let (fault_log, poison_faults, task_failures) = faults_out?;
    let (mut seen, mut runs) = ticks;
    // The poison records the faults asked for (not JSON, each on its fault's sink), produced now
    // that the production has stopped.
    for (i, f) in faults_plan.iter().filter(|f| f.kind == Kind::PoisonRecord).enumerate() {
        let (topic, key) = match f.sink {
            0 => (SEATOOL_TOPIC, Some(format!("\"SOAK-POISON-{i}\""))),
            _ => (APPIAN_TOPIC, None),
        };
        producer
            .send(topic, 0, key, Some("{\"payload\": not JSON".to_string()))
            .await?;
    }
    let (records, tombstones) = {
        let p = produced.lock().await;
        (p.records, p.tombstones)
    };
    say(format!(
        "production over ({records} records, {tombstones} tombstones, {poison_faults} poison; {producer_failures} sends \
         failed and were dropped before reaching Kafka); draining"
    ));

    // Drain: the monitor keeps healing; verify until both tables are clean (bounded).
    let drain_end = Instant::now() + DRAIN;
    let mut reports: Vec<Value>;
    loop {
        runs.run(&monitor, &probe).await;
        observe(&sdk, &sinks, &mut seen).await;
        reports = Vec::new();
        for s in &sinks {
            reports.push(verify(s, &dlq).await?);
        }
        let refused: u64 = reports
            .iter()
            .map(|r| r["counts"]["refused"].as_u64().unwrap_or(0))
            .sum();
        if reports.iter().all(|r| losses(r) == 0) && refused >= poison_faults {
            break;
        }
        if Instant::now() >= drain_end {
            say(format!("gave up draining after {} s", DRAIN.as_secs()));
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // A few more runs, so incidents of faults just healed are resolved.
    let mut open: Vec<String> = Vec::new();
    // Up to three minutes: a failure resolves once it has run healthy a minute, and one that
    // came back after a restart only once its restarts are forgotten (two minutes here).
    for _ in 0..60 {
        runs.run(&monitor, &probe).await;
        let stored = connector_core::monitor::ports::MonitorStore::load(&monitor.store, &monitor.cluster)
            .await
            .map_err(|e| e.to_string())?;
        open = stored.incidents.into_keys().collect();
        if open.is_empty() {
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    let alerts = monitor.alerts().await;
    let opened: Vec<String> = alerts
        .iter()
        .filter(|a| a.attributes.get("state").map(String::as_str) == Some("open"))
        .map(|a| a.subject.clone())
        .collect();
    let resolved = alerts
        .iter()
        .filter(|a| a.attributes.get("state").map(String::as_str) == Some("resolved"))
        .count();
    let exhausted = alerts
        .iter()
        .filter(|a| a.subject.contains("restart-exhausted"))
        .count();
    let notices: Vec<(String, String, i64)> = alerts
        .iter()
        .map(|a| {
            let attribute = |name: &str| a.attributes.get(name).cloned().unwrap_or_default();
            (attribute("incident"), attribute("state"), a.sent_at)
        })
        .collect();
    let (judged, unreported) = unreported(&runs.ticks, &disturbed, &notices);
    let expected = runs.ticks.iter().filter(|t| t.run_ok && !t.broken.is_empty()).count();
    let unresolved: Vec<&String> = {
        let mut in_order: Vec<&(String, String, i64)> = notices.iter().collect();
        in_order.sort_by_key(|n| n.2);
        let mut balance: BTreeMap<&String, i32> = BTreeMap::new();
        for (key, state, _) in in_order {
            match state.as_str() {
                "open" => *balance.entry(key).or_default() = 1,
                "resolved" => *balance.entry(key).or_default() = 0,
                _ => {}
            }
        }
        balance
            .into_iter()
            .filter(|(_, open)| *open > 0)
            .map(|(k, _)| k)
            .collect()
    };
    let panics = panics_in_logs();

    // Latency: produce → first scan that saw the record stored, quiet and during faults.
    let produced = produced.lock().await;
    let (mut quiet, mut faulty) = (Vec::new(), Vec::new());
    for (coords, seen_at) in &seen {
        if let Some((ts, during)) = produced.at.get(coords) {
            let latency = seen_at - ts;
            if *during { &mut faulty } else { &mut quiet }.push(latency.max(0));
        }
    }
    quiet.sort_unstable();
    faulty.sort_unstable();
    let latency = |v: &[i64]| json!({"samples": v.len(), "p50_ms": percentile(v, 0.5), "p99_ms": percentile(v, 0.99), "max_ms": v.last()});
    // How long something stayed broken as the monitor, run every TICK, saw it; deployed, it runs
    // every minute, which adds up to a minute to each of these.
    let mut broken_for = runs.broken_for.clone();
    broken_for.sort_unstable();
    let monitor_summary = json!({
        "interval_s": TICK.as_secs(), "runs_failed": runs.failed, "restarts": runs.restarts,
        "broken": latency(&broken_for), "stillBroken": runs.broken_since.keys().collect::<Vec<_>>(),
    });

    let clean = reports.iter().all(|r| losses(r) == 0);
    let refused: u64 = reports
        .iter()
        .map(|r| r["counts"]["refused"].as_u64().unwrap_or(0))
        .sum();
    let checks = [
        (
            "both tables equal their topics (verify: 0 missing, regressed, resurrected, mismatched, extra, lost)",
            clean,
        ),
        (
            "every poison record refused and in the dead-letter queue",
            refused == poison_faults,
        ),
        ("every incident resolved", open.is_empty()),
        (
            "every fault the monitor saw has an incident (each broken condition the soak saw before a run)",
            unreported.is_empty(),
        ),
        ("every opened incident had its resolved notice", unresolved.is_empty()),
        ("no restart given up (restart-exhausted)", exhausted == 0),
        ("no panic in any log", panics.is_empty()),
    ];
    let ok = checks.iter().all(|(_, held)| *held);
    let summary = json!({
        "seed": seed, "minutes": minutes, "rate": rate, "ok": ok,
        "faults": fault_log,
        "produced": {"records": produced.records, "tombstones": produced.tombstones, "poison": poison_faults,
                     "sendsFailed": producer_failures},
        "verify": {"seatool": reports[0]["counts"], "appian": reports[1]["counts"]},
        "incidents": {"opened": opened, "resolvedNotices": resolved, "stillOpen": open,
                      "ticksSeenBroken": expected, "judged": judged, "unreported": unreported, "noResolvedNotice": unresolved},
        "restarts": runs.restarts,
        "taskFailures": task_failures,
        "monitor": monitor_summary,
        "latency": {"quiet": latency(&quiet), "duringFaults": latency(&faulty)},
        "panics": panics,
        "checks": checks.iter().map(|(what, held)| json!({"check": what, "held": held})).collect::<Vec<_>>(),
        "elapsed_s": started.elapsed().as_secs(),
    });
    std::fs::create_dir_all(&soak_dir).map_err(|e| e.to_string())?;
    let path = format!("{soak_dir}/summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap_or_default()).map_err(|e| e.to_string())?;

    println!("\n── soak summary (seed {seed}, {minutes} min, {rate}/s; {path})");
    println!(
        "  produced: {} records ({} tombstones), {poison_faults} poison",
        produced.records, produced.tombstones
    );
    println!("  faults: {}", fault_log.len());
    for s in 0..2 {
        println!("  verify {}: {}", sinks[s].mapping, reports[s]["counts"]);
    }
    println!(
        "  incidents opened: {} ({resolved} resolved notices); restarts: {}; runs failed: {} (state table throttled)",
        opened.len(),
        runs.restarts,
        runs.failed
    );
    println!(
        "  runs after the soak saw something broken: {expected} ({judged} conditions judged, the rest just after \
         a worker or broker change); not covered by an incident: {}",
        if unreported.is_empty() {
            "none".to_string()
        } else {
            unreported.join(", ")
        }
    );
    println!(
        "  broken, as the monitor saw it every {} s: {}",
        TICK.as_secs(),
        latency(&broken_for)
    );
    println!("  latency quiet: {}", latency(&quiet));
    println!("  latency during faults: {}", latency(&faulty));
    for (what, held) in &checks {
        println!("  [{}] {what}", if *held { "ok" } else { "FAILED" });
    }
    if !ok {
        println!(
            "  replay this mix: scripts/soak --seed {seed} --minutes {minutes} --rate {rate}\n  schedule: {}",
            serde_json::to_string(&fault_log).unwrap_or_default()
        );
    }
    Ok(ok)
}

/// When the faults changed the worker or the broker, or the soak created the connectors (ms),
/// and for how long after that what the soak sees just before a monitor run may differ from
/// what the run then sees: a restarted worker lists its connectors and tasks while it starts,
/// and a connector just created is listed a moment after its PUT.
#[derive(Clone, Default)]
struct Disturbed(Arc<std::sync::Mutex<Vec<(i64, i64)>>>);

impl Disturbed {
    /// The worker or the broker changed now.
    fn now(&self) {
        self.push(60_000);
    }

    /// The connectors were created now.
    fn created(&self) {
        self.push(10_000);
    }

    fn push(&self, settle_ms: i64) {
        let now = connector_adapters::now_millis();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((now, settle_ms));
    }

    /// Whether what was seen at `looked_at` is no verdict on the run that ended at `run_end`:
    /// a change during the run, or (`settling`) one still settling when the soak looked.
    fn within(&self, looked_at: i64, run_end: i64, settling: bool) -> bool {
        let times = self.0.lock().unwrap_or_else(|e| e.into_inner());
        times.iter().any(|(at, settle)| {
            let from = if settling { looked_at - settle } else { looked_at };
            (from..=run_end).contains(at)
        })
    }
}

/// The soak's own look at the cluster, right before each monitor run: what is broken that the
/// monitor must open an incident for, by the incident key it keeps (`category:cluster[/connector]`).
struct Probe<'a> {
    api: &'a HttpConnectApi,
    /// `host:port` of the worker.
    worker: String,
    cluster: String,
    connectors: Vec<&'static str>,
}

impl Probe<'_> {
    async fn broken(&self) -> std::collections::BTreeSet<String> {
        let mut keys = std::collections::BTreeSet::new();
        // Refused: nothing listens (killed, not started yet). An answer that is late or odd is
        // no verdict: the monitor may rightly call it a rebalance.
        let connect = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&self.worker)).await;
        if matches!(connect, Ok(Err(_))) {
            keys.insert(format!("worker-unreachable:{}", self.cluster));
            return keys;
        }
        let Ok(listed) = self.api.list_expanded().await else {
            return keys;
        };
        for name in &self.connectors {
            let key = |category: &str| format!("{category}:{}/{name}", self.cluster);
            match listed.iter().find(|c| c.name == *name).map(|c| c.status.as_ref()) {
                None => {
                    keys.insert(key("connector-missing"));
                }
                Some(None) => {}
                Some(Some(status)) => {
                    if status.connector.state == connector_core::connect::State::Failed {
                        keys.insert(key("connector-failed"));
                    }
                    if status
                        .tasks
                        .iter()
                        .any(|t| t.state == connector_core::connect::State::Failed)
                    {
                        keys.insert(key("task-failed"));
                    }
                }
            }
        }
        keys
    }
}

/// One monitor run and what the soak saw broken just before it.
struct Tick {
    looked_at: i64,
    broken: std::collections::BTreeSet<String>,
    run_ok: bool,
    run_end: i64,
}

/// Faults the monitor should have seen and no incident covers: each tick where the soak saw `key`
/// broken and the monitor's run right after it succeeded, undisturbed, needs an incident of
/// `key` open at that tick or opened after it (a starting worker's grace may delay it).
/// Notices are (incident, state, sent at) in any order.
/// Also how many (tick, key) pairs were judged so.
fn unreported(ticks: &[Tick], disturbed: &Disturbed, notices: &[(String, String, i64)]) -> (usize, Vec<String>) {
    // Each incident key's spans: from an open notice to the next resolved one.
    let mut sorted: Vec<&(String, String, i64)> = notices.iter().collect();
    sorted.sort_by_key(|n| n.2);
    let mut spans: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    let mut opened: HashMap<&str, i64> = HashMap::new();
    for (key, state, at) in sorted {
        match state.as_str() {
            "open" => {
                opened.entry(key).or_insert(*at);
            }
            "resolved" => {
                if let Some(from) = opened.remove(key.as_str()) {
                    spans.entry(key).or_default().push((from, *at));
                }
            }
            _ => {}
        }
    }
    for (key, from) in opened {
        spans.entry(key).or_default().push((from, i64::MAX));
    }
    // Clocks: SNS's (moto's) and the soak's are the same machine's; a second covers rounding.
    const SLACK: i64 = 1_000;
    let mut missed = Vec::new();
    let mut judged = 0;
    for tick in ticks.iter().filter(|t| t.run_ok) {
        for key in &tick.broken {
            // A worker that is down stays down: only a change during the run excuses it.
            if disturbed.within(tick.looked_at, tick.run_end, !key.starts_with("worker-unreachable:")) {
                continue;
            }
            judged += 1;
            let covered = spans
                .get(key.as_str())
                .is_some_and(|s| s.iter().any(|(_, to)| to.saturating_add(SLACK) >= tick.looked_at));
            if !covered {
                missed.push(format!(
                    "{key} (seen broken at {})",
                    connector_core::monitor::time::iso8601(tick.looked_at)
                ));
            }
        }
    }
    missed.dedup();
    (judged, missed)
}

/// The monitor's runs as the soak saw them: restarts requested, runs that failed (its state
/// table throttled), and how long each connector stayed broken.
#[derive(Default)]
struct Runs {
    /// Every run, with what the soak saw broken before it.
    ticks: Vec<Tick>,
    restarts: u32,
    failed: u32,
    /// What a run found broken (a connector, or `cluster` for the worker), since when (ms).
    broken_since: HashMap<String, i64>,
    /// How long each time something was broken lasted, from the first run that found it so to
    /// the first that found it well (ms).
    broken_for: Vec<i64>,
}

impl Runs {
    async fn run(&mut self, monitor: &Monitor, probe: &Probe<'_>) {
        let looked_at = connector_adapters::now_millis();
        let seen_broken = probe.broken().await;
        let now = connector_adapters::now_millis();
        let outcome = monitor.try_run().await;
        self.ticks.push(Tick {
            looked_at,
            broken: seen_broken,
            run_ok: outcome.is_ok(),
            run_end: connector_adapters::now_millis(),
        });
        let report = match outcome {
            Ok(out) => out.report,
            Err(_) => {
                self.failed += 1;
                return;
            }
        };
        self.restarts += count_restarts(&report);
        let broken = broken(&report);
        for what in &broken {
            self.broken_since.entry(what.clone()).or_insert(now);
        }
        let healed: Vec<String> = self
            .broken_since
            .keys()
            .filter(|k| !broken.contains(*k))
            .cloned()
            .collect();
        for what in healed {
            if let Some(since) = self.broken_since.remove(&what) {
                self.broken_for.push(now - since);
            }
        }
    }
}

/// What a report finds broken: connectors not healthy, desired ones missing, and `cluster` when
/// a finding about no connector (the worker unreachable, say) stands.
fn broken(report: &Value) -> std::collections::HashSet<String> {
    let connectors = report["connectors"].as_array().cloned().unwrap_or_default();
    let mut broken: std::collections::HashSet<String> = connectors
        .iter()
        .filter(|c| c["healthy"] == json!(false))
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    for desired in report["desired"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !connectors.iter().any(|c| c["name"] == json!(desired)) {
            broken.insert(desired.to_string());
        }
    }
    if report["findings"].as_array().is_some_and(|f| !f.is_empty()) {
        broken.insert("cluster".to_string());
    }
    broken
}

fn count_restarts(report: &Value) -> u32 {
    report["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["findings"].as_array().into_iter().flatten())
        .filter(|f| {
            f["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("restart ") && a.contains("requested"))
        })
        .count() as u32
}

/// Notes when each stored record was first seen: (topic, partition, offset) → ms.
async fn observe(sdk: &aws_config::SdkConfig, sinks: &[SinkSpec], seen: &mut HashMap<(String, i32, i64), i64>) {
    let now = connector_adapters::now_millis();
    for s in sinks {
        for item in scan(sdk, &s.table).await.into_values() {
            let k = &item["@kafka"];
            if let (Some(t), Some(p), Some(o)) = (k["topic"].as_str(), k["partition"].as_i64(), k["offset"].as_i64()) {
                seen.entry((t.to_string(), p as i32, o)).or_insert(now);
            }
        }
    }
}

/// What the faults act on.
struct Chaos<'a> {
    /// When the faults changed the worker or the broker.
    disturbed: Disturbed,
    sinks: &'a [SinkSpec],
    api: &'a HttpConnectApi,
    producer: Producer,
    /// The monitor's state table (its faults at the proxy are the table's).
    state_table: String,
    toxiproxy: String,
    http: reqwest::Client,
    /// Task-failing records produced so far (each gets its own key).
    task_failures: u64,
    /// Their production, under way.
    sending: Vec<tokio::task::JoinHandle<Result<(), String>>>,
}

/// The Toxiproxy toxic that hangs the broker: every answer dropped, no connection closed.
const HANG: &str = "broker-hung";

impl Chaos<'_> {
    async fn start(&mut self, f: &Fault) -> Result<(), String> {
        let sink = &self.sinks[f.sink];
        let table = Faults::for_target(&sink.table);
        if matches!(f.kind, Kind::WorkerKilled | Kind::BrokerRestarted | Kind::BrokerHung) {
            self.disturbed.now();
        }
        match f.kind {
            // Overlapping kills: the worker is killed once and started again once.
            Kind::WorkerKilled if worker_running() => {
                kafka_script(&["kill-worker", "1"]).await;
            }
            Kind::WorkerKilled => {}
            Kind::BrokerRestarted if broker_running() => {
                kafka_script(&["stop-broker"]).await;
            }
            Kind::BrokerRestarted => {}
            Kind::BrokerHung => {
                let toxic =
                    json!({"name": HANG, "type": "timeout", "stream": "downstream", "attributes": {"timeout": 0}});
                let answer = self
                    .http
                    .post(format!("{}/proxies/kafka/toxics", self.toxiproxy))
                    .json(&toxic)
                    .send()
                    .await
                    .map_err(|e| format!("Toxiproxy: {e}"))?;
                // 409: hung already by an overlapping fault.
                if !answer.status().is_success() && answer.status() != reqwest::StatusCode::CONFLICT {
                    return Err(format!("Toxiproxy refused the {HANG} toxic: {}", answer.status()));
                }
            }
            Kind::DynamoDbThrottled => {
                table
                    .add(json!({"operation": "PutItem", "error": "ProvisionedThroughputExceededException"}))
                    .await
            }
            Kind::DynamoDb5xx => {
                table
                    .add(json!({"operation": "PutItem", "error": "InternalServerError"}))
                    .await
            }
            Kind::DynamoDbSlow => table.add(json!({"operation": "PutItem", "delay_ms": 3000})).await,
            Kind::SinkCrashed => {
                // Writes held at the proxy, so that the kill lands while a batch is being stored.
                table
                    .add(json!({"operation": "PutItem", "delay_ms": 2000, "times": 10}))
                    .await;
                tokio::time::sleep(Duration::from_millis(1500)).await;
                crash_and_restart(sink).await?;
            }
            Kind::TaskFailed => {
                // Apart, so a broker away does not hold up the faults (its return among them).
                let records = sink.task_fail_records(self.task_failures).to_vec();
                self.sending
                    .push(tokio::spawn(self.producer.clone().send_all(sink.topic, records)));
                self.task_failures += 1;
            }
            Kind::MonitorStateThrottled => {
                Faults::for_target(&self.state_table)
                    .add(json!({"error": "ProvisionedThroughputExceededException"}))
                    .await
            }
            Kind::ConnectorDeleted => {
                // A worker being restarted answers nothing: the delete is then moot.
                let _ = self.api.delete(sink.connector).await;
            }
            Kind::PoisonRecord => {}
        }
        Ok(())
    }

    async fn end(&self, f: &Fault) -> Result<(), String> {
        let disturbing = matches!(f.kind, Kind::WorkerKilled | Kind::BrokerRestarted | Kind::BrokerHung);
        if disturbing {
            self.disturbed.now();
        }
        let out = self.end_fault(f).await;
        if disturbing {
            // Again once it is over: a worker being started is disturbed until then.
            self.disturbed.now();
        }
        out
    }

    async fn end_fault(&self, f: &Fault) -> Result<(), String> {
        match f.kind {
            // A worker cannot join its group while the broker is down: the broker's return starts it.
            Kind::WorkerKilled if worker_running() || !broker_running() => {}
            Kind::WorkerKilled => start_worker().await?,
            Kind::BrokerRestarted => {
                if !broker_running() {
                    kafka_script(&["start-broker"]).await;
                }
                if !worker_running() {
                    start_worker().await?;
                }
            }
            Kind::BrokerHung => {
                // 404: an overlapping fault's end removed it already.
                self.http
                    .delete(format!("{}/proxies/kafka/toxics/{HANG}", self.toxiproxy))
                    .send()
                    .await
                    .map_err(|e| format!("Toxiproxy: {e}"))?;
            }
            Kind::DynamoDbThrottled | Kind::DynamoDb5xx | Kind::DynamoDbSlow => {
                Faults::for_target(&self.sinks[f.sink].table).clear().await
            }
            Kind::MonitorStateThrottled => Faults::for_target(&self.state_table).clear().await,
            Kind::SinkCrashed | Kind::TaskFailed | Kind::ConnectorDeleted | Kind::PoisonRecord => {}
        }
        Ok(())
    }
}

/// Kills a sink's function process with SIGKILL, and its watch server with it (cargo lambda watch
/// does not start a killed function again: every later invoke would hang), then serves the
/// function again from a new watch server on the same port, as Lambda replaces a crashed
/// environment. The connector's invocation in flight fails and is retried.
async fn crash_and_restart(sink: &SinkSpec) -> Result<(), String> {
    let pid_file = format!("{}/{}.pid", var("RUN_DIR")?, sink.server);
    let server = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("{pid_file}: {e}"))?
        .trim()
        .to_string();
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))
    };
    // The function runs in a session of its own, a child of the watch server.
    let found = run("pgrep", &["-P", &server, "-f", sink.function])?;
    let function = String::from_utf8_lossy(&found.stdout).trim().to_string();
    if function.is_empty() {
        return Err(format!("no {} process under {}", sink.function, sink.server));
    }
    for pid in function.lines() {
        run("kill", &["-KILL", pid])?;
    }
    run("kill", &["-KILL", "--", &format!("-{server}")])?;
    let start = format!("{}/{}.start", var("SOAK_DIR")?, sink.server);
    let out = tokio::process::Command::new("bash")
        .arg(&start)
        .output()
        .await
        .map_err(|e| format!("cannot run {start}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} did not start again: {}",
            sink.server,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Whether worker 1 runs (`scripts/kafka kill-worker` removes its pid file).
fn worker_running() -> bool {
    std::path::Path::new(&var("KAFKA_RUN").unwrap_or_default())
        .join("worker-1.pid")
        .exists()
}

/// Whether the broker runs (`scripts/kafka stop-broker` removes its pid file).
fn broker_running() -> bool {
    std::path::Path::new(&var("KAFKA_RUN").unwrap_or_default())
        .join("broker.pid")
        .exists()
}

/// Worker 1 started again on its port, as ECS starts a new task (the monitor finds it there).
async fn start_worker() -> Result<(), String> {
    let port = var("CONNECT_URL")?.rsplit(':').next().unwrap_or_default().to_string();
    kafka_script(&["add-worker", "1", &port]).await;
    Ok(())
}

/// The lines of a service's log written by the lives it started at or after `since` (the
/// `=== <time>: started` lines lib.sh writes; the log keeps its earlier lives, an earlier
/// soak's among them). A log without such lines is taken whole.
fn lives_since<'a>(text: &'a str, since: &str) -> Vec<&'a str> {
    let mut kept = Vec::new();
    let mut current = !text.lines().any(|l| l.starts_with("=== "));
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("=== ")
            && let Some((at, _)) = rest.split_once(": started ")
        {
            current = at >= since;
            continue;
        }
        if current {
            kept.push(line);
        }
    }
    kept
}

/// Lines with `panicked` in the logs of the soak's services: its watch servers (`soak-*.log`),
/// the workers' and the broker's (not those of the tests that ran before it in `scripts/test`,
/// nor of an earlier soak: only lives started since `SOAK_SINCE`).
fn panics_in_logs() -> Vec<String> {
    let since = var("SOAK_SINCE").unwrap_or_default();
    let mut found = Vec::new();
    for (dir, prefix) in [
        (var("RUN_DIR").unwrap_or_default(), "soak-"),
        (var("KAFKA_RUN").unwrap_or_default(), ""),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with(prefix)
                && name.ends_with(".log")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                found.extend(
                    lives_since(&text, &since)
                        .into_iter()
                        .filter(|l| l.contains("panicked"))
                        .map(|l| format!("{}: {}", path.display(), l.chars().take(200).collect::<String>())),
                );
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_lives_started_since_the_soak_are_read() {
        let log = "=== 2026-12-08T03:06:03Z: started cargo lambda watch\nthread 'main' panicked at old\n\
                   === 2026-12-08T03:39:25Z: started cargo lambda watch\nserving\n\
                   === 2026-12-08T03:41:00Z: started cargo lambda watch\nthread 'main' panicked at new\n";
        assert_eq!(
            lives_since(log, "2026-12-08T03:39:00Z"),
            ["serving", "thread 'main' panicked at new"]
        );
        assert_eq!(lives_since("no markers\npanicked", "2026-12-08T03:39:00Z").len(), 2);
    }

    fn tick(at: i64, broken: &[&str], run_ok: bool) -> Tick {
        Tick {
            looked_at: at,
            broken: broken.iter().map(|k| k.to_string()).collect(),
            run_ok,
            run_end: at + 500,
        }
    }

    fn notice(key: &str, state: &str, at: i64) -> (String, String, i64) {
        (key.to_string(), state.to_string(), at)
    }

    const TASK: &str = "task-failed:c/seatool-sink";
    const WORKER: &str = "worker-unreachable:c";

    #[test]
    fn a_fault_seen_before_a_run_needs_an_incident_open_then_or_opened_after() {
        let quiet = Disturbed::default();
        let ticks = [tick(100_000, &[TASK], true)];
        assert_eq!(unreported(&ticks, &quiet, &[]).1.len(), 1, "no incident at all");
        let covered = [notice(TASK, "resolved", 130_000), notice(TASK, "open", 100_300)];
        assert!(unreported(&ticks, &quiet, &covered).1.is_empty(), "opened by that run");
        let later = [notice(TASK, "open", 190_000)];
        assert!(
            unreported(&ticks, &quiet, &later).1.is_empty(),
            "opened later (a grace)"
        );
        let earlier = [notice(TASK, "open", 10_000), notice(TASK, "resolved", 50_000)];
        assert_eq!(
            unreported(&ticks, &quiet, &earlier).1.len(),
            1,
            "an incident resolved before is another fault's"
        );
        let other = [notice("task-failed:c/appian-sink", "open", 100_300)];
        assert_eq!(unreported(&ticks, &quiet, &other).1.len(), 1, "another connector's");
    }

    #[test]
    fn a_failed_run_or_a_worker_just_changed_expects_nothing() {
        let quiet = Disturbed::default();
        assert!(unreported(&[tick(100_000, &[TASK], false)], &quiet, &[]).1.is_empty());
        let restarted = Disturbed::default();
        restarted.0.lock().unwrap().push((70_000, 60_000));
        assert!(
            unreported(&[tick(100_000, &[TASK], true)], &restarted, &[])
                .1
                .is_empty()
        );
        assert_eq!(
            unreported(&[tick(100_000, &[WORKER], true)], &restarted, &[]).1.len(),
            1,
            "a worker that is down stays down: only a change during the run excuses it"
        );
        restarted.0.lock().unwrap().push((100_200, 60_000));
        assert!(
            unreported(&[tick(100_000, &[WORKER], true)], &restarted, &[])
                .1
                .is_empty()
        );
    }
}
