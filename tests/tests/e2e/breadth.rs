//! The ECS API beyond tasks and services that infrastructure-as-code and
//! deploy tools call: tags on every taggable resource, cluster updates and
//! settings, account settings. aws-sdk-ecs for each action and its errors,
//! the stock `aws` CLI for tags and account settings.

use super::support::{aws, container, register, tag, tag_map, wait_status};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName, SettingName};
use berth_tests::TestCluster;
use std::collections::BTreeMap;
use std::time::Duration;

async fn tags_of(ecs: &Client, arn: &str) -> BTreeMap<String, String> {
    tag_map(
        ecs.list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListTagsForResource {arn}: {e:?}"))
            .tags(),
    )
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn every_taggable_resource_takes_lists_and_drops_tags() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let family = register(ecs, "tagged", vec![container("main", &["sleep", "300"])]).await;
    let run = ecs
        .run_task()
        .task_definition(&family)
        .send()
        .await
        .expect("RunTask");
    let task = run.tasks()[0].task_arn().expect("arn").to_owned();
    wait_status(ecs, &task, "RUNNING", Duration::from_secs(60)).await;
    ecs.create_capacity_provider()
        .name("tagged-pool")
        .auto_scaling_group_provider(
            aws_sdk_ecs::types::AutoScalingGroupProvider::builder()
                .auto_scaling_group_arn("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/g")
                .build()
                .expect("provider"),
        )
        .send()
        .await
        .expect("CreateCapacityProvider");
    let service = ecs
        .create_service()
        .service_name("tagged-svc")
        .task_definition(&family)
        .desired_count(0)
        .send()
        .await
        .expect("CreateService")
        .service()
        .and_then(|s| s.service_arn())
        .expect("service arn")
        .to_owned();
    let prefix = "arn:aws:ecs:us-east-1:000000000000:";
    let resources = [
        format!("{prefix}cluster/default"),
        format!("{prefix}task-definition/tagged:1"),
        task.clone(),
        cluster.agents[0].arn.clone(),
        format!("{prefix}capacity-provider/tagged-pool"),
        service,
    ];
    for arn in &resources {
        ecs.tag_resource()
            .resource_arn(arn)
            .tags(tag("team", "ops"))
            .tags(tag("tier", "1"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("TagResource {arn}: {e:?}"));
        // Merge: a given key is overwritten, the others stay.
        ecs.tag_resource()
            .resource_arn(arn)
            .tags(tag("tier", "2"))
            .send()
            .await
            .expect("TagResource again");
        assert_eq!(
            tags_of(ecs, arn).await,
            map(&[("team", "ops"), ("tier", "2")]),
            "{arn}"
        );
        ecs.untag_resource()
            .resource_arn(arn)
            .tag_keys("team")
            .tag_keys("absent")
            .send()
            .await
            .expect("UntagResource");
        assert_eq!(tags_of(ecs, arn).await, map(&[("tier", "2")]), "{arn}");
    }

    // The describes show them with include TAGS, and only then.
    let described = ecs
        .describe_clusters()
        .clusters("default")
        .include(ClusterField::Tags)
        .send()
        .await
        .expect("DescribeClusters");
    assert_eq!(described.clusters()[0].tags().len(), 1);
    let plain = ecs
        .describe_clusters()
        .clusters("default")
        .send()
        .await
        .expect("DescribeClusters");
    assert!(plain.clusters()[0].tags().is_empty());
    let td = ecs
        .describe_task_definition()
        .task_definition("tagged:1")
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    assert_eq!(td.tags().len(), 1);
    let t = ecs
        .describe_tasks()
        .tasks(&task)
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .expect("DescribeTasks");
    assert_eq!(t.tasks()[0].tags().len(), 1);

    // Errors, by kind.
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{prefix}task/abc"),
            "InvalidParameterException",
            "Long arn format must be used for tagging operations",
        ),
        (
            format!("{prefix}task/default/0123456789abcdef0123456789abcdef"),
            "ResourceNotFoundException",
            "The specified task does not exist",
        ),
        (
            format!("{prefix}task/nowhere/0123456789abcdef0123456789abcdef"),
            "ClusterNotFoundException",
            "Cluster not found",
        ),
        (
            format!("{prefix}task-definition/tagged:9"),
            "ResourceNotFoundException",
            "The specified task definition does not exist",
        ),
        (
            "arn:aws:s3:::bucket".to_owned(),
            "InvalidParameterException",
            "is not the ARN of an ECS",
        ),
    ];
    for (arn, code, message) in &cases {
        let e = ecs
            .tag_resource()
            .resource_arn(arn)
            .tags(tag("a", "b"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(*code), "{arn}: {e:?}");
        assert!(
            e.message().unwrap_or_default().contains(message),
            "{arn}: {:?}",
            e.message()
        );
    }
    let too_many = (0..50).map(|i| tag(&format!("k{i}"), "v"));
    let e = ecs
        .tag_resource()
        .resource_arn(&task)
        .set_tags(Some(too_many.collect()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterException"), "{e:?}");
    assert!(e.message().unwrap_or_default().contains("at most 50"));
    let e = ecs
        .tag_resource()
        .resource_arn(&task)
        .tags(tag("aws:owner", "me"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterException"), "{e:?}");
    // ListTagsForResource has no ResourceNotFoundException in ECS's model.
    let e = ecs
        .list_tags_for_resource()
        .resource_arn(format!("{prefix}task-definition/tagged:9"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterException"), "{e:?}");

    // FARGATE may be associated (shared Terraform modules list it); a task
    // placed through it is a failure entry, the rest of the call goes on.
    ecs.put_cluster_capacity_providers()
        .cluster("default")
        .capacity_providers("FARGATE")
        .capacity_providers("tagged-pool")
        .set_default_capacity_provider_strategy(Some(Vec::new()))
        .send()
        .await
        .expect("PutClusterCapacityProviders");
    let mixed = ecs
        .run_task()
        .task_definition(&family)
        .count(2)
        .capacity_provider_strategy(
            aws_sdk_ecs::types::CapacityProviderStrategyItem::builder()
                .capacity_provider("FARGATE")
                .weight(1)
                .build()
                .expect("item"),
        )
        .send()
        .await
        .expect("RunTask through FARGATE");
    assert!(mixed.tasks().is_empty());
    assert_eq!(mixed.failures().len(), 2, "{:?}", mixed.failures());
    assert_eq!(
        mixed.failures()[0].reason(),
        Some("EMPTY CAPACITY PROVIDER")
    );
    assert!(
        mixed.failures()[0]
            .detail()
            .unwrap_or_default()
            .contains("1 not in capacity provider FARGATE"),
        "{:?}",
        mixed.failures()
    );
    ecs.put_cluster_capacity_providers()
        .cluster("default")
        .set_capacity_providers(Some(Vec::new()))
        .set_default_capacity_provider_strategy(Some(Vec::new()))
        .send()
        .await
        .expect("PutClusterCapacityProviders");

    // The stock aws CLI.
    let td_arn = format!("{prefix}task-definition/tagged:1");
    aws(
        &cluster,
        &[
            "tag-resource",
            "--resource-arn",
            &td_arn,
            "--tags",
            "key=owner,value=cli",
        ],
    );
    let listed = aws(
        &cluster,
        &["list-tags-for-resource", "--resource-arn", &td_arn],
    );
    let keys: Vec<&str> = listed["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert_eq!(keys, ["tier", "owner"], "{listed}");
    aws(
        &cluster,
        &[
            "untag-resource",
            "--resource-arn",
            &td_arn,
            "--tag-keys",
            "owner",
        ],
    );
    assert_eq!(tags_of(ecs, &td_arn).await, map(&[("tier", "2")]));
}

#[tokio::test]
async fn clusters_take_settings_configuration_and_account_defaults() {
    let cluster = TestCluster::start(0).await;
    let ecs = &cluster.ecs;

    // The account default for containerInsights shapes new clusters.
    let set = aws(
        &cluster,
        &[
            "put-account-setting-default",
            "--name",
            "containerInsights",
            "--value",
            "enabled",
        ],
    );
    assert_eq!(
        set["setting"]["principalArn"],
        "arn:aws:iam::000000000000:root"
    );
    let created = ecs
        .create_cluster()
        .cluster_name("insightful")
        .send()
        .await
        .expect("CreateCluster");
    let settings = created.cluster().expect("cluster").settings();
    assert_eq!(settings.len(), 1, "{settings:?}");
    assert_eq!(settings[0].value(), Some("enabled"));

    // The caller's own setting wins over the account default.
    aws(
        &cluster,
        &[
            "put-account-setting",
            "--name",
            "containerInsights",
            "--value",
            "enhanced",
        ],
    );
    let created = ecs
        .create_cluster()
        .cluster_name("enhanced")
        .send()
        .await
        .expect("CreateCluster");
    assert_eq!(
        created.cluster().expect("cluster").settings()[0].value(),
        Some("enhanced")
    );
    let mine = aws(&cluster, &["list-account-settings"]);
    assert_eq!(
        mine["settings"][0]["principalArn"],
        format!(
            "arn:aws:iam::000000000000:user/{}",
            berth_tests::ACCESS_KEY_ID
        ),
        "{mine}"
    );
    let effective = aws(
        &cluster,
        &[
            "list-account-settings",
            "--effective-settings",
            "--max-results",
            "10",
        ],
    );
    let names: Vec<&str> = effective["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.len() >= 10, "every setting, paged: {names:?}");
    aws(
        &cluster,
        &["delete-account-setting", "--name", "containerInsights"],
    );
    let after = ecs
        .list_account_settings()
        .name(SettingName::ContainerInsights)
        .effective_settings(true)
        .send()
        .await
        .expect("ListAccountSettings");
    assert_eq!(
        after.settings()[0].value(),
        Some("enabled"),
        "the default again"
    );
    let e = ecs
        .put_account_setting()
        .name(SettingName::TaskLongArnFormat)
        .value("disabled")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterException"), "{e:?}");

    // Settings, configuration and Service Connect defaults are recorded
    // and shown with their include values.
    let updated = ecs
        .update_cluster()
        .cluster("insightful")
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("disabled")
                .build(),
        )
        .configuration(
            aws_sdk_ecs::types::ClusterConfiguration::builder()
                .execute_command_configuration(
                    aws_sdk_ecs::types::ExecuteCommandConfiguration::builder()
                        .logging(aws_sdk_ecs::types::ExecuteCommandLogging::Default)
                        .build(),
                )
                .build(),
        )
        .service_connect_defaults(
            aws_sdk_ecs::types::ClusterServiceConnectDefaultsRequest::builder()
                .namespace("homelab")
                .build()
                .expect("defaults"),
        )
        .send()
        .await
        .expect("UpdateCluster");
    let c = updated.cluster().expect("cluster");
    assert_eq!(c.settings()[0].value(), Some("disabled"));
    assert!(c.configuration().is_some());
    assert_eq!(
        c.service_connect_defaults().and_then(|d| d.namespace()),
        Some("homelab")
    );
    let again = ecs
        .update_cluster_settings()
        .cluster("insightful")
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enhanced")
                .build(),
        )
        .send()
        .await
        .expect("UpdateClusterSettings");
    assert_eq!(
        again.cluster().expect("cluster").settings()[0].value(),
        Some("enhanced")
    );
    let described = ecs
        .describe_clusters()
        .clusters("insightful")
        .include(ClusterField::Settings)
        .include(ClusterField::Configurations)
        .include(ClusterField::Attachments)
        .send()
        .await
        .expect("DescribeClusters");
    let c = &described.clusters()[0];
    assert_eq!(c.settings()[0].value(), Some("enhanced"));
    assert!(c.configuration().is_some());
    let bare = ecs
        .describe_clusters()
        .clusters("insightful")
        .send()
        .await
        .expect("DescribeClusters");
    assert!(bare.clusters()[0].settings().is_empty());
    assert!(bare.clusters()[0].configuration().is_none());
    let e = ecs
        .update_cluster_settings()
        .cluster("insightful")
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("sometimes")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterException"), "{e:?}");
    let e = ecs
        .update_cluster()
        .cluster("nowhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ClusterNotFoundException"), "{e:?}");
}

#[tokio::test]
async fn inactive_revisions_are_deleted_and_protected_tasks_survive_scale_in() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    let family = register(ecs, "keeper", vec![container("main", &["sleep", "300"])]).await;
    register(ecs, "keeper", vec![container("main", &["sleep", "301"])]).await;

    // A service of two; protect one; scale to one: the other goes.
    ecs.create_service()
        .service_name("keeper")
        .task_definition("keeper:1")
        .desired_count(2)
        .send()
        .await
        .expect("CreateService");
    let running = berth_tests::eventually(Duration::from_secs(60), "two running", || async {
        let arns = ecs
            .list_tasks()
            .service_name("keeper")
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
            .send()
            .await
            .ok()?
            .task_arns()
            .to_vec();
        if arns.len() != 2 {
            return None;
        }
        let d = ecs
            .describe_tasks()
            .set_tasks(Some(arns.clone()))
            .send()
            .await
            .ok()?;
        d.tasks()
            .iter()
            .all(|t| t.last_status() == Some("RUNNING"))
            .then_some(arns)
    })
    .await;
    // The scheduler scales in the lowest task id first (one host, both
    // healthy): protect exactly that one.
    let mut running = running;
    running.sort();
    let keep = running[0].clone();
    let p = ecs
        .update_task_protection()
        .cluster("default")
        .tasks(&keep)
        .tasks("0123456789abcdef0123456789abcdef")
        .protection_enabled(true)
        .expires_in_minutes(60)
        .send()
        .await
        .expect("UpdateTaskProtection");
    assert_eq!(p.protected_tasks().len(), 1);
    assert!(p.protected_tasks()[0].protection_enabled());
    assert!(p.protected_tasks()[0].expiration_date().is_some());
    assert_eq!(p.failures()[0].reason(), Some("MISSING"));
    ecs.update_service()
        .service("keeper")
        .desired_count(1)
        .send()
        .await
        .expect("UpdateService");
    berth_tests::eventually(
        Duration::from_secs(60),
        "the unprotected task stopped",
        || async {
            let arns = ecs
                .list_tasks()
                .service_name("keeper")
                .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
                .send()
                .await
                .ok()?
                .task_arns()
                .to_vec();
            (arns == [keep.clone()]).then_some(())
        },
    )
    .await;
    let got = ecs
        .get_task_protection()
        .cluster("default")
        .send()
        .await
        .expect("GetTaskProtection");
    assert_eq!(got.protected_tasks().len(), 1);
    assert_eq!(got.protected_tasks()[0].task_arn(), Some(keep.as_str()));
    let e = ecs
        .update_task_protection()
        .cluster("default")
        .tasks(&keep)
        .protection_enabled(true)
        .expires_in_minutes(2881)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterException"), "{e:?}");

    // Deleting: ACTIVE revisions are failures; an INACTIVE one in use by
    // the service is DELETE_IN_PROGRESS and still described; an unused one
    // is gone at once, and its number is never reused.
    let out = ecs
        .delete_task_definitions()
        .task_definitions("keeper:2")
        .task_definitions("keeper:9")
        .send()
        .await
        .expect("DeleteTaskDefinitions");
    assert!(out.task_definitions().is_empty());
    let reasons: Vec<&str> = out.failures().iter().filter_map(|f| f.reason()).collect();
    assert!(reasons[0].contains("ACTIVE"), "{reasons:?}");
    assert!(reasons[1].contains("does not exist"), "{reasons:?}");
    for rev in ["keeper:1", "keeper:2"] {
        ecs.deregister_task_definition()
            .task_definition(rev)
            .send()
            .await
            .expect("DeregisterTaskDefinition");
    }
    let out = ecs
        .delete_task_definitions()
        .task_definitions(&family)
        .task_definitions("keeper:2")
        .send()
        .await
        .expect("DeleteTaskDefinitions");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    assert!(out.task_definitions().iter().all(|d| d.status()
        == Some(&aws_sdk_ecs::types::TaskDefinitionStatus::DeleteInProgress)
        && d.delete_requested_at().is_some()));
    let in_use = ecs
        .describe_task_definition()
        .task_definition("keeper:1")
        .send()
        .await
        .expect("still described while the service uses it");
    assert_eq!(
        in_use.task_definition().and_then(|d| d.status()),
        Some(&aws_sdk_ecs::types::TaskDefinitionStatus::DeleteInProgress)
    );
    let listed = ecs
        .list_task_definitions()
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::DeleteInProgress)
        .send()
        .await
        .expect("ListTaskDefinitions");
    assert_eq!(listed.task_definition_arns().len(), 1, "{listed:?}");
    let e = ecs
        .describe_task_definition()
        .task_definition("keeper:2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ClientException"), "{e:?}");
    let next = register(ecs, "keeper", vec![container("main", &["sleep", "302"])]).await;
    assert!(next.ends_with(":3"), "{next}");
}

/// A raw signed call of `action`: its status, `X-Amzn-ErrorType` and
/// message.
async fn refused(http: std::net::SocketAddr, action: &str, body: &str) -> (u16, String, String) {
    let target = format!("AmazonEC2ContainerServiceV20141113.{action}");
    let (status, headers, text) = berth_tests::raw_post(http, Some(&target), body.as_bytes()).await;
    let kind = headers
        .into_iter()
        .find(|(k, _)| k == "x-amzn-errortype")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let message = v["message"].as_str().unwrap_or(&text).to_owned();
    (status, kind, message)
}

/// Every served action that names a cluster answers an unknown one with
/// ClusterNotFoundException and ECS's own first words; every ECS operation
/// Berth does not serve is refused with UnsupportedFeatureException saying
/// what to use instead; a name that is no ECS operation is
/// UnknownOperationException.
#[tokio::test]
async fn unknown_clusters_and_unserved_operations_get_ecs_errors() {
    let cluster = TestCluster::start(0).await;
    let http = cluster.control_plane.http;
    let id = "0123456789abcdef0123456789abcdef";
    let ci = format!("arn:aws:ecs:us-east-1:000000000000:container-instance/nowhere/{id}");
    let table: Vec<(&str, serde_json::Value)> = vec![
        (
            "DescribeTasks",
            serde_json::json!({"cluster": "nowhere", "tasks": [id]}),
        ),
        ("ListTasks", serde_json::json!({"cluster": "nowhere"})),
        (
            "StopTask",
            serde_json::json!({"cluster": "nowhere", "task": id}),
        ),
        (
            "RunTask",
            serde_json::json!({"cluster": "nowhere", "taskDefinition": "x:1"}),
        ),
        (
            "StartTask",
            serde_json::json!({"cluster": "nowhere", "taskDefinition": "x:1", "containerInstances": [id]}),
        ),
        (
            "DescribeContainerInstances",
            serde_json::json!({"cluster": "nowhere", "containerInstances": [id]}),
        ),
        (
            "ListContainerInstances",
            serde_json::json!({"cluster": "nowhere"}),
        ),
        (
            "DeregisterContainerInstance",
            serde_json::json!({"cluster": "nowhere", "containerInstance": id}),
        ),
        (
            "UpdateContainerInstancesState",
            serde_json::json!({"cluster": "nowhere", "containerInstances": [id], "status": "DRAINING"}),
        ),
        (
            "PutAttributes",
            serde_json::json!({"cluster": "nowhere", "attributes": [{"name": "a", "targetId": ci}]}),
        ),
        (
            "DeleteAttributes",
            serde_json::json!({"cluster": "nowhere", "attributes": [{"name": "a", "targetId": ci}]}),
        ),
        (
            "ListAttributes",
            serde_json::json!({"cluster": "nowhere", "targetType": "container-instance"}),
        ),
        ("DeleteCluster", serde_json::json!({"cluster": "nowhere"})),
        ("UpdateCluster", serde_json::json!({"cluster": "nowhere"})),
        (
            "UpdateClusterSettings",
            serde_json::json!({"cluster": "nowhere", "settings": [{"name": "containerInsights", "value": "enabled"}]}),
        ),
        (
            "PutClusterCapacityProviders",
            serde_json::json!({"cluster": "nowhere", "capacityProviders": [], "defaultCapacityProviderStrategy": []}),
        ),
        (
            "CreateService",
            serde_json::json!({"cluster": "nowhere", "serviceName": "s", "taskDefinition": "x:1", "desiredCount": 1}),
        ),
        (
            "UpdateService",
            serde_json::json!({"cluster": "nowhere", "service": "s"}),
        ),
        (
            "DeleteService",
            serde_json::json!({"cluster": "nowhere", "service": "s"}),
        ),
        (
            "DescribeServices",
            serde_json::json!({"cluster": "nowhere", "services": ["s"]}),
        ),
        ("ListServices", serde_json::json!({"cluster": "nowhere"})),
        (
            "UpdateTaskProtection",
            serde_json::json!({"cluster": "nowhere", "tasks": [id], "protectionEnabled": true}),
        ),
        (
            "GetTaskProtection",
            serde_json::json!({"cluster": "nowhere"}),
        ),
    ];
    for (action, body) in &table {
        let (status, kind, message) = refused(http, action, &body.to_string()).await;
        assert_eq!(
            (status, kind.as_str()),
            (400, "ClusterNotFoundException"),
            "{action}: {message}"
        );
        assert!(
            message.starts_with("Cluster not found."),
            "{action}: {message}"
        );
    }

    for (action, why) in [
        ("RegisterContainerInstance", "berth-agent"),
        ("SubmitTaskStateChange", "berth-agent"),
        ("DiscoverPollEndpoint", "berth-agent"),
        ("UpdateContainerAgent", "berth-agent"),
        ("CreateTaskSet", "UpdateService"),
        ("CreateExpressGatewayService", "CreateService"),
        ("CreateDaemon", "DAEMON"),
        ("ListServiceDeployments", "DescribeServices"),
        ("ExecuteCommand", "docker exec"),
    ] {
        let (status, kind, message) = refused(http, action, "{}").await;
        assert_eq!(
            (status, kind.as_str()),
            (400, "UnsupportedFeatureException"),
            "{action}: {message}"
        );
        assert!(message.contains(why), "{action}: {message}");
    }
    let (status, kind, _) = refused(http, "LaunchRockets", "{}").await;
    assert_eq!((status, kind.as_str()), (400, "UnknownOperationException"));
    // The SDK sees a typed refusal too.
    let e = cluster
        .ecs
        .register_container_instance()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("UnsupportedFeatureException"), "{e:?}");
}

/// Each new action's refusals through aws-sdk-ecs: the typed error and the
/// start of its message.
#[tokio::test]
async fn the_new_actions_refuse_bad_input_with_ecs_errors() {
    let cluster = TestCluster::start(0).await;
    let ecs = &cluster.ecs;
    let mut cases: Vec<(&str, Result<(), aws_sdk_ecs::Error>, &str, &str)> = Vec::new();
    macro_rules! case {
        ($what:expr, $call:expr, $code:expr, $message:expr) => {
            cases.push((
                $what,
                $call.await.map(|_| ()).map_err(aws_sdk_ecs::Error::from),
                $code,
                $message,
            ));
        };
    }
    case!(
        "UpdateCapacityProvider unknown",
        ecs.update_capacity_provider().name("nope").send(),
        "ClientException",
        "The specified capacity provider does not exist."
    );
    case!(
        "UpdateCapacityProvider managed instances",
        ecs.update_capacity_provider()
            .name("nope")
            .managed_instances_provider(
                aws_sdk_ecs::types::UpdateManagedInstancesProviderConfiguration::builder()
                    .infrastructure_role_arn("arn:aws:iam::000000000000:role/x")
                    .build()
                    .expect("config"),
            )
            .send(),
        "UnsupportedFeatureException",
        "managedInstancesProvider"
    );
    case!(
        "UpdateClusterSettings other setting",
        ecs.update_cluster_settings()
            .cluster("default")
            .settings(
                ClusterSetting::builder()
                    .name(ClusterSettingName::from("somethingElse"))
                    .value("on")
                    .build()
            )
            .send(),
        "InvalidParameterException",
        "Cluster setting 'somethingElse' is not valid"
    );
    case!(
        "UpdateCluster namespace missing",
        ecs.update_cluster()
            .cluster("default")
            .service_connect_defaults(
                aws_sdk_ecs::types::ClusterServiceConnectDefaultsRequest::builder()
                    .namespace(" ")
                    .build()
                    .expect("defaults")
            )
            .send(),
        "InvalidParameterException",
        "serviceConnectDefaults needs a namespace"
    );
    case!(
        "PutAccountSetting bad value",
        ecs.put_account_setting()
            .name(SettingName::ContainerInsights)
            .value("sometimes")
            .send(),
        "InvalidParameterException",
        "The value 'sometimes' of account setting containerInsights is not valid"
    );
    case!(
        "PutAccountSetting read-only",
        ecs.put_account_setting()
            .name(SettingName::GuardDutyActivate)
            .value("on")
            .send(),
        "InvalidParameterException",
        "guardDutyActivate is managed by AWS"
    );
    case!(
        "PutAccountSetting bad principal",
        ecs.put_account_setting()
            .name(SettingName::AwsvpcTrunking)
            .value("enabled")
            .principal_arn("bob")
            .send(),
        "InvalidParameterException",
        "principalArn 'bob' is not valid"
    );
    case!(
        "DeleteAccountSetting unknown name",
        ecs.delete_account_setting()
            .name(SettingName::from("nonsense"))
            .send(),
        "InvalidParameterException",
        "The account setting name 'nonsense' is not valid"
    );
    case!(
        "ListAccountSettings value without name",
        ecs.list_account_settings().value("enabled").send(),
        "InvalidParameterException",
        "ListAccountSettings filters by value only together with name"
    );
    case!(
        "ListAccountSettings maxResults",
        ecs.list_account_settings().max_results(11).send(),
        "InvalidParameterException",
        "maxResults must be between 1 and 10"
    );
    case!(
        "DeleteTaskDefinitions too many",
        ecs.delete_task_definitions()
            .set_task_definitions(Some((1..=11).map(|i| format!("x:{i}")).collect()))
            .send(),
        "InvalidParameterException",
        "taskDefinitions must name 1 to 10 revisions"
    );
    case!(
        "UpdateTaskProtection no tasks",
        ecs.update_task_protection()
            .cluster("default")
            .set_tasks(Some(Vec::new()))
            .protection_enabled(true)
            .send(),
        "InvalidParameterException",
        "tasks must name 1 to 10 tasks"
    );
    case!(
        "GetTaskProtection unknown cluster",
        ecs.get_task_protection().cluster("nowhere").send(),
        "ClusterNotFoundException",
        "Cluster not found."
    );
    case!(
        "UntagResource key too long",
        ecs.untag_resource()
            .resource_arn("arn:aws:ecs:us-east-1:000000000000:cluster/default")
            .tag_keys("k".repeat(129))
            .send(),
        "InvalidParameterException",
        "Tag keys must be 1-128 characters long"
    );
    case!(
        "TagResource on a revision-less task definition",
        ecs.tag_resource()
            .resource_arn("arn:aws:ecs:us-east-1:000000000000:task-definition/web")
            .tags(tag("a", "b"))
            .send(),
        "InvalidParameterException",
        "resourceArn"
    );
    for (what, result, code, message) in cases {
        let e = result.expect_err(what);
        assert_eq!(e.code(), Some(code), "{what}: {e:?}");
        assert!(
            e.message().unwrap_or_default().starts_with(message),
            "{what}: {:?}",
            e.message()
        );
    }
}
