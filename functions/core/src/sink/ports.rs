//! What the sink needs from the world. Adapters implement these with DynamoDB and SQS; the
//! [`memory`](super::memory) module implements them in memory for use-case tests.

use std::future::Future;

use super::mapping::Write;
use super::plan::DeadLetter;
use super::record::Coordinates;

/// Boxed source error carried across the port boundary.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Whether a conditional write took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The store now shows this record (or, for a delete, no longer shows the item).
    Applied,
    /// As [`Applied::Applied`], over an item the sink did not write (the original tables'
    /// items, before the cut-over), which is older than any record.
    Adopted,
    /// The store holds a record at least as new, at `stored` when the store says: nothing changed.
    Stale {
        /// The stored record's coordinates, if the store returned them.
        stored: Option<Coordinates>,
    },
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store refused this item and always will (too large, a bad attribute): the record goes
    /// to the dead-letter queue instead of failing the batch forever.
    #[error("store rejected item {id}: {reason}")]
    Rejected {
        /// The record id.
        id: String,
        /// The store's reason.
        reason: String,
    },
    /// The store is failing (after the client's retries): the batch must be delivered again.
    #[error("store unavailable writing item {id}")]
    Unavailable {
        /// The record id.
        id: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

/// Where items are stored. Every write is conditional on the stored coordinates (see
/// [`Coordinates::supersedes`]), and a delete leaves a tombstone carrying its coordinates so that
/// an older put replayed later cannot bring the item back.
pub trait RecordStore: Send + Sync {
    /// Applies one write if its record is newer than what is stored for its id.
    fn apply(&self, write: &Write) -> impl Future<Output = Result<Applied, StoreError>> + Send;

    /// As [`apply`](Self::apply), and also over an item written by this very record (same
    /// coordinates): a repair puts right an item whose content differs from its record, and still
    /// never overwrites a newer one.
    fn rewrite(&self, write: &Write) -> impl Future<Output = Result<Applied, StoreError>> + Send;
}

/// The dead-letter queue failed to take a record.
#[derive(Debug, thiserror::Error)]
#[error("dead-letter queue refused the record at {topic}-{partition}@{offset}")]
pub struct DeadLetterError {
    /// Topic of the record.
    pub topic: String,
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

/// Where records that can never be stored go, so that nothing is lost silently.
pub trait DeadLetterQueue: Send + Sync {
    /// Sends one dead letter.
    fn send(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), DeadLetterError>> + Send;
}
