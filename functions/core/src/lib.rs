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
//! - [`sink`] — the DynamoDB sink: input decoding, item mapping, ordering, the ports it writes
//!   through, and the use case that applies one batch.
//! - [`metrics`] — CloudWatch Embedded Metric Format lines (built here, printed by the edges).
#![warn(missing_docs)]

pub mod metrics;
pub mod sink;
