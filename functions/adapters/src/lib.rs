//! Adapters of `connector`: one module per outside system, each implementing a port of
//! `connector-core` with a real client.
//!
//! Adapter layer: may depend on the core, the AWS SDK, reqwest and tokio's timers, never on the
//! Lambda runtime. Adapters take their clients and names as constructor arguments and never
//! read the environment; the edges (Lambda `main`, the CLI) build them once.
//!
//! - [`dynamodb`] — [`DynamoDbRecordStore`](dynamodb::DynamoDbRecordStore): sink items with
//!   conditional writes and tombstone markers.
//! - [`sqs`] — [`SqsDeadLetterQueue`](sqs::SqsDeadLetterQueue): records that can never be stored.
//! - [`connect`] — [`HttpConnectApi`](connect::HttpConnectApi): the Kafka Connect REST API.
//! - [`ecs`] — [`EcsTaskDiscovery`](ecs::EcsTaskDiscovery): the running Connect workers' addresses.
//! - [`secrets`] — [`SecretsManagerConfigs`](secrets::SecretsManagerConfigs): desired connector configs.
//! - [`sns`] — [`SnsAlertPublisher`](sns::SnsAlertPublisher): alerts.
//! - [`monitor_state`] — [`DynamoDbMonitorStore`](monitor_state::DynamoDbMonitorStore): restart counters and incidents.
//! - [`aws`] — the shared SDK configuration: timeouts and retries for every call.
#![warn(missing_docs)]

pub mod aws;
pub mod connect;
pub mod dynamodb;
pub mod ecs;
pub mod monitor_state;
pub mod secrets;
pub mod sns;
pub mod sqs;
