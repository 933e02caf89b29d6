//! An in-memory [`Store`] for unit tests: same contract, nothing on disk.

use super::{Batch, Store, StoreError, SyncFuture};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Keeps records in a map; `sync` is immediate.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        Ok(records
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        for w in batch.writes {
            match w.value {
                Some(v) => records.insert(w.key, v),
                None => records.remove(&w.key),
            };
        }
        Ok(())
    }

    fn sync(&self) -> SyncFuture {
        Box::pin(async { Ok(()) })
    }
}
