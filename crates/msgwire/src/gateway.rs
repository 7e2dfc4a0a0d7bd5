//! `msgwire gateway`: the HTTP side alone, forwarding to services in other processes
//! over RPC — the seed's layout, a gateway in front of separate users and orders
//! services.

use std::time::Duration;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::Args;
use msgwire_http::app::{AppConfig, AppState};
use msgwire_http::backend::{Backend, BackendOptions, METHODS};
use msgwire_http::metrics::Metrics;
use tokio::net::TcpListener;

use crate::serve::{say_as, shutdown_signal, HttpLimitArgs};

/// Options of `msgwire gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address of the HTTP listener. Port 0 picks a free port; the chosen address is
    /// printed.
    #[arg(
        long,
        env = "MSGWIRE_HTTP",
        value_name = "ADDR",
        default_value = "127.0.0.1:7421"
    )]
    http: String,

    /// A service and where it is: NAME=ADDR, with ADDR host:port or unix:PATH (spoken to
    /// in msgpack-rpc). Repeat for each service. NAME is a service of `msgwire serve`
    /// (users, orders, math, files, events) or `*` for every method no other upstream
    /// serves. Example: --upstream users=10.0.0.5:7420 --upstream orders=10.0.0.6:7420
    #[arg(long = "upstream", env = "MSGWIRE_UPSTREAM", value_delimiter = ',', value_name = "NAME=ADDR",
          required = true, value_parser = parse_upstream)]
    upstreams: Vec<(String, String)>,

    /// Milliseconds each call may take, retries included; past it the answer is 504.
    #[arg(long, env = "MSGWIRE_TIMEOUT_MS", value_name = "MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,

    /// Times a call is tried again after a connection failure: any call that could not
    /// be sent, and read-only calls (getUser, listOrders, …) whose connection broke.
    #[arg(long, env = "MSGWIRE_RETRIES", value_name = "N", default_value_t = 2)]
    retries: u32,

    /// Milliseconds one connection attempt to an upstream may take.
    #[arg(long, env = "MSGWIRE_CONNECT_TIMEOUT_MS", value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..))]
    connect_timeout_ms: u64,

    /// Connections kept to each upstream (calls are multiplexed on each).
    #[arg(long, env = "MSGWIRE_POOL_SIZE", value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=1024).map(|n| n as usize))]
    pool_size: usize,

    #[command(flatten)]
    http_limits: HttpLimitArgs,

    /// Seconds requests in flight may take to finish after SIGTERM or Ctrl-C.
    #[arg(
        long,
        env = "MSGWIRE_SHUTDOWN_GRACE",
        value_name = "SECS",
        default_value_t = 30
    )]
    shutdown_grace: u64,
}

fn parse_upstream(text: &str) -> Result<(String, String), String> {
    let (name, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=ADDR (e.g. users=127.0.0.1:7420)"))?;
    let known = name == "*" || METHODS.iter().any(|(service, _, _)| *service == name);
    if !known {
        let mut services: Vec<&str> = METHODS.iter().map(|(s, _, _)| *s).collect();
        services.dedup();
        return Err(format!(
            "unknown service {name:?}: one of {}, or *",
            services.join(", ")
        ));
    }
    if addr.is_empty() {
        return Err(format!("{text:?} names no address"));
    }
    Ok((name.to_owned(), addr.to_owned()))
}

/// Runs `msgwire gateway` until SIGTERM or Ctrl-C.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let metrics = Metrics::new(&[], None);
    let recorder = metrics.clone();
    let backend = Backend::gateway(
        &args.upstreams,
        BackendOptions {
            timeout: Duration::from_millis(args.timeout_ms),
            retries: args.retries,
            connect_timeout: Duration::from_millis(args.connect_timeout_ms),
            pool_size: args.pool_size,
        },
    )
    .with_observer(std::sync::Arc::new(
        move |method, code, duration, params, result| {
            recorder.record_call(method, code, duration, params, result);
        },
    ));
    let http = TcpListener::bind(&args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    say_as(
        "gateway",
        &format!(
            "http listening on {} (JSON and MessagePack endpoints, /rpc/METHOD, /health, /metrics)",
            http.local_addr()?
        ),
    );
    for (name, addr) in &args.upstreams {
        say_as("gateway", &format!("upstream {name} at {addr}"));
    }
    let app = AppState::new(
        AppConfig::new(backend, metrics)
            .with_role("gateway")
            .with_http_limits(args.http_limits.limits()),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(msgwire_http::app::serve(
        http,
        app,
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(args.shutdown_grace),
    ));
    tokio::pin!(serving);
    tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            say_as("gateway", &format!("shutting down (grace {} s)", args.shutdown_grace));
            let _ = stop_tx.send(());
            serving.await.context("http task failed")?.context("http listener failed")?;
        }
        ended = &mut serving => {
            ended.context("http task failed")?.context("http listener failed")?;
        }
    }
    say_as("gateway", "stopped");
    Ok(())
}
