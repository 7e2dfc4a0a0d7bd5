//! Accepting connections: [`Listener`], [`Serve`], [`WithGracefulShutdown`].

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::pin;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Server;

/// Something that accepts connections: a TCP or Unix listener, or your own.
pub trait Listener: Send + 'static {
    /// One accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection. Must be cancel-safe: the server drops the future
    /// when it stops accepting.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;

    /// Who is at the other end of `io`, for log lines about that connection (an
    /// address). Default: nobody can tell.
    fn peer(io: &Self::Io) -> Option<String> {
        let _ = io;
        None
    }
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<TcpStream> {
        let (stream, _) = TcpListener::accept(self).await?;
        // Responses are batched by the writer; Nagle's delay would only add latency.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        Ok(stream)
    }

    fn peer(io: &TcpStream) -> Option<String> {
        io.peer_addr().ok().map(|a| a.to_string())
    }
}

#[cfg(unix)]
impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&mut self) -> io::Result<tokio::net::UnixStream> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        Ok(stream)
    }

    fn peer(io: &tokio::net::UnixStream) -> Option<String> {
        let credentials = io.peer_cred().ok()?;
        Some(match credentials.pid() {
            Some(pid) => format!("unix:pid {pid}"),
            None => format!("unix:uid {}", credentials.uid()),
        })
    }
}

/// A server serving a listener: await it to run until an accept loop error (it runs
/// for ever otherwise), or call [`with_graceful_shutdown`](Self::with_graceful_shutdown).
#[must_use = "a Serve does nothing until awaited"]
pub struct Serve<L> {
    server: Server,
    listener: L,
}

impl<L> fmt::Debug for Serve<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("server", &self.server)
            .finish()
    }
}

impl<L: Listener> Serve<L> {
    pub(super) fn new(server: Server, listener: L) -> Self {
        Self { server, listener }
    }

    /// Serves until `signal` completes, then shuts down gracefully: the listener is
    /// closed (new connections are refused), connections that have not sent a byte are
    /// closed, requests that arrive now are answered UNAVAILABLE (14), and each
    /// connection closes once its calls in flight have finished. Whatever is still
    /// running after [`shutdown_grace`](crate::ServerBuilder::shutdown_grace) is
    /// aborted.
    ///
    /// ```no_run
    /// # async fn run(server: msgwire_rpc::Server) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// server
    ///     .serve_tcp(listener)
    ///     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
    ///     .await
    /// # }
    /// ```
    pub fn with_graceful_shutdown<F>(self, signal: F) -> WithGracefulShutdown<L, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }
}

impl<L: Listener> IntoFuture for Serve<L> {
    type Output = io::Result<()>;
    type IntoFuture = BoxFuture<'static, io::Result<()>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(accept_loop(
            self.server,
            self.listener,
            std::future::pending(),
        ))
    }
}

/// A [`Serve`] that shuts down gracefully when its signal completes. Await it.
#[must_use = "a WithGracefulShutdown does nothing until awaited"]
pub struct WithGracefulShutdown<L, F> {
    serve: Serve<L>,
    signal: F,
}

impl<L, F> fmt::Debug for WithGracefulShutdown<L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithGracefulShutdown")
            .field("serve", &self.serve)
            .finish()
    }
}

impl<L, F> IntoFuture for WithGracefulShutdown<L, F>
where
    L: Listener,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = BoxFuture<'static, io::Result<()>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(accept_loop(
            self.serve.server,
            self.serve.listener,
            self.signal,
        ))
    }
}

async fn accept_loop<L, F>(server: Server, mut listener: L, signal: F) -> io::Result<()>
where
    L: Listener,
    F: Future<Output = ()> + Send,
{
    let mut signal = pin!(signal);
    let shutdown = CancellationToken::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = signal.as_mut() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok(io) => {
                    let peer = L::peer(&io).unwrap_or_else(|| "?".to_owned());
                    let Ok(permit) = server.connection_permits().clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "connection limit reached; closing a new connection");
                        drop(io);
                        continue;
                    };
                    let server = server.clone();
                    let shutdown = shutdown.clone();
                    // The peer's address goes into the connection's session, which names
                    // it in every warning about the peer (a tracing span per connection
                    // would cost each idle connection a few hundred bytes more).
                    connections.spawn(async move {
                        let ended = server.serve_connection_until(io, shutdown, Some(peer)).await;
                        if let Err(error) = ended {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                        drop(permit);
                    });
                }
                Err(error) => accept_failed(&error).await,
            },
        }
    }
    // New connections are refused from here on.
    drop(listener);
    shutdown.cancel();
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(server.shutdown_grace(), drained)
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = connections.len(),
            "shutdown grace period over; closing the connections still busy"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// An accept error is about one connection (reset before it was accepted) or about
/// the process (out of file descriptors): for the second, back off a little instead
/// of spinning.
async fn accept_failed(error: &io::Error) {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => tracing::debug!(%error, "accept failed"),
        _ => {
            tracing::warn!(%error, "accept failed; pausing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
