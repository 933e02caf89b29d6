//! Replays of the ECS calls Terraform's AWS provider makes for
//! `aws_ecs_cluster`, `aws_ecs_cluster_capacity_providers`,
//! `aws_ecs_task_definition` and `aws_ecs_capacity_provider`, in the
//! provider's order and with its members (read from
//! hashicorp/terraform-provider-aws, internal/service/ecs: cluster.go,
//! cluster_capacity_providers.go, task_definition.go, capacity_provider.go
//! and the generated tag updates): create -> read -> plan again with no
//! diff -> update -> destroy, each step succeeding and reading back what
//! was written. The provider's waiters poll until a status; here each
//! poll is one call that must already show the target status.

use super::support::{tag, tag_map};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, AutoScalingGroupProviderUpdate, CapacityProviderField,
    CapacityProviderStrategyItem, Cluster, ClusterConfiguration, ClusterField, ClusterSetting,
    ClusterSettingName, ContainerDefinition, ExecuteCommandConfiguration, ExecuteCommandLogging,
    ManagedScaling, ManagedScalingStatus, ManagedTerminationProtection, Tag, TaskDefinitionField,
    TaskDefinitionStatus,
};
use berth_tests::TestCluster;
use std::collections::BTreeMap;

/// `findClusterByNameOrARN`: DescribeClusters with TAGS, CONFIGURATIONS and
/// SETTINGS; a missing, failed or INACTIVE cluster is "gone" (`None`).
async fn find_cluster(ecs: &Client, name_or_arn: &str) -> Option<Cluster> {
    let out = match ecs
        .describe_clusters()
        .clusters(name_or_arn)
        .include(ClusterField::Tags)
        .include(ClusterField::Configurations)
        .include(ClusterField::Settings)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            use aws_sdk_ecs::error::ProvideErrorMetadata;
            assert_eq!(e.code(), Some("ClusterNotFoundException"), "{e:?}");
            return None;
        }
    };
    assert!(out.clusters().len() <= 1);
    out.clusters()
        .first()
        .filter(|c| c.status() != Some("INACTIVE"))
        .cloned()
}

/// `updateTags`: UntagResource of the removed keys, then TagResource of the
/// added or changed ones, on the resource's ARN.
async fn update_tags(
    ecs: &Client,
    arn: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) {
    let removed: Vec<String> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    if !removed.is_empty() {
        ecs.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .expect("UntagResource");
    }
    let updated: Vec<Tag> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| tag(k, v))
        .collect();
    if !updated.is_empty() {
        ecs.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(updated))
            .send()
            .await
            .expect("TagResource");
    }
}

fn insights(value: &str) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(value)
        .build()
}

#[tokio::test]
async fn terraform_cluster_and_cluster_capacity_providers() {
    let harness = TestCluster::start(0).await;
    let ecs = &harness.ecs;

    // aws_ecs_cluster create.
    let created = ecs
        .create_cluster()
        .cluster_name("tf-cluster")
        .tags(tag("Environment", "homelab"))
        .tags(tag("Team", "ops"))
        .settings(insights("enabled"))
        .configuration(
            ClusterConfiguration::builder()
                .execute_command_configuration(
                    ExecuteCommandConfiguration::builder()
                        .logging(ExecuteCommandLogging::Default)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    let arn = created
        .cluster()
        .and_then(|c| c.cluster_arn())
        .expect("clusterArn")
        .to_owned();
    // waitClusterAvailable, then Read: what was written comes back.
    let read = find_cluster(ecs, &arn).await.expect("the cluster");
    assert_eq!(read.status(), Some("ACTIVE"));
    assert_eq!(read.cluster_name(), Some("tf-cluster"));
    let tags = tag_map(read.tags());
    assert_eq!(
        tags,
        BTreeMap::from([
            ("Environment".to_owned(), "homelab".to_owned()),
            ("Team".to_owned(), "ops".to_owned())
        ])
    );
    assert_eq!(read.settings(), [insights("enabled")]);
    assert_eq!(
        read.configuration()
            .and_then(|c| c.execute_command_configuration())
            .and_then(|e| e.logging()),
        Some(&ExecuteCommandLogging::Default)
    );
    // Plan again: the refresh reads the same, so no diff.
    let again = find_cluster(ecs, &arn).await.expect("the cluster");
    assert_eq!(again.tags(), read.tags());
    assert_eq!(again.settings(), read.settings());
    assert_eq!(again.configuration(), read.configuration());

    // aws_ecs_cluster_capacity_providers create: FARGATE listed by a
    // shared module, beside a pool of Berth agents.
    ecs.create_capacity_provider()
        .name("tf-pool")
        .auto_scaling_group_provider(
            AutoScalingGroupProvider::builder()
                .auto_scaling_group_arn("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/tf")
                .build()
                .expect("asg"),
        )
        .send()
        .await
        .expect("CreateCapacityProvider");
    ecs.put_cluster_capacity_providers()
        .cluster("tf-cluster")
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .capacity_providers("tf-pool")
        .default_capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("tf-pool")
                .weight(1)
                .base(1)
                .build()
                .expect("item"),
        )
        .send()
        .await
        .expect("PutClusterCapacityProviders");
    let read = find_cluster(ecs, "tf-cluster").await.expect("the cluster");
    assert_eq!(
        read.capacity_providers(),
        ["FARGATE", "FARGATE_SPOT", "tf-pool"]
    );
    let strategy = read.default_capacity_provider_strategy();
    assert_eq!(strategy.len(), 1);
    assert_eq!(strategy[0].capacity_provider(), "tf-pool");
    assert_eq!((strategy[0].weight(), strategy[0].base()), (1, 1));
    // aws_ecs_cluster tag-only update: Untag, Tag, then ListTagsForResource
    // (the update handler does not read the cluster again).
    let new_tags = BTreeMap::from([
        ("Environment".to_owned(), "lab".to_owned()),
        ("Owner".to_owned(), "me".to_owned()),
    ]);
    update_tags(ecs, &arn, &tags, &new_tags).await;
    let listed = ecs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("ListTagsForResource");
    assert_eq!(tag_map(listed.tags()), new_tags);

    // aws_ecs_cluster setting change: UpdateCluster with what is set,
    // waitClusterAvailable, ListTagsForResource.
    let updated = ecs
        .update_cluster()
        .cluster(&arn)
        .settings(insights("disabled"))
        .configuration(
            ClusterConfiguration::builder()
                .execute_command_configuration(
                    ExecuteCommandConfiguration::builder()
                        .logging(ExecuteCommandLogging::None)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("UpdateCluster");
    assert_eq!(
        updated.cluster().expect("cluster").settings(),
        [insights("disabled")]
    );
    let read = find_cluster(ecs, &arn).await.expect("the cluster");
    assert_eq!(read.settings(), [insights("disabled")]);
    assert_eq!(
        read.configuration()
            .and_then(|c| c.execute_command_configuration())
            .and_then(|e| e.logging()),
        Some(&ExecuteCommandLogging::None)
    );
    ecs.list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("ListTagsForResource");

    // destroy: the cluster's capacity providers (put back empty; the cluster
    // stays ACTIVE), the provider (then INACTIVE), then the cluster.
    ecs.put_cluster_capacity_providers()
        .cluster("tf-cluster")
        .set_capacity_providers(Some(Vec::new()))
        .set_default_capacity_provider_strategy(Some(Vec::new()))
        .send()
        .await
        .expect("PutClusterCapacityProviders");
    let read = find_cluster(ecs, "tf-cluster").await.expect("still ACTIVE");
    assert!(read.capacity_providers().is_empty());
    ecs.delete_capacity_provider()
        .capacity_provider("tf-pool")
        .send()
        .await
        .expect("DeleteCapacityProvider");
    ecs.delete_cluster()
        .cluster(&arn)
        .send()
        .await
        .expect("DeleteCluster");
    assert!(
        find_cluster(ecs, &arn).await.is_none(),
        "waitClusterDeleted"
    );
    // The provider's ListTagsForResource maps this answer to "gone".
    let e = ecs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap_err();
    {
        use aws_sdk_ecs::error::ProvideErrorMetadata;
        assert_eq!(e.code(), Some("InvalidParameterException"), "{e:?}");
        assert_eq!(
            e.message(),
            Some("The specified cluster is inactive. Specify an active cluster and try again.")
        );
    }
    // A second destroy of the capacity providers finds no cluster: done.
    use aws_sdk_ecs::error::ProvideErrorMetadata;
    let e = ecs
        .put_cluster_capacity_providers()
        .cluster("tf-cluster")
        .set_capacity_providers(Some(Vec::new()))
        .set_default_capacity_provider_strategy(Some(Vec::new()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ClusterNotFoundException"), "{e:?}");
}

#[tokio::test]
async fn terraform_task_definition_and_capacity_provider() {
    let harness = TestCluster::start(0).await;
    let ecs = &harness.ecs;

    // aws_ecs_task_definition create and read.
    let containers = || {
        ContainerDefinition::builder()
            .name("web")
            .image(berth_tests::TEST_IMAGE)
            .memory(64)
            .essential(true)
            .build()
    };
    let registered = ecs
        .register_task_definition()
        .family("tf-web")
        .container_definitions(containers())
        .cpu("256")
        .memory("512")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Bridge)
        .tags(tag("app", "web"))
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let arn = registered
        .task_definition()
        .and_then(|d| d.task_definition_arn())
        .expect("arn")
        .to_owned();
    let describe = |arn: String| async move {
        ecs.describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
    };
    let read = describe(arn.clone()).await.expect("DescribeTaskDefinition");
    let d = read.task_definition().expect("definition");
    assert_eq!(d.status(), Some(&TaskDefinitionStatus::Active));
    assert_eq!((d.cpu(), d.memory()), (Some("256"), Some("512")));
    assert_eq!(d.container_definitions()[0].name(), Some("web"));
    assert_eq!(
        tag_map(read.tags()),
        BTreeMap::from([("app".into(), "web".into())])
    );
    // Plan again: same read.
    let again = describe(arn.clone()).await.expect("DescribeTaskDefinition");
    assert_eq!(again.task_definition(), read.task_definition());
    assert_eq!(again.tags(), read.tags());

    // Tag-only update on the revision ARN, then Read.
    let old = tag_map(read.tags());
    let new = BTreeMap::from([
        ("app".to_owned(), "web2".to_owned()),
        ("tier".to_owned(), "1".to_owned()),
    ]);
    update_tags(ecs, &arn, &old, &new).await;
    let read = describe(arn.clone()).await.expect("DescribeTaskDefinition");
    assert_eq!(tag_map(read.tags()), new);

    // Any other change replaces it: deregister the old revision, register
    // a new one, read it.
    ecs.deregister_task_definition()
        .task_definition(&arn)
        .send()
        .await
        .expect("DeregisterTaskDefinition");
    let next = ecs
        .register_task_definition()
        .family("tf-web")
        .container_definitions(containers())
        .cpu("512")
        .memory("512")
        .set_tags(Some(new.iter().map(|(k, v)| tag(k, v)).collect()))
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let next_arn = next
        .task_definition()
        .and_then(|d| d.task_definition_arn())
        .expect("arn")
        .to_owned();
    assert!(next_arn.ends_with("tf-web:2"), "{next_arn}");
    let gone = describe(arn.clone()).await.expect("the old revision");
    assert_eq!(
        gone.task_definition().and_then(|d| d.status()),
        Some(&TaskDefinitionStatus::Inactive),
        "an INACTIVE revision reads as gone"
    );
    // destroy: DeregisterTaskDefinition; then (the addition, not the
    // provider's) DeleteTaskDefinitions of both revisions.
    ecs.deregister_task_definition()
        .task_definition(&next_arn)
        .send()
        .await
        .expect("DeregisterTaskDefinition");
    let deleted = ecs
        .delete_task_definitions()
        .task_definitions(&arn)
        .task_definitions(&next_arn)
        .send()
        .await
        .expect("DeleteTaskDefinitions");
    assert_eq!(
        deleted.task_definitions().len(),
        2,
        "{:?}",
        deleted.failures()
    );
    use aws_sdk_ecs::error::ProvideErrorMetadata;
    let e = describe(arn.clone()).await.unwrap_err();
    assert_eq!(e.code(), Some("ClientException"), "a 400: gone");
    // Deregistering it again (a retried destroy) is no success Terraform
    // would trip over: a 400 ClientException.
    let e = ecs
        .deregister_task_definition()
        .task_definition(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ClientException"), "{e:?}");

    // aws_ecs_capacity_provider create and read (no waiter after create).
    let scaling = |target: i32| {
        ManagedScaling::builder()
            .status(ManagedScalingStatus::Enabled)
            .target_capacity(target)
            .instance_warmup_period(300)
            .build()
    };
    let created = ecs
        .create_capacity_provider()
        .name("tf-provider")
        .auto_scaling_group_provider(
            AutoScalingGroupProvider::builder()
                .auto_scaling_group_arn("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/tf")
                .managed_termination_protection(ManagedTerminationProtection::Disabled)
                .managed_scaling(scaling(80))
                .build()
                .expect("asg"),
        )
        .tags(tag("pool", "a"))
        .send()
        .await
        .expect("CreateCapacityProvider");
    let cp_arn = created
        .capacity_provider()
        .and_then(|p| p.capacity_provider_arn())
        .expect("arn")
        .to_owned();
    let find = |arn: String| async move {
        let out = ecs
            .describe_capacity_providers()
            .capacity_providers(arn)
            .include(CapacityProviderField::Tags)
            .send()
            .await
            .expect("DescribeCapacityProviders");
        out.capacity_providers()
            .first()
            .filter(|p| p.status() != Some(&aws_sdk_ecs::types::CapacityProviderStatus::Inactive))
            .cloned()
    };
    let read = find(cp_arn.clone()).await.expect("the provider");
    assert_eq!(read.name(), Some("tf-provider"));
    assert_eq!(
        tag_map(read.tags()),
        BTreeMap::from([("pool".into(), "a".into())])
    );
    let asg = read.auto_scaling_group_provider().expect("asg");
    assert_eq!(
        asg.managed_scaling().and_then(|m| m.target_capacity()),
        Some(80)
    );

    // Update: UpdateCapacityProvider by name, then waitCapacityProviderUpdated
    // (updateStatus UPDATE_COMPLETE), then Read.
    ecs.update_capacity_provider()
        .name("tf-provider")
        .auto_scaling_group_provider(
            AutoScalingGroupProviderUpdate::builder()
                .managed_scaling(scaling(90))
                .managed_termination_protection(ManagedTerminationProtection::Disabled)
                .build(),
        )
        .send()
        .await
        .expect("UpdateCapacityProvider");
    let read = find(cp_arn.clone()).await.expect("the provider");
    assert_eq!(
        read.update_status(),
        Some(&aws_sdk_ecs::types::CapacityProviderUpdateStatus::UpdateComplete)
    );
    let asg = read.auto_scaling_group_provider().expect("asg");
    assert_eq!(
        asg.managed_scaling().and_then(|m| m.target_capacity()),
        Some(90)
    );
    assert_eq!(
        asg.auto_scaling_group_arn(),
        "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/tf"
    );
    // Tag-only change, then Read.
    update_tags(
        ecs,
        &cp_arn,
        &BTreeMap::from([("pool".into(), "a".into())]),
        &BTreeMap::from([("pool".into(), "b".into())]),
    )
    .await;
    let read = find(cp_arn.clone()).await.expect("the provider");
    assert_eq!(
        tag_map(read.tags()),
        BTreeMap::from([("pool".into(), "b".into())])
    );

    // destroy: DeleteCapacityProvider by ARN, then waitCapacityProviderDeleted.
    ecs.delete_capacity_provider()
        .capacity_provider(&cp_arn)
        .send()
        .await
        .expect("DeleteCapacityProvider");
    assert!(find(cp_arn.clone()).await.is_none(), "INACTIVE or gone");
    let e = ecs
        .delete_capacity_provider()
        .capacity_provider(&cp_arn)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.message()
            .unwrap_or_default()
            .contains("capacity provider does not exist"),
        "a second destroy counts as done: {e:?}"
    );
}
