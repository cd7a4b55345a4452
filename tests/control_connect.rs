//! The control-plane functions and the Kafka Connect REST adapter against the real worker that
//! `scripts/test` starts (Apache Kafka + Kafka Connect, distributed mode), with configs in moto.

use std::collections::BTreeMap;
use std::time::Duration;

use connector_adapters::connect::HttpConnectApi;
use connector_adapters::ecs::EcsTaskDiscovery;
use connector_adapters::secrets::SecretsManagerConfigs;
use connector_core::connect::{ConnectApi, ConnectError, State};
use connector_lambdas::control::{ControlConfig, handle_check_ready, handle_create_connector, handle_delete_connector};
use connector_tests::{connect_url, free_port, kafka_script, produce, sdk, unique, wait_for};
use serde_json::{Value, json};

/// The worker cluster's shape: the test that adds and stops a second worker holds it alone; the
/// others share it, so that none of their calls is forwarded to a worker that is stopping.
static SHAPE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn api() -> HttpConnectApi {
    HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap()
}

/// The functions configured as in a deployment with a load balancer: `CONNECT_URL` set.
fn control_config() -> ControlConfig {
    let url = connect_url();
    ControlConfig::from_lookup(|k| match k {
        "CONNECT_URL" => Some(url.clone()),
        "CONNECT_PORT" => url.rsplit(':').next().map(String::from),
        _ => None,
    })
    .unwrap()
}

async fn store_secret(name: &str, body: &Value) {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    client
        .create_secret()
        .name(name)
        .secret_string(body.to_string())
        .send()
        .await
        .expect("create secret");
}

fn file_sink(name: &str, topic: &str, file: &str) -> Value {
    json!({"name": name, "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "tasks.max": "1", "topics": topic, "file": file}})
}

async fn discovery() -> EcsTaskDiscovery {
    EcsTaskDiscovery::new(aws_sdk_ecs::Client::new(&sdk().await))
}

async fn wait_running(api: &HttpConnectApi, name: &str) -> connector_core::connect::ConnectorStatus {
    wait_for(Duration::from_secs(60), || async {
        match api.status(name).await {
            Ok(s)
                if s.connector.state == State::Running
                    && s.tasks.iter().all(|t| t.state == State::Running)
                    && !s.tasks.is_empty() =>
            {
                Some(s)
            }
            _ => None,
        }
    })
    .await
    .unwrap_or_else(|| panic!("{name} did not reach RUNNING"))
}

#[tokio::test]
async fn create_from_a_secret_run_update_delete_and_delete_again() {
    let _shape = SHAPE.read().await;
    let (name, topic) = (unique("file-sink"), unique("topic"));
    let file = std::env::temp_dir().join(format!("{name}.out"));
    let secret = unique("mako/connector/file");
    store_secret(&secret, &file_sink(&name, &topic, file.to_str().unwrap())).await;
    let config = control_config();

    // The seed's runbook payload, with the ip findTaskIp gives when CONNECT_URL is set.
    let payload =
        json!({"Payload": {"ip": "127.0.0.1"}, "Context": {"Execution": {"Input": {"connectorConfigSecret": secret}}}});
    let created = create_with(&config, &payload).await;
    assert_eq!(
        created,
        json!({"ip": "127.0.0.1", "success": true, "connector": name, "created": true})
    );

    let api = api();
    let status = wait_running(&api, &name).await;
    assert_eq!(status.kind.as_deref(), Some("sink"));
    let listed = api.list_expanded().await.unwrap();
    let view = listed.iter().find(|v| v.name == name).expect("listed with expand");
    assert_eq!(view.info.as_ref().unwrap().config["topics"], topic);

    // Records flow through the real worker into the file.
    produce(&topic, &[(Some("k1"), Some("first")), (Some("k2"), Some("second"))]).await;
    let content = wait_for(Duration::from_secs(60), || async {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        text.contains("second").then_some(text)
    })
    .await
    .expect("the file sink wrote the records");
    assert_eq!(content, "first\nsecond\n");

    // The same PUT again updates (200), it does not fail.
    let updated = create_with(&config, &json!({"ip": "127.0.0.1", "connectorConfigSecret": secret})).await;
    assert_eq!(updated["created"], false, "{updated}");
    assert_eq!(updated["success"], true, "{updated}");

    let deleted = handle_delete_connector(&config, &discovery().await, &json!({"connectorName": name})).await;
    assert_eq!(deleted["success"], true, "{deleted}");
    assert_eq!(deleted["message"], format!("deleted connector {name}"));
    let again = handle_delete_connector(
        &config,
        &discovery().await,
        &json!({"cluster": "ignored-with-connect-url", "connectorName": name}),
    )
    .await;
    assert_eq!(again["success"], true, "{again}");
    assert!(again["message"].as_str().unwrap().contains("already absent"), "{again}");

    // Status travels through the status topic: the deletion shows after a short delay.
    let gone = wait_for(Duration::from_secs(30), || async {
        match api.status(&name).await {
            Err(e @ ConnectError::NotFound { .. }) => Some(e),
            _ => None,
        }
    })
    .await;
    match gone {
        Some(ConnectError::NotFound { message }) => assert!(message.contains(&name), "{message}"),
        other => panic!("expected a typed 404 once the deletion is visible, got {other:?}"),
    }
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn a_connector_whose_class_does_not_exist_is_refused_with_connects_message() {
    let _shape = SHAPE.read().await;
    let api = api();
    let name = unique("no-class");
    let config = BTreeMap::from([
        ("connector.class".to_string(), "com.example.DoesNotExist".to_string()),
        ("topics".into(), "t".into()),
    ]);
    match api.put_config(&name, &config).await {
        Err(ConnectError::Refused { status, message }) => {
            assert_eq!(status, 400);
            assert!(
                message.contains("Failed to find any class that implements Connector"),
                "{message}"
            );
            assert!(message.contains("com.example.DoesNotExist"), "{message}");
        }
        other => panic!("expected a typed 400, got {other:?}"),
    }

    // Through createConnector it is success:false with that message, and the ip kept.
    let secret = unique("mako/connector/bad");
    store_secret(&secret, &json!({"name": name, "config": config})).await;
    let answer = create_with(
        &control_config(),
        &json!({"Payload": {"ip": "127.0.0.1"}, "connectorConfigSecret": secret}),
    )
    .await;
    assert_eq!(
        (&answer["ip"], &answer["success"]),
        (&json!("127.0.0.1"), &json!(false)),
        "{answer}"
    );
    assert!(
        answer["error"].as_str().unwrap().contains("request refused (400)"),
        "{answer}"
    );

    let missing = create_with(
        &control_config(),
        &json!({"ip": "127.0.0.1", "connectorConfigSecret": unique("absent")}),
    )
    .await;
    assert_eq!(missing["success"], false);
    assert!(missing["error"].as_str().unwrap().contains("not found"), "{missing}");
}

#[tokio::test]
async fn restart_pause_resume_and_stop_on_the_real_worker() {
    let _shape = SHAPE.read().await;
    let api = api();
    let (name, topic) = (unique("ops"), unique("topic"));
    let file = std::env::temp_dir().join(format!("{name}.out"));
    let config: BTreeMap<String, String> =
        serde_json::from_value(file_sink(&name, &topic, file.to_str().unwrap())["config"].clone()).unwrap();
    assert!(api.put_config(&name, &config).await.unwrap().created);
    wait_running(&api, &name).await;

    match api.restart_failed(&name).await.unwrap() {
        connector_core::connect::ports::RestartOutcome::Planned(plan) => assert_eq!(plan.name, name),
        other => panic!("a 4.x worker answers 202 with a plan, got {other:?}"),
    }
    api.restart_task(&name, 0).await.unwrap();
    assert!(
        api.restart_task(&name, 7).await.unwrap_err().is_not_found(),
        "unknown task is a typed 404"
    );

    api.pause(&name).await.unwrap();
    wait_for(Duration::from_secs(30), || async {
        (api.status(&name).await.ok()?.connector.state == State::Paused).then_some(())
    })
    .await
    .expect("PAUSED");
    api.resume(&name).await.unwrap();
    wait_running(&api, &name).await;
    api.stop(&name).await.unwrap();
    // A stopped connector lists no tasks, once the status topic has caught up.
    wait_for(Duration::from_secs(30), || async {
        let s = api.status(&name).await.ok()?;
        (s.connector.state == State::Stopped && s.tasks.is_empty()).then_some(())
    })
    .await
    .expect("STOPPED with no tasks");
    api.delete(&name).await.unwrap();
    assert!(api.pause(&name).await.unwrap_err().is_not_found());
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn readiness_is_false_where_no_worker_answers_and_true_on_the_worker() {
    let _shape = SHAPE.read().await;
    let info = api().server_info().await.unwrap();
    assert!(info.version.starts_with("4."), "{info:?}");
    assert!(info.kafka_cluster_id.is_some_and(|id| !id.is_empty()));

    let config = control_config();
    let ready = handle_check_ready(&config, &json!({"Payload": {"ip": "127.0.0.1"}})).await;
    assert_eq!(ready, json!({"ip": "127.0.0.1", "ready": true, "success": true}));

    // Nothing listens on this port: not ready, and an answer, not an error.
    let closed = ControlConfig::from_lookup(|k| (k == "CONNECT_PORT").then(|| free_port().to_string())).unwrap();
    let answer = handle_check_ready(&closed, &json!({"ip": "127.0.0.1"})).await;
    assert_eq!(
        (&answer["ready"], &answer["success"]),
        (&json!(false), &json!(true)),
        "{answer}"
    );
    assert!(answer["reason"].as_str().unwrap().contains("cannot reach"), "{answer}");
}

/// A second worker joins the group: while it starts it is not ready, then it is; writes sent
/// during the rebalance either succeed (after the adapter's 409 retries) or fail with the typed
/// rebalancing error — never anything else.
#[tokio::test]
async fn a_second_worker_joining_gives_readiness_then_rebalance_safe_writes() {
    let _shape = SHAPE.write().await;
    let api = api();
    let name = unique("rebalance");
    let file = std::env::temp_dir().join(format!("{name}.out"));
    let config: BTreeMap<String, String> =
        serde_json::from_value(file_sink(&name, &unique("topic"), file.to_str().unwrap())["config"].clone()).unwrap();
    api.put_config(&name, &config).await.unwrap();

    let port = free_port();
    let joining = tokio::spawn(async move { kafka_script(&["add-worker", "2", &port.to_string()]).await });
    let second = ControlConfig::from_lookup(|k| match k {
        "CONNECT_PORT" => Some(port.to_string()),
        "CONNECT_TIMEOUT_SECONDS" => Some("3".into()),
        _ => None,
    })
    .unwrap();

    let mut readiness = Vec::new();
    let mut writes = Vec::new();
    for _ in 0..240 {
        let ready = handle_check_ready(&second, &json!({"ip": "127.0.0.1"})).await["ready"] == true;
        readiness.push(ready);
        writes.push(api.put_config(&name, &config).await);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let url = joining.await.expect("add-worker task");
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    assert_eq!(
        readiness.first(),
        Some(&false),
        "not ready before it is up: {readiness:?}"
    );
    assert_eq!(readiness.last(), Some(&true), "ready once it joined: {readiness:?}");
    for w in &writes {
        assert!(matches!(w, Ok(_) | Err(ConnectError::Rebalancing { .. })), "{w:?}");
    }
    // After the join, both workers serve the connector and writes succeed from either.
    let via_second = HttpConnectApi::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(10)).unwrap();
    let after = wait_for(Duration::from_secs(60), || async {
        via_second.put_config(&name, &config).await.ok()
    })
    .await;
    assert!(
        after.is_some(),
        "a write through the new worker succeeds after the rebalance"
    );
    let rebalanced = writes.iter().filter(|w| w.is_err()).count();
    println!(
        "writes during the join: {} ok, {rebalanced} typed 409",
        writes.len() - rebalanced
    );

    kafka_script(&["stop-worker", "2"]).await;
    api.delete(&name).await.unwrap();
    let _ = std::fs::remove_file(&file);
}

/// `createConnector` with the stack's `SINK_TABLES` (topic → table).
fn control_config_with_tables(topic: &str, table: &str) -> ControlConfig {
    let tables = json!({ topic: table });
    ControlConfig {
        sink_tables: serde_json::from_value(tables).unwrap(),
        ..control_config()
    }
}

/// `createConnector` on `payload`, with moto's secrets, ECS and tables.
async fn create_with(config: &ControlConfig, payload: &Value) -> Value {
    let configs = SecretsManagerConfigs::new(aws_sdk_secretsmanager::Client::new(&sdk().await));
    handle_create_connector(
        config,
        &configs,
        &discovery().await,
        &connector_tests::table_probe().await,
        payload,
    )
    .await
}

/// A sink whose consumer group has committed offsets is not resumed into an empty table (the
/// records before them would never reach it): it is left STOPPED with the way out, a retry
/// refuses again, and once the table holds the history (adopted) the config applies and the
/// operator resumes it. With no commits, or a table that holds items, it is created and runs.
#[tokio::test]
async fn a_sink_with_committed_offsets_is_not_resumed_into_an_empty_table() {
    let _shape = SHAPE.read().await;
    let sdk = sdk().await;
    let configs = SecretsManagerConfigs::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let (name, topic, table) = (unique("resume-sink"), unique("resume-topic"), unique("resume-table"));
    connector_tests::create_sink_table(&sdk, &table).await;
    connector_tests::committed_then_deleted(&name, &topic, 5).await;

    let secret = unique("mako/connect/resume");
    let file = std::env::temp_dir().join(format!("{name}.second"));
    store_secret(&secret, &file_sink(&name, &topic, file.to_str().unwrap())).await;
    let config = control_config_with_tables(&topic, &table);
    let payload =
        json!({"Payload": {"ip": "127.0.0.1"}, "Context": {"Execution": {"Input": {"connectorConfigSecret": secret}}}});
    let api = api();
    for attempt in ["first", "retry"] {
        let answer = create_with(&config, &payload).await;
        assert_eq!(
            (&answer["success"], &answer["refused"]),
            (&json!(false), &json!(true)),
            "{attempt}: {answer}"
        );
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("connect-{name} has committed offsets in 1 partition(s)"))
                && error.contains(&format!("table {table} is empty"))
                && error.contains("connectorctl offsets reset"),
            "{error}"
        );
        assert_eq!(
            api.status(&name).await.unwrap().connector.state,
            State::Stopped,
            "{attempt}"
        );
    }
    assert_eq!(
        api.sink_offsets(&name)
            .await
            .unwrap()
            .iter()
            .map(|o| o.offset)
            .sum::<i64>(),
        5,
        "the commits are kept for the way out"
    );
    assert!(!file.exists(), "nothing was consumed into the new sink");

    // The table holds the history (adopted): the config applies, the connector stays as the
    // refusal left it until the operator resumes it.
    connector_tests::put_id(&sdk, &table, "k0").await;
    let answer = create_with(&config, &payload).await;
    assert_eq!(answer["success"], true, "{answer}");
    api.resume(&name).await.unwrap();
    wait_running(&api, &name).await;
    api.delete(&name).await.unwrap();

    // No commits: created and running at once, empty table or not.
    let (fresh, fresh_topic) = (unique("resume-fresh"), unique("resume-fresh-topic"));
    let fresh_secret = unique("mako/connect/fresh");
    let fresh_file = std::env::temp_dir().join(format!("{fresh}.out"));
    store_secret(
        &fresh_secret,
        &file_sink(&fresh, &fresh_topic, fresh_file.to_str().unwrap()),
    )
    .await;
    let empty = unique("resume-empty");
    connector_tests::create_sink_table(&sdk, &empty).await;
    let answer = handle_create_connector(
        &control_config_with_tables(&fresh_topic, &empty),
        &configs,
        &discovery().await,
        &connector_tests::table_probe().await,
        &json!({"Payload": {"ip": "127.0.0.1"}, "Context": {"Execution": {"Input": {"connectorConfigSecret": fresh_secret}}}}),
    )
    .await;
    assert_eq!(
        (&answer["success"], &answer["created"]),
        (&json!(true), &json!(true)),
        "{answer}"
    );
    wait_running(&api, &fresh).await;
    api.delete(&fresh).await.unwrap();
}
