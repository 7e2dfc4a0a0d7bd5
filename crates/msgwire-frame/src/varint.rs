//! Varint-prefixed framing, protobuf style: an unsigned LEB128 length, then the payload.
//!
//! The length is written seven bits at a time, least significant group first; every byte
//! but the last has its top bit (`0x80`, "more follows") set:
//!
//! ```text
//! +----------+----------+-----+----------+------------------------------+
//! |1 bbbbbbb |1 bbbbbbb | ... |0 bbbbbbb | payload: `length` bytes      |
//! +----------+----------+-----+----------+------------------------------+
//!  <-- varint: 1 to 10 bytes, low bits first --> <- handed out as frame ->
//!
//!  length 3    ->  03      61 62 63 ("abc")
//!  length 300  ->  ac 02   (300 = 0b10_0101100: 0x2c | 0x80, then 0x02)
//! ```
//!
//! * `max_frame_length` — the limit (default 16 MiB). It counts the payload only, not the
//!   varint. It is checked after every varint byte: as soon as the bits read so far
//!   already exceed the limit, the decoder fails with [`Error::TooLong`] without waiting
//!   for the rest of the varint, and nothing is ever reserved for a length over the limit.
//!   (The bits read so far are a lower bound of the length: protobuf accepts padded,
//!   non-canonical varints such as `80 00` for 0, so a later byte may add nothing.)
//! * Within the limit, room for the payload is reserved as it arrives: at most
//!   [`RESERVE_AHEAD`](crate::buffer::RESERVE_AHEAD) beyond the buffered bytes on the
//!   varint, then the buffer doubles as bytes come in (see [`buffer`](crate::buffer)).
//!   A varint plus payload longer than `usize::MAX` (possible only with
//!   `max_frame_length(usize::MAX)`) is [`Error::TooLong`].
//! * A varint may be at most 10 bytes (`ceil(64 / 7)`). A 10th byte with its "more" bit
//!   set is [`VarintError::Overlong`]; a 10th byte carrying more than the one bit that
//!   still fits in a `u64` is [`VarintError::Overflow`]. Both are fatal.
//! * Over the limit is fatal too: the stream cannot be resynchronised (the framing has no
//!   discard mode; the length of an over-long frame is known, but a peer that sends one
//!   is broken or hostile).
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{varint::VarintPrefixed, Encode, Framing};
//!
//! let mut framing = VarintPrefixed::new();
//! let mut wire = BytesMut::new();
//! framing.encode(&b"abc"[..], &mut wire)?;
//! assert_eq!(&wire[..], b"\x03abc");
//! let frame = framing.decode(&mut wire)?.expect("whole frame");
//! assert_eq!(&frame[..], b"abc");
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! A smaller limit, reported as soon as the varint proves the length is over it:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{varint::VarintPrefixed, Error, Framing};
//!
//! let mut framing = VarintPrefixed::builder().max_frame_length(1000).build();
//! // Two bytes of a longer varint: already 127 + 127 * 128 = 16383 > 1000, so the
//! // decoder fails without waiting for the rest of it (or for the payload).
//! let mut wire = BytesMut::from(&b"\xff\xff"[..]);
//! assert!(matches!(
//!     framing.decode(&mut wire),
//!     Err(Error::TooLong { length: 16383, max: 1000 })
//! ));
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! The LEB128 and ZigZag helpers are public, for protocols that put varints elsewhere:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::varint::{decode_varint, encode_varint, zigzag_decode, zigzag_encode};
//!
//! let mut buf = BytesMut::new();
//! encode_varint(300, &mut buf);
//! assert_eq!(&buf[..], b"\xac\x02");
//! assert_eq!(decode_varint(&buf)?, Some((300, 2)));
//! assert_eq!(decode_varint(b"\xac")?, None); // needs more bytes
//! assert_eq!(zigzag_encode(-1), 1);
//! assert_eq!(zigzag_decode(zigzag_encode(i64::MIN)), i64::MIN);
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

use bytes::{BufMut, BytesMut};

use crate::buffer::{reserve_toward, InputBuffer};
use crate::{Encode, Error, Framing, Result, DEFAULT_MAX_FRAME};

/// The longest varint a `u64` needs: `ceil(64 / 7)` bytes.
pub const MAX_VARINT_LEN: usize = 10;

/// Errors only the varint framing raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The varint has more than 10 bytes (the 10th still has its "more" bit set).
    #[error("varint longer than 10 bytes")]
    Overlong,
    /// The 10th byte of the varint carries bits beyond the 64th.
    #[error("varint overflows 64 bits")]
    Overflow,
}

/// A varint being read a byte at a time, so that a varint split across reads is picked
/// up where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Partial {
    /// Bytes of the varint read so far.
    read: usize,
    /// Their value.
    value: u64,
}

impl Partial {
    /// Reads varint bytes from `bytes`, which starts just after the `self.read` bytes
    /// already read. `Ok(true)` when the varint ended (then `self` is complete);
    /// `Ok(false)` when every byte was read and more are needed. `on_byte` sees the value
    /// so far after each byte that does not end the varint.
    fn feed(&mut self, bytes: &[u8], mut on_byte: impl FnMut(u64) -> Result<()>) -> Result<bool> {
        for &byte in bytes {
            let low = u64::from(byte & 0x7f);
            let more = byte & 0x80 != 0;
            if self.read == MAX_VARINT_LEN - 1 {
                // 10th byte: bit 63 is the only one left; nothing may follow.
                if more {
                    return Err(VarintError::Overlong.into());
                }
                if low > 1 {
                    return Err(VarintError::Overflow.into());
                }
            }
            // read <= 9 here, so the shift is at most 63.
            self.value |= low << (7 * self.read);
            self.read += 1;
            if !more {
                return Ok(true);
            }
            on_byte(self.value)?;
        }
        Ok(false)
    }
}

/// Appends `value` as an unsigned LEB128 varint (1 to 10 bytes).
pub fn encode_varint(mut value: u64, dst: &mut BytesMut) {
    dst.reserve(varint_len(value));
    while value >= 0x80 {
        // Truncation to the low byte is the point.
        dst.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    dst.put_u8(value as u8);
}

/// How many bytes [`encode_varint`] writes for `value`.
pub fn varint_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads an unsigned LEB128 varint from the front of `bytes`.
///
/// `Ok(Some((value, len)))` when the varint is whole (`len` bytes long);
/// `Ok(None)` when `bytes` ends inside it; [`VarintError::Overlong`] or
/// [`VarintError::Overflow`] when it cannot be a `u64`. Padded, non-canonical varints
/// (`80 00` for 0) are accepted, as protobuf does.
pub fn decode_varint(bytes: &[u8]) -> Result<Option<(u64, usize)>> {
    let mut partial = Partial::default();
    if partial.feed(bytes, |_| Ok(()))? {
        Ok(Some((partial.value, partial.read)))
    } else {
        Ok(None)
    }
}

/// Maps a signed integer to an unsigned one so that small magnitudes stay small
/// (0 → 0, -1 → 1, 1 → 2, -2 → 3, …), as protobuf's `sint64` does.
pub fn zigzag_encode(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag_encode`].
pub fn zigzag_decode(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the varint at the front of the buffer; the bytes of it already read.
    Head(Partial),
    /// Varint read; the whole frame is `header + body` bytes, varint included.
    Data { header: usize, body: usize },
}

/// Varint-prefixed framing. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct VarintPrefixed {
    max: usize,
    state: State,
}

impl Default for VarintPrefixed {
    fn default() -> Self {
        Self::new()
    }
}

impl VarintPrefixed {
    /// 16 MiB limit on the payload.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder() -> VarintPrefixedBuilder {
        VarintPrefixedBuilder {
            max: DEFAULT_MAX_FRAME,
        }
    }

    /// The limit on the payload length.
    pub fn max_frame_length(&self) -> usize {
        self.max
    }

    /// Reads (the rest of) the varint. `Some((header, body))` once it is whole and within
    /// the limit.
    fn decode_head<B: InputBuffer>(
        &mut self,
        buf: &mut B,
        mut partial: Partial,
    ) -> Result<Option<(usize, usize)>> {
        let max = self.max as u64;
        let too_long = |value: u64| {
            if value > max {
                Err(Error::TooLong { length: value, max })
            } else {
                Ok(())
            }
        };
        // Resume after the bytes read by earlier calls. (They are at most 9, so re-reading
        // them would cost little; but a resume point costs nothing either and keeps the
        // "nothing is scanned twice" contract. Should the caller have swapped the buffer
        // under us, start over rather than slice out of bounds.)
        let bytes = buf.bytes();
        let fresh = match bytes.get(partial.read..) {
            Some(fresh) => fresh,
            None => {
                partial = Partial::default();
                bytes
            }
        };
        let done = partial.feed(fresh, too_long)?;
        if !done {
            self.state = State::Head(partial);
            return Ok(None);
        }
        too_long(partial.value)?;
        // Within the limit, but with `max_frame_length(usize::MAX)` varint plus payload
        // may still be past usize::MAX (`ff ff ... ff 01`): a frame this machine cannot
        // hold.
        let header = partial.read;
        let body = usize::try_from(partial.value)
            .ok()
            .filter(|body| header.checked_add(*body).is_some())
            .ok_or(Error::TooLong {
                length: partial.value,
                max,
            })?;
        reserve_toward(buf, header + body);
        Ok(Some((header, body)))
    }
}

impl Framing for VarintPrefixed {
    type Frame<B: InputBuffer> = B::Frame;

    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<B::Frame>> {
        if let State::Head(partial) = self.state {
            match self.decode_head(buf, partial) {
                Ok(Some((header, body))) => self.state = State::Data { header, body },
                Ok(None) => return Ok(None),
                Err(e) => {
                    self.state = State::Head(Partial::default());
                    return Err(e);
                }
            }
        }
        let State::Data { header, body } = self.state else {
            return Ok(None);
        };
        // header + body was checked not to overflow in decode_head.
        if buf.len() < header + body {
            return Ok(None);
        }
        buf.advance(header);
        self.state = State::Head(Partial::default());
        Ok(Some(buf.split_frame(body)))
    }

    fn is_mid_frame(&self) -> bool {
        !matches!(self.state, State::Head(Partial { read: 0, .. }))
    }
}

impl Encode<[u8]> for VarintPrefixed {
    /// Writes the payload's length as a varint, then the payload.
    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<()> {
        if payload.len() > self.max {
            return Err(Error::TooLong {
                length: payload.len() as u64,
                max: self.max as u64,
            });
        }
        let len = payload.len() as u64;
        dst.reserve(varint_len(len) + payload.len());
        encode_varint(len, dst);
        dst.put_slice(payload);
        Ok(())
    }
}

/// Builds a [`VarintPrefixed`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct VarintPrefixedBuilder {
    max: usize,
}

impl VarintPrefixedBuilder {
    /// Limit on the payload length (the varint is not counted). Default 16 MiB.
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// The framing.
    pub fn build(self) -> VarintPrefixed {
        VarintPrefixed {
            max: self.max,
            state: State::Head(Partial::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::testing::{assert_waits_with_capped_room, decode_all};

    fn encoded(value: u64) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_varint(value, &mut buf);
        buf.to_vec()
    }

    #[test]
    fn varint_known_encodings() {
        let cases: &[(u64, &[u8])] = &[
            (0, b"\x00"),
            (1, b"\x01"),
            (127, b"\x7f"),
            (128, b"\x80\x01"),
            (300, b"\xac\x02"),
            (16_383, b"\xff\x7f"),
            (16_384, b"\x80\x80\x01"),
            (u64::MAX, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        ];
        for &(value, wire) in cases {
            assert_eq!(encoded(value), wire, "encode {value}");
            assert_eq!(varint_len(value), wire.len(), "len {value}");
            assert_eq!(
                decode_varint(wire).unwrap(),
                Some((value, wire.len())),
                "decode {value}"
            );
        }
    }

    #[test]
    fn varint_round_trips_at_every_group_boundary() {
        for shift in 0..64 {
            for value in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1] {
                let wire = encoded(value);
                assert_eq!(wire.len(), varint_len(value));
                assert_eq!(decode_varint(&wire).unwrap(), Some((value, wire.len())));
            }
        }
    }

    #[test]
    fn decode_varint_ignores_bytes_after_it() {
        assert_eq!(decode_varint(b"\x05rest").unwrap(), Some((5, 1)));
    }

    #[test]
    fn decode_varint_needs_more() {
        assert_eq!(decode_varint(b"").unwrap(), None);
        assert_eq!(decode_varint(b"\x80").unwrap(), None);
        assert_eq!(decode_varint(&[0xff; 9]).unwrap(), None);
    }

    #[test]
    fn padded_varint_is_accepted() {
        assert_eq!(decode_varint(b"\x80\x00").unwrap(), Some((0, 2)));
        assert_eq!(decode_varint(b"\x83\x80\x80\x00").unwrap(), Some((3, 4)));
    }

    #[test]
    fn eleven_byte_varint_is_overlong() {
        let mut wire = [0x80u8; 11];
        wire[10] = 0x01;
        assert!(matches!(
            decode_varint(&wire),
            Err(Error::Varint(VarintError::Overlong))
        ));
        // Known on the 10th byte already: the 11th is never needed.
        assert!(matches!(
            decode_varint(&wire[..10]),
            Err(Error::Varint(VarintError::Overlong))
        ));
    }

    #[test]
    fn tenth_byte_over_one_bit_overflows() {
        let mut wire = [0xffu8; 10];
        wire[9] = 0x02;
        assert!(matches!(
            decode_varint(&wire),
            Err(Error::Varint(VarintError::Overflow))
        ));
        wire[9] = 0x01;
        assert_eq!(decode_varint(&wire).unwrap(), Some((u64::MAX, 10)));
    }

    #[test]
    fn zigzag_known_values() {
        let cases: &[(i64, u64)] = &[
            (0, 0),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (2, 4),
            (i64::MAX, u64::MAX - 1),
            (i64::MIN, u64::MAX),
        ];
        for &(signed, unsigned) in cases {
            assert_eq!(zigzag_encode(signed), unsigned, "encode {signed}");
            assert_eq!(zigzag_decode(unsigned), signed, "decode {unsigned}");
        }
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [
            i64::MIN,
            i64::MIN + 1,
            -300,
            -1,
            0,
            1,
            300,
            i64::MAX - 1,
            i64::MAX,
        ] {
            assert_eq!(zigzag_decode(zigzag_encode(v)), v);
        }
        for u in [0u64, 1, 2, 3, u64::MAX - 1, u64::MAX] {
            assert_eq!(zigzag_encode(zigzag_decode(u)), u);
        }
    }

    #[test]
    fn decodes_back_to_back_frames() {
        let mut f = VarintPrefixed::new();
        let got = decode_all(&mut f, b"\x02hi\x00\x03abc");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap(), b"hi");
        assert_eq!(got[1].as_ref().unwrap(), b"");
        assert_eq!(got[2].as_ref().unwrap(), b"abc");
    }

    #[test]
    fn encode_is_varint_then_payload() {
        let mut f = VarintPrefixed::new();
        let mut wire = BytesMut::new();
        f.encode(&[7u8; 300][..], &mut wire).unwrap();
        assert_eq!(&wire[..2], b"\xac\x02");
        assert_eq!(wire.len(), 302);
        let frame = f.decode(&mut wire).unwrap().unwrap();
        assert_eq!(&frame[..], &[7u8; 300][..]);
        assert!(wire.is_empty());
    }

    #[test]
    fn varint_split_across_reads_resumes() {
        let mut f = VarintPrefixed::new();
        let mut buf = BytesMut::from(&b"\xac"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert_eq!(
            f.state,
            State::Head(Partial {
                read: 1,
                value: 0x2c
            })
        );
        assert!(f.is_mid_frame());
        assert_eq!(buf.len(), 1, "the partial varint stays buffered");
        buf.extend_from_slice(b"\x02");
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert_eq!(
            f.state,
            State::Data {
                header: 2,
                body: 300
            }
        );
        buf.extend_from_slice(&[1u8; 299]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"\x01\x00");
        assert_eq!(f.decode(&mut buf).unwrap().unwrap().len(), 300);
        assert!(f.decode(&mut buf).unwrap().unwrap().is_empty());
        assert!(!f.is_mid_frame());
    }

    #[test]
    fn limit_counts_payload_only() {
        let mut f = VarintPrefixed::builder().max_frame_length(3).build();
        assert_eq!(f.max_frame_length(), 3);
        let got = decode_all(&mut f, b"\x03abc");
        assert_eq!(got[0].as_ref().unwrap(), b"abc");
        let got = decode_all(&mut f, b"\x04abcd");
        assert!(matches!(got[0], Err(Error::TooLong { length: 4, max: 3 })));
    }

    #[test]
    fn too_long_is_reported_before_the_varint_ends() {
        let mut f = VarintPrefixed::builder().max_frame_length(200).build();
        // 0x80 then 0x82: at least 2 * 128 = 256 > 200 after the second byte.
        let mut buf = BytesMut::from(&b"\x80"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"\x82");
        assert!(matches!(
            f.decode(&mut buf),
            Err(Error::TooLong {
                length: 256,
                max: 200
            })
        ));
    }

    #[test]
    fn default_limit_trips_on_a_partial_four_byte_varint() {
        let mut f = VarintPrefixed::new();
        // 0xff * 3 then 0x89: 2^21 - 1 + 9 * 2^21 > 16 MiB, more bytes promised.
        let mut buf = BytesMut::from(&b"\xff\xff\xff\x89"[..]);
        match f.decode(&mut buf) {
            Err(Error::TooLong { length, max }) => {
                assert_eq!(max, DEFAULT_MAX_FRAME as u64);
                assert_eq!(length, (1 << 21) - 1 + (9 << 21));
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
    }

    #[test]
    fn huge_declared_length_is_too_long_not_an_allocation() {
        let mut f = VarintPrefixed::new();
        let mut buf = BytesMut::new();
        encode_varint(u64::MAX, &mut buf);
        let got = decode_all(&mut f, &buf);
        assert!(matches!(got[0], Err(Error::TooLong { .. })));
    }

    #[test]
    fn unbounded_limit_ten_byte_varint_is_too_long_not_overflow() {
        let mut f = VarintPrefixed::builder()
            .max_frame_length(usize::MAX)
            .build();
        // u64::MAX: with its 10 varint bytes, past usize::MAX.
        let wire = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01";
        let got = decode_all(&mut f, wire);
        assert!(matches!(
            got[..],
            [Err(Error::TooLong {
                length: u64::MAX,
                ..
            })]
        ));
        // 2^63: representable, so only a capped reservation, then truncated at EOF.
        let mut f = VarintPrefixed::builder()
            .max_frame_length(usize::MAX)
            .build();
        assert_waits_with_capped_room(&mut f, &encoded(1 << 63));
    }

    #[test]
    fn framing_reports_overlong() {
        let mut f = VarintPrefixed::builder()
            .max_frame_length(usize::MAX)
            .build();
        let got = decode_all(&mut f, &[0x80; 10]);
        assert!(matches!(got[0], Err(Error::Varint(VarintError::Overlong))));
        assert!(got[0].as_ref().unwrap_err().is_fatal());
    }

    #[test]
    fn framing_reports_overflow() {
        let mut f = VarintPrefixed::builder()
            .max_frame_length(usize::MAX)
            .build();
        let mut wire = [0x80u8; 10];
        wire[9] = 0x7f;
        let got = decode_all(&mut f, &wire);
        assert!(matches!(got[0], Err(Error::Varint(VarintError::Overflow))));
    }

    #[test]
    fn partial_header_needs_more() {
        let mut f = VarintPrefixed::new();
        let mut buf = BytesMut::new();
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert!(!f.is_mid_frame());
        assert!(f.decode_eof(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"\x81");
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert!(matches!(
            f.decode_eof(&mut buf),
            Err(Error::Truncated { buffered: 1 })
        ));
    }

    #[test]
    fn eof_inside_a_frame_is_truncated() {
        let mut f = VarintPrefixed::new();
        let mut buf = BytesMut::from(&b"\x09abc"[..]);
        assert!(matches!(
            f.decode_eof(&mut buf),
            Err(Error::Truncated { buffered: 4 })
        ));
    }

    #[test]
    fn encoder_rejects_payload_over_the_limit() {
        let mut f = VarintPrefixed::builder().max_frame_length(2).build();
        let mut dst = BytesMut::new();
        assert!(matches!(
            f.encode(&b"abc"[..], &mut dst),
            Err(Error::TooLong { length: 3, max: 2 })
        ));
        assert!(dst.is_empty(), "nothing half-written");
    }
}
