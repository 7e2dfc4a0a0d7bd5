//! [`MsgpackScanner::scan_many`]: every whole value in a buffer in one call, with a
//! table-driven fast path for top-level scalars whose marker fixes their length.

use std::ops::Range;

use super::scanner::{MsgpackScanner, Scan, FIXED_LEN};
use crate::Result;

impl MsgpackScanner {
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
    pub fn scan_many(
        &mut self,
        input: &[u8],
        mut on_value: impl FnMut(Range<usize>),
    ) -> Result<usize> {
        self.scan_batch(input, |range, _| on_value(range))
            .map(|(consumed, _)| consumed)
    }

    /// [`scan_many`](Self::scan_many), also handing out how deep each value nests,
    /// counted as [`last_depth`](Self::last_depth) counts it (a scalar 0, `[1]` 1,
    /// `[[]]` 2). The depth comes from the one scan that measures the value: nothing is
    /// looked at twice. After the call, `last_depth` is the depth of the last value
    /// handed out.
    ///
    /// ```
    /// use msgwire_frame::msgpack::MsgpackScanner;
    ///
    /// // 7, [[]], {1: [2]}
    /// let wire = [0x07, 0x91, 0x90, 0x81, 0x01, 0x91, 0x02];
    /// let mut scanner = MsgpackScanner::new();
    /// let mut depths = Vec::new();
    /// scanner.scan_many_with_depth(&wire, |_, depth| depths.push(depth))?;
    /// assert_eq!(depths, [0, 2, 2]);
    /// assert_eq!(scanner.last_depth(), 2);
    /// # Ok::<(), msgwire_frame::Error>(())
    /// ```
    #[inline]
    pub fn scan_many_with_depth(
        &mut self,
        input: &[u8],
        on_value: impl FnMut(Range<usize>, usize),
    ) -> Result<usize> {
        self.scan_batch(input, on_value)
            .map(|(consumed, _)| consumed)
    }

    /// [`scan_many_with_depth`](Self::scan_many_with_depth), also returning the
    /// `min_len` of the unfinished value (counted from its first byte, at the returned
    /// offset).
    #[inline]
    pub(super) fn scan_batch(
        &mut self,
        input: &[u8],
        mut on_value: impl FnMut(Range<usize>, usize),
    ) -> Result<(usize, usize)> {
        let len = input.len();
        let max = self.max;
        let mut start = 0;
        loop {
            // `pos == 0`: no value in progress (a header cut short is read again).
            if self.pos == 0 {
                // The top-level fast path: the marker gives the whole length, and the
                // value is a scalar, depth 0.
                let first = start;
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
                    on_value(start..end, 0);
                    start = end;
                }
                if start != first {
                    self.last_depth = 0;
                }
            }
            let rest = input.get(start..).unwrap_or_default();
            match self.scan(rest)? {
                Scan::Complete(n) => {
                    on_value(start..start + n, self.last_depth);
                    start += n;
                }
                Scan::Incomplete { min_len } => return Ok((start, min_len)),
            }
        }
    }
}
