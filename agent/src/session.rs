//! The gRPC client side of the agent protocol: registration, the long-lived
//! session stream, heartbeats, and reconnecting with backoff and jitter.
//!
//! Each connection registers again (refreshing capacity, attributes and
//! versions under the saved identity), says hello, sends the newest report
//! of every task, then forwards reports as they change and applies each
//! desired set the control plane sends. Silence from the control plane for
//! [`LIVENESS_TIMEOUT`] ends the session and the agent reconnects.

use crate::engine::{Context, Supervisor};
use crate::state::Identity;
use berth_proto::agent::v1 as pb;
use pb::agent_service_client::AgentServiceClient;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// How often the agent sends a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// A session that hears nothing from the control plane this long is dropped.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between attempts to reach the control plane after a
/// network fault. With [`CONNECT_TIMEOUT`] it bounds how long an agent
/// stays away once the network is back: an attempt already under way
/// ends within the timeout, the next one starts within this (jittered to
/// 50-100 %, so many agents spread over two seconds instead of arriving
/// at once). Under 10 s in all.
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// Marks the session closed when it ends, however it ends.
struct SessionFlag<'a>(&'a Context);

impl Drop for SessionFlag<'_> {
    fn drop(&mut self) {
        self.0
            .session_open
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.0.metrics.set_connected(false);
    }
}

/// Aborts a spawned task when the session that owns it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often the engine is scanned for other instances' containers.
const FOREIGN_SCAN: Duration = Duration::from_secs(5);
/// How often a non-empty set of other instances is told again (an
/// instance only counts as lost once its timeout has passed).
const FOREIGN_RESEND: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause after an error an operator must fix (a refused join token, a
/// wrong instance secret): retrying sooner changes nothing.
const OPERATOR_BACKOFF: Duration = Duration::from_secs(30);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Cannot reach the control plane.
    #[error("cannot connect to the control plane at {url}")]
    Connect {
        /// Its address.
        url: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The control plane refused or failed a call.
    #[error("{}", describe(.0))]
    Rpc(#[from] tonic::Status),
    /// The control plane went silent or closed the stream.
    #[error("{0}")]
    Lost(String),
    /// The control plane issued a different identity than the saved one.
    #[error(
        "the control plane registered this agent as {got}, but it is {saved}; refusing to continue"
    )]
    IdentityChanged {
        /// Saved ARN.
        saved: String,
        /// ARN from the control plane.
        got: String,
    },
}

impl SessionError {
    /// Errors a retry cannot fix without an operator.
    fn needs_operator(&self) -> bool {
        matches!(self, SessionError::Rpc(s) if matches!(s.code(), tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument | tonic::Code::Unauthenticated | tonic::Code::PermissionDenied))
            || matches!(self, SessionError::IdentityChanged { .. })
    }
}

fn describe(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::Unauthenticated => format!(
            "the control plane refused this agent's join token: {}",
            s.message()
        ),
        tonic::Code::PermissionDenied => format!(
            "the control plane refused this agent's identity: {}",
            s.message()
        ),
        code => format!("the control plane answered {code}: {}", s.message()),
    }
}

/// What the agent registers, minus its identity.
#[derive(Debug, Clone)]
pub struct Registration {
    /// gRPC URL.
    pub url: String,
    /// The request, with `container_instance_arn` filled per attempt.
    pub request: pb::RegisterRequest,
    /// The join token, sent on every call.
    pub token: Option<crate::config::Token>,
    /// PEM CA bundle verifying the control plane's certificate.
    pub tls_ca: Option<crate::config::Pem>,
}

/// Adds `authorization: Bearer <join token>` to every call.
#[derive(Clone)]
pub struct JoinToken(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JoinToken(<redacted>)")
    }
}

impl tonic::service::Interceptor for JoinToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

type Client = AgentServiceClient<InterceptedService<Channel, JoinToken>>;

async fn connect(registration: &Registration) -> Result<Client, SessionError> {
    let url = registration.url.as_str();
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|source| SessionError::Connect {
            url: url.to_owned(),
            source,
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_keepalive(Some(Duration::from_secs(10)))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    if let Some(ca) = &registration.tls_ca {
        endpoint = endpoint
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(&ca.0)),
            )
            .map_err(|source| SessionError::Connect {
                url: url.to_owned(),
                source,
            })?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| SessionError::Connect {
            url: url.to_owned(),
            source,
        })?;
    let token = registration
        .token
        .as_ref()
        .and_then(|t| format!("Bearer {}", t.0).parse().ok());
    Ok(AgentServiceClient::with_interceptor(
        channel,
        JoinToken(token),
    ))
}

async fn register(
    client: &mut Client,
    registration: &Registration,
    saved: Option<&Identity>,
) -> Result<pb::RegisterResponse, SessionError> {
    let mut request = registration.request.clone();
    request.container_instance_arn = saved.map(|i| i.container_instance_arn.clone());
    request.instance_secret = saved.and_then(|i| i.instance_secret.clone());
    Ok(client.register(request).await?.into_inner())
}

/// Backoff with full jitter: a random wait in [base/2, base].
/// A wait between half of `base` and `base`, uniformly spread.
pub fn jittered(base: Duration) -> Duration {
    let r = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
    base / 2 + base / 2 * r / 1000
}

/// Registers until it succeeds (first start, no saved identity) and returns
/// the identity to save.
pub async fn first_registration(registration: &Registration, cluster: &str) -> Identity {
    let mut backoff = Duration::from_millis(500);
    loop {
        let attempt = async {
            let mut client = connect(registration).await?;
            register(&mut client, registration, None).await
        };
        match attempt.await {
            Ok(r) => {
                tracing::info!(container_instance = %r.container_instance_arn, cluster, "registered");
                return Identity {
                    container_instance_arn: r.container_instance_arn,
                    cluster: cluster.to_owned(),
                    instance_secret: Some(r.instance_secret),
                };
            }
            Err(e) => {
                let wait = if e.needs_operator() {
                    jittered(OPERATOR_BACKOFF)
                } else {
                    jittered(backoff)
                };
                tracing::error!(error = %e, retry_in = ?wait, "cannot register with the control plane");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Keeps a session open for the rest of the agent's life.
pub async fn run(ctx: Arc<Context>, supervisor: Arc<Supervisor>, registration: Registration) {
    let mut backoff = Duration::from_millis(250);
    loop {
        ctx.turned();
        let started = Instant::now();
        let result = serve(&ctx, &supervisor, &registration).await;
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(250);
        }
        let wait = match &result {
            Err(e) if e.needs_operator() => jittered(OPERATOR_BACKOFF),
            _ => jittered(backoff),
        };
        match result {
            Ok(()) => tracing::warn!(retry_in = ?wait, "session ended; reconnecting"),
            Err(e) => tracing::warn!(error = %e, retry_in = ?wait, "session lost; reconnecting"),
        }
        // Waiting is the loop turning, too (the watchdog must not fire
        // during a long pause for an operator's fix).
        let until = Instant::now() + wait;
        while Instant::now() < until {
            ctx.turned();
            tokio::time::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(5)),
            )
            .await;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Prints `berth-agent ready container-instance=<arn> metrics=<addr|off>`
/// to stdout once, when the first session opens, for scripts and tests
/// (logs go to stderr).
fn announce_ready(ctx: &Context) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write;
        let mut out = std::io::stdout();
        let metrics = ctx
            .metrics_addr
            .map_or_else(|| "off".to_owned(), |a| a.to_string());
        let _ = writeln!(
            out,
            "berth-agent ready container-instance={} metrics={metrics}",
            ctx.instance_arn
        );
        let _ = out.flush();
        ctx.notifier.ready("session open");
    });
}

async fn serve(
    ctx: &Context,
    supervisor: &Arc<Supervisor>,
    registration: &Registration,
) -> Result<(), SessionError> {
    let mut client = connect(registration).await?;
    let saved = ctx
        .state
        .identity()
        .map_err(|e| SessionError::Lost(format!("cannot read the agent's identity: {e}")))?
        .ok_or_else(|| SessionError::Lost("the agent's identity is missing".into()))?;
    let registered = register(&mut client, registration, Some(&saved)).await?;
    if registered.container_instance_arn != ctx.instance_arn {
        return Err(SessionError::IdentityChanged {
            saved: ctx.instance_arn.clone(),
            got: registered.container_instance_arn,
        });
    }
    if saved.instance_secret.as_deref() != Some(registered.instance_secret.as_str()) {
        // First registration since secrets exist, or the control plane lost
        // its state: keep the secret it issued now.
        ctx.state
            .save_identity(&Identity {
                instance_secret: Some(registered.instance_secret.clone()),
                ..saved
            })
            .map_err(|e| SessionError::Lost(format!("cannot save the agent's identity: {e}")))?;
    }
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(64);
    let hello = pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
            container_instance_arn: ctx.instance_arn.clone(),
            instance_secret: registered.instance_secret.clone(),
        })),
    };
    tx.send(hello)
        .await
        .map_err(|_| SessionError::Lost("session closed".into()))?;
    let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
    tracing::info!(container_instance = %ctx.instance_arn, "session open");
    announce_ready(ctx);
    ctx.session_open
        .store(true, std::sync::atomic::Ordering::Relaxed);
    ctx.metrics.set_connected(true);
    ctx.turned();
    let _closed = SessionFlag(ctx);

    let mut sent: HashMap<String, u64> = HashMap::new();
    let mut desired = DesiredView::default();
    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let send_reports = |sent: &mut HashMap<String, u64>| -> Vec<pb::AgentMessage> {
        ctx.reporter
            .unsent(sent)
            .into_iter()
            .map(|r| pb::AgentMessage {
                kind: Some(pb::agent_message::Kind::TaskState(r)),
            })
            .collect()
    };
    for m in send_reports(&mut sent) {
        tx.send(m)
            .await
            .map_err(|_| SessionError::Lost("session closed".into()))?;
    }
    // Containers of other instances on this engine (a previous identity of
    // this host): told to the control plane, which releases the lost ones.
    // Its own task: a Docker Engine that hangs must never stall the
    // session (heartbeats say how the engine is doing).
    let foreign = {
        let tx = tx.clone();
        let supervisor = supervisor.clone();
        tokio::spawn(async move {
            let mut scan = tokio::time::interval(FOREIGN_SCAN);
            let mut sent: Vec<String> = Vec::new();
            let mut sent_at = Instant::now();
            loop {
                scan.tick().await;
                let found = supervisor.foreign_instances().await;
                // Told when it changes, and again now and then: an instance
                // only counts as lost once its timeout has passed.
                if !found.is_empty() && (found != sent || sent_at.elapsed() > FOREIGN_RESEND) {
                    let m = pb::AgentMessage {
                        kind: Some(pb::agent_message::Kind::ForeignInstances(
                            pb::ForeignInstances {
                                container_instance_arns: found.clone(),
                            },
                        )),
                    };
                    if tx.send(m).await.is_err() {
                        return;
                    }
                    sent_at = Instant::now();
                }
                sent = found;
            }
        })
    };
    let _foreign = AbortOnDrop(foreign);
    loop {
        tokio::select! {
            message = inbound.message() => {
                last_heard = Instant::now();
                match message? {
                    None => return Err(SessionError::Lost("the control plane closed the session".into())),
                    Some(pb::ControlMessage { kind: Some(pb::control_message::Kind::ReleasedInstances(released)) }) => {
                        let supervisor = supervisor.clone();
                        tokio::spawn(async move {
                            supervisor.release(released.container_instance_arns).await;
                        });
                    }
                    Some(pb::ControlMessage { kind: Some(pb::control_message::Kind::DesiredTasks(change)) }) => {
                        let (generation, changed, partial) = (change.generation, change.tasks.len(), change.partial);
                        if let Some(set) = desired.apply(change).map_err(SessionError::Lost)? {
                            tracing::debug!(generation, changed, partial, tasks = set.tasks.len(), "desired task set");
                            supervisor.apply(set);
                        }
                    }
                    Some(_) => {}
                }
            }
            _ = ctx.reporter.changed() => {
                for m in send_reports(&mut sent) {
                    tx.send(m).await.map_err(|_| SessionError::Lost("session closed".into()))?;
                }
            }
            _ = heartbeat.tick() => {
                ctx.turned();
                if last_heard.elapsed() > LIVENESS_TIMEOUT {
                    return Err(SessionError::Lost(format!("no word from the control plane for {:?}", last_heard.elapsed())));
                }
                let hb = pb::AgentMessage {
                    kind: Some(pb::agent_message::Kind::Heartbeat(pb::Heartbeat {
                        sent_at_ms: crate::engine::now_ms(),
                        runtime: Some(ctx.runtime_health.to_proto()),
                    })),
                };
                tx.send(hb).await.map_err(|_| SessionError::Lost("session closed".into()))?;
            }
        }
    }
}

/// The whole desired set of one session, rebuilt from its first (whole)
/// message and the partial ones after it.
#[derive(Debug, Default)]
struct DesiredView {
    generation: u64,
    tasks: BTreeMap<String, pb::TaskSpec>,
}

impl DesiredView {
    /// Applies a message and returns the whole set after it; `None` for a
    /// stale message. A partial message that does not follow the last one is
    /// an error: the session must end so the next one starts whole.
    fn apply(&mut self, change: pb::DesiredTasks) -> Result<Option<pb::DesiredTasks>, String> {
        if change.generation <= self.generation {
            return Ok(None);
        }
        if change.partial {
            if change.generation != self.generation + 1 {
                return Err(format!(
                    "desired-set change {} does not follow {}; resynchronising",
                    change.generation, self.generation
                ));
            }
        } else {
            self.tasks.clear();
        }
        self.generation = change.generation;
        for arn in &change.removed_task_arns {
            self.tasks.remove(arn);
        }
        for t in change.tasks {
            self.tasks.insert(t.task_arn.clone(), t);
        }
        Ok(Some(pb::DesiredTasks {
            generation: self.generation,
            tasks: self.tasks.values().cloned().collect(),
            partial: false,
            removed_task_arns: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_waits_are_jittered_and_bounded_so_a_healed_network_is_back_within_10_s() {
        let mut waits: Vec<Duration> = (0..2000).map(|_| jittered(MAX_BACKOFF)).collect();
        waits.sort();
        assert!(waits[0] >= MAX_BACKOFF / 2);
        assert!(*waits.last().expect("waits") <= MAX_BACKOFF);
        // Spread over the window, not bunched: each quarter gets some.
        let quarter = MAX_BACKOFF / 8;
        for q in 0..4u32 {
            let lo = MAX_BACKOFF / 2 + quarter * q;
            let n = waits
                .iter()
                .filter(|w| **w >= lo && **w < lo + quarter)
                .count();
            assert!(n > 300, "quarter {q}: {n} of 2000");
        }
        // Worst case after the network heals: the attempt under way times
        // out, then one full wait, then a connect.
        assert!(CONNECT_TIMEOUT + MAX_BACKOFF < Duration::from_secs(10));
    }

    fn spec(arn: &str, status: pb::DesiredStatus) -> pb::TaskSpec {
        pb::TaskSpec {
            task_arn: arn.into(),
            desired_status: status as i32,
            ..Default::default()
        }
    }

    fn change(
        generation: u64,
        partial: bool,
        tasks: Vec<pb::TaskSpec>,
        removed: &[&str],
    ) -> pb::DesiredTasks {
        pb::DesiredTasks {
            generation,
            tasks,
            partial,
            removed_task_arns: removed.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn arns(set: &pb::DesiredTasks) -> Vec<(&str, i32)> {
        set.tasks
            .iter()
            .map(|t| (t.task_arn.as_str(), t.desired_status))
            .collect()
    }

    #[test]
    fn partial_changes_rebuild_the_whole_set() {
        use pb::DesiredStatus::{Running, Stopped};
        let mut view = DesiredView::default();
        let whole = change(1, false, vec![spec("a", Running), spec("b", Running)], &[]);
        let set = view.apply(whole).unwrap().unwrap();
        assert_eq!(arns(&set), [("a", Running as i32), ("b", Running as i32)]);

        let set = view
            .apply(change(
                2,
                true,
                vec![spec("c", Running), spec("a", Stopped)],
                &["b"],
            ))
            .unwrap()
            .unwrap();
        assert_eq!(arns(&set), [("a", Stopped as i32), ("c", Running as i32)]);
        assert!(!set.partial);

        // Stale messages change nothing; a gap ends the session.
        assert_eq!(view.apply(change(2, true, vec![], &["a"])).unwrap(), None);
        assert!(view.apply(change(4, true, vec![], &[])).is_err());

        // A whole set replaces everything.
        let set = view
            .apply(change(5, false, vec![spec("d", Running)], &[]))
            .unwrap()
            .unwrap();
        assert_eq!(arns(&set), [("d", Running as i32)]);
    }
}
