//! The real `sinkSeatoolData` binary, served by `cargo lambda watch`, driven over the Lambda
//! Invoke API with the sample events, writing to DynamoDB and SQS on moto.
//!
//! `scripts/test` starts `cargo lambda watch` with the function's environment naming a table and
//! a queue (`WATCH_SEATOOL_TABLE`, `WATCH_DEAD_LETTER_QUEUE_NAME`) and says where it listens
//! (`LAMBDA_WATCH_URL`); this test creates those resources and invokes the function.

use std::time::Duration;

use connector_tests::{create_queue, create_sink_table, drain_queue, event, get_item, sdk};
use serde_json::Value;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run this test through scripts/test, which starts cargo lambda watch")
    })
}

/// POSTs an event to the function the way an AWS SDK Lambda client does; returns status and body.
async fn invoke(client: &reqwest::Client, function: &str, event: &Value) -> (u16, Value) {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        var("LAMBDA_WATCH_URL")
    );
    let response = client
        .post(&url)
        .json(event)
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON response"))
}

fn results(body: &Value) -> Vec<&str> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|r| r["payload"]["result"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_seatool_binary_under_cargo_lambda_watch_stores_replays_and_dead_letters() {
    let sdk = sdk().await;
    let table = var("WATCH_SEATOOL_TABLE");
    create_sink_table(&sdk, &table).await;
    let queue = create_queue(&sdk, &var("WATCH_DEAD_LETTER_QUEUE_NAME")).await;
    let expected_url = format!(
        "{}/{}/{}",
        var("AWS_ENDPOINT_URL"),
        var("MOTO_ACCOUNT_ID"),
        var("WATCH_DEAD_LETTER_QUEUE_NAME")
    );
    assert_eq!(queue, expected_url, "the function was started with this queue URL");

    // The first invoke starts the binary (`cargo run`), so allow it time.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let (status, body) = invoke(&client, "sinkSeatoolData", &event("sink/confluent-seatool-batch.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(results(&body), ["stale", "written", "written", "written"]);

    let (_, body) = invoke(
        &client,
        "sinkSeatoolData",
        &event("sink/confluent-seatool-tombstone.json"),
    )
    .await;
    assert_eq!(results(&body), ["deleted"]);
    let (_, body) = invoke(&client, "sinkSeatoolData", &event("sink/confluent-seatool-replay.json")).await;
    assert_eq!(results(&body), ["stale", "stale"]);
    assert_eq!(
        get_item(&sdk, &table, "VA-24-0007").await,
        None,
        "the tombstone holds against the replay"
    );
    assert_eq!(get_item(&sdk, &table, "NC-11-020").await.unwrap()["kafkaOffset"], 1043);

    let (_, body) = invoke(&client, "sinkSeatoolData", &event("sink/confluent-seatool-poison.json")).await;
    assert_eq!(
        results(&body),
        ["dead-lettered", "dead-lettered", "dead-lettered", "written"]
    );
    assert_eq!(drain_queue(&sdk, &queue).await.len(), 3);

    // Not a sink event: cargo lambda answers a handler error with HTTP 500 and the error type.
    let (status, body) = invoke(&client, "sinkSeatoolData", &event("sink/unsupported-sqs-event.json")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["errorType"], "InvalidEvent", "{body}");
}
