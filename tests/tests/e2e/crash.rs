//! The agent after `kill -9`, and containers removed behind its back: tasks
//! keep running and are re-adopted without duplicates, and a container that
//! vanished is reported STOPPED with a reason that says so.

use super::support::{container, docker_running, register, run_one, wait_status};
use berth_tests::{TestCluster, eventually};
use std::time::Duration;

/// Containers Docker has for a task (running or not).
async fn containers_of(docker: &bollard::Docker, task_arn: &str) -> usize {
    let filters = std::collections::HashMap::from([(
        "label",
        vec![format!("com.amazonaws.ecs.task-arn={task_arn}")],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .len()
}

async fn remove_behind_the_agents_back(docker: &bollard::Docker, id: &str) {
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
        .force(true)
        .build();
    docker
        .remove_container(id, Some(options))
        .await
        .expect("docker rm -f");
}

#[tokio::test]
async fn a_killed_agent_readopts_its_tasks_and_vanished_containers_are_reported() {
    let mut cluster = TestCluster::start(1).await;
    let ecs = cluster.ecs.clone();
    let docker = cluster.docker.clone();
    register(
        &ecs,
        "pair",
        vec![
            container("main", &["sleep", "600"]),
            container("side", &["sleep", "600"]),
        ],
    )
    .await;
    let task = run_one(&ecs, "pair").await;
    let arn = task.task_arn().expect("arn").to_owned();
    let other = run_one(&ecs, "pair").await;
    let other_arn = other.task_arn().expect("arn").to_owned();
    let running = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let ids: Vec<String> = running
        .containers()
        .iter()
        .map(|c| c.runtime_id().expect("id").to_owned())
        .collect();
    let other_running = wait_status(&ecs, &other_arn, "RUNNING", Duration::from_secs(60)).await;

    // kill -9: the containers outlive the agent.
    cluster.agents[0].kill();
    for id in &ids {
        assert!(docker_running(&docker, id).await);
    }
    // A container removed while the agent is down.
    let gone = other_running.containers()[0]
        .runtime_id()
        .expect("id")
        .to_owned();
    remove_behind_the_agents_back(&docker, &gone).await;

    cluster.agents[0].restart();
    // Re-adopted: still RUNNING, the same containers, no duplicates.
    let after = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(30)).await;
    let ids_after: Vec<String> = after
        .containers()
        .iter()
        .map(|c| c.runtime_id().expect("id").to_owned())
        .collect();
    assert_eq!(ids_after, ids);
    assert_eq!(containers_of(&docker, &arn).await, 2, "no duplicates");
    // The one removed while the agent was down: found out at restart.
    let stopped = wait_status(&ecs, &other_arn, "STOPPED", Duration::from_secs(60)).await;
    assert!(
        stopped
            .stopped_reason()
            .unwrap_or_default()
            .contains("while the agent was down"),
        "{:?}",
        stopped.stopped_reason()
    );

    // docker rm -f behind the running agent's back: STOPPED, and the reason
    // says so.
    let side = after
        .containers()
        .iter()
        .find(|c| c.name() == Some("side"))
        .and_then(|c| c.runtime_id())
        .expect("side")
        .to_owned();
    remove_behind_the_agents_back(&docker, &side).await;
    let stopped = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited")
    );
    assert!(
        stopped
            .stopped_reason()
            .unwrap_or_default()
            .contains("removed outside Berth"),
        "{:?}",
        stopped.stopped_reason()
    );

    // And the agent can still stop what it adopted.
    let last = run_one(&ecs, "pair").await;
    let last_arn = last.task_arn().expect("arn").to_owned();
    wait_status(&ecs, &last_arn, "RUNNING", Duration::from_secs(60)).await;
    cluster.agents[0].kill();
    cluster.agents[0].restart();
    ecs.stop_task()
        .task(&last_arn)
        .send()
        .await
        .expect("StopTask");
    let stopped = wait_status(&ecs, &last_arn, "STOPPED", Duration::from_secs(60)).await;
    for c in stopped.containers() {
        let id = c.runtime_id().expect("id");
        eventually(Duration::from_secs(10), "container stopped", || async {
            (!docker_running(&docker, id).await).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn an_agent_that_lost_its_data_directory_leaves_no_orphan_running() {
    let mut cluster = TestCluster::start(0).await;
    // A short lost-host timeout, so the old identity counts as lost soon.
    let data_dir = cluster.control_plane.data_dir().to_owned();
    cluster.control_plane.kill();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    cluster.control_plane = berth_tests::ControlPlane::start_with(
        &data_dir,
        any,
        any,
        &cluster.dir().join("control-plane.log"),
        &["--lost-host-timeout".to_owned(), "3s".to_owned()],
    );
    cluster.ecs = berth_tests::ecs_client(cluster.control_plane.http);
    let ecs = cluster.ecs.clone();
    cluster.start_agent(&[]);
    let old_instance = cluster.agents[0].arn.clone();
    register(&ecs, "orphan", vec![container("app", &["sleep", "600"])]).await;
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let arn = run_one(&ecs, "orphan")
            .await
            .task_arn()
            .expect("arn")
            .to_owned();
        wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(30)).await;
        tasks.push(arn);
    }

    // The host loses the agent's data directory; a fresh agent registers
    // as a new instance on the same Docker Engine.
    cluster.agents[0].kill();
    std::fs::remove_dir_all(cluster.dir().join("agent0")).expect("lose the data dir");
    cluster.start_agent(&[]);
    assert_ne!(cluster.agents[1].arn, old_instance, "a new identity");
    let lost_at = std::time::Instant::now();

    // The old instance's tasks reach STOPPED and their containers stop.
    for arn in &tasks {
        let t = wait_status(&ecs, arn, "STOPPED", Duration::from_secs(60)).await;
        assert_eq!(
            t.stop_code().map(|c| c.as_str()),
            Some("InfrastructureHealth")
        );
        assert!(
            t.stopped_reason()
                .is_some_and(|r| r.contains(&cluster.agents[1].arn)),
            "{t:?}"
        );
    }
    let docker = cluster.docker.clone();
    for arn in &tasks {
        let docker = docker.clone();
        let arn = arn.clone();
        eventually(
            Duration::from_secs(30),
            "no container of the old tasks left",
            || {
                let docker = docker.clone();
                let arn = arn.clone();
                async move { (containers_of(&docker, &arn).await == 0).then_some(()) }
            },
        )
        .await;
    }
    eprintln!(
        "orphans stopped and removed {:?} after the new agent started",
        lost_at.elapsed()
    );
    let old = ecs
        .describe_container_instances()
        .container_instances(&old_instance)
        .send()
        .await
        .expect("Describe");
    assert_eq!(old.container_instances()[0].status(), Some("INACTIVE"));
}
