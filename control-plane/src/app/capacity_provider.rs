//! Capacity providers. On Berth a capacity provider is a named pool of
//! agents: an agent joins one with `--capacity-provider NAME` (the provider
//! is created when it does not exist yet). CreateCapacityProvider,
//! DescribeCapacityProviders, UpdateCapacityProvider, DeleteCapacityProvider,
//! and PutClusterCapacityProviders (with the `capacityProviders` and
//! `defaultCapacityProviderStrategy` of CreateCluster) make pools usable in
//! `capacityProviderStrategy`.
//!
//! FARGATE and FARGATE_SPOT may be associated with a cluster (shared
//! Terraform modules list them), and are shown in its `capacityProviders`;
//! no Berth agent is in them, so a task placed through one is placement's
//! `EMPTY CAPACITY PROVIDER` failure, as for any pool without agents.

use super::page::Page;
use super::state::{CapacityProviderRecord, ClusterRecord, State};
use super::{ControlPlane, Error, Result, Staged, client, invalid};
use crate::model::Failure;
use crate::model::cluster::ClusterResponse;
use crate::model::placement::{
    CapacityProvider, CapacityProviderResponse, CapacityProviderStrategyItem,
    CreateCapacityProviderRequest, DeleteCapacityProviderRequest, DescribeCapacityProvidersRequest,
    DescribeCapacityProvidersResponse, PutClusterCapacityProvidersRequest,
    UpdateCapacityProviderRequest,
};

/// The AWS-managed providers a cluster may name without a record here.
const FARGATE_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

/// The members of an Auto Scaling group provider UpdateCapacityProvider
/// may change.
const ASG_UPDATABLE: [&str; 3] = [
    "managedScaling",
    "managedTerminationProtection",
    "managedDraining",
];
use crate::model::status::Status;
use crate::model::task::TaskStatus;
use crate::validate::{self, ValidationError};

/// A capacity provider name: 1-255 letters, digits, `-`, `_`, not starting
/// with `aws`, `ecs` or `fargate` (reserved by ECS).
pub fn check_name(name: &str) -> std::result::Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(ValidationError::invalid(format!(
            "Invalid capacity provider name '{name}': use 1-255 letters, digits, hyphens (-) and underscores (_)."
        )));
    }
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(ValidationError::invalid(format!(
            "Invalid capacity provider name '{name}': names can't start with aws, ecs or fargate."
        )));
    }
    Ok(())
}

/// The members of CreateCapacityProvider and UpdateCapacityProvider that
/// Berth cannot honour.
fn refuse_unsupported(managed_instances: bool, cluster: bool) -> Result<()> {
    if managed_instances {
        return Err(Error::Validation(ValidationError::unsupported(
            "managedInstancesProvider (ECS Managed Instances) is not available on Berth; a capacity provider is a pool of agents that join it with --capacity-provider.",
        )));
    }
    if cluster {
        return Err(Error::Validation(ValidationError::unsupported(
            "Cluster-scoped capacity providers are not available on Berth; leave cluster out.",
        )));
    }
    Ok(())
}

fn provider_name(reference: &str) -> &str {
    crate::model::arn::parse(reference)
        .filter(|a| a.resource_type == "capacity-provider")
        .map_or(reference, |a| a.path)
}

impl ControlPlane {
    /// CreateCapacityProvider: a new, empty pool.
    pub async fn create_capacity_provider(
        &self,
        req: CreateCapacityProviderRequest,
    ) -> Result<CapacityProviderResponse> {
        let name = validate::required_str(req.name.as_deref(), "name")?;
        check_name(name)?;
        let tags = validate::tags(req.tags.as_deref())?;
        refuse_unsupported(
            req.managed_instances_provider.is_some(),
            req.cluster.is_some(),
        )?;
        let (wakeups, response) = {
            let mut state = self.lock();
            if state
                .capacity_providers
                .get(name)
                .is_some_and(|p| p.status == Status::Active)
            {
                return Err(client(format!(
                    "The specified capacity provider '{name}' already exists."
                )));
            }
            let record = CapacityProviderRecord {
                name: name.to_owned(),
                status: Status::Active,
                auto_scaling_group_provider: req.auto_scaling_group_provider.clone(),
                tags,
                update_status: None,
            };
            let view = self.capacity_provider_view(&record, true);
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            (
                wakeups,
                CapacityProviderResponse {
                    capacity_provider: view,
                },
            )
        };
        self.durable(wakeups).await?;
        tracing::info!(capacity_provider = %name, "capacity provider created");
        Ok(response)
    }

    /// DescribeCapacityProviders: the named providers (all when none are
    /// named); unknown names are `MISSING` failures.
    pub fn describe_capacity_providers(
        &self,
        req: DescribeCapacityProvidersRequest,
    ) -> Result<DescribeCapacityProvidersResponse> {
        let include = validate::include(req.include.as_deref(), &["TAGS"])?;
        if req.max_results.is_some_and(|m| !(1..=10).contains(&m)) {
            return Err(invalid(
                "maxResults must be between 1 and 10 for DescribeCapacityProviders.",
            ));
        }
        let page = Page::start(
            "DescribeCapacityProviders",
            &req.capacity_providers,
            req.next_token.as_deref(),
            Some(req.max_results.unwrap_or(10)),
        )?;
        let state = self.lock();
        let with_tags = !include.is_empty();
        let mut failures = Vec::new();
        let records: Vec<&CapacityProviderRecord> = match req.capacity_providers.as_deref() {
            None | Some([]) => state
                .capacity_providers
                .values()
                .filter(|p| p.status == Status::Active)
                .collect(),
            Some(names) => names
                .iter()
                .filter_map(|n| {
                    let found = state.capacity_providers.get(provider_name(n));
                    if found.is_none() {
                        failures.push(Failure::new(
                            self.scope().capacity_provider(provider_name(n)),
                            "MISSING",
                            None,
                        ));
                    }
                    found
                })
                .collect(),
        };
        let items = records
            .into_iter()
            .filter(|p| page.includes(&p.name))
            .map(|p| (p.name.clone(), self.capacity_provider_view(p, with_tags)));
        let (capacity_providers, next_token) = page.collect(items);
        Ok(DescribeCapacityProvidersResponse {
            capacity_providers,
            failures,
            next_token,
        })
    }

    /// DeleteCapacityProvider: refused while a cluster uses it.
    pub async fn delete_capacity_provider(
        &self,
        req: DeleteCapacityProviderRequest,
    ) -> Result<CapacityProviderResponse> {
        let reference =
            validate::required_str(req.capacity_provider.as_deref(), "capacityProvider")?;
        let name = provider_name(reference);
        let (wakeups, response) = {
            let mut state = self.lock();
            let Some(existing) = state
                .capacity_providers
                .get(name)
                .filter(|p| p.status == Status::Active)
            else {
                return Err(client(format!(
                    "The specified capacity provider does not exist. Specify a valid name or ARN and try again: there is no capacity provider '{name}'."
                )));
            };
            if let Some(c) = state
                .clusters
                .values()
                .find(|c| c.is_active() && c.capacity_providers.iter().any(|p| p == name))
            {
                return Err(client(format!(
                    "The capacity provider '{name}' is associated with cluster '{}'. Remove it with PutClusterCapacityProviders first.",
                    c.name
                )));
            }
            let mut record = existing.clone();
            record.status = Status::Inactive;
            let mut view = self.capacity_provider_view(&record, true);
            view.update_status = Some("DELETE_COMPLETE".to_owned());
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            (
                wakeups,
                CapacityProviderResponse {
                    capacity_provider: view,
                },
            )
        };
        self.durable(wakeups).await?;
        Ok(response)
    }

    /// PutClusterCapacityProviders: replaces the cluster's providers and
    /// default strategy. A provider still used by tasks that have not
    /// stopped cannot be removed.
    pub async fn put_cluster_capacity_providers(
        &self,
        req: PutClusterCapacityProvidersRequest,
    ) -> Result<ClusterResponse> {
        let reference = validate::required_str(req.cluster.as_deref(), "cluster")?;
        let providers =
            validate::required(req.capacity_providers.as_ref(), "capacityProviders")?.clone();
        let strategy = validate::required(
            req.default_capacity_provider_strategy.as_ref(),
            "defaultCapacityProviderStrategy",
        )?
        .clone();
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, reference)?.clone();
            let providers = cluster_providers(&state, &providers, &strategy)?;
            for removed in cluster
                .capacity_providers
                .iter()
                .filter(|p| !providers.contains(p))
            {
                let in_use = cluster
                    .task_ids
                    .iter()
                    .filter_map(|id| state.tasks.get(id))
                    .any(|t| {
                        t.task.capacity_provider_name.as_deref() == Some(removed.as_str())
                            && t.task.last_status != TaskStatus::Stopped
                    });
                if in_use {
                    return Err(Error::ResourceInUse(format!(
                        "The capacity provider '{removed}' has tasks in cluster '{}' that have not stopped; stop them before removing it.",
                        cluster.name
                    )));
                }
            }
            let record = ClusterRecord {
                capacity_providers: providers,
                default_capacity_provider_strategy: strategy,
                ..cluster
            };
            let name = record.name.clone();
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            let view = self.cluster_view(&state, &state.clusters[&name], &["TAGS", "SETTINGS"]);
            (wakeups, ClusterResponse { cluster: view })
        };
        self.durable(wakeups).await?;
        Ok(response)
    }

    pub(super) fn capacity_provider_view(
        &self,
        p: &CapacityProviderRecord,
        with_tags: bool,
    ) -> CapacityProvider {
        CapacityProvider {
            capacity_provider_arn: self.scope().capacity_provider(&p.name),
            name: p.name.clone(),
            status: p.status.to_string(),
            auto_scaling_group_provider: p.auto_scaling_group_provider.clone(),
            tags: if with_tags {
                p.tags.clone()
            } else {
                Vec::new()
            },
            update_status: p.update_status.clone(),
        }
    }

    /// UpdateCapacityProvider: the Auto Scaling group provider's
    /// `managedScaling`, `managedTerminationProtection` and
    /// `managedDraining` are recorded (Berth scales nothing); `updateStatus`
    /// is UPDATE_COMPLETE at once.
    pub async fn update_capacity_provider(
        &self,
        req: UpdateCapacityProviderRequest,
    ) -> Result<CapacityProviderResponse> {
        let reference = validate::required_str(req.name.as_deref(), "name")?;
        let name = provider_name(reference).to_owned();
        refuse_unsupported(
            req.managed_instances_provider.is_some(),
            req.cluster.is_some(),
        )?;
        let update = req.auto_scaling_group_provider.unwrap_or_default();
        let Some(update) = update
            .as_object()
            .cloned()
            .or_else(|| update.is_null().then(serde_json::Map::new))
        else {
            return Err(invalid("autoScalingGroupProvider must be an object."));
        };
        if let Some(other) = update.keys().find(|k| !ASG_UPDATABLE.contains(&k.as_str())) {
            return Err(invalid(format!(
                "autoScalingGroupProvider member '{other}' cannot be updated: UpdateCapacityProvider takes {}.",
                ASG_UPDATABLE.join(", ")
            )));
        }
        let (wakeups, response) = {
            let mut state = self.lock();
            let Some(existing) = state
                .capacity_providers
                .get(&name)
                .filter(|p| p.status == Status::Active)
            else {
                return Err(client(format!(
                    "The specified capacity provider does not exist. Specify a valid name or ARN and try again: there is no capacity provider '{name}'."
                )));
            };
            let mut record = existing.clone();
            let mut asg = record
                .auto_scaling_group_provider
                .take()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            for (k, v) in update {
                asg.insert(k, v);
            }
            record.auto_scaling_group_provider = Some(serde_json::Value::Object(asg));
            record.update_status = Some("UPDATE_COMPLETE".to_owned());
            let view = self.capacity_provider_view(&record, true);
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            (
                wakeups,
                CapacityProviderResponse {
                    capacity_provider: view,
                },
            )
        };
        self.durable(wakeups).await?;
        tracing::info!(capacity_provider = %name, "capacity provider updated");
        Ok(response)
    }
}

/// Validates a cluster's provider list and default strategy against the
/// existing providers; returns the provider names.
pub(super) fn cluster_providers(
    state: &State,
    providers: &[String],
    strategy: &[CapacityProviderStrategyItem],
) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for reference in providers {
        let name = provider_name(reference);
        if !FARGATE_PROVIDERS.contains(&name)
            && state
                .capacity_providers
                .get(name)
                .is_none_or(|p| p.status != Status::Active)
        {
            return Err(invalid(format!(
                "The specified capacity provider does not exist. Specify a valid name or ARN and try again: there is no capacity provider '{name}'; create it with CreateCapacityProvider, or start an agent with --capacity-provider {name}."
            )));
        }
        if names.iter().any(|n| n == name) {
            return Err(invalid(format!(
                "capacityProviders names '{name}' more than once."
            )));
        }
        names.push(name.to_owned());
    }
    for share in validate::placement::capacity_provider_strategy(strategy)? {
        if !names.contains(&share.name) {
            return Err(invalid(format!(
                "The default capacity provider strategy names '{}', which is not one of the cluster's capacityProviders.",
                share.name
            )));
        }
    }
    Ok(names)
}
