//! Shared by the service-tier tests: the control plane in-process, raw ECS
//! calls, and scripted agents that speak the real agent protocol.

#![allow(dead_code)]

use berth_control_plane::auth::{JoinToken, Keys};
use berth_control_plane::config::Config;
use berth_proto::agent::v1 as pb;
use berth_tests::raw_post;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub struct Server {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Stops the control plane and waits until its store is closed.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(r) = self.running.take() {
            r.await.expect("control plane stops cleanly");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start_in(dir.path()).await;
    server._dir = Some(dir);
    server
}

/// A control plane with its data directory at `data_dir`.
pub async fn start_in(data_dir: &std::path::Path) -> Server {
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
        data_dir: data_dir.to_owned(),
        http_listen: http_addr,
        grpc_listen: grpc_addr,
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        stopped_task_retention: Duration::from_secs(3600),
        // Short, so the lost-host test need not wait two minutes.
        lost_host_timeout: Duration::from_secs(3),
        placement_seed: Some(7),
        log: "warn".into(),
        keys: Some(Keys::from_pairs([(
            berth_tests::ACCESS_KEY_ID,
            berth_tests::SECRET_ACCESS_KEY,
        )])),
        credentials_file: None,
        join_token: Some(JoinToken::parse(berth_tests::AGENT_TOKEN).expect("token")),
        agent_token_file: None,
        tls: None,
        insecure: false,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
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
        running: Some(running),
        _dir: None,
    }
}

/// Calls an ECS action; returns (status, body).
pub async fn ecs(server: &Server, action: &str, body: Value) -> (u16, Value) {
    let target = format!("AmazonEC2ContainerServiceV20141113.{action}");
    let (status, _, text) = raw_post(server.http, Some(&target), body.to_string().as_bytes()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn ok(server: &Server, action: &str, body: Value) -> Value {
    let (status, v) = ecs(server, action, body).await;
    assert_eq!(status, 200, "{action}: {v}");
    v
}

/// A scripted agent: registers, opens a session, and does exactly what the
/// test tells it.
pub struct ScriptedAgent {
    pub arn: String,
    /// The instance secret registration returned.
    pub secret: String,
    pub outbound: mpsc::Sender<pb::AgentMessage>,
    pub inbound: tonic::Streaming<pb::ControlMessage>,
    /// The whole desired set as of the last message, by task ARN.
    pub view: std::collections::BTreeMap<String, pb::TaskSpec>,
    /// Generation of the last message.
    pub generation: u64,
}

impl ScriptedAgent {
    pub async fn connect(server: &Server, cpu: i64, memory: i64) -> Self {
        Self::register(
            server,
            pb::RegisterRequest {
                cpu,
                memory_mib: memory,
                ..Self::request()
            },
        )
        .await
    }

    /// A registration with defaults: cluster `default`, reserved port 22.
    pub fn request() -> pb::RegisterRequest {
        pb::RegisterRequest {
            cluster: "default".into(),
            instance_id: "scripted".into(),
            cpu: 4096,
            memory_mib: 4096,
            reserved_tcp_ports: vec![22],
            ..Default::default()
        }
    }

    /// Registers with `request` and opens a session.
    pub async fn register(server: &Server, request: pb::RegisterRequest) -> Self {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut client = berth_tests::agent_client(channel);
        let registered = client
            .register(request)
            .await
            .expect("register")
            .into_inner();
        let (tx, rx) = mpsc::channel(16);
        tx.send(pb::AgentMessage {
            kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
                container_instance_arn: registered.container_instance_arn.clone(),
                instance_secret: registered.instance_secret.clone(),
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
            secret: registered.instance_secret,
            outbound: tx,
            inbound,
            view: Default::default(),
            generation: 0,
        }
    }

    /// The whole desired set after the next desired-set message
    /// (heartbeats skipped), with partial messages applied as an agent does:
    /// each must follow the previous one.
    pub async fn desired(&mut self) -> pb::DesiredTasks {
        let change = self.next_change().await;
        pb::DesiredTasks {
            generation: change.generation,
            tasks: self.view.values().cloned().collect(),
            partial: false,
            removed_task_arns: Vec::new(),
        }
    }

    /// The next desired-set message as sent, after applying it to `view`.
    pub async fn next_change(&mut self) -> pb::DesiredTasks {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.inbound.message())
                .await
                .expect("a message in time")
                .expect("stream ok")
                .expect("stream open");
            if let Some(pb::control_message::Kind::DesiredTasks(d)) = msg.kind {
                if d.partial {
                    assert_eq!(
                        d.generation,
                        self.generation + 1,
                        "a partial set follows the last one"
                    );
                } else {
                    self.view.clear();
                }
                self.generation = d.generation;
                for arn in &d.removed_task_arns {
                    assert!(
                        self.view.remove(arn).is_some(),
                        "removed {arn}, which was not in the set"
                    );
                }
                for t in &d.tasks {
                    self.view.insert(t.task_arn.clone(), t.clone());
                }
                return d;
            }
        }
    }

    pub async fn report(&self, task_arn: &str, status: pb::TaskStatus) {
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

pub async fn instance(server: &Server, arn: &str) -> Value {
    let v = ok(
        server,
        "DescribeContainerInstances",
        json!({"containerInstances": [arn]}),
    )
    .await;
    v["containerInstances"][0].clone()
}

pub async fn register_family(server: &Server, family: &str, memory: i64) {
    ok(
        server,
        "RegisterTaskDefinition",
        json!({"family": family, "containerDefinitions": [{"name": "app", "image": "x", "memory": memory}]}),
    )
    .await;
}
