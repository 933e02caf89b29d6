//! Agents: disconnects are seen within 15 seconds and avoided by placement;
//! agents reconnect with their identity; several agents share one Docker.

use super::support::{container, describe, docker_running, register, run_one, wait_status};
use berth_tests::{TestCluster, eventually};
use std::time::{Duration, Instant};

async fn connected(ecs: &aws_sdk_ecs::Client, arn: &str) -> bool {
    ecs.describe_container_instances()
        .container_instances(arn)
        .send()
        .await
        .expect("DescribeContainerInstances")
        .container_instances()
        .first()
        .is_some_and(|c| c.agent_connected())
}

#[tokio::test]
async fn a_dead_agent_is_disconnected_and_gets_no_tasks_until_it_returns() {
    let mut cluster = TestCluster::start(1).await;
    let ecs = cluster.ecs.clone();
    register(&ecs, "work", vec![container("app", &["sleep", "600"])]).await;
    let arn = cluster.agents[0].arn.clone();
    assert!(connected(&ecs, &arn).await);

    cluster.agents[0].kill();
    let killed = Instant::now();
    eventually(Duration::from_secs(15), "agentConnected: false", || async {
        (!connected(&ecs, &arn).await).then_some(())
    })
    .await;
    eprintln!("disconnect seen after {:?}", killed.elapsed());

    let out = ecs
        .run_task()
        .task_definition("work")
        .send()
        .await
        .expect("RunTask");
    assert!(out.tasks().is_empty());
    let failure = &out.failures()[0];
    assert_eq!(failure.reason(), Some("AGENT"));
    assert_eq!(failure.arn(), Some(arn.as_str()));
    assert!(
        failure
            .detail()
            .unwrap_or_default()
            .contains("disconnected"),
        "{failure:?}"
    );

    cluster.agents[0].restart();
    assert!(
        connected(&ecs, &arn).await,
        "same identity, connected again"
    );
    let instances = ecs.list_container_instances().send().await.expect("List");
    assert_eq!(
        instances.container_instance_arns(),
        std::slice::from_ref(&arn)
    );
    let task = run_one(&ecs, "work").await;
    wait_status(
        &ecs,
        task.task_arn().expect("arn"),
        "RUNNING",
        Duration::from_secs(20),
    )
    .await;
}

#[tokio::test]
async fn two_agents_on_one_docker_each_run_their_own_tasks() {
    let mut cluster = TestCluster::start(2).await;
    let ecs = cluster.ecs.clone();
    register(&ecs, "spread", vec![container("app", &["sleep", "600"])]).await;
    let out = ecs
        .run_task()
        .task_definition("spread")
        .count(2)
        .send()
        .await
        .expect("RunTask");
    assert_eq!(out.tasks().len(), 2, "{:?}", out.failures());
    let mut hosts: Vec<String> = out
        .tasks()
        .iter()
        .filter_map(|t| t.container_instance_arn().map(str::to_owned))
        .collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 2, "one task per instance");
    for t in out.tasks() {
        wait_status(
            &ecs,
            t.task_arn().expect("arn"),
            "RUNNING",
            Duration::from_secs(20),
        )
        .await;
    }
    // Killing one agent leaves the other's task alone, and its own task too
    // (containers outlive their agent).
    cluster.agents[0].kill();
    for t in out.tasks() {
        let running = wait_status(
            &ecs,
            t.task_arn().expect("arn"),
            "RUNNING",
            Duration::from_secs(5),
        )
        .await;
        let id = running.containers()[0].runtime_id().expect("id");
        assert!(docker_running(&cluster.docker, id).await);
    }
    // The surviving agent stops only its own task.
    let survivor = cluster.agents[1].arn.clone();
    let theirs = out
        .tasks()
        .iter()
        .find(|t| t.container_instance_arn() == Some(survivor.as_str()))
        .and_then(|t| t.task_arn())
        .expect("a task on the surviving agent")
        .to_owned();
    ecs.stop_task()
        .task(&theirs)
        .send()
        .await
        .expect("StopTask");
    wait_status(&ecs, &theirs, "STOPPED", Duration::from_secs(20)).await;
    let orphan = out
        .tasks()
        .iter()
        .find(|t| t.container_instance_arn() != Some(survivor.as_str()))
        .expect("the other task");
    let still = describe(&ecs, orphan.task_arn().expect("arn")).await;
    let id = still.containers()[0].runtime_id().expect("id");
    assert!(
        docker_running(&cluster.docker, id).await,
        "the other agent's container was not touched"
    );
}
