//! `connectorctl dlq list|show|replay`: the sink's dead letters, read back and, after a fix, put
//! through the same sink code again (`sink_batch`, the same conditional writes), so that a replay
//! never regresses a newer record. A letter is deleted only once its record is stored (or found
//! older than what is stored); every other letter is left in the queue, visible again at once.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use connector_adapters::dynamodb::DynamoDbRecordStore;
use connector_adapters::sqs::{Received, SqsDeadLetterQueue};
use connector_core::monitor::audit::AuditKind;
use connector_core::sink::plan::{ReadLetter, claim_check_of, read_letter};
use connector_core::sink::ports::{DeadLetterError, DeadLetterQueue};
use connector_core::sink::{DeadLetter, InputFormat, Outcome, SourceBatch, sink_batch};
use serde_json::{Value, json};

use crate::Failure;
use crate::cluster::sdk;
use crate::context::Context;
use crate::output::table;

/// How long a receive hides the letters from the sink and other readers while we work on them.
pub(crate) const HOLD: Duration = Duration::from_secs(120);
/// Writes in flight during a replay (the functions' default is 16; a laptop needs fewer).
const IN_FLIGHT: NonZeroUsize = NonZeroUsize::new(8).unwrap();

pub(crate) fn queue(sdk: &aws_config::SdkConfig, url: &str) -> SqsDeadLetterQueue {
    // Claim checks name their own bucket: this one only reads them.
    SqsDeadLetterQueue::new(connector_adapters::sqs::Client::new(sdk), url)
        .with_claim_checks(connector_adapters::sqs::s3_client(sdk), "")
}

/// Receives every letter (up to `limit`), each read back (from S3 for a claim check) or with
/// why it cannot be.
async fn receive(q: &SqsDeadLetterQueue, limit: usize) -> Result<Vec<(Received, Result<ReadLetter, String>)>, Failure> {
    let messages = q.receive(limit, HOLD).await.map_err(Failure::Unreachable)?;
    let mut letters = Vec::new();
    for m in messages {
        let letter = match claim_check_of(&m.body) {
            Some(claim) => q.fetch_claim(&claim).await.and_then(|body| read_letter(&body)),
            None => read_letter(&m.body),
        };
        letters.push((m, letter));
    }
    Ok(letters)
}

pub(crate) async fn release_all<'a>(q: &SqsDeadLetterQueue, messages: impl IntoIterator<Item = &'a Received>) {
    for m in messages {
        // Unreleased, a letter is visible again after HOLD anyway: nothing is lost.
        let _ = q.release(m).await;
    }
}

fn row(message: &Received, letter: &Result<ReadLetter, String>) -> Value {
    match letter {
        Ok(l) => json!({"letter": l.name(), "table": l.table, "reason": l.reason, "messageId": message.message_id}),
        Err(why) => json!({"letter": "?", "table": "?", "reason": why, "messageId": message.message_id}),
    }
}

fn print_rows(rows: &[Value], columns: &[(&str, &str)], json: bool) {
    if json {
        outln!("{}", serde_json::to_string_pretty(rows).unwrap_or_default());
        return;
    }
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let cells = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|(_, field)| r[*field].as_str().unwrap_or("").chars().take(100).collect())
                .collect()
        })
        .collect();
    out!("{}", table(&headers, cells));
}

/// `connectorctl dlq list --queue URL`.
pub async fn list(ctx: &Context, queue_url: &str, limit: usize, json: bool) -> Result<(), Failure> {
    let q = queue(&sdk(ctx).await, queue_url);
    let letters = receive(&q, limit).await?;
    release_all(&q, letters.iter().map(|(m, _)| m)).await;
    let rows: Vec<Value> = letters.iter().map(|(m, l)| row(m, l)).collect();
    print_rows(
        &rows,
        &[("LETTER", "letter"), ("TABLE", "table"), ("REASON", "reason")],
        json,
    );
    if !json {
        outln!("{} dead letter(s)", rows.len());
    }
    Ok(())
}

/// `connectorctl dlq show LETTER --queue URL`: one letter whole, key and value decoded.
pub async fn show(ctx: &Context, queue_url: &str, name: &str) -> Result<(), Failure> {
    let q = queue(&sdk(ctx).await, queue_url);
    let letters = receive(&q, usize::MAX).await?;
    release_all(&q, letters.iter().map(|(m, _)| m)).await;
    let found = letters.iter().find_map(|(m, l)| match l {
        Ok(l) if l.name() == name => Some((m, l)),
        _ => None,
    });
    let Some((message, letter)) = found else {
        return Err(Failure::Input(format!(
            "no dead letter {name} in the queue (connectorctl dlq list)"
        )));
    };
    let c = &letter.record.coordinates;
    let doc = json!({"letter": name, "messageId": message.message_id, "table": letter.table, "reason": letter.reason,
                     "topic": c.topic, "partition": c.partition, "offset": c.offset, "timestamp": c.timestamp,
                     "epoch": c.epoch, "key": letter.record.key.raw_text(), "value": letter.record.value.raw_text()});
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(())
}

/// Collects what the replay dead-letters again, instead of sending a second letter.
#[derive(Default)]
struct Again(Mutex<Vec<DeadLetter>>);

impl DeadLetterQueue for Again {
    async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(letter.clone());
        Ok(())
    }
}

/// `connectorctl dlq replay --queue URL --table-name NAME --table seatool|appian`.
pub async fn replay(
    ctx: &Context,
    queue_url: &str,
    table_name: &str,
    kind: &str,
    tombstone_ttl: Option<Duration>,
    json: bool,
) -> Result<(), Failure> {
    let table_kind = crate::sink::table_kind(kind)?;
    let sdk = sdk(ctx).await;
    let q = queue(&sdk, queue_url);
    let letters = receive(&q, usize::MAX).await?;
    let mut rows = Vec::new();
    let mut left = Vec::new();
    let mut mine: Vec<(Received, ReadLetter)> = Vec::new();
    for (message, letter) in letters {
        match letter {
            Ok(l) if l.table == table_kind.name() => mine.push((message, l)),
            Ok(l) => {
                rows.push(
                    json!({"letter": l.name(), "result": "left", "reason": format!("for the {} table", l.table)}),
                );
                left.push(message);
            }
            Err(why) => {
                rows.push(json!({"letter": "?", "result": "left", "reason": why, "messageId": message.message_id}));
                left.push(message);
            }
        }
    }
    // Kafka order, as the connector delivers: the same plan and conditions as the function.
    mine.sort_by(|(_, a), (_, b)| {
        let (a, b) = (&a.record.coordinates, &b.record.coordinates);
        (a.epoch, &a.topic, a.partition, a.offset).cmp(&(b.epoch, &b.topic, b.partition, b.offset))
    });
    let batch = SourceBatch {
        format: InputFormat::Confluent,
        records: mine.iter().map(|(_, l)| l.record.clone()).collect(),
    };
    let store = DynamoDbRecordStore::new(connector_adapters::dynamodb::Client::new(&sdk), table_name)
        .with_tombstone_ttl(tombstone_ttl);
    let again = Again::default();
    let report = match sink_batch(table_kind, &batch, &store, &again, IN_FLIGHT).await {
        Ok(report) => report,
        Err(e) => {
            release_all(&q, left.iter().chain(mine.iter().map(|(m, _)| m))).await;
            return Err(Failure::Unreachable(format!(
                "replay stopped, every letter left in the queue: {}",
                connector_core::error_chain(&e)
            )));
        }
    };
    let again = again.0.into_inner().unwrap_or_else(|e| e.into_inner());
    for ((message, letter), (_, outcome)) in mine.iter().zip(&report.records) {
        let (result, reason) = match outcome {
            Outcome::DeadLettered => {
                let c = &letter.record.coordinates;
                let why = again
                    .iter()
                    .find(|d| d.coordinates == *c)
                    .map_or(String::new(), |d| d.reason.clone());
                left.push(message.clone());
                ("left", why)
            }
            stored => match q.delete(message).await {
                Ok(()) => {
                    if let Some(claim) = claim_check_of(&message.body) {
                        // The letter is gone; an object left behind expires with the bucket's rule.
                        let _ = q.delete_claim(&claim).await;
                    }
                    (stored.as_str(), String::new())
                }
                Err(why) => ("stored, not deleted", why),
            },
        };
        rows.push(json!({"letter": letter.name(), "result": result, "reason": reason}));
    }
    release_all(&q, &left).await;
    if !mine.is_empty() {
        let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for r in &rows {
            *counts.entry(r["result"].as_str().unwrap_or("?")).or_default() += 1;
        }
        let outcome: Vec<String> = counts.iter().map(|(result, n)| format!("{n} {result}")).collect();
        let outcome = format!("replayed from {queue_url}: {}", outcome.join(", "));
        crate::audit::record(ctx, table_name, AuditKind::DlqReplay, &outcome).await;
    }
    let failed = rows
        .iter()
        .filter(|r| !matches!(r["result"].as_str(), Some("written" | "stale" | "deleted" | "skipped")))
        .count();
    print_rows(
        &rows,
        &[("LETTER", "letter"), ("RESULT", "result"), ("REASON", "reason")],
        json,
    );
    if failed > 0 {
        return Err(Failure::Unhealthy(format!(
            "{failed} letter(s) not replayed, left in the queue"
        )));
    }
    Ok(())
}
