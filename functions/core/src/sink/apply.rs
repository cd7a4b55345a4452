//! The sink use case: apply one decoded batch through the ports and report what each record became.

use std::num::NonZeroUsize;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};

use super::decode::{InputFormat, SourceBatch};
use super::mapping::{Table, Write, WriteOp};
use super::plan::{Outcome, dead_letter, plan_batch};
use super::ports::{Applied, DeadLetterError, DeadLetterQueue, RecordStore, StoreError};
use super::record::Coordinates;

/// Why a batch was not fully stored. The caller must fail the invocation so that the batch is
/// delivered again: reporting success here would lose records.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The store kept failing after the client's retries.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The dead-letter queue kept failing, so an unstorable record could not be set aside.
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
}

/// How many records had each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Stored.
    pub written: usize,
    /// Older than what is stored or in the batch.
    pub stale: usize,
    /// Tombstones applied.
    pub deleted: usize,
    /// Skipped on purpose.
    pub skipped: usize,
    /// Sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Written or deleted over an item the sink did not write (counted in `written`/`deleted` too).
    pub adopted: usize,
    /// Stale records that look like the start of a recreated topic (see [`Rewind`]).
    pub rewinds: usize,
}

/// A record found stale against a stored record of its own topic-partition with a higher offset
/// but a clearly older timestamp ([`Coordinates::rewound_from`]): what a deleted and recreated
/// topic looks like. It stays stale; someone must check the topic and raise the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewind {
    /// The record id.
    pub id: String,
    /// The record that was stale.
    pub record: Coordinates,
    /// What the store holds.
    pub stored: Coordinates,
}

/// The result of one batch: what each record became, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkReport {
    /// The input format, which decides the response's shape.
    pub format: InputFormat,
    /// Each record's coordinates and outcome, in input order.
    pub records: Vec<(Coordinates, Outcome)>,
    /// How many writes replaced or deleted an item the sink did not write.
    pub adopted: usize,
    /// The stale writes that look like a recreated topic.
    pub rewinds: Vec<Rewind>,
}

impl SinkReport {
    /// How many records had each outcome.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for (_, outcome) in &self.records {
            match outcome {
                Outcome::Written => c.written += 1,
                Outcome::Stale => c.stale += 1,
                Outcome::Deleted => c.deleted += 1,
                Outcome::Skipped => c.skipped += 1,
                Outcome::DeadLettered => c.dead_lettered += 1,
            }
        }
        c.adopted = self.adopted;
        c.rewinds = self.rewinds.len();
        c
    }

    /// The invocation's response: for a Confluent batch one `{"payload": {..., "result"}}` per
    /// record, as the connector writes to its result topic; otherwise a summary of the counts.
    pub fn response(&self) -> Value {
        if self.format == InputFormat::Confluent {
            return self
                .records
                .iter()
                .map(|(c, outcome)| {
                    json!({"payload": {"timestamp": c.timestamp, "topic": c.topic, "partition": c.partition,
                                       "offset": c.offset, "result": outcome.as_str()}})
                })
                .collect();
        }
        let c = self.counts();
        json!({"records": self.records.len(), "written": c.written, "stale": c.stale, "deleted": c.deleted,
               "skipped": c.skipped, "deadLettered": c.dead_lettered})
    }
}

/// Applies one batch to `table`: writes the newest record per id (at most `max_in_flight` at
/// once), dead-letters what can never be stored, and reports every record's outcome.
///
/// Fails, without reporting any success, when the store or the dead-letter queue keeps failing:
/// the whole batch is then delivered again, and the conditional writes make the replay harmless.
pub async fn sink_batch<S, Q>(
    table: Table,
    batch: &SourceBatch,
    store: &S,
    dead_letters: &Q,
    max_in_flight: NonZeroUsize,
) -> Result<SinkReport, SinkError>
where
    S: RecordStore,
    Q: DeadLetterQueue,
{
    let plan = plan_batch(table, &batch.records);
    let mut outcomes = plan.decided;
    let mut letters = plan.dead_letters;

    // Per id, the newest write; when the store rejects it, the next newest of the batch, and so
    // on: an older record is only stale once a newer one is stored (or already was).
    let older = &plan.older;
    // (record index, the write, what the store answered) of each write tried.
    type Tried<'w> = (usize, &'w Write, Result<Applied, StoreError>);
    let results: Vec<Vec<Tried>> = stream::iter(&plan.writes)
        .map(|(index, write)| async move {
            let mut tried = Vec::new();
            let fallbacks = older.get(&write.id).into_iter().flatten();
            for (index, write) in std::iter::once((index, write)).chain(fallbacks.map(|(i, w)| (i, w))) {
                let result = store.apply(write).await;
                let rejected = matches!(result, Err(StoreError::Rejected { .. }));
                tried.push((*index, write, result));
                if !rejected {
                    break;
                }
            }
            tried
        })
        .buffer_unordered(max_in_flight.get())
        .collect()
        .await;
    let (mut adopted, mut rewinds) = (0, Vec::new());
    for (index, write, result) in results.into_iter().flatten() {
        let is_delete = write.op == WriteOp::Delete;
        outcomes[index] = Some(match result {
            Ok(Applied::Adopted) => {
                adopted += 1;
                if is_delete { Outcome::Deleted } else { Outcome::Written }
            }
            Ok(Applied::Applied) if is_delete => Outcome::Deleted,
            Ok(Applied::Applied) => Outcome::Written,
            Ok(Applied::Stale { stored }) => {
                if let Some(stored) = stored.filter(|s| write.coordinates.rewound_from(s)) {
                    rewinds.push(Rewind {
                        id: write.id.clone(),
                        record: write.coordinates.clone(),
                        stored,
                    });
                }
                Outcome::Stale
            }
            Err(StoreError::Rejected { reason, .. }) => {
                let record = &batch.records[index];
                letters.push((
                    index,
                    dead_letter(table, record, format!("store rejected the item: {reason}")),
                ));
                Outcome::DeadLettered
            }
            Err(unavailable) => return Err(unavailable.into()),
        });
    }

    stream::iter(&letters)
        .map(|(_, letter)| dead_letters.send(letter))
        .buffer_unordered(max_in_flight.get())
        .try_collect::<Vec<()>>()
        .await?;

    let records = batch
        .records
        .iter()
        .zip(outcomes)
        // Every index is decided by the plan or by its write above; Stale is never reached.
        .map(|(record, outcome)| (record.coordinates.clone(), outcome.unwrap_or(Outcome::Stale)))
        .collect();
    Ok(SinkReport {
        format: batch.format,
        records,
        adopted,
        rewinds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::decode::decode_batch;
    use crate::sink::memory::{InMemoryDeadLetterQueue, InMemoryRecordStore};
    use crate::sink::test_events::event;
    use futures_executor::block_on;

    const IN_FLIGHT: NonZeroUsize = NonZeroUsize::new(4).unwrap();

    fn run(
        table: Table,
        file: &str,
        store: &InMemoryRecordStore,
        dlq: &InMemoryDeadLetterQueue,
    ) -> Result<SinkReport, SinkError> {
        let batch = decode_batch(&event(file)).unwrap();
        block_on(sink_batch(table, &batch, store, dlq, IN_FLIGHT))
    }

    fn results(report: &SinkReport) -> Vec<&'static str> {
        report.records.iter().map(|(_, o)| o.as_str()).collect()
    }

    /// The in-memory store, refusing the writes of some offsets as DynamoDB refuses an item
    /// over its size limit.
    struct Refusing<'a>(&'a InMemoryRecordStore, &'a [i64]);

    impl RecordStore for Refusing<'_> {
        async fn apply(&self, write: &crate::sink::Write) -> Result<Applied, StoreError> {
            if self.1.contains(&write.coordinates.offset) {
                return Err(StoreError::Rejected {
                    id: write.id.clone(),
                    reason: "too large".into(),
                });
            }
            self.0.apply(write).await
        }

        async fn rewrite(&self, write: &crate::sink::Write) -> Result<Applied, StoreError> {
            self.0.rewrite(write).await
        }
    }

    #[test]
    fn a_refused_newest_record_falls_back_to_the_next_newest_of_its_id() {
        // confluent-seatool-batch.json: NC-11-020 at offsets 1041 and 1043.
        let batch = decode_batch(&event("confluent-seatool-batch.json")).unwrap();
        let (store, dlq) = (InMemoryRecordStore::new(), InMemoryDeadLetterQueue::new());
        let report = block_on(sink_batch(
            Table::Seatool,
            &batch,
            &Refusing(&store, &[1043]),
            &dlq,
            IN_FLIGHT,
        ))
        .unwrap();
        let got: Vec<&str> = report.records.iter().map(|(_, o)| o.as_str()).collect();
        assert_eq!(got, ["written", "written", "dead-lettered", "written"]);
        assert_eq!(store.get("NC-11-020").map(|i| i.coordinates.offset), Some(1041));
        // Both refused: both dead-lettered, none reported stale.
        let (store, dlq) = (InMemoryRecordStore::new(), InMemoryDeadLetterQueue::new());
        let report = block_on(sink_batch(
            Table::Seatool,
            &batch,
            &Refusing(&store, &[1041, 1043]),
            &dlq,
            IN_FLIGHT,
        ))
        .unwrap();
        let got: Vec<&str> = report.records.iter().map(|(_, o)| o.as_str()).collect();
        assert_eq!(got, ["dead-lettered", "written", "dead-lettered", "written"]);
        assert_eq!(dlq.letters().len(), 2);
    }

    #[test]
    fn a_batch_then_its_replay_then_a_tombstone() {
        let (store, dlq) = (InMemoryRecordStore::new(), InMemoryDeadLetterQueue::new());
        let first = run(Table::Seatool, "confluent-seatool-batch.json", &store, &dlq).unwrap();
        assert_eq!(results(&first), ["stale", "written", "written", "written"]);
        assert_eq!(
            store.get("NC-11-020").unwrap().fields["SPW_STATUS"][0]["SPW_STATUS_DESC"],
            "Approved"
        );

        let replay = run(Table::Seatool, "confluent-seatool-replay.json", &store, &dlq).unwrap();
        assert_eq!(results(&replay), ["stale", "stale"]);
        assert_eq!(
            store.get("NC-11-020").unwrap().coordinates.offset,
            1043,
            "an older replay never regresses"
        );

        let tomb = run(Table::Seatool, "confluent-seatool-tombstone.json", &store, &dlq).unwrap();
        assert_eq!(results(&tomb), ["deleted"]);
        assert!(store.get("VA-24-0007").is_none());
        let again = run(Table::Seatool, "confluent-seatool-replay.json", &store, &dlq).unwrap();
        assert_eq!(results(&again), ["stale", "stale"]);
        assert!(
            store.get("VA-24-0007").is_none(),
            "a replayed older put does not bring the item back"
        );
        assert!(dlq.letters().is_empty());
    }

    #[test]
    fn confluent_response_echoes_coordinates_with_a_result_per_record() {
        let (store, dlq) = (InMemoryRecordStore::new(), InMemoryDeadLetterQueue::new());
        let report = run(Table::Appian, "confluent-appian-batch.json", &store, &dlq).unwrap();
        let response = report.response();
        let items = response.as_array().unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(
            items[0],
            json!({"payload": {"timestamp": 1732435201000_i64, "topic": "aws.appian.cmcs.MCP_SPA_PCKG",
                               "partition": 0, "offset": 310, "result": "stale"}})
        );
        let got: Vec<&str> = items.iter().map(|i| i["payload"]["result"].as_str().unwrap()).collect();
        assert_eq!(got, ["stale", "written", "written", "dead-lettered", "deleted"]);
    }

    #[test]
    fn other_formats_get_a_summary() {
        let (store, dlq) = (InMemoryRecordStore::new(), InMemoryDeadLetterQueue::new());
        let report = run(Table::Seatool, "esm-selfmanaged-seatool.json", &store, &dlq).unwrap();
        assert_eq!(
            report.response(),
            json!({"records": 3, "written": 1, "stale": 0, "deleted": 1, "skipped": 0, "deadLettered": 1})
        );
        let report = run(Table::Seatool, "nordstrom-seatool-batch.json", &store, &dlq).unwrap();
        assert_eq!(report.response()["written"], 1);
        assert_eq!(
            report.response()["stale"],
            1,
            "the tombstone for NC-11-020 is older than the ESM one"
        );
    }

    #[test]
    fn poison_records_go_to_the_dead_letter_queue_and_the_rest_is_written() {
        let (store, dlq) = (InMemoryRecordStore::new(), InMemoryDeadLetterQueue::new());
        let report = run(Table::Seatool, "confluent-seatool-poison.json", &store, &dlq).unwrap();
        assert_eq!(
            results(&report),
            ["dead-lettered", "dead-lettered", "dead-lettered", "written"]
        );
        let letters = dlq.letters();
        let mut offsets: Vec<i64> = letters.iter().map(|l| l.coordinates.offset).collect();
        offsets.sort();
        assert_eq!(offsets, [1060, 1061, 1062]);
        let bad_json = letters.iter().find(|l| l.coordinates.offset == 1060).unwrap();
        assert!(bad_json.reason.starts_with("value is not JSON"));
        assert_eq!(
            bad_json.value.as_deref(),
            Some("{\"STATE_PLAN\": {\"ID_NUMBER\": \"NC-11-020\"")
        );
        assert_eq!(report.counts().dead_lettered, 3);
    }

    #[test]
    fn a_failing_store_fails_the_batch_and_the_redelivery_completes_it() {
        let (store, dlq) = (InMemoryRecordStore::new(), InMemoryDeadLetterQueue::new());
        store.fail_after(1);
        let err = run(Table::Seatool, "confluent-seatool-batch.json", &store, &dlq).unwrap_err();
        assert!(
            matches!(err, SinkError::Store(StoreError::Unavailable { .. })),
            "{err:?}"
        );
        store.heal();
        let report = run(Table::Seatool, "confluent-seatool-batch.json", &store, &dlq).unwrap();
        assert_eq!(store.items().len(), 3);
        let counts = report.counts();
        assert_eq!(counts.written + counts.stale, 4, "{counts:?}");
    }

    #[test]
    fn a_failing_dead_letter_queue_fails_the_batch() {
        let (store, dlq) = (InMemoryRecordStore::new(), InMemoryDeadLetterQueue::new());
        dlq.set_failing(true);
        let err = run(Table::Seatool, "confluent-seatool-poison.json", &store, &dlq).unwrap_err();
        assert!(matches!(err, SinkError::DeadLetter(_)), "{err:?}");
        assert!(
            err.to_string().contains("aws.ksqldb.seatool.agg.State_Plan-0@106"),
            "{err}"
        );
    }
}
