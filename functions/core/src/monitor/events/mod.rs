//! Events from outside the worker, turned into findings and incidents: ECS task state changes
//! (why a task stopped, and when one runs again) and CloudWatch alarm state changes (read against
//! `alarms/catalogue.json`). Pure; it may use [`judge`](super::judge)'s findings and
//! [`alerting`](super::alerting)'s incidents, and nothing above them.
//!
//! - [`ecs`] — ECS task state changes.
//! - [`alarm`] — CloudWatch alarm state changes.

pub mod alarm;
pub mod ecs;
