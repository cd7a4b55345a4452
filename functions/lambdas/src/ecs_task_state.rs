//! `ecsTaskState`: ECS "Task State Change" events of the Connect cluster become the same alerts
//! as the monitor's (same store, same format, same topic): one per service and stop category, so
//! a crash loop is one incident; a task RUNNING again starts its recovery, and `testConnectors`
//! resolves it once the service has run stable.

use connector_core::error_chain;
use connector_core::metrics::{Unit, emf_line};
use connector_core::monitor::alerting::alert::{Incident, Notice, NoticeKind, opening, render};
use connector_core::monitor::events::ecs::{EcsEvent, classify_ecs_event, recovers, stopped_again};
use connector_core::monitor::judge::finding::Category;
use connector_core::monitor::lifecycle::{Raised, raise};
use connector_core::monitor::ports::{AlertPublisher, MonitorStore, ResolvedIncident};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

use crate::config::{ConfigError, Env};

/// `ecsTaskState`'s (and `alarmState`'s) configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsConfig {
    /// `CLUSTER`: the Connect cluster (name or ARN); events of other clusters are ignored.
    pub cluster: String,
    /// `MONITOR_STATE_TABLE`.
    pub state_table: String,
    /// `ALERT_TOPIC_ARN`.
    pub alert_topic_arn: String,
    /// `WARNING_TOPIC_ARN`: warning and info alerts, when set.
    pub warning_topic_arn: Option<String>,
    /// `RUNBOOK_BASE_URL`.
    pub runbook_base_url: String,
    /// `METRICS_NAMESPACE` (connector).
    pub metrics_namespace: String,
}

impl EcsConfig {
    /// Reads the configuration through `lookup`, naming every missing variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let config = Self::read(&mut env);
        env.finish()?;
        Ok(config)
    }

    /// The settings of a function that keeps incidents and alerts (these, `alarmState`,
    /// `verifySinks`), read from `env`; its `finish` reports what is missing or bad.
    pub fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self {
            cluster: env.required("CLUSTER", "the ECS cluster of the Kafka Connect workers"),
            state_table: env.required("MONITOR_STATE_TABLE", "the DynamoDB table of the monitor's state"),
            alert_topic_arn: env.required("ALERT_TOPIC_ARN", "the SNS topic for alerts"),
            warning_topic_arn: env.optional("WARNING_TOPIC_ARN"),
            runbook_base_url: env.url("RUNBOOK_BASE_URL", "where the runbook pages are served"),
            metrics_namespace: env.parsed("METRICS_NAMESPACE", "connector".to_string(), "a namespace", |_| true),
        }
    }
}

/// The store or the topic failed: EventBridge retries the event, and the incident claim makes
/// the retry harmless.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EcsFailure(String);

impl EcsFailure {
    /// A failure with this message.
    pub fn new(message: String) -> Self {
        EcsFailure(message)
    }
}

impl From<EcsFailure> for Diagnostic {
    fn from(f: EcsFailure) -> Self {
        Diagnostic {
            error_type: "AlertNotSent".into(),
            error_message: f.0,
        }
    }
}

/// One event. Events of other clusters and malformed events are answered `{"ignored": why}`
/// (logged), never an error that would make EventBridge retry them forever.
pub async fn handle<S: MonitorStore, P: AlertPublisher>(
    config: &EcsConfig,
    store: &S,
    alerts: &P,
    event: &Value,
    now: i64,
) -> Result<Value, EcsFailure> {
    let fail = |e: &(dyn std::error::Error + 'static)| EcsFailure(error_chain(e));
    match classify_ecs_event(event, &config.cluster) {
        Err(ignored) => {
            tracing::info!(reason = %ignored, "ignored event");
            Ok(json!({"ignored": ignored.to_string()}))
        }
        Ok(EcsEvent::Other { status }) => Ok(json!({"status": status, "alerted": false})),
        Ok(EcsEvent::Stopped {
            cluster,
            group,
            task,
            finding,
            stopping,
        }) => {
            // The Spot notice is counted when its stop comes.
            if !stopping {
                println!(
                    "{}",
                    stopped_metric(&config.metrics_namespace, &cluster, finding.category.id(), now)
                );
            }
            let mut answer = json!({"category": finding.category.id(), "severity": finding.severity.as_str(),
                                    "group": group, "incident": finding.incident_key(&cluster), "alerted": false});
            if finding.is_alertable() {
                let mut notice = opening(&cluster, &finding, now);
                notice.incident.stops = 1;
                // EventBridge can deliver an event twice and sends several per task, and a crash
                // loop stops task after task: the claim lets only the first one alert (or, when
                // the invocation that claimed it was cut before it sent, one a while after);
                // the others are counted on the open incident.
                let raised = raise(store, alerts, &cluster, &config.runbook_base_url, &notice, now)
                    .await
                    .map_err(|e| fail(&e))?;
                if raised == Raised::Opened {
                    answer["alerted"] = json!(true);
                } else {
                    let stored = store.load(&cluster).await.map_err(|e| fail(&e))?;
                    if let Some(open) = stored.incidents.get(&notice.incident.key)
                        && let Some(next) = stopped_again(&open.value, &finding, &task)
                    {
                        // Losing this race to another stop's count only undercounts.
                        store
                            .update_incident(&cluster, &next, open.version)
                            .await
                            .map_err(|e| fail(&e))?;
                        answer["stops"] = json!(next.stops);
                    }
                }
            }
            tracing::info!(answer = %answer, "ECS task stopped");
            Ok(answer)
        }
        Ok(EcsEvent::Running { cluster, group, task }) => {
            let stored = store.load(&cluster).await.map_err(|e| fail(&e))?;
            let mut resolved = Vec::new();
            let mut recovering = Vec::new();
            for (key, incident) in &stored.incidents {
                if !Category::is_ecs_stop(&incident.value.category) {
                    continue;
                }
                // The service's own stops resolve once it has run stable (testConnectors' run
                // sends that notice); one replacement reaching RUNNING proves nothing yet.
                let per_task = incident
                    .value
                    .resource
                    .as_deref()
                    .is_some_and(|r| r.starts_with("task/"));
                if !per_task {
                    // Only this service's stops: another service's task proves nothing here.
                    if recovers(&incident.value, &group) && incident.value.recovering_since.is_none() {
                        let next = Incident {
                            recovering_since: Some(now),
                            ..incident.value.clone()
                        };
                        if store
                            .update_incident(&cluster, &next, incident.version)
                            .await
                            .map_err(|e| fail(&e))?
                        {
                            recovering.push(key.clone());
                        }
                    }
                    continue;
                }
                // An incident opened per task (before stops were kept per service) resolves as it did.
                if store
                    .close_incident(&cluster, key, incident.version)
                    .await
                    .map_err(|e| fail(&e))?
                {
                    let notice = Notice {
                        kind: NoticeKind::Resolved,
                        incident: incident.value.clone(),
                        finding: None,
                    };
                    let message = render(&notice, &cluster, &config.runbook_base_url, now);
                    if let Err(e) = alerts.publish(&message).await {
                        let _ = store.open_incident(&cluster, &incident.value).await;
                        return Err(fail(&e));
                    }
                    let record = ResolvedIncident {
                        incident: incident.value.clone(),
                        resolved_at: now,
                    };
                    let _ = store.record_resolved(&cluster, &record).await;
                    resolved.push(key.clone());
                }
            }
            tracing::info!(
                task,
                group,
                resolved = resolved.len(),
                recovering = recovering.len(),
                "ECS task running"
            );
            Ok(json!({"status": "RUNNING", "task": task, "resolved": resolved, "recovering": recovering}))
        }
    }
}

/// The `EcsTaskStopped` EMF line (dimensions `Cluster`, `Category`).
pub fn stopped_metric(namespace: &str, cluster: &str, category: &str, now: i64) -> String {
    emf_line(
        namespace,
        &[("Cluster", cluster), ("Category", category)],
        &[("EcsTaskStopped", Unit::Count, 1.0)],
        now,
    )
}

/// What both event handlers run on: their configuration, the monitor-state store and the alert
/// publisher, built once per cold start.
pub async fn setup() -> Result<
    (
        EcsConfig,
        connector_adapters::monitor_state::DynamoDbMonitorStore,
        connector_adapters::sns::SnsAlertPublisher,
    ),
    lambda_runtime::Error,
> {
    crate::logging::init();
    let config = EcsConfig::from_lookup(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = connector_adapters::aws::load_sdk_config(std::time::Duration::from_secs(10), 3).await;
    let (store, alerts) = alerting_ports(&config, &sdk);
    Ok((config, store, alerts))
}

/// The incident store and the alerts topic `config` names.
pub fn alerting_ports(
    config: &EcsConfig,
    sdk: &aws_config::SdkConfig,
) -> (
    connector_adapters::monitor_state::DynamoDbMonitorStore,
    connector_adapters::sns::SnsAlertPublisher,
) {
    use connector_adapters::monitor_state::DynamoDbMonitorStore;
    use connector_adapters::sns::SnsAlertPublisher;

    let store = DynamoDbMonitorStore::new(connector_adapters::monitor_state::Client::new(sdk), &config.state_table);
    let alerts = SnsAlertPublisher::new(connector_adapters::sns::Client::new(sdk), &config.alert_topic_arn)
        .warnings_to(config.warning_topic_arn.clone());
    (store, alerts)
}

/// `ecsTaskState`'s `main`.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    use lambda_runtime::{LambdaEvent, service_fn};

    let (config, store, alerts) = setup().await?;
    let (config, store, alerts) = (&config, &store, &alerts);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(config, store, alerts, &event.payload, crate::now_millis())
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_metric_has_the_contract_dimensions() {
        let line: Value = serde_json::from_str(&stopped_metric("connector", "c", "oom-killed", 7)).unwrap();
        assert_eq!(
            (line["Cluster"].as_str(), line["Category"].as_str()),
            (Some("c"), Some("oom-killed"))
        );
        assert_eq!(line["EcsTaskStopped"], 1.0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Cluster", "Category"]])
        );
    }
}
