//! The real Lambda binaries, served by `cargo lambda watch`, driven over the Lambda Invoke API
//! with the sample events: the sink writing to DynamoDB and SQS on moto, the control functions
//! calling the local Kafka Connect worker.
//!
//! `scripts/test` starts `cargo lambda watch` with the functions' environment naming a table and
//! a queue (`WATCH_SEATOOL_TABLE`, `WATCH_DEAD_LETTER_QUEUE_NAME`) and the worker (`CONNECT_URL`),
//! and says where it listens (`LAMBDA_WATCH_URL`); the tests create the AWS resources.

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

    // scripts/test has started every function of this server (warm_lambda): no invoke waits for
    // a build; the limit is for a slow machine, and a timeout names the call.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
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
    assert_eq!(
        get_item(&sdk, &table, "NC-11-020").await.unwrap()["@kafka"]["offset"],
        1043
    );

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

/// The seed's runbook commands, as written, against the real control binaries: findTaskIp,
/// createConnector with the ip it gave, checkIfConnectIsReady, deleteConnector twice.
#[tokio::test]
async fn the_runbook_payloads_work_against_the_control_binaries() {
    let sdk = sdk().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let name = connector_tests::unique("runbook-sink");
    let secret = connector_tests::unique("mako/connector/runbook");
    let file = std::env::temp_dir().join(format!("{name}.out"));
    let body = serde_json::json!({"name": name, "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "tasks.max": "1", "topics": connector_tests::unique("topic"), "file": file}});
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret)
        .secret_string(body.to_string())
        .send()
        .await
        .expect("create secret");

    let mut find = event("control/find-task-ip.json");
    find["Context"]["Execution"]["Input"]["cluster"] = "any-cluster".into();
    let (status, found) = invoke(&client, "findTaskIp", &find).await;
    assert_eq!((status, &found["success"]), (200, &serde_json::json!(true)), "{found}");
    let ip = found["ip"].as_str().expect("ip").to_string();
    assert_eq!(ip, "127.0.0.1", "with CONNECT_URL set, the worker's host");

    let mut check = event("control/check-if-connect-is-ready.json");
    check["Payload"]["ip"] = ip.clone().into();
    let (_, ready) = invoke(&client, "checkIfConnectIsReady", &check).await;
    assert_eq!(ready, serde_json::json!({"ip": ip, "ready": true, "success": true}));

    let mut create = event("control/create-connector.json");
    create["Payload"]["ip"] = ip.clone().into();
    create["Context"]["Execution"]["Input"]["connectorConfigSecret"] = secret.clone().into();
    let (_, created) = invoke(&client, "createConnector", &create).await;
    assert_eq!(
        created,
        serde_json::json!({"ip": ip, "success": true, "connector": name, "created": true})
    );

    let mut delete = event("control/delete-connector.json");
    delete["connectorName"] = name.clone().into();
    let (_, deleted) = invoke(&client, "deleteConnector", &delete).await;
    assert_eq!(deleted["success"], true, "{deleted}");
    let (_, again) = invoke(&client, "deleteConnector", &delete).await;
    assert_eq!(again["success"], true, "{again}");
    assert!(again["message"].as_str().unwrap().contains("already absent"), "{again}");
    let _ = std::fs::remove_file(&file);
}
