//! Services: CreateService, UpdateService, DeleteService, DescribeServices,
//! ListServices, and the reconcile round that keeps them converged.
//!
//! A round ([`ControlPlane::reconcile_services`]) reads each ACTIVE or
//! DRAINING service and its tasks from the committed state, asks the pure
//! [`scheduler`](crate::scheduler) what to launch and stop, places launches
//! through the same path as RunTask, and commits tasks and the service
//! record (deployments, events) together. It runs after every durable
//! commit, over the services the commits touched (`State::dirty_services`),
//! and over all of them once a second (timers: throttle, health-check
//! grace, lost hosts). Failures of service tasks are counted when the agent's report
//! stops them, in the same commit ([`ControlPlane::service_task_stopped`]).

use super::page::Page;
use super::state::{DeploymentRecord, ServiceRecord, State, TaskRecord};
use super::{ControlPlane, Error, Result, Staged, invalid};
use crate::model::service::{
    CreateServiceRequest, DeleteServiceRequest, Deployment, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentController, DescribeServicesRequest,
    DescribeServicesResponse, ListServicesRequest, ListServicesResponse, Service, ServiceEvent,
    ServiceResponse, UpdateServiceRequest,
};
use crate::model::status::{
    DeploymentStatus, HealthStatus, LaunchType, RolloutState, SchedulingStrategy, Status,
};
use crate::model::task::TaskStatus;
use crate::model::{Failure, Timestamp};
use crate::scheduler::{self, Desired, TaskView};
use crate::validate::{self, ValidationError};
use std::time::Duration;

/// The service a reference (name, short or long ARN) names within `cluster`.
pub(super) fn find_service<'s>(
    state: &'s State,
    cluster: &str,
    reference: &str,
) -> Option<&'s ServiceRecord> {
    let r = crate::model::arn::scoped(reference, "service")?;
    if r.cluster.is_some_and(|c| c != cluster) {
        return None;
    }
    state.services.get(&(cluster.to_owned(), r.id.to_owned()))
}

/// Events kept per service (ECS shows the latest 100).
const MAX_EVENTS: usize = 100;
/// Longest pause between launches of a service whose tasks keep failing.
const MAX_THROTTLE: Duration = Duration::from_secs(15 * 60);
/// The same placement failure is told again only after this long.
const REPEAT_EVENT_AFTER: Duration = Duration::from_secs(60);

fn service_name_rule(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "serviceName '{name}' is not valid: use 1-255 letters, digits, hyphens (-) and underscores (_)."
        )))
    }
}

fn unsupported(what: &str) -> Error {
    Error::Validation(ValidationError::unsupported(format!(
        "{what} are not available on Berth."
    )))
}

/// The members of CreateService and UpdateService Berth has no use for.
struct Unsupported<'a> {
    load_balancers: &'a Option<Vec<serde_json::Value>>,
    service_registries: &'a Option<Vec<serde_json::Value>>,
    service_connect: &'a Option<serde_json::Value>,
    volumes: &'a Option<Vec<serde_json::Value>>,
    vpc_lattice: &'a Option<Vec<serde_json::Value>>,
    deployment_controller: &'a Option<DeploymentController>,
    platform_version: &'a Option<String>,
}

/// Refuses what Berth cannot honour, never dropping it silently.
fn refuse_unsupported(u: Unsupported<'_>) -> Result<()> {
    if non_empty(u.load_balancers) {
        return Err(unsupported("Load balancers"));
    }
    if non_empty(u.service_registries) {
        return Err(unsupported("Service registries (Cloud Map)"));
    }
    if u.service_connect.is_some() {
        return Err(unsupported("Service Connect configurations"));
    }
    if non_empty(u.volumes) {
        return Err(unsupported("Volume configurations (Amazon EBS)"));
    }
    if non_empty(u.vpc_lattice) {
        return Err(unsupported("VPC Lattice configurations"));
    }
    if let Some(c) = u.deployment_controller
        && c.kind.as_deref().is_some_and(|k| k != "ECS")
    {
        return Err(unsupported("Deployment controllers other than ECS"));
    }
    if u.platform_version.is_some() {
        return Err(invalid(
            "Platform version must be null when specifying an EC2 or EXTERNAL launch type: Berth has no Fargate.",
        ));
    }
    Ok(())
}

fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// ECS's default deployment configuration: 100/200 for REPLICA, 0/100
/// for DAEMON; circuit breaker off.
fn default_configuration(strategy: SchedulingStrategy) -> DeploymentConfiguration {
    let daemon = strategy == SchedulingStrategy::Daemon;
    DeploymentConfiguration {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: Some(false),
            rollback: Some(false),
        }),
        maximum_percent: Some(if daemon { 100 } else { 200 }),
        minimum_healthy_percent: Some(if daemon { 0 } else { 100 }),
        alarms: None,
        strategy: Some("ROLLING".into()),
        bake_time_in_minutes: None,
    }
}

/// Fills ECS's defaults into a deployment configuration and checks it.
fn deployment_configuration(
    given: Option<&DeploymentConfiguration>,
    previous: Option<&DeploymentConfiguration>,
) -> Result<DeploymentConfiguration> {
    let base = previous.cloned().unwrap_or(DeploymentConfiguration {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: Some(false),
            rollback: Some(false),
        }),
        maximum_percent: Some(200),
        minimum_healthy_percent: Some(100),
        alarms: None,
        strategy: Some("ROLLING".into()),
        bake_time_in_minutes: None,
    });
    let Some(g) = given else {
        return Ok(base);
    };
    let c = DeploymentConfiguration {
        deployment_circuit_breaker: g
            .deployment_circuit_breaker
            .clone()
            .or(base.deployment_circuit_breaker),
        maximum_percent: g.maximum_percent.or(base.maximum_percent),
        minimum_healthy_percent: g.minimum_healthy_percent.or(base.minimum_healthy_percent),
        alarms: g.alarms.clone().or(base.alarms),
        strategy: g.strategy.clone().or(base.strategy),
        bake_time_in_minutes: g.bake_time_in_minutes.or(base.bake_time_in_minutes),
    };
    if let Some(b) = &c.deployment_circuit_breaker
        && (b.enable.is_none() || b.rollback.is_none())
    {
        return Err(invalid(
            "deploymentCircuitBreaker needs both enable and rollback.",
        ));
    }
    let min = c.minimum_healthy_percent.unwrap_or(100);
    let max = c.maximum_percent.unwrap_or(200);
    if !(0..=100).contains(&min) {
        return Err(invalid(format!(
            "minimumHealthyPercent must be between 0 and 100 (got {min})."
        )));
    }
    if !(100..=1000).contains(&max) {
        return Err(invalid(format!(
            "maximumPercent must be between 100 and 1000 (got {max})."
        )));
    }
    if let Some(s) = c.strategy.as_deref()
        && s != "ROLLING"
    {
        return Err(Error::Validation(ValidationError::unsupported(format!(
            "Deployment strategy {s} is not available on Berth: use ROLLING."
        ))));
    }
    Ok(c)
}

/// `ecs-svc/` and 19 digits, as ECS's deployment ids.
fn deployment_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    format!("ecs-svc/{n}")
}

fn new_deployment(task_definition: &str, now: Timestamp) -> DeploymentRecord {
    DeploymentRecord {
        id: deployment_id(),
        status: DeploymentStatus::Primary,
        task_definition: task_definition.to_owned(),
        failed_tasks: 0,
        created_at: now,
        updated_at: now,
        rollout_state: RolloutState::InProgress,
        rollout_state_reason: "ECS deployment in progress.".into(),
    }
}

/// Adds an event, newest first, keeping the latest [`MAX_EVENTS`].
fn event(service: &mut ServiceRecord, message: String) {
    service.events.insert(
        0,
        ServiceEvent {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: Timestamp::now(),
            message,
        },
    );
    service.events.truncate(MAX_EVENTS);
}

/// The circuit breaker's failed-task threshold: half the desired count,
/// at least 3 and at most 200 (ECS's rule).
pub fn failure_threshold(desired: i64) -> i64 {
    ((desired + 1) / 2).clamp(3, 200)
}

/// How long to wait before the next launch after `failures` consecutive
/// failed tasks: none for the first three, then doubling from one second,
/// at most [`MAX_THROTTLE`].
pub fn throttle_delay(failures: u32) -> Duration {
    if failures < 3 {
        Duration::ZERO
    } else {
        Duration::from_secs(1u64 << (failures - 3).min(20)).min(MAX_THROTTLE)
    }
}

/// One round's decision, for either scheduling strategy.
#[derive(Debug)]
struct Round {
    /// New tasks.
    launch: usize,
    /// DAEMON: the instances they go on.
    launch_on: Option<Vec<String>>,
    stop: Vec<(String, scheduler::StopWhy)>,
    steady: bool,
}

/// The RunTask input that launches `count` tasks of a service's PRIMARY
/// deployment.
fn launch_input(
    s: &ServiceRecord,
    primary: &DeploymentRecord,
    count: usize,
) -> validate::RunTaskInput {
    validate::RunTaskInput {
        cluster: s.cluster.clone(),
        task_definition: primary.task_definition.clone(),
        count,
        launch_type: s.launch_type.map(|l| l.to_string()),
        capacity_provider_strategy: if s.capacity_provider_strategy.is_empty() {
            None
        } else {
            validate::placement::capacity_provider_strategy(&s.capacity_provider_strategy).ok()
        },
        group: Some(format!("service:{}", s.name)),
        started_by: Some(primary.id.clone()),
        reference_id: None,
        overrides: Default::default(),
        tags: if s.propagate_tags == "SERVICE" {
            s.tags.clone()
        } else {
            Vec::new()
        },
        propagate_definition_tags: s.propagate_tags == "TASK_DEFINITION",
        managed_tags: s.enable_ecs_managed_tags,
        enable_execute_command: s.enable_execute_command,
        client_token: None,
        network_configuration: s.network_configuration.clone(),
        placement_constraints: s.placement_constraints.clone(),
        placement_strategy: validate::placement::strategies(&s.placement_strategy)
            .unwrap_or_default(),
    }
}

impl ControlPlane {
    fn service_not_found(cluster: &str, reference: &str) -> Error {
        Error::ServiceNotFound(format!(
            "Service not found. '{reference}' is not a service of cluster '{cluster}': create it with CreateService, or check the name with ListServices."
        ))
    }

    /// The ECS view of a service, with counts from its tasks.
    pub(super) fn service_view(&self, state: &State, s: &ServiceRecord, tags: bool) -> Service {
        let tasks: Vec<&TaskRecord> = state
            .service_tasks
            .get(&(s.cluster.clone(), format!("service:{}", s.name)))
            .into_iter()
            .flatten()
            .filter_map(|id| state.tasks.get(id))
            .filter(|t| t.task.desired_status == TaskStatus::Running)
            .collect();
        let counts = |deployment: Option<&str>| {
            let mut pending = 0;
            let mut running = 0;
            for t in &tasks {
                if deployment.is_some_and(|d| t.task.started_by.as_deref() != Some(d)) {
                    continue;
                }
                match t.task.last_status {
                    TaskStatus::Running => running += 1,
                    TaskStatus::Stopped => {}
                    _ => pending += 1,
                }
            }
            (pending, running)
        };
        let (pending_count, running_count) = counts(None);
        let deployments = s
            .deployments
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let (pending, running) = counts(Some(&d.id));
                Deployment {
                    id: d.id.clone(),
                    status: d.status.to_string(),
                    task_definition: d.task_definition.clone(),
                    desired_count: if i == 0 {
                        s.desired_count
                    } else {
                        pending + running
                    },
                    pending_count: pending,
                    running_count: running,
                    failed_tasks: d.failed_tasks,
                    created_at: d.created_at,
                    updated_at: d.updated_at,
                    launch_type: s.launch_type.map(|l| l.to_string()),
                    capacity_provider_strategy: s.capacity_provider_strategy.clone(),
                    network_configuration: s.network_configuration.clone(),
                    rollout_state: d.rollout_state.to_string(),
                    rollout_state_reason: d.rollout_state_reason.clone(),
                }
            })
            .collect();
        Service {
            service_arn: self.scope().service(&s.cluster, &s.name),
            service_name: s.name.clone(),
            cluster_arn: self.scope().cluster(&s.cluster),
            load_balancers: s.load_balancers.clone(),
            service_registries: s.service_registries.clone(),
            status: s.status.to_string(),
            desired_count: s.desired_count,
            running_count,
            pending_count,
            launch_type: s.launch_type.map(|l| l.to_string()),
            capacity_provider_strategy: s.capacity_provider_strategy.clone(),
            task_definition: s
                .deployments
                .first()
                .map(|d| d.task_definition.clone())
                .unwrap_or_default(),
            deployment_configuration: s.deployment_configuration.clone(),
            deployments,
            events: s.events.clone(),
            created_at: s.created_at,
            placement_constraints: s.placement_constraints.clone(),
            placement_strategy: s.placement_strategy.clone(),
            network_configuration: s.network_configuration.clone(),
            health_check_grace_period_seconds: s.health_check_grace_period_seconds,
            scheduling_strategy: s.scheduling_strategy.to_string(),
            deployment_controller: DeploymentController {
                kind: Some("ECS".into()),
            },
            tags: tags.then(|| s.tags.clone()),
            created_by: s.created_by.clone(),
            enable_ecs_managed_tags: s.enable_ecs_managed_tags,
            propagate_tags: s.propagate_tags.clone(),
            enable_execute_command: s.enable_execute_command,
        }
    }

    /// The task definition ARN a reference resolves to, ACTIVE.
    fn service_task_definition(&self, state: &State, reference: &str) -> Result<String> {
        let td = super::task_definition::resolve(state, reference).map_err(|_| {
            super::client(format!(
                "TaskDefinition not found. '{reference}' is not registered: register it with RegisterTaskDefinition or check ListTaskDefinitions."
            ))
        })?;
        let d = &td.definition;
        if !d.is_active() {
            return Err(invalid(format!(
                "TaskDefinition is inactive. {}:{} was deregistered; use an ACTIVE revision.",
                d.family, d.revision
            )));
        }
        Ok(self.scope().task_definition(&d.family, d.revision))
    }

    /// CreateService.
    pub async fn create_service(&self, req: CreateServiceRequest) -> Result<ServiceResponse> {
        let name = validate::required_str(req.service_name.as_deref(), "serviceName")?.to_owned();
        service_name_rule(&name)?;
        let strategy = validate::one_of(
            req.scheduling_strategy.as_deref(),
            "schedulingStrategy",
            &["REPLICA", "DAEMON"],
        )?
        .and_then(SchedulingStrategy::parse)
        .unwrap_or(SchedulingStrategy::Replica);
        if strategy == SchedulingStrategy::Daemon {
            if req.desired_count.is_some() {
                return Err(invalid(
                    "The daemon scheduling strategy does not support a desired count for services.",
                ));
            }
            if non_empty(&req.placement_strategy) {
                return Err(invalid(
                    "The daemon scheduling strategy does not support placement strategies.",
                ));
            }
        }
        let desired = match req.desired_count {
            // DAEMON: the number of eligible instances, counted each round.
            None if strategy == SchedulingStrategy::Daemon => 0,
            Some(n @ 0..=5000) => n,
            Some(n) => {
                return Err(invalid(format!(
                    "desiredCount must be between 0 and 5000 (got {n})."
                )));
            }
            None => {
                return Err(invalid(
                    "desiredCount is required for a service with the REPLICA scheduling strategy.",
                ));
            }
        };
        let td_ref = validate::required_str(req.task_definition.as_deref(), "taskDefinition")?;
        if req.launch_type.is_some() && req.capacity_provider_strategy.is_some() {
            return Err(invalid(
                "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
            ));
        }
        let launch_type = validate::task::launch_type(req.launch_type.as_deref())?
            .as_deref()
            .and_then(LaunchType::parse);
        if let Some(items) = &req.capacity_provider_strategy {
            validate::placement::capacity_provider_strategy(items)?;
        }
        refuse_unsupported(Unsupported {
            load_balancers: &req.load_balancers,
            service_registries: &req.service_registries,
            service_connect: &req.service_connect_configuration,
            volumes: &req.volume_configurations,
            vpc_lattice: &req.vpc_lattice_configurations,
            deployment_controller: &req.deployment_controller,
            platform_version: &req.platform_version,
        })?;
        let configuration = deployment_configuration(
            req.deployment_configuration.as_ref(),
            Some(&default_configuration(strategy)),
        )?;
        let constraints = req.placement_constraints.clone().unwrap_or_default();
        validate::placement::constraints(&constraints, &[])?;
        let strategies = req.placement_strategy.clone().unwrap_or_default();
        validate::placement::strategies(&strategies)?;
        if let Some(g) = req.health_check_grace_period_seconds
            && !(0..=2_147_483_647).contains(&g)
        {
            return Err(invalid("healthCheckGracePeriodSeconds must be 0 or more."));
        }
        let tags = validate::tags(req.tags.as_deref())?;
        let propagate = validate::one_of(
            req.propagate_tags.as_deref(),
            "propagateTags",
            &["TASK_DEFINITION", "SERVICE", "NONE"],
        )?
        .unwrap_or("NONE")
        .to_owned();
        if let Some(t) = &req.client_token {
            let len = t.chars().count();
            if len == 0 || len > 36 || !t.chars().all(|c| ('!'..='~').contains(&c)) {
                return Err(invalid(
                    "clientToken must be 1-36 printable ASCII characters without spaces.",
                ));
            }
        }
        let fingerprint = {
            let mut canonical = req.clone();
            canonical.client_token = None;
            serde_json::to_string(&canonical).unwrap_or_default()
        };
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
            if let Some(existing) = state.services.get(&(cluster.clone(), name.clone()))
                && existing.status != Status::Inactive
            {
                if existing.client_token.is_some()
                    && existing.client_token == req.client_token
                    && existing.fingerprint == fingerprint
                {
                    let service = self.service_view(&state, existing, true);
                    return Ok(ServiceResponse { service });
                }
                return Err(invalid("Creation of service was not idempotent."));
            }
            let td = self.service_task_definition(&state, td_ref)?;
            let now = Timestamp::now();
            let record = ServiceRecord {
                cluster: cluster.clone(),
                name: name.clone(),
                status: Status::Active,
                desired_count: desired,
                scheduling_strategy: strategy,
                launch_type,
                capacity_provider_strategy: req
                    .capacity_provider_strategy
                    .clone()
                    .unwrap_or_default(),
                deployment_configuration: configuration,
                placement_constraints: constraints,
                placement_strategy: strategies,
                network_configuration: req.network_configuration.clone(),
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                load_balancers: Vec::new(),
                service_registries: Vec::new(),
                tags,
                enable_ecs_managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
                propagate_tags: propagate,
                enable_execute_command: req.enable_execute_command.unwrap_or(false),
                created_at: now,
                created_by: None,
                client_token: req.client_token.clone(),
                fingerprint,
                deployments: vec![new_deployment(&td, now)],
                events: Vec::new(),
                consecutive_failures: 0,
                throttled_until: None,
                steady: false,
                status_changed_at: now,
                last_completed: None,
            };
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            let service = self.service_view(&state, &state.services[&(cluster, name)], true);
            (wakeups, ServiceResponse { service })
        };
        self.durable(wakeups).await?;
        crate::metrics::Metrics::reason(&self.metrics().deployments, "created");
        tracing::info!(service = %response.service.service_arn, desired = response.service.desired_count, "service created");
        Ok(response)
    }

    /// UpdateService: desired count, deployment settings, and a new
    /// deployment when the task definition (or placement) changes or
    /// `forceNewDeployment` is set.
    pub async fn update_service(&self, req: UpdateServiceRequest) -> Result<ServiceResponse> {
        let reference = validate::required_str(req.service.as_deref(), "service")?.to_owned();
        if let Some(n) = req.desired_count
            && !(0..=5000).contains(&n)
        {
            return Err(invalid(format!(
                "desiredCount must be between 0 and 5000 (got {n})."
            )));
        }
        refuse_unsupported(Unsupported {
            load_balancers: &req.load_balancers,
            service_registries: &req.service_registries,
            service_connect: &req.service_connect_configuration,
            volumes: &req.volume_configurations,
            vpc_lattice: &req.vpc_lattice_configurations,
            deployment_controller: &req.deployment_controller,
            platform_version: &req.platform_version,
        })?;
        if let Some(c) = &req.placement_constraints {
            validate::placement::constraints(c, &[])?;
        }
        if let Some(s) = &req.placement_strategy {
            validate::placement::strategies(s)?;
        }
        if let Some(items) = &req.capacity_provider_strategy {
            validate::placement::capacity_provider_strategy(items)?;
        }
        let propagate = validate::one_of(
            req.propagate_tags.as_deref(),
            "propagateTags",
            &["TASK_DEFINITION", "SERVICE", "NONE"],
        )?
        .map(str::to_owned);
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
            let existing = find_service(&state, &cluster, &reference)
                .ok_or_else(|| Self::service_not_found(&cluster, &reference))?;
            if existing.status != Status::Active {
                return Err(Error::ServiceNotActive(format!(
                    "Service was not ACTIVE. '{}' is {}: only an ACTIVE service can be updated; create it again with CreateService.",
                    existing.name, existing.status
                )));
            }
            if existing.scheduling_strategy == SchedulingStrategy::Daemon {
                if req.desired_count.is_some() {
                    return Err(invalid(
                        "The daemon scheduling strategy does not support a desired count for services.",
                    ));
                }
                if non_empty(&req.placement_strategy) {
                    return Err(invalid(
                        "The daemon scheduling strategy does not support placement strategies.",
                    ));
                }
            }
            let mut record = existing.clone();
            let now = Timestamp::now();
            record.deployment_configuration = deployment_configuration(
                req.deployment_configuration.as_ref(),
                Some(&record.deployment_configuration),
            )?;
            if let Some(n) = req.desired_count {
                record.desired_count = n;
            }
            let mut redeploy = req.force_new_deployment.unwrap_or(false);
            let mut task_definition = record.deployments[0].task_definition.clone();
            if let Some(td) = req.task_definition.as_deref() {
                let arn = self.service_task_definition(&state, td)?;
                redeploy |= arn != task_definition;
                task_definition = arn;
            }
            if let Some(c) = &req.placement_constraints {
                redeploy |= *c != record.placement_constraints;
                record.placement_constraints = c.clone();
            }
            if let Some(s) = &req.placement_strategy {
                redeploy |= *s != record.placement_strategy;
                record.placement_strategy = s.clone();
            }
            if let Some(n) = &req.network_configuration {
                redeploy |= record.network_configuration.as_ref() != Some(n);
                record.network_configuration = Some(n.clone());
            }
            if let Some(c) = &req.capacity_provider_strategy {
                redeploy |= *c != record.capacity_provider_strategy;
                record.capacity_provider_strategy = c.clone();
                record.launch_type = None;
            }
            if let Some(g) = req.health_check_grace_period_seconds {
                record.health_check_grace_period_seconds = Some(g);
            }
            if let Some(e) = req.enable_execute_command {
                record.enable_execute_command = e;
            }
            if let Some(e) = req.enable_ecs_managed_tags {
                record.enable_ecs_managed_tags = e;
            }
            if let Some(p) = propagate {
                record.propagate_tags = p;
            }
            if redeploy {
                if record.deployments[0].rollout_state == RolloutState::Completed {
                    record.last_completed = Some(record.deployments[0].task_definition.clone());
                }
                for d in &mut record.deployments {
                    d.status = DeploymentStatus::Active;
                    d.updated_at = now;
                }
                record
                    .deployments
                    .insert(0, new_deployment(&task_definition, now));
                record.consecutive_failures = 0;
                record.throttled_until = None;
                record.steady = false;
            }
            let key = (record.cluster.clone(), record.name.clone());
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            let service = self.service_view(&state, &state.services[&key], true);
            (wakeups, ServiceResponse { service })
        };
        self.durable(wakeups).await?;
        tracing::info!(service = %response.service.service_arn, desired = response.service.desired_count, deployments = response.service.deployments.len(), "service updated");
        Ok(response)
    }

    /// DeleteService: ACTIVE -> DRAINING (tasks stop) -> INACTIVE.
    pub async fn delete_service(&self, req: DeleteServiceRequest) -> Result<ServiceResponse> {
        let reference = validate::required_str(req.service.as_deref(), "service")?.to_owned();
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
            let existing = find_service(&state, &cluster, &reference)
                .ok_or_else(|| Self::service_not_found(&cluster, &reference))?;
            if existing.status == Status::Inactive {
                return Err(Error::ServiceNotActive(format!(
                    "Service '{}' is already INACTIVE.",
                    existing.name
                )));
            }
            if existing.status == Status::Draining {
                let service = self.service_view(&state, existing, false);
                return Ok(ServiceResponse { service });
            }
            if existing.scheduling_strategy == SchedulingStrategy::Replica
                && existing.desired_count > 0
                && !req.force.unwrap_or(false)
            {
                return Err(invalid(
                    "The service cannot be stopped while it is scaled above 0. Set desiredCount to 0 with UpdateService first, or delete with force.",
                ));
            }
            let mut record = existing.clone();
            record.status = Status::Draining;
            record.desired_count = 0;
            record.status_changed_at = Timestamp::now();
            let key = (record.cluster.clone(), record.name.clone());
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            let service = self.service_view(&state, &state.services[&key], false);
            (wakeups, ServiceResponse { service })
        };
        self.durable(wakeups).await?;
        tracing::info!(service = %response.service.service_arn, "service deleted (draining)");
        Ok(response)
    }

    /// DescribeServices: at most 10; unknown ones are `MISSING` failures.
    pub fn describe_services(
        &self,
        req: DescribeServicesRequest,
    ) -> Result<DescribeServicesResponse> {
        let refs = req.services.clone().unwrap_or_default();
        if refs.is_empty() {
            return Err(invalid("services must name at least one service."));
        }
        if refs.len() > 10 {
            return Err(invalid(format!(
                "services can name at most 10 services (got {}); describe them in several calls.",
                refs.len()
            )));
        }
        let include = validate::include(req.include.as_deref(), &["TAGS"])?;
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let state = self.lock();
        let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for r in &refs {
            match find_service(&state, &cluster, r) {
                Some(s) => services.push(self.service_view(&state, s, !include.is_empty())),
                None => {
                    let arn = if r.starts_with("arn:") {
                        r.clone()
                    } else {
                        self.scope().service(&cluster, r)
                    };
                    failures.push(Failure::new(arn, "MISSING", None));
                }
            }
        }
        Ok(DescribeServicesResponse { services, failures })
    }

    /// ListServices: ACTIVE services, 10 per page by default.
    pub fn list_services(&self, req: ListServicesRequest) -> Result<ListServicesResponse> {
        let launch_type = validate::one_of(
            req.launch_type.as_deref(),
            "launchType",
            &["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"],
        )?;
        let strategy = validate::one_of(
            req.scheduling_strategy.as_deref(),
            "schedulingStrategy",
            &["REPLICA", "DAEMON"],
        )?;
        validate::one_of(
            req.resource_management_type.as_deref(),
            "resourceManagementType",
            &["CUSTOMER", "ECS"],
        )?;
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let filters = (&cluster_ref, launch_type, strategy);
        let page = Page::start(
            "ListServices",
            &filters,
            req.next_token.as_deref(),
            Some(req.max_results.unwrap_or(10)),
        )?;
        let state = self.lock();
        let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
        let items = state
            .services
            .range((cluster.clone(), String::new())..)
            .take_while(|((c, _), _)| *c == cluster)
            .map(|(_, s)| s)
            .filter(|s| s.status == Status::Active)
            .filter(|s| page.includes(&s.name))
            .filter(|s| {
                launch_type.is_none_or(|l| s.launch_type.map(LaunchType::as_str) == Some(l))
            })
            .filter(|s| strategy.is_none_or(|st| s.scheduling_strategy.as_str() == st))
            .map(|s| (s.name.clone(), self.scope().service(&s.cluster, &s.name)));
        let (service_arns, next_token) = page.collect(items);
        Ok(ListServicesResponse {
            service_arns,
            next_token,
        })
    }

    /// Called in the commit that stops a service's task (an agent's report):
    /// counts an unrequested stop as a failure of its deployment, moves the
    /// throttle, and trips the circuit breaker. Returns the changed service.
    pub(super) fn service_task_stopped(
        &self,
        state: &State,
        before: &TaskRecord,
        after: &TaskRecord,
    ) -> Option<ServiceRecord> {
        let name = after.task.group.strip_prefix("service:")?;
        if before.task.last_status == TaskStatus::Stopped
            || after.task.last_status != TaskStatus::Stopped
        {
            return None;
        }
        // A stop someone asked for (StopTask, the scheduler) or a lost host
        // is not the task's failure; an exit, a failed start or a failed
        // health check is. (The agent may record its own decision to stop
        // — desired STOPPED — a report before the task is STOPPED, so the
        // stop code says whose stop it was, not the desired status.)
        let requested = matches!(
            after.task.stop_code.as_deref(),
            Some("UserInitiated" | "ServiceSchedulerInitiated" | "InfrastructureHealth")
        );
        if requested {
            return None;
        }
        let existing = state
            .services
            .get(&(after.cluster.clone(), name.to_owned()))?;
        let deployment = after.task.started_by.as_deref()?;
        let mut s = existing.clone();
        let name = s.name.clone();
        let now = Timestamp::now();
        let index = s.deployments.iter().position(|d| d.id == deployment)?;
        s.consecutive_failures += 1;
        let delay = throttle_delay(s.consecutive_failures);
        if !delay.is_zero() {
            s.throttled_until = Some(Timestamp::from_millis(
                now.as_millis() + delay.as_millis() as i64,
            ));
            if s.consecutive_failures == 3 {
                event(
                    &mut s,
                    format!(
                        "(service {}) is unable to consistently start tasks successfully. Berth waits longer between launches until they succeed (now {} s).",
                        name,
                        delay.as_secs()
                    ),
                );
            }
        }
        let d = &mut s.deployments[index];
        d.failed_tasks += 1;
        d.updated_at = now;
        let breaker = s
            .deployment_configuration
            .deployment_circuit_breaker
            .clone()
            .unwrap_or_default();
        let threshold = failure_threshold(s.desired_count);
        if index == 0
            && breaker.enable == Some(true)
            && d.rollout_state == RolloutState::InProgress
            && d.failed_tasks >= threshold
        {
            d.rollout_state = RolloutState::Failed;
            d.rollout_state_reason = format!(
                "ECS deployment circuit breaker: tasks failed to start ({} failed, threshold {threshold}).",
                d.failed_tasks
            );
            let failed_id = d.id.clone();
            crate::metrics::Metrics::reason(&self.metrics().deployments, "failed");
            event(
                &mut s,
                format!(
                    "(service {}) (deployment {failed_id}) deployment failed: tasks failed to start.",
                    name
                ),
            );
            if breaker.rollback == Some(true)
                && let Some(td) = s.last_completed.clone()
            {
                for d in &mut s.deployments {
                    d.status = DeploymentStatus::Active;
                }
                let mut back = new_deployment(&td, now);
                back.rollout_state_reason = format!(
                    "ECS deployment circuit breaker: rolling back to the last completed deployment ({td})."
                );
                event(
                    &mut s,
                    format!(
                        "(service {}) (deployment {}) rolling back to {td}.",
                        name, back.id
                    ),
                );
                s.deployments.insert(0, back);
                crate::metrics::Metrics::reason(&self.metrics().deployments, "rolled_back");
                s.consecutive_failures = 0;
                s.throttled_until = None;
            }
        }
        s.steady = false;
        Some(s)
    }

    /// One reconcile round: over every ACTIVE or DRAINING service with
    /// `all` (the periodic resync, for the timers), else over those a
    /// change touched since the last round. Returns how many changed.
    pub async fn reconcile_services(&self, all: bool) -> Result<usize> {
        let (wakeups, changed) = {
            let mut state = self.lock();
            let dirty = std::mem::take(&mut state.dirty_services);
            let all = all || std::mem::take(&mut state.all_services_dirty);
            if state.services.is_empty() || (!all && dirty.is_empty()) {
                return Ok(0);
            }
            let now = Timestamp::now();
            let mut staged = Staged::default();
            let mut changed = 0;
            let keys: Vec<(String, String)> = state
                .services
                .iter()
                .filter(|(k, s)| s.status != Status::Inactive && (all || dirty.contains(*k)))
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                if let Some(record) = self.reconcile_one(&state, &key, now, &mut staged) {
                    staged.put(record);
                    changed += 1;
                }
            }
            if staged.is_empty() {
                return Ok(0);
            }
            (self.commit(&mut state, staged)?, changed)
        };
        self.durable(wakeups).await?;
        Ok(changed)
    }

    /// Decides one service's round; stages its tasks and returns the
    /// changed service record, if anything changed.
    fn reconcile_one(
        &self,
        state: &State,
        key: &(String, String),
        now: Timestamp,
        staged: &mut Staged,
    ) -> Option<ServiceRecord> {
        let existing = state.services.get(key)?;
        let mut s = existing.clone();
        let name = s.name.clone();
        let primary = s.deployments.first()?.clone();
        let grace = s.health_check_grace_period_seconds.unwrap_or(0) * 1000;
        let group = format!("service:{}", s.name);
        let ids = state.service_tasks.get(&(s.cluster.clone(), group.clone()));
        let daemon = s.scheduling_strategy == SchedulingStrategy::Daemon;
        let cluster = state.clusters.get(&s.cluster).filter(|c| c.is_active());
        // DAEMON: the hosts that should each run one task.
        let hosts = match cluster {
            Some(c) if daemon && s.status == Status::Active => self
                .daemon_hosts(state, &launch_input(&s, &primary, 1), c)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if daemon && s.status == Status::Active {
            s.desired_count = hosts.len() as i64;
        }
        let mut views = Vec::new();
        let mut records: Vec<&TaskRecord> = Vec::new();
        for id in ids.into_iter().flatten() {
            let Some(t) = state.tasks.get(id) else {
                continue;
            };
            if t.task.desired_status != TaskStatus::Running {
                continue;
            }
            let deployment = t.task.started_by.as_deref().unwrap_or_default();
            if !s.deployments.iter().any(|d| d.id == deployment) {
                continue;
            }
            let has_checks = state
                .families
                .get(&t.family)
                .and_then(|f| f.get(&t.revision))
                .is_some_and(|td| {
                    td.definition
                        .container_definitions
                        .iter()
                        .any(|c| c.health_check.is_some() && c.essential.unwrap_or(true))
                });
            let running = t.task.last_status == TaskStatus::Running;
            let health =
                HealthStatus::parse(&t.task.health_status).unwrap_or(HealthStatus::Unknown);
            let since = t
                .task
                .started_at
                .map(|s| s.as_millis())
                .unwrap_or(now.as_millis());
            let instance = state.instances.get(&t.instance_id);
            let live = state.live.get(&t.instance_id);
            let lost = live.is_some_and(|l| {
                !l.connected
                    && l.disconnected_at.is_some_and(|d| {
                        now.as_millis() - d.as_millis()
                            > self.settings.lost_host_timeout.as_millis() as i64
                    })
            });
            views.push(TaskView {
                id: t.id.clone(),
                primary: deployment == primary.id,
                instance: t.instance_id.clone(),
                running,
                healthy: running && (!has_checks || health == HealthStatus::Healthy),
                failing: running
                    && health == HealthStatus::Unhealthy
                    && now.as_millis() - since > grace,
                displaced: if daemon {
                    !hosts.contains(&t.instance_id)
                } else {
                    instance.is_some_and(|i| i.status == Status::Draining)
                },
                lost,
                protected: t
                    .protection_expires_at
                    .is_some_and(|e| e.as_millis() > now.as_millis()),
            });
            records.push(t);
        }
        let configuration = &s.deployment_configuration;
        let may_launch = s.status == Status::Active
            && primary.rollout_state != RolloutState::Failed
            && s.throttled_until
                .is_none_or(|u| u.as_millis() <= now.as_millis());
        let decision = if daemon {
            let d = scheduler::decide_daemon(
                &scheduler::DaemonDesired {
                    hosts: hosts.clone(),
                    min_healthy_percent: configuration.minimum_healthy_percent.unwrap_or(0),
                    max_percent: configuration.maximum_percent.unwrap_or(100),
                    may_launch,
                },
                &views,
            );
            Round {
                launch: d.launch_on.len(),
                launch_on: Some(d.launch_on),
                stop: d.stop,
                steady: d.steady,
            }
        } else {
            let d = scheduler::decide(
                &Desired {
                    count: if s.status == Status::Active {
                        s.desired_count.max(0) as usize
                    } else {
                        0
                    },
                    min_healthy_percent: configuration.minimum_healthy_percent.unwrap_or(100),
                    max_percent: configuration.maximum_percent.unwrap_or(200),
                    may_launch,
                },
                &views,
            );
            Round {
                launch: d.launch,
                launch_on: None,
                stop: d.stop,
                steady: d.steady,
            }
        };

        // Stops.
        let mut stopped = Vec::new();
        for (id, why) in &decision.stop {
            let Some(t) = records.iter().find(|t| t.id == *id) else {
                continue;
            };
            let mut r = (*t).clone();
            r.task.desired_status = TaskStatus::Stopped;
            r.task.stop_code = Some("ServiceSchedulerInitiated".into());
            r.task.stopped_reason = Some(match why {
                scheduler::StopWhy::ScaleIn => {
                    format!("Scaling activity initiated by (deployment {})", primary.id)
                }
                other => other.reason().to_owned(),
            });
            r.task.stopping_at = Some(now);
            r.task.version += 1;
            stopped.push(r.id.clone());
            crate::metrics::Metrics::reason(&self.metrics().service_tasks_stopped, why.label());
            staged.put(r);
        }
        if !stopped.is_empty() {
            event(
                &mut s,
                format!(
                    "(service {}) has stopped {} running tasks: {}.",
                    name,
                    stopped.len(),
                    stopped
                        .iter()
                        .map(|id| format!("(task {id})"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
        }

        // Launches, through RunTask's placement.
        if decision.launch > 0 {
            let input = launch_input(&s, &primary, decision.launch);
            let placed = cluster
                .ok_or_else(|| invalid("the cluster is gone"))
                .and_then(|cluster| match &decision.launch_on {
                    Some(on) => self.place_daemon(state, &input, &cluster.name, on),
                    None => self.place(state, &input, cluster),
                });
            match placed {
                Ok((tasks, failures)) => {
                    if !tasks.is_empty() {
                        event(
                            &mut s,
                            format!(
                                "(service {}) has started {} tasks: {}.",
                                name,
                                tasks.len(),
                                tasks
                                    .iter()
                                    .map(|t| format!("(task {})", t.id))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            ),
                        );
                    }
                    self.metrics()
                        .service_tasks_started
                        .inc_by(tasks.len() as u64);
                    for t in tasks {
                        staged.put(t);
                    }
                    if let Some(f) = failures.first() {
                        let message = format!(
                            "(service {}) was unable to place a task because no container instance met all of its requirements. Reason: {}. {}",
                            s.name,
                            f.reason,
                            f.detail.as_deref().unwrap_or_default()
                        );
                        self.event_once(&mut s, message, now);
                    }
                }
                Err(e) => {
                    let message = format!(
                        "(service {}) was unable to place a task because {e}",
                        s.name
                    );
                    self.event_once(&mut s, message, now);
                }
            }
        }

        // Deployments: drop drained old ones; complete the primary.
        let still_running = |d: &DeploymentRecord| {
            records
                .iter()
                .filter(|t| !decision.stop.iter().any(|(id, _)| *id == t.id))
                .any(|t| t.task.started_by.as_deref() == Some(d.id.as_str()))
        };
        let kept: Vec<DeploymentRecord> = s
            .deployments
            .iter()
            .enumerate()
            .filter(|(i, d)| *i == 0 || still_running(d))
            .map(|(_, d)| d.clone())
            .collect();
        s.deployments = kept;
        if decision.steady {
            let p = &mut s.deployments[0];
            if p.rollout_state == RolloutState::InProgress {
                p.rollout_state = RolloutState::Completed;
                p.rollout_state_reason = "ECS deployment completed.".into();
                p.updated_at = now;
                let id = p.id.clone();
                s.last_completed = Some(p.task_definition.clone());
                crate::metrics::Metrics::reason(&self.metrics().deployments, "completed");
                event(
                    &mut s,
                    format!("(service {}) (deployment {id}) deployment completed.", name),
                );
            }
            s.consecutive_failures = 0;
            s.throttled_until = None;
            if !s.steady {
                s.steady = true;
                event(
                    &mut s,
                    format!("(service {}) has reached a steady state.", name),
                );
            }
        } else if s.status == Status::Active && (decision.launch > 0 || !decision.stop.is_empty()) {
            s.steady = false;
        }
        // DRAINING until every task has stopped (not just been told to).
        if s.status == Status::Draining && ids.is_none_or(|ids| ids.is_empty()) {
            s.status = Status::Inactive;
            s.status_changed_at = now;
            s.deployments.truncate(1);
        }
        (s != *existing).then_some(s)
    }

    /// Adds an event unless the newest one says the same and is recent.
    fn event_once(&self, s: &mut ServiceRecord, message: String, now: Timestamp) {
        let recent = s.events.first().is_some_and(|e| {
            e.message == message
                && now.as_millis() - e.created_at.as_millis()
                    < REPEAT_EVENT_AFTER.as_millis() as i64
        });
        if !recent {
            event(s, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_breaker_threshold_is_half_the_desired_count_within_3_and_200() {
        assert_eq!(failure_threshold(1), 3);
        assert_eq!(failure_threshold(6), 3);
        assert_eq!(failure_threshold(10), 5);
        assert_eq!(failure_threshold(11), 6);
        assert_eq!(failure_threshold(1000), 200);
    }

    #[test]
    fn the_throttle_waits_only_after_repeated_failures_and_is_capped() {
        assert_eq!(throttle_delay(1), Duration::ZERO);
        assert_eq!(throttle_delay(2), Duration::ZERO);
        assert_eq!(throttle_delay(3), Duration::from_secs(1));
        assert_eq!(throttle_delay(5), Duration::from_secs(4));
        assert_eq!(throttle_delay(40), MAX_THROTTLE);
    }

    #[test]
    fn deployment_ids_look_like_ecs_ones() {
        let id = deployment_id();
        let digits = id.strip_prefix("ecs-svc/").expect("prefix");
        assert_eq!(digits.len(), 19, "{id}");
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
    }
}
