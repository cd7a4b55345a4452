//! A sink function wired to a table and dead-letter queue of its own, for the integration tests.

use std::num::NonZeroUsize;
use std::time::Duration;

use aws_config::SdkConfig;
use connector_adapters::dynamodb::DynamoDbRecordStore;
use connector_adapters::sqs::SqsDeadLetterQueue;
use connector_core::sink::Table;
use connector_lambdas::sink::{SinkConfig, SinkFailure, handle};
use serde_json::Value;

use crate::{create_queue, create_sink_table, event, get_item, sdk, unique};

/// The tombstone TTL the test sinks use.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(35 * 86_400);

/// A sink wired to its own table and queue on moto.
pub struct Sink {
    /// moto, straight: for setting up and reading back.
    pub sdk: SdkConfig,
    /// The table kind.
    pub table: Table,
    /// The function's configuration.
    pub config: SinkConfig,
    /// The store the function writes through.
    pub store: DynamoDbRecordStore,
    /// The dead-letter queue the function sends to.
    pub dlq: SqsDeadLetterQueue,
}

impl Sink {
    /// A sink on a new table and queue of its own, writing to moto.
    pub async fn new(table: Table) -> Self {
        let sdk = sdk().await;
        let (name, queue) = Self::table_and_queue(&sdk, table).await;
        Self::with(sdk, table, name, queue)
    }

    /// As [`Sink::new`], but writing through the fault proxy (set up and read back straight).
    pub async fn through_faults(table: Table) -> Self {
        let sdk = sdk().await;
        let (name, queue) = Self::table_and_queue(&sdk, table).await;
        let mut sink = Self::with(crate::faults::sdk_through_faults().await, table, name, queue);
        sink.sdk = sdk;
        sink
    }

    /// As [`Sink::new`], with a bucket of its own for the claim checks of large dead letters.
    pub async fn with_claim_checks(table: Table) -> Self {
        let mut sink = Self::new(table).await;
        let bucket = unique("dead-letters").to_lowercase();
        let s3 = connector_adapters::sqs::s3_client(&sink.sdk);
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create a bucket");
        sink.dlq = sink.dlq.with_claim_checks(s3, &bucket);
        sink.config.dead_letter_bucket = Some(bucket);
        sink
    }

    async fn table_and_queue(sdk: &SdkConfig, table: Table) -> (String, String) {
        let name = unique(table.name());
        create_sink_table(sdk, &name).await;
        (name, create_queue(sdk, &unique("dlq")).await)
    }

    /// A sink on an existing table and queue, writing with `sdk`.
    pub fn with(sdk: SdkConfig, table: Table, name: String, queue: String) -> Self {
        let config = SinkConfig {
            table_name: name.clone(),
            dead_letter_queue_url: queue.clone(),
            max_in_flight: NonZeroUsize::new(8).unwrap(),
            metrics_namespace: "connector-test".into(),
            dead_letter_bucket: None,
            epoch: 0,
            tombstone_ttl: Some(TOMBSTONE_TTL),
        };
        let store = DynamoDbRecordStore::new(aws_sdk_dynamodb::Client::new(&sdk), name)
            .with_tombstone_ttl(config.tombstone_ttl);
        let dlq = SqsDeadLetterQueue::new(aws_sdk_sqs::Client::new(&sdk), queue);
        Self {
            sdk,
            table,
            config,
            store,
            dlq,
        }
    }

    /// Invokes the handler with `events/sink/FILE`.
    pub async fn send(&self, file: &str) -> Result<Value, SinkFailure> {
        handle(
            self.table,
            &self.config,
            &self.store,
            &self.dlq,
            &event(&format!("sink/{file}")),
        )
        .await
    }

    /// Invokes the handler with `batch`.
    pub async fn send_batch(&self, batch: &Value) -> Result<Value, SinkFailure> {
        handle(self.table, &self.config, &self.store, &self.dlq, batch).await
    }

    /// The per-record results of `events/sink/FILE`.
    pub async fn results(&self, file: &str) -> Vec<String> {
        self.results_of(&event(&format!("sink/{file}"))).await
    }

    /// The per-record results of a Confluent batch.
    pub async fn results_of(&self, batch: &Value) -> Vec<String> {
        let response = self.send_batch(batch).await.unwrap_or_else(|e| panic!("{batch}: {e}"));
        response
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["payload"]["result"].as_str().unwrap().to_string())
            .collect()
    }

    /// The item of `id` as a reader sees it.
    pub async fn get(&self, id: &str) -> Option<Value> {
        get_item(&self.sdk, &self.config.table_name, id).await
    }
}
