//! One evaluation of 500 connectors × 4 tasks, with failures and their traces: the pure part of a
//! `testConnectors` run (root causes, fingerprints, restart decisions, findings).

use std::collections::BTreeMap;

use connector_core::connect::{
    ComponentStatus, ConnectorConfig, ConnectorInfo, ConnectorStatus, ConnectorView, State, TaskStatus,
};
use connector_core::monitor::judge::evaluate::{Observation, evaluate};
use connector_core::monitor::judge::state::Settings;
use criterion::{Criterion, criterion_group, criterion_main};

fn trace(name: &str) -> String {
    let path = format!("{}/../../events/connect/traces/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("trace")
}

fn cluster() -> (Vec<ConnectorConfig>, Observation) {
    let traces = [
        trace("data-exception.txt"),
        trace("lambda-throttled.txt"),
        trace("file-not-found.txt"),
    ];
    let mut desired = Vec::new();
    let mut views = Vec::new();
    for i in 0..500 {
        let name = format!("sink-{i:03}");
        let config: BTreeMap<String, String> = [
            (
                "connector.class",
                "io.confluent.connect.aws.lambda.AwsLambdaSinkConnector",
            ),
            ("tasks.max", "4"),
            ("topics", "aws.ksqldb.seatool.agg.State_Plan"),
            ("aws.lambda.function.name", "sinkSeatoolData"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        desired.push(ConnectorConfig {
            name: name.clone(),
            config: config.clone(),
        });
        // One connector in five has a failed task, with one of the traces.
        let tasks = (0..4)
            .map(|t| {
                let failed = i % 5 == 0 && t == i % 4;
                TaskStatus {
                    id: t as i32,
                    state: if failed { State::Failed } else { State::Running },
                    worker_id: "10.0.1.25:8083".into(),
                    trace: failed.then(|| traces[i % 3].clone()),
                }
            })
            .collect();
        views.push(ConnectorView {
            name: name.clone(),
            status: Some(ConnectorStatus {
                name: name.clone(),
                connector: ComponentStatus {
                    state: State::Running,
                    worker_id: "10.0.1.25:8083".into(),
                    trace: None,
                },
                tasks,
                kind: Some("sink".into()),
            }),
            info: Some(ConnectorInfo {
                name,
                config,
                tasks: vec![0, 1, 2, 3],
                kind: Some("sink".into()),
            }),
        });
    }
    (desired, Observation::Connectors(views))
}

fn bench(c: &mut Criterion) {
    let (desired, observation) = cluster();
    let previous = BTreeMap::new();
    let settings = Settings::default();
    c.bench_function("evaluate 500 connectors x 4 tasks (100 failed, with traces)", |b| {
        b.iter(|| {
            evaluate(
                std::hint::black_box(&desired),
                &observation,
                &previous,
                &settings,
                1_795_500_000_000,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
