//! # msgwire-rpc — MessagePack RPC on tokio
//!
//! An async client and server over any `AsyncRead + AsyncWrite`, with TCP and Unix
//! listeners, speaking the three dialects of [`msgwire_wire`] (msgpack-rpc as Neovim
//! speaks it, framed-binary, framed-map), so that programs in Python, Node, Go or Lua
//! can call it with their stock MessagePack library.
//!
//! * **One connection, many calls.** Requests are pipelined; responses come back as
//!   their handlers finish, in any order, matched by id. Notifications go both ways.
//! * **Symmetric.** Both ends run the same connection driver: a [`Router`] for the calls
//!   it answers, a table of the calls it waits for. A handler's [`Context`] calls the
//!   peer on the same connection; a [`Client`] built with a router answers the server.
//! * **Typed handlers**, one line each; `params` as an array or a map reach the same
//!   serde type. Errors carry gRPC status [`Code`]s.
//! * **tower middleware**: the router is a `tower::Service<RpcRequest>`;
//!   [`ServerBuilder::layer`] takes any layer (timeouts, concurrency limits, logging).
//! * **Deadlines and cancellation**: [`CallOptions::timeout`]; a passed deadline sends
//!   the `"$/cancel"` notification and the server drops that handler. A client that
//!   disconnects cancels all its handlers.
//! * **Limits** on frames, nesting, connections, calls in flight, idle and silent
//!   connections; graceful shutdown with a grace period.
//!
//! ```
//! use msgwire_rpc::{Client, Dialect, Router, RpcError, Server};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct AddParams { a: i64, b: i64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let router = Router::new()
//!     .method("add", |p: AddParams| async move { Ok::<_, RpcError>(p.a + p.b) });
//! let server = Server::builder().max_in_flight(64).build(router)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(server.serve_tcp(listener).into_future());
//!
//! let client = Client::connect_tcp(addr, Dialect::MsgpackRpc).await?;
//! // Positional params…
//! let sum: i64 = client.call_typed("add", &(1, 2)).await?;
//! assert_eq!(sum, 3);
//! // …or named ones, to the same handler.
//! #[derive(serde::Serialize)]
//! struct Named { a: i64, b: i64 }
//! let sum: i64 = client.call_typed("add", &Named { a: 40, b: 2 }).await?;
//! assert_eq!(sum, 42);
//!
//! let err = client.call("nope", Vec::<msgwire_rpc::Value>::new()).await.unwrap_err();
//! assert_eq!(err.code(), msgwire_rpc::Code::Unimplemented);
//! # Ok(())
//! # }
//! # use std::future::IntoFuture;
//! ```
//!
//! ## How a connection behaves
//!
//! * Each connection's logic is a sans-IO [`Session`](session::Session) — ids, calls
//!   waiting and their deadlines, calls running, notifications queued, what is waiting
//!   to be written, the idle timer — fed decoded messages and the time, and polled for
//!   what to send, what to run and when to wake. Two small tokio tasks drive it: a
//!   reader and a writer.
//! * Params and results stay MessagePack bytes ([`RawValue`]) from the frame they came
//!   in to the handler's serde type: no tree is built, so a connection holds about the
//!   bytes it received, not thirty times that.
//! * The reader polls each request's handler once: one that has its answer at once is
//!   answered right there, in order, without a task; one that waits becomes a task of
//!   its own, so a slow handler holds up nothing else, and responses go out as handlers
//!   finish. (Keep long computations off the async path, e.g. in
//!   `tokio::task::spawn_blocking`: a handler that computes for long before it first
//!   waits holds up its connection's reading meanwhile.) A large framed message is
//!   parsed on the blocking pool, so it does not hold up other connections; and the
//!   reader yields to the runtime after every 64 KiB it reads, so a peer that sends
//!   without pause (a msgpack-rpc message is scanned as it arrives) holds up the other
//!   connections on its worker for one read's work at most.
//!   Notifications from one connection run one at a time, in the order they arrived.
//! * The writer encodes everything that is queued into one buffer and writes it with
//!   one system call: under load one write carries dozens of messages; with one call
//!   in flight nothing waits.
//! * What is queued for writing is bounded in bytes: past it, the connection stops
//!   reading the peer's requests and this end's callers wait, so a peer that does not
//!   read its answers stops being read, and is closed once a write makes no progress
//!   for the idle timeout.
//! * A request over the in-flight limit, or reusing the id of a call in flight, is
//!   answered at once (RESOURCE_EXHAUSTED, INVALID_ARGUMENT). A whole frame that is not
//!   a message is answered: INVALID_ARGUMENT for its id if it has one, else an error
//!   that belongs to no call (msgpack-rpc and framed-binary then close). Bytes that can
//!   never become a message close the connection, after answering the request they
//!   broke in when its id can be read.
//! * When a connection closes, its handlers are dropped (a client that disconnects
//!   cancels its calls), and calls waiting on it fail with a connection error
//!   ([`CallError::is_connection_error`]).
//! * Until a connection's first bytes arrive it holds no buffer, queue or task beyond
//!   a few hundred bytes of state; an idle one lets its buffers go.
//!
//! Modules: [`session`] (the state machine), [`router`] (handlers and the tower
//! service), [`client`] (calls and options), [`builder`] (settings both ends share),
//! [`server`] (listeners, graceful shutdown), [`context`] (a handler's way back to its
//! peer), [`config`] (the limits and their defaults). The wire format is specified in
//! `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod builder;
pub mod client;
pub mod config;
mod connection;
pub mod context;
mod dispatch;
mod error;
mod params;
mod room;
pub mod router;
pub mod server;
pub mod session;
pub mod stream;

pub use builder::{Builder, ClientBuilder, ClientSide};
pub use client::{CallOptions, Client};
pub use config::ConnectionConfig;
pub use context::Context;
pub use dispatch::RpcService;
pub use error::{rpc_error_from_box, BoxError, CallError, CloseReason, ProtocolError, Result};
pub use router::{RequestKind, Router, RpcRequest};
pub use server::{Listener, Serve, Server, ServerBuilder, ServerSide, WithGracefulShutdown};
pub use stream::{StreamReceiver, StreamSender};

pub use msgwire_wire::{
    CallId, Code, ConfigError, Dialect, Limits, Message, RawValue, RpcError, UnknownDialect, Value,
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, MAX_DEPTH_LIMIT,
};
