//! msgpack-rpc over WebSocket: `GET /ws` upgrades to a WebSocket (RFC 6455) that
//! carries one msgpack-rpc message per binary message, both ways — requests,
//! responses, notifications, and the stream messages of `docs/PROTOCOL.md` section 10
//! (`$/item`, `$/credit`, ...), each its own message. Framing is msgwire's own
//! ([`msgwire_frame::websocket`]); the RPC side is [`msgwire_rpc::Server`]'s ordinary
//! connection, so everything a TCP client gets (dialect rules, limits, streams with
//! credit, `$/ping`) a WebSocket client gets too.
//!
//! ```text
//!  peer ══ TCP ══ socket task ═══════════════════ bridge ═══════════ Server::serve_connection
//!                 (socket.rs)                     (bridge.rs)         (msgwire-rpc, unchanged)
//!   masked frames ──► header checks, decode ──► one msgpack value? ──► its read: bytes
//!                     pings ► pongs              whole messages queued   back to back
//!   binary frames ◄── one write per batch ◄──── one frame per value ◄── its write: bytes
//!                     pings every 30 s           (scanned as written)    back to back
//! ```
//!
//! * [`upgrade`] — the handshake ([`handshake`](self) module docs), then a task running
//!   [`serve_socket`] on the upgraded stream;
//! * [`serve_socket`] — the protocol on any byte stream already upgraded;
//! * [`serve_echo`] — the same socket loop answering each message with itself (for
//!   benchmarks and for testing clients);
//! * [`WsConfig`] — limits and timers; the close codes are in the [`close`] module.
//!
//! What a binary message must hold: exactly one MessagePack value (measured, never
//! decoded, nested at most [`WsConfig::max_depth`]); the first message must be a
//! msgpack-rpc array (of 3 or 4), so the RPC side always speaks msgpack-rpc.
//! Text messages are refused (1003): msgpack-rpc is binary. Fragmented messages are
//! accepted up to [`WsConfig::max_fragments`] fragments. Extensions (permessage-deflate)
//! are declined; the subprotocol `msgpack-rpc` is accepted if offered and not required.
//!
//! Keepalive: every [`WsConfig::ping_interval`] the server pings; a peer that sends
//! nothing at all — no pong, no frame — within [`WsConfig::pong_timeout`] of a ping is
//! closed with 1011. Closing: the peer's close is echoed with its code and the
//! connection shut; a close the server starts (shutdown: 1001, a bad frame: see
//! [`close`]) waits at most [`WsConfig::close_timeout`] for the peer's close (reading
//! and dropping what it still sends, so that the close frame is not lost to a reset),
//! then drops the connection. A bad socket ends only itself.
//!
//! ```no_run
//! use axum::{extract::Request, routing::get, Router};
//! use msgwire_http::ws::{upgrade, WsConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = msgwire_rpc::Server::new(msgwire_services::router());
//! let app = Router::new().route(
//!     "/ws",
//!     get(move |request: Request| {
//!         let server = server.clone();
//!         async move { upgrade(request, server, WsConfig::default(), ()) }
//!     }),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7421").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod bridge;
pub mod close;
mod handshake;
mod outgoing;
mod socket;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub use handshake::{accept_key, upgrade};
use socket::{Mode, Socket};

/// The subprotocol accepted when a client offers it.
pub const SUBPROTOCOL: &str = "msgpack-rpc";

/// Limits and timers of a WebSocket. `Default` gives the values each field names.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// The largest message, all fragments together, in bytes (default 16 MiB,
    /// [`msgwire_rpc::DEFAULT_MAX_FRAME`]); checked on each frame's header, before its
    /// payload is buffered. A larger one closes the socket with 1009. Also the largest
    /// message the server sends: keep it at least the RPC server's max frame.
    pub max_message: usize,
    /// The most fragments one message may come in (default 1024); more close the
    /// socket with 1008, however small they are.
    pub max_fragments: usize,
    /// How deep a message's MessagePack may nest (default 265: the RPC server's measure
    /// depth, twice its default limit of 128 plus one for the message's own array, so
    /// that what lies between its limit and this one is answered INVALID_ARGUMENT by
    /// the RPC side rather than closed here). Deeper closes the socket with 1009.
    pub max_depth: usize,
    /// How often the server pings (default 30 s); `None` turns pings off.
    pub ping_interval: Option<Duration>,
    /// How long after a ping the peer may stay silent (default 20 s, as the RPC
    /// keepalive's timeout); then the socket closes with 1011.
    pub pong_timeout: Duration,
    /// How long a close the server started (or echoed) waits for the peer's close and
    /// for the close frame to be written (default 5 s); then the connection is dropped.
    pub close_timeout: Duration,
    /// When this fires, the socket closes with 1001 (going away). `None`: never.
    pub shutdown: Option<CancellationToken>,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_message: msgwire_rpc::DEFAULT_MAX_FRAME,
            max_fragments: 1024,
            max_depth: msgwire_wire::Limits::default().measure_depth() + 1,
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
            shutdown: None,
        }
    }
}

/// Runs the WebSocket protocol (server role) on an already-upgraded byte stream and
/// serves msgpack-rpc over it with `server` ([`msgwire_rpc::Server::serve_connection`])
/// until it closes. The RPC connection runs in this task beside the socket; when the
/// socket is done, whatever of it is left (handlers still running) is dropped.
pub async fn serve_socket<IO>(io: IO, server: msgwire_rpc::Server, config: WsConfig)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (bridge, link) = bridge::pair(config.max_message);
    let mut socket = Socket::new(io, link, Mode::Rpc, config);
    let mut rpc = pin!(server.serve_connection(bridge));
    let mut rpc_open = true;
    poll_fn(|cx| {
        if rpc_open {
            if let Poll::Ready(result) = rpc.as_mut().poll(cx) {
                rpc_open = false;
                socket.rpc_ended(result);
            }
        }
        let done = socket.poll(cx);
        // Messages just handed over are read now, not on the next wake-up.
        if rpc_open && done.is_pending() && socket.handed_over() {
            if let Poll::Ready(result) = rpc.as_mut().poll(cx) {
                rpc_open = false;
                socket.rpc_ended(result);
                return socket.poll(cx);
            }
        }
        done
    })
    .await;
}

/// Runs the same socket loop as [`serve_socket`], but answers every text or binary
/// message with an identical one instead of serving RPC: an echo server for benchmarks
/// and for testing WebSocket clients. Pings, closes and limits are as in
/// [`serve_socket`] (text is echoed, not refused; binary is not checked for
/// MessagePack).
pub async fn serve_echo<IO>(io: IO, config: WsConfig)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (_bridge, link) = bridge::pair(config.max_message);
    let mut socket = Socket::new(io, link, Mode::Echo, config);
    poll_fn(|cx| socket.poll(cx)).await;
}
