//! `verify`'s comparison of 1 M keys: 1.2 M records read (a fifth of the keys updated once),
//! then 1 M items of the table compared, as `connectorctl verify` does after its reads; and the
//! memory the comparison holds per million keys, counted by the allocator (not estimated).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use connector_core::sink::mapping::{Mapped, Table, WriteOp, map_record};
use connector_core::sink::verify::{TableItem, Verifier, content_hash};
use connector_core::sink::{Coordinates, Field, SourceRecord};
use criterion::{Criterion, criterion_group, criterion_main};

/// Bytes allocated and not yet freed, so the verifier's footprint can be read off.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEYS: i64 = 1_000_000;

fn record(i: i64) -> SourceRecord {
    let key = i % KEYS;
    SourceRecord {
        coordinates: Coordinates {
            topic: "aws.ksqldb.seatool.agg.State_Plan".into(),
            partition: (key % 3) as i32,
            offset: i,
            timestamp: 1_732_435_200_000 + i,
            epoch: 0,
        },
        key: Field::Text(format!("\"MD-{key:07}\"")),
        value: Field::Text(format!(
            r#"{{"STATE_PLAN":{{"ID":"MD-{key:07}","STATUS":"v{i}","AMOUNT":12.50}}}}"#
        )),
    }
}

/// Each key's newest record (offsets 1 M to 1.2 M update the first fifth) as the table holds it.
fn item(i: i64) -> TableItem {
    let newest = if i < KEYS / 5 { KEYS + i } else { i };
    let Mapped::Write(w) = map_record(Table::Seatool, &record(newest)) else {
        unreachable!("a valid record")
    };
    let WriteOp::Put(fields) = &w.op else {
        unreachable!("a put")
    };
    TableItem {
        content: content_hash(fields),
        id: w.id,
        coordinates: Some(w.coordinates),
        deleted: false,
    }
}

fn bench(c: &mut Criterion) {
    let records: Vec<SourceRecord> = (0..KEYS + KEYS / 5).map(record).collect();
    let items: Vec<TableItem> = (0..KEYS).map(item).collect();

    let before = HELD.load(Ordering::Relaxed);
    let mut verifier = Verifier::new(Table::Seatool, 0, 10);
    for r in &records {
        verifier.observe_record(r);
    }
    let held = HELD.load(Ordering::Relaxed) - before;
    eprintln!(
        "verify memory: {:.1} MB held for {KEYS} keys ({} bytes per key)",
        held as f64 / 1e6,
        held as i64 / KEYS
    );

    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.bench_function("compare 1M keys (1.2M records, 1M items)", |b| {
        b.iter(|| {
            let mut v = Verifier::new(Table::Seatool, 0, 10);
            for r in &records {
                v.observe_record(std::hint::black_box(r));
            }
            for i in &items {
                v.observe_item(i.clone());
            }
            let (report, _) = v.finish("seatool", "topic", false);
            assert!(!report.has_loss(), "{report:?}");
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
