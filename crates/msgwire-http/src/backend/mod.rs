//! Where the HTTP side's calls go.
//!
//! * [`Backend::local`] — `msgwire serve`: the in-process [`Server`]. A unary call goes
//!   straight to its router through the same middleware (metrics included) a call from
//!   TCP meets, without encoding it ([`Server::call_local`]); a stream, which needs a
//!   connection, goes over one of a few in-memory connections to the same server.
//! * [`Backend::gateway`] — `msgwire gateway`: upstream services over RPC, each behind
//!   a [`Pool`]. A method goes to the upstream named for its service in
//!   [`METHODS`] (`users` for `getUser`), or to the upstream named `*` if there is
//!   one.
//!
//! ```text
//!   HTTP handler ──call(method, params)──> Backend ──> Pool(users) ──> Client ──> users
//!                                                 └──> Pool(orders) ─> Client ──> orders
//! ```
//!
//! Every call has a deadline ([`BackendOptions::timeout`]; past it: DEADLINE_EXCEEDED,
//! 504). A call that could not be sent because no connection could be made is tried
//! again for any method — nothing reached the upstream. A call whose connection broke
//! after it was sent is tried again only for the [idempotent](MethodKind::Unary)
//! methods. Both at most [`BackendOptions::retries`] times, with a short back-off, and
//! never past the deadline. An upstream that cannot be reached in the end is
//! UNAVAILABLE with HTTP 502.

mod pool;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use msgwire_rpc::{CallError, CallOptions, Client, Dialect, Server, StreamReceiver};
use msgwire_wire::{Code, RawValue};

use crate::error::ApiError;
pub use pool::{Connect, Pool};

/// What kind of method a name is, as far as HTTP is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// A unary call; `idempotent` if calling it twice does no harm (safe to retry).
    Unary {
        /// Safe to call again after a broken connection.
        idempotent: bool,
    },
    /// A server stream: HTTP answers it as it streams (NDJSON or length-prefixed).
    ServerStream,
    /// A client or bidirectional stream: HTTP cannot carry its input; use `/ws`.
    InputStream,
}

/// The reference services' methods: `(service, method, kind)`.
pub const METHODS: &[(&str, &str, MethodKind)] = {
    const READ: MethodKind = MethodKind::Unary { idempotent: true };
    const WRITE: MethodKind = MethodKind::Unary { idempotent: false };
    &[
        ("math", "add", READ),
        ("math", "multiply", READ),
        ("math", "greet", READ),
        ("math", "echo", READ),
        ("users", "getUser", READ),
        ("users", "listUsers", READ),
        ("orders", "getOrder", READ),
        ("orders", "listOrders", READ),
        ("files", "fileInfo", READ),
        ("files", "download", MethodKind::ServerStream),
        ("files", "upload", MethodKind::InputStream),
        ("chat", "chat", MethodKind::InputStream),
        ("events", "subscribeEvents", MethodKind::ServerStream),
        ("events", "publishEvent", WRITE),
        ("chunked", "sumChunked", MethodKind::InputStream),
    ]
};

/// The kind of `method`: from [`METHODS`], else a unary call that is not retried.
pub fn kind_of(method: &str) -> MethodKind {
    METHODS
        .iter()
        .find(|(_, m, _)| *m == method)
        .map_or(MethodKind::Unary { idempotent: false }, |(_, _, k)| *k)
}

/// The service that serves `method`, if it is one of [`METHODS`].
pub fn service_of(method: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .find(|(_, m, _)| *m == method)
        .map(|(s, _, _)| *s)
}

/// Deadline and retries.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Each call's deadline, retries included.
    pub timeout: Duration,
    /// How many times a failed call may be tried again (see the module docs).
    pub retries: u32,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Connections per pool.
    pub pool_size: usize,
}

impl Default for BackendOptions {
    /// 10 s per call, 2 retries, 1 s to connect, 4 connections per pool.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retries: 2,
            connect_timeout: Duration::from_secs(1),
            pool_size: 4,
        }
    }
}

/// Told about every call the backend makes: `(method, error code (None: it succeeded),
/// duration, params bytes, result bytes)` — the gateway's metrics, which see no local
/// server.
pub type Observer = Arc<dyn Fn(&str, Option<Code>, Duration, usize, Option<usize>) + Send + Sync>;

/// An upstream: a name, an address and its pool.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The service name it was given for (`users`, `orders`, `*`).
    pub name: String,
    /// Its address.
    pub addr: String,
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Target {
    /// Unary calls go straight to the server's router ([`Server::call_local`]); streams,
    /// which need a connection, over the pool of in-memory ones.
    Local(Server, Pool),
    Remote(HashMap<String, Upstream>),
}

/// Where calls go; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Backend {
    target: Target,
    options: BackendOptions,
    observer: Option<Observer>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("target", &self.target)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The state of one dependency, for `/health`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dependency {
    /// Its name (`upstream users`, `cache`).
    pub name: String,
    /// `ok` or `down`.
    pub status: &'static str,
    /// Where it is, or what is wrong with it.
    pub detail: String,
}

/// In-memory buffer of each direction of a loopback connection.
const LOOPBACK_BUFFER: usize = 256 << 10;

impl Backend {
    /// `server`'s calls, over in-memory connections.
    pub fn local(server: Server, options: BackendOptions) -> Self {
        let serving = server.clone();
        let connect: Connect = Arc::new(move || {
            let server = serving.clone();
            async move {
                let (near, far) = tokio::io::duplex(LOOPBACK_BUFFER);
                tokio::spawn(async move {
                    if let Err(error) = server.serve_connection(far).await {
                        tracing::debug!(%error, "loopback connection ended");
                    }
                });
                Ok(Client::new(near, Dialect::MsgpackRpc))
            }
            .boxed()
        });
        let pool = Pool::new("local", options.pool_size, options.connect_timeout, connect);
        Self {
            target: Target::Local(server, pool),
            options,
            observer: None,
        }
    }

    /// Upstreams by service name (`users`, `orders`, …, or `*` for every method no other
    /// upstream serves), each at a TCP address (`host:port`) or a Unix socket
    /// (`unix:PATH`), spoken to in msgpack-rpc.
    pub fn gateway(upstreams: &[(String, String)], options: BackendOptions) -> Self {
        let map = upstreams
            .iter()
            .map(|(name, addr)| {
                let target = addr.clone();
                let connect: Connect = Arc::new(move || {
                    let target = target.clone();
                    async move { connect_to(&target).await }.boxed()
                });
                let pool = Pool::new(
                    format!("upstream {name}"),
                    options.pool_size,
                    options.connect_timeout,
                    connect,
                );
                (
                    name.clone(),
                    Upstream {
                        name: name.clone(),
                        addr: addr.clone(),
                        pool,
                    },
                )
            })
            .collect();
        Self {
            target: Target::Remote(map),
            options,
            observer: None,
        }
    }

    /// Tells `observer` about every call (see [`Observer`]).
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The upstreams (none for a local backend).
    pub fn upstreams(&self) -> Vec<&Upstream> {
        match &self.target {
            Target::Local(..) => Vec::new(),
            Target::Remote(map) => {
                let mut list: Vec<_> = map.values().collect();
                list.sort_by(|a, b| a.name.cmp(&b.name));
                list
            }
        }
    }

    fn pool_for(&self, method: &str) -> Result<&Pool, ApiError> {
        match &self.target {
            Target::Local(_, pool) => Ok(pool),
            Target::Remote(map) => service_of(method)
                .and_then(|service| map.get(service))
                .or_else(|| map.get("*"))
                .map(|u| &u.pool)
                .ok_or_else(|| {
                    ApiError::new(
                        Code::Unimplemented,
                        format!("no upstream serves {method:?}"),
                    )
                }),
        }
    }

    fn is_remote(&self) -> bool {
        matches!(self.target, Target::Remote(_))
    }

    /// Calls `method` with `params` and returns its result (see the module docs for
    /// deadlines and retries).
    pub async fn call(&self, method: &str, params: RawValue) -> Result<RawValue, ApiError> {
        let started = Instant::now();
        let params_len = params.len();
        let outcome = self.call_with_retries(method, params, started).await;
        if let Some(observe) = &self.observer {
            let code = outcome.as_ref().err().map(|e| e.code);
            let result_len = outcome.as_ref().ok().map(RawValue::len);
            observe(method, code, started.elapsed(), params_len, result_len);
        }
        outcome
    }

    async fn call_with_retries(
        &self,
        method: &str,
        params: RawValue,
        started: Instant,
    ) -> Result<RawValue, ApiError> {
        if let Target::Local(server, _) = &self.target {
            return match tokio::time::timeout(
                self.options.timeout,
                server.call_local(method, params),
            )
            .await
            {
                Ok(answer) => answer.map_err(ApiError::from),
                Err(_) => Err(ApiError::from(&CallError::DeadlineExceeded)),
            };
        }
        let pool = self.pool_for(method)?;
        let deadline = started + self.options.timeout;
        let idempotent = matches!(kind_of(method), MethodKind::Unary { idempotent: true });
        let mut attempt = 0;
        loop {
            let failure = match self.attempt(pool, method, params.clone(), deadline).await {
                Ok(result) => return Ok(result),
                Err(failure) => failure,
            };
            let retry = match &failure {
                Attempt::NoConnection(_) => true,
                Attempt::Failed(error) => error.is_connection_error() && idempotent,
            };
            let backoff = Duration::from_millis(25 << attempt.min(6));
            if !retry || attempt >= self.options.retries || Instant::now() + backoff >= deadline {
                return Err(self.api_error(pool, failure));
            }
            attempt += 1;
            tracing::debug!(method, attempt, "retrying after a connection failure");
            tokio::time::sleep(backoff).await;
        }
    }

    async fn attempt(
        &self,
        pool: &Pool,
        method: &str,
        params: RawValue,
        deadline: Instant,
    ) -> Result<RawValue, Attempt> {
        let client = pool.client().await.map_err(Attempt::NoConnection)?;
        client
            .call_raw(method, params, CallOptions::deadline(deadline))
            .await
            .map_err(Attempt::Failed)
    }

    fn api_error(&self, pool: &Pool, failure: Attempt) -> ApiError {
        match failure {
            Attempt::NoConnection(error) if self.is_remote() => {
                ApiError::bad_gateway(format!("{} cannot be reached: {error}", pool.name()))
            }
            Attempt::Failed(error) if self.is_remote() && error.is_connection_error() => {
                ApiError::bad_gateway(format!("{} failed: {error}", pool.name()))
            }
            Attempt::NoConnection(error) => {
                ApiError::new(Code::Unavailable, format!("{}: {error}", pool.name()))
            }
            Attempt::Failed(error) => ApiError::from(&error),
        }
    }

    /// Opens the server stream `method` with `params`: its items, then its result.
    pub async fn server_stream(
        &self,
        method: &str,
        params: RawValue,
    ) -> Result<StreamReceiver<RawValue>, ApiError> {
        let pool = self.pool_for(method)?;
        let client = pool
            .client()
            .await
            .map_err(|e| self.api_error(pool, Attempt::NoConnection(e)))?;
        let (input, output) = client
            .open_stream_raw(method, params, CallOptions::new())
            .await
            .map_err(|e| self.api_error(pool, Attempt::Failed(e)))?;
        input
            .finish()
            .map_err(|e| self.api_error(pool, Attempt::Failed(e)))?;
        Ok(output)
    }

    /// Each upstream's state: connected now, or a connection can be made now (bounded
    /// by the connect timeout). A local backend has none.
    pub async fn dependencies(&self) -> Vec<Dependency> {
        let checks = self.upstreams().into_iter().map(|upstream| async move {
            let state = match upstream.pool.client().await {
                Ok(client) => match client
                    .call_raw(
                        "$/ping",
                        RawValue::empty_array(),
                        CallOptions::timeout(self.options.connect_timeout),
                    )
                    .await
                {
                    // Any answer (even "no such method") shows the upstream is there.
                    Ok(_) | Err(CallError::Rpc(_)) => Ok(()),
                    Err(error) => Err(error.to_string()),
                },
                Err(error) => Err(error.to_string()),
            };
            Dependency {
                name: upstream.pool.name().to_owned(),
                status: if state.is_ok() { "ok" } else { "down" },
                detail: match state {
                    Ok(()) => upstream.addr.clone(),
                    Err(error) => format!("{}: {error}", upstream.addr),
                },
            }
        });
        futures::future::join_all(checks).await
    }
}

enum Attempt {
    NoConnection(io::Error),
    Failed(CallError),
}

/// A msgpack-rpc connection to `host:port` or `unix:PATH`.
async fn connect_to(target: &str) -> io::Result<Client> {
    #[cfg(unix)]
    if let Some(path) = target.strip_prefix("unix:") {
        return Client::connect_unix(path, Dialect::MsgpackRpc).await;
    }
    Client::connect_tcp(target, Dialect::MsgpackRpc).await
}
