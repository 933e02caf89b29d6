//! The agent-facing use cases: registering an instance, opening and closing
//! its session, the desired task set the session carries, and applying the
//! agent's state reports. `agents` translates the gRPC contract to these.

use super::state::{ClusterRecord, InstanceRecord, State};
use super::task::merge_container;
use super::{ControlPlane, Result, Staged, client, invalid};
use crate::model::container_instance::VersionInfo;
use crate::model::status::{LaunchType, Status};
use crate::model::task::{ContainerStatus, NetworkBinding, TaskStatus};
use crate::model::task_definition::ContainerDefinition;
use crate::model::{Attribute, Timestamp, arn};
use crate::validate;
use std::collections::BTreeSet;
use tokio::sync::watch;

/// What an agent registers.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterInstance {
    /// Cluster name; created when missing.
    pub cluster: String,
    /// ARN from an earlier registration.
    pub container_instance_arn: Option<String>,
    /// The secret that earlier registration returned.
    pub instance_secret: Option<crate::auth::Secret>,
    /// Host identifier, shown as `ec2InstanceId`.
    pub ec2_instance_id: String,
    /// CPU units.
    pub cpu: i64,
    /// MiB.
    pub memory: i64,
    /// Ports the agent keeps for itself.
    pub reserved_tcp: BTreeSet<u16>,
    /// UDP ports the agent keeps for itself.
    pub reserved_udp: BTreeSet<u16>,
    /// Built-in and custom attributes.
    pub attributes: Vec<Attribute>,
    /// Agent and Docker versions.
    pub version_info: VersionInfo,
    /// `EXTERNAL` or `EC2`.
    pub launch_type: String,
    /// The capacity provider (agent pool) to join; created when missing.
    pub capacity_provider: Option<String>,
    /// GPU ids the host offers.
    pub gpu_ids: Vec<String>,
}

/// The result of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The instance's ARN (the agent saves it).
    pub container_instance_arn: String,
    /// Its cluster's ARN.
    pub cluster_arn: String,
    /// The instance secret the agent presents from now on.
    pub instance_secret: crate::auth::Secret,
}

/// An open session: the instance it belongs to and what to wait on.
#[derive(Debug)]
pub struct SessionHandle {
    /// Container-instance id.
    pub instance_id: String,
    /// Session number, to close exactly this session.
    pub session: u64,
    /// Changes when the desired task set changes.
    pub changes: watch::Receiver<u64>,
}

/// One task the control plane wants on an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredTask {
    /// Task ARN.
    pub task_arn: String,
    /// Cluster name.
    pub cluster: String,
    /// Definition family.
    pub family: String,
    /// Definition revision.
    pub revision: u32,
    /// RUNNING or STOPPED.
    pub desired_status: TaskStatus,
    /// bridge, host, none.
    pub network_mode: String,
    /// Task CPU units, when sized.
    pub cpu: Option<i64>,
    /// Task MiB, when sized.
    pub memory: Option<i64>,
    /// Containers in definition order.
    pub containers: Vec<DesiredContainer>,
    /// StopTask's reason, for the agent's log.
    pub stop_reason: Option<String>,
    /// The definition's volumes (JSON as registered, validated).
    pub volumes: Vec<serde_json::Value>,
    /// awsvpc: RunTask's network configuration.
    pub awsvpc: Option<crate::validate::AwsVpc>,
}

/// An awsvpc task's network interface, as its agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNetwork {
    /// Docker network.
    pub network: String,
    /// The task's address.
    pub ipv4_address: String,
    /// Its MAC address.
    pub mac_address: String,
    /// The pause container's id.
    pub interface_id: String,
    /// The network's gateway.
    pub gateway: String,
}

/// One container of a desired task.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredContainer {
    /// Its ARN, reported back unchanged.
    pub arn: String,
    /// Its definition with the task's overrides applied.
    pub definition: ContainerDefinition,
    /// GPUs assigned to it.
    pub gpu_ids: Vec<String>,
}

/// A change of an instance's desired set: the whole set the first time a
/// session asks, then only what changed since the session's last answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSet {
    /// The instance's set generation this reflects.
    pub generation: u64,
    /// `false`: `tasks` is every task on the instance that is not STOPPED.
    /// `true`: `tasks` were added or changed, `removed` left the set.
    pub partial: bool,
    /// Tasks (all, or added and changed ones).
    pub tasks: Vec<DesiredTask>,
    /// ARNs of tasks that left the set (partial only).
    pub removed: Vec<String>,
}

/// What a session has sent of the desired set: task id -> (ARN, desired
/// status). `None` until the first (whole) set is sent.
#[derive(Debug, Default)]
pub struct SentTasks(Option<super::state::FastMap<String, (String, TaskStatus)>>);

/// What an agent observed of a container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerReport {
    /// Container name.
    pub name: String,
    /// PENDING, RUNNING, STOPPED.
    pub last_status: ContainerStatus,
    /// Docker id.
    pub runtime_id: Option<String>,
    /// Exit code once stopped.
    pub exit_code: Option<i32>,
    /// Why it stopped, if abnormally.
    pub reason: Option<String>,
    /// Published ports.
    pub network_bindings: Vec<NetworkBinding>,
    /// Image digest.
    pub image_digest: Option<String>,
    /// HEALTHY, UNHEALTHY, UNKNOWN.
    pub health_status: Option<String>,
}

/// What an agent observed of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReport {
    /// Task ARN.
    pub task_arn: String,
    /// PENDING, RUNNING, STOPPING, STOPPED.
    pub last_status: TaskStatus,
    /// Per container.
    pub containers: Vec<ContainerReport>,
    /// Agent clock.
    pub pull_started_at: Option<Timestamp>,
    /// Agent clock.
    pub pull_stopped_at: Option<Timestamp>,
    /// Agent clock.
    pub execution_stopped_at: Option<Timestamp>,
    /// When the agent decided the stop.
    pub stop_code: Option<String>,
    /// When the agent decided the stop.
    pub stopped_reason: Option<String>,
    /// HEALTHY, UNHEALTHY, UNKNOWN.
    pub health_status: Option<String>,
    /// awsvpc tasks, once their interface exists.
    pub network: Option<TaskNetwork>,
}

/// ECS's limit on reasons the agent sends.
const MAX_REASON: usize = validate::MAX_REASON_CHARS;

fn truncate(s: Option<String>) -> Option<String> {
    s.map(|s| {
        if s.chars().count() > MAX_REASON {
            s.chars().take(MAX_REASON).collect()
        } else {
            s
        }
    })
}

impl ControlPlane {
    /// Registers (or re-registers) a container instance. The cluster is
    /// created when it does not exist, as the ECS agent does. An ARN from an
    /// earlier registration keeps the instance's identity, even when this
    /// control plane's state was reset.
    pub async fn register_instance(&self, req: RegisterInstance) -> Result<Registered> {
        let cluster_name = if req.cluster.is_empty() {
            "default".to_owned()
        } else {
            req.cluster.clone()
        };
        validate::cluster_name(&cluster_name)?;
        if req.cpu <= 0 || req.memory <= 0 {
            return Err(invalid(format!(
                "An instance must register positive CPU and memory (got {} CPU units, {} MiB).",
                req.cpu, req.memory
            )));
        }
        if !matches!(req.launch_type.as_str(), "EXTERNAL" | "EC2") {
            return Err(invalid(format!(
                "launch type '{}' is not valid for an instance: use EXTERNAL or EC2.",
                req.launch_type
            )));
        }
        if let Some(p) = &req.capacity_provider {
            super::capacity_provider::check_name(p)?;
        }
        let mut gpus = req.gpu_ids.clone();
        gpus.sort();
        gpus.dedup();
        if gpus.len() != req.gpu_ids.len() || gpus.iter().any(|g| g.is_empty()) {
            return Err(invalid("GPU ids must be unique and non-empty."));
        }
        let (wakeups, registered) = {
            let mut state = self.lock();
            let mut staged = Staged::default();
            if state.active_cluster(&cluster_name).is_none() {
                staged.put(ClusterRecord::new(&cluster_name));
            }
            if let Some(p) = &req.capacity_provider
                && state
                    .capacity_providers
                    .get(p)
                    .is_none_or(|r| r.status != Status::Active)
            {
                tracing::info!(capacity_provider = %p, "creating the capacity provider an agent joins");
                staged.put(super::state::CapacityProviderRecord {
                    name: p.clone(),
                    status: Status::Active,
                    auto_scaling_group_provider: None,
                    tags: Vec::new(),
                    update_status: None,
                });
            }
            let id = match req.container_instance_arn.as_deref() {
                None => uuid::Uuid::new_v4().simple().to_string(),
                Some(previous) => self.reusable_instance_id(&state, previous, &cluster_name)?,
            };
            let existing = state.instances.get(&id);
            // An agent taking over an existing instance must prove it is the
            // one that registered it.
            let secret = match (
                existing.and_then(|e| e.secret_sha256.as_deref()),
                &req.instance_secret,
            ) {
                (Some(stored), Some(presented))
                    if crate::auth::ct_eq(
                        stored.as_bytes(),
                        secret_hash(presented.expose()).as_bytes(),
                    ) =>
                {
                    presented.expose().to_owned()
                }
                (Some(_), _) => {
                    tracing::warn!(container_instance = ?req.container_instance_arn, "registration refused: wrong instance secret");
                    return Err(super::Error::PermissionDenied(format!(
                        "The container instance {} belongs to another agent: this agent's instance secret does not match. If this host really is that instance, restore the agent's data directory; to register it as a new instance, delete the agent's data directory.",
                        req.container_instance_arn.as_deref().unwrap_or_default()
                    )));
                }
                // Nothing stored (the control plane lost its state, or the
                // instance predates secrets): keep the secret the agent
                // holds, so a lost answer to this call cannot lock it out.
                (None, Some(presented)) => presented.expose().to_owned(),
                (None, None) => crate::auth::random_secret(),
            };
            let record = InstanceRecord {
                id: id.clone(),
                cluster: cluster_name.clone(),
                arn: self.scope().container_instance(&cluster_name, &id),
                ec2_instance_id: req.ec2_instance_id.clone(),
                status: existing.map_or(Status::Active, |e| e.status),
                launch_type: LaunchType::parse(&req.launch_type).unwrap_or(LaunchType::External),
                capacity_provider: req.capacity_provider.clone(),
                gpu_ids: req.gpu_ids.clone(),
                cpu: req.cpu,
                memory: req.memory,
                reserved_tcp: req.reserved_tcp.clone(),
                reserved_udp: req.reserved_udp.clone(),
                attributes: reported_attributes(&req.attributes),
                custom_attributes: existing
                    .map(|e| e.custom_attributes.clone())
                    .unwrap_or_default(),
                version_info: req.version_info.clone(),
                registered_at: existing.map_or_else(Timestamp::now, |e| e.registered_at),
                version: existing.map_or(1, |e| e.version + 1),
                tags: existing.map(|e| e.tags.clone()).unwrap_or_default(),
                secret_sha256: Some(secret_hash(&secret)),
            };
            let registered = Registered {
                container_instance_arn: record.arn.clone(),
                cluster_arn: self.scope().cluster(&cluster_name),
                instance_secret: crate::auth::Secret::new(secret),
            };
            staged.put(record);
            let wakeups = self.commit(&mut state, staged)?;
            (wakeups, registered)
        };
        self.durable(wakeups).await?;
        tracing::info!(container_instance = %registered.container_instance_arn, "container instance registered");
        Ok(registered)
    }

    /// The id to keep for an agent that sends its saved ARN.
    fn reusable_instance_id(&self, state: &State, previous: &str, cluster: &str) -> Result<String> {
        let r = arn::scoped(previous, "container-instance")
            .filter(|r| r.id.len() == 32 && r.id.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| {
                invalid(format!(
                    "'{previous}' is not a container instance ARN issued by Berth."
                ))
            })?;
        if let Some(c) = r.cluster
            && c != cluster
        {
            return Err(client(format!(
                "This agent is registered in cluster '{c}' as {previous}. To move it to cluster '{cluster}', stop it, deregister the instance, and delete the agent's data directory."
            )));
        }
        if let Some(existing) = state.instances.get(r.id) {
            if existing.cluster != cluster {
                return Err(client(format!(
                    "This agent is registered in cluster '{}'; it cannot join '{cluster}' with the same identity.",
                    existing.cluster
                )));
            }
            if existing.status == Status::Inactive {
                return Err(client(format!(
                    "The container instance {previous} was deregistered. To register this host again, delete the agent's data directory and restart it."
                )));
            }
        }
        Ok(r.id.to_owned())
    }

    /// Opens a session for the instance an agent registered as. Any older
    /// session of the same instance is superseded.
    pub fn open_session(
        &self,
        container_instance_arn: &str,
        instance_secret: &str,
    ) -> Result<SessionHandle> {
        let mut state = self.lock();
        let record = arn::scoped(container_instance_arn, "container-instance")
            .and_then(|r| state.instances.get(r.id))
            .filter(|i| i.status != Status::Inactive)
            .ok_or_else(|| client(format!("Unknown or deregistered container instance '{container_instance_arn}': register first.")))?;
        let id = record.id.clone();
        let presented = secret_hash(instance_secret);
        if record
            .secret_sha256
            .as_deref()
            .is_some_and(|stored| !crate::auth::ct_eq(stored.as_bytes(), presented.as_bytes()))
        {
            tracing::warn!(container_instance = %container_instance_arn, "session refused: wrong instance secret");
            return Err(super::Error::PermissionDenied(format!(
                "This session does not hold the instance secret of {container_instance_arn}: an agent speaks only for the instance it registered."
            )));
        }
        let live = state
            .live
            .get_mut(&id)
            .expect("every instance has a live part");
        live.session += 1;
        live.connected = true;
        live.connected_at = Some(Timestamp::now());
        live.disconnected_at = None;
        let handle = SessionHandle {
            instance_id: id.clone(),
            session: live.session,
            changes: live.notify.subscribe(),
        };
        self.bump_instance_version(&mut state, &id);
        drop(state);
        self.touched();
        tracing::info!(container_instance = %container_instance_arn, session = handle.session, "agent connected");
        Ok(handle)
    }

    /// Closes a session; the instance shows `agentConnected: false` unless a
    /// newer session already replaced this one.
    pub fn close_session(&self, instance_id: &str, session: u64) {
        let mut state = self.lock();
        let Some(live) = state.live.get_mut(instance_id) else {
            return;
        };
        if live.session != session || !live.connected {
            return;
        }
        live.connected = false;
        live.disconnected_at = Some(Timestamp::now());
        self.bump_instance_version(&mut state, instance_id);
        drop(state);
        self.touched();
        tracing::warn!(container_instance = %instance_id, session, "agent disconnected");
    }

    /// Connection changes bump the instance's version. The write is not
    /// awaited: connectivity is rebuilt from sessions after a restart anyway.
    fn bump_instance_version(&self, state: &mut State, instance_id: &str) {
        if let Some(record) = state.instances.get(instance_id) {
            let mut record = record.clone();
            record.version += 1;
            let staged = Staged::one(record);
            if let Err(e) = self.commit(state, staged) {
                tracing::error!(error = %e, "could not record an instance's version");
            }
        }
    }

    /// The generation of an instance's desired set (cheap), `None` once the
    /// instance is deregistered.
    pub fn desired_generation(&self, instance_id: &str) -> Option<u64> {
        let state = self.lock();
        state
            .instances
            .get(instance_id)
            .filter(|i| i.status != Status::Inactive)?;
        state.live(instance_id).map(|l| l.generation)
    }

    /// What changed in an instance's desired set since the session last
    /// asked (`sent`), or `None` once the instance is deregistered (the
    /// session should end). The first answer is the whole set; later ones
    /// build only the tasks that are new or whose desired status changed, so
    /// a change costs a scan of task ids, not a rebuild of every task.
    pub fn desired_set(&self, instance_id: &str, sent: &mut SentTasks) -> Option<DesiredSet> {
        let state = self.lock();
        let instance = state
            .instances
            .get(instance_id)
            .filter(|i| i.status != Status::Inactive)?;
        let live = state.live(&instance.id)?;
        let partial = sent.0.is_some();
        let known = sent.0.get_or_insert_with(Default::default);
        let mut tasks = Vec::new();
        for id in &live.active_tasks {
            let Some(t) = state.tasks.get(id) else {
                continue;
            };
            let status = t.task.desired_status;
            if known.get(id).is_some_and(|(_, s)| *s == status) {
                continue;
            }
            if let Some(d) = desired_task(&state, t) {
                known.insert(id.clone(), (t.task.task_arn.clone(), status));
                tasks.push(d);
            }
        }
        let mut removed = Vec::new();
        if partial {
            known.retain(|id, (arn, _)| {
                let keep = live.active_tasks.contains(id);
                if !keep {
                    removed.push(std::mem::take(arn));
                }
                keep
            });
        }
        Some(DesiredSet {
            generation: live.generation,
            partial,
            tasks,
            removed,
        })
    }

    /// Applies an agent's report of a task on `instance_id`. Statuses only
    /// move forward; a report for a task of another instance is refused.
    /// Returns once the change is durable, so an agent never forgets a task
    /// whose STOPPED state could still be lost.
    pub async fn apply_report(&self, instance_id: &str, report: TaskReport) -> Result<()> {
        let wakeups = {
            let mut state = self.lock();
            let id = arn::scoped(&report.task_arn, "task")
                .map(|r| r.id.to_owned())
                .unwrap_or_default();
            let Some(record) = state.tasks.get(&id) else {
                tracing::debug!(task = %report.task_arn, "report for a task this control plane no longer knows");
                return Ok(());
            };
            if record.instance_id != instance_id {
                return Err(invalid(format!(
                    "Task {} does not belong to this container instance.",
                    report.task_arn
                )));
            }
            let before = record.clone();
            let mut record = record.clone();
            if !apply_task_report(&mut record.task, report, Timestamp::now()) {
                return Ok(());
            }
            if record.task.last_status == TaskStatus::Stopped {
                // A STOPPED task never runs again: its runnable spec (the
                // merged container definitions) is dead weight in memory
                // and on disk. DescribeTasks reads the task itself.
                record.spec = None;
            }
            let transition = (record.task.last_status != before.task.last_status).then(|| {
                (
                    before.task.last_status,
                    record.task.last_status,
                    record.task.stopped_reason.clone(),
                )
            });
            let mut staged = Staged::default();
            if let Some(service) = self.service_task_stopped(&state, &before, &record) {
                staged.put(service);
            }
            staged.put(record);
            let wakeups = self.commit(&mut state, staged)?;
            (wakeups, transition, id)
        };
        let (wakeups, transition, id) = wakeups;
        self.durable(wakeups).await?;
        if let Some((from, to, reason)) = transition {
            // Once per transition, after it is durable.
            if to == TaskStatus::Stopped {
                tracing::info!(task = %id, from = from.as_str(), to = to.as_str(), reason = reason.as_deref().unwrap_or_default(), "task transition");
            } else {
                tracing::info!(task = %id, from = from.as_str(), to = to.as_str(), "task transition");
            }
        }
        Ok(())
    }

    /// Whether the instance is still registered and this session is current.
    pub fn session_current(&self, instance_id: &str, session: u64) -> bool {
        let state = self.lock();
        state
            .instances
            .get(instance_id)
            .is_some_and(|i| i.status != Status::Inactive)
            && state
                .live(instance_id)
                .is_some_and(|l| l.session == session)
    }
}

/// The attributes an agent reports, one per name, sorted.
fn reported_attributes(reported: &[Attribute]) -> Vec<Attribute> {
    let mut out: Vec<Attribute> = reported
        .iter()
        .map(|a| Attribute {
            name: a.name.clone(),
            value: a.value.clone(),
            target_type: None,
            target_id: None,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// Applies a report to a task; returns whether anything changed.
fn apply_task_report(t: &mut crate::model::task::Task, report: TaskReport, now: Timestamp) -> bool {
    let before = t.clone();
    for c in report.containers {
        let Some(cur) = t.containers.iter_mut().find(|x| x.name == c.name) else {
            continue;
        };
        if c.last_status > cur.last_status {
            cur.last_status = c.last_status;
        }
        if c.runtime_id.is_some() {
            cur.runtime_id = c.runtime_id.map(|r| r.chars().take(255).collect());
        }
        if c.exit_code.is_some() {
            cur.exit_code = c.exit_code;
        }
        if c.reason.is_some() {
            cur.reason = truncate(c.reason);
        }
        if !c.network_bindings.is_empty() {
            cur.network_bindings = c.network_bindings;
        }
        if c.image_digest.is_some() {
            cur.image_digest = c.image_digest.map(|d| d.chars().take(255).collect());
        }
        if let Some(h) = c.health_status.filter(|h| is_health_status(h)) {
            cur.health_status = h;
        }
    }
    if let Some(h) = report
        .health_status
        .as_deref()
        .filter(|h| is_health_status(h))
    {
        h.clone_into(&mut t.health_status);
    }
    if let Some(n) = &report.network {
        attach(t, n);
    }
    if t.pull_started_at.is_none() {
        t.pull_started_at = report.pull_started_at;
    }
    if report.pull_stopped_at.is_some() {
        t.pull_stopped_at = report.pull_stopped_at;
    }
    if report.execution_stopped_at.is_some() {
        t.execution_stopped_at = report.execution_stopped_at;
    }
    let status = report.last_status;
    if status > t.last_status {
        if status == TaskStatus::Running && t.started_at.is_none() {
            t.started_at = Some(now);
        }
        if status >= TaskStatus::Stopping {
            t.desired_status = TaskStatus::Stopped;
            t.stopping_at.get_or_insert(now);
            if t.stop_code.is_none() {
                t.stop_code = report.stop_code.clone();
                t.stopped_reason = truncate(report.stopped_reason.clone());
            }
        }
        if status == TaskStatus::Stopped {
            for a in &mut t.attachments {
                a["status"] = "DELETED".into();
            }
            t.stopped_at = Some(now);
            t.execution_stopped_at.get_or_insert(now);
            for c in &mut t.containers {
                c.last_status = ContainerStatus::Stopped;
            }
        }
        t.last_status = status;
    }
    let changed = *t != before;
    if changed {
        t.version += 1;
    }
    changed
}

/// Records an awsvpc task's interface: the attachment ATTACHED with its
/// details, and each container's `networkInterfaces`.
fn attach(t: &mut crate::model::task::Task, n: &TaskNetwork) {
    let Some(attachment) = t.attachments.first_mut() else {
        return;
    };
    if attachment["status"] != "PRECREATED" {
        return;
    }
    attachment["status"] = "ATTACHED".into();
    if let Some(details) = attachment["details"].as_array_mut() {
        for (name, value) in [
            ("networkInterfaceId", &n.interface_id),
            ("macAddress", &n.mac_address),
            ("privateIPv4Address", &n.ipv4_address),
            ("networkName", &n.network),
            ("gateway", &n.gateway),
        ] {
            details.push(serde_json::json!({"name": name, "value": value}));
        }
    }
    let id = attachment["id"].clone();
    for c in &mut t.containers {
        c.network_interfaces = vec![serde_json::json!({
            "attachmentId": id,
            "privateIpv4Address": n.ipv4_address,
        })];
    }
}

fn is_health_status(h: &str) -> bool {
    matches!(h, "HEALTHY" | "UNHEALTHY" | "UNKNOWN")
}

/// A task as its agent receives it: containers merged with their overrides.
fn desired_task(state: &State, t: &super::state::TaskRecord) -> Option<DesiredTask> {
    // The spec fixed at placement; tasks placed before specs were stored
    // merge it again from their definition.
    let merged;
    let spec = match &t.spec {
        Some(spec) => spec,
        None => {
            let td = &state.families.get(&t.family)?.get(&t.revision)?.definition;
            merged = super::state::TaskSpec {
                network_mode: td.network_mode.clone(),
                volumes: td.volumes.clone(),
                containers: td
                    .container_definitions
                    .iter()
                    .map(|def| merge_container(def, t.task.overrides.container(def.name())))
                    .collect(),
            };
            &merged
        }
    };
    let containers = t
        .task
        .containers
        .iter()
        .filter_map(|c| {
            let definition = spec.containers.iter().find(|d| d.name() == c.name)?;
            Some(DesiredContainer {
                arn: c.container_arn.clone(),
                definition: definition.clone(),
                gpu_ids: c.gpu_ids.clone().unwrap_or_default(),
            })
        })
        .collect();
    Some(DesiredTask {
        task_arn: t.task.task_arn.clone(),
        cluster: t.cluster.clone(),
        family: t.family.clone(),
        revision: t.revision,
        desired_status: t.task.desired_status,
        network_mode: spec.network_mode.clone(),
        cpu: t.task.cpu.as_deref().and_then(|c| c.parse().ok()),
        memory: t.task.memory.as_deref().and_then(|m| m.parse().ok()),
        containers,
        stop_reason: t.task.stopped_reason.clone(),
        volumes: spec.volumes.clone(),
        awsvpc: t.awsvpc.clone(),
    })
}

/// Hex SHA-256 of an instance secret (what the state stores).
fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    crate::auth::hex(&sha2::Sha256::digest(secret.as_bytes()))
}

impl ControlPlane {
    /// Records what an agent's heartbeat says of its Docker Engine. An
    /// engine that does not answer makes the instance ineligible for new
    /// tasks (placement treats it as an absent agent) until it answers.
    pub fn record_runtime_health(
        &self,
        instance_id: &str,
        ok: bool,
        detail: String,
        since: Timestamp,
    ) {
        let mut state = self.lock();
        let Some(live) = state.live.get_mut(instance_id) else {
            return;
        };
        let previous = live.runtime.take();
        let changed = previous.as_ref().is_none_or(|r| r.ok != ok);
        if changed && !ok {
            tracing::warn!(container_instance = %instance_id, detail = %detail, "the agent's Docker Engine is not answering; no new tasks go there");
        } else if changed && previous.is_some() {
            tracing::info!(container_instance = %instance_id, "the agent's Docker Engine answers again");
        }
        live.runtime = Some(super::state::RuntimeHealth {
            ok,
            detail,
            reported: Timestamp::now(),
            changed: match previous {
                Some(p) if !changed => p.changed,
                _ => since,
            },
        });
        if changed {
            // An engine that stops or starts answering moves DAEMON hosts.
            state.all_services_dirty = true;
        }
    }

    /// An agent found containers of other instances on its Docker Engine.
    /// Those this control plane knows to be gone — their agent disconnected
    /// for longer than the lost-host timeout (a host whose agent lost its
    /// data directory and registered anew) — are
    /// released: their tasks are recorded STOPPED and the instance INACTIVE.
    /// Returns the ARNs whose containers the agent should stop and remove.
    /// Instances this control plane does not know are left alone (another
    /// control plane's agent may share the engine).
    pub async fn release_foreign(&self, instance_id: &str, arns: &[String]) -> Result<Vec<String>> {
        let now = Timestamp::now();
        let (wakeups, released) = {
            let mut state = self.lock();
            let Some(me) = state.instances.get(instance_id) else {
                return Ok(Vec::new());
            };
            let my_arn = me.arn.clone();
            let mut staged = Staged::default();
            let mut released = Vec::new();
            for arn in arns {
                let Some(other) = arn::scoped(arn, "container-instance")
                    .and_then(|r| state.instances.get(r.id))
                    .filter(|i| i.id != instance_id && i.arn == *arn)
                else {
                    continue;
                };
                let live = state.live.get(&other.id);
                if live.is_some_and(|l| l.connected) {
                    continue;
                }
                let gone_for = live
                    .and_then(|l| l.disconnected_at)
                    .map(|d| now.as_millis() - d.as_millis())
                    .unwrap_or(0);
                // Gone long enough that it is not a restart in progress
                // (deregistered ones too: a forced deregistration leaves its
                // tasks running, as in ECS, until then).
                if gone_for <= self.settings.lost_host_timeout.as_millis() as i64 {
                    continue;
                }
                let reason = format!(
                    "Its container instance {} was lost: the agent on its host runs as {my_arn} now (it lost its state or was reinstalled), and stopped this task's containers.",
                    other.arn
                );
                let active: Vec<String> = live
                    .map(|l| l.active_tasks.iter().cloned().collect())
                    .unwrap_or_default();
                for id in active {
                    let Some(t) = state.tasks.get(&id) else {
                        continue;
                    };
                    let mut r = t.clone();
                    let task = &mut r.task;
                    task.last_status = TaskStatus::Stopped;
                    task.desired_status = TaskStatus::Stopped;
                    task.stop_code = Some("InfrastructureHealth".into());
                    task.stopped_reason = Some(truncate(Some(reason.clone())).unwrap_or_default());
                    task.stopping_at.get_or_insert(now);
                    task.execution_stopped_at.get_or_insert(now);
                    task.stopped_at = Some(now);
                    for c in &mut task.containers {
                        if c.last_status != ContainerStatus::Stopped {
                            c.last_status = ContainerStatus::Stopped;
                            c.reason
                                .get_or_insert_with(|| "Container instance lost".into());
                        }
                    }
                    task.version += 1;
                    if let Some(service) = self.service_task_stopped(&state, t, &r) {
                        staged.put(service);
                    }
                    staged.put(r);
                }
                if other.status != Status::Inactive {
                    let mut o = other.clone();
                    o.status = Status::Inactive;
                    o.version += 1;
                    staged.put(o);
                }
                tracing::warn!(container_instance = %other.arn, by = %my_arn, "releasing a lost container instance: its tasks are STOPPED and its containers will be stopped");
                released.push(other.arn.clone());
            }
            if released.is_empty() {
                return Ok(released);
            }
            (self.commit(&mut state, staged)?, released)
        };
        self.durable(wakeups).await?;
        Ok(released)
    }
}
