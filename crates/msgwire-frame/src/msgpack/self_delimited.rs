//! [`SelfDelimited`]: the [`Framing`] over [`MsgpackScanner`], each frame the raw bytes
//! of one value.

use bytes::BytesMut;

use super::{MsgpackError, MsgpackScanner, Scan, DEFAULT_MAX_DEPTH};
use crate::buffer::{reserve_toward_earned, Earned, InputBuffer};
use crate::{Encode, Error, Framing, Result, DEFAULT_MAX_FRAME};

/// Self-delimited MessagePack framing: each frame is the raw bytes of one value. See
/// the [module docs](super).
#[derive(Debug, Clone, Default)]
pub struct SelfDelimited {
    scanner: MsgpackScanner,
    /// The room the last whole value earned for the next (see `crate::buffer`).
    earned: Earned,
}

impl SelfDelimited {
    /// Default limits: [`DEFAULT_MAX_DEPTH`] and [`DEFAULT_MAX_FRAME`].
    pub fn new() -> Self {
        Self {
            scanner: MsgpackScanner::new(),
            earned: Earned::default(),
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

    /// How deep the frame last returned by [`Framing::decode`] nests, or the last value
    /// handed out by [`for_each_value`](Self::for_each_value) (see
    /// [`MsgpackScanner::last_depth`]). To have the depth of every value of a batch, use
    /// [`for_each_value_with_depth`](Self::for_each_value_with_depth).
    pub fn last_frame_depth(&self) -> usize {
        self.scanner.last_depth()
    }

    /// Where the value part-way in the buffer ends (from the front of the buffer), if
    /// that is known exactly: once nothing but the rest of a `str`, `bin` or `ext`
    /// payload is missing. A reader can then read just that much (see
    /// [`earned`](Self::earned)).
    pub fn frame_end(&self) -> Option<usize> {
        self.scanner.known_end()
    }

    /// The room the last whole value earned for the next: its length, up to 256 KiB
    /// (see the [buffer docs](crate::buffer)). A reader that reads about this much for
    /// the next value, into room this large, reads a run of same-sized values without
    /// copying any of them when its buffer grows.
    pub fn earned(&self) -> usize {
        self.earned.get()
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
        self.for_each_value_with_depth(buf, |value, _| on_value(value))
    }

    /// [`for_each_value`](Self::for_each_value), also handing out how deep each value
    /// nests (see [`MsgpackScanner::scan_many_with_depth`]): a caller that lets the
    /// scanner measure deeper values than it accepts can answer each too-deep one
    /// without scanning it again.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use msgwire_frame::msgpack::SelfDelimited;
    ///
    /// let mut framing = SelfDelimited::new();
    /// let mut buf = BytesMut::from(&[0x2a, 0x91, 0x91, 0x90, 0xc0][..]); // 42, [[[]]], nil
    /// let mut depths = Vec::new();
    /// framing.for_each_value_with_depth(&mut buf, |_, depth| depths.push(depth))?;
    /// assert_eq!(depths, [0, 3, 0]);
    /// assert_eq!(framing.last_frame_depth(), 0);
    /// # Ok::<(), msgwire_frame::Error>(())
    /// ```
    pub fn for_each_value_with_depth<B: InputBuffer>(
        &mut self,
        buf: &mut B,
        mut on_value: impl FnMut(&[u8], usize),
    ) -> Result<usize> {
        let mut done = 0;
        let mut count = 0;
        let bytes = buf.bytes();
        let mut last = None;
        let scanned = self.scanner.scan_batch(bytes, |range, depth| {
            last = Some(range.len());
            done = range.end;
            count += 1;
            on_value(bytes.get(range).unwrap_or_default(), depth);
        });
        match scanned {
            Ok((consumed, min_len)) => {
                buf.advance(consumed);
                if let Some(len) = last {
                    self.earned.record(len);
                }
                // As in `decode`: min_len was checked against the limit.
                if min_len > buf.len() + 1 {
                    reserve_toward_earned(buf, min_len, self.earned.get());
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
            Scan::Complete(n) => {
                self.earned.record(n);
                Ok(Some(buf.split_frame(n)))
            }
            Scan::Incomplete { min_len } => {
                // min_len was checked against the limit before it was returned; the
                // reservation toward it is capped (see `crate::buffer`).
                if min_len > buf.len() + 1 {
                    reserve_toward_earned(buf, min_len, self.earned.get());
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

/// Builds a [`SelfDelimited`]; see the [module docs](super).
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
            earned: Earned::default(),
        }
    }

    /// A bare scanner with these limits.
    pub fn build_scanner(self) -> MsgpackScanner {
        MsgpackScanner::with_limits(self.max_depth, self.max)
    }
}
