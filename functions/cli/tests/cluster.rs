//! `connectorctl` against the real Kafka Connect worker and moto that `scripts/test` starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use connector_adapters::connect::HttpConnectApi;
use connector_core::connect::{ConnectApi, State};
use connector_tests::{
    alert_inbox, connect_url, create_sink_table, file_sink, put_connector_secret, read_alerts, sdk, unique, wait_for,
};
use serde_json::{Value, json};

mod common;
use common::{Run, ctl_env};

/// Runs connectorctl with its contexts file at `config`.
async fn ctl(config: &Path, args: &[&str]) -> Run {
    ctl_env(config, args, &[]).await
}

fn contexts_file() -> PathBuf {
    std::env::temp_dir().join(unique("connectorctl")).join("contexts.json")
}

fn api() -> HttpConnectApi {
    HttpConnectApi::new(&connect_url(), Duration::from_secs(10)).unwrap()
}

async fn wait_task(name: &str, state: State) {
    let api = api();
    let seen = wait_for(Duration::from_secs(60), || async {
        api.status(name)
            .await
            .ok()
            .filter(|s| s.tasks.first().is_some_and(|t| t.state == state))
            .map(|_| ())
    })
    .await;
    assert!(
        seen.is_some(),
        "{name} never had its task {state:?}: {:?}",
        api.status(name).await
    );
}

fn connector<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["connectors"].as_array()?.iter().find(|c| c["name"] == name)
}

#[tokio::test]
async fn status_restart_pause_resume_and_delete_through_a_saved_context() {
    let config = contexts_file();
    let saved = ctl(&config, &["context", "set", "local", "--connect-url", &connect_url()]).await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let listed = ctl(&config, &["context", "list"]).await;
    assert!(listed.stdout.contains("*  local"), "{}", listed.stdout);

    let (name, dir) = (unique("ctl-sink"), std::env::temp_dir().join(unique("ctl-gone")));
    api()
        .put_config(&name, &file_sink(&unique("topic"), &dir.join("out.txt")))
        .await
        .unwrap();
    wait_task(&name, State::Failed).await;

    let table = ctl(&config, &["status"]).await;
    assert_eq!(table.code, 1, "a FAILED task is unhealthy: {}", table.stderr);
    let line = table
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with(&name))
        .nth(1)
        .unwrap_or_default();
    assert!(line.contains("FAILED") && line.contains("unknown"), "{}", table.stdout);
    let status = ctl(&config, &["status", "--json"]).await.json();
    let c = connector(&status, &name).expect("listed");
    assert_eq!(
        (c["tasks"][0]["state"].as_str(), c["tasks"][0]["cause"].as_str()),
        (Some("FAILED"), Some("unknown"))
    );

    std::fs::create_dir_all(&dir).unwrap();
    let restarted = ctl(&config, &["restart", &name, "--failed-only"]).await;
    assert_eq!(restarted.code, 0, "{} {}", restarted.stdout, restarted.stderr);
    assert!(restarted.stdout.contains("task 0 RUNNING"), "{}", restarted.stdout);
    assert!(
        restarted.stderr.contains("waiting for"),
        "progress is shown: {}",
        restarted.stderr
    );

    let paused = ctl(&config, &["pause", &name, "--json"]).await;
    assert_eq!(
        (paused.code, paused.json()["result"].as_str()),
        (0, Some("paused")),
        "{}",
        paused.stderr
    );
    assert_eq!(api().status(&name).await.unwrap().connector.state, State::Paused);
    let resumed = ctl(&config, &["resume", &name]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);

    let one_task = ctl(&config, &["restart", &name, "--task", "0"]).await;
    assert_eq!(one_task.code, 0, "{}", one_task.stderr);
    let everything = ctl(&config, &["restart", &name, "--json"]).await;
    assert_eq!(everything.code, 0, "{}", everything.stderr);
    assert_eq!(everything.json()["running"], json!(true), "{}", everything.stdout);

    let deleted = ctl(&config, &["delete", &name]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(connector(&ctl(&config, &["status", "--json"]).await.json(), &name).is_none());
    let gone = ctl(&config, &["restart", &name]).await;
    assert_eq!(gone.code, 3, "{}", gone.stdout);
    assert!(gone.stderr.contains("404"), "{}", gone.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn check_dry_run_does_nothing_then_check_restarts_alerts_and_mute_ensure_work() {
    let config = contexts_file();
    let sdk = sdk().await;
    let (state_table, cluster, prefix) = (
        unique("ctl-state"),
        unique("ctl-cluster"),
        format!("{}/", unique("ctl")),
    );
    create_sink_table(&sdk, &state_table).await;
    let (topic, queue) = alert_inbox(&sdk, "ctl-alerts").await;
    let saved = ctl(
        &config,
        &[
            "context",
            "set",
            "mon",
            "--use",
            "--connect-url",
            &connect_url(),
            "--cluster",
            &cluster,
            "--state-table",
            &state_table,
            "--secret-prefix",
            &prefix,
            "--alert-topic",
            &topic,
            "--runbook-base-url",
            "https://runbooks.example/connector/runbooks",
        ],
    )
    .await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let put_secret = |name: String, config: BTreeMap<String, String>| {
        let (sdk, prefix) = (sdk.clone(), prefix.clone());
        async move { put_connector_secret(&sdk, &prefix, &name, &config).await }
    };

    let (name, dir) = (unique("ctl-failing"), std::env::temp_dir().join(unique("ctl-missing")));
    let failing = file_sink(&unique("topic"), &dir.join("out.txt"));
    put_secret(name.clone(), failing.clone()).await;
    api().put_config(&name, &failing).await.unwrap();
    wait_task(&name, State::Failed).await;

    let dry = ctl(&config, &["check", "--dry-run", "--json"]).await;
    assert_eq!(dry.code, 1, "{}", dry.stderr);
    let report = dry.json();
    let finding = &connector(&report, &name).expect("in report")["findings"][0];
    assert_eq!(finding["action"], "dry run: would request restart 1 of 3", "{finding}");
    assert_eq!(report["wouldAlert"].as_array().map(Vec::len), Some(1), "{report}");
    assert!(read_alerts(&sdk, &queue).await.is_empty(), "a dry run sends nothing");
    assert_eq!(
        ctl(&config, &["incidents", "--json"]).await.json(),
        json!({"open": [], "resolved": []}),
        "and stores nothing"
    );
    assert_eq!(
        ctl(&config, &["history", "--json"]).await.json(),
        json!([]),
        "nor an audit entry"
    );
    wait_task(&name, State::Failed).await;

    // The cause is fixed before the monitor's restart, so the restart heals it.
    std::fs::create_dir_all(&dir).unwrap();
    let real = ctl(&config, &["check"]).await;
    assert_eq!(real.code, 1, "{}", real.stderr);
    assert!(real.stdout.contains("restart 1 of 3 requested"), "{}", real.stdout);
    assert!(real.stdout.contains("sent: [CRITICAL] task-failed"), "{}", real.stdout);
    assert_eq!(read_alerts(&sdk, &queue).await.len(), 1);
    let trail = ctl(&config, &["history", &name, "--json"]).await.json();
    assert_eq!(
        (
            trail[0]["kind"].as_str(),
            trail[0]["attempt"].as_u64(),
            trail[0]["budget"].as_u64()
        ),
        (Some("restart"), Some(1), Some(3)),
        "{trail}"
    );
    assert_eq!(trail[0]["outcome"], "restart 1 of 3 requested", "{trail}");
    assert!(trail[0]["nextNotBefore"].as_i64() > trail[0]["at"].as_i64(), "{trail}");
    let open = ctl(&config, &["incidents", "--json"]).await.json();
    assert_eq!(open["open"][0]["category"], "task-failed", "{open}");
    let table = ctl(&config, &["incidents"]).await;
    assert!(
        table.stdout.contains("task-failed") && table.stdout.contains(&name),
        "{}",
        table.stdout
    );

    wait_task(&name, State::Running).await;
    let healed = ctl(&config, &["check"]).await;
    assert!(
        !healed.stdout.contains("[RESOLVED]"),
        "healthy for no time yet: {}",
        healed.stdout
    );
    let still = ctl(&config, &["incidents", "--json"]).await.json();
    assert_eq!(still["open"][0]["category"], "task-failed", "{still}");
    // A deployment that resolves at the first healthy run (RESOLVE_AFTER_MINUTES=0).
    let at_once = monitor_function(&[("RESOLVE_AFTER_MINUTES", "0")]).await;
    let healed = ctl(&config, &["check", "--monitor-function", &at_once]).await;
    assert!(
        healed.stdout.contains("sent: [RESOLVED] task-failed"),
        "{}",
        healed.stdout
    );
    let after = ctl(&config, &["incidents", "--json"]).await.json();
    assert_eq!(after["open"], json!([]), "{after}");
    assert_eq!(after["resolved"][0]["category"], "task-failed", "{after}");
    assert!(after["resolved"][0]["openForMillis"].as_i64().unwrap() >= 0, "{after}");
    let table = ctl(&config, &["incidents"]).await;
    assert!(table.stdout.contains("resolved in the last week"), "{}", table.stdout);

    let muted = ctl(&config, &["mute", &name, "--for", "2h"]).await;
    assert_eq!(muted.code, 0, "{}", muted.stderr);
    let status = ctl(&config, &["status", "--json"]).await.json();
    assert!(connector(&status, &name).unwrap()["mutedUntil"].is_string(), "{status}");
    let unmuted = ctl(&config, &["unmute", &name]).await;
    assert_eq!(unmuted.code, 0, "{}", unmuted.stderr);
    let status = ctl(&config, &["status", "--json"]).await.json();
    assert!(connector(&status, &name).unwrap()["mutedUntil"].is_null(), "{status}");

    // The operator's actions are in the trail beside the monitor's, with who made them (STS).
    let restarted = ctl(&config, &["restart", &name]).await;
    assert_eq!(restarted.code, 0, "{}", restarted.stderr);
    let trail = ctl(&config, &["history", &name, "--json"]).await.json();
    let entries: Vec<(&str, &str)> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap_or(""), e["by"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(entries.len(), 4, "{trail}");
    assert_eq!(
        entries[3],
        ("restart", "testConnectors"),
        "the monitor's, oldest: {trail}"
    );
    let mut operators: Vec<&str> = entries[..3].iter().map(|(kind, _)| *kind).collect();
    operators.sort_unstable();
    assert_eq!(operators, ["mute", "restart", "unmute"], "{trail}");
    assert!(
        entries[..3]
            .iter()
            .all(|(_, by)| by.starts_with("connectorctl (arn:aws:")),
        "by the caller's identity: {trail}"
    );
    let shown = ctl(&config, &["history", &name]).await;
    assert!(
        shown.stdout.contains("BY")
            && shown.stdout.contains("testConnectors")
            && shown.stdout.contains("connectorctl (arn:aws:"),
        "{}",
        shown.stdout
    );

    // ensure: shows the change, makes it only without --dry-run, and leaves an unchanged one be.
    let (other, out_dir) = (unique("ctl-ensured"), std::env::temp_dir());
    let mut wanted = file_sink(&unique("topic"), &out_dir.join(format!("{other}.txt")));
    put_secret(other.clone(), wanted.clone()).await;
    let preview = ctl(&config, &["ensure", &other, "--dry-run"]).await;
    assert_eq!(preview.code, 0, "{}", preview.stderr);
    assert!(
        preview.stdout.contains(&format!("{other}: would create")),
        "{}",
        preview.stdout
    );
    assert!(preview.stdout.contains("+ tasks.max = 1"), "{}", preview.stdout);
    assert!(api().status(&other).await.is_err(), "a dry run creates nothing");
    let created = ctl(&config, &["ensure", &other, "--json"]).await;
    assert_eq!(created.json()[0]["action"], "created", "{}", created.stderr);
    wait_task(&other, State::Running).await;
    let again = ctl(&config, &["ensure", &other]).await;
    assert!(
        again.stdout.contains(&format!("{other}: unchanged")),
        "{}",
        again.stdout
    );
    wanted.insert("tasks.max".into(), "2".into());
    secrets
        .put_secret_value()
        .secret_id(format!("{prefix}{other}"))
        .secret_string(json!({"name": other, "config": wanted}).to_string())
        .send()
        .await
        .unwrap();
    let updated = ctl(&config, &["ensure", &other]).await;
    assert!(updated.stdout.contains("~ tasks.max: 1 → 2"), "{}", updated.stdout);
    let unknown = ctl(&config, &["ensure", "no-such-connector"]).await;
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);

    // A delete on purpose is recorded: the monitor stands back instead of recreating it, until
    // `ensure` brings it back.
    let deleted = ctl(&config, &["delete", &other]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(
        deleted.stdout.contains("the monitor will not recreate it"),
        "{}",
        deleted.stdout
    );
    let check = ctl(&config, &["check", "--json"]).await.json();
    let finding = &connector(&check, &other).expect("reported")["findings"][0];
    assert_eq!(finding["category"], "connector-paused", "{finding}");
    assert!(
        finding["summary"].as_str().unwrap().contains("deleted by an operator"),
        "{finding}"
    );
    assert!(api().status(&other).await.is_err(), "not recreated");
    let back = ctl(&config, &["ensure", &other, "--json"]).await;
    assert_eq!(back.json()[0]["action"], "created", "{}", back.stderr);
    wait_task(&other, State::Running).await;
    api().delete(&other).await.unwrap();
    let check = ctl(&config, &["check", "--json"]).await.json();
    let finding = &connector(&check, &other).expect("reported")["findings"][0];
    assert_eq!(
        (finding["category"].as_str(), finding["action"].as_str()),
        (Some("connector-missing"), Some("recreated from its secret")),
        "ensure ended the intent: a delete by anyone else is recreated again"
    );
    wait_task(&other, State::Running).await;
    let trail = ctl(&config, &["history", &other, "--json"]).await.json();
    let kinds: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["recreate", "ensure", "delete-honoured", "delete", "ensure", "ensure"],
        "newest first: {trail}"
    );
    let ensured: Vec<(&str, &str)> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ensure")
        .map(|e| (e["outcome"].as_str().unwrap_or(""), e["by"].as_str().unwrap_or("")))
        .collect();
    assert!(
        ensured[1].0 == "updated from its secret (tasks.max)" && ensured[1].1.starts_with("connectorctl ("),
        "the operator's update, the settings it changed and who: {ensured:?}"
    );
    assert!(
        ensured[2].0.starts_with("created from its secret (") && ensured[2].0.contains("file"),
        "{ensured:?}"
    );
    let all = ctl(&config, &["history"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    for expected in [
        "NEXT NOT BEFORE",
        "delete-honoured",
        "recreate",
        "restart",
        &name,
        &other,
    ] {
        assert!(all.stdout.contains(expected), "{expected}: {}", all.stdout);
    }
    let one = ctl(&config, &["history", &other, "--limit", "1", "--json"])
        .await
        .json();
    assert_eq!(one.as_array().map(Vec::len), Some(1), "{one}");

    for n in [&name, &other] {
        api().delete(n).await.unwrap();
    }
}

/// An IAM role on moto for a function to run as (moto's Lambda checks that it exists).
/// A testConnectors function in moto with `env` as its environment (never invoked: connectorctl
/// reads its settings).
async fn monitor_function(env: &[(&str, &str)]) -> String {
    use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
    let function = unique("testConnectors");
    let role = lambda_role(&unique("monitor-role")).await;
    let variables = env
        .iter()
        .fold(Environment::builder(), |b, (k, v)| b.variables(*k, *v))
        .build();
    aws_sdk_lambda::Client::new(&sdk().await)
        .create_function()
        .function_name(&function)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(
            FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(tiny_zip()))
                .build(),
        )
        .environment(variables)
        .send()
        .await
        .expect("create the function on moto");
    function
}

async fn lambda_role(name: &str) -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto)");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form = [
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", name),
        ("AssumeRolePolicyDocument", policy),
    ];
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let out = tokio::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "-X", "POST", "-H"])
        .arg("Content-Type: application/x-www-form-urlencoded")
        .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"])
        .args(["--data", &body, &endpoint])
        .output()
        .await
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("<Arn>"), "CreateRole on moto: {text}");
    format!("arn:aws:iam::123456789012:role/{name}")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `check --monitor-function` judges with the deployed function's settings, not the defaults:
/// a connector the function's `MUTE` names is reported muted, not restarted, and the budget is
/// the function's `RESTART_BUDGET`.
#[tokio::test]
async fn check_takes_the_deployed_functions_settings_not_the_defaults() {
    let config = contexts_file();
    let sdk = sdk().await;
    let (state_table, cluster, prefix) = (
        unique("ctl-state"),
        unique("ctl-cluster"),
        format!("{}/", unique("ctl")),
    );
    create_sink_table(&sdk, &state_table).await;
    let (muted, failing) = (unique("ctl-muted"), unique("ctl-budget"));
    let function = monitor_function(&[
        ("MUTE", &muted),
        ("RESTART_BUDGET", "5"),
        ("MONITOR_STATE_TABLE", "the-deployed-table"),
    ])
    .await;
    let place = [
        "--connect-url".to_string(),
        connect_url(),
        "--cluster".into(),
        cluster.clone(),
        "--state-table".into(),
        state_table.clone(),
        "--secret-prefix".into(),
        prefix.clone(),
    ];
    let set = |name: &'static str, more: Vec<String>| {
        let mut args: Vec<String> = vec!["context".into(), "set".into(), name.into(), "--use".into()];
        args.extend(place.iter().cloned());
        args.extend(more);
        let config = config.clone();
        async move { ctl(&config, &args.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };
    let saved = set("deployed", vec!["--monitor-function".into(), function.clone()]).await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let dir = std::env::temp_dir().join(unique("ctl-missing"));
    for name in [&muted, &failing] {
        let sink = file_sink(&unique("topic"), &dir.join(format!("{name}.txt")));
        put_connector_secret(&sdk, &prefix, name, &sink).await;
        api().put_config(name, &sink).await.unwrap();
    }
    for name in [&muted, &failing] {
        wait_task(name, State::Failed).await;
    }
    let dry = ctl(&config, &["check", "--dry-run", "--json"]).await;
    assert_eq!(dry.code, 1, "{}", dry.stderr);
    let report = dry.json();
    let m = &connector(&report, &muted).expect("reported")["findings"][0];
    assert_eq!(
        (m["muted"].as_bool(), m["action"].as_str()),
        (Some(true), Some("muted: recorded only")),
        "{m}"
    );
    let f = &connector(&report, &failing).expect("reported")["findings"][0];
    assert_eq!(f["action"], "dry run: would request restart 1 of 5", "{f}");
    assert!(!dry.stderr.contains("default settings"), "{}", dry.stderr);
    // The context's own table wins over the function's: the state read is this test's.
    assert_eq!(ctl(&config, &["incidents", "--json"]).await.code, 0);

    let wrong = ctl(
        &config,
        &["check", "--dry-run", "--monitor-function", "no-such-function"],
    )
    .await;
    assert_eq!(wrong.code, 2, "{} {}", wrong.stdout, wrong.stderr);
    assert!(
        wrong.stderr.contains("no Lambda function \"no-such-function\""),
        "{}",
        wrong.stderr
    );
    let defaults = set("plain", Vec::new()).await;
    assert_eq!(defaults.code, 0, "{}", defaults.stderr);
    let plain = ctl(&config, &["check", "--dry-run", "--json"]).await;
    assert!(
        plain.stderr.contains("--monitor-function NAME reads the deployed ones"),
        "{}",
        plain.stderr
    );
    let report = plain.json();
    let f = &connector(&report, &muted).expect("reported")["findings"][0];
    assert_eq!(
        f["action"], "dry run: would request restart 1 of 3",
        "the defaults: {f}"
    );
    for name in [&muted, &failing] {
        api().delete(name).await.unwrap();
    }
}

/// The smallest zip archive moto takes as a function's code: one empty `bootstrap`.
fn tiny_zip() -> Vec<u8> {
    let name = b"bootstrap";
    let crc = 0u32; // of no bytes
    let mut local = Vec::new();
    local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    local.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    local.extend_from_slice(&crc.to_le_bytes());
    local.extend_from_slice(&0u32.to_le_bytes());
    local.extend_from_slice(&0u32.to_le_bytes());
    local.extend_from_slice(&(name.len() as u16).to_le_bytes());
    local.extend_from_slice(&0u16.to_le_bytes());
    local.extend_from_slice(name);
    let mut central = Vec::new();
    central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    central.extend_from_slice(&crc.to_le_bytes());
    central.extend_from_slice(&0u32.to_le_bytes());
    central.extend_from_slice(&0u32.to_le_bytes());
    central.extend_from_slice(&(name.len() as u16).to_le_bytes());
    central.extend_from_slice(&[0; 12]);
    central.extend_from_slice(&0u32.to_le_bytes());
    central.extend_from_slice(name);
    let mut zip = local.clone();
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    zip.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend_from_slice(&(central.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(local.len() as u32).to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip
}

#[tokio::test]
async fn without_a_place_to_reach_the_cluster_it_says_so_and_exits_2() {
    let config = contexts_file();
    let run = ctl(&config, &["status"]).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("--connect-url or --cluster"), "{}", run.stderr);
    let run = ctl(&config, &["--context", "prod", "status"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no context \"prod\""), "{}", run.stderr);
}

/// A FileStreamSink that has consumed `records` records of a new topic, through `config`'s
/// context pointed at the worker.
async fn consumed_file_sink(config: &Path, records: usize, extra: &[(&str, &str)]) -> (String, String, PathBuf) {
    let saved = ctl(config, &["context", "set", "local", "--connect-url", &connect_url()]).await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let (name, topic) = (unique("ctl-lag-sink"), unique("topic"));
    let file = std::env::temp_dir().join(format!("{name}.out"));
    let mut sink = file_sink(&topic, &file);
    sink.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let batch: Vec<(Option<String>, Option<String>)> = (0..records)
        .map(|i| (Some(format!("k{i}")), Some(format!("v{i}"))))
        .collect();
    connector_tests::produce(&topic, &batch).await;
    api().put_config(&name, &sink).await.unwrap();
    wait_task(&name, State::Running).await;
    let committed = wait_for(Duration::from_secs(60), || async {
        let run = ctl(config, &["offsets", &name, "--json"]).await;
        (run.code == 0 && run.json()["offsets"][0]["offset"] == records).then_some(())
    })
    .await;
    assert!(
        committed.is_some(),
        "{name} never committed {records}: {}",
        ctl(config, &["offsets", &name]).await.stdout
    );
    (name, topic, file)
}

#[tokio::test]
async fn info_plugins_describe_and_offsets_show_the_real_worker_as_json_and_tables() {
    let config = contexts_file();
    let (name, topic, _) = consumed_file_sink(&config, 2, &[("sink.api.key", "hunter2")]).await;

    let info = ctl(&config, &["info", "--json"]).await;
    assert_eq!(info.code, 0, "{}", info.stderr);
    let worker = api().server_info().await.unwrap();
    assert_eq!(info.json()["version"], worker.version.as_str());
    let plugins = ctl(&config, &["plugins", "--json"]).await.json();
    assert!(
        plugins
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["class"] == "org.apache.kafka.connect.file.FileStreamSinkConnector" && p["type"] == "sink"),
        "{plugins}"
    );
    assert!(ctl(&config, &["plugins"]).await.stdout.starts_with("CLASS"));

    let bootstrap = std::env::var("KAFKA_TLS_BOOTSTRAP").expect("KAFKA_TLS_BOOTSTRAP");
    let ca = connector_tests::monitor::broker_ca();
    let with_brokers = [
        "describe",
        &name,
        "--kafka-bootstrap",
        &bootstrap,
        "--kafka-ca-file",
        &ca,
    ];
    let run = ctl(&config, &[&with_brokers[..], &["--json"]].concat()).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let d = run.json();
    assert_eq!(
        (d["state"].as_str(), d["tasks"][0]["state"].as_str()),
        (Some("RUNNING"), Some("RUNNING")),
        "{d}"
    );
    assert_eq!(d["type"], "sink");
    assert_eq!(d["config"]["sink.api.key"], "[redacted]", "secrets masked: {d}");
    assert_eq!(d["config"]["topics"], topic.as_str());
    assert_eq!(d["topics"], json!([topic]));
    assert_eq!(
        (d["lag"]["records"].as_i64(), d["lag"]["seconds"].as_i64()),
        (Some(0), Some(0)),
        "{d}"
    );
    assert_eq!(d["lag"]["partitions"][0]["committed"], 2, "{d}");
    let text = ctl(&config, &with_brokers).await.stdout;
    assert!(
        text.contains("Lag: 0 records") && text.contains("sink.api.key = [redacted]"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    let without = ctl(&config, &["describe", &name, "--json"]).await.json();
    assert_eq!(without["offsets"][0]["offset"], 2, "{without}");
    assert!(
        without["lagUnknown"].as_str().unwrap().contains("--kafka-bootstrap"),
        "{without}"
    );

    let offsets = ctl(&config, &["offsets", &name, "--json"]).await.json();
    assert_eq!(
        offsets["offsets"],
        json!([{"topic": topic, "partition": 0, "offset": 2}])
    );
    let missing = ctl(&config, &["describe", "no-such-connector"]).await;
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    assert!(
        missing.stderr.contains("no connector no-such-connector"),
        "{}",
        missing.stderr
    );
    api().delete(&name).await.unwrap();
}

#[tokio::test]
async fn offsets_are_changed_only_on_a_stopped_connector_after_a_dry_run_and_a_confirmation() {
    let config = contexts_file();
    let (name, topic, file) = consumed_file_sink(&config, 3, &[]).await;
    // With the monitor's state in the context, each change is in its audit trail.
    let (state_table, cluster) = (unique("ctl-offsets-state"), unique("ctl-offsets-cluster"));
    create_sink_table(&sdk().await, &state_table).await;
    let saved = ctl(
        &config,
        &[
            "context",
            "set",
            "local",
            "--connect-url",
            &connect_url(),
            "--cluster",
            &cluster,
            "--state-table",
            &state_table,
        ],
    )
    .await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let to = format!("{topic}:0=1");
    let committed = |run: &Run| run.json()["offsets"][0]["offset"].clone();

    let running = ctl(&config, &["offsets", "set", &name, "--to", &to, "--yes"]).await;
    assert_eq!(running.code, 1, "{}", running.stdout);
    assert!(
        running.stderr.contains(&format!("connectorctl stop {name}")),
        "{}",
        running.stderr
    );

    let stopped = ctl(&config, &["stop", &name, "--json"]).await;
    assert_eq!(
        (stopped.code, stopped.json()["result"].as_str()),
        (0, Some("stopped")),
        "{}",
        stopped.stderr
    );
    assert_eq!(api().status(&name).await.unwrap().connector.state, State::Stopped);

    let dry = ctl(&config, &["offsets", "set", &name, "--to", &to, "--dry-run", "--json"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(
        dry.json()["plan"],
        json!([{"partition": format!("{topic}-0"), "from": 3, "to": 1}])
    );
    assert_eq!(
        committed(&ctl(&config, &["offsets", &name, "--json"]).await),
        3,
        "a dry run changes nothing"
    );

    let unconfirmed = ctl(&config, &["offsets", "set", &name, "--to", &to]).await;
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stdout);
    assert!(unconfirmed.stderr.contains("--yes"), "{}", unconfirmed.stderr);
    assert_eq!(committed(&ctl(&config, &["offsets", &name, "--json"]).await), 3);

    let set = ctl(&config, &["offsets", "set", &name, "--to", &to, "--yes", "--json"]).await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert_eq!(committed(&set), 1, "{}", set.stdout);
    let bad = ctl(&config, &["offsets", "set", &name, "--to", "nonsense", "--yes"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);

    let reset = ctl(&config, &["offsets", "reset", &name, "--yes", "--json"]).await;
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    assert_eq!(reset.json()["offsets"], json!([]), "{}", reset.stdout);

    // Resumed, it reads the topic again from the start: each record is in the file twice.
    let resumed = ctl(&config, &["resume", &name]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let replayed = wait_for(Duration::from_secs(60), || async {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        (text.lines().filter(|l| *l == "v0").count() == 2).then_some(())
    })
    .await;
    assert!(replayed.is_some(), "not replayed: {:?}", std::fs::read_to_string(&file));
    let trail = ctl(&config, &["history", &name, "--json"]).await.json();
    let mut kinds: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["offsets-reset", "offsets-set", "resume", "stop"],
        "refused, dry and unconfirmed changes are not: {trail}"
    );
    let set_entry = trail
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "offsets-set")
        .unwrap();
    assert!(
        set_entry["outcome"]
            .as_str()
            .unwrap()
            .contains(&format!("{topic}-0 3 → 1"))
            && set_entry["by"].as_str().unwrap().starts_with("connectorctl (arn:aws:"),
        "{set_entry}"
    );
    api().delete(&name).await.unwrap();
}

#[tokio::test]
async fn a_context_remembers_an_aws_profile_and_is_removed() {
    let config = contexts_file();
    let dir = config.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let (aws_config, credentials) = (dir.join("aws-config"), dir.join("aws-credentials"));
    std::fs::write(&aws_config, "[profile ctl-test]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        &credentials,
        "[ctl-test]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let (aws_config, credentials) = (
        aws_config.to_string_lossy().into_owned(),
        credentials.to_string_lossy().into_owned(),
    );
    // Only the profile gives credentials and a region.
    let vars = [
        ("AWS_CONFIG_FILE", Some(aws_config.as_str())),
        ("AWS_SHARED_CREDENTIALS_FILE", Some(credentials.as_str())),
        ("AWS_ACCESS_KEY_ID", None),
        ("AWS_SECRET_ACCESS_KEY", None),
        ("AWS_REGION", None),
        ("AWS_DEFAULT_REGION", None),
        ("AWS_PROFILE", None),
    ];
    let sdk = sdk().await;
    let table = unique("ctl-profile-state");
    create_sink_table(&sdk, &table).await;
    let cluster = unique("ctl-profile");
    let set = ctl_env(
        &config,
        &[
            "context",
            "set",
            "with-profile",
            "--profile",
            "ctl-test",
            "--state-table",
            &table,
            "--cluster",
            &cluster,
        ],
        &vars,
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let set = ctl_env(
        &config,
        &[
            "context",
            "set",
            "no-profile",
            "--state-table",
            &table,
            "--cluster",
            &cluster,
        ],
        &vars,
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let listed = ctl_env(&config, &["context", "list", "--json"], &vars).await.json();
    assert_eq!(listed["contexts"]["with-profile"]["profile"], "ctl-test", "{listed}");

    let with = ctl_env(&config, &["--context", "with-profile", "incidents", "--json"], &vars).await;
    assert_eq!(with.code, 0, "the profile's credentials reach moto: {}", with.stderr);
    let without = ctl_env(&config, &["--context", "no-profile", "incidents", "--json"], &vars).await;
    assert_eq!(
        without.code, 3,
        "no credentials without the profile: {}",
        without.stdout
    );

    let removed = ctl_env(&config, &["context", "remove", "with-profile"], &vars).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    let listed = ctl_env(&config, &["context", "list", "--json"], &vars).await.json();
    assert!(listed["contexts"].get("with-profile").is_none(), "{listed}");
    assert!(
        listed.get("current").is_none(),
        "the current context was removed: {listed}"
    );
    assert_eq!(
        ctl_env(&config, &["context", "remove", "with-profile"], &vars)
            .await
            .code,
        2
    );
}

#[tokio::test]
async fn completion_scripts_name_every_command() {
    let config = contexts_file();
    let bash = ctl(&config, &["completion", "bash"]).await;
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    for command in ["describe", "offsets", "plugins", "info", "stop", "history", "context"] {
        assert!(bash.stdout.contains(command), "bash completion lacks {command}");
    }
    assert!(
        ctl(&config, &["completion", "zsh"])
            .await
            .stdout
            .starts_with("#compdef connectorctl")
    );
    assert_eq!(
        ctl(&config, &["completion", "tcsh"]).await.code,
        2,
        "an unknown shell is a usage error"
    );
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run through scripts/test"))
}

#[tokio::test]
async fn connectorctl_authenticates_to_a_worker_with_basic_auth_by_its_flags_or_by_the_secret() {
    let config = contexts_file();
    let (url, user, password) = (
        var("CONNECT_AUTH_URL"),
        var("CONNECT_AUTH_USERNAME"),
        var("CONNECT_AUTH_PASSWORD"),
    );
    let refused = ctl(&config, &["--connect-url", &url, "plugins"]).await;
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refused the REST credentials (401)"),
        "says why: {}",
        refused.stderr
    );
    let by_flags = ctl_env(
        &config,
        &["--connect-url", &url, "--connect-username", &user, "plugins"],
        &[("CONNECT_PASSWORD", Some(&password))],
    )
    .await;
    assert_eq!(by_flags.code, 0, "{}", by_flags.stderr);
    assert!(
        by_flags.stdout.contains("FileStreamSinkConnector"),
        "{}",
        by_flags.stdout
    );
    let alone = ctl(
        &config,
        &["--connect-url", &url, "--connect-username", &user, "plugins"],
    )
    .await;
    assert_eq!(
        alone.code, 2,
        "a username without a password is bad input: {}",
        alone.stderr
    );

    let secret = unique("ctl-rest-credentials");
    aws_sdk_secretsmanager::Client::new(&sdk().await)
        .create_secret()
        .name(&secret)
        .secret_string(json!({"username": user, "password": password}).to_string())
        .send()
        .await
        .unwrap();
    // A context keeps the secret's name and the username, never a password given with it.
    let saved = ctl_env(
        &config,
        &[
            "context",
            "set",
            "authed",
            "--use",
            "--connect-url",
            &url,
            "--connect-credentials-secret",
            &secret,
        ],
        &[("CONNECT_PASSWORD", Some(&password))],
    )
    .await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let file = std::fs::read_to_string(&config).unwrap();
    assert!(file.contains(&secret) && !file.contains(&password), "{file}");
    let by_secret = ctl(&config, &["plugins"]).await;
    assert_eq!(by_secret.code, 0, "{}", by_secret.stderr);
    assert!(
        by_secret.stdout.contains("FileStreamSinkConnector"),
        "{}",
        by_secret.stdout
    );
}

/// `delete` records the operator's intent before it deletes: were it the other way round, a
/// monitor run between the two would recreate the connector, and a record that fails would
/// leave it deleted with nothing to stop the monitor. Here the state table refuses every write
/// (the fault proxy in front of moto): the delete fails and the connector is still there.
#[tokio::test]
async fn a_delete_whose_intent_cannot_be_recorded_deletes_nothing() {
    use connector_tests::faults::Faults;
    let config = contexts_file();
    let sdk = sdk().await;
    let (state_table, cluster) = (unique("ctl-state"), unique("ctl-cluster"));
    create_sink_table(&sdk, &state_table).await;
    let saved = ctl(
        &config,
        &[
            "context",
            "set",
            "mon",
            "--use",
            "--connect-url",
            &connect_url(),
            "--cluster",
            &cluster,
            "--state-table",
            &state_table,
        ],
    )
    .await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let name = unique("ctl-kept");
    let out = std::env::temp_dir().join(format!("{name}.txt"));
    api()
        .put_config(&name, &file_sink(&unique("topic"), &out))
        .await
        .unwrap();
    wait_task(&name, State::Running).await;

    let state = Faults::for_target(&state_table);
    state
        .add(json!({"operation": "PutItem", "error": "ProvisionedThroughputExceededException"}))
        .await;
    let faults_url = state.url().to_string();
    let refused = ctl_env(&config, &["delete", &name], &[("AWS_ENDPOINT_URL", Some(&faults_url))]).await;
    state.clear().await;
    assert_eq!(refused.code, 3, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        api().status(&name).await.is_ok(),
        "the intent was not recorded, so nothing was deleted: {}",
        refused.stderr
    );

    // With the table answering, the same delete records, then deletes.
    let deleted = ctl(&config, &["delete", &name]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let gone = wait_for(Duration::from_secs(30), || async { api().status(&name).await.err() }).await;
    assert!(gone.is_some(), "{name} still listed 30 s after its delete");
    let _ = std::fs::remove_file(&out);
}

/// Waits (30 s at most) until the worker's config of `name` holds `license`; says what it held.
async fn wait_license(name: &str, license: &str) {
    let running = || async {
        api()
            .list_expanded()
            .await
            .ok()?
            .into_iter()
            .find(|v| v.name == name)
            .and_then(|v| v.info)
            .and_then(|i| i.config.get("confluent.license").cloned())
    };
    let seen = wait_for(Duration::from_secs(30), || async {
        running().await.filter(|l| l == license).map(|_| ())
    })
    .await;
    assert!(
        seen.is_some(),
        "{name}'s running config never held {license} within 30 s (it holds {:?})",
        running().await
    );
}

/// The licence is read from its own secret when a connector is applied, never kept in the
/// config secret: after a rotation `ensure` shows the change (its value redacted) and applies it.
#[tokio::test]
async fn a_rotated_licence_reaches_the_connector_through_ensure() {
    let (config, sdk) = (contexts_file(), sdk().await);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let (prefix, name) = (format!("{}/", unique("ctl-lic")), unique("ctl-licensed"));
    let license = secrets
        .create_secret()
        .name(unique("confluent-license"))
        .secret_string("LICENSE-ONE")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let out = std::env::temp_dir().join(format!("{name}.txt"));
    put_connector_secret(&sdk, &prefix, &name, &file_sink(&unique("topic"), &out)).await;
    let url = connect_url();
    let flags = [
        "--connect-url",
        &url,
        "--secret-prefix",
        &prefix,
        "--license-secret-arn",
        &license,
    ];
    let run = |extra: &'static [&'static str]| {
        let args: Vec<&str> = flags
            .iter()
            .copied()
            .chain(["ensure", name.as_str()])
            .chain(extra.iter().copied())
            .collect();
        let config = config.clone();
        async move { ctl(&config, &args).await }
    };
    let created = run(&[]).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    wait_license(&name, "LICENSE-ONE").await;

    secrets
        .put_secret_value()
        .secret_id(&license)
        .secret_string("LICENSE-TWO")
        .send()
        .await
        .unwrap();
    let preview = run(&["--dry-run"]).await;
    assert!(
        preview.stdout.contains(&format!("{name}: would update")),
        "{}",
        preview.stdout
    );
    assert!(preview.stdout.contains("~ confluent.license"), "{}", preview.stdout);
    assert!(
        !preview.stdout.contains("LICENSE-"),
        "the licence is never printed: {}",
        preview.stdout
    );
    wait_license(&name, "LICENSE-ONE").await;
    let updated = run(&[]).await;
    assert_eq!(updated.code, 0, "{}", updated.stderr);
    wait_license(&name, "LICENSE-TWO").await;
    api().delete(&name).await.unwrap();
}
