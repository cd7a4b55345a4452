//! Property: however a stream is delivered — in random batches, with replays and duplicates —
//! the table ends as if every record had been applied once in Kafka order, and no reader ever
//! sees a record older than one it has already seen.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use connector_core::sink::memory::{InMemoryDeadLetterQueue, InMemoryRecordStore};
use connector_core::sink::{Coordinates, Field, InputFormat, SourceBatch, SourceRecord, Table, sink_batch};
use futures_executor::block_on;
use proptest::prelude::*;

const TOPIC: &str = "aws.ksqldb.seatool.agg.State_Plan";

/// One produced record: which key, which partition, put or tombstone.
#[derive(Debug, Clone)]
struct Produced {
    key: usize,
    partition: i32,
    tombstone: bool,
}

/// Turns produced records into Kafka records: offsets per partition, timestamps increasing with
/// production order (so Kafka order and the timestamp order agree, as with CreateTime).
fn to_records(produced: &[Produced]) -> Vec<SourceRecord> {
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    produced
        .iter()
        .enumerate()
        .map(|(seq, p)| {
            let offset = next_offset.entry(p.partition).or_insert(0);
            *offset += 1;
            SourceRecord {
                coordinates: Coordinates {
                    topic: TOPIC.into(),
                    partition: p.partition,
                    offset: *offset,
                    timestamp: 1_700_000_000_000 + seq as i64,
                    epoch: 0,
                },
                key: Field::Text(format!("\"K-{}\"", p.key)),
                value: if p.tombstone {
                    Field::Null
                } else {
                    Field::Text(format!("{{\"seq\":{seq}}}"))
                },
            }
        })
        .collect()
}

fn produced() -> impl Strategy<Value = Vec<Produced>> {
    prop::collection::vec(
        (0usize..4, 0i32..3, prop::bool::weighted(0.25)).prop_map(|(key, partition, tombstone)| Produced {
            key,
            partition,
            tombstone,
        }),
        1..40,
    )
}

/// Deliveries: each batch is a run of records starting anywhere (a rewind replays from an earlier
/// offset), possibly with duplicates, possibly shuffled across partitions. A final full delivery
/// guarantees every record arrived at least once, as the connector does.
fn deliveries(len: usize) -> impl Strategy<Value = Vec<Vec<usize>>> {
    let batch = (0..len, 1usize..12, prop::bool::ANY, prop::collection::vec(0..len, 0..3)).prop_map(
        move |(start, size, reverse, dups)| {
            let mut b: Vec<usize> = (start..(start + size).min(len)).collect();
            b.extend(dups);
            if reverse {
                b.reverse();
            }
            b
        },
    );
    prop::collection::vec(batch, 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn replays_and_duplicates_converge_to_the_newest_record_per_key(
        (stream, batches, in_flight) in produced().prop_flat_map(|s| {
            let n = s.len();
            (Just(s), deliveries(n), 1usize..5)
        })
    ) {
        let records = to_records(&stream);
        let store = InMemoryRecordStore::new();
        let dlq = InMemoryDeadLetterQueue::new();
        let in_flight = NonZeroUsize::new(in_flight).unwrap();
        let mut all: Vec<Vec<usize>> = batches;
        all.push((0..records.len()).collect());
        for batch in &all {
            let batch = SourceBatch { format: InputFormat::Confluent, records: batch.iter().map(|&i| records[i].clone()).collect() };
            let report = block_on(sink_batch(Table::Seatool, &batch, &store, &dlq, in_flight)).unwrap();
            prop_assert_eq!(report.records.len(), batch.records.len());
        }

        // The model: the last record per key in production order decides.
        let mut model: HashMap<String, &SourceRecord> = HashMap::new();
        for (p, r) in stream.iter().zip(&records) {
            model.insert(format!("K-{}", p.key), r);
        }
        let items = store.items();
        for (id, last) in &model {
            match (&last.value, items.get(id)) {
                (Field::Null, None) => {}
                (Field::Null, Some(item)) => prop_assert!(false, "{id} should be deleted, holds {:?}", item.coordinates),
                (_, Some(item)) => prop_assert_eq!(&item.coordinates, &last.coordinates, "{}", id),
                (_, None) => prop_assert!(false, "{id} missing, expected {:?}", last.coordinates),
            }
        }
        prop_assert_eq!(items.len(), model.values().filter(|r| !r.value.is_null()).count());
        prop_assert!(dlq.letters().is_empty());

        // No regression, ever: each visible change is newer than every change shown before it.
        let mut shown: HashMap<String, Coordinates> = HashMap::new();
        for change in store.history() {
            if let Some(previous) = shown.get(&change.id) {
                prop_assert!(change.coordinates.supersedes(previous), "{} went from {:?} back to {:?}", change.id, previous, change.coordinates);
            }
            shown.insert(change.id.clone(), change.coordinates.clone());
        }
    }
}
