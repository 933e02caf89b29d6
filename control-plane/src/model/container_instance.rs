//! Container instances: the output shape and the request/response shapes of
//! the container-instance actions.

use super::common::{Attribute, Failure, Resource, Tag};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Versions the agent reported at registration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// Berth agent version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// Build hash, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_hash: Option<String>,
    /// Docker Engine version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
}

/// A container instance as ECS describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    /// `arn:aws:ecs:R:A:container-instance/<cluster>/<id>`.
    pub container_instance_arn: String,
    /// The host identifier the agent reported (host name by default).
    pub ec2_instance_id: String,
    /// The capacity provider (agent pool) the agent joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    /// Bumped on every state change.
    pub version: i64,
    /// Agent and Docker versions.
    pub version_info: VersionInfo,
    /// Registered minus what non-STOPPED tasks hold; PORTS lists ports in use.
    pub remaining_resources: Vec<Resource>,
    /// What the agent advertised; PORTS lists the agent's reserved ports.
    pub registered_resources: Vec<Resource>,
    /// `ACTIVE`, `DRAINING`, `INACTIVE`.
    pub status: String,
    /// Whether the agent's session is open.
    pub agent_connected: bool,
    /// Tasks with desiredStatus RUNNING.
    pub running_tasks_count: i64,
    /// Tasks with lastStatus PENDING.
    pub pending_tasks_count: i64,
    /// Built-in and custom attributes.
    pub attributes: Vec<Attribute>,
    /// When first registered.
    pub registered_at: Timestamp,
    /// With `include: [TAGS]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// With `include: [CONTAINER_INSTANCE_HEALTH]`: whether its agent's
    /// Docker Engine answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_status: Option<ContainerInstanceHealthStatus>,
}

/// `healthStatus` of a container instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceHealthStatus {
    /// `OK`, `IMPAIRED`, `INSUFFICIENT_DATA`, `INITIALIZING`.
    pub overall_status: String,
    /// One check: `CONTAINER_RUNTIME`.
    pub details: Vec<InstanceHealthCheckResult>,
}

/// One health check of a container instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceHealthCheckResult {
    /// `CONTAINER_RUNTIME`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `OK`, `IMPAIRED`, `INSUFFICIENT_DATA`, `INITIALIZING`.
    pub status: String,
    /// When the agent last reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Timestamp>,
    /// When it last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_change: Option<Timestamp>,
}

/// `ListContainerInstances` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Cluster query language filter.
    pub filter: Option<String>,
    /// `ACTIVE`, `DRAINING`, ...; default all but INACTIVE.
    pub status: Option<String>,
    /// Page token.
    pub next_token: Option<String>,
    /// 1-100.
    pub max_results: Option<i64>,
}

/// `ListContainerInstances` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesResponse {
    /// ARNs of the page.
    pub container_instance_arns: Vec<String>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `DescribeContainerInstances` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Up to 100 ids or ARNs. Required, non-empty.
    pub container_instances: Option<Vec<String>>,
    /// `TAGS`, `CONTAINER_INSTANCE_HEALTH`.
    pub include: Option<Vec<String>>,
}

/// `DescribeContainerInstances` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesResponse {
    /// Instances found.
    pub container_instances: Vec<ContainerInstance>,
    /// `MISSING` for unknown ones.
    pub failures: Vec<Failure>,
}

/// `DeregisterContainerInstance` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Id or ARN. Required.
    pub container_instance: Option<String>,
    /// Deregister even with tasks on it (they are stopped).
    pub force: Option<bool>,
}

/// `DeregisterContainerInstance` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceResponse {
    /// Now INACTIVE.
    pub container_instance: ContainerInstance,
}

/// `UpdateContainerInstancesState` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Up to 10 ids or ARNs. Required.
    pub container_instances: Option<Vec<String>>,
    /// `ACTIVE` or `DRAINING`. Required.
    pub status: Option<String>,
}

/// `UpdateContainerInstancesState` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateResponse {
    /// Instances as updated.
    pub container_instances: Vec<ContainerInstance>,
    /// `MISSING` for unknown ones.
    pub failures: Vec<Failure>,
}

/// `PutAttributes` / `DeleteAttributes` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributesRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// Up to 10. Required.
    pub attributes: Option<Vec<Attribute>>,
}

/// `PutAttributes` / `DeleteAttributes` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributesResponse {
    /// The attributes put or deleted.
    pub attributes: Vec<Attribute>,
}

/// `ListAttributes` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesRequest {
    /// Name or ARN; default `default`.
    pub cluster: Option<String>,
    /// `container-instance`. Required.
    pub target_type: Option<String>,
    /// Only this attribute.
    pub attribute_name: Option<String>,
    /// Only this value (with `attributeName`).
    pub attribute_value: Option<String>,
    /// Page token.
    pub next_token: Option<String>,
    /// 1-100.
    pub max_results: Option<i64>,
}

/// `ListAttributes` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesResponse {
    /// One entry per (instance, attribute), with `targetId` the instance ARN.
    pub attributes: Vec<Attribute>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
