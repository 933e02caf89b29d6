//! RunTask, StartTask, StopTask, DescribeTasks, ListTasks: from a validated
//! request to placed, durable tasks, and the ECS view of them.

use super::page::Page;
use super::state::{
    InstanceRecord, Reservation, State, TaskDefinitionRecord, TaskRecord, TokenRecord,
};
use super::task_definition::{Unresolved, resolve};
use super::{ControlPlane, Error, Result, Staged, Wakeups, client, invalid};
use crate::model::arn;
use crate::model::status::{NetworkMode, Status};
use crate::model::task::{
    Container, ContainerOverride, ContainerStatus, DescribeTasksRequest, DescribeTasksResponse,
    ListTasksRequest, ListTasksResponse, RunTaskRequest, RunTaskResponse, StartTaskRequest,
    StopTaskRequest, StopTaskResponse, Task, TaskOverride, TaskStatus,
};
use crate::model::task_definition::{ContainerDefinition, TaskDefinition};
use crate::model::{Attribute, Failure, Tag, Timestamp};
use crate::placement::{self, Candidate, Constraint, Demand, Plan};
use crate::validate::{self, RunTaskInput, ValidationError};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// Everything decided about the tasks of one RunTask/StartTask before
/// placement: what each task needs and what it will carry.
#[derive(Debug)]
struct Launch {
    td: TaskDefinitionRecord,
    /// The definition's containers with the overrides merged in.
    containers: Vec<ContainerDefinition>,
    group: String,
    demand: Demand,
    reservation: Reservation,
    /// GPUs per container, in definition order.
    gpus_per_container: Vec<usize>,
    constraints: Vec<Constraint>,
    tags: Vec<Tag>,
    ephemeral_storage: Option<serde_json::Value>,
    /// awsvpc tasks: RunTask's validated network configuration.
    awsvpc: Option<validate::AwsVpc>,
}

impl ControlPlane {
    /// RunTask: places `count` tasks on instances that fit them, through the
    /// capacity providers of the strategy when there is one; tasks that
    /// cannot be placed come back as `failures[]`.
    pub async fn run_task(&self, req: RunTaskRequest) -> Result<RunTaskResponse> {
        let input = validate::run_task(&req)?;
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &input.cluster)?;
            if let Some(token) = &input.client_token
                && let Some(previous) = state
                    .tokens
                    .get(&(cluster.name.clone(), token.token.clone()))
            {
                return self.replay(&state, previous, &token.fingerprint);
            }
            let (placed, failures) = self.place(&state, &input, cluster)?;
            let task_ids: Vec<String> = placed.iter().map(|t| t.id.clone()).collect();
            let mut staged = Staged::default();
            if let Some(token) = &input.client_token {
                staged.put(TokenRecord {
                    cluster: cluster.name.clone(),
                    token: token.token.clone(),
                    fingerprint: token.fingerprint.clone(),
                    task_arns: placed.iter().map(|t| t.task.task_arn.clone()).collect(),
                    failures: failures.clone(),
                    created_at: Timestamp::now(),
                });
            }
            for t in placed {
                staged.put(t);
            }
            self.commit_placed(&mut state, staged, &task_ids, failures)?
        };
        self.durable(wakeups).await?;
        for t in &response.tasks {
            tracing::info!(
                task = %t.task_arn,
                container_instance = t.container_instance_arn.as_deref().unwrap_or_default(),
                "task placed"
            );
        }
        for f in &response.failures {
            tracing::info!(reason = %f.reason, detail = f.detail.as_deref().unwrap_or_default(), "task not placed");
        }
        Ok(response)
    }

    /// Places `input.count` tasks of one launch on the cluster's instances
    /// (RunTask's and the service scheduler's shared path): resolves the
    /// definition, splits across capacity providers, checks and reserves
    /// each placement. Returns the new task records (not yet committed) and
    /// a failure per task that could not be placed.
    pub(super) fn place(
        &self,
        state: &State,
        input: &RunTaskInput,
        cluster: &super::state::ClusterRecord,
    ) -> Result<(Vec<TaskRecord>, Vec<Failure>)> {
        let launch = self.prepare(state, input, &cluster.name)?;
        if cluster.instance_ids.is_empty() {
            return Err(invalid(format!(
                "No Container Instances were found in your cluster. Start a berth-agent with --cluster {} on a host.",
                cluster.name
            )));
        }
        let providers = self.provider_plan(input, cluster)?;
        let needs_groups = launch
            .constraints
            .iter()
            .any(|c| matches!(c, Constraint::MemberOf { expr, .. } if expr.uses_task_group()));
        let mut candidates: Vec<Candidate<'_>> = cluster
            .instance_ids
            .iter()
            .filter_map(|id| candidate(state, id, &launch.group, needs_groups))
            .collect();
        let cluster_arn = self.scope().cluster(&cluster.name);
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let mut placed = Vec::new();
        let mut failures = Vec::new();
        // Checks of every candidate for the current provider; after a
        // placement only the chosen candidate is checked again.
        let mut checks: Option<(Option<String>, Vec<_>)> = None;
        for provider in placement::split_by_strategy(input.count, &providers) {
            let demand = Demand {
                capacity_provider: provider.clone(),
                ..launch.demand.clone()
            };
            let plan = Plan {
                demand: &demand,
                group: &launch.group,
                constraints: &launch.constraints,
                strategies: &input.placement_strategy,
            };
            let checked = match &mut checks {
                Some((p, c)) if *p == provider => c,
                _ => {
                    let c = placement::check_all(&plan, &candidates);
                    &mut checks.insert((provider.clone(), c)).1
                }
            };
            match placement::place_checked(&plan, &candidates, checked, &mut rng) {
                Ok(i) => {
                    let gpus = placement::reserve(&plan, &mut candidates[i]);
                    checked[i] = placement::check(&plan, &candidates[i]);
                    let instance = &state.instances[&*candidates[i].id];
                    placed.push(self.new_task(
                        &cluster.name,
                        instance,
                        &launch,
                        input,
                        provider,
                        gpus,
                    ));
                }
                Err(rejections) => {
                    let (arn, reason, detail) =
                        placement::explain(&plan, &candidates, &rejections, &cluster_arn);
                    failures.push(Failure::new(arn, reason, Some(detail)));
                }
            }
        }
        drop(rng);
        for f in &failures {
            crate::metrics::Metrics::reason(&self.metrics().placement_failures, &f.reason);
        }
        Ok((placed, failures))
    }

    /// StartTask: one task on each named instance, each checked on its own
    /// (no strategies; the definition's constraints still bind).
    pub async fn start_task(&self, req: StartTaskRequest) -> Result<RunTaskResponse> {
        let (input, instance_refs) = validate::start_task(&req)?;
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &input.cluster)?.name.clone();
            let launch = self.prepare(&state, &input, &cluster)?;
            let mut failures = Vec::new();
            let mut targets = Vec::new();
            for reference in &instance_refs {
                match super::container_instance::find_instance(&state, &cluster, reference) {
                    None => {
                        let arn = if reference.starts_with("arn:") {
                            reference.clone()
                        } else {
                            self.scope().container_instance(&cluster, reference)
                        };
                        failures.push(Failure::new(arn, "MISSING", None));
                    }
                    Some(instance) if instance.status == Status::Inactive => {
                        failures.push(Failure::new(
                            instance.arn.clone(),
                            "INACTIVE",
                            Some("The container instance was deregistered.".to_owned()),
                        ));
                    }
                    Some(instance) => targets.push(instance),
                }
            }
            let (placed, refused) = self.place_on(&state, &input, &launch, &cluster, &targets);
            failures.extend(refused);
            let task_ids: Vec<String> = placed.iter().map(|t| t.id.clone()).collect();
            let mut staged = Staged::default();
            for t in placed {
                staged.put(t);
            }
            self.commit_placed(&mut state, staged, &task_ids, failures)?
        };
        self.durable(wakeups).await?;
        Ok(response)
    }

    /// Places one task of `launch` on each of `instances`, each checked on
    /// its own (no strategies; the definition's constraints still bind).
    /// StartTask's path, and the DAEMON scheduler's. An instance named
    /// twice gets two tasks if it has room for both.
    fn place_on(
        &self,
        state: &State,
        input: &RunTaskInput,
        launch: &Launch,
        cluster: &str,
        instances: &[&InstanceRecord],
    ) -> (Vec<TaskRecord>, Vec<Failure>) {
        let cluster_arn = self.scope().cluster(cluster);
        let mut placed = Vec::new();
        let mut failures = Vec::new();
        let mut chosen: Vec<Candidate> = Vec::new();
        let plan = Plan {
            demand: &launch.demand,
            group: &launch.group,
            constraints: &launch.constraints,
            strategies: &[],
        };
        for instance in instances {
            let existing = chosen.iter().position(|c| c.id == instance.id);
            let mut c = match existing {
                Some(i) => chosen[i].clone(),
                None => match candidate(state, &instance.id, &launch.group, true) {
                    Some(c) => c,
                    None => continue,
                },
            };
            match placement::check(&plan, &c) {
                Err(rejection) => {
                    let (arn, reason, detail) = placement::explain(
                        &plan,
                        std::slice::from_ref(&c),
                        &[(0, rejection)],
                        &cluster_arn,
                    );
                    failures.push(Failure::new(arn, reason, Some(detail)));
                }
                Ok(()) => {
                    let gpus = placement::reserve(&plan, &mut c);
                    placed.push(self.new_task(cluster, instance, launch, input, None, gpus));
                    match existing {
                        Some(i) => chosen[i] = c,
                        None => chosen.push(c),
                    }
                }
            }
        }
        for f in &failures {
            crate::metrics::Metrics::reason(&self.metrics().placement_failures, &f.reason);
        }
        (placed, failures)
    }

    /// For a DAEMON service: which of the cluster's instances should run
    /// one of its tasks (ACTIVE, and the launch type, capacity provider,
    /// required attributes and constraints fit; room and a connected agent
    /// are not required: those make a placement failure, not an ineligible
    /// host), and the prepared launch.
    pub(super) fn daemon_hosts(
        &self,
        state: &State,
        input: &RunTaskInput,
        cluster: &super::state::ClusterRecord,
    ) -> Result<Vec<String>> {
        let launch = self.prepare(state, input, &cluster.name)?;
        let plan = Plan {
            demand: &launch.demand,
            group: &launch.group,
            constraints: &launch.constraints,
            strategies: &[],
        };
        Ok(cluster
            .instance_ids
            .iter()
            .filter_map(|id| candidate(state, id, &launch.group, true))
            .filter(|c| match placement::check(&plan, c) {
                Ok(()) => true,
                Err(r) => r.is_about_room_or_agent(),
            })
            .map(|c| c.id.to_string())
            .collect())
    }

    /// Places one daemon task on each of `instance_ids`.
    pub(super) fn place_daemon(
        &self,
        state: &State,
        input: &RunTaskInput,
        cluster: &str,
        instance_ids: &[String],
    ) -> Result<(Vec<TaskRecord>, Vec<Failure>)> {
        let launch = self.prepare(state, input, cluster)?;
        let targets: Vec<&InstanceRecord> = instance_ids
            .iter()
            .filter_map(|id| state.instances.get(id))
            .collect();
        Ok(self.place_on(state, input, &launch, cluster, &targets))
    }

    /// StopTask: desired status STOPPED with the caller's reason; the agent
    /// stops the containers (stop signal, `stopTimeout`, SIGKILL). Stopping
    /// a task that is already stopping or stopped changes nothing.
    pub async fn stop_task(&self, req: StopTaskRequest) -> Result<StopTaskResponse> {
        let reference = validate::required_str(req.task.as_deref(), "task")?;
        let reason = validate::stop_reason(req.reason.as_deref());
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let (wakeups, response) = {
            let mut state = self.lock();
            let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
            let record = self.find_task(&state, &cluster, reference)?.ok_or_else(|| {
                invalid(format!(
                    "The referenced task was not found: '{reference}' is not a task of cluster '{cluster}'."
                ))
            })?;
            if record.task.desired_status == TaskStatus::Stopped {
                let task = self.task_view(&state, &record, true);
                return Ok(StopTaskResponse { task });
            }
            let mut record = record.into_owned();
            let t = &mut record.task;
            t.desired_status = TaskStatus::Stopped;
            t.stop_code = Some("UserInitiated".to_owned());
            t.stopped_reason = Some(reason);
            t.stopping_at = Some(Timestamp::now());
            t.version += 1;
            let id = record.id.clone();
            let wakeups = self.commit(&mut state, Staged::one(record))?;
            let task = self.task_view(&state, &state.tasks[&id], true);
            (wakeups, StopTaskResponse { task })
        };
        self.durable(wakeups).await?;
        tracing::info!(task = %response.task.task_arn, reason = response.task.stopped_reason.as_deref().unwrap_or_default(), "task stop requested");
        Ok(response)
    }

    /// DescribeTasks: unknown tasks are `MISSING` failures.
    pub fn describe_tasks(&self, req: DescribeTasksRequest) -> Result<DescribeTasksResponse> {
        let refs = validate::describe_tasks_refs(req.tasks.as_deref())?;
        let include = validate::include(req.include.as_deref(), &["TAGS"])?;
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let state = self.lock();
        let cluster = self.cluster(&state, &cluster_ref)?.name.clone();
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for reference in &refs {
            match self.find_task(&state, &cluster, reference)? {
                Some(t) => tasks.push(self.task_view(&state, &t, !include.is_empty())),
                None => {
                    let arn = if reference.starts_with("arn:") {
                        reference.clone()
                    } else {
                        self.scope().task(&cluster, reference)
                    };
                    failures.push(Failure::new(arn, "MISSING", None));
                }
            }
        }
        Ok(DescribeTasksResponse { tasks, failures })
    }

    /// ListTasks: filtered by desired status (RUNNING by default), instance,
    /// family, startedBy and launch type; ordered by task id.
    pub fn list_tasks(&self, req: ListTasksRequest) -> Result<ListTasksResponse> {
        let desired = validate::list_tasks_status(req.desired_status.as_deref())?;
        let launch_type = validate::one_of(
            req.launch_type.as_deref(),
            "launchType",
            &["EC2", "FARGATE", "EXTERNAL"],
        )?;
        if req.daemon_name.is_some() {
            return Err(Error::Validation(ValidationError::unsupported(
                "daemonName: Berth has no daemons.",
            )));
        }
        let cluster_ref = validate::cluster_or_default(req.cluster.as_deref());
        let filters = (
            &cluster_ref,
            &req.service_name,
            &req.container_instance,
            &req.family,
            &req.started_by,
            desired,
            launch_type,
        );
        let page = Page::start(
            "ListTasks",
            &filters,
            req.next_token.as_deref(),
            req.max_results,
        )?;
        let state = self.lock();
        let cluster = self.cluster(&state, &cluster_ref)?;
        let group = match req.service_name.as_deref() {
            None => None,
            Some(reference) => {
                let service = super::service::find_service(&state, &cluster.name, reference)
                    .ok_or_else(|| {
                        Error::ServiceNotFound(format!(
                            "Service not found. '{reference}' is not a service of cluster '{}': check the name with ListServices.",
                            cluster.name
                        ))
                    })?;
                Some(format!("service:{}", service.name))
            }
        };
        let instance_id = match req.container_instance.as_deref() {
            None => None,
            Some(r) => Some(
                arn::scoped(r, "container-instance")
                    .map(|s| s.id.to_owned())
                    .ok_or_else(|| {
                        invalid(format!("'{r}' is not a container instance id or ARN."))
                    })?,
            ),
        };
        let desired = match desired {
            "RUNNING" => Some(TaskStatus::Running),
            "STOPPED" => Some(TaskStatus::Stopped),
            _ => None, // PENDING is valid but never matches: ECS never desires PENDING.
        };
        // Tasks that want to run are among their instance's or service's
        // active tasks: a filtered list reads only those, not the cluster's
        // every task (both sets are ordered by id, as pages are).
        let no_tasks = std::collections::BTreeSet::new();
        let candidates: Box<dyn Iterator<Item = &String>> =
            match (desired, instance_id.as_deref(), group.as_deref()) {
                (Some(TaskStatus::Running), Some(i), _) => Box::new(
                    state
                        .live
                        .get(i)
                        .filter(|_| {
                            state
                                .instances
                                .get(i)
                                .is_some_and(|r| r.cluster == cluster.name)
                        })
                        .map_or(&no_tasks, |l| &l.active_tasks)
                        .iter(),
                ),
                (Some(TaskStatus::Running), None, Some(g)) => Box::new(
                    state
                        .service_tasks
                        .get(&(cluster.name.clone(), g.to_owned()))
                        .unwrap_or(&no_tasks)
                        .iter(),
                ),
                (Some(TaskStatus::Running), None, None) => Box::new(cluster.running_ids.iter()),
                // Every task not RUNNING-desired, in id order, by one merge
                // walk of two ordered sets (no lookups for the running ones).
                (Some(_), _, _) => Box::new(cluster.task_ids.difference(&cluster.running_ids)),
                (None, _, _) => Box::new(no_tasks.iter()),
            };
        // STOPPED tasks are read from disk, only as far as the page goes.
        let unreadable = std::cell::RefCell::new(None);
        let items = candidates
            .filter(|id| page.includes(id))
            .filter(|id| desired == Some(TaskStatus::Stopped) || !state.stopped.contains_key(id))
            .filter_map(|id| match self.task_by_id(&state, id) {
                Ok(t) => t,
                Err(e) => {
                    unreadable.borrow_mut().get_or_insert(e);
                    None
                }
            })
            .filter(|t| Some(t.task.desired_status) == desired)
            .filter(|t| instance_id.as_deref().is_none_or(|i| t.instance_id == i))
            .filter(|t| req.family.as_deref().is_none_or(|f| t.family == f))
            .filter(|t| {
                req.started_by
                    .as_deref()
                    .is_none_or(|s| t.task.started_by.as_deref() == Some(s))
            })
            .filter(|t| launch_type.is_none_or(|l| t.task.launch_type == l))
            .filter(|t| group.as_deref().is_none_or(|g| t.task.group == g))
            .map(|t| (t.id.clone(), t.task.task_arn.clone()));
        let (task_arns, next_token) = page.collect(items);
        if let Some(e) = unreadable.into_inner() {
            return Err(e);
        }
        Ok(ListTasksResponse {
            task_arns,
            next_token,
        })
    }

    /// Commits newly placed tasks and builds the RunTask/StartTask answer.
    fn commit_placed(
        &self,
        state: &mut State,
        staged: Staged,
        task_ids: &[String],
        failures: Vec<Failure>,
    ) -> Result<(Wakeups, RunTaskResponse)> {
        let wakeups = self.commit(state, staged)?;
        let mut tasks = Vec::new();
        for id in task_ids {
            if let Some(t) = self.task_by_id(state, id)? {
                tasks.push(self.task_view(state, &t, true));
            }
        }
        Ok((wakeups, RunTaskResponse { tasks, failures }))
    }

    /// Answers a retried RunTask from what its client token recorded.
    fn replay(
        &self,
        state: &State,
        previous: &TokenRecord,
        fingerprint: &str,
    ) -> Result<RunTaskResponse> {
        if previous.fingerprint != fingerprint {
            return Err(Error::Conflict {
                message: format!(
                    "The clientToken '{}' was already used with different parameters. Use a new token for a different request.",
                    previous.token
                ),
                resource_ids: previous.task_arns.clone(),
            });
        }
        let mut tasks = Vec::new();
        for id in previous
            .task_arns
            .iter()
            .filter_map(|arn| arn.rsplit('/').next())
        {
            if let Some(t) = self.task_by_id(state, id)? {
                tasks.push(self.task_view(state, &t, true));
            }
        }
        Ok(RunTaskResponse {
            tasks,
            failures: previous.failures.clone(),
        })
    }

    /// Resolves the definition and decides everything the tasks will need
    /// and carry.
    fn prepare(&self, state: &State, input: &RunTaskInput, cluster: &str) -> Result<Launch> {
        let reference = &input.task_definition;
        let td = resolve(state, reference).map_err(|e| match e {
            Unresolved::Malformed => invalid(format!(
                "'{reference}' is not a task definition reference: use family, family:revision or the task definition ARN."
            )),
            Unresolved::NotFound => client(format!(
                "TaskDefinition not found. '{reference}' is not registered: register it with RegisterTaskDefinition or check ListTaskDefinitions."
            )),
            Unresolved::NoActiveRevision => client(format!(
                "TaskDefinition not found. Family '{reference}' has no ACTIVE revision."
            )),
        })?;
        let d = &td.definition;
        if !d.is_active() {
            return Err(invalid(format!(
                "TaskDefinition is inactive. {}:{} was deregistered; run an ACTIVE revision.",
                d.family, d.revision
            )));
        }
        let awsvpc = validate::against_definition(input, d)?;
        let constraints = validate::placement::constraints(
            &input.placement_constraints,
            &d.placement_constraints,
        )?;
        let tags = task_tags(input, &td.tags, cluster)?;
        let containers: Vec<ContainerDefinition> = d
            .container_definitions
            .iter()
            .map(|c| merge_container(c, input.overrides.container(c.name())))
            .collect();
        let gpus_per_container: Vec<usize> = containers.iter().map(gpu_count).collect();
        let (demand, reservation) =
            demand(d, &input.overrides, &containers, input.launch_type.clone());
        Ok(Launch {
            group: input
                .group
                .clone()
                .unwrap_or_else(|| format!("family:{}", d.family)),
            demand: Demand {
                gpus: gpus_per_container.iter().sum(),
                ..demand
            },
            reservation,
            gpus_per_container,
            constraints,
            tags,
            ephemeral_storage: input
                .overrides
                .ephemeral_storage
                .clone()
                .or_else(|| d.ephemeral_storage.clone()),
            awsvpc,
            containers,
            td: td.clone(),
        })
    }

    /// The capacity provider shares tasks are split across: the request's
    /// strategy, else (without a launch type) the cluster's default, else
    /// none (any instance). Every provider must be associated with the cluster.
    fn provider_plan(
        &self,
        input: &RunTaskInput,
        cluster: &super::state::ClusterRecord,
    ) -> Result<Vec<validate::placement::ProviderShare>> {
        let shares = match (&input.capacity_provider_strategy, &input.launch_type) {
            (Some(shares), _) => shares.clone(),
            (None, Some(_)) => return Ok(Vec::new()),
            (None, None) => validate::placement::capacity_provider_strategy(
                &cluster.default_capacity_provider_strategy,
            )?,
        };
        for share in &shares {
            if !cluster.capacity_providers.contains(&share.name) {
                return Err(invalid(format!(
                    "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster: '{}'. Associate it with PutClusterCapacityProviders.",
                    share.name
                )));
            }
        }
        Ok(shares)
    }

    /// A new task record, PENDING with desired status RUNNING.
    fn new_task(
        &self,
        cluster: &str,
        instance: &InstanceRecord,
        launch: &Launch,
        input: &RunTaskInput,
        capacity_provider: Option<String>,
        gpu_ids: Vec<String>,
    ) -> TaskRecord {
        let d = &launch.td.definition;
        // 32 hex digits as ECS's, but ordered by creation (UUIDv7: the
        // time in ms, then random bits): a new task's record lands at the
        // right end of the store's key space, beside the other recent
        // ones, instead of on a random page of the whole history.
        let id = uuid::Uuid::now_v7().simple().to_string();
        let task_arn = self.scope().task(cluster, &id);
        let mut gpus = gpu_ids.iter().cloned();
        let containers = d
            .container_definitions
            .iter()
            .zip(&launch.gpus_per_container)
            .map(|(c, n)| {
                let merged = merge_container(c, input.overrides.container(c.name()));
                let container_gpus: Vec<String> = gpus.by_ref().take(*n).collect();
                Container {
                    container_arn: self.scope().container(
                        cluster,
                        &id,
                        &uuid::Uuid::new_v4().to_string(),
                    ),
                    task_arn: task_arn.clone(),
                    name: c.name().to_owned(),
                    image: c.image.clone().unwrap_or_default(),
                    image_digest: None,
                    runtime_id: None,
                    last_status: ContainerStatus::Pending,
                    exit_code: None,
                    reason: None,
                    network_bindings: Vec::new(),
                    network_interfaces: Vec::new(),
                    health_status: "UNKNOWN".to_owned(),
                    cpu: merged.cpu.unwrap_or(0).to_string(),
                    memory: merged.memory.map(|m| m.to_string()),
                    memory_reservation: merged.memory_reservation.map(|m| m.to_string()),
                    gpu_ids: (!container_gpus.is_empty()).then_some(container_gpus),
                }
            })
            .collect();
        let attribute = |name: &str| {
            instance
                .all_attributes()
                .find(|a| a.name == name)
                .and_then(|a| a.value.clone())
        };
        let attributes = attribute("ecs.cpu-architecture")
            .map(|arch| {
                vec![Attribute {
                    name: "ecs.cpu-architecture".to_owned(),
                    value: Some(arch),
                    target_type: None,
                    target_id: None,
                }]
            })
            .unwrap_or_default();
        let (cpu, memory) = task_size(d, &input.overrides);
        let task = Task {
            task_arn,
            cluster_arn: self.scope().cluster(cluster),
            task_definition_arn: d.task_definition_arn.clone(),
            container_instance_arn: Some(instance.arn.clone()),
            containers,
            attachments: launch
                .awsvpc
                .as_ref()
                .map(awsvpc_attachment)
                .into_iter()
                .collect(),
            last_status: TaskStatus::Pending,
            desired_status: TaskStatus::Running,
            health_status: "UNKNOWN".to_owned(),
            connectivity: None,
            connectivity_at: None,
            cpu: cpu.map(|c| c.to_string()),
            memory: memory.map(|m| m.to_string()),
            group: launch.group.clone(),
            started_by: input.started_by.clone(),
            launch_type: instance.launch_type.to_string(),
            capacity_provider_name: capacity_provider,
            ephemeral_storage: launch.ephemeral_storage.clone(),
            overrides: echo_overrides(
                d.container_definitions.iter().map(|c| c.name()),
                &input.overrides,
            ),
            attributes,
            availability_zone: attribute("ecs.availability-zone"),
            enable_execute_command: input.enable_execute_command,
            created_at: Timestamp::now(),
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            stopping_at: None,
            execution_stopped_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            tags: Some(launch.tags.clone()),
            version: 1,
        };
        TaskRecord {
            id,
            cluster: cluster.to_owned(),
            instance_id: instance.id.clone(),
            family: d.family.clone(),
            revision: d.revision,
            reservation: Reservation {
                gpu_ids,
                ..launch.reservation.clone()
            },
            task,
            awsvpc: launch.awsvpc.clone(),
            spec: Some(super::state::TaskSpec {
                network_mode: d.network_mode.clone(),
                volumes: d.volumes.clone(),
                containers: launch.containers.clone(),
            }),
            protection_expires_at: None,
        }
    }

    /// The ECS view of a task: connectivity from the instance's session,
    /// tags only when asked for.
    pub(super) fn task_view(&self, state: &State, t: &TaskRecord, with_tags: bool) -> Task {
        let mut task = t.task.clone();
        if let Some(live) = state.live(&t.instance_id)
            && task.last_status != TaskStatus::Stopped
        {
            task.connectivity = Some(
                if live.connected {
                    "CONNECTED"
                } else {
                    "DISCONNECTED"
                }
                .to_owned(),
            );
            task.connectivity_at = live.connected_at;
        }
        if with_tags {
            task.tags.get_or_insert_with(Vec::new);
        } else {
            task.tags = None;
        }
        task
    }
}

/// The task's tags: the caller's, then (with `propagateTags:
/// TASK_DEFINITION`) the definition's whose keys the caller did not set,
/// then (with `enableECSManagedTags`) `aws:ecs:clusterName`. At most 50, not
/// counting `aws:` tags.
fn task_tags(input: &RunTaskInput, definition_tags: &[Tag], cluster: &str) -> Result<Vec<Tag>> {
    let mut tags = input.tags.clone();
    if input.propagate_definition_tags {
        for t in definition_tags {
            if !tags.iter().any(|x| x.key == t.key) {
                tags.push(t.clone());
            }
        }
    }
    if tags.len() > 50 {
        return Err(invalid(format!(
            "The task would have {} tags with the task definition's propagated; at most 50 are allowed.",
            tags.len()
        )));
    }
    if input.managed_tags {
        tags.push(Tag {
            key: Some("aws:ecs:clusterName".to_owned()),
            value: Some(cluster.to_owned()),
        });
    }
    Ok(tags)
}

impl ControlPlane {
    /// The task a reference names within `cluster`: from memory, or a
    /// STOPPED one from the store.
    pub(super) fn find_task<'s>(
        &self,
        state: &'s State,
        cluster: &str,
        reference: &str,
    ) -> Result<Option<std::borrow::Cow<'s, TaskRecord>>> {
        let Some(r) = arn::scoped(reference, "task") else {
            return Ok(None);
        };
        if r.cluster.is_some_and(|c| c != cluster) {
            return Ok(None);
        }
        if state.stopped.cluster_of(r.id).is_some_and(|c| c != cluster) {
            return Ok(None);
        }
        Ok(self
            .task_by_id(state, r.id)?
            .filter(|t| t.cluster == cluster))
    }
}

/// A placement candidate from an instance's record and live state. Task
/// groups are listed only when an expression needs them.
pub(super) fn candidate<'s>(
    state: &'s State,
    id: &str,
    group: &str,
    with_groups: bool,
) -> Option<Candidate<'s>> {
    let i = state.instances.get(id)?;
    let live = state.live(id)?;
    Some(Candidate {
        id: Cow::Borrowed(&i.id),
        arn: Cow::Borrowed(&i.arn),
        active: i.status == Status::Active,
        // An engine that does not answer is as good as an absent agent.
        connected: live.usable(),
        launch_type: i.launch_type.as_str(),
        capacity_provider: i.capacity_provider.as_deref(),
        free_cpu: i.cpu - live.used_cpu,
        free_memory: i.memory - live.used_memory,
        used_tcp: ports_in_use(&i.reserved_tcp, &live.used_tcp),
        used_udp: ports_in_use(&i.reserved_udp, &live.used_udp),
        free_gpus: i
            .gpu_ids
            .iter()
            .filter(|g| !live.used_gpus.contains(*g))
            .map(String::as_str)
            .collect(),
        attributes: live.attributes.clone(),
        agent_version: i.version_info.agent_version.as_deref(),
        ec2_instance_id: &i.ec2_instance_id,
        registered_at_ms: i.registered_at.as_millis(),
        running_tasks_count: live.running_desired as i64,
        group_tasks: live.groups.get(group).copied().unwrap_or(0),
        tasks: live.active_tasks.len(),
        task_groups: if with_groups {
            live.groups
                .keys()
                .map(|g| Cow::Borrowed(g.as_str()))
                .collect()
        } else {
            BTreeSet::new()
        },
    })
}

/// The agent's reserved ports plus those tasks hold, copied only when tasks
/// hold any.
fn ports_in_use<'s>(
    reserved: &'s BTreeSet<u16>,
    held: &'s BTreeSet<u16>,
) -> Cow<'s, BTreeSet<u16>> {
    if held.is_empty() {
        Cow::Borrowed(reserved)
    } else if reserved.is_empty() {
        Cow::Borrowed(held)
    } else {
        Cow::Owned(reserved.union(held).copied().collect())
    }
}

/// An awsvpc task's network interface as ECS shows it before it exists:
/// `ElasticNetworkInterface`, PRECREATED, with the subnet.
fn awsvpc_attachment(vpc: &validate::AwsVpc) -> serde_json::Value {
    serde_json::json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "ElasticNetworkInterface",
        "status": "PRECREATED",
        "details": [{"name": "subnetId", "value": vpc.subnets.first()}],
    })
}

/// A container definition with its override applied: command and
/// environment files replaced, environment merged (override wins by name),
/// cpu, memory and resource requirements replaced.
pub(super) fn merge_container(
    c: &ContainerDefinition,
    o: Option<&ContainerOverride>,
) -> ContainerDefinition {
    let mut merged = c.clone();
    let Some(o) = o else { return merged };
    if let Some(command) = &o.command {
        merged.command = Some(command.clone());
    }
    if let Some(env) = &o.environment {
        let mut vars = merged.environment.take().unwrap_or_default();
        for kv in env {
            match vars.iter_mut().find(|v| v.name == kv.name) {
                Some(existing) => existing.value = kv.value.clone(),
                None => vars.push(kv.clone()),
            }
        }
        merged.environment = Some(vars);
    }
    if let Some(files) = &o.environment_files {
        merged.environment_files = Some(files.clone());
    }
    if let Some(r) = &o.resource_requirements {
        merged.resource_requirements = Some(r.clone());
    }
    for (field, value) in [
        (&mut merged.cpu, o.cpu),
        (&mut merged.memory, o.memory),
        (&mut merged.memory_reservation, o.memory_reservation),
    ] {
        if value.is_some() {
            *field = value;
        }
    }
    merged
}

fn gpu_count(c: &ContainerDefinition) -> usize {
    c.resource_requirements
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.kind.as_deref() == Some("GPU"))
        .and_then(|r| r.value.as_deref()?.parse().ok())
        .unwrap_or(0)
}

/// Task-level CPU units and MiB: overrides, else the definition.
fn task_size(d: &TaskDefinition, o: &TaskOverride) -> (Option<i64>, Option<i64>) {
    let cpu = o
        .cpu
        .as_deref()
        .and_then(|c| validate::parse_task_cpu(c).ok())
        .or(d.cpu.clone())
        .and_then(|c| c.parse().ok());
    let memory = o
        .memory
        .as_deref()
        .and_then(|m| validate::parse_task_memory(m).ok())
        .or(d.memory.clone())
        .and_then(|m| m.parse().ok());
    (cpu, memory)
}

/// What one task of this definition needs, for placement and accounting.
/// CPU and memory: the task-level size when there is one, else the sum over
/// containers (memoryReservation before memory). Ports: static host ports
/// (bridge `hostPort` > 0, every `containerPort` in host mode). Attributes:
/// the definition's `requiresAttributes` and runtime platform.
fn demand(
    d: &TaskDefinition,
    o: &TaskOverride,
    containers: &[ContainerDefinition],
    launch_type: Option<String>,
) -> (Demand, Reservation) {
    let (task_cpu, task_memory) = task_size(d, o);
    let cpu = task_cpu.unwrap_or_else(|| containers.iter().map(|c| c.cpu.unwrap_or(0)).sum());
    let memory = task_memory.unwrap_or_else(|| {
        containers
            .iter()
            .map(|c| c.memory_reservation.or(c.memory).unwrap_or(0))
            .sum()
    });
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    // awsvpc tasks have addresses of their own: their ports take nothing
    // from the host.
    let mode = NetworkMode::parse(&d.network_mode).unwrap_or(NetworkMode::Bridge);
    if matches!(mode, NetworkMode::Bridge | NetworkMode::Host) {
        for pm in containers
            .iter()
            .flat_map(|c| c.port_mappings.iter().flatten())
        {
            let host = if mode == NetworkMode::Bridge {
                pm.host_port.unwrap_or(0)
            } else {
                pm.container_port.unwrap_or(0)
            };
            if let Ok(port @ 1..) = u16::try_from(host) {
                if pm.protocol() == "udp" {
                    udp.push(port);
                } else {
                    tcp.push(port);
                }
            }
        }
    }
    let cpu_architecture = d
        .runtime_platform
        .as_ref()
        .and_then(|p| p.get("cpuArchitecture"))
        .and_then(|a| a.as_str())
        .map(|a| if a == "ARM64" { "arm64" } else { "x86_64" }.to_owned());
    let reservation = Reservation {
        cpu,
        memory,
        tcp_ports: tcp.clone(),
        udp_ports: udp.clone(),
        gpu_ids: Vec::new(),
    };
    let demand = Demand {
        cpu,
        memory,
        tcp_ports: tcp,
        udp_ports: udp,
        gpus: 0,
        launch_type,
        capacity_provider: None,
        required_attributes: d
            .requires_attributes
            .iter()
            .map(|a| a.name.clone())
            .collect(),
        cpu_architecture,
    };
    (demand, reservation)
}

/// The overrides as ECS echoes them: one container entry per container of
/// the definition (just `{name}` when it had none), plus the task-level ones.
fn echo_overrides<'a>(names: impl Iterator<Item = &'a str>, o: &TaskOverride) -> TaskOverride {
    let container_overrides = names
        .map(|name| {
            o.container(name)
                .cloned()
                .unwrap_or_else(|| ContainerOverride {
                    name: Some(name.to_owned()),
                    ..Default::default()
                })
        })
        .collect();
    TaskOverride {
        container_overrides: Some(container_overrides),
        inference_accelerator_overrides: Some(
            o.inference_accelerator_overrides
                .clone()
                .unwrap_or_default(),
        ),
        ..o.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyValuePair;

    fn kv(n: &str, v: &str) -> KeyValuePair {
        KeyValuePair {
            name: Some(n.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn overrides_merge_environment_and_replace_command() {
        let def = ContainerDefinition {
            name: Some("app".into()),
            command: Some(vec!["a".into()]),
            environment: Some(vec![kv("A", "1"), kv("B", "2")]),
            memory: Some(128),
            ..Default::default()
        };
        let o = ContainerOverride {
            name: Some("app".into()),
            command: Some(vec!["b".into()]),
            environment: Some(vec![kv("B", "3"), kv("C", "4")]),
            memory: Some(256),
            memory_reservation: Some(64),
            ..Default::default()
        };
        let merged = merge_container(&def, Some(&o));
        assert_eq!(merged.command, Some(vec!["b".to_owned()]));
        assert_eq!(
            merged.environment,
            Some(vec![kv("A", "1"), kv("B", "3"), kv("C", "4")])
        );
        assert_eq!(
            (merged.memory, merged.memory_reservation),
            (Some(256), Some(64))
        );
    }

    #[test]
    fn tags_propagate_under_explicit_ones_and_managed_tags_are_added() {
        let tag = |k: &str, v: &str| Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        let input = validate::run_task(&RunTaskRequest {
            task_definition: Some("web".into()),
            tags: Some(vec![tag("team", "a")]),
            propagate_tags: Some("TASK_DEFINITION".into()),
            enable_ecs_managed_tags: Some(true),
            ..Default::default()
        })
        .unwrap();
        let tags = task_tags(&input, &[tag("team", "b"), tag("app", "web")], "prod").unwrap();
        assert_eq!(
            tags,
            vec![
                tag("team", "a"),
                tag("app", "web"),
                tag("aws:ecs:clusterName", "prod")
            ]
        );
    }
}
