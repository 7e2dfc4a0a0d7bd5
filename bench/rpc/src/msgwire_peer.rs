//! msgwire's own RPC runtime (`crates/msgwire-rpc`) as a benchmark peer.
//!
//! The server registers `echo` as a raw method (params and result as MessagePack
//! bytes, no serde types, no tree), the way a gateway or proxy would; the client sends
//! `[bin payload]` in the msgpack-rpc dialect and takes the bin back as a value. One `connect`
//! is one TCP connection; clones of a client share it and multiplex calls on it.

use std::future::IntoFuture;
use std::net::SocketAddr;

use msgwire_rpc::{Client, Dialect, Router, RpcError, Server, Value};
use tokio::net::TcpListener;

use crate::peer::{EchoClient, Peer};

/// Whether this peer is implemented; the harness skips it while `false`.
pub const AVAILABLE: bool = true;

/// The msgwire peer.
#[derive(Debug)]
pub struct Msgwire;

/// A msgwire RPC client on one connection.
#[derive(Debug, Clone)]
pub struct MsgwireClient {
    client: Client,
}

impl EchoClient for MsgwireClient {
    async fn echo(&self, payload: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let params = Value::Array(vec![Value::Binary(payload)]);
        match self.client.call("echo", params).await? {
            Value::Binary(bytes) => Ok(bytes),
            other => anyhow::bail!("echo answered {other}, not bytes"),
        }
    }
}

impl Peer for Msgwire {
    const NAME: &'static str = "msgwire";
    type Client = MsgwireClient;

    async fn serve(listener: TcpListener) -> anyhow::Result<()> {
        let router = Router::new().method_raw("echo", |_ctx, params| async move {
            match params.array_items() {
                Some(mut items) if params.array_len() == Some(1) => items
                    .next()
                    .ok_or_else(|| RpcError::invalid_argument("echo takes one argument")),
                _ => Err(RpcError::invalid_argument("echo takes one argument")),
            }
        });
        Server::new(router)
            .serve_tcp(listener)
            .into_future()
            .await?;
        Ok(())
    }

    async fn connect(addr: SocketAddr) -> anyhow::Result<MsgwireClient> {
        let client = Client::connect_tcp(addr, Dialect::MsgpackRpc).await?;
        Ok(MsgwireClient { client })
    }
}
