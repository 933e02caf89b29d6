//! CreateCluster, DescribeClusters, ListClusters, DeleteCluster.

use super::page::Page;
use super::state::{ClusterRecord, State};
use super::{ControlPlane, Error, Result, Staged, invalid};
use crate::model::cluster::{
    Cluster, ClusterResponse, CreateClusterRequest, DeleteClusterRequest, DescribeClustersRequest,
    DescribeClustersResponse, ListClustersRequest, ListClustersResponse,
};
use crate::model::status::Status;
use crate::model::task::TaskStatus;
use crate::model::{Failure, KeyValuePair};
use crate::validate;

const DESCRIBE_INCLUDE: &[&str] = &[
    "ATTACHMENTS",
    "CONFIGURATIONS",
    "SETTINGS",
    "STATISTICS",
    "TAGS",
];

impl ControlPlane {
    /// CreateCluster: idempotent on the name of an ACTIVE cluster (the
    /// existing cluster comes back unchanged).
    pub async fn create_cluster(&self, req: CreateClusterRequest) -> Result<ClusterResponse> {
        let name = match req.cluster_name.as_deref() {
            None | Some("") => "default",
            Some(n) => n,
        };
        validate::cluster_name(name)?;
        let tags = validate::tags(req.tags.as_deref())?;
        if req.service_connect_defaults.is_some() {
            return Err(Error::Validation(validate::ValidationError::unsupported(
                "serviceConnectDefaults (Service Connect) is not available on Berth.",
            )));
        }
        let (wakeups, response) = {
            let mut state = self.lock();
            if let Some(existing) = state.active_cluster(name) {
                let cluster = self.cluster_view(&state, existing, &["TAGS", "SETTINGS"]);
                return Ok(ClusterResponse { cluster });
            }
            let capacity_providers = super::capacity_provider::cluster_providers(
                &state,
                req.capacity_providers.as_deref().unwrap_or_default(),
                req.default_capacity_provider_strategy
                    .as_deref()
                    .unwrap_or_default(),
            )?;
            let record = ClusterRecord {
                tags,
                settings: req.settings.clone().unwrap_or_default(),
                configuration: req.configuration.clone(),
                capacity_providers,
                default_capacity_provider_strategy: req
                    .default_capacity_provider_strategy
                    .clone()
                    .unwrap_or_default(),
                ..ClusterRecord::new(name)
            };
            let staged = Staged::one(record);
            let wakeups = self.commit(&mut state, staged)?;
            let created = state
                .clusters
                .get(name)
                .expect("cluster was just installed");
            let cluster = self.cluster_view(&state, created, &["TAGS", "SETTINGS"]);
            (wakeups, ClusterResponse { cluster })
        };
        self.durable(wakeups).await?;
        tracing::info!(cluster = %name, "cluster created");
        Ok(response)
    }

    /// DescribeClusters: unknown names are `MISSING` failures, not errors.
    pub fn describe_clusters(
        &self,
        req: DescribeClustersRequest,
    ) -> Result<DescribeClustersResponse> {
        let include = validate::include(req.include.as_deref(), DESCRIBE_INCLUDE)?;
        let include: Vec<&str> = include.iter().map(String::as_str).collect();
        let names = match req.clusters.as_deref() {
            None | Some([]) => vec!["default".to_owned()],
            Some(n) if n.len() > 100 => {
                return Err(invalid(format!(
                    "At most 100 clusters can be described per call (got {}).",
                    n.len()
                )));
            }
            Some(n) => n.to_vec(),
        };
        let state = self.lock();
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for reference in &names {
            let record =
                crate::model::arn::cluster_name(reference).and_then(|n| state.clusters.get(n));
            match record {
                Some(c) => clusters.push(self.cluster_view(&state, c, &include)),
                None => {
                    let arn = if reference.starts_with("arn:") {
                        reference.clone()
                    } else {
                        self.scope().cluster(reference)
                    };
                    failures.push(Failure::new(arn, "MISSING", None));
                }
            }
        }
        Ok(DescribeClustersResponse { clusters, failures })
    }

    /// ListClusters: ACTIVE clusters by name.
    pub fn list_clusters(&self, req: ListClustersRequest) -> Result<ListClustersResponse> {
        let page = Page::start(
            "ListClusters",
            &(),
            req.next_token.as_deref(),
            req.max_results,
        )?;
        let state = self.lock();
        let items = state
            .clusters
            .values()
            .filter(|c| c.is_active() && page.includes(&c.name))
            .map(|c| (c.name.clone(), self.scope().cluster(&c.name)));
        let (cluster_arns, next_token) = page.collect(items);
        Ok(ListClustersResponse {
            cluster_arns,
            next_token,
        })
    }

    /// DeleteCluster: refused while instances are registered or tasks have
    /// not stopped. The cluster becomes INACTIVE and its STOPPED tasks are
    /// forgotten, so a cluster created later under the same name starts empty.
    pub async fn delete_cluster(&self, req: DeleteClusterRequest) -> Result<ClusterResponse> {
        let reference = validate::required_str(req.cluster.as_deref(), "cluster")?;
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, reference)?;
            if !cluster.instance_ids.is_empty() {
                return Err(Error::ClusterContainsContainerInstances(format!(
                    "The cluster '{}' still has {} registered container instance(s). Stop their agents and deregister them with DeregisterContainerInstance first.",
                    cluster.name,
                    cluster.instance_ids.len()
                )));
            }
            let services = state
                .services
                .values()
                .filter(|s| s.cluster == cluster.name && s.status != Status::Inactive)
                .count();
            if services > 0 {
                return Err(Error::ClusterContainsServices(format!(
                    "The cluster '{}' still has {services} service(s). Delete them with DeleteService (scale to 0 or use force) and wait until they are INACTIVE.",
                    cluster.name
                )));
            }
            let active = cluster
                .task_ids
                .iter()
                .filter(|id| {
                    state
                        .tasks
                        .get(*id)
                        .is_some_and(|t| t.task.last_status != TaskStatus::Stopped)
                })
                .count();
            if active > 0 {
                return Err(Error::ClusterContainsTasks(format!(
                    "The cluster '{}' still has {active} task(s) that have not stopped. Stop them with StopTask first.",
                    cluster.name
                )));
            }
            let mut record = cluster.clone();
            record.status = Status::Inactive;
            let mut staged = Staged::default();
            for id in &cluster.task_ids {
                if let Some(t) = state.tasks.get(id) {
                    staged.delete(t.clone());
                }
            }
            staged.put(record);
            let name = cluster.name.clone();
            let wakeups = self.commit(&mut state, staged)?;
            let deleted = state
                .clusters
                .get(&name)
                .expect("cluster was just installed");
            let cluster = self.cluster_view(&state, deleted, &[]);
            (wakeups, ClusterResponse { cluster })
        };
        self.durable(wakeups).await?;
        tracing::info!(cluster = %response.cluster.cluster_name, "cluster deleted");
        Ok(response)
    }

    /// The ECS view of a cluster with its counters.
    pub(super) fn cluster_view(
        &self,
        state: &State,
        c: &ClusterRecord,
        include: &[&str],
    ) -> Cluster {
        let (pending, running) = if c.is_active() {
            state.cluster_task_counts(c)
        } else {
            (0, 0)
        };
        let statistics = if include.contains(&"STATISTICS") {
            self.cluster_statistics(state, c)
        } else {
            Vec::new()
        };
        Cluster {
            cluster_arn: self.scope().cluster(&c.name),
            cluster_name: c.name.clone(),
            status: c.status.to_string(),
            registered_container_instances_count: c.instance_ids.len() as i64,
            running_tasks_count: running,
            pending_tasks_count: pending,
            active_services_count: state
                .services
                .values()
                .filter(|s| s.cluster == c.name && s.status == Status::Active)
                .count() as i64,
            statistics,
            tags: if include.contains(&"TAGS") {
                c.tags.clone()
            } else {
                Vec::new()
            },
            settings: c.settings.clone(),
            capacity_providers: c.capacity_providers.clone(),
            default_capacity_provider_strategy: c.default_capacity_provider_strategy.clone(),
        }
    }

    /// ECS's per-launch-type statistics.
    fn cluster_statistics(&self, state: &State, c: &ClusterRecord) -> Vec<KeyValuePair> {
        let mut counts = std::collections::BTreeMap::new();
        for key in [
            "runningEC2TasksCount",
            "pendingEC2TasksCount",
            "runningExternalTasksCount",
            "pendingExternalTasksCount",
            "runningFargateTasksCount",
            "pendingFargateTasksCount",
            "activeEC2ServiceCount",
            "activeFargateServiceCount",
            "drainingEC2ServiceCount",
            "drainingFargateServiceCount",
        ] {
            counts.insert(key, 0i64);
        }
        for id in &c.task_ids {
            let Some(t) = state.tasks.get(id) else {
                continue;
            };
            let kind = if t.task.launch_type == "EC2" {
                "EC2"
            } else {
                "External"
            };
            let status = match t.task.last_status {
                TaskStatus::Running => "running",
                TaskStatus::Pending | TaskStatus::Provisioning => "pending",
                _ => continue,
            };
            if let Some(n) = counts.get_mut(format!("{status}{kind}TasksCount").as_str()) {
                *n += 1;
            }
        }
        counts
            .into_iter()
            .map(|(k, v)| KeyValuePair {
                name: Some(k.to_owned()),
                value: Some(v.to_string()),
            })
            .collect()
    }
}
