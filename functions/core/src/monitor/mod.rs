//! The health monitor behind `testConnectors`: from a trace to a cause, from a finding to an
//! action and an alert, once per incident.
//!
//! Core layer: pure functions with `now` passed in, and use cases over ports. Each sub-module
//! imports only from those listed above it, never from one that imports it:
//!
//! - [`time`] — instants and durations as text.
//! - [`judge`] — what is wrong with a connector, why, and what to do about it: causes, findings,
//!   the restart policy, one run's evaluation, consumer lag.
//! - [`alerting`] — incidents and their messages: open, reminder, escalation, resolved, and many
//!   connectors failing on one cause as one cluster incident.
//! - [`events`] — ECS task state changes and CloudWatch alarm state changes, as findings and
//!   incidents.
//! - [`audit`] — the trail of every automated action and every decision to stand back.
//! - [`config`] — `testConnectors`' settings, read from its environment variables.
//! - [`ports`] — the monitor-state store, the alert publisher, the workers and the clock;
//!   [`memory`] — their in-memory twins.
//! - The use cases: [`run`] (`testConnectors`' run, [`run::Monitor`]) and [`lifecycle`] (raise
//!   and clear an incident of an event-like check: alarms, verified windows).

pub mod alerting;
pub mod audit;
pub mod config;
pub mod events;
pub mod judge;
pub mod lifecycle;
pub mod memory;
pub mod ports;
pub mod run;
pub mod time;
