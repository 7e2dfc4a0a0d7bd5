//! msgwire's own RPC runtime (`crates/msgwire-rpc`) as a benchmark peer.
//!
//! The server registers `echo` as a raw method (params and result as MessagePack
//! bytes, no serde types, no tree), the way a gateway or proxy would; the client sends
//! `[bin payload]` in the msgpack-rpc dialect and takes the bin back as a value. One `connect`
//! is one TCP connection; clones of a client share it and multiplex calls on it.
//!
//! The download mode's msgwire peer is the `impl DownloadPeer for Msgwire` at the
//! end of this file.

use std::future::IntoFuture;
use std::net::SocketAddr;

use msgwire_rpc::{Client, Dialect, Router, RpcError, Server, Value};
use tokio::net::TcpListener;

use msgwire_services::files::{Data, DownloadChunk};

use crate::download::DownloadPeer;
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

// Download mode (`rpc-bench download`): a server stream "download" with params
// `[size, chunk_size]` whose items are the `download` service's own chunk shape,
// `{data (bin), offset, size, total_size}` (`msgwire_services::files::DownloadChunk`),
// cut from one shared buffer as the raw and tonic peers do, so that producing the data
// costs nothing; the client decodes every item into that shape (its `data` into
// `Bytes`, as tonic's generated code does) and counts the bytes.

/// Whether `impl DownloadPeer for Msgwire` is written.
pub const DOWNLOAD_AVAILABLE: bool = true;

impl DownloadPeer for Msgwire {
    const NAME: &'static str = "msgwire";
    type Conn = Client;

    async fn serve(listener: TcpListener) -> anyhow::Result<()> {
        let router = Router::new().server_stream("download", |_ctx, (size, chunk): (u64, u32)| {
            let buf = crate::download::chunk_buffer(chunk as usize);
            let step = (chunk as u64).max(1);
            futures::stream::iter((0..size.div_ceil(step)).map(move |i| {
                let offset = i * step;
                let n = (size - offset).min(step) as usize;
                let data = if n == buf.len() {
                    buf.clone()
                } else {
                    buf.slice(..n)
                };
                Ok::<_, RpcError>(DownloadChunk {
                    data: Data(data),
                    offset,
                    size: n as u64,
                    total_size: size,
                })
            }))
        });
        Server::new(router)
            .serve_tcp(listener)
            .into_future()
            .await?;
        Ok(())
    }

    async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        Ok(Client::connect_tcp(addr, Dialect::MsgpackRpc).await?)
    }

    async fn download(conn: &mut Client, size: u64, chunk: u32) -> anyhow::Result<u64> {
        let mut items = conn
            .server_stream::<_, DownloadChunk>("download", &(size, chunk))
            .await?;
        let mut bytes = 0u64;
        while let Some(item) = futures::StreamExt::next(&mut items).await {
            let item = item?;
            anyhow::ensure!(
                item.offset == bytes,
                "chunk at {} after {bytes} bytes",
                item.offset
            );
            bytes += item.data.0.len() as u64;
        }
        Ok(bytes)
    }
}
