//! CloudWatch alarm state changes of the project's alarms (EventBridge events, or the payload of an
//! alarm action that invokes the function), read against the catalogue in
//! `alarms/catalogue.json`. Pure: the event in, what it means out.

use aws_lambda_events::event::cloudwatch_alarms::{CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::monitor::alerting::alert::{Incident, Notice, opening};
use crate::monitor::judge::finding::{Category, Finding, Severity};

/// The catalogue, compiled in so that code and infrastructure read the same file.
const CATALOGUE: &str = include_str!("../../../../../alarms/catalogue.json");

/// One alarm of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmEntry {
    /// The stable id (`sink-failure`).
    pub id: String,
    /// An alarm whose name ends with this is this entry.
    pub alarm_name_suffix: String,
    /// `critical` or `warning`.
    pub severity: String,
    /// Whether INSUFFICIENT_DATA is worth a warning (the heartbeat's is).
    pub missing_data_matters: bool,
    /// CloudWatch publishes this alarm straight to the topic (it watches the alerting path
    /// itself), so alarmState must not alert on it a second time.
    #[serde(default)]
    pub direct: bool,
    /// One line.
    pub summary: String,
    /// `runbooks/<id>.md`.
    pub runbook: String,
}

#[derive(Deserialize)]
struct Catalogue {
    alarms: Vec<AlarmEntry>,
}

/// The alarms of the catalogue.
pub fn alarm_catalogue() -> Vec<AlarmEntry> {
    serde_json::from_str::<Catalogue>(CATALOGUE)
        .map(|c| c.alarms)
        .unwrap_or_default()
}

/// What an alarm state change means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmChange {
    /// Open (or keep) an incident and alert.
    Raise(Box<Notice>),
    /// Resolve the incident with this key.
    Clear {
        /// The incident key.
        key: String,
    },
    /// Nothing to do (INSUFFICIENT_DATA of an alarm where missing data does not matter).
    Nothing {
        /// Why.
        reason: String,
    },
}

/// Reads an alarm state change. `cluster` prefixes the subject, as for every alert.
pub fn classify_alarm_event(
    event: &Value,
    catalogue: &[AlarmEntry],
    cluster: &str,
    now: i64,
) -> Result<AlarmChange, String> {
    let d = &alarm_data(event)?;
    let name = d.alarm_name.as_str();
    let current = d
        .state
        .as_ref()
        .ok_or("malformed alarm event: detail.state is missing")?;
    let state = match current.value {
        CloudWatchAlarmStateValue::Alarm => "ALARM",
        CloudWatchAlarmStateValue::InsufficientData => "INSUFFICIENT_DATA",
        _ => "OK",
    };
    let reason = if current.reason.is_empty() {
        "(no reason given)"
    } else {
        current.reason.as_str()
    };
    let entry = catalogue.iter().find(|e| name.ends_with(&e.alarm_name_suffix));
    let id = entry.map_or("unknown", |e| e.id.as_str());
    if entry.is_some_and(|e| e.direct) {
        return Ok(AlarmChange::Nothing {
            reason: format!("{name} is {state}; CloudWatch sends {id} straight to the topic"),
        });
    }
    let key = format!("{id}:{cluster}/{name}");
    let metric = &d.configuration["metrics"][0]["metricStat"]["metric"];
    let metric_text = match (metric["namespace"].as_str(), metric["name"].as_str()) {
        (Some(ns), Some(m)) => format!("{ns}/{m} {}", metric["dimensions"]),
        _ => "(metric not given)".to_string(),
    };
    let threshold = current
        .reason_data
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .and_then(|r| r["threshold"].as_f64());
    let severity = match (state, entry) {
        ("ALARM", Some(e)) if e.severity == "critical" => Severity::Critical,
        _ => Severity::Warning,
    };
    let summary = match (state, entry) {
        ("OK", _) => return Ok(AlarmChange::Clear { key }),
        ("INSUFFICIENT_DATA", Some(e)) if !e.missing_data_matters => {
            return Ok(AlarmChange::Nothing {
                reason: format!("{name} has insufficient data; missing data does not matter for {id}"),
            });
        }
        ("INSUFFICIENT_DATA", Some(e)) => format!("Alarm {name} has no data: {} Missing data counts here.", e.summary),
        (_, Some(e)) => format!("Alarm {name} fired: {}", e.summary),
        (_, None) => format!("Alarm {name}, which the catalogue does not know, is {state}: {reason}"),
    };
    let mut finding = Finding::new(Category::Alarm, summary);
    finding.severity = severity;
    finding.resource = Some(name.to_string());
    let mut detail = format!("State: {state}\nReason: {reason}\nMetric: {metric_text}\n");
    if let Some(t) = threshold {
        detail.push_str(&format!("Threshold: {t}\n"));
    }
    finding.detail = Some(detail);
    let mut notice = opening(cluster, &finding, now);
    notice.incident.category = id.to_string();
    notice.incident.key = key;
    Ok(AlarmChange::Raise(Box::new(notice)))
}

/// The alarm's data from either shape a state change reaches the function in, as
/// aws_lambda_events types it (a missing or mistyped field is an error naming it;
/// `configuration` and `reasonData` stay JSON: the reasonData is JSON in a string, and the
/// metric is read from the configuration):
/// - an EventBridge "CloudWatch Alarm State Change" event: the data in `detail`;
/// - the payload of an alarm action that invokes the function: `alarmData` at the top level,
///   beside `alarmArn`, with no envelope.
fn alarm_data(event: &Value) -> Result<CloudWatchAlarmData<Value, Value>, String> {
    let malformed = |e: serde_json::Error| format!("malformed alarm event: {e}");
    if event["source"] == "aws.cloudwatch" && event.get("alarmData").is_some() {
        return CloudWatchAlarm::<Value, Value>::deserialize(event)
            .map(|a| a.alarm_data)
            .map_err(malformed);
    }
    if event["source"] != "aws.cloudwatch" || event["detail-type"] != "CloudWatch Alarm State Change" {
        return Err(format!(
            "not a CloudWatch alarm state change (an EventBridge event with detail-type \"CloudWatch Alarm \
             State Change\" and a detail, or an alarm action's payload with alarmData): source {}, detail-type {}",
            event["source"], event["detail-type"]
        ));
    }
    EventBridgeEvent::<CloudWatchAlarmData<Value, Value>>::deserialize(event)
        .map(|e| e.detail)
        .map_err(malformed)
}

/// The alarm's data as JSON, in either shape (see [`alarm_data`]).
fn raw_data(event: &Value) -> &Value {
    event.get("alarmData").unwrap_or(&event["detail"])
}

/// The connector an alarm watches: its metric's `Connector` dimension.
pub fn alarm_connector(event: &Value) -> Option<&str> {
    raw_data(event)["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["Connector"].as_str()
}

/// The alarm's name, in either shape.
pub fn alarm_name(event: &Value) -> Option<&str> {
    raw_data(event)["alarmName"].as_str()
}

/// The monitor's open incident that already paged for `connector` (about it, a cluster incident
/// of one cause naming it, or the worker being unreachable, which leaves every connector without
/// data), which an alarm on the same connector must not page again.
pub fn covering<'a>(connector: &str, open: impl IntoIterator<Item = &'a Incident>) -> Option<&'a Incident> {
    open.into_iter().find(|i| {
        i.covered_by.is_none()
            && Category::CONNECT.iter().any(|c| c.id() == i.category)
            && (i.connector.as_deref() == Some(connector)
                || i.members.iter().any(|m| m == connector)
                || (i.connector.is_none() && i.category == Category::WorkerUnreachable.id()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::alerting::alert::render;

    fn event(file: &str) -> Value {
        let path = format!("{}/../../events/alarm/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
    }

    #[test]
    fn the_catalogue_loads_and_names_the_sink_failure_and_heartbeat_alarms() {
        let ids: Vec<String> = alarm_catalogue().into_iter().map(|e| e.id).collect();
        assert!(
            ids.contains(&"sink-failure".to_string()) && ids.contains(&"monitor-heartbeat".to_string()),
            "{ids:?}"
        );
    }

    #[test]
    fn each_sample_alarm_event_means_what_it_should() {
        let cat = alarm_catalogue();
        let c = "mako-connector-main-connect";
        match classify_alarm_event(&event("sink-failure-alarm.json"), &cat, c, 0).unwrap() {
            AlarmChange::Raise(n) => {
                let m = render(&n, c, "https://x/runbooks", 0);
                assert_eq!(
                    m.subject,
                    format!("[CRITICAL] sink-failure {c}/mako-connector-main-sink-failure")
                );
                assert_eq!(m.category, "sink-failure");
                for part in [
                    "Threshold Crossed",
                    "connector/SinkRecordsFailed",
                    "Threshold: 0",
                    "Runbook: https://x/runbooks/sink-failure.md",
                ] {
                    assert!(m.body.contains(part), "{part}: {}", m.body);
                }
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify_alarm_event(&event("sink-failure-ok.json"), &cat, c, 0).unwrap(),
            AlarmChange::Clear {
                key: format!("sink-failure:{c}/mako-connector-main-sink-failure")
            }
        );
        // The heartbeat's alarm has its own action: an alert from here would be its second.
        match classify_alarm_event(&event("monitor-heartbeat-insufficient-data.json"), &cat, c, 0).unwrap() {
            AlarmChange::Nothing { reason } => assert!(
                reason.contains("CloudWatch sends monitor-heartbeat straight to the topic"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_alarm_event(&event("ecs-cpu-insufficient-data.json"), &cat, c, 0).unwrap(),
            AlarmChange::Nothing { .. }
        ));
        match classify_alarm_event(&event("unknown-alarm.json"), &cat, c, 0).unwrap() {
            AlarmChange::Raise(n) => {
                assert_eq!(n.incident.category, "unknown");
                assert!(
                    n.incident.summary.contains("Threshold Crossed: something unexpected"),
                    "the raw reason"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(classify_alarm_event(&serde_json::json!({"source": "aws.ecs"}), &cat, c, 0).is_err());
    }

    #[test]
    fn an_alarm_whose_action_invokes_the_function_directly_means_what_its_eventbridge_twin_means() {
        let cat = alarm_catalogue();
        let c = "mako-connector-main-connect";
        for (direct, bridged) in [
            (
                "connector-unhealthy-direct-alarm.json",
                "connector-unhealthy-alarm.json",
            ),
            ("connector-unhealthy-direct-ok.json", "connector-unhealthy-ok.json"),
        ] {
            let (direct, bridged) = (event(direct), event(bridged));
            assert_eq!(
                classify_alarm_event(&direct, &cat, c, 0),
                classify_alarm_event(&bridged, &cat, c, 0),
                "{direct}"
            );
            assert_eq!(alarm_connector(&direct), Some("seatool-sink"));
            assert_eq!(alarm_connector(&direct), alarm_connector(&bridged));
            assert_eq!(
                alarm_name(&direct),
                Some("mako-connector-main-seatool-sink-connector-unhealthy")
            );
        }
        let mut nameless = event("connector-unhealthy-direct-alarm.json");
        nameless["alarmData"].as_object_mut().unwrap().remove("alarmName");
        let err = classify_alarm_event(&nameless, &cat, c, 0).unwrap_err();
        assert!(err.contains("alarmName"), "{err}");
        let err = classify_alarm_event(&serde_json::json!({"source": "aws.cloudwatch"}), &cat, c, 0).unwrap_err();
        assert!(
            err.contains("alarmData") && err.contains("detail"),
            "names both shapes: {err}"
        );
    }

    #[test]
    fn a_malformed_alarm_event_is_an_error_naming_the_field() {
        let cat = alarm_catalogue();
        let mut nameless = event("sink-failure-alarm.json");
        nameless["detail"].as_object_mut().unwrap().remove("alarmName");
        let err = classify_alarm_event(&nameless, &cat, "c", 0).unwrap_err();
        assert!(
            err.starts_with("malformed alarm event") && err.contains("alarmName"),
            "{err}"
        );
        let mut odd = event("sink-failure-alarm.json");
        odd["detail"]["state"]["value"] = serde_json::json!("MAYBE");
        let err = classify_alarm_event(&odd, &cat, "c", 0).unwrap_err();
        assert!(err.contains("MAYBE"), "{err}");
    }
}
