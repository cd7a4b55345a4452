//! What is wrong with a connector, why, and what to do about it. Pure: what the worker and the
//! brokers report, the state kept from earlier runs and `now` come in; findings, actions and the
//! state to keep come out. It decides; it neither calls anything nor alerts, and it knows
//! nothing of incidents, events or storage.
//!
//! - [`cause`] — the root cause of a FAILED trace, its cause id and fingerprint.
//! - [`finding`] — categories, severities, findings.
//! - [`restart`] — the restart policy: backoff schedule, budget, reset after stability.
//! - [`state`] — what a run keeps per connector and cluster, its settings, its actions and its
//!   outcome: the types [`evaluate`] and [`lag`] share.
//! - [`evaluate`] — one run's judgement of the connectors' status.
//! - [`lag`] — consumer progress: a RUNNING consumer that consumes nothing.

pub mod cause;
pub mod evaluate;
pub mod finding;
pub mod lag;
pub mod restart;
pub mod state;
