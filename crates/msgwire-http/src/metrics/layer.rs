//! [`MetricsLayer`]: the tower layer that counts what a server answers.
//!
//! ```text
//!  request ──► MetricsService ──► the router (or the next layer)
//!               │ params size; a stream method: streams_open + 1
//!               ▼ when the answer is ready (or the call is dropped: CANCELLED)
//!             requests_total{method,status} + 1, duration, result size;
//!             streams_open - 1
//! ```
//!
//! ```
//! use msgwire_http::metrics::Metrics;
//! use msgwire_rpc::{Router, RpcError, Server};
//!
//! let metrics = Metrics::new(&[], None);
//! let router = Router::new().method("ping", |(): ()| async { Ok::<_, RpcError>("pong") });
//! let server = Server::builder().layer(metrics.layer()).build(router)?;
//! # let _ = server;
//! # Ok::<(), msgwire_rpc::ConfigError>(())
//! ```

use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use msgwire_rpc::{RawValue, RequestKind, RpcError, RpcRequest};
use msgwire_wire::Code;
use tower::{Layer, Service};

use super::Metrics;

/// Counts every call and notification that passes through it (see the
/// [module docs](super)). Made by [`Metrics::layer`].
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl MetricsLayer {
    pub(super) fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`MetricsLayer`] makes: the inner service, counted.
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S> Service<RpcRequest> for MetricsService<S>
where
    S: Service<RpcRequest, Response = RawValue, Error = RpcError>,
    S::Future: Send + 'static,
{
    type Response = RawValue;
    type Error = RpcError;
    type Future = BoxFuture<'static, Result<RawValue, RpcError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RpcRequest) -> Self::Future {
        let record = CallRecord {
            metrics: self.metrics.clone(),
            method: request.method().into(),
            params_len: request.params().len(),
            answers: request.kind() == RequestKind::Call,
            started: None,
            stream: false,
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut record = record;
            record.start();
            let outcome = answer.await;
            record.finish(&outcome);
            outcome
        })
    }
}

/// One call being measured. Dropped before it finished (the caller cancelled or went
/// away), it counts as CANCELLED.
struct CallRecord {
    metrics: Metrics,
    method: Box<str>,
    params_len: usize,
    /// A call (its result is measured), not a notification.
    answers: bool,
    /// When it was first polled; `None` once it is recorded.
    started: Option<Instant>,
    /// Counted in `streams_open`.
    stream: bool,
}

impl CallRecord {
    fn start(&mut self) {
        self.started = Some(Instant::now());
        if self.answers && self.metrics.is_stream(&self.method) {
            self.stream = true;
            self.metrics.inner.streams_open.inc();
        }
    }

    fn finish(&mut self, outcome: &Result<RawValue, RpcError>) {
        let (status, result_len) = match outcome {
            Ok(result) => (None, self.answers.then(|| result.len())),
            Err(error) => (Some(error.code), None),
        };
        self.record(status, result_len);
    }

    fn record(&mut self, status: Option<Code>, result_len: Option<usize>) {
        let Some(started) = self.started.take() else {
            return;
        };
        if std::mem::take(&mut self.stream) {
            self.metrics.inner.streams_open.dec();
        }
        let elapsed = started.elapsed();
        self.metrics
            .record_call(&self.method, status, elapsed, self.params_len, result_len);
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.record(Some(Code::Cancelled), None);
    }
}
