//! `msgwire serve`: the reference services on an RPC port (and a Unix socket) and on
//! an HTTP port (JSON and MessagePack endpoints, /health, /metrics, /ws, the playground).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::Args;
use msgwire_http::app::{AppConfig, AppState, HttpLimits};
use msgwire_http::backend::{Backend, BackendOptions};
use msgwire_http::metrics::{Metrics, Transport};
use msgwire_http::ws::WsConfig;
use msgwire_rpc::Server;
use msgwire_services::cache::MemoryCacheConfig;
use msgwire_services::{Services, ServicesConfig};
use tokio::net::TcpListener;

use crate::backends::BackendArgs;

/// Options of `msgwire serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the RPC listener (all three dialects, detected per connection). Port 0
    /// picks a free port; the chosen address is printed.
    #[arg(
        long,
        env = "MSGWIRE_RPC",
        value_name = "ADDR",
        default_value = "127.0.0.1:7420"
    )]
    rpc: String,

    /// Address of the HTTP listener: the JSON and MessagePack endpoints, POST
    /// /rpc/METHOD, /health, /metrics, msgpack-rpc over WebSocket at /ws and the
    /// playground page at /. Port 0 picks a free port; the chosen address is printed.
    #[arg(
        long,
        env = "MSGWIRE_HTTP",
        value_name = "ADDR",
        default_value = "127.0.0.1:7421"
    )]
    http: String,

    /// Largest WebSocket message accepted on /ws, in bytes (a unit as for
    /// --max-upload); larger ones close the socket with 1009.
    #[arg(long, env = "MSGWIRE_MAX_WS_MESSAGE", value_name = "BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    max_ws_message: u64,

    #[command(flatten)]
    http_limits: HttpLimitArgs,

    #[command(flatten)]
    backends: BackendArgs,

    /// Seconds an HTTP call may take before it is answered 504 (DEADLINE_EXCEEDED).
    #[arg(long, env = "MSGWIRE_HTTP_TIMEOUT", value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    http_timeout: u64,

    /// Seconds a cached user record (getUser) stays fresh.
    #[arg(long, env = "MSGWIRE_CACHE_TTL", value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    cache_ttl: u64,

    /// Entries the in-process cache holds at most; the oldest go first.
    #[arg(long, env = "MSGWIRE_CACHE_ENTRIES", value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    cache_entries: usize,

    /// Also serve RPC on this Unix socket (replaced if it exists).
    #[arg(long, env = "MSGWIRE_UNIX", value_name = "PATH")]
    unix: Option<PathBuf>,

    /// Largest frame (or msgpack-rpc message) accepted, in bytes; checked on the header.
    #[arg(long, env = "MSGWIRE_MAX_FRAME", value_name = "BYTES", default_value_t = msgwire_rpc::DEFAULT_MAX_FRAME,
          value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)).map(|n| n as usize))]
    max_frame: usize,

    /// Deepest nesting of arrays and maps in params (deeper requests are answered
    /// INVALID_ARGUMENT), at most 512.
    #[arg(long, env = "MSGWIRE_MAX_DEPTH", value_name = "N", default_value_t = msgwire_rpc::DEFAULT_MAX_DEPTH,
          value_parser = clap::value_parser!(u16).range(0..=msgwire_rpc::MAX_DEPTH_LIMIT as i64).map(usize::from))]
    max_depth: usize,

    /// Connections served at once; more are closed as soon as they are accepted.
    #[arg(
        long,
        env = "MSGWIRE_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 10_000
    )]
    max_connections: usize,

    /// Calls in flight per connection; more are answered RESOURCE_EXHAUSTED (8).
    #[arg(long, env = "MSGWIRE_MAX_IN_FLIGHT", value_name = "N", default_value_t = msgwire_rpc::config::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: u32,

    /// Notifications queued per connection; more are dropped (with a rate-limited
    /// warning).
    #[arg(long, env = "MSGWIRE_MAX_NOTIFICATIONS", value_name = "N", default_value_t = msgwire_rpc::config::DEFAULT_MAX_NOTIFICATIONS)]
    max_notifications: u32,

    /// Bytes of answers queued per connection for a peer that does not read them; past
    /// it the server stops reading that peer's requests until it reads.
    #[arg(long, env = "MSGWIRE_WRITE_QUEUE", value_name = "BYTES", default_value_t = msgwire_rpc::config::DEFAULT_WRITE_QUEUE_BYTES)]
    write_queue: usize,

    /// Seconds a connection may stay silent with no call in flight (0: forever).
    #[arg(
        long,
        env = "MSGWIRE_IDLE_TIMEOUT",
        value_name = "SECS",
        default_value_t = 300
    )]
    idle_timeout: u64,

    /// Seconds a new connection has to send its first bytes (0: forever).
    #[arg(
        long,
        env = "MSGWIRE_FIRST_BYTE_TIMEOUT",
        value_name = "SECS",
        default_value_t = 10
    )]
    first_byte_timeout: u64,

    /// Seconds calls in flight may take to finish after SIGTERM or Ctrl-C.
    #[arg(
        long,
        env = "MSGWIRE_SHUTDOWN_GRACE",
        value_name = "SECS",
        default_value_t = 30
    )]
    shutdown_grace: u64,

    /// Directory of the files service: uploaded files under server-made ids, their
    /// metadata, and uploads in progress (leftovers of a crash are removed at start).
    /// Created now if given; the default, ./msgwire-data, at the first upload.
    #[arg(long, env = "MSGWIRE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Largest upload accepted, in bytes, with an optional unit: KiB, MiB, GiB, TiB
    /// (or KB, MB, GB, TB for powers of 1000), e.g. 200MiB. Larger uploads are refused
    /// RESOURCE_EXHAUSTED (8) before any data is sent.
    #[arg(long, env = "MSGWIRE_MAX_UPLOAD", value_name = "BYTES", default_value = "1GiB", value_parser = parse_bytes)]
    max_upload: u64,

    /// Unread messages a chat member may have; one more removes it from its room.
    #[arg(long, env = "MSGWIRE_CHAT_BACKLOG", value_name = "N", default_value_t = msgwire_services::DEFAULT_CHAT_BACKLOG,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    chat_backlog: usize,

    /// Seconds an event stream (subscribeEvents) may be idle before it sends a
    /// heartbeat item.
    #[arg(long, env = "MSGWIRE_HEARTBEAT", value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat: u64,
}

/// The HTTP listener's bounds, the same for `msgwire serve` and `msgwire gateway`.
#[derive(Debug, Args)]
pub(crate) struct HttpLimitArgs {
    /// HTTP connections served at once; more are closed as soon as they are accepted.
    #[arg(long, env = "MSGWIRE_HTTP_MAX_CONNECTIONS", value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    http_max_connections: usize,

    /// Seconds an HTTP connection has to send a request's headers (a new connection, or
    /// a kept-alive one between requests); then it is closed.
    #[arg(long, env = "MSGWIRE_HTTP_HEADER_TIMEOUT", value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    http_header_timeout: u64,
}

impl HttpLimitArgs {
    /// As the HTTP app takes them.
    pub(crate) fn limits(&self) -> HttpLimits {
        HttpLimits {
            max_connections: self.http_max_connections,
            header_timeout: Duration::from_secs(self.http_header_timeout),
        }
    }
}

/// A byte count with an optional unit: `1048576`, `64KiB`, `200MiB`, `1 GiB`, `10MB`.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count such as 1048576 or 200MiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} (KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ))
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text} is more bytes than fit in 64 bits"))
}

/// `n` bytes for people: in the largest binary unit it is a whole number of.
fn show_bytes(n: u64) -> String {
    let units = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    units
        .iter()
        .find(|(size, _)| n >= *size && n.is_multiple_of(*size))
        .map_or_else(
            || format!("{n} bytes"),
            |(size, unit)| format!("{} {unit}", n / size),
        )
}

fn seconds(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Runs `msgwire serve` until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
            dir.clone()
        }
        None => PathBuf::from(msgwire_services::DEFAULT_DATA_DIR),
    };
    let backends = args
        .backends
        .open(Duration::from_secs(args.cache_ttl))
        .await
        .context("cannot set up the backends")?;
    let config = ServicesConfig {
        data_dir: data_dir.clone(),
        max_upload: args.max_upload,
        chat_backlog: args.chat_backlog,
        heartbeat: Duration::from_secs(args.heartbeat),
        cache: MemoryCacheConfig {
            default_ttl: Duration::from_secs(args.cache_ttl),
            max_entries: args.cache_entries,
            ..MemoryCacheConfig::default()
        },
        ..ServicesConfig::default()
    };
    let services = match backends.bus() {
        Some(bus) => Services::with_bus(config, bus),
        None => Services::new(config),
    }
    .with_context(|| {
        format!(
            "cannot clear the unfinished uploads in {}",
            data_dir.display()
        )
    })?;
    let services = backends.apply(services);
    let metrics = Metrics::new(
        msgwire_services::STREAM_METHODS,
        Some(Arc::clone(services.cache())),
    );
    let server = Server::builder()
        .layer(metrics.layer())
        .max_frame_length(args.max_frame)
        .max_depth(args.max_depth)
        .max_connections(args.max_connections)
        .max_in_flight(args.max_in_flight)
        .max_notifications(args.max_notifications)
        .write_queue_bytes(args.write_queue)
        .idle_timeout(seconds(args.idle_timeout))
        .first_byte_timeout(seconds(args.first_byte_timeout))
        .shutdown_grace(Duration::from_secs(args.shutdown_grace))
        .build(services.router())
        .context("invalid limits")?;
    let listener = TcpListener::bind(&args.rpc)
        .await
        .with_context(|| format!("cannot listen on {}", args.rpc))?;
    let rpc_addr = listener.local_addr()?;
    say(&format!(
        "rpc listening on {rpc_addr} (msgpack-rpc, framed-binary, framed-map)"
    ));
    say(
        "services math (add, multiply, greet, echo), users (getUser, listUsers), \
         orders (getOrder, listOrders), files (upload, download, fileInfo), chat (chat), \
         events (subscribeEvents, publishEvent), chunked (sumChunked)",
    );
    say(&format!(
        "files in {} (uploads up to {})",
        data_dir.display(),
        show_bytes(args.max_upload)
    ));
    let http = TcpListener::bind(&args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    say(&format!(
        "http listening on {} (JSON and MessagePack endpoints, /rpc/METHOD, /health, /metrics, /ws, playground at /)",
        http.local_addr()?
    ));
    let limits =
        msgwire_wire::Limits::new(args.max_frame, args.max_depth).context("invalid limits")?;
    let backend = Backend::local(
        server.clone(),
        BackendOptions {
            timeout: Duration::from_secs(args.http_timeout),
            ..BackendOptions::default()
        },
    );
    // Cancelled at shutdown: open WebSockets are closed with 1001 (going away).
    let ws_shutdown = tokio_util::sync::CancellationToken::new();
    let ws = WsConfig {
        max_message: usize::try_from(args.max_ws_message).unwrap_or(usize::MAX),
        shutdown: Some(ws_shutdown.clone()),
        ..WsConfig::default()
    };
    for line in backends.described() {
        say(line);
    }
    let app = AppState::new(
        backends.checked(
            AppConfig::new(backend, metrics.clone())
                .with_cache(Arc::clone(services.cache()))
                .with_websocket_config(server.clone(), ws)
                .with_limits(limits)
                .with_http_limits(args.http_limits.limits()),
        ),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(
        server
            .serve(metrics.listener(listener, Transport::Tcp))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );
    tasks.spawn(msgwire_http::app::serve(
        http,
        app,
        stopped(),
        Duration::from_secs(args.shutdown_grace),
    ));
    #[cfg(unix)]
    if let Some(path) = &args.unix {
        if path.exists() {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot replace {}", path.display()))?;
        }
        let unix = tokio::net::UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        say(&format!("rpc listening on unix:{}", path.display()));
        tasks.spawn(
            server
                .serve(metrics.listener(unix, Transport::Unix))
                .with_graceful_shutdown(stopped())
                .into_future(),
        );
    }
    tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            say(&format!("shutting down (grace {} s)", args.shutdown_grace));
            let _ = stop_tx.send(true);
            ws_shutdown.cancel();
        }
        Some(ended) = tasks.join_next() => {
            ended.context("listener task failed")?.context("listener failed")?;
        }
    }
    while let Some(ended) = tasks.join_next().await {
        ended
            .context("listener task failed")?
            .context("listener failed")?;
    }
    if let Some(path) = &args.unix {
        let _ = std::fs::remove_file(path);
    }
    say("stopped");
    Ok(())
}

/// Prints one status line on stdout. The server keeps serving when nobody reads its
/// stdout any more (a closed pipe, a full disk): status lines are not worth dying for.
fn say(line: &str) {
    say_as("serve", line);
}

/// [`say`] for any subcommand: `msgwire COMMAND: line`.
pub(crate) fn say_as(command: &str, line: &str) {
    if let Err(e) = crate::print_line(&format!("msgwire {command}: {line}")) {
        tracing::warn!("cannot print to stdout: {e}");
    }
}

use std::future::IntoFuture as _;

pub(crate) async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => Ok(()),
            ctrl_c = tokio::signal::ctrl_c() => Ok(ctrl_c?),
        }
    }
    #[cfg(not(unix))]
    {
        Ok(tokio::signal::ctrl_c().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_with_units() {
        let ok = |text: &str| parse_bytes(text).ok();
        assert_eq!(ok("0"), Some(0));
        assert_eq!(ok("1048576"), Some(1 << 20));
        assert_eq!(ok("200MiB"), Some(200 << 20));
        assert_eq!(ok("200mib"), Some(200 << 20));
        assert_eq!(ok("1 GiB"), Some(1 << 30));
        assert_eq!(ok("64k"), Some(64 << 10));
        assert_eq!(ok("10MB"), Some(10_000_000));
        assert_eq!(ok("3TB"), Some(3_000_000_000_000));
        for bad in ["", "MiB", "-1", "1.5GiB", "12 parsecs", "99999999999TiB"] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
        assert_eq!(show_bytes(1 << 30), "1 GiB");
        assert_eq!(show_bytes(200 << 20), "200 MiB");
        assert_eq!(show_bytes(1_000), "1000 bytes");
        assert_eq!(show_bytes(0), "0 bytes");
    }
}
