//! The whole pipeline on real things: records produced to Kafka, carried by the stand-in Lambda
//! sink connector (tests/lambda-sink) in a real Kafka Connect worker, through the sink function
//! under `cargo lambda watch`, into DynamoDB on moto; the monitor watching it all.
//!
//! `scripts/test` starts one watch server per test (E2E_<TEST>_WATCH_URL), whose sink function
//! writes to E2E_<TEST>_TABLE and dead-letters to E2E_<TEST>_DLQ; the tests create those.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_config::SdkConfig;
use connector_adapters::connect::HttpConnectApi;
use connector_core::connect::{ConnectApi, State};
use connector_tests::monitor::{Monitor, findings};
use connector_tests::{
    connect_url, create_queue, create_sink_table, drain_queue, free_port, kafka_script, kafka_script_with, now_millis,
    produce, scan, sdk, task_is, unique, wait_for, wait_status,
};
use serde_json::Value;

const MINUTE_MS: i64 = 60_000;

/// (watch URL, table, dead-letter queue name) of one test's sink function.
fn e2e(test: &str) -> (String, String, String) {
    let var = |what: &str| {
        let name = format!("E2E_{test}_{what}");
        std::env::var(&name)
            .unwrap_or_else(|_| panic!("{name} is not set: run the end-to-end tests through scripts/test"))
    };
    (var("WATCH_URL"), var("TABLE"), var("DLQ"))
}

/// The stand-in connector's config sending `topic` to sinkSeatoolData at `watch`.
fn lambda_sink(topic: &str, watch: &str, batch: u32) -> BTreeMap<String, String> {
    BTreeMap::from(
        [
            ("connector.class", "connector.standin.lambda.LambdaSinkConnector"),
            ("tasks.max", "1"),
            ("topics", topic),
            ("aws.lambda.function.name", "sinkSeatoolData"),
            ("aws.lambda.invocation.type", "sync"),
            ("aws.lambda.batch.size", &batch.to_string()),
            ("aws.lambda.endpoint.override", watch),
            ("behavior.on.error", "fail"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

/// A Seatool State_Plan record as the ksqlDB topic carries it: a JSON-string key, a JSON value.
fn seatool(id: &str, title: &str) -> (Option<String>, Option<String>) {
    let value = serde_json::json!({"STATE_PLAN": {
        "ID_NUMBER": id, "STATE_CODE": "NC", "PLAN_TYPE": 122, "SUBMISSION_DATE": 1_700_092_800_000_i64,
        "SPW_STATUS_ID": 4, "TITLE_NAME": title, "STATUS_DATE": 1_700_179_200_000_i64}});
    (Some(format!("\"{id}\"")), Some(value.to_string()))
}

/// Each stored item's offset (`@kafka.offset`), by id, tombstones aside.
async fn offsets(sdk: &SdkConfig, table: &str) -> HashMap<String, i64> {
    scan(sdk, table)
        .await
        .into_values()
        .filter(|item| item.get("@deleted").is_none())
        .filter_map(|item| Some((item["PK"].as_str()?.to_string(), item["@kafka"]["offset"].as_i64()?)))
        .collect()
}

/// Starts worker `n` of its own Connect cluster `group` (so killing it disturbs no other test).
async fn start_own_worker(n: &str, group: &str) -> String {
    let port = free_port().to_string();
    kafka_script_with(&["add-worker", n, &port], &[("CONNECT_GROUP", group)]).await
}

#[tokio::test]
async fn records_survive_a_worker_killed_mid_stream_exactly_once_in_effect() {
    let (watch, table, dlq) = e2e("REPLAY");
    let sdk = sdk().await;
    create_sink_table(&sdk, &table).await;
    create_queue(&sdk, &dlq).await;
    let (group, worker) = (unique("e2e-connect"), "e2e-replay");
    let url = start_own_worker(worker, &group).await;
    let api = HttpConnectApi::new(&url, Duration::from_secs(10)).unwrap();
    let (name, topic) = (unique("replay-sink"), unique("seatool"));
    api.put_config(&name, &lambda_sink(&topic, &watch, 5)).await.unwrap();
    wait_status(&api, &name, "RUNNING", Duration::from_secs(60), task_is(State::Running)).await;

    // 300 ids, each written 4 times: id i of round r is at offset 300 r + i (a new topic, one
    // partition), so the newest version of id i is at offset 900 + i.
    const IDS: i64 = 300;
    let records: Vec<_> = (0..4)
        .flat_map(|round| (0..IDS).map(move |i| seatool(&format!("RP-{i}"), &format!("round {round}"))))
        .collect();
    produce(&topic, &records).await;

    let started = wait_for(Duration::from_secs(90), || async {
        let seen = offsets(&sdk, &table).await;
        (seen.len() >= 30).then_some(seen)
    })
    .await
    .expect("records never reached the table");
    kafka_script(&["kill-worker", worker]).await;
    let at_kill = offsets(&sdk, &table).await;
    let done_at_kill = at_kill.values().filter(|o| **o >= 3 * IDS).count();
    assert!(
        done_at_kill < IDS as usize,
        "the stream had finished before the kill ({} items)",
        started.len()
    );

    let url = start_own_worker(worker, &group).await;
    let api = HttpConnectApi::new(&url, Duration::from_secs(10)).unwrap();
    // Between polls no item may go back to an older offset: a replayed batch must not regress it.
    let mut highest = at_kill;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let finished = loop {
        let now = offsets(&sdk, &table).await;
        for (id, offset) in &now {
            let before = highest.entry(id.clone()).or_insert(*offset);
            assert!(offset >= before, "{id} went back from offset {before} to {offset}");
            *before = *offset;
        }
        if now.values().filter(|o| **o >= 3 * IDS).count() == IDS as usize {
            break Some(now);
        }
        if tokio::time::Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let Some(finished) = finished else {
        panic!(
            "not every record arrived after the restart: {:?}",
            api.status(&name).await
        );
    };
    assert_eq!(finished.len(), IDS as usize, "one item per id, no more");
    for i in 0..IDS {
        assert_eq!(
            finished[&format!("RP-{i}")],
            3 * IDS + i,
            "RP-{i} holds its newest version"
        );
    }
    assert!(
        drain_queue(
            &sdk,
            &format!("{}/{}/{dlq}", std::env::var("AWS_ENDPOINT_URL").unwrap(), account())
        )
        .await
        .is_empty()
    );
    api.delete(&name).await.unwrap();
    kafka_script(&["stop-worker", worker]).await;
}

fn account() -> String {
    std::env::var("MOTO_ACCOUNT_ID").unwrap_or_else(|_| "123456789012".into())
}

#[tokio::test]
async fn a_failing_sink_fails_the_task_and_the_monitor_restarts_alerts_once_and_resolves() {
    let (watch, table, dlq) = e2e("FAILURE");
    let sdk = sdk().await;
    create_sink_table(&sdk, &table).await;
    create_queue(&sdk, &dlq).await;
    let api = HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap();
    // The monitor reaches the worker through the fault proxy, which counts the restart requests
    // the worker received: a restart made is told from none by that, not by a status that
    // looks the same before and after.
    let m = Monitor::with_url(connector_tests::faults::Faults::for_connector("-").url()).await;
    let (name, topic) = (unique("failing-sink"), unique("seatool"));
    let faults = connector_tests::faults::Faults::for_connector(&name);
    let restarts = || faults.restarts_taken();
    let config = lambda_sink(&topic, &watch, 10);
    m.desire(&name, &config).await;
    api.put_config(&name, &config).await.unwrap();

    let first: Vec<_> = (0..20).map(|i| seatool(&format!("FL-{i}"), "before")).collect();
    produce(&topic, &first).await;
    wait_for(Duration::from_secs(90), || async {
        (offsets(&sdk, &table).await.len() == 20).then_some(())
    })
    .await
    .expect("the first records never arrived");

    // The table goes away: the function fails, the connector fails the task.
    aws_sdk_dynamodb::Client::new(&sdk)
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let more: Vec<_> = (20..30).map(|i| seatool(&format!("FL-{i}"), "after")).collect();
    produce(&topic, &more).await;
    wait_status(&api, &name, "FAILED", Duration::from_secs(90), task_is(State::Failed)).await;

    let t0 = now_millis();
    let report = m.run_at(t0).await;
    let f = &findings(&report, &name)[0];
    assert_eq!(
        (f["category"].as_str(), f["cause"].as_str(), f["task"].as_i64()),
        (Some("task-failed"), Some("lambda-function-error"), Some(0)),
        "{f}"
    );
    assert_eq!(f["action"], "restart 1 of 3 requested");
    assert!(f["root"]["line"].as_str().unwrap().contains("sinkSeatoolData"), "{f}");
    let opened = m.alerts().await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(
        opened[0].body.contains("Cause: lambda-function-error"),
        "{}",
        opened[0].body
    );

    assert_eq!(restarts().await, 1, "the worker received the restart");

    // The restart cannot help while the table is gone: the task fails again, and the next run
    // waits out the backoff without a second alert.
    // (The restarted task may fail again before a poll sees it RUNNING: then 10 s is long enough
    // for the restart to have taken effect.)
    let restarted = wait_for(Duration::from_secs(10), || async {
        api.status(&name).await.ok().filter(task_is(State::Running)).map(|_| ())
    });
    restarted.await;
    wait_status(
        &api,
        &name,
        "FAILED again",
        Duration::from_secs(90),
        task_is(State::Failed),
    )
    .await;
    let waiting = m.run_at(t0 + MINUTE_MS).await;
    let action = findings(&waiting, &name)[0]["action"].as_str().unwrap().to_string();
    assert!(
        action.starts_with("restart 1 of 3 already made; next restart not before"),
        "{action}"
    );
    assert!(m.alerts().await.is_empty(), "no second alert for the same incident");
    assert_eq!(restarts().await, 1, "none while the backoff runs");

    // The table is back; after the backoff the monitor restarts again and the records arrive.
    create_sink_table(&sdk, &table).await;
    let report = m.run_at(t0 + 3 * MINUTE_MS).await;
    assert_eq!(findings(&report, &name)[0]["action"], "restart 2 of 3 requested");
    assert_eq!(restarts().await, 2, "the worker received the second restart");
    wait_status(&api, &name, "RUNNING", Duration::from_secs(90), task_is(State::Running)).await;
    let arrived = wait_for(Duration::from_secs(90), || async {
        let seen = offsets(&sdk, &table).await;
        (seen.len() == 10).then_some(seen)
    })
    .await
    .expect("the records held back never arrived");
    assert!(arrived.keys().all(|id| id.as_str() >= "FL-20"), "{arrived:?}");

    let healed = m.run_at(t0 + 4 * MINUTE_MS).await;
    assert!(findings(&healed, &name).is_empty(), "{healed}");
    assert!(
        m.alerts().await.is_empty(),
        "resolved once it has run healthy ten minutes"
    );
    m.run_at(t0 + 14 * MINUTE_MS).await;
    let resolved = m.alerts().await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(
        resolved[0].subject,
        format!("[RESOLVED] task-failed {}/{name}", m.cluster)
    );
    api.delete(&name).await.unwrap();
}

#[tokio::test]
async fn a_poison_record_goes_to_the_dead_letter_queue_and_the_pipeline_keeps_flowing() {
    let (watch, table, dlq) = e2e("POISON");
    let sdk = sdk().await;
    create_sink_table(&sdk, &table).await;
    let dlq_url = create_queue(&sdk, &dlq).await;
    let api = HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap();
    let (name, topic) = (unique("poison-sink"), unique("seatool"));
    api.put_config(&name, &lambda_sink(&topic, &watch, 10)).await.unwrap();

    let mut records: Vec<(Option<String>, Option<String>)> =
        (0..5).map(|i| seatool(&format!("PO-{i}"), "good")).collect();
    records.push((Some("\"PO-bad\"".into()), Some("{\"STATE_PLAN\": not json".into())));
    records.extend((5..10).map(|i| seatool(&format!("PO-{i}"), "good")));
    produce(&topic, &records).await;

    let stored = wait_for(Duration::from_secs(90), || async {
        let seen = offsets(&sdk, &table).await;
        (seen.len() == 10).then_some(seen)
    })
    .await
    .expect("the good records never all arrived");
    assert!(!stored.contains_key("PO-bad"));
    let letters = wait_for(Duration::from_secs(30), || async {
        let l: Vec<Value> = drain_queue(&sdk, &dlq_url).await;
        (!l.is_empty()).then_some(l)
    })
    .await
    .expect("no dead letter");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        (letters[0]["topic"].as_str(), letters[0]["offset"].as_i64()),
        (Some(topic.as_str()), Some(5))
    );
    let status = api.status(&name).await.unwrap();
    assert!(status.tasks.iter().all(|t| t.state == State::Running), "{status:?}");
    api.delete(&name).await.unwrap();
}
