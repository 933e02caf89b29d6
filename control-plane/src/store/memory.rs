//! An in-memory [`Store`] for unit tests: same contract, nothing on disk.
//! Applied and durable records are kept apart, and faults can be injected,
//! so tests can check what a failed write leaves behind.

use super::{Batch, Store, StoreError, SyncFuture};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Inner {
    /// What `apply` made visible.
    applied: BTreeMap<String, Vec<u8>>,
    /// What the last successful `sync` made durable.
    durable: BTreeMap<String, Vec<u8>>,
    seq: u64,
    durable_seq: u64,
    failed: Option<String>,
    fail_next_apply: bool,
    fail_next_sync: bool,
}

/// Keeps records in maps; `sync` is immediate.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `apply` fails as a full disk would.
    pub fn fail_next_apply(&self) {
        self.inner().fail_next_apply = true;
    }

    /// The next `sync` fails as a full disk would (after the batch was
    /// applied and made visible).
    pub fn fail_next_sync(&self) {
        self.inner().fail_next_sync = true;
    }

    /// The durable records, in key order.
    pub fn durable(&self) -> Vec<(String, Vec<u8>)> {
        let inner = self.inner();
        inner
            .durable
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

const FULL: &str =
    "the state store in memory cannot be written: No space left on device (injected)";

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner().applied.get(key).cloned())
    }

    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let inner = self.inner();
        Ok(inner
            .applied
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&self, batch: Batch) -> Result<u64, StoreError> {
        let mut inner = self.inner();
        if let Some(f) = &inner.failed {
            return Err(StoreError::Unavailable(f.clone()));
        }
        if std::mem::take(&mut inner.fail_next_apply) {
            inner.failed = Some(FULL.to_owned());
            return Err(StoreError::Unavailable(FULL.to_owned()));
        }
        for w in batch.writes {
            match w.value {
                Some(v) => inner.applied.insert(w.key, v),
                None => inner.applied.remove(&w.key),
            };
        }
        inner.seq += 1;
        Ok(inner.seq)
    }

    fn sync(&self) -> SyncFuture {
        let result = {
            let mut inner = self.inner();
            if let Some(f) = &inner.failed {
                Err(StoreError::Unavailable(f.clone()))
            } else if std::mem::take(&mut inner.fail_next_sync) {
                inner.failed = Some(FULL.to_owned());
                Err(StoreError::Unavailable(FULL.to_owned()))
            } else {
                inner.durable = inner.applied.clone();
                inner.durable_seq = inner.seq;
                Ok(())
            }
        };
        Box::pin(async move { result })
    }

    fn durable_seq(&self) -> u64 {
        self.inner().durable_seq
    }

    fn failure(&self) -> Option<String> {
        self.inner().failed.clone()
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let mut inner = self.inner();
        inner.applied = inner.durable.clone();
        inner.durable_seq = inner.seq;
        inner.failed = None;
        Ok(())
    }
}
