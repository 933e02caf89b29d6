//! One state machine per task: pull -> create -> start -> running ->
//! stopping -> stopped, with ECS's essential-container rule. Each engine is
//! a tokio task that alone owns its task's state; it learns what to do from
//! a watch of the desired status and from Docker events routed to it, and
//! publishes every transition at once (sub-second reporting).
//!
//! Every step is idempotent so the same code both starts fresh tasks and
//! resumes ones recovered after an agent restart: a container with an id is
//! not created again, a started one is not started again.

pub mod events;
mod report;
mod supervisor;

pub use events::{ContainerEvent, Routes};
pub use report::Reporter;
pub use supervisor::Supervisor;

use crate::network;
use crate::runtime::{INSTANCE_LABEL, Runtime, RuntimeError};
use crate::state::{AgentState, ContainerRecord};
use berth_proto::agent::v1 as pb;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, HostConfig,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What every engine shares.
#[derive(Debug)]
pub struct Context {
    /// Docker.
    pub runtime: Runtime,
    /// The agent's database.
    pub state: AgentState,
    /// Reports waiting for the session.
    pub reporter: Reporter,
    /// Docker event routing.
    pub routes: Routes,
    /// This agent's container-instance ARN (labels every container).
    pub instance_arn: String,
    /// Stop timeout for containers whose definition sets none.
    pub default_stop_timeout: Duration,
    /// Task cgroups for task-level CPU and memory.
    pub cgroups: crate::cgroup::TaskCgroups,
    /// How assigned GPUs reach containers.
    pub gpu_access: crate::config::GpuAccess,
    /// Root of environment files named by S3 ARNs.
    pub env_files_dir: std::path::PathBuf,
    /// When images are pulled.
    pub pull_behavior: crate::config::PullBehavior,
    /// Root of registry credential files.
    pub registry_credentials_dir: std::path::PathBuf,
    /// Root of secret files.
    pub secrets_dir: std::path::PathBuf,
    /// Whether the Docker Engine answers (sent with every heartbeat).
    pub runtime_health: RuntimeHealth,
    /// systemd's notification socket, when run by systemd.
    pub notifier: berth_proto::systemd::Notifier,
    /// Unix ms of the session loop's (or the reconnect loop's) last turn:
    /// the systemd watchdog pings only while it is recent.
    pub loop_turned: std::sync::atomic::AtomicI64,
    /// Whether a session is open (for `STATUS=`).
    pub session_open: std::sync::atomic::AtomicBool,
    /// The agent's metrics (also held by `runtime`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where /metrics, /healthz and /readyz are served (for the ready line).
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Context {
    /// Marks a turn of the agent's main loop.
    pub fn turned(&self) {
        self.loop_turned
            .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// Under systemd: `STATUS=` every few seconds and, with `WatchdogSec=`,
/// `WATCHDOG=1` at half the interval, only while the session (or
/// reconnect) loop turns: a stuck session stops the pings.
pub async fn watchdog(ctx: std::sync::Arc<Context>, supervisor: std::sync::Arc<Supervisor>) {
    if !ctx.notifier.enabled() {
        return;
    }
    let every = ctx
        .notifier
        .watchdog_interval()
        .unwrap_or(Duration::from_secs(10))
        .min(Duration::from_secs(10));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let last = ctx.loop_turned.load(std::sync::atomic::Ordering::Relaxed);
        if berth_proto::systemd::turning(last, now_ms(), Duration::from_secs(15)) {
            ctx.notifier.watchdog();
            let docker = if ctx.runtime_health.ok() {
                ""
            } else {
                "; Docker Engine not answering"
            };
            let session = if ctx.session_open.load(std::sync::atomic::Ordering::Relaxed) {
                "session open"
            } else {
                "reconnecting to the control plane"
            };
            ctx.notifier.status(&format!(
                "{session}, {} tasks{docker}",
                supervisor.task_count()
            ));
        } else {
            tracing::error!(
                "the agent's session loop is stuck: withholding the systemd watchdog ping"
            );
        }
    }
}

/// The Docker Engine's health as the agent's probe last saw it.
#[derive(Debug)]
pub struct RuntimeHealth(std::sync::Mutex<(bool, String, i64)>);

impl Default for RuntimeHealth {
    fn default() -> Self {
        RuntimeHealth(std::sync::Mutex::new((true, String::new(), now_ms())))
    }
}

impl RuntimeHealth {
    /// Records a probe; logs a change.
    pub fn set(&self, ok: bool, detail: String) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if h.0 != ok {
            if ok {
                tracing::info!("the Docker Engine answers again");
            } else {
                tracing::error!(detail = %detail, "the Docker Engine is not answering");
            }
            *h = (ok, detail, now_ms());
        } else {
            h.1 = detail;
        }
    }

    /// Whether it answered the last probe.
    pub fn ok(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// As the protocol carries it.
    pub fn to_proto(&self) -> berth_proto::agent::v1::RuntimeHealth {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        berth_proto::agent::v1::RuntimeHealth {
            status: if h.0 { "OK" } else { "IMPAIRED" }.to_owned(),
            detail: h.1.clone(),
            since_ms: h.2,
        }
    }
}

/// How often the agent pings its Docker Engine.
pub const RUNTIME_PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long a ping may take before the engine counts as not answering.
pub const RUNTIME_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Pings the engine forever, recording whether it answers.
pub async fn probe_runtime(ctx: std::sync::Arc<Context>) {
    let mut tick = tokio::time::interval(RUNTIME_PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match ctx.runtime.ping(RUNTIME_PROBE_TIMEOUT).await {
            Ok(()) => ctx.runtime_health.set(true, String::new()),
            Err(e) => ctx.runtime_health.set(false, format!("Docker Engine: {e}")),
        }
    }
}

/// The credentials `parameter` names: a plain name, or a Secrets Manager ARN
/// (`...:secret:NAME`), read from `<dir>/NAME.json` as
/// `{"username": ..., "password": ...}` (the shape of ECS's secret).
fn registry_credentials(
    dir: &std::path::Path,
    parameter: &str,
    image: &str,
) -> Result<crate::runtime::DockerCredentials, String> {
    let name = parameter
        .split_once(":secret:")
        .map_or(parameter, |(_, n)| n);
    let path = host_file(dir, &format!("{name}.json")).ok_or_else(|| {
        format!("registry credentials '{parameter}' do not name a credential file")
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read registry credentials '{parameter}' from {}: {e}",
            path.display()
        )
    })?;
    #[derive(serde::Deserialize)]
    struct Secret {
        username: String,
        password: String,
    }
    let secret: Secret = serde_json::from_str(&text).map_err(|e| {
        format!(
            "registry credentials file {} is not {{\"username\": ..., \"password\": ...}}: {e}",
            path.display()
        )
    })?;
    // The registry host, when the reference names one.
    let first = image.split('/').next().unwrap_or_default();
    let server = (image.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost"))
        .then(|| first.to_owned());
    Ok(crate::runtime::DockerCredentials {
        username: Some(secret.username),
        password: Some(secret.password),
        serveraddress: server,
        ..Default::default()
    })
}

/// `<dir>/<name>` for a name a task definition gives: relative, without
/// empty, `.` or `..` parts, so it cannot leave `dir`.
fn host_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    let inside = !name.is_empty()
        && !name.starts_with('/')
        && !name
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    inside.then(|| dir.join(name))
}

/// Docker's cgroup permission string (`rwm`) for ECS's device permissions;
/// none given means all.
fn device_permissions(permissions: &[String]) -> String {
    if permissions.is_empty() {
        return "rwm".to_owned();
    }
    [("read", 'r'), ("write", 'w'), ("mknod", 'm')]
        .iter()
        .filter(|(p, _)| permissions.iter().any(|g| g == p))
        .map(|(_, c)| *c)
        .collect()
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One container of the task, as the engine tracks it.
#[derive(Debug, Clone)]
struct ContainerRun {
    spec: pb::ContainerSpec,
    docker_name: String,
    id: Option<String>,
    status: pb::ContainerStatus,
    started: bool,
    exit_code: Option<i32>,
    reason: Option<String>,
    bindings: Vec<pb::NetworkBinding>,
    image_digest: Option<String>,
    oom: bool,
    /// `NAME=value` list: environment files, then `environment` (which wins).
    env: Vec<String>,
    /// Docker's health verdict (`healthy`, `unhealthy`, `starting`), for
    /// containers with a health check.
    health: Option<String>,
}

impl ContainerRun {
    /// A container not yet seen running.
    fn new(spec: pb::ContainerSpec, docker_name: String, id: Option<String>) -> Self {
        ContainerRun {
            spec,
            docker_name,
            id,
            status: pb::ContainerStatus::Pending,
            started: false,
            exit_code: None,
            reason: None,
            bindings: Vec::new(),
            image_digest: None,
            oom: false,
            env: Vec::new(),
            health: None,
        }
    }

    fn stopped(&self) -> bool {
        self.status == pb::ContainerStatus::Stopped
    }

    /// ECS's container `healthStatus`; `None` without a health check.
    fn health_status(&self) -> Option<&'static str> {
        self.spec.health_check.as_ref()?;
        Some(match self.health.as_deref() {
            Some("healthy") if !self.stopped() => "HEALTHY",
            Some("unhealthy") => "UNHEALTHY",
            _ => "UNKNOWN",
        })
    }
}

/// ECS's task `healthStatus` from its essential containers with health
/// checks: UNHEALTHY if any is, HEALTHY if all are, else UNKNOWN.
fn task_health(containers: &[ContainerRun]) -> &'static str {
    let verdicts: Vec<&str> = containers
        .iter()
        .filter(|c| c.spec.essential)
        .filter_map(ContainerRun::health_status)
        .collect();
    if verdicts.contains(&"UNHEALTHY") {
        "UNHEALTHY"
    } else if !verdicts.is_empty() && verdicts.iter().all(|v| *v == "HEALTHY") {
        "HEALTHY"
    } else {
        "UNKNOWN"
    }
}

/// Whether container `i`'s dependencies hold: `Ok(true)` yes, `Ok(false)`
/// not yet, `Err` never will (the reason).
fn dependencies_met(containers: &[ContainerRun], i: usize) -> Result<bool, String> {
    let mut met = true;
    for dep in &containers[i].spec.depends_on {
        let Some(d) = containers.iter().find(|c| c.spec.name == dep.container) else {
            continue;
        };
        let name = &d.spec.name;
        let exited = d.stopped();
        let this = match dep.condition.as_str() {
            "COMPLETE" => exited,
            "SUCCESS" => match (exited, d.exit_code) {
                (true, Some(0)) => true,
                (true, code) => {
                    return Err(format!(
                        "'{name}' had to exit successfully (SUCCESS) but {}",
                        code.map_or("did not run".to_owned(), |c| format!(
                            "exited with code {c}"
                        ))
                    ));
                }
                (false, _) => false,
            },
            "HEALTHY" => match d.health.as_deref() {
                Some("healthy") if !exited => true,
                Some("unhealthy") => {
                    return Err(format!("'{name}' had to be HEALTHY but is unhealthy"));
                }
                _ if exited => {
                    return Err(format!("'{name}' had to be HEALTHY but exited"));
                }
                _ => false,
            },
            // START
            _ => d.started,
        };
        if !this && exited && !d.started {
            return Err(format!("'{name}' never started"));
        }
        met &= this;
    }
    Ok(met)
}

/// Docker's name for a container: `ecs-<family>-<revision>-<name>-<20 hex>`,
/// as the ECS agent names them; the suffix keeps copies apart.
fn docker_name(spec: &pb::TaskSpec, container: &str) -> String {
    let clean: String = container
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..20];
    format!("ecs-{}-{}-{clean}-{suffix}", spec.family, spec.revision)
}

/// A container's `NAME=value` environment: its environment files in order
/// (a later file overrides an earlier one), then `environment`, then
/// `secrets` (each later source wins by name). Files are `VAR=VALUE` lines;
/// blank lines, `#` comments and lines without `=` are skipped. An S3 ARN
/// `arn:aws:s3:::bucket/key.env` is read from `<env_files_dir>/bucket/key.env`;
/// an absolute path as it is. Secrets are read as [`secret`] says.
fn environment(
    env_files_dir: &std::path::Path,
    secrets_dir: &std::path::Path,
    c: &pb::ContainerSpec,
) -> Result<Vec<String>, String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: &str| match vars.iter_mut().find(|(n, _)| n == name) {
        Some(existing) => existing.1 = value.to_owned(),
        None => vars.push((name.to_owned(), value.to_owned())),
    };
    for f in &c.environment_files {
        let path = match f.value.strip_prefix("arn:") {
            Some(_) => {
                let object = f.value.splitn(6, ':').nth(5).unwrap_or_default();
                env_files_dir.join(object)
            }
            None => std::path::PathBuf::from(&f.value),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read environment file {} ({}): {e}",
                f.value,
                path.display()
            )
        })?;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => set(name.trim(), value),
                _ => {
                    tracing::warn!(file = %path.display(), line, "skipping a line that is not VAR=VALUE")
                }
            }
        }
    }
    for kv in &c.environment {
        set(&kv.name, &kv.value);
    }
    for s in &c.secrets {
        set(&s.name, &secret(secrets_dir, &s.value_from)?);
    }
    Ok(vars.into_iter().map(|(n, v)| format!("{n}={v}")).collect())
}

/// The value of a secret: `valueFrom` is an SSM parameter ARN
/// (`...:parameter/NAME`), a Secrets Manager ARN (`...:secret:NAME`, with an
/// optional `:json-key[:stage:version]` taking that key of a JSON object), or
/// a parameter name; the value is the file `<dir>/NAME` without one trailing
/// newline. Errors name the file, never the value.
fn secret(dir: &std::path::Path, value_from: &str) -> Result<String, String> {
    let (name, key) = if let Some((_, rest)) = value_from.split_once(":parameter/") {
        (rest, None)
    } else if let Some((_, rest)) = value_from.split_once(":secret:") {
        let mut parts = rest.split(':');
        let name = parts.next().unwrap_or_default();
        (name, parts.next().filter(|k| !k.is_empty()))
    } else {
        (value_from.trim_start_matches('/'), None)
    };
    let path = host_file(dir, name)
        .ok_or_else(|| format!("secret '{value_from}' does not name a file"))?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read secret '{value_from}' from {}: {e}",
            path.display()
        )
    })?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    match key {
        None => Ok(text.to_owned()),
        Some(key) => {
            let object: serde_json::Value = serde_json::from_str(text).map_err(|_| {
                format!(
                    "secret file {} is not a JSON object (its key '{key}' was asked for)",
                    path.display()
                )
            })?;
            match object.get(key) {
                Some(serde_json::Value::String(v)) => Ok(v.clone()),
                Some(other) => Ok(other.to_string()),
                None => Err(format!("secret file {} has no key '{key}'", path.display())),
            }
        }
    }
}

/// How assigned GPUs reach a container: `NVIDIA_VISIBLE_DEVICES` always, and
/// Docker device requests or the nvidia runtime depending on the agent's
/// `gpu-access`.
fn gpus(
    access: crate::config::GpuAccess,
    ids: &[String],
    env: &mut Vec<String>,
) -> (Option<Vec<bollard::models::DeviceRequest>>, Option<String>) {
    use crate::config::GpuAccess;
    if ids.is_empty() {
        return (None, None);
    }
    env.retain(|v| !v.starts_with("NVIDIA_VISIBLE_DEVICES="));
    env.push(format!("NVIDIA_VISIBLE_DEVICES={}", ids.join(",")));
    match access {
        GpuAccess::DeviceRequests => (
            Some(vec![bollard::models::DeviceRequest {
                driver: Some("nvidia".to_owned()),
                device_ids: Some(ids.to_vec()),
                capabilities: Some(vec![vec!["gpu".to_owned()]]),
                ..Default::default()
            }]),
            None,
        ),
        GpuAccess::NvidiaRuntime => (None, Some("nvidia".to_owned())),
        GpuAccess::Env => (None, None),
    }
}

/// How an engine ended.
#[derive(Debug)]
pub enum Outcome {
    /// The task reached STOPPED; this is its final report.
    Finished(Box<pb::TaskStateReport>),
    /// The agent is shutting down; the task keeps running.
    Detached,
}

/// The state machine of one task.
#[derive(Debug)]
pub struct TaskEngine {
    ctx: Arc<Context>,
    spec: pb::TaskSpec,
    desired: watch::Receiver<pb::DesiredStatus>,
    events: mpsc::UnboundedReceiver<(String, ContainerEvent)>,
    events_tx: events::EventSender,
    containers: Vec<ContainerRun>,
    status: pb::TaskStatus,
    pull_started_at: Option<i64>,
    pull_stopped_at: Option<i64>,
    execution_stopped_at: Option<i64>,
    stop_code: Option<String>,
    stopped_reason: Option<String>,
    /// Whether containers were recorded by an earlier run of the agent.
    resumed: bool,
    /// The task cgroup its containers run under (task-level limits).
    cgroup_parent: Option<String>,
    /// awsvpc: the pause container holding the task's network namespace
    /// (its Docker name, and its id once created).
    pause: Option<ContainerRecord>,
    /// awsvpc: the task's interface, once the pause container runs.
    network: Option<pb::TaskNetwork>,
    /// When this agent accepted the task, until it runs (for the start
    /// duration metric); `None` for a task resumed after a restart.
    accepted: Option<std::time::Instant>,
}

/// The name under which an awsvpc task's pause container is recorded.
const PAUSE_RECORD: &str = "~pause";

impl TaskEngine {
    /// An engine for `spec`; `recorded` are containers a previous run of the
    /// agent recorded (empty for a new task).
    pub fn new(
        ctx: Arc<Context>,
        spec: pb::TaskSpec,
        recorded: &[(String, ContainerRecord)],
        desired: watch::Receiver<pb::DesiredStatus>,
    ) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        // A recovered task waits with an unspecified desired status.
        let accepted = (recorded.is_empty() && *desired.borrow() != pb::DesiredStatus::Unspecified)
            .then(std::time::Instant::now);
        let containers = spec
            .containers
            .iter()
            .map(|c| {
                let record = recorded.iter().find(|(n, _)| *n == c.name).map(|(_, r)| r);
                ContainerRun::new(
                    c.clone(),
                    record.map_or_else(|| docker_name(&spec, &c.name), |r| r.docker_name.clone()),
                    record.and_then(|r| r.docker_id.clone()),
                )
            })
            .collect();
        TaskEngine {
            ctx,
            spec,
            desired,
            events,
            events_tx,
            containers,
            status: pb::TaskStatus::Pending,
            pull_started_at: None,
            pull_stopped_at: None,
            execution_stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            resumed: !recorded.is_empty(),
            cgroup_parent: None,
            pause: recorded
                .iter()
                .find(|(n, _)| n == PAUSE_RECORD)
                .map(|(_, r)| r.clone()),
            network: None,
            accepted,
        }
    }

    fn task(&self) -> &str {
        &self.spec.task_arn
    }

    /// The id part of the task ARN.
    fn task_id(&self) -> String {
        self.spec
            .task_arn
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// `Unspecified` means "not known yet" (a task recovered after a restart
    /// before the control plane said what it wants): neither start nor stop.
    fn desired_running(&self) -> bool {
        *self.desired.borrow() == pb::DesiredStatus::Running
    }

    fn desired_stopped(&self) -> bool {
        *self.desired.borrow() == pb::DesiredStatus::Stopped
    }

    fn stop_needed(&self) -> bool {
        self.desired_stopped() || self.stop_code.is_some()
    }

    /// Drives the task until it is STOPPED (or the agent shuts down).
    pub async fn run(mut self) -> Outcome {
        if self.resumed {
            self.recover().await;
        }
        self.publish();
        loop {
            if self.status == pb::TaskStatus::Stopped {
                break;
            }
            if self.stop_needed() {
                self.stop_all().await;
                continue;
            }
            if self.status == pb::TaskStatus::Pending && self.desired_running() {
                self.start().await;
                if self.status == pb::TaskStatus::Running || self.stop_needed() {
                    continue;
                }
            }
            tokio::select! {
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        return Outcome::Detached;
                    }
                }
                Some((id, event)) = self.events.recv() => self.on_event(&id, event).await,
            }
        }
        self.finish()
    }

    /// Re-reads what Docker has of containers recorded before a restart.
    async fn recover(&mut self) {
        for i in 0..self.containers.len() {
            let lookup = self.containers[i]
                .id
                .clone()
                .unwrap_or_else(|| self.containers[i].docker_name.clone());
            match self.ctx.runtime.inspect(&lookup).await {
                Ok(Some(info)) => {
                    let id = info.id.clone().unwrap_or_default();
                    self.adopt(i, &id);
                    self.apply_inspect(i, &info);
                }
                Ok(None) if self.containers[i].id.is_some() => {
                    let c = &mut self.containers[i];
                    c.status = pb::ContainerStatus::Stopped;
                    c.reason = Some(
                        "The container was removed outside Berth while the agent was down."
                            .to_owned(),
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(task = %self.spec.task_arn, error = %e, "cannot inspect a recovered container")
                }
            }
        }
        if self.containers.iter().all(|c| c.started || c.stopped())
            && self.containers.iter().any(|c| c.started)
        {
            self.status = pb::TaskStatus::Running;
        }
        self.check_essential();
        tracing::info!(task = %self.spec.task_arn, status = ?self.status, "task recovered");
    }

    fn adopt(&mut self, i: usize, id: &str) {
        if self.containers[i].id.as_deref() != Some(id) {
            self.containers[i].id = Some(id.to_owned());
            let record = ContainerRecord {
                docker_name: self.containers[i].docker_name.clone(),
                docker_id: Some(id.to_owned()),
            };
            if let Err(e) = self.ctx.state.save_container(
                &self.spec.task_arn,
                &self.containers[i].spec.name,
                &record,
            ) {
                tracing::error!(error = %e, "cannot record a container id");
            }
        }
        self.ctx.routes.insert(id, self.events_tx.clone());
    }

    /// Pulls, creates and starts whatever is not done yet. Returns with the
    /// task RUNNING, or with a stop decided (`stop_code`), or when the
    /// desired status turned STOPPED.
    async fn start(&mut self) {
        // Images, once per distinct image.
        let mut ready: HashMap<String, Option<String>> = HashMap::new();
        for i in 0..self.containers.len() {
            if self.containers[i].id.is_some() || self.containers[i].stopped() {
                continue;
            }
            let image = self.containers[i].spec.image.clone();
            if let Some(digest) = ready.get(&image) {
                self.containers[i].image_digest = digest.clone();
                continue;
            }
            let before = now_ms();
            let credentials = match self.containers[i].spec.repository_credentials.as_deref() {
                None => None,
                Some(parameter) => {
                    match registry_credentials(
                        &self.ctx.registry_credentials_dir,
                        parameter,
                        &image,
                    ) {
                        Ok(c) => Some(c),
                        Err(message) => {
                            return self.fail_start_text(
                                i,
                                "ResourceInitializationError",
                                &message,
                            );
                        }
                    }
                }
            };
            match self
                .ctx
                .runtime
                .ensure_image(&image, self.ctx.pull_behavior, credentials)
                .await
            {
                Ok(r) => {
                    if let Err(e) = self.ctx.state.image_used(&image, r.pulled, now_ms()) {
                        tracing::warn!(image = %image, error = %e, "cannot record an image's use");
                    }
                    if r.pulled {
                        self.pull_started_at.get_or_insert(before);
                        self.pull_stopped_at = Some(now_ms());
                    }
                    self.containers[i].image_digest = r.digest.clone();
                    ready.insert(image, r.digest);
                }
                Err(e) => return self.fail_start(i, "CannotPullContainerError", &e),
            }
            if !self.desired_running() {
                return;
            }
        }
        // Task-level limits: a cgroup all the task's containers run under.
        if (self.spec.cpu.is_some() || self.spec.memory_mib.is_some())
            && self.cgroup_parent.is_none()
        {
            match self
                .ctx
                .cgroups
                .ensure(&self.task_id(), self.spec.cpu, self.spec.memory_mib)
            {
                Ok(parent) => self.cgroup_parent = Some(parent),
                Err(e) => {
                    return self.fail_start_text(0, "ResourceInitializationError", &e.to_string());
                }
            }
        }
        // Environment: files first (a later file overrides an earlier one),
        // then the container's environment, then its secrets.
        for i in 0..self.containers.len() {
            if self.containers[i].id.is_some() || self.containers[i].stopped() {
                continue;
            }
            match environment(
                &self.ctx.env_files_dir,
                &self.ctx.secrets_dir,
                &self.containers[i].spec,
            ) {
                Ok(env) => self.containers[i].env = env,
                Err(message) => {
                    return self.fail_start_text(i, "ResourceInitializationError", &message);
                }
            }
        }
        // awsvpc: the task's own network namespace, held by a pause container.
        if self.spec.network_mode == "awsvpc"
            && let Err(message) = self.start_pause().await
        {
            return self.fail_start_text(0, "ResourceInitializationError", &message);
        }
        // Docker volumes the task mounts: task-scoped ones are created for
        // it; shared ones are found, or created when autoprovisioned.
        if let Err(message) = self.prepare_volumes().await {
            return self.fail_start_text(0, "ResourceInitializationError", &message);
        }
        // Containers, after those they link to or take volumes from: the
        // name is recorded before create, the id after.
        let order = self.start_order();
        for i in order.iter().copied() {
            if self.containers[i].id.is_some() || self.containers[i].stopped() {
                continue;
            }
            let container = self.containers[i].spec.name.clone();
            let name = self.containers[i].docker_name.clone();
            let body = self.container_config(i);
            match self.create_recorded(&container, &name, body).await {
                Ok(id) => self.adopt(i, &id),
                Err(message) => {
                    return self.fail_start_text(i, "CannotCreateContainerError", &message);
                }
            }
            tracing::debug!(task = %self.spec.task_arn, container = %container, "container created");
            if !self.desired_running() {
                return;
            }
        }
        // Start, in the same order, each once its dependencies hold.
        for i in order {
            if self.containers[i].started || self.containers[i].stopped() {
                continue;
            }
            if !self.containers[i].spec.depends_on.is_empty() {
                match self.wait_for_dependencies(i).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(message) => {
                        return self.fail_start_text(i, "ContainerDependencyNotResolved", &message);
                    }
                }
            }
            let id = self.containers[i].id.clone().unwrap_or_default();
            if let Err(e) = self.ctx.runtime.start(&id).await {
                return self.fail_start(i, "CannotStartContainerError", &e);
            }
            self.containers[i].started = true;
            self.containers[i].status = pb::ContainerStatus::Running;
            // Published ports are read back at once; otherwise the start
            // event's inspect brings anything new, off the path to RUNNING.
            let publishes = self.spec.network_mode == "bridge"
                && !self.containers[i].spec.port_mappings.is_empty();
            if publishes {
                match self.ctx.runtime.inspect(&id).await {
                    Ok(Some(info)) => self.apply_inspect(i, &info),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot inspect a started container"),
                }
            } else if self.spec.network_mode == "host" {
                // Host ports are the container ports: known without Docker,
                // and part of the RUNNING report.
                let c = &mut self.containers[i];
                c.bindings =
                    network::network_bindings("host", &c.spec.port_mappings, &Default::default());
            }
            tracing::info!(task = %self.spec.task_arn, container = %self.containers[i].spec.name, "container started");
            self.publish();
            if !self.desired_running() || self.stop_code.is_some() {
                return;
            }
        }
        self.status = pb::TaskStatus::Running;
        self.check_essential();
        if let Some(accepted) = self.accepted.take() {
            self.ctx
                .metrics
                .task_started(accepted.elapsed().as_secs_f64());
        }
        tracing::info!(task = %self.spec.task_arn, "task running");
        self.publish();
    }

    fn fail_start(&mut self, i: usize, kind: &str, e: &RuntimeError) {
        self.fail_start_text(i, kind, &e.to_string());
    }

    fn fail_start_text(&mut self, i: usize, kind: &str, message: &str) {
        let c = &mut self.containers[i];
        let reason = format!("{kind}: {message}");
        tracing::warn!(task = %self.spec.task_arn, container = %c.spec.name, reason = %reason, "task failed to start");
        c.reason = Some(reason.clone());
        c.status = pb::ContainerStatus::Stopped;
        self.stop_code = Some("TaskFailedToStart".to_owned());
        self.stopped_reason = Some(format!(
            "Task failed to start: container '{}': {reason}",
            c.spec.name
        ));
        self.publish();
    }

    /// ECS's labels for a container of this task, and this agent's instance
    /// label (the janitor and recovery find the task's containers by them).
    fn labels(&self, container: &str) -> HashMap<String, String> {
        HashMap::from([
            (
                "com.amazonaws.ecs.cluster".into(),
                self.spec.cluster.clone(),
            ),
            (
                "com.amazonaws.ecs.task-arn".into(),
                self.spec.task_arn.clone(),
            ),
            (
                "com.amazonaws.ecs.container-name".into(),
                container.to_owned(),
            ),
            (
                "com.amazonaws.ecs.task-definition-family".into(),
                self.spec.family.clone(),
            ),
            (
                "com.amazonaws.ecs.task-definition-version".into(),
                self.spec.revision.to_string(),
            ),
            (INSTANCE_LABEL.into(), self.ctx.instance_arn.clone()),
        ])
    }

    /// Creates the Docker container `docker_name` for the task's `container`
    /// (a definition name, or the pause record): its name is recorded
    /// (durably) before create, so a crash in between leaves a name to find;
    /// one such container left by a crash is adopted. Returns its id; the
    /// caller records that.
    async fn create_recorded(
        &self,
        container: &str,
        docker_name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, String> {
        let record = ContainerRecord {
            docker_name: docker_name.to_owned(),
            docker_id: None,
        };
        if let Err(e) = self
            .ctx
            .state
            .save_container(&self.spec.task_arn, container, &record)
        {
            tracing::error!(error = %e, "cannot record a container name; not creating it");
            return Err(format!("the agent cannot record the container: {e}"));
        }
        match self.ctx.runtime.create(docker_name, body).await {
            Ok(id) => Ok(id),
            // Created before a crash; adopt it.
            Err(RuntimeError::Docker {
                status: Some(409), ..
            }) => self
                .ctx
                .runtime
                .inspect(docker_name)
                .await
                .ok()
                .flatten()
                .and_then(|info| info.id)
                .ok_or_else(|| {
                    format!("a container named {docker_name} exists but cannot be inspected")
                }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Creates (or, after a restart, finds) and starts the pause container of
    /// an awsvpc task on the Docker network its first subnet names, and
    /// reads the task's address.
    async fn start_pause(&mut self) -> Result<(), String> {
        let network = self
            .spec
            .awsvpc
            .as_ref()
            .and_then(|a| a.subnets.first())
            .cloned()
            .ok_or("the awsvpc task has no subnet to name its Docker network")?;
        let runtime = self.ctx.runtime.clone();
        let mut record = self.pause.clone().unwrap_or_else(|| ContainerRecord {
            docker_name: docker_name(&self.spec, "berth-pause"),
            docker_id: None,
        });
        let id = match record.docker_id.clone() {
            Some(id) => id,
            None => {
                runtime
                    .ensure_pause_image()
                    .await
                    .map_err(|e| format!("cannot build the pause image: {e}"))?;
                runtime
                    .ensure_network(&network)
                    .await
                    .map_err(|e| format!("cannot use Docker network '{network}': {e}"))?;
                let body = ContainerCreateBody {
                    image: Some(crate::pause::IMAGE.to_owned()),
                    labels: Some(self.labels(PAUSE_RECORD)),
                    host_config: Some(HostConfig {
                        network_mode: Some(network.clone()),
                        cgroup_parent: self.cgroup_parent.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let id = self
                    .create_recorded(PAUSE_RECORD, &record.docker_name, body)
                    .await
                    .map_err(|e| format!("cannot create the pause container: {e}"))?;
                record.docker_id = Some(id.clone());
                if let Err(e) =
                    self.ctx
                        .state
                        .save_container(&self.spec.task_arn, PAUSE_RECORD, &record)
                {
                    tracing::error!(error = %e, "cannot record the pause container's id");
                }
                id
            }
        };
        self.pause = Some(record);
        runtime
            .start(&id)
            .await
            .map_err(|e| format!("cannot start the pause container: {e}"))?;
        let info = runtime
            .inspect(&id)
            .await
            .map_err(|e| format!("cannot inspect the pause container: {e}"))?
            .ok_or("the pause container disappeared")?;
        let endpoint = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&network))
            .ok_or_else(|| format!("the pause container is not on network '{network}'"))?;
        self.network = Some(pb::TaskNetwork {
            network,
            ipv4_address: endpoint.ip_address.unwrap_or_default(),
            mac_address: endpoint.mac_address.unwrap_or_default(),
            interface_id: id,
            gateway: endpoint.gateway.unwrap_or_default(),
        });
        tracing::info!(task = %self.spec.task_arn, address = %self.network.as_ref().map(|n| n.ipv4_address.as_str()).unwrap_or_default(), "task network ready");
        self.publish();
        Ok(())
    }

    /// Waits, handling Docker events, until container `i`'s `dependsOn`
    /// conditions hold (`Ok(true)`), the task is to stop (`Ok(false)`), or
    /// they cannot hold or `startTimeout` passes (`Err`).
    async fn wait_for_dependencies(&mut self, i: usize) -> Result<bool, String> {
        let timeout = self.containers[i]
            .spec
            .start_timeout
            .map(|s| Duration::from_secs(u64::from(s)));
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        tracing::info!(task = %self.spec.task_arn, container = %self.containers[i].spec.name, "waiting for dependencies");
        loop {
            if self.stop_needed() || !self.desired_running() {
                return Ok(false);
            }
            if dependencies_met(&self.containers, i)? {
                return Ok(true);
            }
            let expired = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        return Ok(false);
                    }
                }
                Some((id, event)) = self.events.recv() => self.on_event(&id, event).await,
                () = expired => {
                    return Err(format!(
                        "its dependencies did not hold within startTimeout ({} s)",
                        timeout.unwrap_or_default().as_secs()
                    ));
                }
            }
        }
    }

    /// Definition order, except that a container comes after the ones it
    /// links to, takes volumes from or depends on (the control plane refuses
    /// cycles; should one arrive anyway, the rest keep definition order).
    fn start_order(&self) -> Vec<usize> {
        let index = |name: &str| self.containers.iter().position(|c| c.spec.name == name);
        let needs: Vec<Vec<usize>> = self
            .containers
            .iter()
            .map(|c| {
                c.spec
                    .links
                    .iter()
                    .map(|l| l.container.as_str())
                    .chain(
                        c.spec
                            .volumes_from
                            .iter()
                            .map(|v| v.source_container.as_str()),
                    )
                    .chain(c.spec.depends_on.iter().map(|d| d.container.as_str()))
                    .filter_map(index)
                    .collect()
            })
            .collect();
        let mut order = Vec::with_capacity(needs.len());
        while order.len() < needs.len() {
            let next = (0..needs.len())
                .filter(|i| !order.contains(i))
                .find(|i| needs[*i].iter().all(|j| order.contains(j)))
                .or_else(|| (0..needs.len()).find(|i| !order.contains(i)));
            order.extend(next);
        }
        order
    }

    /// The Docker name of a task volume: task-scoped volumes (and volumes
    /// with neither a host path nor a Docker configuration) get a name of
    /// their own per task; shared ones keep theirs; host paths have none.
    fn volume_source(&self, v: &pb::Volume) -> String {
        match (&v.host_source_path, &v.docker) {
            (Some(path), _) => path.clone(),
            (None, Some(d)) if d.scope == "shared" => v.name.clone(),
            _ => format!("berth-{}-{}", self.task_id(), v.name),
        }
    }

    /// Creates or finds the Docker volumes the task's containers mount.
    async fn prepare_volumes(&mut self) -> Result<(), String> {
        let used: Vec<&str> = self
            .containers
            .iter()
            .flat_map(|c| c.spec.mount_points.iter().map(|m| m.source_volume.as_str()))
            .collect();
        for v in self
            .spec
            .volumes
            .iter()
            .filter(|v| used.contains(&v.name.as_str()))
        {
            if v.host_source_path.is_some() {
                continue;
            }
            let name = self.volume_source(v);
            let docker = v.docker.clone().unwrap_or_default();
            let shared = docker.scope == "shared";
            if shared && !docker.autoprovision {
                match self.ctx.runtime.volume_exists(&name).await {
                    Ok(true) => continue,
                    Ok(false) => {
                        return Err(format!(
                            "shared volume '{name}' does not exist and autoprovision is off; create it with `docker volume create {name}` or set autoprovision"
                        ));
                    }
                    Err(e) => return Err(format!("cannot inspect volume '{name}': {e}")),
                }
            }
            let mut labels: HashMap<String, String> = docker.labels.clone().into_iter().collect();
            if !shared {
                // Task volumes are this agent's to remove with the task.
                labels.extend(self.labels(&v.name));
            }
            let request = bollard::models::VolumeCreateRequest {
                name: Some(name.clone()),
                driver: docker.driver.clone(),
                driver_opts: Some(docker.driver_opts.clone().into_iter().collect()),
                labels: Some(labels),
                ..Default::default()
            };
            if let Err(e) = self.ctx.runtime.create_volume(request).await {
                return Err(format!("cannot create volume '{name}': {e}"));
            }
            tracing::debug!(task = %self.spec.task_arn, volume = %name, "volume ready");
        }
        Ok(())
    }

    /// Docker's create body for container `i`: the container definition
    /// (overrides already merged by the control plane), ECS's labels, and
    /// this agent's instance label.
    fn container_config(&self, i: usize) -> ContainerCreateBody {
        let c = &self.containers[i].spec;
        let mut labels: HashMap<String, String> = c.docker_labels.clone().into_iter().collect();
        labels.extend(self.labels(&c.name));
        let (exposed, port_bindings) =
            network::port_config(&self.spec.network_mode, &c.port_mappings);
        // ECS gives containers without a CPU reservation Docker's minimum share.
        let cpu_shares = c.cpu.filter(|s| *s >= 2).unwrap_or(2);
        let mut env = self.containers[i].env.clone();
        let (device_requests, runtime) = gpus(self.ctx.gpu_access, &c.gpu_ids, &mut env);
        let sibling = |name: &str| {
            self.containers
                .iter()
                .find(|o| o.spec.name == name)
                .map(|o| o.docker_name.clone())
        };
        let binds: Vec<String> = c
            .mount_points
            .iter()
            .filter_map(|m| {
                let v = self
                    .spec
                    .volumes
                    .iter()
                    .find(|v| v.name == m.source_volume)?;
                let ro = if m.read_only { ":ro" } else { "" };
                Some(format!(
                    "{}:{}{ro}",
                    self.volume_source(v),
                    m.container_path
                ))
            })
            .collect();
        let volumes_from: Vec<String> = c
            .volumes_from
            .iter()
            .filter_map(|v| {
                let ro = if v.read_only { ":ro" } else { "" };
                Some(format!("{}{ro}", sibling(&v.source_container)?))
            })
            .collect();
        let links: Vec<String> = c
            .links
            .iter()
            .filter_map(|l| {
                let alias = l.alias.as_deref().unwrap_or(&l.container);
                Some(format!("{}:{alias}", sibling(&l.container)?))
            })
            .collect();
        let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
        let linux = c.linux_parameters.clone().unwrap_or_default();
        let mib = |m: i64| m * 1024 * 1024;
        ContainerCreateBody {
            image: Some(c.image.clone()),
            entrypoint: c.entry_point.as_ref().map(|l| l.values.clone()),
            cmd: c.command.as_ref().map(|l| l.values.clone()),
            env: Some(env),
            labels: Some(labels),
            working_dir: c.working_directory.clone(),
            user: c.user.clone(),
            hostname: c.hostname.clone(),
            tty: c.pseudo_terminal.then_some(true),
            open_stdin: c.interactive.then_some(true),
            network_disabled: c.disable_networking.then_some(true),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            stop_timeout: Some(i64::from(self.stop_timeout_secs(i))),
            healthcheck: c.health_check.as_ref().map(|h| {
                let nanos = |s: u32| i64::from(s) * 1_000_000_000;
                bollard::models::HealthConfig {
                    test: Some(h.command.clone()),
                    interval: Some(nanos(h.interval_seconds)),
                    timeout: Some(nanos(h.timeout_seconds)),
                    retries: Some(i64::from(h.retries)),
                    start_period: Some(nanos(h.start_period_seconds)),
                    ..Default::default()
                }
            }),
            host_config: Some(HostConfig {
                cpu_shares: Some(cpu_shares),
                memory: c.memory_mib.map(mib),
                memory_reservation: c.memory_reservation_mib.map(mib),
                // ECS's maxSwap is swap on top of memory; Docker's limit is
                // memory plus swap.
                memory_swap: linux
                    .max_swap_mib
                    .and_then(|swap| Some(mib(c.memory_mib? + swap))),
                memory_swappiness: linux.swappiness,
                network_mode: Some(network::docker_network_mode(
                    &self.spec.network_mode,
                    self.pause.as_ref().map(ContainerRecord::reference),
                )),
                port_bindings,
                cgroup_parent: self.cgroup_parent.clone(),
                device_requests,
                runtime,
                privileged: c.privileged.then_some(true),
                readonly_rootfs: c.readonly_root_filesystem.then_some(true),
                ulimits: (!c.ulimits.is_empty()).then(|| {
                    c.ulimits
                        .iter()
                        .map(|u| bollard::models::ResourcesUlimits {
                            name: Some(u.name.clone()),
                            soft: Some(u.soft),
                            hard: Some(u.hard),
                        })
                        .collect()
                }),
                cap_add: some(linux.cap_add.clone()),
                cap_drop: some(linux.cap_drop.clone()),
                init: linux.init_process_enabled.then_some(true),
                tmpfs: (!linux.tmpfs.is_empty()).then(|| {
                    linux
                        .tmpfs
                        .iter()
                        .map(|t| {
                            let mut options = vec![format!("size={}m", t.size_mib)];
                            options.extend(t.mount_options.iter().cloned());
                            (t.container_path.clone(), options.join(","))
                        })
                        .collect()
                }),
                shm_size: linux.shared_memory_size_mib.map(mib),
                devices: (!linux.devices.is_empty()).then(|| {
                    linux
                        .devices
                        .iter()
                        .map(|d| bollard::models::DeviceMapping {
                            path_on_host: Some(d.host_path.clone()),
                            path_in_container: Some(
                                d.container_path
                                    .clone()
                                    .unwrap_or_else(|| d.host_path.clone()),
                            ),
                            cgroup_permissions: Some(device_permissions(&d.permissions)),
                        })
                        .collect()
                }),
                extra_hosts: some(
                    c.extra_hosts
                        .iter()
                        .map(|h| format!("{}:{}", h.hostname, h.ip_address))
                        .collect(),
                ),
                dns: some(c.dns_servers.clone()),
                dns_search: some(c.dns_search_domains.clone()),
                log_config: c.log_configuration.as_ref().map(|l| {
                    bollard::models::HostConfigLogConfig {
                        typ: Some(l.driver.clone()),
                        config: Some(l.options.clone().into_iter().collect()),
                    }
                }),
                security_opt: some(c.docker_security_options.clone()),
                sysctls: (!c.system_controls.is_empty())
                    .then(|| c.system_controls.clone().into_iter().collect()),
                binds: some(binds),
                volumes_from: some(volumes_from),
                links: some(links),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn stop_timeout_secs(&self, i: usize) -> u32 {
        self.containers[i]
            .spec
            .stop_timeout
            .unwrap_or(self.ctx.default_stop_timeout.as_secs() as u32)
            .min(crate::runtime::MAX_STOP_TIMEOUT_SECS)
    }

    /// Updates container `i` from an inspect result.
    fn apply_inspect(&mut self, i: usize, info: &ContainerInspectResponse) {
        let mode = self.spec.network_mode.clone();
        let c = &mut self.containers[i];
        let state = info.state.as_ref();
        let status = state.and_then(|s| s.status);
        if let Some(h) = state.and_then(|s| s.health.as_ref()).and_then(|h| h.status) {
            c.health = Some(h.to_string());
        }
        let ever_started = state
            .and_then(|s| s.started_at.as_deref())
            .is_some_and(|t| !t.starts_with("0001-"));
        match status {
            Some(
                ContainerStateStatusEnum::RUNNING
                | ContainerStateStatusEnum::PAUSED
                | ContainerStateStatusEnum::RESTARTING,
            ) => {
                c.started = true;
                if c.status != pb::ContainerStatus::Stopped {
                    c.status = pb::ContainerStatus::Running;
                }
                let bindings = network::network_bindings(&mode, &c.spec.port_mappings, info);
                if !bindings.is_empty() {
                    c.bindings = bindings;
                }
            }
            Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
                c.started |= ever_started;
                c.status = pb::ContainerStatus::Stopped;
                if ever_started {
                    c.exit_code = state.and_then(|s| s.exit_code).map(|e| e as i32);
                }
                let oom = c.oom || state.and_then(|s| s.oom_killed).unwrap_or(false);
                if oom {
                    c.reason = Some(
                        "OutOfMemoryError: the container was killed for exceeding its memory limit"
                            .to_owned(),
                    );
                } else if let Some(err) = state
                    .and_then(|s| s.error.as_deref())
                    .filter(|e| !e.is_empty())
                {
                    c.reason
                        .get_or_insert_with(|| format!("CannotStartContainerError: {err}"));
                }
            }
            _ => {}
        }
    }

    async fn observe(&mut self, i: usize) {
        let Some(id) = self.containers[i].id.clone() else {
            return;
        };
        match self.ctx.runtime.inspect(&id).await {
            Ok(Some(info)) => self.apply_inspect(i, &info),
            Ok(None) => self.removed_outside(i),
            Err(e) => {
                tracing::warn!(task = %self.spec.task_arn, error = %e, "cannot inspect a container")
            }
        }
        // Killed (137) under a memory limit, not by us, and Docker has not
        // said OOM yet: under load its OOM flag can trail the exit, so look
        // once more before the reason is decided.
        let c = &self.containers[i];
        let limited = c.spec.memory_mib.is_some() || self.spec.memory_mib.is_some();
        if c.stopped()
            && c.exit_code == Some(137)
            && !c.oom
            && limited
            && self.status != pb::TaskStatus::Stopping
        {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Ok(Some(info)) = self.ctx.runtime.inspect(&id).await {
                self.apply_inspect(i, &info);
            }
        }
    }

    fn removed_outside(&mut self, i: usize) {
        let c = &mut self.containers[i];
        if !c.stopped() {
            c.status = pb::ContainerStatus::Stopped;
            c.reason = Some(
                "The container was removed outside Berth (docker rm) while it ran.".to_owned(),
            );
        }
    }

    async fn on_event(&mut self, id: &str, event: ContainerEvent) {
        let targets: Vec<usize> = match event {
            ContainerEvent::Resync => (0..self.containers.len())
                .filter(|i| self.containers[*i].id.is_some())
                .collect(),
            _ => self
                .containers
                .iter()
                .position(|c| c.id.as_deref() == Some(id))
                .into_iter()
                .collect(),
        };
        for i in targets {
            match event {
                ContainerEvent::Oom => self.containers[i].oom = true,
                ContainerEvent::Destroyed => self.removed_outside(i),
                ContainerEvent::Started
                | ContainerEvent::Died
                | ContainerEvent::Resync
                | ContainerEvent::Health => self.observe(i).await,
            }
        }
        self.check_essential();
        self.publish();
    }

    /// ECS's essential rule: when an essential container stops, the task
    /// stops. The first such container names the reason.
    fn check_essential(&mut self) {
        if self.stop_code.is_some() || self.desired_stopped() {
            return;
        }
        if let Some(c) = self
            .containers
            .iter()
            .find(|c| c.spec.essential && c.stopped() && (c.started || c.reason.is_some()))
        {
            let detail = match (&c.reason, c.exit_code) {
                (Some(reason), _)
                    if reason.starts_with("OutOfMemoryError") || c.exit_code.is_none() =>
                {
                    reason.clone()
                }
                (_, Some(code)) => format!("exited with code {code}"),
                (Some(reason), None) => reason.clone(),
                (None, None) => "stopped".to_owned(),
            };
            let reason = format!(
                "Essential container in task exited: container '{}' {detail}",
                c.spec.name
            );
            tracing::info!(task = %self.spec.task_arn, reason = %reason, "stopping the task");
            self.stop_code = Some("EssentialContainerExited".to_owned());
            self.stopped_reason = Some(reason);
        }
    }

    /// Stops every container that runs (stop signal, the container's stop
    /// timeout, SIGKILL), then records the task STOPPED.
    async fn stop_all(&mut self) {
        if self.status != pb::TaskStatus::Stopping {
            self.status = pb::TaskStatus::Stopping;
            tracing::info!(task = %self.spec.task_arn, reason = self.stopped_reason.as_deref().or(self.spec.stop_reason.as_deref()).unwrap_or_default(), "stopping task");
            self.publish();
        }
        let stops: Vec<_> = (0..self.containers.len())
            .filter(|i| !self.containers[*i].stopped() && self.containers[*i].id.is_some())
            .map(|i| {
                let runtime = self.ctx.runtime.clone();
                let id = self.containers[i].id.clone().unwrap_or_default();
                let timeout = self.stop_timeout_secs(i);
                async move {
                    let mut last = None;
                    for attempt in 0..3 {
                        match runtime.stop(&id, timeout).await {
                            Ok(()) => return (i, None),
                            Err(e) => {
                                tracing::warn!(container = %id, attempt, error = %e, "stop failed");
                                last = Some(e.to_string());
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                    (i, last)
                }
            })
            .collect();
        for (i, failure) in futures_util::future::join_all(stops).await {
            self.observe(i).await;
            let c = &mut self.containers[i];
            if !c.stopped() {
                c.status = pb::ContainerStatus::Stopped;
                c.reason = Some(format!(
                    "CannotStopContainerError: {}",
                    failure
                        .unwrap_or_else(|| "Docker still reports the container running".to_owned())
                ));
            }
        }
        for c in &mut self.containers {
            c.status = pb::ContainerStatus::Stopped;
        }
        // The task's network namespace goes last.
        if let Some(p) = &self.pause
            && let Err(e) = self.ctx.runtime.kill(p.reference()).await
        {
            tracing::warn!(container = p.reference(), error = %e, "cannot stop the pause container");
        }
        self.execution_stopped_at = Some(now_ms());
        self.status = pb::TaskStatus::Stopped;
        tracing::info!(task = %self.spec.task_arn, "task stopped");
    }

    fn report(&self) -> pb::TaskStateReport {
        pb::TaskStateReport {
            task_arn: self.spec.task_arn.clone(),
            last_status: self.status as i32,
            containers: self
                .containers
                .iter()
                .map(|c| pb::ContainerStateReport {
                    name: c.spec.name.clone(),
                    last_status: c.status as i32,
                    runtime_id: c.id.clone(),
                    exit_code: c.exit_code,
                    reason: c.reason.clone(),
                    network_bindings: c.bindings.clone(),
                    image_digest: c.image_digest.clone(),
                    health_status: c.health_status().map(str::to_owned),
                })
                .collect(),
            pull_started_at_ms: self.pull_started_at,
            pull_stopped_at_ms: self.pull_stopped_at,
            execution_stopped_at_ms: self.execution_stopped_at,
            stop_code: self.stop_code.clone(),
            stopped_reason: self.stopped_reason.clone(),
            health_status: Some(task_health(&self.containers).to_owned()),
            network: self.network.clone(),
        }
    }

    fn publish(&self) {
        self.ctx.reporter.publish(self.report());
    }

    fn finish(self) -> Outcome {
        let report = self.report();
        self.ctx.reporter.publish(report.clone());
        if let Err(e) = self.ctx.state.finish_task(&report, now_ms()) {
            tracing::error!(task = %self.task(), error = %e, "cannot record the task as finished");
        }
        for c in &self.containers {
            if let Some(id) = &c.id {
                self.ctx.routes.remove(id);
            }
        }
        if self.spec.cpu.is_some() || self.spec.memory_mib.is_some() {
            self.ctx.cgroups.remove(&self.task_id());
        }
        Outcome::Finished(Box::new(report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GpuAccess;

    fn spec(files: &[&str], env: &[(&str, &str)]) -> pb::ContainerSpec {
        pb::ContainerSpec {
            environment_files: files
                .iter()
                .map(|f| pb::EnvironmentFile {
                    value: (*f).to_owned(),
                    r#type: "s3".to_owned(),
                })
                .collect(),
            environment: env
                .iter()
                .map(|(n, v)| pb::KeyValue {
                    name: (*n).to_owned(),
                    value: (*v).to_owned(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn environment_files_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bucket")).unwrap();
        std::fs::write(
            dir.path().join("bucket/a.env"),
            "# comment\nA=1\nB=from-a\n\nnot a var\nURL=x=y\n",
        )
        .unwrap();
        let b = dir.path().join("b.env");
        std::fs::write(&b, "B=from-b\nC=3\n").unwrap();
        let env = environment(
            dir.path(),
            dir.path(),
            &spec(
                &["arn:aws:s3:::bucket/a.env", b.to_str().unwrap()],
                &[("C", "env")],
            ),
        )
        .unwrap();
        assert_eq!(env, ["A=1", "B=from-b", "URL=x=y", "C=env"]);
        let missing = environment(
            dir.path(),
            dir.path(),
            &spec(&["arn:aws:s3:::bucket/none.env"], &[]),
        )
        .unwrap_err();
        assert!(missing.contains("none.env"), "{missing}");
    }

    #[test]
    fn gpus_reach_containers_by_the_configured_route() {
        let ids = vec!["0".to_owned(), "2".to_owned()];
        let mut env = Vec::new();
        let (requests, runtime) = gpus(GpuAccess::DeviceRequests, &ids, &mut env);
        let r = &requests.unwrap()[0];
        assert_eq!(r.device_ids.as_deref(), Some(&ids[..]));
        assert_eq!(r.driver.as_deref(), Some("nvidia"));
        assert!(runtime.is_none());
        assert_eq!(env, ["NVIDIA_VISIBLE_DEVICES=0,2"]);
        let (requests, runtime) = gpus(GpuAccess::NvidiaRuntime, &ids, &mut env);
        assert!(requests.is_none());
        assert_eq!(runtime.as_deref(), Some("nvidia"));
        assert_eq!(env.len(), 1);
        assert_eq!(gpus(GpuAccess::Env, &[], &mut env), (None, None));
    }

    fn run(name: &str, essential: bool, checked: bool) -> ContainerRun {
        let spec = pb::ContainerSpec {
            name: name.into(),
            essential,
            health_check: checked.then(pb::HealthCheck::default),
            ..Default::default()
        };
        ContainerRun::new(spec, name.into(), None)
    }

    #[test]
    fn secrets_are_read_from_files_named_by_value_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("prod")).expect("mkdir");
        std::fs::write(dir.path().join("prod/db"), "hunter2\n").expect("write");
        std::fs::write(dir.path().join("app"), r#"{"user": "svc", "port": 5432}"#).expect("write");
        let read = |v: &str| secret(dir.path(), v);
        assert_eq!(
            read("arn:aws:ssm:us-east-1:000000000000:parameter/prod/db"),
            Ok("hunter2".into())
        );
        assert_eq!(read("/prod/db"), Ok("hunter2".into()));
        assert_eq!(
            read("arn:aws:secretsmanager:us-east-1:000000000000:secret:app:user::"),
            Ok("svc".into())
        );
        assert_eq!(
            read("arn:aws:secretsmanager:us-east-1:000000000000:secret:app:port"),
            Ok("5432".into())
        );
        let missing = read("prod/none").unwrap_err();
        assert!(missing.contains("prod/none"), "{missing}");
        assert!(read("../etc/passwd").is_err());
        let no_key =
            read("arn:aws:secretsmanager:us-east-1:000000000000:secret:app:pass").unwrap_err();
        assert!(
            no_key.contains("no key 'pass'") && !no_key.contains("svc"),
            "{no_key}"
        );
    }

    #[test]
    fn task_health_follows_essential_containers_with_checks() {
        let mut cs = vec![
            run("a", true, true),
            run("b", true, false),
            run("c", false, true),
        ];
        assert_eq!(task_health(&cs), "UNKNOWN", "no verdict yet");
        cs[0].health = Some("healthy".into());
        cs[2].health = Some("unhealthy".into());
        assert_eq!(
            task_health(&cs),
            "HEALTHY",
            "non-essential checks do not count"
        );
        cs[0].health = Some("unhealthy".into());
        assert_eq!(task_health(&cs), "UNHEALTHY");
        assert_eq!(cs[1].health_status(), None);
    }

    #[test]
    fn dependencies_hold_fail_or_wait_by_condition() {
        let dep = |on: &str, condition: &str| pb::Dependency {
            container: on.into(),
            condition: condition.into(),
        };
        let mut cs = vec![
            run("app", true, false),
            run("init", false, false),
            run("db", true, true),
        ];
        cs[0].spec.depends_on = vec![dep("init", "SUCCESS"), dep("db", "HEALTHY")];
        assert_eq!(dependencies_met(&cs, 0), Ok(false));
        cs[1].started = true;
        cs[1].status = pb::ContainerStatus::Stopped;
        cs[1].exit_code = Some(0);
        cs[2].started = true;
        cs[2].status = pb::ContainerStatus::Running;
        cs[2].health = Some("starting".into());
        assert_eq!(dependencies_met(&cs, 0), Ok(false));
        cs[2].health = Some("healthy".into());
        assert_eq!(dependencies_met(&cs, 0), Ok(true));
        cs[1].exit_code = Some(2);
        assert!(
            dependencies_met(&cs, 0)
                .unwrap_err()
                .contains("exited with code 2")
        );
        cs[0].spec.depends_on = vec![dep("db", "START")];
        assert_eq!(dependencies_met(&cs, 0), Ok(true));
        cs[0].spec.depends_on = vec![dep("db", "COMPLETE")];
        assert_eq!(dependencies_met(&cs, 0), Ok(false));
    }
}
