//! In-memory twins of the sink's ports, for use-case and property tests.
//!
//! [`InMemoryRecordStore`] keeps the semantics the DynamoDB adapter implements with conditions:
//! each id holds one record, an item or the tombstone that deleted it, and a write (put or
//! delete) lands only when newer than that record.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::mapping::{Write, WriteOp};
use super::plan::DeadLetter;
use super::ports::{Applied, DeadLetterError, DeadLetterQueue, RecordStore, StoreError};
use super::record::Coordinates;

/// A stored item: its record's coordinates and fields.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    /// Coordinates of the record that wrote it.
    pub coordinates: Coordinates,
    /// The value fields.
    pub fields: Map<String, Value>,
}

/// One visible change in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The record id.
    pub id: String,
    /// The coordinates of the record that made the change.
    pub coordinates: Coordinates,
    /// Whether the item is now present (a put) or absent (a tombstone).
    pub present: bool,
}

#[derive(Debug, Default)]
struct State {
    items: HashMap<String, StoredItem>,
    markers: HashMap<String, Coordinates>,
    history: Vec<Change>,
    fail_after: Option<usize>,
}

/// A record store in memory.
#[derive(Debug, Default)]
pub struct InMemoryRecordStore {
    state: Mutex<State>,
}

impl InMemoryRecordStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every write after the next `n` fail as [`StoreError::Unavailable`].
    pub fn fail_after(&self, n: usize) {
        self.lock().fail_after = Some(n);
    }

    /// Lets writes succeed again.
    pub fn heal(&self) {
        self.lock().fail_after = None;
    }

    /// The item stored for `id`, if any.
    pub fn get(&self, id: &str) -> Option<StoredItem> {
        self.lock().items.get(id).cloned()
    }

    /// All stored items by id.
    pub fn items(&self) -> HashMap<String, StoredItem> {
        self.lock().items.clone()
    }

    /// Every visible change so far, in order.
    pub fn history(&self) -> Vec<Change> {
        self.lock().history.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply_now(&self, write: &Write, same_record_too: bool) -> Result<Applied, StoreError> {
        let mut state = self.lock();
        if let Some(n) = state.fail_after.as_mut() {
            if *n == 0 {
                return Err(StoreError::Unavailable {
                    id: write.id.clone(),
                    source: "injected failure".into(),
                });
            }
            *n -= 1;
        }
        // One record per id, as in DynamoDB: the item or its tombstone, whichever came last.
        let stored = (state.items.get(&write.id).map(|i| &i.coordinates))
            .or_else(|| state.markers.get(&write.id))
            .cloned();
        let same = |c: &Coordinates| same_record_too && *c == write.coordinates;
        if stored
            .as_ref()
            .is_some_and(|c| !write.coordinates.supersedes(c) && !same(c))
        {
            return Ok(Applied::Stale { stored });
        }
        match &write.op {
            WriteOp::Put(fields) => {
                let stored = StoredItem {
                    coordinates: write.coordinates.clone(),
                    fields: fields.clone(),
                };
                state.markers.remove(&write.id);
                state.items.insert(write.id.clone(), stored);
                state.history.push(Change {
                    id: write.id.clone(),
                    coordinates: write.coordinates.clone(),
                    present: true,
                });
            }
            WriteOp::Delete => {
                state.items.remove(&write.id);
                state.markers.insert(write.id.clone(), write.coordinates.clone());
                state.history.push(Change {
                    id: write.id.clone(),
                    coordinates: write.coordinates.clone(),
                    present: false,
                });
            }
        }
        Ok(Applied::Applied)
    }
}

impl RecordStore for InMemoryRecordStore {
    async fn apply(&self, write: &Write) -> Result<Applied, StoreError> {
        self.apply_now(write, false)
    }

    async fn rewrite(&self, write: &Write) -> Result<Applied, StoreError> {
        self.apply_now(write, true)
    }
}

/// A dead-letter queue in memory.
#[derive(Debug, Default)]
pub struct InMemoryDeadLetterQueue {
    letters: Mutex<Vec<DeadLetter>>,
    failing: std::sync::atomic::AtomicBool,
}

impl InMemoryDeadLetterQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every send fail (or succeed again with `false`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    /// What was sent so far.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.letters.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl DeadLetterQueue for InMemoryDeadLetterQueue {
    async fn send(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(DeadLetterError {
                topic: letter.coordinates.topic.clone(),
                partition: letter.coordinates.partition,
                offset: letter.coordinates.offset,
                source: "injected failure".into(),
            });
        }
        self.letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(letter.clone());
        Ok(())
    }
}
