//! `GET /health`: is this process and what it depends on well.
//!
//! ```json
//! {"status": "ok", "role": "serve", "version": "0.1.0", "uptime_seconds": 12.5,
//!  "connections": {"tcp": 1, "unix": 0, "websocket": 2, "http": 1},
//!  "streams_open": 0,
//!  "memory": {"rss_bytes": 12345678},
//!  "dependencies": [{"name": "cache", "status": "ok", "detail": "in-process, 3 entries"}]}
//! ```
//!
//! Any dependency down makes the status `degraded` and the HTTP status 503, with the
//! same body; the check of each is bounded in time, so `/health` answers even when an
//! upstream hangs. MessagePack with `Accept: application/x-msgpack`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use msgwire_wire::RawValue;
use serde::Serialize;

use super::api::{negotiate, ok};
use super::AppState;
use crate::backend::Dependency;
use crate::error::Failure;

/// The longest any one dependency check may take.
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    role: &'static str,
    version: &'static str,
    uptime_seconds: f64,
    connections: BTreeMap<String, i64>,
    streams_open: i64,
    memory: Memory,
    dependencies: Vec<Dependency>,
}

#[derive(Debug, Serialize)]
struct Memory {
    rss_bytes: Option<u64>,
}

/// The resident set size, from `/proc/self/status` (Linux; `None` elsewhere).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

async fn cache_dependency(state: &AppState) -> Option<Dependency> {
    let cache = state.config().cache.as_ref()?;
    let check = tokio::time::timeout(CHECK_TIMEOUT, cache.check()).await;
    let stats = cache.stats();
    Some(match check {
        Ok(Ok(())) => Dependency {
            name: "cache".into(),
            status: "ok",
            detail: format!(
                "{} entries, {} hits, {} misses",
                stats.entries, stats.hits, stats.misses
            ),
        },
        Ok(Err(error)) => Dependency {
            name: "cache".into(),
            status: "down",
            detail: error.to_string(),
        },
        Err(_) => Dependency {
            name: "cache".into(),
            status: "down",
            detail: format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
        },
    })
}

async fn checked(name: &str, check: &super::Check) -> Dependency {
    let (status, detail) = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
        Ok(Ok(detail)) => ("ok", detail),
        Ok(Err(wrong)) => ("down", wrong),
        Err(_) => (
            "down",
            format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
        ),
    };
    Dependency {
        name: name.to_owned(),
        status,
        detail,
    }
}

/// `GET /health`.
pub(super) async fn health(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let format = negotiate(&headers, crate::negotiate::Format::Json)?;
    let config = state.config();
    let upstreams = config.backend.dependencies();
    let checks = futures::future::join_all(
        config
            .checks
            .0
            .iter()
            .map(|(name, check)| checked(name, check)),
    );
    let (mut dependencies, cache, checked) = tokio::join!(
        async {
            tokio::time::timeout(CHECK_TIMEOUT * 2, upstreams)
                .await
                .unwrap_or_else(|_| {
                    vec![Dependency {
                        name: "upstreams".into(),
                        status: "down",
                        detail: "the checks did not finish in time".into(),
                    }]
                })
        },
        cache_dependency(&state),
        checks,
    );
    dependencies.extend(cache);
    dependencies.extend(checked);
    let degraded = dependencies.iter().any(|d| d.status != "ok");
    let connections = config
        .metrics
        .open_connections()
        .into_iter()
        .map(|(transport, n)| (transport.to_string(), n))
        .collect();
    let health = Health {
        status: if degraded { "degraded" } else { "ok" },
        role: config.role,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.0.started.elapsed().as_secs_f64(),
        connections,
        streams_open: config.metrics.streams_open(),
        memory: Memory {
            rss_bytes: rss_bytes(),
        },
        dependencies,
    };
    let body = RawValue::serialize(&health).map_err(|e| {
        Failure(
            crate::error::ApiError::new(msgwire_wire::Code::Internal, e.to_string()),
            format,
        )
    })?;
    let mut response = ok(&body, format);
    if degraded {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    Ok(response.into_response())
}
