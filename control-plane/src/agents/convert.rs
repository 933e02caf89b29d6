//! Translation between the agent protocol (`berth.agent.v1`) and the service
//! layer's types.

use crate::model::container_instance::VersionInfo;
use crate::model::task::{ContainerStatus, NetworkBinding, TaskStatus};
use crate::model::{Attribute, Timestamp};
use crate::service::{ContainerReport, DesiredContainer, DesiredSet, RegisterInstance, TaskReport};
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
            })
            .collect(),
        pull_started_at: millis(r.pull_started_at_ms),
        pull_stopped_at: millis(r.pull_stopped_at_ms),
        execution_stopped_at: millis(r.execution_stopped_at_ms),
        stop_code: r.stop_code,
        stopped_reason: r.stopped_reason,
    }
}
