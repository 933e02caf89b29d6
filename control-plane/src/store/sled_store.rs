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

/// How to recover, said with every refusal of a damaged state.
const RECOVER: &str = " Restore a snapshot (berth-control-plane snapshot restore FILE --data-dir DIR), or move the directory away to start empty.";

/// Record values as stored: `B1`, the commit sequence number (u64 LE), a
/// CRC-32 of the encoded record (u32 LE), then the record. Values written
/// before this format (bare JSON) are read as they are.
mod record {
    /// Keys the store keeps for itself, never shown to the `app` layer.
    pub const META: &str = "meta/";
    /// Written by a batch that only deletes, so it too leaves its number.
    pub const DELETES: &str = "meta/last-delete";
    const MAGIC: &[u8; 2] = b"B1";
    const HEADER: usize = 2 + 8 + 4;

    pub fn seal(seq: u64, record: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER + record.len());
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
        v.extend_from_slice(record);
        v
    }

    /// The commit number (none for old values) and the record, or why the
    /// value is damaged.
    pub fn unseal(value: &[u8]) -> Result<(Option<u64>, &[u8]), &'static str> {
        if value.len() >= HEADER && value.starts_with(MAGIC) {
            let seq = u64::from_le_bytes(value[2..10].try_into().map_err(|_| "short header")?);
            let crc = u32::from_le_bytes(value[10..14].try_into().map_err(|_| "short header")?);
            let record = &value[HEADER..];
            if crc32fast::hash(record) != crc {
                return Err("checksum mismatch");
            }
            Ok((Some(seq), record))
        } else if value.first() == Some(&b'{') {
            Ok((None, value))
        } else {
            Err("not a record")
        }
    }
}

/// The commit marker: a small file beside the database, replaced
/// atomically and fsynced, saying how far the store was durable. It is
/// written at most once a second after a flush, and on close, so it never
/// runs ahead of the database; a database that holds less than it says was
/// truncated or damaged.
mod marker {
    use super::StoreError;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// Longest gap between marker writes while commits go on.
    pub const EVERY: Duration = Duration::from_secs(1);

    fn path(dir: &Path) -> PathBuf {
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push(".commit");
        dir.with_file_name(name)
    }

    pub fn read(dir: &Path) -> Result<Option<u64>, StoreError> {
        let p = path(dir);
        match std::fs::read_to_string(&p) {
            Ok(text) => text
                .trim()
                .strip_prefix("durable-commit ")
                .and_then(|n| n.parse().ok())
                .map(Some)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "The commit marker {} is damaged ('{}'); it should read 'durable-commit N'. Remove it only if the database beside it is known good.",
                        p.display(),
                        text.trim()
                    ))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Corrupt(format!(
                "The commit marker {} cannot be read: {e}",
                p.display()
            ))),
        }
    }

    pub fn write(dir: &Path, seq: u64) -> std::io::Result<()> {
        let p = path(dir);
        let tmp = p.with_extension("commit.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "durable-commit {seq}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)?;
        if let Some(parent) = p.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }
}

/// sled database under the control plane's data directory.
#[derive(Debug)]
pub struct SledStore {
    dir: PathBuf,
    /// Serve what is left when the state is found damaged (logged), instead
    /// of refusing to start.
    accept_loss: bool,
    /// sled's page cache, kept for reopening.
    cache_bytes: u64,
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
    /// When the commit marker was last written.
    marker_written: Mutex<Option<std::time::Instant>>,
}

impl Shared {
    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records how far the store is durable in the commit marker, at most
    /// once per [`marker::EVERY`] unless `now`.
    fn mark(&self, dir: &Path, now: bool) {
        let mut last = self
            .marker_written
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !now && last.is_some_and(|t| t.elapsed() < marker::EVERY) {
            return;
        }
        let durable = self.durable.load(Ordering::Acquire);
        match marker::write(dir, durable) {
            Ok(()) => *last = Some(std::time::Instant::now()),
            Err(e) => tracing::warn!(error = %e, "cannot write the commit marker"),
        }
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

/// sled's page cache unless `--store-cache-mib` says otherwise. Measured
/// with `berth-placement-bench --stop` at 100,000 task records
/// (docs/performance.md, "The store's page cache"): with task ids ordered
/// by creation, new records land on the few pages at the key space's right
/// end, so 32 MiB keeps placement as fast as sled's default 1 GiB did, at
/// about 130 MiB resident with 100,000 records instead of about 325 MiB.
/// (Memory still grows with the history, from the in-memory index.)
pub const DEFAULT_CACHE_BYTES: u64 = 32 << 20;

fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    // The database's file lock is released when the previous owner's last
    // sled thread ends, which can lag its close (or a restarted process's
    // exit) a little: wait for it up to two seconds.
    let mut attempts = 0;
    loop {
        match sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes)
            .open()
        {
            Err(e) if attempts < 40 && e.to_string().contains("could not acquire lock") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => {
                return Err(StoreError::Corrupt(format!(
                    "The state database in {} cannot be opened ({e}). If its files were damaged, restore a snapshot (berth-control-plane snapshot restore FILE --data-dir ...) or move the directory away to start empty.",
                    dir.display()
                )));
            }
            Ok(db) => return Ok(db),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the database in `dir`; a damaged state is
    /// refused at [`Store::load`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, false)
    }

    /// Opens the database in `dir`; with `accept_loss`, a state found
    /// damaged at [`Store::load`] is served as it is (with an error in the
    /// log) instead of refused.
    pub fn open_with(dir: &Path, accept_loss: bool) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, accept_loss, DEFAULT_CACHE_BYTES)
    }

    /// [`SledStore::open_with`] with sled's page cache set to `cache_bytes`.
    pub fn open_with_cache(
        dir: &Path,
        accept_loss: bool,
        cache_bytes: u64,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared::default());
        if let Some(m) = marker::read(dir)? {
            shared.applied.store(m, Ordering::Release);
            shared.durable.store(m, Ordering::Release);
        }
        let inner = Self::open_inner(dir, &shared, cache_bytes)?;
        Ok(SledStore {
            dir: dir.to_owned(),
            accept_loss,
            cache_bytes,
            inner: RwLock::new(Some(inner)),
            shared,
        })
    }

    fn open_inner(dir: &Path, shared: &Arc<Shared>, cache_bytes: u64) -> Result<Inner, StoreError> {
        let db = open_db(dir, cache_bytes)?;
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
        if result.is_ok() {
            shared.mark(&dir, false);
        }
    }
    // Clean shutdown: nothing applied is left only in memory.
    if shared.failure().is_none() {
        match db.flush() {
            Ok(_) => {
                let upto = shared.applied.load(Ordering::Acquire);
                shared.durable.fetch_max(upto, Ordering::AcqRel);
                shared.mark(&dir, true);
            }
            Err(e) => tracing::error!(error = %e, "the state store could not be flushed on close"),
        }
    }
}

impl Store for SledStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = self.read();
        let Some(inner) = inner.as_ref() else {
            return Err(self.unavailable());
        };
        let Some(v) = inner.tree.get(key.as_bytes()).map_err(|e| {
            StoreError::Corrupt(format!(
                "The state database in {} cannot be read ({e}).{RECOVER}",
                self.dir.display()
            ))
        })?
        else {
            return Ok(None);
        };
        match record::unseal(&v) {
            Ok((_, json)) => Ok(Some(json.to_vec())),
            Err(why) => Err(StoreError::Corrupt(format!(
                "The record {key} in {} fails its checksum ({why}).{RECOVER}",
                self.dir.display()
            ))),
        }
    }

    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut records = Vec::new();
        self.load_each(&mut |k, v| records.push((k.to_owned(), v.to_vec())))?;
        Ok(records)
    }

    fn load_each(&self, visit: &mut dyn FnMut(&str, &[u8])) -> Result<(), StoreError> {
        let inner = self.read();
        let Some(inner) = inner.as_ref() else {
            return Err(self.unavailable());
        };
        let mut count = 0usize;
        let mut newest = 0u64;
        let mut damaged = Vec::new();
        for entry in inner.tree.iter() {
            let (k, v) = entry.map_err(|e| {
                StoreError::Corrupt(format!(
                    "The state database in {} cannot be read ({e}).{RECOVER}",
                    self.dir.display()
                ))
            })?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match record::unseal(&v) {
                Ok((seq, json)) => {
                    newest = newest.max(seq.unwrap_or(0));
                    if !key.starts_with(record::META) {
                        count += 1;
                        visit(&key, json);
                    }
                }
                Err(why) => damaged.push(format!("{key} ({why})")),
            }
        }
        let recorded = marker::read(&self.dir)?.unwrap_or(0);
        let mut problems = Vec::new();
        if !damaged.is_empty() {
            problems.push(format!(
                "{} record(s) fail their checksum: {}",
                damaged.len(),
                damaged
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if recorded > newest {
            problems.push(format!(
                "the commit marker says commit {recorded} was made durable, but the newest commit in the database is {newest}: commits were lost (a truncated or damaged file)"
            ));
        }
        if !problems.is_empty() {
            let what = problems.join("; ");
            if !self.accept_loss {
                return Err(StoreError::Corrupt(format!(
                    "The state in {} is damaged: {what}. Berth will not serve a partial cluster.{RECOVER} To serve what is left ({} records), start once with --accept-state-loss.",
                    self.dir.display(),
                    count
                )));
            }
            tracing::error!(dir = %self.dir.display(), problems = %what, records = count, "the state is damaged; serving what is left (--accept-state-loss)");
            // What is left is the new truth: number on from it.
            self.shared.applied.store(newest, Ordering::Release);
            self.shared.durable.store(newest, Ordering::Release);
            if let Err(e) = marker::write(&self.dir, newest) {
                tracing::warn!(error = %e, "cannot rewrite the commit marker");
            }
            return Ok(());
        }
        let next = newest.max(recorded);
        self.shared.applied.fetch_max(next, Ordering::AcqRel);
        self.shared.durable.fetch_max(next, Ordering::AcqRel);
        Ok(())
    }

    fn apply(&self, mut batch: Batch) -> Result<u64, StoreError> {
        let inner = self.read();
        let Some(inner) = inner.as_ref().filter(|_| self.shared.failure().is_none()) else {
            return Err(self.unavailable());
        };
        // Applies are serialized by the caller's lock: the next number is
        // this batch's. Every value carries it (and a checksum), so a load
        // knows the newest commit the database holds.
        let seq = self.shared.applied.load(Ordering::Acquire) + 1;
        if batch.writes.iter().all(|w| w.value.is_none()) {
            batch.put(record::DELETES.to_owned(), b"{}".to_vec());
        }
        // One write is atomic on its own. sled's `apply_batch` takes a
        // database-wide lock that waits for any flush in progress, so under
        // load it costs tens of microseconds where an insert costs two; most
        // commits (agents' task reports) are single writes.
        let result = if batch.writes.len() == 1
            && let Some(w) = batch.writes.pop()
        {
            match w.value {
                Some(v) => inner
                    .tree
                    .insert(w.key.as_bytes(), record::seal(seq, &v))
                    .map(|_| ()),
                None => inner.tree.remove(w.key.as_bytes()).map(|_| ()),
            }
        } else {
            let mut b = sled::Batch::default();
            for w in batch.writes {
                match w.value {
                    Some(v) => b.insert(w.key.as_bytes(), record::seal(seq, &v)),
                    None => b.remove(w.key.as_bytes()),
                }
            }
            inner.tree.apply_batch(b)
        };
        match result {
            // Numbered after the write is visible, so a flush that reads
            // this number covers the write.
            Ok(()) => {
                self.shared.applied.store(seq, Ordering::Release);
                Ok(seq)
            }
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
        let reopened =
            Self::open_inner(&self.dir, &self.shared, self.cache_bytes).map_err(|e| {
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

    /// Writes `n` records, one commit each, and closes the store cleanly.
    async fn written(dir: &Path, n: usize) {
        let store = SledStore::open(dir).unwrap();
        store.load().unwrap();
        for i in 0..n {
            let mut b = Batch::default();
            b.put(
                format!("task/{i:03}"),
                format!("{{\"n\":{i}}}").into_bytes(),
            );
            store.apply(b).unwrap();
            store.sync().await.unwrap();
        }
    }

    /// Changes the database behind the store's back.
    fn tamper(dir: &Path, change: impl FnOnce(&sled::Tree)) {
        let db = open_db(dir, DEFAULT_CACHE_BYTES).unwrap();
        let tree = db.open_tree("records").unwrap();
        change(&tree);
        db.flush().unwrap();
    }

    #[tokio::test]
    async fn lost_commits_are_refused_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        written(&state, 5).await;
        // The newest commits vanish (a truncated log that still opens).
        tamper(&state, |t| {
            t.remove("task/004").unwrap();
            t.remove("task/003").unwrap();
        });
        let err = SledStore::open(&state)
            .unwrap()
            .load()
            .unwrap_err()
            .to_string();
        assert!(err.contains(&state.display().to_string()), "{err}");
        assert!(err.contains("commit 5 was made durable"), "{err}");
        assert!(err.contains("newest commit in the database is 3"), "{err}");
        assert!(err.contains("--accept-state-loss"), "{err}");
        // Accepting the loss serves what is left, and says so only once.
        let accepted = SledStore::open_with(&state, true).unwrap();
        assert_eq!(accepted.load().unwrap().len(), 3);
        drop(accepted);
        assert_eq!(SledStore::open(&state).unwrap().load().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_record_that_fails_its_checksum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        written(&state, 3).await;
        tamper(&state, |t| {
            let mut v = t.get("task/001").unwrap().unwrap().to_vec();
            let last = v.len() - 2;
            v[last] ^= 0x01;
            t.insert("task/001", v).unwrap();
        });
        let err = SledStore::open(&state)
            .unwrap()
            .load()
            .unwrap_err()
            .to_string();
        assert!(err.contains("task/001 (checksum mismatch)"), "{err}");
    }

    #[tokio::test]
    async fn numbering_continues_across_restarts_and_old_values_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        written(&state, 2).await;
        // A value from before checksums (bare JSON) is read as it is.
        tamper(&state, |t| {
            t.insert("cluster/old", &b"{\"name\":\"old\"}"[..]).unwrap();
        });
        let store = SledStore::open(&state).unwrap();
        assert_eq!(store.load().unwrap().len(), 3);
        let mut b = Batch::default();
        b.delete("task/000".into());
        assert_eq!(
            store.apply(b).unwrap(),
            3,
            "numbers go on from the last one"
        );
        store.sync().await.unwrap();
        drop(store);
        // A delete-only commit leaves its number too: nothing looks lost.
        let store = SledStore::open(&state).unwrap();
        assert_eq!(store.load().unwrap().len(), 2);
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
