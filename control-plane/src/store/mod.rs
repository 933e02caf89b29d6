//! Persistence behind a small trait. The store knows keys and bytes, never
//! ECS semantics: `service` decides what a record is and how it is encoded.
//!
//! Contract: [`Store::apply`] makes a batch of writes atomically visible (all
//! or none) but not yet durable; [`Store::sync`] resolves once everything
//! applied before it was called is on disk. Callers apply while holding their
//! own lock (so writes to one key land in decision order) and await `sync`
//! after releasing it, which lets concurrent requests share one fsync (group
//! commit).
//!
//! sled is the embedded default ([`SledStore`]); [`MemoryStore`] is the fake
//! for unit tests. A replicated backend can be added behind the same trait.

mod memory;
mod sled_store;

pub use memory::MemoryStore;
pub use sled_store::SledStore;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// One write of a batch: `Some` puts, `None` deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Record key, `<kind>/<id...>`.
    pub key: String,
    /// Encoded record, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

/// Writes applied together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// In order; a later write to the same key wins.
    pub writes: Vec<Write>,
}

impl Batch {
    /// Adds a put.
    pub fn put(&mut self, key: String, value: Vec<u8>) {
        self.writes.push(Write {
            key,
            value: Some(value),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: String) {
        self.writes.push(Write { key, value: None });
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error")]
    Sled(#[source] sled::Error),
    /// The durability thread is gone (the store is shutting down).
    #[error("the store is shut down")]
    Closed,
    /// Flushing to disk failed.
    #[error("flushing to disk failed: {0}")]
    Flush(String),
}

/// Resolves when earlier writes are durable.
pub type SyncFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

/// The persistence interface the service layer uses.
pub trait Store: Send + Sync + fmt::Debug {
    /// Every record, in key order (used once, at startup).
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Applies a batch atomically; durable only after a later [`Store::sync`].
    fn apply(&self, batch: Batch) -> Result<(), StoreError>;
    /// Resolves once every batch applied before this call is durable.
    fn sync(&self) -> SyncFuture;
}
