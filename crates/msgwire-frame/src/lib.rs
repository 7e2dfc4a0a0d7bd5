//! # msgwire-frame — sans-IO framing
//!
//! Bytes arrive from a socket in whatever pieces the network chose: one read may hold
//! half a message, the next three and a half. This crate turns such a byte stream back
//! into whole frames, and whole frames into bytes, without doing any I/O itself.
//!
//! Every framing implements one contract, [`Framing`], modelled on
//! `tokio_util::codec::Decoder`:
//!
//! * `Ok(Some(frame))` — a whole frame was removed from the front of the buffer;
//! * `Ok(None)` — need more bytes; nothing the framing has not already accounted for is
//!   removed, and the framing keeps a resume point so nothing is scanned twice;
//! * `Err(error)` — a typed [`Error`] that says what was wrong and, through
//!   [`Error::is_fatal`], whether the stream can go on.
//!
//! | framing | module | wire shape |
//! |---|---|---|
//! | length-prefixed (Netty's full option set) | [`length`] | `[len: 1/2/3/4/8 bytes][payload]` |
//! | varint-prefixed (protobuf style) | [`varint`] | `[LEB128 len][payload]` |
//! | delimiter | [`delimiter`] | `payload DELIM payload DELIM` |
//! | self-delimited MessagePack | [`msgpack`] | `value value value` |
//! | WebSocket (RFC 6455) | [`websocket`] | `[FIN/RSV/op][MASK/len][ext len][mask][payload]` |
//! | HTTP/1.1 chunked | [`chunked`] | `hex-size\r\n data \r\n … 0\r\n\r\n` |
//! | gRPC message prefix | [`grpc`] | `[flag: u8][len: u32 BE][payload]` |
//!
//! The bytes live in an [`InputBuffer`]; three strategies are swappable under every
//! framing: a growable [`bytes::BytesMut`], a [`buffer::RingBuffer`] and a
//! [`buffer::PooledBuffer`] backed by a [`buffer::BufferPool`].
//!
//! [`StreamDecoder`] drives a framing over a buffer and reports the stream offset of each
//! frame and each error. With the `codec` feature, `codec::FrameCodec` adapts any
//! framing to `tokio_util::codec::{Decoder, Encoder}`.
//!
//! ```
//! use msgwire_frame::{length::LengthPrefixed, StreamDecoder};
//!
//! let mut wire = Vec::new();
//! for msg in [&b"hello"[..], b"world"] {
//!     wire.extend_from_slice(&(msg.len() as u32).to_be_bytes());
//!     wire.extend_from_slice(msg);
//! }
//! let mut decoder = StreamDecoder::new(LengthPrefixed::new(), bytes::BytesMut::new());
//! let mut frames = Vec::new();
//! for piece in wire.chunks(3) {                // any chunking decodes the same
//!     decoder.feed(piece);
//!     while let Some(decoded) = decoder.next_frame()? {
//!         frames.push((decoded.offset, decoded.frame));
//!     }
//! }
//! assert_eq!(frames[0].0, 0);
//! assert_eq!(&frames[1].1[..], b"world");
//! assert_eq!(frames[1].0, 9);
//! # Ok::<(), msgwire_frame::StreamError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod buffer;
pub mod chunked;
#[cfg(feature = "codec")]
pub mod codec;
pub mod delimiter;
mod error;
mod framing;
pub mod grpc;
pub mod length;
pub mod msgpack;
mod stream;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod varint;
pub mod websocket;

pub use buffer::InputBuffer;
pub use error::{Error, Result};
pub use framing::{Encode, Framing};
pub use stream::{Decoded, StreamDecoder, StreamError};

/// The default largest frame: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
