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
use connector_adapters::connect::{BasicAuth, HttpConnectApi};
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

/// The REST credentials ECS injects from the template's secret (its `Secrets`), with values of
/// this run: a password with the characters that need quoting in a password file, a JAAS file
/// and curl's config.
async fn rest_credentials(project: &str) -> BTreeMap<String, String> {
    let python = root().join(".venv-tools/bin/python");
    let out = tokio::process::Command::new(&python)
        .arg(root().join("tests/infra/container_env.py"))
        .args(["--secrets", &format!("Project={project}")])
        .output()
        .await
        .unwrap();
    let secrets: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).expect("the template's Secrets");
    let arn = format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{project}/connect-rest/main/credentials");
    assert_eq!(
        secrets,
        BTreeMap::from([
            ("REST_AUTH_USERNAME".to_string(), format!("{arn}:username::")),
            ("REST_AUTH_PASSWORD".to_string(), format!("{arn}:password::")),
        ]),
        "the variables the entrypoint reads, from the keys of the stack's ConnectRestCredentials"
    );
    BTreeMap::from([
        ("REST_AUTH_USERNAME".to_string(), "connector".to_string()),
        ("REST_AUTH_PASSWORD".to_string(), format!("p\"a\\s:s=#{}", unique("pw"))),
    ])
}

/// A client of the worker's REST API that sends `credentials` (as [`rest_credentials`] gives).
struct Rest {
    client: reqwest::Client,
    url: String,
    user: String,
    password: String,
}

impl Rest {
    fn new(url: &str, credentials: &BTreeMap<String, String>) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            url: url.to_string(),
            user: credentials["REST_AUTH_USERNAME"].clone(),
            password: credentials["REST_AUTH_PASSWORD"].clone(),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.url))
            .basic_auth(&self.user, Some(&self.password))
    }

    /// The status of `GET path` without any credentials.
    async fn anonymous_status(&self, path: &str) -> u16 {
        let r = self.client.get(format!("{}{path}", self.url)).send().await.unwrap();
        r.status().as_u16()
    }

    /// Waits up to `limit` for `/health` to answer 200 to the credentials; false if it did not.
    async fn wait_healthy(&self, limit: Duration) -> bool {
        wait_for(limit, || async {
            let r = self.get("/health").send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await
        .is_some()
    }

    fn api(&self) -> HttpConnectApi {
        HttpConnectApi::new(&self.url, Duration::from_secs(30))
            .unwrap()
            .with_auth(Some(BasicAuth {
                username: self.user.clone(),
                password: self.password.clone(),
            }))
    }
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

/// The container's health check (the image's and the template's `/opt/kafka/bin/healthcheck`,
/// run here from the checkout) with the container's `credentials`: its exit code.
async fn health_check(port: &str, credentials: &BTreeMap<String, String>) -> Option<i32> {
    let run = tokio::process::Command::new("sh")
        .arg(root().join("infra/connect-image/healthcheck.sh"))
        .env_clear()
        .env("PATH", var("PATH"))
        .env("CONNECT_REST_PORT", port)
        .envs(credentials)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the health check ended within 60 s")
        .expect("run the health check");
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
    let credentials = rest_credentials(&project).await;
    env.extend(credentials.clone());
    env.insert("CONNECT_REST_PORT".into(), port.clone());
    env.insert("ECS_CONTAINER_METADATA_URI_V4".into(), metadata_endpoint().await);
    env.insert("CONNECT_PLUGIN_PATH".into(), format!("{}/plugins", var("KAFKA_HOME")));
    env.insert("KAFKA_SSL_TRUSTSTORE_LOCATION".into(), var("KAFKA_TLS_TRUSTSTORE"));
    env.insert("KAFKA_SSL_TRUSTSTORE_PASSWORD".into(), var("KAFKA_TLS_PASSWORD"));
    let log = PathBuf::from(var("KAFKA_RUN")).join(format!("{project}-entrypoint.log"));
    let mut worker = entrypoint(&env, &log);

    let url = format!("http://127.0.0.1:{port}");
    let rest = Rest::new(&url, &credentials);
    if !rest.wait_healthy(Duration::from_secs(180)).await {
        let _ = worker.start_kill();
        panic!(
            "the entrypoint's worker did not report healthy on {url}/health within 180 s; its log:\n{}",
            tail(&log)
        );
    }
    for path in ["/", "/health", "/connectors"] {
        assert_eq!(
            rest.anonymous_status(path).await,
            401,
            "GET {path} without the credentials"
        );
    }
    assert_eq!(
        health_check(&port, &credentials).await,
        Some(0),
        "the container health check passes on a healthy worker, with the container's credentials"
    );
    assert_eq!(
        health_check(&port, &BTreeMap::new()).await,
        Some(1),
        "and it does send them: without, the worker refuses it"
    );
    let info: Value = rest.get("/").send().await.unwrap().json().await.unwrap();
    assert_eq!(
        info["version"],
        pinned_kafka_version().as_str(),
        "the image's Kafka is the harness's"
    );
    let plugins: Value = rest
        .get("/connector-plugins")
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
    let api = rest.api();
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
    assert_eq!(
        health_check(&port, &credentials).await,
        Some(1),
        "and fails once the worker is gone"
    );
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
        // ECS injects these from Secrets Manager; the template's Environment alone has neither.
        "REST_AUTH_USERNAME and REST_AUTH_PASSWORD must both be set",
    ] {
        assert!(said.contains(expected), "the message names {expected:?}: {said}");
    }
    assert_eq!(said.lines().count(), 1, "one line: {said}");
}

// The built image (scripts/image, which scripts/test runs first): target/image/kafka-connect.tar,
// run from its own filesystem with buildah (chroot isolation, the host's network, so loopback
// is shared as a task's containers share theirs).

/// `scripts/image ARGS` (its buildah storage and settings), with `env`: (exit code, output).
async fn image_script(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(root().join("scripts/image"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run scripts/image");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The image's Docker config (as `docker inspect` shows it), read from the archive itself.
async fn archive_config() -> Value {
    let archive = var("CONNECT_IMAGE_ARCHIVE");
    let member = |name: String| {
        let archive = archive.clone();
        async move {
            let out = tokio::process::Command::new("tar")
                .args(["-xOf", &archive, &name])
                .output()
                .await
                .expect("run tar");
            assert!(
                out.status.success(),
                "{name} in {archive}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
        }
    };
    let manifest = member("manifest.json".into()).await;
    member(
        manifest[0]["Config"]
            .as_str()
            .expect("manifest names the config")
            .to_string(),
    )
    .await
}

/// A working container of the archived image, removed on drop.
struct Container(String);

impl Container {
    async fn from_archive() -> Self {
        let name = unique("image-test").to_lowercase();
        let from = format!("docker-archive:{}", var("CONNECT_IMAGE_ARCHIVE"));
        let (code, out) = image_script(&["buildah", "from", "--quiet", "--name", &name, &from], &[]).await;
        assert_eq!(code, Some(0), "buildah from {from}: {out}");
        Self(name)
    }

    /// `buildah run` of `argv` in the container as the image's user, with `env` and `volumes`.
    fn command(&self, argv: &[String], env: &BTreeMap<String, String>, volumes: &[String]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(root().join("scripts/image"));
        command.args(["buildah", "run", "--isolation", "chroot", "--user", "10001"]);
        for v in volumes {
            command.args(["--volume", v]);
        }
        for (k, v) in env {
            command.args(["--env", &format!("{k}={v}")]);
        }
        command.arg(&self.0).arg("--").args(argv).stdin(Stdio::null());
        command
    }

    /// The image's HEALTHCHECK command run inside the container, with the container's
    /// `credentials` (a health check runs in the container's environment): its exit code.
    async fn health_check(&self, test: &[String], port: &str, credentials: &BTreeMap<String, String>) -> Option<i32> {
        let mut env = credentials.clone();
        env.insert("CONNECT_REST_PORT".to_string(), port.to_string());
        let run = self.command(test, &env, &[]).output();
        let out = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the image's health check ended within 60 s")
            .expect("run buildah");
        out.status.code()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new(root().join("scripts/image"))
            .args(["buildah", "rm", &self.0])
            .output();
    }
}

/// Kills a process group (what `buildah run` started, and the JVM under it).
fn kill_group(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status();
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list of strings: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[tokio::test]
async fn the_image_archive_is_amd64_runs_as_uid_10001_and_checks_health_as_the_task_definition_does() {
    let config = archive_config().await;
    assert_eq!(
        (config["architecture"].as_str(), config["os"].as_str()),
        (Some("amd64"), Some("linux"))
    );
    let c = &config["config"];
    assert_eq!(c["User"], "10001", "not root");
    let test = strings(&c["Healthcheck"]["Test"]);
    assert_eq!(test, ["CMD", "/opt/kafka/bin/healthcheck"], "curl, not a second JVM");
    let python = root().join(".venv-tools/bin/python");
    let out = tokio::process::Command::new(&python)
        .arg(root().join("tests/infra/container_env.py"))
        .arg("--health-check")
        .output()
        .await
        .unwrap();
    let template: Value = serde_json::from_slice(&out.stdout).expect("the template's HealthCheck command");
    assert_eq!(
        strings(&template),
        test,
        "ECS runs the task definition's check, not the image's: they must agree"
    );
    let entrypoint = strings(&c["Entrypoint"]);
    for flag in [
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:+UseG1GC",
        "-XX:MaxRAMPercentage=50.0",
    ] {
        assert!(entrypoint.iter().any(|a| a == flag), "{flag} in {entrypoint:?}");
    }
    // skopeo (what copies it to ECR) reads the archive as an image.
    let out = tokio::process::Command::new("skopeo")
        .args(["inspect", &format!("docker-archive:{}", var("CONNECT_IMAGE_ARCHIVE"))])
        .output()
        .await
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Architecture"], "amd64");
}

#[tokio::test]
async fn a_wrong_plugin_checksum_fails_the_image_build() {
    let wrong = "0".repeat(64);
    let tag = unique("wrong-checksum").to_lowercase();
    let (code, out) = image_script(&["build", &wrong], &[("IMAGE_TAG", &tag)]).await;
    assert_ne!(code, Some(0), "the build must fail: {out}");
    assert!(
        out.contains("FAILED") && out.contains("install-plugin.sh"),
        "sha256sum's verdict in the build: {out}"
    );
    let image = format!("localhost/connector/kafka-connect:{tag}");
    let (code, _) = image_script(&["buildah", "inspect", "--type", "image", &image], &[]).await;
    assert_ne!(code, Some(0), "no image {image} was made");
}

/// The image's ENTRYPOINT, run as ECS runs the container: uid 10001, the task definition's
/// environment, the metadata endpoint on loopback, the broker over TLS. The stand-in Lambda sink
/// from the image's plugin path (installed from its archive by install-plugin.sh) carries a
/// record to sinkSeatoolData under `cargo lambda watch` and into its table on moto.
#[tokio::test]
async fn the_built_image_started_as_ecs_starts_it_runs_the_plugin_into_the_sink_and_reports_health() {
    let [watch, table, dlq] = ["WATCH_URL", "TABLE", "DLQ"].map(|v| var(&format!("E2E_IMAGE_{v}")));
    let sdk = connector_tests::sdk().await;
    connector_tests::create_sink_table(&sdk, &table).await;
    connector_tests::create_queue(&sdk, &dlq).await;
    let config = archive_config().await;
    let entrypoint = strings(&config["config"]["Entrypoint"]);
    let health = strings(&config["config"]["Healthcheck"]["Test"])[1..].to_vec();
    let container = Container::from_archive().await;

    let project = unique("imgrun").to_lowercase();
    let mut env = container_env(&[("Project", &project), ("BrokerString", &var("KAFKA_TLS_BOOTSTRAP"))]).await;
    let port = free_port().to_string();
    let credentials = rest_credentials(&project).await;
    env.extend(credentials.clone());
    // Where the harness differs from ECS: a free port (no network of its own), the run's CA in a
    // truststore (MSK's is in the JRE's), credentials the task role would give, and the task's
    // size for the JVM (chroot isolation sets no cgroup limits): 4 GB, 1 vCPU.
    env.insert("CONNECT_REST_PORT".into(), port.clone());
    env.insert("ECS_CONTAINER_METADATA_URI_V4".into(), metadata_endpoint().await);
    let truststore = PathBuf::from(var("KAFKA_TLS_TRUSTSTORE"));
    env.insert(
        "KAFKA_SSL_TRUSTSTORE_LOCATION".into(),
        "/run/broker-tls/truststore.p12".into(),
    );
    env.insert("KAFKA_SSL_TRUSTSTORE_PASSWORD".into(), var("KAFKA_TLS_PASSWORD"));
    for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        env.insert(k.into(), var(k));
    }
    env.insert(
        "JDK_JAVA_OPTIONS".into(),
        "-XX:MaxRAM=4g -XX:ActiveProcessorCount=1 -XX:+PrintFlagsFinal".into(),
    );
    let volume = format!("{}:/run/broker-tls:ro", truststore.parent().unwrap().display());
    let log = PathBuf::from(var("KAFKA_RUN")).join(format!("{project}-image.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut worker = container
        .command(&entrypoint, &env, &[volume])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("start buildah run");
    let pid = worker.id().expect("the worker's pid");

    let url = format!("http://127.0.0.1:{port}");
    let rest = Rest::new(&url, &credentials);
    if !rest.wait_healthy(Duration::from_secs(240)).await {
        kill_group(pid);
        panic!(
            "the image's worker did not report healthy on {url}/health within 240 s; its log:\n{}",
            tail(&log)
        );
    }
    assert_eq!(
        rest.anonymous_status("/connectors").await,
        401,
        "the image's REST API asks for the credentials"
    );
    assert_eq!(
        container.health_check(&health, &port, &credentials).await,
        Some(0),
        "the image's HEALTHCHECK passes with the container's credentials"
    );

    let text = std::fs::read_to_string(&log).unwrap();
    let flag = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or_else(|| panic!("the JVM printed {name} (PrintFlagsFinal)"))
            .to_string()
    };
    assert_eq!(
        [
            flag("UseG1GC"),
            flag("UseSerialGC"),
            flag("ExitOnOutOfMemoryError"),
            flag("MaxHeapSize"),
            flag("InitialHeapSize")
        ],
        ["true", "false", "true", "2147483648", "2147483648"],
        "G1 (not the 1-vCPU default), exit on OOM, a fixed 2 GiB heap in a 4 GB task"
    );

    let api = rest.api();
    let (name, topic) = (unique("image-lambda"), unique("image-seatool"));
    let sink = BTreeMap::from(
        [
            ("connector.class", "connector.standin.lambda.LambdaSinkConnector"),
            ("tasks.max", "1"),
            ("topics", topic.as_str()),
            ("aws.lambda.function.name", "sinkSeatoolData"),
            ("aws.lambda.invocation.type", "sync"),
            ("aws.lambda.endpoint.override", watch.as_str()),
            ("behavior.on.error", "fail"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    api.put_config(&name, &sink).await.unwrap();
    wait_status(
        &api,
        &name,
        "RUNNING",
        Duration::from_secs(120),
        task_is(State::Running),
    )
    .await;
    let value = serde_json::json!({"STATE_PLAN": {"ID_NUMBER": "IMG-1", "TITLE_NAME": "from the image"}});
    produce(&topic, &[(Some("\"IMG-1\""), Some(value.to_string()))]).await;
    let stored = wait_for(Duration::from_secs(90), || async {
        connector_tests::scan(&sdk, &table)
            .await
            .into_values()
            .find(|item| item["PK"].as_str().is_some_and(|pk| pk.contains("IMG-1")))
    })
    .await;

    kill_group(pid);
    let _ = worker.wait().await;
    let after = container.health_check(&health, &port, &credentials).await;
    let stored =
        stored.unwrap_or_else(|| panic!("the record never reached {table}; the worker's log:\n{}", tail(&log)));
    assert_eq!(stored["STATE_PLAN"]["TITLE_NAME"], "from the image", "{stored}");
    assert_ne!(after, Some(0), "the image's HEALTHCHECK fails once the worker is gone");
}
