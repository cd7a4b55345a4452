//! Kafka Connect as the control plane sees it: connectors, tasks, their states, where the
//! workers are, and the configs they should run.
//!
//! Core layer: plain types and port traits; the REST client, ECS discovery and Secrets Manager
//! live in `connector-adapters`.
//!
//! - [`model`] — connector and task status, connector info and configs (with redaction).
//! - [`ports`] — `ConnectApi`, `TaskDiscovery`, `ConnectorConfigs` and their typed errors.
//! - [`wire`] — the REST bodies (JSON) read into the model.
//! - [`resume`] — a sink connector applied without resuming into an empty table behind its
//!   committed offsets.
//! - [`control`] — the control-plane use cases behind `findTaskIp`, `checkIfConnectIsReady`,
//!   `createConnector` and `deleteConnector`, and the payload shapes they accept.

pub mod control;
pub mod model;
pub mod ports;
pub mod resume;
pub mod wire;

pub use model::{
    ComponentStatus, ConnectorConfig, ConnectorInfo, ConnectorStatus, ConnectorView, PluginInfo, SinkOffset, State,
    TaskStatus, WorkerInfo,
};
pub use ports::{ConnectApi, ConnectError, ConnectorConfigs, RunningTask, TaskDiscovery};
