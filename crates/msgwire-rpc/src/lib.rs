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
//! let server = Server::builder().max_in_flight(64).build(router);
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
//! * The connection's reader polls each request's handler once: one that has its
//!   answer at once is answered right there, in order, without a task; one that waits
//!   becomes a task of its own, so a slow handler holds up nothing else, and responses
//!   go out as handlers finish. (Keep long computations off the async path, e.g. in
//!   `tokio::task::spawn_blocking`: a handler that computes for long before it first
//!   waits holds up its connection's reading meanwhile.) Notifications from one
//!   connection run one at a time, in the order they arrived.
//! * One writer task per connection encodes everything that is queued into one buffer
//!   and writes it with one system call: under load one write carries dozens of
//!   messages; with one call in flight nothing waits.
//! * The outgoing queue is bounded. A handler waits for room before its call counts as
//!   finished, so a peer that does not read its answers soon has its requests turned
//!   away or unread, and is closed once a write makes no progress for the idle timeout.
//! * A request over the in-flight limit is answered RESOURCE_EXHAUSTED (8) at once. Bytes
//!   that can never become a message (no dialect, a length no frame can hold, nesting
//!   too deep) close the connection; a well-framed request of the wrong shape is
//!   answered INVALID_ARGUMENT (3) and the connection goes on.
//! * When a connection closes, its handlers are dropped (a client that disconnects
//!   cancels its calls), and calls waiting on it fail with a connection error
//!   ([`CallError::is_connection_error`]).
//! * Until a connection's first bytes arrive it holds no buffer, queue or task beyond
//!   a few hundred bytes of state.
//!
//! Modules: [`router`] (handlers and the tower service), [`client`] (calls and
//! options), [`server`] (limits, listeners, graceful shutdown), [`context`] (a
//! handler's way back to its peer). The wire format is specified in `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod connection;
pub mod context;
mod error;
mod params;
pub mod router;
pub mod server;

pub use client::{CallOptions, Client, ClientBuilder};
pub use connection::DEFAULT_MAX_FRAME_LENGTH;
pub use context::Context;
pub use error::{rpc_error_from_box, BoxError, CallError};
pub use router::{RequestKind, Router, RpcRequest, RpcService};
pub use server::{Listener, Serve, Server, ServerBuilder, WithGracefulShutdown};

pub use msgwire_wire::{CallId, Code, Dialect, Message, RpcError, Value};
