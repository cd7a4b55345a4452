//! The commands that reach the cluster: Kafka Connect through its REST API (a context URL, or a
//! RUNNING worker found through ECS), the monitor's state in DynamoDB, the configs in Secrets
//! Manager, the alerts topic in SNS.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_config::SdkConfig;
use connector_adapters::aws::load_sdk_config;
use connector_adapters::connect::{BasicAuth, HttpConnectApi, RestCredentials};
use connector_adapters::deployed::deployed_monitor_with;
use connector_adapters::ecs::EcsTaskDiscovery;
use connector_adapters::monitor_state::DynamoDbMonitorStore;
use connector_adapters::now_millis;
use connector_adapters::secrets::SecretsManagerConfigs;
use connector_adapters::table_probe::DynamoDbTableProbe;
use connector_core::connect::ports::RestartOutcome;
use connector_core::connect::resume::{Applied, ApplyError, SinkTables, apply};
use connector_core::connect::{
    ConnectApi, ConnectError, ConnectorConfig, ConnectorConfigs, ConnectorStatus, ConnectorView, State, TaskDiscovery,
};
use connector_core::error_chain;
use connector_core::monitor::alerting::alert::Incident;
use connector_core::monitor::audit::AuditKind;
use connector_core::monitor::config::MonitorConfig;
use connector_core::monitor::judge::cause::root_cause;
use connector_core::monitor::judge::state::ConnectorState;
use connector_core::monitor::ports::{MonitorStore, StoredState};
use connector_core::monitor::time::{human_duration, iso8601};
use serde_json::{Value, json};

use crate::Failure;
use crate::context::Context;
use crate::output::{Progress, table};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT_LIMIT: Duration = Duration::from_secs(60);

pub(crate) fn unreachable(e: impl std::error::Error + 'static) -> Failure {
    Failure::Unreachable(error_chain(&e))
}

/// The AWS configuration: the default chain, the context's region over it.
pub(crate) async fn sdk(ctx: &Context) -> SdkConfig {
    let sdk = match &ctx.profile {
        Some(profile) => connector_adapters::aws::load_sdk_config_profile(profile, CALL_TIMEOUT, 3).await,
        None => load_sdk_config(CALL_TIMEOUT, 3).await,
    };
    match &ctx.region {
        Some(region) => sdk.to_builder().region(aws_config::Region::new(region.clone())).build(),
        None => sdk,
    }
}

/// The outputs of a CloudFormation stack, by key.
pub(crate) async fn stack_outputs(ctx: &Context, stack: &str) -> Result<BTreeMap<String, String>, Failure> {
    let cfn = aws_sdk_cloudformation::Client::new(&sdk(ctx).await);
    let described = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| Failure::Unreachable(format!("cannot read stack {stack}: {}", error_chain(&e))))?;
    let found = described
        .stacks()
        .first()
        .ok_or_else(|| Failure::config(format!("no stack {stack}")))?;
    Ok(found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect())
}

/// The worker to talk to: the context's URL, else the newest RUNNING task of the ECS cluster.
pub(crate) async fn connect(ctx: &Context) -> Result<HttpConnectApi, Failure> {
    let url = match &ctx.connect_url {
        Some(url) => url.clone(),
        None => {
            let cluster = ctx.cluster().map_err(|_| {
                Failure::config("where is Kafka Connect? pass --connect-url or --cluster (or set a context)")
            })?;
            let discovery = EcsTaskDiscovery::new(aws_sdk_ecs::Client::new(&sdk(ctx).await));
            let tasks = discovery.running_tasks(cluster).await.map_err(unreachable)?;
            // The port lists them newest first, as the monitor tries them.
            let newest = tasks.first().ok_or_else(|| {
                Failure::Unreachable(format!("no RUNNING Kafka Connect task in ECS cluster {cluster}"))
            })?;
            format!("http://{}:{}", newest.ip, ctx.connect_port.unwrap_or(8083))
        }
    };
    let api = HttpConnectApi::new(&url, CALL_TIMEOUT).map_err(|e| Failure::Input(error_chain(&e)))?;
    Ok(api.with_auth(rest_credentials(ctx).await?.resolve().await.map_err(unreachable)?))
}

/// The workers' REST credentials: the username and password given, else the secret named.
pub(crate) async fn rest_credentials(ctx: &Context) -> Result<RestCredentials, Failure> {
    match (
        &ctx.connect_username,
        &ctx.connect_password,
        &ctx.connect_credentials_secret,
    ) {
        (Some(username), Some(password), _) => Ok(RestCredentials::Fixed(BasicAuth {
            username: username.clone(),
            password: password.clone(),
        })),
        (Some(_), None, None) => Err(Failure::config(
            "--connect-username needs --connect-password (or CONNECT_PASSWORD)",
        )),
        (None, Some(_), None) => Err(Failure::config("--connect-password needs --connect-username")),
        (_, _, Some(secret)) => Ok(RestCredentials::from_secret(Some(secret), &sdk(ctx).await)),
        (None, None, None) => Ok(RestCredentials::None),
    }
}

/// The monitor's state, when the context names a table and a cluster.
pub(crate) async fn store(ctx: &Context) -> Option<(DynamoDbMonitorStore, String)> {
    let (table, cluster) = (ctx.state_table.clone()?, ctx.cluster.clone()?);
    let client = aws_sdk_dynamodb::Client::new(&sdk(ctx).await);
    Some((DynamoDbMonitorStore::new(client, table), cluster))
}

pub(crate) fn cause_of(trace: Option<&String>) -> String {
    trace.map(|t| root_cause(t).cause.id().to_string()).unwrap_or_default()
}

fn is_unhealthy(state: &State) -> bool {
    matches!(state, State::Failed | State::Unassigned)
}

/// `connectorctl status`.
pub async fn status(ctx: &Context, json: bool) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    let views = api.list_expanded().await.map_err(unreachable)?;
    let state = match store(ctx).await {
        Some((store, cluster)) => match store.load(&cluster).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("connectorctl: monitor state not read: {}", error_chain(&e));
                None
            }
        },
        None => None,
    };
    let now = now_millis();
    let mut out = Vec::new();
    let mut unhealthy = false;
    for view in &views {
        let Some(status) = &view.status else { continue };
        let kept = state
            .as_ref()
            .and_then(|s| s.connectors.get(&view.name))
            .map(|v| &v.value);
        let incidents: Vec<Value> = state
            .as_ref()
            .map(|s| {
                s.incidents
                    .values()
                    .filter(|i| i.value.connector.as_deref() == Some(view.name.as_str()))
                    .map(|i| json!({"key": i.value.key, "category": i.value.category, "openFor": human_duration(now - i.value.opened_at)}))
                    .collect()
            })
            .unwrap_or_default();
        unhealthy |= is_unhealthy(&status.connector.state) || status.tasks.iter().any(|t| is_unhealthy(&t.state));
        out.push(json!({
            "name": view.name,
            "state": status.connector.state.as_str(),
            "worker": status.connector.worker_id,
            "cause": cause_of(status.connector.trace.as_ref()),
            "tasks": status.tasks.iter().map(|t| json!({
                "id": t.id, "state": t.state.as_str(), "worker": t.worker_id, "cause": cause_of(t.trace.as_ref())
            })).collect::<Vec<_>>(),
            "restarts": kept.map(|k| k.restart.count),
            "mutedUntil": kept.and_then(|k| k.muted_until).filter(|u| *u > now).map(iso8601),
            "incidents": incidents,
        }));
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"worker": api.url(), "connectors": out})).unwrap_or_default()
        );
    } else {
        let mut rows = Vec::new();
        for c in &out {
            let text = |v: &Value| v.as_str().unwrap_or("").to_string();
            let notes: Vec<String> = c["incidents"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| format!("{} open {}", text(&i["category"]), text(&i["openFor"])))
                .chain(c["mutedUntil"].as_str().map(|u| format!("muted until {u}")))
                .collect();
            rows.push(vec![
                text(&c["name"]),
                "-".into(),
                text(&c["state"]),
                text(&c["worker"]),
                text(&c["cause"]),
                c["restarts"].as_u64().map(|n| n.to_string()).unwrap_or_default(),
                notes.join("; "),
            ]);
            for t in c["tasks"].as_array().into_iter().flatten() {
                rows.push(vec![
                    String::new(),
                    t["id"].to_string(),
                    text(&t["state"]),
                    text(&t["worker"]),
                    text(&t["cause"]),
                    String::new(),
                    String::new(),
                ]);
            }
        }
        outln!("worker {} · {} connectors", api.url(), out.len());
        out!(
            "{}",
            table(
                &["CONNECTOR", "TASK", "STATE", "WORKER", "CAUSE", "RESTARTS", "INCIDENTS"],
                rows
            )
        );
    }
    if unhealthy {
        Err(Failure::Unhealthy(String::new()))
    } else {
        Ok(())
    }
}

/// `connectorctl check [--dry-run]`: one testConnectors run with this context's settings.
pub async fn check(ctx: &Context, dry_run: bool, json: bool) -> Result<(), Failure> {
    let need = |v: &Option<String>, flag: &str| Context::need(v, flag, "check").map(str::to_string);
    let prefix = need(&ctx.secret_prefix, "--secret-prefix")?;
    let table = need(&ctx.state_table, "--state-table")?;
    let cluster = ctx.cluster()?.to_string();
    // A dry run publishes nothing: the topic and runbook settings only fill the config.
    let (topic, runbooks) = if dry_run {
        (
            ctx.alert_topic_arn
                .clone()
                .unwrap_or_else(|| "arn:aws:sns:us-east-1:000000000000:unused".into()),
            ctx.runbook_base_url
                .clone()
                .unwrap_or_else(|| "https://runbooks.invalid".into()),
        )
    } else {
        (
            need(&ctx.alert_topic_arn, "--alert-topic")?,
            need(&ctx.runbook_base_url, "--runbook-base-url")?,
        )
    };
    // The deployed function's settings first (budget, mutes, reminders); what this context says
    // about where things are wins over them.
    let mut settings: BTreeMap<String, String> = match &ctx.monitor_function {
        Some(function) => deployed_settings(ctx, function).await?,
        None => {
            eprintln!(
                "note: the default settings (restart budget 3, no mutes); --monitor-function NAME reads the deployed ones"
            );
            BTreeMap::new()
        }
    };
    // A function watching several clusters (`CLUSTERS`): this cluster's entry over the rest.
    if let Some(list) = settings.remove("CLUSTERS") {
        let entries: Vec<serde_json::Map<String, Value>> = serde_json::from_str(&list).unwrap_or_default();
        if let Some(entry) = entries
            .into_iter()
            .find(|e| e.get("CLUSTER").and_then(Value::as_str) == Some(&cluster))
        {
            for (k, v) in entry {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                settings.insert(k, text);
            }
        }
    }
    let mine: BTreeMap<&str, String> = [
        ("KAFKA_BOOTSTRAP_SERVERS", ctx.kafka_bootstrap.clone()),
        ("KAFKA_TLS_CA_FILE", ctx.kafka_ca_file.clone()),
        (
            "KAFKA_SECURITY_PROTOCOL",
            ctx.kafka_plaintext.filter(|p| *p).map(|_| "PLAINTEXT".to_string()),
        ),
        ("CONFIG_SECRET_PREFIX", Some(prefix)),
        ("MONITOR_STATE_TABLE", Some(table.clone())),
        ("ALERT_TOPIC_ARN", Some(topic.clone())),
        ("RUNBOOK_BASE_URL", Some(runbooks)),
        ("CLUSTER", Some(cluster.clone())),
        ("CONNECT_URL", ctx.connect_url.clone()),
        ("CONNECT_PORT", ctx.connect_port.map(|p| p.to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    settings.extend(mine.into_iter().map(|(k, v)| (k.to_string(), v)));
    let config = MonitorConfig::from_lookup(|k| settings.get(k).cloned()).map_err(|e| Failure::Input(e.to_string()))?;
    let sdk = sdk(ctx).await;
    let credentials = match rest_credentials(ctx).await? {
        // The deployed function's own secret when connectorctl was given none.
        RestCredentials::None => RestCredentials::from_secret(config.connect_credentials_secret.as_deref(), &sdk),
        given => given,
    };
    let monitor = deployed_monitor_with(config, &sdk, credentials).map_err(|e| Failure::Input(e.to_string()))?;
    let request = json!({"cluster": cluster});
    let out = if dry_run {
        monitor.dry_run(&request).await
    } else {
        monitor.run(&request).await
    }
    .map_err(|e| Failure::Unreachable(e.to_string()))?;
    let report = out.report;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_report(&report);
    }
    if !out.alert_failures.is_empty() {
        return Err(Failure::Unreachable(format!(
            "alerts not sent: {}",
            out.alert_failures.join("; ")
        )));
    }
    if let Some(why) = &out.configs_unread {
        return Err(Failure::Unreachable(format!(
            "the desired connectors' secrets not read (judged as they run): {why}"
        )));
    }
    if !out.state_failures.is_empty() {
        return Err(Failure::Unreachable(format!(
            "the monitor's state not written: {}",
            out.state_failures.join("; ")
        )));
    }
    if report["healthy"] == json!(true) {
        Ok(())
    } else {
        Err(Failure::Unhealthy(String::new()))
    }
}

/// The environment of the deployed `testConnectors` function (Lambda GetFunctionConfiguration).
async fn deployed_settings(ctx: &Context, function: &str) -> Result<BTreeMap<String, String>, Failure> {
    let lambda = aws_sdk_lambda::Client::new(&sdk(ctx).await);
    let got = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_resource_not_found_exception() => {
                Failure::config(format!("no Lambda function {function:?} (--monitor-function)"))
            }
            _ => Failure::Unreachable(format!("cannot read the settings of {function}: {}", error_chain(&e))),
        })?;
    Ok(got
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

fn print_report(report: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let dry = if report["dryRun"] == json!(true) {
        " (dry run: nothing done)"
    } else {
        ""
    };
    outln!(
        "cluster {} · worker {} · {}{dry}",
        text(&report["cluster"]),
        report["worker"].as_str().unwrap_or("none"),
        if report["healthy"] == json!(true) {
            "healthy"
        } else {
            "UNHEALTHY"
        }
    );
    let findings: Vec<&Value> = report["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["findings"].as_array().into_iter().flatten())
        .chain(report["findings"].as_array().into_iter().flatten())
        .collect();
    let connectors: Vec<Vec<String>> = report["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                text(&c["name"]),
                text(&c["state"]),
                if c["healthy"] == json!(true) { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    out!("{}", table(&["CONNECTOR", "STATE", "HEALTHY"], connectors));
    if !findings.is_empty() {
        outln!();
        let rows = findings
            .iter()
            .map(|f| {
                vec![
                    text(&f["severity"]),
                    text(&f["category"]),
                    text(&f["connector"]),
                    f["task"].as_i64().map(|t| t.to_string()).unwrap_or_default(),
                    text(&f["cause"]),
                    text(&f["action"]),
                ]
            })
            .collect();
        out!(
            "{}",
            table(&["SEVERITY", "CATEGORY", "CONNECTOR", "TASK", "CAUSE", "ACTION"], rows)
        );
    }
    let alerts = if report["dryRun"] == json!(true) {
        &report["wouldAlert"]
    } else {
        &report["alerts"]
    };
    for a in alerts.as_array().into_iter().flatten() {
        let verb = if report["dryRun"] == json!(true) {
            "would send"
        } else {
            "sent"
        };
        outln!("{verb}: {}", text(&a["subject"]));
    }
    for p in report["configProblems"].as_array().into_iter().flatten() {
        outln!("config problem: {}", text(p));
    }
}

/// Polls the connector's status until `done` holds or a minute passes, with dots on stderr.
pub(crate) async fn wait_until(
    api: &HttpConnectApi,
    name: &str,
    what: &str,
    done: impl Fn(&ConnectorStatus) -> bool,
) -> Result<ConnectorStatus, Failure> {
    let progress = Progress::start(&format!("waiting for {name} to be {what}"));
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let mut last = None;
    loop {
        match api.status(name).await {
            Ok(s) if done(&s) => {
                progress.finish("done");
                return Ok(s);
            }
            Ok(s) => last = Some(s),
            Err(ConnectError::Rebalancing { .. }) => {}
            Err(e) => {
                progress.finish("failed");
                return Err(unreachable(e));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            progress.finish("gave up after a minute");
            let states = last.map(|s| states_of(&s)).unwrap_or_default();
            return Err(Failure::Unhealthy(format!("{name} is not {what}: {states}")));
        }
        progress.tick();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub(crate) fn states_of(s: &ConnectorStatus) -> String {
    let tasks: Vec<String> = s
        .tasks
        .iter()
        .map(|t| format!("task {} {}", t.id, t.state.as_str()))
        .collect();
    format!("connector {}; {}", s.connector.state.as_str(), tasks.join(", "))
}

fn all_running(s: &ConnectorStatus) -> bool {
    s.connector.state == State::Running && !s.tasks.is_empty() && s.tasks.iter().all(|t| t.state == State::Running)
}

pub(crate) fn print_done(json: bool, value: Value, text: String) {
    if json {
        outln!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    } else {
        outln!("{text}");
    }
}

/// `connectorctl restart CONNECTOR [--task N] [--failed-only]`.
pub async fn restart(
    ctx: &Context,
    name: &str,
    task: Option<i32>,
    failed_only: bool,
    wait: bool,
    json: bool,
) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    let what = match task {
        Some(id) => {
            api.restart_task(name, id).await.map_err(unreachable)?;
            format!("task {id} of {name} restarted")
        }
        None => match api.restart(name, failed_only).await.map_err(unreachable)? {
            RestartOutcome::Planned(_) => format!(
                "{name} restart requested ({})",
                if failed_only {
                    "failed instances only"
                } else {
                    "connector and every task"
                }
            ),
            RestartOutcome::ConnectorOnly => {
                format!("{name}: the worker restarted only the connector instance (no KIP-745)")
            }
        },
    };
    let status = if wait {
        let settled = wait_until(&api, name, "RUNNING", |s| match task {
            Some(id) => s.tasks.iter().any(|t| t.id == id && t.state == State::Running),
            None => all_running(s),
        })
        .await;
        Some(settled?)
    } else {
        None
    };
    crate::audit::record(ctx, name, AuditKind::Restart, &what).await;
    let text = match &status {
        Some(s) => format!("{what}; now {}", states_of(s)),
        None => what.clone(),
    };
    print_done(
        json,
        json!({"connector": name, "result": what, "running": status.is_some()}),
        text,
    );
    Ok(())
}

/// `connectorctl ensure [CONNECTOR...]`: the secrets' configs onto the worker, diff first.
/// Unchanged connectors are not PUT: a PUT of the same config still restarts the connector.
pub async fn ensure(ctx: &Context, only: &[String], dry_run: bool, stopped: bool, json: bool) -> Result<(), Failure> {
    let prefix = Context::need(&ctx.secret_prefix, "--secret-prefix", "ensure")?;
    let aws = sdk(ctx).await;
    let configs = SecretsManagerConfigs::new(aws_sdk_secretsmanager::Client::new(&aws))
        .with_license_secret(ctx.license_secret_arn.clone());
    let loaded = configs.list(prefix).await.map_err(unreachable)?;
    for p in &loaded.problems {
        eprintln!("connectorctl: skipped a secret: {p}");
    }
    let wanted: BTreeSet<&str> = only.iter().map(String::as_str).collect();
    let desired: Vec<&ConnectorConfig> = loaded
        .configs
        .iter()
        .filter(|c| wanted.is_empty() || wanted.contains(c.name.as_str()))
        .collect();
    let missing: Vec<&&str> = wanted
        .iter()
        .filter(|n| !desired.iter().any(|c| c.name == **n))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::Input(format!(
            "no config secret under {prefix} for {missing:?}"
        )));
    }
    let api = connect(ctx).await?;
    let state_store = store(ctx).await;
    let running: BTreeMap<String, ConnectorView> = api
        .list_expanded()
        .await
        .map_err(unreachable)?
        .into_iter()
        .map(|v| (v.name.clone(), v))
        .collect();
    // The context's sinks: a connector reading one of their topics is not resumed into an empty
    // table behind committed offsets (the same check as createConnector).
    let tables: SinkTables = [
        (&ctx.seatool_topic, &ctx.seatool_table),
        (&ctx.appian_topic, &ctx.appian_table),
    ]
    .into_iter()
    .filter_map(|(topic, table)| Some((topic.clone()?, table.clone()?)))
    .collect();
    let probe = DynamoDbTableProbe::new(aws_sdk_dynamodb::Client::new(&aws));
    let (mut results, mut refused) = (Vec::new(), Vec::new());
    for want in desired {
        let current = running
            .get(&want.name)
            .and_then(|v| v.info.as_ref())
            .map(|i| ConnectorConfig {
                name: want.name.clone(),
                config: i
                    .config
                    .iter()
                    .filter(|(k, _)| k.as_str() != "name")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            });
        let changes = diff(current.as_ref(), want);
        let action = match (&current, changes.is_empty(), dry_run) {
            (_, true, _) => "unchanged",
            (None, false, true) => "would create",
            (Some(_), false, true) => "would update",
            (None, false, false) => "created",
            (Some(_), false, false) => "updated",
        };
        if !json {
            outln!("{}: {action}", want.name);
            for line in &changes {
                outln!("  {line}");
            }
        }
        if !changes.is_empty() && !dry_run {
            // Which settings changed, never their values (a config may hold secrets).
            let none = BTreeMap::new();
            let keys = connector_core::monitor::judge::evaluate::drift(
                &want.config,
                current.as_ref().map_or(&none, |c| &c.config),
            )
            .join(", ");
            let create_stopped = stopped && current.is_none();
            let how = if create_stopped { " STOPPED" } else { "" };
            let applied = if create_stopped {
                api.create_stopped(&want.name, &want.config)
                    .await
                    .map(|()| Applied::Created)
                    .map_err(ApplyError::from)
            } else {
                apply(&api, &probe, &tables, want).await
            };
            match applied {
                Ok(Applied::CreatedUnchecked(why)) => {
                    if !json {
                        outln!("  note: {why}");
                    }
                }
                Ok(_) => {}
                Err(e @ ApplyError::Refused { .. }) => {
                    let why = error_chain(&e);
                    if !json {
                        outln!("  refused: {why}");
                    }
                    let outcome = format!("created STOPPED from its secret, not resumed ({keys}): {why}");
                    crate::audit::record(ctx, &want.name, AuditKind::Ensure, &outcome).await;
                    results
                        .push(json!({"connector": want.name, "action": "refused", "changes": changes, "error": why}));
                    refused.push(want.name.clone());
                    continue;
                }
                Err(e) => return Err(unreachable(e)),
            }
            let outcome = format!("{action}{how} from its secret ({keys})");
            crate::audit::record(ctx, &want.name, AuditKind::Ensure, &outcome).await;
            // Brought back on purpose: a delete recorded before no longer holds the monitor back.
            if let Some((store, cluster)) = &state_store {
                update_state(store, cluster, &want.name, |state| state.deleted_at = None).await?;
            }
        }
        results.push(json!({"connector": want.name, "action": action, "changes": changes}));
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&results).unwrap_or_default());
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Failure::Unhealthy(format!(
            "not resumed, left STOPPED: {}",
            refused.join(", ")
        )))
    }
}

/// `+ key = value`, `- key = value`, `~ key: old → new`, with secret values redacted.
fn diff(current: Option<&ConnectorConfig>, want: &ConnectorConfig) -> Vec<String> {
    let after = want.redacted();
    let before = current.map(ConnectorConfig::redacted).unwrap_or_default();
    let mut lines = Vec::new();
    for (k, v) in &after {
        match before.get(k) {
            None => lines.push(format!("+ {k} = {v}")),
            Some(old) if current.and_then(|c| c.config.get(k)) != want.config.get(k) => {
                lines.push(format!("~ {k}: {old} → {v}"))
            }
            Some(_) => {}
        }
    }
    for (k, v) in &before {
        if !after.contains_key(k) {
            lines.push(format!("- {k} = {v}"));
        }
    }
    lines
}

/// `connectorctl delete CONNECTOR`.
pub async fn delete(ctx: &Context, name: &str, json: bool) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    // The intent first, where the monitor reads it, so that no run between the two recreates
    // it (the monitor keeps an intent whose delete is under way); a delete that then fails takes
    // the intent back, and one that cannot be recorded deletes nothing.
    let store = store(ctx).await;
    if let Some((store, cluster)) = &store {
        let now = now_millis();
        update_state(store, cluster, name, |state| state.deleted_at = Some(now)).await?;
    }
    if let Err(e) = api.delete(name).await {
        if let Some((store, cluster)) = &store {
            let _ = update_state(store, cluster, name, |state| state.deleted_at = None).await;
        }
        return Err(unreachable(e));
    }
    let recorded = store.is_some();
    crate::audit::record(ctx, name, AuditKind::Delete, "deleted").await;
    let note = if recorded {
        format!(" (recorded: the monitor will not recreate it; connectorctl ensure {name} brings it back)")
    } else if ctx.secret_prefix.is_some() {
        " (its secret remains and no --state-table is set: the monitor will recreate it)".to_string()
    } else {
        String::new()
    };
    print_done(
        json,
        json!({"connector": name, "result": "deleted"}),
        format!("{name} deleted{note}"),
    );
    Ok(())
}

/// `connectorctl pause|resume CONNECTOR`.
pub async fn pause_resume(ctx: &Context, name: &str, pause: bool, json: bool) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    let (want, verb) = if pause {
        api.pause(name).await.map_err(unreachable)?;
        (State::Paused, "paused")
    } else {
        api.resume(name).await.map_err(unreachable)?;
        (State::Running, "resumed")
    };
    let kind = if pause { AuditKind::Pause } else { AuditKind::Resume };
    crate::audit::record(ctx, name, kind, verb).await;
    let status = wait_until(&api, name, want.as_str(), |s| {
        s.connector.state == want && s.tasks.iter().all(|t| t.state == want)
    })
    .await?;
    print_done(
        json,
        json!({"connector": name, "result": verb}),
        format!("{name} {verb}: {}", states_of(&status)),
    );
    Ok(())
}

/// `connectorctl mute CONNECTOR --for D` (`until` = `Some`) and `unmute` (`None`).
pub async fn mute(ctx: &Context, name: &str, length: Option<i64>, json: bool) -> Result<(), Failure> {
    let Some((store, cluster)) = store(ctx).await else {
        return Err(Failure::config(
            "mute needs --state-table and --cluster (the monitor's state)",
        ));
    };
    let until = length.map(|l| now_millis() + l);
    update_state(&store, &cluster, name, |state| state.muted_until = until).await?;
    let text = match until {
        Some(u) => format!(
            "{name} muted until {} (recorded, not restarted, not alerted)",
            iso8601(u)
        ),
        None => format!("{name} unmuted"),
    };
    let kind = if until.is_some() {
        AuditKind::Mute
    } else {
        AuditKind::Unmute
    };
    crate::audit::record(ctx, name, kind, &text).await;
    print_done(json, json!({"connector": name, "mutedUntil": until.map(iso8601)}), text);
    Ok(())
}

/// Changes one connector's monitor state with a conditional write, again if a monitor run
/// wrote it meanwhile.
async fn update_state(
    store: &DynamoDbMonitorStore,
    cluster: &str,
    name: &str,
    change: impl Fn(&mut ConnectorState),
) -> Result<(), Failure> {
    for _ in 0..5 {
        let stored: StoredState = store.load(cluster).await.map_err(unreachable)?;
        let current = stored.connectors.get(name);
        let mut state = current.map(|v| v.value.clone()).unwrap_or_default();
        change(&mut state);
        if store
            .save_connector(cluster, name, &state, current.map(|v| v.version))
            .await
            .map_err(unreachable)?
        {
            return Ok(());
        }
    }
    Err(Failure::Unreachable(format!(
        "the monitor state of {name} kept changing; try again"
    )))
}

/// `connectorctl incidents`: the open incidents, oldest first, then those resolved in the last
/// week, newest first, each with how long it was (or has been) open.
pub async fn incidents(ctx: &Context, json: bool) -> Result<(), Failure> {
    let Some((store, cluster)) = store(ctx).await else {
        return Err(Failure::config(
            "incidents needs --state-table and --cluster (the monitor's state)",
        ));
    };
    let stored = store.load(&cluster).await.map_err(unreachable)?;
    let now = now_millis();
    let mut open: Vec<_> = stored.incidents.values().map(|v| &v.value).collect();
    open.sort_by_key(|i| i.opened_at);
    let entry = |i: &Incident, until: i64| {
        json!({"key": i.key, "category": i.category, "severity": i.severity, "connector": i.connector,
               "task": i.task, "resource": i.resource, "summary": i.summary,
               "openedAt": iso8601(i.opened_at), "openForMillis": until - i.opened_at})
    };
    if json {
        let open: Vec<Value> = open.iter().map(|i| entry(i, now)).collect();
        let resolved: Vec<Value> = stored
            .resolved
            .iter()
            .map(|r| {
                let mut e = entry(&r.incident, r.resolved_at);
                e["resolvedAt"] = json!(iso8601(r.resolved_at));
                e
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"open": open, "resolved": resolved})).unwrap_or_default()
        );
        return Ok(());
    }
    let row = |i: &Incident, until: i64, last: String| {
        vec![
            i.severity.clone(),
            i.category.clone(),
            i.connector.clone().or_else(|| i.resource.clone()).unwrap_or_default(),
            i.task.map(|t| t.to_string()).unwrap_or_default(),
            iso8601(i.opened_at),
            human_duration(until - i.opened_at),
            last,
        ]
    };
    if open.is_empty() {
        outln!("no open incidents in {cluster}");
    } else {
        outln!("open in {cluster}:");
        let rows = open.iter().map(|i| row(i, now, i.summary.clone())).collect();
        out!(
            "{}",
            table(
                &["SEVERITY", "CATEGORY", "SUBJECT", "TASK", "OPENED", "FOR", "SUMMARY"],
                rows
            )
        );
    }
    if !stored.resolved.is_empty() {
        outln!("\nresolved in the last week:");
        let rows = stored
            .resolved
            .iter()
            .map(|r| row(&r.incident, r.resolved_at, iso8601(r.resolved_at)))
            .collect();
        out!(
            "{}",
            table(
                &[
                    "SEVERITY", "CATEGORY", "SUBJECT", "TASK", "OPENED", "LASTED", "RESOLVED"
                ],
                rows
            )
        );
    }
    Ok(())
}

/// `connectorctl history [CONNECTOR]`: the monitor's audit trail, newest first.
pub async fn history(ctx: &Context, connector: Option<&str>, limit: usize, json: bool) -> Result<(), Failure> {
    let Some((store, cluster)) = store(ctx).await else {
        return Err(Failure::config(
            "history needs --state-table and --cluster (the monitor's state)",
        ));
    };
    let entries = store.history(&cluster, connector, limit).await.map_err(unreachable)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&entries).unwrap_or_default());
        return Ok(());
    }
    if entries.is_empty() {
        outln!(
            "no actions recorded for {} in the last 30 days",
            connector.unwrap_or(&cluster)
        );
        return Ok(());
    }
    let rows = entries
        .iter()
        .map(|e| {
            let attempt = match (e.attempt, e.budget) {
                (Some(n), Some(m)) => format!("{n} of {m}"),
                _ => String::new(),
            };
            vec![
                iso8601(e.at),
                e.connector.clone(),
                e.kind.as_str().to_string(),
                e.by.clone(),
                attempt,
                e.cause.clone().unwrap_or_default(),
                e.next_not_before.map(iso8601).unwrap_or_default(),
                e.outcome.clone(),
            ]
        })
        .collect();
    out!(
        "{}",
        table(
            &[
                "AT",
                "CONNECTOR",
                "ACTION",
                "BY",
                "ATTEMPT",
                "CAUSE",
                "NEXT NOT BEFORE",
                "OUTCOME"
            ],
            rows
        )
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ConnectorConfig {
        ConnectorConfig {
            name: "c".into(),
            config: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn the_diff_shows_added_changed_and_removed_keys_and_hides_secrets() {
        let before = config(&[("tasks.max", "1"), ("topics", "a"), ("aws.secret.access.key", "old")]);
        let after = config(&[("tasks.max", "2"), ("aws.secret.access.key", "new"), ("batch", "5")]);
        let lines = diff(Some(&before), &after);
        assert!(lines.contains(&"+ batch = 5".to_string()), "{lines:?}");
        assert!(lines.contains(&"~ tasks.max: 1 → 2".to_string()), "{lines:?}");
        assert!(lines.contains(&"- topics = a".to_string()), "{lines:?}");
        let secret = lines
            .iter()
            .find(|l| l.contains("aws.secret.access.key"))
            .expect("a changed secret shows");
        assert!(!secret.contains("old") && !secret.contains("new"), "{secret}");
        assert!(diff(Some(&after), &after).is_empty());
        assert_eq!(diff(None, &after).len(), 3);
    }
}
