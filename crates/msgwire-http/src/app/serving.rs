//! Serving the app on a TCP listener: hyper's HTTP/1.1 with upgrades (for `/ws`), a
//! bound on connections, a deadline for each request's headers, and a graceful
//! shutdown with a bounded grace.
//!
//! `axum::serve` has neither bound: it sets no timer, so hyper's header read timeout
//! never fires and a client that opens connections and sends nothing (or a byte a
//! minute) keeps each one for ever. Here:
//!
//! * at most [`HttpLimits::max_connections`] connections are served at once; one more is
//!   closed as soon as it is accepted;
//! * a request's headers must arrive within [`HttpLimits::header_timeout`] of the
//!   connection waiting for them — a new connection, or a kept-alive one between
//!   requests — or the connection is closed;
//! * at shutdown the listener closes, each connection finishes the request it is on and
//!   closes (upgraded ones, WebSockets, are closed by their own shutdown), and after
//!   the grace whatever is left is dropped.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{router, AppState};

/// Bounds on the HTTP connections.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time for a request's headers to arrive.
    pub header_timeout: Duration,
}

impl Default for HttpLimits {
    /// 10,000 connections, 30 s for headers.
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves the app on `listener` (its connections counted as `http`) until `shutdown`
/// resolves; then stops accepting and lets requests in flight finish for up to
/// `grace`, then returns (see the [module docs](self)).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let limits = state.config().http_limits.clone();
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let mut listener = state.config().metrics.http_listener(listener);
    let service = TowerToHyperService::new(router(state));
    let permits = Arc::new(Semaphore::new(max));
    let stopping = CancellationToken::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (io, _) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!(max, "an HTTP connection over the limit is closed");
            continue;
        };
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(io), service.clone())
            .with_upgrades();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, "http connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    stopping.cancel();
    // Every permit back: every connection has ended.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::info!("http connections still open after the grace period are closed");
    }
    Ok(())
}
