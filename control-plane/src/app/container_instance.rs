//! ListContainerInstances, DescribeContainerInstances,
//! DeregisterContainerInstance, and the ECS view of an instance.

use super::page::Page;
use super::state::{InstanceRecord, State};
use super::{ControlPlane, Error, Result, Staged, invalid};
use crate::model::arn;
use crate::model::container_instance::{
    AttributesRequest, AttributesResponse, ContainerInstance, DeregisterContainerInstanceRequest,
    DeregisterContainerInstanceResponse, DescribeContainerInstancesRequest,
    DescribeContainerInstancesResponse, ListAttributesRequest, ListAttributesResponse,
    ListContainerInstancesRequest, ListContainerInstancesResponse,
    UpdateContainerInstancesStateRequest, UpdateContainerInstancesStateResponse,
};
use crate::model::status::Status;
use crate::model::task::TaskStatus;
use crate::model::{Attribute, Failure, Resource, Timestamp};
use crate::validate;
use std::collections::BTreeSet;

const STATUSES: &[&str] = &[
    "ACTIVE",
    "DRAINING",
    "REGISTERING",
    "DEREGISTERING",
    "REGISTRATION_FAILED",
];

impl ControlPlane {
    /// ListContainerInstances: every status but INACTIVE unless one is asked for.
    pub fn list_container_instances(
        &self,
        req: ListContainerInstancesRequest,
    ) -> Result<ListContainerInstancesResponse> {
        let status = validate::one_of(req.status.as_deref(), "status", STATUSES)?;
        let filter = match req.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            None => None,
            Some(f) => Some(
                crate::placement::cql::parse(f)
                    .map_err(|e| invalid(format!("filter '{f}' is not valid: {e}.")))?,
            ),
        };
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let page = Page::start(
            "ListContainerInstances",
            &(&cluster_ref, status, &req.filter),
            req.next_token.as_deref(),
            req.max_results,
        )?;
        let state = self.lock();
        let cluster = self.cluster(&state, &cluster_ref)?;
        let items = cluster
            .instance_ids
            .iter()
            .filter(|id| page.includes(id))
            .filter_map(|id| state.instances.get(id))
            .filter(|i| status.is_none_or(|s| i.status.as_str() == s))
            .filter(|i| {
                filter.as_ref().is_none_or(|f| {
                    super::task::candidate(&state, &i.id, "", true)
                        .is_some_and(|c| f.eval(&c.facts()))
                })
            })
            .map(|i| (i.id.clone(), i.arn.clone()));
        let (container_instance_arns, next_token) = page.collect(items);
        Ok(ListContainerInstancesResponse {
            container_instance_arns,
            next_token,
        })
    }

    /// DescribeContainerInstances: unknown instances are `MISSING` failures.
    pub fn describe_container_instances(
        &self,
        req: DescribeContainerInstancesRequest,
    ) -> Result<DescribeContainerInstancesResponse> {
        let refs = validate::container_instance_refs(req.container_instances.as_deref(), 100)?;
        let include = validate::include(
            req.include.as_deref(),
            &["TAGS", "CONTAINER_INSTANCE_HEALTH"],
        )?;
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let state = self.lock();
        let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
        let mut container_instances = Vec::new();
        let mut failures = Vec::new();
        for reference in &refs {
            match find_instance(&state, &cluster, reference) {
                Some(i) => {
                    let mut view =
                        self.instance_view(&state, i, include.iter().any(|i| i == "TAGS"));
                    if include.iter().any(|i| i == "CONTAINER_INSTANCE_HEALTH") {
                        view.health_status = Some(health_view(state.live.get(&i.id)));
                    }
                    container_instances.push(view);
                }
                None => {
                    let arn = if reference.starts_with("arn:") {
                        reference.clone()
                    } else {
                        self.scope().container_instance(&cluster, reference)
                    };
                    failures.push(Failure::new(arn, "MISSING", None));
                }
            }
        }
        Ok(DescribeContainerInstancesResponse {
            container_instances,
            failures,
        })
    }

    /// DeregisterContainerInstance: refused while tasks run on the instance
    /// unless `force`, which records those tasks STOPPED (the agent, if still
    /// connected, stops their containers because they left its desired set).
    pub async fn deregister_container_instance(
        &self,
        req: DeregisterContainerInstanceRequest,
    ) -> Result<DeregisterContainerInstanceResponse> {
        let reference =
            validate::required_str(req.container_instance.as_deref(), "containerInstance")?;
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
            let instance = find_instance(&state, &cluster, reference)
                .filter(|i| i.status != Status::Inactive)
                .ok_or_else(|| {
                    invalid(format!(
                        "The referenced container instance was not found: '{reference}' is not registered in cluster '{cluster}'."
                    ))
                })?
                .clone();
            let live_tasks: Vec<String> = state
                .live(&instance.id)
                .map(|l| l.active_tasks.iter().cloned().collect())
                .unwrap_or_default();
            if !live_tasks.is_empty() && !req.force.unwrap_or(false) {
                return Err(invalid(format!(
                    "Found running tasks on the instance. {} task(s) have not stopped: stop them first, or pass force to record them STOPPED.",
                    live_tasks.len()
                )));
            }
            let now = Timestamp::now();
            let mut staged = Staged::default();
            for id in &live_tasks {
                let mut t = state.tasks[id].clone();
                let task = &mut t.task;
                task.desired_status = TaskStatus::Stopped;
                task.last_status = TaskStatus::Stopped;
                task.stop_code
                    .get_or_insert_with(|| "InfrastructureHealth".to_owned());
                task.stopped_reason.get_or_insert_with(|| {
                    "The container instance was deregistered (force); its agent stops the containers if it is still connected.".to_owned()
                });
                task.stopping_at.get_or_insert(now);
                task.stopped_at = Some(now);
                task.version += 1;
                staged.put(t);
            }
            let mut record = instance.clone();
            record.status = Status::Inactive;
            record.version += 1;
            staged.put(record);
            let wakeups = self.commit(&mut state, staged)?;
            let view = self.instance_view(&state, &state.instances[&instance.id], false);
            (
                wakeups,
                DeregisterContainerInstanceResponse {
                    container_instance: view,
                },
            )
        };
        self.durable(wakeups).await?;
        tracing::info!(container_instance = %response.container_instance.container_instance_arn, "container instance deregistered");
        Ok(response)
    }

    /// The ECS view of an instance: counters and remaining resources from
    /// the tasks that hold it.
    pub(super) fn instance_view(
        &self,
        state: &State,
        i: &InstanceRecord,
        with_tags: bool,
    ) -> ContainerInstance {
        let live = state.live(&i.id);
        let (used_cpu, used_memory) = live.map(|l| (l.used_cpu, l.used_memory)).unwrap_or((0, 0));
        let used_tcp: Vec<u16> = i
            .reserved_tcp
            .iter()
            .chain(live.into_iter().flat_map(|l| l.used_tcp.iter()))
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let used_udp: Vec<u16> = i
            .reserved_udp
            .iter()
            .chain(live.into_iter().flat_map(|l| l.used_udp.iter()))
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (mut running, mut pending) = (0, 0);
        for id in live.into_iter().flat_map(|l| l.active_tasks.iter()) {
            if let Some(t) = state.tasks.get(id) {
                if t.task.desired_status == TaskStatus::Running {
                    running += 1;
                }
                if t.task.last_status == TaskStatus::Pending {
                    pending += 1;
                }
            }
        }
        ContainerInstance {
            container_instance_arn: i.arn.clone(),
            ec2_instance_id: i.ec2_instance_id.clone(),
            capacity_provider_name: i.capacity_provider.clone(),
            version: i.version,
            version_info: i.version_info.clone(),
            remaining_resources: vec![
                Resource::integer("CPU", i.cpu - used_cpu),
                Resource::integer("MEMORY", i.memory - used_memory),
                Resource::ports("PORTS", &used_tcp),
                Resource::ports("PORTS_UDP", &used_udp),
            ],
            registered_resources: vec![
                Resource::integer("CPU", i.cpu),
                Resource::integer("MEMORY", i.memory),
                Resource::ports("PORTS", &i.reserved_tcp),
                Resource::ports("PORTS_UDP", &i.reserved_udp),
            ],
            status: i.status.to_string(),
            agent_connected: live.is_some_and(|l| l.connected) && i.status != Status::Inactive,
            running_tasks_count: running,
            pending_tasks_count: pending,
            attributes: i.all_attributes().cloned().collect(),
            registered_at: i.registered_at,
            tags: with_tags.then(|| i.tags.clone()),
            health_status: None,
        }
    }
}

/// ECS's `healthStatus`: the CONTAINER_RUNTIME check, from the agent's
/// heartbeats; INSUFFICIENT_DATA while its agent is away or has not said.
fn health_view(
    live: Option<&super::state::InstanceLive>,
) -> crate::model::container_instance::ContainerInstanceHealthStatus {
    use crate::model::container_instance::{
        ContainerInstanceHealthStatus, InstanceHealthCheckResult,
    };
    let (status, updated, changed) = match live
        .filter(|l| l.connected)
        .and_then(|l| l.runtime.as_ref())
    {
        Some(r) => (
            if r.ok { "OK" } else { "IMPAIRED" },
            Some(r.reported),
            Some(r.changed),
        ),
        None => ("INSUFFICIENT_DATA", None, None),
    };
    ContainerInstanceHealthStatus {
        overall_status: status.to_owned(),
        details: vec![InstanceHealthCheckResult {
            kind: "CONTAINER_RUNTIME".to_owned(),
            status: status.to_owned(),
            last_updated: updated,
            last_status_change: changed,
        }],
    }
}

impl ControlPlane {
    /// UpdateContainerInstancesState: ACTIVE <-> DRAINING. A DRAINING
    /// instance gets no new tasks; the tasks on it keep running (standalone
    /// tasks are not stopped by draining, as in ECS).
    pub async fn update_container_instances_state(
        &self,
        req: UpdateContainerInstancesStateRequest,
    ) -> Result<UpdateContainerInstancesStateResponse> {
        let refs = validate::container_instance_refs(req.container_instances.as_deref(), 10)?;
        let given = validate::required_str(req.status.as_deref(), "status")?;
        let status = match Status::parse(given) {
            Some(s @ (Status::Active | Status::Draining)) => s,
            _ => {
                return Err(invalid(format!(
                    "Container instances can only be set to ACTIVE or DRAINING (got '{given}')."
                )));
            }
        };
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
            let mut staged = Staged::default();
            let mut changed = BTreeSet::new();
            let mut failures = Vec::new();
            let mut ids = Vec::new();
            for reference in &refs {
                match find_instance(&state, &cluster, reference) {
                    Some(i) if i.status == Status::Active || i.status == Status::Draining => {
                        ids.push(i.id.clone());
                        if i.status != status && changed.insert(i.id.clone()) {
                            let mut record = i.clone();
                            record.status = status;
                            record.version += 1;
                            staged.put(record);
                        }
                    }
                    Some(i) => failures.push(Failure::new(
                        i.arn.clone(),
                        "INACTIVE",
                        Some(format!("The container instance is {}; only ACTIVE and DRAINING instances can change.", i.status)),
                    )),
                    None => {
                        let arn = if reference.starts_with("arn:") {
                            reference.clone()
                        } else {
                            self.scope().container_instance(&cluster, reference)
                        };
                        failures.push(Failure::new(arn, "MISSING", None));
                    }
                }
            }
            let wakeups = self.commit(&mut state, staged)?;
            let container_instances = ids
                .iter()
                .filter_map(|id| state.instances.get(id))
                .map(|i| self.instance_view(&state, i, false))
                .collect();
            (
                wakeups,
                UpdateContainerInstancesStateResponse {
                    container_instances,
                    failures,
                },
            )
        };
        self.durable(wakeups).await?;
        Ok(response)
    }

    /// PutAttributes: creates or replaces custom attributes on instances
    /// (at most 10 custom attributes per instance).
    pub async fn put_attributes(&self, req: AttributesRequest) -> Result<AttributesResponse> {
        self.change_attributes(req, true).await
    }

    /// DeleteAttributes: removes custom attributes from instances.
    pub async fn delete_attributes(&self, req: AttributesRequest) -> Result<AttributesResponse> {
        self.change_attributes(req, false).await
    }

    async fn change_attributes(
        &self,
        req: AttributesRequest,
        put: bool,
    ) -> Result<AttributesResponse> {
        let attributes = validate::required(req.attributes.as_ref(), "attributes")?.clone();
        if attributes.is_empty() || attributes.len() > 10 {
            return Err(invalid(format!(
                "attributes must hold 1-10 attributes (got {}).",
                attributes.len()
            )));
        }
        for a in &attributes {
            check_custom_attribute(a, put)?;
        }
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
            let mut changed: Vec<InstanceRecord> = Vec::new();
            for a in &attributes {
                let target = a.target_id.as_deref().unwrap_or_default();
                let Some(found) = find_instance(&state, &cluster, target)
                    .filter(|i| i.status != Status::Inactive)
                else {
                    return Err(Error::TargetNotFound(format!(
                        "Could not find container instance '{target}' in cluster '{cluster}'."
                    )));
                };
                let pos = match changed.iter().position(|r| r.id == found.id) {
                    Some(p) => p,
                    None => {
                        changed.push(found.clone());
                        changed.len() - 1
                    }
                };
                let record = &mut changed[pos];
                record.custom_attributes.retain(|c| c.name != a.name);
                if put {
                    record.custom_attributes.push(Attribute {
                        name: a.name.clone(),
                        value: a.value.clone(),
                        target_type: None,
                        target_id: None,
                    });
                    if record.custom_attributes.len() > 10 {
                        return Err(Error::AttributeLimitExceeded(format!(
                            "Container instance {} would have more than 10 custom attributes.",
                            record.arn
                        )));
                    }
                }
            }
            for r in &mut changed {
                r.version += 1;
            }
            let mut staged = Staged::default();
            for r in changed {
                staged.put(r);
            }
            let wakeups = self.commit(&mut state, staged)?;
            (wakeups, AttributesResponse { attributes })
        };
        self.durable(wakeups).await?;
        Ok(response)
    }

    /// ListAttributes: one entry per (instance, attribute) of the cluster,
    /// optionally only one attribute name (and value).
    pub fn list_attributes(&self, req: ListAttributesRequest) -> Result<ListAttributesResponse> {
        let target_type = validate::required_str(req.target_type.as_deref(), "targetType")?;
        if target_type != "container-instance" {
            return Err(invalid(format!(
                "targetType should be container-instance (got '{target_type}')."
            )));
        }
        if req.attribute_value.is_some() && req.attribute_name.is_none() {
            return Err(invalid(
                "attributeValue can only be given together with attributeName.",
            ));
        }
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let page = Page::start(
            "ListAttributes",
            &(&cluster_ref, &req.attribute_name, &req.attribute_value),
            req.next_token.as_deref(),
            req.max_results,
        )?;
        let state = self.lock();
        let cluster = self.cluster(&state, &cluster_ref)?;
        let mut items = Vec::new();
        for id in &cluster.instance_ids {
            let Some(i) = state.instances.get(id) else {
                continue;
            };
            for a in i.all_attributes() {
                if req.attribute_name.as_deref().is_some_and(|n| n != a.name)
                    || req
                        .attribute_value
                        .as_deref()
                        .is_some_and(|v| a.value.as_deref() != Some(v))
                {
                    continue;
                }
                let key = format!("{id}\n{}", a.name);
                if page.includes(&key) {
                    items.push((
                        key,
                        Attribute {
                            name: a.name.clone(),
                            value: a.value.clone(),
                            target_type: Some("container-instance".to_owned()),
                            target_id: Some(i.arn.clone()),
                        },
                    ));
                }
            }
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let (attributes, next_token) = page.collect(items.into_iter());
        Ok(ListAttributesResponse {
            attributes,
            next_token,
        })
    }
}

/// A custom attribute as PutAttributes/DeleteAttributes take it: name and
/// value rules of ECS, a target, and no name reserved for ECS or the agent.
fn check_custom_attribute(a: &Attribute, put: bool) -> Result<()> {
    let name_ok = !a.name.is_empty()
        && a.name.len() <= 128
        && a.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_/\\.".contains(c));
    if !name_ok {
        return Err(invalid(format!(
            "Attribute name '{}' is not valid: use 1-128 letters, digits and - _ / \\ .",
            a.name
        )));
    }
    if a.name.starts_with("ecs.") || a.name.starts_with("com.amazonaws.ecs.") {
        return Err(invalid(format!(
            "Attribute name '{}' is reserved: ecs.* and com.amazonaws.ecs.* attributes come from the agent.",
            a.name
        )));
    }
    if put && let Some(v) = &a.value {
        let ok = !v.is_empty()
            && v.len() <= 128
            && v.trim() == v
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@/\\: ".contains(c));
        if !ok {
            return Err(invalid(format!(
                "Attribute value '{v}' is not valid: use 1-128 letters, digits, spaces and - _ . @ / \\ :, with no leading or trailing space."
            )));
        }
    }
    let target = a.target_id.as_deref().unwrap_or_default();
    if target.is_empty() {
        return Err(invalid(format!(
            "Attribute '{}' needs a targetId (a container instance id or ARN).",
            a.name
        )));
    }
    if !target.starts_with("arn:") && a.target_type.as_deref() != Some("container-instance") {
        return Err(invalid(format!(
            "Attribute '{}' names a bare id as targetId: add targetType container-instance, or give the ARN.",
            a.name
        )));
    }
    Ok(())
}

/// The instance a reference names within `cluster`.
pub(super) fn find_instance<'s>(
    state: &'s State,
    cluster: &str,
    reference: &str,
) -> Option<&'s InstanceRecord> {
    let r = arn::scoped(reference, "container-instance")?;
    if r.cluster.is_some_and(|c| c != cluster) {
        return None;
    }
    state.instances.get(r.id).filter(|i| i.cluster == cluster)
}
