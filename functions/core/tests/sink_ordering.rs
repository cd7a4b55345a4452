//! Property: however a stream is delivered — in random batches, with replays and duplicates —
//! the table ends as if every record had been applied once in Kafka order, and no reader ever
//! sees a record older than one it has already seen. Streams span several partitions, with keys
//! either on one partition each (timestamps not monotonic in offset) or on any (timestamps
//! ordering them); some are cut by a recreated topic (offsets restarting in a higher epoch), and
//! some of their records are refused by the store (dead-lettered, the next newest kept).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;

use connector_core::sink::memory::{InMemoryDeadLetterQueue, InMemoryRecordStore};
use connector_core::sink::ports::{Applied, RecordStore, StoreError};
use connector_core::sink::{Coordinates, Field, InputFormat, SourceBatch, SourceRecord, Table, Write, sink_batch};
use futures_executor::block_on;
use proptest::prelude::*;

const TOPIC: &str = "aws.ksqldb.seatool.agg.State_Plan";

/// One produced record: which key, which partition, put or tombstone, whether the store refuses
/// it (as DynamoDB refuses an item over 400 KB; puts only), and how far its timestamp strays.
#[derive(Debug, Clone)]
struct Produced {
    key: usize,
    partition: i32,
    tombstone: bool,
    refused: bool,
    jitter: i64,
}

/// How a stream is laid out in Kafka.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Each key on one partition (Kafka's default partitioner: Seatool), with timestamps that are
    /// not monotonic in offset; otherwise keys on any partition with CreateTime timestamps
    /// increasing in production order (an Appian id read from the value).
    keyed: bool,
    /// From this record on, the topic was deleted and recreated: offsets start again, in epoch 1.
    recreated_at: Option<usize>,
}

/// Turns produced records into Kafka records: offsets per partition and epoch, timestamps in
/// production order (plus the jitter when keys are partitioned).
fn to_records(produced: &[Produced], layout: Layout) -> Vec<SourceRecord> {
    let mut next_offset: HashMap<(u32, i32), i64> = HashMap::new();
    produced
        .iter()
        .enumerate()
        .map(|(seq, p)| {
            let epoch = u32::from(layout.recreated_at.is_some_and(|at| seq >= at));
            let partition = if layout.keyed { (p.key % 3) as i32 } else { p.partition };
            let offset = next_offset.entry((epoch, partition)).or_insert(0);
            *offset += 1;
            let jitter = if layout.keyed { p.jitter } else { 0 };
            SourceRecord {
                coordinates: Coordinates {
                    topic: TOPIC.into(),
                    partition,
                    offset: *offset,
                    timestamp: 1_700_000_000_000 + seq as i64 * 10 + jitter,
                    epoch,
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
        (
            0usize..4,
            0i32..3,
            prop::bool::weighted(0.25),
            prop::bool::weighted(0.1),
            -1000i64..1000,
        )
            .prop_map(|(key, partition, tombstone, refused, jitter)| Produced {
                key,
                partition,
                tombstone,
                refused: refused && !tombstone,
                jitter,
            }),
        1..40,
    )
}

fn layout(len: usize) -> impl Strategy<Value = Layout> {
    (prop::bool::ANY, prop::option::weighted(0.3, 0..len))
        .prop_map(|(keyed, recreated_at)| Layout { keyed, recreated_at })
}

/// The in-memory store, refusing the records marked refused as DynamoDB refuses an item.
struct Refusing<'a> {
    store: &'a InMemoryRecordStore,
    refused: HashSet<(u32, i32, i64)>,
}

impl RecordStore for Refusing<'_> {
    async fn apply(&self, write: &Write) -> Result<Applied, StoreError> {
        let c = &write.coordinates;
        if self.refused.contains(&(c.epoch, c.partition, c.offset)) {
            return Err(StoreError::Rejected {
                id: write.id.clone(),
                reason: "item too large".into(),
            });
        }
        self.store.apply(write).await
    }

    async fn rewrite(&self, write: &Write) -> Result<Applied, StoreError> {
        self.store.rewrite(write).await
    }
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
        (stream, layout, batches, in_flight) in produced().prop_flat_map(|s| {
            let n = s.len();
            (Just(s), layout(n), deliveries(n), 1usize..5)
        })
    ) {
        let records = to_records(&stream, layout);
        let refused: HashSet<(u32, i32, i64)> = stream.iter().zip(&records).filter(|(p, _)| p.refused)
            .map(|(_, r)| (r.coordinates.epoch, r.coordinates.partition, r.coordinates.offset)).collect();
        let memory = InMemoryRecordStore::new();
        let store = Refusing { store: &memory, refused: refused.clone() };
        let dlq = InMemoryDeadLetterQueue::new();
        let in_flight = NonZeroUsize::new(in_flight).unwrap();
        let mut all: Vec<Vec<usize>> = batches;
        all.push((0..records.len()).collect());
        for batch in &all {
            let batch = SourceBatch { format: InputFormat::Confluent, records: batch.iter().map(|&i| records[i].clone()).collect() };
            let report = block_on(sink_batch(Table::Seatool, &batch, &store, &dlq, in_flight)).unwrap();
            prop_assert_eq!(report.records.len(), batch.records.len());
        }

        // The model: the last record per key in production order that the store takes decides.
        let mut model: HashMap<String, &SourceRecord> = HashMap::new();
        for (p, r) in stream.iter().zip(&records).filter(|(p, _)| !p.refused) {
            model.insert(format!("K-{}", p.key), r);
        }
        let items = memory.items();
        for (id, last) in &model {
            match (&last.value, items.get(id)) {
                (Field::Null, None) => {}
                (Field::Null, Some(item)) => prop_assert!(false, "{id} should be deleted, holds {:?}", item.coordinates),
                (_, Some(item)) => prop_assert_eq!(&item.coordinates, &last.coordinates, "{}", id),
                (_, None) => prop_assert!(false, "{id} missing, expected {:?}", last.coordinates),
            }
        }
        prop_assert_eq!(items.len(), model.values().filter(|r| !r.value.is_null()).count());
        // Only refused records are dead-lettered (one superseded within its batch is never tried).
        let lettered: HashSet<(u32, i32, i64)> = dlq.letters().iter()
            .map(|l| (l.coordinates.epoch, l.coordinates.partition, l.coordinates.offset)).collect();
        prop_assert!(lettered.is_subset(&refused), "{:?} not all refused", lettered);

        // No regression, ever: each visible change is newer than every change shown before it.
        let mut shown: HashMap<String, Coordinates> = HashMap::new();
        for change in memory.history() {
            if let Some(previous) = shown.get(&change.id) {
                prop_assert!(change.coordinates.supersedes(previous), "{} went from {:?} back to {:?}", change.id, previous, change.coordinates);
            }
            shown.insert(change.id.clone(), change.coordinates.clone());
        }
    }
}
