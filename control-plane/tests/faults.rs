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
use support::{ScriptedAgent, ok, register_family, start_in};

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
