//! ECS "Task State Change" events of the Connect cluster: why a task stopped, and whether a task
//! of the same service runs again. Pure: the event in, a classification out.

use serde_json::Value;

use crate::monitor::alerting::alert::{Incident, Notice, NoticeKind};
use crate::monitor::judge::finding::{Category, Finding};
use crate::monitor::time::iso8601;

/// How long a replacement task must run without another stop before a stop incident resolves:
/// a crash loop (stop, replacement RUNNING, stop again) stays one incident.
pub const ECS_STABLE_MS: i64 = 10 * 60_000;

/// The task ids a stop incident keeps (the count of stops goes on past it).
const KEPT_TASKS: usize = 50;

/// What an ECS task state change means for the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcsEvent {
    /// A task stopped; the finding carries the category and the reason.
    Stopped {
        /// The cluster name.
        cluster: String,
        /// The service group (`service:kafka-connect`) or the task's group.
        group: String,
        /// The stopped task's id.
        task: String,
        /// The finding (resource: the service group, so that the service's stops of one
        /// cause are one incident); boxed, it is much larger than the other variants.
        finding: Box<Finding>,
        /// It has not stopped yet: the Spot two-minute notice (still RUNNING, desired STOPPED,
        /// a stop code), the same incident as the stop that follows it.
        stopping: bool,
    },
    /// A task reached RUNNING: the service is back.
    Running {
        /// The cluster name.
        cluster: String,
        /// The service group.
        group: String,
        /// The task id.
        task: String,
    },
    /// Another state (PROVISIONING, PENDING, DEPROVISIONING...): nothing to do.
    Other {
        /// The lastStatus.
        status: String,
    },
}

/// Why an event is ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoredEvent {
    /// Not an ECS task state change.
    #[error("not an ECS Task State Change event: {0}")]
    NotEcs(String),
    /// For another cluster than the one this function watches.
    #[error("event for cluster {found}, this function watches {watched}")]
    OtherCluster {
        /// The event's cluster.
        found: String,
        /// The configured one.
        watched: String,
    },
    /// A field is missing or mistyped.
    #[error("malformed ECS event: {0}")]
    Malformed(String),
}

/// Reads an ECS task state change for `watched_cluster` (name or ARN).
pub fn classify_ecs_event(event: &Value, watched_cluster: &str) -> Result<EcsEvent, IgnoredEvent> {
    if event["source"] != "aws.ecs" || event["detail-type"] != "ECS Task State Change" {
        return Err(IgnoredEvent::NotEcs(format!(
            "source {}, detail-type {}",
            event["source"], event["detail-type"]
        )));
    }
    let d = &event["detail"];
    let text = |field: &str| d[field].as_str().map(String::from);
    let cluster_arn =
        text("clusterArn").ok_or_else(|| IgnoredEvent::Malformed("detail.clusterArn is missing".into()))?;
    let cluster = cluster_arn.rsplit('/').next().unwrap_or(&cluster_arn).to_string();
    let watched = watched_cluster.rsplit('/').next().unwrap_or(watched_cluster);
    if cluster != watched {
        return Err(IgnoredEvent::OtherCluster {
            found: cluster,
            watched: watched.to_string(),
        });
    }
    let task_arn = text("taskArn").ok_or_else(|| IgnoredEvent::Malformed("detail.taskArn is missing".into()))?;
    let task = task_arn.rsplit('/').next().unwrap_or(&task_arn).to_string();
    let group = text("group").unwrap_or_else(|| "unknown-group".into());
    let status = text("lastStatus").ok_or_else(|| IgnoredEvent::Malformed("detail.lastStatus is missing".into()))?;
    let stop_code = text("stopCode").unwrap_or_default();
    // A task told to stop is no recovery while it still runs: the Spot notice comes two minutes
    // before its stop, a deployment drains the old task.
    let stopping = status == "RUNNING" && text("desiredStatus").as_deref() == Some("STOPPED");
    match status.as_str() {
        "RUNNING" if stopping && matches!(stop_code.as_str(), "SpotInterruption" | "TerminationNotice") => {}
        "RUNNING" if stopping => {
            return Ok(EcsEvent::Other {
                status: "RUNNING, stopping".into(),
            });
        }
        "RUNNING" => return Ok(EcsEvent::Running { cluster, group, task }),
        "STOPPED" => {}
        _ => return Ok(EcsEvent::Other { status }),
    }
    let reason = text("stoppedReason").unwrap_or_default();
    let containers: Vec<(String, Option<i64>, String)> = d["containers"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| {
                    let name = c["name"].as_str().unwrap_or("container").to_string();
                    (
                        name,
                        c["exitCode"].as_i64(),
                        c["reason"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let finding = stop_finding((&cluster, &group, &task), stopping, &stop_code, &reason, &containers);
    Ok(EcsEvent::Stopped {
        cluster,
        group,
        task,
        finding: Box::new(finding),
        stopping,
    })
}

/// The finding of a task of `group` in `cluster` that stopped, or is `stopping` (the Spot
/// notice), with its stop code, reason and containers (name, exit code, reason).
fn stop_finding(
    (cluster, group, task): (&str, &str, &str),
    stopping: bool,
    stop_code: &str,
    reason: &str,
    containers: &[(String, Option<i64>, String)],
) -> Finding {
    let category = stop_category(stop_code, reason, containers);
    // Exit 0: the worker shut down cleanly though nothing asked it to; ECS replaces it, and
    // nothing of a crash is to be read in its logs.
    let clean_exit = category == Category::ContainerExited
        && !containers.is_empty()
        && containers.iter().all(|(_, code, _)| *code == Some(0));
    let exits: Vec<String> = containers
        .iter()
        .map(|(n, code, why)| {
            let code = code.map_or("no exit code".to_string(), |c| format!("exit {c}"));
            if why.is_empty() {
                format!("{n}: {code}")
            } else {
                format!("{n}: {code}, {why}")
            }
        })
        .collect();
    let sentence = if stopping {
        "AWS reclaims its Fargate Spot capacity: it stops within two minutes"
    } else if clean_exit {
        "the Kafka Connect container exited with code 0, a clean shutdown nothing asked for"
    } else {
        category_sentence(category)
    };
    let mut finding = Finding::new(
        category,
        format!(
            "Kafka Connect task {task} of {group} in {cluster} {}: {sentence}",
            if stopping { "is interrupted" } else { "stopped" }
        ),
    );
    if clean_exit {
        finding.severity = crate::monitor::judge::finding::Severity::Warning;
    }
    finding.resource = Some(group.to_string());
    finding.members = vec![task.to_string()];
    let mut detail = format!(
        "stopCode: {}\nstoppedReason: {reason}\n",
        if stop_code.is_empty() { "(none)" } else { stop_code }
    );
    for e in &exits {
        detail.push_str(&format!("container {e}\n"));
    }
    finding.detail = Some(detail);
    finding.action = Some(match category {
        Category::DeploymentReplaced | Category::UserStopped => "none: an expected stop".into(),
        _ => "the service starts a replacement task; watch that it reaches RUNNING".into(),
    });
    finding
}

/// Whether a task of `group` reaching RUNNING starts the recovery of `incident`: a stop
/// incident of that service (another service's replacement proves nothing about this one).
pub fn recovers(incident: &Incident, group: &str) -> bool {
    Category::is_ecs_stop(&incident.category) && incident.resource.as_deref() == Some(group)
}

/// The open stop incident after another task of the service stopped the same way (`finding`,
/// for `task`): counted, no longer recovering. `None` for a stop it has counted already
/// (EventBridge delivers some events twice).
pub fn stopped_again(incident: &Incident, finding: &Finding, task: &str) -> Option<Incident> {
    if incident.members.iter().any(|t| t == task) {
        return None;
    }
    let mut next = incident.clone();
    next.members.push(task.to_string());
    if next.members.len() > KEPT_TASKS {
        next.members.remove(0);
    }
    next.recovering_since = None;
    next.stops = incident.stops.max(1) + 1;
    let stops = next.stops;
    let group = finding.resource.as_deref().unwrap_or("the service");
    next.summary = format!(
        "Kafka Connect tasks of {group} keep stopping: {} ({stops} times since {}; the last, task {task})",
        category_sentence(finding.category),
        iso8601(incident.opened_at)
    );
    Some(next)
}

/// The resolved notices of the stop incidents whose service has run stable since a task reached
/// RUNNING again, as of `now`.
pub fn recovered<'a>(open: impl IntoIterator<Item = &'a Incident>, now: i64) -> Vec<Notice> {
    open.into_iter()
        .filter(|i| Category::is_ecs_stop(&i.category))
        .filter(|i| i.recovering_since.is_some_and(|since| now - since >= ECS_STABLE_MS))
        .map(|i| Notice {
            kind: NoticeKind::Resolved,
            incident: i.clone(),
            finding: None,
        })
        .collect()
}

/// The stop category, from the most specific evidence to the least.
pub fn stop_category(stop_code: &str, reason: &str, containers: &[(String, Option<i64>, String)]) -> Category {
    let any = |needle: &str| reason.contains(needle) || containers.iter().any(|(_, _, why)| why.contains(needle));
    if any("OutOfMemory") || any("OutOfMemoryError") {
        Category::OomKilled
    } else if any("CannotPullContainerError") || any("CannotPullImageManifestError") {
        Category::ImagePullFailed
    } else if any("ResourceInitializationError") {
        Category::ResourceInitFailed
    } else if reason.contains("failed container health checks") || reason.contains("failed ELB health checks") {
        Category::HealthCheckFailed
    } else if matches!(
        stop_code,
        "SpotInterruption" | "TerminationNotice" | "InfrastructureHealth"
    ) || reason.contains("maintenance")
        || reason.contains("retirement")
        || reason.contains("Spot")
    {
        Category::PlatformInterruption
    } else if stop_code == "ServiceSchedulerInitiated" {
        Category::DeploymentReplaced
    } else if stop_code == "UserInitiated" {
        Category::UserStopped
    } else if stop_code == "EssentialContainerExited" {
        Category::ContainerExited
    } else {
        Category::UnknownStop
    }
}

fn category_sentence(category: Category) -> &'static str {
    match category {
        Category::OomKilled => "the container ran out of memory",
        Category::ImagePullFailed => "the container image could not be pulled",
        Category::ResourceInitFailed => "its secrets, logs or network could not be set up",
        Category::HealthCheckFailed => "the container failed its health checks",
        Category::ContainerExited => "the Kafka Connect container exited",
        Category::PlatformInterruption => "AWS interrupted it (Spot, maintenance or retirement)",
        Category::DeploymentReplaced => "the service replaced it (deployment or scale-in)",
        Category::UserStopped => "someone stopped it",
        _ => "for a reason no rule explains",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::judge::finding::Severity;

    fn event(file: &str) -> Value {
        let path = format!("{}/../../events/ecs/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
    }

    const CLUSTER: &str = "mako-connector-main-connect";

    #[test]
    fn another_task_stopping_the_same_way_is_counted_once_and_stops_the_recovery() {
        let EcsEvent::Stopped { finding, task, .. } =
            classify_ecs_event(&event("task-stopped-oom-killed.json"), CLUSTER).unwrap()
        else {
            panic!("a stop")
        };
        let mut open = crate::monitor::alerting::alert::opening(CLUSTER, &finding, 1_000).incident;
        open.stops = 1;
        open.recovering_since = Some(2_000);
        assert_eq!(
            stopped_again(&open, &finding, &task),
            None,
            "the same task twice counts once"
        );
        let next = stopped_again(&open, &finding, "other-task").unwrap();
        assert_eq!((next.stops, next.recovering_since), (2, None));
        assert!(
            next.summary
                .contains("(2 times since 1970-01-01T00:00:01Z; the last, task other-task)"),
            "{}",
            next.summary
        );
        assert!(recovered([&next], i64::MAX).is_empty(), "not recovering");
        assert!(
            recovered([&open], 2_000 + ECS_STABLE_MS - 1).is_empty(),
            "not stable long enough"
        );
        assert_eq!(recovered([&open], 2_000 + ECS_STABLE_MS).len(), 1);
    }

    #[test]
    fn each_stop_sample_has_its_category() {
        let cases = [
            ("task-stopped-oom-killed.json", "oom-killed", Severity::Critical),
            (
                "task-stopped-image-pull-failed.json",
                "image-pull-failed",
                Severity::Critical,
            ),
            (
                "task-stopped-resource-init-failed.json",
                "resource-init-failed",
                Severity::Critical,
            ),
            (
                "task-stopped-health-check-failed.json",
                "health-check-failed",
                Severity::Critical,
            ),
            (
                "task-stopped-container-exited.json",
                "container-exited",
                Severity::Critical,
            ),
            (
                "task-stopped-spot-interruption.json",
                "platform-interruption",
                Severity::Warning,
            ),
            (
                "task-stopped-maintenance.json",
                "platform-interruption",
                Severity::Warning,
            ),
            (
                "task-stopped-deployment-replaced.json",
                "deployment-replaced",
                Severity::Info,
            ),
            ("task-stopped-user-stopped.json", "user-stopped", Severity::Info),
            ("task-stopped-unknown.json", "unknown-stop", Severity::Warning),
        ];
        for (file, category, severity) in cases {
            match classify_ecs_event(&event(file), CLUSTER).unwrap() {
                EcsEvent::Stopped {
                    finding,
                    cluster,
                    group,
                    task,
                    stopping,
                } => {
                    assert!(!stopping, "{file}");
                    assert_eq!(
                        (finding.category.id(), finding.severity),
                        (category, severity),
                        "{file}"
                    );
                    assert_eq!((cluster.as_str(), group.as_str()), (CLUSTER, "service:kafka-connect"));
                    assert_eq!(task, "7c1a3f0e5b2d4c8e9f00112233445566");
                    assert_eq!(
                        finding.resource.as_deref(),
                        Some("service:kafka-connect"),
                        "one incident per service"
                    );
                }
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_spot_notice_is_the_interruption_not_a_task_running_and_its_stop_the_same_incident() {
        let EcsEvent::Stopped {
            finding: notice,
            task,
            stopping,
            ..
        } = classify_ecs_event(&event("task-running-spot-interruption-notice.json"), CLUSTER).unwrap()
        else {
            panic!("the notice is an interruption")
        };
        assert!(stopping);
        assert_eq!(
            (notice.category.id(), notice.severity),
            ("platform-interruption", Severity::Warning)
        );
        assert!(notice.summary.contains("within two minutes"), "{}", notice.summary);
        let EcsEvent::Stopped { finding: stop, .. } =
            classify_ecs_event(&event("task-stopped-spot-interruption.json"), CLUSTER).unwrap()
        else {
            panic!("a stop")
        };
        assert_eq!(notice.incident_key(CLUSTER), stop.incident_key(CLUSTER));
        let open = crate::monitor::alerting::alert::opening(CLUSTER, &notice, 1_000).incident;
        assert_eq!(stopped_again(&open, &stop, &task), None, "its stop is not another stop");
        // Told to stop otherwise (a deployment draining it): not a recovery, nothing to report.
        let mut draining = event("task-running.json");
        draining["detail"]["desiredStatus"] = "STOPPED".into();
        assert_eq!(
            classify_ecs_event(&draining, CLUSTER).unwrap(),
            EcsEvent::Other {
                status: "RUNNING, stopping".into()
            }
        );
    }

    #[test]
    fn a_container_that_exits_0_is_a_clean_exit_nothing_asked_for_a_warning() {
        let EcsEvent::Stopped { finding, .. } =
            classify_ecs_event(&event("task-stopped-container-exited-zero.json"), CLUSTER).unwrap()
        else {
            panic!("a stop")
        };
        assert_eq!(
            (finding.category.id(), finding.severity),
            ("container-exited", Severity::Warning)
        );
        assert!(finding.summary.contains("exited with code 0"), "{}", finding.summary);
        assert!(finding.detail.unwrap().contains("kafka-connect: exit 0"));
    }

    #[test]
    fn a_task_of_another_service_running_recovers_nothing_of_this_one() {
        let EcsEvent::Stopped { finding, .. } =
            classify_ecs_event(&event("task-stopped-oom-killed.json"), CLUSTER).unwrap()
        else {
            panic!("a stop")
        };
        let open = crate::monitor::alerting::alert::opening(CLUSTER, &finding, 1_000).incident;
        for (file, recovers_it) in [("task-running.json", true), ("task-running-other-service.json", false)] {
            let EcsEvent::Running { group, .. } = classify_ecs_event(&event(file), CLUSTER).unwrap() else {
                panic!("{file}: running")
            };
            assert_eq!(recovers(&open, &group), recovers_it, "{file}");
        }
    }

    #[test]
    fn running_other_clusters_and_malformed_events() {
        assert!(matches!(
            classify_ecs_event(&event("task-running.json"), CLUSTER).unwrap(),
            EcsEvent::Running { .. }
        ));
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}");
        assert!(
            classify_ecs_event(&event("task-running.json"), &arn).is_ok(),
            "an ARN works too"
        );
        assert_eq!(
            classify_ecs_event(&event("task-stopped-oom-killed.json"), "other")
                .unwrap_err()
                .to_string(),
            format!("event for cluster {CLUSTER}, this function watches other")
        );
        assert!(matches!(
            classify_ecs_event(&event("task-stopped-other-cluster.json"), CLUSTER),
            Err(IgnoredEvent::OtherCluster { .. })
        ));
        assert!(matches!(
            classify_ecs_event(&serde_json::json!({"source": "aws.s3"}), CLUSTER),
            Err(IgnoredEvent::NotEcs(_))
        ));
        let mut no_arn = event("task-running.json");
        no_arn["detail"].as_object_mut().unwrap().remove("clusterArn");
        assert_eq!(
            classify_ecs_event(&no_arn, CLUSTER).unwrap_err().to_string(),
            "malformed ECS event: detail.clusterArn is missing"
        );
    }
}
