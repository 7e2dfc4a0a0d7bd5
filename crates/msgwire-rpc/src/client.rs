//! The calling side of a connection: [`Client`], [`ClientBuilder`], [`CallOptions`].
//!
//! A `Client` is a handle to one connection. Clones share it, and any number of tasks
//! can call through it at once: each call gets an id from an atomic counter, waits on
//! its own oneshot channel, and the connection's single writer batches the requests of
//! all of them.
//!
//! ```no_run
//! use std::time::Duration;
//! use msgwire_rpc::{CallError, CallOptions, Client, Dialect, Value};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect_tcp("127.0.0.1:7420", Dialect::MsgpackRpc).await?;
//! let three = client.call("add", vec![Value::from(1), Value::from(2)]).await?;
//! let sum: i64 = client.call_typed("add", &(1, 2)).await?;
//! match client
//!     .call_with("slow", Vec::<Value>::new(), CallOptions::timeout(Duration::from_millis(50)))
//!     .await
//! {
//!     Err(CallError::DeadlineExceeded) => { /* the server was told to cancel it */ }
//!     other => println!("{other:?}"),
//! }
//! client.notify("log", vec![Value::from("done")]).await?;
//! # let _ = (three, sum);
//! # Ok(())
//! # }
//! ```
//!
//! The connection closes when the last `Client` clone made by [`Client::new`],
//! [`Client::connect_tcp`] or a [`ClientBuilder`] is dropped, or on [`Client::close`].

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msgwire_wire::{CallId, Dialect, Message};
use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};

use crate::connection::{drive, ConnectionConfig, Delivery, Shared};
use crate::error::{BoxError, CallError};
use crate::params;
use crate::router::{LayerStack, RpcRequest, RpcService};
use crate::Router;

/// Per-call options: a deadline.
///
/// ```
/// use std::time::Duration;
/// use msgwire_rpc::CallOptions;
///
/// let options = CallOptions::timeout(Duration::from_secs(2));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

impl CallOptions {
    /// No deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call fails with [`CallError::DeadlineExceeded`] if its answer has not arrived
    /// `timeout` after it starts.
    pub fn timeout(timeout: Duration) -> Self {
        Self::new().with_timeout(timeout)
    }

    /// The call fails with [`CallError::DeadlineExceeded`] if its answer has not arrived
    /// by `deadline`.
    pub fn deadline(deadline: Instant) -> Self {
        Self::new().with_deadline(deadline)
    }

    /// Sets the timeout; with a deadline too, the earlier of the two applies.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the deadline; with a timeout too, the earlier of the two applies.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The deadline of a call that starts now.
    fn deadline_from_now(&self) -> Option<tokio::time::Instant> {
        let from_timeout = self
            .timeout
            .and_then(|t| tokio::time::Instant::now().checked_add(t));
        let from_deadline = self.deadline.map(tokio::time::Instant::from_std);
        match (from_timeout, from_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Closes the connection when the last user-held [`Client`] goes.
struct Owner {
    stop: CancellationToken,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A handle to one connection: call and notify the peer, from any number of tasks.
///
/// Cheap to clone. See the [module docs](self) for an example.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    /// `None` for the handles a connection gives its own handlers (a [`crate::Context`]):
    /// they do not keep the connection open.
    _owner: Option<Arc<Owner>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("dialect", &self.shared.dialect())
            .field("closed", &self.shared.is_closed())
            .finish()
    }
}

impl Client {
    /// A client over `io`, speaking `dialect`, that answers no calls from the peer (they
    /// get UNIMPLEMENTED). Use [`Client::builder`] to serve calls from the peer too.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime: the connection runs as tasks.
    pub fn new<IO>(io: IO, dialect: Dialect) -> Client
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::builder().build(io, dialect)
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

    /// A handle that does not keep the connection open.
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Client {
        Client {
            shared,
            _owner: None,
        }
    }

    /// The dialect this connection speaks.
    pub fn dialect(&self) -> Dialect {
        self.shared.dialect()
    }

    /// Whether the connection is closed: every call now fails at once.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Waits until the connection is closed and what was queued before has been
    /// written to the socket (or dropped after the linger time, if the peer stopped
    /// reading). After `close()`, awaiting this makes sure a cancel notification or a
    /// last notification really left before the program exits.
    pub async fn closed(&self) {
        self.shared.finished.cancelled().await;
    }

    /// Closes the connection: calls still waiting fail with [`CallError::Closed`], and
    /// what is already queued is still sent (await [`closed`](Self::closed) to know
    /// when).
    pub fn close(&self) {
        self.shared.stop.cancel();
    }

    /// Calls `method` with `params` (an array for positional params, a map for named
    /// ones) and waits for the answer, with no deadline.
    pub async fn call(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
    ) -> Result<Value, CallError> {
        self.call_inner(method.into(), params.into()).await
    }

    /// Like [`call`](Self::call), with [`CallOptions`]. When the deadline passes first the
    /// call fails with [`CallError::DeadlineExceeded`] and the peer is sent the cancel
    /// notification (`"$/cancel"`, `[id]`) so it can stop working on it.
    pub async fn call_with(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
        options: CallOptions,
    ) -> Result<Value, CallError> {
        let call = self.call_inner(method.into(), params.into());
        match options.deadline_from_now() {
            None => call.await,
            // Dropping the call on timeout sends the cancel (see `Waiting`).
            Some(deadline) => tokio::time::timeout_at(deadline, call)
                .await
                .unwrap_or(Err(CallError::DeadlineExceeded)),
        }
    }

    /// Calls `method` with serde types: `params` is encoded with serde (a tuple becomes
    /// positional params, a struct named ones) and the result is decoded as `R`.
    pub async fn call_typed<P, R>(
        &self,
        method: impl Into<String>,
        params: &P,
    ) -> Result<R, CallError>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.call_typed_with(method, params, CallOptions::new())
            .await
    }

    /// [`call_typed`](Self::call_typed) with [`CallOptions`].
    pub async fn call_typed_with<P, R>(
        &self,
        method: impl Into<String>,
        params: &P,
        options: CallOptions,
    ) -> Result<R, CallError>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let params = params::encode(params).map_err(CallError::Encode)?;
        let result = self.call_with(method, params, options).await?;
        params::decode_value(result).map_err(CallError::Decode)
    }

    /// Sends a notification: no answer, no id. Returns once it is queued for the writer.
    pub async fn notify(
        &self,
        method: impl Into<String>,
        params: impl Into<Value>,
    ) -> Result<(), CallError> {
        if self.shared.is_closed() {
            return Err(self.shared.close_error());
        }
        let message = Message::Notification {
            method: method.into(),
            params: params.into(),
        };
        self.shared
            .out
            .send(message)
            .await
            .map_err(|_| self.shared.close_error())
    }

    /// [`notify`](Self::notify) with serde-encoded params.
    pub async fn notify_typed<P>(
        &self,
        method: impl Into<String>,
        params: &P,
    ) -> Result<(), CallError>
    where
        P: Serialize + ?Sized,
    {
        let params = params::encode(params).map_err(CallError::Encode)?;
        self.notify(method, params).await
    }

    async fn call_inner(&self, method: String, params: Value) -> Result<Value, CallError> {
        let (answer_tx, answer_rx) = oneshot::channel();
        let id = self.shared.register(answer_tx)?;
        let mut waiting = Waiting {
            shared: &self.shared,
            id,
            sent: false,
            answer: Some(answer_rx),
        };
        let request = Message::Request { id, method, params };
        if self.shared.out.send(request).await.is_err() {
            return Err(self.shared.close_error());
        }
        waiting.sent = true;
        let delivered = match waiting.answer.as_mut() {
            Some(answer) => answer.await,
            None => return Err(CallError::Closed),
        };
        waiting.answer = None;
        match delivered {
            Ok((answer, counted)) => {
                if counted {
                    self.shared.resumed();
                }
                answer
            }
            Err(_) => Err(self.shared.close_error()),
        }
    }
}

/// A call between its registration and its answer. Dropped early (deadline, or the
/// caller's future dropped), it forgets the call and, if the request went out, tells
/// the peer to cancel it.
struct Waiting<'a> {
    shared: &'a Shared,
    id: CallId,
    sent: bool,
    /// Taken once the answer is in.
    answer: Option<oneshot::Receiver<Delivery>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(mut answer) = self.answer.take() else {
            return;
        };
        let was_waiting = self.shared.forget(self.id);
        if let Ok((_, true)) = answer.try_recv() {
            // Answered just as the caller gave up: the answer is dropped here.
            self.shared.resumed();
        }
        if !(self.sent && was_waiting) {
            return;
        }
        tracing::debug!(id = self.id, "call abandoned; sending cancel");
        let cancel = Message::cancel(self.id);
        match self.shared.out.try_send(cancel) {
            Ok(()) => {}
            Err(tokio::sync::mpsc::error::TrySendError::Full(cancel)) => {
                // The queue is full: send it as soon as there is room, without holding
                // up the caller.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let out = self.shared.out.clone();
                    runtime.spawn(async move {
                        let _ = out.send(cancel).await;
                    });
                }
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
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
#[derive(Debug, Default)]
pub struct ClientBuilder {
    router: Router,
    layers: LayerStack,
    config: ConnectionConfig,
}

impl ClientBuilder {
    /// The handlers for calls and notifications from the peer (default: none; calls
    /// get UNIMPLEMENTED).
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Wraps the router in a tower layer; see [`ServerBuilder::layer`](crate::ServerBuilder::layer).
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<RpcService> + Send + Sync + 'static,
        L::Service: Service<RpcRequest, Response = Value> + Clone + Send + Sync + 'static,
        <L::Service as Service<RpcRequest>>::Error: Into<BoxError>,
        <L::Service as Service<RpcRequest>>::Future: Send + 'static,
    {
        self.layers.push(layer);
        self
    }

    /// Largest frame sent or accepted (default 16 MiB).
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.config.max_frame_length = max;
        self
    }

    /// Deepest nesting accepted from the peer (default 128).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.config.max_depth = depth;
        self
    }

    /// Calls from the peer handled at once (default 1024); more get RESOURCE_EXHAUSTED.
    pub fn max_in_flight(mut self, max: u32) -> Self {
        self.config.max_in_flight = max;
        self
    }

    /// Messages queued for the writer before callers wait (default 1024).
    pub fn write_queue(mut self, capacity: usize) -> Self {
        self.config.write_queue = capacity;
        self
    }

    /// The client over `io`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime: the connection runs as tasks.
    pub fn build<IO>(self, io: IO, dialect: Dialect) -> Client
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (shared, queue) = Shared::new(dialect, self.config.write_queue);
        let shared = Arc::new(shared);
        let dispatcher = self.layers.wrap(self.router);
        let config = self.config;
        let driver_shared = Arc::clone(&shared);
        tokio::spawn(async move {
            drive(io, &[], driver_shared, queue, dispatcher, &config, None).await;
        });
        Client {
            _owner: Some(Arc::new(Owner {
                stop: shared.stop.clone(),
            })),
            shared,
        }
    }

    /// Connects over TCP (with `TCP_NODELAY`).
    pub async fn connect_tcp(
        self,
        addr: impl ToSocketAddrs,
        dialect: Dialect,
    ) -> io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(self.build(stream, dialect))
    }

    /// Connects to a Unix socket.
    #[cfg(unix)]
    pub async fn connect_unix(
        self,
        path: impl AsRef<Path>,
        dialect: Dialect,
    ) -> io::Result<Client> {
        let stream = tokio::net::UnixStream::connect(path).await?;
        Ok(self.build(stream, dialect))
    }
}
