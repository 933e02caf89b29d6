//! Shared helpers: task definitions on the test image, waiting for task
//! states, reading containers from Docker.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, Task};
use berth_tests::{TEST_IMAGE, eventually};
use std::time::Duration;

/// A container of the test image running `command`.
pub fn container(name: &str, command: &[&str]) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name(name)
        .image(TEST_IMAGE)
        .memory(32)
        .set_command(Some(command.iter().map(|s| s.to_string()).collect()))
        .build()
}

/// An environment variable.
pub fn env(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair::builder().name(name).value(value).build()
}

/// Registers `family` with `containers`; returns its ARN.
pub async fn register(ecs: &Client, family: &str, containers: Vec<ContainerDefinition>) -> String {
    ecs.register_task_definition()
        .family(family)
        .set_container_definitions(Some(containers))
        .send()
        .await
        .expect("RegisterTaskDefinition")
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("a task definition ARN")
        .to_owned()
}

/// Runs one task of `family`; returns it as RunTask answered.
pub async fn run_one(ecs: &Client, family: &str) -> Task {
    let out = ecs
        .run_task()
        .task_definition(family)
        .send()
        .await
        .expect("RunTask");
    assert!(
        out.failures().is_empty(),
        "unexpected failures: {:?}",
        out.failures()
    );
    out.tasks().first().cloned().expect("one task")
}

/// Registers the definition `request` describes and runs one task of it;
/// returns the task's ARN.
pub async fn register_and_run(
    ecs: &Client,
    request: aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder,
) -> String {
    let family = request.get_family().clone().expect("a family");
    request.send().await.expect("RegisterTaskDefinition");
    run_one(ecs, &family)
        .await
        .task_arn()
        .expect("arn")
        .to_owned()
}

/// DescribeTasks of one task.
pub async fn describe(ecs: &Client, task_arn: &str) -> Task {
    let out = ecs
        .describe_tasks()
        .tasks(task_arn)
        .send()
        .await
        .expect("DescribeTasks");
    out.tasks()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("task {task_arn} missing: {:?}", out.failures()))
}

/// Waits until the task's lastStatus is `status`.
pub async fn wait_status(ecs: &Client, task_arn: &str, status: &str, timeout: Duration) -> Task {
    eventually(
        timeout,
        &format!("task {task_arn} to be {status}"),
        || async {
            let t = describe(ecs, task_arn).await;
            (t.last_status() == Some(status)).then_some(t)
        },
    )
    .await
}

/// Docker's view of a task's container.
pub async fn inspect(
    docker: &bollard::Docker,
    runtime_id: &str,
) -> bollard::models::ContainerInspectResponse {
    docker
        .inspect_container(
            runtime_id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .expect("the container exists in Docker")
}

/// Whether Docker says the container runs.
pub async fn docker_running(docker: &bollard::Docker, runtime_id: &str) -> bool {
    inspect(docker, runtime_id)
        .await
        .state
        .and_then(|s| s.running)
        == Some(true)
}

/// The container called `name` in a task.
pub fn container_named(task: &Task, name: &str) -> aws_sdk_ecs::types::Container {
    task.containers()
        .iter()
        .find(|c| c.name() == Some(name))
        .cloned()
        .unwrap_or_else(|| panic!("no container {name} in {task:?}"))
}

/// The stock `aws` CLI (`aws ecs ARGS`) against `cluster`, signed with the
/// harness's key; its JSON output.
pub fn aws(cluster: &berth_tests::TestCluster, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new("aws")
        .arg("ecs")
        .args(args)
        .args([
            "--endpoint-url",
            &format!("http://{}", cluster.control_plane.http),
        ])
        .args(["--region", "us-east-1", "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", berth_tests::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", berth_tests::SECRET_ACCESS_KEY)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the aws CLI runs (.ci/run installs it)");
    assert!(
        out.status.success(),
        "aws ecs {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&out.stdout).expect("JSON from the aws CLI")
    }
}

/// A tag.
pub fn tag(k: &str, v: &str) -> aws_sdk_ecs::types::Tag {
    aws_sdk_ecs::types::Tag::builder().key(k).value(v).build()
}

/// Tags as a key -> value map (their order is not part of ECS's answer).
pub fn tag_map(tags: &[aws_sdk_ecs::types::Tag]) -> std::collections::BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
