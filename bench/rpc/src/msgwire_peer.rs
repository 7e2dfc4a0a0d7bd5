//! Slot for msgwire's own RPC runtime (`crates/msgwire-rpc`).
//!
//! Not wired in yet: `msgwire-rpc` is still being written. To add it:
//!
//! 1. In `bench/rpc/Cargo.toml` add
//!    `msgwire-rpc = { path = "../../crates/msgwire-rpc" }`.
//! 2. Fill in [`Msgwire::serve`], [`Msgwire::connect`] and
//!    [`MsgwireClient`]'s `echo` below (an echo method taking and returning
//!    the 64-byte payload; one `connect` = one TCP connection; clones of a
//!    client share its connection and multiplex calls on it).
//! 3. Set [`AVAILABLE`] to `true`. `main.rs` already lists this peer first,
//!    and the ratio table uses it as the baseline once it is there.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::peer::{EchoClient, Peer};

/// Whether this peer is implemented; the harness skips it while `false`.
pub const AVAILABLE: bool = false;

/// The msgwire peer.
#[derive(Debug)]
pub struct Msgwire;

/// A msgwire RPC client on one connection (placeholder until msgwire-rpc
/// exists: it will hold the msgwire-rpc client handle).
#[derive(Debug, Clone)]
pub struct MsgwireClient {
    _addr: SocketAddr,
}

impl EchoClient for MsgwireClient {
    async fn echo(&self, _payload: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        anyhow::bail!("msgwire-rpc is not wired into the benchmark yet")
    }
}

impl Peer for Msgwire {
    const NAME: &'static str = "msgwire";
    type Client = MsgwireClient;

    async fn serve(_listener: TcpListener) -> anyhow::Result<()> {
        anyhow::bail!("msgwire-rpc is not wired into the benchmark yet")
    }

    async fn connect(addr: SocketAddr) -> anyhow::Result<MsgwireClient> {
        Ok(MsgwireClient { _addr: addr })
    }
}
