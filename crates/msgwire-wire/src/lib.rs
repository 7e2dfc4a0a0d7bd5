//! # msgwire-wire — RPC messages and their three wire dialects, sans-IO
//!
//! One RPC port speaks three dialects, told apart by a connection's first bytes
//! ([`detect`]); `docs/PROTOCOL.md` specifies them byte by byte:
//!
//! ```text
//! msgpack-rpc    [0, id, method, params]  [1, id, error, result]  [2, method, params]
//!                MessagePack arrays back to back, no prefix (what Neovim speaks)
//! framed-binary  [u32 BE len][u8 type][u32 BE id][map]   type 1 request, 2 response,
//!                3 notification; len counts everything after itself
//! framed-map     [u32 BE len][map {"method","params","id"} / {"result","error","id"}]
//! ```
//!
//! [`WireCodec`] turns bytes into [`Message`]s and back for one dialect, within
//! [`Limits`] (frame size checked on the header, nesting depth capped before anything
//! is decoded). Params and results stay [`RawValue`]s — slices of the frame they came
//! in, never a tree — so memory stays within a small multiple of the bytes received.
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_wire::{detect, Detected, Dialect, Message, Value, WireCodec};
//!
//! let mut codec = WireCodec::new(Dialect::MsgpackRpc);
//! let mut wire = BytesMut::new();
//! let request = Message::Request {
//!     id: 7u32.into(),
//!     method: "add".into(),
//!     params: Value::Array(vec![1.into(), 2.into()]).into(),
//! };
//! codec.encode(&request, &mut wire)?;
//! assert_eq!(&wire[..], b"\x94\x00\x07\xa3add\x92\x01\x02");
//! assert_eq!(detect(&wire), Detected::Dialect(Dialect::MsgpackRpc));
//! assert_eq!(codec.decode(&mut wire)?, Some(request));
//! # Ok::<(), msgwire_wire::WireError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bin;
mod code;
mod codec;
mod dialect;
mod error;
pub mod id;
mod limits;
mod message;
mod raw;
pub mod stream;
pub mod text;

pub use bin::Bin;
pub use code::Code;
pub use codec::{decode_value, Encoder, Frame, Held, WireCodec};
pub use dialect::{detect, Detected, Dialect, UnknownDialect};
pub use error::{
    ConfigError, EncodeError, Malformed, MalformedReason, MessageKind, Result, WireError,
};
pub use id::CallId;
pub use limits::{Limits, DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, MAX_DEPTH_LIMIT};
pub use message::{Message, RpcError, CANCEL_METHOD, ERROR_METHOD};
pub use raw::{ArrayItems, MapEntries, RawValue, ValueKind};
pub use rmpv::Value;
pub use stream::{StreamMessage, DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_ITEMS, PING_METHOD};
