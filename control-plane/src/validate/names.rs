//! Name rules ECS states in prose: clusters, task-definition families and
//! container names are 1-255 letters, digits, hyphens and underscores.

use super::{Result, ValidationError, ValidationKind};

fn check(name: &str, what: &str, kind: ValidationKind) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError {
            kind,
            message: format!(
                "Invalid {what} '{name}': use 1-255 letters, digits, hyphens (-) and underscores (_)."
            ),
        })
    }
}

/// A cluster name.
pub fn cluster_name(name: &str) -> Result<()> {
    check(name, "cluster name", ValidationKind::InvalidParameter)
}

/// A task-definition family.
pub fn family_name(name: &str) -> Result<()> {
    check(name, "family", ValidationKind::Client)
}

/// A container name.
pub fn container_name(name: &str) -> Result<()> {
    check(name, "container name", ValidationKind::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(cluster_name("prod-1_a").is_ok());
        assert!(cluster_name("").is_err());
        assert!(cluster_name("a b").is_err());
        assert!(cluster_name(&"a".repeat(256)).is_err());
        assert!(family_name("web").is_ok());
        assert_eq!(
            family_name("we:b").unwrap_err().kind,
            ValidationKind::Client
        );
    }
}
