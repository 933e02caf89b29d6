//! Service tier: the JSON door and the gRPC door lead to the same room.
//!
//! The same scenario (clusters, a rich task definition, RunTask placed on a
//! scripted agent, describe, list, stop, attributes, and error cases) runs
//! once through each door on two fresh control planes with the same
//! placement seed; every answer must be identical once ids and timestamps
//! are masked. gRPC messages are built from the JSON bodies by their proto3
//! JSON mapping, so a field missing from the proto or named differently
//! drops out and shows as a difference.

mod support;

use berth_control_plane::auth;
use berth_proto::agent::v1 as agent_pb;
use berth_proto::ecs::v1 as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;
use support::{ScriptedAgent, Server, ecs, ok, start};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Door {
    Json,
    Grpc,
}

type Answer = Result<Value, (String, String)>;

async fn channel(server: &Server) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc))
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

/// One unary call of `berth.ecs.v1.ECS/<action>`, signed with the harness key.
async fn grpc<Req, Resp>(server: &Server, action: &str, body: Value) -> Answer
where
    Req: prost::Message + DeserializeOwned + Send + Sync + 'static,
    Resp: prost::Message + Serialize + Default + Send + Sync + 'static,
{
    let message: Req = serde_json::from_value(body).expect("the body maps onto the request");
    let mut client = tonic::client::Grpc::new(channel(server).await);
    client.ready().await.expect("ready");
    let path = format!("/berth.ecs.v1.ECS/{action}");
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        auth::grpc::authorization(
            berth_tests::ACCESS_KEY_ID,
            berth_tests::SECRET_ACCESS_KEY,
            &path,
            std::time::SystemTime::now(),
        )
        .parse()
        .expect("ascii"),
    );
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    match client
        .unary(request, path.parse().expect("path"), codec)
        .await
    {
        Ok(r) => Ok(serde_json::to_value(r.into_inner()).expect("encode")),
        Err(s) => Err((
            s.metadata()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("<none>")
                .to_owned(),
            s.message().to_owned(),
        )),
    }
}

macro_rules! via_grpc {
    ($server:expr, $action:expr, $body:expr, { $($name:literal => $req:ident, $resp:ident;)* }) => {
        match $action {
            $($name => grpc::<pb::$req, pb::$resp>($server, $name, $body).await,)*
            other => panic!("no gRPC mapping for {other} in this test"),
        }
    };
}

async fn call(server: &Server, door: Door, action: &str, body: Value) -> Answer {
    match door {
        Door::Json => {
            let (status, v) = ecs(server, action, body).await;
            if status == 200 {
                Ok(v)
            } else {
                Err((
                    v["__type"].as_str().unwrap_or_default().to_owned(),
                    v["message"].as_str().unwrap_or_default().to_owned(),
                ))
            }
        }
        Door::Grpc => via_grpc!(server, action, body, {
            "CreateCluster" => CreateClusterRequest, CreateClusterResponse;
            "DescribeClusters" => DescribeClustersRequest, DescribeClustersResponse;
            "ListClusters" => ListClustersRequest, ListClustersResponse;
            "DeleteCluster" => DeleteClusterRequest, DeleteClusterResponse;
            "RegisterTaskDefinition" => RegisterTaskDefinitionRequest, RegisterTaskDefinitionResponse;
            "DescribeTaskDefinition" => DescribeTaskDefinitionRequest, DescribeTaskDefinitionResponse;
            "ListTaskDefinitions" => ListTaskDefinitionsRequest, ListTaskDefinitionsResponse;
            "ListTaskDefinitionFamilies" => ListTaskDefinitionFamiliesRequest, ListTaskDefinitionFamiliesResponse;
            "DeregisterTaskDefinition" => DeregisterTaskDefinitionRequest, DeregisterTaskDefinitionResponse;
            "RunTask" => RunTaskRequest, RunTaskResponse;
            "StartTask" => StartTaskRequest, StartTaskResponse;
            "StopTask" => StopTaskRequest, StopTaskResponse;
            "DescribeTasks" => DescribeTasksRequest, DescribeTasksResponse;
            "ListTasks" => ListTasksRequest, ListTasksResponse;
            "ListContainerInstances" => ListContainerInstancesRequest, ListContainerInstancesResponse;
            "DescribeContainerInstances" => DescribeContainerInstancesRequest, DescribeContainerInstancesResponse;
            "UpdateContainerInstancesState" => UpdateContainerInstancesStateRequest, UpdateContainerInstancesStateResponse;
            "PutAttributes" => PutAttributesRequest, PutAttributesResponse;
            "DeleteAttributes" => DeleteAttributesRequest, DeleteAttributesResponse;
            "ListAttributes" => ListAttributesRequest, ListAttributesResponse;
            "CreateCapacityProvider" => CreateCapacityProviderRequest, CreateCapacityProviderResponse;
            "DescribeCapacityProviders" => DescribeCapacityProvidersRequest, DescribeCapacityProvidersResponse;
            "PutClusterCapacityProviders" => PutClusterCapacityProvidersRequest, PutClusterCapacityProvidersResponse;
            "UpdateCapacityProvider" => UpdateCapacityProviderRequest, UpdateCapacityProviderResponse;
            "TagResource" => TagResourceRequest, TagResourceResponse;
            "UntagResource" => UntagResourceRequest, UntagResourceResponse;
            "ListTagsForResource" => ListTagsForResourceRequest, ListTagsForResourceResponse;
            "UpdateCluster" => UpdateClusterRequest, UpdateClusterResponse;
            "UpdateClusterSettings" => UpdateClusterSettingsRequest, UpdateClusterSettingsResponse;
            "PutAccountSetting" => PutAccountSettingRequest, PutAccountSettingResponse;
            "PutAccountSettingDefault" => PutAccountSettingDefaultRequest, PutAccountSettingDefaultResponse;
            "DeleteAccountSetting" => DeleteAccountSettingRequest, DeleteAccountSettingResponse;
            "ListAccountSettings" => ListAccountSettingsRequest, ListAccountSettingsResponse;
            "DeleteTaskDefinitions" => DeleteTaskDefinitionsRequest, DeleteTaskDefinitionsResponse;
            "UpdateTaskProtection" => UpdateTaskProtectionRequest, UpdateTaskProtectionResponse;
            "GetTaskProtection" => GetTaskProtectionRequest, GetTaskProtectionResponse;
        }),
    }
}

/// Masks what differs between two control planes running the same script:
/// generated ids and timestamps. Drops empty lists and maps (proto3 cannot
/// tell them from absent members) and nulls.
fn mask(v: Value) -> Value {
    const TIMES: &[&str] = &[
        "createdAt",
        "registeredAt",
        "deregisteredAt",
        "deleteRequestedAt",
        "expirationDate",
        "startedAt",
        "stoppedAt",
        "stoppingAt",
        "pullStartedAt",
        "pullStoppedAt",
        "connectivityAt",
        "executionStoppedAt",
        "updatedAt",
    ];
    let ids = regex::Regex::new(
        r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    )
    .expect("regex");
    fn walk(v: Value, ids: &regex::Regex) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(Value::String(ids.replace_all(&s, "<id>").into_owned())),
            Value::Array(a) => {
                let a: Vec<Value> = a.into_iter().filter_map(|x| walk(x, ids)).collect();
                (!a.is_empty()).then_some(Value::Array(a))
            }
            Value::Object(o) => {
                let o: serde_json::Map<String, Value> = o
                    .into_iter()
                    .filter_map(|(k, x)| {
                        if TIMES.contains(&k.as_str()) {
                            return Some((k, Value::String("<time>".into())));
                        }
                        walk(x, ids).map(|x| (k, x))
                    })
                    .collect();
                (!o.is_empty()).then_some(Value::Object(o))
            }
            other => Some(other),
        }
    }
    walk(v, &ids).unwrap_or(Value::Null)
}

fn task_definition() -> Value {
    json!({
        "family": "web",
        "networkMode": "bridge",
        "cpu": "512",
        "memory": "256",
        "requiresCompatibilities": ["EXTERNAL"],
        "tags": [{"key": "team", "value": "home"}],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "volumes": [{"name": "data", "host": {"sourcePath": "/tmp"}}, {"name": "scratch", "dockerVolumeConfiguration": {"scope": "task", "driver": "local", "labels": {"a": "b"}}}],
        "containerDefinitions": [{
            "name": "app",
            "image": "berth-test/testbin:latest",
            "cpu": 256,
            "memory": 128,
            "memoryReservation": 64,
            "essential": true,
            "entryPoint": ["/berth-testbin"],
            "command": ["sleep", "60"],
            "environment": [{"name": "A", "value": "1"}],
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp", "name": "http"}],
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": true}],
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            "dockerLabels": {"tier": "front"},
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
            "healthCheck": {"command": ["CMD", "/berth-testbin", "true"], "interval": 5, "timeout": 2, "retries": 3, "startPeriod": 1},
            "linuxParameters": {"initProcessEnabled": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]}, "tmpfs": [{"containerPath": "/run", "size": 16}]},
            "stopTimeout": 10,
            "startTimeout": 30,
            "workingDirectory": "/",
            "readonlyRootFilesystem": false,
            "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.5"}]
        }, {
            "name": "sidecar",
            "image": "berth-test/testbin:latest",
            "memory": 32,
            "essential": false,
            "dependsOn": [{"containerName": "app", "condition": "START"}],
            "command": ["sleep", "60"]
        }]
    })
}

/// The scenario; returns every (action, masked answer).
async fn scenario(door: Door) -> Vec<(String, Answer)> {
    let server = start().await;
    let mut log = Vec::new();
    macro_rules! step {
        ($action:literal, $body:expr) => {{
            let answer = call(&server, door, $action, $body).await;
            log.push(($action.to_owned(), answer.clone().map(mask)));
            answer
        }};
    }
    step!(
        "CreateCluster",
        json!({"clusterName": "doors", "tags": [{"key": "env", "value": "lab"}]})
    )
    .expect("cluster");
    step!("RegisterTaskDefinition", task_definition()).expect("registered");
    step!(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web", "include": ["TAGS"]})
    )
    .expect("described");
    step!("ListTaskDefinitions", json!({"familyPrefix": "we"})).expect("listed");
    step!("ListTaskDefinitionFamilies", json!({})).expect("families");

    let mut agent = ScriptedAgent::register(
        berth_tests::sim::channel(server.grpc).await,
        agent_pb::RegisterRequest {
            cluster: "doors".into(),
            attributes: vec![agent_pb::Attribute {
                name: "ecs.os-type".into(),
                value: Some("linux".into()),
            }],
            ..ScriptedAgent::request()
        },
    )
    .await;
    let _ = agent.desired().await;

    let run = step!(
        "RunTask",
        json!({
            "cluster": "doors",
            "taskDefinition": "web:1",
            "count": 2,
            "startedBy": "doors-test",
            "group": "family:web",
            "launchType": "EXTERNAL",
            "clientToken": "same-token-both-doors",
            "enableECSManagedTags": true,
            "propagateTags": "TASK_DEFINITION",
            "tags": [{"key": "run", "value": "1"}],
            "placementStrategy": [{"type": "binpack", "field": "memory"}],
            "placementConstraints": [{"type": "distinctInstance"}],
            "overrides": {"containerOverrides": [{"name": "app", "environment": [{"name": "B", "value": "2"}], "memory": 100}], "cpu": "512"}
        })
    )
    .expect("ran");
    let arns: Vec<String> = run["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_owned))
        .collect();
    // distinctInstance with one instance: one placed, one failure.
    assert_eq!(arns.len(), 1, "{run}");

    // The agent reports RUNNING; wait for it through the JSON door.
    let set = agent.desired().await;
    for t in &set.tasks {
        agent
            .report(&t.task_arn, agent_pb::TaskStatus::Running)
            .await;
    }
    berth_tests::eventually(Duration::from_secs(10), "the task runs", || async {
        let v = ok(
            &server,
            "DescribeTasks",
            json!({"cluster": "doors", "tasks": arns}),
        )
        .await;
        (v["tasks"][0]["lastStatus"] == "RUNNING").then_some(())
    })
    .await;

    step!(
        "DescribeTasks",
        json!({"cluster": "doors", "tasks": [arns[0], "not-a-task"], "include": ["TAGS"]})
    )
    .expect("described");
    step!(
        "ListTasks",
        json!({"cluster": "doors", "desiredStatus": "RUNNING"})
    )
    .expect("listed");
    step!(
        "ListContainerInstances",
        json!({"cluster": "doors", "filter": "attribute:ecs.os-type == linux"})
    )
    .expect("instances");
    step!(
        "DescribeContainerInstances",
        json!({"cluster": "doors", "containerInstances": [agent.arn]})
    )
    .expect("instance");
    step!("PutAttributes", json!({"cluster": "doors", "attributes": [{"name": "rack", "value": "r1", "targetId": agent.arn}]}))
        .expect("put");
    step!(
        "ListAttributes",
        json!({"cluster": "doors", "targetType": "container-instance", "attributeName": "rack"})
    )
    .expect("attributes");
    step!(
        "DescribeClusters",
        json!({"clusters": ["doors", "missing"], "include": ["TAGS", "STATISTICS"]})
    )
    .expect("clusters");
    step!(
        "StopTask",
        json!({"cluster": "doors", "task": arns[0], "reason": "done by the doors test"})
    )
    .expect("stopped");
    step!(
        "UpdateContainerInstancesState",
        json!({"cluster": "doors", "containerInstances": [agent.arn], "status": "DRAINING"})
    )
    .expect("draining");
    step!(
        "CreateCapacityProvider",
        json!({"name": "pool", "tags": [{"key": "a", "value": "b"}]})
    )
    .expect("provider");
    step!(
        "PutClusterCapacityProviders",
        json!({"cluster": "doors", "capacityProviders": [], "defaultCapacityProviderStrategy": []})
    )
    .expect("cleared providers");
    step!(
        "UpdateCapacityProvider",
        json!({"name": "pool", "autoScalingGroupProvider": {"managedDraining": "ENABLED", "managedScaling": {"status": "ENABLED", "targetCapacity": 90}}})
    )
    .expect("updated provider");
    let cluster_arn = "arn:aws:ecs:us-east-1:000000000000:cluster/doors";
    step!(
        "TagResource",
        json!({"resourceArn": cluster_arn, "tags": [{"key": "team", "value": "ops"}, {"key": "tier", "value": "1"}]})
    )
    .expect("tagged");
    step!(
        "UntagResource",
        json!({"resourceArn": cluster_arn, "tagKeys": ["tier"]})
    )
    .expect("untagged");
    step!("ListTagsForResource", json!({"resourceArn": cluster_arn})).expect("tags");
    step!(
        "UpdateCluster",
        json!({"cluster": "doors", "settings": [{"name": "containerInsights", "value": "enabled"}],
               "configuration": {"executeCommandConfiguration": {"logging": "DEFAULT"}},
               "serviceConnectDefaults": {"namespace": "home"}})
    )
    .expect("cluster updated");
    step!(
        "UpdateClusterSettings",
        json!({"cluster": "doors", "settings": [{"name": "containerInsights", "value": "enhanced"}]})
    )
    .expect("settings updated");
    step!(
        "PutAccountSettingDefault",
        json!({"name": "awsvpcTrunking", "value": "enabled"})
    )
    .expect("default set");
    step!(
        "PutAccountSetting",
        json!({"name": "containerInsights", "value": "enabled"})
    )
    .expect("setting set");
    step!(
        "ListAccountSettings",
        json!({"effectiveSettings": true, "maxResults": 5})
    )
    .expect("settings");
    step!("DeleteAccountSetting", json!({"name": "containerInsights"})).expect("deleted setting");
    step!(
        "UpdateTaskProtection",
        json!({"cluster": "doors", "tasks": [arns[0], "0123456789abcdef0123456789abcdef"], "protectionEnabled": true, "expiresInMinutes": 30})
    )
    .expect("protected");
    step!(
        "GetTaskProtection",
        json!({"cluster": "doors", "tasks": [arns[0]]})
    )
    .expect("protection");
    step!(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:1"})
    )
    .expect("deregistered");
    step!(
        "DeleteTaskDefinitions",
        json!({"taskDefinitions": ["web:1", "web:7"]})
    )
    .expect("deleted");

    // Errors: same name, same message.
    for (action, body) in [
        (
            "RunTask",
            json!({"cluster": "nope", "taskDefinition": "web"}),
        ),
        (
            "RunTask",
            json!({"cluster": "doors", "taskDefinition": "web", "count": 11}),
        ),
        (
            "RunTask",
            json!({"cluster": "doors", "taskDefinition": "web", "clientToken": "same-token-both-doors", "count": 2}),
        ),
        ("DescribeTaskDefinition", json!({"taskDefinition": "web:9"})),
        ("DeleteCluster", json!({"cluster": "doors"})),
        (
            "RegisterTaskDefinition",
            json!({"family": "bad name!", "containerDefinitions": []}),
        ),
        ("StopTask", json!({"cluster": "doors"})),
        (
            "TagResource",
            json!({"resourceArn": "arn:aws:ecs:us-east-1:000000000000:task/abc", "tags": [{"key": "a", "value": "b"}]}),
        ),
        (
            "PutAccountSetting",
            json!({"name": "taskLongArnFormat", "value": "disabled"}),
        ),
        (
            "UpdateTaskProtection",
            json!({"cluster": "doors", "tasks": [arns[0]], "protectionEnabled": true, "expiresInMinutes": 9999}),
        ),
    ] {
        let answer = call(&server, door, action, body).await;
        assert!(answer.is_err(), "{action} should fail: {answer:?}");
        log.push((action.to_owned(), answer.map(mask)));
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_doors_give_identical_answers() {
    let json = scenario(Door::Json).await;
    let grpc = scenario(Door::Grpc).await;
    assert_eq!(json.len(), grpc.len());
    for ((action, a), (_, b)) in json.iter().zip(&grpc) {
        assert_eq!(
            a,
            b,
            "{action}: the JSON door answered\n{}\nand the gRPC door\n{}",
            serde_json::to_string_pretty(&a.clone().unwrap_or_else(|e| json!(e)))
                .unwrap_or_default(),
            serde_json::to_string_pretty(&b.clone().unwrap_or_else(|e| json!(e)))
                .unwrap_or_default()
        );
    }
    // The scenario is not vacuous: rich answers came back.
    let described = &json
        .iter()
        .find(|(a, _)| a == "DescribeTaskDefinition")
        .expect("step")
        .1;
    let text = described.as_ref().expect("ok").to_string();
    for member in [
        "healthCheck",
        "linuxParameters",
        "dockerVolumeConfiguration",
        "dependsOn",
        "ulimits",
        "portMappings",
    ] {
        assert!(text.contains(member), "{member} missing from {text}");
    }
}

#[tokio::test]
async fn grpc_callers_must_sign_and_reflection_lists_the_api() {
    let server = start().await;
    // Unsigned and wrongly signed calls are refused with the ECS names.
    let mut client = pb::ecs_client::EcsClient::new(channel(&server).await);
    let e = client
        .list_clusters(pb::ListClustersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        e.metadata()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some("InvalidSignatureException")
    );
    let mut request = tonic::Request::new(pb::ListClustersRequest::default());
    request.metadata_mut().insert(
        "authorization",
        auth::grpc::authorization(
            berth_tests::ACCESS_KEY_ID,
            "not-the-secret-0123456789",
            "/berth.ecs.v1.ECS/ListClusters",
            std::time::SystemTime::now(),
        )
        .parse()
        .expect("ascii"),
    );
    let e = client.list_clusters(request).await.unwrap_err();
    assert_eq!(
        e.metadata()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some("InvalidSignatureException")
    );
    assert!(!e.message().contains(berth_tests::SECRET_ACCESS_KEY));
    // A signature for another method does not carry over.
    let mut request = tonic::Request::new(pb::ListClustersRequest::default());
    request.metadata_mut().insert(
        "authorization",
        auth::grpc::authorization(
            berth_tests::ACCESS_KEY_ID,
            berth_tests::SECRET_ACCESS_KEY,
            "/berth.ecs.v1.ECS/DescribeClusters",
            std::time::SystemTime::now(),
        )
        .parse()
        .expect("ascii"),
    );
    assert_eq!(
        client.list_clusters(request).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );

    // Messages over the JSON API's 1 MiB body limit are refused.
    let mut request = tonic::Request::new(pb::RegisterTaskDefinitionRequest {
        family: Some("x".repeat(2 << 20)),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        auth::grpc::authorization(
            berth_tests::ACCESS_KEY_ID,
            berth_tests::SECRET_ACCESS_KEY,
            "/berth.ecs.v1.ECS/RegisterTaskDefinition",
            std::time::SystemTime::now(),
        )
        .parse()
        .expect("ascii"),
    );
    assert_eq!(
        client
            .register_task_definition(request)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::OutOfRange
    );

    // Reflection: grpcurl-style discovery of the services and their files.
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel(&server).await);
    let ask = |m: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "berth.ecs.v1.ECS".into(),
            )),
        ]))
        .await
        .expect("reflection")
        .into_inner();
    let first = answers.message().await.expect("answer").expect("one");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("not a service list: {first:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"berth.ecs.v1.ECS") && names.contains(&"berth.agent.v1.AgentService"),
        "{names:?}"
    );
    let second = answers.message().await.expect("answer").expect("two");
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("not a file: {second:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}
