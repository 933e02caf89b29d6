//! Container-definition options and task volumes, field by field, as Docker
//! shows them on the running containers.

use super::support::{container, container_named, inspect, wait_status};
use aws_sdk_ecs::types::{
    Device, DeviceCgroupPermission, DockerVolumeConfiguration, HostEntry, HostVolumeProperties,
    KernelCapabilities, LinuxParameters, LogConfiguration, LogDriver, MountPoint, Scope,
    SystemControl, Tmpfs, Ulimit, UlimitName, Volume, VolumeFrom,
};
use berth_tests::{TestCluster, eventually};
use std::time::Duration;

async fn volume_exists(docker: &bollard::Docker, name: &str) -> bool {
    docker.inspect_volume(name).await.is_ok()
}

#[tokio::test]
async fn container_options_and_volumes_reach_docker() {
    let mut cluster = TestCluster::start(0).await;
    cluster.start_agent(&["--task-cleanup-wait", "1s"]);
    let ecs = cluster.ecs.clone();
    let docker = cluster.docker.clone();
    let host_dir = cluster.dir().join("host-data");
    std::fs::create_dir_all(&host_dir).expect("mkdir");
    let host_path = host_dir.to_str().expect("utf-8 path").to_owned();
    let shared = format!("berth-test-shared-{}", uuid::Uuid::new_v4().simple());

    let mut data = container("data", &["sleep", "600"]);
    data.mount_points = Some(vec![
        MountPoint::builder()
            .source_volume("host")
            .container_path("/host")
            .read_only(true)
            .build(),
        MountPoint::builder()
            .source_volume("scratch")
            .container_path("/scratch")
            .build(),
        MountPoint::builder()
            .source_volume(&shared)
            .container_path("/shared")
            .build(),
    ]);
    let mut app = container("app", &["sleep", "600"]);
    app.memory = Some(64);
    app.entry_point = Some(vec!["/testbin".into()]);
    app.working_directory = Some("/work".into());
    app.user = Some("1000:1000".into());
    app.docker_labels = Some(std::collections::HashMap::from([(
        "team".to_owned(),
        "infra".to_owned(),
    )]));
    app.links = Some(vec!["data:db".into()]);
    app.volumes_from = Some(vec![
        VolumeFrom::builder()
            .source_container("data")
            .read_only(true)
            .build(),
    ]);
    app.readonly_root_filesystem = Some(true);
    app.ulimits = Some(vec![
        Ulimit::builder()
            .name(UlimitName::Nofile)
            .soft_limit(1024)
            .hard_limit(2048)
            .build()
            .expect("ulimit"),
    ]);
    app.linux_parameters = Some(
        LinuxParameters::builder()
            .capabilities(
                KernelCapabilities::builder()
                    .add("NET_ADMIN")
                    .drop("MKNOD")
                    .build(),
            )
            .init_process_enabled(true)
            .tmpfs(
                Tmpfs::builder()
                    .container_path("/run")
                    .size(16)
                    .mount_options("noexec")
                    .build()
                    .expect("tmpfs"),
            )
            .shared_memory_size(32)
            .devices(
                Device::builder()
                    .host_path("/dev/null")
                    .container_path("/dev/nothing")
                    .permissions(DeviceCgroupPermission::Read)
                    .build()
                    .expect("device"),
            )
            .max_swap(0)
            .swappiness(10)
            .build(),
    );
    app.hostname = Some("apphost".into());
    app.extra_hosts = Some(vec![
        HostEntry::builder()
            .hostname("db2")
            .ip_address("10.1.2.3")
            .build()
            .expect("host entry"),
    ]);
    app.dns_servers = Some(vec!["10.0.0.2".into()]);
    app.dns_search_domains = Some(vec!["example.internal".into()]);
    app.pseudo_terminal = Some(true);
    app.interactive = Some(true);
    app.log_configuration = Some(
        LogConfiguration::builder()
            .log_driver(LogDriver::JsonFile)
            .options("max-size", "1m")
            .build()
            .expect("log configuration"),
    );
    app.docker_security_options = Some(vec!["no-new-privileges".into()]);
    app.system_controls = Some(vec![
        SystemControl::builder()
            .namespace("net.core.somaxconn")
            .value("1024")
            .build(),
    ]);
    ecs.register_task_definition()
        .family("options")
        .container_definitions(app)
        .container_definitions(data)
        .volumes(
            Volume::builder()
                .name("host")
                .host(
                    HostVolumeProperties::builder()
                        .source_path(&host_path)
                        .build(),
                )
                .build(),
        )
        .volumes(Volume::builder().name("scratch").build())
        .volumes(
            Volume::builder()
                .name(&shared)
                .docker_volume_configuration(
                    DockerVolumeConfiguration::builder()
                        .scope(Scope::Shared)
                        .autoprovision(true)
                        .driver("local")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition accepts every option");
    let run = ecs
        .run_task()
        .task_definition("options")
        .send()
        .await
        .expect("RunTask");
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    let arn = run.tasks()[0].task_arn().expect("arn").to_owned();
    let task_id = arn.rsplit('/').next().expect("id").to_owned();
    let running = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;

    let app = inspect(
        &docker,
        container_named(&running, "app").runtime_id().expect("id"),
    )
    .await;
    let data = inspect(
        &docker,
        container_named(&running, "data").runtime_id().expect("id"),
    )
    .await;
    let data_name = data
        .name
        .clone()
        .expect("name")
        .trim_start_matches('/')
        .to_owned();
    let host = app.host_config.clone().expect("host config");
    let config = app.config.clone().expect("config");
    assert_eq!(host.readonly_rootfs, Some(true));
    let ulimit = &host.ulimits.clone().expect("ulimits")[0];
    assert_eq!(
        (ulimit.name.as_deref(), ulimit.soft, ulimit.hard),
        (Some("nofile"), Some(1024), Some(2048))
    );
    assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_owned()]));
    assert_eq!(host.cap_drop, Some(vec!["MKNOD".to_owned()]));
    assert_eq!(host.init, Some(true));
    assert_eq!(
        host.tmpfs
            .clone()
            .expect("tmpfs")
            .get("/run")
            .map(String::as_str),
        Some("size=16m,noexec")
    );
    assert_eq!(host.shm_size, Some(32 * 1024 * 1024));
    let device = &host.devices.clone().expect("devices")[0];
    assert_eq!(
        (
            device.path_on_host.as_deref(),
            device.path_in_container.as_deref(),
            device.cgroup_permissions.as_deref()
        ),
        (Some("/dev/null"), Some("/dev/nothing"), Some("r"))
    );
    assert_eq!(host.memory, Some(64 * 1024 * 1024));
    assert_eq!(
        host.memory_swap,
        Some(64 * 1024 * 1024),
        "maxSwap 0: no swap"
    );
    assert_eq!(host.memory_swappiness, Some(10));
    assert_eq!(config.hostname.as_deref(), Some("apphost"));
    assert_eq!(config.entrypoint, Some(vec!["/testbin".to_owned()]));
    assert_eq!(config.working_dir.as_deref(), Some("/work"));
    assert_eq!(config.user.as_deref(), Some("1000:1000"));
    assert_eq!(
        config
            .labels
            .clone()
            .unwrap_or_default()
            .get("team")
            .map(String::as_str),
        Some("infra")
    );
    assert_eq!(host.extra_hosts, Some(vec!["db2:10.1.2.3".to_owned()]));
    assert_eq!(host.dns, Some(vec!["10.0.0.2".to_owned()]));
    assert_eq!(host.dns_search, Some(vec!["example.internal".to_owned()]));
    assert_eq!(config.tty, Some(true));
    assert_eq!(config.open_stdin, Some(true));
    let log = host.log_config.clone().expect("log config");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    assert_eq!(
        log.config
            .expect("options")
            .get("max-size")
            .map(String::as_str),
        Some("1m")
    );
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_owned()])
    );
    assert_eq!(
        host.sysctls
            .clone()
            .expect("sysctls")
            .get("net.core.somaxconn")
            .map(String::as_str),
        Some("1024")
    );
    assert_eq!(host.volumes_from, Some(vec![format!("{data_name}:ro")]));
    assert_eq!(host.links.clone().expect("links").len(), 1);
    assert!(
        host.links.expect("links")[0].ends_with("/db"),
        "linked as db"
    );

    // Volumes: a read-only bind of the host path, a volume for this task, and
    // the autoprovisioned shared volume.
    let binds = data.host_config.and_then(|h| h.binds).expect("binds");
    let task_volume = format!("berth-{task_id}-scratch");
    assert!(
        binds.contains(&format!("{host_path}:/host:ro")),
        "{binds:?}"
    );
    assert!(
        binds.contains(&format!("{task_volume}:/scratch")),
        "{binds:?}"
    );
    assert!(binds.contains(&format!("{shared}:/shared")), "{binds:?}");
    assert!(volume_exists(&docker, &task_volume).await);

    // Stopped and cleaned up: the task's own volume goes with its
    // containers; the shared one stays.
    ecs.stop_task().task(&arn).send().await.expect("StopTask");
    wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    eventually(
        Duration::from_secs(30),
        "the task volume removed",
        || async { (!volume_exists(&docker, &task_volume).await).then_some(()) },
    )
    .await;
    assert!(volume_exists(&docker, &shared).await, "shared volumes stay");

    // privileged on its own: some hosts (this CI's sandbox among them) refuse
    // privileged containers at start, so the test accepts either outcome and
    // checks what Docker was asked for.
    let mut root = container("root", &["sleep", "600"]);
    root.privileged = Some(true);
    ecs.register_task_definition()
        .family("privileged")
        .container_definitions(root)
        .send()
        .await
        .expect("register");
    let run = ecs
        .run_task()
        .task_definition("privileged")
        .send()
        .await
        .expect("RunTask");
    let arn = run.tasks()[0].task_arn().expect("arn").to_owned();
    let task = eventually(Duration::from_secs(60), "a runtime id", || async {
        let t = super::support::describe(&ecs, &arn).await;
        container_named(&t, "root")
            .runtime_id()
            .is_some()
            .then_some(t)
    })
    .await;
    let root = inspect(
        &docker,
        container_named(&task, "root").runtime_id().expect("id"),
    )
    .await;
    assert_eq!(root.host_config.and_then(|h| h.privileged), Some(true));
    ecs.stop_task().task(&arn).send().await.expect("StopTask");
    let _ = docker
        .remove_volume(
            &shared,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await;
}

#[tokio::test]
async fn secrets_come_from_files_on_the_agents_host() {
    let mut cluster = TestCluster::start(0).await;
    let secrets = cluster.dir().join("secrets");
    std::fs::create_dir_all(secrets.join("prod")).expect("mkdir");
    std::fs::write(secrets.join("prod/db-password"), "hunter2\n").expect("write");
    let secrets_arg = secrets.to_str().expect("utf-8 path").to_owned();
    cluster.start_agent(&["--secrets-dir", &secrets_arg]);
    let ecs = cluster.ecs.clone();
    let secret = |name: &str, from: &str| {
        aws_sdk_ecs::types::Secret::builder()
            .name(name)
            .value_from(from)
            .build()
            .expect("secret")
    };
    let mut app = container("app", &["sleep", "600"]);
    app.environment = Some(vec![super::support::env("DB_PASSWORD", "from-environment")]);
    app.secrets = Some(vec![secret(
        "DB_PASSWORD",
        "arn:aws:ssm:us-east-1:000000000000:parameter/prod/db-password",
    )]);
    let mut missing = container("app", &["sleep", "600"]);
    missing.secrets = Some(vec![secret("TOKEN", "prod/api-token")]);
    for (family, c) in [("secret", app), ("missing-secret", missing)] {
        ecs.register_task_definition()
            .family(family)
            .container_definitions(c)
            .send()
            .await
            .expect("register");
    }
    let run = |family: &'static str| {
        let ecs = ecs.clone();
        async move {
            ecs.run_task()
                .task_definition(family)
                .send()
                .await
                .expect("RunTask")
                .tasks()[0]
                .task_arn()
                .expect("arn")
                .to_owned()
        }
    };
    let arn = run("secret").await;
    let task = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let info = inspect(
        &cluster.docker,
        container_named(&task, "app").runtime_id().expect("id"),
    )
    .await;
    let env = info.config.and_then(|c| c.env).unwrap_or_default();
    assert!(
        env.contains(&"DB_PASSWORD=hunter2".to_owned()),
        "the secret wins: {env:?}"
    );
    assert!(!env.iter().any(|e| e.contains("from-environment")));

    let arn = run("missing-secret").await;
    let stopped = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    let reason = stopped.stopped_reason().unwrap_or_default();
    assert!(
        reason.contains("ResourceInitializationError") && reason.contains("prod/api-token"),
        "{reason}"
    );
}
