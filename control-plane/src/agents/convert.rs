//! Translation between the agent protocol (`berth.agent.v1`) and the service
//! layer's types.

use crate::app::{ContainerReport, DesiredContainer, DesiredSet, RegisterInstance, TaskReport};
use crate::model::container_instance::VersionInfo;
use crate::model::task::{ContainerStatus, NetworkBinding, TaskStatus};
use crate::model::{Attribute, Timestamp};
use berth_proto::agent::v1 as pb;
use std::collections::BTreeSet;

/// A registration request; `Err` names the invalid field.
pub fn register(r: pb::RegisterRequest) -> Result<RegisterInstance, String> {
    let ports = |ports: &[u32], what: &str| -> Result<BTreeSet<u16>, String> {
        ports
            .iter()
            .map(|p| match u16::try_from(*p) {
                Ok(p @ 1..) => Ok(p),
                _ => Err(format!("reserved {what} port {p} is outside 1-65535")),
            })
            .collect()
    };
    let version = r.version_info.unwrap_or_default();
    Ok(RegisterInstance {
        cluster: r.cluster,
        container_instance_arn: r.container_instance_arn.filter(|a| !a.is_empty()),
        instance_secret: r
            .instance_secret
            .filter(|s| !s.is_empty())
            .map(crate::auth::Secret::new),
        ec2_instance_id: r.instance_id,
        cpu: r.cpu,
        memory: r.memory_mib,
        reserved_tcp: ports(&r.reserved_tcp_ports, "TCP")?,
        reserved_udp: ports(&r.reserved_udp_ports, "UDP")?,
        attributes: r
            .attributes
            .into_iter()
            .filter(|a| !a.name.is_empty())
            .map(|a| Attribute {
                name: a.name,
                value: a.value,
                target_type: None,
                target_id: None,
            })
            .collect(),
        version_info: VersionInfo {
            agent_version: Some(version.agent_version).filter(|v| !v.is_empty()),
            agent_hash: Some(version.agent_hash).filter(|v| !v.is_empty()),
            docker_version: Some(version.docker_version).filter(|v| !v.is_empty()),
        },
        launch_type: if r.launch_type.is_empty() {
            "EXTERNAL".to_owned()
        } else {
            r.launch_type
        },
        capacity_provider: r.capacity_provider.filter(|p| !p.is_empty()),
        gpu_ids: r.gpu_ids,
    })
}

/// The desired set as the agent receives it.
pub fn desired_tasks(generation: u64, mut set: DesiredSet) -> pb::ControlMessage {
    let tasks = std::mem::take(&mut set.tasks)
        .into_iter()
        .map(|t| pb::TaskSpec {
            task_arn: t.task_arn,
            cluster: t.cluster,
            family: t.family,
            revision: t.revision,
            desired_status: match t.desired_status {
                TaskStatus::Stopped => pb::DesiredStatus::Stopped,
                _ => pb::DesiredStatus::Running,
            } as i32,
            network_mode: t.network_mode,
            containers: t.containers.into_iter().map(container_spec).collect(),
            cpu: t.cpu,
            memory_mib: t.memory,
            stop_reason: t.stop_reason,
            volumes: t.volumes.iter().map(volume).collect(),
            awsvpc: t.awsvpc.map(|vpc| pb::Awsvpc {
                subnets: vpc.subnets,
                security_groups: vpc.security_groups,
            }),
        })
        .collect();
    pb::ControlMessage {
        kind: Some(pb::control_message::Kind::DesiredTasks(pb::DesiredTasks {
            generation,
            tasks,
            partial: set.partial,
            removed_task_arns: set.removed,
        })),
    }
}

fn container_spec(desired: DesiredContainer) -> pb::ContainerSpec {
    let c = desired.definition;
    let essential = c.is_essential();
    pb::ContainerSpec {
        name: c.name.unwrap_or_default(),
        image: c.image.unwrap_or_default(),
        entry_point: c.entry_point.map(|values| pb::StringList { values }),
        command: c.command.map(|values| pb::StringList { values }),
        environment: c
            .environment
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                Some(pb::KeyValue {
                    name: kv.name?,
                    value: kv.value.unwrap_or_default(),
                })
            })
            .collect(),
        essential,
        cpu: c.cpu,
        memory_mib: c.memory,
        memory_reservation_mib: c.memory_reservation,
        port_mappings: c
            .port_mappings
            .unwrap_or_default()
            .into_iter()
            .map(|pm| pb::PortMapping {
                container_port: pm
                    .container_port
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(0),
                host_port: pm
                    .host_port
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(0),
                protocol: pm.protocol().to_owned(),
            })
            .collect(),
        stop_timeout: c.stop_timeout.and_then(|t| u32::try_from(t).ok()),
        docker_labels: c.docker_labels.unwrap_or_default().into_iter().collect(),
        working_directory: c.working_directory,
        user: c.user,
        container_arn: desired.arn,
        environment_files: c
            .environment_files
            .unwrap_or_default()
            .into_iter()
            .map(|f| pb::EnvironmentFile {
                value: f.value.unwrap_or_default(),
                r#type: f.kind.unwrap_or_default(),
            })
            .collect(),
        gpu_ids: desired.gpu_ids,
        privileged: c.privileged.unwrap_or(false),
        readonly_root_filesystem: c.readonly_root_filesystem.unwrap_or(false),
        ulimits: c
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .map(|u| pb::Ulimit {
                name: u.name.unwrap_or_default(),
                soft: u.soft_limit.unwrap_or(0),
                hard: u.hard_limit.unwrap_or(0),
            })
            .collect(),
        linux_parameters: c.linux_parameters.as_ref().map(linux_parameters),
        hostname: c.hostname,
        extra_hosts: c
            .extra_hosts
            .unwrap_or_default()
            .into_iter()
            .map(|h| pb::HostEntry {
                hostname: h.hostname.unwrap_or_default(),
                ip_address: h.ip_address.unwrap_or_default(),
            })
            .collect(),
        dns_servers: c.dns_servers.unwrap_or_default(),
        dns_search_domains: c.dns_search_domains.unwrap_or_default(),
        pseudo_terminal: c.pseudo_terminal.unwrap_or(false),
        interactive: c.interactive.unwrap_or(false),
        log_configuration: c.log_configuration.as_ref().map(|l| pb::LogConfiguration {
            driver: text(l, "logDriver").unwrap_or_default(),
            options: string_map(l.get("options")),
        }),
        docker_security_options: c.docker_security_options.unwrap_or_default(),
        system_controls: c
            .system_controls
            .unwrap_or_default()
            .iter()
            .filter_map(|s| Some((text(s, "namespace")?, text(s, "value")?)))
            .collect(),
        mount_points: c
            .mount_points
            .unwrap_or_default()
            .into_iter()
            .map(|m| pb::MountPoint {
                source_volume: m.source_volume.unwrap_or_default(),
                container_path: m.container_path.unwrap_or_default(),
                read_only: m.read_only.unwrap_or(false),
            })
            .collect(),
        volumes_from: c
            .volumes_from
            .unwrap_or_default()
            .into_iter()
            .map(|v| pb::VolumeFrom {
                source_container: v.source_container.unwrap_or_default(),
                read_only: v.read_only.unwrap_or(false),
            })
            .collect(),
        links: c
            .links
            .unwrap_or_default()
            .into_iter()
            .map(|l| match l.split_once(':') {
                Some((container, alias)) => pb::Link {
                    container: container.to_owned(),
                    alias: Some(alias.to_owned()),
                },
                None => pb::Link {
                    container: l,
                    alias: None,
                },
            })
            .collect(),
        disable_networking: c.disable_networking.unwrap_or(false),
        health_check: c.health_check.as_ref().map(|h| {
            let secs = |key: &str, default: u32| {
                h.get(key)
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(default)
            };
            pb::HealthCheck {
                command: strings(h.get("command")),
                interval_seconds: secs("interval", 30),
                timeout_seconds: secs("timeout", 5),
                retries: secs("retries", 3),
                start_period_seconds: secs("startPeriod", 0),
            }
        }),
        depends_on: c
            .depends_on
            .unwrap_or_default()
            .into_iter()
            .map(|d| pb::Dependency {
                container: d.container_name.unwrap_or_default(),
                condition: d.condition.unwrap_or_default(),
            })
            .collect(),
        start_timeout: c.start_timeout.and_then(|t| u32::try_from(t).ok()),
        repository_credentials: c
            .repository_credentials
            .and_then(|r| r.credentials_parameter),
        secrets: c
            .secrets
            .unwrap_or_default()
            .into_iter()
            .map(|s| pb::Secret {
                name: s.name.unwrap_or_default(),
                value_from: s.value_from.unwrap_or_default(),
            })
            .collect(),
    }
}

/// A string member of a JSON object (the definition's free-form members are
/// validated at registration, so shapes are known here).
fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_owned)
}

fn int(v: &serde_json::Value, key: &str) -> Option<i64> {
    v.get(key)?.as_i64()
}

fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn string_map(v: Option<&serde_json::Value>) -> std::collections::HashMap<String, String> {
    v.and_then(serde_json::Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

fn linux_parameters(l: &serde_json::Value) -> pb::LinuxParameters {
    let caps = l.get("capabilities");
    pb::LinuxParameters {
        cap_add: strings(caps.and_then(|c| c.get("add"))),
        cap_drop: strings(caps.and_then(|c| c.get("drop"))),
        init_process_enabled: l
            .get("initProcessEnabled")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        tmpfs: l
            .get("tmpfs")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| pb::Tmpfs {
                container_path: text(t, "containerPath").unwrap_or_default(),
                size_mib: int(t, "size").unwrap_or(0),
                mount_options: strings(t.get("mountOptions")),
            })
            .collect(),
        shared_memory_size_mib: int(l, "sharedMemorySize"),
        devices: l
            .get("devices")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .map(|d| pb::Device {
                host_path: text(d, "hostPath").unwrap_or_default(),
                container_path: text(d, "containerPath"),
                permissions: strings(d.get("permissions")),
            })
            .collect(),
        max_swap_mib: int(l, "maxSwap"),
        swappiness: int(l, "swappiness"),
    }
}

/// A task volume as the agent receives it.
pub fn volume(v: &serde_json::Value) -> pb::Volume {
    let docker = v
        .get("dockerVolumeConfiguration")
        .map(|d| pb::DockerVolume {
            scope: text(d, "scope").unwrap_or_else(|| "task".to_owned()),
            autoprovision: d
                .get("autoprovision")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            driver: text(d, "driver"),
            driver_opts: string_map(d.get("driverOpts")),
            labels: string_map(d.get("labels")),
        });
    pb::Volume {
        name: text(v, "name").unwrap_or_default(),
        host_source_path: v.get("host").and_then(|h| text(h, "sourcePath")),
        docker,
    }
}

fn millis(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(Timestamp::from_millis)
}

/// A task report from the agent.
pub fn task_report(r: pb::TaskStateReport) -> TaskReport {
    let last_status =
        match pb::TaskStatus::try_from(r.last_status).unwrap_or(pb::TaskStatus::Unspecified) {
            pb::TaskStatus::Running => TaskStatus::Running,
            pb::TaskStatus::Stopping => TaskStatus::Stopping,
            pb::TaskStatus::Stopped => TaskStatus::Stopped,
            pb::TaskStatus::Pending | pb::TaskStatus::Unspecified => TaskStatus::Pending,
        };
    TaskReport {
        task_arn: r.task_arn,
        last_status,
        containers: r
            .containers
            .into_iter()
            .map(|c| ContainerReport {
                name: c.name,
                last_status: match pb::ContainerStatus::try_from(c.last_status)
                    .unwrap_or(pb::ContainerStatus::Unspecified)
                {
                    pb::ContainerStatus::Running => ContainerStatus::Running,
                    pb::ContainerStatus::Stopped => ContainerStatus::Stopped,
                    _ => ContainerStatus::Pending,
                },
                runtime_id: c.runtime_id,
                exit_code: c.exit_code,
                reason: c.reason,
                network_bindings: c
                    .network_bindings
                    .into_iter()
                    .map(|b| NetworkBinding {
                        bind_ip: b.bind_ip,
                        container_port: i64::from(b.container_port),
                        host_port: i64::from(b.host_port),
                        protocol: b.protocol,
                    })
                    .collect(),
                image_digest: c.image_digest,
                health_status: c.health_status,
            })
            .collect(),
        pull_started_at: millis(r.pull_started_at_ms),
        pull_stopped_at: millis(r.pull_stopped_at_ms),
        execution_stopped_at: millis(r.execution_stopped_at_ms),
        stop_code: r.stop_code,
        stopped_reason: r.stopped_reason,
        health_status: r.health_status,
        network: r.network.map(|n| crate::app::TaskNetwork {
            network: n.network,
            ipv4_address: n.ipv4_address,
            mac_address: n.mac_address,
            interface_id: n.interface_id,
            gateway: n.gateway,
        }),
    }
}
