//! RegisterTaskDefinition rules (ECS reports them as ClientException), and
//! the unit conversions of task-level `cpu`/`memory` strings.

use super::{Result, ValidationError, container_name, family_name, tags};
use crate::model::Tag;
use crate::model::status::NetworkMode;
use crate::model::task_definition::{
    ContainerDefinition, RegisterTaskDefinitionRequest, TaskDefinitionPlacementConstraint,
};
use std::collections::HashSet;

/// A registration that passed every rule, normalised: unit strings
/// converted, defaults filled in as ECS returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedTaskDefinition {
    /// Family name.
    pub family: String,
    /// Containers with `cpu`, `essential`, and the empty lists ECS echoes.
    pub container_definitions: Vec<ContainerDefinition>,
    /// `bridge` unless given.
    pub network_mode: String,
    /// Task CPU units as an integer string.
    pub cpu: Option<String>,
    /// Task memory MiB as an integer string.
    pub memory: Option<String>,
    /// Validated tags.
    pub tags: Vec<Tag>,
    /// Launch types this definition can run on.
    pub compatibilities: Vec<String>,
    /// `memberOf` constraints.
    pub placement_constraints: Vec<TaskDefinitionPlacementConstraint>,
    /// Instance attributes (names) a host needs for this definition.
    pub requires_attributes: Vec<String>,
}

const COMPATIBILITIES: &[&str] = &["EC2", "EXTERNAL", "FARGATE", "MANAGED_INSTANCES"];

/// Docker refuses containers with less memory than this (MiB).
const MIN_CONTAINER_MEMORY_MIB: i64 = 6;

/// Validates a registration.
pub fn register(req: &RegisterTaskDefinitionRequest) -> Result<ParsedTaskDefinition> {
    let family = req
        .family
        .as_deref()
        .ok_or_else(|| ValidationError::client("Family should not be null or empty."))?;
    family_name(family)?;

    // Containers first: a definition without a name or image is reported
    // as such before any network or launch-type rule, as ECS does.
    let containers = req
        .container_definitions
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ValidationError::client(
                "TaskDefinition must contain at least one container definition.",
            )
        })?;

    let mut names = HashSet::new();
    for c in containers {
        let name = c.name.as_deref().ok_or_else(|| {
            ValidationError::client("Container.name should not be null or empty.")
        })?;
        container_name(name)?;
        if !names.insert(name) {
            return Err(ValidationError::client(format!(
                "Duplicate container name '{name}': container names must be unique within a task definition."
            )));
        }
        if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
            return Err(ValidationError::client(format!(
                "Container.image should not be null or empty. Container '{name}' has no image."
            )));
        }
    }
    let given = req.network_mode.as_deref().unwrap_or("bridge");
    let Some(network_mode) = NetworkMode::parse(given) else {
        return Err(ValidationError::client(format!(
            "Invalid networkMode '{given}': use one of bridge, host, awsvpc, none."
        )));
    };

    let cpu = req.cpu.as_deref().map(parse_task_cpu).transpose()?;
    let memory = req.memory.as_deref().map(parse_task_memory).transpose()?;

    let requires = req.requires_compatibilities.as_deref().unwrap_or_default();
    for c in requires {
        if !COMPATIBILITIES.contains(&c.as_str()) {
            return Err(ValidationError::client(format!(
                "Invalid requiresCompatibilities entry '{c}': use EC2, EXTERNAL, FARGATE or MANAGED_INSTANCES."
            )));
        }
    }
    if requires.iter().any(|c| c == "FARGATE") && (cpu.is_none() || memory.is_none()) {
        return Err(ValidationError::client(
            "Fargate requires task definition to have cpu and memory values set at the task level.",
        ));
    }

    if !containers.iter().any(ContainerDefinition::is_essential) {
        return Err(ValidationError::client(
            "Task definition must have at least one essential container.",
        ));
    }

    let accelerators =
        inference_accelerators(req.inference_accelerators.as_deref().unwrap_or_default())?;
    super::container_options::volumes(req.volumes.as_deref().unwrap_or_default())?;
    super::container_options::start_order(containers)?;
    if let Some(e) = &req.ephemeral_storage {
        super::task::ephemeral_storage(e, ValidationError::client)?;
    }
    runtime_platform(req.runtime_platform.as_ref())?;
    super::one_of(req.pid_mode.as_deref(), "pidMode", &["host", "task"])
        .map_err(|e| ValidationError::client(e.message))?;
    super::one_of(
        req.ipc_mode.as_deref(),
        "ipcMode",
        &["host", "task", "none"],
    )
    .map_err(|e| ValidationError::client(e.message))?;
    let mut total_cpu = 0i64;
    let mut total_memory = 0i64;
    for c in containers {
        let name = c.name();
        if let Some(member) = not_yet_honoured(c) {
            return Err(ValidationError::client(format!(
                "Container '{name}' sets '{member}', which this Berth version cannot apply yet; remove it (see the README's list)."
            )));
        }
        super::task::environment_files(
            c.environment_files.as_deref().unwrap_or_default(),
            &format!("Container '{name}'"),
            ValidationError::client,
        )?;
        super::task::resource_requirements(
            c.resource_requirements.as_deref().unwrap_or_default(),
            &accelerators,
            &format!("Container '{name}'"),
            ValidationError::client,
        )?;
        if network_mode == NetworkMode::Awsvpc
            && (c.hostname.is_some()
                || c.extra_hosts.as_deref().is_some_and(|h| !h.is_empty())
                || c.dns_servers.as_deref().is_some_and(|h| !h.is_empty())
                || c.dns_search_domains
                    .as_deref()
                    .is_some_and(|h| !h.is_empty())
                || c.disable_networking.is_some())
        {
            return Err(ValidationError::client(format!(
                "Container '{name}': hostname, extraHosts, dnsServers, dnsSearchDomains and disableNetworking are not supported with networkMode 'awsvpc'."
            )));
        }
        super::container_options::check(c, network_mode)?;
        check_container_memory(c, memory.is_some())?;
        if let Some(cpu) = c.cpu {
            if cpu < 0 {
                return Err(ValidationError::client(format!(
                    "Invalid 'cpu' setting for container '{name}': must be 0 or more CPU units."
                )));
            }
            total_cpu += cpu;
        }
        total_memory += c.memory_reservation.or(c.memory).unwrap_or(0);
        check_ports(c, network_mode)?;
        check_references(c, containers, req)?;
        if network_mode != NetworkMode::Bridge && c.links.as_deref().is_some_and(|l| !l.is_empty())
        {
            return Err(ValidationError::client(format!(
                "Container '{name}' uses links, which only work with networkMode 'bridge'."
            )));
        }
    }
    if let Some(task_cpu) = cpu.as_deref().and_then(|c| c.parse::<i64>().ok())
        && total_cpu > task_cpu
    {
        return Err(ValidationError::client(format!(
            "Invalid 'cpu' setting for task: the containers reserve {total_cpu} CPU units in total, more than the task's {task_cpu}."
        )));
    }
    if let Some(task_memory) = memory.as_deref().and_then(|m| m.parse::<i64>().ok())
        && total_memory > task_memory
    {
        return Err(ValidationError::client(format!(
            "Invalid 'memory' setting for task: the containers reserve {total_memory} MiB in total, more than the task's {task_memory} MiB."
        )));
    }

    let placement_constraints = req.placement_constraints.clone().unwrap_or_default();
    for pc in &placement_constraints {
        if pc.kind.as_deref() != Some("memberOf") {
            return Err(ValidationError::client(
                "Task definition placement constraints must be of type 'memberOf'.",
            ));
        }
        let expr = pc.expression.as_deref().unwrap_or_default();
        if expr.trim().is_empty() || expr.len() > 2000 {
            return Err(ValidationError::client(
                "A memberOf placement constraint needs an expression of 1-2000 characters.",
            ));
        }
    }
    if placement_constraints.len() > 10 {
        return Err(ValidationError::client(
            "A task definition can have at most 10 placement constraints.",
        ));
    }

    for (member, set) in [
        ("proxyConfiguration", req.proxy_configuration.is_some()),
        ("pidMode", req.pid_mode.is_some()),
        ("ipcMode", req.ipc_mode.is_some()),
    ] {
        if set {
            return Err(ValidationError::client(format!(
                "The task definition sets '{member}', which this Berth version cannot apply yet; remove it (see the README's list)."
            )));
        }
    }
    let mut requires_attributes = Vec::new();
    if containers.iter().any(|c| {
        c.environment_files
            .as_deref()
            .is_some_and(|f| !f.is_empty())
    }) {
        requires_attributes.push("ecs.capability.env-files.s3".to_owned());
    }
    if !accelerators.is_empty() {
        requires_attributes.push("ecs.capability.inference-accelerator".to_owned());
    }
    let container_definitions = containers.iter().map(with_defaults).collect();
    let mut compatibilities = vec!["EC2".to_owned(), "EXTERNAL".to_owned()];
    if cpu.is_some() && memory.is_some() && network_mode == NetworkMode::Awsvpc {
        compatibilities.push("FARGATE".to_owned());
    }

    Ok(ParsedTaskDefinition {
        family: family.to_owned(),
        container_definitions,
        network_mode: network_mode.as_str().to_owned(),
        cpu,
        memory,
        tags: tags(req.tags.as_deref())?,
        compatibilities,
        placement_constraints,
        requires_attributes,
    })
}

/// The first container-definition member the agent does not apply yet.
/// Refusing them at registration beats a task that silently runs without
/// them.
fn not_yet_honoured(c: &ContainerDefinition) -> Option<&'static str> {
    let set_list = |l: &Option<Vec<String>>| l.as_deref().is_some_and(|v| !v.is_empty());
    [
        ("restartPolicy", c.restart_policy.is_some()),
        ("firelensConfiguration", c.firelens_configuration.is_some()),
        ("credentialSpecs", set_list(&c.credential_specs)),
    ]
    .into_iter()
    .find_map(|(member, set)| set.then_some(member))
}

/// `inferenceAccelerators`: deviceName and deviceType each; returns the names.
fn inference_accelerators(items: &[serde_json::Value]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for a in items {
        let field = |k: &str| a.get(k).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
        match (field("deviceName"), field("deviceType")) {
            (Some(name), Some(_)) if !names.iter().any(|n| n == name) => {
                names.push(name.to_owned())
            }
            _ => {
                return Err(ValidationError::client(
                    "Each inferenceAccelerators entry needs a unique deviceName and a deviceType.",
                ));
            }
        }
    }
    Ok(names)
}

/// `runtimePlatform`: Linux on X86_64 or ARM64.
fn runtime_platform(value: Option<&serde_json::Value>) -> Result<()> {
    let Some(v) = value else { return Ok(()) };
    if let Some(arch) = v.get("cpuArchitecture")
        && !matches!(arch.as_str(), Some("X86_64" | "ARM64"))
    {
        return Err(ValidationError::client(format!(
            "runtimePlatform.cpuArchitecture should be one of [X86_64,ARM64] (got {arch})."
        )));
    }
    if let Some(os) = v.get("operatingSystemFamily")
        && os.as_str() != Some("LINUX")
    {
        return Err(ValidationError::client(format!(
            "runtimePlatform.operatingSystemFamily {os} is not available: Berth runs Linux containers (LINUX)."
        )));
    }
    Ok(())
}

/// The defaults ECS fills into every container definition it returns.
fn with_defaults(c: &ContainerDefinition) -> ContainerDefinition {
    let mut c = c.clone();
    c.cpu.get_or_insert(0);
    c.essential.get_or_insert(true);
    c.port_mappings.get_or_insert_with(Vec::new);
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    for pm in c.port_mappings.iter_mut().flatten() {
        pm.protocol.get_or_insert_with(|| "tcp".to_owned());
    }
    c
}

fn check_container_memory(c: &ContainerDefinition, task_has_memory: bool) -> Result<()> {
    let name = c.name();
    for (member, value) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        if let Some(v) = value
            && v < MIN_CONTAINER_MEMORY_MIB
        {
            return Err(ValidationError::client(format!(
                "Invalid '{member}' setting for container '{name}': {v} MiB is below Docker's minimum of {MIN_CONTAINER_MEMORY_MIB} MiB."
            )));
        }
    }
    if !task_has_memory && c.memory.is_none() && c.memory_reservation.is_none() {
        return Err(ValidationError::client(format!(
            "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
        )));
    }
    if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation)
        && hard <= soft
    {
        return Err(ValidationError::client(format!(
            "Invalid setting for container '{name}': 'memory' ({hard} MiB) must be greater than 'memoryReservation' ({soft} MiB)."
        )));
    }
    Ok(())
}

fn check_ports(c: &ContainerDefinition, network_mode: NetworkMode) -> Result<()> {
    let name = c.name();
    let mappings = c.port_mappings.as_deref().unwrap_or_default();
    if network_mode == NetworkMode::None && !mappings.is_empty() {
        return Err(ValidationError::client(format!(
            "Container '{name}' has port mappings, which networkMode 'none' does not allow."
        )));
    }
    let mut seen = HashSet::new();
    for pm in mappings {
        if pm.container_port_range.is_some() {
            return Err(ValidationError::unsupported(format!(
                "Container '{name}': containerPortRange is not available on this Berth version; map single ports."
            )));
        }
        let container_port = pm.container_port.ok_or_else(|| {
            ValidationError::client(format!(
                "Container '{name}': a port mapping needs containerPort."
            ))
        })?;
        if !(1..=65535).contains(&container_port) {
            return Err(ValidationError::client(format!(
                "Container '{name}': containerPort {container_port} is outside 1-65535."
            )));
        }
        let host_port = pm.host_port.unwrap_or(0);
        if !(0..=65535).contains(&host_port) {
            return Err(ValidationError::client(format!(
                "Container '{name}': hostPort {host_port} is outside 0-65535."
            )));
        }
        let protocol = pm.protocol();
        if protocol != "tcp" && protocol != "udp" {
            return Err(ValidationError::client(format!(
                "Container '{name}': protocol '{protocol}' is not valid; use tcp or udp."
            )));
        }
        if matches!(network_mode, NetworkMode::Host | NetworkMode::Awsvpc)
            && host_port != 0
            && host_port != container_port
        {
            return Err(ValidationError::client(format!(
                "Container '{name}': with networkMode '{network_mode}', hostPort must be omitted or equal to containerPort ({container_port})."
            )));
        }
        if !seen.insert((container_port, protocol.to_owned())) {
            return Err(ValidationError::client(format!(
                "Container '{name}': containerPort {container_port}/{protocol} is mapped twice."
            )));
        }
    }
    Ok(())
}

fn check_references(
    c: &ContainerDefinition,
    all: &[ContainerDefinition],
    req: &RegisterTaskDefinitionRequest,
) -> Result<()> {
    let name = c.name();
    let exists = |other: &str| all.iter().any(|o| o.name() == other);
    for vf in c.volumes_from.as_deref().unwrap_or_default() {
        let source = vf.source_container.as_deref().unwrap_or_default();
        if !exists(source) || source == name {
            return Err(ValidationError::client(format!(
                "Container '{name}': volumesFrom names '{source}', which is not another container of this task definition."
            )));
        }
    }
    for dep in c.depends_on.as_deref().unwrap_or_default() {
        let target = dep.container_name.as_deref().unwrap_or_default();
        if !exists(target) || target == name {
            return Err(ValidationError::client(format!(
                "Container '{name}': dependsOn names '{target}', which is not another container of this task definition."
            )));
        }
    }
    let volume_names: Vec<&str> = req
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.get("name").and_then(|n| n.as_str()))
        .collect();
    for mp in c.mount_points.as_deref().unwrap_or_default() {
        let source = mp.source_volume.as_deref().unwrap_or_default();
        if !volume_names.contains(&source) {
            return Err(ValidationError::client(format!(
                "Container '{name}': mountPoints sourceVolume '{source}' is not a volume of this task definition."
            )));
        }
    }
    Ok(())
}

/// Task CPU: integer units (`"1024"`) or vCPU (`"1 vCPU"`, `"0.25 vcpu"`),
/// 128-196608 units. Returns the integer-units string ECS stores.
pub fn parse_task_cpu(text: &str) -> Result<String> {
    let bad = || {
        ValidationError::client(format!(
            "Invalid 'cpu' setting for task '{text}': use CPU units (\"1024\") or vCPUs (\"1 vCPU\"), between 128 units (0.125 vCPU) and 196608 units (192 vCPU)."
        ))
    };
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let units = if let Some(v) = lower.strip_suffix("vcpu") {
        let vcpu: f64 = v.trim().parse().map_err(|_| bad())?;
        let units = vcpu * 1024.0;
        if units.fract() != 0.0 {
            return Err(bad());
        }
        units as i64
    } else {
        t.parse::<i64>().map_err(|_| bad())?
    };
    if !(128..=196_608).contains(&units) {
        return Err(bad());
    }
    Ok(units.to_string())
}

/// Task memory: integer MiB (`"2048"`) or GB (`"2GB"`, `"2 gb"`). Returns the
/// integer-MiB string ECS stores.
pub fn parse_task_memory(text: &str) -> Result<String> {
    let bad = || {
        ValidationError::client(format!(
            "Invalid 'memory' setting for task '{text}': use MiB (\"2048\") or GB (\"2 GB\"), at least {MIN_CONTAINER_MEMORY_MIB} MiB."
        ))
    };
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let mib = if let Some(v) = lower.strip_suffix("gb") {
        let gb: f64 = v.trim().parse().map_err(|_| bad())?;
        let mib = gb * 1024.0;
        if mib.fract() != 0.0 {
            return Err(bad());
        }
        mib as i64
    } else {
        t.parse::<i64>().map_err(|_| bad())?
    };
    if mib < MIN_CONTAINER_MEMORY_MIB {
        return Err(bad());
    }
    Ok(mib.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task_definition::PortMapping;
    use crate::validate::ValidationKind;

    fn container(name: &str) -> ContainerDefinition {
        ContainerDefinition {
            name: Some(name.into()),
            image: Some("busybox".into()),
            memory: Some(64),
            ..Default::default()
        }
    }

    fn request(containers: Vec<ContainerDefinition>) -> RegisterTaskDefinitionRequest {
        RegisterTaskDefinitionRequest {
            family: Some("web".into()),
            container_definitions: Some(containers),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_minimal_and_fills_defaults() {
        let parsed = register(&request(vec![container("app")])).unwrap();
        assert_eq!(parsed.network_mode, "bridge");
        let c = &parsed.container_definitions[0];
        assert_eq!(c.cpu, Some(0));
        assert_eq!(c.essential, Some(true));
        assert_eq!(c.environment, Some(vec![]));
    }

    #[test]
    fn a_missing_name_or_image_is_reported_before_launch_type_rules() {
        let fargate = |c: ContainerDefinition| RegisterTaskDefinitionRequest {
            requires_compatibilities: Some(vec!["FARGATE".into()]),
            network_mode: Some("nonsense".into()),
            ..request(vec![c])
        };
        let no_image = ContainerDefinition {
            image: None,
            ..container("app")
        };
        let e = register(&fargate(no_image)).unwrap_err().to_string();
        assert!(
            e.starts_with("Container.image should not be null or empty."),
            "{e}"
        );
        let no_name = ContainerDefinition {
            name: None,
            ..container("app")
        };
        let e = register(&fargate(no_name)).unwrap_err().to_string();
        assert!(
            e.starts_with("Container.name should not be null or empty."),
            "{e}"
        );
    }

    #[test]
    fn rejects_broken_definitions() {
        let cases: Vec<(RegisterTaskDefinitionRequest, &str)> = vec![
            (RegisterTaskDefinitionRequest::default(), "Family"),
            (request(vec![]), "at least one container"),
            (
                request(vec![ContainerDefinition {
                    image: None,
                    ..container("a")
                }]),
                "image",
            ),
            (request(vec![container("a"), container("a")]), "Duplicate"),
            (
                request(vec![ContainerDefinition {
                    essential: Some(false),
                    ..container("a")
                }]),
                "essential",
            ),
            (
                request(vec![ContainerDefinition {
                    memory: None,
                    ..container("a")
                }]),
                "At least one of 'memory' or 'memoryReservation'",
            ),
            (
                request(vec![ContainerDefinition {
                    memory_reservation: Some(64),
                    ..container("a")
                }]),
                "greater than",
            ),
            (
                RegisterTaskDefinitionRequest {
                    network_mode: Some("none".into()),
                    ..request(vec![ContainerDefinition {
                        port_mappings: Some(vec![PortMapping {
                            container_port: Some(80),
                            host_port: None,
                            protocol: None,
                            name: None,
                            app_protocol: None,
                            container_port_range: None,
                        }]),
                        ..container("a")
                    }])
                },
                "'none'",
            ),
            (
                RegisterTaskDefinitionRequest {
                    cpu: Some("3 apples".into()),
                    ..request(vec![container("a")])
                },
                "Invalid 'cpu'",
            ),
        ];
        for (req, needle) in cases {
            let err = register(&req).unwrap_err();
            assert_eq!(err.kind, ValidationKind::Client, "{err}");
            assert!(
                err.message.contains(needle),
                "{} does not mention {needle}",
                err.message
            );
        }
    }

    #[test]
    fn converts_units() {
        assert_eq!(parse_task_cpu("1 vCPU").unwrap(), "1024");
        assert_eq!(parse_task_cpu("0.25 vcpu").unwrap(), "256");
        assert_eq!(parse_task_cpu("512").unwrap(), "512");
        assert!(parse_task_cpu("64").is_err());
        assert!(parse_task_cpu("0.1 vCPU").is_err());
        assert_eq!(parse_task_memory("2GB").unwrap(), "2048");
        assert_eq!(parse_task_memory("0.5 gb").unwrap(), "512");
        assert_eq!(parse_task_memory("300").unwrap(), "300");
        assert!(parse_task_memory("lots").is_err());
    }
}
