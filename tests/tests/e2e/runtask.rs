//! RunTask's whole contract (the seed): every member refused with ECS's
//! error when it is wrong, and honoured (visible in Docker or in the
//! response) when it is right.

// The seed lists inferenceAcceleratorOverrides; the SDK marks the type
// deprecated (Elastic Inference is gone), and the test must still send it.
#![allow(deprecated)]

use super::support::{container, describe, env, inspect, register, tag, wait_status};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::operation::run_task::builders::RunTaskFluentBuilder;
use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ContainerOverride, EnvironmentFile, EnvironmentFileType,
    EphemeralStorage, InferenceAcceleratorOverride, KeyValuePair, LaunchType, NetworkConfiguration,
    NetworkMode, PlacementConstraint, PlacementConstraintType, PlacementStrategy,
    PlacementStrategyType, PropagateTags, ResourceRequirement, ResourceType, TaskOverride,
};
use berth_tests::TestCluster;
use std::time::Duration;

fn overrides(co: ContainerOverride) -> TaskOverride {
    TaskOverride::builder().container_overrides(co).build()
}

fn app() -> aws_sdk_ecs::types::builders::ContainerOverrideBuilder {
    ContainerOverride::builder().name("app")
}

type Case = (
    &'static str,
    &'static str,
    Box<dyn Fn(RunTaskFluentBuilder) -> RunTaskFluentBuilder>,
);

fn cases() -> Vec<Case> {
    let vpc = || {
        NetworkConfiguration::builder()
            .awsvpc_configuration(
                aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                    .subnets("home")
                    .build()
                    .expect("subnets"),
            )
            .build()
    };
    vec![
        (
            "count 0",
            "InvalidParameterException",
            Box::new(|r| r.count(0)),
        ),
        (
            "count 11",
            "InvalidParameterException",
            Box::new(|r| r.count(11)),
        ),
        (
            "unknown cluster",
            "ClusterNotFoundException",
            Box::new(|r| r.cluster("nope")),
        ),
        (
            "cluster ARN of another cluster",
            "ClusterNotFoundException",
            Box::new(|r| r.cluster("arn:aws:ecs:us-east-1:000000000000:cluster/nope")),
        ),
        (
            "unknown definition",
            "ClientException",
            Box::new(|r| r.task_definition("ghost")),
        ),
        (
            "unknown revision",
            "ClientException",
            Box::new(|r| r.task_definition("web:99")),
        ),
        (
            "INACTIVE revision",
            "InvalidParameterException",
            Box::new(|r| r.task_definition("web:1")),
        ),
        (
            "FARGATE",
            "UnsupportedFeatureException",
            Box::new(|r| r.launch_type(LaunchType::Fargate)),
        ),
        (
            "unknown launch type",
            "InvalidParameterException",
            Box::new(|r| r.launch_type(LaunchType::from("BOAT"))),
        ),
        (
            "launch type and capacity provider strategy",
            "InvalidParameterException",
            Box::new(|r| {
                r.launch_type(LaunchType::External)
                    .capacity_provider_strategy(
                        CapacityProviderStrategyItem::builder()
                            .capacity_provider("pool")
                            .weight(1)
                            .build()
                            .expect("item"),
                    )
            }),
        ),
        (
            "7 capacity providers",
            "InvalidParameterException",
            Box::new(|r| {
                (0..7).fold(r, |r, i| {
                    r.capacity_provider_strategy(
                        CapacityProviderStrategyItem::builder()
                            .capacity_provider(format!("p{i}"))
                            .weight(1)
                            .build()
                            .expect("item"),
                    )
                })
            }),
        ),
        (
            "capacity provider not associated",
            "InvalidParameterException",
            Box::new(|r| {
                r.capacity_provider_strategy(
                    CapacityProviderStrategyItem::builder()
                        .capacity_provider("elsewhere")
                        .weight(1)
                        .build()
                        .expect("item"),
                )
            }),
        ),
        (
            "override of an unknown container",
            "InvalidParameterException",
            Box::new(|r| {
                r.overrides(overrides(
                    ContainerOverride::builder().name("ghost").build(),
                ))
            }),
        ),
        (
            "overrides over 8192 characters",
            "InvalidParameterException",
            Box::new(|r| r.overrides(overrides(app().command("x".repeat(9000)).build()))),
        ),
        (
            "memory override below 6 MiB",
            "InvalidParameterException",
            Box::new(|r| r.overrides(overrides(app().memory(4).build()))),
        ),
        (
            "memory not above memoryReservation",
            "InvalidParameterException",
            Box::new(|r| r.overrides(overrides(app().memory(64).memory_reservation(64).build()))),
        ),
        (
            "environment file that is not .env",
            "InvalidParameterException",
            Box::new(|r| {
                r.overrides(overrides(
                    app()
                        .environment_files(
                            EnvironmentFile::builder()
                                .value("/etc/app.txt")
                                .r#type(EnvironmentFileType::S3)
                                .build()
                                .expect("file"),
                        )
                        .build(),
                ))
            }),
        ),
        (
            "GPU count that is not a number",
            "InvalidParameterException",
            Box::new(|r| {
                r.overrides(overrides(
                    app()
                        .resource_requirements(
                            ResourceRequirement::builder()
                                .r#type(ResourceType::Gpu)
                                .value("two")
                                .build()
                                .expect("req"),
                        )
                        .build(),
                ))
            }),
        ),
        (
            "task cpu override that does not parse",
            "InvalidParameterException",
            Box::new(|r| r.overrides(TaskOverride::builder().cpu("lots").build())),
        ),
        (
            "ephemeral storage below 21 GiB",
            "InvalidParameterException",
            Box::new(|r| {
                r.overrides(
                    TaskOverride::builder()
                        .ephemeral_storage(EphemeralStorage::builder().size_in_gib(10).build())
                        .build(),
                )
            }),
        ),
        (
            "accelerator the definition lacks",
            "InvalidParameterException",
            Box::new(|r| {
                r.overrides(
                    TaskOverride::builder()
                        .inference_accelerator_overrides(
                            InferenceAcceleratorOverride::builder()
                                .device_name("gpu0")
                                .device_type("eia2.medium")
                                .build(),
                        )
                        .build(),
                )
            }),
        ),
        (
            "11 placement constraints",
            "InvalidParameterException",
            Box::new(|r| {
                (0..11).fold(r, |r, _| {
                    r.placement_constraints(
                        PlacementConstraint::builder()
                            .r#type(PlacementConstraintType::DistinctInstance)
                            .build(),
                    )
                })
            }),
        ),
        (
            "distinctInstance with an expression",
            "InvalidParameterException",
            Box::new(|r| {
                r.placement_constraints(
                    PlacementConstraint::builder()
                        .r#type(PlacementConstraintType::DistinctInstance)
                        .expression("attribute:a exists")
                        .build(),
                )
            }),
        ),
        (
            "memberOf that does not parse",
            "InvalidParameterException",
            Box::new(|r| {
                r.placement_constraints(
                    PlacementConstraint::builder()
                        .r#type(PlacementConstraintType::MemberOf)
                        .expression("attribute:a ==")
                        .build(),
                )
            }),
        ),
        (
            "6 placement strategies",
            "InvalidParameterException",
            Box::new(|r| {
                (0..6).fold(r, |r, _| {
                    r.placement_strategy(
                        PlacementStrategy::builder()
                            .r#type(PlacementStrategyType::Random)
                            .build(),
                    )
                })
            }),
        ),
        (
            "binpack on disk",
            "InvalidParameterException",
            Box::new(|r| {
                r.placement_strategy(
                    PlacementStrategy::builder()
                        .r#type(PlacementStrategyType::Binpack)
                        .field("disk")
                        .build(),
                )
            }),
        ),
        (
            "network configuration for bridge",
            "InvalidParameterException",
            Box::new(move |r| r.network_configuration(vpc())),
        ),
        (
            "awsvpc without network configuration",
            "InvalidParameterException",
            Box::new(|r| r.task_definition("vpc")),
        ),
        (
            "platformVersion",
            "InvalidParameterException",
            Box::new(|r| r.platform_version("LATEST")),
        ),
        (
            "unknown platformVersion",
            "PlatformUnknownException",
            Box::new(|r| r.platform_version("9.9.9")),
        ),
        (
            "definition that requires FARGATE",
            "PlatformTaskDefinitionIncompatibilityException",
            Box::new(|r| r.task_definition("fargate-only")),
        ),
        (
            "propagateTags SERVICE",
            "InvalidParameterException",
            Box::new(|r| r.propagate_tags(PropagateTags::Service)),
        ),
        (
            "execute command without a task role",
            "InvalidParameterException",
            Box::new(|r| r.enable_execute_command(true)),
        ),
        (
            // Real ECS accepts any printable startedBy up to 128 characters
            // (deploy tools send "ECS Deploy"); beyond that it refuses.
            "startedBy of 129 characters",
            "InvalidParameterException",
            Box::new(|r| r.started_by("a".repeat(129))),
        ),
        (
            "startedBy with a control character",
            "InvalidParameterException",
            Box::new(|r| r.started_by("team\njob")),
        ),
        (
            "group of 256 characters",
            "InvalidParameterException",
            Box::new(|r| r.group("g".repeat(256))),
        ),
        (
            "referenceId of 1025 characters",
            "InvalidParameterException",
            Box::new(|r| r.reference_id("r".repeat(1025))),
        ),
        (
            "51 tags",
            "InvalidParameterException",
            Box::new(|r| (0..51).fold(r, |r, i| r.tags(tag(&format!("k{i}"), "v")))),
        ),
        (
            "duplicate tag keys",
            "InvalidParameterException",
            Box::new(|r| r.tags(tag("k", "1")).tags(tag("k", "2"))),
        ),
        (
            "tag key of 129 characters",
            "InvalidParameterException",
            Box::new(|r| r.tags(tag(&"k".repeat(129), "v"))),
        ),
        (
            "tag value of 257 characters",
            "InvalidParameterException",
            Box::new(|r| r.tags(tag("k", &"v".repeat(257)))),
        ),
        (
            "aws: tag key",
            "InvalidParameterException",
            Box::new(|r| r.tags(tag("AWS:owner", "me"))),
        ),
        (
            "aws: tag value",
            "InvalidParameterException",
            Box::new(|r| r.tags(tag("owner", "aws:me"))),
        ),
        (
            "tag with a disallowed character",
            "InvalidParameterException",
            Box::new(|r| r.tags(tag("owner!", "me"))),
        ),
        (
            "client token of 65 characters",
            "InvalidParameterException",
            Box::new(|r| r.client_token("t".repeat(65))),
        ),
    ]
}

async fn definitions(ecs: &Client) {
    register(ecs, "web", vec![container("app", &["sleep", "600"])]).await;
    register(ecs, "web", vec![container("app", &["sleep", "600"])]).await;
    ecs.deregister_task_definition()
        .task_definition("web:1")
        .send()
        .await
        .expect("deregister");
    ecs.register_task_definition()
        .family("vpc")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(container("app", &["sleep", "1"]))
        .send()
        .await
        .expect("awsvpc definition");
    ecs.register_task_definition()
        .family("fargate-only")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(container("app", &["sleep", "1"]))
        .send()
        .await
        .expect("fargate definition");
}

#[tokio::test]
async fn every_bad_member_is_refused_with_its_ecs_error_and_nothing_is_created() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    definitions(ecs).await;
    let mut wrong = Vec::new();
    for (what, expected, build) in cases() {
        let request = build(ecs.run_task().task_definition("web"));
        match request.send().await {
            Ok(out) => wrong.push(format!("{what}: accepted ({} tasks)", out.tasks().len())),
            Err(e) => {
                let code = e.code().unwrap_or_default().to_owned();
                let message = e.message().unwrap_or_default().to_owned();
                if code != expected {
                    wrong.push(format!("{what}: {code} ({message}), expected {expected}"));
                } else if message.len() < 20 {
                    wrong.push(format!(
                        "{what}: the message does not say what to fix: '{message}'"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases().len(),
        wrong.join("\n")
    );
    for status in ["RUNNING", "STOPPED"] {
        let listed = ecs
            .list_tasks()
            .desired_status(status.into())
            .send()
            .await
            .expect("ListTasks");
        assert!(
            listed.task_arns().is_empty(),
            "a refused RunTask created {:?}",
            listed.task_arns()
        );
    }
    let ci = ecs
        .describe_container_instances()
        .container_instances(&cluster.agents[0].arn)
        .send()
        .await
        .expect("describe");
    assert_eq!(ci.container_instances()[0].pending_tasks_count(), 0);
}

#[tokio::test]
async fn bad_task_definitions_are_refused_as_ecs_does() {
    let cluster = TestCluster::start(0).await;
    let ecs = &cluster.ecs;
    let c = || container("app", &["sleep", "1"]);
    let port = |container_port: i32, host_port: i32| {
        aws_sdk_ecs::types::PortMapping::builder()
            .container_port(container_port)
            .host_port(host_port)
            .build()
    };
    let mut no_memory = c();
    no_memory.memory = None;
    let mut not_essential = c();
    not_essential.essential = Some(false);
    let mut no_image = c();
    no_image.image = None;
    let mut reservation = c();
    reservation.memory_reservation = Some(32);
    let mut ported = c();
    ported.port_mappings = Some(vec![port(80, 8080)]);
    let mut unsupported = c();
    unsupported.firelens_configuration = Some(
        aws_sdk_ecs::types::FirelensConfiguration::builder()
            .r#type(aws_sdk_ecs::types::FirelensConfigurationType::Fluentbit)
            .build()
            .expect("firelens"),
    );
    let mut firelens = c();
    firelens.log_configuration = Some(
        aws_sdk_ecs::types::LogConfiguration::builder()
            .log_driver(aws_sdk_ecs::types::LogDriver::Awsfirelens)
            .build()
            .expect("log configuration"),
    );
    let mut linked = c();
    linked.links = Some(vec!["ghost:db".into()]);
    let mut mounted = c();
    mounted.mount_points = Some(vec![
        aws_sdk_ecs::types::MountPoint::builder()
            .source_volume("nowhere")
            .container_path("/data")
            .build(),
    ]);
    let efs = aws_sdk_ecs::types::Volume::builder()
        .name("efs")
        .efs_volume_configuration(
            aws_sdk_ecs::types::EfsVolumeConfiguration::builder()
                .file_system_id("fs-1")
                .build()
                .expect("efs"),
        )
        .build();
    let cases: Vec<(&str, aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder)> = vec![
        ("awsfirelens log driver", ecs.register_task_definition().family("f").container_definitions(firelens)),
        ("link to a container that does not exist", ecs.register_task_definition().family("f").container_definitions(linked)),
        ("mount of a volume that does not exist", ecs.register_task_definition().family("f").container_definitions(mounted)),
        ("EFS volume", ecs.register_task_definition().family("f").container_definitions(c()).volumes(efs)),
        ("family with a space", ecs.register_task_definition().family("my app").container_definitions(c())),
        ("no image", ecs.register_task_definition().family("f").container_definitions(no_image)),
        ("duplicate names", ecs.register_task_definition().family("f").container_definitions(c()).container_definitions(c())),
        ("no essential container", ecs.register_task_definition().family("f").container_definitions(not_essential)),
        ("no memory anywhere", ecs.register_task_definition().family("f").container_definitions(no_memory.clone())),
        ("memory not above reservation", ecs.register_task_definition().family("f").container_definitions(reservation)),
        ("ports in none mode", ecs.register_task_definition().family("f").network_mode(NetworkMode::None).container_definitions(ported.clone())),
        ("host port differs in host mode", ecs.register_task_definition().family("f").network_mode(NetworkMode::Host).container_definitions(ported)),
        ("task cpu that does not parse", ecs.register_task_definition().family("f").cpu("3 apples").container_definitions(c())),
        ("task memory that does not parse", ecs.register_task_definition().family("f").memory("lots").container_definitions(c())),
        ("containers above the task memory", ecs.register_task_definition().family("f").memory("16").container_definitions(c())),
        (
            "FARGATE without task size",
            ecs.register_task_definition()
                .family("f")
                .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
                .container_definitions(c()),
        ),
        ("a member Berth cannot apply yet", ecs.register_task_definition().family("f").container_definitions(unsupported)),
    ];
    for (what, request) in cases {
        let err = request.send().await.map(|_| ()).expect_err(what);
        assert_eq!(err.code(), Some("ClientException"), "{what}: {err:?}");
    }
    let families = ecs
        .list_task_definition_families()
        .send()
        .await
        .expect("families");
    assert!(
        families.families().is_empty(),
        "nothing was registered: {:?}",
        families.families()
    );
    // Unit strings are converted as ECS does; task memory makes container memory optional.
    let td = ecs
        .register_task_definition()
        .family("sized")
        .cpu("0.5 vCPU")
        .memory("1 GB")
        .container_definitions(no_memory)
        .send()
        .await
        .expect("register")
        .task_definition
        .expect("td");
    assert_eq!((td.cpu(), td.memory()), (Some("512"), Some("1024")));
}

#[tokio::test]
async fn every_override_is_visible_on_the_running_container() {
    let mut cluster = TestCluster::start(0).await;
    let files = cluster.dir().join("env-files");
    std::fs::create_dir_all(files.join("bucket")).expect("mkdir");
    std::fs::write(
        files.join("bucket/app.env"),
        "# from S3, mapped to the host\nFROM_FILE=1\nSHARED=file\n",
    )
    .expect("write");
    let local = cluster.dir().join("local.env");
    std::fs::write(&local, "LOCAL=yes\n").expect("write");
    let files_arg = files.to_str().expect("utf-8 path").to_owned();
    cluster.start_agent(&[
        "--env-files-dir",
        &files_arg,
        "--gpu",
        "0",
        "--gpu",
        "1",
        "--gpu-access",
        "env",
        "--availability-zone",
        "rack-7",
        "--capacity-provider",
        "homelab",
    ]);
    let ecs = cluster.ecs.clone();
    ecs.put_cluster_capacity_providers()
        .cluster("default")
        .capacity_providers("homelab")
        .set_default_capacity_provider_strategy(Some(vec![]))
        .send()
        .await
        .expect("PutClusterCapacityProviders");

    let mut main = container("app", &["sleep", "600"]);
    main.environment = Some(vec![env("SHARED", "definition")]);
    ecs.register_task_definition()
        .family("full")
        .task_role_arn("arn:aws:iam::000000000000:role/app")
        .cpu("256")
        .memory("96")
        .container_definitions(main)
        .tags(tag("team", "infra"))
        .tags(tag("app", "full"))
        .send()
        .await
        .expect("register");
    let file = |v: &str| {
        EnvironmentFile::builder()
            .value(v)
            .r#type(EnvironmentFileType::S3)
            .build()
            .expect("file")
    };
    let run = ecs
        .run_task()
        .task_definition("full")
        .capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("homelab")
                .weight(1)
                .build()
                .expect("item"),
        )
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    app()
                        .command("sleep")
                        .command("500")
                        .environment(KeyValuePair::builder().name("EXTRA").value("x").build())
                        .environment_files(file("arn:aws:s3:::bucket/app.env"))
                        .environment_files(file(local.to_str().expect("utf-8 path")))
                        .cpu(128)
                        .memory(80)
                        .memory_reservation(40)
                        .resource_requirements(
                            ResourceRequirement::builder()
                                .r#type(ResourceType::Gpu)
                                .value("1")
                                .build()
                                .expect("req"),
                        )
                        .build(),
                )
                .cpu("0.5 vCPU")
                .memory("128")
                .execution_role_arn("arn:aws:iam::000000000000:role/exec")
                .ephemeral_storage(EphemeralStorage::builder().size_in_gib(30).build())
                .build(),
        )
        .group("batch")
        .started_by("ECS Deploy")
        .reference_id("ref-1")
        .enable_execute_command(true)
        .propagate_tags(PropagateTags::TaskDefinition)
        .enable_ecs_managed_tags(true)
        .tags(tag("team", "ops"))
        .send()
        .await
        .expect("RunTask");
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    let t = &run.tasks()[0];
    let arn = t.task_arn().expect("arn").to_owned();
    assert_eq!(t.group(), Some("batch"));
    assert_eq!(t.started_by(), Some("ECS Deploy"));
    assert_eq!(
        (t.cpu(), t.memory()),
        (Some("512"), Some("128")),
        "task size from overrides, as strings"
    );
    assert_eq!(t.capacity_provider_name(), Some("homelab"));
    assert_eq!(t.launch_type().map(|l| l.as_str()), Some("EXTERNAL"));
    assert_eq!(t.availability_zone(), Some("rack-7"));
    assert!(t.enable_execute_command());
    assert_eq!(t.ephemeral_storage().map(|e| e.size_in_gib()), Some(30));
    let mut tags: Vec<(String, String)> = t
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("app".to_owned(), "full".to_owned()),
            ("aws:ecs:clusterName".to_owned(), "default".to_owned()),
            ("team".to_owned(), "ops".to_owned()),
        ],
        "explicit tags win over propagated ones; the managed tag is added"
    );
    let o = t.overrides().expect("overrides echoed");
    assert_eq!(
        o.execution_role_arn(),
        Some("arn:aws:iam::000000000000:role/exec")
    );
    assert_eq!(o.container_overrides().len(), 1);
    assert!(
        t.attributes()
            .iter()
            .any(|a| a.name() == "ecs.cpu-architecture")
    );
    let c = &t.containers()[0];
    assert_eq!(
        (c.cpu(), c.memory(), c.memory_reservation()),
        (Some("128"), Some("80"), Some("40"))
    );
    assert_eq!(c.gpu_ids(), ["0"]);

    let running = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(20)).await;
    let id = running.containers()[0].runtime_id().expect("runtime id");
    let info = inspect(&cluster.docker, id).await;
    let config = info.config.expect("config");
    assert_eq!(config.cmd, Some(vec!["sleep".to_owned(), "500".to_owned()]));
    let vars = config.env.expect("env");
    for expected in [
        "FROM_FILE=1",
        "LOCAL=yes",
        "SHARED=definition",
        "EXTRA=x",
        "NVIDIA_VISIBLE_DEVICES=0",
    ] {
        assert!(
            vars.iter().any(|v| v == expected),
            "{expected} missing from {vars:?}"
        );
    }
    let host = info.host_config.expect("host config");
    assert_eq!(host.cpu_shares, Some(128));
    assert_eq!(host.memory, Some(80 * 1024 * 1024));
    assert_eq!(host.memory_reservation, Some(40 * 1024 * 1024));
    let task_id = arn.rsplit('/').next().expect("task id");
    assert_eq!(
        host.cgroup_parent.as_deref(),
        Some(format!("/berth/{task_id}").as_str())
    );
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/berth/{task_id}/memory.limit_in_bytes"
    ))
    .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/berth/{task_id}/memory.max")))
    .expect("the task cgroup's memory limit");
    assert_eq!(
        limit.trim(),
        (128 * 1024 * 1024).to_string(),
        "task-level memory is a hard limit"
    );

    // DescribeTasks shows the same, tags only when asked.
    let described = describe(&ecs, &arn).await;
    assert_eq!(described.capacity_provider_name(), Some("homelab"));
    assert!(described.tags().is_empty());
    let with_tags = ecs
        .describe_tasks()
        .tasks(&arn)
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .expect("describe");
    assert_eq!(with_tags.tasks()[0].tags().len(), 3);
    ecs.stop_task().task(&arn).send().await.expect("stop");
    wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(20)).await;
}
