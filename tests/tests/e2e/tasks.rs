//! Running tasks for real: RUNNING with ECS labels and overrides visible in
//! Docker, exit codes on STOPPED, StopTask with SIGTERM then SIGKILL.

use super::support::{
    container, container_named, describe, env, inspect, register, run_one, wait_status,
};
use aws_sdk_ecs::types::{ContainerOverride, TaskOverride};
use berth_tests::{TestCluster, eventually};
use std::time::{Duration, Instant};

#[tokio::test]
async fn run_task_reaches_running_with_labels_and_overrides() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let mut app = container("app", &["sleep", "600"]);
    app.environment = Some(vec![env("FROM_DEFINITION", "1"), env("REPLACED", "old")]);
    register(ecs, "web", vec![app]).await;

    let started = Instant::now();
    let out = ecs
        .run_task()
        .task_definition("web")
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name("app")
                        .environment(env("REPLACED", "new"))
                        .environment(env("ADDED", "yes"))
                        .cpu(256)
                        .memory(48)
                        .command("sleep")
                        .command("500")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RunTask");
    let task = &out.tasks()[0];
    assert_eq!(task.last_status(), Some("PENDING"));
    assert_eq!(task.desired_status(), Some("RUNNING"));
    assert_eq!(task.group(), Some("family:web"));
    assert_eq!(task.version(), 1);
    assert!(task.created_at().is_some());
    let arn = task.task_arn().expect("task ARN").to_owned();

    let running = wait_status(ecs, &arn, "RUNNING", Duration::from_secs(20)).await;
    eprintln!("RunTask -> RUNNING observed after {:?}", started.elapsed());
    assert!(running.started_at().is_some());
    assert!(running.version() > 1);
    let c = &running.containers()[0];
    assert_eq!(c.last_status(), Some("RUNNING"));
    assert_eq!(c.cpu(), Some("256"));
    assert_eq!(c.memory(), Some("48"));

    let info = inspect(&cluster.docker, c.runtime_id().expect("runtime id")).await;
    let config = info.config.expect("config");
    let labels = config.labels.expect("labels");
    assert_eq!(labels["com.amazonaws.ecs.task-arn"], arn);
    assert_eq!(labels["com.amazonaws.ecs.cluster"], "default");
    assert_eq!(labels["com.amazonaws.ecs.container-name"], "app");
    assert_eq!(labels["com.amazonaws.ecs.task-definition-family"], "web");
    assert_eq!(labels["com.amazonaws.ecs.task-definition-version"], "1");
    assert_eq!(
        labels["berth.container-instance-arn"],
        cluster.agents[0].arn
    );
    assert_eq!(
        config.cmd,
        Some(vec!["sleep".to_owned(), "500".to_owned()]),
        "the command override"
    );
    let vars = config.env.expect("env");
    for expected in ["FROM_DEFINITION=1", "REPLACED=new", "ADDED=yes"] {
        assert!(
            vars.iter().any(|v| v == expected),
            "{expected} missing from {vars:?}"
        );
    }
    let host = info.host_config.expect("host config");
    assert_eq!(host.cpu_shares, Some(256));
    assert_eq!(host.memory, Some(48 * 1024 * 1024));

    let instance = ecs
        .describe_container_instances()
        .container_instances(&cluster.agents[0].arn)
        .send()
        .await
        .expect("DescribeContainerInstances");
    let ci = &instance.container_instances()[0];
    assert_eq!(ci.running_tasks_count(), 1);
    let remaining_memory = ci
        .remaining_resources()
        .iter()
        .find(|r| r.name() == Some("MEMORY"))
        .map(|r| r.integer_value())
        .expect("MEMORY");
    let registered_memory = ci
        .registered_resources()
        .iter()
        .find(|r| r.name() == Some("MEMORY"))
        .map(|r| r.integer_value())
        .expect("MEMORY");
    assert_eq!(registered_memory - remaining_memory, 48);
    let clusters = ecs
        .describe_clusters()
        .send()
        .await
        .expect("DescribeClusters");
    assert_eq!(clusters.clusters()[0].running_tasks_count(), 1);
}

#[tokio::test]
async fn exit_code_is_reported_on_stopped() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    register(
        ecs,
        "batch",
        vec![container("job", &["exit-after", "0.5", "7"])],
    )
    .await;
    let arn = run_one(ecs, "batch")
        .await
        .task_arn()
        .expect("arn")
        .to_owned();
    let stopped = wait_status(ecs, &arn, "STOPPED", Duration::from_secs(20)).await;
    let c = &stopped.containers()[0];
    assert_eq!(c.exit_code(), Some(7));
    assert_eq!(c.last_status(), Some("STOPPED"));
    assert_eq!(stopped.desired_status(), Some("STOPPED"));
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited")
    );
    let reason = stopped.stopped_reason().expect("a stopped reason");
    assert!(
        reason.contains("'job'") && reason.contains("code 7"),
        "{reason}"
    );
    for t in [
        stopped.started_at(),
        stopped.stopping_at(),
        stopped.stopped_at(),
        stopped.execution_stopped_at(),
    ] {
        assert!(
            t.is_some(),
            "timestamps are set on a stopped task: {stopped:?}"
        );
    }
    assert!(
        stopped.created_at() <= stopped.started_at()
            && stopped.started_at() <= stopped.stopped_at()
    );
    // A STOPPED task no longer holds resources and is listed as STOPPED.
    let listed = ecs
        .list_tasks()
        .desired_status("STOPPED".into())
        .send()
        .await
        .expect("ListTasks");
    assert_eq!(listed.task_arns(), std::slice::from_ref(&arn));
    let running = ecs.list_tasks().send().await.expect("ListTasks");
    assert!(running.task_arns().is_empty());
}

#[tokio::test]
async fn essential_exit_stops_the_rest_and_non_essential_exit_does_not() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let mut helper = container("helper", &["exit", "1"]);
    helper.essential = Some(false);
    register(
        ecs,
        "pair",
        vec![
            container("main", &["exit-after", "2", "0"]),
            helper,
            container("sidecar", &["sleep", "600"]),
        ],
    )
    .await;
    let arn = run_one(ecs, "pair")
        .await
        .task_arn()
        .expect("arn")
        .to_owned();
    wait_status(ecs, &arn, "RUNNING", Duration::from_secs(20)).await;
    // The non-essential helper exits at once; the task keeps running.
    eventually(
        Duration::from_secs(10),
        "the helper to stop while the task runs",
        || async {
            let t = describe(ecs, &arn).await;
            let helper = container_named(&t, "helper");
            (helper.last_status() == Some("STOPPED") && helper.exit_code() == Some(1)).then_some(())
        },
    )
    .await;
    assert_ne!(
        describe(ecs, &arn).await.last_status(),
        Some("STOPPED"),
        "a non-essential exit does not stop the task"
    );
    let stopped = wait_status(ecs, &arn, "STOPPED", Duration::from_secs(30)).await;
    assert_eq!(container_named(&stopped, "main").exit_code(), Some(0));
    assert_eq!(container_named(&stopped, "helper").exit_code(), Some(1));
    assert_eq!(
        container_named(&stopped, "sidecar").exit_code(),
        Some(0),
        "the sidecar got SIGTERM and exited cleanly"
    );
    assert!(
        stopped
            .stopped_reason()
            .unwrap_or_default()
            .contains("'main'")
    );
}

#[tokio::test]
async fn stop_task_sends_sigterm_then_sigkill_after_stop_timeout() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let mut stubborn = container("stubborn", &["sleep-ignore", "600"]);
    stubborn.stop_timeout = Some(2);
    stubborn.essential = Some(false);
    register(
        ecs,
        "svc",
        vec![container("polite", &["sleep", "600"]), stubborn],
    )
    .await;
    let arn = run_one(ecs, "svc")
        .await
        .task_arn()
        .expect("arn")
        .to_owned();
    wait_status(ecs, &arn, "RUNNING", Duration::from_secs(20)).await;

    let stop = ecs
        .stop_task()
        .task(&arn)
        .reason("maintenance window")
        .send()
        .await
        .expect("StopTask");
    let t = stop.task().expect("task");
    assert_eq!(t.desired_status(), Some("STOPPED"));
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("UserInitiated"));
    assert_eq!(t.stopped_reason(), Some("maintenance window"));
    assert!(t.stopping_at().is_some());
    let asked = Instant::now();

    let stopped = wait_status(ecs, &arn, "STOPPED", Duration::from_secs(30)).await;
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "the stubborn container had 2 s to stop (took {took:?})"
    );
    assert_eq!(
        container_named(&stopped, "polite").exit_code(),
        Some(0),
        "SIGTERM ended the polite container"
    );
    assert_eq!(
        container_named(&stopped, "stubborn").exit_code(),
        Some(137),
        "SIGKILL ended the stubborn one"
    );
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("UserInitiated")
    );
    assert_eq!(stopped.stopped_reason(), Some("maintenance window"));

    // Stopping again changes nothing.
    let again = ecs
        .stop_task()
        .task(&arn)
        .send()
        .await
        .expect("StopTask again");
    assert_eq!(
        again.task().and_then(|t| t.stopped_reason()),
        Some("maintenance window")
    );
    assert_eq!(describe(ecs, &arn).await.version(), stopped.version());
}
