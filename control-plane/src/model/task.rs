//! Tasks: the Task and Container output shapes, overrides, and the request
//! and response shapes of RunTask, StartTask, StopTask, DescribeTasks and
//! ListTasks.

use super::common::{Attribute, Failure, KeyValuePair, Tag};
use super::placement::{CapacityProviderStrategyItem, PlacementConstraint, PlacementStrategy};
use super::task_definition::{EnvironmentFile, ResourceRequirement};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Task `lastStatus`/`desiredStatus` values, in lifecycle order: a task's
/// `lastStatus` only ever moves forward through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Before launch work.
    Provisioning,
    /// Waiting for the agent: pulls, container creation.
    Pending,
    /// Post-launch steps.
    Activating,
    /// Running.
    Running,
    /// Pre-stop steps.
    Deactivating,
    /// The agent is stopping containers.
    Stopping,
    /// Post-stop cleanup.
    Deprovisioning,
    /// Terminal.
    Stopped,
}

impl TaskStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    /// Whether the task still holds its instance's resources.
    pub fn holds_resources(self) -> bool {
        self != TaskStatus::Stopped
    }
}

/// Container `lastStatus` values, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerStatus {
    /// Not started yet.
    Pending,
    /// Started.
    Running,
    /// Exited or never started.
    Stopped,
}

/// A host port bound to a container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    /// Host address, `0.0.0.0` or `::`.
    #[serde(rename = "bindIP")]
    pub bind_ip: String,
    /// Port inside the container.
    pub container_port: i64,
    /// Port on the host.
    pub host_port: i64,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// A container of a task, as DescribeTasks reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// `arn:aws:ecs:R:A:container/<cluster>/<task id>/<uuid>`.
    pub container_arn: String,
    /// The owning task.
    pub task_arn: String,
    /// Name from the container definition.
    pub name: String,
    /// Image from the container definition.
    pub image: String,
    /// `sha256:...` once the agent knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Docker container id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// PENDING, RUNNING, STOPPED.
    pub last_status: ContainerStatus,
    /// Set once the container exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why the container stopped abnormally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Published ports.
    pub network_bindings: Vec<NetworkBinding>,
    /// awsvpc interfaces.
    pub network_interfaces: Vec<serde_json::Value>,
    /// `UNKNOWN` without a health check.
    pub health_status: String,
    /// CPU units, `"0"` when unset.
    pub cpu: String,
    /// Hard limit MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Soft limit MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
    /// GPUs assigned to the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_ids: Option<Vec<String>>,
}

/// Per-container overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    /// Must name a container of the task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Replaces the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Added to / overriding the definition's variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    /// Replaces the definition's environment files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    /// CPU units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Hard memory limit MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Soft memory limit MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// GPU count etc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

/// Task overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    /// Per-container overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_overrides: Option<Vec<ContainerOverride>>,
    /// Task CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Replaces the task role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// Replaces the execution role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// `{sizeInGiB}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<serde_json::Value>,
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_accelerator_overrides: Option<Vec<serde_json::Value>>,
}

impl TaskOverride {
    /// The override for container `name`, if any.
    pub fn container(&self, name: &str) -> Option<&ContainerOverride> {
        self.container_overrides
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    }
}

/// A task as ECS describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// `arn:aws:ecs:R:A:task/<cluster>/<id>`.
    pub task_arn: String,
    /// The cluster.
    pub cluster_arn: String,
    /// Resolved `family:revision` ARN.
    pub task_definition_arn: String,
    /// Where the task was placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    /// One per container definition.
    pub containers: Vec<Container>,
    /// awsvpc: the task's network interface (`ElasticNetworkInterface`),
    /// PRECREATED -> ATTACHED -> DELETED.
    #[serde(default)]
    pub attachments: Vec<serde_json::Value>,
    /// Lifecycle position.
    pub last_status: TaskStatus,
    /// RUNNING, then STOPPED once a stop is requested or decided.
    pub desired_status: TaskStatus,
    /// `UNKNOWN` without health checks.
    pub health_status: String,
    /// `CONNECTED` while the instance's agent is connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<String>,
    /// Last time the instance's agent connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity_at: Option<Timestamp>,
    /// Task CPU units, when the definition or overrides size the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task memory MiB, when the definition or overrides size the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Task group, default `family:<family>`.
    pub group: String,
    /// Free-form tag set by the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// `EC2` or `EXTERNAL`: the placed instance's kind.
    pub launch_type: String,
    /// The capacity provider (agent pool) the task was placed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    /// The ephemeral storage the task asked for (recorded; see the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<serde_json::Value>,
    /// Echo of the overrides, one entry per container.
    pub overrides: TaskOverride,
    /// e.g. `ecs.cpu-architecture`.
    pub attributes: Vec<Attribute>,
    /// The instance's zone attribute, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// ECS Exec flag.
    pub enable_execute_command: bool,
    /// When the task was created (entered PENDING).
    pub created_at: Timestamp,
    /// First image pull began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    /// Last image pull finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    /// PENDING -> RUNNING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When the stop was requested or decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<Timestamp>,
    /// When the containers stopped executing (agent clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<Timestamp>,
    /// Reached STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    /// Why it stopped (ECS `TaskStopCode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// Tags; DescribeTasks shows them only with `include: [TAGS]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// Bumped on every state change.
    pub version: i64,
}

/// `RunTask` input. Members are kept as given; validation turns them into
/// typed decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskRequest {
    /// Capacity provider strategy (exclusive with `launchType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    /// Name or ARN; default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// 1-10; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// Adds the `aws:ecs:clusterName` tag.
    #[serde(
        rename = "enableECSManagedTags",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ecs_managed_tags: Option<bool>,
    /// ECS Exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_execute_command: Option<bool>,
    /// Task group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `EC2`, `EXTERNAL`, `FARGATE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    /// awsvpc configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<serde_json::Value>,
    /// Overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TaskOverride>,
    /// Placement constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    /// Placement strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    /// Fargate only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// `TASK_DEFINITION`, `SERVICE`, `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<String>,
    /// Caller reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// Free-form tag, filterable in ListTasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// Task tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// Idempotency token (SDKs fill it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// EBS volumes (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_configurations: Option<Vec<serde_json::Value>>,
}

/// `RunTask`/`StartTask` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskResponse {
    /// Tasks placed.
    pub tasks: Vec<Task>,
    /// One per task that could not be placed.
    pub failures: Vec<Failure>,
}

/// `StartTask` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Up to 10 ids or ARNs; one task each. Required.
    pub container_instances: Option<Vec<String>>,
    /// Adds the `aws:ecs:clusterName` tag.
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    /// ECS Exec.
    pub enable_execute_command: Option<bool>,
    /// Task group.
    pub group: Option<String>,
    /// awsvpc configuration.
    pub network_configuration: Option<serde_json::Value>,
    /// Overrides.
    pub overrides: Option<TaskOverride>,
    /// `TASK_DEFINITION`, `SERVICE`, `NONE`.
    pub propagate_tags: Option<String>,
    /// Caller reference.
    pub reference_id: Option<String>,
    /// Free-form tag.
    pub started_by: Option<String>,
    /// Task tags.
    pub tags: Option<Vec<Tag>>,
    /// Required.
    pub task_definition: Option<String>,
    /// EBS volumes (not supported).
    pub volume_configurations: Option<Vec<serde_json::Value>>,
}

/// `StopTask` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Task id or ARN. Required.
    pub task: Option<String>,
    /// Shown later as `stoppedReason`.
    pub reason: Option<String>,
}

/// `StopTask` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskResponse {
    /// The task as of the stop request.
    pub task: Task,
}

/// `DescribeTasks` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Up to 100 ids or ARNs. Required, non-empty.
    pub tasks: Option<Vec<String>>,
    /// `TAGS`.
    pub include: Option<Vec<String>>,
}

/// `DescribeTasks` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksResponse {
    /// Tasks found.
    pub tasks: Vec<Task>,
    /// `MISSING` for unknown tasks.
    pub failures: Vec<Failure>,
}

/// `ListTasks` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Id or ARN.
    pub container_instance: Option<String>,
    /// Task definition family.
    pub family: Option<String>,
    /// `startedBy` value.
    pub started_by: Option<String>,
    /// Service tasks (Berth has no services yet).
    pub service_name: Option<String>,
    /// `RUNNING` (default), `PENDING`, `STOPPED`.
    pub desired_status: Option<String>,
    /// `EC2`, `EXTERNAL`, `FARGATE`.
    pub launch_type: Option<String>,
    /// Daemon tasks (not supported).
    pub daemon_name: Option<String>,
    /// Page token.
    pub next_token: Option<String>,
    /// 1-100.
    pub max_results: Option<i64>,
}

/// `ListTasks` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResponse {
    /// ARNs of the page.
    pub task_arns: Vec<String>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
