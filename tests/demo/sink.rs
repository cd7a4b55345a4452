//! The driver of `scripts/demo`: feeds the sample batches in `events/sink/` through the real
//! sink binaries (served by `cargo lambda watch`, over the Lambda Invoke API) and prints what
//! each record became, what the tables hold, and what the dead-letter queue received; then runs
//! the seed's runbook against the real control binaries and the local Kafka Connect worker.
//!
//! `scripts/demo` starts moto, Kafka + Kafka Connect and one watch server per sink function, and
//! passes their addresses in `SEATOOL_WATCH_URL`, `APPIAN_WATCH_URL` and `CONNECT_URL`; the
//! table and queue names are fixed there too.

use std::time::Duration;

use connector_core::sink::decode_batch;
use connector_core::sink::mapping::{Mapped, Table, map_record};
use connector_tests::{create_queue, create_sink_table, drain_queue, event, scan, sdk};
use serde_json::{Value, json};

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set; run scripts/demo"))
}

struct Step {
    table: Table,
    file: &'static str,
    says: &'static str,
}

const STEPS: &[Step] = &[
    Step {
        table: Table::Seatool,
        file: "confluent-seatool-batch.json",
        says: "a first batch; NC-11-020 twice, MD-23-0031 with value fields named PK/SK",
    },
    Step {
        table: Table::Seatool,
        file: "confluent-seatool-replay.json",
        says: "a replay of older offsets, as after a task restart",
    },
    Step {
        table: Table::Seatool,
        file: "confluent-seatool-tombstone.json",
        says: "a tombstone for VA-24-0007",
    },
    Step {
        table: Table::Seatool,
        file: "confluent-seatool-replay.json",
        says: "the older replay again: VA-24-0007 must stay deleted",
    },
    Step {
        table: Table::Seatool,
        file: "confluent-seatool-poison.json",
        says: "poison records (bad JSON, a number key, no key) and one good record",
    },
    Step {
        table: Table::Appian,
        file: "confluent-appian-batch.json",
        says: "Appian: ids from payload.PCKG_ID, across partitions, a tombstone",
    },
    Step {
        table: Table::Appian,
        file: "esm-msk-appian.json",
        says: "the same function fed by a Lambda event source mapping (base64)",
    },
];

fn label(table: Table, record: &connector_core::sink::SourceRecord) -> String {
    match map_record(table, record) {
        Mapped::Write(w) => w.id,
        Mapped::Skip { .. } => "(no id)".into(),
        Mapped::DeadLetter { .. } => "(unreadable)".into(),
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let sdk = sdk().await;
    let seatool_table = var("SEATOOL_TABLE")?;
    let appian_table = var("APPIAN_TABLE")?;
    create_sink_table(&sdk, &seatool_table).await;
    create_sink_table(&sdk, &appian_table).await;
    let queue = create_queue(&sdk, &var("DEAD_LETTER_QUEUE_NAME")?).await;
    println!("created tables {seatool_table} and {appian_table}, dead-letter queue {queue}\n");

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())?;
    for step in STEPS {
        let (function, url) = match step.table {
            Table::Seatool => ("sinkSeatoolData", var("SEATOOL_WATCH_URL")?),
            Table::Appian => ("sinkAppianData", var("APPIAN_WATCH_URL")?),
        };
        let input = event(&format!("sink/{}", step.file));
        println!("── {function} ← events/sink/{}\n   {}", step.file, step.says);
        let response = client
            .post(format!("{url}/2015-03-31/functions/{function}/invocations"))
            .json(&input)
            .send()
            .await
            .map_err(|e| format!("invoke {function}: {e}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("{function} answered non-JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!("{function} failed ({status}): {body}"));
        }
        let records = decode_batch(&input).map_err(|e| e.to_string())?.records;
        match body.as_array() {
            Some(results) => {
                for (record, result) in records.iter().zip(results) {
                    let c = &record.coordinates;
                    println!(
                        "   {}-{}@{:<5} {:<12} {}",
                        c.topic,
                        c.partition,
                        c.offset,
                        label(step.table, record),
                        result["payload"]["result"].as_str().unwrap_or("?")
                    );
                }
            }
            None => println!("   summary: {body}"),
        }
        println!();
    }

    for table in [&seatool_table, &appian_table] {
        println!("── table {table}");
        let mut items: Vec<(String, Value)> = scan(&sdk, table).await.into_iter().collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, item) in items {
            let what = if item.get("tombstone").is_some() {
                "tombstone marker"
            } else {
                "item"
            };
            // The status field of each table's sample values, to show which version is stored.
            let status = item["SPW_STATUS"][0]["SPW_STATUS_DESC"]
                .as_str()
                .or(item["payload"]["PCKG_STUS"].as_str());
            println!(
                "   {key:<36} {what:<16} from {}-{}@{:<5} {}",
                item["kafkaTopic"].as_str().unwrap_or("?"),
                item["kafkaPartition"],
                item["kafkaOffset"],
                status.map(|s| format!("status {s:?}")).unwrap_or_default()
            );
        }
        println!();
    }
    println!("── dead-letter queue");
    for letter in drain_queue(&sdk, &queue).await {
        println!(
            "   {}-{}@{}: {}",
            letter["topic"].as_str().unwrap_or("?"),
            letter["partition"],
            letter["offset"],
            letter["reason"].as_str().unwrap_or("?")
        );
    }
    println!();
    control_plane(&sdk, &client).await
}

/// The seed's "Restarting a Connector" runbook, against the real control binaries.
async fn control_plane(sdk: &aws_config::SdkConfig, client: &reqwest::Client) -> Result<(), String> {
    let watch = var("SEATOOL_WATCH_URL")?;
    let connect = var("CONNECT_URL")?;
    let (name, topic, secret) = ("demo-file-sink", "demo.topic", "mako/connector/demo-file-sink");
    let file = std::env::temp_dir().join("connector-demo-file-sink.out");
    let _ = std::fs::remove_file(&file);
    let config = json!({"name": name, "config": {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                        "tasks.max": "1", "topics": topic, "file": file}});
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(secret)
        .secret_string(config.to_string())
        .send()
        .await
        .map_err(|e| format!("create secret: {e}"))?;
    println!("── control plane: Kafka Connect at {connect}, connector config in secret {secret}");
    let call = |function: &'static str, payload: Value| {
        let url = format!("{watch}/2015-03-31/functions/{function}/invocations");
        async move {
            let answer: Value = client
                .post(url)
                .json(&payload)
                .send()
                .await
                .map_err(|e| format!("invoke {function}: {e}"))?
                .json()
                .await
                .map_err(|e| format!("{function} answered non-JSON: {e}"))?;
            println!("   {function:<22} <- {payload}\n   {:<22} -> {answer}", "");
            Ok::<Value, String>(answer)
        }
    };
    let found = call(
        "findTaskIp",
        json!({"Context": {"Execution": {"Input": {"cluster": "demo-connect"}}}}),
    )
    .await?;
    let ip = found["ip"].clone();
    call("checkIfConnectIsReady", json!({"Payload": {"ip": ip}})).await?;
    let input = json!({"Payload": {"ip": ip}, "Context": {"Execution": {"Input": {"connectorConfigSecret": secret}}}});
    call("createConnector", input).await?;
    connector_tests::produce(topic, &[(Some("k1"), Some("hello")), (Some("k2"), Some("from Kafka"))]).await;
    let written = connector_tests::wait_for(Duration::from_secs(60), || async {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        text.contains("from Kafka").then_some(text)
    })
    .await
    .ok_or("the file sink did not write the records within 60 s")?;
    println!("   produced 2 records to {topic}; the connector wrote {written:?}");
    call(
        "deleteConnector",
        json!({"cluster": "demo-connect", "connectorName": name}),
    )
    .await?;
    call(
        "deleteConnector",
        json!({"cluster": "demo-connect", "connectorName": name}),
    )
    .await?;
    let _ = std::fs::remove_file(&file);
    Ok(())
}
