//! Self-delimited MessagePack: values back to back, no length prefix.
//!
//! A MessagePack value says how long it is as it goes: its first byte (the *marker*)
//! tells the type and either holds the value, gives a fixed size, or is followed by a
//! length or an element count. So a stream of values needs no framing of its own:
//!
//! ```text
//! +---------+-----------------+------------------------------+---------+
//! | 0x2a    | 0xa3 'a' 'b' 'c'| 0x92 0x01 0xcd 0x01 0x00     | 0xc0    |
//! +---------+-----------------+------------------------------+---------+
//!  <- 42 -> <---- "abc" ----> <------ [1, 256] ------------> <- nil ->
//!   frame 1      frame 2               frame 3                frame 4
//! ```
//!
//! [`MsgpackScanner`] is the sans-IO core. It *measures* one value without decoding it:
//! no allocation per value, no recursion (a small stack of remaining element counts, one
//! entry per open array or map), and it is resumable — fed the same growing buffer again
//! it carries on from the byte it reached, so a value that trickles in one byte at a
//! time is scanned in linear time. A `str`/`bin`/`ext` payload is never looked at: the
//! scanner records where it ends and, until that many bytes exist, answers in O(1).
//!
//! [`MsgpackScanner::scan_many`] measures every whole value in a buffer in one call
//! (same state, same limits, with a table-driven fast path for top-level scalars whose
//! marker fixes their length), for streams of many small values where a call per value
//! would cost more than the value.
//!
//! [`SelfDelimited`] is the [`Framing`] built on it: each frame is the raw bytes of one
//! value; [`SelfDelimited::for_each_value`] is its batch form, handing out every whole
//! buffered value borrowed. [`measure`] is the one-shot form.
//!
//! Limits, both checked on headers, before anything is allocated or waited for:
//!
//! * `max_frame_length` — the most bytes one whole value may take (default
//!   [`DEFAULT_MAX_FRAME`], 16 MiB). A `str`/`bin`/`ext` header whose payload would end
//!   past it fails at once with [`Error::TooLong`]; so does an array or map header
//!   announcing more elements than could fit, since every element still to come takes at
//!   least one byte (`dd ff ff ff ff`, a 4-billion-element array, fails on its 5 bytes).
//!   The `length` reported is the smallest size the value could still have.
//! * `max_depth` — how many arrays and maps may be open inside each other (default
//!   [`DEFAULT_MAX_DEPTH`], 128; a scalar at top level is depth 0, `[1]` depth 1, `[[]]`
//!   depth 2, empty containers counted too). Deeper nesting fails with
//!   [`MsgpackError::TooDeep`]. The scanner's stack holds at most this many `u64`s.
//!
//! The one byte that is never valid, `0xc1`, fails with [`MsgpackError::InvalidMarker`].
//! Everything else is a valid marker, so a value is either complete, a prefix of a
//! possibly valid value ([`Scan::Incomplete`]), or over a limit.
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{msgpack::SelfDelimited, Encode, Framing};
//!
//! let mut framing = SelfDelimited::new();
//! let mut wire = BytesMut::new();
//! framing.encode(&[0x92, 0x01, 0xcd, 0x01, 0x00][..], &mut wire)?; // [1, 256]
//! framing.encode(&[0xa3, b'a', b'b', b'c'][..], &mut wire)?; // "abc"
//! wire.extend_from_slice(&[0x2a, 0xc0]); // 42, nil
//!
//! let mut frames = Vec::new();
//! while let Some(frame) = framing.decode(&mut wire)? {
//!     frames.push(frame);
//! }
//! assert_eq!(frames.len(), 4);
//! assert_eq!(&frames[0][..], &[0x92, 0x01, 0xcd, 0x01, 0x00]);
//! assert_eq!(&frames[1][..], b"\xa3abc");
//! assert_eq!(&frames[3][..], &[0xc0]);
//!
//! // Not exactly one value: refused.
//! assert!(framing.encode(&[0x01, 0x02][..], &mut wire).is_err());
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! The scanner on its own, fed a growing buffer:
//!
//! ```
//! use msgwire_frame::msgpack::{measure, MsgpackScanner, Scan};
//!
//! let value = [0xc4, 0x03, 0xaa, 0xbb, 0xcc]; // bin8, 3 bytes
//! let mut scanner = MsgpackScanner::new();
//! // Header in: the scanner knows the value ends at byte 5.
//! assert_eq!(scanner.scan(&value[..2])?, Scan::Incomplete { min_len: 5 });
//! assert_eq!(scanner.scan(&value[..4])?, Scan::Incomplete { min_len: 5 });
//! assert_eq!(scanner.scan(&value)?, Scan::Complete(5));
//!
//! assert_eq!(measure(&[0x91, 0x91])?, None); // [[ … still open
//! assert_eq!(measure(&[0x91, 0x90, 0xff])?, Some(2)); // [[]], then the next value
//! assert!(measure(&[0x92, 0xc1]).is_err()); // 0xc1 is never valid
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

use std::ops::Range;

use bytes::BytesMut;

use crate::buffer::{reserve_toward, InputBuffer};
use crate::{Encode, Error, Framing, Result, DEFAULT_MAX_FRAME};

/// The default nesting limit: 128 arrays/maps inside each other.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// Errors only the MessagePack scanner raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgpackError {
    /// A marker byte that MessagePack never uses (`0xc1`).
    #[error("invalid MessagePack marker 0x{byte:02x} at byte {offset} of the value")]
    InvalidMarker {
        /// The byte.
        byte: u8,
        /// Its offset from the first byte of the value.
        offset: usize,
    },
    /// Arrays and maps nested deeper than the configured limit.
    #[error("MessagePack value nests arrays/maps deeper than {max}")]
    TooDeep {
        /// The configured limit.
        max: usize,
    },
}

/// What [`MsgpackScanner::scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// One whole value is the first this many bytes of the input. The scanner has reset
    /// and is ready to measure the next value (from the start of a new buffer).
    Complete(usize),
    /// The input is a prefix of a value that is not finished yet. Nothing can change
    /// until the input holds at least `min_len` bytes (counted from the value's first
    /// byte); a call with fewer returns at once.
    Incomplete {
        /// The least input length at which the scanner can make progress.
        min_len: usize,
    },
}

/// Measures one MessagePack value at a time, resumably. See the [module docs](self).
///
/// Call [`scan`](Self::scan) with the bytes received so far; while it returns
/// [`Scan::Incomplete`], call it again with the *same* bytes plus whatever arrived since
/// (the prefix must not change). After [`Scan::Complete`] or an error the scanner starts
/// over: the next call measures a value starting at byte 0 of its input.
#[derive(Debug, Clone)]
pub struct MsgpackScanner {
    max_depth: usize,
    max: usize,
    /// Offset of the next byte to look at; past the input when waiting for the end of a
    /// `str`/`bin`/`ext` payload or of a fixed-size scalar.
    pos: usize,
    /// Elements still to come: the sum of `top` and everything on `stack`. Each needs at
    /// least one byte, so `pos + pending` is the least length the value can have. Zero
    /// once the value is complete (it may still be waiting for `pos` bytes).
    pending: u64,
    /// Elements still to come in the innermost open container (1 for the value itself
    /// at top level, before it has started).
    top: u64,
    /// The `top` of each enclosing level, outermost first; its length is the number of
    /// open arrays/maps.
    stack: Vec<u64>,
    /// The deepest nesting reached by the value in progress.
    deepest: usize,
    /// The deepest nesting of the value last reported complete.
    last_depth: usize,
    /// Bytes examined, for the linear-time test.
    #[cfg(test)]
    examined: u64,
}

impl Default for MsgpackScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl MsgpackScanner {
    /// A scanner with the default limits: [`DEFAULT_MAX_DEPTH`] and [`DEFAULT_MAX_FRAME`].
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME)
    }

    /// A scanner allowing `max_depth` nested arrays/maps and values of at most
    /// `max_frame_length` bytes.
    pub fn with_limits(max_depth: usize, max_frame_length: usize) -> Self {
        Self {
            max_depth,
            max: max_frame_length,
            pos: 0,
            pending: 1,
            top: 1,
            stack: Vec::new(),
            deepest: 0,
            last_depth: 0,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// The nesting limit.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The limit on one value's length in bytes.
    pub fn max_frame_length(&self) -> usize {
        self.max
    }

    /// Whether the scanner is inside a value (it has accounted for some of its bytes).
    pub fn is_mid_value(&self) -> bool {
        self.pos != 0
    }

    /// Forgets the value in progress; the next call starts a new value at byte 0.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.pending = 1;
        self.top = 1;
        self.stack.clear();
        self.deepest = 0;
    }

    /// How deep the value last reported [`Scan::Complete`] nests, counted as
    /// `max_depth` is: a scalar 0, `[1]` 1, `[[]]` 2. Lets a caller that allows more
    /// nesting for measuring than for accepting (to answer a too-deep request rather
    /// than lose the stream) tell the two apart without scanning again.
    ///
    /// ```
    /// use msgwire_frame::msgpack::{MsgpackScanner, Scan};
    ///
    /// let mut scanner = MsgpackScanner::new();
    /// assert_eq!(scanner.scan(&[0x92, 0x91, 0x90, 0x01])?, Scan::Complete(4)); // [[[]], 1]
    /// assert_eq!(scanner.last_depth(), 3);
    /// assert_eq!(scanner.scan(&[0x05])?, Scan::Complete(1));
    /// assert_eq!(scanner.last_depth(), 0);
    /// # Ok::<(), msgwire_frame::Error>(())
    /// ```
    pub fn last_depth(&self) -> usize {
        self.last_depth
    }

    /// The value ends at `pos`: remember its depth and start over.
    #[inline(always)]
    fn complete(&mut self, pos: usize) -> Scan {
        self.last_depth = self.deepest;
        self.reset();
        Scan::Complete(pos)
    }

    /// `max_frame_length` as the scanner compares with it: at most `u64::MAX - 1`, so
    /// that a length sum that saturated at `u64::MAX` (a value no machine could hold,
    /// announced under `max_frame_length(usize::MAX)`) is always over it.
    #[inline(always)]
    fn limit(&self) -> u64 {
        (self.max as u64).min(u64::MAX - 1)
    }

    fn too_long(&mut self, length: u64) -> Error {
        self.reset();
        Error::TooLong {
            length,
            max: self.max as u64,
        }
    }

    fn incomplete(&mut self, pos: usize, pending: u64, top: u64, min_len: usize) -> Scan {
        self.pos = pos;
        self.pending = pending;
        self.top = top;
        Scan::Incomplete { min_len }
    }

    /// Measures the value at the start of `input`, carrying on from where the previous
    /// call stopped.
    ///
    /// Errors: [`Error::TooLong`] when the value cannot fit `max_frame_length`,
    /// [`MsgpackError::TooDeep`] and [`MsgpackError::InvalidMarker`] (wrapped in
    /// [`Error::Msgpack`]). After an error the scanner has reset.
    pub fn scan(&mut self, input: &[u8]) -> Result<Scan> {
        let len = input.len();
        let mut pos = self.pos;
        if pos > len {
            // Waiting for the end of a payload: O(1).
            return Ok(Scan::Incomplete { min_len: pos });
        }
        let mut pending = self.pending;
        let mut top = self.top;
        let max = self.limit();
        if pending == 0 {
            // Complete once the last payload arrived.
            return Ok(self.complete(pos));
        }
        if max == 0 && len > 0 {
            // The loop keeps `pos + pending <= max`; it starts at 0 + 1.
            return Err(self.too_long(1));
        }
        loop {
            // Invariant: pending > 0, top > 0, pos + pending <= max (checked whenever
            // the sum grows).
            let Some(&marker) = input.get(pos) else {
                return Ok(self.incomplete(pos, pending, top, pos + 1));
            };
            #[cfg(test)]
            {
                self.examined += 1;
            }
            // Where the element ends, for everything but containers (which `continue`).
            let fixed = FIXED_LEN[usize::from(marker)];
            let end: u64 = if fixed == 1 {
                // positive fixint, nil, false, true, negative fixint: the hot path.
                // One byte taken, one element done: pos + pending is unchanged.
                pos += 1;
                pending -= 1;
                top -= 1;
                if top == 0 {
                    if pending == 0 {
                        return Ok(self.complete(pos));
                    }
                    top = self.close_levels();
                }
                continue;
            } else if fixed != 0 {
                // fixstr and the fixed-size scalars: no need to read the bytes after the
                // marker, only to wait for them.
                pos as u64 + u64::from(fixed)
            } else {
                match marker {
                    // fixmap, fixarray
                    0x80..=0x8f => {
                        let n = u64::from(marker & 0x0f) * 2;
                        (pos, pending, top) = self.open(pos + 1, pending, top, n)?;
                        if pending == 0 {
                            return Ok(self.complete(pos));
                        }
                        continue;
                    }
                    0x90..=0x9f => {
                        let n = u64::from(marker & 0x0f);
                        (pos, pending, top) = self.open(pos + 1, pending, top, n)?;
                        if pending == 0 {
                            return Ok(self.complete(pos));
                        }
                        continue;
                    }
                    // array16/32, map16/32
                    0xdc..=0xdf => {
                        let width = if marker & 1 == 0 { 2 } else { 4 };
                        let Some(n) = be(input, pos + 1, width) else {
                            return Ok(self.incomplete(pos, pending, top, pos + 1 + width));
                        };
                        #[cfg(test)]
                        {
                            self.examined += width as u64;
                        }
                        let n = if marker >= 0xde { n * 2 } else { n };
                        (pos, pending, top) = self.open(pos + 1 + width, pending, top, n)?;
                        if pending == 0 {
                            return Ok(self.complete(pos));
                        }
                        continue;
                    }
                    // str8/16/32, bin8/16/32: marker, length, payload.
                    // ext8/16/32: marker, length, type byte, payload.
                    0xc4..=0xc9 | 0xd9..=0xdb => {
                        let (width, extra) = match marker {
                            0xc4 | 0xd9 => (1, 0),
                            0xc5 | 0xda => (2, 0),
                            0xc6 | 0xdb => (4, 0),
                            0xc7 => (1, 1),
                            0xc8 => (2, 1),
                            _ => (4, 1), // 0xc9
                        };
                        let Some(n) = be(input, pos + 1, width) else {
                            return Ok(self.incomplete(pos, pending, top, pos + 1 + width));
                        };
                        #[cfg(test)]
                        {
                            self.examined += width as u64;
                        }
                        (pos as u64 + 1 + width as u64 + extra).saturating_add(n)
                    }
                    // 0xc1, the one marker MessagePack never uses. (Every other marker
                    // has its size in `FIXED_LEN`, a test checks that table.)
                    _ => {
                        self.reset();
                        return Err(MsgpackError::InvalidMarker {
                            byte: marker,
                            offset: pos,
                        }
                        .into());
                    }
                }
            };
            // A scalar or str/bin/ext that ends at `end`.
            pending -= 1;
            let least = end.saturating_add(pending);
            if least > max {
                return Err(self.too_long(least));
            }
            // end <= max, a usize: lossless.
            pos = end as usize;
            top -= 1;
            if top == 0 {
                if pending == 0 {
                    if pos <= len {
                        return Ok(self.complete(pos));
                    }
                    return Ok(self.incomplete(pos, 0, 0, pos));
                }
                top = self.close_levels();
            }
            if pos > len {
                return Ok(self.incomplete(pos, pending, top, pos));
            }
        }
    }

    /// Measures every whole value in `input`, back to back, in one call: hands each one's
    /// byte range to `on_value` in order and returns how many bytes they take (the
    /// offset of the first byte not yet part of a whole value).
    ///
    /// Resumable like [`scan`](Self::scan), which it is built on: a value left unfinished
    /// at the end of `input` keeps its progress in the scanner. Drop the returned number
    /// of bytes, append what arrives, and call again with the unfinished value at byte 0;
    /// nothing already measured is looked at again. `scan` and `scan_many` may be mixed on
    /// one stream.
    ///
    /// Values whose marker alone fixes their length (fixints, nil, booleans, fixstr,
    /// fixed-width numbers, fixext) take a fast path at the top level: one table lookup
    /// per value. Everything else, and any value already in progress, goes through
    /// `scan`, with the same limits.
    ///
    /// Errors are those of `scan`, for the first value that fails, with the same offsets
    /// (from that value's first byte, which is where the last range handed out ended, or
    /// 0). The values before it have been handed out; the scanner has reset.
    ///
    /// ```
    /// use msgwire_frame::msgpack::MsgpackScanner;
    ///
    /// // 1, "ab", [nil], then the first byte of a uint16.
    /// let wire = [0x01, 0xa2, b'a', b'b', 0x91, 0xc0, 0xcd];
    /// let mut scanner = MsgpackScanner::new();
    /// let mut values = Vec::new();
    /// let used = scanner.scan_many(&wire, |range| values.push(range))?;
    /// assert_eq!(values, [0..1, 1..4, 4..6]);
    /// assert_eq!(used, 6);
    /// // The uint16 completes once its two bytes arrive.
    /// values.clear();
    /// assert_eq!(scanner.scan_many(&[0xcd, 0x01, 0x00], |range| values.push(range))?, 3);
    /// assert_eq!(values, [0..3]);
    /// # Ok::<(), msgwire_frame::Error>(())
    /// ```
    #[inline]
    pub fn scan_many(&mut self, input: &[u8], on_value: impl FnMut(Range<usize>)) -> Result<usize> {
        self.scan_batch(input, on_value)
            .map(|(consumed, _)| consumed)
    }

    /// [`scan_many`](Self::scan_many), also returning the `min_len` of the unfinished
    /// value (counted from its first byte, at the returned offset).
    #[inline]
    fn scan_batch(
        &mut self,
        input: &[u8],
        mut on_value: impl FnMut(Range<usize>),
    ) -> Result<(usize, usize)> {
        let len = input.len();
        let max = self.max;
        let mut start = 0;
        loop {
            // `pos == 0`: no value in progress (a header cut short is read again).
            if self.pos == 0 {
                // The top-level fast path: the marker gives the whole length.
                while let Some(&marker) = input.get(start) {
                    let size = usize::from(FIXED_LEN[usize::from(marker)]);
                    #[cfg(test)]
                    {
                        self.examined += 1;
                    }
                    // Not a fixed-size marker, over the limit (`scan` reports it) or not
                    // all here yet: the general path takes it.
                    if size == 0 || size > max || size > len - start {
                        break;
                    }
                    let end = start + size;
                    self.last_depth = 0;
                    on_value(start..end);
                    start = end;
                }
            }
            let rest = input.get(start..).unwrap_or_default();
            match self.scan(rest)? {
                Scan::Complete(n) => {
                    on_value(start..start + n);
                    start += n;
                }
                Scan::Incomplete { min_len } => return Ok((start, min_len)),
            }
        }
    }

    /// The innermost level is finished: pops finished levels and returns the `top` of
    /// the innermost one with elements still to come. Only called with `pending > 0`, so
    /// such a level exists.
    #[inline]
    fn close_levels(&mut self) -> u64 {
        while let Some(top) = self.stack.pop() {
            if top != 0 {
                return top;
            }
        }
        // Unreachable while `pending` is kept right; 0 would only mean "value ended".
        0
    }

    /// An array/map header of `n` elements ending at `after`: counts it as one element
    /// of its parent and opens a level for its own elements.
    #[inline]
    fn open(&mut self, after: usize, pending: u64, top: u64, n: u64) -> Result<(usize, u64, u64)> {
        let depth = self.stack.len();
        if depth >= self.max_depth {
            let max = self.max_depth;
            self.reset();
            return Err(MsgpackError::TooDeep { max }.into());
        }
        if depth >= self.deepest {
            self.deepest = depth + 1;
        }
        // Saturating: a sum past u64::MAX ends at u64::MAX, which `limit` excludes.
        let pending = (pending - 1).saturating_add(n);
        let least = (after as u64).saturating_add(pending);
        if least > self.limit() {
            return Err(self.too_long(least));
        }
        let top = top - 1;
        if n != 0 {
            self.stack.push(top);
            return Ok((after, pending, n));
        }
        // An empty container is a whole element, like a scalar.
        if top != 0 {
            return Ok((after, pending, top));
        }
        if pending == 0 {
            // The value is complete at `after`: the caller sees pending == 0.
            return Ok((after, 0, 0));
        }
        Ok((after, pending, self.close_levels()))
    }
}

/// Reads a `width`-byte big-endian number at `at`, `None` if the input is too short.
#[inline(always)]
fn be(input: &[u8], at: usize, width: usize) -> Option<u64> {
    let bytes = input.get(at..at + width)?;
    Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// The whole encoded length of a value whose marker alone fixes it (fixints, nil,
/// booleans, fixstr, the fixed-width numbers and fixext), and 0 for the markers that are
/// followed by a length or a count (and for `0xc1`). One table for [`MsgpackScanner::scan`]
/// and the top-level fast path of [`MsgpackScanner::scan_many`].
static FIXED_LEN: [u8; 256] = fixed_lengths();

const fn fixed_lengths() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut m = 0;
    while m < 256 {
        let marker = m as u8;
        table[m] = match marker {
            // positive fixint, nil, false, true, negative fixint
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => 1,
            // fixstr: marker then up to 31 bytes
            0xa0..=0xbf => 1 + (marker & 0x1f),
            0xcc | 0xd0 => 2,        // uint8, int8
            0xcd | 0xd1 => 3,        // uint16, int16
            0xca | 0xce | 0xd2 => 5, // float32, uint32, int32
            0xcb | 0xcf | 0xd3 => 9, // float64, uint64, int64
            0xd4 => 3,               // fixext1: marker, type, 1
            0xd5 => 4,               // fixext2
            0xd6 => 6,               // fixext4
            0xd7 => 10,              // fixext8
            0xd8 => 18,              // fixext16
            // containers, str8/16/32, bin*, ext8/16/32, and 0xc1
            _ => 0,
        };
        m += 1;
    }
    table
}

/// Measures the MessagePack value at the start of `input` with the default limits:
/// `Some(length)` when it is complete, `None` when `input` is a prefix of a value.
pub fn measure(input: &[u8]) -> Result<Option<usize>> {
    match MsgpackScanner::new().scan(input)? {
        Scan::Complete(n) => Ok(Some(n)),
        Scan::Incomplete { .. } => Ok(None),
    }
}

/// Self-delimited MessagePack framing: each frame is the raw bytes of one value. See
/// the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct SelfDelimited {
    scanner: MsgpackScanner,
}

impl SelfDelimited {
    /// Default limits: [`DEFAULT_MAX_DEPTH`] and [`DEFAULT_MAX_FRAME`].
    pub fn new() -> Self {
        Self {
            scanner: MsgpackScanner::new(),
        }
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder() -> SelfDelimitedBuilder {
        SelfDelimitedBuilder {
            max_depth: DEFAULT_MAX_DEPTH,
            max: DEFAULT_MAX_FRAME,
        }
    }

    /// The nesting limit.
    pub fn max_depth(&self) -> usize {
        self.scanner.max_depth()
    }

    /// The limit on one value's length in bytes.
    pub fn max_frame_length(&self) -> usize {
        self.scanner.max_frame_length()
    }

    /// How deep the frame last returned by [`Framing::decode`] nests (see
    /// [`MsgpackScanner::last_depth`]).
    pub fn last_frame_depth(&self) -> usize {
        self.scanner.last_depth()
    }
}

impl SelfDelimited {
    /// Hands every whole value buffered in `buf` to `on_value`, borrowed, then drops
    /// them from `buf` in one step; returns how many there were.
    ///
    /// The batch form of [`Framing::decode`]: no frame is split off or reference-counted
    /// per value, and the values are measured by [`MsgpackScanner::scan_many`], without a
    /// call per value. It shares the decoder's state, so a value left unfinished in `buf`
    /// is carried on by the next call to either. On error the values before the bad one
    /// have been handed out and dropped from `buf`, which then starts at the bad value.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use msgwire_frame::msgpack::SelfDelimited;
    ///
    /// let mut framing = SelfDelimited::new();
    /// // 42, "hi", [1, 2], then half of a uint16.
    /// let mut buf = BytesMut::from(&[0x2a, 0xa2, b'h', b'i', 0x92, 0x01, 0x02, 0xcd, 0x01][..]);
    /// let mut values = Vec::new();
    /// let n = framing.for_each_value(&mut buf, |value| values.push(value.to_vec()))?;
    /// assert_eq!(n, 3);
    /// assert_eq!(values, [&[0x2a][..], b"\xa2hi", &[0x92, 0x01, 0x02]]);
    /// assert_eq!(&buf[..], &[0xcd, 0x01]); // waits for its last byte
    /// # Ok::<(), msgwire_frame::Error>(())
    /// ```
    pub fn for_each_value<B: InputBuffer>(
        &mut self,
        buf: &mut B,
        mut on_value: impl FnMut(&[u8]),
    ) -> Result<usize> {
        let mut done = 0;
        let mut count = 0;
        let bytes = buf.bytes();
        let scanned = self.scanner.scan_batch(bytes, |range| {
            done = range.end;
            count += 1;
            on_value(bytes.get(range).unwrap_or_default());
        });
        match scanned {
            Ok((consumed, min_len)) => {
                buf.advance(consumed);
                // As in `decode`: min_len was checked against the limit.
                if min_len > buf.len() + 1 {
                    reserve_toward(buf, min_len);
                }
                Ok(count)
            }
            Err(e) => {
                buf.advance(done);
                Err(e)
            }
        }
    }
}

impl Framing for SelfDelimited {
    type Frame<B: InputBuffer> = B::Frame;

    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<B::Frame>> {
        match self.scanner.scan(buf.bytes())? {
            Scan::Complete(n) => Ok(Some(buf.split_frame(n))),
            Scan::Incomplete { min_len } => {
                // min_len was checked against the limit before it was returned; the
                // reservation toward it is capped (see `crate::buffer`).
                if min_len > buf.len() + 1 {
                    reserve_toward(buf, min_len);
                }
                Ok(None)
            }
        }
    }

    fn is_mid_frame(&self) -> bool {
        self.scanner.is_mid_value()
    }
}

impl Encode<[u8]> for SelfDelimited {
    /// Appends `payload` unchanged after checking that it is exactly one complete
    /// MessagePack value within this framing's limits. Not a value, an unfinished one,
    /// bytes after it or nesting over `max_depth`: [`Error::Encode`]; longer than
    /// `max_frame_length`: [`Error::TooLong`]. Nothing is written on error.
    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<()> {
        // A scanner of its own: the decoder's may be in the middle of a value.
        let mut scanner = MsgpackScanner::with_limits(self.max_depth(), self.max_frame_length());
        match scanner.scan(payload) {
            Ok(Scan::Complete(n)) if n == payload.len() => {
                dst.extend_from_slice(payload);
                Ok(())
            }
            Ok(Scan::Complete(_)) => Err(Error::Encode(
                "payload has bytes after its first MessagePack value",
            )),
            Ok(Scan::Incomplete { .. }) => {
                Err(Error::Encode("payload is an unfinished MessagePack value"))
            }
            Err(Error::Msgpack(MsgpackError::InvalidMarker { .. })) => {
                Err(Error::Encode("payload is not MessagePack (marker 0xc1)"))
            }
            Err(Error::Msgpack(MsgpackError::TooDeep { .. })) => Err(Error::Encode(
                "payload nests arrays/maps deeper than max_depth",
            )),
            Err(e) => Err(e),
        }
    }
}

/// Builds a [`SelfDelimited`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct SelfDelimitedBuilder {
    max_depth: usize,
    max: usize,
}

impl SelfDelimitedBuilder {
    /// How many arrays/maps may be open inside each other (default 128).
    pub fn max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// The most bytes one whole value may take (default 16 MiB).
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// The framing. Every combination of options is valid.
    pub fn build(self) -> SelfDelimited {
        SelfDelimited {
            scanner: MsgpackScanner::with_limits(self.max_depth, self.max),
        }
    }

    /// A bare scanner with these limits.
    pub fn build_scanner(self) -> MsgpackScanner {
        MsgpackScanner::with_limits(self.max_depth, self.max)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    fn scan_fresh(input: &[u8]) -> Result<Scan> {
        MsgpackScanner::new().scan(input)
    }

    /// One value of every marker family, with its exact length.
    fn every_family() -> Vec<(&'static str, Vec<u8>)> {
        let mut v: Vec<(&'static str, Vec<u8>)> = vec![
            ("positive fixint 0", vec![0x00]),
            ("positive fixint 127", vec![0x7f]),
            ("negative fixint -32", vec![0xe0]),
            ("negative fixint -1", vec![0xff]),
            ("nil", vec![0xc0]),
            ("false", vec![0xc2]),
            ("true", vec![0xc3]),
            ("uint8", vec![0xcc, 0xff]),
            ("uint16", vec![0xcd, 0x01, 0x00]),
            ("uint32", vec![0xce, 0, 1, 0, 0]),
            ("uint64", vec![0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
            ("int8", vec![0xd0, 0x80]),
            ("int16", vec![0xd1, 0x80, 0x00]),
            ("int32", vec![0xd2, 0x80, 0, 0, 0]),
            ("int64", vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            ("float32", vec![0xca, 0x3f, 0x80, 0, 0]),
            ("float64", vec![0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
            ("fixext1", vec![0xd4, 0x01, 0xaa]),
            ("fixext2", vec![0xd5, 0x01, 0xaa, 0xbb]),
            ("fixext4", vec![0xd6, 0xff, 1, 2, 3, 4]),
            ("fixext8", vec![0xd7, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8]),
            ("ext8 empty", vec![0xc7, 0x00, 0x05]),
            ("ext8", vec![0xc7, 0x03, 0x05, 1, 2, 3]),
            ("ext16", vec![0xc8, 0x00, 0x02, 0x05, 1, 2]),
            ("ext32", vec![0xc9, 0, 0, 0, 0x01, 0x05, 0xc1]),
            ("fixstr empty", vec![0xa0]),
            ("fixstr", vec![0xa3, b'a', b'b', b'c']),
            ("str8", vec![0xd9, 0x02, b'h', b'i']),
            ("str16", vec![0xda, 0x00, 0x01, b'x']),
            ("str32", vec![0xdb, 0, 0, 0, 0x01, b'x']),
            ("bin8", vec![0xc4, 0x02, 0xc1, 0xc1]),
            ("bin16", vec![0xc5, 0x00, 0x00]),
            ("bin32", vec![0xc6, 0, 0, 0, 0x02, 0, 0]),
            ("fixarray empty", vec![0x90]),
            ("fixarray", vec![0x93, 0x01, 0xc0, 0xa1, b'z']),
            ("fixmap empty", vec![0x80]),
            ("fixmap", vec![0x82, 0x01, 0x02, 0xa1, b'k', 0xc3]),
            ("array16", vec![0xdc, 0x00, 0x02, 0x01, 0x02]),
            ("array32", vec![0xdd, 0, 0, 0, 0x01, 0xcc, 0x05]),
            ("map16", vec![0xde, 0x00, 0x01, 0x01, 0x02]),
            ("map32", vec![0xdf, 0, 0, 0, 0x01, 0x90, 0x80]),
            ("array16 empty", vec![0xdc, 0x00, 0x00]),
            ("map32 empty", vec![0xdf, 0, 0, 0, 0]),
            ("nested", vec![0x92, 0x91, 0x91, 0x01, 0x02]),
            ("nested empties", vec![0x92, 0x91, 0x90, 0x90]),
            (
                "map of arrays",
                vec![0x81, 0x91, 0x01, 0x92, 0x80, 0xc4, 0x01, 0x00],
            ),
        ];
        let mut fixext16 = vec![0xd8, 0x01];
        fixext16.extend_from_slice(&[0xc1; 16]);
        v.push(("fixext16", fixext16));
        let mut fixarray15 = vec![0x9f];
        fixarray15.extend_from_slice(&[0x07; 15]);
        v.push(("fixarray 15", fixarray15));
        let mut fixmap15 = vec![0x8f];
        fixmap15.extend_from_slice(&[0x07; 30]);
        v.push(("fixmap 15", fixmap15));
        let mut fixstr31 = vec![0xbf];
        fixstr31.extend_from_slice(&[b'.'; 31]);
        v.push(("fixstr 31", fixstr31));
        v
    }

    #[test]
    fn every_family_measures_exactly_and_stops_before_the_next_value() {
        for (name, bytes) in every_family() {
            let mut input = bytes.clone();
            input.push(0xc1); // the next "value" would be invalid: must not be read
            assert_eq!(
                scan_fresh(&input).unwrap(),
                Scan::Complete(bytes.len()),
                "{name}"
            );
            assert_eq!(
                scan_fresh(&bytes).unwrap(),
                Scan::Complete(bytes.len()),
                "{name}"
            );
            assert_eq!(measure(&input).unwrap(), Some(bytes.len()), "{name}");
        }
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        for (name, bytes) in every_family() {
            for cut in 0..bytes.len() {
                match scan_fresh(&bytes[..cut]).unwrap() {
                    Scan::Incomplete { min_len } => {
                        assert!(min_len > cut && min_len <= bytes.len(), "{name} at {cut}")
                    }
                    other => panic!("{name} cut at {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn resumes_byte_by_byte_and_resets_after_complete() {
        let mut scanner = MsgpackScanner::new();
        for (name, bytes) in every_family() {
            for cut in 0..bytes.len() {
                assert!(
                    matches!(
                        scanner.scan(&bytes[..cut]).unwrap(),
                        Scan::Incomplete { .. }
                    ),
                    "{name} at {cut}"
                );
            }
            assert_eq!(
                scanner.scan(&bytes).unwrap(),
                Scan::Complete(bytes.len()),
                "{name}"
            );
            assert!(!scanner.is_mid_value());
        }
    }

    #[test]
    fn min_len_is_exact() {
        let cases: &[(&[u8], usize)] = &[
            (&[], 1),
            (&[0x92, 0x01], 3),
            (&[0xcd, 0x01], 3),
            (&[0xcf], 9),
            (&[0xdc, 0x00], 3),
            (&[0xdd], 5),
            (&[0xc7, 0x02], 5), // marker, len, type, 2 bytes
            (&[0xc9, 0, 0, 1, 0], 6 + 256),
            (&[0xd8], 18),
            (&[0xdb, 0, 0, 1, 0, b'a'], 5 + 256),
            (&[0x91, 0xc4, 0x03], 6),
            (&[0x81, 0x01], 3),
        ];
        for (input, want) in cases {
            assert_eq!(
                scan_fresh(input).unwrap(),
                Scan::Incomplete { min_len: *want },
                "{input:02x?}"
            );
        }
    }

    #[test]
    fn value_whose_last_payload_is_pending_completes_when_it_arrives() {
        let wire = [0x91, 0xc4, 0x03, 1, 2, 3, 0xc1];
        let mut scanner = MsgpackScanner::new();
        assert_eq!(
            scanner.scan(&wire[..3]).unwrap(),
            Scan::Incomplete { min_len: 6 }
        );
        assert_eq!(
            scanner.scan(&wire[..5]).unwrap(),
            Scan::Incomplete { min_len: 6 }
        );
        assert_eq!(scanner.scan(&wire).unwrap(), Scan::Complete(6));
        // And a fixed-size scalar at the top level.
        assert_eq!(
            scanner.scan(&[0xcd]).unwrap(),
            Scan::Incomplete { min_len: 3 }
        );
        assert_eq!(
            scanner.scan(&[0xcd, 1, 2, 0xff]).unwrap(),
            Scan::Complete(3)
        );
    }

    #[test]
    fn invalid_marker_reports_byte_and_offset() {
        for (input, offset) in [
            (&[0xc1][..], 0usize),
            (&[0x93, 0x01, 0xc1][..], 2),
            (&[0x81, 0xa1, b'k', 0xc1][..], 3),
            (&[0x92, 0xcd, 0x00, 0x01, 0xc1][..], 4),
        ] {
            match scan_fresh(input) {
                Err(Error::Msgpack(MsgpackError::InvalidMarker {
                    byte: 0xc1,
                    offset: o,
                })) => {
                    assert_eq!(o, offset, "{input:02x?}")
                }
                other => panic!("{input:02x?}: {other:?}"),
            }
        }
        // 0xc1 inside a payload is data, not a marker.
        assert_eq!(scan_fresh(&[0xa1, 0xc1]).unwrap(), Scan::Complete(2));
        assert_eq!(scan_fresh(&[0xcc, 0xc1]).unwrap(), Scan::Complete(2));
    }

    #[test]
    fn scanner_resets_after_an_error() {
        let mut scanner = MsgpackScanner::new();
        assert!(scanner.scan(&[0x92, 0x01]).is_ok());
        assert!(scanner.scan(&[0x92, 0x01, 0xc1]).is_err());
        assert!(!scanner.is_mid_value());
        assert_eq!(scanner.scan(&[0x01]).unwrap(), Scan::Complete(1));
    }

    #[test]
    fn nesting_bomb_fails_too_deep_without_recursion() {
        let bomb = vec![0x91u8; 100_000];
        let mut scanner = MsgpackScanner::new();
        match scanner.scan(&bomb) {
            Err(Error::Msgpack(MsgpackError::TooDeep { max: 128 })) => {}
            other => panic!("{other:?}"),
        }
        assert!(scanner.stack.capacity() <= 2 * DEFAULT_MAX_DEPTH);
        // Maps nest too (as keys).
        let map_bomb = vec![0x81u8; 100_000];
        assert!(matches!(
            scan_fresh(&map_bomb),
            Err(Error::Msgpack(MsgpackError::TooDeep { max: 128 }))
        ));
    }

    #[test]
    fn depth_limit_is_exact_and_counts_empty_containers() {
        let mut ok = vec![0x91u8; 128];
        ok.push(0x01);
        assert_eq!(scan_fresh(&ok).unwrap(), Scan::Complete(129));
        let mut ok_empty = vec![0x91u8; 127];
        ok_empty.push(0x90);
        assert_eq!(scan_fresh(&ok_empty).unwrap(), Scan::Complete(128));
        let mut deep = vec![0x91u8; 128];
        deep.push(0x90);
        assert!(matches!(
            scan_fresh(&deep),
            Err(Error::Msgpack(MsgpackError::TooDeep { max: 128 }))
        ));
        let mut zero = MsgpackScanner::with_limits(0, 100);
        assert_eq!(zero.scan(&[0x05]).unwrap(), Scan::Complete(1));
        assert!(matches!(
            zero.scan(&[0x80]),
            Err(Error::Msgpack(MsgpackError::TooDeep { max: 0 }))
        ));
        let mut one = MsgpackScanner::with_limits(1, 100);
        assert!(matches!(
            one.scan(&[0x92, 0x01, 0x90]),
            Err(Error::Msgpack(MsgpackError::TooDeep { max: 1 }))
        ));
        assert_eq!(one.scan(&[0x92, 0x01, 0x02]).unwrap(), Scan::Complete(3));
    }

    fn assert_too_long(result: Result<Scan>, length: u64, max: u64) {
        match result {
            Err(Error::TooLong { length: l, max: m }) => assert_eq!((l, m), (length, max)),
            other => panic!("expected TooLong {{ {length}, {max} }}, got {other:?}"),
        }
    }

    #[test]
    fn four_billion_element_array_header_fails_at_once_without_allocating() {
        let max = DEFAULT_MAX_FRAME as u64;
        let mut scanner = MsgpackScanner::new();
        assert_too_long(
            scanner.scan(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            5 + 0xffff_ffff,
            max,
        );
        assert_eq!(scanner.stack.capacity(), 0, "nothing allocated");
        // A map of n pairs is 2n elements.
        assert_too_long(
            scanner.scan(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            5 + 2 * 0xffff_ffff,
            max,
        );
        assert_eq!(scanner.stack.capacity(), 0);
        // Inside an array, the outer pending elements count too.
        let mut small = MsgpackScanner::with_limits(128, 20);
        assert_too_long(small.scan(&[0x93, 0xdc, 0x00, 0x10]), 4 + 16 + 2, 20);
        assert_eq!(
            small.scan(&[0x93, 0xdc, 0x00, 0x0e]).unwrap(),
            Scan::Incomplete { min_len: 5 }
        );
    }

    #[test]
    fn four_gib_str_bin_ext_headers_fail_at_once() {
        let max = DEFAULT_MAX_FRAME as u64;
        assert_too_long(
            scan_fresh(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
            5 + 0xffff_ffff,
            max,
        );
        assert_too_long(
            scan_fresh(&[0xc6, 0xff, 0xff, 0xff, 0xff]),
            5 + 0xffff_ffff,
            max,
        );
        assert_too_long(
            scan_fresh(&[0xc9, 0xff, 0xff, 0xff, 0xff]),
            6 + 0xffff_ffff,
            max,
        );
        // Just over the default limit, declared by a str32 header.
        let over = (DEFAULT_MAX_FRAME - 4) as u32;
        let mut header = vec![0xdb];
        header.extend_from_slice(&over.to_be_bytes());
        assert_too_long(scan_fresh(&header), max + 1, max);
        let mut header = vec![0xdb];
        header.extend_from_slice(&(over - 1).to_be_bytes());
        assert_eq!(
            scan_fresh(&header).unwrap(),
            Scan::Incomplete {
                min_len: DEFAULT_MAX_FRAME
            }
        );
    }

    #[test]
    fn limit_is_exact_for_every_kind_of_growth() {
        // str: 9 bytes fit in 9, not in 8.
        let s = [0xa8, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h'];
        assert_eq!(
            MsgpackScanner::with_limits(4, 9).scan(&s).unwrap(),
            Scan::Complete(9)
        );
        assert_too_long(MsgpackScanner::with_limits(4, 8).scan(&s[..1]), 9, 8);
        // A fixed-size scalar fails on its marker.
        assert_too_long(MsgpackScanner::with_limits(4, 5).scan(&[0xcf]), 9, 5);
        // An array header, counting one byte per element.
        assert_too_long(MsgpackScanner::with_limits(4, 4).scan(&[0x94]), 5, 4);
        assert_eq!(
            MsgpackScanner::with_limits(4, 4)
                .scan(&[0x93, 1, 2, 3])
                .unwrap(),
            Scan::Complete(4)
        );
        // Elements that are bigger than one byte push it over later.
        assert_eq!(
            MsgpackScanner::with_limits(4, 4)
                .scan(&[0x92, 0xcc])
                .unwrap(),
            Scan::Incomplete { min_len: 3 }
        );
        assert_too_long(MsgpackScanner::with_limits(4, 4).scan(&[0x92, 0xcd]), 5, 4);
        // Zero: nothing fits, but an empty input is only incomplete.
        let mut zero = MsgpackScanner::with_limits(4, 0);
        assert_eq!(zero.scan(&[]).unwrap(), Scan::Incomplete { min_len: 1 });
        assert_too_long(zero.scan(&[0x01]), 1, 0);
        // usize::MAX does not overflow anything.
        let mut huge = MsgpackScanner::with_limits(4, usize::MAX);
        assert_eq!(
            huge.scan(&[0xdd, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            Scan::Incomplete { min_len: 6 }
        );
    }

    #[test]
    fn unbounded_limit_4_gib_headers_reserve_little_and_are_truncated_at_eof() {
        for header in [
            &[0xdb, 0xff, 0xff, 0xff, 0xff][..], // str32
            &[0xc6, 0xff, 0xff, 0xff, 0xff],     // bin32
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0xdd, 0xff, 0xff, 0xff, 0xff], // array32: 4 billion elements
            &[0xdf, 0xff, 0xff, 0xff, 0xff],
        ] {
            let mut framing = SelfDelimited::builder()
                .max_frame_length(usize::MAX)
                .build();
            crate::test_support::assert_waits_with_capped_room(&mut framing, header);
        }
    }

    #[test]
    fn long_payload_waits_in_constant_time() {
        let mut wire = vec![0xc6, 0x00, 0x10, 0x00, 0x00]; // bin32, 1 MiB
        let mut scanner = MsgpackScanner::new();
        assert_eq!(
            scanner.scan(&wire).unwrap(),
            Scan::Incomplete {
                min_len: 5 + (1 << 20)
            }
        );
        let examined = scanner.examined;
        for _ in 0..(1 << 20) - 1 {
            wire.push(0xc1);
            assert!(matches!(
                scanner.scan(&wire).unwrap(),
                Scan::Incomplete { .. }
            ));
        }
        assert_eq!(
            scanner.examined, examined,
            "payload bytes are never looked at"
        );
        wire.push(0xc1);
        assert_eq!(scanner.scan(&wire).unwrap(), Scan::Complete(5 + (1 << 20)));
    }

    #[test]
    fn one_mib_array_fed_bytewise_is_scanned_in_linear_time() {
        let n = 1usize << 20;
        let mut wire = vec![0xdd];
        wire.extend_from_slice(&(n as u32).to_be_bytes());
        wire.extend(std::iter::repeat_n(0x01, n));
        let mut scanner = MsgpackScanner::new();
        for cut in 0..wire.len() {
            assert!(matches!(
                scanner.scan(&wire[..cut]).unwrap(),
                Scan::Incomplete { .. }
            ));
        }
        assert_eq!(scanner.scan(&wire).unwrap(), Scan::Complete(wire.len()));
        // Each element byte once; the 5-byte header re-read while it was partial.
        assert!(
            scanner.examined <= wire.len() as u64 + 16,
            "examined {} bytes of {}",
            scanner.examined,
            wire.len()
        );
    }

    fn rmpv_encode(value: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    #[test]
    fn rmpv_encodings_measure_exactly() {
        use rmpv::Value;
        let big_str = "s".repeat(70_000);
        let values = vec![
            Value::Nil,
            Value::Boolean(true),
            Value::from(0),
            Value::from(127),
            Value::from(128),
            Value::from(-32),
            Value::from(-33),
            Value::from(u16::MAX),
            Value::from(u32::MAX),
            Value::from(u64::MAX),
            Value::from(i8::MIN),
            Value::from(i16::MIN),
            Value::from(i32::MIN),
            Value::from(i64::MIN),
            Value::F32(1.5),
            Value::F64(-2.25),
            Value::from("x".repeat(31)),
            Value::from("x".repeat(32)),
            Value::from("x".repeat(300)),
            Value::from(big_str.as_str()),
            Value::Binary(vec![0xc1; 3]),
            Value::Binary(vec![0; 300]),
            Value::Binary(vec![7; 70_000]),
            Value::Ext(5, vec![1]),
            Value::Ext(-5, vec![1, 2]),
            Value::Ext(1, vec![0; 4]),
            Value::Ext(1, vec![0; 8]),
            Value::Ext(1, vec![0; 16]),
            Value::Ext(1, vec![0; 3]),
            Value::Ext(1, vec![0; 300]),
            Value::Ext(1, vec![0; 70_000]),
            Value::Array(vec![]),
            Value::Array((0..20).map(Value::from).collect()),
            Value::Array(vec![Value::Nil; 70_000]),
            Value::Map(vec![]),
            Value::Map(
                (0..20)
                    .map(|i| (Value::from(i), Value::from("v")))
                    .collect(),
            ),
            Value::Map(vec![(Value::Nil, Value::Nil); 70_000]),
            Value::Array(vec![Value::Map(vec![(
                Value::Array(vec![Value::from(1), Value::Binary(vec![1, 2])]),
                Value::Array(vec![Value::Array(vec![]), Value::Ext(3, vec![9; 5])]),
            )])]),
        ];
        let mut stream = Vec::new();
        for value in &values {
            let bytes = rmpv_encode(value);
            assert_eq!(measure(&bytes).unwrap(), Some(bytes.len()), "{value:?}");
            assert_eq!(
                measure(&bytes[..bytes.len() - 1]).unwrap(),
                None,
                "{value:?}"
            );
            stream.extend_from_slice(&bytes);
        }
        // Back to back, through the framing.
        let mut framing = SelfDelimited::new();
        let mut buf = BytesMut::from(&stream[..]);
        for value in &values {
            let frame = framing.decode(&mut buf).unwrap().unwrap();
            let decoded = rmpv::decode::read_value(&mut &frame[..]).unwrap();
            assert_eq!(&decoded, value);
        }
        assert!(buf.is_empty());
        assert!(framing.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn framing_decodes_pieces_and_reports_truncation() {
        let mut framing = SelfDelimited::new();
        let mut buf = BytesMut::from(&[0x92, 0x01][..]);
        assert!(framing.decode(&mut buf).unwrap().is_none());
        assert!(framing.is_mid_frame());
        buf.extend_from_slice(&[0xa2, b'h']);
        assert!(framing.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[b'i', 0x2a]);
        assert_eq!(
            &framing.decode(&mut buf).unwrap().unwrap()[..],
            &[0x92, 0x01, 0xa2, b'h', b'i']
        );
        assert!(!framing.is_mid_frame());
        assert_eq!(&framing.decode_eof(&mut buf).unwrap().unwrap()[..], &[0x2a]);
        assert!(framing.decode_eof(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[0xcd, 0x01]);
        assert!(matches!(
            framing.decode_eof(&mut buf),
            Err(Error::Truncated { buffered: 2 })
        ));
    }

    #[test]
    fn framing_applies_builder_limits() {
        let mut framing = SelfDelimited::builder()
            .max_depth(2)
            .max_frame_length(8)
            .build();
        assert_eq!((framing.max_depth(), framing.max_frame_length()), (2, 8));
        let mut buf = BytesMut::from(&[0x91, 0x91, 0x91, 0x01][..]);
        assert!(matches!(
            framing.decode(&mut buf),
            Err(Error::Msgpack(MsgpackError::TooDeep { max: 2 }))
        ));
        let mut framing = SelfDelimited::builder().max_frame_length(8).build();
        let mut buf = BytesMut::from(&[0xa8][..]);
        assert!(matches!(
            framing.decode(&mut buf),
            Err(Error::TooLong { length: 9, max: 8 })
        ));
        let scanner = SelfDelimited::builder().max_depth(3).build_scanner();
        assert_eq!(scanner.max_depth(), 3);
    }

    #[test]
    fn encode_accepts_exactly_one_value() {
        let mut framing = SelfDelimited::builder()
            .max_depth(2)
            .max_frame_length(8)
            .build();
        let mut dst = BytesMut::new();
        framing
            .encode(&[0x92, 0x01, 0x91, 0x02][..], &mut dst)
            .unwrap();
        assert_eq!(&dst[..], &[0x92, 0x01, 0x91, 0x02]);
        for bad in [
            &[][..],
            &[0x01, 0x02][..],
            &[0x92, 0x01][..],
            &[0xc1][..],
            &[0x91, 0x91, 0x91, 0x01][..],
        ] {
            assert!(
                matches!(framing.encode(bad, &mut dst), Err(Error::Encode(_))),
                "{bad:02x?}"
            );
        }
        assert!(matches!(
            framing.encode(&[0xa8, 1, 2, 3, 4, 5, 6, 7, 8][..], &mut dst),
            Err(Error::TooLong { length: 9, max: 8 })
        ));
        assert_eq!(dst.len(), 4, "nothing written on error");
    }

    #[test]
    fn encode_does_not_disturb_a_decode_in_progress() {
        let mut framing = SelfDelimited::new();
        let mut buf = BytesMut::from(&[0x92, 0x01][..]);
        assert!(framing.decode(&mut buf).unwrap().is_none());
        let mut dst = BytesMut::new();
        framing.encode(&[0x05][..], &mut dst).unwrap();
        buf.extend_from_slice(&[0x02]);
        assert_eq!(
            &framing.decode(&mut buf).unwrap().unwrap()[..],
            &[0x92, 0x01, 0x02]
        );
    }

    #[test]
    fn fixed_len_table_matches_the_spec() {
        let variable =
            |m: u8| matches!(m, 0x80..=0x9f | 0xdc..=0xdf | 0xc4..=0xc9 | 0xd9..=0xdb | 0xc1);
        for m in 0..=255u8 {
            let fixed = usize::from(FIXED_LEN[usize::from(m)]);
            assert_eq!(fixed == 0, variable(m), "marker {m:#04x}");
            if fixed != 0 {
                let mut input = vec![m];
                input.extend_from_slice(&[0xc1; 40]);
                assert_eq!(
                    scan_fresh(&input).unwrap(),
                    Scan::Complete(fixed),
                    "{m:#04x}"
                );
                assert_eq!(
                    scan_fresh(&input[..fixed - 1]).unwrap(),
                    Scan::Incomplete { min_len: fixed },
                    "{m:#04x}"
                );
            }
            // Only 0xc1 is refused as a marker.
            let result = scan_fresh(&[m, 0, 0, 0, 0]);
            let invalid = matches!(
                result,
                Err(Error::Msgpack(MsgpackError::InvalidMarker {
                    offset: 0,
                    ..
                }))
            );
            assert_eq!(invalid, m == 0xc1, "{m:#04x}: {result:?}");
        }
    }

    /// Where a run ended up: every value's absolute range, then the error (as text) with
    /// the absolute offset of the value that failed, and whether the scanner was left
    /// inside a value.
    type Outcome = (Vec<Range<usize>>, Option<(usize, String)>, bool);

    /// Repeated `scan`, fed `wire` up to each of `ends` in turn; like a reader, the
    /// buffer keeps the bytes after the last whole value.
    fn by_scan(mut scanner: MsgpackScanner, wire: &[u8], ends: &[usize]) -> Outcome {
        let mut base = 0;
        let mut values = Vec::new();
        for &end in ends {
            loop {
                match scanner.scan(&wire[base..end]) {
                    Ok(Scan::Complete(n)) => {
                        values.push(base..base + n);
                        base += n;
                    }
                    Ok(Scan::Incomplete { .. }) => break,
                    Err(e) => return (values, Some((base, format!("{e:?}"))), false),
                }
            }
        }
        (values, None, scanner.is_mid_value())
    }

    /// The same with `scan_many`, checking that the ranges of a call are back to back
    /// from byte 0 and end where the returned count says.
    fn by_scan_many(mut scanner: MsgpackScanner, wire: &[u8], ends: &[usize]) -> Outcome {
        let mut base = 0;
        let mut values = Vec::new();
        for &end in ends {
            let mut got: Vec<Range<usize>> = Vec::new();
            let result = scanner.scan_many(&wire[base..end], |r| got.push(r));
            let mut next = 0;
            for r in &got {
                assert_eq!(r.start, next, "ranges back to back");
                assert!(r.end > r.start);
                next = r.end;
            }
            values.extend(got.iter().map(|r| base + r.start..base + r.end));
            match result {
                Ok(used) => {
                    assert_eq!(used, next);
                    base += used;
                }
                Err(e) => return (values, Some((base + next, format!("{e:?}"))), false),
            }
        }
        (values, None, scanner.is_mid_value())
    }

    /// Both ways, fed in two reads split at every point, and byte by byte.
    fn assert_batch_agrees(make: impl Fn() -> MsgpackScanner, wire: &[u8]) -> Outcome {
        let whole = by_scan(make(), wire, &[wire.len()]);
        for cut in 0..=wire.len() {
            let ends = [cut, wire.len()];
            assert_eq!(
                by_scan_many(make(), wire, &ends),
                by_scan(make(), wire, &ends),
                "split at {cut}"
            );
            // Where the stream is cut does not matter.
            assert_eq!(by_scan(make(), wire, &ends), whole, "split at {cut}");
        }
        let bytewise: Vec<usize> = (0..=wire.len()).collect();
        assert_eq!(by_scan_many(make(), wire, &bytewise), whole, "bytewise");
        whole
    }

    #[test]
    fn scan_many_finds_the_same_values_as_scan_wherever_the_stream_is_cut() {
        let mut wire = Vec::new();
        let mut lengths = Vec::new();
        for (_, bytes) in every_family() {
            wire.extend_from_slice(&bytes);
            lengths.push(bytes.len());
            // Runs of top-level scalars between the others, for the fast path.
            wire.extend_from_slice(&[0x01, 0xc0, 0xcd, 0x01, 0x02, 0xa2, b'h', b'i']);
            lengths.extend([1, 1, 3, 3]);
        }
        let (values, error, mid) = assert_batch_agrees(MsgpackScanner::new, &wire);
        assert_eq!(error, None);
        assert!(!mid);
        assert_eq!(values.iter().map(|r| r.len()).collect::<Vec<_>>(), lengths);
        // A partial value at the end stays in progress, in both.
        let (values, error, mid) =
            assert_batch_agrees(MsgpackScanner::new, &wire[..wire.len() - 1]);
        assert_eq!((values.len(), error, mid), (lengths.len() - 1, None, true));
    }

    #[test]
    fn scan_many_fails_where_scan_fails() {
        let cases: &[(&[u8], usize)] = &[
            (&[0x01, 0x02, 0xc1, 0x03], 2),
            (&[0x01, 0xcd, 0x00, 0x01, 0x92, 0x01, 0xc1], 4),
            (&[0xa1, b'x', 0x81, 0xa1, b'k', 0xc1, 0x01], 2),
            (&[0xc1], 0),
        ];
        for (wire, at) in cases {
            let (values, error, _) = assert_batch_agrees(MsgpackScanner::new, wire);
            let (start, text) = error.unwrap();
            assert_eq!(start, *at, "{wire:02x?}");
            assert!(text.contains("InvalidMarker"), "{text}");
            assert_eq!(values.last().map_or(0, |r| r.end), *at);
        }
    }

    #[test]
    fn scan_many_applies_the_same_limits_as_scan() {
        // Depth 1, at most 8 bytes: each case is whole values then one over a limit.
        let limited = || MsgpackScanner::with_limits(1, 8);
        let too_long = |length| Error::TooLong { length, max: 8 };
        let cases: Vec<(&[u8], Error)> = vec![
            // float64 is 9 bytes: over on its marker, in the fast path's table too.
            (&[0x01, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0], too_long(9)),
            // fixstr of 7 fits, of 8 does not.
            (&[0xa7, 1, 2, 3, 4, 5, 6, 7, 0xa8], too_long(9)),
            (&[0xc0, 0xd8, 0x01], too_long(18)),
            (
                &[0x92, 0x01, 0x02, 0x91, 0x91, 0x01],
                MsgpackError::TooDeep { max: 1 }.into(),
            ),
            (&[0xc3, 0x97, 1, 2, 3, 4, 5, 6, 7, 0x98], too_long(9)),
            (&[0x01, 0xd9, 0x07], too_long(9)),
        ];
        for (wire, want) in cases {
            let (_, error, _) = assert_batch_agrees(limited, wire);
            assert_eq!(error.unwrap().1, format!("{want:?}"), "{wire:02x?}");
        }
        // A zero-length limit: nothing fits, an empty input is only incomplete.
        let zero = || MsgpackScanner::with_limits(4, 0);
        let (values, error, _) = assert_batch_agrees(zero, &[0x01]);
        assert!(values.is_empty());
        assert!(error.unwrap().1.contains("TooLong"));
        assert_eq!(
            MsgpackScanner::with_limits(4, 0)
                .scan_many(&[], |_| {})
                .unwrap(),
            0
        );
        // Depth 0 still allows top-level scalars, through the fast path.
        let (values, error, _) = assert_batch_agrees(
            || MsgpackScanner::with_limits(0, 8),
            &[0x01, 0xa1, 0x41, 0x90],
        );
        assert_eq!(values, [0..1, 1..3]);
        assert!(error.unwrap().1.contains("TooDeep"));
    }

    #[test]
    fn scan_many_resets_after_an_error_and_mixes_with_scan() {
        let mut scanner = MsgpackScanner::new();
        assert_eq!(
            scanner.scan(&[0x92, 0x01]).unwrap(),
            Scan::Incomplete { min_len: 3 }
        );
        let mut got = Vec::new();
        // The array in progress finishes, then two scalars, then a partial str8 header.
        let used = scanner
            .scan_many(&[0x92, 0x01, 0x02, 0x05, 0xc3, 0xd9], |r| got.push(r))
            .unwrap();
        assert_eq!((used, &got[..]), (5, &[0..3, 3..4, 4..5][..]));
        assert_eq!(
            scanner.scan(&[0xd9, 0x01, b'a']).unwrap(),
            Scan::Complete(3)
        );
        assert!(scanner.scan_many(&[0x01, 0x91, 0xc1], |_| {}).is_err());
        assert!(!scanner.is_mid_value());
        assert_eq!(scanner.scan_many(&[0x07], |_| {}).unwrap(), 1);
    }

    #[test]
    fn scan_many_waits_for_long_payloads_in_constant_time() {
        let mut wire = vec![0x01, 0xc6, 0x00, 0x01, 0x00, 0x00]; // 1, bin32 of 64 KiB
        let mut scanner = MsgpackScanner::new();
        let mut count = 0;
        assert_eq!(scanner.scan_many(&wire, |_| count += 1).unwrap(), 1);
        wire.drain(..1);
        let examined = scanner.examined;
        for _ in 0..(1 << 16) - 1 {
            wire.push(0xc1);
            assert_eq!(scanner.scan_many(&wire, |_| count += 1).unwrap(), 0);
        }
        assert_eq!(
            scanner.examined, examined,
            "payload bytes are never looked at"
        );
        wire.extend_from_slice(&[0xc1, 0x02]);
        assert_eq!(
            scanner.scan_many(&wire, |_| count += 1).unwrap(),
            wire.len()
        );
        assert_eq!(count, 3);
    }

    #[test]
    fn for_each_value_hands_out_borrowed_values_and_advances_once() {
        let mut framing = SelfDelimited::new();
        let mut buf = BytesMut::from(&[0x01, 0x92, 0x01][..]);
        let mut seen: Vec<Vec<u8>> = Vec::new();
        assert_eq!(
            framing
                .for_each_value(&mut buf, |v| seen.push(v.to_vec()))
                .unwrap(),
            1
        );
        assert_eq!(&buf[..], &[0x92, 0x01]);
        assert!(framing.is_mid_frame());
        // `decode` carries on with the array in progress.
        buf.extend_from_slice(&[0x02, 0xa1]);
        assert_eq!(
            &framing.decode(&mut buf).unwrap().unwrap()[..],
            &[0x92, 0x01, 0x02]
        );
        buf.extend_from_slice(&[b'z', 0xc0, 0xc4, 0x40]);
        assert_eq!(
            framing
                .for_each_value(&mut buf, |v| seen.push(v.to_vec()))
                .unwrap(),
            2
        );
        assert_eq!(seen, [&[0x01][..], &[0xa1, b'z'], &[0xc0]]);
        assert_eq!(&buf[..], &[0xc4, 0x40]);
        // The header's promise is passed on as a reserve hint, as `decode` does.
        assert!(buf.capacity() >= 2 + 0x40);
        // An error leaves the buffer at the bad value, after the good ones.
        let mut framing = SelfDelimited::new();
        let mut buf = BytesMut::from(&[0x01, 0x02, 0x91, 0xc1, 0x03][..]);
        let mut count = 0;
        assert!(matches!(
            framing.for_each_value(&mut buf, |_| count += 1),
            Err(Error::Msgpack(MsgpackError::InvalidMarker {
                offset: 1,
                ..
            }))
        ));
        assert_eq!((count, &buf[..]), (2, &[0x91, 0xc1, 0x03][..]));
    }

    #[test]
    fn for_each_value_works_on_every_buffer_strategy() {
        use crate::buffer::{BufferPool, PooledBuffer, RingBuffer};
        let mut wire = Vec::new();
        for (_, bytes) in every_family() {
            wire.extend_from_slice(&bytes);
        }
        let want: Vec<Vec<u8>> = every_family().into_iter().map(|(_, b)| b).collect();
        fn run<B: InputBuffer>(mut buf: B, wire: &[u8], read: usize) -> Vec<Vec<u8>> {
            let mut framing = SelfDelimited::new();
            let mut got = Vec::new();
            for piece in wire.chunks(read) {
                buf.extend_from_slice(piece);
                framing
                    .for_each_value(&mut buf, |v| got.push(v.to_vec()))
                    .unwrap();
            }
            assert!(buf.is_empty());
            got
        }
        for read in [1, 3, 7, 64, wire.len()] {
            assert_eq!(run(BytesMut::new(), &wire, read), want, "read {read}");
            assert_eq!(run(RingBuffer::with_capacity(16), &wire, read), want);
            assert_eq!(
                run(PooledBuffer::new(&BufferPool::new(16, 2)), &wire, read),
                want
            );
        }
    }
}
