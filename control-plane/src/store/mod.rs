//! Persistence behind a small trait. The store knows keys and bytes, never
//! ECS semantics: `app` decides what a record is and how it is encoded.
//!
//! Contract: [`Store::apply`] makes a batch of writes atomically visible (all
//! or none) but not yet durable, and numbers it (a commit sequence);
//! [`Store::sync`] resolves once everything applied before it was called is
//! on disk, and [`Store::durable_seq`] says how far that is. Callers apply
//! while holding their own lock (so writes to one key land in decision
//! order) and await `sync` after releasing it, which lets concurrent
//! requests share one fsync (group commit).
//!
//! A store that fails to write (a full disk, an I/O error) enters a failed
//! state: it refuses `apply` and `sync` with [`StoreError::Unavailable`]
//! until [`Store::reopen`] succeeds, which discards every write that was not
//! yet durable and starts again from what is on disk. The caller rolls its
//! own view back to match (see `app`).
//!
//! sled is the embedded default ([`SledStore`]); [`MemoryStore`] is the fake
//! for unit tests, with fault injection. A replicated backend can be added
//! behind the same trait.

mod memory;
mod sled_store;

pub use memory::MemoryStore;
pub use sled_store::{DEFAULT_CACHE_BYTES, SledStore};

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
    /// The stored state is damaged or incomplete: the message names the
    /// data directory, what is wrong and how to recover.
    #[error("{0}")]
    Corrupt(String),
    /// The store failed to write and refuses writes until it is reopened.
    /// The message names the data directory and the cause, for callers.
    #[error("{0}")]
    Unavailable(String),
}

/// Resolves when earlier writes are durable.
pub type SyncFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

/// The persistence interface the `app` layer uses.
pub trait Store: Send + Sync + fmt::Debug {
    /// Every record, in key order (used at startup and after a reopen).
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// [`Store::load`] one record at a time, in key order, without holding
    /// them all (startup): `visit` sees each key and value. The checks of
    /// `load` apply: an error after some records were visited means the
    /// state must not be served.
    fn load_each(&self, visit: &mut dyn FnMut(&str, &[u8])) -> Result<(), StoreError> {
        for (k, v) in self.load()? {
            visit(&k, &v);
        }
        Ok(())
    }
    /// One record as applied (durable or not yet), for what the control
    /// plane keeps on disk only (STOPPED tasks).
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies a batch atomically and returns its commit sequence number
    /// (increasing); durable only after a later [`Store::sync`].
    fn apply(&self, batch: Batch) -> Result<u64, StoreError>;
    /// Resolves once every batch applied before this call is durable.
    fn sync(&self) -> SyncFuture;
    /// The highest sequence number known durable. Advanced before any
    /// `sync` covering it resolves.
    fn durable_seq(&self) -> u64;
    /// Why the store refuses writes, if it does.
    fn failure(&self) -> Option<String>;
    /// Discards the failed database handle and opens it again from disk:
    /// writes never made durable are gone. Afterwards `durable_seq` equals
    /// the last sequence number handed out.
    fn reopen(&self) -> Result<(), StoreError>;
}
