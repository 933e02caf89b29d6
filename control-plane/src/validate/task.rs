//! RunTask, StartTask, StopTask, DescribeTasks and ListTasks rules that need
//! nothing but the request (the seed's limits and enums), plus the rules that
//! need the resolved task definition (overrides, network configuration,
//! compatibilities).

use super::placement::{ProviderShare, capacity_provider_strategy, strategies};
use super::{Result, ValidationError, one_of, required_str, tags};
use crate::model::Tag;
use crate::model::placement::PlacementConstraint;
use crate::model::status::NetworkMode;
use crate::model::task::{ContainerOverride, RunTaskRequest, StartTaskRequest, TaskOverride};
use crate::model::task_definition::{EnvironmentFile, ResourceRequirement, TaskDefinition};
use crate::placement::Strategy;

/// Longest `stoppedReason` we keep, in characters (the ECS agent's limit).
pub const MAX_REASON_CHARS: usize = 1024;

/// A RunTask/StartTask request that passed every request-only rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTaskInput {
    /// Cluster reference (name or ARN), `default` when absent.
    pub cluster: String,
    /// Task definition reference as given.
    pub task_definition: String,
    /// Tasks to start, 1-10.
    pub count: usize,
    /// `EC2` or `EXTERNAL` when the caller asked for one.
    pub launch_type: Option<String>,
    /// The capacity provider strategy, when the caller gave one.
    pub capacity_provider_strategy: Option<Vec<ProviderShare>>,
    /// Task group; `family:<family>` is filled in later when absent.
    pub group: Option<String>,
    /// Free-form tag.
    pub started_by: Option<String>,
    /// Caller reference (recorded).
    pub reference_id: Option<String>,
    /// Overrides as given (container names checked against the definition later).
    pub overrides: TaskOverride,
    /// Caller's tags.
    pub tags: Vec<Tag>,
    /// `propagateTags: TASK_DEFINITION`.
    pub propagate_definition_tags: bool,
    /// `enableECSManagedTags`.
    pub managed_tags: bool,
    /// ECS Exec.
    pub enable_execute_command: bool,
    /// Idempotency token with the request it was first used for.
    pub client_token: Option<ClientToken>,
    /// `networkConfiguration` as given.
    pub network_configuration: Option<serde_json::Value>,
    /// The request's placement constraints (combined with the definition's later).
    pub placement_constraints: Vec<PlacementConstraint>,
    /// Strategy rules, validated.
    pub placement_strategy: Vec<Strategy>,
}

/// A RunTask idempotency token and the canonical form of the request it came
/// with: a retry must match it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientToken {
    /// The token, 1-64 characters with codes 33-126.
    pub token: String,
    /// The request without its token, serialized canonically.
    pub fingerprint: String,
}

/// Platform versions Fargate has had; any other value is unknown.
const PLATFORM_VERSIONS: &[&str] = &["LATEST", "1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.0"];

/// `platformVersion` applies only to Fargate, which Berth does not have.
fn platform_version(value: Option<&str>) -> Result<()> {
    match value {
        None => Ok(()),
        Some(v) if PLATFORM_VERSIONS.contains(&v) => Err(ValidationError::invalid(format!(
            "Platform version must be null when specifying an EC2 or EXTERNAL launch type: Berth has no Fargate, so remove platformVersion '{v}'."
        ))),
        Some(v) => Err(ValidationError::platform_unknown(format!(
            "The specified platform version '{v}' does not exist; and platformVersion applies only to Fargate, which Berth does not have. Remove it."
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn common(
    group: Option<&str>,
    started_by: Option<&str>,
    reference_id: Option<&str>,
    propagate_tags: Option<&str>,
    volume_configurations: Option<&[serde_json::Value]>,
    overrides: Option<&TaskOverride>,
    tag_list: Option<&[Tag]>,
) -> Result<(bool, Vec<Tag>)> {
    if let Some(group) = group
        && (group.is_empty() || group.chars().count() > 255)
    {
        return Err(ValidationError::invalid(
            "group must be 1-255 characters long.",
        ));
    }
    // ECS documents up to 36 letters, digits, hyphens and underscores, but
    // accepts any printable text up to 128 characters (it sets
    // `events-rule/NAME` and `ecs-svc/ID` itself, and deploy tools send
    // `ECS Deploy`): Berth accepts what ECS accepts.
    if let Some(sb) = started_by {
        let ok = !sb.is_empty() && sb.chars().count() <= 128 && !sb.chars().any(char::is_control);
        if !ok {
            return Err(ValidationError::invalid(format!(
                "startedBy is not valid: use 1-128 printable characters (got {} characters).",
                sb.chars().count()
            )));
        }
    }
    if let Some(r) = reference_id
        && r.chars().count() > 1024
    {
        return Err(ValidationError::invalid(
            "referenceId can be at most 1024 characters long.",
        ));
    }
    let propagate = one_of(
        propagate_tags,
        "propagateTags",
        &["TASK_DEFINITION", "SERVICE", "NONE"],
    )?;
    if propagate == Some("SERVICE") {
        return Err(ValidationError::invalid(
            "propagateTags SERVICE is only valid for service tasks; use TASK_DEFINITION or NONE with RunTask and StartTask.",
        ));
    }
    if volume_configurations.is_some_and(|v| !v.is_empty()) {
        return Err(ValidationError::unsupported(
            "volumeConfigurations (Amazon EBS volumes) are not available on Berth.",
        ));
    }
    if let Some(o) = overrides {
        override_rules(o)?;
    }
    Ok((propagate == Some("TASK_DEFINITION"), tags(tag_list)?))
}

/// RunTask's request-only rules.
pub fn run_task(req: &RunTaskRequest) -> Result<RunTaskInput> {
    let task_definition = required_str(req.task_definition.as_deref(), "taskDefinition")?;
    let count = match req.count {
        None => 1,
        Some(n @ 1..=10) => n as usize,
        Some(n) => {
            return Err(ValidationError::invalid(format!(
                "count must be between 1 and 10 (got {n}); run more tasks with several calls."
            )));
        }
    };
    let launch_type = launch_type(req.launch_type.as_deref())?;
    let providers = match req.capacity_provider_strategy.as_deref() {
        None => None,
        Some(_) if launch_type.is_some() => {
            return Err(ValidationError::invalid(
                "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
            ));
        }
        Some(items) => Some(capacity_provider_strategy(items)?),
    };
    platform_version(req.platform_version.as_deref())?;
    let (propagate, tag_list) = common(
        req.group.as_deref(),
        req.started_by.as_deref(),
        req.reference_id.as_deref(),
        req.propagate_tags.as_deref(),
        req.volume_configurations.as_deref(),
        req.overrides.as_ref(),
        req.tags.as_deref(),
    )?;
    // Counted against the limit of 10 again once the definition's are known.
    let constraints = req.placement_constraints.clone().unwrap_or_default();
    super::placement::constraints(&constraints, &[])?;
    let placement_strategy = strategies(req.placement_strategy.as_deref().unwrap_or_default())?;
    let client_token = match req.client_token.as_deref() {
        None => None,
        Some(token) => {
            let len = token.chars().count();
            if len == 0 || len > 64 || !token.chars().all(|c| ('!'..='~').contains(&c)) {
                return Err(ValidationError::invalid(
                    "clientToken must be 1-64 printable ASCII characters without spaces.",
                ));
            }
            let mut canonical = req.clone();
            canonical.client_token = None;
            Some(ClientToken {
                token: token.to_owned(),
                fingerprint: serde_json::to_string(&canonical).map_err(|e| {
                    ValidationError::invalid(format!("The request cannot be serialized: {e}"))
                })?,
            })
        }
    };
    Ok(RunTaskInput {
        cluster: cluster_or_default(req.cluster.as_deref()),
        task_definition: task_definition.to_owned(),
        count,
        launch_type,
        capacity_provider_strategy: providers,
        group: req.group.clone(),
        started_by: req.started_by.clone(),
        reference_id: req.reference_id.clone(),
        overrides: req.overrides.clone().unwrap_or_default(),
        tags: tag_list,
        propagate_definition_tags: propagate,
        managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
        client_token,
        network_configuration: req.network_configuration.clone(),
        placement_constraints: constraints,
        placement_strategy,
    })
}

/// StartTask's request-only rules. Returns the input and the instance
/// references (1-10).
pub fn start_task(req: &StartTaskRequest) -> Result<(RunTaskInput, Vec<String>)> {
    let task_definition = required_str(req.task_definition.as_deref(), "taskDefinition")?;
    let instances = container_instance_refs(req.container_instances.as_deref(), 10)?;
    let (propagate, tag_list) = common(
        req.group.as_deref(),
        req.started_by.as_deref(),
        req.reference_id.as_deref(),
        req.propagate_tags.as_deref(),
        req.volume_configurations.as_deref(),
        req.overrides.as_ref(),
        req.tags.as_deref(),
    )?;
    let input = RunTaskInput {
        cluster: cluster_or_default(req.cluster.as_deref()),
        task_definition: task_definition.to_owned(),
        count: instances.len(),
        launch_type: None,
        capacity_provider_strategy: None,
        group: req.group.clone(),
        started_by: req.started_by.clone(),
        reference_id: req.reference_id.clone(),
        overrides: req.overrides.clone().unwrap_or_default(),
        tags: tag_list,
        propagate_definition_tags: propagate,
        managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
        client_token: None,
        network_configuration: req.network_configuration.clone(),
        placement_constraints: Vec::new(),
        placement_strategy: Vec::new(),
    };
    Ok((input, instances))
}

/// The cluster reference, `default` when absent or empty.
pub fn cluster_or_default(cluster: Option<&str>) -> String {
    match cluster {
        Some(c) if !c.is_empty() => c.to_owned(),
        _ => "default".to_owned(),
    }
}

/// The seed's launch types: EC2 and EXTERNAL place on Berth agents of that
/// kind; FARGATE is refused (there is no Fargate here).
pub fn launch_type(value: Option<&str>) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(lt @ ("EC2" | "EXTERNAL")) => Ok(Some(lt.to_owned())),
        Some("FARGATE") => Err(ValidationError::unsupported(
            "launchType FARGATE is not available: Berth has no Fargate capacity. Use EXTERNAL (the default for Berth agents) or EC2.",
        )),
        Some(other) => Err(ValidationError::invalid(format!(
            "launch type should be one of [EC2,FARGATE,EXTERNAL] (got '{other}')."
        ))),
    }
}

/// `environmentFiles` of a container definition or override: at most 10,
/// type `s3`, a value ending in `.env` (an S3 ARN, mapped to a directory on
/// the host, or an absolute path on the host).
pub fn environment_files(
    files: &[EnvironmentFile],
    what: &str,
    kind: fn(String) -> ValidationError,
) -> Result<()> {
    if files.len() > 10 {
        return Err(kind(format!(
            "{what}: at most 10 environment files are allowed (got {}).",
            files.len()
        )));
    }
    for f in files {
        if f.kind.as_deref() != Some("s3") {
            return Err(kind(format!(
                "{what}: environment file type must be s3 (got '{}').",
                f.kind.as_deref().unwrap_or_default()
            )));
        }
        let value = f.value.as_deref().unwrap_or_default();
        let arn_ok = value.starts_with("arn:")
            && value.split(':').nth(2) == Some("s3")
            && value.contains('/');
        if !(arn_ok || value.starts_with('/'))
            || !value.ends_with(".env")
            || value.split('/').any(|s| s == "..")
        {
            return Err(kind(format!(
                "{what}: environment file '{value}' must be an S3 object ARN (arn:aws:s3:::bucket/key.env) or an absolute path on the host, ending in .env."
            )));
        }
    }
    Ok(())
}

/// `resourceRequirements`: `GPU` with a positive count, or an
/// `InferenceAccelerator` the definition declares.
pub fn resource_requirements(
    items: &[ResourceRequirement],
    accelerators: &[String],
    what: &str,
    kind: fn(String) -> ValidationError,
) -> Result<()> {
    let mut gpu_seen = false;
    for r in items {
        let value = r.value.as_deref().unwrap_or_default();
        match r.kind.as_deref() {
            Some("GPU") => {
                if gpu_seen {
                    return Err(kind(format!("{what}: GPU is given more than once.")));
                }
                gpu_seen = true;
                if !value.parse::<u32>().is_ok_and(|n| n > 0) {
                    return Err(kind(format!(
                        "{what}: the GPU count must be a positive number (got '{value}')."
                    )));
                }
            }
            Some("InferenceAccelerator") => {
                if !accelerators.iter().any(|a| a == value) {
                    return Err(kind(format!(
                        "{what}: InferenceAccelerator '{value}' is not a deviceName of the task definition's inferenceAccelerators."
                    )));
                }
            }
            other => {
                return Err(kind(format!(
                    "{what}: resource requirement type should be one of [GPU,InferenceAccelerator] (got '{}').",
                    other.unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

/// `ephemeralStorage`: `{sizeInGiB}` of 21-200, as ECS allows.
pub fn ephemeral_storage(
    value: &serde_json::Value,
    kind: fn(String) -> ValidationError,
) -> Result<u32> {
    match value.get("sizeInGiB").and_then(serde_json::Value::as_i64) {
        Some(n @ 21..=200) => Ok(n as u32),
        _ => Err(kind(format!(
            "ephemeralStorage.sizeInGiB must be a number from 21 to 200 (got {}).",
            value
                .get("sizeInGiB")
                .map_or("nothing".to_owned(), |v| v.to_string())
        ))),
    }
}

fn override_rules(o: &TaskOverride) -> Result<()> {
    let size = serde_json::to_string(o)
        .map(|s| s.chars().count())
        .unwrap_or(usize::MAX);
    if size > 8192 {
        return Err(ValidationError::invalid(format!(
            "overrides is {size} characters of JSON; at most 8192 are allowed."
        )));
    }
    for co in o.container_overrides.as_deref().unwrap_or_default() {
        container_override(co)?;
    }
    if let Some(e) = &o.ephemeral_storage {
        ephemeral_storage(e, ValidationError::invalid)?;
    }
    for r in [&o.task_role_arn, &o.execution_role_arn]
        .into_iter()
        .flatten()
    {
        if !r.starts_with("arn:") {
            return Err(ValidationError::invalid(format!(
                "'{r}' is not a role ARN."
            )));
        }
    }
    Ok(())
}

fn container_override(co: &ContainerOverride) -> Result<()> {
    let Some(name) = co.name.as_deref().filter(|n| !n.is_empty()) else {
        return Err(ValidationError::invalid(
            "Every containerOverrides entry needs the name of the container it overrides.",
        ));
    };
    let what = format!("containerOverrides[{name}]");
    for (member, value) in [
        ("cpu", co.cpu),
        ("memory", co.memory),
        ("memoryReservation", co.memory_reservation),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(ValidationError::invalid(format!(
                "{what}.{member} must not be negative."
            )));
        }
    }
    for (member, value) in [
        ("memory", co.memory),
        ("memoryReservation", co.memory_reservation),
    ] {
        if value.is_some_and(|v| v < 6) {
            return Err(ValidationError::invalid(format!(
                "{what}.{member} must be at least 6 MiB (Docker's minimum)."
            )));
        }
    }
    for kv in co.environment.as_deref().unwrap_or_default() {
        if kv.name.as_deref().is_none_or(str::is_empty) {
            return Err(ValidationError::invalid(format!(
                "{what}.environment has an entry without a name."
            )));
        }
    }
    environment_files(
        co.environment_files.as_deref().unwrap_or_default(),
        &what,
        ValidationError::invalid,
    )?;
    Ok(())
}

/// Rules that need the resolved definition: every container override names
/// a container, memory limits stay consistent, resource requirements and
/// accelerators match the definition, task sizes parse, the network
/// configuration matches the network mode.
/// Returns the validated awsvpc configuration when the definition's network
/// mode is awsvpc.
pub fn against_definition(input: &RunTaskInput, td: &TaskDefinition) -> Result<Option<AwsVpc>> {
    let platforms = td.requires_compatibilities.as_deref().unwrap_or_default();
    if !platforms.is_empty() && !platforms.iter().any(|p| p == "EC2" || p == "EXTERNAL") {
        return Err(ValidationError::platform_incompatible(format!(
            "Task definition {}:{} requires {}; Berth runs tasks on EXTERNAL and EC2 instances. Register a revision with requiresCompatibilities EXTERNAL or EC2.",
            td.family,
            td.revision,
            platforms.join(", ")
        )));
    }
    if let Some(lt) = &input.launch_type
        && !platforms.is_empty()
        && !platforms.contains(lt)
    {
        return Err(ValidationError::client(format!(
            "Task definition does not support launch_type {lt}: it requires {}.",
            platforms.join(", ")
        )));
    }
    let o = &input.overrides;
    let accelerators: Vec<String> = td
        .inference_accelerators
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| {
            a.get("deviceName")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
        })
        .collect();
    for co in o.container_overrides.as_deref().unwrap_or_default() {
        let name = co.name.as_deref().unwrap_or_default();
        let Some(def) = td.container(name) else {
            let known: Vec<&str> = td.container_definitions.iter().map(|c| c.name()).collect();
            return Err(ValidationError::invalid(format!(
                "containerOverrides names container '{name}', which task definition {}:{} does not have (it has: {}).",
                td.family,
                td.revision,
                known.join(", ")
            )));
        };
        let hard = co.memory.or(def.memory);
        let soft = co.memory_reservation.or(def.memory_reservation);
        if let (Some(hard), Some(soft)) = (hard, soft)
            && hard <= soft
        {
            return Err(ValidationError::invalid(format!(
                "Container '{name}': memory ({hard} MiB) must be greater than memoryReservation ({soft} MiB) after overrides."
            )));
        }
        if td.memory.is_none() && o.memory.is_none() && hard.is_none() && soft.is_none() {
            return Err(ValidationError::invalid(format!(
                "Container '{name}' would have neither memory nor memoryReservation."
            )));
        }
        resource_requirements(
            co.resource_requirements.as_deref().unwrap_or_default(),
            &accelerators,
            &format!("containerOverrides[{name}]"),
            ValidationError::invalid,
        )?;
    }
    for a in o
        .inference_accelerator_overrides
        .as_deref()
        .unwrap_or_default()
    {
        let name = a
            .get("deviceName")
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        if !accelerators.iter().any(|d| d == name) {
            return Err(ValidationError::invalid(format!(
                "inferenceAcceleratorOverrides names device '{name}', which the task definition's inferenceAccelerators do not declare."
            )));
        }
    }
    if let Some(cpu) = o.cpu.as_deref() {
        super::parse_task_cpu(cpu).map_err(|e| ValidationError::invalid(e.message))?;
    }
    if let Some(memory) = o.memory.as_deref() {
        super::parse_task_memory(memory).map_err(|e| ValidationError::invalid(e.message))?;
    }
    let mode = NetworkMode::parse(&td.network_mode).unwrap_or(NetworkMode::Bridge);
    let awsvpc = match (&input.network_configuration, mode) {
        (None, NetworkMode::Awsvpc) => {
            return Err(ValidationError::invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        }
        (Some(_), mode) if mode != NetworkMode::Awsvpc => {
            return Err(ValidationError::invalid(
                "Network Configuration is not valid for the given networkMode of this task definition.",
            ));
        }
        (Some(nc), _) => Some(network_configuration(nc)?),
        (None, _) => None,
    };
    if input.enable_execute_command && td.task_role_arn.is_none() && o.task_role_arn.is_none() {
        return Err(ValidationError::invalid(
            "The execute command failed because a valid task role is not being used. Specify a valid task role in your task definition or as a task override and try again.",
        ));
    }
    Ok(awsvpc)
}

/// The subnets, security groups and public-IP setting of an awsvpc task.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AwsVpc {
    /// 1-16 subnets; on Berth the first names the Docker network.
    pub subnets: Vec<String>,
    /// Up to 5 (recorded).
    pub security_groups: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: String,
}

/// `networkConfiguration.awsvpcConfiguration`.
pub fn network_configuration(nc: &serde_json::Value) -> Result<AwsVpc> {
    let Some(vpc) = nc.get("awsvpcConfiguration") else {
        return Err(ValidationError::invalid(
            "networkConfiguration needs awsvpcConfiguration with at least one subnet.",
        ));
    };
    let strings = |member: &str| -> Result<Vec<String>> {
        match vpc.get(member) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ValidationError::invalid(format!(
                                "awsvpcConfiguration.{member} must hold non-empty strings."
                            ))
                        })
                })
                .collect(),
            Some(_) => Err(ValidationError::invalid(format!(
                "awsvpcConfiguration.{member} must be a list."
            ))),
        }
    };
    let subnets = strings("subnets")?;
    if subnets.is_empty() || subnets.len() > 16 {
        return Err(ValidationError::invalid(format!(
            "awsvpcConfiguration.subnets must name 1-16 subnets (got {}).",
            subnets.len()
        )));
    }
    let security_groups = strings("securityGroups")?;
    if security_groups.len() > 5 {
        return Err(ValidationError::invalid(format!(
            "awsvpcConfiguration.securityGroups can name at most 5 groups (got {}).",
            security_groups.len()
        )));
    }
    let assign = vpc.get("assignPublicIp").and_then(|v| v.as_str());
    let assign_public_ip =
        one_of(assign, "assignPublicIp", &["ENABLED", "DISABLED"])?.unwrap_or("DISABLED");
    Ok(AwsVpc {
        subnets,
        security_groups,
        assign_public_ip: assign_public_ip.to_owned(),
    })
}

/// A list of container-instance references, 1 to `max`.
pub fn container_instance_refs(refs: Option<&[String]>, max: usize) -> Result<Vec<String>> {
    let refs = refs.unwrap_or_default();
    if refs.is_empty() {
        return Err(ValidationError::client(
            "Container Instances cannot be empty.",
        ));
    }
    if refs.len() > max {
        return Err(ValidationError::invalid(format!(
            "At most {max} container instances can be given (got {}).",
            refs.len()
        )));
    }
    Ok(refs.to_vec())
}

/// DescribeTasks' `tasks`: 1-100 references.
pub fn describe_tasks_refs(refs: Option<&[String]>) -> Result<Vec<String>> {
    let refs = refs.unwrap_or_default();
    if refs.is_empty() {
        return Err(ValidationError::invalid("Tasks cannot be empty."));
    }
    if refs.len() > 100 {
        return Err(ValidationError::invalid(format!(
            "At most 100 tasks can be described per call (got {}).",
            refs.len()
        )));
    }
    Ok(refs.to_vec())
}

/// ListTasks' `desiredStatus`: RUNNING (default), PENDING or STOPPED.
pub fn list_tasks_status(value: Option<&str>) -> Result<&str> {
    Ok(one_of(value, "desiredStatus", &["RUNNING", "PENDING", "STOPPED"])?.unwrap_or("RUNNING"))
}

/// StopTask's `reason`, cut to [`MAX_REASON_CHARS`].
pub fn stop_reason(reason: Option<&str>) -> String {
    match reason {
        Some(r) if !r.trim().is_empty() => r.chars().take(MAX_REASON_CHARS).collect(),
        _ => "Task stopped by user".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::placement::{CapacityProviderStrategyItem, PlacementStrategy};
    use crate::validate::ValidationKind;

    fn req() -> RunTaskRequest {
        RunTaskRequest {
            task_definition: Some("web".into()),
            ..Default::default()
        }
    }

    #[test]
    fn count_limits() {
        assert_eq!(run_task(&req()).unwrap().count, 1);
        for bad in [0, 11, -1] {
            let err = run_task(&RunTaskRequest {
                count: Some(bad),
                ..req()
            })
            .unwrap_err();
            assert_eq!(err.kind, ValidationKind::InvalidParameter);
            assert!(err.message.contains("between 1 and 10"));
        }
    }

    #[test]
    fn request_rules() {
        let cp = |n: usize| {
            Some(
                (0..n)
                    .map(|i| CapacityProviderStrategyItem {
                        capacity_provider: Some(format!("p{i}")),
                        weight: Some(1),
                        base: None,
                    })
                    .collect(),
            )
        };
        let bad = [
            RunTaskRequest {
                task_definition: None,
                ..req()
            },
            RunTaskRequest {
                started_by: Some("a".repeat(129)),
                ..req()
            },
            RunTaskRequest {
                started_by: Some("tab\there".into()),
                ..req()
            },
            RunTaskRequest {
                started_by: Some(String::new()),
                ..req()
            },
            RunTaskRequest {
                group: Some("g".repeat(256)),
                ..req()
            },
            RunTaskRequest {
                propagate_tags: Some("SERVICE".into()),
                ..req()
            },
            RunTaskRequest {
                propagate_tags: Some("ALL".into()),
                ..req()
            },
            RunTaskRequest {
                launch_type: Some("EC3".into()),
                ..req()
            },
            RunTaskRequest {
                launch_type: Some("MANAGED_INSTANCES".into()),
                ..req()
            },
            RunTaskRequest {
                client_token: Some("has space".into()),
                ..req()
            },
            RunTaskRequest {
                client_token: Some("t".repeat(65)),
                ..req()
            },
            RunTaskRequest {
                reference_id: Some("r".repeat(1025)),
                ..req()
            },
            RunTaskRequest {
                capacity_provider_strategy: cp(7),
                ..req()
            },
            RunTaskRequest {
                capacity_provider_strategy: cp(1),
                launch_type: Some("EC2".into()),
                ..req()
            },
            RunTaskRequest {
                placement_strategy: Some(vec![PlacementStrategy {
                    kind: Some("binpack".into()),
                    field: Some("disk".into()),
                }]),
                ..req()
            },
        ];
        for r in bad {
            assert_eq!(
                run_task(&r).map(|_| ()).unwrap_err().kind,
                ValidationKind::InvalidParameter,
                "{r:?}"
            );
        }
        // What real ECS accepts beyond its documented character set.
        for sb in [
            "ECS Deploy",
            "events-rule/nightly",
            "ecs-svc/1234567890123456789",
            &"é".repeat(128),
        ] {
            assert!(
                run_task(&RunTaskRequest {
                    started_by: Some(sb.to_owned()),
                    ..req()
                })
                .is_ok(),
                "{sb}"
            );
        }
        assert!(
            run_task(&RunTaskRequest {
                capacity_provider_strategy: cp(6),
                ..req()
            })
            .is_ok()
        );
        let fargate = run_task(&RunTaskRequest {
            launch_type: Some("FARGATE".into()),
            ..req()
        })
        .unwrap_err();
        assert_eq!(fargate.kind, ValidationKind::UnsupportedFeature);
        let known = run_task(&RunTaskRequest {
            platform_version: Some("LATEST".into()),
            ..req()
        })
        .unwrap_err();
        assert_eq!(known.kind, ValidationKind::InvalidParameter);
        let unknown = run_task(&RunTaskRequest {
            platform_version: Some("9.9.9".into()),
            ..req()
        })
        .unwrap_err();
        assert_eq!(unknown.kind, ValidationKind::PlatformUnknown);
    }

    #[test]
    fn client_token_fingerprint_ignores_the_token() {
        let a = run_task(&RunTaskRequest {
            client_token: Some("t1".into()),
            ..req()
        })
        .unwrap();
        let b = run_task(&RunTaskRequest {
            client_token: Some("t2".into()),
            ..req()
        })
        .unwrap();
        assert_eq!(
            a.client_token.unwrap().fingerprint,
            b.client_token.unwrap().fingerprint
        );
    }

    #[test]
    fn override_members() {
        let with = |co: ContainerOverride| RunTaskRequest {
            overrides: Some(TaskOverride {
                container_overrides: Some(vec![ContainerOverride {
                    name: Some("app".into()),
                    ..co
                }]),
                ..Default::default()
            }),
            ..req()
        };
        assert!(
            run_task(&with(ContainerOverride {
                memory: Some(5),
                ..Default::default()
            }))
            .is_err()
        );
        let file = |v: &str| EnvironmentFile {
            value: Some(v.into()),
            kind: Some("s3".into()),
        };
        assert!(
            run_task(&with(ContainerOverride {
                environment_files: Some(vec![
                    file("arn:aws:s3:::bucket/app.env"),
                    file("/etc/berth/x.env")
                ]),
                ..Default::default()
            }))
            .is_ok()
        );
        for bad in [
            "arn:aws:s3:::bucket/app.txt",
            "relative.env",
            "/etc/../x.env",
        ] {
            assert!(
                run_task(&with(ContainerOverride {
                    environment_files: Some(vec![file(bad)]),
                    ..Default::default()
                }))
                .is_err(),
                "{bad}"
            );
        }
        let big = TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("app".into()),
                command: Some(vec!["x".repeat(9000)]),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let e = run_task(&RunTaskRequest {
            overrides: Some(big),
            ..req()
        })
        .unwrap_err();
        assert!(e.message.contains("8192"));
        let storage = |n: i64| TaskOverride {
            ephemeral_storage: Some(serde_json::json!({"sizeInGiB": n})),
            ..Default::default()
        };
        assert!(
            run_task(&RunTaskRequest {
                overrides: Some(storage(30)),
                ..req()
            })
            .is_ok()
        );
        assert!(
            run_task(&RunTaskRequest {
                overrides: Some(storage(20)),
                ..req()
            })
            .is_err()
        );
    }

    #[test]
    fn network_configurations() {
        let ok = serde_json::json!({"awsvpcConfiguration": {"subnets": ["home"], "securityGroups": ["sg"], "assignPublicIp": "DISABLED"}});
        assert_eq!(
            network_configuration(&ok).unwrap().subnets,
            vec!["home".to_owned()]
        );
        assert!(network_configuration(&serde_json::json!({})).is_err());
        assert!(
            network_configuration(&serde_json::json!({"awsvpcConfiguration": {"subnets": []}}))
                .is_err()
        );
        assert!(network_configuration(&serde_json::json!({"awsvpcConfiguration": {"subnets": ["a"], "assignPublicIp": "YES"}})).is_err());
    }

    #[test]
    fn stop_reason_default_and_cap() {
        assert_eq!(stop_reason(None), "Task stopped by user");
        assert_eq!(
            stop_reason(Some(&"x".repeat(2000))).chars().count(),
            MAX_REASON_CHARS
        );
    }
}
