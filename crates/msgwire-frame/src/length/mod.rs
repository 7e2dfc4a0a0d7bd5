//! Length-field framing, with every option of Netty's `LengthFieldBasedFrameDecoder`.
//!
//! A frame is some header bytes, a length field, then the bytes the length field
//! announces:
//!
//! ```text
//!  <- offset -> <- width ->
//! +------------+-----------+---------------------------------------+
//! |  any bytes | length    | value + adjustment bytes              |
//! +------------+-----------+---------------------------------------+
//!  <----------------------- whole frame on the wire --------------->
//!  <- strip -> <---------------- handed out as the frame ---------->
//! ```
//!
//! * `length_field_offset` — bytes before the length field (default 0);
//! * `length_field_width` — 1, 2, 3, 4 or 8 bytes (default 4);
//! * big endian (default) or little endian;
//! * `length_adjustment` — added to the field's value to get the number of bytes that
//!   follow the length field (default 0; use e.g. `-4` when the field counts itself);
//! * `strip` — bytes removed from the front of the frame before it is handed out
//!   (default: the whole header, `offset + width`);
//! * `max_frame_length` — the limit (default 16 MiB). **It counts the bytes after the
//!   length field (`value + adjustment`), not the header** — as tokio-util's
//!   `LengthDelimitedCodec` does. (Netty counts the whole frame, header included; to get
//!   Netty's number, add `offset + width`.) The limit is checked as soon as the header
//!   is in, before any byte of the body is buffered or any buffer is reserved for it.
//!   Within the limit, room is reserved as the body arrives, not all at once: at most
//!   [`RESERVE_AHEAD`](crate::buffer::RESERVE_AHEAD) (32 KiB) beyond the buffered bytes
//!   at first, doubling as the body comes in (see [`buffer`](crate::buffer)), so a
//!   peer that sends a 16 MiB header and stalls pins 32 KiB, not 16 MiB. A length the
//!   machine cannot represent (`offset + width + value + adjustment` past `usize::MAX`,
//!   possible with `max_frame_length(usize::MAX)` and an 8-byte field) is
//!   [`Error::TooLong`], never an overflow;
//! * over the limit, by default the decoder fails with [`Error::TooLong`] and the
//!   stream is dead (close the connection). With
//!   [`discard_oversized`](LengthPrefixedBuilder::discard_oversized) it instead skips
//!   the frame's bytes as they arrive, never buffering them, and reports
//!   [`Error::Discarded`] — a non-fatal error — after which decoding resumes with the
//!   next frame. `fail_fast` (default true) reports that error as soon as the header is
//!   read; with `fail_fast(false)` it is reported once the whole frame was skipped.
//!
//! The default — u32 big endian, header stripped, 16 MiB — is msgwire's wire format:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{length::LengthPrefixed, Encode, Framing};
//!
//! let mut framing = LengthPrefixed::new();
//! let mut wire = BytesMut::new();
//! framing.encode(&b"abc"[..], &mut wire)?;
//! assert_eq!(&wire[..], b"\x00\x00\x00\x03abc");
//! let frame = framing.decode(&mut wire)?.expect("whole frame");
//! assert_eq!(&frame[..], b"abc");
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! A 2-byte little-endian field after a 1-byte tag, counting itself, tag kept:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{length::LengthPrefixed, Framing};
//!
//! let mut framing = LengthPrefixed::builder()
//!     .length_field_offset(1)
//!     .length_field_width(2)
//!     .little_endian()
//!     .length_adjustment(-2)
//!     .strip(0)
//!     .build()?;
//! let mut wire = BytesMut::from(&b"\x07\x05\x00abc"[..]);
//! let frame = framing.decode(&mut wire)?.expect("whole frame");
//! assert_eq!(&frame[..], b"\x07\x05\x00abc");
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

use bytes::{BufMut, BytesMut};

use crate::buffer::{reserve_toward_earned, Earned, InputBuffer};
use crate::{Encode, Error, Framing, Result, DEFAULT_MAX_FRAME};

/// Errors only the length-field framing raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LengthError {
    /// `value + adjustment` is negative: the frame would end before its length field.
    #[error("length field {value} with adjustment {adjustment} gives a negative frame length")]
    NegativeLength {
        /// The length field's value.
        value: u64,
        /// The configured adjustment.
        adjustment: i64,
    },
    /// The frame is shorter than the bytes to strip from it.
    #[error("frame of {frame} bytes is shorter than the {strip} bytes to strip")]
    ShorterThanStrip {
        /// Whole frame length.
        frame: u64,
        /// Bytes to strip.
        strip: usize,
    },
    /// The builder was given an option that cannot work.
    #[error("invalid length-field configuration: {0}")]
    Config(&'static str),
}

/// Byte order of the length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endian {
    /// Most significant byte first (network order). The default.
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

/// What a header announces.
enum Head {
    /// A frame of this many bytes, header included, within the limit.
    Frame(usize),
    /// `value + adjustment` bytes, over the limit.
    OverLimit(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the header.
    Head,
    /// Header read; the whole frame is this many bytes, header included.
    Data(usize),
    /// Skipping an over-long frame: bytes still to drop, and whether the error still has
    /// to be reported when they are gone.
    Discard {
        remaining: u64,
        length: u64,
        report_at_end: bool,
    },
}

/// Length-field framing. See the [module docs](self) for the options.
#[derive(Debug, Clone)]
pub struct LengthPrefixed {
    offset: usize,
    width: usize,
    endian: Endian,
    adjustment: i64,
    strip: usize,
    max: usize,
    fail_fast: bool,
    discard: bool,
    state: State,
    /// Bytes of a discarded frame dropped by the current `decode` call.
    skipped: usize,
    /// The room the last whole frame earned for the next (see `crate::buffer`).
    earned: Earned,
}

impl Default for LengthPrefixed {
    fn default() -> Self {
        Self::new()
    }
}

impl LengthPrefixed {
    /// u32 big endian, header stripped, 16 MiB limit, fatal error over the limit.
    pub fn new() -> Self {
        Self {
            offset: 0,
            width: 4,
            endian: Endian::Big,
            adjustment: 0,
            strip: 4,
            max: DEFAULT_MAX_FRAME,
            fail_fast: true,
            discard: false,
            state: State::Head,
            skipped: 0,
            earned: Earned::default(),
        }
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder() -> LengthPrefixedBuilder {
        LengthPrefixedBuilder {
            offset: 0,
            width: 4,
            endian: Endian::Big,
            adjustment: 0,
            strip: None,
            max: DEFAULT_MAX_FRAME,
            fail_fast: true,
            discard: false,
        }
    }

    /// The limit on `value + adjustment`.
    pub fn max_frame_length(&self) -> usize {
        self.max
    }

    fn header_len(&self) -> usize {
        self.offset + self.width
    }

    #[inline]
    fn read_field(&self, header: &[u8]) -> u64 {
        let field = &header[self.offset..self.offset + self.width];
        // The common 4-byte field without a variable-length copy.
        if let Ok(word) = <[u8; 4]>::try_from(field) {
            return u64::from(match self.endian {
                Endian::Big => u32::from_be_bytes(word),
                Endian::Little => u32::from_le_bytes(word),
            });
        }
        let mut word = [0u8; 8];
        match self.endian {
            Endian::Big => {
                word[8 - self.width..].copy_from_slice(field);
                u64::from_be_bytes(word)
            }
            Endian::Little => {
                word[..self.width].copy_from_slice(field);
                u64::from_le_bytes(word)
            }
        }
    }

    /// Reads the header at the front of `input` (`None`: not all there yet) and checks
    /// the frame it announces.
    #[inline]
    fn parse_head(&self, input: &[u8]) -> Result<Option<Head>> {
        if input.len() < self.header_len() {
            return Ok(None);
        }
        let value = self.read_field(input);
        // value < 2^64, adjustment within i64: the sum always fits in i128.
        let body = i128::from(value) + i128::from(self.adjustment);
        if body < 0 {
            return Err(LengthError::NegativeLength {
                value,
                adjustment: self.adjustment,
            }
            .into());
        }
        // Past u64::MAX (a field near 2^64 plus a positive adjustment): over any limit.
        let body = u64::try_from(body).unwrap_or(u64::MAX);
        if body > self.max as u64 {
            return Ok(Some(Head::OverLimit(body)));
        }
        // Within the limit, but the whole frame may still not be a usize (limit
        // usize::MAX, an 8-byte field): a frame this machine cannot hold.
        let frame = usize::try_from(body)
            .ok()
            .and_then(|body| self.header_len().checked_add(body))
            .ok_or(Error::TooLong {
                length: body,
                max: self.max as u64,
            })?;
        if frame < self.strip {
            return Err(LengthError::ShorterThanStrip {
                frame: frame as u64,
                strip: self.strip,
            }
            .into());
        }
        Ok(Some(Head::Frame(frame)))
    }

    /// Parses the header at the front of `buf` and decides what to do with the frame.
    fn decode_head<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<usize>> {
        match self.parse_head(buf.bytes())? {
            None => Ok(None),
            Some(Head::OverLimit(body)) => self.over_limit(buf, body),
            Some(Head::Frame(frame)) => Ok(Some(frame)),
        }
    }

    fn over_limit<B: InputBuffer>(&mut self, buf: &mut B, body: u64) -> Result<Option<usize>> {
        let max = self.max as u64;
        if !self.discard {
            return Err(Error::TooLong { length: body, max });
        }
        // The whole frame's length, for the report; u64::MAX if it is past that.
        let length = body.saturating_add(self.header_len() as u64);
        buf.advance(self.header_len());
        self.state = State::Discard {
            remaining: body,
            length,
            report_at_end: !self.fail_fast,
        };
        if self.fail_fast {
            return Err(Error::Discarded { length, max });
        }
        Ok(None)
    }

    /// Drops what can be dropped of an over-long frame. `Ok(true)` when it is all gone.
    fn decode_discard<B: InputBuffer>(
        &mut self,
        buf: &mut B,
        remaining: u64,
        length: u64,
        report_at_end: bool,
    ) -> Result<bool> {
        let drop = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        buf.advance(drop);
        if !report_at_end {
            // Already reported: these bytes come before whatever this call returns.
            self.skipped += drop;
        }
        let remaining = remaining - drop as u64;
        if remaining > 0 {
            self.state = State::Discard {
                remaining,
                length,
                report_at_end,
            };
            return Ok(false);
        }
        self.state = State::Head;
        if report_at_end {
            return Err(Error::Discarded {
                length,
                max: self.max as u64,
            });
        }
        Ok(true)
    }
}

impl LengthPrefixed {
    /// The first whole frame at the front of `input`, borrowed: `Ok(Some((consumed,
    /// frame)))`, or `Ok(None)` if `input` does not yet hold a whole frame.
    ///
    /// This is the zero-copy path: no buffer is touched and nothing is allocated or
    /// reference-counted, so a reader can walk every whole frame in its buffer and drop
    /// the bytes once at the end. It ignores the discard mode (an over-long frame is
    /// always [`Error::TooLong`]) and the state of [`Framing::decode`]; use one or the
    /// other on a stream, not both.
    ///
    /// ```
    /// use msgwire_frame::length::LengthPrefixed;
    ///
    /// let framing = LengthPrefixed::new();
    /// let wire = b"\x00\x00\x00\x01a\x00\x00\x00\x02bc\x00\x00";
    /// let mut pos = 0;
    /// let mut frames = Vec::new();
    /// while let Some((used, frame)) = framing.parse_frame(&wire[pos..])? {
    ///     frames.push(frame);
    ///     pos += used;
    /// }
    /// assert_eq!(frames, [&b"a"[..], b"bc"]);
    /// assert_eq!(pos, 11); // the last two bytes wait for the rest of their header
    /// # Ok::<(), msgwire_frame::Error>(())
    /// ```
    #[inline]
    pub fn parse_frame<'a>(&self, input: &'a [u8]) -> Result<Option<(usize, &'a [u8])>> {
        match self.parse_head(input)? {
            None => Ok(None),
            Some(Head::OverLimit(body)) => Err(Error::TooLong {
                length: body,
                max: self.max as u64,
            }),
            Some(Head::Frame(frame)) => Ok(input.get(self.strip..frame).map(|f| (frame, f))),
        }
    }
}

impl LengthPrefixed {
    /// Where the frame part-way in the buffer ends (from the front of the buffer), once
    /// its header is in.
    pub fn frame_end(&self) -> Option<usize> {
        match self.state {
            State::Data(frame) => Some(frame),
            _ => None,
        }
    }

    /// The room the last whole frame earned for the next: its length, up to 256 KiB
    /// (see the [buffer docs](crate::buffer)).
    pub fn earned(&self) -> usize {
        self.earned.get()
    }
}

impl Framing for LengthPrefixed {
    type Frame<B: InputBuffer> = B::Frame;

    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<B::Frame>> {
        self.skipped = 0;
        loop {
            match self.state {
                State::Head => match self.decode_head(buf)? {
                    // The hot path: header and body already buffered, no state change.
                    Some(frame) if buf.len() >= frame => {
                        self.earned.record(frame);
                        return Ok(Some(buf.split_frame_after(self.strip, frame - self.strip)));
                    }
                    Some(frame) => {
                        reserve_toward_earned(buf, frame, self.earned.get());
                        self.state = State::Data(frame);
                        return Ok(None);
                    }
                    None if matches!(self.state, State::Discard { .. }) => continue,
                    None => return Ok(None),
                },
                State::Data(frame) => {
                    if buf.len() < frame {
                        return Ok(None);
                    }
                    self.state = State::Head;
                    self.earned.record(frame);
                    return Ok(Some(buf.split_frame_after(self.strip, frame - self.strip)));
                }
                State::Discard {
                    remaining,
                    length,
                    report_at_end,
                } => {
                    if !self.decode_discard(buf, remaining, length, report_at_end)? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn is_mid_frame(&self) -> bool {
        !matches!(self.state, State::Head)
    }

    fn skipped_before_frame(&self) -> usize {
        self.skipped
    }
}

impl Encode<[u8]> for LengthPrefixed {
    /// Writes the length field and the payload. The payload is what a decoder with the
    /// same options hands out when `strip` is the header length (the default).
    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<()> {
        if self.offset != 0 {
            return Err(Error::Encode(
                "length field offset > 0: write the bytes before the length field yourself",
            ));
        }
        if payload.len() > self.max {
            return Err(Error::TooLong {
                length: payload.len() as u64,
                max: self.max as u64,
            });
        }
        let value =
            i128::try_from(payload.len()).unwrap_or(i128::MAX) - i128::from(self.adjustment);
        let fits = value >= 0 && (self.width == 8 || value < (1i128 << (8 * self.width)));
        if !fits {
            return Err(Error::Encode(
                "payload length does not fit the length field",
            ));
        }
        let bytes = (value as u64).to_be_bytes();
        dst.reserve(self.width + payload.len());
        match self.endian {
            Endian::Big => dst.put_slice(&bytes[8 - self.width..]),
            Endian::Little => dst.extend(bytes[8 - self.width..].iter().rev()),
        }
        dst.put_slice(payload);
        Ok(())
    }
}

/// Builds a [`LengthPrefixed`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct LengthPrefixedBuilder {
    offset: usize,
    width: usize,
    endian: Endian,
    adjustment: i64,
    strip: Option<usize>,
    max: usize,
    fail_fast: bool,
    discard: bool,
}

impl LengthPrefixedBuilder {
    /// Bytes before the length field.
    pub fn length_field_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Width of the length field: 1, 2, 3, 4 or 8 bytes.
    pub fn length_field_width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// The length field is big endian (the default).
    pub fn big_endian(mut self) -> Self {
        self.endian = Endian::Big;
        self
    }

    /// The length field is little endian.
    pub fn little_endian(mut self) -> Self {
        self.endian = Endian::Little;
        self
    }

    /// Added to the field's value to get the number of bytes after the length field.
    pub fn length_adjustment(mut self, adjustment: i64) -> Self {
        self.adjustment = adjustment;
        self
    }

    /// Bytes removed from the front of each frame (default: `offset + width`).
    pub fn strip(mut self, strip: usize) -> Self {
        self.strip = Some(strip);
        self
    }

    /// Limit on `value + adjustment` (the header is not counted).
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// In discard mode, report the error on the header (true, the default) or after the
    /// frame's bytes were skipped (false).
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Skip over-long frames and go on (true) instead of failing the stream (false, the
    /// default).
    pub fn discard_oversized(mut self, discard: bool) -> Self {
        self.discard = discard;
        self
    }

    /// Checks the options.
    pub fn build(self) -> Result<LengthPrefixed> {
        if !matches!(self.width, 1 | 2 | 3 | 4 | 8) {
            return Err(LengthError::Config("length field width must be 1, 2, 3, 4 or 8").into());
        }
        let Some(header_len) = self.offset.checked_add(self.width) else {
            return Err(LengthError::Config("length field offset + width overflows usize").into());
        };
        Ok(LengthPrefixed {
            offset: self.offset,
            width: self.width,
            endian: self.endian,
            adjustment: self.adjustment,
            strip: self.strip.unwrap_or(header_len),
            max: self.max,
            fail_fast: self.fail_fast,
            discard: self.discard,
            state: State::Head,
            skipped: 0,
            earned: Earned::default(),
        })
    }
}

#[cfg(test)]
mod tests;
