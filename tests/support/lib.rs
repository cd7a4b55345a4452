//! Helpers for the integration tests: clients for the moto server that `scripts/test` starts,
//! and uniquely named resources so that tests run in parallel against one server.
//!
//! Tests read only the standard AWS environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials)
//! that `scripts/test` exports, the same variables production code reads.

pub mod emulator;
pub mod faults;
pub mod monitor;
pub mod proxy;
pub mod sink;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use connector_adapters::dynamodb::from_attribute;
use serde_json::Value;

/// The SDK configuration for moto, with the same timeouts and retries as production.
pub async fn sdk() -> SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the integration tests through scripts/test, which starts moto"
    );
    connector_adapters::aws::load_sdk_config(Duration::from_secs(10), 3).await
}

/// A name no other test in this run (or an earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a sink table as the SAM template does: `PK` hash and `SK` range, both strings.
pub async fn create_sink_table(sdk: &SdkConfig, name: &str) {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("PK"))
        .attribute_definitions(attr("SK"))
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create table {name}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        });
}

/// Creates an SQS queue and returns its URL.
pub async fn create_queue(sdk: &SdkConfig, name: &str) -> String {
    let client = aws_sdk_sqs::Client::new(sdk);
    let out = client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue");
    out.queue_url().expect("queue url").to_string()
}

/// Every item of a table as JSON objects, keyed by `PK`/`SK` joined with a space.
pub async fn scan(sdk: &SdkConfig, table: &str) -> HashMap<String, Value> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut items = HashMap::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in out.items() {
            let json: serde_json::Map<String, Value> =
                item.iter().map(|(k, v)| (k.clone(), from_attribute(v))).collect();
            let key = format!(
                "{} {}",
                json["PK"].as_str().unwrap_or(""),
                json["SK"].as_str().unwrap_or("")
            );
            items.insert(key, Value::Object(json));
        }
        match out.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => return items,
        }
    }
}

/// The item `PK = SK = id` as a reader sees it (read with a consistent `GetItem`, a tombstone
/// skipped as the README tells readers to): `None` when there is none or it was deleted.
pub async fn get_item(sdk: &SdkConfig, table: &str, id: &str) -> Option<Value> {
    get_stored_item(sdk, table, id)
        .await
        .filter(|item| item.get("@deleted").is_none())
}

/// The item stored under `id` as it is, tombstones included.
pub async fn get_stored_item(sdk: &SdkConfig, table: &str, id: &str) -> Option<Value> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let out = client
        .get_item()
        .table_name(table)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item");
    out.item()
        .map(|i| i.iter().map(|(k, v)| (k.clone(), from_attribute(v))).collect())
}

/// Receives every message waiting on a queue (bodies parsed as JSON), deleting them.
pub async fn drain_queue(sdk: &SdkConfig, url: &str) -> Vec<Value> {
    let client = aws_sdk_sqs::Client::new(sdk);
    let mut bodies = Vec::new();
    loop {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        if out.messages().is_empty() {
            return bodies;
        }
        for m in out.messages() {
            bodies.push(serde_json::from_str(m.body().unwrap_or("null")).expect("JSON body"));
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

/// Now in epoch milliseconds, from the same clock the functions read.
pub use connector_lambdas::now_millis;

/// The parsed JSON of `events/<path>`.
pub fn event(path: &str) -> Value {
    let full = format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The Kafka Connect worker that `scripts/test` started (`scripts/kafka start`).
pub fn connect_url() -> String {
    std::env::var("CONNECT_URL")
        .expect("CONNECT_URL is not set: run the integration tests through scripts/test, which starts Kafka Connect")
}

/// Polls `check` every 250 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Produces records (key, value; `None` is null) to `topic` with Kafka's console producer.
pub async fn produce<K: AsRef<str>, V: AsRef<str>>(topic: &str, records: &[(Option<K>, Option<V>)]) {
    produce_compressed(topic, records, "none").await
}

/// [`produce`] in batches the Java producer compresses with `codec` (none, gzip, snappy, lz4,
/// zstd).
pub async fn produce_compressed<K: AsRef<str>, V: AsRef<str>>(
    topic: &str,
    records: &[(Option<K>, Option<V>)],
    codec: &str,
) {
    let home = std::env::var("KAFKA_HOME").expect("KAFKA_HOME is not set: run through scripts/test");
    let run = std::env::var("KAFKA_RUN").expect("KAFKA_RUN is not set: run through scripts/test");
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP_SERVERS").expect("KAFKA_BOOTSTRAP_SERVERS is not set");
    const NULL: &str = "<null>";
    let input: String = records
        .iter()
        .map(|(k, v)| {
            let (k, v) = (
                k.as_ref().map_or(NULL, AsRef::as_ref),
                v.as_ref().map_or(NULL, AsRef::as_ref),
            );
            format!("{k}\t{v}\n")
        })
        .collect();
    let mut child = tokio::process::Command::new("java")
        .arg(format!("-Dlog4j2.configurationFile={run}/log4j2.properties"))
        .args([
            "-cp",
            &format!("{home}/lib/*"),
            "org.apache.kafka.tools.ConsoleProducer",
        ])
        .args(["--bootstrap-server", &bootstrap, "--topic", topic])
        .args(["--compression-codec", codec])
        .args([
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=\t",
            "--property",
            &format!("null.marker={NULL}"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the console producer");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write records");
    drop(stdin);
    let status = child.wait().await.expect("console producer");
    assert!(status.success(), "the console producer failed: {status}");
}

/// Runs `scripts/kafka ARGS` (add or stop a worker) and returns its stdout.
pub async fn kafka_script(args: &[&str]) -> String {
    kafka_script_with(args, &[]).await
}

/// [`kafka_script`] with more environment, e.g. `CONNECT_GROUP` for a separate Connect cluster.
pub async fn kafka_script_with(args: &[&str], env: &[(&str, &str)]) -> String {
    let script = format!("{}/../scripts/kafka", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(&script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run scripts/kafka");
    assert!(
        out.status.success(),
        "scripts/kafka {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A FileStreamSink of `topic` into `file`: the connector the tests run when they need a real
/// connector whose failures they control (a missing directory fails its task).
pub fn file_sink(topic: &str, file: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        (
            "connector.class".into(),
            "org.apache.kafka.connect.file.FileStreamSinkConnector".into(),
        ),
        ("tasks.max".into(), "1".into()),
        ("topics".into(), topic.into()),
        ("file".into(), file.to_string_lossy().into_owned()),
    ])
}

/// Polls the connector's status on `api` until `check` holds, for at most `limit`; whether it did.
pub async fn status_reaches(
    api: &connector_adapters::connect::HttpConnectApi,
    name: &str,
    limit: Duration,
    check: impl Fn(&connector_core::connect::ConnectorStatus) -> bool,
) -> bool {
    use connector_core::connect::ConnectApi;
    wait_for(limit, || async {
        api.status(name).await.ok().filter(|s| check(s)).map(|_| ())
    })
    .await
    .is_some()
}

/// [`status_reaches`], failing the test with the last status when it does not.
pub async fn wait_status(
    api: &connector_adapters::connect::HttpConnectApi,
    name: &str,
    what: &str,
    limit: Duration,
    check: impl Fn(&connector_core::connect::ConnectorStatus) -> bool,
) {
    use connector_core::connect::ConnectApi;
    let ok = status_reaches(api, name, limit, check).await;
    assert!(ok, "{name} never became {what}: {:?}", api.status(name).await);
}

/// Waits until the worker answers 404 for the connector's status. A DELETE returns before its
/// status goes: Kafka Connect 3.6 answers UNASSIGNED for a moment after it.
pub async fn wait_deleted(api: &connector_adapters::connect::HttpConnectApi, name: &str, limit: Duration) {
    use connector_core::connect::ConnectApi;
    let gone = wait_for(limit, || async {
        api.status(name).await.err().filter(|e| e.is_not_found()).map(|_| ())
    })
    .await;
    assert!(
        gone.is_some(),
        "{name} still has a status {limit:?} after its delete: {:?}",
        api.status(name).await
    );
}

/// Whether the connector's first task is in `state`.
pub fn task_is(state: connector_core::connect::State) -> impl Fn(&connector_core::connect::ConnectorStatus) -> bool {
    move |s| s.tasks.first().is_some_and(|t| t.state == state)
}

/// Stores a connector's desired config as the secret `<prefix><name>`, in the seed's shape.
pub async fn put_connector_secret(
    sdk: &SdkConfig,
    prefix: &str,
    name: &str,
    config: &std::collections::BTreeMap<String, String>,
) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(format!("{prefix}{name}"))
        .secret_string(serde_json::json!({"name": name, "config": config}).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create secret {prefix}{name}: {e:?}"));
}

/// A free TCP port on loopback (for a worker this test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One alert as a subscriber of the SNS topic receives it.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The SNS subject.
    pub subject: String,
    /// The message.
    pub body: String,
    /// The message attributes (`category`, `severity`, `incident`, `state`).
    pub attributes: std::collections::BTreeMap<String, String>,
    /// When SNS took it (ms since the epoch; 0 when the envelope has no `Timestamp`).
    pub sent_at: i64,
}

/// A new SNS topic named after `name`: its ARN.
pub async fn sns_topic(sdk: &SdkConfig, name: &str) -> String {
    aws_sdk_sns::Client::new(sdk)
        .create_topic()
        .name(unique(name))
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_string()
}

/// An SNS topic with an SQS queue subscribed to it: (topic ARN, queue URL).
pub async fn alert_inbox(sdk: &SdkConfig, name: &str) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns_topic(sdk, name).await;
    let queue = create_queue(sdk, &unique(&format!("{name}-inbox"))).await;
    let arn_key = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let attrs = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(arn_key.clone())
        .send()
        .await
        .expect("queue attributes");
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&arn_key))
        .expect("queue ARN")
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe");
    (topic, queue)
}

/// Every alert waiting in an inbox queue (SNS envelopes), deleting them.
pub async fn read_alerts(sdk: &SdkConfig, queue: &str) -> Vec<Alert> {
    drain_queue(sdk, queue)
        .await
        .into_iter()
        .map(|envelope| Alert {
            subject: envelope["Subject"].as_str().unwrap_or("").to_string(),
            body: envelope["Message"].as_str().unwrap_or("").to_string(),
            attributes: envelope["MessageAttributes"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v["Value"].as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            sent_at: envelope["Timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(0, |t| t.timestamp_millis()),
        })
        .collect()
}

/// The harness's brokers over TLS, as the functions and `connectorctl` reach MSK.
pub fn tls_brokers() -> connector_adapters::kafka::KafkaBrokers {
    let bootstrap = std::env::var("KAFKA_TLS_BOOTSTRAP").expect("KAFKA_TLS_BOOTSTRAP: run through scripts/test");
    let ca = monitor::broker_ca();
    connector_adapters::kafka::KafkaBrokers::with_security(&bootstrap, true, Some(&ca), Duration::from_secs(10))
        .expect("the broker's CA")
}

/// Every record of `topic`, read back as the sink's connector would deliver them.
pub async fn topic_records(topic: &str) -> Vec<connector_core::sink::SourceRecord> {
    use connector_core::sink::verify::TopicReader;
    let brokers = tls_brokers();
    let mut records = Vec::new();
    for range in brokers.ranges(topic, None).await.expect("the topic's offsets") {
        let mut offset = range.start;
        while offset < range.end {
            let page = brokers.fetch(topic, range.partition, offset).await.expect("fetch");
            offset = page.last().map_or(range.end, |r| r.coordinates.offset + 1);
            records.extend(page);
        }
    }
    records
}

/// The Confluent batch the connector would send for `records`.
pub fn confluent_batch(records: &[&connector_core::sink::SourceRecord]) -> Value {
    let text = |f: &connector_core::sink::Field| f.raw_text().map_or(Value::Null, Value::String);
    records
        .iter()
        .map(|r| {
            let c = &r.coordinates;
            serde_json::json!({"payload": {"topic": c.topic, "partition": c.partition, "offset": c.offset,
                                           "timestamp": c.timestamp, "key": text(&r.key), "value": text(&r.value)}})
        })
        .collect()
}

/// The config of a stand-in Lambda sink connector (`tests/lambda-sink`) reading `topic` into
/// `function`, served by the `cargo lambda watch` server at `watch`.
pub fn lambda_sink_connector(topic: &str, function: &str, watch: &str) -> std::collections::BTreeMap<String, String> {
    [
        ("connector.class", "connector.standin.lambda.LambdaSinkConnector"),
        ("tasks.max", "1"),
        ("topics", topic),
        ("aws.lambda.function.name", function),
        ("aws.lambda.invocation.type", "sync"),
        ("aws.lambda.batch.size", "20"),
        ("aws.lambda.endpoint.override", watch),
        ("behavior.on.error", "fail"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The sink-table probe of `createConnector` and `connectorctl ensure`, on moto.
pub async fn table_probe() -> connector_adapters::table_probe::DynamoDbTableProbe {
    connector_adapters::table_probe::DynamoDbTableProbe::new(aws_sdk_dynamodb::Client::new(&sdk().await))
}

/// A file sink `name` on the harness's worker that consumed `records` records of `topic` and
/// committed them, then deleted: what a stack deleted (or pointed at a new table) leaves behind
/// in the brokers (the group `connect-<name>` and its commits).
pub async fn committed_then_deleted(name: &str, topic: &str, records: usize) {
    use connector_core::connect::ConnectApi;
    let api = connector_adapters::connect::HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap();
    let file = std::env::temp_dir().join(format!("{name}.first"));
    api.put_config(name, &file_sink(topic, &file)).await.unwrap();
    let rows: Vec<(Option<String>, Option<String>)> = (0..records)
        .map(|i| (Some(format!("k{i}")), Some(format!("v{i}"))))
        .collect();
    produce(topic, &rows).await;
    let committed = wait_for(Duration::from_secs(60), || async {
        let offsets = api.sink_offsets(name).await.ok()?;
        (offsets.iter().map(|o| o.offset).sum::<i64>() == records as i64).then_some(())
    })
    .await;
    assert!(
        committed.is_some(),
        "{name} did not commit {records} records in 60 s: {:?}",
        api.sink_offsets(name).await
    );
    deleted_and_gone(name).await;
}

/// Deletes connector `name` on the harness's worker and waits (30 s at most) until its status
/// is gone too: Kafka Connect 3.6 answers a deleted connector's status (UNASSIGNED) for a moment.
pub async fn deleted_and_gone(name: &str) {
    use connector_core::connect::{ConnectApi, ConnectError};
    let api = connector_adapters::connect::HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap();
    api.delete(name).await.unwrap();
    let gone = wait_for(Duration::from_secs(30), || async {
        matches!(api.status(name).await, Err(ConnectError::NotFound { .. })).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "{name}'s status outlived its delete by 30 s: {:?}",
        api.status(name).await
    );
}

/// One item (`PK` = `SK` = `id`) in `table`: a table that holds history.
pub async fn put_id(sdk: &SdkConfig, table: &str, id: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    aws_sdk_dynamodb::Client::new(sdk)
        .put_item()
        .table_name(table)
        .item("PK", AttributeValue::S(id.into()))
        .item("SK", AttributeValue::S(id.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {id} into {table}: {e:?}"));
}
