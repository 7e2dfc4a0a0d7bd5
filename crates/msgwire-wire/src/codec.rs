//! [`WireCodec`]: bytes to [`Message`]s and back, for one dialect, within [`Limits`].
//!
//! Decoding is two steps, which a driver may run apart (the second can be heavy for a
//! large framed message, so a server can move it off the task that reads):
//!
//! ```text
//!  bytes ──next_frame──> Frame ──parse──> Message
//!        (framing only:          (the envelope; a framed body is scanned
//!         cheap; msgpack-rpc      here, msgpack-rpc was scanned while
//!         scans as bytes come)    framing)
//! ```
//!
//! With the `codec` feature, `WireCodec` is a `tokio_util::codec::{Decoder, Encoder}`.
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_wire::{CallId, Dialect, Message, RawValue, Value, WireCodec};
//!
//! let mut codec = WireCodec::new(Dialect::FramedMap);
//! let mut wire = BytesMut::new();
//! let request = Message::Request {
//!     id: CallId::string("req-uuid-001").unwrap(),
//!     method: "getUser".into(),
//!     params: RawValue::from(Value::Map(vec![("id".into(), 123.into())])),
//! };
//! codec.encode(&request, &mut wire)?;
//! assert_eq!(codec.decode(&mut wire)?, Some(request));
//! # Ok::<(), msgwire_wire::WireError>(())
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use msgwire_frame::{length::LengthPrefixed, msgpack::SelfDelimited, Framing};

use crate::dialect::encode::Body;
use crate::dialect::{
    encode_body, parse_framed_binary, parse_framed_map, parse_msgpack_rpc, salvage_request_id,
};
use crate::error::{ConfigError, EncodeError, Result, WireError};
use crate::{Dialect, Limits, Message};

#[derive(Debug, Clone)]
enum Framer {
    Values(SelfDelimited),
    Length(LengthPrefixed),
}

/// Encodes and decodes [`Message`]s in one [`Dialect`]. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct WireCodec {
    dialect: Dialect,
    framer: Framer,
    limits: Limits,
}

/// One whole frame, cut from the stream by [`WireCodec::next_frame`], not yet parsed.
#[derive(Debug, Clone)]
pub struct Frame {
    bytes: Bytes,
    /// msgpack-rpc: how deep the message nests, measured while framing.
    depth: usize,
}

impl Frame {
    /// The frame's length in bytes (after any length prefix).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl WireCodec {
    /// A codec with the default limits: 16 MiB frames, nesting depth 128.
    pub fn new(dialect: Dialect) -> Self {
        let limits = Limits::default();
        let framer = match dialect {
            Dialect::MsgpackRpc => Framer::Values(values_framer(&limits)),
            Dialect::FramedBinary | Dialect::FramedMap => Framer::Length(LengthPrefixed::new()),
        };
        Self {
            dialect,
            framer,
            limits,
        }
    }

    /// A codec with `limits`. Fails only if the framing layer refuses them.
    pub fn with_limits(dialect: Dialect, limits: Limits) -> Result<Self, ConfigError> {
        let framer = match dialect {
            Dialect::MsgpackRpc => Framer::Values(values_framer(&limits)),
            Dialect::FramedBinary | Dialect::FramedMap => Framer::Length(
                LengthPrefixed::builder()
                    .max_frame_length(limits.max_frame_length())
                    .build()
                    .map_err(|e| ConfigError::Framing(std::sync::Arc::new(e)))?,
            ),
        };
        Ok(Self {
            dialect,
            framer,
            limits,
        })
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether part of a message is buffered or held.
    pub fn is_mid_message(&self) -> bool {
        match &self.framer {
            Framer::Values(f) => f.is_mid_frame(),
            Framer::Length(f) => f.is_mid_frame(),
        }
    }

    /// Where the message part-way in the buffer ends, counted from the front of the
    /// buffer, when that is known exactly (a framed message whose header is in; a
    /// msgpack-rpc message that waits only for the rest of a `bin` or `str` at its end).
    pub fn frame_end(&self) -> Option<usize> {
        match &self.framer {
            Framer::Values(f) => f.frame_end(),
            Framer::Length(f) => f.frame_end(),
        }
    }

    /// The length of the last whole message, up to 256 KiB: about how much room the next
    /// one is worth before its header is in (see `msgwire_frame::buffer`).
    pub fn earned(&self) -> usize {
        match &self.framer {
            Framer::Values(f) => f.earned(),
            Framer::Length(f) => f.earned(),
        }
    }

    /// The next whole message at the front of `buf`; `Ok(None)` if more bytes are needed.
    ///
    /// Errors: [`WireError::Malformed`] for a whole frame that is not a message (the
    /// next call goes on with the frame after it), [`WireError::Stream`] for bytes that
    /// break the stream (the connection must close).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>> {
        match self.next_frame(buf)? {
            Some(frame) => self.parse(frame).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`decode`](Self::decode) at end of input: a partial message is an error.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Message>> {
        let frame = match &mut self.framer {
            Framer::Values(f) => f.decode_eof(buf),
            Framer::Length(f) => f.decode_eof(buf),
        };
        match frame {
            Ok(Some(bytes)) => self.parse(self.frame(bytes)).map(Some),
            Ok(None) => Ok(None),
            Err(error) => Err(self.broken(error, buf)),
        }
    }

    /// Cuts the next whole frame off the front of `buf` without parsing it.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>> {
        let frame = match &mut self.framer {
            Framer::Values(f) => f.decode(buf),
            Framer::Length(f) => f.decode(buf),
        };
        match frame {
            Ok(frame) => Ok(frame.map(|bytes| self.frame(bytes))),
            Err(error) => Err(self.broken(error, buf)),
        }
    }

    fn frame(&self, bytes: Bytes) -> Frame {
        let depth = match &self.framer {
            Framer::Values(f) => f.last_frame_depth(),
            Framer::Length(_) => 0,
        };
        Frame { bytes, depth }
    }

    /// A framing error, with the id of the request it broke in if that can be read.
    fn broken(&self, error: msgwire_frame::Error, buf: &BytesMut) -> WireError {
        // The framing measures deeper than the limit (to answer what it can); the limit a
        // peer is told about is the one it was given.
        let error = match error {
            msgwire_frame::Error::Msgpack(msgwire_frame::msgpack::MsgpackError::TooDeep {
                ..
            }) => msgwire_frame::msgpack::MsgpackError::TooDeep {
                max: self.limits.max_depth(),
            }
            .into(),
            other => other,
        };
        WireError::Stream {
            error,
            request: salvage_request_id(self.dialect, buf),
        }
    }

    /// Turns one whole frame into a message.
    pub fn parse(&self, frame: Frame) -> Result<Message> {
        let parsed = match self.dialect {
            Dialect::MsgpackRpc => parse_msgpack_rpc(frame.bytes, frame.depth, &self.limits),
            Dialect::FramedBinary => parse_framed_binary(frame.bytes, &self.limits),
            Dialect::FramedMap => parse_framed_map(frame.bytes, &self.limits),
        };
        parsed.map_err(WireError::Malformed)
    }

    /// Appends `message`, framed in this codec's dialect, to `dst`. On error nothing is
    /// appended.
    pub fn encode(&self, message: &Message, dst: &mut BytesMut) -> Result<()> {
        self.encoder().encode(message, dst)
    }

    /// The encoding half alone: small and `Copy`, for a task that only writes.
    pub fn encoder(&self) -> Encoder {
        Encoder {
            dialect: self.dialect,
            limits: self.limits,
        }
    }
}

/// Writes [`Message`]s in one dialect within [`Limits`]: the half of a [`WireCodec`]
/// that keeps no state, from [`WireCodec::encoder`].
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    dialect: Dialect,
    limits: Limits,
}

impl Encoder {
    /// Appends `message`, framed in this encoder's dialect, to `dst`. On error nothing is
    /// appended.
    pub fn encode(&self, message: &Message, dst: &mut BytesMut) -> Result<()> {
        dst.reserve(message.encoded_len_hint().min(64 * 1024));
        // Nothing held (an empty range): no value is left out, and the list never
        // allocates.
        self.encode_vectored(message, dst, &mut Vec::new(), 0..0)
    }

    /// Like [`encode`](Self::encode), but a param or result whose length is in `hold`
    /// is not copied into `dst`: it is pushed onto `held` (its bytes shared, with
    /// where in `dst` it belongs), for a vectored write to send from its own buffer.
    /// The wire bytes are `dst` with each held value inserted at its `at`, in order.
    /// On error nothing is appended to either.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use msgwire_wire::{Dialect, Message, RawValue, Value, WireCodec};
    ///
    /// let encoder = WireCodec::new(Dialect::MsgpackRpc).encoder();
    /// let big = RawValue::from(&Value::Binary(vec![7; 4096]));
    /// let message = Message::Notification { method: "$/item".into(), params: big.clone() };
    /// let (mut head, mut held) = (BytesMut::new(), Vec::new());
    /// encoder.encode_vectored(&message, &mut head, &mut held, 1024..1 << 20)?;
    /// assert_eq!(held.len(), 1);
    /// assert_eq!(held[0].bytes, big.as_bytes());
    /// let mut whole = BytesMut::new();
    /// encoder.encode(&message, &mut whole)?;
    /// let mut joined = head[..held[0].at].to_vec();
    /// joined.extend_from_slice(&held[0].bytes);
    /// joined.extend_from_slice(&head[held[0].at..]);
    /// assert_eq!(joined, whole);
    /// # Ok::<(), msgwire_wire::WireError>(())
    /// ```
    pub fn encode_vectored(
        &self,
        message: &Message,
        dst: &mut BytesMut,
        held: &mut Vec<Held>,
        hold: std::ops::Range<usize>,
    ) -> Result<()> {
        let before = held.len();
        let start = dst.len();
        let framed = !matches!(self.dialect, Dialect::MsgpackRpc);
        if framed {
            dst.put_u32(0);
        }
        let written = encode_body(self.dialect, &mut Body { dst, held, hold }, message);
        let checked = written.and_then(|()| {
            let held_len: usize = held[before..].iter().map(|h| h.bytes.len()).sum();
            let body = dst.len() - start - if framed { 4 } else { 0 } + held_len;
            let max = self.limits.max_frame_length();
            let too_long = EncodeError::TooLong { length: body, max };
            if body > max {
                return Err(too_long);
            }
            if framed {
                let len = u32::try_from(body).map_err(|_| too_long)?;
                dst[start..start + 4].copy_from_slice(&len.to_be_bytes());
            }
            Ok(())
        });
        checked.map_err(|e| {
            dst.truncate(start);
            held.truncate(before);
            WireError::Encode(e)
        })
    }
}

/// A param or result left out of the bytes [`Encoder::encode_vectored`] wrote: it goes
/// in at `at` (an offset into that buffer), from its own bytes.
#[derive(Debug, Clone)]
pub struct Held {
    /// Where it goes in the encoded bytes.
    pub at: usize,
    /// Its bytes (shared with the message's value).
    pub bytes: Bytes,
}

/// The msgpack-rpc framing: it measures each message, following nesting as deep as
/// [`Limits::measure_depth`] (deeper than allowed, but answerable), the envelope array
/// included.
fn values_framer(limits: &Limits) -> SelfDelimited {
    SelfDelimited::builder()
        .max_depth(limits.measure_depth() + 1)
        .max_frame_length(limits.max_frame_length())
        .build()
}

#[cfg(feature = "codec")]
impl tokio_util::codec::Decoder for WireCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>> {
        WireCodec::decode(self, src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>> {
        WireCodec::decode_eof(self, src)
    }
}

#[cfg(feature = "codec")]
impl tokio_util::codec::Encoder<&Message> for WireCodec {
    type Error = WireError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<()> {
        WireCodec::encode(self, item, dst)
    }
}

#[cfg(feature = "codec")]
impl tokio_util::codec::Encoder<Message> for WireCodec {
    type Error = WireError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<()> {
        WireCodec::encode(self, &item, dst)
    }
}

/// Decodes `bytes` as exactly one MessagePack value, nested at most `limits.max_depth()`
/// deep and within `limits.max_frame_length()` bytes, into an `rmpv::Value` tree (for
/// tools such as `msgwire inspect`; the RPC path keeps values as
/// [`RawValue`](crate::RawValue)s).
///
/// ```
/// use msgwire_wire::{decode_value, Limits, Value};
///
/// let limits = Limits::default();
/// assert_eq!(decode_value(b"\x92\x01\x02", &limits)?, Value::Array(vec![1.into(), 2.into()]));
/// assert!(decode_value(b"\x01\x02", &limits).is_err()); // two values
/// assert!(decode_value(b"\xc1", &limits).is_err()); // never valid
/// # Ok::<(), msgwire_wire::Malformed>(())
/// ```
pub fn decode_value(bytes: &[u8], limits: &Limits) -> Result<rmpv::Value, crate::Malformed> {
    let raw = crate::RawValue::from_bytes(Bytes::copy_from_slice(bytes), limits)?;
    raw.to_value().map_err(|e| {
        crate::Malformed::new(
            crate::MessageKind::Unknown,
            None,
            crate::MalformedReason::InvalidMsgpack(std::sync::Arc::new(msgwire_frame::Error::Io(
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            ))),
        )
    })
}
