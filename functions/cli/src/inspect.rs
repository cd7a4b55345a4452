//! The commands an operator runs in an incident besides `status`: `info` and `plugins` (what the
//! worker runs and has: the first check for `plugin-missing`), `describe` (one connector whole),
//! `offsets` (see, reset or move a sink connector's committed offsets, KIP-875) and `stop`.

use std::io::{BufRead, IsTerminal, Write};

use connector_adapters::kafka::KafkaBrokers;
use connector_adapters::now_millis;
use connector_core::connect::{ConnectApi, ConnectError, ConnectorConfig, SinkOffset, State};
use connector_core::error_chain;
use connector_core::monitor::audit::AuditKind;
use connector_core::monitor::judge::cause::root_cause;
use connector_core::monitor::judge::lag::{measure, topics_of};
use connector_core::monitor::time::{human_duration, iso8601};
use connector_core::redact::redact_text;
use serde_json::{Value, json};

use crate::Failure;
use crate::cluster::{connect, print_done, states_of, store, unreachable, wait_until};
use crate::context::Context;
use crate::output::table;

/// Lines of a trace `describe` shows: the root cause is named above them; the rest is in the log.
const TRACE_LINES: usize = 8;

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `connectorctl info`: the worker's version, commit and Kafka cluster.
pub async fn info(ctx: &Context, json: bool) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    let info = api.server_info().await.map_err(unreachable)?;
    let value = json!({"worker": api.url(), "version": info.version, "commit": info.commit,
                       "kafkaClusterId": info.kafka_cluster_id});
    if json {
        outln!("{}", pretty(&value));
    } else {
        outln!(
            "{}\n  Kafka Connect {} (commit {})\n  Kafka cluster {}",
            api.url(),
            info.version,
            info.commit,
            info.kafka_cluster_id.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// `connectorctl plugins`: the connector classes the worker can run.
pub async fn plugins(ctx: &Context, json: bool) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    let plugins = api.plugins().await.map_err(unreachable)?;
    if json {
        outln!("{}", pretty(&json!(plugins)));
    } else {
        let rows = plugins
            .iter()
            .map(|p| vec![p.class.clone(), p.kind.clone(), p.version.clone().unwrap_or_default()])
            .collect();
        out!("{}", table(&["CLASS", "TYPE", "VERSION"], rows));
    }
    Ok(())
}

/// The first lines of a trace, and how many were left out.
fn trimmed(trace: &str) -> String {
    let lines: Vec<&str> = trace.lines().collect();
    let mut text = lines.iter().take(TRACE_LINES).copied().collect::<Vec<_>>().join("\n");
    if lines.len() > TRACE_LINES {
        text.push_str(&format!("\n\t... {} more lines", lines.len() - TRACE_LINES));
    }
    text
}

fn failure(trace: Option<&String>) -> Value {
    match trace {
        Some(t) => {
            // The cause from the whole trace; what is shown, redacted (passwords, record contents).
            let root = root_cause(t);
            json!({"cause": root.cause.id(), "rootCause": redact_text(&root.line), "trace": redact_text(&trimmed(t))})
        }
        None => Value::Null,
    }
}

/// The brokers of the context, when it names them.
pub(crate) fn brokers(ctx: &Context) -> Result<Option<KafkaBrokers>, Failure> {
    let Some(bootstrap) = &ctx.kafka_bootstrap else {
        return Ok(None);
    };
    KafkaBrokers::with_security(
        bootstrap,
        ctx.kafka_plaintext != Some(true),
        ctx.kafka_ca_file.as_deref(),
        std::time::Duration::from_secs(10),
    )
    .map(Some)
    .map_err(|e| Failure::Input(e.to_string()))
}

/// `connectorctl describe CONNECTOR`.
pub async fn describe(ctx: &Context, name: &str, json: bool) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    let status = api.status(name).await.map_err(|e| match e {
        ConnectError::NotFound { .. } => Failure::Unhealthy(format!("no connector {name} on {}", api.url())),
        e => unreachable(e),
    })?;
    let listed = api.list_expanded().await.map_err(unreachable)?;
    let info = listed.into_iter().find(|v| v.name == name).and_then(|v| v.info);
    let config = info.as_ref().map(|i| i.config.clone()).unwrap_or_default();
    let kind = info.as_ref().and_then(|i| i.kind.clone()).or(status.kind.clone());
    let redacted = ConnectorConfig {
        name: name.to_string(),
        config: config.clone(),
    }
    .redacted();

    let now = now_millis();
    let mut value = json!({
        "name": name,
        "type": kind,
        "worker": api.url(),
        "state": status.connector.state.as_str(),
        "workerId": status.connector.worker_id,
        "failure": failure(status.connector.trace.as_ref()),
        "tasks": status.tasks.iter().map(|t| json!({
            "id": t.id, "state": t.state.as_str(), "workerId": t.worker_id, "failure": failure(t.trace.as_ref()),
        })).collect::<Vec<_>>(),
        "config": redacted,
    });

    if kind.as_deref() == Some("sink") {
        match brokers(ctx)? {
            Some(brokers) => match measure(&api, &brokers, name, &config, now).await {
                Ok((_, lag)) => {
                    value["topics"] = json!(lag.partitions.iter().map(|p| p.topic.clone()).collect::<Vec<_>>());
                    value["lag"] = json!(lag);
                }
                Err(e) => value["lagUnknown"] = json!(error_chain(&e)),
            },
            None => {
                value["lagUnknown"] = json!("no brokers given: --kafka-bootstrap (or the context's) measures the lag");
                match api.sink_offsets(name).await {
                    Ok(committed) => {
                        value["topics"] = json!(topics_of(&config, &committed));
                        value["offsets"] = json!(committed);
                    }
                    Err(e) => value["offsetsUnknown"] = json!(error_chain(&e)),
                }
            }
        }
    }
    if value.get("topics").is_none() {
        value["topics"] = json!(topics_of(&config, &[]));
    }

    if let Some((store, cluster)) = store(ctx).await {
        match connector_core::monitor::ports::MonitorStore::load(&store, &cluster).await {
            Ok(state) => {
                let kept = state.connectors.get(name).map(|v| &v.value);
                value["restarts"] = json!(kept.map_or(0, |k| k.restart.count));
                value["stalledRestarts"] = json!(kept.map_or(0, |k| k.progress.restart.count));
                value["mutedUntil"] = json!(kept.and_then(|k| k.muted_until).filter(|u| *u > now).map(iso8601));
                value["incidents"] = json!(
                    state
                        .incidents
                        .values()
                        .map(|v| &v.value)
                        .filter(|i| i.connector.as_deref() == Some(name) || i.members.iter().any(|m| m == name))
                        .map(|i| json!({"key": i.key, "category": i.category, "severity": i.severity,
                                        "summary": i.summary, "openFor": human_duration(now - i.opened_at)}))
                        .collect::<Vec<_>>()
                );
            }
            Err(e) => value["stateUnknown"] = json!(error_chain(&e)),
        }
    }

    if json {
        outln!("{}", pretty(&value));
    } else {
        print_description(&value);
    }
    let unhealthy = matches!(status.connector.state, State::Failed | State::Unassigned)
        || status
            .tasks
            .iter()
            .any(|t| matches!(t.state, State::Failed | State::Unassigned));
    if unhealthy {
        return Err(Failure::Unhealthy(String::new()));
    }
    Ok(())
}

fn print_description(v: &Value) {
    let text = |v: &Value| v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
    outln!(
        "{}  ({}, {} on {})",
        text(&v["name"]),
        text(&v["type"]),
        text(&v["state"]),
        text(&v["workerId"])
    );
    if let Some(f) = v["failure"].as_object() {
        outln!(
            "  cause {}: {}\n{}",
            text(&f["cause"]),
            text(&f["rootCause"]),
            indent(&text(&f["trace"]))
        );
    }
    outln!("Tasks:");
    for t in v["tasks"].as_array().into_iter().flatten() {
        outln!("  {} {} on {}", t["id"], text(&t["state"]), text(&t["workerId"]));
        if let Some(f) = t["failure"].as_object() {
            outln!(
                "    cause {}: {}\n{}",
                text(&f["cause"]),
                text(&f["rootCause"]),
                indent(&text(&f["trace"]))
            );
        }
    }
    outln!(
        "Topics: {}",
        v["topics"]
            .as_array()
            .map(|t| t.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    if let Some(lag) = v.get("lag") {
        let seconds = lag["seconds"]
            .as_i64()
            .map_or("unknown".to_string(), |s| format!("{s} s"));
        outln!("Lag: {} records, oldest waiting {seconds}", lag["records"]);
        let rows = lag["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                vec![
                    format!("{}-{}", text(&p["topic"]), p["partition"]),
                    text(&p["committed"]),
                    text(&p["end"]),
                    text(&p["records"]),
                ]
            })
            .collect();
        out!("{}", table(&["PARTITION", "COMMITTED", "END", "WAITING"], rows));
    } else if let Some(why) = v["lagUnknown"].as_str() {
        outln!("Lag: unknown ({why})");
    }
    if let Some(offsets) = v["offsets"].as_array() {
        let rows = offsets
            .iter()
            .map(|o| vec![format!("{}-{}", text(&o["topic"]), o["partition"]), text(&o["offset"])])
            .collect();
        out!("{}", table(&["PARTITION", "COMMITTED"], rows));
    }
    if v.get("restarts").is_some() {
        outln!(
            "Restarts by the monitor: {} for the current failure, {} for a stalled consumer{}",
            v["restarts"],
            v["stalledRestarts"],
            v["mutedUntil"]
                .as_str()
                .map(|u| format!("; muted until {u}"))
                .unwrap_or_default()
        );
        let incidents = v["incidents"].as_array().cloned().unwrap_or_default();
        if incidents.is_empty() {
            outln!("Open incidents: none");
        }
        for i in incidents {
            outln!(
                "Open incident {} ({}, open {}): {}",
                text(&i["key"]),
                text(&i["severity"]),
                text(&i["openFor"]),
                text(&i["summary"])
            );
        }
    }
    outln!("Config (secret-looking values redacted):");
    for (k, val) in v["config"].as_object().into_iter().flatten() {
        outln!("  {k} = {}", text(val));
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `connectorctl offsets CONNECTOR`: the committed offsets, per partition.
pub async fn offsets(ctx: &Context, name: &str, json: bool) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    let committed = read_offsets(&api, name).await?;
    if json {
        outln!("{}", pretty(&json!({"connector": name, "offsets": committed})));
    } else {
        let rows = committed
            .iter()
            .map(|o| vec![format!("{}-{}", o.topic, o.partition), o.offset.to_string()])
            .collect();
        out!("{}", table(&["PARTITION", "COMMITTED"], rows));
    }
    Ok(())
}

async fn read_offsets(
    api: &connector_adapters::connect::HttpConnectApi,
    name: &str,
) -> Result<Vec<SinkOffset>, Failure> {
    api.sink_offsets(name).await.map_err(|e| match e {
        ConnectError::NotFound { message } => Failure::Unhealthy(format!(
            "no offsets for {name}: {message} (no such connector, or Kafka Connect before 3.5)"
        )),
        e => unreachable(e),
    })
}

/// What `offsets reset` and `offsets set` change.
pub enum OffsetsChange {
    /// Forget every committed offset: the connector starts again from `auto.offset.reset`.
    Reset,
    /// Move these partitions (`topic:partition=offset`) to these offsets.
    Set(Vec<String>),
}

/// Where consumer group `group` has committed, as `topic:partition=offset` (the brokers of the
/// context, read directly: the group may belong to another Connect cluster of any version).
pub async fn group_positions(ctx: &Context, group: &str) -> Result<Vec<String>, Failure> {
    let brokers = brokers(ctx)?
        .ok_or_else(|| Failure::config("--from-group needs --kafka-bootstrap (or the context's brokers)"))?;
    let committed = brokers
        .committed(group)
        .await
        .map_err(|e| Failure::Unreachable(error_chain(&e)))?;
    if committed.is_empty() {
        return Err(Failure::Input(format!(
            "consumer group {group} has committed nothing (a sink connector's group is connect-<its name>)"
        )));
    }
    Ok(committed
        .iter()
        .map(|o| format!("{}:{}={}", o.topic, o.partition, o.offset))
        .collect())
}

/// Reads `topic:partition=offset`.
pub fn parse_position(text: &str) -> Result<SinkOffset, Failure> {
    let bad = || Failure::Input(format!("{text:?} is not topic:partition=offset (e.g. orders:0=42)"));
    let (place, offset) = text.rsplit_once('=').ok_or_else(bad)?;
    let (topic, partition) = place.rsplit_once(':').ok_or_else(bad)?;
    if topic.is_empty() {
        return Err(bad());
    }
    let partition: i32 = partition.parse().map_err(|_| bad())?;
    let offset: i64 = offset.parse().map_err(|_| bad())?;
    if partition < 0 || offset < 0 {
        return Err(bad());
    }
    Ok(SinkOffset {
        topic: topic.to_string(),
        partition,
        offset,
    })
}

/// `connectorctl offsets reset|set CONNECTOR …`: shows the change, asks for the connector's name
/// as confirmation (or `--yes`), and makes it. Kafka Connect takes it only from a STOPPED
/// connector (3.6+); this says how to get there instead of trying.
pub async fn change_offsets(
    ctx: &Context,
    name: &str,
    change: OffsetsChange,
    dry_run: bool,
    yes: bool,
    json: bool,
) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    let before = read_offsets(&api, name).await?;
    let wanted = match &change {
        OffsetsChange::Reset => Vec::new(),
        OffsetsChange::Set(positions) => {
            if positions.is_empty() {
                return Err(Failure::Input(
                    "offsets set needs at least one --to topic:partition=offset".into(),
                ));
            }
            positions
                .iter()
                .map(|p| parse_position(p))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let plan: Vec<Value> = match &change {
        OffsetsChange::Reset => before
            .iter()
            .map(|o| json!({"partition": format!("{}-{}", o.topic, o.partition), "from": o.offset, "to": null}))
            .collect(),
        OffsetsChange::Set(_) => wanted
            .iter()
            .map(|w| {
                let from = before
                    .iter()
                    .find(|o| o.topic == w.topic && o.partition == w.partition)
                    .map(|o| o.offset);
                json!({"partition": format!("{}-{}", w.topic, w.partition), "from": from, "to": w.offset})
            })
            .collect(),
    };
    let verb = match change {
        OffsetsChange::Reset => "reset",
        OffsetsChange::Set(_) => "set",
    };
    if !json || dry_run {
        let rows = plan
            .iter()
            .map(|p| {
                let show = |v: &Value| v.as_i64().map_or("(none)".to_string(), |n| n.to_string());
                vec![
                    p["partition"].as_str().unwrap_or("").to_string(),
                    show(&p["from"]),
                    show(&p["to"]),
                ]
            })
            .collect();
        if !json {
            out!("{}", table(&["PARTITION", "COMMITTED NOW", "AFTER"], rows));
        }
    }
    if dry_run {
        print_done(
            json,
            json!({"connector": name, "dryRun": true, "change": verb, "plan": plan}),
            format!("dry run: nothing changed ({verb} would apply the above)"),
        );
        return Ok(());
    }
    let status = api.status(name).await.map_err(unreachable)?;
    if status.connector.state != State::Stopped {
        return Err(Failure::Unhealthy(format!(
            "{name} is {}: Kafka Connect changes offsets only of a STOPPED connector; run `connectorctl stop {name}` first (and `connectorctl resume {name}` after)",
            status.connector.state.as_str()
        )));
    }
    if !yes {
        confirm(name, verb)?;
    }
    let message = match verb {
        "reset" => api.reset_offsets(name).await,
        _ => api.alter_sink_offsets(name, &wanted).await,
    }
    .map_err(|e| match e {
        ConnectError::Refused { message, .. } => Failure::Unhealthy(format!("Kafka Connect refused: {message}")),
        e => unreachable(e),
    })?;
    let kind = if verb == "reset" {
        AuditKind::OffsetsReset
    } else {
        AuditKind::OffsetsSet
    };
    let changed: Vec<String> = plan
        .iter()
        .map(|p| format!("{} {} → {}", p["partition"].as_str().unwrap_or(""), p["from"], p["to"]))
        .collect();
    crate::audit::record(ctx, name, kind, &format!("{message} ({})", changed.join(", "))).await;
    let after = read_offsets(&api, name).await?;
    print_done(
        json,
        json!({"connector": name, "change": verb, "message": message, "plan": plan, "offsets": after}),
        format!("{name}: {message}\nResume it with: connectorctl resume {name}"),
    );
    Ok(())
}

/// Asks for the connector's name on the terminal; refuses without one.
fn confirm(name: &str, verb: &str) -> Result<(), Failure> {
    confirm_by_typing(
        name,
        &format!("Type the connector's name to {verb} its offsets: "),
        format!("offsets {verb} changes where {name} reads from: confirm with --yes (or run it on a terminal)"),
        "not confirmed: nothing changed",
    )
}

/// Asks on the terminal for `expected` to be typed (`prompt` on stderr); without a terminal,
/// `refused` (exit 2); anything else typed, `declined`.
pub(crate) fn confirm_by_typing(expected: &str, prompt: &str, refused: String, declined: &str) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::Input(refused));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Input(format!("no confirmation read: {e}")))?;
    if line.trim() != expected {
        return Err(Failure::Input(declined.into()));
    }
    Ok(())
}

/// `connectorctl stop CONNECTOR`: `PUT .../stop` (3.5+), then waits for STOPPED (its tasks
/// are shut down and leave the status).
pub async fn stop(ctx: &Context, name: &str, json: bool) -> Result<(), Failure> {
    let api = connect(ctx).await?;
    api.stop(name).await.map_err(|e| match e {
        ConnectError::NotFound { message } => Failure::Unhealthy(format!(
            "cannot stop {name}: {message} (no such connector, or Kafka Connect before 3.5)"
        )),
        e => unreachable(e),
    })?;
    crate::audit::record(ctx, name, AuditKind::Stop, "stopped").await;
    let status = wait_until(&api, name, "STOPPED", |s| s.connector.state == State::Stopped).await?;
    print_done(
        json,
        json!({"connector": name, "result": "stopped"}),
        format!(
            "{name} stopped: {}. It keeps its config and offsets; `connectorctl resume {name}` starts it again. Mute it first if the monitor should not page for it.",
            states_of(&status)
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_as_topic_partition_offset_and_others_are_refused() {
        let p = parse_position("orders.v1:3=42").unwrap();
        assert_eq!((p.topic.as_str(), p.partition, p.offset), ("orders.v1", 3, 42));
        let colon = parse_position("a:b:0=1").unwrap();
        assert_eq!(colon.topic, "a:b");
        for bad in [
            "orders", "orders:0", "orders=1", ":0=1", "o:x=1", "o:0=x", "o:-1=1", "o:0=-5",
        ] {
            assert!(parse_position(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_long_trace_is_cut_and_says_how_much_was_left_out() {
        let trace: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let cut = trimmed(&trace);
        assert_eq!(cut.lines().count(), TRACE_LINES + 1);
        assert!(cut.ends_with("... 12 more lines"), "{cut}");
    }
}
