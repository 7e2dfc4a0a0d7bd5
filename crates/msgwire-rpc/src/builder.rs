//! One builder for both ends: the connection settings and middleware that a client and a
//! server share are set the same way ([`Builder`]'s methods), and each end adds its own
//! ([`ClientBuilder`]: a router for calls from the peer and how to connect;
//! [`ServerBuilder`](crate::ServerBuilder): connection count, first-byte timeout,
//! shutdown grace). Settings are checked when the builder builds, so a limit that
//! cannot work (a nesting depth over [`MAX_DEPTH_LIMIT`](msgwire_wire::MAX_DEPTH_LIMIT))
//! is an error there, not a surprise later.
//!
//! ```
//! use std::time::Duration;
//! use msgwire_rpc::{Client, Router, Server};
//!
//! let server = Server::builder()
//!     .max_in_flight(256)
//!     .max_depth(64)
//!     .idle_timeout(Some(Duration::from_secs(60)))
//!     .build(Router::new())?;
//! let client = Client::builder().max_frame_length(1 << 20).write_queue_bytes(256 * 1024);
//! assert!(Server::builder().max_depth(usize::MAX).build(Router::new()).is_err());
//! # let _ = (server, client);
//! # Ok::<(), msgwire_rpc::ConfigError>(())
//! ```

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use msgwire_wire::{ConfigError, Dialect, RawValue};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};
use tower::{Layer, Service};

use crate::config::{ConnectionConfig, Settings};
use crate::connection::{drive, Connection, Handler, Inner};
use crate::dispatch::{LayerStack, RpcService};
use crate::error::BoxError;
use crate::router::RpcRequest;
use crate::{Client, Router};

/// The builder of a [`Client`] or a [`Server`](crate::Server): see the [module
/// docs](self). Made by [`Client::builder`] and [`Server::builder`](crate::Server::builder).
#[derive(Debug)]
pub struct Builder<Side> {
    pub(crate) settings: Settings,
    pub(crate) layers: LayerStack,
    pub(crate) side: Side,
}

/// What only a client sets: the router for calls from the peer.
#[derive(Debug, Default)]
pub struct ClientSide {
    router: Router,
}

/// Builds a [`Client`]: a [`Router`] for calls the peer makes to this end (Neovim's
/// plugin hosts are called by Neovim), middleware around it, limits.
///
/// ```no_run
/// use msgwire_rpc::{Client, Dialect, Router, RpcError};
///
/// # async fn run() -> std::io::Result<()> {
/// let router = Router::new()
///     .method("client_version", |()| async { Ok::<_, RpcError>("1.0") });
/// let client = Client::builder()
///     .router(router)
///     .connect_tcp("127.0.0.1:7420", Dialect::MsgpackRpc)
///     .await?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
pub type ClientBuilder = Builder<ClientSide>;

impl Default for ClientBuilder {
    fn default() -> Self {
        Builder {
            settings: Settings::with_idle_timeout(None),
            layers: LayerStack::default(),
            side: ClientSide::default(),
        }
    }
}

impl<Side> Builder<Side> {
    /// Largest frame sent or accepted (default 16 MiB): a framed dialect's length field,
    /// or a whole msgpack-rpc message, checked on the header before a buffer of that
    /// size exists. Over it, the connection is closed.
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.settings.max_frame_length = max;
        self
    }

    /// Deepest nesting of arrays and maps in params, results and errors (default 128,
    /// at most [`MAX_DEPTH_LIMIT`](msgwire_wire::MAX_DEPTH_LIMIT)). Deeper requests are
    /// answered INVALID_ARGUMENT.
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.settings.max_depth = depth;
        self
    }

    /// Calls from the peer handled at once on one connection (default 1024). A request
    /// beyond it is answered RESOURCE_EXHAUSTED (8) at once; nothing is queued.
    pub fn max_in_flight(mut self, max: u32) -> Self {
        self.settings.max_in_flight = max;
        self
    }

    /// Notifications from the peer queued or running at once on one connection
    /// (default 1024). Beyond it they are dropped, with a rate-limited warning.
    pub fn max_notifications(mut self, max: u32) -> Self {
        self.settings.max_notifications = max;
        self
    }

    /// How long a connection may stay with no bytes read and nothing in flight before
    /// it is closed, and how long one write to a peer that does not read may take
    /// (`None`: no limit; the default for clients, 300 s for servers).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// Bytes queued for the socket on one connection before it stops reading from the
    /// peer and callers wait for room (default 1 MiB). One message is queued whatever
    /// its size; the bound stops more from following it.
    pub fn write_queue_bytes(mut self, bytes: usize) -> Self {
        self.settings.write_queue_bytes = bytes;
        self
    }

    /// How long a closing connection may take to write what it has queued (default
    /// 5 s).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.settings.linger = linger;
        self
    }

    /// Keepalive while calls or streams are open: after `interval` with nothing read
    /// from the peer a `$/ping` request is sent, and if nothing at all arrives within
    /// `timeout` after it the connection is closed (its calls and streams fail with a
    /// connection error, its handlers are dropped). `None` turns pings off. Defaults:
    /// 30 s and 20 s.
    pub fn keepalive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.settings.keepalive_interval = interval;
        self.settings.keepalive_timeout = timeout;
        self
    }

    /// Wraps the router in a tower layer: timeouts, concurrency limits, logging, or any
    /// `Layer` over [`RpcService`]. The first layer added is the outermost, as with
    /// `tower::ServiceBuilder` (which is itself a layer and can be passed here).
    ///
    /// The layer's errors become [`RpcError`](crate::RpcError)s through
    /// [`rpc_error_from_box`](crate::rpc_error_from_box): a tower timeout is
    /// DEADLINE_EXCEEDED, load shedding RESOURCE_EXHAUSTED, an `RpcError` itself stays
    /// as it is, anything else is INTERNAL.
    ///
    /// ```
    /// use std::time::Duration;
    /// use msgwire_rpc::{Router, Server};
    /// use tower::limit::ConcurrencyLimitLayer;
    /// use tower::timeout::TimeoutLayer;
    ///
    /// let server = Server::builder()
    ///     .layer(TimeoutLayer::new(Duration::from_secs(10)))
    ///     .layer(ConcurrencyLimitLayer::new(64))
    ///     .build(Router::new());
    /// # let _ = server;
    /// ```
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<RpcService> + Send + Sync + 'static,
        L::Service: Service<RpcRequest, Response = RawValue> + Clone + Send + Sync + 'static,
        <L::Service as Service<RpcRequest>>::Error: Into<BoxError>,
        <L::Service as Service<RpcRequest>>::Future: Send + 'static,
    {
        self.layers.push(layer);
        self
    }
}

impl ClientBuilder {
    /// The handlers for calls and notifications from the peer (default: none; calls
    /// get UNIMPLEMENTED).
    pub fn router(mut self, router: Router) -> Self {
        self.side.router = router;
        self
    }

    /// The client over `io`. Fails if a setting cannot be used.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime: the connection runs as tasks.
    pub fn build<IO>(self, io: IO, dialect: Dialect) -> Result<Client, ConfigError>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let config = self.settings.check()?;
        let handler = Arc::new(self.layers.wrap(self.side.router));
        Ok(spawn_client(io, dialect, config, handler))
    }

    /// Connects over TCP (with `TCP_NODELAY`).
    pub async fn connect_tcp(
        self,
        addr: impl ToSocketAddrs,
        dialect: Dialect,
    ) -> io::Result<Client> {
        let config = self.settings.check().map_err(invalid_input)?;
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let handler = Arc::new(self.layers.wrap(self.side.router));
        Ok(spawn_client(stream, dialect, config, handler))
    }

    /// Connects to a Unix socket.
    #[cfg(unix)]
    pub async fn connect_unix(
        self,
        path: impl AsRef<Path>,
        dialect: Dialect,
    ) -> io::Result<Client> {
        let config = self.settings.check().map_err(invalid_input)?;
        let stream = tokio::net::UnixStream::connect(path).await?;
        let handler = Arc::new(self.layers.wrap(self.side.router));
        Ok(spawn_client(stream, dialect, config, handler))
    }
}

fn invalid_input(error: ConfigError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, error)
}

/// Starts a connection's tasks and returns the owning handle.
fn spawn_client<IO>(
    io: IO,
    dialect: Dialect,
    config: ConnectionConfig,
    handler: Arc<dyn Handler>,
) -> Client
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let inner = Inner::new(dialect, &config, None);
    let driven = Arc::clone(&inner);
    tokio::spawn(async move {
        drive(io, &[], driven, handler, &config, None).await;
    });
    Client::owning(Connection::new(inner))
}

impl Client {
    /// A client over `io`, speaking `dialect`, with the default settings, that answers
    /// no calls from the peer (they get UNIMPLEMENTED). Use [`Client::builder`] to serve
    /// calls from the peer too.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime: the connection runs as tasks.
    pub fn new<IO>(io: IO, dialect: Dialect) -> Client
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let handler = Arc::new(LayerStack::default().wrap(Router::new()));
        spawn_client(io, dialect, ConnectionConfig::client_default(), handler)
    }

    /// A builder: a router for calls from the peer, middleware, limits.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Connects over TCP (with `TCP_NODELAY`).
    pub async fn connect_tcp(addr: impl ToSocketAddrs, dialect: Dialect) -> io::Result<Client> {
        Self::builder().connect_tcp(addr, dialect).await
    }

    /// Connects to a Unix socket.
    #[cfg(unix)]
    pub async fn connect_unix(path: impl AsRef<Path>, dialect: Dialect) -> io::Result<Client> {
        Self::builder().connect_unix(path, dialect).await
    }
}
