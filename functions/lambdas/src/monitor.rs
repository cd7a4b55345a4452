//! `testConnectors`: every minute, read every connector and task, heal what a restart can fix,
//! recreate what vanished, alert once per incident, and return a report. The use case is
//! [`connector_core::monitor::run::Monitor`]; this is its configuration, adapters and handler.

use std::time::Duration;

pub use connector_adapters::deployed::{DeployedFleet, DeployedMonitor, deployed_fleet, deployed_monitor};
use connector_adapters::fleet::FleetRun;
pub use connector_core::monitor::config::MonitorConfig;
use connector_core::monitor::run::{MonitorFailure, RunReport};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

/// One invocation: the run of each configured cluster (at once when there are several), each cut
/// a second short of the function's own deadline (`time_left`) so that a run that cannot finish
/// still fails with a typed error, never before its own budget (a runtime that reports no
/// deadline); their metric lines and audit entries are printed. With several clusters, one that
/// fails fails the invocation only after the others have run.
pub async fn handle(fleet: &DeployedFleet, event: &Value, time_left: Duration) -> Result<Value, Diagnostic> {
    let budget = fleet
        .members()
        .iter()
        .map(|m| m.config().run_budget)
        .max()
        .unwrap_or_default();
    let cut = time_left.saturating_sub(Duration::from_secs(1)).max(budget);
    let run = fleet.run(event, cut).await;
    let report = run.report();
    match run {
        FleetRun::One(out) => {
            let out = out.map_err(diagnostic)?;
            print_run(&out);
            if let Some(failure) = unfinished(&out) {
                return Err(diagnostic(failure));
            }
        }
        FleetRun::Many(runs) => {
            let mut failures = Vec::new();
            for (cluster, out) in runs {
                match out {
                    Ok(out) => {
                        print_run(&out);
                        if let Some(failure) = unfinished(&out) {
                            failures.push((cluster, failure));
                        }
                    }
                    Err(e) => {
                        for line in e.metrics() {
                            println!("{line}");
                        }
                        failures.push((cluster, e));
                    }
                }
            }
            if let Some((_, first)) = failures.first() {
                let error_type = first.error_type().to_string();
                let message: Vec<String> = failures.iter().map(|(c, e)| format!("cluster {c}: {e}")).collect();
                tracing::error!(error = %message.join("; "), "testConnectors failed");
                return Err(Diagnostic {
                    error_type,
                    error_message: message.join("; "),
                });
            }
        }
    }
    Ok(report.unwrap_or_default())
}

/// A run's metric lines, its audit trail and its config problems, to the log.
fn print_run(out: &RunReport) {
    for line in &out.metrics {
        println!("{line}");
    }
    // The audit trail, one structured line per automated action or decision to stand back.
    for e in &out.audit {
        tracing::info!(
            audit = e.kind.as_str(),
            cluster = %e.cluster,
            connector = %e.connector,
            by = %e.by,
            why = %e.why,
            cause = e.cause.as_deref(),
            fingerprint = e.fingerprint.as_deref(),
            attempt = e.attempt,
            budget = e.budget,
            next_not_before = e.next_not_before.map(connector_core::monitor::time::iso8601),
            outcome = %e.outcome,
            "automated action"
        );
    }
    for problem in out.report["configProblems"].as_array().into_iter().flatten() {
        tracing::error!(problem = %problem, "a connector config secret cannot be used");
    }
    tracing::info!(cluster = %out.report["cluster"], healthy = %out.report["healthy"], "testConnectors run");
}

fn diagnostic(failure: MonitorFailure) -> Diagnostic {
    // A failed run may still owe metric lines (the state table's unavailability, which alarms).
    for line in failure.metrics() {
        println!("{line}");
    }
    tracing::error!(error = %failure, "testConnectors failed");
    Diagnostic {
        error_type: failure.error_type().into(),
        error_message: failure.to_string(),
    }
}

/// What a run that went through left undone: alerts not sent, the desired configs not read,
/// state not written.
fn unfinished(out: &RunReport) -> Option<MonitorFailure> {
    if !out.alert_failures.is_empty() {
        return Some(MonitorFailure::Alerts(out.alert_failures.join("; ")));
    }
    if let Some(why) = &out.configs_unread {
        return Some(MonitorFailure::Configs(why.clone()));
    }
    (!out.state_failures.is_empty()).then(|| {
        MonitorFailure::State(connector_core::monitor::run::StateFailure {
            why: out.state_failures.join("; "),
            // Printed with the run's: MonitorStateUnavailable is 1.
            metrics: Vec::new(),
        })
    })
}

/// `testConnectors`' `main`.
pub async fn main() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let configs = MonitorConfig::fleet_from_lookup(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = connector_adapters::aws::load_sdk_config(Duration::from_secs(10), 3).await;
    let fleet = &deployed_fleet(configs, &sdk).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let time_left = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        handle(fleet, &event.payload, time_left).await
    }))
    .await
}

#[cfg(test)]
mod tests {
    use connector_core::connect::control::parse_request;
    use serde_json::Value;

    #[test]
    fn a_scheduled_event_uses_the_configured_cluster_and_the_runbook_payload_overrides_it() {
        let read = |file: &str| -> Value {
            let path = format!("{}/../../events/schedule/{file}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        assert_eq!(parse_request(&read("scheduled-event.json")).unwrap().cluster, None);
        assert_eq!(
            parse_request(&read("runbook-cluster.json")).unwrap().cluster.as_deref(),
            Some("mako-connector-main-connect")
        );
    }
}
