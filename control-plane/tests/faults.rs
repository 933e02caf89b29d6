//! Service tier, faults of the machine under the control plane: its data
//! directory's filesystem filling up. The control plane runs in-process on a
//! real sled store inside a small tmpfs, driven by the real AWS SDK (with
//! its automatic retries) and a scripted agent.

mod support;

use berth_tests::eventually;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{ScriptedAgent, ok, ops_get, register_family, start_in};

/// A tmpfs of `size` mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root): {status}"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the filesystem at `dir` with one file, until a write fails.
fn fill(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 << 10];
    while f.write_all(&chunk).and_then(|()| f.sync_data()).is_ok() {}
    path
}

#[tokio::test]
async fn a_full_disk_refuses_writes_clearly_loses_nothing_and_recovers_without_a_restart() {
    let fs = Tmpfs::mount("24m");
    let data = fs.path().join("data");
    let server = start_in(&data).await;
    let agent = ScriptedAgent::connect(server.grpc, 1_000_000, 1_000_000).await;
    register_family(&server, "web", 6).await;
    let ecs = berth_tests::ecs_client(server.http);
    let mut acknowledged = Vec::new();
    let run = |token: String| {
        let ecs = ecs.clone();
        async move {
            ecs.run_task()
                .task_definition("web")
                .client_token(token)
                .send()
                .await
        }
    };
    let first = run("before-the-disk-fills".into()).await.expect("RunTask");
    acknowledged.extend(
        first
            .tasks()
            .iter()
            .filter_map(|t| t.task_arn().map(str::to_owned)),
    );

    // A 24 MiB filesystem is "nearly full" from the start: /readyz warns.
    let warned = eventually(Duration::from_secs(5), "/readyz warns", || async {
        let (status, body) = ops_get(&server, "/readyz").await;
        (status == 200 && body.contains("nearly full")).then_some(body)
    })
    .await;
    assert!(warned.starts_with("ready"), "{warned}");
    let filler = fill(fs.path());
    // The store fails on a write that needs a page the disk no longer has:
    // keep asking, each with its own token, until one is refused. Every
    // success on the way is acknowledged and must survive.
    let mut refused = None;
    for i in 0..200 {
        match run(format!("while-full-{i}")).await {
            Ok(out) => acknowledged.extend(
                out.tasks()
                    .iter()
                    .filter_map(|t| t.task_arn().map(str::to_owned)),
            ),
            Err(e) => {
                refused = Some((format!("while-full-{i}"), e));
                break;
            }
        }
    }
    let (token, err) = refused.expect("a write fails once the disk is full");
    let service_error = err
        .as_service_error()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let shown = format!("{service_error} / {err:?}");
    assert!(shown.contains("ServerException"), "{shown}");
    assert!(
        shown.contains("No space left on device"),
        "the cause is named: {shown}"
    );
    assert!(
        shown.contains(&data.display().to_string()),
        "the data directory is named: {shown}"
    );

    // Not ready while writes are refused, and /readyz says why.
    let (status, body) = ops_get(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("No space left on device"), "{body}");
    let (status, _) = ops_get(&server, "/healthz").await;
    assert_eq!(status, 200, "alive all the same");
    // Reads keep working while writes are refused.
    let described = ecs
        .describe_tasks()
        .set_tasks(Some(acknowledged.clone()))
        .send()
        .await
        .expect("DescribeTasks while the disk is full");
    assert_eq!(described.tasks().len(), acknowledged.len());
    // The SDK's retry (same client token) is refused too: nothing of the
    // failed attempt was left in memory to answer it from.
    assert!(run(token.clone()).await.is_err(), "refused while full");
    let listed = ok(&server, "ListTasks", json!({})).await;
    assert_eq!(
        listed["taskArns"].as_array().map(Vec::len),
        Some(acknowledged.len()),
        "no task of a refused RunTask is visible: {listed}"
    );

    // Space comes back: writes resume on their own, without a restart.
    std::fs::remove_file(filler).expect("free space");
    let retried = eventually(Duration::from_secs(10), "writes resume", || {
        let run = run(token.clone());
        async move { run.await.ok() }
    })
    .await;
    assert_eq!(retried.tasks().len(), 1);
    assert_eq!(ops_get(&server, "/readyz").await.0, 200, "ready again");
    let retried_arn = retried.tasks()[0].task_arn().expect("arn").to_owned();
    let again = run(token.clone()).await.expect("the token replays");
    assert_eq!(again.tasks()[0].task_arn(), Some(retried_arn.as_str()));
    acknowledged.push(retried_arn);

    // Everything acknowledged survives a restart; nothing else appears.
    drop(agent);
    server.stop().await;
    let server = start_in(&data).await;
    let listed = ok(&server, "ListTasks", json!({"maxResults": 100})).await;
    let mut listed: Vec<String> = listed["taskArns"]
        .as_array()
        .expect("arns")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    listed.sort();
    acknowledged.sort();
    assert_eq!(
        listed, acknowledged,
        "acknowledged tasks, no more, no fewer"
    );
    server.stop().await;
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The state a data directory loads to, or why it is refused.
fn load(data: &Path) -> Result<String, String> {
    use berth_control_plane::app::{ControlPlane, Settings};
    use berth_control_plane::store::SledStore;
    let store = SledStore::open(&data.join("state")).map_err(|e| e.to_string())?;
    let app = ControlPlane::load(
        std::sync::Arc::new(store),
        Settings {
            scope: berth_control_plane::model::ArnScope {
                region: "us-east-1".into(),
                account_id: "000000000000".into(),
            },
            stopped_task_retention: Duration::from_secs(3600),
            lost_host_timeout: Duration::from_secs(120),
            client_token_retention: Duration::from_secs(3600),
            placement_seed: 1,
        },
    )
    .map_err(|e| {
        let mut chain = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        chain
    })?;
    // Live parts (sessions) differ between runs; the records may not.
    Ok(app
        .digest()
        .lines()
        .filter(|l| !l.starts_with("live/"))
        .collect::<Vec<_>>()
        .join("\n"))
}

#[tokio::test]
async fn a_damaged_state_is_refused_naming_the_directory_never_served_in_part() {
    // A crash image: the files as a kill -9 leaves them (everything
    // acknowledged is fsynced, but sled wrote no clean-shutdown snapshot).
    let running = tempfile::tempdir().expect("dir");
    let live = running.path().join("data");
    let pristine = tempfile::tempdir().expect("dir");
    let data = pristine.path().join("data");
    let server = start_in(&live).await;
    let agent = ScriptedAgent::connect(server.grpc, 100_000, 100_000).await;
    for i in 0..8 {
        register_family(&server, &format!("family-{i}"), 16).await;
    }
    for i in 0..8 {
        ok(
            &server,
            "RunTask",
            json!({"taskDefinition": format!("family-{i}")}),
        )
        .await;
    }
    // The commit marker is written at most once a second after a flush.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    ok(&server, "CreateCluster", json!({"clusterName": "last"})).await;
    copy_dir(&live, &data);
    drop(agent);
    server.stop().await;
    let expected = load(&data).expect("the pristine state loads");
    if let Ok(keep) = std::env::var("BERTH_KEEP_STATE") {
        copy_dir(&data, Path::new(&keep));
    }
    assert!(expected.contains("taskdef/family-7/"), "{expected}");
    let db = data.join("state").join("db");
    let len = std::fs::metadata(&db).expect("db file").len() as usize;
    assert!(len > 0);

    // Faults aimed at where the records are (the file is preallocated:
    // most of it is empty), found by their keys.
    let find = |bytes: &[u8], key: &str, last: bool| -> usize {
        let k = key.as_bytes();
        let hits: Vec<usize> = bytes
            .windows(k.len())
            .enumerate()
            .filter(|(_, w)| *w == k)
            .map(|(i, _)| i)
            .collect();
        let hit = if last { hits.last() } else { hits.first() };
        *hit.unwrap_or_else(|| panic!("{key} is in the database file"))
    };
    type Fault = Box<dyn Fn(&mut Vec<u8>)>;
    let flip_at = |key: &'static str, last: bool| -> Fault {
        Box::new(move |bytes: &mut Vec<u8>| {
            let i = find(bytes, key, last);
            for b in &mut bytes[i..i + key.len()] {
                *b ^= 0x5a;
            }
        })
    };
    let cut_at = |key: &'static str| -> Fault {
        Box::new(move |bytes: &mut Vec<u8>| {
            let i = find(bytes, key, false);
            bytes.truncate(i);
        })
    };
    let zero_from = |key: &'static str, last: bool| -> Fault {
        Box::new(move |bytes: &mut Vec<u8>| {
            let i = find(bytes, key, last);
            bytes[i..].iter_mut().for_each(|b| *b = 0);
        })
    };
    let faults: Vec<(&str, Fault)> = vec![
        (
            "zeroed from the 4th definition on (a torn tail)",
            zero_from("taskdef/family-3", false),
        ),
        ("zeroed from the last record on", zero_from("task/", true)),
        (
            "an early record's bytes flipped",
            flip_at("taskdef/family-0", false),
        ),
        (
            "a middle record's bytes flipped",
            flip_at("taskdef/family-4", true),
        ),
        ("the last record's bytes flipped", flip_at("task/", true)),
        (
            "truncated before the 4th definition",
            cut_at("taskdef/family-3"),
        ),
        ("truncated before the first task", cut_at("task/")),
        (
            "truncated to nothing",
            Box::new(|b: &mut Vec<u8>| b.clear()),
        ),
        (
            "zeroed",
            Box::new(|b: &mut Vec<u8>| b.iter_mut().for_each(|x| *x = 0)),
        ),
    ];
    let _ = len;
    let mut outcomes = Vec::new();
    for (what, fault) in &faults {
        let copy = tempfile::tempdir().expect("dir");
        let damaged = copy.path().join("data");
        copy_dir(&data, &damaged);
        let file = damaged.join("state").join("db");
        let mut bytes = std::fs::read(&file).expect("read db");
        fault(&mut bytes);
        std::fs::write(&file, &bytes).expect("write db");
        match load(&damaged) {
            Ok(state) => {
                assert_eq!(
                    state, expected,
                    "{what}: served a state that differs from what was stored"
                );
                outcomes.push(format!("{what}: recovered exactly"));
            }
            Err(message) => {
                assert!(
                    message.contains(&damaged.join("state").display().to_string()),
                    "{what}: the refusal names the data directory: {message}"
                );
                outcomes.push(format!("{what}: refused: {message}"));
            }
        }
    }
    eprintln!("{}", outcomes.join("\n"));
}
