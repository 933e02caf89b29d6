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
