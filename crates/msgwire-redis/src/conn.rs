//! What the cache and the bus share: opening a client, a connection manager whose
//! every wait is bounded, and the typed errors.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{Client, IntoConnectionInfo, RedisError, RedisResult};
use tokio::time::Instant;

/// How long one Redis operation may take, by default: 1 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a [`RedisCache`](crate::RedisCache) or [`RedisBus`](crate::RedisBus) could not
/// be made. Redis being down is not one of them: both start degraded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The URL is not a Redis URL (`redis://host:port/db`, `redis+unix:///path`).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] RedisError),
    /// Made outside a Tokio runtime: the connections and the bus's reader run on it.
    #[error("msgwire-redis must be set up inside a Tokio runtime")]
    NoRuntime,
    /// A configuration value is out of range.
    #[error("invalid msgwire-redis configuration: {0}")]
    InvalidConfig(&'static str),
    /// The Redis client refused the connection settings.
    #[error("cannot set up the Redis connection: {0}")]
    Redis(#[source] RedisError),
}

/// A Redis operation that failed: the source of `CacheError::Backend` and
/// `BusError::Backend`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisBackendError {
    /// Redis did not answer in time (it may be down, or stopped, or far away).
    #[error("Redis did not answer {op} within {timeout:?}")]
    Timeout {
        /// The command, as `GET`.
        op: &'static str,
        /// The bound that passed.
        timeout: Duration,
    },
    /// Redis, or the connection to it, failed.
    #[error("Redis {op} failed: {source}")]
    Redis {
        /// The command, as `GET`.
        op: &'static str,
        /// What the client said.
        #[source]
        source: RedisError,
    },
    /// The bus's subscriber connection is down (it is being re-established).
    #[error("the Redis {what} connection is down")]
    NotConnected {
        /// Which connection.
        what: &'static str,
    },
    /// Redis answered something this crate does not expect (a foreign script or a
    /// different server under the same name).
    #[error("Redis answered {op} unexpectedly: {detail}")]
    Unexpected {
        /// The command.
        op: &'static str,
        /// What came back, briefly.
        detail: String,
    },
}

impl RedisBackendError {
    /// Whether this is a failure of the connection (refused, dropped, timed out)
    /// rather than an answer from Redis.
    pub fn is_connection_failure(&self) -> bool {
        match self {
            RedisBackendError::Timeout { .. } | RedisBackendError::NotConnected { .. } => true,
            RedisBackendError::Redis { source, .. } => {
                source.is_io_error()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_timeout()
            }
            RedisBackendError::Unexpected { .. } => false,
        }
    }
}

/// `url` as a client, after checking that a Tokio runtime is there. TCP connections
/// have `TCP_NODELAY` (a command is one write; nothing to gain from Nagle) and, on
/// Linux, a `TCP_USER_TIMEOUT` of 5 × `timeout` (at least 2 s), so that a connection to
/// a peer that vanished without a reset (a cut network) dies and is replaced, instead
/// of timing out every command forever.
pub(crate) fn open(url: &str, timeout: Duration) -> Result<Client, SetupError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(SetupError::NoRuntime);
    }
    let info = url.into_connection_info().map_err(SetupError::InvalidUrl)?;
    let tcp = TcpSettings::default().set_nodelay(true);
    #[cfg(target_os = "linux")]
    let tcp = tcp.set_user_timeout(timeout.saturating_mul(5).max(Duration::from_secs(2)));
    #[cfg(not(target_os = "linux"))]
    let _ = timeout;
    Client::open(info.set_tcp_settings(tcp)).map_err(SetupError::InvalidUrl)
}

pub(crate) fn check_timeout(timeout: Duration) -> Result<(), SetupError> {
    if timeout.is_zero() || timeout > Duration::from_secs(3600) {
        return Err(SetupError::InvalidConfig(
            "timeout must be more than 0 and at most an hour",
        ));
    }
    Ok(())
}

/// A connection manager that connects on first use, tries each (re)connection once,
/// and bounds connecting and every response by `timeout`.
pub(crate) fn manager(client: Client, timeout: Duration) -> Result<ConnectionManager, SetupError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        // One attempt per reconnection: a command while Redis is down fails at once
        // (and starts the next attempt) instead of waiting out a retry series.
        .set_number_of_retries(0)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(timeout);
    ConnectionManager::new_lazy_with_config(client, config).map_err(SetupError::Redis)
}

/// Runs `attempt` bounded by `timeout` in all; a failure of the connection itself
/// (refused, dropped) is tried once more within the same bound, since the manager
/// reconnects on the first failure and the second attempt uses the new connection.
/// Every command sent this way must be safe to repeat.
pub(crate) async fn bounded<T, F, Fut>(
    op: &'static str,
    timeout: Duration,
    mut attempt: F,
) -> Result<T, RedisBackendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    let deadline = Instant::now() + timeout;
    let expired = || RedisBackendError::Timeout { op, timeout };
    match tokio::time::timeout_at(deadline, attempt()).await {
        Err(_) => Err(expired()),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(first)) if first.is_connection_dropped() || first.is_connection_refusal() => {
            match tokio::time::timeout_at(deadline, attempt()).await {
                Err(_) => Err(RedisBackendError::Redis { op, source: first }),
                Ok(result) => result.map_err(|source| RedisBackendError::Redis { op, source }),
            }
        }
        Ok(Err(source)) => Err(RedisBackendError::Redis { op, source }),
    }
}

/// Random bytes for origin ids and lock tokens: not secret, only unlikely to repeat.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes[..]);
    bytes
}
