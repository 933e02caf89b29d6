//! Services with real containers, driven by the stock `aws` CLI (its
//! `create-service`, `update-service` and `wait services-stable`) and the
//! SDK: a killed container is replaced, a rolling update completes.

use super::support::{aws, container, register};
use berth_tests::{TestCluster, eventually};
use std::process::Command;
use std::time::{Duration, Instant};

async fn stable(cluster: &TestCluster, service: &str, desired: i32) {
    let ecs = cluster.ecs.clone();
    eventually(Duration::from_secs(60), "the service is steady", || {
        let ecs = ecs.clone();
        async move {
            let out = ecs
                .describe_services()
                .services(service)
                .send()
                .await
                .ok()?;
            let s = out.services().first()?;
            (s.deployments().len() == 1
                && s.running_count() == desired
                && s.desired_count() == desired
                && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED"))
            .then_some(())
        }
    })
    .await;
}

async fn service_tasks(cluster: &TestCluster, service: &str) -> Vec<aws_sdk_ecs::types::Task> {
    let arns = cluster
        .ecs
        .list_tasks()
        .service_name(service)
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    cluster
        .ecs
        .describe_tasks()
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("DescribeTasks")
        .tasks()
        .to_vec()
}

#[tokio::test]
async fn the_aws_cli_runs_a_service_that_heals_and_rolls_out() {
    let cluster = TestCluster::start(1).await;
    register(
        &cluster.ecs,
        "svc",
        vec![container("app", &["sleep", "600"])],
    )
    .await;

    let created = aws(
        &cluster,
        &[
            "create-service",
            "--service-name",
            "web",
            "--task-definition",
            "svc",
            "--desired-count",
            "2",
        ],
    );
    assert_eq!(created["service"]["status"], "ACTIVE");
    stable(&cluster, "web", 2).await;
    // The CLI's waiter agrees (its first check passes: no 15 s poll).
    aws(&cluster, &["wait", "services-stable", "--services", "web"]);

    // A container killed behind Berth's back is replaced.
    let tasks = service_tasks(&cluster, "web").await;
    let victim = tasks[0].containers()[0]
        .runtime_id()
        .expect("a container id")
        .to_owned();
    let killed = Instant::now();
    let status = Command::new("docker")
        .args(["kill", &victim])
        .status()
        .expect("docker kill");
    assert!(status.success());
    let ecs = cluster.ecs.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ecs
            .describe_services()
            .services("web")
            .send()
            .await
            .expect("Describe");
        let s = &out.services()[0];
        if s.running_count() == 2 && s.deployments()[0].failed_tasks() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "a replacement RUNNING: {s:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "killed container replaced and RUNNING after {:?}",
        killed.elapsed()
    );

    // A rolling update through the CLI completes, and the waiter says so.
    register(
        &cluster.ecs,
        "svc",
        vec![container("app", &["sleep", "601"])],
    )
    .await;
    let updated = aws(
        &cluster,
        &[
            "update-service",
            "--service",
            "web",
            "--task-definition",
            "svc:2",
        ],
    );
    assert_eq!(
        updated["service"]["deployments"].as_array().map(Vec::len),
        Some(2)
    );
    stable(&cluster, "web", 2).await;
    aws(&cluster, &["wait", "services-stable", "--services", "web"]);
    for t in service_tasks(&cluster, "web").await {
        assert!(
            t.task_definition_arn()
                .is_some_and(|a| a.ends_with("svc:2"))
        );
        assert_eq!(t.last_status(), Some("RUNNING"));
        assert_eq!(t.group(), Some("service:web"));
    }

    // Delete: the tasks stop and the service goes INACTIVE.
    aws(&cluster, &["delete-service", "--service", "web", "--force"]);
    eventually(Duration::from_secs(60), "INACTIVE", || {
        let ecs = ecs.clone();
        async move {
            let s = ecs.describe_services().services("web").send().await.ok()?;
            (s.services().first()?.status() == Some("INACTIVE")).then_some(())
        }
    })
    .await;
    aws(
        &cluster,
        &["wait", "services-inactive", "--services", "web"],
    );
}

#[tokio::test]
async fn a_control_plane_killed_mid_deployment_neither_loses_nor_duplicates_tasks() {
    use aws_sdk_ecs::client::Waiters;
    let mut cluster = TestCluster::start(1).await;
    let ecs = cluster.ecs.clone();
    register(&ecs, "roll", vec![container("app", &["sleep", "600"])]).await;
    ecs.create_service()
        .service_name("roll")
        .task_definition("roll")
        .desired_count(3)
        .send()
        .await
        .expect("CreateService");
    stable(&cluster, "roll", 3).await;
    register(&ecs, "roll", vec![container("app", &["sleep", "601"])]).await;
    let updated = ecs
        .update_service()
        .service("roll")
        .task_definition("roll:2")
        .send()
        .await
        .expect("UpdateService");
    let deployment = updated.service().expect("service").deployments()[0]
        .id()
        .expect("id")
        .to_owned();

    // Crash in the middle of the rollout; the answered update must survive
    // and the scheduler must pick up where it was.
    cluster.control_plane.kill();
    cluster.control_plane.restart();

    // The SDK's own waiter (ECS's ServicesStable acceptors).
    ecs.wait_until_services_stable()
        .services("roll")
        .wait(Duration::from_secs(120))
        .await
        .expect("services-stable after the restart");
    let s = ecs
        .describe_services()
        .services("roll")
        .send()
        .await
        .expect("DescribeServices");
    let s = &s.services()[0];
    assert_eq!(s.deployments().len(), 1);
    assert_eq!(s.deployments()[0].id(), Some(deployment.as_str()));
    assert_eq!(s.running_count(), 3);
    let tasks = service_tasks(&cluster, "roll").await;
    assert_eq!(tasks.len(), 3, "exactly the desired count");
    for t in &tasks {
        assert!(
            t.task_definition_arn()
                .is_some_and(|a| a.ends_with("roll:2"))
        );
    }
    // Docker agrees: the three tasks' containers run, and none of the
    // stopped tasks' containers (other tests' clusters share this engine
    // and the cluster name, so match task ARNs exactly).
    let ours: Vec<String> = tasks
        .iter()
        .filter_map(|t| t.task_arn().map(str::to_owned))
        .collect();
    let stopped = ecs
        .list_tasks()
        .service_name("roll")
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .expect("ListTasks STOPPED")
        .task_arns()
        .to_vec();
    assert!(
        stopped.len() >= 3,
        "the first deployment's tasks stopped: {stopped:?}"
    );
    let docker = cluster.docker.clone();
    eventually(
        Duration::from_secs(30),
        "only the 3 tasks' containers run",
        || {
            let docker = docker.clone();
            let ours = ours.clone();
            let stopped = stopped.clone();
            async move {
                let running = docker
                    .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
                    .await
                    .ok()?;
                let arns: Vec<String> = running
                    .iter()
                    .filter_map(|c| {
                        c.labels
                            .as_ref()?
                            .get("com.amazonaws.ecs.task-arn")
                            .cloned()
                    })
                    .collect();
                let mine = arns.iter().filter(|a| ours.contains(a)).count();
                let old = arns.iter().filter(|a| stopped.contains(a)).count();
                (mine == 3 && old == 0).then_some(())
            }
        },
    )
    .await;
}
