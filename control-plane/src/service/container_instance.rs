//! ListContainerInstances, DescribeContainerInstances,
//! DeregisterContainerInstance, and the ECS view of an instance.

use super::page::Page;
use super::state::{InstanceRecord, State};
use super::{Error, Result, Service, Staged, invalid};
use crate::model::arn;
use crate::model::container_instance::{
    ContainerInstance, DeregisterContainerInstanceRequest, DeregisterContainerInstanceResponse,
    DescribeContainerInstancesRequest, DescribeContainerInstancesResponse,
    ListContainerInstancesRequest, ListContainerInstancesResponse,
};
use crate::model::task::TaskStatus;
use crate::model::{Failure, Resource, Timestamp};
use crate::validate;

const STATUSES: &[&str] = &[
    "ACTIVE",
    "DRAINING",
    "REGISTERING",
    "DEREGISTERING",
    "REGISTRATION_FAILED",
];

impl Service {
    /// ListContainerInstances: every status but INACTIVE unless one is asked for.
    pub fn list_container_instances(
        &self,
        req: ListContainerInstancesRequest,
    ) -> Result<ListContainerInstancesResponse> {
        let status = validate::one_of(req.status.as_deref(), "status", STATUSES)?;
        if req.filter.as_deref().is_some_and(|f| !f.trim().is_empty()) {
            return Err(Error::Validation(validate::ValidationError::unsupported(
                "filter (the cluster query language) is not available on this Berth version yet; list without it.",
            )));
        }
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let page = Page::start(
            "ListContainerInstances",
            &(&cluster_ref, status),
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
            .filter(|i| status.is_none_or(|s| i.status == s))
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
                Some(i) => container_instances.push(self.instance_view(
                    &state,
                    i,
                    include.iter().any(|i| i == "TAGS"),
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
                .filter(|i| i.status != "INACTIVE")
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
                    "Found running tasks on the instance: {} task(s) have not stopped. Stop them first, or pass force to record them STOPPED.",
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
                staged.tasks.push(t);
            }
            let mut record = instance.clone();
            record.status = "INACTIVE".to_owned();
            record.version += 1;
            staged.instances.push(record);
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
            status: i.status.clone(),
            agent_connected: live.is_some_and(|l| l.connected) && i.status != "INACTIVE",
            running_tasks_count: running,
            pending_tasks_count: pending,
            attributes: i.attributes.clone(),
            registered_at: i.registered_at,
            tags: with_tags.then(|| i.tags.clone()),
        }
    }
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
