//! Health checks and container dependencies: `healthCheck` reaches Docker
//! and comes back as `healthStatus`; `dependsOn` orders the start, and a
//! dependency that cannot hold (or not within `startTimeout`) fails the task
//! with a reason that names it.

use super::support::{
    container, container_named, describe, inspect, register_and_run, wait_status,
};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    ContainerCondition, ContainerDefinition, ContainerDependency, HealthCheck, HealthStatus,
};
use berth_tests::{TestCluster, eventually};
use std::time::Duration;

fn health(code: &str) -> HealthCheck {
    HealthCheck::builder()
        .command("CMD")
        .command("/testbin")
        .command("exit")
        .command(code)
        .interval(5)
        .timeout(2)
        .retries(10)
        .build()
        .expect("health check")
}

fn depends(on: &str, condition: ContainerCondition) -> ContainerDependency {
    ContainerDependency::builder()
        .container_name(on)
        .condition(condition)
        .build()
        .expect("dependency")
}

fn helper(name: &str, command: &[&str]) -> ContainerDefinition {
    let mut c = container(name, command);
    c.essential = Some(false);
    c
}

async fn run(ecs: &Client, family: &str, containers: Vec<ContainerDefinition>) -> String {
    register_and_run(
        ecs,
        ecs.register_task_definition()
            .family(family)
            .set_container_definitions(Some(containers)),
    )
    .await
}

/// Docker's RFC 3339 times (UTC, nanoseconds with trailing zeros trimmed)
/// as seconds since midnight, enough to order events of one test.
fn clock(t: &str) -> f64 {
    let time = t.split('T').nth(1).expect("a time").trim_end_matches('Z');
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut parts = hms.split(':').map(|p| p.parse::<f64>().expect("number"));
    let (h, m, s) = (
        parts.next().expect("h"),
        parts.next().expect("m"),
        parts.next().expect("s"),
    );
    h * 3600.0 + m * 60.0 + s + format!("0.{frac}").parse::<f64>().expect("fraction")
}

#[tokio::test]
async fn depends_on_orders_the_start_and_health_checks_report_health() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let docker = &cluster.docker;

    let mut db = container("db", &["sleep", "600"]);
    db.health_check = Some(health("0"));
    let mut app = container("app", &["sleep", "600"]);
    app.depends_on = Some(vec![
        depends("init", ContainerCondition::Success),
        depends("db", ContainerCondition::Healthy),
    ]);
    let arn = run(
        ecs,
        "ordered",
        vec![app, helper("init", &["exit", "0"]), db],
    )
    .await;
    let running = wait_status(ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let state = |name: &str| {
        let id = container_named(&running, name)
            .runtime_id()
            .expect("runtime id")
            .to_owned();
        async move { inspect(docker, &id).await.state.expect("state") }
    };
    let (app, init, db) = (state("app").await, state("init").await, state("db").await);
    let app_started = clock(app.started_at.as_deref().expect("started"));
    assert!(
        app_started >= clock(init.finished_at.as_deref().expect("finished")),
        "app starts after init exited successfully"
    );
    assert_eq!(init.exit_code, Some(0));
    assert!(
        app_started >= clock(db.started_at.as_deref().expect("started")) + 4.0,
        "app waits for db's first health check (5 s interval)"
    );
    assert_eq!(
        container_named(&running, "db").health_status(),
        Some(&HealthStatus::Healthy)
    );
    assert_eq!(
        container_named(&running, "app")
            .health_status()
            .map(HealthStatus::as_str),
        Some("UNKNOWN"),
        "no health check, no verdict"
    );
    assert_eq!(running.health_status(), Some(&HealthStatus::Healthy));

    // A SUCCESS dependency that fails: the task fails to start, and says why.
    let mut app = container("app", &["sleep", "600"]);
    app.depends_on = Some(vec![depends("init", ContainerCondition::Success)]);
    let arn = run(
        ecs,
        "failing-init",
        vec![app, helper("init", &["exit", "4"])],
    )
    .await;
    let stopped = wait_status(ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("TaskFailedToStart")
    );
    assert_eq!(
        stopped.stopped_reason(),
        Some(
            "Task failed to start: container 'app': ContainerDependencyNotResolved: 'init' had to exit successfully (SUCCESS) but exited with code 4"
        )
    );
    assert!(container_named(&stopped, "app").runtime_id().is_some());

    // A HEALTHY dependency that is still starting when startTimeout ends.
    let mut sick = container("sick", &["sleep", "600"]);
    sick.health_check = Some(health("1"));
    let mut app = container("app", &["sleep", "600"]);
    app.depends_on = Some(vec![depends("sick", ContainerCondition::Healthy)]);
    app.start_timeout = Some(3);
    let arn = run(ecs, "timeout", vec![app, sick]).await;
    let stopped = eventually(Duration::from_secs(60), "the task to stop", || async {
        let t = describe(ecs, &arn).await;
        (t.last_status() == Some("STOPPED")).then_some(t)
    })
    .await;
    assert_eq!(
        stopped.stopped_reason(),
        Some(
            "Task failed to start: container 'app': ContainerDependencyNotResolved: its dependencies did not hold within startTimeout (3 s)"
        )
    );
}

#[tokio::test]
async fn an_oom_kill_is_the_stop_reason() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let mut hog = container("hog", &["alloc", "256"]);
    hog.memory = Some(32);
    // No swap to spill into: the kernel has to kill it.
    hog.linux_parameters = Some(
        aws_sdk_ecs::types::LinuxParameters::builder()
            .max_swap(0)
            .build(),
    );
    let arn = run(ecs, "hog", vec![hog]).await;
    let stopped = wait_status(ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited")
    );
    let reason = stopped.stopped_reason().unwrap_or_default();
    assert!(reason.contains("OutOfMemoryError"), "{reason}");
    assert!(
        container_named(&stopped, "hog")
            .reason()
            .unwrap_or_default()
            .starts_with("OutOfMemoryError"),
        "{stopped:?}"
    );
}
