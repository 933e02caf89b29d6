//! Compiles the `.proto` files with protox (a pure-Rust protobuf compiler), so
//! a fresh clone builds with cargo alone: no `protoc` on the machine.
//!
//! Besides the prost/tonic code it writes the encoded descriptor set (served
//! by gRPC reflection) and, for the public ECS API, pbjson's serde impls
//! (proto3 JSON mapping), which is how the gRPC door reuses the JSON door's
//! decoding and validation field for field.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["berth/agent/v1/agent.proto", "berth/ecs/v1/ecs.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let encoded = descriptors.encode_to_vec();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("berth_descriptor.bin"), &encoded)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // These carry the instance secret: their Debug (in src/lib.rs)
        // redacts it.
        .skip_debug([
            ".berth.agent.v1.RegisterRequest",
            ".berth.agent.v1.RegisterResponse",
            ".berth.agent.v1.Hello",
        ])
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .ignore_unknown_fields()
        .build(&[".berth.ecs.v1"])?;
    Ok(())
}
