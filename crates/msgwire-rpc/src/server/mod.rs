//! The answering side: [`Server`], its limits ([`ServerBuilder`]), and serving
//! listeners ([`Serve`]).
//!
//! Every connection's dialect is detected from its first bytes (at most five, read
//! into a small array before anything else is allocated for the connection):
//!
//! ```text
//! 0x94 / 0x93 ...           msgpack-rpc (an array of 4 or 3)
//! 0x00 l l l  0x8_/0xde/0xdf framed-map   (u32 length, then a map)
//! 0x00 l l l  0x01..0x03     framed-binary (u32 length, then a type byte)
//! anything else              no dialect: the connection is closed at once
//! ```
//!
//! ```no_run
//! use std::time::Duration;
//! use msgwire_rpc::{Router, RpcError, Server};
//!
//! # async fn run() -> std::io::Result<()> {
//! let router = Router::new().method("add", |(a, b): (i64, i64)| async move { Ok::<_, RpcError>(a + b) });
//! let server = Server::builder()
//!     .max_in_flight(256)
//!     .idle_timeout(Some(Duration::from_secs(60)))
//!     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)))
//!     .build(router)
//!     .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7420").await?;
//! server
//!     .serve_tcp(listener)
//!     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await
//! # }
//! ```

mod serve;

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use msgwire_wire::{detect, ConfigError, Detected, Dialect};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::builder::Builder;
use crate::config::{ConnectionConfig, Settings};
use crate::connection::{drive, Handler, Inner as ConnectionInner};
use crate::dispatch::{Dispatcher, LayerStack};
use crate::error::{panic_error, CloseReason};
use crate::{Context, RawValue, Router, RpcError, RpcRequest};

pub use serve::{Listener, Serve, WithGracefulShutdown};

/// Serves a [`Router`] on listeners or single connections, with limits. Cheap to clone.
///
/// Built with [`Server::builder`]; see the [module docs](self) for an example.
#[derive(Debug, Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    handler: Arc<dyn Handler>,
    /// The same router and layers, for [`Server::call_local`].
    dispatcher: Dispatcher,
    /// The context of every local call: no connection behind it.
    local: Context,
    connection: ConnectionConfig,
    first_byte_timeout: Option<Duration>,
    shutdown_grace: Duration,
    connections: Arc<Semaphore>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("connection", &self.connection)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for `router` with the default limits.
    pub fn new(router: Router) -> Server {
        Self::with_config(
            router,
            LayerStack::default(),
            ConnectionConfig::server_default(),
            ServerSide::default(),
        )
    }

    fn with_config(
        router: Router,
        layers: LayerStack,
        connection: ConnectionConfig,
        side: ServerSide,
    ) -> Server {
        let dispatcher = layers.wrap(router);
        Server {
            inner: Arc::new(Inner {
                handler: Arc::new(dispatcher.clone()),
                dispatcher,
                local: Context::detached(),
                connection,
                first_byte_timeout: side.first_byte_timeout,
                shutdown_grace: side.shutdown_grace,
                connections: Arc::new(Semaphore::new(
                    side.max_connections.min(Semaphore::MAX_PERMITS),
                )),
            }),
        }
    }

    /// A builder with the default limits.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Serves connections accepted from a TCP listener (each with `TCP_NODELAY`).
    /// Await the result, or add
    /// [`with_graceful_shutdown`](Serve::with_graceful_shutdown) first.
    pub fn serve_tcp(&self, listener: TcpListener) -> Serve<TcpListener> {
        self.serve(listener)
    }

    /// Serves connections accepted from a Unix socket listener.
    #[cfg(unix)]
    pub fn serve_unix(
        &self,
        listener: tokio::net::UnixListener,
    ) -> Serve<tokio::net::UnixListener> {
        self.serve(listener)
    }

    /// Serves connections accepted from any [`Listener`].
    pub fn serve<L: Listener>(&self, listener: L) -> Serve<L> {
        Serve::new(self.clone(), listener)
    }

    /// Answers one call in this process, without a connection: `method` with `params`
    /// goes through the same middleware and router a peer's call does, and the
    /// handler's future is returned to await (dropping it cancels the call). For
    /// callers inside the server's own process, such as an HTTP gateway.
    ///
    /// The handler's [`Context`] belongs to no connection: a handler that calls its peer
    /// back, or a stream method (which needs its connection's stream input and output),
    /// fails — serve those over a connection ([`serve_connection`](Self::serve_connection)
    /// on an in-memory duplex). A panic in the handler is answered INTERNAL, as on a
    /// connection. No per-connection limit applies: bound the callers instead.
    ///
    /// ```
    /// use msgwire_rpc::{Router, RpcError, Server};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let router = Router::new().method("add", |(a, b): (i64, i64)| async move { Ok::<_, RpcError>(a + b) });
    /// let server = Server::new(router);
    /// let params = msgwire_rpc::RawValue::serialize(&(2, 3)).unwrap();
    /// let sum = server.call_local("add", params).await.unwrap();
    /// assert_eq!(sum.deserialize::<i64>().unwrap(), 5);
    /// # });
    /// ```
    pub fn call_local(
        &self,
        method: impl Into<String>,
        params: RawValue,
    ) -> impl Future<Output = Result<RawValue, RpcError>> + Send + 'static {
        let method = method.into();
        let started = self.inner.dispatcher.start(RpcRequest::call(
            method.clone(),
            params,
            self.inner.local.clone(),
        ));
        async move {
            let pending = started?;
            AssertUnwindSafe(pending)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panic_error(Some(&method), panic.as_ref())))
        }
    }

    /// Serves one connection, whatever carries it, until it closes: detects its
    /// dialect, then answers its calls.
    ///
    /// Ends with `Ok(())` when either side closed in order (or a timeout closed it), or
    /// with the error that closed it: [`io::ErrorKind::InvalidData`] for bytes that are
    /// no dialect or can never become a valid message, [`io::ErrorKind::TimedOut`] for
    /// a connection that sent nothing within the first-byte timeout.
    ///
    /// This does not count against [`ServerBuilder::max_connections`]; listeners do.
    pub async fn serve_connection<IO>(&self, io: IO) -> io::Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_connection_until(io, CancellationToken::new(), None)
            .await
    }

    /// [`serve_connection`](Self::serve_connection) that closes gracefully when
    /// `shutdown` fires; `peer` names the other end in the warnings about it.
    pub(crate) async fn serve_connection_until<IO>(
        &self,
        mut io: IO,
        shutdown: CancellationToken,
        peer: Option<String>,
    ) -> io::Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Until the peer says something the connection owns nothing but this array.
        let mut prefix = [0u8; 5];
        let detection = read_dialect(&mut io, &mut prefix);
        let detected = tokio::select! {
            detected = with_timeout(self.inner.first_byte_timeout, detection) => detected,
            () = shutdown.cancelled() => return Ok(()),
        };
        let (dialect, len) = match detected {
            Ok(found) => found,
            Err(error) => {
                tracing::debug!(%error, "connection closed before it chose a dialect");
                let _ = io.shutdown().await;
                return match error.kind() {
                    io::ErrorKind::UnexpectedEof => Ok(()),
                    _ => Err(error),
                };
            }
        };
        tracing::debug!(%dialect, "connection dialect");
        let connection = ConnectionInner::new(dialect, &self.inner.connection, peer);
        // Boxed: the driver's state is allocated only for connections that talk.
        let reason = Box::pin(drive(
            io,
            &prefix[..len],
            connection,
            Arc::clone(&self.inner.handler),
            &self.inner.connection,
            Some(shutdown),
        ))
        .await;
        match reason {
            CloseReason::Io(error) => Err(io::Error::new(error.kind(), error.to_string())),
            CloseReason::Protocol(error) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                error.to_string(),
            )),
            _ => Ok(()),
        }
    }

    fn shutdown_grace(&self) -> Duration {
        self.inner.shutdown_grace
    }

    fn connection_permits(&self) -> &Arc<Semaphore> {
        &self.inner.connections
    }
}

/// Reads until `detect` decides; returns the dialect and how many bytes were read.
async fn read_dialect<IO: AsyncRead + Unpin>(
    io: &mut IO,
    prefix: &mut [u8; 5],
) -> io::Result<(Dialect, usize)> {
    let mut len = 0;
    while len < prefix.len() {
        let n = io.read(&mut prefix[len..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        len += n;
        match detect(&prefix[..len]) {
            Detected::Dialect(dialect) => return Ok((dialect, len)),
            Detected::NeedMore => {}
            _ => break,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the first bytes {:02x?} start no dialect (msgpack-rpc, framed-binary, framed-map)",
            &prefix[..len]
        ),
    ))
}

async fn with_timeout<T>(
    limit: Option<Duration>,
    work: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit {
        None => work.await,
        Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection sent nothing within the first-byte timeout",
            ))
        }),
    }
}

/// What only a server sets: how many connections, how long a new one may stay silent,
/// how long a graceful shutdown waits.
#[derive(Debug)]
pub struct ServerSide {
    max_connections: usize,
    first_byte_timeout: Option<Duration>,
    shutdown_grace: Duration,
}

impl Default for ServerSide {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            first_byte_timeout: Some(Duration::from_secs(10)),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A [`Server`]'s limits and middleware: the settings every connection shares
/// ([`Builder`]'s methods) and the server's own below.
///
/// | setting | default |
/// |---|---|
/// | [`max_frame_length`](Builder::max_frame_length) | 16 MiB |
/// | [`max_depth`](Builder::max_depth) | 128 |
/// | [`max_connections`](Self::max_connections) | 10 000 |
/// | [`max_in_flight`](Builder::max_in_flight) | 1024 per connection |
/// | [`max_notifications`](Builder::max_notifications) | 1024 per connection |
/// | [`first_byte_timeout`](Self::first_byte_timeout) | 10 s |
/// | [`idle_timeout`](Builder::idle_timeout) | 300 s |
/// | [`shutdown_grace`](Self::shutdown_grace) | 30 s |
/// | [`write_queue_bytes`](Builder::write_queue_bytes) | 1 MiB per connection |
pub type ServerBuilder = Builder<ServerSide>;

impl Default for ServerBuilder {
    fn default() -> Self {
        Builder {
            settings: Settings::with_idle_timeout(Some(Duration::from_secs(300))),
            layers: LayerStack::default(),
            side: ServerSide::default(),
        }
    }
}

impl ServerBuilder {
    /// Connections served at once; more are closed as soon as they are accepted.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.side.max_connections = max;
        self
    }

    /// How long a new connection may take to send its first bytes (`None`: no limit).
    pub fn first_byte_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.side.first_byte_timeout = timeout;
        self
    }

    /// On graceful shutdown, how long calls in flight may take to finish before their
    /// connections are closed anyway.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.side.shutdown_grace = grace;
        self
    }

    /// The server for `router`. Fails if a setting cannot be used.
    pub fn build(self, router: Router) -> Result<Server, ConfigError> {
        let connection = self.settings.check()?;
        Ok(Server::with_config(
            router,
            self.layers,
            connection,
            self.side,
        ))
    }
}
