//! Serving the app on a TCP listener until a shutdown signal, with a bounded grace.

use std::future::{Future, IntoFuture};
use std::io;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{router, AppState};

/// Serves the app on `listener` (its connections counted as `http`) until `shutdown`
/// resolves; then stops accepting and lets requests in flight finish for up to
/// `grace` (a stream or a WebSocket could go on for ever), then returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let listener = state.config().metrics.http_listener(listener);
    let app = router(state);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        ended = &mut server => return ended,
        () = shutdown => {}
    }
    let _ = stop_tx.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(ended) => ended,
        Err(_) => {
            tracing::info!("http connections still open after the grace period are closed");
            Ok(())
        }
    }
}
