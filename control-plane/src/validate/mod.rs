//! Every request rule ECS enforces (names, limits, enums, mutual exclusions)
//! as pure functions returning a [`ValidationError`] that carries the ECS
//! error kind and a message saying what to fix. No I/O, no state: rules that
//! need stored state (does the cluster exist?) live in `service`.

mod container_options;
mod names;
pub mod placement;
pub mod task;
mod task_definition;

pub use names::{cluster_name, container_name, family_name};
pub use task::{
    AwsVpc, ClientToken, MAX_REASON_CHARS, RunTaskInput, against_definition, cluster_or_default,
    container_instance_refs, describe_tasks_refs, list_tasks_status, network_configuration,
    run_task, start_task, stop_reason,
};
pub use task_definition::{ParsedTaskDefinition, parse_task_cpu, parse_task_memory, register};

use crate::model::Tag;

/// Which ECS error a rule violation is reported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationKind {
    /// `InvalidParameterException`: a parameter value is not valid.
    InvalidParameter,
    /// `ClientException`: ECS's generic caller error (task definition rules).
    Client,
    /// `UnsupportedFeatureException`: valid ECS, not available on Berth.
    UnsupportedFeature,
    /// `PlatformUnknownException`: a platform version that does not exist.
    PlatformUnknown,
    /// `PlatformTaskDefinitionIncompatibilityException`: the definition
    /// requires a platform Berth does not offer.
    PlatformTaskDefinitionIncompatibility,
}

/// A request that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// The ECS error it maps to.
    pub kind: ValidationKind,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ValidationError {
    /// An `InvalidParameterException`.
    pub fn invalid(message: impl Into<String>) -> Self {
        ValidationError {
            kind: ValidationKind::InvalidParameter,
            message: message.into(),
        }
    }

    /// A `ClientException`.
    pub fn client(message: impl Into<String>) -> Self {
        ValidationError {
            kind: ValidationKind::Client,
            message: message.into(),
        }
    }

    /// A `PlatformUnknownException`.
    pub fn platform_unknown(message: impl Into<String>) -> Self {
        ValidationError {
            kind: ValidationKind::PlatformUnknown,
            message: message.into(),
        }
    }

    /// A `PlatformTaskDefinitionIncompatibilityException`.
    pub fn platform_incompatible(message: impl Into<String>) -> Self {
        ValidationError {
            kind: ValidationKind::PlatformTaskDefinitionIncompatibility,
            message: message.into(),
        }
    }

    /// An `UnsupportedFeatureException`.
    pub fn unsupported(message: impl Into<String>) -> Self {
        ValidationError {
            kind: ValidationKind::UnsupportedFeature,
            message: message.into(),
        }
    }
}

/// Result of a rule.
pub type Result<T> = std::result::Result<T, ValidationError>;

/// A member ECS requires.
pub fn required<'a, T: ?Sized>(value: Option<&'a T>, member: &str) -> Result<&'a T> {
    value.ok_or_else(|| ValidationError::invalid(format!("Missing required parameter '{member}'.")))
}

/// A required string member that must not be empty.
pub fn required_str<'a>(value: Option<&'a str>, member: &str) -> Result<&'a str> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(ValidationError::invalid(format!(
            "Parameter '{member}' must not be empty."
        ))),
        None => Err(ValidationError::invalid(format!(
            "Missing required parameter '{member}'."
        ))),
    }
}

/// Page size for List actions: `maxResults` 1-100, default 100.
pub fn max_results(value: Option<i64>) -> Result<usize> {
    match value {
        None => Ok(100),
        Some(n @ 1..=100) => Ok(n as usize),
        Some(n) => Err(ValidationError::invalid(format!(
            "maxResults must be between 1 and 100 (got {n})."
        ))),
    }
}

/// An enum member: `None` when absent, the value when it is one of `allowed`.
pub fn one_of<'a>(
    value: Option<&'a str>,
    member: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>> {
    match value {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => Err(ValidationError::invalid(format!(
            "{member} should be one of [{}] (got '{v}').",
            allowed.join(",")
        ))),
    }
}

/// `include` lists: every entry must be one of `allowed`.
pub fn include(values: Option<&[String]>, allowed: &[&str]) -> Result<Vec<String>> {
    let values = values.unwrap_or_default();
    for v in values {
        if !allowed.contains(&v.as_str()) {
            return Err(ValidationError::invalid(format!(
                "include should contain only [{}] (got '{v}').",
                allowed.join(",")
            )));
        }
    }
    Ok(values.to_vec())
}

/// ECS tag rules: at most 50, unique keys of 1-128 characters, values of at
/// most 256, letters/digits/spaces and `+ - = . _ : / @`, and no `aws:` prefix
/// in any letter case on keys or values.
pub fn tags(tags: Option<&[Tag]>) -> Result<Vec<Tag>> {
    let tags = tags.unwrap_or_default();
    if tags.len() > 50 {
        return Err(ValidationError::invalid(format!(
            "A resource can have at most 50 tags (got {}).",
            tags.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        let key = tag.key.as_deref().unwrap_or_default();
        let value = tag.value.as_deref().unwrap_or_default();
        let key_len = key.chars().count();
        if key_len == 0 || key_len > 128 {
            return Err(ValidationError::invalid(format!(
                "Tag keys must be 1-128 characters long (got {key_len} for '{key}')."
            )));
        }
        if value.chars().count() > 256 {
            return Err(ValidationError::invalid(format!(
                "The value of tag '{key}' is longer than 256 characters."
            )));
        }
        for (what, text) in [("key", key), ("value", value)] {
            if let Some(bad) = text.chars().find(|c| !tag_char_allowed(*c)) {
                return Err(ValidationError::invalid(format!(
                    "Tag {what} '{text}' contains '{bad}'; allowed are letters, digits, spaces and + - = . _ : / @."
                )));
            }
            if text.len() >= 4 && text[..4].eq_ignore_ascii_case("aws:") {
                return Err(ValidationError::invalid(format!(
                    "Tag {what} '{text}' uses the reserved prefix 'aws:'."
                )));
            }
        }
        if !seen.insert(key) {
            return Err(ValidationError::invalid(format!(
                "Tag key '{key}' is given more than once; tag keys must be unique."
            )));
        }
    }
    Ok(tags.to_vec())
}

fn tag_char_allowed(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "+-=._:/@".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn tag_rules() {
        assert!(tags(Some(&[tag("team", "a b"), tag("x", "")])).is_ok());
        assert!(tags(Some(&[tag("", "v")])).is_err());
        assert!(tags(Some(&[tag("AWS:x", "v")])).is_err());
        assert!(tags(Some(&[tag("k", "aWs:v")])).is_err());
        assert!(tags(Some(&[tag("k", "v"), tag("k", "w")])).is_err());
        assert!(tags(Some(&[tag("k!", "v")])).is_err());
        assert!(tags(Some(&[tag(&"k".repeat(129), "v")])).is_err());
        assert!(tags(Some(&[tag("k", &"v".repeat(257))])).is_err());
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(tags(Some(&many)).is_err());
    }

    #[test]
    fn page_size() {
        assert_eq!(max_results(None).unwrap(), 100);
        assert_eq!(max_results(Some(5)).unwrap(), 5);
        assert!(max_results(Some(0)).is_err());
        assert!(max_results(Some(101)).is_err());
    }
}
