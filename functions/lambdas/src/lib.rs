//! The edges of `connector`: one Lambda binary per function, named exactly as the seed names
//! it (`sinkSeatoolData`, `sinkAppianData`, ...), each a few lines over this library.
//!
//! Edge layer: reads the environment once per cold start into a typed configuration, builds the
//! adapters once, and runs a handler that parses the event, calls a core use case, and maps its
//! errors to a small fixed set of Lambda error types. A handler never panics on input.
//!
//! - [`config`] — reading and validating environment variables, every problem in one message.
//! - [`sink`] — the sink functions' configuration, handler and `main`.
//! - [`control`] — `findTaskIp`, `checkIfConnectIsReady`, `createConnector`, `deleteConnector`.
//! - [`alarm_state`] — `alarmState`: CloudWatch alarms as alerts.
//! - [`ecs_task_state`] — `ecsTaskState`: ECS task stops as alerts.
//! - [`monitor`] — `testConnectors`: configuration, handler and `main`.
//! - [`verify_sinks`] — `verifySinks`: each sink's last window against its table, on a schedule.
//! - [`logging`] — JSON `tracing` output for CloudWatch Logs.

// verifySinks' future nests the Kafka client's, the SDK's and the alert lifecycle's deeply.
#![recursion_limit = "256"]

pub mod alarm_state;
pub mod config;
pub mod control;
pub mod ecs_task_state;
pub mod logging;
pub mod monitor;
pub mod sink;
pub mod verify_sinks;

pub use connector_adapters::now_millis;
