//! [`MsgpackScanner`]: measures one MessagePack value at a time, resumably, without
//! recursion; and the marker table it and the batch path share.

use crate::{Error, Result, DEFAULT_MAX_FRAME};

use super::{MsgpackError, DEFAULT_MAX_DEPTH};

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

/// Measures one MessagePack value at a time, resumably. See the [module docs](super).
///
/// Call [`scan`](Self::scan) with the bytes received so far; while it returns
/// [`Scan::Incomplete`], call it again with the *same* bytes plus whatever arrived since
/// (the prefix must not change). After [`Scan::Complete`] or an error the scanner starts
/// over: the next call measures a value starting at byte 0 of its input.
#[derive(Debug, Clone)]
pub struct MsgpackScanner {
    max_depth: usize,
    pub(super) max: usize,
    /// `max` as the scanner compares with it: at most `u64::MAX - 1`, so that a length
    /// sum that saturated at `u64::MAX` (a value no machine could hold, announced under
    /// `max_frame_length(usize::MAX)`) is always over it.
    limit: u64,
    /// Offset of the next byte to look at; past the input when waiting for the end of a
    /// `str`/`bin`/`ext` payload or of a fixed-size scalar.
    pub(super) pos: usize,
    /// Elements still to come: the sum of `top` and everything on `stack`. Each needs at
    /// least one byte, so `pos + pending` is the least length the value can have. Zero
    /// once the value is complete (it may still be waiting for `pos` bytes).
    pending: u64,
    /// Elements still to come in the innermost open container (1 for the value itself
    /// at top level, before it has started).
    top: u64,
    /// The `top` of each enclosing level, outermost first; its length is the number of
    /// open arrays/maps.
    pub(super) stack: Vec<u64>,
    /// The deepest nesting reached by the value in progress.
    deepest: usize,
    /// The deepest nesting of the value last reported complete.
    pub(super) last_depth: usize,
    /// Bytes examined, for the linear-time test.
    #[cfg(test)]
    pub(super) examined: u64,
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
            limit: (max_frame_length as u64).min(u64::MAX - 1),
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

    /// Where the value in progress ends, if nothing but the rest of a payload (or of a
    /// fixed-size scalar) at its very end is missing; `None` otherwise.
    pub fn known_end(&self) -> Option<usize> {
        (self.pos != 0 && self.pending == 0).then_some(self.pos)
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
    /// than lose the stream) tell the two apart without scanning again. An error leaves
    /// it as it was; [`scan_many_with_depth`](Self::scan_many_with_depth) hands out the
    /// depth of every value of a batch. Keeping it costs the scanner one comparison per
    /// array or map header.
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
        let max = self.limit;
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
        if least > self.limit {
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
pub(super) static FIXED_LEN: [u8; 256] = fixed_lengths();

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
