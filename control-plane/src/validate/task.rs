//! RunTask, StartTask, StopTask, DescribeTasks and ListTasks rules that need
//! nothing but the request (the seed's limits and enums), plus the override
//! rules that need the resolved task definition.

use super::{Result, ValidationError, one_of, required_str, tags};
use crate::model::Tag;
use crate::model::task::{RunTaskRequest, StartTaskRequest, TaskOverride};
use crate::model::task_definition::TaskDefinition;

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
    /// Capacity providers named by the strategy, in order.
    pub capacity_providers: Vec<String>,
    /// Task group; `family:<family>` is filled in later when absent.
    pub group: Option<String>,
    /// Free-form tag.
    pub started_by: Option<String>,
    /// Overrides as given (container names checked against the definition later).
    pub overrides: TaskOverride,
    /// Caller's tags.
    pub tags: Vec<Tag>,
    /// ECS Exec.
    pub enable_execute_command: bool,
    /// Idempotency token with the request it was first used for.
    pub client_token: Option<ClientToken>,
    /// Whether a `networkConfiguration` was given.
    pub has_network_configuration: bool,
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
    let capacity_providers = capacity_provider_strategy(
        req.capacity_provider_strategy.as_deref(),
        launch_type.is_some(),
    )?;
    if req.platform_version.is_some() {
        return Err(ValidationError::invalid(
            "platformVersion applies only to Fargate tasks; Berth runs tasks on your own instances, so leave it out.",
        ));
    }
    common_rules(
        req.group.as_deref(),
        req.started_by.as_deref(),
        req.reference_id.as_deref(),
        req.propagate_tags.as_deref(),
        req.placement_constraints.as_deref(),
        req.placement_strategy.as_deref(),
        req.volume_configurations.as_deref(),
        req.overrides.as_ref(),
    )?;
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
        capacity_providers,
        group: req.group.clone(),
        started_by: req.started_by.clone(),
        overrides: req.overrides.clone().unwrap_or_default(),
        tags: tags(req.tags.as_deref())?,
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
        client_token,
        has_network_configuration: req.network_configuration.is_some(),
    })
}

/// StartTask's request-only rules. Returns the input and the instance
/// references (1-10).
pub fn start_task(req: &StartTaskRequest) -> Result<(RunTaskInput, Vec<String>)> {
    let task_definition = required_str(req.task_definition.as_deref(), "taskDefinition")?;
    let instances = container_instance_refs(req.container_instances.as_deref(), 10)?;
    common_rules(
        req.group.as_deref(),
        req.started_by.as_deref(),
        req.reference_id.as_deref(),
        req.propagate_tags.as_deref(),
        None,
        None,
        req.volume_configurations.as_deref(),
        req.overrides.as_ref(),
    )?;
    let input = RunTaskInput {
        cluster: cluster_or_default(req.cluster.as_deref()),
        task_definition: task_definition.to_owned(),
        count: instances.len(),
        launch_type: None,
        capacity_providers: Vec::new(),
        group: req.group.clone(),
        started_by: req.started_by.clone(),
        overrides: req.overrides.clone().unwrap_or_default(),
        tags: tags(req.tags.as_deref())?,
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
        client_token: None,
        has_network_configuration: req.network_configuration.is_some(),
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

fn launch_type(value: Option<&str>) -> Result<Option<String>> {
    match one_of(
        value,
        "launchType",
        &["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"],
    )? {
        None => Ok(None),
        Some(lt @ ("EC2" | "EXTERNAL")) => Ok(Some(lt.to_owned())),
        Some(other) => Err(ValidationError::unsupported(format!(
            "launchType {other} is not available: Berth has no {other} capacity. Use EXTERNAL (the default for Berth agents) or EC2."
        ))),
    }
}

fn capacity_provider_strategy(
    items: Option<&[serde_json::Value]>,
    has_launch_type: bool,
) -> Result<Vec<String>> {
    let Some(items) = items else {
        return Ok(Vec::new());
    };
    if has_launch_type {
        return Err(ValidationError::invalid(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        ));
    }
    if items.len() > 6 {
        return Err(ValidationError::invalid(format!(
            "capacityProviderStrategy can contain at most 6 items (got {}).",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| {
            item.get("capacityProvider")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    ValidationError::invalid(
                        "Each capacityProviderStrategy item needs a capacityProvider name.",
                    )
                })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn common_rules(
    group: Option<&str>,
    started_by: Option<&str>,
    reference_id: Option<&str>,
    propagate_tags: Option<&str>,
    placement_constraints: Option<&[serde_json::Value]>,
    placement_strategy: Option<&[serde_json::Value]>,
    volume_configurations: Option<&[serde_json::Value]>,
    overrides: Option<&TaskOverride>,
) -> Result<()> {
    if let Some(group) = group
        && (group.is_empty() || group.chars().count() > 255)
    {
        return Err(ValidationError::invalid(
            "group must be 1-255 characters long.",
        ));
    }
    if let Some(sb) = started_by {
        let ok = !sb.is_empty()
            && sb.len() <= 36
            && sb
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(ValidationError::invalid(format!(
                "startedBy '{sb}' is not valid: use up to 36 letters, digits, hyphens (-) and underscores (_)."
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
    if one_of(
        propagate_tags,
        "propagateTags",
        &["TASK_DEFINITION", "SERVICE", "NONE"],
    )? == Some("SERVICE")
    {
        return Err(ValidationError::invalid(
            "propagateTags SERVICE is only valid for service tasks; use TASK_DEFINITION or NONE with RunTask and StartTask.",
        ));
    }
    if placement_constraints.is_some_and(|c| !c.is_empty()) {
        return Err(ValidationError::unsupported(
            "placementConstraints are not available on this Berth version yet; leave them out.",
        ));
    }
    if placement_strategy.is_some_and(|s| !s.is_empty()) {
        return Err(ValidationError::unsupported(
            "placementStrategy is not available on this Berth version yet; leave it out.",
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
    Ok(())
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
        if co.name.as_deref().is_none_or(str::is_empty) {
            return Err(ValidationError::invalid(
                "Every containerOverrides entry needs the name of the container it overrides.",
            ));
        }
        let name = co.name.as_deref().unwrap_or_default();
        if co
            .environment_files
            .as_deref()
            .is_some_and(|f| !f.is_empty())
        {
            return Err(ValidationError::unsupported(format!(
                "containerOverrides[{name}].environmentFiles is not available on this Berth version yet."
            )));
        }
        if co
            .resource_requirements
            .as_deref()
            .is_some_and(|r| !r.is_empty())
        {
            return Err(ValidationError::unsupported(format!(
                "containerOverrides[{name}].resourceRequirements is not available on this Berth version yet."
            )));
        }
        for (member, value) in [
            ("cpu", co.cpu),
            ("memory", co.memory),
            ("memoryReservation", co.memory_reservation),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(ValidationError::invalid(format!(
                    "containerOverrides[{name}].{member} must not be negative."
                )));
            }
        }
        for kv in co.environment.as_deref().unwrap_or_default() {
            if kv.name.as_deref().is_none_or(str::is_empty) {
                return Err(ValidationError::invalid(format!(
                    "containerOverrides[{name}].environment has an entry without a name."
                )));
            }
        }
    }
    if o.ephemeral_storage.is_some() {
        return Err(ValidationError::unsupported(
            "overrides.ephemeralStorage is not available on this Berth version yet.",
        ));
    }
    if o.inference_accelerator_overrides
        .as_deref()
        .is_some_and(|v| !v.is_empty())
    {
        return Err(ValidationError::invalid(
            "inferenceAcceleratorOverrides name accelerators the task definition does not have.",
        ));
    }
    Ok(())
}

/// Override rules that need the resolved definition: every container
/// override names a container, memory limits stay consistent, and the
/// task-level sizes parse.
pub fn task_overrides(o: &TaskOverride, td: &TaskDefinition) -> Result<()> {
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
        if td.memory.is_none() && hard.is_none() && soft.is_none() {
            return Err(ValidationError::invalid(format!(
                "Container '{name}' would have neither memory nor memoryReservation."
            )));
        }
    }
    if let Some(cpu) = o.cpu.as_deref() {
        super::parse_task_cpu(cpu).map_err(|e| ValidationError::invalid(e.message))?;
    }
    if let Some(memory) = o.memory.as_deref() {
        super::parse_task_memory(memory).map_err(|e| ValidationError::invalid(e.message))?;
    }
    Ok(())
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
        let bad = [
            RunTaskRequest {
                task_definition: None,
                ..req()
            },
            RunTaskRequest {
                started_by: Some("has space".into()),
                ..req()
            },
            RunTaskRequest {
                started_by: Some("a".repeat(37)),
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
                launch_type: Some("EC3".into()),
                ..req()
            },
            RunTaskRequest {
                client_token: Some("has space".into()),
                ..req()
            },
        ];
        for r in bad {
            assert!(run_task(&r).is_err(), "{r:?} should be refused");
        }
        let fargate = run_task(&RunTaskRequest {
            launch_type: Some("FARGATE".into()),
            ..req()
        })
        .unwrap_err();
        assert_eq!(fargate.kind, ValidationKind::UnsupportedFeature);
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
    fn stop_reason_default_and_cap() {
        assert_eq!(stop_reason(None), "Task stopped by user");
        assert_eq!(
            stop_reason(Some(&"x".repeat(2000))).chars().count(),
            MAX_REASON_CHARS
        );
    }
}
