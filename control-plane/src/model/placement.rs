//! Placement and capacity-provider shapes shared by RunTask, clusters and
//! capacity providers.

use super::common::Tag;
use serde::{Deserialize, Serialize};

/// A RunTask/StartTask placement constraint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementConstraint {
    /// `distinctInstance` or `memberOf`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Cluster query language expression (`memberOf` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// A placement strategy rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStrategy {
    /// `random`, `spread`, `binpack`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `instanceId`/`host`/`attribute:<name>` for spread, `cpu`/`memory` for binpack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// One item of a capacity provider strategy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    /// The provider's name. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
    /// Relative share, 0-1000 (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// Tasks placed on this provider first, 0-100000 (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<i64>,
}

/// A capacity provider: on Berth, a named pool of agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProvider {
    /// `arn:aws:ecs:R:A:capacity-provider/<name>`.
    pub capacity_provider_arn: String,
    /// Its name (what agents set with `--capacity-provider`).
    pub name: String,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Echo of an Auto Scaling group provider (recorded, no effect on Berth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group_provider: Option<serde_json::Value>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// `CREATE_COMPLETE` / `DELETE_COMPLETE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<String>,
}

/// `CreateCapacityProvider` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCapacityProviderRequest {
    /// 1-255 letters, digits, `-`, `_`; not `aws`/`ecs`/`fargate` prefixed. Required.
    pub name: Option<String>,
    /// Accepted and echoed; Berth has no Auto Scaling groups.
    pub auto_scaling_group_provider: Option<serde_json::Value>,
    /// Tags.
    pub tags: Option<Vec<Tag>>,
    /// Cluster scoping of newer ECS versions (not supported).
    pub cluster: Option<String>,
    /// ECS Managed Instances (not supported).
    pub managed_instances_provider: Option<serde_json::Value>,
}

/// `UpdateCapacityProvider` input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCapacityProviderRequest {
    /// Name or ARN. Required.
    pub name: Option<String>,
    /// `managedScaling`, `managedTerminationProtection`, `managedDraining`:
    /// recorded over the provider's, and echoed.
    pub auto_scaling_group_provider: Option<serde_json::Value>,
    /// Cluster scoping of newer ECS versions (not supported).
    pub cluster: Option<String>,
    /// ECS Managed Instances (not supported).
    pub managed_instances_provider: Option<serde_json::Value>,
}

/// `CreateCapacityProvider` / `DeleteCapacityProvider` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderResponse {
    /// The provider.
    pub capacity_provider: CapacityProvider,
}

/// `DescribeCapacityProviders` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersRequest {
    /// Names or ARNs; all when absent.
    pub capacity_providers: Option<Vec<String>>,
    /// `TAGS`.
    pub include: Option<Vec<String>>,
    /// Page token.
    pub next_token: Option<String>,
    /// 1-10 (ECS's limit for this action).
    pub max_results: Option<i64>,
}

/// `DescribeCapacityProviders` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersResponse {
    /// Providers found.
    pub capacity_providers: Vec<CapacityProvider>,
    /// `MISSING` for unknown names.
    pub failures: Vec<super::Failure>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `DeleteCapacityProvider` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCapacityProviderRequest {
    /// Name or ARN. Required.
    pub capacity_provider: Option<String>,
}

/// `PutClusterCapacityProviders` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutClusterCapacityProvidersRequest {
    /// Name or ARN. Required.
    pub cluster: Option<String>,
    /// The cluster's whole provider list (replaces it). Required (may be empty).
    pub capacity_providers: Option<Vec<String>>,
    /// The cluster's default strategy (replaces it). Required (may be empty).
    pub default_capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
}
