//! Task scale-in protection: UpdateTaskProtection, GetTaskProtection.

use super::common::Failure;
use super::time::Timestamp;
use serde::{Deserialize, Serialize};

/// `UpdateTaskProtection` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskProtectionRequest {
    /// Name or ARN. Required.
    pub cluster: Option<String>,
    /// Up to 10 task ids or ARNs. Required.
    pub tasks: Option<Vec<String>>,
    /// Required.
    pub protection_enabled: Option<bool>,
    /// 1-2880 minutes; default 120.
    pub expires_in_minutes: Option<i64>,
}

/// `GetTaskProtection` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskProtectionRequest {
    /// Name or ARN. Required.
    pub cluster: Option<String>,
    /// Up to 100 task ids or ARNs; default: every protected task.
    pub tasks: Option<Vec<String>>,
}

/// A task's protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtectedTask {
    /// The task.
    pub task_arn: String,
    /// Whether protection is on (and not expired).
    pub protection_enabled: bool,
    /// When it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<Timestamp>,
}

/// The output of both actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskProtectionResponse {
    /// The tasks asked about.
    pub protected_tasks: Vec<ProtectedTask>,
    /// Tasks not found (`MISSING`) or stopped (`TASK_NOT_VALID`).
    pub failures: Vec<Failure>,
}
