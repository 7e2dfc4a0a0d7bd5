//! Compiles `proto/echo.proto` for the tonic peer.
//!
//! `protox` parses the `.proto` in pure Rust and hands a `FileDescriptorSet`
//! to `tonic-prost-build`, so no system `protoc` is needed.

fn main() -> anyhow::Result<()> {
    let proto = "proto/echo.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
