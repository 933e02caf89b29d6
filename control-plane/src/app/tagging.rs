//! TagResource, UntagResource, ListTagsForResource: the tags of clusters,
//! task definitions, tasks, container instances, capacity providers and
//! services, named by their long ARN, with the same rules as tags given at
//! creation (`validate::tags`).

use super::state::State;
use super::{ControlPlane, Error, Result, Staged, invalid};
use crate::model::Tag;
use crate::model::arn;
use crate::model::tagging::{
    Empty, ListTagsForResourceRequest, ListTagsForResourceResponse, TagResourceRequest,
    UntagResourceRequest,
};
use crate::validate;

/// What a tagging ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Cluster(String),
    TaskDefinition(String, u32),
    Task { cluster: String, id: String },
    Instance { cluster: String, id: String },
    CapacityProvider(String),
    Service { cluster: String, name: String },
}

/// Which action asks: ListTagsForResource has no ResourceNotFoundException
/// in ECS's model, so a missing resource is an InvalidParameterException
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Change,
    List,
}

fn target(reference: &str) -> Result<Target> {
    let not_arn = || {
        invalid(format!(
            "resourceArn '{reference}' is not the ARN of an ECS cluster, task definition, task, container instance, capacity provider or service."
        ))
    };
    let parsed = arn::parse(reference).ok_or_else(not_arn)?;
    let long_only = |kind: &str| {
        invalid(format!(
            "Long arn format must be used for tagging operations: '{reference}' is a short {kind} ARN; use arn:aws:ecs:REGION:ACCOUNT:{kind}/CLUSTER/ID."
        ))
    };
    let scoped = |kind: &str| -> Result<(String, String)> {
        match parsed.path.split_once('/') {
            Some((c, id)) if !c.is_empty() && !id.is_empty() && !id.contains('/') => {
                Ok((c.to_owned(), id.to_owned()))
            }
            Some(_) => Err(not_arn()),
            None => Err(long_only(kind)),
        }
    };
    Ok(match parsed.resource_type {
        "cluster" if !parsed.path.contains('/') => Target::Cluster(parsed.path.to_owned()),
        "capacity-provider" if !parsed.path.contains('/') => {
            Target::CapacityProvider(parsed.path.to_owned())
        }
        "task-definition" => match arn::task_definition(reference) {
            Some(arn::TaskDefinitionRef::Revision(family, revision)) => {
                Target::TaskDefinition(family.to_owned(), revision)
            }
            _ => {
                return Err(invalid(format!(
                    "resourceArn '{reference}' names no revision: tag a task definition as arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION."
                )));
            }
        },
        "task" => {
            let (cluster, id) = scoped("task")?;
            Target::Task { cluster, id }
        }
        "container-instance" => {
            let (cluster, id) = scoped("container-instance")?;
            Target::Instance { cluster, id }
        }
        "service" => {
            let (cluster, name) = scoped("service")?;
            Target::Service { cluster, name }
        }
        _ => return Err(not_arn()),
    })
}

fn missing(action: Action, message: String) -> Error {
    match action {
        Action::Change => Error::ResourceNotFound(message),
        Action::List => invalid(message),
    }
}

/// The target's tags now (its cluster must exist for a cluster-scoped one).
fn current(
    cp: &ControlPlane,
    state: &State,
    target: &Target,
    reference: &str,
    action: Action,
) -> Result<Vec<Tag>> {
    let gone = |what: &str| {
        missing(
            action,
            format!("The specified {what} does not exist: '{reference}'."),
        )
    };
    match target {
        // ECS's answer for a deleted cluster (Terraform reads it as gone).
        Target::Cluster(name) => match state.clusters.get(name) {
            Some(c) if !c.is_active() => Err(invalid(
                "The specified cluster is inactive. Specify an active cluster and try again.",
            )),
            _ => Ok(cp.cluster(state, name)?.tags.clone()),
        },
        Target::TaskDefinition(family, revision) => state
            .families
            .get(family)
            .and_then(|f| f.get(revision))
            .filter(|r| r.definition.status != super::task_definition::DELETED)
            .map(|r| r.tags.clone())
            .ok_or_else(|| gone("task definition")),
        Target::Task { cluster, id } => {
            cp.cluster(state, cluster)?;
            let task = cp
                .find_task(state, cluster, id)?
                .ok_or_else(|| gone("task"))?;
            Ok(task.task.tags.clone().unwrap_or_default())
        }
        Target::Instance { cluster, id } => {
            cp.cluster(state, cluster)?;
            state
                .instances
                .get(id)
                .filter(|i| &i.cluster == cluster)
                .map(|i| i.tags.clone())
                .ok_or_else(|| gone("container instance"))
        }
        Target::CapacityProvider(name) => state
            .capacity_providers
            .get(name)
            .filter(|p| p.status == crate::model::status::Status::Active)
            .map(|p| p.tags.clone())
            .ok_or_else(|| gone("capacity provider")),
        Target::Service { cluster, name } => {
            cp.cluster(state, cluster)?;
            state
                .services
                .get(&(cluster.clone(), name.clone()))
                .filter(|s| s.status != crate::model::status::Status::Inactive)
                .map(|s| s.tags.clone())
                .ok_or_else(|| gone("service"))
        }
    }
}

/// The record of `target` with `tags`, staged.
fn stage(cp: &ControlPlane, state: &State, target: &Target, tags: Vec<Tag>) -> Result<Staged> {
    let mut staged = Staged::default();
    match target {
        Target::Cluster(name) => {
            let mut r = state.clusters[name].clone();
            r.tags = tags;
            staged.put(r);
        }
        Target::TaskDefinition(family, revision) => {
            let mut r = state.families[family][revision].clone();
            r.tags = tags;
            staged.put(r);
        }
        Target::Task { cluster, id } => {
            let Some(r) = cp.find_task(state, cluster, id)? else {
                return Ok(staged);
            };
            let mut r = r.into_owned();
            r.task.tags = Some(tags);
            staged.put(r);
        }
        Target::Instance { id, .. } => {
            let mut r = state.instances[id].clone();
            r.tags = tags;
            staged.put(r);
        }
        Target::CapacityProvider(name) => {
            let mut r = state.capacity_providers[name].clone();
            r.tags = tags;
            staged.put(r);
        }
        Target::Service { cluster, name } => {
            let mut r = state.services[&(cluster.clone(), name.clone())].clone();
            r.tags = tags;
            staged.put(r);
        }
    }
    Ok(staged)
}

impl ControlPlane {
    /// TagResource: sets the given keys, keeps the others; at most 50 in all.
    pub async fn tag_resource(&self, req: TagResourceRequest) -> Result<Empty> {
        let reference = validate::required_str(req.resource_arn.as_deref(), "resourceArn")?;
        let given = validate::required(req.tags.as_deref(), "tags")?;
        let given = validate::tags(Some(given))?;
        let target = target(reference)?;
        let wakeups = {
            let mut state = self.lock();
            let mut tags = current(self, &state, &target, reference, Action::Change)?;
            for t in given {
                match tags.iter_mut().find(|x| x.key == t.key) {
                    Some(existing) => existing.value = t.value,
                    None => tags.push(t),
                }
            }
            if tags.len() > 50 {
                return Err(invalid(format!(
                    "A resource can have at most 50 tags; '{reference}' would have {}. Remove some with UntagResource first.",
                    tags.len()
                )));
            }
            let staged = stage(self, &state, &target, tags)?;
            self.commit(&mut state, staged)?
        };
        self.durable(wakeups).await?;
        Ok(Empty {})
    }

    /// UntagResource: removes the given keys; absent keys are no error.
    pub async fn untag_resource(&self, req: UntagResourceRequest) -> Result<Empty> {
        let reference = validate::required_str(req.resource_arn.as_deref(), "resourceArn")?;
        let keys = validate::required(req.tag_keys.as_deref(), "tagKeys")?;
        if keys.len() > 50 {
            return Err(invalid(format!(
                "tagKeys can name at most 50 keys (got {}).",
                keys.len()
            )));
        }
        for k in keys {
            let n = k.chars().count();
            if n == 0 || n > 128 {
                return Err(invalid(format!(
                    "Tag keys must be 1-128 characters long (got {n} for '{k}')."
                )));
            }
        }
        let target = target(reference)?;
        let wakeups = {
            let mut state = self.lock();
            let before = current(self, &state, &target, reference, Action::Change)?;
            let tags: Vec<Tag> = before
                .iter()
                .filter(|t| !keys.iter().any(|k| t.key.as_deref() == Some(k.as_str())))
                .cloned()
                .collect();
            if tags.len() == before.len() {
                return Ok(Empty {});
            }
            let staged = stage(self, &state, &target, tags)?;
            self.commit(&mut state, staged)?
        };
        self.durable(wakeups).await?;
        Ok(Empty {})
    }

    /// ListTagsForResource.
    pub fn list_tags_for_resource(
        &self,
        req: ListTagsForResourceRequest,
    ) -> Result<ListTagsForResourceResponse> {
        let reference = validate::required_str(req.resource_arn.as_deref(), "resourceArn")?;
        let target = target(reference)?;
        let state = self.lock();
        let tags = current(self, &state, &target, reference, Action::List)?;
        Ok(ListTagsForResourceResponse { tags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_arns_name_their_resource_and_short_ones_are_refused() {
        let p = "arn:aws:ecs:us-east-1:000000000000:";
        assert_eq!(
            target(&format!("{p}cluster/home")).ok(),
            Some(Target::Cluster("home".into()))
        );
        assert_eq!(
            target(&format!("{p}task-definition/web:3")).ok(),
            Some(Target::TaskDefinition("web".into(), 3))
        );
        assert_eq!(
            target(&format!("{p}service/home/web")).ok(),
            Some(Target::Service {
                cluster: "home".into(),
                name: "web".into()
            })
        );
        assert_eq!(
            target(&format!("{p}capacity-provider/pool")).ok(),
            Some(Target::CapacityProvider("pool".into()))
        );
        let short = target(&format!("{p}task/abc")).unwrap_err().to_string();
        assert!(
            short.starts_with("Long arn format must be used for tagging operations"),
            "{short}"
        );
        for bad in [
            "home",
            "arn:aws:s3:::bucket",
            &format!("{p}task-definition/web"),
            &format!("{p}container/home/t/c"),
        ] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }
}
