//! The sled-backed [`Store`] with group commit.
//!
//! All records live in one sled tree under prefixed keys, so a batch that
//! touches several kinds (a task and its instance) is one atomic
//! `apply_batch`. Durability comes from a dedicated flusher thread: each
//! `sync` enqueues a waiter; the thread takes every waiter queued so far,
//! flushes once, and answers them all. Under load one fsync covers many
//! requests; idle, a lone request pays one fsync.

use super::{Batch, Store, StoreError, SyncFuture};
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

/// sled database under the control plane's data directory.
#[derive(Debug)]
pub struct SledStore {
    tree: sled::Tree,
    /// `None` only while dropping.
    flush_requests: Option<mpsc::Sender<Waiter>>,
    /// Joined on drop so the database is closed (and its lock released) when
    /// the store is gone.
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        // The database's file lock is released when the previous owner's
        // last sled thread ends, which can lag its close (or a restarted
        // process's exit) a little: wait for it up to two seconds.
        let mut attempts = 0;
        let db = loop {
            match sled::Config::new()
                .path(dir)
                .mode(sled::Mode::HighThroughput)
                .open()
            {
                Err(e) if attempts < 40 && e.to_string().contains("could not acquire lock") => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other.map_err(StoreError::Sled)?,
            }
        };
        let tree = db.open_tree("records").map_err(StoreError::Sled)?;
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flusher_db = db.clone();
        let flusher = std::thread::Builder::new()
            .name("berth-store-flush".into())
            .spawn(move || run_flusher(flusher_db, rx))
            .map_err(|e| StoreError::Flush(format!("cannot start the flush thread: {e}")))?;
        Ok(SledStore {
            tree,
            flush_requests: Some(tx),
            flusher: Some(flusher),
        })
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.flush_requests = None;
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// The group-commit loop: one flush per wake-up, answering every waiter that
/// queued before the flush began. Ends when the store is dropped.
fn run_flusher(db: sled::Db, requests: mpsc::Receiver<Waiter>) {
    while let Ok(first) = requests.recv() {
        let mut waiters = vec![first];
        waiters.extend(requests.try_iter());
        let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
        for w in waiters {
            // The requester may have given up (its client disconnected).
            let _ = w.send(result.clone());
        }
    }
    // Clean shutdown: nothing applied is left only in memory.
    let _ = db.flush();
}

impl Store for SledStore {
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.tree
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(StoreError::Sled)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    fn apply(&self, mut batch: Batch) -> Result<(), StoreError> {
        // One write is atomic on its own. sled's `apply_batch` takes a
        // database-wide lock that waits for any flush in progress, so under
        // load it costs tens of microseconds where an insert costs two; most
        // commits (agents' task reports) are single writes.
        if batch.writes.len() == 1
            && let Some(w) = batch.writes.pop()
        {
            return match w.value {
                Some(v) => self.tree.insert(w.key.as_bytes(), v).map(|_| ()),
                None => self.tree.remove(w.key.as_bytes()).map(|_| ()),
            }
            .map_err(StoreError::Sled);
        }
        let mut b = sled::Batch::default();
        for w in batch.writes {
            match w.value {
                Some(v) => b.insert(w.key.as_bytes(), v),
                None => b.remove(w.key.as_bytes()),
            }
        }
        self.tree.apply_batch(b).map_err(StoreError::Sled)
    }

    fn sync(&self) -> SyncFuture {
        let (tx, rx) = oneshot::channel();
        let sent = match &self.flush_requests {
            Some(requests) => requests.send(tx).map_err(|_| ()),
            None => Err(()),
        };
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await
                .map_err(|_| StoreError::Closed)?
                .map_err(StoreError::Flush)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let mut b = Batch::default();
            b.put("task/1".into(), b"one".to_vec());
            b.put("task/2".into(), b"two".to_vec());
            b.delete("task/1".into());
            store.apply(b).unwrap();
            store.sync().await.unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.load().unwrap(),
            vec![("task/2".to_owned(), b"two".to_vec())]
        );
    }

    #[tokio::test]
    async fn concurrent_syncs_all_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        let mut handles = Vec::new();
        for i in 0..50 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let mut b = Batch::default();
                b.put(format!("k/{i:03}"), vec![1]);
                store.apply(b).unwrap();
                store.sync().await.unwrap();
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(store.load().unwrap().len(), 50);
    }
}
