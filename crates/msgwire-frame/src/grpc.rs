//! gRPC's length-prefixed message, as carried in HTTP/2 DATA frames
//! (`Length-Prefixed-Message` in the gRPC-over-HTTP2 spec).
//!
//! ```text
//! +----------------+---------------------+-----------------------------+
//! | compressed: u8 | length: u32 (BE)    | payload: `length` bytes     |
//! | 0x00 or 0x01   |                     |                             |
//! +----------------+---------------------+-----------------------------+
//!  <-------------- 5-byte prefix --------> <- handed out as payload ->
//!
//!  "abc", uncompressed  ->  00 | 00 00 00 03 | 61 62 63
//! ```
//!
//! A frame is a [`GrpcMessage`]: the compressed flag and the payload, prefix stripped.
//! The framing does not decompress: whether flag 1 is allowed, and with which codec, is
//! decided by the `grpc-encoding` header one layer up.
//!
//! * a flag other than 0 or 1 is [`GrpcError::InvalidFlag`], reported on the first byte;
//! * `max_message_length` — the limit on the payload (default 16 MiB; gRPC
//!   implementations usually receive at most 4 MiB). It is checked as soon as the prefix
//!   is in, before any byte of the payload is buffered or reserved. Over it the decoder
//!   fails with [`Error::TooLong`]. Within it, room is reserved as the payload arrives:
//!   at most [`RESERVE_AHEAD`](crate::buffer::RESERVE_AHEAD) beyond the buffered bytes
//!   on the prefix, then the buffer doubles as bytes come in. Every error is fatal.
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{grpc::GrpcPrefixed, Encode, Framing};
//!
//! let mut framing = GrpcPrefixed::new();
//! let mut wire = BytesMut::new();
//! framing.encode(&b"abc"[..], &mut wire)?;
//! assert_eq!(&wire[..], b"\x00\x00\x00\x00\x03abc");
//! let message = framing.decode(&mut wire)?.expect("whole message");
//! assert!(!message.compressed);
//! assert_eq!(&message.payload[..], b"abc");
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! A compressed message (the payload is already compressed by the caller) and a limit:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{grpc::{GrpcMessage, GrpcPrefixed}, Encode, Error, Framing};
//!
//! let mut framing = GrpcPrefixed::builder().max_message_length(4).build();
//! let mut wire = BytesMut::new();
//! framing.encode(&GrpcMessage::compressed(&b"\x1f\x8b"[..]), &mut wire)?;
//! assert_eq!(&wire[..], b"\x01\x00\x00\x00\x02\x1f\x8b");
//! let message = framing.decode(&mut wire)?.expect("whole message");
//! assert!(message.compressed);
//!
//! let mut wire = BytesMut::from(&b"\x00\x00\x00\x00\x05"[..]); // 5 bytes announced
//! assert!(matches!(framing.decode(&mut wire), Err(Error::TooLong { length: 5, max: 4 })));
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

use bytes::{BufMut, BytesMut};

use crate::buffer::{reserve_toward, InputBuffer};
use crate::{Encode, Error, Framing, Result, DEFAULT_MAX_FRAME};

/// Bytes before the payload: the flag and the u32 length.
pub const PREFIX_LEN: usize = 5;

/// Errors only the gRPC framing raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcError {
    /// The compressed flag is neither 0 nor 1.
    #[error("invalid compressed flag {0}")]
    InvalidFlag(u8),
}

/// One gRPC message: the compressed flag and the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GrpcMessage<P> {
    /// Whether the payload is compressed (flag byte 1) with the stream's
    /// `grpc-encoding`.
    pub compressed: bool,
    /// The payload, prefix stripped.
    pub payload: P,
}

impl<P> GrpcMessage<P> {
    /// An uncompressed message.
    pub fn new(payload: P) -> Self {
        Self {
            compressed: false,
            payload,
        }
    }

    /// A message whose payload is already compressed.
    pub fn compressed(payload: P) -> Self {
        Self {
            compressed: true,
            payload,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the 5-byte prefix.
    Head,
    /// Prefix read (still buffered); the payload is this long.
    Data { compressed: bool, length: usize },
}

/// gRPC message framing. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct GrpcPrefixed {
    max: usize,
    state: State,
}

impl Default for GrpcPrefixed {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcPrefixed {
    /// 16 MiB limit on the payload.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder() -> GrpcPrefixedBuilder {
        GrpcPrefixedBuilder {
            max: DEFAULT_MAX_FRAME,
        }
    }

    /// The limit on the payload length.
    pub fn max_message_length(&self) -> usize {
        self.max
    }

    /// Parses the prefix at the front of `buf`.
    fn decode_head<B: InputBuffer>(&self, buf: &mut B) -> Result<Option<State>> {
        let bytes = buf.bytes();
        let compressed = match bytes.first() {
            None => return Ok(None),
            Some(0) => false,
            Some(1) => true,
            // Known on the first byte: no need to wait for the length.
            Some(&flag) => return Err(GrpcError::InvalidFlag(flag).into()),
        };
        let Some(&[a, b, c, d]) = bytes.get(1..PREFIX_LEN) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes([a, b, c, d]);
        if u64::from(length) > self.max as u64 {
            return Err(Error::TooLong {
                length: u64::from(length),
                max: self.max as u64,
            });
        }
        // length <= max, a usize; PREFIX_LEN + length overflows a usize only on 32-bit
        // targets with a limit near usize::MAX: refuse there.
        let frame = usize::try_from(length)
            .ok()
            .and_then(|length| length.checked_add(PREFIX_LEN))
            .ok_or(Error::TooLong {
                length: u64::from(length),
                max: self.max as u64,
            })?;
        reserve_toward(buf, frame);
        let length = frame - PREFIX_LEN;
        Ok(Some(State::Data { compressed, length }))
    }
}

impl Framing for GrpcPrefixed {
    type Frame<B: InputBuffer> = GrpcMessage<B::Frame>;

    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<Self::Frame<B>>> {
        if self.state == State::Head {
            match self.decode_head(buf)? {
                Some(state) => self.state = state,
                None => return Ok(None),
            }
        }
        let State::Data { compressed, length } = self.state else {
            return Ok(None);
        };
        // PREFIX_LEN + length was checked not to overflow in decode_head.
        if buf.len() < PREFIX_LEN + length {
            return Ok(None);
        }
        buf.advance(PREFIX_LEN);
        self.state = State::Head;
        Ok(Some(GrpcMessage {
            compressed,
            payload: buf.split_frame(length),
        }))
    }

    fn is_mid_frame(&self) -> bool {
        self.state != State::Head
    }
}

impl GrpcPrefixed {
    fn write(&self, compressed: bool, payload: &[u8], dst: &mut BytesMut) -> Result<()> {
        if payload.len() > self.max {
            return Err(Error::TooLong {
                length: payload.len() as u64,
                max: self.max as u64,
            });
        }
        let Ok(length) = u32::try_from(payload.len()) else {
            return Err(Error::Encode(
                "gRPC message payload longer than u32::MAX bytes",
            ));
        };
        dst.reserve(PREFIX_LEN + payload.len());
        dst.put_u8(u8::from(compressed));
        dst.put_u32(length);
        dst.put_slice(payload);
        Ok(())
    }
}

impl Encode<[u8]> for GrpcPrefixed {
    /// Writes an uncompressed message: flag 0, the length, the payload.
    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<()> {
        self.write(false, payload, dst)
    }
}

impl<P: AsRef<[u8]>> Encode<GrpcMessage<P>> for GrpcPrefixed {
    /// Writes a message with its flag. A compressed payload must already be compressed:
    /// the framing only sets the flag.
    fn encode(&mut self, message: &GrpcMessage<P>, dst: &mut BytesMut) -> Result<()> {
        self.write(message.compressed, message.payload.as_ref(), dst)
    }
}

/// Builds a [`GrpcPrefixed`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct GrpcPrefixedBuilder {
    max: usize,
}

impl GrpcPrefixedBuilder {
    /// Limit on the payload length (the 5-byte prefix is not counted). Default 16 MiB.
    pub fn max_message_length(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// The framing.
    pub fn build(self) -> GrpcPrefixed {
        GrpcPrefixed {
            max: self.max,
            state: State::Head,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::testing::{assert_waits_with_capped_room, decode_frames as decode_all};

    #[test]
    fn decodes_flag_and_payload() {
        let mut f = GrpcPrefixed::new();
        let got = decode_all(
            &mut f,
            b"\x00\x00\x00\x00\x02hi\x01\x00\x00\x00\x03zip\x00\x00\x00\x00\x00",
        );
        assert_eq!(got.len(), 3);
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got[0], GrpcMessage::new(Bytes::from_static(b"hi")));
        assert_eq!(got[1], GrpcMessage::compressed(Bytes::from_static(b"zip")));
        assert_eq!(got[2], GrpcMessage::new(Bytes::new()));
    }

    #[test]
    fn encodes_byte_exact() {
        let mut f = GrpcPrefixed::new();
        let mut wire = BytesMut::new();
        f.encode(&b"hi"[..], &mut wire).unwrap();
        f.encode(&GrpcMessage::compressed(&b"zip"[..]), &mut wire)
            .unwrap();
        f.encode(&GrpcMessage::new(vec![0xffu8; 256]), &mut wire)
            .unwrap();
        let mut want =
            b"\x00\x00\x00\x00\x02hi\x01\x00\x00\x00\x03zip\x00\x00\x00\x01\x00".to_vec();
        want.extend_from_slice(&[0xff; 256]);
        assert_eq!(&wire[..], &want[..]);
    }

    #[test]
    fn big_endian_length_uses_all_four_bytes() {
        let mut f = GrpcPrefixed::builder()
            .max_message_length(usize::MAX)
            .build();
        let mut buf = BytesMut::from(&b"\x00\x00\x01\x00\x00"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert_eq!(
            f.state,
            State::Data {
                compressed: false,
                length: 65_536
            }
        );
        buf.extend_from_slice(&vec![3u8; 65_536]);
        assert_eq!(f.decode(&mut buf).unwrap().unwrap().payload.len(), 65_536);
    }

    #[test]
    fn invalid_flag_is_reported_on_the_first_byte() {
        let mut f = GrpcPrefixed::new();
        let mut buf = BytesMut::from(&b"\x02"[..]);
        let err = f.decode(&mut buf).unwrap_err();
        assert!(matches!(err, Error::Grpc(GrpcError::InvalidFlag(2))));
        assert!(err.is_fatal());
        let got = decode_all(&mut GrpcPrefixed::new(), b"\x80\x00\x00\x00\x00");
        assert!(matches!(
            got[0],
            Err(Error::Grpc(GrpcError::InvalidFlag(0x80)))
        ));
    }

    #[test]
    fn too_long_fails_on_the_prefix_alone() {
        let mut f = GrpcPrefixed::builder().max_message_length(10).build();
        assert_eq!(f.max_message_length(), 10);
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x00\x0b"[..]);
        assert!(matches!(
            f.decode(&mut buf),
            Err(Error::TooLong {
                length: 11,
                max: 10
            })
        ));
        let got = decode_all(&mut f, b"\x01\x00\x00\x00\x0aabcdefghij");
        assert_eq!(&got[0].as_ref().unwrap().payload[..], b"abcdefghij");
    }

    #[test]
    fn unbounded_limit_4_gib_prefix_reserves_little_and_is_truncated_at_eof() {
        let mut f = GrpcPrefixed::builder()
            .max_message_length(usize::MAX)
            .build();
        assert_waits_with_capped_room(&mut f, b"\x01\xff\xff\xff\xff");
    }

    #[test]
    fn default_limit_rejects_u32_max() {
        let mut f = GrpcPrefixed::new();
        let got = decode_all(&mut f, b"\x00\xff\xff\xff\xff");
        assert!(matches!(
            got[0],
            Err(Error::TooLong {
                length: 0xffff_ffff,
                ..
            })
        ));
    }

    #[test]
    fn partial_prefix_needs_more() {
        let mut f = GrpcPrefixed::new();
        let mut buf = BytesMut::new();
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert!(f.decode_eof(&mut buf).unwrap().is_none());
        for byte in b"\x01\x00\x00\x00" {
            buf.extend_from_slice(&[*byte]);
            assert!(f.decode(&mut buf).unwrap().is_none());
            assert!(!f.is_mid_frame(), "prefix not whole yet");
        }
        buf.extend_from_slice(b"\x02");
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert!(f.is_mid_frame());
        buf.extend_from_slice(b"o");
        assert!(f.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"k");
        let message = f.decode(&mut buf).unwrap().unwrap();
        assert!(message.compressed);
        assert_eq!(&message.payload[..], b"ok");
        assert!(buf.is_empty());
        assert!(!f.is_mid_frame());
    }

    #[test]
    fn eof_inside_prefix_is_truncated() {
        let mut f = GrpcPrefixed::new();
        let mut buf = BytesMut::from(&b"\x00\x00\x00"[..]);
        assert!(matches!(
            f.decode_eof(&mut buf),
            Err(Error::Truncated { buffered: 3 })
        ));
    }

    #[test]
    fn eof_inside_a_frame_is_truncated() {
        let mut f = GrpcPrefixed::new();
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x00\x09abc"[..]);
        assert!(matches!(
            f.decode_eof(&mut buf),
            Err(Error::Truncated { buffered: 8 })
        ));
    }

    #[test]
    fn encoder_rejects_payload_over_the_limit() {
        let mut f = GrpcPrefixed::builder().max_message_length(2).build();
        let mut dst = BytesMut::new();
        assert!(matches!(
            f.encode(&b"abc"[..], &mut dst),
            Err(Error::TooLong { length: 3, max: 2 })
        ));
        assert!(matches!(
            f.encode(&GrpcMessage::compressed(b"abc"), &mut dst),
            Err(Error::TooLong { length: 3, max: 2 })
        ));
        assert!(dst.is_empty(), "nothing half-written");
    }
}
