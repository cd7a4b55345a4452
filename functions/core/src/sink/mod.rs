//! The DynamoDB sink: from a batch delivered by a Kafka-to-Lambda bridge to conditional writes.
//!
//! Core layer: depends on serde, thiserror, base64 and runtime-free futures combinators only.
//!
//! The promise this module keeps: the table ends as if every record had been applied exactly once
//! in Kafka order, however often and in whatever slices a batch is delivered again.
//!
//! - [`record`] — Kafka coordinates and their order (which record is newer).
//! - [`decode`] — the three input formats, detected from the shape.
//! - [`mapping`] — key derivation and items, per table.
//! - [`number`] — numbers as DynamoDB holds them.
//! - [`plan`] — per-batch dedupe into the writes to make.
//! - [`ports`] — what the sink needs from the world: a record store and a dead-letter queue.
//! - [`memory`] — in-memory twins of the ports, with the same semantics as the DynamoDB adapter.
//! - [`apply`] — the use case: one batch, end to end, and its response.
//! - [`verify`] — the oracle: the table against the topic, by class, and the repair.

pub mod apply;
pub mod decode;
pub mod mapping;
pub mod memory;
pub mod number;
pub mod plan;
pub mod ports;
pub mod record;
#[cfg(test)]
mod test_events;
pub mod verify;

pub use apply::{Counts, Rewind, SinkError, SinkReport, sink_batch};
pub use decode::{DecodeError, InputFormat, SourceBatch, decode_batch};
pub use mapping::{Table, Write, WriteOp};
pub use plan::{DeadLetter, Outcome};
pub use record::{Coordinates, Field, SourceRecord};
