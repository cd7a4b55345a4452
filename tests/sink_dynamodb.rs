//! The sink end to end through its real adapters: the handler over DynamoDB and SQS on moto.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use connector_core::sink::memory::InMemoryRecordStore;
use connector_core::sink::ports::{Applied, RecordStore};
use connector_core::sink::{Coordinates, Table, Write, WriteOp};
use connector_lambdas::sink::handle;
use connector_tests::sink::{Sink, TOMBSTONE_TTL};
use connector_tests::{create_queue, create_sink_table, drain_queue, get_stored_item, scan, sdk, unique};
use serde_json::{Value, json};

#[tokio::test]
async fn a_batch_is_upserted_with_its_coordinates_and_the_key_wins_over_value_fields() {
    let sink = Sink::new(Table::Seatool).await;
    assert_eq!(
        sink.results("confluent-seatool-batch.json").await,
        ["stale", "written", "written", "written"]
    );

    let nc = sink.get("NC-11-020").await.expect("NC-11-020 stored");
    assert_eq!(
        nc["SPW_STATUS"][0]["SPW_STATUS_DESC"], "Approved",
        "the newest record of the batch"
    );
    assert_eq!(
        nc["@kafka"],
        json!({"topic": "aws.ksqldb.seatool.agg.State_Plan", "partition": 0, "offset": 1043,
               "timestamp": 1732435203000_i64, "epoch": 0})
    );
    let md = sink.get("MD-23-0031").await.expect("MD-23-0031 stored");
    assert_eq!(
        (&md["PK"], &md["SK"]),
        (&json!("MD-23-0031"), &json!("MD-23-0031")),
        "a value field PK/SK never overrides the key"
    );
    assert_eq!(md["STATE_PLAN"]["ID_NUMBER"], "MD-23-0031");
    assert_eq!(scan(&sink.sdk, &sink.config.table_name).await.len(), 3);
}

#[tokio::test]
async fn a_replayed_batch_and_an_older_batch_after_a_newer_one_are_stale() {
    let sink = Sink::new(Table::Seatool).await;
    sink.results("confluent-seatool-batch.json").await;
    let before = scan(&sink.sdk, &sink.config.table_name).await;
    assert_eq!(
        sink.results("confluent-seatool-batch.json").await,
        ["stale"; 4],
        "the whole batch again"
    );
    assert_eq!(
        sink.results("confluent-seatool-replay.json").await,
        ["stale", "stale"],
        "an older slice"
    );
    assert_eq!(
        scan(&sink.sdk, &sink.config.table_name).await,
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_tombstone_deletes_and_a_replayed_older_put_does_not_bring_the_item_back() {
    let sink = Sink::new(Table::Seatool).await;
    sink.results("confluent-seatool-batch.json").await;
    assert!(sink.get("VA-24-0007").await.is_some());
    assert_eq!(sink.results("confluent-seatool-tombstone.json").await, ["deleted"]);
    assert_eq!(sink.get("VA-24-0007").await, None);

    assert_eq!(sink.results("confluent-seatool-replay.json").await, ["stale", "stale"]);
    assert_eq!(sink.get("VA-24-0007").await, None, "still deleted after the replay");
    // The tombstone is the item itself: its key, its coordinates, `@deleted`, and an expiry.
    let tombstone = get_stored_item(&sink.sdk, &sink.config.table_name, "VA-24-0007")
        .await
        .expect("the tombstone");
    let fields: Vec<&str> = tombstone.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, ["@deleted", "@expires", "@kafka", "PK", "SK"], "{tombstone}");
    assert_eq!(
        (&tombstone["@deleted"], &tombstone["@kafka"]["offset"]),
        (&json!(true), &json!(1050))
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let expires = tombstone["@expires"].as_u64().unwrap();
    assert!(
        (now + TOMBSTONE_TTL.as_secs() - 60..=now + TOMBSTONE_TTL.as_secs()).contains(&expires),
        "expires {expires}, now {now}"
    );
    assert_eq!(
        scan(&sink.sdk, &sink.config.table_name).await.len(),
        3,
        "one item per id, deleted or not"
    );
    assert_eq!(
        sink.results("confluent-seatool-tombstone.json").await,
        ["stale"],
        "a replayed tombstone"
    );
}

/// An item as the original tables hold it (`compare-seatool-*`): the value's fields under the
/// id, and no Kafka coordinates, because the sink did not write it.
async fn put_foreign_item(sink: &Sink, id: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    aws_sdk_dynamodb::Client::new(&sink.sdk)
        .put_item()
        .table_name(&sink.config.table_name)
        .item("PK", AttributeValue::S(id.into()))
        .item("SK", AttributeValue::S(id.into()))
        .item("STATE_CODE", AttributeValue::S("from the original table".into()))
        .send()
        .await
        .expect("put a foreign item");
}

#[tokio::test]
async fn items_the_sink_did_not_write_are_overwritten_and_deleted_not_stale() {
    let sink = Sink::new(Table::Seatool).await;
    put_foreign_item(&sink, "NC-11-020").await;
    put_foreign_item(&sink, "VA-24-0007").await;
    assert_eq!(
        sink.results("confluent-seatool-batch.json").await,
        ["stale", "written", "written", "written"],
        "an item without coordinates is older than any record"
    );
    let nc = sink.get("NC-11-020").await.expect("NC-11-020 stored");
    assert_eq!(
        (&nc["@kafka"]["offset"], &nc["SPW_STATUS"][0]["SPW_STATUS_DESC"]),
        (&json!(1043), &json!("Approved"))
    );
    assert_eq!(nc.get("STATE_CODE"), None, "the record replaces the foreign item whole");

    put_foreign_item(&sink, "VA-24-0007").await;
    assert_eq!(sink.results("confluent-seatool-tombstone.json").await, ["deleted"]);
    assert_eq!(sink.get("VA-24-0007").await, None, "a tombstone deletes a foreign item");

    // The store tells an adopted item apart (counted in SinkItemsAdopted), and a stale write
    // returns what is stored.
    put_foreign_item(&sink, "FOREIGN-1").await;
    let write = Write {
        id: "FOREIGN-1".into(),
        coordinates: Coordinates {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            timestamp: 1,
            epoch: 0,
        },
        op: WriteOp::Put(serde_json::Map::new()),
    };
    assert_eq!(sink.store.apply(&write).await.unwrap(), Applied::Adopted);
    assert_eq!(
        sink.store.apply(&write).await.unwrap(),
        Applied::Stale {
            stored: Some(write.coordinates.clone())
        }
    );
}

/// Records of one batch at `offsets` of partition 0, each `at` ms, all for the id `id`.
fn batch_of(id: &str, records: &[(i64, i64)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(offset, at)| {
            json!({"payload": {"timestamp": at, "topic": "aws.ksqldb.seatool.agg.State_Plan", "partition": 0,
                               "offset": offset, "key": format!("\"{id}\""),
                               "value": json!({"OFFSET": offset}).to_string()}})
        })
        .collect();
    Value::Array(records)
}

#[tokio::test]
async fn a_recreated_topic_is_reported_as_a_rewind_and_a_raised_epoch_moves_on_without_regressing() {
    let mut sink = Sink::new(Table::Seatool).await;
    let hour = 3_600_000;
    let before = 1_732_435_200_000_i64;
    sink.results_of(&batch_of("RE-1", &[(500, before)])).await;

    // The topic is deleted and recreated: offsets start again at 0, an hour later.
    let recreated = batch_of("RE-1", &[(3, before + hour)]);
    let decoded = connector_core::sink::decode_batch(&recreated).unwrap();
    let report = connector_core::sink::sink_batch(
        Table::Seatool,
        &decoded,
        &sink.store,
        &sink.dlq,
        sink.config.max_in_flight,
    )
    .await
    .unwrap();
    assert_eq!(
        report.records[0].1.as_str(),
        "stale",
        "a lower offset never wins by itself"
    );
    assert_eq!(report.rewinds.len(), 1, "{report:?}");
    assert_eq!(
        (report.rewinds[0].record.offset, report.rewinds[0].stored.offset),
        (3, 500)
    );
    // A genuine replay is stale and no rewind.
    let replay = connector_core::sink::decode_batch(&batch_of("RE-1", &[(400, before - hour)])).unwrap();
    let report = connector_core::sink::sink_batch(
        Table::Seatool,
        &replay,
        &sink.store,
        &sink.dlq,
        sink.config.max_in_flight,
    )
    .await
    .unwrap();
    assert_eq!((report.records[0].1.as_str(), report.rewinds.len()), ("stale", 0));

    // The operator raises the epoch: the new incarnation wins, and within it offsets order again.
    sink.config.epoch = 1;
    assert_eq!(sink.results_of(&recreated).await, ["written"]);
    assert_eq!(sink.get("RE-1").await.unwrap()["OFFSET"], 3);
    assert_eq!(
        sink.results_of(&batch_of("RE-1", &[(2, before + 2 * hour)])).await,
        ["stale"],
        "offset 2 of the new topic is older than its offset 3"
    );
    // A late replay of the old incarnation, delivered under the old epoch, regresses nothing.
    sink.config.epoch = 0;
    assert_eq!(
        sink.results_of(&batch_of("RE-1", &[(501, before + 3 * hour)])).await,
        ["stale"]
    );
    assert_eq!(sink.get("RE-1").await.unwrap()["OFFSET"], 3);
}

#[tokio::test]
async fn poison_records_are_dead_lettered_and_readable_from_the_queue() {
    let sink = Sink::new(Table::Seatool).await;
    assert_eq!(
        sink.results("confluent-seatool-poison.json").await,
        ["dead-lettered", "dead-lettered", "dead-lettered", "written"]
    );
    let mut letters = drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url).await;
    letters.sort_by_key(|l| l["offset"].as_i64());
    assert_eq!(letters.len(), 3);
    assert_eq!(letters[0]["table"], "seatool");
    assert_eq!(letters[0]["topic"], "aws.ksqldb.seatool.agg.State_Plan");
    assert_eq!(
        (letters[0]["partition"].as_i64(), letters[0]["offset"].as_i64()),
        (Some(0), Some(1060))
    );
    assert!(
        letters[0]["reason"].as_str().unwrap().starts_with("value is not JSON"),
        "{}",
        letters[0]
    );
    assert_eq!(letters[0]["value"], "{\"STATE_PLAN\": {\"ID_NUMBER\": \"NC-11-020\"");
    assert_eq!(letters[1]["reason"], "Seatool key is not a string: 42");
    assert_eq!(letters[2]["key"], Value::Null);
    assert!(sink.get("WA-22-0003").await.is_some());
}

#[tokio::test]
async fn an_item_dynamodb_refuses_is_dead_lettered_not_retried_forever() {
    let sink = Sink::new(Table::Seatool).await;
    // DynamoDB caps an item at 400 KB.
    let big = json!({"STATE_PLAN": {"ID_NUMBER": "BIG-1"}, "NOTES": "x".repeat(500 * 1024)}).to_string();
    let batch = json!([{"payload": {"timestamp": 1, "topic": "t", "partition": 0, "offset": 5, "key": "\"BIG-1\"", "value": big}},
                       {"payload": {"timestamp": 2, "topic": "t", "partition": 0, "offset": 6, "key": "\"OK-1\"", "value": "{\"a\":1}"}}]);
    let response = handle(sink.table, &sink.config, &sink.store, &sink.dlq, &batch)
        .await
        .unwrap();
    assert_eq!(response[0]["payload"]["result"], "dead-lettered", "{response}");
    assert_eq!(response[1]["payload"]["result"], "written");
    let letters = drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url).await;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("store rejected the item"),
        "{}",
        letters[0]["reason"]
    );
    assert_eq!(
        letters[0]["truncated"], true,
        "a 500 KB value does not fit an SQS message whole"
    );
}

#[tokio::test]
async fn when_dynamodb_refuses_the_newest_record_of_an_id_the_next_newest_is_stored_not_reported_stale() {
    let sink = Sink::new(Table::Seatool).await;
    let record = |offset: i64, value: String| {
        json!({"payload": {"timestamp": offset, "topic": "t", "partition": 0,
                                                                  "offset": offset, "key": "\"BIG-2\"", "value": value}})
    };
    let big = json!({"STATE_PLAN": {"ID_NUMBER": "BIG-2"}, "NOTES": "x".repeat(500 * 1024)}).to_string();
    let batch = json!([
        record(
            7,
            json!({"STATE_PLAN": {"ID_NUMBER": "BIG-2"}, "VERSION": 1}).to_string()
        ),
        record(
            8,
            json!({"STATE_PLAN": {"ID_NUMBER": "BIG-2"}, "VERSION": 2}).to_string()
        ),
        record(9, big),
    ]);
    let response = handle(sink.table, &sink.config, &sink.store, &sink.dlq, &batch)
        .await
        .unwrap();
    let results: Vec<&str> = response
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["payload"]["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["stale", "written", "dead-lettered"], "{response}");
    let item = sink.get("BIG-2").await.expect("the newest storable record is stored");
    assert_eq!((&item["@kafka"]["offset"], &item["VERSION"]), (&json!(8), &json!(2)));
    assert_eq!(
        drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url).await.len(),
        1
    );
}

#[tokio::test]
async fn a_binary_value_is_dead_lettered_in_base64_and_fits_the_queue_instead_of_failing_the_batch() {
    let sink = Sink::new(Table::Seatool).await;
    // Avro or Protobuf bytes read through StringConverter: control characters, each of which JSON
    // escapes to six bytes, and characters SQS refuses outright.
    let binary: String = "\u{1}".repeat(50_000) + "\u{FFFF}\u{2}tail";
    let batch = json!([{"payload": {"timestamp": 1, "topic": "t", "partition": 0, "offset": 3,
                                     "key": "\"BIN-1\"", "value": binary}}]);
    let response = handle(sink.table, &sink.config, &sink.store, &sink.dlq, &batch)
        .await
        .expect("a record that cannot be stored never fails the batch");
    assert_eq!(response[0]["payload"]["result"], "dead-lettered", "{response}");
    let letters = drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert!(letter["value"].is_null(), "the value was sent as text, not base64");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(letter["valueBase64"].as_str().expect("valueBase64"))
        .unwrap();
    assert_eq!(bytes.len(), 50_008, "the value's bytes whole: 50,000 + 3 + 1 + 4");
    assert!(bytes.ends_with("\u{2}tail".as_bytes()));
}

#[tokio::test]
async fn appian_ids_come_from_the_value_the_newer_timestamp_wins_and_a_tombstone_deletes_its_keys_package() {
    let sink = Sink::new(Table::Appian).await;
    put_foreign_item(&sink, "98004").await;
    assert_eq!(
        sink.results("confluent-appian-batch.json").await,
        ["stale", "written", "written", "dead-lettered", "deleted"]
    );
    assert_eq!(sink.get("98004").await, None, "the package its key names is deleted");
    let item = sink.get("98001").await.expect("98001");
    assert_eq!(
        (&item["@kafka"]["partition"], &item["payload"]["PCKG_STUS"]),
        (&json!(1), &json!("Submitted"))
    );
    assert_eq!(
        sink.get("98002").await.expect("string id")["payload"]["PCKG_ID"],
        "98002"
    );
    let letters = drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0]["reason"],
        "Appian value has no payload.PCKG_ID (the id of the record)"
    );
}

#[tokio::test]
async fn event_source_mapping_and_nordstrom_events_get_a_summary() {
    let sink = Sink::new(Table::Appian).await;
    let summary = sink.send("esm-msk-appian.json").await.unwrap();
    assert_eq!(
        summary,
        json!({"records": 3, "written": 2, "stale": 1, "deleted": 0, "skipped": 0, "deadLettered": 0})
    );
    assert_eq!(sink.get("98010").await.unwrap()["payload"]["PCKG_STUS"], "Approved");

    let seatool = Sink::new(Table::Seatool).await;
    let summary = seatool.send("nordstrom-seatool-batch.json").await.unwrap();
    assert_eq!(
        summary,
        json!({"records": 2, "written": 1, "stale": 0, "deleted": 1, "skipped": 0, "deadLettered": 0})
    );
}

#[tokio::test]
async fn a_failing_store_fails_the_invocation_and_reports_no_success() {
    let sdk = sdk().await;
    let queue = create_queue(&sdk, &unique("dlq")).await;
    let sink = Sink::with(sdk, Table::Seatool, unique("no-such-table"), queue);
    let err = sink.send("confluent-seatool-batch.json").await.unwrap_err();
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "StoreUnavailable");
    assert!(
        diagnostic.error_message.contains("ResourceNotFound") || diagnostic.error_message.contains("not found"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn a_table_with_another_key_schema_fails_the_invocation_instead_of_dead_lettering_every_record() {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let sdk = sdk().await;
    let name = unique("wrong-keys");
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name(&name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create a table keyed id");
    let queue = create_queue(&sdk, &unique("dlq")).await;
    let sink = Sink::with(sdk, Table::Seatool, name, queue);
    // A fault of the configuration hits every record: dead-lettering them would commit the
    // offsets of records the table never got.
    let err = sink.send("confluent-seatool-batch.json").await.unwrap_err();
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(
        diagnostic.error_type, "StoreUnavailable",
        "{}",
        diagnostic.error_message
    );
    assert!(
        drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url)
            .await
            .is_empty(),
        "nothing dead-lettered"
    );
}

#[tokio::test]
async fn a_failing_dead_letter_queue_fails_the_invocation() {
    let sdk = sdk().await;
    let table = unique("seatool");
    create_sink_table(&sdk, &table).await;
    let missing_queue = format!(
        "{}/123456789012/{}",
        std::env::var("AWS_ENDPOINT_URL").unwrap(),
        unique("gone")
    );
    let sink = Sink::with(sdk, Table::Seatool, table, missing_queue);
    let err = sink.send("confluent-seatool-poison.json").await.unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "DeadLetterQueueUnavailable"
    );
}

#[tokio::test]
async fn an_unsupported_event_is_an_invalid_event_error() {
    let sink = Sink::new(Table::Seatool).await;
    let err = sink.send("unsupported-sqs-event.json").await.unwrap_err();
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "InvalidEvent");
    assert!(
        diagnostic
            .error_message
            .contains("found an object with fields [Records]"),
        "{}",
        diagnostic.error_message
    );
}

/// The DynamoDB conditions agree with `Coordinates::supersedes` and the in-memory twin, write for
/// write, over pseudo-random interleavings (several seeds, each on a table of its own) of puts and
/// tombstones across two topics and three partitions, with tied timestamps, a topic recreated in
/// a higher epoch, replays and reordering.
#[tokio::test]
async fn dynamodb_conditions_agree_with_the_in_memory_model() {
    const IDS: u64 = 5;
    for seed in [0x2545F4914F6CDD1D_u64, 7, 0x9E3779B97F4A7C15, 12345] {
        let sink = Sink::new(Table::Seatool).await;
        let model = InMemoryRecordStore::new();
        let mut state = seed;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let mut writes = Vec::new();
        let mut offsets: HashMap<(u32, usize, usize), i64> = HashMap::new();
        for seq in 0..90_i64 {
            // The last third comes from the recreated topic: offsets start again, epoch 1.
            let epoch = u32::from(seq >= 60);
            let (topic, partition) = (next(2) as usize, next(3) as usize);
            let offset = offsets.entry((epoch, topic, partition)).or_insert(0);
            *offset += 1;
            // Timestamps tie across partitions on purpose, to exercise the tie-break.
            let coordinates = Coordinates {
                topic: format!("t{topic}"),
                partition: partition as i32,
                offset: *offset,
                timestamp: seq / 3,
                epoch,
            };
            let op = if next(4) == 0 {
                WriteOp::Delete
            } else {
                WriteOp::Put(serde_json::Map::from_iter([("seq".to_string(), json!(seq))]))
            };
            writes.push(Write {
                id: format!("ID-{}", next(IDS)),
                coordinates,
                op,
            });
        }
        // Deliver out of order: each write, then now and then a replay of an earlier one.
        let mut order: Vec<usize> = (0..writes.len()).collect();
        for i in 0..writes.len() {
            if next(3) == 0 {
                order.push(next(i as u64 + 1) as usize);
            }
        }
        for i in (1..order.len()).rev() {
            if next(4) == 0 {
                order.swap(i, next(i as u64 + 1) as usize);
            }
        }
        for &i in &order {
            let expected = model.apply(&writes[i]).await.unwrap();
            let got = sink.store.apply(&writes[i]).await.unwrap();
            assert_eq!(got, expected, "seed {seed}, write {i}: {:?}", writes[i]);
        }
        for id in (0..IDS).map(|i| format!("ID-{i}")) {
            let stored = sink.get(&id).await;
            let expected = model.get(&id);
            assert_eq!(
                stored.as_ref().map(|s| s["@kafka"].clone()),
                expected.map(
                    |e| json!({"topic": e.coordinates.topic, "partition": e.coordinates.partition,
                                        "offset": e.coordinates.offset, "timestamp": e.coordinates.timestamp,
                                        "epoch": e.coordinates.epoch})
                ),
                "seed {seed}, {id}"
            );
        }
    }
}

#[tokio::test]
async fn numbers_keep_every_digit_in_dynamodb_and_what_it_cannot_hold_is_dead_lettered() {
    let sink = Sink::new(Table::Appian).await;
    assert_eq!(
        sink.results("confluent-appian-numbers.json").await,
        ["written", "dead-lettered", "dead-lettered", "written"]
    );
    let item = sink.get("98001").await.expect("98001.0 is stored as the package 98001");
    let payload = &item["payload"];
    for (field, text) in [
        ("FEE_AMT", "12345678901234567890.123456789012345678"),
        ("SEQ_NBR", "123456789012345678901234567890"),
        ("RATE", "0.000000000000000000012345"),
    ] {
        assert_eq!(payload[field].to_string(), text, "{field}");
    }
    assert!(sink.get("98022").await.is_some(), "9.8022E4 is the package 98022");
    let mut letters = drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url).await;
    letters.sort_by_key(|l| l["offset"].as_i64());
    let reasons: Vec<&str> = letters.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("41 significant digits"), "{reasons:?}");
    assert!(reasons[1].contains("out of DynamoDB's range"), "{reasons:?}");
}

#[tokio::test]
async fn a_dead_letter_too_large_for_sqs_is_kept_whole_in_s3_and_the_message_carries_its_claim_check() {
    let sink = Sink::with_claim_checks(Table::Seatool).await;
    let binary: String = "\u{1}".repeat(300_000) + "tail";
    let batch = json!([{"payload": {"timestamp": 1, "topic": "t", "partition": 0, "offset": 3,
                                     "key": "\"BIN-2\"", "value": binary}}]);
    assert_eq!(sink.results_of(&batch).await, ["dead-lettered"]);
    let letters = drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url).await;
    assert_eq!(letters.len(), 1);
    let claim = &letters[0]["claimCheck"];
    assert_eq!(
        (&letters[0]["key"], &letters[0]["value"], &letters[0]["offset"]),
        (&json!("\"BIN-2\""), &Value::Null, &json!(3)),
        "{}",
        letters[0]
    );
    let bucket = sink.config.dead_letter_bucket.clone().unwrap();
    assert_eq!(claim["bucket"], json!(bucket));
    let object = connector_adapters::sqs::s3_client(&sink.sdk)
        .get_object()
        .bucket(&bucket)
        .key(claim["key"].as_str().unwrap())
        .send()
        .await
        .expect("the claim check's object")
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(json!(object.len()), claim["bytes"]);
    let read = connector_core::sink::plan::read_letter(std::str::from_utf8(&object).unwrap()).unwrap();
    assert_eq!(
        read.record.value,
        connector_core::sink::Field::Text(binary),
        "the value whole"
    );
}
