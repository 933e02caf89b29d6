//! The sled-backed [`Store`] with group commit.
//!
//! All records live in one sled tree under prefixed keys, so a batch that
//! touches several kinds (a task and its instance) is one atomic
//! `apply_batch`. Durability comes from a dedicated flusher thread: each
//! `sync` enqueues a waiter; the thread takes every waiter queued so far,
//! flushes once, and answers them all. Under load one fsync covers many
//! requests; idle, a lone request pays one fsync.

use super::{Batch, Store, StoreError, SyncFuture};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

/// sled database under the control plane's data directory.
#[derive(Debug)]
pub struct SledStore {
    dir: PathBuf,
    /// `None` while closed: after a failed reopen, and while dropping.
    inner: RwLock<Option<Inner>>,
    shared: Arc<Shared>,
}

/// One open database: its tree and its flusher thread.
#[derive(Debug)]
struct Inner {
    tree: sled::Tree,
    flush_requests: mpsc::Sender<Waiter>,
    /// Joined on drop so the database is closed (and its lock released).
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the flusher, which drops its handle on
        // the database; joining it makes the close complete.
        let (closed, _) = mpsc::channel();
        self.flush_requests = closed;
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// What the flusher thread and the store share.
#[derive(Debug, Default)]
struct Shared {
    /// Sequence number of the last applied batch.
    applied: AtomicU64,
    /// Sequence number of the last batch known on disk.
    durable: AtomicU64,
    /// Why writes are refused, once a write failed.
    failed: Mutex<Option<String>>,
}

impl Shared {
    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fail(&self, dir: &Path, cause: &dyn std::fmt::Display) -> String {
        let message = format!(
            "The state store in {} cannot be written ({cause}). Berth keeps answering reads and resumes writes by itself once the cause is gone (for a full disk: free space); retry the request.",
            dir.display()
        );
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if failed.is_none() {
            tracing::error!(error = %message, "the state store failed; writes are refused until it recovers");
            *failed = Some(message.clone());
        }
        failed.clone().unwrap_or(message)
    }
}

fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    // The database's file lock is released when the previous owner's last
    // sled thread ends, which can lag its close (or a restarted process's
    // exit) a little: wait for it up to two seconds.
    let mut attempts = 0;
    loop {
        match sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
        {
            Err(e) if attempts < 40 && e.to_string().contains("could not acquire lock") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other.map_err(StoreError::Sled),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared::default());
        let inner = Self::open_inner(dir, &shared)?;
        Ok(SledStore {
            dir: dir.to_owned(),
            inner: RwLock::new(Some(inner)),
            shared,
        })
    }

    fn open_inner(dir: &Path, shared: &Arc<Shared>) -> Result<Inner, StoreError> {
        let db = open_db(dir)?;
        let tree = db.open_tree("records").map_err(StoreError::Sled)?;
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flusher_shared = shared.clone();
        let flusher_dir = dir.to_owned();
        let flusher = std::thread::Builder::new()
            .name("berth-store-flush".into())
            .spawn(move || run_flusher(db, rx, flusher_shared, flusher_dir))
            .map_err(|e| StoreError::Flush(format!("cannot start the flush thread: {e}")))?;
        Ok(Inner {
            tree,
            flush_requests: tx,
            flusher: Some(flusher),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Inner>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn unavailable(&self) -> StoreError {
        StoreError::Unavailable(self.shared.failure().unwrap_or_else(|| {
            format!(
                "The state store in {} is closed. Berth reopens it by itself; retry the request.",
                self.dir.display()
            )
        }))
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        drop(inner.take());
    }
}

/// The group-commit loop: one flush per wake-up, answering every waiter that
/// queued before the flush began. Ends when the store is dropped or
/// reopened; after a failed flush every waiter is refused.
fn run_flusher(db: sled::Db, requests: mpsc::Receiver<Waiter>, shared: Arc<Shared>, dir: PathBuf) {
    while let Ok(first) = requests.recv() {
        let mut waiters = vec![first];
        waiters.extend(requests.try_iter());
        // Every batch applied before this load is in the flush below.
        let upto = shared.applied.load(Ordering::Acquire);
        let result = match shared.failure() {
            Some(f) => Err(f),
            None => match db.flush() {
                Ok(_) => {
                    shared.durable.fetch_max(upto, Ordering::AcqRel);
                    Ok(())
                }
                Err(e) => Err(shared.fail(&dir, &e)),
            },
        };
        for w in waiters {
            // The requester may have given up (its client disconnected).
            let _ = w.send(result.clone());
        }
    }
    // Clean shutdown: nothing applied is left only in memory.
    if shared.failure().is_none()
        && let Err(e) = db.flush()
    {
        tracing::error!(error = %e, "the state store could not be flushed on close");
    }
}

impl Store for SledStore {
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let inner = self.read();
        let Some(inner) = inner.as_ref() else {
            return Err(self.unavailable());
        };
        inner
            .tree
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(StoreError::Sled)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    fn apply(&self, mut batch: Batch) -> Result<u64, StoreError> {
        let inner = self.read();
        let Some(inner) = inner.as_ref().filter(|_| self.shared.failure().is_none()) else {
            return Err(self.unavailable());
        };
        // One write is atomic on its own. sled's `apply_batch` takes a
        // database-wide lock that waits for any flush in progress, so under
        // load it costs tens of microseconds where an insert costs two; most
        // commits (agents' task reports) are single writes.
        let result = if batch.writes.len() == 1
            && let Some(w) = batch.writes.pop()
        {
            match w.value {
                Some(v) => inner.tree.insert(w.key.as_bytes(), v).map(|_| ()),
                None => inner.tree.remove(w.key.as_bytes()).map(|_| ()),
            }
        } else {
            let mut b = sled::Batch::default();
            for w in batch.writes {
                match w.value {
                    Some(v) => b.insert(w.key.as_bytes(), v),
                    None => b.remove(w.key.as_bytes()),
                }
            }
            inner.tree.apply_batch(b)
        };
        match result {
            // Numbered after the write is visible, so a flush that reads
            // this number covers the write.
            Ok(()) => Ok(self.shared.applied.fetch_add(1, Ordering::AcqRel) + 1),
            Err(e) => Err(StoreError::Unavailable(self.shared.fail(&self.dir, &e))),
        }
    }

    fn sync(&self) -> SyncFuture {
        let (tx, rx) = oneshot::channel();
        let sent = match self.read().as_ref() {
            Some(inner) if self.shared.failure().is_none() => inner
                .flush_requests
                .send(tx)
                .map_err(|_| StoreError::Closed),
            _ => Err(self.unavailable()),
        };
        Box::pin(async move {
            sent?;
            rx.await
                .map_err(|_| StoreError::Closed)?
                .map_err(StoreError::Unavailable)
        })
    }

    fn durable_seq(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        // Close the failed handle first: the new one needs its file lock.
        drop(inner.take());
        let reopened = Self::open_inner(&self.dir, &self.shared).map_err(|e| {
            StoreError::Unavailable(self.shared.fail(&self.dir, &format!("reopening: {e:#}")))
        })?;
        *inner = Some(reopened);
        // What was applied and not flushed is gone with the old handle.
        let applied = self.shared.applied.load(Ordering::Acquire);
        self.shared.durable.store(applied, Ordering::Release);
        *self.shared.failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
        tracing::info!(dir = %self.dir.display(), "the state store is open again");
        Ok(())
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
