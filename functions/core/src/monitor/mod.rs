//! The health monitor behind `testConnectors`: from a trace to a cause, from a finding to an
//! action and an alert, once per incident.
//!
//! Core layer: pure functions with `now` passed in, and a use case over ports.
//!
//! - [`config`] — `testConnectors`' settings, read from its environment variables.
//! - [`cause`] — the root cause of a FAILED trace, its cause id and fingerprint.
//! - [`restart`] — the restart policy: backoff schedule, budget, reset after stability.
//! - [`finding`] — categories, severities, findings.
//! - [`ecs`] — ECS task state changes: why a task stopped, and when one runs again.
//! - [`evaluate`] — one run's judgement: findings, actions, state to keep.
//! - [`alarm`] — CloudWatch alarm state changes, read against `alarms/catalogue.json`.
//! - [`group`] — many connectors failing on one cause alerted as one cluster incident.
//! - [`alert`] — the incident lifecycle (open, reminder, resolved) and the message format.
//! - [`lifecycle`] — raise and clear an incident of an event-like check (alarms, verified windows).
//! - [`audit`] — the trail of every automated action and every decision to stand back.
//! - [`ports`] — the monitor-state store, the alert publisher, the workers and the clock.
//! - [`memory`] — their in-memory twins.
//! - [`run`] — the use case: [`run::Monitor`].
//! - [`time`] — instants and durations as text.

pub mod alarm;
pub mod alert;
pub mod audit;
pub mod cause;
pub mod config;
pub mod ecs;
pub mod evaluate;
pub mod finding;
pub mod group;
pub mod lag;
pub mod lifecycle;
pub mod memory;
pub mod ports;
pub mod restart;
pub mod run;
pub mod time;
