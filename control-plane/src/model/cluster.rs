//! Clusters: the stored record and the request/response shapes of the
//! cluster actions.

use super::common::{Failure, KeyValuePair, Tag};
use super::placement::CapacityProviderStrategyItem;
use serde::{Deserialize, Serialize};

/// A cluster as ECS describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// `arn:aws:ecs:R:A:cluster/<name>`.
    pub cluster_arn: String,
    /// The name.
    pub cluster_name: String,
    /// `ACTIVE`, or `INACTIVE` once deleted.
    pub status: String,
    /// ACTIVE and DRAINING instances.
    pub registered_container_instances_count: i64,
    /// Tasks whose `lastStatus` is RUNNING.
    pub running_tasks_count: i64,
    /// Tasks whose `lastStatus` is PENDING.
    pub pending_tasks_count: i64,
    /// Berth has no services yet: always 0.
    pub active_services_count: i64,
    /// With `include: [STATISTICS]`.
    pub statistics: Vec<KeyValuePair>,
    /// On create, and with `include: [TAGS]`.
    pub tags: Vec<Tag>,
    /// `containerInsights`, with `include: [SETTINGS]` and on create and
    /// update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Vec<ClusterSetting>>,
    /// Execute-command and managed-storage configuration, with `include:
    /// [CONFIGURATIONS]` and on create and update (recorded, echoed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<serde_json::Value>,
    /// The Service Connect namespace, when one was set (recorded, echoed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<serde_json::Value>,
    /// With `include: [ATTACHMENTS]`: always empty (Berth creates no Auto
    /// Scaling attachments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<serde_json::Value>>,
    /// Capacity providers attached to the cluster.
    pub capacity_providers: Vec<String>,
    /// Default strategy for RunTask without a launch type.
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

/// A cluster setting: `containerInsights` = `enabled`, `disabled` or
/// `enhanced`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSetting {
    /// `containerInsights`.
    pub name: Option<String>,
    /// `enabled`, `disabled`, `enhanced`.
    pub value: Option<String>,
}

/// `UpdateCluster` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterRequest {
    /// Name or ARN. Required.
    pub cluster: Option<String>,
    /// Settings to change (by name; others stay).
    pub settings: Option<Vec<ClusterSetting>>,
    /// Replaces the configuration when given.
    pub configuration: Option<serde_json::Value>,
    /// Replaces the Service Connect defaults when given.
    pub service_connect_defaults: Option<serde_json::Value>,
}

/// `UpdateClusterSettings` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterSettingsRequest {
    /// Name or ARN. Required.
    pub cluster: Option<String>,
    /// Settings to change (by name; others stay). Required.
    pub settings: Option<Vec<ClusterSetting>>,
}

/// `CreateCluster` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateClusterRequest {
    /// Default `default`.
    pub cluster_name: Option<String>,
    /// Up to 50.
    pub tags: Option<Vec<Tag>>,
    /// `containerInsights` (recorded; Berth's own metrics are what it
    /// means here).
    pub settings: Option<Vec<ClusterSetting>>,
    /// Execute-command configuration (recorded, echoed).
    pub configuration: Option<serde_json::Value>,
    /// Capacity providers.
    pub capacity_providers: Option<Vec<String>>,
    /// Default capacity provider strategy.
    pub default_capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    /// Service Connect namespace (recorded, echoed).
    pub service_connect_defaults: Option<serde_json::Value>,
}

/// `CreateCluster` / `DeleteCluster` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterResponse {
    /// The cluster.
    pub cluster: Cluster,
}

/// `DeleteCluster` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteClusterRequest {
    /// Name or ARN. Required.
    pub cluster: Option<String>,
}

/// `DescribeClusters` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersRequest {
    /// Names or ARNs, up to 100; default `["default"]`.
    pub clusters: Option<Vec<String>>,
    /// `ATTACHMENTS`, `CONFIGURATIONS`, `SETTINGS`, `STATISTICS`, `TAGS`.
    pub include: Option<Vec<String>>,
}

/// `DescribeClusters` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersResponse {
    /// Clusters found.
    pub clusters: Vec<Cluster>,
    /// `MISSING` for unknown names.
    pub failures: Vec<Failure>,
}

/// `ListClusters` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersRequest {
    /// Page token.
    pub next_token: Option<String>,
    /// 1-100.
    pub max_results: Option<i64>,
}

/// `ListClusters` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersResponse {
    /// ARNs of ACTIVE clusters.
    pub cluster_arns: Vec<String>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
