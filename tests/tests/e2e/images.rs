//! Image pulls from a private registry on 127.0.0.1: credentials resolved on
//! the host, pull times and the digest on the task, and refused credentials
//! failing the task with the registry's message, never falling back to the
//! cached image.

use super::support::{container, container_named, register_and_run, wait_status};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::RepositoryCredentials;
use berth_tests::registry::Registry;
use berth_tests::{TEST_IMAGE, TestCluster};
use std::time::Duration;

async fn run(ecs: &Client, family: &str, image: &str, credentials: &str) -> String {
    let mut c = container("app", &["sleep", "600"]);
    c.image = Some(image.to_owned());
    c.repository_credentials = Some(
        RepositoryCredentials::builder()
            .credentials_parameter(credentials)
            .build()
            .expect("credentials"),
    );
    register_and_run(
        ecs,
        ecs.register_task_definition()
            .family(family)
            .container_definitions(c),
    )
    .await
}

/// Credential files for user `berth` (`name` -> password) in the test's
/// directory; returns it, for `--registry-credentials-dir`.
fn credentials(cluster: &TestCluster, files: &[(&str, &str)]) -> String {
    let dir = cluster.dir().join("registry-credentials");
    for (name, password) in files {
        let path = dir.join(format!("{name}.json"));
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        let secret = serde_json::json!({"username": "berth", "password": password});
        std::fs::write(path, secret.to_string()).expect("write");
    }
    dir.to_str().expect("utf-8 path").to_owned()
}

#[tokio::test]
async fn private_images_are_pulled_with_host_credentials_and_bad_ones_fail_loudly() {
    let mut cluster = TestCluster::start(0).await;
    let registry = Registry::start(&cluster.dir().join("registry"), "berth", "s3cret-pass");
    let image = registry
        .push(&cluster.docker, TEST_IMAGE, "berth-test/private", "v1")
        .await;
    let creds = credentials(&cluster, &[("team/good", "s3cret-pass"), ("bad", "wrong")]);
    cluster.start_agent(&["--registry-credentials-dir", &creds]);
    let ecs = cluster.ecs.clone();

    // Good credentials, named by a Secrets Manager ARN: pulled, with times
    // and the registry digest on the task.
    let arn = run(
        &ecs,
        "private",
        &image,
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:team/good",
    )
    .await;
    let task = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let pulled = (task.pull_started_at(), task.pull_stopped_at());
    assert!(pulled.0.is_some() && pulled.1.is_some(), "{pulled:?}");
    assert!(pulled.0 <= pulled.1);
    let digest = container_named(&task, "app")
        .image_digest()
        .expect("digest")
        .to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let local = cluster
        .docker
        .inspect_image(&image)
        .await
        .expect("pulled image");
    assert!(
        local
            .repo_digests
            .unwrap_or_default()
            .iter()
            .any(|d| d.ends_with(&digest)),
        "the digest is the registry's"
    );

    // Wrong credentials: the image is cached now, but a refused pull fails
    // the task with the registry's answer instead of using the cache.
    let arn = run(&ecs, "refused", &image, "bad").await;
    let stopped = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("TaskFailedToStart")
    );
    let reason = container_named(&stopped, "app")
        .reason()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.starts_with("CannotPullContainerError")
            && reason.to_ascii_lowercase().contains("unauthorized"),
        "{reason}"
    );
    assert!(
        stopped
            .stopped_reason()
            .unwrap_or_default()
            .contains("CannotPullContainerError"),
        "{:?}",
        stopped.stopped_reason()
    );

    // A credential the host does not have.
    let arn = run(&ecs, "unknown", &image, "nobody").await;
    let stopped = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    let reason = stopped.stopped_reason().unwrap_or_default();
    assert!(
        reason.contains("ResourceInitializationError") && reason.contains("nobody.json"),
        "{reason}"
    );
    assert!(!reason.contains("s3cret"), "secrets never appear: {reason}");
}

#[tokio::test]
async fn pulled_images_no_task_uses_are_cleaned_up_and_local_ones_kept() {
    let mut cluster = TestCluster::start(0).await;
    let registry = Registry::start(&cluster.dir().join("registry"), "berth", "pw");
    // An image of its own (the test image's id is shared by every test).
    let docker = &cluster.docker;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let scratch = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(TEST_IMAGE.to_owned()),
                ..Default::default()
            },
        )
        .await
        .expect("create")
        .id;
    docker
        .commit_container(
            bollard::query_parameters::CommitContainerOptions {
                container: Some(scratch.clone()),
                repo: Some("berth-test/unique".to_owned()),
                tag: Some(unique.clone()),
                changes: Some(format!("LABEL berth.test={unique}")),
                ..Default::default()
            },
            bollard::models::ContainerConfig::default(),
        )
        .await
        .expect("commit");
    docker
        .remove_container(
            &scratch,
            None::<bollard::query_parameters::RemoveContainerOptions>,
        )
        .await
        .expect("remove");
    let source = format!("berth-test/unique:{unique}");
    let image = registry
        .push(docker, &source, "berth-test/cleanup", "v1")
        .await;
    registry.forget_locally(docker, &source).await;
    let creds = credentials(&cluster, &[("reg", "pw")]);
    cluster.start_agent(&[
        "--registry-credentials-dir",
        &creds,
        "--task-cleanup-wait",
        "1s",
        "--image-cleanup-age",
        "1s",
    ]);
    let ecs = cluster.ecs.clone();
    let arn = run(&ecs, "short", &image, "reg").await;
    wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    // In use: kept, however old.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(cluster.docker.inspect_image(&image).await.is_ok());
    ecs.stop_task().task(&arn).send().await.expect("StopTask");
    wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    // The container goes after task-cleanup-wait, then the image.
    berth_tests::eventually(
        Duration::from_secs(40),
        "the pulled image removed",
        || async {
            cluster
                .docker
                .inspect_image(&image)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    assert!(
        cluster.docker.inspect_image(TEST_IMAGE).await.is_ok(),
        "an image built on the host is never removed"
    );
}

#[tokio::test]
async fn identical_concurrent_pulls_reach_the_registry_once() {
    let mut cluster = TestCluster::start(0).await;
    let registry = Registry::start(&cluster.dir().join("registry"), "berth", "pw");
    let image = registry
        .push(&cluster.docker, TEST_IMAGE, "berth-test/shared", "v1")
        .await;
    let creds = credentials(&cluster, &[("reg", "pw")]);
    cluster.start_agent(&[
        "--registry-credentials-dir",
        &creds,
        "--image-pull-behavior",
        "always",
    ]);
    let ecs = cluster.ecs.clone();
    let manifests = "/v2/berth-test/shared/manifests/v1";

    // One pull alone: what it costs the registry.
    let before = registry.requests(manifests);
    let arn = run(&ecs, "one", &image, "reg").await;
    wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let one_pull = registry.requests(manifests) - before;
    assert!(one_pull >= 1);

    // Five tasks at once with `always`: one pull serves them all.
    ecs.stop_task().task(&arn).send().await.expect("StopTask");
    let before = registry.requests(manifests);
    let out = ecs
        .run_task()
        .task_definition("one")
        .count(5)
        .send()
        .await
        .expect("RunTask");
    for t in out.tasks() {
        wait_status(
            &ecs,
            t.task_arn().expect("arn"),
            "RUNNING",
            Duration::from_secs(60),
        )
        .await;
    }
    assert_eq!(registry.requests(manifests) - before, one_pull);
}
