//! Account settings: PutAccountSetting, PutAccountSettingDefault,
//! DeleteAccountSetting, ListAccountSettings.

use serde::{Deserialize, Serialize};

/// An account setting as ECS shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    /// ECS's setting name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The principal it belongs to.
    pub principal_arn: String,
    /// `user`, or `aws_managed` for the read-only `guardDutyActivate`.
    #[serde(rename = "type")]
    pub setting_type: String,
}

/// `PutAccountSetting` / `PutAccountSettingDefault` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutAccountSettingRequest {
    /// Required.
    pub name: Option<String>,
    /// Required.
    pub value: Option<String>,
    /// Default: the caller (PutAccountSetting only).
    pub principal_arn: Option<String>,
}

/// `DeleteAccountSetting` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccountSettingRequest {
    /// Required.
    pub name: Option<String>,
    /// Default: the caller.
    pub principal_arn: Option<String>,
}

/// The output of the three changing actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingResponse {
    /// The setting as it now is (as it was, for a delete).
    pub setting: Setting,
}

/// `ListAccountSettings` input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsRequest {
    /// Only this setting.
    pub name: Option<String>,
    /// Only settings with this value (needs `name`).
    pub value: Option<String>,
    /// Default: the caller.
    pub principal_arn: Option<String>,
    /// Every setting's effective value (own, else the account default,
    /// else ECS's), instead of only the ones set for the principal.
    pub effective_settings: Option<bool>,
    /// Page token.
    pub next_token: Option<String>,
    /// 1-10 (default 10).
    pub max_results: Option<i64>,
}

/// `ListAccountSettings` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsResponse {
    /// The settings.
    pub settings: Vec<Setting>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
