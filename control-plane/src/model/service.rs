//! Services: the request/response shapes of the service actions, with
//! botocore's member names.

use super::common::{Failure, Tag};
use super::placement::{CapacityProviderStrategyItem, PlacementConstraint, PlacementStrategy};
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// `deploymentCircuitBreaker`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    /// Whether a failing deployment is marked FAILED.
    pub enable: Option<bool>,
    /// Whether a FAILED deployment rolls back to the last COMPLETED one.
    pub rollback: Option<bool>,
}

/// `deploymentConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    /// The circuit breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    /// Upper bound on tasks (running or pending) during a deployment, in
    /// percent of the desired count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_percent: Option<i64>,
    /// Lower bound on healthy tasks, in percent of the desired count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_percent: Option<i64>,
    /// CloudWatch alarms (recorded; Berth has no alarms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<serde_json::Value>,
    /// `ROLLING` (the only strategy Berth runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Bake time (blue/green only; recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_time_in_minutes: Option<i64>,
}

/// `deploymentController`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentController {
    /// `ECS`, `CODE_DEPLOY` or `EXTERNAL`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A service event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    /// A UUID.
    pub id: String,
    /// When it happened.
    pub created_at: Timestamp,
    /// `(service NAME) ...`.
    pub message: String,
}

/// A deployment as ECS describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/<19 digits>`.
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Task definition ARN.
    pub task_definition: String,
    /// Tasks this deployment should run.
    pub desired_count: i64,
    /// Its tasks whose last status is PENDING (or PROVISIONING).
    pub pending_count: i64,
    /// Its tasks whose last status is RUNNING.
    pub running_count: i64,
    /// Its tasks that failed to start or to stay healthy.
    pub failed_tasks: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Launch type, when the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    /// Capacity provider strategy, when the service has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// awsvpc network configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<serde_json::Value>,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`.
    pub rollout_state: String,
    /// Why it is in that state.
    pub rollout_state_reason: String,
}

/// A service as ECS describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `arn:aws:ecs:R:A:service/<cluster>/<name>`.
    pub service_arn: String,
    /// Its name.
    pub service_name: String,
    /// Its cluster's ARN.
    pub cluster_arn: String,
    /// Load balancers (recorded; Berth has none).
    pub load_balancers: Vec<serde_json::Value>,
    /// Service registries (recorded).
    pub service_registries: Vec<serde_json::Value>,
    /// `ACTIVE`, `DRAINING`, `INACTIVE`.
    pub status: String,
    /// Tasks the service keeps running.
    pub desired_count: i64,
    /// Its tasks whose last status is RUNNING.
    pub running_count: i64,
    /// Its tasks whose last status is PENDING.
    pub pending_count: i64,
    /// Launch type, when the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    /// Capacity provider strategy, when the service has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// The PRIMARY deployment's task definition ARN.
    pub task_definition: String,
    /// Deployment settings with their defaults filled in.
    pub deployment_configuration: DeploymentConfiguration,
    /// PRIMARY first, then ACTIVE ones still draining.
    pub deployments: Vec<Deployment>,
    /// Newest first, at most 100.
    pub events: Vec<ServiceEvent>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Placement constraints.
    pub placement_constraints: Vec<PlacementConstraint>,
    /// Placement strategy.
    pub placement_strategy: Vec<PlacementStrategy>,
    /// awsvpc network configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<serde_json::Value>,
    /// Grace period before failing health checks count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<i64>,
    /// `REPLICA` or `DAEMON`.
    pub scheduling_strategy: String,
    /// `{type: ECS}`.
    pub deployment_controller: DeploymentController,
    /// With `include: [TAGS]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// The caller that created it (its access key id, when signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Managed tags.
    pub enable_ecs_managed_tags: bool,
    /// `TASK_DEFINITION`, `SERVICE` or `NONE`.
    pub propagate_tags: String,
    /// ECS Exec.
    pub enable_execute_command: bool,
}

/// `CreateService` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceRequest {
    pub cluster: Option<String>,
    pub service_name: Option<String>,
    pub task_definition: Option<String>,
    pub availability_zone_rebalancing: Option<String>,
    pub load_balancers: Option<Vec<serde_json::Value>>,
    pub service_registries: Option<Vec<serde_json::Value>>,
    pub desired_count: Option<i64>,
    pub client_token: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub role: Option<String>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub network_configuration: Option<serde_json::Value>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: Option<String>,
    pub deployment_controller: Option<DeploymentController>,
    pub tags: Option<Vec<Tag>>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    pub propagate_tags: Option<String>,
    pub enable_execute_command: Option<bool>,
    pub service_connect_configuration: Option<serde_json::Value>,
    pub volume_configurations: Option<Vec<serde_json::Value>>,
    pub vpc_lattice_configurations: Option<Vec<serde_json::Value>>,
}

/// `UpdateService` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceRequest {
    pub cluster: Option<String>,
    pub service: Option<String>,
    pub desired_count: Option<i64>,
    pub task_definition: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub availability_zone_rebalancing: Option<String>,
    pub network_configuration: Option<serde_json::Value>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub platform_version: Option<String>,
    pub force_new_deployment: Option<bool>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub deployment_controller: Option<DeploymentController>,
    pub enable_execute_command: Option<bool>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    pub load_balancers: Option<Vec<serde_json::Value>>,
    pub propagate_tags: Option<String>,
    pub service_registries: Option<Vec<serde_json::Value>>,
    pub service_connect_configuration: Option<serde_json::Value>,
    pub volume_configurations: Option<Vec<serde_json::Value>>,
    pub vpc_lattice_configurations: Option<Vec<serde_json::Value>>,
}

/// `DeleteService` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteServiceRequest {
    pub cluster: Option<String>,
    pub service: Option<String>,
    pub force: Option<bool>,
}

/// `CreateService`, `UpdateService`, `DeleteService` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceResponse {
    pub service: Service,
}

/// `DescribeServices` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesRequest {
    pub cluster: Option<String>,
    pub services: Option<Vec<String>>,
    pub include: Option<Vec<String>>,
}

/// `DescribeServices` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesResponse {
    pub services: Vec<Service>,
    pub failures: Vec<Failure>,
}

/// `ListServices` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesRequest {
    pub cluster: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub launch_type: Option<String>,
    pub scheduling_strategy: Option<String>,
    pub resource_management_type: Option<String>,
}

/// `ListServices` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesResponse {
    pub service_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
