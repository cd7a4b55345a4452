//! `connectorctl classify`: any supported event or Kafka Connect body in, the findings the
//! handlers would make of it out — the same pure functions the handlers use.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::connect::{ConnectorConfig, wire};
use crate::monitor::events::alarm::{AlarmChange, alarm_catalogue, alarm_name, classify_alarm_event};
use crate::monitor::events::ecs::{EcsEvent, classify_ecs_event};
use crate::monitor::judge::evaluate::{Observation, evaluate};
use crate::monitor::judge::finding::Finding;
use crate::monitor::judge::state::Settings;
use crate::sink::decode_batch;
use crate::sink::mapping::{Mapped, Table, map_record};

/// Classifies one JSON document, or says in one line why it cannot.
pub fn classify(doc: &Value) -> Result<Value, String> {
    let (kind, findings) = if doc["source"] == "aws.ecs" {
        let cluster = doc["detail"]["clusterArn"].as_str().unwrap_or("");
        let findings = match classify_ecs_event(doc, cluster).map_err(|e| e.to_string())? {
            EcsEvent::Stopped { finding, .. } => vec![finding_json(&finding, finding.category.id())],
            EcsEvent::Running { task, .. } => vec![info("task-running", format!("Task {task} is RUNNING"))],
            EcsEvent::Other { .. } => Vec::new(),
        };
        ("ecs-task-state", findings)
    } else if doc["source"] == "aws.cloudwatch" {
        let findings = match classify_alarm_event(doc, &alarm_catalogue(), "cluster", 0)? {
            AlarmChange::Raise(n) => match &n.finding {
                Some(f) => vec![finding_json(f, &n.incident.category)],
                None => Vec::new(),
            },
            AlarmChange::Clear { key } => {
                let id = key.split(':').next().unwrap_or("unknown").to_string();
                vec![info(&id, format!("Alarm {} is OK", alarm_name(doc).unwrap_or("?")))]
            }
            AlarmChange::Nothing { reason } => vec![info("alarm", reason)],
        };
        ("alarm-state", findings)
    } else if doc["source"] == "aws.events" || doc["detail-type"] == "Scheduled Event" {
        ("schedule", Vec::new())
    } else if let Some(views) = connect_views(doc) {
        // Judge every connector the body names, as if its secret held what it runs.
        let desired: Vec<ConnectorConfig> = views
            .iter()
            .map(|v| ConnectorConfig {
                name: v.name.clone(),
                config: v.info.as_ref().map(|i| i.config.clone()).unwrap_or_default(),
            })
            .collect();
        let e = evaluate(
            &desired,
            &Observation::Connectors(views),
            &BTreeMap::new(),
            &Settings::default(),
            0,
        );
        (
            "connect-status",
            e.findings.iter().map(|f| finding_json(f, f.category.id())).collect(),
        )
    } else if let Ok(batch) = decode_batch(doc) {
        let mut findings = Vec::new();
        for r in &batch.records {
            let table = if r.coordinates.topic.contains("appian") {
                Table::Appian
            } else {
                Table::Seatool
            };
            if let Mapped::DeadLetter { reason } = map_record(table, r) {
                let c = &r.coordinates;
                findings.push(json!({"category": "sink-failure", "severity": "warning",
                    "summary": format!("{} cannot be stored in {}: {reason}", c.place(), table.name()),
                    "runbook": "runbooks/sink-failure.md"}));
            }
        }
        ("sink-batch", findings)
    } else {
        return Err(
            "unrecognised input: expected an ECS task state change, a CloudWatch alarm state change, a scheduled \
                    event, a Kafka Connect status or ?expand body, or a sink batch"
                .into(),
        );
    };
    Ok(json!({"kind": kind, "findings": findings}))
}

/// A Kafka Connect `?expand` body or a single `/status` body, read as connector views.
fn connect_views(doc: &Value) -> Option<Vec<crate::connect::ConnectorView>> {
    if doc.get("connector").is_some() && doc.get("tasks").is_some() {
        let status = wire::connector_status(&doc.to_string()).ok()?;
        return Some(vec![crate::connect::ConnectorView {
            name: status.name.clone(),
            status: Some(status),
            info: None,
        }]);
    }
    let obj = doc.as_object()?;
    let looks_expanded = !obj.is_empty()
        && obj
            .values()
            .all(|v| v.get("status").is_some() || v.get("info").is_some());
    if !looks_expanded {
        return None;
    }
    wire::expanded(&doc.to_string()).ok()
}

fn finding_json(f: &Finding, category: &str) -> Value {
    let mut v = json!({"category": category, "severity": f.severity.as_str(), "summary": f.summary,
                       "runbook": format!("runbooks/{category}.md")});
    if let Some(c) = f.cause {
        v["cause"] = json!(c.id());
    }
    if let Some(c) = &f.connector {
        v["connector"] = json!(c);
    }
    if let Some(t) = f.task {
        v["task"] = json!(t);
    }
    v
}

fn info(category: &str, summary: String) -> Value {
    json!({"category": category, "severity": "info", "summary": summary, "runbook": format!("runbooks/{category}.md")})
}
