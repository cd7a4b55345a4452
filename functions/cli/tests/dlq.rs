//! `connectorctl dlq list|show|replay` against moto: letters sent by the sink's own SQS adapter,
//! replayed through the real DynamoDB store.

use connector_adapters::sqs::SqsDeadLetterQueue;
use connector_core::sink::ports::DeadLetterQueue;
use connector_core::sink::{Coordinates, DeadLetter};
use connector_tests::sink::Sink;
use connector_tests::{drain_queue, get_stored_item};
use serde_json::{Value, json};

const TOPIC: &str = "aws.ksqldb.seatool.agg.State_Plan";

fn letter(table: &'static str, offset: i64, key: &str, value: Option<String>) -> DeadLetter {
    DeadLetter {
        table,
        reason: "store rejected the item: Item size has exceeded the maximum allowed size".into(),
        coordinates: Coordinates {
            topic: TOPIC.into(),
            partition: 0,
            offset,
            timestamp: 1_732_435_200_000 + offset,
            epoch: 0,
        },
        key: Some(format!("\"{key}\"")),
        value,
    }
}

async fn ctl(sink: &Sink, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_connectorctl"))
        .args(args)
        .env(
            "CONNECTORCTL_CONFIG",
            std::env::temp_dir().join("connectorctl-dlq-none.json"),
        )
        .env("DEAD_LETTER_QUEUE_URL", &sink.config.dead_letter_queue_url)
        .env("TABLE_NAME", &sink.config.table_name)
        .output()
        .await
        .expect("run connectorctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn dlq_replay_stores_in_order_never_regresses_and_deletes_only_what_it_stored() {
    let sink = Sink::new(connector_core::sink::Table::Seatool).await;
    // The table already holds DL-2 at offset 25: its letter at offset 20 is older.
    let stored = json!([{"payload": {"timestamp": 1, "topic": TOPIC, "partition": 0, "offset": 25,
                                      "key": "\"DL-2\"", "value": "{\"V\":25}"}}]);
    assert_eq!(sink.results_of(&stored).await, ["written"]);

    let queue = SqsDeadLetterQueue::new(
        connector_adapters::sqs::Client::new(&sink.sdk),
        &sink.config.dead_letter_queue_url,
    );
    let binary = format!("{{\"V\": \"{}\"}}", "\u{1}".repeat(10));
    for l in [
        letter("seatool", 11, "DL-1", None), // a tombstone, after the put below in Kafka order
        letter("seatool", 10, "DL-1", Some("{\"V\":10}".into())),
        letter("seatool", 20, "DL-2", Some("{\"V\":20}".into())),
        letter("seatool", 30, "DL-3", Some(binary)),
        letter(
            "seatool",
            40,
            "DL-4",
            Some(format!("{{\"V\":\"{}\"}}", "x".repeat(300_000))),
        ),
        letter("appian", 50, "DL-5", Some("{\"V\":50}".into())),
    ] {
        queue.send(&l).await.expect("send a dead letter");
    }

    let (code, out, err) = ctl(&sink, &["dlq", "list", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["letter"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{listed}");
    assert!(names.contains(&"aws.ksqldb.seatool.agg.State_Plan-0@30"), "{names:?}");

    let (code, out, err) = ctl(&sink, &["dlq", "show", "aws.ksqldb.seatool.agg.State_Plan-0@30"]).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown["value"],
        format!("{{\"V\": \"{}\"}}", "\u{1}".repeat(10)),
        "decoded from base64"
    );

    // With the monitor's state named, the replay is in the audit trail, by its operator.
    let (state_table, cluster) = (
        connector_tests::unique("dlq-state"),
        connector_tests::unique("dlq-cluster"),
    );
    connector_tests::create_sink_table(&sink.sdk, &state_table).await;
    let audited = ["--state-table", state_table.as_str(), "--cluster", cluster.as_str()];
    let (code, out, err) = ctl(
        &sink,
        &[&["dlq", "replay", "--table", "seatool", "--json"][..], &audited].concat(),
    )
    .await;
    assert_eq!(code, 1, "some letters could not be replayed: {out} {err}");
    let (_, history, _) = ctl(&sink, &[&["history", "--json"][..], &audited].concat()).await;
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history[0]["kind"], "dlq-replay", "{history}");
    assert_eq!(history[0]["connector"], sink.config.table_name.as_str(), "{history}");
    let outcome = history[0]["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("1 deleted") && outcome.contains("2 stale") && outcome.contains("left"),
        "{outcome}"
    );
    assert!(
        history[0]["by"].as_str().unwrap().starts_with("connectorctl (arn:aws:"),
        "{history}"
    );
    let rows: Value = serde_json::from_str(&out).unwrap();
    let result = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["letter"] == format!("{TOPIC}-0@{name}"))
            .map(|r| {
                (
                    r["result"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap().to_string(),
                )
            })
            .unwrap_or_else(|| panic!("no row for {name}: {rows}"))
    };
    assert_eq!(
        result("10").0,
        "stale",
        "the tombstone at 11 is newer in the same replay"
    );
    assert_eq!(result("11").0, "deleted");
    assert_eq!(
        result("20").0,
        "stale",
        "older than the stored offset 25: never regressed"
    );
    assert_eq!(result("30").0, "left");
    assert!(result("30").1.starts_with("value is not JSON"), "{rows}");
    assert_eq!(result("50"), ("left".into(), "for the appian table".into()));
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"].as_str().unwrap().contains("truncated")),
        "{rows}"
    );

    let dl2 = sink.get("DL-2").await.expect("DL-2");
    assert_eq!((&dl2["V"], &dl2["@kafka"]["offset"]), (&json!(25), &json!(25)));
    let dl1 = get_stored_item(&sink.sdk, &sink.config.table_name, "DL-1")
        .await
        .expect("DL-1's tombstone");
    assert_eq!((&dl1["@deleted"], &dl1["@kafka"]["offset"]), (&json!(true), &json!(11)));
    // What was not stored is still in the queue, visible again at once.
    let mut left: Vec<i64> = drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url)
        .await
        .iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [30, 40, 50]);
}

#[tokio::test]
async fn dlq_replay_reads_a_claim_check_from_s3_and_deletes_both_once_stored() {
    let sink = Sink::with_claim_checks(connector_core::sink::Table::Seatool).await;
    // Storable (under DynamoDB's 400 KB) but over SQS's 256 KB: its body goes to S3.
    let value = format!("{{\"V\":\"{}\"}}", "x".repeat(300_000));
    sink.dlq
        .send(&letter("seatool", 60, "DL-BIG", Some(value)))
        .await
        .expect("send a dead letter");
    let (code, out, err) = ctl(&sink, &["dlq", "replay", "--table", "seatool", "--json"]).await;
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(
        sink.get("DL-BIG").await.expect("DL-BIG stored")["V"]
            .as_str()
            .map(str::len),
        Some(300_000)
    );
    assert!(
        drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url)
            .await
            .is_empty()
    );
    let objects = connector_adapters::sqs::s3_client(&sink.sdk)
        .list_objects_v2()
        .bucket(sink.config.dead_letter_bucket.as_ref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(objects.key_count(), Some(0), "the claim check's object is deleted too");
}
