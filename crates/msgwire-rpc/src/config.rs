//! One connection's limits and sizes, the same for both ends: what [`ClientBuilder`]
//! and [`ServerBuilder`] set with their shared setters, checked once when they build.
//!
//! | limit | default | what happens past it |
//! |---|---|---|
//! | max frame | 16 MiB | the connection is closed (the request is answered first when its id can be read) |
//! | max depth | 128 | the message is answered INVALID_ARGUMENT (closed when it cannot even be measured, at twice the limit, without a length prefix) |
//! | max in flight | 1024 calls | RESOURCE_EXHAUSTED (8) at once |
//! | max notifications | 1024 queued | dropped, with a rate-limited warning |
//! | write queue | 1 MiB | the connection stops being read (and callers wait) until the peer reads |
//! | idle timeout | none for clients, 300 s for servers | the connection is closed |
//! | linger | 5 s | what is still queued when the connection closes is dropped |
//! | stream window | 64 items, 1 MiB (fixed by the protocol) | the sender of a stream waits for credit (a peer that sends past it fails its stream) |
//! | keepalive | a `$/ping` after 30 s without input while calls or streams are open | no answer within 20 s more closes the connection |
//!
//! [`ClientBuilder`]: crate::ClientBuilder
//! [`ServerBuilder`]: crate::ServerBuilder

use std::time::Duration;

use msgwire_wire::{ConfigError, Dialect, Limits, WireCodec, DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME};

/// Calls from the peer handled at once per connection.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1024;
/// Notifications from the peer queued or running at once per connection.
pub const DEFAULT_MAX_NOTIFICATIONS: u32 = 1024;
/// Bytes queued for the socket before a connection stops reading.
pub const DEFAULT_WRITE_QUEUE_BYTES: usize = 1024 * 1024;
/// How long a closing connection may take to write what it has queued.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(5);
/// How long a connection with calls or streams open may go without input before it
/// sends a `$/ping`.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long after a `$/ping` a silent peer's connection is closed.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
pub use msgwire_wire::{DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_ITEMS};

/// The settings as they are set, before they are checked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_frame_length: usize,
    pub(crate) max_depth: usize,
    pub(crate) max_in_flight: u32,
    pub(crate) max_notifications: u32,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_queue_bytes: usize,
    pub(crate) linger: Duration,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
}

impl Settings {
    /// The defaults, with `idle_timeout`.
    pub(crate) fn with_idle_timeout(idle_timeout: Option<Duration>) -> Self {
        Self {
            max_frame_length: DEFAULT_MAX_FRAME,
            max_depth: DEFAULT_MAX_DEPTH,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_notifications: DEFAULT_MAX_NOTIFICATIONS,
            idle_timeout,
            write_queue_bytes: DEFAULT_WRITE_QUEUE_BYTES,
            linger: DEFAULT_LINGER,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
        }
    }

    /// Checks the settings.
    pub(crate) fn check(&self) -> Result<ConnectionConfig, ConfigError> {
        let limits = Limits::new(self.max_frame_length, self.max_depth)?;
        let [a, b, c] = Dialect::ALL.map(|dialect| WireCodec::with_limits(dialect, limits));
        Ok(ConnectionConfig {
            codecs: [a?, b?, c?],
            max_in_flight: self.max_in_flight.max(1),
            max_notifications: self.max_notifications.max(1),
            idle_timeout: self.idle_timeout,
            write_queue_bytes: self.write_queue_bytes.max(1),
            linger: self.linger,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            session: session_limits(
                self.max_in_flight.max(1),
                self.max_notifications.max(1),
                self.idle_timeout,
                self.write_queue_bytes.max(1),
                (self.keepalive_interval, self.keepalive_timeout),
            ),
        })
    }
}

/// Checked connection settings (see the [module docs](self) for each).
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// A fresh codec for each dialect, in [`Dialect::ALL`] order.
    codecs: [WireCodec; 3],
    pub(crate) max_in_flight: u32,
    pub(crate) max_notifications: u32,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_queue_bytes: usize,
    pub(crate) linger: Duration,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Duration,
    /// The same limits, as every session holds them.
    session: std::sync::Arc<crate::session::Limits>,
}

impl ConnectionConfig {
    /// The defaults of a client (no idle timeout).
    pub fn client_default() -> Self {
        Self::defaults(None)
    }

    /// The defaults of a server (a 300 s idle timeout).
    pub fn server_default() -> Self {
        Self::defaults(Some(Duration::from_secs(300)))
    }

    fn defaults(idle_timeout: Option<Duration>) -> Self {
        Self {
            codecs: Dialect::ALL.map(WireCodec::new),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_notifications: DEFAULT_MAX_NOTIFICATIONS,
            idle_timeout,
            write_queue_bytes: DEFAULT_WRITE_QUEUE_BYTES,
            linger: DEFAULT_LINGER,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            session: session_limits(
                DEFAULT_MAX_IN_FLIGHT,
                DEFAULT_MAX_NOTIFICATIONS,
                idle_timeout,
                DEFAULT_WRITE_QUEUE_BYTES,
                (Some(DEFAULT_KEEPALIVE_INTERVAL), DEFAULT_KEEPALIVE_TIMEOUT),
            ),
        }
    }

    /// A codec for a new connection speaking `dialect`.
    pub fn codec(&self, dialect: Dialect) -> WireCodec {
        let at = Dialect::ALL
            .iter()
            .position(|d| *d == dialect)
            .unwrap_or_default();
        self.codecs[at].clone()
    }

    /// The frame and nesting limits.
    pub fn limits(&self) -> &Limits {
        self.codecs[0].limits()
    }

    /// Calls from the peer handled at once.
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight
    }

    /// Notifications from the peer queued or running at once.
    pub fn max_notifications(&self) -> u32 {
        self.max_notifications
    }

    /// How long a connection may be idle.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// Bytes queued for the socket before the connection stops reading.
    pub fn write_queue_bytes(&self) -> usize {
        self.write_queue_bytes
    }

    /// The keepalive interval (`None`: no pings) and timeout.
    pub fn keepalive(&self) -> (Option<Duration>, Duration) {
        (self.keepalive_interval, self.keepalive_timeout)
    }

    /// The limits sessions made from this configuration share.
    pub(crate) fn session_limits(&self) -> std::sync::Arc<crate::session::Limits> {
        std::sync::Arc::clone(&self.session)
    }
}

fn session_limits(
    max_in_flight: u32,
    max_notifications: u32,
    idle_timeout: Option<Duration>,
    write_queue_bytes: usize,
    keepalive: (Option<Duration>, Duration),
) -> std::sync::Arc<crate::session::Limits> {
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1);
    std::sync::Arc::new(crate::session::Limits {
        max_in_flight,
        max_notifications,
        idle_timeout,
        write_queue_bytes,
        keepalive_ms: keepalive.0.map(|interval| (ms(interval), ms(keepalive.1))),
    })
}
