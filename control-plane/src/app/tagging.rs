//! TagResource, UntagResource, ListTagsForResource: the tags of clusters,
//! task definitions, tasks, container instances, capacity providers and
//! services, named by their long ARN, with the same rules as tags given at
//! creation (`validate::tags`).

use super::records::AnyRecord;
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

/// The target's record, as it is now (its cluster must exist for a
/// cluster-scoped one; a STOPPED task is read from disk, once).
fn record(
    cp: &ControlPlane,
    state: &State,
    target: &Target,
    reference: &str,
    action: Action,
) -> Result<AnyRecord> {
    let gone = |what: &str| {
        missing(
            action,
            format!("The specified {what} does not exist: '{reference}'."),
        )
    };
    Ok(match target {
        // ECS's answer for a deleted cluster (Terraform reads it as gone).
        Target::Cluster(name) => match state.clusters.get(name) {
            Some(c) if !c.is_active() => {
                return Err(invalid(
                    "The specified cluster is inactive. Specify an active cluster and try again.",
                ));
            }
            _ => cp.cluster(state, name)?.clone().into(),
        },
        Target::TaskDefinition(family, revision) => state
            .families
            .get(family)
            .and_then(|f| f.get(revision))
            .filter(|r| r.definition.status != super::task_definition::DELETED)
            .ok_or_else(|| gone("task definition"))?
            .clone()
            .into(),
        Target::Task { cluster, id } => {
            cp.cluster(state, cluster)?;
            cp.find_task(state, cluster, id)?
                .ok_or_else(|| gone("task"))?
                .into_owned()
                .into()
        }
        Target::Instance { cluster, id } => {
            cp.cluster(state, cluster)?;
            state
                .instances
                .get(id)
                .filter(|i| &i.cluster == cluster)
                .ok_or_else(|| gone("container instance"))?
                .clone()
                .into()
        }
        Target::CapacityProvider(name) => state
            .capacity_providers
            .get(name)
            .filter(|p| p.status == crate::model::status::Status::Active)
            .ok_or_else(|| gone("capacity provider"))?
            .clone()
            .into(),
        Target::Service { cluster, name } => {
            cp.cluster(state, cluster)?;
            state
                .services
                .get(&(cluster.clone(), name.clone()))
                .filter(|s| s.status != crate::model::status::Status::Inactive)
                .ok_or_else(|| gone("service"))?
                .clone()
                .into()
        }
    })
}

/// The tags of a taggable record.
fn tags_mut(r: &mut AnyRecord) -> &mut Vec<Tag> {
    match r {
        AnyRecord::Cluster(r) => &mut r.tags,
        AnyRecord::TaskDefinition(r) => &mut r.tags,
        AnyRecord::Task(r) => r.task.tags.get_or_insert_with(Vec::new),
        AnyRecord::Instance(r) => &mut r.tags,
        AnyRecord::CapacityProvider(r) => &mut r.tags,
        AnyRecord::Service(r) => &mut r.tags,
        AnyRecord::Token(_) | AnyRecord::AccountSetting(_) => {
            unreachable!("`target` names only taggable kinds")
        }
    }
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
            let mut r = record(self, &state, &target, reference, Action::Change)?;
            let tags = tags_mut(&mut r);
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
            self.commit(&mut state, Staged::one(r))?
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
            let mut r = record(self, &state, &target, reference, Action::Change)?;
            let tags = tags_mut(&mut r);
            let before = tags.len();
            tags.retain(|t| !keys.iter().any(|k| t.key.as_deref() == Some(k.as_str())));
            if tags.len() == before {
                return Ok(Empty {});
            }
            self.commit(&mut state, Staged::one(r))?
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
        let mut r = record(self, &state, &target, reference, Action::List)?;
        let tags = std::mem::take(tags_mut(&mut r));
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
