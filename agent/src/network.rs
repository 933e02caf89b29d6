//! Task networking on Docker: network modes, port mappings, and the network
//! bindings reported back once a container runs.
//!
//! `bridge` (the default) publishes each mapping on all host addresses; a
//! `hostPort` of 0 or none lets Docker choose a free host port from the
//! kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`).
//! `host` shares the host's network stack, so container ports are host
//! ports. `none` has no external networking.

use berth_proto::agent::v1 as pb;
use bollard::models::{ContainerInspectResponse, PortBinding, PortMap};

/// Docker's `HostConfig.NetworkMode` for an ECS network mode; an awsvpc
/// task's containers join its pause container (`pause`: its id or name).
pub fn docker_network_mode(mode: &str, pause: Option<&str>) -> String {
    match (mode, pause) {
        ("host", _) => "host".to_owned(),
        ("none", _) => "none".to_owned(),
        ("awsvpc", Some(pause)) => format!("container:{pause}"),
        _ => "bridge".to_owned(),
    }
}

fn port_key(pm: &pb::PortMapping) -> String {
    let protocol = if pm.protocol == "udp" { "udp" } else { "tcp" };
    format!("{}/{protocol}", pm.container_port)
}

/// `ExposedPorts` and `PortBindings` for a container.
pub fn port_config(mode: &str, mappings: &[pb::PortMapping]) -> (Vec<String>, Option<PortMap>) {
    if mode == "none" || mappings.is_empty() {
        return (Vec::new(), None);
    }
    let exposed: Vec<String> = mappings.iter().map(port_key).collect();
    if mode == "host" {
        return (exposed, None);
    }
    if mode == "awsvpc" {
        // The task's own address: nothing is published on the host, and
        // containers in the pause container's namespace cannot expose ports.
        return (Vec::new(), None);
    }
    let mut map = PortMap::new();
    for pm in mappings {
        let host_port = if pm.host_port == 0 {
            String::new()
        } else {
            pm.host_port.to_string()
        };
        map.entry(port_key(pm))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: None,
                host_port: Some(host_port),
            });
    }
    (exposed, Some(map))
}

/// The host ports a running container is reachable on.
pub fn network_bindings(
    mode: &str,
    mappings: &[pb::PortMapping],
    inspect: &ContainerInspectResponse,
) -> Vec<pb::NetworkBinding> {
    match mode {
        "none" | "awsvpc" => Vec::new(),
        "host" => mappings
            .iter()
            .map(|pm| pb::NetworkBinding {
                bind_ip: "0.0.0.0".to_owned(),
                container_port: pm.container_port,
                host_port: pm.container_port,
                protocol: if pm.protocol == "udp" { "udp" } else { "tcp" }.to_owned(),
            })
            .collect(),
        _ => {
            let ports = inspect
                .network_settings
                .as_ref()
                .and_then(|n| n.ports.as_ref());
            let Some(ports) = ports else {
                return Vec::new();
            };
            let mut out = Vec::new();
            let mut keys: Vec<&String> = ports.keys().collect();
            keys.sort();
            for key in keys {
                let Some((port, protocol)) = key.split_once('/') else {
                    continue;
                };
                let Ok(container_port) = port.parse::<u32>() else {
                    continue;
                };
                for b in ports[key].iter().flatten() {
                    let Some(host_port) =
                        b.host_port.as_deref().and_then(|p| p.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    out.push(pb::NetworkBinding {
                        bind_ip: b
                            .host_ip
                            .clone()
                            .filter(|ip| !ip.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".to_owned()),
                        container_port,
                        host_port,
                        protocol: protocol.to_owned(),
                    });
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::NetworkSettings;

    fn mapping(container_port: u32, host_port: u32, protocol: &str) -> pb::PortMapping {
        pb::PortMapping {
            container_port,
            host_port,
            protocol: protocol.into(),
        }
    }

    #[test]
    fn bridge_publishes_static_and_dynamic_ports() {
        let (exposed, bindings) =
            port_config("bridge", &[mapping(80, 8080, "tcp"), mapping(53, 0, "udp")]);
        assert_eq!(exposed, vec!["80/tcp", "53/udp"]);
        let bindings = bindings.unwrap();
        assert_eq!(
            bindings["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
        assert_eq!(
            bindings["53/udp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        assert!(port_config("none", &[mapping(80, 0, "tcp")]).1.is_none());
        assert!(port_config("host", &[mapping(80, 0, "tcp")]).1.is_none());
    }

    #[test]
    fn bindings_come_from_inspect() {
        let mut ports = PortMap::new();
        ports.insert(
            "80/tcp".into(),
            Some(vec![PortBinding {
                host_ip: Some("0.0.0.0".into()),
                host_port: Some("49153".into()),
            }]),
        );
        let inspect = ContainerInspectResponse {
            network_settings: Some(NetworkSettings {
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        };
        let b = network_bindings("bridge", &[mapping(80, 0, "tcp")], &inspect);
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].container_port, b[0].host_port), (80, 49153));
        let h = network_bindings("host", &[mapping(8080, 0, "tcp")], &inspect);
        assert_eq!(h[0].host_port, 8080);
    }
}
