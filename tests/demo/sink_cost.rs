//! A measurement, not a test: what the sink costs DynamoDB on a replay-heavy stream, side by
//! side with an unconditional baseline (the original sink's way: dedupe per batch, then
//! `BatchWriteItem` of 25, which can regress data). `scripts/bench` starts moto and the fault
//! proxy, which counts the requests each way sends, and runs it.
//!
//! The stream: 200 Seatool ids × 5 versions (1,000 records, Seatool-shaped values of about
//! 0.8 KB), each id's versions next to each other as an aggregate's updates come, delivered in
//! batches of 200 (`LambdaBatchSize`: 40 ids each), then delivered again whole, as after a
//! restart or rebalance: 2,000 records delivered. Write units are computed by DynamoDB's rule
//! (each write, a failed condition too, costs the item's size rounded up to 1 KB); moto does not
//! report capacity by size.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use connector_adapters::dynamodb::item;
use connector_core::sink::mapping::{Table, WriteOp};
use connector_core::sink::plan::plan_batch;
use connector_core::sink::{SourceBatch, decode_batch};
use connector_tests::faults::{Faults, sdk_through_faults};
use connector_tests::sink::Sink;
use connector_tests::{create_sink_table, event, sdk, unique};
use serde_json::{Value, json};

const IDS: usize = 200;
const VERSIONS: usize = 5;
const BATCH: usize = 200;

fn stream() -> Vec<Value> {
    let sample = event("sink/confluent-seatool-batch.json");
    let value: Value = serde_json::from_str(sample[1]["payload"]["value"].as_str().unwrap()).unwrap();
    let records: Vec<Value> = (0..IDS * VERSIONS)
        .map(|n| {
            let (version, id) = (n % VERSIONS, format!("ST-{:04}", n / VERSIONS));
            let mut value = value.clone();
            value["STATE_PLAN"]["ID_NUMBER"] = json!(id);
            value["VERSION"] = json!(version);
            json!({"payload": {"timestamp": 1_732_435_200_000_i64 + n as i64, "topic": "aws.ksqldb.seatool.agg.State_Plan",
                               "partition": 0, "offset": n, "key": format!("\"{id}\""), "value": value.to_string()}})
        })
        .collect();
    let batches: Vec<Value> = records.chunks(BATCH).map(|c| Value::Array(c.to_vec())).collect();
    batches.iter().chain(&batches).cloned().collect()
}

/// DynamoDB's item size: attribute names plus values (numbers about half their digits).
fn size(attributes: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    fn value(v: &A) -> usize {
        match v {
            A::S(s) => s.len(),
            A::N(n) => n.len().div_ceil(2) + 1,
            A::Bool(_) | A::Null(_) => 1,
            A::L(l) => 3 + l.iter().map(|v| 1 + value(v)).sum::<usize>(),
            A::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>(),
            _ => 0,
        }
    }
    attributes.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// The writes each batch asks for, each with its write units.
fn write_units(batch: &SourceBatch) -> usize {
    plan_batch(Table::Seatool, &batch.records)
        .writes
        .iter()
        .map(|(_, w)| match &w.op {
            WriteOp::Put(fields) => size(&item(w, fields)).div_ceil(1024),
            WriteOp::Delete => 1,
        })
        .sum()
}

struct Figures {
    requests: u64,
    units: usize,
    per_batch: Vec<Duration>,
}

fn print(name: &str, delivered: usize, f: &Figures) {
    let mut times = f.per_batch.clone();
    times.sort();
    let per_thousand = |n: f64| n * 1000.0 / delivered as f64;
    eprintln!(
        "{name:<40} {:>8.1} requests  {:>8.1} write units per 1,000 records   batch of {BATCH}: median {:>6.0} ms, max {:>6.0} ms",
        per_thousand(f.requests as f64),
        per_thousand(f.units as f64),
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let batches = stream();
    let delivered: usize = batches.iter().map(|b| b.as_array().unwrap().len()).sum();
    let decoded: Vec<SourceBatch> = batches.iter().map(|b| decode_batch(b).unwrap()).collect();

    // The sink: one conditional PutItem per distinct id per batch.
    let sink = Sink::through_faults(Table::Seatool).await;
    let counter = Faults::for_target(&sink.config.table_name);
    let mut per_batch = Vec::new();
    for batch in &batches {
        let started = Instant::now();
        sink.send_batch(batch).await.expect("the sink stores the batch");
        per_batch.push(started.elapsed());
    }
    let units = decoded.iter().map(write_units).sum();
    let sink_figures = Figures {
        requests: counter.counts().await.values().sum(),
        units,
        per_batch,
    };

    // The baseline: the same dedupe, then unconditional BatchWriteItem of 25.
    let table = unique("seatool-baseline");
    create_sink_table(&sdk().await, &table).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk_through_faults().await);
    let counter = Faults::for_target(&table);
    let mut per_batch = Vec::new();
    for batch in &decoded {
        let started = Instant::now();
        let plan = plan_batch(Table::Seatool, &batch.records);
        let puts: Vec<WriteRequest> = plan
            .writes
            .iter()
            .filter_map(|(_, w)| match &w.op {
                WriteOp::Put(fields) => Some(
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item(w, fields))).build().unwrap())
                        .build(),
                ),
                WriteOp::Delete => None,
            })
            .collect();
        for chunk in puts.chunks(25) {
            let mut pending = chunk.to_vec();
            while !pending.is_empty() {
                let out = client
                    .batch_write_item()
                    .request_items(&table, pending)
                    .send()
                    .await
                    .expect("BatchWriteItem");
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&table))
                    .cloned()
                    .unwrap_or_default();
            }
        }
        per_batch.push(started.elapsed());
    }
    let baseline = Figures {
        requests: counter.counts().await.values().sum(),
        units: decoded.iter().map(write_units).sum(),
        per_batch,
    };

    eprintln!(
        "{delivered} records delivered ({IDS} ids x {VERSIONS} versions in batches of {BATCH}, then all again), on moto:"
    );
    print("sink (conditional PutItem per id)", delivered, &sink_figures);
    print("baseline (BatchWriteItem of 25, unconditional)", delivered, &baseline);
}
