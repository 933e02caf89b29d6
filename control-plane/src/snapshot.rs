//! Snapshots: the whole state in one file, for backups.
//!
//! `berth-control-plane snapshot save FILE` asks a running control plane
//! for a consistent snapshot (SIGUSR1: it writes
//! `<data-dir>/snapshots/latest.snap` from its state, after a sync, so the
//! file holds a durable state) and copies it; with no control plane
//! running it reads the store directly. `snapshot restore FILE --data-dir
//! DIR` writes the records into a new store and reads them back to verify.
//!
//! Format: a header line `berth-snapshot 1 records=N sha256=HEX`, then one
//! line per record, `KEY<TAB>RECORD-JSON`. The checksum covers every byte
//! after the header; keys and encoded records never hold tabs or newlines.

use crate::store::{Batch, SledStore, Store};
use anyhow::{Context, bail};
use sha2::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MAGIC: &str = "berth-snapshot 1";

/// Where a running control plane writes the snapshot it is asked for.
pub fn latest(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots").join("latest.snap")
}

/// The running control plane's pid file.
pub fn pid_file(data_dir: &Path) -> PathBuf {
    data_dir.join("control-plane.pid")
}

/// Writes `records` (key, encoded record) to `file`, atomically.
pub fn write(file: &Path, records: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let mut body = Vec::new();
    for (k, v) in records {
        if k.contains(['\t', '\n']) || v.contains(&b'\n') {
            bail!("record {k} cannot be written to a snapshot line");
        }
        body.extend_from_slice(k.as_bytes());
        body.push(b'\t');
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    let sum = crate::auth::hex(&sha2::Sha256::digest(&body));
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = file.with_extension("snap.tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    writeln!(f, "{MAGIC} records={} sha256={sum}", records.len())?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

/// Reads and verifies a snapshot: its records in file order.
pub fn read(file: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .with_context(|| format!("{} is not a Berth snapshot", file.display()))?;
    let header = String::from_utf8_lossy(&bytes[..newline]).into_owned();
    let rest = header.strip_prefix(MAGIC).with_context(|| {
        format!(
            "{} is not a Berth snapshot (header '{header}')",
            file.display()
        )
    })?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .map(str::to_owned)
    };
    let count: usize = field("records=")
        .and_then(|n| n.parse().ok())
        .context("the snapshot header has no record count")?;
    let sum = field("sha256=").context("the snapshot header has no checksum")?;
    let body = &bytes[newline + 1..];
    if crate::auth::hex(&sha2::Sha256::digest(body)) != sum {
        bail!(
            "{} is damaged: its checksum does not match (truncated or changed)",
            file.display()
        );
    }
    let mut records = Vec::with_capacity(count);
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let tab = line
            .iter()
            .position(|b| *b == b'\t')
            .context("a snapshot line has no key")?;
        records.push((
            String::from_utf8_lossy(&line[..tab]).into_owned(),
            line[tab + 1..].to_vec(),
        ));
    }
    if records.len() != count {
        bail!(
            "{} holds {} records but its header says {count}",
            file.display(),
            records.len()
        );
    }
    Ok(records)
}

/// `snapshot save FILE`: from the running control plane (by signal), or
/// from the store when none runs. Returns how many records were saved.
pub fn save(data_dir: &Path, file: &Path) -> anyhow::Result<usize> {
    if let Some(pid) = running_pid(data_dir) {
        use std::os::unix::fs::MetadataExt;
        let latest = latest(data_dir);
        // The snapshot lands by rename: a new inode. (Comparing times would
        // miss a write within the filesystem clock's coarse tick.)
        let identity = |m: std::fs::Metadata| (m.ino(), m.mtime(), m.mtime_nsec());
        let before = std::fs::metadata(&latest).ok().map(identity);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .with_context(|| format!("cannot signal the control plane (pid {pid})"))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let now = std::fs::metadata(&latest).ok().map(identity);
            if now.is_some() && now != before {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "the control plane (pid {pid}) did not write {} within 60 s; see its log",
                    latest.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let records = read(&latest)?;
        write(file, &records)?;
        return Ok(records.len());
    }
    let store = SledStore::open(&data_dir.join("state"))
        .with_context(|| format!("cannot open the state in {}", data_dir.display()))?;
    let records = store.load()?;
    write(file, &records)?;
    Ok(records.len())
}

/// `snapshot restore FILE --data-dir DIR`: into a data directory without a
/// state; read back and compared before it returns. Returns how many
/// records were restored.
pub async fn restore(file: &Path, data_dir: &Path) -> anyhow::Result<usize> {
    let mut records = read(file)?;
    let state = data_dir.join("state");
    if state.exists()
        && std::fs::read_dir(&state)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} already holds a state: restore into an empty data directory (move this one away first)",
            state.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    {
        let store = SledStore::open(&state)?;
        store.load()?;
        let mut batch = Batch::default();
        for (k, v) in &records {
            batch.put(k.clone(), v.clone());
        }
        if !batch.is_empty() {
            store.apply(batch)?;
        }
        store.sync().await?;
    }
    let store = SledStore::open(&state)?;
    let mut back = store.load()?;
    records.sort();
    back.sort();
    if back != records {
        bail!(
            "the restored state in {} does not read back as the snapshot ({} of {} records)",
            state.display(),
            back.len(),
            records.len()
        );
    }
    Ok(records.len())
}

/// The pid of a control plane running on `data_dir`, if one is.
fn running_pid(data_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(data_dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // A stale pid file may name a pid since reused by another program:
    // signal only a control plane.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let is_control_plane = cmdline
        .split(|b| *b == 0)
        .next()
        .is_some_and(|argv0| String::from_utf8_lossy(argv0).ends_with("berth-control-plane"));
    (is_control_plane && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
        .then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_round_trips_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.snap");
        let records = vec![
            ("cluster/a".to_owned(), br#"{"name":"a"}"#.to_vec()),
            ("task/1".to_owned(), br#"{"id":"1"}"#.to_vec()),
        ];
        write(&file, &records).unwrap();
        assert_eq!(read(&file).unwrap(), records);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert!(read(&file).unwrap_err().to_string().contains("damaged"));
        std::fs::write(&file, b"hello\n").unwrap();
        assert!(
            read(&file)
                .unwrap_err()
                .to_string()
                .contains("not a Berth snapshot")
        );
    }

    #[tokio::test]
    async fn restore_writes_a_verified_state_and_never_over_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.snap");
        let records = vec![
            ("cluster/a".to_owned(), br#"{"name":"a"}"#.to_vec()),
            ("task/1".to_owned(), br#"{"id":"1"}"#.to_vec()),
        ];
        write(&file, &records).unwrap();
        let data = dir.path().join("data");
        assert_eq!(restore(&file, &data).await.unwrap(), 2);
        let store = SledStore::open(&data.join("state")).unwrap();
        let mut back = store.load().unwrap();
        back.sort();
        assert_eq!(back, records);
        drop(store);
        assert!(
            restore(&file, &data)
                .await
                .unwrap_err()
                .to_string()
                .contains("already holds a state")
        );
        // Saving from a stopped control plane reads the store.
        let again = dir.path().join("again.snap");
        assert_eq!(save(&data, &again).unwrap(), 2);
        assert_eq!(read(&again).unwrap().len(), 2);
    }
}
