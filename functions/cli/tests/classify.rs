//! Every file in `events/` through `connectorctl classify`: its kind and its categories.

use std::process::Command;

fn classify(path: &str) -> (i32, serde_json::Value, String) {
    let full = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_connectorctl"))
        .args(["classify", &full])
        .output()
        .expect("run connectorctl");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_event_file_classifies_to_its_kind_and_categories() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("ecs/task-stopped-oom-killed.json", "ecs-task-state", &["oom-killed"]),
        (
            "ecs/task-stopped-image-pull-failed.json",
            "ecs-task-state",
            &["image-pull-failed"],
        ),
        (
            "ecs/task-stopped-resource-init-failed.json",
            "ecs-task-state",
            &["resource-init-failed"],
        ),
        (
            "ecs/task-stopped-health-check-failed.json",
            "ecs-task-state",
            &["health-check-failed"],
        ),
        (
            "ecs/task-stopped-container-exited.json",
            "ecs-task-state",
            &["container-exited"],
        ),
        (
            "ecs/task-stopped-spot-interruption.json",
            "ecs-task-state",
            &["platform-interruption"],
        ),
        (
            "ecs/task-stopped-maintenance.json",
            "ecs-task-state",
            &["platform-interruption"],
        ),
        (
            "ecs/task-stopped-deployment-replaced.json",
            "ecs-task-state",
            &["deployment-replaced"],
        ),
        (
            "ecs/task-stopped-user-stopped.json",
            "ecs-task-state",
            &["user-stopped"],
        ),
        ("ecs/task-stopped-unknown.json", "ecs-task-state", &["unknown-stop"]),
        ("ecs/task-stopped-other-cluster.json", "ecs-task-state", &["oom-killed"]),
        ("ecs/task-running.json", "ecs-task-state", &["task-running"]),
        ("alarm/sink-failure-alarm.json", "alarm-state", &["sink-failure"]),
        ("alarm/sink-failure-ok.json", "alarm-state", &["sink-failure"]),
        (
            "alarm/monitor-heartbeat-insufficient-data.json",
            "alarm-state",
            &["alarm"],
        ),
        ("alarm/ecs-cpu-insufficient-data.json", "alarm-state", &["alarm"]),
        ("alarm/unknown-alarm.json", "alarm-state", &["unknown"]),
        (
            "alarm/connector-unhealthy-direct-alarm.json",
            "alarm-state",
            &["connector-unhealthy"],
        ),
        (
            "alarm/connector-unhealthy-direct-ok.json",
            "alarm-state",
            &["connector-unhealthy"],
        ),
        ("schedule/scheduled-event.json", "schedule", &[]),
        ("connect/expand-healthy.json", "connect-status", &[]),
        (
            "connect/expand-tasks-failed.json",
            "connect-status",
            &["task-failed", "task-failed"],
        ),
        (
            "connect/expand-paused-drifted-one-missing.json",
            "connect-status",
            &["connector-paused"],
        ),
        (
            "connect/expand-unassigned-restarting.json",
            "connect-status",
            &["worker-rebalancing"],
        ),
        (
            "connect/status-connector-failed.json",
            "connect-status",
            &["connector-failed"],
        ),
        ("sink/confluent-seatool-batch.json", "sink-batch", &[]),
        ("sink/confluent-seatool-replay.json", "sink-batch", &[]),
        ("sink/confluent-seatool-tombstone.json", "sink-batch", &[]),
        ("sink/confluent-seatool-object-value.json", "sink-batch", &[]),
        (
            "sink/confluent-seatool-poison.json",
            "sink-batch",
            &["sink-failure", "sink-failure", "sink-failure"],
        ),
        ("sink/confluent-appian-batch.json", "sink-batch", &["sink-failure"]),
        ("sink/nordstrom-seatool-record.json", "sink-batch", &[]),
        ("sink/nordstrom-seatool-batch.json", "sink-batch", &[]),
        ("sink/esm-msk-appian.json", "sink-batch", &[]),
        ("sink/esm-selfmanaged-seatool.json", "sink-batch", &["sink-failure"]),
    ];
    for (file, kind, categories) in cases {
        let (code, out, err) = classify(file);
        assert_eq!(code, 0, "{file}: {err}");
        assert_eq!(out["kind"], *kind, "{file}: {out}");
        let got: Vec<&str> = out["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["category"].as_str().unwrap())
            .collect();
        assert_eq!(&got, categories, "{file}: {out}");
        for f in out["findings"].as_array().unwrap() {
            assert!(
                ["critical", "warning", "info"].contains(&f["severity"].as_str().unwrap()),
                "{f}"
            );
            assert!(
                f["summary"].as_str().is_some_and(|s| !s.is_empty())
                    && f["runbook"].as_str().unwrap().starts_with("runbooks/")
            );
        }
    }
    let failed = classify("connect/expand-tasks-failed.json").1;
    let seatool = failed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["connector"] == "seatool-sink")
        .unwrap();
    assert_eq!(
        (seatool["cause"].as_str(), seatool["task"].as_i64()),
        (Some("serialization"), Some(0))
    );
    let appian = failed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["connector"] == "appian-sink")
        .unwrap();
    assert_eq!(appian["cause"], "lambda-throttled");
}

#[test]
fn files_that_are_covered_here_are_all_the_event_files() {
    // A new file in events/ must be added to the table above (trace text files are inputs of
    // the Connect bodies, control payloads are not events, desired-configs.json is a config,
    // expand-empty.json is `{}`: a cold worker's list, which on its own names no kind).
    let root = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut unknown = Vec::new();
    for dir in ["ecs", "alarm", "schedule", "connect", "sink"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
                let (code, _, _) = classify(&name);
                if code != 0
                    && ![
                        "connect/desired-configs.json",
                        "connect/expand-empty.json",
                        "sink/unsupported-sqs-event.json",
                        "schedule/runbook-cluster.json",
                    ]
                    .contains(&name.as_str())
                {
                    unknown.push(name);
                }
            }
        }
    }
    assert!(unknown.is_empty(), "event files classify cannot read: {unknown:?}");
}

#[test]
fn unreadable_or_unrecognised_input_exits_2_with_one_line() {
    for file in [
        "sink/unsupported-sqs-event.json",
        "does/not/exist.json",
        "connect/traces/data-exception.txt",
    ] {
        let (code, out, err) = classify(file);
        assert_eq!(code, 2, "{file}: {out}");
        assert_eq!(err.trim().lines().count(), 1, "{file}: {err}");
        assert!(err.starts_with("connectorctl: "), "{err}");
    }
}
