//! Placement through the real JSON API and agent protocol, with scripted
//! agents standing in for hosts: strategies, constraints, attributes,
//! draining, capacity providers, launch types, GPUs, and failures that
//! explain themselves.

mod support;

use berth_proto::agent::v1 as pb;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::{ScriptedAgent, Server, ecs, ok, start};

fn attr(name: &str, value: Option<&str>) -> pb::Attribute {
    pb::Attribute {
        name: name.into(),
        value: value.map(str::to_owned),
    }
}

async fn agent(server: &Server, memory: i64, attributes: Vec<pb::Attribute>) -> ScriptedAgent {
    ScriptedAgent::register(
        berth_tests::sim::channel(server.grpc).await,
        pb::RegisterRequest {
            memory_mib: memory,
            attributes,
            ..ScriptedAgent::request()
        },
    )
    .await
}

async fn family(server: &Server, name: &str, memory: i64) {
    ok(
        server,
        "RegisterTaskDefinition",
        json!({"family": name, "containerDefinitions": [{"name": "app", "image": "x", "memory": memory}]}),
    )
    .await;
}

/// Runs `count` tasks with extra RunTask members; returns the instance ARN
/// of each placed task, in order, and the failures.
async fn run(server: &Server, body: Value) -> (Vec<String>, Vec<Value>) {
    let v = ok(server, "RunTask", body).await;
    let placed = v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            t["containerInstanceArn"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    (
        placed,
        v["failures"].as_array().cloned().unwrap_or_default(),
    )
}

fn tally(arns: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for a in arns {
        *m.entry(a.clone()).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn binpack_fills_the_fullest_instance_first_and_spread_balances_zones() {
    let server = start().await;
    let small = agent(&server, 1000, vec![attr("zone", Some("a"))]).await;
    let large = agent(&server, 3000, vec![attr("zone", Some("a"))]).await;
    let other = agent(&server, 3000, vec![attr("zone", Some("b"))]).await;
    family(&server, "pack", 400).await;
    let (placed, failures) = run(
        &server,
        json!({"taskDefinition": "pack", "count": 3, "placementStrategy": [{"type": "binpack", "field": "memory"}]}),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        placed[..2],
        [small.arn.clone(), small.arn.clone()],
        "the smallest instance fills first"
    );
    assert!(
        placed[2] == large.arn || placed[2] == other.arn,
        "then one of the equally full others"
    );

    family(&server, "zones", 10).await;
    let (placed, _) = run(
        &server,
        json!({"taskDefinition": "zones", "count": 4, "placementStrategy": [
            {"type": "spread", "field": "attribute:zone"}, {"type": "spread", "field": "instanceId"}]}),
    )
    .await;
    let zone_b = placed.iter().filter(|a| **a == other.arn).count();
    assert_eq!(zone_b, 2, "half of the group in each zone: {placed:?}");
    let in_a = tally(
        &placed
            .iter()
            .filter(|a| **a != other.arn)
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        in_a.values().copied().collect::<Vec<_>>(),
        [1, 1],
        "spread within zone a too"
    );
}

#[tokio::test]
async fn constraints_bind_and_failures_explain_every_instance() {
    let server = start().await;
    let r1 = agent(&server, 4096, vec![attr("rack", Some("r1"))]).await;
    let r2 = agent(&server, 4096, vec![attr("rack", Some("r2"))]).await;
    family(&server, "web", 64).await;

    let (placed, failures) = run(
        &server,
        json!({"taskDefinition": "web", "count": 3, "placementConstraints": [{"type": "distinctInstance"}]}),
    )
    .await;
    assert_eq!(tally(&placed).len(), 2, "one per instance");
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0]["reason"],
        "DistinctInstance placement constraint unsatisfied"
    );
    assert!(
        failures[0]["arn"]
            .as_str()
            .unwrap_or_default()
            .ends_with(":cluster/default")
    );
    assert_eq!(
        failures[0]["detail"],
        "2 instances: 2 already running a task of group family:web (distinctInstance)"
    );

    let (placed, _f) = run(
        &server,
        json!({"taskDefinition": "web", "count": 2, "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:rack == r2"}]}),
    )
    .await;
    assert_eq!(placed, [r2.arn.clone(), r2.arn.clone()], "{_f:?}");

    // Affinity on task groups: new tasks go where the "db" group runs.
    let (db, _) = run(
        &server,
        json!({"taskDefinition": "web", "group": "db", "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:rack == r1"}]}),
    )
    .await;
    assert_eq!(db, std::slice::from_ref(&r1.arn));
    let (near, _) = run(
        &server,
        json!({"taskDefinition": "web", "count": 2, "group": "cache", "placementConstraints": [
            {"type": "memberOf", "expression": "task:group == db"}]}),
    )
    .await;
    assert_eq!(near, [r1.arn.clone(), r1.arn.clone()]);

    // Nothing matches: the failure names the expression and counts instances.
    let (none, failures) = run(
        &server,
        json!({"taskDefinition": "web", "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:rack in [r3, r4]"}]}),
    )
    .await;
    assert!(none.is_empty());
    assert_eq!(
        failures[0]["reason"],
        "MemberOf placement constraint unsatisfied"
    );
    assert_eq!(
        failures[0]["detail"],
        "2 instances: 2 outside memberOf (attribute:rack in [r3, r4])"
    );

    // An expression that does not parse says where and what was expected.
    let (status, err) = ecs(
        &server,
        "RunTask",
        json!({"taskDefinition": "web", "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:rack = r1"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["__type"], "InvalidParameterException");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("character 16") && message.contains("expected an operator"),
        "{message}"
    );

    // Too big for everyone: the detail accounts for both instances.
    family(&server, "huge", 5000).await;
    let (_, failures) = run(&server, json!({"taskDefinition": "huge"})).await;
    assert_eq!(failures[0]["reason"], "RESOURCE:MEMORY");
    let detail = failures[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("2 instances: 2 without 5000 MiB free memory (most free: "),
        "{detail}"
    );
}

#[tokio::test]
async fn custom_attributes_filters_and_draining() {
    let server = start().await;
    let a = agent(&server, 4096, vec![]).await;
    let b = agent(&server, 4096, vec![]).await;
    family(&server, "ssd", 64).await;

    let put = ok(
        &server,
        "PutAttributes",
        json!({"attributes": [{"name": "ssd", "value": "true", "targetId": b.arn}]}),
    )
    .await;
    assert_eq!(put["attributes"][0]["name"], "ssd");
    let listed = ok(
        &server,
        "ListAttributes",
        json!({"targetType": "container-instance", "attributeName": "ssd"}),
    )
    .await;
    assert_eq!(
        listed["attributes"],
        json!([{"name": "ssd", "value": "true", "targetType": "container-instance", "targetId": b.arn}])
    );
    let (placed, _) = run(
        &server,
        json!({"taskDefinition": "ssd", "count": 2, "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ssd == true"}]}),
    )
    .await;
    assert_eq!(placed, [b.arn.clone(), b.arn.clone()]);
    let filtered = ok(
        &server,
        "ListContainerInstances",
        json!({"filter": "attribute:ssd exists"}),
    )
    .await;
    assert_eq!(filtered["containerInstanceArns"], json!([b.arn]));
    let busy = ok(
        &server,
        "ListContainerInstances",
        json!({"filter": "runningTasksCount >= 2"}),
    )
    .await;
    assert_eq!(busy["containerInstanceArns"], json!([b.arn]));

    // Limits and errors of the attribute actions.
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"name": format!("a{i}"), "value": "x", "targetId": a.arn}))
        .collect();
    let (status, err) = ecs(
        &server,
        "PutAttributes",
        json!({"attributes": eleven[..10]}),
    )
    .await;
    assert_eq!(status, 200, "{err}");
    let (_, err) = ecs(
        &server,
        "PutAttributes",
        json!({"attributes": [eleven[10]]}),
    )
    .await;
    assert_eq!(err["__type"], "AttributeLimitExceededException");
    let (_, err) = ecs(
        &server,
        "PutAttributes",
        json!({"attributes": [{"name": "x", "targetId": "0123456789abcdef0123456789abcdef", "targetType": "container-instance"}]}),
    )
    .await;
    assert_eq!(err["__type"], "TargetNotFoundException");
    let (_, err) = ecs(
        &server,
        "PutAttributes",
        json!({"attributes": [{"name": "ecs.os-type", "value": "x", "targetId": a.arn}]}),
    )
    .await;
    assert_eq!(err["__type"], "InvalidParameterException");
    ok(
        &server,
        "DeleteAttributes",
        json!({"attributes": [{"name": "ssd", "targetId": b.arn}]}),
    )
    .await;
    let listed = ok(
        &server,
        "ListAttributes",
        json!({"targetType": "container-instance", "attributeName": "ssd"}),
    )
    .await;
    assert_eq!(listed["attributes"], json!([]));

    // Draining: no new tasks on b; a takes them; ACTIVE again is used again.
    let drained = ok(
        &server,
        "UpdateContainerInstancesState",
        json!({"containerInstances": [b.arn], "status": "DRAINING"}),
    )
    .await;
    assert_eq!(drained["containerInstances"][0]["status"], "DRAINING");
    let (placed, _) = run(&server, json!({"taskDefinition": "ssd", "count": 3})).await;
    assert_eq!(placed, vec![a.arn.clone(); 3]);
    let (_, failures) = run(
        &server,
        json!({"taskDefinition": "ssd", "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ssd exists"}]}),
    )
    .await;
    assert_eq!(
        failures[0]["detail"],
        "2 instances: 1 not ACTIVE (draining), 1 outside memberOf (attribute:ssd exists)"
    );
    ok(
        &server,
        "UpdateContainerInstancesState",
        json!({"containerInstances": [b.arn], "status": "ACTIVE"}),
    )
    .await;
    let (placed, _) = run(&server, json!({"taskDefinition": "ssd"})).await;
    assert_eq!(
        placed,
        std::slice::from_ref(&b.arn),
        "b has fewer tasks of the group now"
    );
    let (_, err) = ecs(
        &server,
        "UpdateContainerInstancesState",
        json!({"containerInstances": [b.arn], "status": "INACTIVE"}),
    )
    .await;
    assert_eq!(err["__type"], "InvalidParameterException");
}

#[tokio::test]
async fn capacity_providers_split_tasks_by_base_and_weight() {
    let server = start().await;
    let pooled = |pool: &str| pb::RegisterRequest {
        capacity_provider: Some(pool.into()),
        memory_mib: 100_000,
        ..ScriptedAgent::request()
    };
    let big =
        ScriptedAgent::register(berth_tests::sim::channel(server.grpc).await, pooled("big")).await;
    let small = ScriptedAgent::register(
        berth_tests::sim::channel(server.grpc).await,
        pooled("small"),
    )
    .await;
    family(&server, "cp", 10).await;

    // Agents created their pools; the cluster must associate them first.
    let described = ok(&server, "DescribeCapacityProviders", json!({})).await;
    let names: Vec<&str> = described["capacityProviders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["big", "small"]);
    let strategy = json!([{"capacityProvider": "big", "base": 2, "weight": 1}, {"capacityProvider": "small", "weight": 3}]);
    let (status, err) = ecs(
        &server,
        "RunTask",
        json!({"taskDefinition": "cp", "capacityProviderStrategy": strategy}),
    )
    .await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not associated with the cluster")
    );

    let cluster = ok(
        &server,
        "PutClusterCapacityProviders",
        json!({"cluster": "default", "capacityProviders": ["big", "small"],
               "defaultCapacityProviderStrategy": [{"capacityProvider": "small", "weight": 1}]}),
    )
    .await;
    assert_eq!(
        cluster["cluster"]["capacityProviders"],
        json!(["big", "small"])
    );
    let v = ok(
        &server,
        "RunTask",
        json!({"taskDefinition": "cp", "count": 10, "capacityProviderStrategy": strategy}),
    )
    .await;
    let tasks = v["tasks"].as_array().expect("tasks");
    let on = |pool: &str, arn: &str| {
        tasks
            .iter()
            .filter(|t| t["capacityProviderName"] == pool && t["containerInstanceArn"] == arn)
            .count()
    };
    assert_eq!(
        (on("big", &big.arn), on("small", &small.arn)),
        (4, 6),
        "base 2 on big, then 1:3"
    );

    // Without launch type or strategy: the cluster's default strategy.
    let v = ok(
        &server,
        "RunTask",
        json!({"taskDefinition": "cp", "count": 2}),
    )
    .await;
    assert!(
        v["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .all(|t| t["capacityProviderName"] == "small")
    );
    let ci = ok(
        &server,
        "DescribeContainerInstances",
        json!({"containerInstances": [small.arn]}),
    )
    .await;
    assert_eq!(ci["containerInstances"][0]["capacityProviderName"], "small");

    // A provider in use cannot be deleted or removed from the cluster.
    let (_, err) = ecs(
        &server,
        "DeleteCapacityProvider",
        json!({"capacityProvider": "big"}),
    )
    .await;
    assert_eq!(err["__type"], "ClientException");
    let (_, err) = ecs(
        &server,
        "PutClusterCapacityProviders",
        json!({"cluster": "default", "capacityProviders": ["small"], "defaultCapacityProviderStrategy": []}),
    )
    .await;
    assert_eq!(err["__type"], "ResourceInUseException");
    let created = ok(
        &server,
        "CreateCapacityProvider",
        json!({"name": "spare", "tags": [{"key": "k", "value": "v"}]}),
    )
    .await;
    assert!(
        created["capacityProvider"]["capacityProviderArn"]
            .as_str()
            .unwrap_or_default()
            .ends_with(":capacity-provider/spare")
    );
    let (_, err) = ecs(
        &server,
        "CreateCapacityProvider",
        json!({"name": "ecs-thing"}),
    )
    .await;
    assert_eq!(err["__type"], "InvalidParameterException");
    let deleted = ok(
        &server,
        "DeleteCapacityProvider",
        json!({"capacityProvider": "spare"}),
    )
    .await;
    assert_eq!(deleted["capacityProvider"]["status"], "INACTIVE");
}

#[tokio::test]
async fn launch_types_and_gpus_place_only_where_they_fit() {
    let server = start().await;
    let ec2 = ScriptedAgent::register(
        berth_tests::sim::channel(server.grpc).await,
        pb::RegisterRequest {
            launch_type: "EC2".into(),
            ..ScriptedAgent::request()
        },
    )
    .await;
    let mut gpu = ScriptedAgent::register(
        berth_tests::sim::channel(server.grpc).await,
        pb::RegisterRequest {
            gpu_ids: vec!["0".into(), "1".into()],
            ..ScriptedAgent::request()
        },
    )
    .await;
    family(&server, "plain", 10).await;
    let (placed, _) = run(
        &server,
        json!({"taskDefinition": "plain", "count": 2, "launchType": "EC2"}),
    )
    .await;
    assert_eq!(placed, vec![ec2.arn.clone(); 2]);
    let (placed, _) = run(
        &server,
        json!({"taskDefinition": "plain", "launchType": "EXTERNAL"}),
    )
    .await;
    assert_eq!(placed, [gpu.arn.clone()]);

    ok(
        &server,
        "RegisterTaskDefinition",
        json!({"family": "gpu", "containerDefinitions": [
            {"name": "app", "image": "x", "memory": 10, "resourceRequirements": [{"type": "GPU", "value": "1"}]}]}),
    )
    .await;
    let v = ok(
        &server,
        "RunTask",
        json!({"taskDefinition": "gpu", "count": 3}),
    )
    .await;
    let tasks = v["tasks"].as_array().expect("tasks");
    let ids: Vec<&Value> = tasks
        .iter()
        .map(|t| &t["containers"][0]["gpuIds"])
        .collect();
    assert_eq!(ids, [&json!(["0"]), &json!(["1"])]);
    assert!(
        tasks
            .iter()
            .all(|t| t["containerInstanceArn"] == gpu.arn.as_str())
    );
    let failure = &v["failures"][0];
    assert_eq!(failure["reason"], "RESOURCE:GPU");
    assert!(
        failure["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("without 1 free GPUs (most free: 0)"),
        "{failure}"
    );
    // The agent is told which GPU each container gets.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let desired = gpu.desired().await;
        seen = desired
            .tasks
            .iter()
            .filter(|t| t.family == "gpu")
            .flat_map(|t| t.containers[0].gpu_ids.clone())
            .collect();
    }
    seen.sort();
    assert_eq!(seen, ["0", "1"]);
}

#[tokio::test]
async fn tasks_needing_inference_accelerators_find_no_instance_and_say_why() {
    let server = start().await;
    let _agent = agent(&server, 1024, Vec::new()).await;
    ok(
        &server,
        "RegisterTaskDefinition",
        json!({"family": "eia",
            "inferenceAccelerators": [{"deviceName": "d1", "deviceType": "eia2.medium"}],
            "containerDefinitions": [{"name": "app", "image": "x", "memory": 10,
                "resourceRequirements": [{"type": "InferenceAccelerator", "value": "d1"}]}]}),
    )
    .await;
    let (placed, failures) = run(&server, json!({"taskDefinition": "eia"})).await;
    assert!(placed.is_empty());
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["reason"], "ATTRIBUTE");
    assert!(
        failures[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("1 without the required attribute ecs.capability.inference-accelerator"),
        "{}",
        failures[0]
    );
}
