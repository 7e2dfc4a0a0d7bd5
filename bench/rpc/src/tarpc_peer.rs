//! tarpc: its serde transport over TCP (length-delimited frames) with the
//! bincode format, default client and server configuration.

use std::net::SocketAddr;

use anyhow::Context as _;
use futures::StreamExt as _;
use tarpc::serde_transport::Transport;
use tarpc::server::{BaseChannel, Channel as _};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};
use tokio::net::{TcpListener, TcpStream};

use crate::peer::{self, Peer};

#[tarpc::service]
trait Echo {
    async fn echo(payload: Vec<u8>) -> Vec<u8>;
}

#[derive(Debug, Clone, Copy)]
struct EchoService;

impl Echo for EchoService {
    async fn echo(self, _: context::Context, payload: Vec<u8>) -> Vec<u8> {
        payload
    }
}

/// The tarpc peer.
#[derive(Debug)]
pub struct Tarpc;

/// A tarpc client on one TCP connection; clones share it.
#[derive(Debug, Clone)]
pub struct TarpcClient {
    inner: EchoClient,
}

impl peer::EchoClient for TarpcClient {
    async fn echo(&self, payload: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        Ok(self.inner.echo(context::current(), payload).await?)
    }
}

impl Peer for Tarpc {
    const NAME: &'static str = "tarpc";
    type Client = TarpcClient;

    async fn serve(listener: TcpListener) -> anyhow::Result<()> {
        loop {
            let (stream, _) = listener.accept().await.context("tarpc accept")?;
            stream.set_nodelay(true)?;
            let transport = Transport::from((stream, Bincode::default()));
            // tarpc's usual shape: one task drives the connection and each
            // request runs as its own task.
            let requests = BaseChannel::with_defaults(transport).execute(EchoService.serve());
            tokio::spawn(requests.for_each(|call| async move {
                tokio::spawn(call);
            }));
        }
    }

    async fn connect(addr: SocketAddr) -> anyhow::Result<TarpcClient> {
        let stream = TcpStream::connect(addr).await.context("tarpc connect")?;
        stream.set_nodelay(true)?;
        let transport = Transport::from((stream, Bincode::default()));
        let inner = EchoClient::new(client::Config::default(), transport).spawn();
        Ok(TarpcClient { inner })
    }
}
