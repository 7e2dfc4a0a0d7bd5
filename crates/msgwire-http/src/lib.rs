//! msgwire's HTTP side: outside callers speak HTTP and JSON, the services inside speak
//! MessagePack.
//!
//! * [`app`] — the axum [`Router`](axum::Router): JSON and MessagePack endpoints,
//!   `POST /rpc/:method`, `/health`, `/metrics`, `/ws` and the playground page at `/`;
//! * [`backend`] — where the app's calls go: the in-process server (`msgwire serve`) or
//!   upstream services over RPC with a connection pool (`msgwire gateway`);
//! * [`json`] — MessagePack values as JSON and back (`{"$bin": base64}` and friends);
//! * [`metrics`] — Prometheus metrics counted on every transport and dialect;
//! * [`ws`] — msgpack-rpc over WebSocket with msgwire's own RFC 6455 framing;
//! * [`page`] — the browser playground, built into the binary.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod backend;
pub mod error;
pub mod json;
pub mod metrics;
pub mod negotiate;
pub mod page;
pub mod ws;
