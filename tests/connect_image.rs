//! The Connect image's entrypoint (infra/connect-image/src), run as ECS runs the container: the
//! environment is the task definition's in infra/template.yaml (parameters resolved with this
//! run's values, by tests/infra/container_env.py), the task metadata endpoint v4 is served on
//! loopback from events/ecs-metadata/container-v4.json, and the broker is reached over TLS
//! (its listener and certificate are made by scripts/kafka.sh for the run). The worker runs the
//! Kafka jars the other tests run, from $KAFKA_HOME, as the image does from /opt/kafka.
//!
//! Where the harness must differ from a container, it says so: a free REST port instead of 8083
//! (a container has its own network), the plugin path the image's ENV sets, and the run's CA in
//! a truststore (MSK's CA is in the JRE's own).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use connector_adapters::connect::HttpConnectApi;
use connector_core::connect::{ConnectApi, State};
use connector_tests::{event, file_sink, free_port, produce, task_is, unique, wait_for, wait_status};
use serde_json::Value;

const METADATA_PATH: &str = "/v4/cd189a933e5849daa93386466019ab50-2495160603";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run through scripts/test"))
}

/// The kafka-connect container's environment from the template, with `params`.
async fn container_env(params: &[(&str, &str)]) -> BTreeMap<String, String> {
    let python = root().join(".venv-tools/bin/python");
    let out = tokio::process::Command::new(&python)
        .arg(root().join("tests/infra/container_env.py"))
        .args(params.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "container_env.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("container_env.py prints a JSON object")
}

/// Serves the container metadata document on loopback, its address changed to 127.0.0.1 (the
/// document's own is a private address, which must not be dialled here); returns its URI.
async fn metadata_endpoint() -> String {
    let mut doc = event("ecs-metadata/container-v4.json");
    doc["Networks"][0]["IPv4Addresses"] = serde_json::json!(["127.0.0.1"]);
    let app = Router::new().route(METADATA_PATH, get(move || async move { axum::Json(doc) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}{METADATA_PATH}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    uri
}

/// Starts the entrypoint with exactly `env` (nothing inherited but PATH), output to `log`.
fn entrypoint(env: &BTreeMap<String, String>, log: &Path) -> tokio::process::Child {
    let home = var("KAFKA_HOME");
    let out = std::fs::File::create(log).unwrap();
    tokio::process::Command::new("java")
        .env_clear()
        .env("PATH", var("PATH"))
        .envs(env)
        .arg("-Xmx384m")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            root().join("infra/connect-image/log4j2.properties").display()
        ))
        .args([
            "-cp",
            &format!("{home}/lib/*:{home}/entrypoint"),
            "connector.worker.Entrypoint",
        ])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start java")
}

/// The container's health check (the template's HealthCheck command, with the harness's paths):
/// its exit code.
async fn health_check(port: &str) -> Option<i32> {
    let home = var("KAFKA_HOME");
    let run = tokio::process::Command::new("java")
        .env_clear()
        .env("PATH", var("PATH"))
        .env("CONNECT_REST_PORT", port)
        .args([
            "-cp",
            &format!("{home}/lib/*:{home}/entrypoint"),
            "connector.worker.Entrypoint",
            "health",
        ])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the health check ended within 60 s")
        .expect("run java");
    out.status.code()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The Kafka version the harness fetches (tests/kafka/pom.xml), which the image is built from.
fn pinned_kafka_version() -> String {
    let pom = std::fs::read_to_string(root().join("tests/kafka/pom.xml")).unwrap();
    let start = pom.find("<kafka.version>").expect("kafka.version in the pom") + "<kafka.version>".len();
    pom[start..start + pom[start..].find('<').unwrap()].to_string()
}

#[tokio::test]
async fn the_image_entrypoint_with_the_templates_environment_joins_over_tls_advertises_the_task_address_and_runs_a_connector()
 {
    let project = unique("img").to_lowercase();
    let tls = var("KAFKA_TLS_BOOTSTRAP");
    let mut env = container_env(&[("Project", &project), ("BrokerString", &tls)]).await;
    assert_eq!(
        env["KAFKA_SECURITY_PROTOCOL"], "SSL",
        "the template's default reaches MSK over TLS"
    );
    assert!(
        !env.contains_key("CONNECT_REST_ADVERTISED_HOST_NAME"),
        "the address comes from the task metadata"
    );
    let port = free_port().to_string();
    env.insert("CONNECT_REST_PORT".into(), port.clone());
    env.insert("ECS_CONTAINER_METADATA_URI_V4".into(), metadata_endpoint().await);
    env.insert("CONNECT_PLUGIN_PATH".into(), format!("{}/plugins", var("KAFKA_HOME")));
    env.insert("KAFKA_SSL_TRUSTSTORE_LOCATION".into(), var("KAFKA_TLS_TRUSTSTORE"));
    env.insert("KAFKA_SSL_TRUSTSTORE_PASSWORD".into(), var("KAFKA_TLS_PASSWORD"));
    let log = PathBuf::from(var("KAFKA_RUN")).join(format!("{project}-entrypoint.log"));
    let mut worker = entrypoint(&env, &log);

    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let healthy = wait_for(Duration::from_secs(180), || async {
        let r = client.get(format!("{url}/health")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    if healthy.is_none() {
        let _ = worker.start_kill();
        panic!(
            "the entrypoint's worker did not report healthy on {url}/health within 180 s; its log:\n{}",
            tail(&log)
        );
    }
    assert_eq!(
        health_check(&port).await,
        Some(0),
        "the container health check passes on a healthy worker"
    );
    let info: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        info["version"],
        pinned_kafka_version().as_str(),
        "the image's Kafka is the harness's"
    );
    let plugins: Value = client
        .get(format!("{url}/connector-plugins"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let classes: Vec<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["class"].as_str())
        .collect();
    assert!(
        classes.contains(&"connector.standin.lambda.LambdaSinkConnector"),
        "the Lambda sink plugin is on the plugin path: {classes:?}"
    );

    // A sink over TLS: records produced to the broker reach the file through the worker.
    let api = HttpConnectApi::new(&url, Duration::from_secs(30)).unwrap();
    let (name, topic) = (unique("image-sink"), unique("image-topic"));
    let file = std::env::temp_dir().join(format!("{name}.out"));
    api.put_config(&name, &file_sink(&topic, &file)).await.unwrap();
    wait_status(
        &api,
        &name,
        "RUNNING",
        Duration::from_secs(120),
        task_is(State::Running),
    )
    .await;
    let status = api.status(&name).await.unwrap();
    assert_eq!(
        status.connector.worker_id,
        format!("127.0.0.1:{port}"),
        "advertised from the task metadata"
    );
    produce(&topic, &[(Some("k1"), Some("first")), (Some("k2"), Some("second"))]).await;
    let written = wait_for(Duration::from_secs(60), || async {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        (text.lines().count() >= 2).then_some(text)
    })
    .await;
    worker.kill().await.unwrap();
    assert_eq!(health_check(&port).await, Some(1), "and fails once the worker is gone");
    assert_eq!(
        written.unwrap_or_else(|| panic!("the records never reached {} within 60 s", file.display())),
        "first\nsecond\n"
    );
}

#[tokio::test]
async fn the_image_entrypoint_refuses_to_start_naming_every_missing_or_wrong_variable() {
    let mut env = container_env(&[("BrokerString", &var("KAFKA_TLS_BOOTSTRAP"))]).await;
    env.remove("CONNECT_GROUP_ID");
    env.insert("KAFKA_SECURITY_PROTOCOL".into(), "TLS".into());
    env.insert("CONNECT_REST_PORT".into(), "80833".into());
    let log = PathBuf::from(var("KAFKA_RUN")).join(format!("{}-entrypoint.log", unique("refused")));
    let mut child = entrypoint(&env, &log);
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap_or_else(|_| panic!("the entrypoint did not exit within 60 s; its log:\n{}", tail(&log)))
        .unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{said}");
    for expected in [
        "CONNECT_GROUP_ID is not set",
        "KAFKA_SECURITY_PROTOCOL must be PLAINTEXT or SSL, not 'TLS'",
        "CONNECT_REST_PORT must be a TCP port from 1 to 65535, not '80833'",
        "CONNECT_REST_ADVERTISED_HOST_NAME is not set and ECS_CONTAINER_METADATA_URI_V4 is not either",
    ] {
        assert!(said.contains(expected), "the message names {expected:?}: {said}");
    }
    assert_eq!(said.lines().count(), 1, "one line: {said}");
}
