//! The ECS actions around tasks: clusters, task definitions, listing and
//! pagination, idempotent RunTask, StartTask, container instances.

use super::support::{container, register, wait_status};
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::operation::delete_cluster::DeleteClusterError;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use berth_tests::TestCluster;
use std::time::Duration;

#[tokio::test]
async fn clusters_and_task_definitions() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;

    // CreateCluster is idempotent on the name.
    let a = ecs
        .create_cluster()
        .cluster_name("alpha")
        .send()
        .await
        .expect("create");
    let again = ecs
        .create_cluster()
        .cluster_name("alpha")
        .send()
        .await
        .expect("create again");
    assert_eq!(
        a.cluster().and_then(|c| c.cluster_arn()),
        again.cluster().and_then(|c| c.cluster_arn())
    );
    for name in ["beta", "gamma"] {
        ecs.create_cluster()
            .cluster_name(name)
            .send()
            .await
            .expect("create");
    }
    // Pagination, followed by the SDK's paginator.
    let page = ecs
        .list_clusters()
        .max_results(2)
        .send()
        .await
        .expect("page 1");
    assert_eq!(page.cluster_arns().len(), 2);
    assert!(page.next_token().is_some());
    let all: Vec<String> = ecs
        .list_clusters()
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("all pages");
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.iter().any(|a| a.ends_with("cluster/default")));

    let described = ecs
        .describe_clusters()
        .clusters("alpha")
        .clusters("nope")
        .send()
        .await
        .expect("describe");
    assert_eq!(described.clusters()[0].cluster_name(), Some("alpha"));
    assert_eq!(described.failures()[0].reason(), Some("MISSING"));
    assert!(
        described.failures()[0]
            .arn()
            .unwrap_or_default()
            .ends_with("cluster/nope")
    );

    // A cluster with a registered instance cannot be deleted; an empty one can.
    let err = ecs
        .delete_cluster()
        .cluster("default")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(
            err,
            DeleteClusterError::ClusterContainsContainerInstancesException(_)
        ),
        "{err:?}"
    );
    let deleted = ecs
        .delete_cluster()
        .cluster("gamma")
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.cluster().and_then(|c| c.status()), Some("INACTIVE"));
    let listed = ecs.list_clusters().send().await.expect("list");
    assert_eq!(listed.cluster_arns().len(), 3);

    // Revisions count up per family; a bare family is the latest ACTIVE one.
    for i in 1..=3 {
        let arn = register(
            ecs,
            "fam",
            vec![container("app", &["sleep", &i.to_string()])],
        )
        .await;
        assert!(arn.ends_with(&format!("task-definition/fam:{i}")), "{arn}");
    }
    register(ecs, "other", vec![container("app", &["sleep", "1"])]).await;
    ecs.deregister_task_definition()
        .task_definition("fam:3")
        .send()
        .await
        .expect("deregister");
    let latest = ecs
        .describe_task_definition()
        .task_definition("fam")
        .send()
        .await
        .expect("describe");
    let td = latest.task_definition().expect("td");
    assert_eq!(td.revision(), 2);
    let c = &td.container_definitions()[0];
    assert_eq!(c.essential(), Some(true));
    assert_eq!(c.cpu(), 0);
    let arns = ecs
        .list_task_definitions()
        .family_prefix("fam")
        .send()
        .await
        .expect("list");
    assert_eq!(arns.task_definition_arns().len(), 2);
    let inactive = ecs
        .list_task_definitions()
        .status("INACTIVE".into())
        .send()
        .await
        .expect("list inactive");
    assert_eq!(inactive.task_definition_arns().len(), 1);
    let desc = ecs
        .list_task_definitions()
        .sort("DESC".into())
        .send()
        .await
        .expect("desc");
    assert!(desc.task_definition_arns()[0].ends_with("other:1"));
    let families = ecs
        .list_task_definition_families()
        .send()
        .await
        .expect("families");
    assert_eq!(families.families(), ["fam", "other"]);
    let next = register(ecs, "fam", vec![container("app", &["sleep", "4"])]).await;
    assert!(
        next.ends_with("fam:4"),
        "revision numbers are never reused: {next}"
    );
    let err = ecs
        .deregister_task_definition()
        .task_definition("fam")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ClientException"));
}

#[tokio::test]
async fn run_task_is_idempotent_on_client_token_and_start_task_places_where_told() {
    let cluster = TestCluster::start(1).await;
    let ecs = &cluster.ecs;
    register(ecs, "idem", vec![container("app", &["sleep", "600"])]).await;
    let first = ecs
        .run_task()
        .task_definition("idem")
        .client_token("token-1")
        .send()
        .await
        .expect("RunTask");
    let retry = ecs
        .run_task()
        .task_definition("idem")
        .client_token("token-1")
        .send()
        .await
        .expect("retry");
    let arns = |o: &aws_sdk_ecs::operation::run_task::RunTaskOutput| {
        o.tasks()
            .iter()
            .filter_map(|t| t.task_arn().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert_eq!(arns(&first), arns(&retry), "a retry returns the same task");
    let err = ecs
        .run_task()
        .task_definition("idem")
        .count(2)
        .client_token("token-1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(err, RunTaskError::ConflictException(_)), "{err:?}");
    let listed = ecs.list_tasks().send().await.expect("ListTasks");
    assert_eq!(listed.task_arns().len(), 1, "nothing new was started");

    // StartTask on a named instance; an unknown one is MISSING.
    let started = ecs
        .start_task()
        .task_definition("idem")
        .container_instances(cluster.agents[0].id())
        .container_instances("0123456789abcdef0123456789abcdef")
        .started_by("nightly-job")
        .send()
        .await
        .expect("StartTask");
    assert_eq!(started.tasks().len(), 1);
    assert_eq!(started.failures()[0].reason(), Some("MISSING"));
    let t = &started.tasks()[0];
    assert_eq!(
        t.container_instance_arn(),
        Some(cluster.agents[0].arn.as_str())
    );
    wait_status(
        ecs,
        t.task_arn().expect("arn"),
        "RUNNING",
        Duration::from_secs(20),
    )
    .await;
    let by_starter = ecs
        .list_tasks()
        .started_by("nightly-job")
        .send()
        .await
        .expect("ListTasks");
    assert_eq!(by_starter.task_arns().len(), 1);

    // Too big for the instance: a failure that explains itself.
    let mut huge = container("app", &["sleep", "1"]);
    huge.memory = Some(64 * 1024 * 1024);
    register(ecs, "huge", vec![huge]).await;
    let out = ecs
        .run_task()
        .task_definition("huge")
        .send()
        .await
        .expect("RunTask");
    assert!(out.tasks().is_empty());
    let f = &out.failures()[0];
    assert_eq!(f.reason(), Some("RESOURCE:MEMORY"));
    assert!(
        f.detail().unwrap_or_default().contains("1 instance"),
        "{f:?}"
    );
    assert_eq!(f.arn(), Some(cluster.agents[0].arn.as_str()));

    // Pagination of ListTasks.
    ecs.run_task()
        .task_definition("idem")
        .count(3)
        .send()
        .await
        .expect("RunTask");
    let page = ecs.list_tasks().max_results(2).send().await.expect("page");
    assert_eq!(page.task_arns().len(), 2);
    let rest = ecs
        .list_tasks()
        .max_results(2)
        .next_token(page.next_token().expect("more"))
        .send()
        .await
        .expect("page 2");
    assert_eq!(rest.task_arns().len(), 2);
    assert!(
        rest.task_arns()
            .iter()
            .all(|a| !page.task_arns().contains(a)),
        "pages do not overlap"
    );
    let all: Vec<String> = ecs
        .list_tasks()
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("all pages");
    assert_eq!(all.len(), 5);
    let err = ecs
        .list_tasks()
        .family("idem")
        .next_token(page.next_token().expect("more"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("InvalidParameterException"),
        "a token is bound to its filters"
    );
}
