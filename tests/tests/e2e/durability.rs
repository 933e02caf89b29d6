//! What was answered with success survives `kill -9` of the control plane.

use super::support::{container, describe, docker_running, register, run_one, wait_status};
use berth_tests::{TestCluster, eventually};
use std::time::Duration;

#[tokio::test]
async fn control_plane_restart_keeps_everything() {
    let mut cluster = TestCluster::start(1).await;
    let ecs = cluster.ecs.clone();
    ecs.create_cluster()
        .cluster_name("other")
        .send()
        .await
        .expect("CreateCluster");
    register(&ecs, "keep", vec![container("app", &["sleep", "600"])]).await;
    register(&ecs, "keep", vec![container("app", &["sleep", "601"])]).await;
    ecs.deregister_task_definition()
        .task_definition("keep:1")
        .send()
        .await
        .expect("Deregister");
    let running = run_one(&ecs, "keep")
        .await
        .task_arn()
        .expect("arn")
        .to_owned();
    wait_status(&ecs, &running, "RUNNING", Duration::from_secs(20)).await;
    // Answered with success just before the crash: must survive it.
    let last = run_one(&ecs, "keep")
        .await
        .task_arn()
        .expect("arn")
        .to_owned();

    cluster.control_plane.kill();
    cluster.control_plane.restart();

    let clusters = ecs.list_clusters().send().await.expect("ListClusters");
    assert_eq!(clusters.cluster_arns().len(), 2);
    let td = ecs
        .describe_task_definition()
        .task_definition("keep:1")
        .send()
        .await
        .expect("Describe");
    assert_eq!(
        td.task_definition()
            .and_then(|t| t.status())
            .map(|s| s.as_str()),
        Some("INACTIVE")
    );
    let latest = ecs
        .describe_task_definition()
        .task_definition("keep")
        .send()
        .await
        .expect("Describe");
    assert_eq!(latest.task_definition().map(|t| t.revision()), Some(2));
    assert_eq!(
        describe(&ecs, &running).await.last_status(),
        Some("RUNNING")
    );
    describe(&ecs, &last).await;

    // The agent reconnects by itself and the cluster converges.
    let agent = cluster.agents[0].arn.clone();
    eventually(
        Duration::from_secs(20),
        "the agent to reconnect",
        || async {
            let out = ecs
                .describe_container_instances()
                .container_instances(&agent)
                .send()
                .await
                .ok()?;
            out.container_instances()
                .first()
                .filter(|c| c.agent_connected())
                .map(|_| ())
        },
    )
    .await;
    wait_status(&ecs, &last, "RUNNING", Duration::from_secs(20)).await;
    let listed = ecs.list_tasks().send().await.expect("ListTasks");
    assert_eq!(listed.task_arns().len(), 2);

    // And it still controls what it runs.
    ecs.stop_task()
        .task(&running)
        .send()
        .await
        .expect("StopTask");
    let stopped = wait_status(&ecs, &running, "STOPPED", Duration::from_secs(20)).await;
    assert_eq!(stopped.containers()[0].exit_code(), Some(0));
    assert!(
        !docker_running(
            &cluster.docker,
            stopped.containers()[0].runtime_id().expect("runtime id")
        )
        .await
    );
}

/// Runs `berth-control-plane ARGS` to completion; its stdout, or why not.
fn control_plane_command(args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let out = std::process::Command::new(berth_tests::binary("berth-control-plane"))
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn a_snapshot_saved_under_load_restores_to_a_verified_state_with_every_acknowledged_task() {
    let cluster = TestCluster::start(1).await;
    let ecs = cluster.ecs.clone();
    register(&ecs, "snap", vec![container("app", &["sleep", "600"])]).await;
    // Load: RunTasks one after another while the snapshot is taken.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load = {
        let ecs = ecs.clone();
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            for _ in 0..12 {
                let t = run_one(&ecs, "snap").await;
                acknowledged
                    .lock()
                    .expect("lock")
                    .push(t.task_arn().expect("arn").to_owned());
            }
        })
    };
    eventually(Duration::from_secs(30), "some tasks acknowledged", || {
        let n = acknowledged.lock().expect("lock").len();
        async move { (n >= 4).then_some(()) }
    })
    .await;
    let before: Vec<String> = acknowledged.lock().expect("lock").clone();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("backup.snap");
    let data_dir = cluster.control_plane.data_dir().to_owned();
    let saved = {
        let (data_dir, file) = (data_dir.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            control_plane_command(&[
                "--data-dir".as_ref(),
                data_dir.as_os_str(),
                "snapshot".as_ref(),
                "save".as_ref(),
                file.as_os_str(),
            ])
        })
        .await
        .expect("join")
        .expect("snapshot save")
    };
    assert!(saved.starts_with("saved "), "{saved}");
    load.await.expect("load");

    // Restore into a fresh directory: verified by the command itself.
    let restored_dir = dir.path().join("restored");
    let restored = control_plane_command(&[
        "--data-dir".as_ref(),
        restored_dir.as_os_str(),
        "snapshot".as_ref(),
        "restore".as_ref(),
        file.as_os_str(),
    ])
    .expect("snapshot restore");
    assert!(restored.contains("verified"), "{restored}");
    // Restoring over a state is refused.
    let again = control_plane_command(&[
        "--data-dir".as_ref(),
        restored_dir.as_os_str(),
        "snapshot".as_ref(),
        "restore".as_ref(),
        file.as_os_str(),
    ])
    .expect_err("no restore over a state");
    assert!(again.contains("already holds a state"), "{again}");

    // A control plane on the restored state has every task acknowledged
    // before the save.
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let restored_cp =
        berth_tests::ControlPlane::start(&restored_dir, any, any, &dir.path().join("restored.log"));
    let restored_ecs = berth_tests::ecs_client(restored_cp.http);
    let described = restored_ecs
        .describe_tasks()
        .set_tasks(Some(before.clone()))
        .send()
        .await
        .expect("DescribeTasks");
    assert_eq!(
        described.tasks().len(),
        before.len(),
        "{:?}",
        described.failures()
    );
    let listed = restored_ecs.list_tasks().send().await.expect("ListTasks");
    assert!(listed.task_arns().len() >= before.len());
}
