//! Connections counted while they are open: a guard that holds the count, and
//! listeners whose accepted connections carry one.
//!
//! ```text
//!  Counted<TcpListener> ── accept ──► CountedIo { io: TcpStream, guard }
//!                                       reads and writes go to io;
//!                                       dropped: the open count goes down
//! ```

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Metrics;

/// What carries a connection: the `transport` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// RPC over TCP: `tcp`.
    Tcp,
    /// RPC over a Unix socket: `unix`.
    Unix,
    /// RPC over WebSocket: `websocket`.
    WebSocket,
    /// HTTP requests (the JSON and MessagePack endpoints): `http`.
    Http,
}

impl Transport {
    /// Every transport, in the order metrics list them.
    pub const ALL: [Transport; 4] = [
        Transport::Tcp,
        Transport::Unix,
        Transport::WebSocket,
        Transport::Http,
    ];

    /// The label value: `tcp`, `unix`, `websocket` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Unix => "unix",
            Transport::WebSocket => "websocket",
            Transport::Http => "http",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// One open connection in `msgwire_connections_open`: counted when made (and in
/// `msgwire_connections_accepted_total`), uncounted when dropped.
#[must_use = "the connection counts as open only while the guard lives"]
pub struct ConnectionGuard {
    metrics: Metrics,
    transport: Transport,
}

impl ConnectionGuard {
    pub(super) fn new(metrics: Metrics, transport: Transport) -> Self {
        metrics.connections_accepted(transport).inc();
        metrics.connections_open(transport).inc();
        Self { metrics, transport }
    }

    /// The transport it counts as.
    pub fn transport(&self) -> Transport {
        self.transport
    }
}

impl fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("transport", &self.transport)
            .finish()
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connections_open(self.transport).dec();
    }
}

/// A listener whose connections are counted while open: a [`msgwire_rpc::Listener`]
/// or an [`axum::serve::Listener`], whichever the wrapped one is.
#[derive(Debug)]
pub struct Counted<L> {
    listener: L,
    metrics: Metrics,
    transport: Transport,
}

impl<L> Counted<L> {
    pub(super) fn new(listener: L, metrics: Metrics, transport: Transport) -> Self {
        Self {
            listener,
            metrics,
            transport,
        }
    }

    /// The wrapped listener.
    pub fn get_ref(&self) -> &L {
        &self.listener
    }

    fn wrap<Io>(&self, io: Io) -> CountedIo<Io> {
        CountedIo {
            io,
            guard: self.metrics.connection(self.transport),
        }
    }
}

impl<L: msgwire_rpc::Listener> msgwire_rpc::Listener for Counted<L> {
    type Io = CountedIo<L::Io>;

    async fn accept(&mut self) -> io::Result<Self::Io> {
        let io = self.listener.accept().await?;
        Ok(self.wrap(io))
    }

    fn peer(io: &Self::Io) -> Option<String> {
        L::peer(&io.io)
    }
}

impl<L: axum::serve::Listener> axum::serve::Listener for Counted<L> {
    type Io = CountedIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.listener.accept().await;
        (self.wrap(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An accepted connection that counts as open until dropped; reads and writes go
/// straight to the wrapped `Io`.
#[derive(Debug)]
pub struct CountedIo<Io> {
    io: Io,
    guard: ConnectionGuard,
}

impl<Io> CountedIo<Io> {
    /// The connection.
    pub fn get_ref(&self) -> &Io {
        &self.io
    }

    /// The connection, mutably.
    pub fn get_mut(&mut self) -> &mut Io {
        &mut self.io
    }

    /// The transport it counts as.
    pub fn transport(&self) -> Transport {
        self.guard.transport()
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for CountedIo<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for CountedIo<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
