//! Shapes shared by several ECS resources: tags, key/value pairs, attributes,
//! capacity resources and batch failures.

use serde::{Deserialize, Serialize};

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// The model marks it optional; validation requires it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// May be empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `name`/`value`, used for environment variables among others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValuePair {
    /// Variable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Variable value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A container-instance attribute (built-in, capability or custom).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    /// Attribute name, e.g. `ecs.os-type`.
    pub name: String,
    /// Absent for capability-style attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `container-instance` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    /// Bare id or ARN of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
}

/// A capacity figure of a container instance. Real ECS fills every numeric
/// member (zero when unused), so we do too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `CPU`, `MEMORY`, `PORTS`, `PORTS_UDP`.
    pub name: String,
    /// `INTEGER` or `STRINGSET`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always 0.0 for the resources we report.
    pub double_value: f64,
    /// Always 0 for the resources we report.
    pub long_value: i64,
    /// CPU units or MiB.
    pub integer_value: i64,
    /// Ports as decimal strings, for `STRINGSET` resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

impl Resource {
    /// An `INTEGER` resource.
    pub fn integer(name: &str, value: i64) -> Self {
        Resource {
            name: name.to_owned(),
            kind: "INTEGER".to_owned(),
            double_value: 0.0,
            long_value: 0,
            integer_value: value,
            string_set_value: None,
        }
    }

    /// A `STRINGSET` resource of ports.
    pub fn ports<'a>(name: &str, ports: impl IntoIterator<Item = &'a u16>) -> Self {
        Resource {
            name: name.to_owned(),
            kind: "STRINGSET".to_owned(),
            double_value: 0.0,
            long_value: 0,
            integer_value: 0,
            string_set_value: Some(ports.into_iter().map(u16::to_string).collect()),
        }
    }
}

/// One entry of a batch operation's `failures[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// The resource the failure concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Machine-readable reason: `MISSING`, `RESOURCE:CPU`, `AGENT`, ...
    pub reason: String,
    /// Free text that explains the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Failure {
    /// A failure with a reason and, optionally, detail.
    pub fn new(arn: impl Into<String>, reason: impl Into<String>, detail: Option<String>) -> Self {
        Failure {
            arn: Some(arn.into()),
            reason: reason.into(),
            detail,
        }
    }
}
