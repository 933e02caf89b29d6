//! What Berth's control plane and its agents share: the gRPC contract (the
//! `.proto` files and the code tonic/prost generate from them), and the
//! edges both binaries present to an operator the same way: the systemd
//! notification protocol, logging setup, and the process metrics. The
//! control plane and the agent depend on this crate and never on each other.

pub mod exposition;
pub mod logging;
pub mod process_metrics;
pub mod systemd;

/// `berth.agent.v1`: registration and the level-triggered session stream.
pub mod agent {
    /// Version 1 of the agent protocol.
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("berth.agent.v1");

        fn redacted(secret: &str) -> &'static str {
            if secret.is_empty() { "" } else { "<redacted>" }
        }

        impl std::fmt::Debug for RegisterRequest {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("RegisterRequest")
                    .field("cluster", &self.cluster)
                    .field("container_instance_arn", &self.container_instance_arn)
                    .field("instance_id", &self.instance_id)
                    .field("cpu", &self.cpu)
                    .field("memory_mib", &self.memory_mib)
                    .field("reserved_tcp_ports", &self.reserved_tcp_ports)
                    .field("reserved_udp_ports", &self.reserved_udp_ports)
                    .field("attributes", &self.attributes)
                    .field("version_info", &self.version_info)
                    .field("launch_type", &self.launch_type)
                    .field("capacity_provider", &self.capacity_provider)
                    .field("gpu_ids", &self.gpu_ids)
                    .field(
                        "instance_secret",
                        &self.instance_secret.as_deref().map(redacted),
                    )
                    .finish()
            }
        }

        impl std::fmt::Debug for RegisterResponse {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("RegisterResponse")
                    .field("container_instance_arn", &self.container_instance_arn)
                    .field("cluster_arn", &self.cluster_arn)
                    .field("instance_secret", &redacted(&self.instance_secret))
                    .finish()
            }
        }

        impl std::fmt::Debug for Hello {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Hello")
                    .field("container_instance_arn", &self.container_instance_arn)
                    .field("instance_secret", &redacted(&self.instance_secret))
                    .finish()
            }
        }

        #[cfg(test)]
        mod tests {
            #[test]
            fn secrets_do_not_print() {
                let hello = super::Hello {
                    container_instance_arn: "arn".into(),
                    instance_secret: "s3cr3t".into(),
                };
                let request = super::RegisterRequest {
                    instance_secret: Some("s3cr3t".into()),
                    ..Default::default()
                };
                let response = super::RegisterResponse {
                    instance_secret: "s3cr3t".into(),
                    ..Default::default()
                };
                for printed in [
                    format!("{hello:?}"),
                    format!("{request:?}"),
                    format!("{response:?}"),
                ] {
                    assert!(
                        !printed.contains("s3cr3t") && printed.contains("<redacted>"),
                        "{printed}"
                    );
                }
            }
        }
    }
}

/// `berth.ecs.v1`: the public ECS API over gRPC, field for field the JSON
/// API's shapes (messages also implement serde with the proto3 JSON mapping,
/// whose names are the ECS wire names).
pub mod ecs {
    /// Version 1 of the public API.
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("berth.ecs.v1");
        include!(concat!(env!("OUT_DIR"), "/berth.ecs.v1.serde.rs"));
    }
}

/// The encoded `FileDescriptorSet` of every Berth proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/berth_descriptor.bin"));
