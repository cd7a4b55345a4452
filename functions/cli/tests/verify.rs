//! `connectorctl verify` against a real topic (the broker `scripts/test` starts, read over TLS)
//! and a real table (moto) that the sink's own handler wrote: every class a test can plant is
//! found, and `--repair` makes the table clean without overwriting a newer record.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use connector_adapters::dynamodb::DynamoDbRecordStore;
use connector_adapters::sink_table::DynamoDbTableReader;
use connector_core::sink::verify::{Class, Repaired, VerifyRequest, repair, verify};
use connector_core::sink::{SourceRecord, Table};
use connector_tests::sink::Sink;
use connector_tests::{confluent_batch, connect_url, create_sink_table, produce, tls_brokers, topic_records, unique};
use serde_json::json;

mod common;
use common::{Run, ctl_env};

/// connectorctl with the brokers over TLS and no context file of the user's.
async fn ctl(args: &[&str]) -> Run {
    let bootstrap = std::env::var("KAFKA_TLS_BOOTSTRAP").expect("KAFKA_TLS_BOOTSTRAP");
    let ca = connector_tests::monitor::broker_ca();
    let config = std::env::temp_dir().join(unique("verify")).join("none.json");
    let brokers = ["--kafka-bootstrap", bootstrap.as_str(), "--kafka-ca-file", ca.as_str()];
    ctl_env(&config, &[args, &brokers[..]].concat(), &[]).await
}

fn seatool_record(key: &str, value: Option<&str>) -> (Option<String>, Option<String>) {
    (Some(format!("\"{key}\"")), value.map(String::from))
}

#[tokio::test]
async fn verify_finds_every_planted_class_and_repair_makes_the_table_clean() {
    let sink = Sink::new(Table::Seatool).await;
    let table = sink.config.table_name.clone();
    let dlq = sink.config.dead_letter_queue_url.clone();
    let topic = unique("verify-seatool");
    let v = |n: u32| format!(r#"{{"STATE":"v{n}","AMOUNT":1.50}}"#);
    produce(
        &topic,
        &[
            seatool_record("OK", Some(&v(1))),
            seatool_record("MISSING", Some(&v(1))),
            seatool_record("REGRESSED", Some(&v(1))),
            seatool_record("REGRESSED", Some(&v(2))),
            seatool_record("RESURRECTED", Some(&v(1))),
            seatool_record("RESURRECTED", None),
            seatool_record("MISMATCHED", Some(&v(1))),
            seatool_record("AHEAD", Some(&v(1))),
            seatool_record("DELETED", Some(&v(1))),
            seatool_record("DELETED", None),
            seatool_record("OLD-SERVICE", Some(&v(1))),
            seatool_record("POISON", Some("not json")),
            seatool_record("LOST", Some("[1, 2]")),
        ],
    )
    .await;
    let records = topic_records(&topic).await;
    assert_eq!(records.len(), 13, "{records:?}");
    let at = |i: usize| &records[i];

    // The sink stores what it is given: all of it but the records each class leaves out.
    let given: Vec<&SourceRecord> = [0, 2, 4, 6, 7, 8, 9, 11].into_iter().map(at).collect();
    sink.send_batch(&confluent_batch(&given))
        .await
        .expect("the sink stores the batch");
    // AHEAD: a newer record (as if produced after the topic was read) already stored.
    let mut newer = at(7).clone();
    newer.coordinates.offset = 1_000;
    // EXTRA: an item of the sink's whose key no record of the topic names.
    let mut extra = at(0).clone();
    extra.key = connector_core::sink::Field::Text("\"EXTRA\"".into());
    extra.coordinates.offset = 500;
    sink.send_batch(&confluent_batch(&[&newer, &extra]))
        .await
        .expect("stored");
    let client = aws_sdk_dynamodb::Client::new(&sink.sdk);
    // MISMATCHED: the item edited by hand after the sink wrote it.
    client
        .update_item()
        .table_name(&table)
        .key("PK", AttributeValue::S("MISMATCHED".into()))
        .key("SK", AttributeValue::S("MISMATCHED".into()))
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "STATE")
        .expression_attribute_values(":s", AttributeValue::S("edited".into()))
        .send()
        .await
        .unwrap();
    // The old service's items (no @kafka): one under a key the topic names, one under none.
    for id in ["OLD-SERVICE", "OLD-ONLY"] {
        let item: HashMap<String, AttributeValue> = [("PK", id), ("SK", id), ("STATE", "old")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), AttributeValue::S(v.into())))
            .collect();
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    let run = ctl(&["verify", "--table", &table, "--topic", &topic, "--dlq", &dlq, "--json"]).await;
    assert_eq!(run.code, 1, "a loss exits 1: {}", run.stderr);
    let report = run.json();
    assert_eq!(
        report["counts"],
        json!({"missing": 2, "regressed": 1, "resurrected": 1, "mismatched": 1, "lost": 1,
               "ahead": 1, "extra": 1, "foreign": 1, "refused": 2}),
        "{report:#}"
    );
    assert_eq!(
        (report["records"].as_u64(), report["keys"].as_u64()),
        (Some(13), Some(8)),
        "{report:#}"
    );
    let keys = |class: &str| -> Vec<String> {
        let mut keys: Vec<String> = report["samples"][class]
            .as_array()
            .unwrap_or_else(|| panic!("no {class} samples: {report:#}"))
            .iter()
            .map(|s| s["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys("missing"), ["MISSING", "OLD-SERVICE"]);
    assert_eq!(keys("regressed"), ["REGRESSED"]);
    assert_eq!(keys("resurrected"), ["RESURRECTED"]);
    assert_eq!(keys("mismatched"), ["MISMATCHED"]);
    assert_eq!(keys("ahead"), ["AHEAD"]);
    assert_eq!(keys("extra"), ["EXTRA"]);
    assert_eq!(keys("foreign"), ["OLD-ONLY"]);
    assert_eq!(
        keys("lost"),
        [format!("{topic}-0@12")],
        "the letter of offset 12 never reached the queue"
    );
    let regressed = &report["samples"]["regressed"][0];
    assert_eq!(
        (
            regressed["topic"]["offset"].as_i64(),
            regressed["table"]["offset"].as_i64()
        ),
        (Some(3), Some(2))
    );
    let human = ctl(&["verify", "seatool", "--table", &table, "--topic", &topic]).await;
    assert_eq!(human.code, 1);
    assert!(
        human
            .stdout
            .contains("verdict: the table does not hold the newest record of every key")
            && human.stdout.contains("REGRESSED"),
        "{}",
        human.stdout
    );

    // A repair shows its plan, and writes nothing unasked.
    let dry = ctl(&[
        "verify",
        "--table",
        &table,
        "--topic",
        &topic,
        "--repair",
        "--dry-run",
        "--json",
    ])
    .await;
    assert_eq!(dry.code, 1, "{}", dry.stderr);
    assert_eq!(
        dry.json()["repair"]["plan"].as_array().map(Vec::len),
        Some(5),
        "{}",
        dry.stdout
    );
    let unasked = ctl(&["verify", "--table", &table, "--topic", &topic, "--repair"]).await;
    assert_eq!(unasked.code, 2, "no terminal, no --yes: {}", unasked.stderr);
    assert!(unasked.stderr.contains("--yes"), "{}", unasked.stderr);
    assert!(sink.get("MISSING").await.is_none(), "nothing written");

    let (state_table, cluster) = (unique("verify-state"), unique("verify-cluster"));
    create_sink_table(&sink.sdk, &state_table).await;
    let audited = ["--state-table", state_table.as_str(), "--cluster", cluster.as_str()];
    let repaired = ctl(&[
        &[
            "verify", "--table", &table, "--topic", &topic, "--repair", "--yes", "--json",
        ][..],
        &audited,
    ]
    .concat())
    .await;
    assert_eq!(repaired.code, 0, "{}\n{}", repaired.stdout, repaired.stderr);
    let out = repaired.json();
    assert_eq!(
        (out["repair"]["written"].as_u64(), out["repair"]["failed"].as_u64()),
        (Some(5), Some(0)),
        "{out:#}"
    );
    let history = ctl(&[&["history", &table, "--json"][..], &audited].concat())
        .await
        .json();
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["repair"; 5], "{history:#}");

    let after = ctl(&[
        "verify",
        "--table",
        &table,
        "--topic",
        &topic,
        "--dlq",
        &dlq,
        "--json",
        "--consistent",
        "--segments",
        "3",
    ])
    .await;
    let counts = &after.json()["counts"];
    assert_eq!(
        (
            counts["missing"].as_u64(),
            counts["regressed"].as_u64(),
            counts["resurrected"].as_u64(),
            counts["mismatched"].as_u64()
        ),
        (Some(0), Some(0), Some(0), Some(0)),
        "{counts}"
    );
    assert_eq!(counts["lost"], 1, "a repair cannot write a refused record: still lost");
    assert_eq!(sink.get("REGRESSED").await.unwrap()["STATE"], "v2");
    assert!(sink.get("RESURRECTED").await.is_none());
    assert_eq!(sink.get("MISMATCHED").await.unwrap()["STATE"], "v1");
    assert_eq!(sink.get("OLD-SERVICE").await.unwrap()["STATE"], "v1");
    assert_eq!(
        ctl(&["verify", "--table", &table, "--topic", &topic]).await.code,
        0,
        "clean without the queue"
    );
    let strict = ctl(&["verify", "--table", &table, "--topic", &topic, "--strict"]).await;
    assert_eq!(strict.code, 1, "EXTRA is a loss when strict: {}", strict.stdout);
}

#[tokio::test]
async fn verify_refuses_what_does_not_exist_with_a_clear_error() {
    let sdk = connector_tests::sdk().await;
    let table = unique("verify-seatool-table");
    create_sink_table(&sdk, &table).await;
    let no_topic = ctl(&["verify", "--table", &table, "--topic", "no-such-topic-here"]).await;
    assert_eq!(no_topic.code, 2, "{}", no_topic.stderr);
    assert!(
        no_topic.stderr.contains("no topic no-such-topic-here"),
        "{}",
        no_topic.stderr
    );
    let topic = unique("verify-exists");
    produce(&topic, &[seatool_record("A", Some("{}"))]).await;
    let no_table = ctl(&["verify", "seatool", "--table", "no-such-table", "--topic", &topic]).await;
    assert_eq!(no_table.code, 2, "{}", no_table.stderr);
    assert!(
        no_table.stderr.contains("no DynamoDB table no-such-table"),
        "{}",
        no_table.stderr
    );
    let unread = ctl(&[
        "verify",
        "seatool",
        "--table",
        &table,
        "--topic",
        &topic,
        "--connect-url",
        &connect_url(),
    ])
    .await;
    assert_eq!(unread.code, 2, "{}", unread.stderr);
    assert!(
        unread.stderr.contains(&format!("no connector reads {topic}")),
        "{}",
        unread.stderr
    );
    let which = ctl(&["verify", "--table", "items", "--topic", &topic]).await;
    assert_eq!(which.code, 2);
    assert!(which.stderr.contains("verify seatool|appian"), "{}", which.stderr);
}

#[tokio::test]
async fn repair_never_overwrites_a_record_the_sink_stored_meanwhile() {
    let sink = Sink::new(Table::Appian).await;
    let topic = unique("verify-appian");
    let value = |id: u32, status: &str| Some(format!(r#"{{"payload":{{"PCKG_ID":{id},"STATUS":"{status}"}}}}"#));
    produce(
        &topic,
        &[
            (None, value(7, "draft")),
            (None, value(8, "draft")),
            (Some(r#"{"PCKG_ID":8}"#.to_string()), None), // a tombstone names its package in the key
            (None, value(9, "draft")),
        ],
    )
    .await;
    let records = topic_records(&topic).await;
    // The sink missed 7 and 9, and saw 8's put and tombstone.
    sink.send_batch(&confluent_batch(&[&records[1], &records[2]]))
        .await
        .expect("stored");
    let request = VerifyRequest {
        table: Table::Appian,
        table_name: sink.config.table_name.clone(),
        topic: topic.clone(),
        since: None,
        until: None,
        committed: Default::default(),
        epoch: 0,
        segments: 2,
        samples: 10,
        strict: true,
        keep_differences: true,
    };
    let client = aws_sdk_dynamodb::Client::new(&sink.sdk);
    let scanner = DynamoDbTableReader::new(client.clone(), &sink.config.table_name, true);
    let (report, differences) = verify(&tls_brokers(), &scanner, &request, None).await.unwrap();
    assert_eq!((report.count(Class::Missing), report.tombstones), (2, 1), "{report:?}");

    // Between the verify and the repair, the running sink stores a newer record of package 7.
    let mut newer = records[0].clone();
    newer.coordinates.offset = 100;
    newer.value = connector_core::sink::Field::Text(r#"{"payload":{"PCKG_ID":7,"STATUS":"approved"}}"#.into());
    sink.send_batch(&confluent_batch(&[&newer])).await.expect("stored");

    let store = DynamoDbRecordStore::new(client, &sink.config.table_name);
    let done = repair(&tls_brokers(), &store, Table::Appian, 0, &differences).await;
    let outcome = |key: &str| done.iter().find(|(d, _)| d.key == key).map(|(_, r)| r.clone());
    assert_eq!(outcome("7"), Some(Repaired::SkippedNewer));
    assert_eq!(outcome("9"), Some(Repaired::Written));
    assert_eq!(
        sink.get("7").await.unwrap()["payload"]["STATUS"],
        "approved",
        "the newer record stays"
    );
    assert_eq!(sink.get("9").await.unwrap()["payload"]["STATUS"], "draft");
    let (after, _) = verify(&tls_brokers(), &scanner, &request, None).await.unwrap();
    assert!(!after.has_loss(), "{after:?}");
    assert_eq!(after.count(Class::Ahead), 1, "7 is ahead of the topic: {after:?}");
}

#[tokio::test]
async fn a_window_reads_only_its_records_looks_up_only_their_keys_and_leaves_recent_ones_pending() {
    let sink = Sink::new(Table::Seatool).await;
    let table = sink.config.table_name.clone();
    let topic = unique("verify-window");
    produce(&topic, &[seatool_record("EARLY", Some("{}"))]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let since = connector_adapters::now_millis();
    let since = chrono_free_iso(since);
    tokio::time::sleep(Duration::from_millis(500)).await;
    produce(
        &topic,
        &[
            seatool_record("LATE", Some("{}")),
            seatool_record("LOST-LATE", Some("{}")),
        ],
    )
    .await;
    let records = topic_records(&topic).await;
    // The sink stored LATE only, and an item no record of the window names.
    let mut other = records[0].clone();
    other.key = connector_core::sink::Field::Text("\"OTHER\"".into());
    sink.send_batch(&confluent_batch(&[&records[1], &other]))
        .await
        .expect("stored");

    let window = ctl(&[
        "verify", "seatool", "--table", &table, "--topic", &topic, "--since", &since, "--lookup", "--json",
    ])
    .await;
    assert_eq!(window.code, 1, "{}", window.stderr);
    let report = window.json();
    assert_eq!(
        (
            report["records"].as_u64(),
            report["keys"].as_u64(),
            report["items"].as_u64()
        ),
        (Some(2), Some(2), Some(1)),
        "{report:#}"
    );
    assert_eq!(report["samples"]["missing"][0]["key"], "LOST-LATE", "{report:#}");
    assert_eq!(
        report["counts"]["extra"], 0,
        "the table's other keys are not read: {report:#}"
    );
    assert!(
        report["since"].as_str().unwrap().starts_with(&since[..19]),
        "to the second: {report:#}"
    );

    let scanned = ctl(&["verify", "seatool", "--table", &table, "--topic", &topic, "--json"])
        .await
        .json();
    assert_eq!(
        (
            scanned["counts"]["missing"].as_u64(),
            scanned["counts"]["extra"].as_u64()
        ),
        (Some(2), Some(1)),
        "{scanned:#}"
    );

    let settling = ctl(&[
        "verify", "seatool", "--table", &table, "--topic", &topic, "--settle", "1h", "--json",
    ])
    .await;
    assert_eq!(settling.code, 0, "nothing is old enough to judge: {}", settling.stdout);
    assert_eq!(
        (settling.json()["pending"].as_u64(), settling.json()["keys"].as_u64()),
        (Some(3), Some(0))
    );
}

/// `2026-12-07T11:30:00.123Z` for ms since the epoch (the CLI takes RFC 3339).
fn chrono_free_iso(ms: i64) -> String {
    let secs = connector_core::monitor::time::iso8601(ms);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms.rem_euclid(1000))
}

#[tokio::test]
async fn a_table_larger_than_a_scan_page_is_read_whole() {
    let sink = Sink::new(Table::Seatool).await;
    let topic = unique("verify-pages");
    produce(&topic, &[seatool_record("ONE", Some("{}"))]).await;
    let records = topic_records(&topic).await;
    // 1,500 items the sink wrote under keys the topic does not name: more than one page of 1,000.
    let store = DynamoDbRecordStore::new(aws_sdk_dynamodb::Client::new(&sink.sdk), &sink.config.table_name);
    let writes: Vec<_> = (0..1_500)
        .map(|i| {
            let mut r = records[0].clone();
            r.key = connector_core::sink::Field::Text(format!("\"PAGE-{i:04}\""));
            match connector_core::sink::mapping::map_record(Table::Seatool, &r) {
                connector_core::sink::mapping::Mapped::Write(w) => w,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    let mut writers = tokio::task::JoinSet::new();
    for chunk in writes.chunks(100) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        writers.spawn(async move {
            for w in &chunk {
                connector_core::sink::ports::RecordStore::apply(&store, w)
                    .await
                    .expect("stored");
            }
        });
    }
    writers.join_all().await;
    let request = VerifyRequest {
        table: Table::Seatool,
        table_name: sink.config.table_name.clone(),
        topic,
        since: None,
        until: None,
        committed: Default::default(),
        epoch: 0,
        segments: 1,
        samples: 1,
        strict: false,
        keep_differences: false,
    };
    let reader = DynamoDbTableReader::new(aws_sdk_dynamodb::Client::new(&sink.sdk), &sink.config.table_name, true);
    let (report, _) = verify(&tls_brokers(), &reader, &request, None).await.unwrap();
    assert_eq!(
        (report.items, report.count(Class::Extra), report.count(Class::Missing)),
        (1_500, 1_500, 1),
        "{report:?}"
    );
}
