//! Adapters of `connector`: one module per outside system, each implementing a port of
//! `connector-core` with a real client.
//!
//! Adapter layer: may depend on the core, the AWS SDK, reqwest and tokio's timers, never on the
//! Lambda runtime. Adapters take their clients and names as constructor arguments and never
//! read the environment; the edges (Lambda `main`, the CLI) build them once.
//!
//! - [`dynamodb`] — [`DynamoDbRecordStore`](dynamodb::DynamoDbRecordStore): sink items with
//!   conditional writes and tombstone markers.
//! - [`sink_table`] — [`DynamoDbTableReader`](sink_table::DynamoDbTableReader): a sink table read back (scan, batched gets) for `verify`.
//! - [`table_probe`] — [`DynamoDbTableProbe`](table_probe::DynamoDbTableProbe): whether a sink table is empty.
//! - [`sqs`] — [`SqsDeadLetterQueue`](sqs::SqsDeadLetterQueue): records that can never be stored.
//! - [`connect`] — [`HttpConnectApi`](connect::HttpConnectApi): the Kafka Connect REST API.
//! - [`ecs`] — [`EcsTaskDiscovery`](ecs::EcsTaskDiscovery): the running Connect workers' addresses.
//! - [`kafka`] — [`KafkaBrokers`](kafka::KafkaBrokers): partition ends and record timestamps, for the lag.
//! - [`secrets`] — [`SecretsManagerConfigs`](secrets::SecretsManagerConfigs): desired connector configs.
//! - [`sns`] — [`SnsAlertPublisher`](sns::SnsAlertPublisher): alerts.
//! - [`monitor_state`] — [`DynamoDbMonitorStore`](monitor_state::DynamoDbMonitorStore): restart counters and incidents.
//! - [`aws`] — the shared SDK configuration: timeouts and retries for every call.
//! - [`fleet`] — [`Fleet`](fleet::Fleet): several Connect clusters, each its own monitor, run at once.
//! - [`deployed`] — the monitor as deployed, built from these adapters (the Lambda and the CLI).
//! - [`SystemClock`] — the wall clock, for the monitor's run budget.
#![warn(missing_docs)]

pub mod aws;
pub mod connect;
pub mod deployed;
pub mod dynamodb;
pub mod ecs;
pub mod fleet;
pub mod kafka;
pub mod kafka_wire;
pub mod monitor_state;
pub mod secrets;
pub mod sink_table;
pub mod sns;
pub mod sqs;
pub mod table_probe;

/// Milliseconds since the epoch: the one clock read at the edges, passed into the core as `now`.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// [`Clock`](connector_core::monitor::ports::Clock) on the system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl connector_core::monitor::ports::Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        now_millis()
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await
    }
}
