//! Pure core of `connector`: models, decoding, mapping and policies.
//!
//! This crate does no I/O, reads no clock and no environment, and depends on no async runtime:
//! the build enforces that, since nothing here can reach reqwest, the AWS SDK or tokio. Time is a
//! parameter (`now`), and the outside world is reached only through the port traits, which the
//! `connector-adapters` crate implements with real clients and this crate implements in memory
//! for use-case tests.
//!
//! # Layout
//!
//! - [`config`] — typed settings read through a lookup function (the environment, at the edges).
//! - [`classify`] — any supported event or Connect body to the findings the handlers would make.
//! - [`connect`] — Kafka Connect: status model, ports (REST, ECS, Secrets Manager), control-plane use cases.
//! - [`sink`] — the DynamoDB sink: input decoding, item mapping, ordering, the ports it writes
//!   through, and the use case that applies one batch.
//! - [`monitor`] — the health monitor: causes, restart policy, findings, alert lifecycle, the run.
//! - [`metrics`] — CloudWatch Embedded Metric Format lines (built here, printed by the edges).
#![warn(missing_docs)]

pub mod classify;
pub mod config;
pub mod connect;
pub mod metrics;
pub mod monitor;
pub mod redact;
pub mod sink;

/// An error and all its sources on one line: SDK and HTTP errors keep the useful part in their
/// sources, and a log line or an alert needs all of it.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
