//! CreateCluster, UpdateCluster, UpdateClusterSettings, DescribeClusters,
//! ListClusters, DeleteCluster.

use super::page::Page;
use super::state::{ClusterRecord, State};
use super::{ControlPlane, Error, Result, Staged, invalid};
use crate::model::cluster::{
    Cluster, ClusterResponse, ClusterSetting, CreateClusterRequest, DeleteClusterRequest,
    DescribeClustersRequest, DescribeClustersResponse, ListClustersRequest, ListClustersResponse,
    UpdateClusterRequest, UpdateClusterSettingsRequest,
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

/// What CreateCluster and UpdateCluster answer with.
const CHANGED_INCLUDE: &[&str] = &["TAGS", "SETTINGS", "CONFIGURATIONS"];

/// `containerInsights` values.
const INSIGHTS: &[&str] = &["enabled", "disabled", "enhanced"];

/// Checks cluster settings: only `containerInsights`, with ECS's values.
fn cluster_settings(given: &[ClusterSetting]) -> Result<Vec<ClusterSetting>> {
    for s in given {
        match (s.name.as_deref(), s.value.as_deref()) {
            (Some("containerInsights"), Some(v)) if INSIGHTS.contains(&v) => {}
            (Some("containerInsights"), v) => {
                return Err(invalid(format!(
                    "The value '{}' of cluster setting containerInsights is not valid: use enabled, disabled or enhanced.",
                    v.unwrap_or_default()
                )));
            }
            (name, _) => {
                return Err(invalid(format!(
                    "Cluster setting '{}' is not valid: the only cluster setting is containerInsights.",
                    name.unwrap_or_default()
                )));
            }
        }
    }
    Ok(given.to_vec())
}

/// `existing` with `given` set by name.
fn merge_settings(existing: &[ClusterSetting], given: Vec<ClusterSetting>) -> Vec<ClusterSetting> {
    let mut out = existing.to_vec();
    for s in given {
        match out.iter_mut().find(|x| x.name == s.name) {
            Some(x) => x.value = s.value,
            None => out.push(s),
        }
    }
    out
}

/// Service Connect defaults, when given: `{namespace}` with a namespace.
fn service_connect_defaults(v: Option<&serde_json::Value>) -> Result<Option<serde_json::Value>> {
    let Some(v) = v else {
        return Ok(None);
    };
    match v.get("namespace").and_then(|n| n.as_str()) {
        Some(n) if !n.trim().is_empty() => Ok(Some(v.clone())),
        _ => Err(invalid(
            "serviceConnectDefaults needs a namespace (a Cloud Map namespace name or ARN); Berth records it and shows it back.",
        )),
    }
}

impl ControlPlane {
    /// CreateCluster: idempotent on the name of an ACTIVE cluster (the
    /// existing cluster comes back unchanged).
    pub async fn create_cluster(
        &self,
        req: CreateClusterRequest,
        caller: &super::Caller,
    ) -> Result<ClusterResponse> {
        let name = match req.cluster_name.as_deref() {
            None | Some("") => "default",
            Some(n) => n,
        };
        validate::cluster_name(name)?;
        let tags = validate::tags(req.tags.as_deref())?;
        let settings = cluster_settings(req.settings.as_deref().unwrap_or_default())?;
        let service_connect = service_connect_defaults(req.service_connect_defaults.as_ref())?;
        let (wakeups, response) = {
            let mut state = self.lock();
            if let Some(existing) = state.active_cluster(name) {
                let cluster = self.cluster_view(&state, existing, CHANGED_INCLUDE);
                return Ok(ClusterResponse { cluster });
            }
            // Without its own, a cluster takes the caller's containerInsights
            // account setting (or the account default), as ECS does.
            let settings = if settings
                .iter()
                .any(|s| s.name.as_deref() == Some("containerInsights"))
            {
                settings
            } else {
                merge_settings(
                    &settings,
                    vec![ClusterSetting {
                        name: Some("containerInsights".into()),
                        value: Some(super::account_setting::effective(
                            &state,
                            caller,
                            "containerInsights",
                        )),
                    }],
                )
            };
            let capacity_providers = super::capacity_provider::cluster_providers(
                &state,
                req.capacity_providers.as_deref().unwrap_or_default(),
                req.default_capacity_provider_strategy
                    .as_deref()
                    .unwrap_or_default(),
            )?;
            let record = ClusterRecord {
                tags,
                settings,
                service_connect_defaults: service_connect,
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
            let cluster = self.cluster_view(&state, created, CHANGED_INCLUDE);
            (wakeups, ClusterResponse { cluster })
        };
        self.durable(wakeups).await?;
        tracing::info!(cluster = %name, "cluster created");
        Ok(response)
    }

    /// UpdateCluster: settings by name, and the configuration and Service
    /// Connect defaults when given, recorded and shown back.
    pub async fn update_cluster(&self, req: UpdateClusterRequest) -> Result<ClusterResponse> {
        let reference = validate::required_str(req.cluster.as_deref(), "cluster")?;
        let settings = cluster_settings(req.settings.as_deref().unwrap_or_default())?;
        let service_connect = service_connect_defaults(req.service_connect_defaults.as_ref())?;
        self.change_cluster(reference, |c| {
            c.settings = merge_settings(&c.settings, settings);
            if let Some(configuration) = req.configuration {
                c.configuration = Some(configuration);
            }
            if let Some(defaults) = service_connect {
                c.service_connect_defaults = Some(defaults);
            }
        })
        .await
    }

    /// UpdateClusterSettings: settings by name.
    pub async fn update_cluster_settings(
        &self,
        req: UpdateClusterSettingsRequest,
    ) -> Result<ClusterResponse> {
        let reference = validate::required_str(req.cluster.as_deref(), "cluster")?;
        let given = validate::required(req.settings.as_deref(), "settings")?;
        let settings = cluster_settings(given)?;
        self.change_cluster(reference, |c| {
            c.settings = merge_settings(&c.settings, settings);
        })
        .await
    }

    /// Applies `change` to an active cluster's record and answers with it.
    async fn change_cluster(
        &self,
        reference: &str,
        change: impl FnOnce(&mut ClusterRecord),
    ) -> Result<ClusterResponse> {
        let (wakeups, response) = {
            let mut state = self.lock();
            let mut record = self.cluster(&state, reference)?.clone();
            let before = record.clone();
            change(&mut record);
            if record == before {
                let cluster = self.cluster_view(&state, &before, CHANGED_INCLUDE);
                return Ok(ClusterResponse { cluster });
            }
            let name = record.name.clone();
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            let cluster = self.cluster_view(&state, &state.clusters[&name], CHANGED_INCLUDE);
            (wakeups, ClusterResponse { cluster })
        };
        self.durable(wakeups).await?;
        tracing::info!(cluster = %response.cluster.cluster_name, "cluster updated");
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
                    "The Cluster cannot be deleted while Container Instances are active or draining. '{}' still has {} registered container instance(s): stop their agents and deregister them with DeregisterContainerInstance first.",
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
                    "The Cluster cannot be deleted while Services are active. '{}' still has {services} service(s): delete them with DeleteService (scale to 0 or use force) and wait until they are INACTIVE.",
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
                    "The Cluster cannot be deleted while Tasks are active. '{}' still has {active} task(s) that have not stopped: stop them with StopTask first.",
                    cluster.name
                )));
            }
            let mut record = cluster.clone();
            record.status = Status::Inactive;
            let mut staged = Staged::default();
            for id in &cluster.task_ids {
                if let Some(t) = self.task_by_id(&state, id)? {
                    staged.delete(t.into_owned());
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
            settings: include.contains(&"SETTINGS").then(|| c.settings.clone()),
            configuration: if include.contains(&"CONFIGURATIONS") {
                c.configuration.clone()
            } else {
                None
            },
            service_connect_defaults: c.service_connect_defaults.clone(),
            attachments: include.contains(&"ATTACHMENTS").then(Vec::new),
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
