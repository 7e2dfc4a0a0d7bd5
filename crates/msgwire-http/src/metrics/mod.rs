//! Prometheus metrics: every call of every dialect and transport that reaches a
//! [`Server`](msgwire_rpc::Server) through [`Metrics::layer`], every call the gateway
//! forwards through [`Metrics::record_call`], the connections counted by
//! [`Metrics::listener`], [`Metrics::http_listener`] and [`Metrics::connection`], and
//! the cache's counts read at each scrape.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `msgpack_requests_total` | counter | `method`, `status` | calls and notifications finished, by outcome: `OK` or the error code's name (`NOT_FOUND`, `INVALID_ARGUMENT`, …); `CANCELLED` also for a call whose caller went away before it finished |
//! | `msgpack_request_duration_seconds` | histogram | `method` | how long handlers took, from the first poll to the answer; buckets 1 ms … 1 s ([`DURATION_BUCKETS`]) |
//! | `msgpack_message_size_bytes` | histogram | — | the MessagePack size of each call's params and of each answer's result; buckets 16 B … 64 KiB ([`SIZE_BUCKETS`]) |
//! | `msgwire_connections_open` | gauge | `transport` | connections open now: `tcp`, `unix`, `websocket`, `http` |
//! | `msgwire_connections_accepted_total` | counter | `transport` | connections accepted since start |
//! | `msgwire_streams_open` | gauge | — | calls in flight whose method is a stream method |
//! | `msgwire_cache_hits_total` | counter | — | cache lookups answered with a stored value (only with a cache) |
//! | `msgwire_cache_misses_total` | counter | — | cache lookups that found nothing (only with a cache) |
//! | `msgwire_cache_computations_total` | counter | — | missing values `get_or_set` computed in this process (only with a cache) |
//! | `msgwire_cache_entries` | gauge | — | values the cache holds now (only with a cache) |
//!
//! Notifications are counted like calls, with the status their handler ended with
//! (`OK`, or `UNIMPLEMENTED` when nothing handles them); they have no result to
//! measure.
//!
//! The `method` label is bounded, since method names come from peers: a name that got
//! no handler (`UNIMPLEMENTED`) is counted as `(unknown)` unless it was seen with another
//! outcome before, and past [`MAX_METHOD_LABELS`] names, or for a name longer than
//! [`MAX_METHOD_LEN`] bytes, as `(other)`.
//!
//! [`Metrics::render`] writes the Prometheus text format, version 0.0.4
//! ([`CONTENT_TYPE`]), which Prometheus and every scraper read;
//! [`Metrics::render_openmetrics`] writes OpenMetrics text
//! ([`OPENMETRICS_CONTENT_TYPE`]) for a scraper that asks for it.
//!
//! ```
//! use std::time::Duration;
//! use msgwire_http::metrics::{Metrics, Transport};
//! use msgwire_wire::Code;
//!
//! let metrics = Metrics::new(&["download"], None);
//! let connection = metrics.connection(Transport::Tcp);
//! metrics.record_call("getUser", None, Duration::from_millis(2), 4, Some(60));
//! metrics.record_call("getUser", Some(Code::NotFound), Duration::from_millis(1), 4, None);
//!
//! let text = metrics.render();
//! assert!(text.contains(r#"msgpack_requests_total{method="getUser",status="OK"} 1"#));
//! assert!(text.contains(r#"msgpack_requests_total{method="getUser",status="NOT_FOUND"} 1"#));
//! assert!(text.contains(r#"msgwire_connections_open{transport="tcp"} 1"#));
//! drop(connection);
//! assert!(metrics.render().contains(r#"msgwire_connections_open{transport="tcp"} 0"#));
//! ```

mod connections;
mod layer;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use msgwire_services::cache::Cache;
use msgwire_wire::Code;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub use connections::{ConnectionGuard, Counted, CountedIo, Transport};
pub use layer::{MetricsLayer, MetricsService};

/// The `Content-Type` of [`Metrics::render`]: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of [`Metrics::render_openmetrics`]: OpenMetrics text 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The upper bounds of `msgpack_request_duration_seconds`'s buckets, in seconds (and
/// `+Inf`).
pub const DURATION_BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The upper bounds of `msgpack_message_size_bytes`'s buckets, in bytes (and `+Inf`).
pub const SIZE_BUCKETS: [f64; 7] = [16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0];

/// How many method names get a label of their own; later ones are `(other)`.
pub const MAX_METHOD_LABELS: usize = 256;

/// The longest method name that gets a label of its own, in bytes.
pub const MAX_METHOD_LEN: usize = 64;

/// The `method` label of methods that nothing handles.
const UNKNOWN_METHOD: &str = "(unknown)";

/// The `method` label of methods past the bounds.
const OTHER_METHOD: &str = "(other)";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: Arc<str>,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransportLabels {
    transport: Transport,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily<MethodLabels>,
    sizes: Histogram,
    connections_open: Family<TransportLabels, Gauge>,
    connections_accepted: Family<TransportLabels, Counter>,
    streams_open: Gauge,
    stream_methods: HashSet<Box<str>>,
    methods: RwLock<HashSet<Arc<str>>>,
}

/// The metrics of one process. Cheap to clone: clones count into the same registry.
///
/// See the [module docs](self) for what is measured.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("stream_methods", &self.inner.stream_methods)
            .field("streams_open", &self.streams_open())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics where calls of `stream_methods` count as streams, with `cache`'s hits and
    /// misses read at each scrape (none without a cache).
    pub fn new(stream_methods: &[&str], cache: Option<Arc<dyn Cache>>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "msgpack_requests",
            "Calls and notifications finished, by method and status (OK or the error code)",
            requests.clone(),
        );
        let durations: HistogramFamily<MethodLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "msgpack_request_duration",
            "How long handlers took to answer, by method",
            Unit::Seconds,
            durations.clone(),
        );
        let sizes = Histogram::new(SIZE_BUCKETS);
        registry.register_with_unit(
            "msgpack_message_size",
            "MessagePack size of each call's params and each answer's result",
            Unit::Bytes,
            sizes.clone(),
        );
        let connections_open = Family::<TransportLabels, Gauge>::default();
        registry.register(
            "msgwire_connections_open",
            "Connections open now, by transport",
            connections_open.clone(),
        );
        let connections_accepted = Family::<TransportLabels, Counter>::default();
        registry.register(
            "msgwire_connections_accepted",
            "Connections accepted, by transport",
            connections_accepted.clone(),
        );
        for transport in Transport::ALL {
            // Every transport shows, at zero until it is used.
            let labels = TransportLabels { transport };
            drop(connections_open.get_or_create(&labels));
            drop(connections_accepted.get_or_create(&labels));
        }
        let streams_open = Gauge::default();
        registry.register(
            "msgwire_streams_open",
            "Calls of stream methods in flight",
            streams_open.clone(),
        );
        if let Some(cache) = cache {
            registry.register_collector(Box::new(CacheCollector(cache)));
        }
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                durations,
                sizes,
                connections_open,
                connections_accepted,
                streams_open,
                stream_methods: stream_methods.iter().map(|&m| m.into()).collect(),
                methods: RwLock::new(HashSet::new()),
            }),
        }
    }

    /// A tower layer for [`ServerBuilder::layer`](msgwire_rpc::ServerBuilder::layer)
    /// that counts every call and notification the server answers.
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer::new(self.clone())
    }

    /// Counts one call that was answered elsewhere (the gateway forwards calls to
    /// upstream servers): `status` is `None` for a result, the error's code otherwise;
    /// `params_len` and `result_len` are MessagePack sizes (no result: an error).
    pub fn record_call(
        &self,
        method: &str,
        status: Option<Code>,
        duration: Duration,
        params_len: usize,
        result_len: Option<usize>,
    ) {
        let inner = &self.inner;
        let method = self.method_label(method, status);
        let status = status_name(status);
        inner
            .requests
            .get_or_create(&RequestLabels {
                method: Arc::clone(&method),
                status,
            })
            .inc();
        inner
            .durations
            .get_or_create(&MethodLabels { method })
            .observe(duration.as_secs_f64());
        inner.sizes.observe(params_len as f64);
        if let Some(len) = result_len {
            inner.sizes.observe(len as f64);
        }
    }

    /// Counts one connection of `transport` as open until the guard is dropped, and as
    /// accepted.
    pub fn connection(&self, transport: Transport) -> ConnectionGuard {
        ConnectionGuard::new(self.clone(), transport)
    }

    /// `listener`, with each connection it accepts counted as `transport` while it is
    /// open: serve it with [`Server::serve`](msgwire_rpc::Server::serve).
    pub fn listener<L: msgwire_rpc::Listener>(
        &self,
        listener: L,
        transport: Transport,
    ) -> Counted<L> {
        Counted::new(listener, self.clone(), transport)
    }

    /// A TCP listener for `axum::serve`, its connections counted as [`Transport::Http`].
    pub fn http_listener(
        &self,
        listener: tokio::net::TcpListener,
    ) -> Counted<tokio::net::TcpListener> {
        Counted::new(listener, self.clone(), Transport::Http)
    }

    /// The connections open now, of every transport.
    pub fn open_connections(&self) -> Vec<(Transport, i64)> {
        Transport::ALL
            .into_iter()
            .map(|transport| (transport, self.connections_open(transport).get()))
            .collect()
    }

    /// Calls of stream methods in flight now.
    pub fn streams_open(&self) -> i64 {
        self.inner.streams_open.get()
    }

    /// Every metric in the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail; a collector's error would leave a partial
        // page, which is what there is to show.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
        {
            tracing::warn!(%error, "cannot render the metrics");
        }
        out
    }

    /// Every metric in OpenMetrics text ([`OPENMETRICS_CONTENT_TYPE`]), ending in
    /// `# EOF`.
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        if let Err(error) =
            prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
        {
            tracing::warn!(%error, "cannot render the metrics");
        }
        out
    }

    fn connections_open(&self, transport: Transport) -> Gauge {
        self.inner
            .connections_open
            .get_or_create_owned(&TransportLabels { transport })
    }

    fn connections_accepted(&self, transport: Transport) -> Counter {
        self.inner
            .connections_accepted
            .get_or_create_owned(&TransportLabels { transport })
    }

    fn is_stream(&self, method: &str) -> bool {
        self.inner.stream_methods.contains(method)
    }

    /// The `method` label for `method` answered with `status`, bounded (see the
    /// [module docs](self)).
    fn method_label(&self, method: &str, status: Option<Code>) -> Arc<str> {
        let methods = &self.inner.methods;
        let known = methods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(method)
            .cloned();
        if let Some(known) = known {
            return known;
        }
        if status == Some(Code::Unimplemented) {
            return Arc::from(UNKNOWN_METHOD);
        }
        let mut methods = methods.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = methods.get(method) {
            return Arc::clone(known);
        }
        if method.len() > MAX_METHOD_LEN || methods.len() >= MAX_METHOD_LABELS {
            return Arc::from(OTHER_METHOD);
        }
        let label: Arc<str> = Arc::from(method);
        methods.insert(Arc::clone(&label));
        label
    }
}

/// `OK`, or the code's name.
fn status_name(status: Option<Code>) -> &'static str {
    status.map_or("OK", Code::name)
}

/// The cache's counts, read at each scrape.
#[derive(Debug)]
struct CacheCollector(Arc<dyn Cache>);

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let stats = self.0.stats();
        let hits = ConstCounter::new(stats.hits);
        hits.encode(encoder.encode_descriptor(
            "msgwire_cache_hits",
            "Cache lookups answered with a stored value.",
            None,
            hits.metric_type(),
        )?)?;
        let misses = ConstCounter::new(stats.misses);
        misses.encode(encoder.encode_descriptor(
            "msgwire_cache_misses",
            "Cache lookups that found no value.",
            None,
            misses.metric_type(),
        )?)?;
        let computations = ConstCounter::new(stats.computations);
        computations.encode(encoder.encode_descriptor(
            "msgwire_cache_computations",
            "Missing values computed by get_or_set (waiters for another's computation not counted).",
            None,
            computations.metric_type(),
        )?)?;
        let entries = ConstGauge::new(i64::try_from(stats.entries).unwrap_or(i64::MAX));
        entries.encode(encoder.encode_descriptor(
            "msgwire_cache_entries",
            "Values the cache holds now.",
            None,
            entries.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
