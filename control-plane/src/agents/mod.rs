//! The agent-facing gRPC service (`berth.agent.v1.AgentService`):
//! registration, the session stream, state reports and liveness.
//!
//! A session lives as long as its stream. The control plane sends the
//! desired task set on open and whenever it changes, and a heartbeat every
//! [`HEARTBEAT`]; it ends the session (the instance shows
//! `agentConnected: false`) when the stream closes or nothing arrives from
//! the agent for [`LIVENESS_TIMEOUT`]. Placement decisions never happen here.

mod convert;

use crate::app::{ControlPlane, Error};
use crate::auth::{JoinToken, Shared};
use berth_proto::agent::v1 as pb;
use futures_util::StreamExt;
use pb::agent_message::Kind as AgentKind;
use pb::agent_service_server::AgentService;
use pb::control_message::Kind as ControlKind;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

pub use pb::agent_service_server::AgentServiceServer;

/// How often the control plane sends a heartbeat on each session.
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// A session that receives nothing for this long is closed.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The tonic service; clone-cheap.
#[derive(Debug, Clone)]
pub struct Agents {
    app: Arc<ControlPlane>,
    join_token: Option<Arc<Shared<JoinToken>>>,
}

impl Agents {
    /// Serves `app` to agents. With `join_token` (also checked by
    /// [`join_token_check`] on every call), an open session ends once the
    /// token it presented is no longer accepted (rotated out by SIGHUP).
    pub fn new(app: Arc<ControlPlane>, join_token: Option<Arc<Shared<JoinToken>>>) -> Self {
        Agents { app, join_token }
    }
}

/// The bearer token of a call, if any.
fn bearer<T>(request: &Request<T>) -> Option<&str> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The interceptor in front of the agent service: with a join token, every
/// call must carry `authorization: Bearer <token>`.
pub fn join_token_check(
    token: Option<Arc<Shared<JoinToken>>>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| {
        let Some(token) = token.as_ref().map(|t| t.get()) else {
            return Ok(request);
        };
        let presented = bearer(&request);
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        match presented {
            Some(p) if token.accepts(p) => Ok(request),
            Some(_) => {
                tracing::warn!(%peer, "agent refused: wrong join token");
                Err(Status::unauthenticated(
                    "the join token is wrong: give the agent the control plane's agent token (--agent-token-file)",
                ))
            }
            None => {
                tracing::warn!(%peer, "agent refused: no join token");
                Err(Status::unauthenticated(
                    "this control plane requires a join token: start the agent with --agent-token-file",
                ))
            }
        }
    }
}

fn status(e: Error) -> Status {
    use crate::validate::ValidationKind;
    match &e {
        Error::Validation(v) if v.kind == ValidationKind::Client => {
            Status::failed_precondition(e.to_string())
        }
        Error::Validation(_) => Status::invalid_argument(e.to_string()),
        Error::ClusterNotFound(_) => Status::not_found(e.to_string()),
        Error::PermissionDenied(_) => Status::permission_denied(e.to_string()),
        _ => {
            tracing::error!(error = %e, "agent request failed");
            Status::internal("internal error in the control plane; see its log")
        }
    }
}

type ControlStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<pb::ControlMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for Agents {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let req = convert::register(request.into_inner()).map_err(Status::invalid_argument)?;
        let registered = self.app.register_instance(req).await.map_err(status)?;
        Ok(Response::new(pb::RegisterResponse {
            container_instance_arn: registered.container_instance_arn,
            cluster_arn: registered.cluster_arn,
            instance_secret: registered.instance_secret.expose().to_owned(),
        }))
    }

    type SessionStream = ControlStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let presented = bearer(&request).map(str::to_owned);
        let join_token = self.join_token.clone();
        let admitted: Admitted = Box::new(move || match &join_token {
            None => true,
            Some(t) => presented.as_deref().is_some_and(|p| t.get().accepts(p)),
        });
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.next())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 10 seconds"))?;
        let hello = match first {
            Some(Ok(pb::AgentMessage {
                kind: Some(AgentKind::Hello(hello)),
            })) => hello,
            Some(Err(s)) => return Err(s),
            _ => {
                return Err(Status::invalid_argument(
                    "the first session message must be hello",
                ));
            }
        };
        let handle = self
            .app
            .open_session(&hello.container_instance_arn, &hello.instance_secret)
            .map_err(status)?;
        let (tx, rx) = mpsc::channel(16);
        let span = tracing::info_span!("agent_session", container_instance = %handle.instance_id, session = handle.session);
        tokio::spawn(run_session(self.app.clone(), handle, inbound, tx, admitted).instrument(span));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Whether the token a session opened with is still accepted.
type Admitted = Box<dyn Fn() -> bool + Send>;

/// Drives one session until the agent goes away.
async fn run_session(
    app: Arc<ControlPlane>,
    mut handle: crate::app::SessionHandle,
    mut inbound: Streaming<pb::AgentMessage>,
    tx: mpsc::Sender<Result<pb::ControlMessage, Status>>,
    admitted: Admitted,
) {
    let instance = handle.instance_id.clone();
    let mut last_seen = Instant::now();
    let mut sent_generation = 0u64;
    let mut generation_counter = 0u64;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut liveness = tokio::time::interval(Duration::from_secs(1));
    let mut dirty = true;
    let mut sent = crate::app::SentTasks::default();
    loop {
        if dirty {
            dirty = false;
            if app.desired_generation(&instance) != Some(sent_generation) {
                let Some(set) = app.desired_set(&instance, &mut sent) else {
                    tracing::info!("container instance deregistered; ending the session");
                    break;
                };
                sent_generation = set.generation;
                generation_counter += 1;
                tracing::debug!(
                    tasks = set.tasks.len(),
                    removed = set.removed.len(),
                    partial = set.partial,
                    generation = generation_counter,
                    "sending the desired task set"
                );
                let msg = convert::desired_tasks(generation_counter, set);
                if tx.send(Ok(msg)).await.is_err() {
                    break;
                }
            }
        }
        tokio::select! {
            msg = inbound.next() => match msg {
                Some(Ok(msg)) => {
                    last_seen = Instant::now();
                    match msg.kind {
                        Some(AgentKind::TaskState(report)) => {
                            let report = convert::task_report(report);
                            if let Err(e) = app.apply_report(&instance, report).await {
                                tracing::warn!(error = %e, "task report refused");
                            }
                        }
                        Some(AgentKind::ForeignInstances(foreign)) => {
                            match app.release_foreign(&instance, &foreign.container_instance_arns).await {
                                Ok(released) if !released.is_empty() => {
                                    let msg = pb::ControlMessage {
                                        kind: Some(ControlKind::ReleasedInstances(pb::ReleasedInstances {
                                            container_instance_arns: released,
                                        })),
                                    };
                                    if tx.send(Ok(msg)).await.is_err() {
                                        break;
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => tracing::warn!(error = %e, "cannot release lost instances"),
                            }
                        }
                        Some(AgentKind::Heartbeat(hb)) => {
                            if let Some(r) = hb.runtime {
                                app.record_runtime_health(
                                    &instance,
                                    r.status != "IMPAIRED",
                                    r.detail,
                                    crate::model::Timestamp::from_millis(r.since_ms),
                                );
                            }
                        }
                        Some(AgentKind::Hello(_)) | None => {
                            tracing::warn!("unexpected message on an open session");
                        }
                    }
                }
                Some(Err(s)) => {
                    tracing::info!(code = ?s.code(), message = s.message(), "session stream failed");
                    break;
                }
                None => break,
            },
            changed = handle.changes.changed() => {
                if changed.is_err() {
                    break;
                }
                dirty = true;
            }
            _ = heartbeat.tick() => {
                let hb = pb::ControlMessage { kind: Some(ControlKind::Heartbeat(pb::Heartbeat { sent_at_ms: now_ms(), runtime: None })) };
                if tx.send(Ok(hb)).await.is_err() {
                    break;
                }
                if !app.session_current(&instance, handle.session) {
                    tracing::info!("session superseded or instance deregistered");
                    break;
                }
                if !admitted() {
                    tracing::warn!("the join token this session presented is no longer accepted; ending the session");
                    let _ = tx.send(Err(Status::unauthenticated("the join token this agent presented was revoked"))).await;
                    break;
                }
                // A deregistration or a change missed while busy still gets sent.
                dirty = true;
            }
            _ = liveness.tick() => {
                if last_seen.elapsed() > LIVENESS_TIMEOUT {
                    tracing::warn!(silent_for = ?last_seen.elapsed(), "no message from the agent; closing the session");
                    break;
                }
            }
            _ = tx.closed() => break,
        }
    }
    app.close_session(&instance, handle.session);
}

fn now_ms() -> i64 {
    crate::model::Timestamp::now().as_millis()
}
