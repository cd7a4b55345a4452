//! `ecsTaskState` through the real DynamoDB state store and SNS publisher on moto, alerts read
//! back from an SQS queue subscribed to the topic.

use connector_adapters::monitor_state::DynamoDbMonitorStore;
use connector_adapters::sns::SnsAlertPublisher;
use connector_lambdas::ecs_task_state::{EcsConfig, handle};
use connector_tests::{alert_inbox, create_sink_table, event, read_alerts, sdk, unique};
use serde_json::Value;

const CLUSTER: &str = "mako-connector-main-connect";

struct Ecs {
    sdk: aws_config::SdkConfig,
    config: EcsConfig,
    store: DynamoDbMonitorStore,
    alerts: SnsAlertPublisher,
    queue: String,
}

impl Ecs {
    async fn new() -> Self {
        let sdk = sdk().await;
        let table = unique("ecs-state");
        create_sink_table(&sdk, &table).await;
        let (topic, queue) = alert_inbox(&sdk, "ecs-alerts").await;
        let sns = aws_sdk_sns::Client::new(&sdk);
        let (t, tb) = (topic.clone(), table.clone());
        let config = EcsConfig::from_lookup(move |k| match k {
            "CLUSTER" => Some(CLUSTER.into()),
            "MONITOR_STATE_TABLE" => Some(tb.clone()),
            "ALERT_TOPIC_ARN" => Some(t.clone()),
            "RUNBOOK_BASE_URL" => Some("https://runbooks.example/runbooks".into()),
            _ => None,
        })
        .unwrap();
        Ecs {
            store: DynamoDbMonitorStore::new(aws_sdk_dynamodb::Client::new(&sdk), table),
            alerts: SnsAlertPublisher::new(sns, topic),
            config,
            queue,
            sdk,
        }
    }

    async fn send(&self, file: &str, now: i64) -> Value {
        handle(
            &self.config,
            &self.store,
            &self.alerts,
            &event(&format!("ecs/{file}")),
            now,
        )
        .await
        .unwrap()
    }

    /// `alarmState` on the sample `events/alarm/<file>` with this catalogue.
    async fn alarm(
        &self,
        catalogue: &[connector_core::monitor::events::alarm::AlarmEntry],
        file: &str,
        now: i64,
    ) -> Value {
        let e = event(&format!("alarm/{file}"));
        connector_lambdas::alarm_state::handle(&self.config, catalogue, &self.store, &self.alerts, &e, now)
            .await
            .unwrap()
    }

    /// What an invocation cut between its claim and its page leaves: the (one) incident
    /// claimed, its page unsent.
    async fn cut_before_sending(&self) {
        use connector_core::monitor::ports::MonitorStore;
        let stored = self.store.load(CLUSTER).await.unwrap();
        let open = stored.incidents.values().next().expect("claimed");
        let mut incident = open.value.clone();
        incident.unsent = true;
        assert!(
            self.store
                .update_incident(CLUSTER, &incident, open.version)
                .await
                .unwrap()
        );
    }

    /// (subject, state attribute, body) of every alert so far.
    async fn alerts(&self) -> Vec<(String, String, String)> {
        read_alerts(&self.sdk, &self.queue)
            .await
            .into_iter()
            .map(|a| {
                (
                    a.subject,
                    a.attributes.get("state").cloned().unwrap_or_default(),
                    a.body,
                )
            })
            .collect()
    }
}

const T0: i64 = 1_795_500_000_000;

#[tokio::test]
async fn a_duplicated_stop_alerts_once_and_a_running_task_starts_its_recovery() {
    let ecs = Ecs::new().await;
    let first = ecs.send("task-stopped-oom-killed.json", T0).await;
    assert_eq!(
        (first["category"].as_str(), first["alerted"].as_bool()),
        (Some("oom-killed"), Some(true)),
        "{first}"
    );
    let again = ecs.send("task-stopped-oom-killed.json", T0 + 1000).await;
    assert_eq!(again["alerted"], false, "EventBridge delivered it twice: {again}");
    let alerts = ecs.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0].0,
        format!("[CRITICAL] oom-killed {CLUSTER}/service:kafka-connect")
    );
    assert_eq!(alerts[0].1, "open");
    assert!(alerts[0].2.contains("ran out of memory"), "{}", alerts[0].2);
    assert!(
        alerts[0]
            .2
            .contains("container kafka-connect: exit 137, OutOfMemoryError"),
        "{}",
        alerts[0].2
    );
    assert!(
        alerts[0]
            .2
            .contains("Runbook: https://runbooks.example/runbooks/oom-killed.md"),
        "{}",
        alerts[0].2
    );

    assert!(
        alerts[0].2.contains("7c1a3f0e5b2d4c8e9f00112233445566"),
        "names the task: {}",
        alerts[0].2
    );

    // A replacement RUNNING starts the incident's recovery (the monitor's run resolves it once
    // it has run stable: a_crash_loop_is_one_incident_resolved_once_the_service_runs_stable).
    let running = ecs.send("task-running.json", T0 + 300_000).await;
    assert_eq!(running["recovering"].as_array().unwrap().len(), 1, "{running}");
    assert_eq!(running["resolved"].as_array().unwrap().len(), 0, "{running}");
    assert!(ecs.alerts().await.is_empty(), "nothing sent yet");
    let again = ecs.send("task-running.json", T0 + 360_000).await;
    assert_eq!(
        again["recovering"].as_array().unwrap().len(),
        0,
        "recovering since the first: {again}"
    );
}

#[tokio::test]
async fn a_crash_loop_is_one_incident_resolved_once_the_service_runs_stable() {
    use connector_tests::monitor::Monitor;
    let m = Monitor::with_url(&connector_tests::connect_url()).await;
    let (cluster, table, topic) = (
        m.cluster.clone(),
        m.config.state_table.clone(),
        m.config.alert_topic_arn.clone(),
    );
    let config = EcsConfig::from_lookup(move |k| match k {
        "CLUSTER" => Some(cluster.clone()),
        "MONITOR_STATE_TABLE" => Some(table.clone()),
        "ALERT_TOPIC_ARN" => Some(topic.clone()),
        "RUNBOOK_BASE_URL" => Some("https://runbooks.example/runbooks".into()),
        _ => None,
    })
    .unwrap();
    let alerts = SnsAlertPublisher::new(aws_sdk_sns::Client::new(&m.sdk), m.config.alert_topic_arn.clone());
    // The samples, in this test's cluster, for task `id`.
    let of = |file: &str, id: &str| {
        let mut e = event(&format!("ecs/{file}"));
        e["detail"]["clusterArn"] = format!("arn:aws:ecs:us-east-1:123456789012:cluster/{}", m.cluster).into();
        e["detail"]["taskArn"] = format!("arn:aws:ecs:us-east-1:123456789012:task/{}/{id}", m.cluster).into();
        e
    };
    let send = |e: Value, now: i64| {
        let (config, store, alerts) = (&config, &m.store, &alerts);
        async move { handle(config, store, alerts, &e, now).await.unwrap() }
    };
    let minute = 60_000;
    let t0 = connector_tests::now_millis();
    for (i, id) in ["aaaa0001", "aaaa0002", "aaaa0003"].iter().enumerate() {
        let at = t0 + i as i64 * 4 * minute;
        send(of("task-stopped-oom-killed.json", id), at).await;
        let running = send(of("task-running.json", &format!("{id}-next")), at + 2 * minute).await;
        assert_eq!(
            running["resolved"],
            serde_json::json!([]),
            "not resolved by a replacement: {running}"
        );
    }
    let alerts_seen = m.alerts().await;
    assert_eq!(alerts_seen.len(), 1, "one incident for the loop: {alerts_seen:?}");
    assert_eq!(alerts_seen[0].attributes["state"], "open");
    assert!(
        alerts_seen[0].subject.starts_with("[CRITICAL] oom-killed "),
        "{}",
        alerts_seen[0].subject
    );

    use connector_core::monitor::ports::MonitorStore;
    let stored = m.store.load(&m.cluster).await.unwrap();
    let incident = stored
        .incidents
        .values()
        .map(|v| &v.value)
        .find(|i| i.category == "oom-killed")
        .expect("open");
    assert_eq!(incident.members.len(), 3, "three tasks stopped: {incident:?}");
    assert!(incident.summary.contains("3 times"), "{incident:?}");

    // The last replacement has run 8 minutes: not yet; at 10 minutes the run resolves it.
    let last_running = t0 + 8 * minute + 2 * minute;
    m.run_at(last_running + 8 * minute).await;
    assert!(m.alerts().await.is_empty(), "not stable long enough yet");
    m.run_at(last_running + 10 * minute).await;
    let resolved = m.alerts().await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert!(
        resolved[0].subject.starts_with("[RESOLVED] oom-killed "),
        "{}",
        resolved[0].subject
    );
    assert!(resolved[0].body.contains("3 times"), "{}", resolved[0].body);
    let stored = m.store.load(&m.cluster).await.unwrap();
    assert!(
        stored.incidents.values().all(|v| v.value.category != "oom-killed"),
        "{:?}",
        stored.incidents
    );
}

#[tokio::test]
async fn expected_stops_other_clusters_and_malformed_events_do_not_alert() {
    let ecs = Ecs::new().await;
    for (file, expect) in [
        ("task-stopped-deployment-replaced.json", "deployment-replaced"),
        ("task-stopped-user-stopped.json", "user-stopped"),
    ] {
        let answer = ecs.send(file, T0).await;
        assert_eq!(
            (answer["category"].as_str(), answer["alerted"].as_bool()),
            (Some(expect), Some(false)),
            "{answer}"
        );
    }
    let other = ecs.send("task-stopped-other-cluster.json", T0).await;
    assert!(
        other["ignored"].as_str().unwrap().contains("some-other-cluster"),
        "{other}"
    );
    let junk = handle(
        &ecs.config,
        &ecs.store,
        &ecs.alerts,
        &serde_json::json!({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {}}),
        T0,
    )
    .await
    .unwrap();
    assert!(
        junk["ignored"].as_str().unwrap().contains("clusterArn is missing"),
        "{junk}"
    );
    assert!(ecs.alerts().await.is_empty());
}

#[tokio::test]
async fn an_alarm_then_ok_gives_one_open_and_one_resolved_message() {
    use connector_core::monitor::events::alarm::alarm_catalogue;
    let ecs = Ecs::new().await;
    let cat = alarm_catalogue();
    let send = |file: &'static str, now: i64| ecs.alarm(&cat, file, now);
    assert_eq!(send("sink-failure-alarm.json", T0).await["alerted"], true);
    assert_eq!(
        send("sink-failure-alarm.json", T0 + 1000).await["alerted"],
        false,
        "a repeated ALARM does not alert again"
    );
    let ok = send("sink-failure-ok.json", T0 + 25 * 60_000).await;
    assert_eq!(ok["resolved"], true, "{ok}");
    let alerts = ecs.alerts().await;
    let got: Vec<(&str, &str)> = alerts.iter().map(|(s, st, _)| (s.as_str(), st.as_str())).collect();
    let subject = |label: &str| format!("[{label}] sink-failure {CLUSTER}/mako-connector-main-sink-failure");
    assert_eq!(
        got,
        [
            (subject("CRITICAL").as_str(), "open"),
            (subject("RESOLVED").as_str(), "resolved")
        ]
    );
    assert!(alerts[1].2.starts_with("Resolved after 25m 0s"), "{}", alerts[1].2);

    assert_eq!(send("ecs-cpu-insufficient-data.json", T0).await["alerted"], false);
    // CloudWatch publishes the heartbeat's alarm itself (its AlarmActions): no second alert.
    assert_eq!(
        send("monitor-heartbeat-insufficient-data.json", T0).await["alerted"],
        false
    );
    assert_eq!(send("unknown-alarm.json", T0).await["alarm"], "unknown");
    let subjects: Vec<String> = ecs.alerts().await.into_iter().map(|a| a.0).collect();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].starts_with("[WARNING] unknown "), "{subjects:?}");
}

/// A stop whose page was claimed by an invocation cut before it published: the stop again
/// (EventBridge retries the event, or the next task stops) sends the page once, two minutes on,
/// and the stops are still counted on the one incident.
#[tokio::test]
async fn an_ecs_stop_page_a_cut_invocation_claimed_but_never_sent_is_sent_when_a_stop_comes_again() {
    use connector_core::monitor::ports::MonitorStore;
    let ecs = Ecs::new().await;
    assert_eq!(ecs.send("task-stopped-oom-killed.json", T0).await["alerted"], true);
    assert_eq!(ecs.alerts().await.len(), 1);
    ecs.cut_before_sending().await;
    let soon = ecs.send("task-stopped-oom-killed.json", T0 + 60_000).await;
    assert_eq!(soon["alerted"], false, "an invocation may still be sending it: {soon}");
    let later = ecs.send("task-stopped-oom-killed.json", T0 + 3 * 60_000).await;
    assert_eq!(later["alerted"], true, "{later}");
    let sent = ecs.alerts().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].0.as_str(), sent[0].1.as_str()),
        (
            format!("[CRITICAL] oom-killed {CLUSTER}/service:kafka-connect").as_str(),
            "open"
        )
    );
    let once = ecs.send("task-stopped-oom-killed.json", T0 + 4 * 60_000).await;
    assert_eq!(once["alerted"], false, "once: {once}");
    assert!(ecs.alerts().await.is_empty());
    let stored = ecs.store.load(CLUSTER).await.unwrap();
    let open = &stored.incidents.values().next().unwrap().value;
    assert!(!open.unsent, "marked sent: {open:?}");
}

/// An alarm whose page was claimed by an invocation cut before it published: the event again
/// (EventBridge retries it, or the alarm's next change) sends the page, once; the same alarm
/// going OK before that resolves it without a notice.
#[tokio::test]
async fn an_alarm_page_a_cut_invocation_claimed_but_never_sent_is_sent_when_the_alarm_comes_again() {
    use connector_core::monitor::events::alarm::alarm_catalogue;
    let ecs = Ecs::new().await;
    let cat = alarm_catalogue();
    let send = |file: &'static str, now: i64| ecs.alarm(&cat, file, now);
    assert_eq!(send("sink-failure-alarm.json", T0).await["alerted"], true);
    assert_eq!(ecs.alerts().await.len(), 1);
    ecs.cut_before_sending().await;
    assert_eq!(
        send("sink-failure-alarm.json", T0 + 60_000).await["alerted"],
        false,
        "an invocation may still be sending it"
    );
    assert_eq!(send("sink-failure-alarm.json", T0 + 3 * 60_000).await["alerted"], true);
    let sent = ecs.alerts().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].1, "open");
    assert_eq!(
        send("sink-failure-alarm.json", T0 + 4 * 60_000).await["alerted"],
        false,
        "once"
    );

    ecs.cut_before_sending().await;
    let ok = send("sink-failure-ok.json", T0 + 5 * 60_000).await;
    assert_eq!(ok["resolved"], true, "{ok}");
    assert!(ecs.alerts().await.is_empty(), "never paged: nothing to resolve aloud");
}

/// An alarm that warns on missing data (INSUFFICIENT_DATA) and then fires (ALARM, critical)
/// shares one incident: the firing re-alerts at the new severity, as an `open` message (what
/// subscribers page on), saying it escalated; a repeated ALARM stays quiet.
#[tokio::test]
async fn an_alarm_escalating_from_insufficient_data_to_alarm_alerts_again_as_critical() {
    use connector_core::monitor::events::alarm::alarm_catalogue;
    use connector_lambdas::alarm_state::handle as alarm;
    let ecs = Ecs::new().await;
    // The sink-failure alarm as if its missing data mattered (an entry of that shape).
    let cat: Vec<_> = alarm_catalogue()
        .into_iter()
        .map(|mut e| {
            e.missing_data_matters |= e.id == "sink-failure";
            e
        })
        .collect();
    let firing = event("alarm/sink-failure-alarm.json");
    let mut no_data = firing.clone();
    no_data["detail"]["state"]["value"] = "INSUFFICIENT_DATA".into();
    no_data["detail"]["state"]["reason"] = "Insufficient Data: 1 datapoint was unknown.".into();
    let send = |e: &Value, now: i64| {
        let (ecs, cat, e) = (&ecs, &cat, e.clone());
        async move { alarm(&ecs.config, cat, &ecs.store, &ecs.alerts, &e, now).await.unwrap() }
    };
    assert_eq!(send(&no_data, T0).await["alerted"], true);
    assert_eq!(send(&firing, T0 + 60_000).await["alerted"], true, "escalated");
    assert_eq!(send(&firing, T0 + 120_000).await["alerted"], false, "once");
    let alerts = ecs.alerts().await;
    let subject = |label: &str| format!("[{label}] sink-failure {CLUSTER}/mako-connector-main-sink-failure");
    let got: Vec<(&str, &str)> = alerts.iter().map(|(s, st, _)| (s.as_str(), st.as_str())).collect();
    assert_eq!(
        got,
        [
            (subject("WARNING").as_str(), "open"),
            (subject("CRITICAL").as_str(), "open")
        ]
    );
    assert!(
        alerts[1].2.starts_with("Escalated from warning to critical"),
        "{}",
        alerts[1].2
    );
    use connector_core::monitor::ports::MonitorStore;
    let stored = ecs.store.load(CLUSTER).await.unwrap();
    let incident = stored
        .incidents
        .values()
        .map(|v| &v.value)
        .find(|i| i.category == "sink-failure");
    assert_eq!(incident.map(|i| i.severity.as_str()), Some("critical"));
}

/// The `connector-unhealthy` alarm fires ten minutes into what the monitor paged already: it is
/// recorded as covered by the monitor's incident and sends nothing, and its OK sends nothing
/// either; a connector the monitor has not paged for (or named only in a cluster incident of one
/// cause) is covered the same way or paged as before.
#[tokio::test]
async fn a_connector_unhealthy_alarm_does_not_page_again_for_what_the_monitor_paged() {
    use connector_core::monitor::alerting::alert::opening;
    use connector_core::monitor::events::alarm::alarm_catalogue;
    use connector_core::monitor::judge::finding::{Category, Finding};
    use connector_core::monitor::ports::MonitorStore;
    let ecs = Ecs::new().await;
    let cat = alarm_catalogue();
    let send = |file: &'static str, now: i64| ecs.alarm(&cat, file, now);
    // Not paged by the monitor: the alarm pages.
    let alone = send("connector-unhealthy-alarm.json", T0).await;
    assert_eq!(alone["alerted"], true, "{alone}");
    assert_eq!(send("connector-unhealthy-ok.json", T0 + 60_000).await["resolved"], true);
    assert_eq!(ecs.alerts().await.len(), 2, "open and resolved");

    // The monitor's task-failed incident for seatool-sink is open.
    let mut failed = Finding::new(Category::TaskFailed, "Task 0 of connector seatool-sink FAILED");
    failed.connector = Some("seatool-sink".into());
    failed.task = Some(0);
    let monitors = opening(CLUSTER, &failed, T0).incident;
    assert!(ecs.store.open_incident(CLUSTER, &monitors).await.unwrap());
    let covered = send("connector-unhealthy-alarm.json", T0 + 600_000).await;
    assert_eq!(
        (covered["alerted"].as_bool(), covered["coveredBy"].as_str()),
        (Some(false), Some(monitors.key.as_str())),
        "{covered}"
    );
    let healed = send("connector-unhealthy-ok.json", T0 + 900_000).await;
    assert_eq!(
        (healed["resolved"].as_bool(), healed["alerted"].as_bool()),
        (Some(true), Some(false)),
        "{healed}"
    );
    assert!(ecs.alerts().await.is_empty(), "nothing sent for what the monitor paged");
    let stored = ecs.store.load(CLUSTER).await.unwrap();
    assert_eq!(
        stored.incidents.len(),
        1,
        "only the monitor's stays open: {:?}",
        stored.incidents
    );

    // Named in a cluster incident of one cause: covered too.
    assert!(ecs.store.close_incident(CLUSTER, &monitors.key, 1).await.unwrap());
    let mut group = Finding::new(
        Category::TaskFailed,
        "3 connectors are failing on one cause (lambda-throttled)",
    );
    group.resource = Some("cause/lambda-throttled".into());
    group.members = vec!["appian-sink".into(), "other-sink".into(), "seatool-sink".into()];
    let grouped = opening(CLUSTER, &group, T0).incident;
    assert!(ecs.store.open_incident(CLUSTER, &grouped).await.unwrap());
    let covered = send("connector-unhealthy-alarm.json", T0 + 1_200_000).await;
    assert_eq!(covered["coveredBy"], grouped.key.as_str(), "{covered}");
    assert!(ecs.alerts().await.is_empty());
}

/// The connector-unhealthy alarm counts missing data as breaching (a worker that is down emits
/// nothing): while the monitor's worker-unreachable incident is open, the alarm of each connector
/// is recorded under it instead of paging once more per connector.
#[tokio::test]
async fn a_connector_unhealthy_alarm_while_the_worker_is_down_is_covered_by_worker_unreachable() {
    use connector_core::monitor::alerting::alert::opening;
    use connector_core::monitor::events::alarm::alarm_catalogue;
    use connector_core::monitor::judge::finding::{Category, Finding};
    use connector_core::monitor::ports::MonitorStore;
    let ecs = Ecs::new().await;
    let cat = alarm_catalogue();
    let down = Finding::new(Category::WorkerUnreachable, "No Kafka Connect worker answers");
    let monitors = opening(CLUSTER, &down, T0).incident;
    assert!(ecs.store.open_incident(CLUSTER, &monitors).await.unwrap());
    let covered = ecs.alarm(&cat, "connector-unhealthy-alarm.json", T0 + 600_000).await;
    assert_eq!(
        (covered["alerted"].as_bool(), covered["coveredBy"].as_str()),
        (Some(false), Some(monitors.key.as_str())),
        "{covered}"
    );
    assert!(
        ecs.alerts().await.is_empty(),
        "one page for the worker, none per connector"
    );
}

#[tokio::test]
async fn an_undecodable_connector_state_is_replaced_instead_of_blocking_its_connector() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use connector_core::monitor::judge::state::ConnectorState;
    use connector_core::monitor::ports::MonitorStore;
    let sdk = sdk().await;
    let table = unique("monitor-state");
    create_sink_table(&sdk, &table).await;
    let store = DynamoDbMonitorStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    // Written by another version of the monitor, in a shape this one cannot read.
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&table)
        .item("PK", A::S("cluster#c1".into()))
        .item("SK", A::S("connector#seatool-sink".into()))
        .item("body", A::S("{\"restart\": \"three\"}".into()))
        .item("version", A::N("7".into()))
        .send()
        .await
        .unwrap();
    let loaded = store.load("c1").await.unwrap();
    let entry = loaded
        .connectors
        .get("seatool-sink")
        .expect("the item is seen, at its version");
    assert_eq!((&entry.value, entry.version), (&ConnectorState::default(), 7));
    let mut next = ConnectorState::default();
    next.restart.count = 1;
    assert!(
        store
            .save_connector("c1", "seatool-sink", &next, Some(entry.version))
            .await
            .unwrap(),
        "the next save replaces it"
    );
    assert_eq!(
        store.load("c1").await.unwrap().connectors["seatool-sink"]
            .value
            .restart
            .count,
        1
    );
}

/// An alarm whose action invokes alarmState directly (no EventBridge rule) sends the alarm data
/// at the top level (`alarmData`, no `detail`): it pages and resolves as the EventBridge event
/// does, and is covered by the monitor's incident the same way.
#[tokio::test]
async fn an_alarm_action_that_invokes_alarm_state_directly_pages_and_resolves() {
    use connector_core::monitor::alerting::alert::opening;
    use connector_core::monitor::events::alarm::alarm_catalogue;
    use connector_core::monitor::judge::finding::{Category, Finding};
    use connector_core::monitor::ports::MonitorStore;
    let ecs = Ecs::new().await;
    let cat = alarm_catalogue();
    let send = |file: &'static str, now: i64| ecs.alarm(&cat, file, now);
    let fired = send("connector-unhealthy-direct-alarm.json", T0).await;
    assert_eq!(fired["alerted"], true, "{fired}");
    let healed = send("connector-unhealthy-direct-ok.json", T0 + 60_000).await;
    assert_eq!(healed["resolved"], true, "{healed}");
    let got: Vec<(String, String)> = ecs.alerts().await.into_iter().map(|(s, st, _)| (s, st)).collect();
    // SNS subjects stop at 100 characters: the alarm's name is cut, the label and cluster are not.
    let subject = |label: &str| format!("[{label}] connector-unhealthy {CLUSTER}/mako-connector-main-seatool-sink");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].0.starts_with(&subject("CRITICAL")) && got[0].1 == "open",
        "{got:?}"
    );
    assert!(
        got[1].0.starts_with(&subject("RESOLVED")) && got[1].1 == "resolved",
        "{got:?}"
    );

    // The monitor paged for the connector: the direct alarm names it, so it is covered.
    let mut failed = Finding::new(Category::TaskFailed, "Task 0 of connector seatool-sink FAILED");
    failed.connector = Some("seatool-sink".into());
    failed.task = Some(0);
    let monitors = opening(CLUSTER, &failed, T0).incident;
    assert!(ecs.store.open_incident(CLUSTER, &monitors).await.unwrap());
    let covered = send("connector-unhealthy-direct-alarm.json", T0 + 600_000).await;
    assert_eq!(covered["coveredBy"].as_str(), Some(monitors.key.as_str()), "{covered}");
    assert!(ecs.alerts().await.is_empty());
}

#[tokio::test]
async fn a_task_of_another_service_reaching_running_does_not_start_this_services_recovery() {
    let ecs = Ecs::new().await;
    let now = connector_tests::now_millis();
    ecs.send("task-stopped-oom-killed.json", now).await;
    let other = ecs.send("task-running-other-service.json", now + 60_000).await;
    assert_eq!(other["recovering"], serde_json::json!([]), "{other}");
    let own = ecs.send("task-running.json", now + 120_000).await;
    assert_eq!(own["recovering"].as_array().map(Vec::len), Some(1), "{own}");
}

#[tokio::test]
async fn the_spot_notice_alerts_once_and_its_stop_two_minutes_later_is_the_same_incident() {
    let ecs = Ecs::new().await;
    let now = connector_tests::now_millis();
    let notice = ecs.send("task-running-spot-interruption-notice.json", now).await;
    assert_eq!(
        (notice["category"].as_str(), notice["alerted"].as_bool()),
        (Some("platform-interruption"), Some(true)),
        "{notice}"
    );
    let stop = ecs.send("task-stopped-spot-interruption.json", now + 120_000).await;
    assert_eq!(stop["alerted"], false, "{stop}");
    let sent = read_alerts(&ecs.sdk, &ecs.queue).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].subject.starts_with("[WARNING] platform-interruption ") && sent[0].body.contains("within two minutes"),
        "{}\n{}",
        sent[0].subject,
        sent[0].body
    );
    use connector_core::monitor::ports::MonitorStore;
    let stored = ecs.store.load(CLUSTER).await.unwrap();
    let open: Vec<_> = stored.incidents.values().map(|v| &v.value).collect();
    assert_eq!(
        (open.len(), open[0].stops, open[0].recovering_since),
        (1, 1, None),
        "one stop, not recovering: {open:?}"
    );
}

/// With a warning topic, a critical stop pages on the alert topic and a warning one (a Spot
/// interruption) goes to the warning topic alone: the person paged is not woken for warnings.
#[tokio::test]
async fn critical_alerts_go_to_the_alert_topic_and_warnings_to_the_warning_topic() {
    let mut ecs = Ecs::new().await;
    let (warning_topic, warning_queue) = alert_inbox(&ecs.sdk, "ecs-warnings").await;
    ecs.config.warning_topic_arn = Some(warning_topic.clone());
    ecs.alerts = SnsAlertPublisher::new(aws_sdk_sns::Client::new(&ecs.sdk), ecs.config.alert_topic_arn.clone())
        .warnings_to(Some(warning_topic));
    assert_eq!(ecs.send("task-stopped-oom-killed.json", T0).await["alerted"], true);
    assert_eq!(
        ecs.send("task-stopped-spot-interruption.json", T0 + 1_000).await["alerted"],
        true
    );
    let critical = ecs.alerts().await;
    let warnings = read_alerts(&ecs.sdk, &warning_queue).await;
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert!(critical[0].0.starts_with("[CRITICAL] oom-killed"), "{critical:?}");
    assert_eq!(
        warnings.len(),
        1,
        "{:?}",
        warnings.iter().map(|a| &a.subject).collect::<Vec<_>>()
    );
    assert!(
        warnings[0].subject.starts_with("[WARNING] platform-interruption"),
        "{}",
        warnings[0].subject
    );
    assert_eq!(
        warnings[0].attributes.get("severity").map(String::as_str),
        Some("warning")
    );
}
