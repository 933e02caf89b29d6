//! The Docker Engine restarted under a running agent: the agent reconnects
//! to it and its event stream, reports what happened to the tasks it ran,
//! and runs new tasks on the restarted engine. Uses a private engine, so the
//! machine's own and the tests beside this one are not disturbed.

use super::support::{container, register_and_run, wait_status};
use aws_sdk_ecs::types::NetworkMode;
use berth_tests::TestCluster;
use berth_tests::private_docker::PrivateDocker;
use std::time::Duration;

#[tokio::test]
async fn after_docker_restarts_the_agent_reports_and_runs_again() {
    let mut cluster = TestCluster::start(0).await;
    let mut engine = PrivateDocker::start(&cluster.dir().join("docker"));
    let host = engine.host.clone();
    cluster.start_agent(&["--docker-host", &host]);
    let ecs = cluster.ecs.clone();
    let definition = || {
        ecs.register_task_definition()
            .family("survivor")
            .network_mode(NetworkMode::Host)
            .container_definitions(container("app", &["sleep", "600"]))
    };
    let arn = register_and_run(&ecs, definition()).await;
    wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;

    // The engine goes away (its containers stop with it) and comes back.
    engine.restart();
    let stopped = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited"),
        "{stopped:?}"
    );
    assert!(
        stopped
            .stopped_reason()
            .unwrap_or_default()
            .contains("container 'app'"),
        "{:?}",
        stopped.stopped_reason()
    );

    // The agent is connected to the new engine: a new task runs there.
    let again = register_and_run(&ecs, definition()).await;
    wait_status(&ecs, &again, "RUNNING", Duration::from_secs(60)).await;
    ecs.stop_task().task(&again).send().await.expect("StopTask");
    wait_status(&ecs, &again, "STOPPED", Duration::from_secs(60)).await;
    // The agent first, then the engine it uses, then the directory.
    cluster.agents[0].kill();
    drop(engine);
    drop(cluster);
}

async fn runtime_health(ecs: &aws_sdk_ecs::Client, instance: &str) -> Option<String> {
    let out = ecs
        .describe_container_instances()
        .container_instances(instance)
        .include(aws_sdk_ecs::types::ContainerInstanceField::ContainerInstanceHealth)
        .send()
        .await
        .ok()?;
    let i = out.container_instances().first()?;
    let h = i.health_status()?;
    assert_eq!(
        h.details()[0].r#type().map(|t| t.as_str()),
        Some("CONTAINER_RUNTIME")
    );
    h.overall_status().map(|s| s.as_str().to_owned())
}

#[tokio::test]
async fn a_docker_engine_that_stops_answering_is_reported_and_avoided_until_it_answers() {
    let mut cluster = TestCluster::start(0).await;
    let engine = PrivateDocker::start(&cluster.dir().join("docker"));
    let host = engine.host.clone();
    cluster.start_agent(&["--docker-host", &host]);
    let instance = cluster.agents[0].arn.clone();
    let ecs = cluster.ecs.clone();
    let definition = || {
        ecs.register_task_definition()
            .family("frozen")
            .network_mode(NetworkMode::Host)
            .container_definitions(container("app", &["sleep", "600"]))
    };
    let before = register_and_run(&ecs, definition()).await;
    wait_status(&ecs, &before, "RUNNING", Duration::from_secs(60)).await;
    let e = ecs.clone();
    let i = instance.clone();
    berth_tests::eventually(Duration::from_secs(20), "healthStatus OK", || {
        let (e, i) = (e.clone(), i.clone());
        async move { (runtime_health(&e, &i).await.as_deref() == Some("OK")).then_some(()) }
    })
    .await;

    // The engine hangs (a deadlocked dockerd answers nothing).
    engine.freeze(true);
    let frozen_at = std::time::Instant::now();
    berth_tests::eventually(Duration::from_secs(30), "healthStatus IMPAIRED", || {
        let (e, i) = (e.clone(), i.clone());
        async move { (runtime_health(&e, &i).await.as_deref() == Some("IMPAIRED")).then_some(()) }
    })
    .await;
    eprintln!(
        "IMPAIRED reported {:?} after the engine froze",
        frozen_at.elapsed()
    );
    // The agent is alive and says so; placement keeps new tasks away.
    let run = ecs
        .run_task()
        .task_definition("frozen")
        .send()
        .await
        .expect("RunTask");
    assert!(run.tasks().is_empty(), "{run:?}");
    let f = &run.failures()[0];
    assert_eq!(f.reason(), Some("AGENT"));
    assert!(
        f.detail()
            .unwrap_or_default()
            .contains("Docker Engine not answering"),
        "{f:?}"
    );

    engine.freeze(false);
    berth_tests::eventually(Duration::from_secs(30), "healthStatus OK again", || {
        let (e, i) = (e.clone(), i.clone());
        async move { (runtime_health(&e, &i).await.as_deref() == Some("OK")).then_some(()) }
    })
    .await;
    let after = register_and_run(&ecs, definition()).await;
    wait_status(&ecs, &after, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(
        super::support::describe(&ecs, &before).await.last_status(),
        Some("RUNNING"),
        "the task ran on through the hang"
    );
    cluster.agents[0].kill();
    drop(engine);
    drop(cluster);
}
