//! A simulated agent: speaks the real agent protocol (register, session,
//! desired sets, reports, heartbeats) without Docker. Tests script it step
//! by step ([`SimAgent::next_change`], [`SimAgent::report`]) or let it
//! carry out its desired set ([`SimAgent::apply`], [`SimAgent::autopilot`]);
//! the placement bench runs thousands of them.

use berth_proto::agent::v1 as pb;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// One simulated container instance with an open session.
#[derive(Debug)]
pub struct SimAgent {
    /// Its container-instance ARN.
    pub arn: String,
    /// The instance secret registration returned.
    pub secret: String,
    /// Messages to the control plane.
    pub outbound: mpsc::Sender<pb::AgentMessage>,
    /// Messages from it.
    pub inbound: tonic::Streaming<pb::ControlMessage>,
    /// The whole desired set as of the last message, by task ARN.
    pub view: BTreeMap<String, pb::TaskSpec>,
    /// Generation of the last desired-set message.
    pub generation: u64,
    /// The last status reported per task ARN.
    pub reported: BTreeMap<String, pb::TaskStatus>,
    /// Every task exits as soon as it runs ([`SimAgent::apply`] reports it
    /// RUNNING, then STOPPED): history piles up as it does in real life.
    pub exits: bool,
}

/// Opens a plaintext channel to a control plane's gRPC listener.
pub async fn channel(grpc: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .expect("url")
        .connect()
        .await
        .expect("connect to the control plane")
}

impl SimAgent {
    /// A registration with defaults: cluster `default`, reserved port 22.
    pub fn request() -> pb::RegisterRequest {
        pb::RegisterRequest {
            cluster: "default".into(),
            instance_id: "simulated".into(),
            cpu: 4096,
            memory_mib: 4096,
            reserved_tcp_ports: vec![22],
            ..Default::default()
        }
    }

    /// Registers with `cpu` units and `memory` MiB and opens a session.
    pub async fn connect(grpc: SocketAddr, cpu: i64, memory: i64) -> Self {
        let request = pb::RegisterRequest {
            cpu,
            memory_mib: memory,
            ..Self::request()
        };
        Self::register(channel(grpc).await, request).await
    }

    /// Registers with `request` over `channel` (sessions may share one)
    /// and opens a session.
    pub async fn register(channel: Channel, request: pb::RegisterRequest) -> Self {
        Self::try_register(channel, request)
            .await
            .expect("register and open a session")
    }

    /// [`SimAgent::register`], or why not (for reconnect loops).
    pub async fn try_register(
        channel: Channel,
        request: pb::RegisterRequest,
    ) -> Result<Self, tonic::Status> {
        let mut client = crate::agent_client(channel);
        let registered = client.register(request).await?.into_inner();
        let (tx, rx) = mpsc::channel(64);
        tx.send(pb::AgentMessage {
            kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
                container_instance_arn: registered.container_instance_arn.clone(),
                instance_secret: registered.instance_secret.clone(),
            })),
        })
        .await
        .map_err(|_| tonic::Status::unavailable("session channel closed"))?;
        let inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
        Ok(SimAgent {
            arn: registered.container_instance_arn,
            secret: registered.instance_secret,
            outbound: tx,
            inbound,
            view: BTreeMap::new(),
            generation: 0,
            reported: BTreeMap::new(),
            exits: false,
        })
    }

    /// The whole desired set after the next desired-set message
    /// (heartbeats skipped), with partial messages applied as an agent does.
    pub async fn desired(&mut self) -> pb::DesiredTasks {
        let change = self.next_change().await;
        pb::DesiredTasks {
            generation: change.generation,
            tasks: self.view.values().cloned().collect(),
            partial: false,
            removed_task_arns: Vec::new(),
        }
    }

    /// The next desired-set message as sent (waiting up to 10 s), after
    /// applying it to `view`; each partial one must follow the previous.
    pub async fn next_change(&mut self) -> pb::DesiredTasks {
        self.try_next_change(Duration::from_secs(10))
            .await
            .expect("a desired-set message in time")
    }

    /// Like [`SimAgent::next_change`], `None` if nothing comes within `wait`.
    pub async fn try_next_change(&mut self, wait: Duration) -> Option<pb::DesiredTasks> {
        loop {
            let msg = tokio::time::timeout(wait, self.inbound.message())
                .await
                .ok()?
                .expect("stream ok")
                .expect("stream open");
            if let Some(pb::control_message::Kind::DesiredTasks(d)) = msg.kind {
                self.absorb(&d);
                return Some(d);
            }
        }
    }

    /// Applies a desired-set message to `view` as an agent does: a whole
    /// set replaces it; a partial one must follow the last generation.
    fn absorb(&mut self, d: &pb::DesiredTasks) {
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
            // A task the control plane dropped is STOPPED: nothing to keep.
            if self.reported.get(arn) == Some(&pb::TaskStatus::Stopped) {
                self.reported.remove(arn);
            }
        }
        for t in &d.tasks {
            self.view.insert(t.task_arn.clone(), t.clone());
        }
    }

    /// Reports a task's status (its one container `app` follows it; a
    /// STOPPED one exits 0).
    pub async fn report(&self, task_arn: &str, status: pb::TaskStatus) {
        let containers = match self.view.get(task_arn) {
            Some(spec) if !spec.containers.is_empty() => {
                spec.containers.iter().map(|c| c.name.clone()).collect()
            }
            _ => vec!["app".to_owned()],
        };
        self.outbound
            .send(pb::AgentMessage {
                kind: Some(pb::agent_message::Kind::TaskState(pb::TaskStateReport {
                    task_arn: task_arn.into(),
                    last_status: status as i32,
                    containers: containers
                        .into_iter()
                        .map(|name| pb::ContainerStateReport {
                            name,
                            last_status: match status {
                                pb::TaskStatus::Running => pb::ContainerStatus::Running,
                                pb::TaskStatus::Stopped => pb::ContainerStatus::Stopped,
                                _ => pb::ContainerStatus::Pending,
                            } as i32,
                            runtime_id: Some("simulated".into()),
                            exit_code: (status == pb::TaskStatus::Stopped).then_some(0),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })),
            })
            .await
            .expect("report");
    }

    /// Carries out the desired set as it stands: every task not yet
    /// reported is reported RUNNING, every task to stop STOPPED. Returns
    /// how many reports it sent.
    pub async fn apply(&mut self) -> usize {
        let mut sent = 0;
        for (arn, spec) in self.view.clone() {
            let want = if spec.desired_status == pb::DesiredStatus::Stopped as i32 {
                pb::TaskStatus::Stopped
            } else {
                pb::TaskStatus::Running
            };
            let last = self.reported.get(&arn).copied();
            if last != Some(want) && last != Some(pb::TaskStatus::Stopped) {
                self.report(&arn, want).await;
                sent += 1;
                if want == pb::TaskStatus::Running && self.exits {
                    self.report(&arn, pb::TaskStatus::Stopped).await;
                    self.reported.insert(arn, pb::TaskStatus::Stopped);
                    sent += 1;
                } else {
                    self.reported.insert(arn, want);
                }
            }
        }
        sent
    }

    /// The task dies on its own (exits), as Docker would report it.
    pub async fn kill(&mut self, task_arn: &str) {
        self.report(task_arn, pb::TaskStatus::Stopped).await;
        self.reported
            .insert(task_arn.to_owned(), pb::TaskStatus::Stopped);
    }

    /// Tasks it last reported RUNNING.
    pub fn running(&self) -> Vec<String> {
        self.reported
            .iter()
            .filter(|(_, s)| **s == pb::TaskStatus::Running)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Runs forever: carries out every desired set and sends heartbeats;
    /// `on_report` is called per report sent. Ends when the session does.
    pub async fn autopilot(mut self, on_report: impl Fn(usize)) {
        let mut heartbeat = tokio::time::interval(Duration::from_secs(3));
        loop {
            tokio::select! {
                message = self.inbound.message() => {
                    let Ok(Some(message)) = message else { return };
                    if let Some(pb::control_message::Kind::DesiredTasks(d)) = message.kind {
                        self.absorb(&d);
                        let sent = self.apply().await;
                        on_report(sent);
                    }
                }
                _ = heartbeat.tick() => {
                    let hb = pb::AgentMessage {
                        kind: Some(pb::agent_message::Kind::Heartbeat(pb::Heartbeat { sent_at_ms: 0, runtime: None })),
                    };
                    if self.outbound.send(hb).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
