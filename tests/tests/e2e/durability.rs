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
