//! Service tier: the control plane in-process on port 0 with a temporary
//! sled database, driven over its real HTTP and gRPC listeners by raw JSON
//! requests and scripted agents (no Docker).

mod support;

use berth_proto::agent::v1 as pb;
use berth_tests::{eventually, raw_post};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{ScriptedAgent, ecs, instance, ok, register_family, start};

#[tokio::test]
async fn a_silent_agent_is_disconnected_within_15_seconds() {
    let server = start().await;
    let agent = ScriptedAgent::connect(server.grpc, 1024, 1024).await;
    assert_eq!(instance(&server, &agent.arn).await["agentConnected"], true);
    // The agent keeps its connection open but says nothing more.
    let silent_since = Instant::now();
    eventually(Duration::from_secs(15), "agentConnected: false", || async {
        (instance(&server, &agent.arn).await["agentConnected"] == false).then_some(())
    })
    .await;
    let took = silent_since.elapsed();
    assert!(
        took >= Duration::from_secs(5),
        "not before the liveness timeout: {took:?}"
    );
    drop(agent);
}

#[tokio::test]
async fn concurrent_run_tasks_never_overbook_an_instance() {
    let server = start().await;
    let agent = ScriptedAgent::connect(server.grpc, 10_000, 1000).await;
    register_family(&server, "fill", 100).await;
    let calls = (0..30).map(|_| ecs(&server, "RunTask", json!({"taskDefinition": "fill"})));
    let results = futures_util::future::join_all(calls).await;
    let mut placed = 0;
    let mut failed = 0;
    for (status, v) in results {
        assert_eq!(status, 200, "{v}");
        placed += v["tasks"].as_array().map_or(0, Vec::len);
        for f in v["failures"].as_array().into_iter().flatten() {
            assert_eq!(f["reason"], "RESOURCE:MEMORY");
            failed += 1;
        }
    }
    assert_eq!((placed, failed), (10, 20));
    let ci = instance(&server, &agent.arn).await;
    let remaining = ci["remainingResources"].as_array().expect("resources");
    let memory = remaining
        .iter()
        .find(|r| r["name"] == "MEMORY")
        .expect("MEMORY");
    assert_eq!(memory["integerValue"], 0);
    assert_eq!(ci["runningTasksCount"], 10);
    assert_eq!(ci["pendingTasksCount"], 10);
}

#[tokio::test]
async fn reports_only_move_tasks_forward_and_stopped_tasks_leave_the_desired_set() {
    let server = start().await;
    let mut agent = ScriptedAgent::connect(server.grpc, 1024, 1024).await;
    assert!(agent.desired().await.tasks.is_empty());
    register_family(&server, "fwd", 64).await;
    let run = ok(&server, "RunTask", json!({"taskDefinition": "fwd"})).await;
    let task_arn = run["tasks"][0]["taskArn"].as_str().expect("arn").to_owned();
    let desired = agent.desired().await;
    assert_eq!(desired.tasks.len(), 1);
    let spec = &desired.tasks[0];
    assert_eq!(spec.task_arn, task_arn);
    assert_eq!(spec.desired_status, pb::DesiredStatus::Running as i32);
    assert_eq!(spec.containers[0].memory_mib, Some(64));

    agent.report(&task_arn, pb::TaskStatus::Running).await;
    let describe = || async {
        ok(
            &server,
            "DescribeTasks",
            json!({"tasks": [task_arn.clone()]}),
        )
        .await["tasks"][0]
            .clone()
    };
    let running = eventually(Duration::from_secs(5), "RUNNING", || async {
        let t = describe().await;
        (t["lastStatus"] == "RUNNING").then_some(t)
    })
    .await;
    assert_eq!(running["containers"][0]["runtimeId"], "simulated");
    // A late PENDING report does not move it back.
    agent.report(&task_arn, pb::TaskStatus::Pending).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = describe().await;
    assert_eq!(t["lastStatus"], "RUNNING");
    assert_eq!(t["version"], running["version"]);

    ok(&server, "StopTask", json!({"task": task_arn})).await;
    let stopping = agent.desired().await;
    assert_eq!(
        stopping.tasks[0].desired_status,
        pb::DesiredStatus::Stopped as i32
    );
    agent.report(&task_arn, pb::TaskStatus::Stopped).await;
    let after = agent.desired().await;
    assert!(
        after.tasks.is_empty(),
        "a STOPPED task leaves the desired set"
    );
    assert!(after.generation > stopping.generation);
    let t = describe().await;
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["containers"][0]["exitCode"], 0);
}

#[tokio::test]
async fn an_agent_cannot_report_for_another_instances_task() {
    let server = start().await;
    let first = ScriptedAgent::connect(server.grpc, 1024, 64).await;
    let second = ScriptedAgent::connect(server.grpc, 1024, 64).await;
    register_family(&server, "mine", 64).await;
    let run = ok(&server, "RunTask", json!({"taskDefinition": "mine"})).await;
    let task_arn = run["tasks"][0]["taskArn"].as_str().expect("arn").to_owned();
    let placed_on = run["tasks"][0]["containerInstanceArn"]
        .as_str()
        .expect("instance");
    let intruder = if placed_on == first.arn {
        &second
    } else {
        &first
    };
    intruder.report(&task_arn, pb::TaskStatus::Stopped).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = ok(&server, "DescribeTasks", json!({"tasks": [task_arn]})).await;
    assert_eq!(
        t["tasks"][0]["lastStatus"], "PENDING",
        "the report was refused"
    );
}

#[tokio::test]
async fn every_answer_carries_request_id_and_date_and_oversized_bodies_are_refused() {
    let server = start().await;
    let target = "AmazonEC2ContainerServiceV20141113.ListClusters";
    let (status, headers, _) = raw_post(server.http, Some(target), b"{}").await;
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/x-amz-json-1.1")
    );
    assert_eq!(header("x-amzn-requestid").map(|v| v.len()), Some(36));
    let date = header("date").expect("a Date header");
    assert!(date.ends_with(" GMT"), "{date}");
    assert!(header("x-amzn-errortype").is_none());

    let big = format!("{{\"clusterName\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let (status, headers, body) = raw_post(
        server.http,
        Some("AmazonEC2ContainerServiceV20141113.CreateCluster"),
        big.as_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "x-amzn-errortype" && v == "SerializationException")
    );
    let listed = ok(&server, "ListClusters", json!({})).await;
    assert_eq!(listed["clusterArns"], json!([]), "nothing was created");
}

#[tokio::test]
async fn after_the_first_whole_set_agents_receive_only_what_changed() {
    let server = start().await;
    let mut agent = ScriptedAgent::connect(server.grpc, 4096, 4096).await;
    let first = agent.next_change().await;
    assert!(!first.partial, "a session starts with the whole set");
    register_family(&server, "delta", 16).await;
    let run = |count: u32| {
        let server = &server;
        async move {
            ok(
                server,
                "RunTask",
                json!({"taskDefinition": "delta", "count": count}),
            )
            .await["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .map(|t| t["taskArn"].as_str().expect("arn").to_owned())
                .collect::<Vec<_>>()
        }
    };
    let two = run(2).await;
    let change = agent.next_change().await;
    assert!(change.partial);
    assert_eq!(change.generation, first.generation + 1);
    assert_eq!(change.tasks.len(), 2);
    let third = run(1).await;
    let change = agent.next_change().await;
    assert!(change.partial);
    let sent: Vec<&str> = change.tasks.iter().map(|t| t.task_arn.as_str()).collect();
    assert_eq!(sent, [third[0].as_str()], "only the new task is sent");
    assert!(change.removed_task_arns.is_empty());

    ok(&server, "StopTask", json!({"task": two[0]})).await;
    let change = agent.next_change().await;
    assert_eq!(change.tasks.len(), 1, "only the stopped task is sent");
    assert_eq!(change.tasks[0].task_arn, two[0]);
    assert_eq!(
        change.tasks[0].desired_status,
        pb::DesiredStatus::Stopped as i32
    );
    agent.report(&two[0], pb::TaskStatus::Stopped).await;
    let change = agent.next_change().await;
    assert!(change.tasks.is_empty());
    assert_eq!(change.removed_task_arns, [two[0].clone()]);
    let mut left: Vec<&String> = agent.view.keys().collect();
    left.sort();
    let mut expected = vec![&two[1], &third[0]];
    expected.sort();
    assert_eq!(left, expected);

    // A new session (an agent restart) starts whole again.
    let mut again = ScriptedAgent::register(
        berth_tests::sim::channel(server.grpc).await,
        pb::RegisterRequest {
            container_instance_arn: Some(agent.arn.clone()),
            instance_secret: Some(agent.secret.clone()),
            cpu: 4096,
            memory_mib: 4096,
            ..ScriptedAgent::request()
        },
    )
    .await;
    let whole = again.next_change().await;
    assert!(!whole.partial);
    assert_eq!(whole.tasks.len(), 2);
}

#[tokio::test]
async fn agents_need_the_join_token_and_speak_only_for_their_own_instance() {
    let server = start().await;
    let owner = ScriptedAgent::connect(server.grpc, 1024, 1024).await;
    let url = format!("http://{}", server.grpc);
    let channel = || async {
        tonic::transport::Endpoint::from_shared(url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    };

    // No token, and a wrong token: refused before anything happens.
    let mut bare = pb::agent_service_client::AgentServiceClient::new(channel().await);
    let e = bare.register(ScriptedAgent::request()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(
        e.message().contains("--agent-token-file"),
        "{}",
        e.message()
    );
    let mut wrong = pb::agent_service_client::AgentServiceClient::with_interceptor(
        channel().await,
        |mut r: tonic::Request<()>| {
            r.metadata_mut().insert(
                "authorization",
                "Bearer not-the-token-0123456789".parse().expect("ascii"),
            );
            Ok(r)
        },
    );
    let e = wrong.register(ScriptedAgent::request()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(!e.message().contains(berth_tests::AGENT_TOKEN));
    let instances = ok(&server, "ListContainerInstances", json!({})).await;
    assert_eq!(
        instances["containerInstanceArns"].as_array().map(Vec::len),
        Some(1)
    );

    // A second agent with the token cannot take over the first one's
    // instance, neither by registering with its ARN nor by opening a session.
    let mut other = berth_tests::agent_client(channel().await);
    for secret in [None, Some("guessed".to_owned())] {
        let e = other
            .register(pb::RegisterRequest {
                container_instance_arn: Some(owner.arn.clone()),
                instance_secret: secret,
                ..ScriptedAgent::request()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    }
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
            container_instance_arn: owner.arn.clone(),
            instance_secret: "guessed".into(),
        })),
    })
    .await
    .expect("hello");
    let e = other
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    // The owner's session was not disturbed.
    let described = ok(
        &server,
        "DescribeContainerInstances",
        json!({"containerInstances": [owner.arn]}),
    )
    .await;
    assert_eq!(described["containerInstances"][0]["agentConnected"], true);
}

#[tokio::test]
async fn the_metrics_listener_serves_health_readiness_and_prometheus_text() {
    let server = start().await;
    let mut agent = ScriptedAgent::connect(server.grpc, 1024, 1024).await;
    register_family(&server, "m", 64).await;
    let run = ok(&server, "RunTask", json!({"taskDefinition": "m"})).await;
    let arn = run["tasks"][0]["taskArn"].as_str().expect("arn").to_owned();
    agent.desired().await;
    agent.report(&arn, pb::TaskStatus::Running).await;
    let (status, body) = support::ops_get(&server, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok: alive, loops turning"));
    let (status, body) = support::ops_get(&server, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let metrics = eventually(
        Duration::from_secs(5),
        "the task counted RUNNING",
        || async {
            let (_, body) = support::ops_get(&server, "/metrics").await;
            body.contains("berth_tasks{cluster=\"default\",last_status=\"RUNNING\"} 1")
                .then_some(body)
        },
    )
    .await;
    assert!(
        metrics.contains(
            "berth_container_instances{cluster=\"default\",status=\"ACTIVE\",connected=\"true\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("berth_agent_sessions 1"), "{metrics}");
    assert!(metrics.contains("berth_store_writable 1"), "{metrics}");
    assert!(
        metrics.contains("berth_api_requests_total{action=\"RunTask\",code=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_api_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_store_commit_duration_seconds_count "),
        "{metrics}"
    );
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "{metrics}"
    );
    // Without an Accept header naming OpenMetrics: the Prometheus text
    // format 0.0.4, whose counter families carry `_total` and which has
    // no `# EOF`.
    assert!(!metrics.contains("# EOF"), "{metrics}");
    assert!(
        metrics.contains("# TYPE berth_api_requests_total counter"),
        "{metrics}"
    );
    // Well-formed exposition: every sample's family was declared (HELP
    // then TYPE) before it, names are valid, values are numbers.
    let mut declared = std::collections::BTreeSet::new();
    let mut lines = metrics.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().expect("a name");
            let ty = lines.next().expect("TYPE after HELP");
            assert!(ty.starts_with(&format!("# TYPE {name} ")), "{ty}");
            assert!(declared.insert(name.to_owned()), "{name} declared twice");
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
            .unwrap_or(&name);
        assert!(declared.contains(family), "{line}: undeclared family");
        let value = line.rsplit(' ').next().expect("a value");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    // Prometheus asks for OpenMetrics, and gets it.
    let (_, open) = berth_tests::http_get_with(
        server.metrics,
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    )
    .await;
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    assert!(open.contains("# TYPE berth_api_requests counter"), "{open}");
}
