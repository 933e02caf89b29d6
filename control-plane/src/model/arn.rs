//! Amazon Resource Names in ECS's long format, and parsing of the references
//! callers may give (name, bare id, long ARN, short ARN).
//!
//! `arn:aws:ecs:<region>:<account>:<type>/<path>`. We emit only the long
//! format (cluster name embedded in task, container and container-instance
//! ARNs) and accept both formats plus bare ids on input.

/// Region and account used in every ARN this control plane issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    /// Region shown in ARNs, e.g. `us-east-1` or a site name.
    pub region: String,
    /// 12-digit account id shown in ARNs.
    pub account_id: String,
}

impl ArnScope {
    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}:", self.region, self.account_id)
    }

    /// `arn:aws:ecs:R:A:cluster/<name>`
    pub fn cluster(&self, name: &str) -> String {
        format!("{}cluster/{name}", self.prefix())
    }

    /// `arn:aws:ecs:R:A:task-definition/<family>:<revision>`
    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        format!("{}task-definition/{family}:{revision}", self.prefix())
    }

    /// `arn:aws:ecs:R:A:task/<cluster>/<id>`
    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}task/{cluster}/{id}", self.prefix())
    }

    /// `arn:aws:ecs:R:A:container/<cluster>/<task id>/<container uuid>`
    pub fn container(&self, cluster: &str, task_id: &str, container_id: &str) -> String {
        format!(
            "{}container/{cluster}/{task_id}/{container_id}",
            self.prefix()
        )
    }

    /// `arn:aws:ecs:R:A:capacity-provider/<name>`
    pub fn capacity_provider(&self, name: &str) -> String {
        format!("{}capacity-provider/{name}", self.prefix())
    }

    /// `arn:aws:ecs:R:A:service/<cluster>/<name>` (the long format).
    pub fn service(&self, cluster: &str, name: &str) -> String {
        format!("{}service/{cluster}/{name}", self.prefix())
    }

    /// `arn:aws:ecs:R:A:container-instance/<cluster>/<id>`
    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}container-instance/{cluster}/{id}", self.prefix())
    }
}

/// A parsed ECS ARN: the resource type and the path after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `cluster`, `task`, `task-definition`, `container-instance`, ...
    pub resource_type: &'a str,
    /// Everything after `<type>/`.
    pub path: &'a str,
}

/// Parses `arn:<partition>:ecs:<region>:<account>:<type>/<path>`. Any
/// partition, region and account are accepted: a client may have been
/// configured for another region than ours, and the name is what matters.
pub fn parse(s: &str) -> Option<Arn<'_>> {
    let mut parts = s.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    if parts.next()? != "ecs" {
        return None;
    }
    let _region = parts.next()?;
    let _account = parts.next()?;
    let resource = parts.next()?;
    let (resource_type, path) = resource.split_once('/')?;
    if path.is_empty() {
        return None;
    }
    Some(Arn {
        resource_type,
        path,
    })
}

/// A cluster reference: a name or a cluster ARN. Returns the name.
pub fn cluster_name(reference: &str) -> Option<&str> {
    if reference.starts_with("arn:") {
        let arn = parse(reference)?;
        (arn.resource_type == "cluster" && !arn.path.contains('/')).then_some(arn.path)
    } else {
        Some(reference)
    }
}

/// A reference to a cluster-scoped resource (task, container instance): a
/// bare id, a short ARN (`task/<id>`) or a long ARN (`task/<cluster>/<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedRef<'a> {
    /// The cluster named in a long ARN, if any.
    pub cluster: Option<&'a str>,
    /// The resource id.
    pub id: &'a str,
}

/// Parses a task or container-instance reference of `resource_type`.
pub fn scoped<'a>(reference: &'a str, resource_type: &str) -> Option<ScopedRef<'a>> {
    if !reference.starts_with("arn:") {
        if reference.is_empty() || reference.contains('/') {
            return None;
        }
        return Some(ScopedRef {
            cluster: None,
            id: reference,
        });
    }
    let arn = parse(reference)?;
    if arn.resource_type != resource_type {
        return None;
    }
    match arn.path.split_once('/') {
        None => Some(ScopedRef {
            cluster: None,
            id: arn.path,
        }),
        Some((cluster, id)) if !cluster.is_empty() && !id.is_empty() && !id.contains('/') => {
            Some(ScopedRef {
                cluster: Some(cluster),
                id,
            })
        }
        Some(_) => None,
    }
}

/// A task definition reference as RunTask and friends take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDefinitionRef<'a> {
    /// `family`: the latest ACTIVE revision.
    Family(&'a str),
    /// `family:revision` or the full ARN.
    Revision(&'a str, u32),
}

/// Parses `family`, `family:revision` or a task-definition ARN (with or
/// without a revision). `None` when the text cannot be a reference at all.
pub fn task_definition(reference: &str) -> Option<TaskDefinitionRef<'_>> {
    let body = if reference.starts_with("arn:") {
        let arn = parse(reference)?;
        if arn.resource_type != "task-definition" {
            return None;
        }
        arn.path
    } else {
        reference
    };
    match body.split_once(':') {
        None if !body.is_empty() => Some(TaskDefinitionRef::Family(body)),
        None => None,
        Some((family, revision)) => {
            let revision: u32 = revision.parse().ok()?;
            (!family.is_empty() && revision > 0)
                .then_some(TaskDefinitionRef::Revision(family, revision))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        }
    }

    #[test]
    fn formats_long_arns() {
        let s = scope();
        assert_eq!(
            s.cluster("default"),
            "arn:aws:ecs:us-east-1:000000000000:cluster/default"
        );
        assert_eq!(
            s.task("c", "abc"),
            "arn:aws:ecs:us-east-1:000000000000:task/c/abc"
        );
        assert_eq!(
            s.task_definition("web", 3),
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"
        );
    }

    #[test]
    fn parses_cluster_references() {
        assert_eq!(cluster_name("default"), Some("default"));
        assert_eq!(cluster_name(&scope().cluster("prod")), Some("prod"));
        assert_eq!(cluster_name("arn:aws:ecs:r:a:task/x/y"), None);
        assert_eq!(cluster_name("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn parses_scoped_references() {
        assert_eq!(
            scoped("abc", "task"),
            Some(ScopedRef {
                cluster: None,
                id: "abc"
            })
        );
        assert_eq!(
            scoped("arn:aws:ecs:r:1:task/abc", "task"),
            Some(ScopedRef {
                cluster: None,
                id: "abc"
            })
        );
        assert_eq!(
            scoped("arn:aws:ecs:r:1:task/c1/abc", "task"),
            Some(ScopedRef {
                cluster: Some("c1"),
                id: "abc"
            })
        );
        assert_eq!(
            scoped("arn:aws:ecs:r:1:container-instance/c1/abc", "task"),
            None
        );
        assert_eq!(scoped("a/b", "task"), None);
        assert_eq!(scoped("", "task"), None);
    }

    #[test]
    fn parses_task_definition_references() {
        assert_eq!(
            task_definition("web"),
            Some(TaskDefinitionRef::Family("web"))
        );
        assert_eq!(
            task_definition("web:2"),
            Some(TaskDefinitionRef::Revision("web", 2))
        );
        assert_eq!(
            task_definition("arn:aws:ecs:r:1:task-definition/web:7"),
            Some(TaskDefinitionRef::Revision("web", 7))
        );
        assert_eq!(
            task_definition("arn:aws:ecs:r:1:task-definition/web"),
            Some(TaskDefinitionRef::Family("web"))
        );
        assert_eq!(task_definition("web:0"), None);
        assert_eq!(task_definition("web:*"), None);
        assert_eq!(task_definition(""), None);
    }
}
