//! The gRPC contract between Berth's control plane and its agents.
//!
//! This crate holds the `.proto` files and the code tonic/prost generate from
//! them, nothing else: the control plane and the agent depend on it and never
//! on each other.

/// `berth.agent.v1`: registration and the level-triggered session stream.
pub mod agent {
    /// Version 1 of the agent protocol.
    pub mod v1 {
        #![allow(missing_docs, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("berth.agent.v1");
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
