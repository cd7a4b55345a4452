//! [`DynamoDbTableReader`]: a sink table read back for `verify` — scanned in parallel segments,
//! or key by key in batches — never written. Its own module, apart from the sink's writes in
//! [`dynamodb`](crate::dynamodb): the sink functions never read a table whole.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use connector_core::sink::verify::{ItemLookup, ItemScanner, ReadError, TableItem};
use serde_json::Value;

use crate::dynamodb::{from_attribute, key};

/// Items a scan page asks for: DynamoDB stops a page at 1 MB anyway, but a page that size took
/// moto over the 10 s call timeout on a 20,000-item table (`tests/demo/verify_perf.rs`), and a
/// smaller page is as cheap per item on DynamoDB.
const SCAN_PAGE_ITEMS: i32 = 1_000;

/// Rounds of `BatchGetItem` for the keys DynamoDB left unprocessed (throttling) before the read
/// counts as failed; the waits between them double from 50 ms (50 ms to 6.4 s in all).
const UNPROCESSED_ROUNDS: u32 = 8;

/// One sink table, read.
#[derive(Debug, Clone)]
pub struct DynamoDbTableReader {
    client: Client,
    table: String,
    consistent: bool,
}

impl DynamoDbTableReader {
    /// A reader of `table`; `consistent` reads see every write acknowledged before them.
    pub fn new(client: Client, table: impl Into<String>, consistent: bool) -> Self {
        Self {
            client,
            table: table.into(),
            consistent,
        }
    }

    /// A missing table is a mistake in what was asked; anything else, an outage.
    fn failed<E, R>(&self, what: String, e: SdkError<E, R>) -> ReadError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        if let SdkError::ServiceError(s) = &e
            && s.err().code() == Some("ResourceNotFoundException")
        {
            return ReadError::NotFound(format!("no DynamoDB table {}", self.table));
        }
        ReadError::Unavailable {
            what,
            source: Box::new(e),
        }
    }
}

fn table_item(item: &HashMap<String, AttributeValue>) -> Option<TableItem> {
    let json: serde_json::Map<String, Value> = item.iter().map(|(k, v)| (k.clone(), from_attribute(v))).collect();
    TableItem::from_json(json)
}

impl ItemScanner for DynamoDbTableReader {
    type Cursor = HashMap<String, AttributeValue>;

    async fn scan_page(
        &self,
        segment: u32,
        segments: u32,
        cursor: Option<Self::Cursor>,
    ) -> Result<(Vec<TableItem>, Option<Self::Cursor>), ReadError> {
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(self.consistent)
            .limit(SCAN_PAGE_ITEMS)
            .set_exclusive_start_key(cursor);
        if segments > 1 {
            // Both or neither: DynamoDB refuses a segment without the total.
            scan = scan.segment(segment as i32).total_segments(segments as i32);
        }
        let page = scan.send().await.map_err(|e| {
            let what = format!(
                "cannot scan DynamoDB table {} (segment {segment} of {segments})",
                self.table
            );
            self.failed(what, e)
        })?;
        let items = page.items().iter().filter_map(table_item).collect();
        let next = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        Ok((items, next))
    }
}

impl ItemLookup for DynamoDbTableReader {
    async fn get_items(&self, ids: &[String]) -> Result<Vec<TableItem>, ReadError> {
        let mut keys: Vec<HashMap<String, AttributeValue>> = ids.iter().map(|id| key(id)).collect();
        let mut found = Vec::new();
        let mut wait = Duration::from_millis(50);
        for round in 0..UNPROCESSED_ROUNDS {
            if keys.is_empty() {
                return Ok(found);
            }
            if round > 0 {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(self.consistent)
                .build()
                .map_err(|e| ReadError::Unavailable {
                    what: "cannot build a BatchGetItem request".into(),
                    source: Box::new(e),
                })?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| {
                    self.failed(
                        format!("cannot read {} keys of DynamoDB table {}", ids.len(), self.table),
                        e,
                    )
                })?;
            if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().filter_map(table_item));
            }
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
        }
        if keys.is_empty() {
            return Ok(found);
        }
        Err(ReadError::Unavailable {
            what: format!(
                "DynamoDB table {} left {} keys unread after {UNPROCESSED_ROUNDS} rounds",
                self.table,
                keys.len()
            ),
            source: "throttled (UnprocessedKeys)".into(),
        })
    }
}
