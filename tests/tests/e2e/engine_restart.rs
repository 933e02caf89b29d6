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
