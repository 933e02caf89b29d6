//! Agent tier: the real `berth-agent` binary and the real Docker Engine
//! against a scripted control plane that records what the agent sends.

use berth_proto::agent::v1 as pb;
use pb::agent_service_server::{AgentService, AgentServiceServer};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

const ARN: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/0123456789abcdef0123456789abcdef";

#[derive(Debug, Default, Clone)]
struct Recorded {
    registrations: Arc<Mutex<Vec<pb::RegisterRequest>>>,
    /// (ARN, instance secret) of each hello.
    hellos: Arc<Mutex<Vec<(String, String)>>>,
    /// The `authorization` metadata of every call.
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
}

const SECRET: &str = "scripted-instance-secret";
const TOKEN: &str = "scripted-join-token-0123456789";

impl Recorded {
    fn authorization<T>(&self, request: &Request<T>) {
        self.authorizations.lock().expect("lock").push(
            request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
    }
}

#[derive(Debug, Clone)]
struct Scripted(Recorded, tokio::sync::watch::Receiver<bool>);

type ControlStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<pb::ControlMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for Scripted {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        self.0.authorization(&request);
        self.0
            .registrations
            .lock()
            .expect("lock")
            .push(request.into_inner());
        Ok(Response::new(pb::RegisterResponse {
            container_instance_arn: ARN.into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/default".into(),
            instance_secret: SECRET.into(),
        }))
    }

    type SessionStream = ControlStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        self.0.authorization(&request);
        let mut inbound = request.into_inner();
        let recorded = self.0.clone();
        let mut stop = self.1.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(pb::ControlMessage {
                    kind: Some(pb::control_message::Kind::DesiredTasks(pb::DesiredTasks {
                        generation: 1,
                        tasks: vec![],
                        ..Default::default()
                    })),
                }))
                .await;
            loop {
                // Sessions end with the server, as a dead control plane's would.
                let m = tokio::select! {
                    m = inbound.message() => m,
                    _ = stop.changed() => break,
                };
                let Ok(Some(m)) = m else { break };
                if let Some(pb::agent_message::Kind::Hello(h)) = m.kind {
                    recorded
                        .hellos
                        .lock()
                        .expect("lock")
                        .push((h.container_instance_arn, h.instance_secret));
                }
                let _ = tx
                    .send(Ok(pb::ControlMessage {
                        kind: Some(pb::control_message::Kind::Heartbeat(pb::Heartbeat {
                            sent_at_ms: 0,
                            runtime: None,
                        })),
                    }))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Serves the scripted control plane on `addr` until the returned sender is
/// dropped; its sessions end then too.
async fn serve(addr: SocketAddr, recorded: Recorded) -> tokio::sync::watch::Sender<bool> {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut shutdown = rx.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(AgentServiceServer::new(Scripted(recorded, rx)))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move {
                    let _ = shutdown.changed().await;
                },
            )
            .await
            .expect("scripted control plane");
    });
    tx
}

struct AgentProcess(Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(url: &str, data_dir: &std::path::Path) -> (AgentProcess, String) {
    let token_file = data_dir.join("join-token");
    std::fs::write(
        &token_file,
        format!("# the cluster's join token\n{TOKEN}\n"),
    )
    .expect("token file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth-agent"))
        .arg("--agent-token-file")
        .arg(&token_file)
        .args([
            "--control-plane",
            url,
            "--cluster",
            "default",
            "--cpu",
            "3072",
            "--log",
            "warn",
            "--metrics-listen",
            "off",
        ])
        .args([
            "--attribute",
            "rack=r1",
            "--attribute",
            "gpu",
            "--availability-zone",
            "home-a",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start berth-agent");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the agent says it is ready");
    (AgentProcess(child), line)
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

// Multi-threaded: starting the agent blocks this thread while the scripted
// control plane must keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_the_host_and_keeps_its_identity_across_restarts_and_reconnects() {
    let addr = free_addr();
    let recorded = Recorded::default();
    let stop = serve(addr, recorded.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("http://{addr}");

    let (agent, ready) = start_agent(&url, dir.path());
    assert_eq!(
        ready,
        format!("berth-agent ready container-instance={ARN} metrics=off")
    );
    let first = recorded.registrations.lock().expect("lock")[0].clone();
    assert_eq!(
        first.container_instance_arn, None,
        "a new agent has no identity yet"
    );
    assert_eq!(first.cluster, "default");
    assert_eq!(first.cpu, 3072, "--cpu overrides the detected CPUs");
    assert!(first.memory_mib > 0, "memory defaults to the host's total");
    assert_eq!(first.launch_type, "EXTERNAL");
    assert_eq!(first.reserved_tcp_ports, vec![22, 2375, 2376]);
    let attr = |name: &str| {
        first
            .attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.clone())
    };
    assert_eq!(attr("ecs.os-type"), Some(Some("linux".into())));
    assert_eq!(attr("ecs.capability.external"), Some(None));
    assert_eq!(attr("ecs.availability-zone"), Some(Some("home-a".into())));
    assert_eq!(attr("rack"), Some(Some("r1".into())));
    assert_eq!(attr("gpu"), Some(None));
    assert!(attr("ecs.cpu-architecture").is_some());
    let version = first.version_info.expect("versions");
    assert!(
        !version.docker_version.is_empty(),
        "the Docker version is reported"
    );
    assert_eq!(
        recorded.hellos.lock().expect("lock").as_slice(),
        [(ARN.to_owned(), SECRET.to_owned())],
        "the session presents the instance secret registration returned"
    );
    assert_eq!(first.instance_secret, None);
    let bearer = format!("Bearer {TOKEN}");
    assert!(
        recorded
            .authorizations
            .lock()
            .expect("lock")
            .iter()
            .all(|a| a.as_deref() == Some(bearer.as_str())),
        "every call carries the join token"
    );

    // Restarted, it registers with the identity it saved.
    drop(agent);
    let before = recorded.registrations.lock().expect("lock").len();
    let (agent, _) = start_agent(&url, dir.path());
    let again = recorded.registrations.lock().expect("lock")[before].clone();
    assert_eq!(again.container_instance_arn.as_deref(), Some(ARN));
    assert_eq!(
        again.instance_secret.as_deref(),
        Some(SECRET),
        "it proves it is the agent that registered the instance"
    );

    // The control plane goes away and comes back: the agent reconnects.
    drop(stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hellos = recorded.hellos.lock().expect("lock").len();
    let _stop = serve(addr, recorded.clone()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while recorded.hellos.lock().expect("lock").len() == hellos {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(agent);
}
