//! Task definitions: the request and output shapes of RegisterTaskDefinition
//! and friends, with every container-definition member ECS defines so that
//! what a caller registers comes back unchanged and reaches the agent.

use super::common::{KeyValuePair, Tag};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A container definition: every member of ECS's `ContainerDefinition`.
/// Members Berth does not act on yet are still kept and echoed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    /// Unique within the task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Image reference passed verbatim to Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Private registry credentials reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<RepositoryCredentials>,
    /// CPU units (Docker CPU shares); `0` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Hard memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Soft memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// `name:alias` links (bridge mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
    /// Published ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    /// Default true: the task stops when an essential container stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    /// In-place restart policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<serde_json::Value>,
    /// Replaces the image's ENTRYPOINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<Vec<String>>,
    /// Replaces the image's CMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    /// Files of `VAR=VALUE` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    /// Volume mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_points: Option<Vec<MountPoint>>,
    /// Volumes of other containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes_from: Option<Vec<VolumeFrom>>,
    /// Linux-specific settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<serde_json::Value>,
    /// Secrets injected as environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<Secret>>,
    /// Start order and conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<ContainerDependency>>,
    /// Seconds to wait for dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<i64>,
    /// Seconds between the stop signal and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `enabled`/`disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_consistency: Option<String>,
    /// Container host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `user`, `user:group`, `uid`, `uid:gid`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// Docker `NetworkDisabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_networking: Option<bool>,
    /// Docker `Privileged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Docker `ReadonlyRootfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    /// Docker `Dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_servers: Option<Vec<String>>,
    /// Docker `DnsSearch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_search_domains: Option<Vec<String>>,
    /// Docker `ExtraHosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_hosts: Option<Vec<HostEntry>>,
    /// Docker `SecurityOpt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_security_options: Option<Vec<String>>,
    /// Docker `OpenStdin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// Docker `Tty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_terminal: Option<bool>,
    /// Docker labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_labels: Option<BTreeMap<String, String>>,
    /// Docker `Ulimits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ulimits: Option<Vec<Ulimit>>,
    /// Docker `LogConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<serde_json::Value>,
    /// Docker `Healthcheck`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<serde_json::Value>,
    /// Docker `Sysctls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_controls: Option<Vec<serde_json::Value>>,
    /// GPU and other resource requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
    /// FireLens (not supported; kept for echo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firelens_configuration: Option<serde_json::Value>,
    /// gMSA credential specs (not supported; kept for echo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_specs: Option<Vec<String>>,
}

impl ContainerDefinition {
    /// The container's name (validated present at registration).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// `essential` defaults to true.
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }
}

/// `repositoryCredentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCredentials {
    /// Reference to the credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_parameter: Option<String>,
}

/// A port mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i64>,
    /// Host port; absent or 0 means dynamic in bridge mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    /// `tcp` (default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Service Connect name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Service Connect application protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// `first-last` range of container ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port_range: Option<String>,
}

impl PortMapping {
    /// `tcp` unless `udp` was given.
    pub fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("tcp")
    }
}

/// An environment file reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentFile {
    /// Location of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `s3` in ECS.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A volume mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    /// Name of a task volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume: Option<String>,
    /// Path inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `volumesFrom` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFrom {
    /// Container of the same task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_container: Option<String>,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// A secret injected as an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Variable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the value comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<String>,
}

/// A `dependsOn` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    /// Container of the same task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// `START`, `COMPLETE`, `SUCCESS`, `HEALTHY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// An `extraHosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

/// A ulimit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    /// `nofile`, `nproc`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Soft limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_limit: Option<i64>,
    /// Hard limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_limit: Option<i64>,
}

/// A resource requirement such as `{type: GPU, value: "1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirement {
    /// `GPU` or `InferenceAccelerator`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Count, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A task-definition placement constraint (`memberOf` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionPlacementConstraint {
    /// `memberOf`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Cluster query language expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// `RegisterTaskDefinition` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterTaskDefinitionRequest {
    /// Required.
    pub family: Option<String>,
    /// Required, at least one.
    pub container_definitions: Option<Vec<ContainerDefinition>>,
    /// Role for the application.
    pub task_role_arn: Option<String>,
    /// Role for the agent.
    pub execution_role_arn: Option<String>,
    /// `bridge` (default), `host`, `awsvpc`, `none`.
    pub network_mode: Option<String>,
    /// Task volumes.
    pub volumes: Option<Vec<serde_json::Value>>,
    /// `memberOf` constraints.
    pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
    /// `EC2`, `EXTERNAL`, `FARGATE`, `MANAGED_INSTANCES`.
    pub requires_compatibilities: Option<Vec<String>>,
    /// Task CPU: `"1024"` or `"1 vCPU"`.
    pub cpu: Option<String>,
    /// Task memory: `"2048"` or `"2 GB"`.
    pub memory: Option<String>,
    /// Up to 50.
    pub tags: Option<Vec<Tag>>,
    /// `host` or `task`.
    pub pid_mode: Option<String>,
    /// `host`, `task`, `none`.
    pub ipc_mode: Option<String>,
    /// App Mesh (not supported; kept).
    pub proxy_configuration: Option<serde_json::Value>,
    /// Deprecated Elastic Inference.
    pub inference_accelerators: Option<Vec<serde_json::Value>>,
    /// Fargate ephemeral storage.
    pub ephemeral_storage: Option<serde_json::Value>,
    /// CPU architecture and OS family.
    pub runtime_platform: Option<serde_json::Value>,
    /// Default false.
    pub enable_fault_injection: Option<bool>,
}

/// A registered revision, as DescribeTaskDefinition returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    /// `arn:aws:ecs:R:A:task-definition/<family>:<revision>`.
    pub task_definition_arn: String,
    /// Containers, with ECS's defaults filled in.
    pub container_definitions: Vec<ContainerDefinition>,
    /// Family name.
    pub family: String,
    /// Role for the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// Role for the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// Effective network mode (default `bridge`).
    pub network_mode: String,
    /// 1, 2, ... per family.
    pub revision: u32,
    /// Task volumes.
    pub volumes: Vec<serde_json::Value>,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Instance attributes a host needs to run this definition, derived
    /// from the features it uses.
    #[serde(default)]
    pub requires_attributes: Vec<super::Attribute>,
    /// `memberOf` constraints.
    pub placement_constraints: Vec<TaskDefinitionPlacementConstraint>,
    /// Launch types the definition is valid for.
    pub compatibilities: Vec<String>,
    /// Echo of the request, omitted when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_compatibilities: Option<Vec<String>>,
    /// Task CPU units as an integer string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task memory MiB as an integer string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// `host` or `task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<String>,
    /// `host`, `task`, `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<String>,
    /// App Mesh (kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_configuration: Option<serde_json::Value>,
    /// Deprecated Elastic Inference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_accelerators: Option<Vec<serde_json::Value>>,
    /// Fargate ephemeral storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<serde_json::Value>,
    /// CPU architecture and OS family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<serde_json::Value>,
    /// When registered.
    pub registered_at: Timestamp,
    /// When deregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<Timestamp>,
    /// When DeleteTaskDefinitions was asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<Timestamp>,
    /// Default false.
    pub enable_fault_injection: bool,
}

impl TaskDefinition {
    /// Whether the revision can still be used to start tasks.
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }

    /// The container definition called `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.container_definitions.iter().find(|c| c.name() == name)
    }
}

/// `RegisterTaskDefinition` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterTaskDefinitionResponse {
    /// The new revision.
    pub task_definition: TaskDefinition,
    /// Its tags.
    pub tags: Vec<Tag>,
}

/// `DescribeTaskDefinition` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinitionRequest {
    /// `family`, `family:revision` or ARN. Required.
    pub task_definition: Option<String>,
    /// `TAGS`.
    pub include: Option<Vec<String>>,
}

/// `DescribeTaskDefinition` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinitionResponse {
    /// The revision.
    pub task_definition: TaskDefinition,
    /// With `include: [TAGS]` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// `ListTaskDefinitions` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsRequest {
    /// Exact family name, despite the member's name.
    pub family_prefix: Option<String>,
    /// `ACTIVE` (default), `INACTIVE`, `DELETE_IN_PROGRESS`.
    pub status: Option<String>,
    /// `ASC` (default) or `DESC`.
    pub sort: Option<String>,
    /// Page token.
    pub next_token: Option<String>,
    /// 1-100.
    pub max_results: Option<i64>,
}

/// `ListTaskDefinitions` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsResponse {
    /// ARNs of the page.
    pub task_definition_arns: Vec<String>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ListTaskDefinitionFamilies` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesRequest {
    /// True prefix match.
    pub family_prefix: Option<String>,
    /// `ACTIVE`, `INACTIVE` or `ALL` (default: all).
    pub status: Option<String>,
    /// Page token.
    pub next_token: Option<String>,
    /// 1-100.
    pub max_results: Option<i64>,
}

/// `ListTaskDefinitionFamilies` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesResponse {
    /// Family names of the page.
    pub families: Vec<String>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `DeregisterTaskDefinition` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterTaskDefinitionRequest {
    /// `family:revision` or ARN; the revision is mandatory. Required.
    pub task_definition: Option<String>,
}

/// `DeleteTaskDefinitions` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsRequest {
    /// 1-10 `family:revision` or ARNs of INACTIVE revisions. Required.
    pub task_definitions: Option<Vec<String>>,
}

/// `DeleteTaskDefinitions` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsResponse {
    /// Now DELETE_IN_PROGRESS.
    pub task_definitions: Vec<TaskDefinition>,
    /// Revisions that could not be deleted, and why.
    pub failures: Vec<super::common::Failure>,
}

/// `DeregisterTaskDefinition` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterTaskDefinitionResponse {
    /// Now INACTIVE.
    pub task_definition: TaskDefinition,
}
