//! RegisterTaskDefinition rules for the Docker options of a container
//! (ulimits, Linux parameters, logging, sysctls, hosts, mounts, links) and
//! for task volumes. Errors are `ClientException`s, as ECS answers them.

use super::ValidationError;
use crate::model::status::NetworkMode;
use crate::model::task_definition::ContainerDefinition;
use serde_json::Value;

type Result<T> = std::result::Result<T, ValidationError>;

fn refuse(message: String) -> ValidationError {
    ValidationError::client(message)
}

/// The ulimit names ECS accepts.
const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Log drivers ECS accepts; `awsfirelens` needs FireLens, which Berth does
/// not have.
const LOG_DRIVERS: &[&str] = &[
    "json-file",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "logentries",
];

const DEVICE_PERMISSIONS: &[&str] = &["read", "write", "mknod"];

fn is_string_map(v: Option<&Value>) -> bool {
    v.is_none_or(|m| {
        m.as_object()
            .is_some_and(|o| o.values().all(Value::is_string))
    })
}

fn is_string_list(v: Option<&Value>) -> bool {
    v.is_none_or(|l| l.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
}

/// Task `volumes`: unique names; a host path, or a Docker volume
/// configuration, or neither (a Docker volume for the task).
pub(super) fn volumes(items: &[Value]) -> Result<()> {
    let mut names: Vec<&str> = Vec::new();
    for v in items {
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty()
            || name.len() > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(refuse(format!(
                "Volume name '{name}' is not valid: use 1-255 letters, digits, hyphens and underscores."
            )));
        }
        if names.contains(&name) {
            return Err(refuse(format!(
                "Volume name '{name}' is used twice; volume names must be unique."
            )));
        }
        names.push(name);
        for unsupported in [
            "efsVolumeConfiguration",
            "fsxWindowsFileServerVolumeConfiguration",
        ] {
            if v.get(unsupported).is_some() {
                return Err(refuse(format!(
                    "Volume '{name}': {unsupported} needs an AWS file system, which Berth cannot mount. Use a host path or a Docker volume."
                )));
            }
        }
        if v.get("configuredAtLaunch").and_then(Value::as_bool) == Some(true) {
            return Err(refuse(format!(
                "Volume '{name}': configuredAtLaunch volumes are for EBS and services; use a host path or a Docker volume."
            )));
        }
        let host = v.get("host");
        let docker = v.get("dockerVolumeConfiguration");
        if let Some(path) = host.and_then(|h| h.get("sourcePath")) {
            if !path.as_str().is_some_and(|p| p.starts_with('/')) {
                return Err(refuse(format!(
                    "Volume '{name}': host.sourcePath must be an absolute path on the host."
                )));
            }
            if docker.is_some() {
                return Err(refuse(format!(
                    "Volume '{name}' sets both host and dockerVolumeConfiguration; choose one."
                )));
            }
        }
        if let Some(d) = docker {
            let scope = d.get("scope").map(|s| s.as_str().unwrap_or("?"));
            if !matches!(scope, None | Some("task" | "shared")) {
                return Err(refuse(format!(
                    "Volume '{name}': dockerVolumeConfiguration.scope must be 'task' or 'shared'."
                )));
            }
            if d.get("autoprovision").and_then(Value::as_bool) == Some(true)
                && scope != Some("shared")
            {
                return Err(refuse(format!(
                    "Volume '{name}': autoprovision is only supported for volumes with scope 'shared'."
                )));
            }
            if !d.get("driver").is_none_or(Value::is_string)
                || !is_string_map(d.get("driverOpts"))
                || !is_string_map(d.get("labels"))
            {
                return Err(refuse(format!(
                    "Volume '{name}': driver must be a string, driverOpts and labels maps of strings."
                )));
            }
        }
    }
    Ok(())
}

/// One container's Docker options.
pub(super) fn check(c: &ContainerDefinition, network_mode: NetworkMode) -> Result<()> {
    let name = c.name();
    for mp in c.mount_points.as_deref().unwrap_or_default() {
        if !mp
            .container_path
            .as_deref()
            .is_some_and(|p| p.starts_with('/'))
        {
            return Err(refuse(format!(
                "Container '{name}': each mountPoints entry needs an absolute containerPath."
            )));
        }
    }
    for u in c.ulimits.as_deref().unwrap_or_default() {
        let limit = u.name.as_deref().unwrap_or_default();
        if !ULIMITS.contains(&limit) {
            return Err(refuse(format!(
                "Container '{name}': ulimit '{limit}' is not one of {}.",
                ULIMITS.join(", ")
            )));
        }
        match (u.soft_limit, u.hard_limit) {
            (Some(soft), Some(hard)) if soft <= hard => {}
            _ => {
                return Err(refuse(format!(
                    "Container '{name}': ulimit '{limit}' needs softLimit and hardLimit, with softLimit not above hardLimit."
                )));
            }
        }
    }
    for h in c.extra_hosts.as_deref().unwrap_or_default() {
        let ip_ok = h
            .ip_address
            .as_deref()
            .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        if h.hostname.as_deref().is_none_or(str::is_empty) || !ip_ok {
            return Err(refuse(format!(
                "Container '{name}': each extraHosts entry needs a hostname and an IP address."
            )));
        }
    }
    if let Some(l) = &c.log_configuration {
        let driver = l
            .get("logDriver")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if driver == "awsfirelens" {
            return Err(refuse(format!(
                "Container '{name}': logDriver 'awsfirelens' needs FireLens, which Berth does not run; use a Docker log driver ({}).",
                LOG_DRIVERS.join(", ")
            )));
        }
        if !LOG_DRIVERS.contains(&driver) {
            return Err(refuse(format!(
                "Container '{name}': logDriver '{driver}' is not one of {}.",
                LOG_DRIVERS.join(", ")
            )));
        }
        if !is_string_map(l.get("options")) {
            return Err(refuse(format!(
                "Container '{name}': logConfiguration.options must map names to strings."
            )));
        }
        if l.get("secretOptions")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            return Err(refuse(format!(
                "Container '{name}': logConfiguration.secretOptions needs secrets, which this Berth version cannot resolve yet."
            )));
        }
    }
    for sc in c.system_controls.as_deref().unwrap_or_default() {
        let namespace = sc
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if namespace.is_empty() || !sc.get("value").is_some_and(Value::is_string) {
            return Err(refuse(format!(
                "Container '{name}': each systemControls entry needs a namespace and a value."
            )));
        }
        if network_mode == NetworkMode::Host && namespace.starts_with("net.") {
            return Err(refuse(format!(
                "Container '{name}': systemControls '{namespace}' would change the host's network namespace; network sysctls are not supported with networkMode 'host'."
            )));
        }
    }
    if let Some(l) = &c.linux_parameters {
        linux_parameters(name, l, c.memory.is_some())?;
    }
    if let Some(h) = &c.health_check {
        health_check(name, h)?;
    }
    for secret in c.secrets.as_deref().unwrap_or_default() {
        let ok = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
        if !ok(&secret.name) || !ok(&secret.value_from) {
            return Err(refuse(format!(
                "Container '{name}': each secrets entry needs a name and a valueFrom."
            )));
        }
    }
    if let Some(r) = &c.repository_credentials
        && r.credentials_parameter
            .as_deref()
            .is_none_or(|p| p.is_empty() || p.len() > 2048)
    {
        return Err(refuse(format!(
            "Container '{name}': repositoryCredentials needs a credentialsParameter naming the credential (a name, or a Secrets Manager ARN whose secret name the agent maps to a file)."
        )));
    }
    if let Some(t) = c.start_timeout
        && !(2..=120).contains(&t)
    {
        return Err(refuse(format!(
            "Container '{name}': startTimeout must be 2-120 seconds (got {t})."
        )));
    }
    Ok(())
}

/// `healthCheck`: a `CMD` or `CMD-SHELL` command and ECS's ranges.
fn health_check(name: &str, h: &Value) -> Result<()> {
    let command: Vec<&str> = h
        .get("command")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match command.first() {
        Some(&"CMD" | &"CMD-SHELL") if command.len() > 1 => {}
        _ => {
            return Err(refuse(format!(
                "Container '{name}': healthCheck.command must start with \"CMD\" (then the program and its arguments) or \"CMD-SHELL\" (then a shell command)."
            )));
        }
    }
    for (key, range) in [
        ("interval", 5..=300),
        ("timeout", 2..=60),
        ("retries", 1..=10),
        ("startPeriod", 0..=300),
    ] {
        if let Some(v) = h.get(key)
            && !v.as_i64().is_some_and(|v| range.contains(&v))
        {
            return Err(refuse(format!(
                "Container '{name}': healthCheck.{key} must be from {} to {}.",
                range.start(),
                range.end()
            )));
        }
    }
    Ok(())
}

fn linux_parameters(name: &str, l: &Value, has_memory: bool) -> Result<()> {
    let bad = |what: &str| {
        Err(refuse(format!(
            "Container '{name}': linuxParameters.{what}."
        )))
    };
    if !l.is_object() {
        return bad("must be an object");
    }
    if let Some(caps) = l.get("capabilities")
        && (!caps.is_object()
            || !is_string_list(caps.get("add"))
            || !is_string_list(caps.get("drop")))
    {
        return bad("capabilities needs add and drop lists of capability names");
    }
    if !l.get("initProcessEnabled").is_none_or(Value::is_boolean) {
        return bad("initProcessEnabled must be true or false");
    }
    for t in l
        .get("tmpfs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let path_ok = t
            .get("containerPath")
            .and_then(Value::as_str)
            .is_some_and(|p| p.starts_with('/'));
        let size_ok = t.get("size").and_then(Value::as_i64).is_some_and(|s| s > 0);
        if !path_ok || !size_ok || !is_string_list(t.get("mountOptions")) {
            return bad("tmpfs entries need an absolute containerPath and a size in MiB above 0");
        }
    }
    for d in l
        .get("devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let host_ok = d
            .get("hostPath")
            .and_then(Value::as_str)
            .is_some_and(|p| p.starts_with('/'));
        let perms_ok = d
            .get("permissions")
            .and_then(Value::as_array)
            .is_none_or(|a| {
                a.iter()
                    .all(|p| p.as_str().is_some_and(|p| DEVICE_PERMISSIONS.contains(&p)))
            });
        if !host_ok || !perms_ok {
            return bad(
                "devices entries need an absolute hostPath and permissions from read, write, mknod",
            );
        }
    }
    if let Some(shm) = l.get("sharedMemorySize")
        && shm.as_i64().is_none_or(|s| s <= 0)
    {
        return bad("sharedMemorySize must be a number of MiB above 0");
    }
    if let Some(swap) = l.get("maxSwap") {
        if swap.as_i64().is_none_or(|s| s < 0) {
            return bad("maxSwap must be a number of MiB, 0 or more");
        }
        if !has_memory {
            return bad("maxSwap needs the container's memory (hard limit) to be set");
        }
    }
    if let Some(s) = l.get("swappiness")
        && !s.as_i64().is_some_and(|s| (0..=100).contains(&s))
    {
        return bad("swappiness must be a number from 0 to 100");
    }
    Ok(())
}

/// Links name other containers of the task, and links and `volumesFrom`
/// together have no cycle (the agent creates and starts a container after
/// the ones it takes volumes from or links to).
pub(super) fn start_order(containers: &[ContainerDefinition]) -> Result<()> {
    let index = |n: &str| containers.iter().position(|c| c.name() == n);
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); containers.len()];
    for (i, c) in containers.iter().enumerate() {
        for link in c.links.as_deref().unwrap_or_default() {
            let target = link.split_once(':').map_or(link.as_str(), |(t, _)| t);
            match index(target) {
                Some(j) if j != i => after[i].push(j),
                _ => {
                    return Err(refuse(format!(
                        "Container '{}': link '{link}' does not name another container of this task definition.",
                        c.name()
                    )));
                }
            }
        }
        for vf in c.volumes_from.as_deref().unwrap_or_default() {
            if let Some(j) = vf.source_container.as_deref().and_then(index) {
                after[i].push(j);
            }
        }
        for dep in c.depends_on.as_deref().unwrap_or_default() {
            let target = dep.container_name.as_deref().unwrap_or_default();
            let condition = dep.condition.as_deref().unwrap_or_default();
            let Some(j) = index(target) else { continue };
            let t = &containers[j];
            match condition {
                "START" => {}
                "COMPLETE" | "SUCCESS" if t.is_essential() => {
                    return Err(refuse(format!(
                        "Container '{}': dependsOn condition {condition} cannot name the essential container '{target}' (an essential container that exits stops the task).",
                        c.name()
                    )));
                }
                "COMPLETE" | "SUCCESS" => {}
                "HEALTHY" if t.health_check.is_none() => {
                    return Err(refuse(format!(
                        "Container '{}': dependsOn condition HEALTHY needs a healthCheck on '{target}'.",
                        c.name()
                    )));
                }
                "HEALTHY" => {}
                _ => {
                    return Err(refuse(format!(
                        "Container '{}': dependsOn condition '{condition}' is not one of START, COMPLETE, SUCCESS, HEALTHY.",
                        c.name()
                    )));
                }
            }
            after[i].push(j);
        }
    }
    // Depth-first search for a cycle.
    fn visit(i: usize, after: &[Vec<usize>], state: &mut [u8]) -> bool {
        match state[i] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        state[i] = 1;
        let ok = after[i].iter().all(|j| visit(*j, after, state));
        state[i] = 2;
        ok
    }
    let mut state = vec![0u8; containers.len()];
    for (i, c) in containers.iter().enumerate() {
        if !visit(i, &after, &mut state) {
            return Err(refuse(format!(
                "Container '{}': its links, volumesFrom and dependsOn form a cycle; a container can only depend on containers that do not depend on it.",
                c.name()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(v: Value) -> ContainerDefinition {
        serde_json::from_value(v).expect("container")
    }

    #[test]
    fn volumes_follow_ecs_rules() {
        let ok = [
            json!([{"name": "data", "host": {"sourcePath": "/srv/data"}}]),
            json!([{"name": "scratch"}, {"name": "empty", "host": {}}]),
            json!([{"name": "v", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local", "driverOpts": {"type": "tmpfs"}, "labels": {"a": "b"}}}]),
        ];
        for v in ok {
            volumes(v.as_array().unwrap()).unwrap_or_else(|e| panic!("{v}: {}", e.message));
        }
        let bad = [
            (json!([{"name": "a b"}]), "not valid"),
            (json!([{"name": "a"}, {"name": "a"}]), "used twice"),
            (
                json!([{"name": "a", "host": {"sourcePath": "relative"}}]),
                "absolute",
            ),
            (
                json!([{"name": "a", "efsVolumeConfiguration": {}}]),
                "AWS file system",
            ),
            (
                json!([{"name": "a", "dockerVolumeConfiguration": {"scope": "global"}}]),
                "scope",
            ),
            (
                json!([{"name": "a", "dockerVolumeConfiguration": {"autoprovision": true}}]),
                "autoprovision",
            ),
            (
                json!([{"name": "a", "host": {"sourcePath": "/x"}, "dockerVolumeConfiguration": {}}]),
                "choose one",
            ),
        ];
        for (v, expected) in bad {
            let e = volumes(v.as_array().unwrap()).expect_err(&v.to_string());
            assert!(e.message.contains(expected), "{v}: {}", e.message);
        }
    }

    #[test]
    fn container_options_follow_ecs_rules() {
        let good = container(json!({"name": "app", "memory": 64,
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
            "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.5"}],
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
            "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
            "mountPoints": [{"sourceVolume": "v", "containerPath": "/data"}],
            "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                "initProcessEnabled": true, "sharedMemorySize": 64, "maxSwap": 0, "swappiness": 10,
                "tmpfs": [{"containerPath": "/run", "size": 16, "mountOptions": ["noexec"]}],
                "devices": [{"hostPath": "/dev/null", "containerPath": "/dev/nothing", "permissions": ["read"]}]}}));
        check(&good, NetworkMode::Bridge).unwrap_or_else(|e| panic!("{}", e.message));
        let bad = [
            (
                json!({"ulimits": [{"name": "files", "softLimit": 1, "hardLimit": 2}]}),
                "not one of",
            ),
            (
                json!({"ulimits": [{"name": "nofile", "softLimit": 3, "hardLimit": 2}]}),
                "softLimit",
            ),
            (
                json!({"extraHosts": [{"hostname": "db", "ipAddress": "nope"}]}),
                "extraHosts",
            ),
            (
                json!({"logConfiguration": {"logDriver": "awsfirelens"}}),
                "FireLens",
            ),
            (
                json!({"logConfiguration": {"logDriver": "pigeon"}}),
                "not one of",
            ),
            (
                json!({"systemControls": [{"namespace": "net.ipv4.ip_forward", "value": "1"}]}),
                "networkMode 'host'",
            ),
            (
                json!({"mountPoints": [{"sourceVolume": "v", "containerPath": "data"}]}),
                "absolute containerPath",
            ),
            (
                json!({"linuxParameters": {"tmpfs": [{"containerPath": "/run"}]}}),
                "tmpfs",
            ),
            (
                json!({"linuxParameters": {"devices": [{"hostPath": "/dev/x", "permissions": ["all"]}]}}),
                "devices",
            ),
            (json!({"linuxParameters": {"maxSwap": 10}}), "memory"),
            (
                json!({"linuxParameters": {"swappiness": 101}}),
                "swappiness",
            ),
            (
                json!({"linuxParameters": {"capabilities": {"add": "NET_ADMIN"}}}),
                "capabilities",
            ),
            (json!({"healthCheck": {"command": ["true"]}}), "CMD"),
            (
                json!({"healthCheck": {"command": ["CMD", "true"], "interval": 1}}),
                "interval",
            ),
            (
                json!({"healthCheck": {"command": ["CMD-SHELL", "true"], "retries": 11}}),
                "retries",
            ),
            (json!({"startTimeout": 500}), "startTimeout"),
            (json!({"secrets": [{"name": "DB_PASSWORD"}]}), "valueFrom"),
        ];
        for (mut v, expected) in bad {
            v["name"] = json!("app");
            let e = check(&container(v.clone()), NetworkMode::Host).expect_err(&v.to_string());
            assert!(e.message.contains(expected), "{v}: {}", e.message);
        }
    }

    #[test]
    fn links_and_volumes_from_must_not_form_a_cycle() {
        let a_b = vec![
            container(json!({"name": "a", "links": ["b:db"]})),
            container(json!({"name": "b", "volumesFrom": [{"sourceContainer": "c"}]})),
            container(json!({"name": "c"})),
        ];
        start_order(&a_b).unwrap_or_else(|e| panic!("{}", e.message));
        let cycle = vec![
            container(json!({"name": "a", "links": ["b"]})),
            container(json!({"name": "b", "volumesFrom": [{"sourceContainer": "a"}]})),
        ];
        assert!(start_order(&cycle).unwrap_err().message.contains("cycle"));
        let unknown = vec![container(json!({"name": "a", "links": ["ghost"]}))];
        assert!(start_order(&unknown).unwrap_err().message.contains("ghost"));
        let waits = vec![
            container(
                json!({"name": "a", "dependsOn": [{"containerName": "b", "condition": "HEALTHY"}]}),
            ),
            container(json!({"name": "b", "healthCheck": {"command": ["CMD", "true"]}})),
        ];
        start_order(&waits).unwrap_or_else(|e| panic!("{}", e.message));
        let bad = [
            (
                json!([{"name": "a", "dependsOn": [{"containerName": "b", "condition": "HEALTHY"}]}, {"name": "b"}]),
                "needs a healthCheck",
            ),
            (
                json!([{"name": "a", "dependsOn": [{"containerName": "b", "condition": "SUCCESS"}]}, {"name": "b"}]),
                "essential",
            ),
            (
                json!([{"name": "a", "dependsOn": [{"containerName": "b", "condition": "READY"}]}, {"name": "b"}]),
                "not one of",
            ),
            (
                json!([{"name": "a", "dependsOn": [{"containerName": "b", "condition": "START"}]}, {"name": "b", "links": ["a"]}]),
                "cycle",
            ),
        ];
        for (v, expected) in bad {
            let cs: Vec<ContainerDefinition> =
                serde_json::from_value(v.clone()).expect("containers");
            let e = start_order(&cs).expect_err(&v.to_string());
            assert!(e.message.contains(expected), "{v}: {}", e.message);
        }
    }
}
