//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition,
//! DeleteTaskDefinitions, and resolving the task-definition references
//! other actions take.
//!
//! A deleted revision is DELETE_IN_PROGRESS while a task that has not
//! stopped or a service's deployment still uses it, then gone from every
//! answer. It stays stored as a small tombstone (status `DELETED`, no
//! containers) so that the family's revision numbers are never reused.

use super::page::Page;
use super::state::{State, TaskDefinitionRecord};
use super::{ControlPlane, Result, Staged, client, invalid};
use crate::model::Failure;
use crate::model::Timestamp;
use crate::model::arn::{self, TaskDefinitionRef};
use crate::model::task_definition::{
    DeleteTaskDefinitionsRequest, DeleteTaskDefinitionsResponse, DeregisterTaskDefinitionRequest,
    DeregisterTaskDefinitionResponse, DescribeTaskDefinitionRequest,
    DescribeTaskDefinitionResponse, ListTaskDefinitionFamiliesRequest,
    ListTaskDefinitionFamiliesResponse, ListTaskDefinitionsRequest, ListTaskDefinitionsResponse,
    RegisterTaskDefinitionRequest, RegisterTaskDefinitionResponse, TaskDefinition,
};

/// The internal status of a deleted revision's tombstone: never shown.
pub(super) const DELETED: &str = "DELETED";
/// Shown while a deleted revision is still in use.
const DELETE_IN_PROGRESS: &str = "DELETE_IN_PROGRESS";

/// Whether a task that has not stopped, or a service's deployment, still
/// uses the revision `arn`.
fn in_use(state: &State, arn: &str) -> bool {
    state.tasks.values().any(|t| {
        t.task.task_definition_arn == arn
            && t.task.last_status != crate::model::task::TaskStatus::Stopped
    }) || state.services.values().any(|s| {
        s.status != crate::model::status::Status::Inactive
            && s.deployments.iter().any(|d| d.task_definition == arn)
    })
}

/// The tombstone of a deleted revision: its number and ARN, nothing else.
fn tombstone(record: &TaskDefinitionRecord) -> TaskDefinitionRecord {
    let d = &record.definition;
    let mut definition = d.clone();
    definition.status = DELETED.to_owned();
    definition.container_definitions = Vec::new();
    definition.volumes = Vec::new();
    TaskDefinitionRecord {
        definition,
        tags: Vec::new(),
    }
}

/// DELETE_IN_PROGRESS revisions no longer in use, as tombstones.
pub(super) fn finished_deletions(state: &State) -> Vec<TaskDefinitionRecord> {
    state
        .families
        .values()
        .flat_map(|f| f.values())
        .filter(|r| r.definition.status == DELETE_IN_PROGRESS)
        .filter(|r| !in_use(state, &r.definition.task_definition_arn))
        .map(tombstone)
        .collect()
}
use crate::validate;

impl ControlPlane {
    /// RegisterTaskDefinition: revision = the family's highest + 1 (counting
    /// INACTIVE revisions, as ECS does).
    pub async fn register_task_definition(
        &self,
        req: RegisterTaskDefinitionRequest,
    ) -> Result<RegisterTaskDefinitionResponse> {
        let parsed = validate::register(&req)?;
        let (wakeups, response) = {
            let mut state = self.lock();
            let revision = state
                .families
                .get(&parsed.family)
                .and_then(|revs| revs.keys().next_back().copied())
                .unwrap_or(0)
                + 1;
            let definition = TaskDefinition {
                task_definition_arn: self.scope().task_definition(&parsed.family, revision),
                container_definitions: parsed.container_definitions,
                family: parsed.family.clone(),
                task_role_arn: req.task_role_arn.clone(),
                execution_role_arn: req.execution_role_arn.clone(),
                network_mode: parsed.network_mode,
                revision,
                volumes: req.volumes.clone().unwrap_or_default(),
                status: "ACTIVE".to_owned(),
                requires_attributes: parsed
                    .requires_attributes
                    .iter()
                    .map(|name| crate::model::Attribute {
                        name: name.clone(),
                        value: None,
                        target_type: None,
                        target_id: None,
                    })
                    .collect(),
                placement_constraints: parsed.placement_constraints,
                compatibilities: parsed.compatibilities,
                requires_compatibilities: req.requires_compatibilities.clone(),
                cpu: parsed.cpu,
                memory: parsed.memory,
                pid_mode: req.pid_mode.clone(),
                ipc_mode: req.ipc_mode.clone(),
                proxy_configuration: req.proxy_configuration.clone(),
                inference_accelerators: req.inference_accelerators.clone(),
                ephemeral_storage: req.ephemeral_storage.clone(),
                runtime_platform: req.runtime_platform.clone(),
                registered_at: Timestamp::now(),
                deregistered_at: None,
                delete_requested_at: None,
                enable_fault_injection: req.enable_fault_injection.unwrap_or(false),
            };
            let record = TaskDefinitionRecord {
                definition: definition.clone(),
                tags: parsed.tags.clone(),
            };
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            (
                wakeups,
                RegisterTaskDefinitionResponse {
                    task_definition: definition,
                    tags: parsed.tags,
                },
            )
        };
        self.durable(wakeups).await?;
        tracing::info!(
            family = %response.task_definition.family,
            revision = response.task_definition.revision,
            "task definition registered"
        );
        Ok(response)
    }

    /// DescribeTaskDefinition: bare family = latest ACTIVE revision; an
    /// explicit revision is found whatever its status.
    pub fn describe_task_definition(
        &self,
        req: DescribeTaskDefinitionRequest,
    ) -> Result<DescribeTaskDefinitionResponse> {
        let reference = validate::required_str(req.task_definition.as_deref(), "taskDefinition")?;
        let include = validate::include(req.include.as_deref(), &["TAGS"])?;
        let state = self.lock();
        let record = resolve(&state, reference)
            .ok()
            .filter(|r| r.definition.status != DELETED)
            .ok_or_else(|| client("Unable to describe task definition."))?;
        Ok(DescribeTaskDefinitionResponse {
            task_definition: record.definition.clone(),
            tags: (!include.is_empty()).then(|| record.tags.clone()),
        })
    }

    /// ListTaskDefinitions: by family then revision, ascending or descending.
    pub fn list_task_definitions(
        &self,
        req: ListTaskDefinitionsRequest,
    ) -> Result<ListTaskDefinitionsResponse> {
        let status = validate::one_of(
            req.status.as_deref(),
            "status",
            &["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"],
        )?
        .unwrap_or("ACTIVE");
        let descending =
            validate::one_of(req.sort.as_deref(), "sort", &["ASC", "DESC"])? == Some("DESC");
        let filters = (req.family_prefix.as_deref(), status, descending);
        let page = Page::start(
            "ListTaskDefinitions",
            &filters,
            req.next_token.as_deref(),
            req.max_results,
        )?;
        let state = self.lock();
        let all = state
            .families
            .iter()
            .filter(|(family, _)| {
                req.family_prefix
                    .as_deref()
                    .is_none_or(|f| f == family.as_str())
            })
            .flat_map(|(_, revs)| revs.values())
            .filter(|r| r.definition.status == status)
            .map(|r| {
                let d = &r.definition;
                (
                    format!("{}\n{:010}", d.family, d.revision),
                    d.task_definition_arn.clone(),
                )
            });
        let (task_definition_arns, next_token) = if descending {
            let items: Vec<_> = all.collect();
            page.collect(
                items
                    .into_iter()
                    .rev()
                    .filter(|(k, _)| page.after.as_deref().is_none_or(|a| k.as_str() < a)),
            )
        } else {
            page.collect(all.filter(|(k, _)| page.includes(k)))
        };
        Ok(ListTaskDefinitionsResponse {
            task_definition_arns,
            next_token,
        })
    }

    /// ListTaskDefinitionFamilies: ACTIVE = has an ACTIVE revision, INACTIVE
    /// = has none, ALL (the default) = both.
    pub fn list_task_definition_families(
        &self,
        req: ListTaskDefinitionFamiliesRequest,
    ) -> Result<ListTaskDefinitionFamiliesResponse> {
        let status = validate::one_of(
            req.status.as_deref(),
            "status",
            &["ACTIVE", "INACTIVE", "ALL"],
        )?
        .unwrap_or("ALL");
        let filters = (req.family_prefix.as_deref(), status);
        let page = Page::start(
            "ListTaskDefinitionFamilies",
            &filters,
            req.next_token.as_deref(),
            req.max_results,
        )?;
        let state = self.lock();
        let items = state
            .families
            .iter()
            .filter(|(family, _)| {
                req.family_prefix
                    .as_deref()
                    .is_none_or(|p| family.starts_with(p))
            })
            .filter(|(_, revs)| revs.values().any(|r| r.definition.status != DELETED))
            .filter(|(_, revs)| {
                let active = revs.values().any(|r| r.definition.is_active());
                match status {
                    "ACTIVE" => active,
                    "INACTIVE" => !active,
                    _ => true,
                }
            })
            .filter(|(family, _)| page.includes(family))
            .map(|(family, _)| (family.clone(), family.clone()));
        let (families, next_token) = page.collect(items);
        Ok(ListTaskDefinitionFamiliesResponse {
            families,
            next_token,
        })
    }

    /// DeregisterTaskDefinition: the revision becomes INACTIVE; tasks using
    /// it keep running, new ones cannot start from it.
    pub async fn deregister_task_definition(
        &self,
        req: DeregisterTaskDefinitionRequest,
    ) -> Result<DeregisterTaskDefinitionResponse> {
        let reference = validate::required_str(req.task_definition.as_deref(), "taskDefinition")?;
        let (family, revision) = match arn::task_definition(reference) {
            Some(TaskDefinitionRef::Revision(f, r)) => (f, r),
            Some(TaskDefinitionRef::Family(_)) => {
                return Err(client(format!(
                    "Revision is missing. Give '{reference}:<revision>' or the full task definition ARN."
                )));
            }
            None => {
                return Err(invalid(format!(
                    "'{reference}' is not a task definition reference."
                )));
            }
        };
        let (wakeups, response) = {
            let mut state = self.lock();
            let Some(existing) = state
                .families
                .get(family)
                .and_then(|revs| revs.get(&revision))
                .filter(|r| r.definition.status != DELETED)
            else {
                return Err(client(format!(
                    "The specified task definition does not exist: {family}:{revision}."
                )));
            };
            if !existing.definition.is_active() {
                return Ok(DeregisterTaskDefinitionResponse {
                    task_definition: existing.definition.clone(),
                });
            }
            let mut record = existing.clone();
            record.definition.status = "INACTIVE".to_owned();
            record.definition.deregistered_at = Some(Timestamp::now());
            let definition = record.definition.clone();
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            (
                wakeups,
                DeregisterTaskDefinitionResponse {
                    task_definition: definition,
                },
            )
        };
        self.durable(wakeups).await?;
        tracing::info!(family, revision, "task definition deregistered");
        Ok(response)
    }
}

impl ControlPlane {
    /// DeleteTaskDefinitions: INACTIVE revisions become DELETE_IN_PROGRESS
    /// (and are gone once nothing uses them); the others are failures.
    pub async fn delete_task_definitions(
        &self,
        req: DeleteTaskDefinitionsRequest,
    ) -> Result<DeleteTaskDefinitionsResponse> {
        let references = validate::required(req.task_definitions.as_deref(), "taskDefinitions")?;
        if references.is_empty() || references.len() > 10 {
            return Err(invalid(format!(
                "taskDefinitions must name 1 to 10 revisions (got {}).",
                references.len()
            )));
        }
        let (wakeups, response) = {
            let mut state = self.lock();
            let mut staged = Staged::default();
            let mut deleted = Vec::new();
            let mut failures = Vec::new();
            for reference in references {
                let Some(TaskDefinitionRef::Revision(family, revision)) =
                    arn::task_definition(reference)
                else {
                    failures.push(Failure::new(
                        reference.clone(),
                        "The specified task definition identifier is invalid. Specify a family and revision (family:revision) or a revision's ARN.",
                        None,
                    ));
                    continue;
                };
                let arn = self.scope().task_definition(family, revision);
                let record = state
                    .families
                    .get(family)
                    .and_then(|revs| revs.get(&revision))
                    .filter(|r| r.definition.status != DELETED);
                let Some(record) = record else {
                    failures.push(Failure::new(
                        arn,
                        "The specified task definition does not exist.",
                        None,
                    ));
                    continue;
                };
                if record.definition.is_active() {
                    failures.push(Failure::new(
                        arn,
                        "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
                        Some("Deregister it with DeregisterTaskDefinition first.".into()),
                    ));
                    continue;
                }
                let mut shown = record.definition.clone();
                shown.status = DELETE_IN_PROGRESS.to_owned();
                if shown.delete_requested_at.is_none() {
                    shown.delete_requested_at = Some(Timestamp::now());
                }
                let mut next = record.clone();
                next.definition = shown.clone();
                if !in_use(&state, &arn) {
                    next = tombstone(&next);
                }
                if deleted
                    .iter()
                    .all(|d: &TaskDefinition| d.task_definition_arn != arn)
                {
                    staged.put(next);
                    deleted.push(shown);
                }
            }
            let wakeups = self.commit(&mut state, staged)?;
            (
                wakeups,
                DeleteTaskDefinitionsResponse {
                    task_definitions: deleted,
                    failures,
                },
            )
        };
        self.durable(wakeups).await?;
        for d in &response.task_definitions {
            tracing::info!(task_definition = %d.task_definition_arn, "task definition deleted");
        }
        Ok(response)
    }
}

/// Why a task-definition reference did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unresolved {
    /// Not a reference at all.
    Malformed,
    /// No such family or revision.
    NotFound,
    /// The family has revisions, none ACTIVE.
    NoActiveRevision,
}

/// Resolves `family` (latest ACTIVE), `family:revision` or an ARN.
pub(super) fn resolve<'s>(
    state: &'s State,
    reference: &str,
) -> std::result::Result<&'s TaskDefinitionRecord, Unresolved> {
    match arn::task_definition(reference).ok_or(Unresolved::Malformed)? {
        TaskDefinitionRef::Family(family) => {
            let revs = state.families.get(family).ok_or(Unresolved::NotFound)?;
            revs.values()
                .rev()
                .find(|r| r.definition.is_active())
                .ok_or(Unresolved::NoActiveRevision)
        }
        TaskDefinitionRef::Revision(family, revision) => state
            .families
            .get(family)
            .and_then(|revs| revs.get(&revision))
            .filter(|r| r.definition.status != DELETED)
            .ok_or(Unresolved::NotFound),
    }
}
