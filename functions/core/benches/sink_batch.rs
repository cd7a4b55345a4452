//! Decode + dedupe + map of a 500-record Confluent batch of Seatool-shaped values: the CPU part
//! of one sink invocation, without I/O.

use connector_core::sink::decode_batch;
use connector_core::sink::mapping::Table;
use connector_core::sink::plan::plan_batch;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

/// 500 records over 200 ids (so dedupe has work), values shaped like the sample in `events/`.
fn batch() -> Value {
    let path = format!(
        "{}/../../events/sink/confluent-seatool-batch.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("JSON");
    let template: Value =
        serde_json::from_str(sample[0]["payload"]["value"].as_str().expect("value text")).expect("value");
    (0..500)
        .map(|i| {
            let id = format!("NC-{:02}-{:04}", i % 50, i % 200);
            let mut value = template.clone();
            value["STATE_PLAN"]["ID_NUMBER"] = json!(id);
            json!({"payload": {"timestamp": 1_732_435_200_000_i64 + i, "topic": "aws.ksqldb.seatool.agg.State_Plan",
                               "partition": i % 3, "offset": 10_000 + i, "key": json!(id).to_string(),
                               "value": value.to_string()}})
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let event = batch();
    c.bench_function("seatool 500 records: decode + dedupe + map", |b| {
        b.iter(|| {
            let decoded = decode_batch(std::hint::black_box(&event)).expect("decodes");
            plan_batch(Table::Seatool, &decoded.records)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
