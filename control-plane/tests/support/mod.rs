//! Shared by the service-tier tests: the control plane in-process, raw ECS
//! calls, and scripted agents that speak the real agent protocol.

#![allow(dead_code)]

use berth_control_plane::auth::{JoinToken, Keys};
use berth_control_plane::config::Config;
use berth_tests::raw_post;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

pub struct Server {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    /// /metrics, /healthz, /readyz.
    pub metrics: SocketAddr,
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
    // A free port for the metrics listener, which `run` binds itself.
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let config = Config {
        metrics_listen: Some(metrics),
        data_dir: data_dir.to_owned(),
        http_listen: http_addr,
        grpc_listen: grpc_addr,
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        stopped_task_retention: Duration::from_secs(3600),
        // Short, so the lost-host test need not wait two minutes.
        lost_host_timeout: Duration::from_secs(3),
        placement_seed: Some(7),
        store_cache_bytes: berth_control_plane::store::DEFAULT_CACHE_BYTES,
        log: "warn".into(),
        log_format: Default::default(),
        keys: Some(Keys::from_pairs([(
            berth_tests::ACCESS_KEY_ID,
            berth_tests::SECRET_ACCESS_KEY,
        )])),
        credentials_file: None,
        join_token: Some(JoinToken::parse(berth_tests::AGENT_TOKEN).expect("token")),
        agent_token_file: None,
        tls: None,
        insecure: false,
        accept_state_loss: false,
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
        metrics,
        stop: Some(tx),
        running: Some(running),
        _dir: None,
    }
}

/// `GET path` on the metrics listener: (status, body).
pub async fn ops_get(server: &Server, path: &str) -> (u16, String) {
    berth_tests::http_get(server.metrics, path).await
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

/// The shared simulated agent (`berth_tests::sim`), scripted step by step.
pub use berth_tests::sim::SimAgent as ScriptedAgent;

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
