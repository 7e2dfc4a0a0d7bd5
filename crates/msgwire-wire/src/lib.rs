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
//! [`WireCodec`] turns bytes into [`Message`]s and back for one dialect, with the limits
//! of the framing layer (frame size checked on the header, nesting depth capped before
//! anything is decoded).
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_wire::{detect, Detected, Dialect, Message, Value, WireCodec};
//!
//! let mut codec = WireCodec::new(Dialect::MsgpackRpc);
//! let mut wire = BytesMut::new();
//! let request = Message::Request { id: 7, method: "add".into(), params: Value::Array(vec![1.into(), 2.into()]) };
//! codec.encode(&request, &mut wire)?;
//! assert_eq!(&wire[..], b"\x94\x00\x07\xa3add\x92\x01\x02");
//! assert_eq!(detect(&wire), Detected::Dialect(Dialect::MsgpackRpc));
//! assert_eq!(codec.decode(&mut wire)?, Some(request));
//! # Ok::<(), msgwire_wire::WireError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod code;
mod dialect;
mod message;

pub use code::Code;
pub use dialect::{
    decode_value, detect, Detected, Dialect, WireCodec, WireCodecBuilder, WireError,
};
pub use message::{CallId, Message, RpcError, CANCEL_METHOD};
pub use rmpv::Value;
