//! The control plane's state: the stored records, and the indexes derived
//! from them (which tasks hold which instance's resources), all in memory
//! behind one lock. sled holds the records; the indexes are rebuilt at load.
//!
//! Records are changed only through [`State::install_task`] and friends, so
//! the derived indexes can never disagree with the records.

use super::records::{AnyRecord, Installed, Undo};
use crate::model::container_instance::VersionInfo;
use crate::model::status::{
    DeploymentStatus, LaunchType, RolloutState, SchedulingStrategy, Status,
};
use crate::model::task::{Task, TaskStatus};
use crate::model::task_definition::TaskDefinition;
use crate::model::{Attribute, Tag, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use tokio::sync::watch;

/// A hash map with a fast, non-keyed hasher for the hot indexes. Their keys
/// are ids the control plane generates (random, fixed length) and task-group
/// names, so the flooding resistance of the default SipHash buys nothing,
/// while placement hashes a few keys per instance on every RunTask.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The multiply-rotate hash of rustc's `FxHasher`, word at a time.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A cluster, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// Name (the key).
    pub name: String,
    /// ACTIVE or INACTIVE.
    pub status: Status,
    /// Tags.
    pub tags: Vec<Tag>,
    /// `containerInsights` (recorded, echoed).
    pub settings: Vec<crate::model::cluster::ClusterSetting>,
    /// The Service Connect namespace, when one was set (echoed).
    #[serde(default)]
    pub service_connect_defaults: Option<serde_json::Value>,
    /// Capacity providers associated with the cluster.
    pub capacity_providers: Vec<String>,
    /// Default capacity provider strategy for RunTask without launch type
    /// or strategy.
    pub default_capacity_provider_strategy:
        Vec<crate::model::placement::CapacityProviderStrategyItem>,
    /// Execute-command configuration, echoed.
    pub configuration: Option<serde_json::Value>,
    /// Container instances not INACTIVE (derived).
    #[serde(skip)]
    pub instance_ids: BTreeSet<String>,
    /// Every task still kept, STOPPED ones included (derived).
    #[serde(skip)]
    pub task_ids: BTreeSet<String>,
    /// Tasks not STOPPED whose desired status is RUNNING (derived): what
    /// ListTasks reads for RUNNING, so its cost follows the running tasks,
    /// not the history kept.
    #[serde(skip)]
    pub running_ids: BTreeSet<String>,
}

impl InstanceRecord {
    /// The agent's attributes followed by custom ones set through the API
    /// (a custom attribute of the same name wins).
    pub fn all_attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes
            .iter()
            .filter(|a| !self.custom_attributes.iter().any(|c| c.name == a.name))
            .chain(self.custom_attributes.iter())
    }
}

impl ClusterRecord {
    /// A new ACTIVE cluster with nothing attached.
    pub fn new(name: &str) -> Self {
        ClusterRecord {
            name: name.to_owned(),
            status: Status::Active,
            tags: Vec::new(),
            settings: Vec::new(),
            service_connect_defaults: None,
            capacity_providers: Vec::new(),
            default_capacity_provider_strategy: Vec::new(),
            configuration: None,
            instance_ids: BTreeSet::new(),
            task_ids: BTreeSet::new(),
            running_ids: BTreeSet::new(),
        }
    }

    /// Whether the cluster exists (was not deleted).
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
}

/// A task definition revision, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinitionRecord {
    /// The revision as DescribeTaskDefinition shows it.
    pub definition: TaskDefinition,
    /// Its tags (ECS returns them beside the definition, not inside).
    pub tags: Vec<Tag>,
}

/// What a task holds on its instance from placement until it is STOPPED.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// CPU units.
    pub cpu: i64,
    /// MiB.
    pub memory: i64,
    /// Static TCP host ports.
    pub tcp_ports: Vec<u16>,
    /// Static UDP host ports.
    pub udp_ports: Vec<u16>,
    /// GPU ids assigned to the task's containers.
    #[serde(default)]
    pub gpu_ids: Vec<String>,
}

/// A capacity provider, as stored: a named pool of agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityProviderRecord {
    /// Name (the key).
    pub name: String,
    /// ACTIVE or INACTIVE (deleted).
    pub status: Status,
    /// Echoed Auto Scaling group provider.
    pub auto_scaling_group_provider: Option<serde_json::Value>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// `UPDATE_COMPLETE` once UpdateCapacityProvider changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<String>,
}

/// An account setting of one principal (the account default is the root
/// principal's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettingRecord {
    /// `arn:aws:iam::<account>:user/<access key id>`, or `...:root`.
    pub principal_arn: String,
    /// ECS's setting name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A task, as stored: the ECS description plus what the control plane needs
/// to account for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// 32-hex id (the key).
    pub id: String,
    /// Cluster name.
    pub cluster: String,
    /// Container-instance id.
    pub instance_id: String,
    /// Task definition family.
    pub family: String,
    /// Task definition revision.
    pub revision: u32,
    /// Resources held until STOPPED.
    pub reservation: Reservation,
    /// The ECS description, kept current.
    pub task: Task,
    /// awsvpc tasks: RunTask's network configuration, validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awsvpc: Option<crate::validate::AwsVpc>,
    /// What the agent runs, fixed at placement: the definition's containers
    /// with the overrides merged in. `None` only for tasks placed before
    /// specs were stored (their spec is merged again from the definition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<TaskSpec>,
    /// Scale-in protection: until when (UpdateTaskProtection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection_expires_at: Option<crate::model::Timestamp>,
}

/// What memory keeps of every STOPPED task, compactly: its id as a number
/// (the 32 hex digits Berth's ids are), its cluster as an index into the
/// cluster names seen, and `stoppedAt`: about 40 bytes a task instead of
/// two heap strings. The records themselves are on disk.
#[derive(Debug, Default)]
pub struct StoppedIndex {
    /// By task id: (cluster index, `stoppedAt` in Unix ms).
    compact: FastMap<u128, (u32, i64)>,
    /// Ids that are not 32 lower-case hex digits (none Berth makes; kept
    /// for records from elsewhere).
    other: FastMap<String, (u32, i64)>,
    /// Cluster names by index.
    clusters: Vec<String>,
    /// Index of each cluster name.
    cluster_index: FastMap<String, u32>,
}

impl StoppedIndex {
    fn number(id: &str) -> Option<u128> {
        (id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| u128::from_str_radix(id, 16).ok())
            .flatten()
    }

    fn name(n: u128) -> String {
        format!("{n:032x}")
    }

    fn entry(&self, (cluster, stopped_at_ms): (u32, i64)) -> StoppedTask {
        StoppedTask {
            cluster: self.clusters[cluster as usize].clone(),
            stopped_at_ms,
        }
    }

    /// Records a STOPPED task; what it replaced.
    pub fn insert(&mut self, id: &str, task: StoppedTask) -> Option<StoppedTask> {
        let cluster = match self.cluster_index.get(&task.cluster) {
            Some(i) => *i,
            None => {
                let i = self.clusters.len() as u32;
                self.clusters.push(task.cluster.clone());
                self.cluster_index.insert(task.cluster, i);
                i
            }
        };
        let value = (cluster, task.stopped_at_ms);
        let old = match Self::number(id) {
            Some(n) => self.compact.insert(n, value),
            None => self.other.insert(id.to_owned(), value),
        };
        old.map(|v| self.entry(v))
    }

    /// Forgets a task; what was kept of it.
    pub fn remove(&mut self, id: &str) -> Option<StoppedTask> {
        let old = match Self::number(id) {
            Some(n) => self.compact.remove(&n),
            None => self.other.remove(id),
        };
        old.map(|v| self.entry(v))
    }

    fn value(&self, id: &str) -> Option<(u32, i64)> {
        match Self::number(id) {
            Some(n) => self.compact.get(&n).copied(),
            None => self.other.get(id).copied(),
        }
    }

    /// What is kept of a task.
    pub fn get(&self, id: &str) -> Option<StoppedTask> {
        self.value(id).map(|v| self.entry(v))
    }

    /// The cluster of a STOPPED task.
    pub fn cluster_of(&self, id: &str) -> Option<&str> {
        self.value(id)
            .map(|(c, _)| self.clusters[c as usize].as_str())
    }

    /// Whether the task is STOPPED (on disk only).
    pub fn contains_key(&self, id: &str) -> bool {
        self.value(id).is_some()
    }

    /// How many tasks are STOPPED.
    pub fn len(&self) -> usize {
        self.compact.len() + self.other.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every STOPPED task's id, in no order.
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.compact
            .keys()
            .map(|n| Self::name(*n))
            .chain(self.other.keys().cloned())
    }

    /// Every STOPPED task, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (String, StoppedTask)> + '_ {
        self.compact
            .iter()
            .map(|(n, v)| (Self::name(*n), self.entry(*v)))
            .chain(
                self.other
                    .iter()
                    .map(|(id, v)| (id.clone(), self.entry(*v))),
            )
    }

    /// The ids of the tasks that stopped before `cutoff_ms`.
    pub fn stopped_before(&self, cutoff_ms: i64) -> Vec<String> {
        self.compact
            .iter()
            .filter(|(_, (_, at))| *at < cutoff_ms)
            .map(|(n, _)| Self::name(*n))
            .chain(
                self.other
                    .iter()
                    .filter(|(_, (_, at))| *at < cutoff_ms)
                    .map(|(id, _)| id.clone()),
            )
            .collect()
    }
}

/// What memory keeps of a STOPPED task: enough for lookups by cluster and
/// for retention; the record itself is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedTask {
    /// Cluster name.
    pub cluster: String,
    /// Unix ms of `stoppedAt` (0 if unknown).
    pub stopped_at_ms: i64,
}

/// A task's runnable spec, merged once at placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// `bridge`, `host`, `none`, `awsvpc`.
    pub network_mode: String,
    /// The definition's volumes.
    pub volumes: Vec<serde_json::Value>,
    /// Containers in definition order, overrides merged.
    pub containers: Vec<crate::model::task_definition::ContainerDefinition>,
}

/// A container instance, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// 32-hex id (the key).
    pub id: String,
    /// Cluster name.
    pub cluster: String,
    /// Long ARN.
    pub arn: String,
    /// Host identifier the agent reported.
    pub ec2_instance_id: String,
    /// ACTIVE, DRAINING, INACTIVE.
    pub status: Status,
    /// EXTERNAL or EC2.
    pub launch_type: LaunchType,
    /// The capacity provider (agent pool) the agent joined.
    #[serde(default)]
    pub capacity_provider: Option<String>,
    /// GPU ids the agent declared.
    #[serde(default)]
    pub gpu_ids: Vec<String>,
    /// Registered CPU units.
    pub cpu: i64,
    /// Registered MiB.
    pub memory: i64,
    /// Agent-reserved TCP ports.
    pub reserved_tcp: BTreeSet<u16>,
    /// Agent-reserved UDP ports.
    pub reserved_udp: BTreeSet<u16>,
    /// Attributes the agent reports (built-in, capabilities, its options).
    pub attributes: Vec<Attribute>,
    /// Custom attributes set with PutAttributes (kept across re-registration).
    #[serde(default)]
    pub custom_attributes: Vec<Attribute>,
    /// Agent and Docker versions.
    pub version_info: VersionInfo,
    /// First registration.
    pub registered_at: Timestamp,
    /// Bumped on every change.
    pub version: i64,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Hex SHA-256 of the instance secret its agent holds (`None` only for
    /// instances registered before secrets existed; the next registration
    /// sets it).
    #[serde(default)]
    pub secret_sha256: Option<String>,
}

/// What only lives in memory about an instance: its session and the
/// resources its tasks hold.
#[derive(Debug)]
pub struct InstanceLive {
    /// Whether an agent session is open.
    pub connected: bool,
    /// Incremented per session; a closing session only disconnects the
    /// instance if no newer session replaced it.
    pub session: u64,
    /// When the agent last connected.
    pub connected_at: Option<Timestamp>,
    /// Whether the agent's Docker Engine answers, as its last heartbeat
    /// said: (OK?, detail, last report, last change).
    pub runtime: Option<RuntimeHealth>,
    /// Since when no session is open (load time for instances loaded
    /// disconnected, so a restart does not make every host look lost).
    pub disconnected_at: Option<Timestamp>,
    /// Non-STOPPED tasks on the instance.
    pub active_tasks: BTreeSet<String>,
    /// CPU held by those tasks.
    pub used_cpu: i64,
    /// MiB held by those tasks.
    pub used_memory: i64,
    /// Static TCP ports held by those tasks.
    pub used_tcp: BTreeSet<u16>,
    /// Static UDP ports held by those tasks.
    pub used_udp: BTreeSet<u16>,
    /// GPU ids held by those tasks.
    pub used_gpus: BTreeSet<String>,
    /// Task group -> number of those tasks in it.
    pub groups: FastMap<String, usize>,
    /// Tasks on the instance with desired status RUNNING.
    pub running_desired: usize,
    /// (name, value) of every attribute, shared with placement candidates.
    pub attributes: Arc<Vec<(String, Option<String>)>>,
    /// Bumped whenever the desired task set changes; published on `notify`
    /// once the change is durable.
    pub generation: u64,
    /// The session's sender waits on this.
    pub notify: Arc<watch::Sender<u64>>,
}

/// What an instance's agent last said of its Docker Engine.
#[derive(Debug, Clone)]
pub struct RuntimeHealth {
    /// Whether it answers.
    pub ok: bool,
    /// Why not, when it does not.
    pub detail: String,
    /// When the agent last said so.
    pub reported: Timestamp,
    /// When it last changed.
    pub changed: Timestamp,
}

impl InstanceLive {
    /// Whether the agent may be given tasks: connected, and its Docker
    /// Engine answering.
    pub fn usable(&self) -> bool {
        self.connected && self.runtime.as_ref().is_none_or(|r| r.ok)
    }

    fn new() -> Self {
        InstanceLive {
            connected: false,
            session: 0,
            connected_at: None,
            disconnected_at: Some(Timestamp::now()),
            runtime: None,
            active_tasks: BTreeSet::new(),
            used_cpu: 0,
            used_memory: 0,
            used_tcp: BTreeSet::new(),
            used_udp: BTreeSet::new(),
            used_gpus: BTreeSet::new(),
            groups: FastMap::default(),
            running_desired: 0,
            attributes: Arc::new(Vec::new()),
            generation: 1,
            notify: Arc::new(watch::channel(1).0),
        }
    }
}

/// A deployment of a service, as stored (counts are derived from tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// `ecs-svc/<19 digits>`; its tasks carry it as `startedBy`.
    pub id: String,
    /// PRIMARY or ACTIVE (INACTIVE ones are dropped).
    pub status: DeploymentStatus,
    /// Task definition ARN.
    pub task_definition: String,
    /// Tasks of it that failed to start or to stay healthy.
    pub failed_tasks: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// IN_PROGRESS, COMPLETED, FAILED.
    pub rollout_state: RolloutState,
    /// Why.
    pub rollout_state_reason: String,
}

/// A service, as stored: its desired state, its deployments and events,
/// and the scheduler's memory (throttle, steadiness).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Cluster name.
    pub cluster: String,
    /// Service name (unique per cluster among ACTIVE and DRAINING).
    pub name: String,
    /// ACTIVE, DRAINING, INACTIVE.
    pub status: Status,
    /// Tasks to keep running (REPLICA); eligible instances (DAEMON).
    pub desired_count: i64,
    /// REPLICA or DAEMON.
    pub scheduling_strategy: SchedulingStrategy,
    /// Launch type, when given.
    pub launch_type: Option<LaunchType>,
    /// Capacity provider strategy, when given.
    pub capacity_provider_strategy: Vec<crate::model::placement::CapacityProviderStrategyItem>,
    /// With defaults filled in.
    pub deployment_configuration: crate::model::service::DeploymentConfiguration,
    /// Placement constraints.
    pub placement_constraints: Vec<crate::model::placement::PlacementConstraint>,
    /// Placement strategy.
    pub placement_strategy: Vec<crate::model::placement::PlacementStrategy>,
    /// awsvpc network configuration.
    pub network_configuration: Option<serde_json::Value>,
    /// Seconds during which failing health checks do not count.
    pub health_check_grace_period_seconds: Option<i64>,
    /// Recorded.
    pub load_balancers: Vec<serde_json::Value>,
    /// Recorded.
    pub service_registries: Vec<serde_json::Value>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Managed tags.
    pub enable_ecs_managed_tags: bool,
    /// `TASK_DEFINITION`, `SERVICE`, `NONE`.
    pub propagate_tags: String,
    /// ECS Exec.
    pub enable_execute_command: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// The creating caller.
    pub created_by: Option<String>,
    /// CreateService's client token, if any.
    pub client_token: Option<String>,
    /// Canonical create request without its token (idempotency).
    pub fingerprint: String,
    /// PRIMARY first.
    pub deployments: Vec<DeploymentRecord>,
    /// Newest first, at most 100.
    pub events: Vec<crate::model::service::ServiceEvent>,
    /// Consecutive tasks that failed to start or stay up.
    pub consecutive_failures: u32,
    /// No launch before this (the throttle).
    pub throttled_until: Option<Timestamp>,
    /// Whether the last round found the service steady.
    pub steady: bool,
    /// When it became DRAINING or INACTIVE.
    pub status_changed_at: Timestamp,
    /// Task definition of the last COMPLETED deployment (the circuit
    /// breaker's rollback target).
    #[serde(default)]
    pub last_completed: Option<String>,
}

/// A RunTask idempotency token, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Cluster name.
    pub cluster: String,
    /// The token.
    pub token: String,
    /// Canonical request the token was first used with.
    pub fingerprint: String,
    /// Tasks it created.
    pub task_arns: Vec<String>,
    /// Failures it reported, replayed on retry.
    pub failures: Vec<crate::model::Failure>,
    /// When first used (tokens expire after a while).
    pub created_at: Timestamp,
}

/// Everything the control plane knows.
#[derive(Debug, Default)]
pub struct State {
    /// By name, INACTIVE ones included.
    pub clusters: BTreeMap<String, ClusterRecord>,
    /// Family -> revision -> definition.
    pub families: BTreeMap<String, BTreeMap<u32, TaskDefinitionRecord>>,
    /// Tasks that have not stopped, by id. A STOPPED task never changes
    /// again (but for its tags) and lives on disk only: `stopped` indexes
    /// it, and `ControlPlane` reads it from the store when asked.
    pub tasks: FastMap<String, TaskRecord>,
    /// STOPPED tasks kept on disk, by id.
    pub stopped: StoppedIndex,
    /// By instance id.
    pub instances: FastMap<String, InstanceRecord>,
    /// By instance id, for every instance in `instances`.
    pub live: FastMap<String, InstanceLive>,
    /// By (cluster, token).
    pub tokens: FastMap<(String, String), TokenRecord>,
    /// Capacity providers by name, INACTIVE ones included.
    pub capacity_providers: BTreeMap<String, CapacityProviderRecord>,
    /// Services by (cluster, name), INACTIVE ones included until expired.
    pub services: BTreeMap<(String, String), ServiceRecord>,
    /// Account settings by (principal ARN, setting name).
    pub account_settings: BTreeMap<(String, String), AccountSettingRecord>,
    /// Tasks kept, by (cluster, last status): kept with every install and
    /// removal, so the metrics and the systemd status need no pass over
    /// every task.
    pub task_counts: BTreeMap<(String, TaskStatus), usize>,
    /// Not-STOPPED tasks of each service, by (cluster, `service:NAME` group).
    pub service_tasks: FastMap<(String, String), BTreeSet<String>>,
    /// Services a change touched since the scheduler's last round: the
    /// service record, or one of its tasks. The change feed's payload.
    pub dirty_services: BTreeSet<(String, String)>,
    /// A change that can touch any service (an instance registered,
    /// drained, connected or lost; a reload): the next round takes them all.
    pub all_services_dirty: bool,
    /// How to undo the installed changes the store has not yet made durable.
    pub journal: Journal,
}

/// Undo entries of installed commits, by the store's commit sequence.
/// Entries go once the store says their commit is durable; what is left
/// when the store fails is undone, newest first.
#[derive(Debug, Default)]
pub struct Journal {
    entries: VecDeque<(u64, Vec<Undo>)>,
}

impl Journal {
    /// Keeps the undo of commit `seq`.
    pub fn record(&mut self, seq: u64, undo: Vec<Undo>) {
        self.entries.push_back((seq, undo));
    }

    /// Drops the entries of commits up to `durable`.
    pub fn forget_durable(&mut self, durable: u64) {
        while self.entries.front().is_some_and(|(seq, _)| *seq <= durable) {
            self.entries.pop_front();
        }
    }

    /// The undo of every commit after `durable`, oldest first; the journal
    /// is empty afterwards.
    pub fn take_after(&mut self, durable: u64) -> Vec<Undo> {
        self.forget_durable(durable);
        self.entries.drain(..).flat_map(|(_, undo)| undo).collect()
    }
}

/// Store keys. Fixed-width revisions keep a family's revisions in order.
pub mod key {
    /// `cluster/<name>`
    pub fn cluster(name: &str) -> String {
        format!("cluster/{name}")
    }
    /// `taskdef/<family>/<revision>`
    pub fn task_definition(family: &str, revision: u32) -> String {
        format!("taskdef/{family}/{revision:010}")
    }
    /// `task/<id>`
    pub fn task(id: &str) -> String {
        format!("task/{id}")
    }
    /// `instance/<id>`
    pub fn instance(id: &str) -> String {
        format!("instance/{id}")
    }
    /// `token/<cluster>/<token>`
    pub fn token(cluster: &str, token: &str) -> String {
        format!("token/{cluster}/{token}")
    }
    /// `capacity-provider/<name>`
    pub fn capacity_provider(name: &str) -> String {
        format!("capacity-provider/{name}")
    }
    /// `service/<cluster>/<name>`
    pub fn service(cluster: &str, name: &str) -> String {
        format!("service/{cluster}/{name}")
    }
    /// `account-setting/<name>/<principal ARN>`
    pub fn account_setting(name: &str, principal_arn: &str) -> String {
        format!("account-setting/{name}/{principal_arn}")
    }
}

impl State {
    /// Every record, in no particular order.
    pub fn records(&self) -> Vec<AnyRecord> {
        let mut out: Vec<AnyRecord> = Vec::new();
        out.extend(self.clusters.values().cloned().map(AnyRecord::Cluster));
        out.extend(
            self.families
                .values()
                .flat_map(|f| f.values())
                .cloned()
                .map(AnyRecord::TaskDefinition),
        );
        out.extend(self.instances.values().cloned().map(AnyRecord::Instance));
        out.extend(self.tasks.values().cloned().map(AnyRecord::Task));
        out.extend(self.tokens.values().cloned().map(AnyRecord::Token));
        out.extend(
            self.capacity_providers
                .values()
                .cloned()
                .map(AnyRecord::CapacityProvider),
        );
        out.extend(self.services.values().cloned().map(AnyRecord::Service));
        out.extend(
            self.account_settings
                .values()
                .cloned()
                .map(AnyRecord::AccountSetting),
        );
        out
    }

    /// Every record, encoded and in key order, followed by the derived
    /// indexes: two states with the same digest answer every request alike.
    /// Tests compare digests; snapshots verify with them.
    pub fn digest(&self) -> String {
        use std::fmt::Write;
        let mut records: Vec<(String, String)> = self
            .records()
            .iter()
            .map(|r| {
                let value = r
                    .encode()
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_else(|e| format!("<{e}>"));
                (r.key(), value)
            })
            .collect();
        records.sort();
        let mut out = String::new();
        for (k, v) in records {
            let _ = writeln!(out, "{k} {v}");
        }
        for c in self.clusters.values() {
            let _ = writeln!(
                out,
                "cluster-index/{} {:?} {:?} {:?}",
                c.name, c.instance_ids, c.task_ids, c.running_ids
            );
        }
        let _ = writeln!(out, "task-counts {:?}", self.task_counts);
        let mut stopped: Vec<_> = self.stopped.iter().collect();
        stopped.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, s) in stopped {
            let _ = writeln!(out, "stopped/{id} {} {}", s.cluster, s.stopped_at_ms);
        }
        let mut live: Vec<_> = self.live.iter().collect();
        live.sort_by(|a, b| a.0.cmp(b.0));
        for (id, l) in live {
            let mut groups: Vec<_> = l.groups.iter().collect();
            groups.sort();
            let _ = writeln!(
                out,
                "live/{id} tasks={:?} cpu={} memory={} tcp={:?} udp={:?} gpus={:?} groups={groups:?} running_desired={}",
                l.active_tasks,
                l.used_cpu,
                l.used_memory,
                l.used_tcp,
                l.used_udp,
                l.used_gpus,
                l.running_desired
            );
        }
        out
    }

    /// The active cluster called `name`.
    pub fn active_cluster(&self, name: &str) -> Option<&ClusterRecord> {
        self.clusters.get(name).filter(|c| c.is_active())
    }

    /// The live part of an instance (present for every stored instance).
    pub fn live(&self, instance_id: &str) -> Option<&InstanceLive> {
        self.live.get(instance_id)
    }

    /// Installs a cluster record (keeping the derived indexes of an existing one).
    pub fn install_cluster(&mut self, mut record: ClusterRecord) -> Installed {
        let previous = self.clusters.remove(&record.name).map(|mut old| {
            record.instance_ids = std::mem::take(&mut old.instance_ids);
            record.task_ids = std::mem::take(&mut old.task_ids);
            record.running_ids = std::mem::take(&mut old.running_ids);
            AnyRecord::Cluster(old)
        });
        self.clusters.insert(record.name.clone(), record);
        Installed {
            previous,
            woken: None,
        }
    }

    /// Removes a cluster record (only ever one just created: its derived
    /// indexes are empty).
    pub fn remove_cluster(&mut self, record: &ClusterRecord) -> Option<ClusterRecord> {
        self.clusters.remove(&record.name)
    }

    /// Installs a capacity provider record.
    pub fn install_capacity_provider(&mut self, record: CapacityProviderRecord) -> Installed {
        Installed {
            previous: self
                .capacity_providers
                .insert(record.name.clone(), record)
                .map(AnyRecord::CapacityProvider),
            woken: None,
        }
    }

    /// Removes a capacity provider record.
    pub fn remove_capacity_provider(
        &mut self,
        record: &CapacityProviderRecord,
    ) -> Option<CapacityProviderRecord> {
        self.capacity_providers.remove(&record.name)
    }

    /// Installs a client token record.
    pub fn install_token(&mut self, record: TokenRecord) -> Installed {
        Installed {
            previous: self
                .tokens
                .insert((record.cluster.clone(), record.token.clone()), record)
                .map(AnyRecord::Token),
            woken: None,
        }
    }

    /// Removes a client token record.
    pub fn remove_token(&mut self, record: &TokenRecord) -> Option<TokenRecord> {
        self.tokens
            .remove(&(record.cluster.clone(), record.token.clone()))
    }

    /// Installs an instance record and its live part.
    pub fn install_instance(&mut self, record: InstanceRecord) -> Installed {
        self.all_services_dirty = true;
        let live = self
            .live
            .entry(record.id.clone())
            .or_insert_with(InstanceLive::new);
        live.attributes = Arc::new(
            record
                .all_attributes()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
        );
        if let Some(cluster) = self.clusters.get_mut(&record.cluster) {
            if record.status == Status::Inactive {
                cluster.instance_ids.remove(&record.id);
            } else {
                cluster.instance_ids.insert(record.id.clone());
            }
        }
        Installed {
            previous: self
                .instances
                .insert(record.id.clone(), record)
                .map(AnyRecord::Instance),
            woken: None,
        }
    }

    /// Removes an instance record (only ever one just registered: no task
    /// holds its resources) and its live part.
    pub fn remove_instance(&mut self, record: &InstanceRecord) -> Option<InstanceRecord> {
        self.all_services_dirty = true;
        let removed = self.instances.remove(&record.id)?;
        self.live.remove(&record.id);
        if let Some(cluster) = self.clusters.get_mut(&removed.cluster) {
            cluster.instance_ids.remove(&removed.id);
        }
        Some(removed)
    }

    /// Moves a task in or out of `task_counts`.
    /// What [`State::install_task`] does for a STOPPED task not yet known,
    /// from the few members it reads (startup installs the STOPPED history
    /// this way, without decoding whole records).
    pub fn install_stopped_task(
        &mut self,
        id: &str,
        cluster: &str,
        group: &str,
        stopped_at_ms: i64,
    ) {
        self.count_task(cluster, TaskStatus::Stopped, true);
        if let Some(c) = self.clusters.get_mut(cluster) {
            c.task_ids.insert(id.to_owned());
        }
        if let Some(service) = group.strip_prefix("service:") {
            self.dirty_services
                .insert((cluster.to_owned(), service.to_owned()));
        }
        self.stopped.insert(
            id,
            StoppedTask {
                cluster: cluster.to_owned(),
                stopped_at_ms,
            },
        );
    }

    fn count_task(&mut self, cluster: &str, status: TaskStatus, added: bool) {
        let key = (cluster.to_owned(), status);
        if added {
            *self.task_counts.entry(key).or_default() += 1;
        } else if let Some(n) = self.task_counts.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.task_counts.remove(&key);
            }
        }
    }

    /// Installs a task record, moving resources and the desired set of its
    /// instance to match, and says whether the instance's desired set changed.
    /// A STOPPED record goes to disk only: memory keeps its `stopped`
    /// entry. Replacing a STOPPED record (its tags) returns the new record
    /// as `previous`: memory holds nothing else of it to restore.
    pub fn install_task(&mut self, record: TaskRecord) -> Installed {
        let old = self.tasks.remove(&record.id);
        let was_cold = old.is_none() && self.stopped.remove(&record.id).is_some();
        if let Some(o) = &old {
            self.count_task(&o.cluster, o.task.last_status, false);
        }
        if was_cold {
            self.count_task(&record.cluster, TaskStatus::Stopped, false);
        }
        self.count_task(&record.cluster, record.task.last_status, true);
        let was_active = old
            .as_ref()
            .is_some_and(|o| o.task.last_status.holds_resources());
        let is_active = record.task.last_status.holds_resources();
        let desired_changed = match &old {
            None => is_active,
            Some(o) => {
                was_active != is_active || o.task.desired_status != record.task.desired_status
            }
        };
        let counts = |t: &TaskRecord| {
            t.task.last_status.holds_resources() && t.task.desired_status == TaskStatus::Running
        };
        let was_running = old.as_ref().is_some_and(counts);
        let is_running = counts(&record);
        if let Some(cluster) = self.clusters.get_mut(&record.cluster) {
            cluster.task_ids.insert(record.id.clone());
            match (was_running, is_running) {
                (false, true) => {
                    cluster.running_ids.insert(record.id.clone());
                }
                (true, false) => {
                    cluster.running_ids.remove(&record.id);
                }
                _ => {}
            }
        }
        if let Some(live) = self.live.get_mut(&record.instance_id) {
            let r = &record.reservation;
            if is_active && !was_active {
                live.active_tasks.insert(record.id.clone());
                live.used_cpu += r.cpu;
                live.used_memory += r.memory;
                live.used_tcp.extend(r.tcp_ports.iter().copied());
                live.used_udp.extend(r.udp_ports.iter().copied());
                live.used_gpus.extend(r.gpu_ids.iter().cloned());
                *live.groups.entry(record.task.group.clone()).or_default() += 1;
            } else if was_active && !is_active {
                live.active_tasks.remove(&record.id);
                live.used_cpu -= r.cpu;
                live.used_memory -= r.memory;
                for p in &r.tcp_ports {
                    live.used_tcp.remove(p);
                }
                for p in &r.udp_ports {
                    live.used_udp.remove(p);
                }
                for g in &r.gpu_ids {
                    live.used_gpus.remove(g);
                }
                if let Some(n) = live.groups.get_mut(&record.task.group) {
                    *n -= 1;
                    if *n == 0 {
                        live.groups.remove(&record.task.group);
                    }
                }
            }
            if desired_changed {
                live.generation += 1;
            }
            match (was_running, is_running) {
                (false, true) => live.running_desired += 1,
                (true, false) => live.running_desired = live.running_desired.saturating_sub(1),
                _ => {}
            }
        }
        let woken = desired_changed.then(|| record.instance_id.clone());
        if let Some(service) = record.task.group.strip_prefix("service:") {
            self.dirty_services
                .insert((record.cluster.clone(), service.to_owned()));
            let k = (record.cluster.clone(), record.task.group.clone());
            if record.task.last_status == TaskStatus::Stopped {
                if let Some(ids) = self.service_tasks.get_mut(&k) {
                    ids.remove(&record.id);
                    if ids.is_empty() {
                        self.service_tasks.remove(&k);
                    }
                }
            } else {
                self.service_tasks
                    .entry(k)
                    .or_default()
                    .insert(record.id.clone());
            }
        }
        let previous = match old {
            Some(o) => Some(AnyRecord::Task(o)),
            None if was_cold => Some(AnyRecord::Task(record.clone())),
            None => None,
        };
        if record.task.last_status == TaskStatus::Stopped {
            self.stopped.insert(
                &record.id,
                StoppedTask {
                    cluster: record.cluster.clone(),
                    stopped_at_ms: record.task.stopped_at.map_or(0, |t| t.as_millis()),
                },
            );
        } else {
            self.tasks.insert(record.id.clone(), record);
        }
        Installed { previous, woken }
    }

    /// Forgets a task entirely (retention expired, or a rolled-back
    /// placement), releasing what it held on its instance.
    pub fn remove_task(&mut self, record: &TaskRecord) -> Option<TaskRecord> {
        if let Some(cold) = self.stopped.remove(&record.id) {
            self.count_task(&cold.cluster, TaskStatus::Stopped, false);
            if let Some(cluster) = self.clusters.get_mut(&cold.cluster) {
                cluster.task_ids.remove(&record.id);
            }
            // Memory held only the index: the caller's record (read from
            // disk) is what comes back on an undo.
            return Some(record.clone());
        }
        let current = self.tasks.get(&record.id)?;
        let original = if current.task.last_status.holds_resources() {
            // Release through the one path that accounts for resources.
            let original = current.clone();
            let mut stopped = original.clone();
            stopped.task.last_status = TaskStatus::Stopped;
            stopped.task.desired_status = TaskStatus::Stopped;
            self.install_task(stopped);
            self.stopped.remove(&record.id);
            self.count_task(&original.cluster, TaskStatus::Stopped, false);
            original
        } else {
            let removed = self.tasks.remove(&record.id)?;
            self.count_task(&removed.cluster, removed.task.last_status, false);
            removed
        };
        if let Some(cluster) = self.clusters.get_mut(&original.cluster) {
            cluster.task_ids.remove(&record.id);
        }
        Some(original)
    }

    /// Installs a service record.
    pub fn install_service(&mut self, record: ServiceRecord) -> Installed {
        self.dirty_services
            .insert((record.cluster.clone(), record.name.clone()));
        Installed {
            previous: self
                .services
                .insert((record.cluster.clone(), record.name.clone()), record)
                .map(AnyRecord::Service),
            woken: None,
        }
    }

    /// Installs an account setting.
    pub fn install_account_setting(&mut self, record: AccountSettingRecord) -> Installed {
        Installed {
            previous: self
                .account_settings
                .insert((record.principal_arn.clone(), record.name.clone()), record)
                .map(AnyRecord::AccountSetting),
            woken: None,
        }
    }

    /// Removes an account setting.
    pub fn remove_account_setting(
        &mut self,
        record: &AccountSettingRecord,
    ) -> Option<AccountSettingRecord> {
        self.account_settings
            .remove(&(record.principal_arn.clone(), record.name.clone()))
    }

    /// Removes a service record.
    pub fn remove_service(&mut self, record: &ServiceRecord) -> Option<ServiceRecord> {
        self.services
            .remove(&(record.cluster.clone(), record.name.clone()))
    }

    /// Installs a task definition revision.
    pub fn install_task_definition(&mut self, record: TaskDefinitionRecord) -> Installed {
        let previous = self
            .families
            .entry(record.definition.family.clone())
            .or_default()
            .insert(record.definition.revision, record)
            .map(AnyRecord::TaskDefinition);
        Installed {
            previous,
            woken: None,
        }
    }

    /// Removes a task definition revision.
    pub fn remove_task_definition(
        &mut self,
        record: &TaskDefinitionRecord,
    ) -> Option<TaskDefinitionRecord> {
        let family = &record.definition.family;
        let revisions = self.families.get_mut(family)?;
        let removed = revisions.remove(&record.definition.revision);
        if revisions.is_empty() {
            self.families.remove(family);
        }
        removed
    }

    /// Counts of a cluster's tasks: (pending, running) by `lastStatus`.
    pub fn cluster_task_counts(&self, cluster: &ClusterRecord) -> (i64, i64) {
        // From the counts kept at install time: no pass over the tasks.
        let count = |status: TaskStatus| {
            self.task_counts
                .get(&(cluster.name.clone(), status))
                .copied()
                .unwrap_or(0) as i64
        };
        (
            count(TaskStatus::Pending) + count(TaskStatus::Provisioning),
            count(TaskStatus::Running),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(cluster: &str, at: i64) -> StoppedTask {
        StoppedTask {
            cluster: cluster.to_owned(),
            stopped_at_ms: at,
        }
    }

    #[test]
    fn the_stopped_index_keeps_ids_clusters_and_times_compactly() {
        let mut index = StoppedIndex::default();
        let a = "019b0000000070008000000000000001";
        let b = "00000000000000000000000000000000";
        let odd = "Not-A-Hex-Id";
        let upper = "019B0000000070008000000000000002";
        assert_eq!(index.insert(a, stopped("web", 10)), None);
        assert_eq!(index.insert(b, stopped("batch", 20)), None);
        assert_eq!(index.insert(odd, stopped("web", 30)), None);
        assert_eq!(index.insert(upper, stopped("web", 40)), None);
        assert_eq!(index.len(), 4);
        assert_eq!(index.clusters.len(), 2, "cluster names are interned");
        assert_eq!(index.compact.len(), 2);
        assert_eq!(index.get(a), Some(stopped("web", 10)));
        assert_eq!(index.cluster_of(b), Some("batch"));
        assert_eq!(index.get(upper), Some(stopped("web", 40)), "kept as given");
        assert!(!index.contains_key("019b0000000070008000000000000003"));
        let mut keys: Vec<String> = index.keys().collect();
        keys.sort();
        let mut expected = vec![a, b, odd, upper];
        expected.sort();
        assert_eq!(keys, expected, "ids come back exactly, leading zeros too");
        let mut before = index.stopped_before(25);
        before.sort();
        assert_eq!(before, vec![b, a]);
        assert_eq!(
            index.insert(a, stopped("web", 11)),
            Some(stopped("web", 10))
        );
        assert_eq!(index.remove(odd), Some(stopped("web", 30)));
        assert_eq!(index.remove(odd), None);
        assert_eq!(index.iter().count(), 3);
    }
}
