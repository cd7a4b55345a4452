//! A measurement, not a test: `verify` end to end on 100,000 records over 20,000 keys (five
//! records a key, one key in ten ending with a tombstone) in a topic of the harness's broker, read
//! over TLS, against a moto table holding what the sink would have left (one scan segment: moto
//! answers a segment with its first page only). `scripts/bench` starts
//! the broker and moto and runs it; it prints the reads' wall time and the verdict.

use std::sync::Arc;
use std::time::Instant;

use connector_adapters::dynamodb::DynamoDbRecordStore;
use connector_adapters::sink_table::DynamoDbTableReader;
use connector_core::sink::Table;
use connector_core::sink::mapping::{Mapped, map_record};
use connector_core::sink::ports::RecordStore;
use connector_core::sink::verify::{VerifyRequest, verify};
use connector_tests::{create_sink_table, produce, sdk, tls_brokers, topic_records, unique};

const KEYS: usize = 20_000;
const PER_KEY: usize = 5;
const WRITERS: usize = 16;

#[tokio::main]
async fn main() {
    let sdk = sdk().await;
    let topic = unique("verify-perf");
    let records: Vec<(Option<String>, Option<String>)> = (0..KEYS * PER_KEY)
        .map(|i| {
            let (key, round) = (i % KEYS, i / KEYS);
            let tombstone = round == PER_KEY - 1 && key % 10 == 0;
            let value = format!(
                r#"{{"STATE_PLAN":{{"ID_NUMBER":"MD-{key:05}","STATUS":"v{round}","AMOUNT":{round}.50,"NOTES":"{}"}}}}"#,
                "x".repeat(120)
            );
            (Some(format!("\"MD-{key:05}\"")), (!tombstone).then_some(value))
        })
        .collect();
    let started = Instant::now();
    produce(&topic, &records).await;
    eprintln!(
        "produced {} records in {:.1} s",
        records.len(),
        started.elapsed().as_secs_f64()
    );

    // What the sink leaves: each key's newest record, written through its own conditional write.
    let read = topic_records(&topic).await;
    let newest: Vec<_> = read[read.len() - KEYS..]
        .iter()
        .map(|r| match map_record(Table::Seatool, r) {
            Mapped::Write(w) => w,
            other => panic!("{other:?}"),
        })
        .collect();
    let table = unique("verify-perf");
    create_sink_table(&sdk, &table).await;
    let store = Arc::new(DynamoDbRecordStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table));
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for chunk in newest.chunks(KEYS.div_ceil(WRITERS)) {
        let (store, chunk) = (Arc::clone(&store), chunk.to_vec());
        writers.spawn(async move {
            for write in &chunk {
                store.apply(write).await.expect("stored");
            }
        });
    }
    writers.join_all().await;
    eprintln!("stored {KEYS} items in {:.1} s", started.elapsed().as_secs_f64());

    let brokers = tls_brokers();
    let request = VerifyRequest {
        table: Table::Seatool,
        table_name: table.clone(),
        topic: topic.clone(),
        since: None,
        until: None,
        committed: Default::default(),
        epoch: 0,
        segments: 1,
        samples: 3,
        strict: true,
        keep_differences: false,
    };
    let scanner = DynamoDbTableReader::new(aws_sdk_dynamodb::Client::new(&sdk), &table, false);
    for run in 1..=3 {
        let started = Instant::now();
        let (report, _) = verify(&brokers, &scanner, &request, None).await.expect("verify");
        eprintln!(
            "verify run {run}: {} records, {} keys, {} items ({} tombstones) in {:.2} s; loss: {}; counts {:?}",
            report.records,
            report.keys,
            report.items,
            report.tombstones,
            started.elapsed().as_secs_f64(),
            report.has_loss(),
            report.counts.iter().filter(|(_, n)| **n > 0).collect::<Vec<_>>()
        );
    }
}
