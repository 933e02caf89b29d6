//! Service tier: the control plane in-process on port 0 with a temporary
//! sled database, driven over its real HTTP and gRPC listeners by raw JSON
//! requests and scripted agents (no Docker).

use berth_control_plane::config::Config;
use berth_proto::agent::v1 as pb;
use berth_tests::{eventually, raw_post};
use pb::agent_service_client::AgentServiceClient;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

struct Server {
    http: SocketAddr,
    grpc: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (http_addr, grpc_addr) = (
        http.local_addr().expect("addr"),
        grpc.local_addr().expect("addr"),
    );
    let config = Config {
        data_dir: dir.path().to_owned(),
        http_listen: http_addr,
        grpc_listen: grpc_addr,
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        stopped_task_retention: Duration::from_secs(3600),
        placement_seed: Some(7),
        log: "warn".into(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        berth_control_plane::run(config, http, grpc, async {
            let _ = rx.await;
        })
        .await
        .expect("control plane runs");
    });
    Server {
        http: http_addr,
        grpc: grpc_addr,
        stop: Some(tx),
        _dir: dir,
    }
}

/// Calls an ECS action; returns (status, body).
async fn ecs(server: &Server, action: &str, body: Value) -> (u16, Value) {
    let target = format!("AmazonEC2ContainerServiceV20141113.{action}");
    let (status, _, text) = raw_post(server.http, Some(&target), body.to_string().as_bytes()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ok(server: &Server, action: &str, body: Value) -> Value {
    let (status, v) = ecs(server, action, body).await;
    assert_eq!(status, 200, "{action}: {v}");
    v
}

/// A scripted agent: registers, opens a session, and does exactly what the
/// test tells it.
struct ScriptedAgent {
    arn: String,
    outbound: mpsc::Sender<pb::AgentMessage>,
    inbound: tonic::Streaming<pb::ControlMessage>,
}

impl ScriptedAgent {
    async fn connect(server: &Server, cpu: i64, memory: i64) -> Self {
        let mut client = AgentServiceClient::connect(format!("http://{}", server.grpc))
            .await
            .expect("connect");
        let registered = client
            .register(pb::RegisterRequest {
                cluster: "default".into(),
                instance_id: "scripted".into(),
                cpu,
                memory_mib: memory,
                reserved_tcp_ports: vec![22],
                ..Default::default()
            })
            .await
            .expect("register")
            .into_inner();
        let (tx, rx) = mpsc::channel(16);
        tx.send(pb::AgentMessage {
            kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
                container_instance_arn: registered.container_instance_arn.clone(),
            })),
        })
        .await
        .expect("hello");
        let inbound = client
            .session(ReceiverStream::new(rx))
            .await
            .expect("session")
            .into_inner();
        ScriptedAgent {
            arn: registered.container_instance_arn,
            outbound: tx,
            inbound,
        }
    }

    /// The next desired set (heartbeats skipped).
    async fn desired(&mut self) -> pb::DesiredTasks {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.inbound.message())
                .await
                .expect("a message in time")
                .expect("stream ok")
                .expect("stream open");
            if let Some(pb::control_message::Kind::DesiredTasks(d)) = msg.kind {
                return d;
            }
        }
    }

    async fn report(&self, task_arn: &str, status: pb::TaskStatus) {
        self.outbound
            .send(pb::AgentMessage {
                kind: Some(pb::agent_message::Kind::TaskState(pb::TaskStateReport {
                    task_arn: task_arn.into(),
                    last_status: status as i32,
                    containers: vec![pb::ContainerStateReport {
                        name: "app".into(),
                        last_status: match status {
                            pb::TaskStatus::Running => pb::ContainerStatus::Running,
                            pb::TaskStatus::Stopped => pb::ContainerStatus::Stopped,
                            _ => pb::ContainerStatus::Pending,
                        } as i32,
                        runtime_id: Some("abc".into()),
                        exit_code: (status == pb::TaskStatus::Stopped).then_some(0),
                        ..Default::default()
                    }],
                    ..Default::default()
                })),
            })
            .await
            .expect("report");
    }
}

async fn instance(server: &Server, arn: &str) -> Value {
    let v = ok(
        server,
        "DescribeContainerInstances",
        json!({"containerInstances": [arn]}),
    )
    .await;
    v["containerInstances"][0].clone()
}

async fn register_family(server: &Server, family: &str, memory: i64) {
    ok(
        server,
        "RegisterTaskDefinition",
        json!({"family": family, "containerDefinitions": [{"name": "app", "image": "x", "memory": memory}]}),
    )
    .await;
}

#[tokio::test]
async fn a_silent_agent_is_disconnected_within_15_seconds() {
    let server = start().await;
    let agent = ScriptedAgent::connect(&server, 1024, 1024).await;
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
    let agent = ScriptedAgent::connect(&server, 10_000, 1000).await;
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
    let mut agent = ScriptedAgent::connect(&server, 1024, 1024).await;
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
    assert_eq!(running["containers"][0]["runtimeId"], "abc");
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
    let first = ScriptedAgent::connect(&server, 1024, 64).await;
    let second = ScriptedAgent::connect(&server, 1024, 64).await;
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
