//! The driver of `scripts/demo`: the whole loop on one machine. Kafka topics → the stand-in
//! Lambda sink connector in a real Kafka Connect worker → the sink functions under
//! `cargo lambda watch` → DynamoDB on moto; the monitor (testConnectors) every few seconds, with
//! its alerts read back from a queue subscribed to the SNS topic. Faults are injected one by one:
//! a poison record, a deleted connector, a failed task.
//!
//! `scripts/demo` starts moto, Kafka + Kafka Connect and one watch server per sink function and
//! passes their addresses in `SEATOOL_WATCH_URL`, `APPIAN_WATCH_URL` and `CONNECT_URL`, and the
//! table and queue names in `SEATOOL_TABLE`, `APPIAN_TABLE`, `DEAD_LETTER_QUEUE_NAME`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use connector_adapters::connect::HttpConnectApi;
use connector_core::connect::{ConnectApi, State};
use connector_tests::monitor::{Monitor, findings};
use connector_tests::{
    create_queue, create_sink_table, drain_queue, event, lambda_sink_connector, produce, scan, sdk, status_reaches,
    task_is,
};
use serde_json::Value;

const SEATOOL_TOPIC: &str = "aws.ksqldb.seatool.agg.State_Plan";
const APPIAN_TOPIC: &str = "aws.appian.cmcs.MCP_SPA_PCKG";
const TICK: Duration = Duration::from_secs(3);

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set; run scripts/demo"))
}

struct Demo {
    started: Instant,
    sdk: aws_config::SdkConfig,
    api: HttpConnectApi,
    monitor: Monitor,
    tables: [(String, &'static str); 2],
    dlq: String,
    /// Items already shown, by table and id, with the offset shown.
    shown: HashMap<(String, String), i64>,
    alerts: Vec<String>,
    restarts: u32,
    recreations: u32,
    dead_letters: usize,
}

impl Demo {
    fn say(&self, text: &str) {
        println!("[{:>5.1}s] {text}", self.started.elapsed().as_secs_f64());
    }

    fn step(&self, title: &str) {
        println!("\n── {title}");
    }

    /// Prints items that are new or changed since last shown; returns how many.
    async fn show_new_items(&mut self) -> usize {
        let mut fresh = 0;
        for (table, label) in self.tables.clone() {
            let mut items: Vec<Value> = scan(&self.sdk, &table).await.into_values().collect();
            items.sort_by_key(|i| i["@kafka"]["offset"].as_i64());
            for item in items {
                let (Some(pk), Some(sk)) = (item["PK"].as_str(), item["SK"].as_str()) else {
                    continue;
                };
                let offset = item["@kafka"]["offset"].as_i64().unwrap_or(-1);
                let key = (table.clone(), sk.to_string());
                if self.shown.get(&key) == Some(&offset) {
                    continue;
                }
                self.shown.insert(key, offset);
                fresh += 1;
                let what = if item.get("@deleted").is_some() {
                    "deleted (tombstone)"
                } else {
                    "stored"
                };
                self.say(&format!(
                    "{label} table: {pk} {what} (from {}-{}@{offset})",
                    item["@kafka"]["topic"].as_str().unwrap_or("?"),
                    item["@kafka"]["partition"]
                ));
            }
        }
        fresh
    }

    /// One monitor run: prints its findings' actions and any alert it sent.
    async fn monitor_tick(&mut self) -> Value {
        let report = self.monitor.run().await;
        for c in report["connectors"].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("");
            for f in findings(&report, name) {
                let action = f["action"].as_str().unwrap_or("reported");
                let cause = f["cause"].as_str().map(|c| format!(" (cause {c})")).unwrap_or_default();
                self.say(&format!(
                    "monitor: {} {name}{cause}: {action}",
                    f["category"].as_str().unwrap_or("")
                ));
                if action.starts_with("restart ") && action.contains("requested") {
                    self.restarts += 1;
                }
                if action.starts_with("recreated") {
                    self.recreations += 1;
                }
            }
        }
        for alert in self.monitor.alerts().await {
            let runbook = alert
                .body
                .lines()
                .find_map(|l| l.strip_prefix("Runbook: "))
                .and_then(|u| u.rsplit('/').next())
                .map(|page| format!(" → runbooks/{page}"))
                .unwrap_or_default();
            self.say(&format!("ALERT {}{runbook}", alert.subject));
            self.alerts.push(alert.subject);
        }
        report
    }

    /// Shows items and runs the monitor every few seconds until `done` holds (or a limit).
    async fn watch_until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Demo, &Value) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            self.show_new_items().await;
            let report = self.monitor_tick().await;
            if done(self, &report) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("gave up waiting for {what}"));
            }
            tokio::time::sleep(TICK).await;
        }
    }

    async fn show_dead_letters(&mut self) {
        let letters = drain_queue(&self.sdk, &self.dlq).await;
        for l in &letters {
            self.say(&format!(
                "dead-letter queue: {}-{}@{} — {}",
                l["topic"].as_str().unwrap_or("?"),
                l["partition"],
                l["offset"],
                l["reason"].as_str().unwrap_or("")
            ));
        }
        self.dead_letters += letters.len();
    }

    async fn wait_task(&self, name: &str, state: State, limit: Duration) -> Result<(), String> {
        if status_reaches(&self.api, name, limit, task_is(state.clone())).await {
            Ok(())
        } else {
            Err(format!("{name} never had its task {state:?}"))
        }
    }
}

/// The records of a sample batch in `events/sink/`, as (key, value) texts.
fn sample(file: &str) -> Vec<(Option<String>, Option<String>)> {
    let text = |v: &Value| match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    event(&format!("sink/{file}"))
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (text(&r["payload"]["key"]), text(&r["payload"]["value"])))
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let sdk = sdk().await;
    let (seatool, appian) = (var("SEATOOL_TABLE")?, var("APPIAN_TABLE")?);
    let connect = var("CONNECT_URL")?;
    let mut demo = Demo {
        started: Instant::now(),
        api: HttpConnectApi::new(&connect, Duration::from_secs(10)).map_err(|e| e.to_string())?,
        // Resolved after 30 s of health rather than the deployed 10 minutes (RESOLVE_AFTER_MINUTES).
        monitor: Monitor::with_url(&connect)
            .await
            .reconfigured(|c| c.resolve_after = Duration::from_secs(30)),
        tables: [(seatool.clone(), "seatool"), (appian.clone(), "appian")],
        dlq: String::new(),
        sdk,
        shown: HashMap::new(),
        alerts: Vec::new(),
        restarts: 0,
        recreations: 0,
        dead_letters: 0,
    };

    demo.step("Setting up on moto");
    create_sink_table(&demo.sdk, &seatool).await;
    create_sink_table(&demo.sdk, &appian).await;
    demo.dlq = create_queue(&demo.sdk, &var("DEAD_LETTER_QUEUE_NAME")?).await;
    let connectors = [
        (
            "seatool-sink",
            SEATOOL_TOPIC,
            "sinkSeatoolData",
            var("SEATOOL_WATCH_URL")?,
        ),
        ("appian-sink", APPIAN_TOPIC, "sinkAppianData", var("APPIAN_WATCH_URL")?),
    ];
    for (name, topic, function, watch) in &connectors {
        demo.monitor
            .desire(name, &lambda_sink_connector(topic, function, watch))
            .await;
    }
    demo.say(&format!(
        "tables {seatool} and {appian}, the dead-letter queue, the monitor-state table, the alerts topic with a \
         queue subscribed, and the two connector configs as secrets under {}",
        demo.monitor.prefix
    ));

    demo.step("Creating the connectors from their secrets (the stand-in Lambda sink connector)");
    for (name, topic, function, watch) in &connectors {
        demo.api
            .put_config(name, &lambda_sink_connector(topic, function, watch))
            .await
            .map_err(|e| format!("create {name}: {e}"))?;
        demo.say(&format!("{name}: {topic} → {function}"));
    }
    for (name, ..) in &connectors {
        demo.wait_task(name, State::Running, Duration::from_secs(60)).await?;
    }
    demo.say("both connectors RUNNING");

    demo.step("Producing the sample Seatool and Appian records (events/sink/) into their topics");
    produce(SEATOOL_TOPIC, &sample("confluent-seatool-batch.json")).await;
    produce(APPIAN_TOPIC, &sample("confluent-appian-batch.json")).await;
    demo.watch_until("the sample records", Duration::from_secs(120), |d, _| {
        d.shown.len() >= 5
    })
    .await?;
    demo.show_dead_letters().await;

    demo.step("Fault 1: a poison record (not JSON) between two good ones");
    produce(
        SEATOOL_TOPIC,
        &[
            (
                Some("\"SC-25-0001\""),
                Some(r#"{"STATE_PLAN": {"ID_NUMBER": "SC-25-0001", "STATE_CODE": "SC"}}"#),
            ),
            (Some("\"SC-25-0002\""), Some("{\"STATE_PLAN\": this is not JSON")),
            (
                Some("\"SC-25-0003\""),
                Some(r#"{"STATE_PLAN": {"ID_NUMBER": "SC-25-0003", "STATE_CODE": "SC"}}"#),
            ),
        ],
    )
    .await;
    let before = demo.dead_letters;
    let deadline = Instant::now() + Duration::from_secs(60);
    while demo.dead_letters == before && Instant::now() < deadline {
        demo.show_new_items().await;
        demo.show_dead_letters().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    demo.show_new_items().await;
    demo.say("the poison record is in the dead-letter queue; the records around it are stored; the task keeps RUNNING");

    demo.step("Fault 2: someone deletes the appian-sink connector");
    demo.api.delete("appian-sink").await.map_err(|e| e.to_string())?;
    demo.say("DELETE /connectors/appian-sink");
    demo.watch_until("the recreation to resolve", Duration::from_secs(120), |d, _| {
        d.alerts.iter().any(|a| a.starts_with("[RESOLVED] connector-missing"))
    })
    .await?;

    demo.step("Fault 3: the seatool table disappears, so the sink function fails and the task FAILS");
    aws_sdk_dynamodb::Client::new(&demo.sdk)
        .delete_table()
        .table_name(&seatool)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    demo.shown.retain(|(table, _), _| table != &seatool);
    produce(
        SEATOOL_TOPIC,
        &[(
            Some("\"TX-25-0042\""),
            Some(r#"{"STATE_PLAN": {"ID_NUMBER": "TX-25-0042", "STATE_CODE": "TX"}}"#),
        )],
    )
    .await;
    demo.wait_task("seatool-sink", State::Failed, Duration::from_secs(90))
        .await?;
    demo.say("seatool-sink task 0 FAILED (Lambda function error: the table is gone)");
    demo.say("the cause is fixed: the table is created again (its items were lost with it; the new record is not)");
    create_sink_table(&demo.sdk, &seatool).await;
    demo.say("resolved once it has run healthy 30 s (10 minutes deployed: a failure that returns stays one incident)");
    demo.watch_until("the restart to resolve", Duration::from_secs(180), |d, _| {
        d.alerts.iter().any(|a| a.starts_with("[RESOLVED] task-failed"))
    })
    .await?;
    demo.show_new_items().await;

    demo.step("Summary");
    // Live items and tombstone markers apart: a deleted record leaves a marker, not an item.
    let count = |table: &str| {
        let table = table.to_string();
        let sdk = demo.sdk.clone();
        async move {
            let items = scan(&sdk, &table).await;
            let deleted = items.values().filter(|i| i["@deleted"] == true).count();
            (items.len() - deleted, deleted)
        }
    };
    let ((seatool_live, seatool_deleted), (appian_live, appian_deleted)) =
        (count(&seatool).await, count(&appian).await);
    println!(
        "  items: seatool {seatool_live} live, {seatool_deleted} tombstones; appian {appian_live} live, {appian_deleted} tombstones"
    );
    println!("  dead letters: {}", demo.dead_letters);
    println!(
        "  restarts by the monitor: {}; connectors recreated: {}",
        demo.restarts, demo.recreations
    );
    println!("  alerts ({}):", demo.alerts.len());
    for a in &demo.alerts {
        println!("    {a}");
    }
    println!("  took {:.0}s", demo.started.elapsed().as_secs_f64());
    Ok(())
}
