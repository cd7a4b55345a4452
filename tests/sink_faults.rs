//! The sink under faults, through the fault-injecting proxy in front of moto
//! (`tests/faults/faults.py`): DynamoDB's throttling and 5xx bodies, slow and reset connections,
//! an unavailable dead-letter queue; and what a batch costs, counted request by request.
//!
//! Each test has its own table and queue, which scope the proxy's rules and counts.

use std::collections::BTreeMap;

use connector_core::sink::Table;
use connector_lambdas::sink::SinkFailure;
use connector_tests::faults::Faults;
use connector_tests::sink::Sink;
use connector_tests::{drain_queue, scan};
use serde_json::{Value, json};

/// A Confluent batch on one partition: `(offset, id, value)`, a `None` value a tombstone.
fn batch(records: &[(i64, String, Option<Value>)]) -> Value {
    records
        .iter()
        .map(|(offset, id, value)| {
            json!({"payload": {"timestamp": 1_732_435_200_000_i64 + offset, "topic": "aws.ksqldb.seatool.agg.State_Plan",
                               "partition": 0, "offset": offset, "key": format!("\"{id}\""),
                               "value": value.as_ref().map(Value::to_string)}})
        })
        .collect()
}

/// `n` records for `n` new ids `P-0`..: an initial load.
fn initial_load(n: i64) -> Value {
    batch(
        &(0..n)
            .map(|i| (i, format!("P-{i}"), Some(json!({"N": i}))))
            .collect::<Vec<_>>(),
    )
}

fn failure_type(failure: SinkFailure) -> String {
    lambda_runtime::Diagnostic::from(failure).error_type
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn a_batch_costs_one_put_item_per_distinct_id_whatever_the_case() {
    let sink = Sink::through_faults(Table::Seatool).await;
    let faults = Faults::for_target(&sink.config.table_name);
    // 60 records, 20 ids: each id's first record, then updates of all, then a third of them deleted.
    let mut records = Vec::new();
    for round in 0..3_i64 {
        for i in 0..20_i64 {
            let value = (round < 2 || i % 3 != 0).then(|| json!({"ROUND": round}));
            records.push((round * 20 + i, format!("C-{i}"), value));
        }
    }
    let response = sink.results_of(&batch(&records)).await;
    assert_eq!(response.iter().filter(|r| *r == "stale").count(), 40, "{response:?}");
    assert_eq!(
        faults.counts().await,
        counts(&[("PutItem", 20)]),
        "new ids and deletes alike"
    );

    // The same again: every write stale, still one request per id.
    sink.results_of(&batch(&records)).await;
    // Updates of ids that exist, and a record for an id deleted above.
    let updates: Vec<_> = (0..20_i64)
        .map(|i| (100 + i, format!("C-{i}"), Some(json!({"ROUND": 9}))))
        .collect();
    assert_eq!(sink.results_of(&batch(&updates)).await, ["written"; 20]);
    assert_eq!(faults.counts().await, counts(&[("PutItem", 60)]));
}

#[tokio::test]
async fn throttling_during_an_initial_load_is_retried_and_nothing_is_lost() {
    let sink = Sink::through_faults(Table::Seatool).await;
    let faults = Faults::for_target(&sink.config.table_name);
    faults
        .add(json!({"operation": "PutItem", "error": "ProvisionedThroughputExceededException", "times": 5}))
        .await;
    faults
        .add(json!({"operation": "PutItem", "error": "ThrottlingException", "times": 3}))
        .await;
    assert_eq!(sink.results_of(&initial_load(20)).await, ["written"; 20]);
    assert_eq!(scan(&sink.sdk, &sink.config.table_name).await.len(), 20);
    assert_eq!(
        faults.counts().await,
        counts(&[("PutItem", 28)]),
        "each throttled write was sent again"
    );
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_fails_the_invocation_and_the_redelivery_stores_it_all() {
    let sink = Sink::through_faults(Table::Seatool).await;
    let faults = Faults::for_target(&sink.config.table_name);
    faults
        .add(json!({"operation": "PutItem", "error": "ProvisionedThroughputExceededException"}))
        .await;
    let load = initial_load(5);
    let failure = sink
        .send_batch(&load)
        .await
        .expect_err("a batch not stored fails its invocation");
    assert_eq!(failure_type(failure), "StoreUnavailable");
    assert!(scan(&sink.sdk, &sink.config.table_name).await.is_empty());
    let sent = faults.counts().await["PutItem"];
    assert!(
        sent > 5,
        "the throttled writes were retried before giving up: {sent} requests"
    );

    faults.clear().await;
    assert_eq!(
        sink.results_of(&load).await,
        ["written"; 5],
        "the connector delivers it again"
    );
}

#[tokio::test]
async fn server_errors_and_reset_connections_are_retried() {
    let sink = Sink::through_faults(Table::Seatool).await;
    let faults = Faults::for_target(&sink.config.table_name);
    for rule in [
        json!({"operation": "PutItem", "error": "InternalServerError", "times": 2}),
        json!({"operation": "PutItem", "error": "ServiceUnavailable", "times": 2}),
        json!({"operation": "PutItem", "reset": true, "times": 2}),
    ] {
        faults.add(rule).await;
    }
    assert_eq!(sink.results_of(&initial_load(4)).await, ["written"; 4]);
    assert_eq!(faults.counts().await, counts(&[("PutItem", 10)]));
}

#[tokio::test]
async fn a_write_slower_than_its_attempt_timeout_is_sent_again_and_the_late_one_changes_nothing() {
    let sink = Sink::through_faults(Table::Seatool).await;
    let faults = Faults::for_target(&sink.config.table_name);
    // One attempt may take a third of the 10 s call: this one takes 4 s, then still reaches moto.
    faults
        .add(json!({"operation": "PutItem", "delay_ms": 4000, "times": 1}))
        .await;
    assert_eq!(sink.results_of(&initial_load(1)).await, ["written"]);
    // The late original lands after the retry: same coordinates, so its condition fails.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let item = sink.get("P-0").await.expect("P-0 stored");
    assert_eq!((&item["N"], &item["@kafka"]["offset"]), (&json!(0), &json!(0)));
    assert_eq!(faults.counts().await, counts(&[("PutItem", 2)]));
}

#[tokio::test]
async fn a_dynamodb_slower_than_the_call_timeout_fails_the_invocation() {
    let sink = Sink::through_faults(Table::Seatool).await;
    let faults = Faults::for_target(&sink.config.table_name);
    faults.add(json!({"operation": "PutItem", "delay_ms": 4000})).await;
    let failure = sink.send_batch(&initial_load(2)).await.expect_err("not stored in time");
    assert_eq!(failure_type(failure), "StoreUnavailable");
}

#[tokio::test]
async fn an_unavailable_dead_letter_queue_fails_the_invocation_and_the_redelivery_sends_each_letter() {
    let sink = Sink::through_faults(Table::Seatool).await;
    let queue = sink
        .config
        .dead_letter_queue_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let faults = Faults::for_target(&queue);
    faults
        .add(json!({"operation": "SendMessage", "error": "ServiceUnavailable"}))
        .await;
    let failure = sink.send("confluent-seatool-poison.json").await.unwrap_err();
    assert_eq!(failure_type(failure), "DeadLetterQueueUnavailable");
    assert!(
        drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url)
            .await
            .is_empty()
    );

    faults.clear().await;
    assert_eq!(
        sink.results("confluent-seatool-poison.json").await,
        ["dead-lettered", "dead-lettered", "dead-lettered", "stale"],
        "the valid record was stored by the failed invocation already"
    );
    assert_eq!(
        drain_queue(&sink.sdk, &sink.config.dead_letter_queue_url).await.len(),
        3
    );
}
