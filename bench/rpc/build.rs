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
        // `Chunk.data` as `bytes::Bytes`, so the download server hands out
        // clones of one buffer instead of copying it into a `Vec` per chunk.
        // The echo keeps `Vec<u8>` (what the unary harness passes around).
        .bytes(".msgwire.bench.echo.Chunk.data")
        .compile_fds(descriptors)?;
    Ok(())
}
