//! Delimiter framing: frames separated by a fixed, non-empty byte string.
//!
//! ```text
//! +-----------------+-------+-----------------+-------+----
//! | frame           | DELIM | frame           | DELIM | ...
//! +-----------------+-------+-----------------+-------+----
//!  <- handed out ->          <- handed out ->
//!
//!  Delimited::new(b"\r\n"):  "ab\r\n\r\ncd\r\n"  ->  "ab", "", "cd"
//!  Delimited::lines():       "ab\r\ncd\n"        ->  "ab", "cd"
//! ```
//!
//! * The delimiter is any non-empty byte string, possibly several bytes long and possibly
//!   split across reads; a frame ends at the *first* occurrence of it.
//! * [`Delimited::lines`] is `\n` with one trailing `\r` removed from each frame, so both
//!   `\n` and `\r\n` line endings work.
//! * `max_length` — the limit on a frame's bytes before the delimiter (a stripped `\r`
//!   counts), default 16 MiB. The decoder never looks further than `max_length` bytes
//!   for a delimiter: once the buffered bytes prove that no delimiter starts within the
//!   limit, the frame is over it. By default that is [`Error::TooLong`] (fatal; its
//!   `length` is the bytes seen so far). With
//!   [`discard_oversized`](DelimitedBuilder::discard_oversized) the decoder instead
//!   drops the frame's bytes as they arrive, never buffering them, up to and including
//!   the next delimiter, then reports [`Error::Discarded`] (not fatal, `length` = the
//!   whole frame's length) and goes on with the frame after it.
//!
//!   The error comes once the delimiter is found (as tokio-util's `AnyDelimiterCodec`
//!   would count it, not when it first notices): that way the call that reports it is
//!   the one that consumes the end of the dropped frame, and the next frame's stream
//!   offset (see [`StreamDecoder`](crate::StreamDecoder)) is exact.
//! * The search keeps a resume index: bytes already searched are not searched again on
//!   the next call, except the last `delimiter.len() - 1` bytes when they are the start
//!   of a delimiter that may be completed by the next read.
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{delimiter::Delimited, Encode, Framing};
//!
//! let mut framing = Delimited::new(b"\r\n");
//! let mut wire = BytesMut::new();
//! framing.encode(&b"abc"[..], &mut wire)?;
//! assert_eq!(&wire[..], b"abc\r\n");
//! wire.extend_from_slice(b"de\r");                        // delimiter cut in two
//! assert_eq!(&framing.decode(&mut wire)?.expect("frame")[..], b"abc");
//! assert!(framing.decode(&mut wire)?.is_none());
//! wire.extend_from_slice(b"\n");
//! assert_eq!(&framing.decode(&mut wire)?.expect("frame")[..], b"de");
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! Lines, with a limit; an over-long line is skipped and decoding goes on:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{delimiter::Delimited, Error, Framing};
//!
//! let mut framing = Delimited::builder(b"\n")
//!     .strip_trailing_cr(true) // what Delimited::lines() does
//!     .max_length(4)
//!     .discard_oversized(true)
//!     .build()?;
//! let mut wire = BytesMut::from(&b"ok\r\nmuch too long\nfine\n"[..]);
//! assert_eq!(&framing.decode(&mut wire)?.expect("frame")[..], b"ok");
//! let err = framing.decode(&mut wire).unwrap_err();
//! assert!(matches!(err, Error::Discarded { length: 13, max: 4 }));
//! assert!(!err.is_fatal());
//! assert_eq!(&framing.decode(&mut wire)?.expect("frame")[..], b"fine");
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

use bytes::{BufMut, BytesMut};

use crate::{buffer::InputBuffer, Encode, Error, Framing, Result, DEFAULT_MAX_FRAME};

/// Errors only the delimiter framing raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelimiterError {
    /// The delimiter is empty: every position would end a frame.
    #[error("the delimiter must not be empty")]
    EmptyDelimiter,
}

/// Where the next delimiter is, searching `hay` from `from`.
///
/// `Ok(start)`: the first whole delimiter starting at or after `from` starts at `start`.
/// `Err(resume)`: there is none; no delimiter can start before `resume` either, however
/// many bytes follow — `resume` is where a proper prefix of the delimiter ends `hay`, or
/// `hay.len()`. The first delimiter byte is found with `position` (a byte scan the
/// compiler vectorises); only at those hits is the rest compared.
fn find(hay: &[u8], delimiter: &[u8], from: usize) -> Result<usize, usize> {
    let Some((&first, rest)) = delimiter.split_first() else {
        // Unreachable: the constructors refuse an empty delimiter.
        return Ok(from);
    };
    let mut at = from;
    while let Some(hit) = hay
        .get(at..)
        .and_then(|h| h.iter().position(|&b| b == first))
    {
        let start = at + hit;
        let after = hay.get(start + 1..).unwrap_or_default();
        match after.get(..rest.len()) {
            Some(candidate) if candidate == rest => return Ok(start),
            Some(_) => {}
            // Not enough bytes to tell: a delimiter may start here.
            None if rest.starts_with(after) => return Err(start),
            None => {}
        }
        at = start + 1;
    }
    Err(hay.len().max(from))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the delimiter that ends the frame at the front of the buffer. No
    /// delimiter starts before `next_index`.
    Search { next_index: usize },
    /// Dropping an over-long frame (discard mode); `dropped` bytes of it are gone. No
    /// delimiter starts before the front of the buffer.
    Discard { dropped: u64 },
}

/// Delimiter framing. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Delimited {
    delimiter: Vec<u8>,
    strip_cr: bool,
    max: usize,
    discard: bool,
    state: State,
}

impl Delimited {
    /// Frames separated by `delimiter`, 16 MiB limit, fatal error over the limit.
    ///
    /// # Panics
    ///
    /// If `delimiter` is empty (use [`builder`](Self::builder) to get an error instead).
    pub fn new(delimiter: impl AsRef<[u8]>) -> Self {
        let delimiter = delimiter.as_ref();
        assert!(!delimiter.is_empty(), "the delimiter must not be empty");
        Self {
            delimiter: delimiter.to_vec(),
            strip_cr: false,
            max: DEFAULT_MAX_FRAME,
            discard: false,
            state: State::Search { next_index: 0 },
        }
    }

    /// Lines: frames end at `\n`, and one `\r` before it is removed from the frame.
    pub fn lines() -> Self {
        Self {
            strip_cr: true,
            ..Self::new(b"\n")
        }
    }

    /// A builder for frames separated by `delimiter`, starting from the defaults of
    /// [`new`](Self::new). An empty delimiter is reported by
    /// [`build`](DelimitedBuilder::build).
    pub fn builder(delimiter: impl AsRef<[u8]>) -> DelimitedBuilder {
        DelimitedBuilder {
            delimiter: delimiter.as_ref().to_vec(),
            strip_cr: false,
            max: DEFAULT_MAX_FRAME,
            discard: false,
        }
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// The limit on a frame's bytes before the delimiter.
    pub fn max_length(&self) -> usize {
        self.max
    }

    /// Looks for the end of the frame at the front of `buf`.
    fn decode_search<B: InputBuffer>(
        &mut self,
        buf: &mut B,
        next_index: usize,
    ) -> Result<Option<B::Frame>> {
        let dlen = self.delimiter.len();
        let bytes = buf.bytes();
        // A delimiter starting after `max` would make the frame too long: never look at
        // more than the bytes that can hold a delimiter starting at or before `max`.
        let window = bytes.get(..self.max.saturating_add(dlen)).unwrap_or(bytes);
        // min: should the buffer ever be shorter than at the last call, search it all.
        match find(window, &self.delimiter, next_index.min(window.len())) {
            Ok(start) => {
                let crlf = self.strip_cr && start > 0 && bytes.get(start - 1) == Some(&b'\r');
                let frame_len = start - usize::from(crlf);
                self.state = State::Search { next_index: 0 };
                let frame = buf.split_frame(frame_len);
                buf.advance(start - frame_len + dlen);
                Ok(Some(frame))
            }
            Err(resume) if resume > self.max => {
                // No delimiter starts at or before `max`: the frame is at least `resume`
                // bytes long.
                if !self.discard {
                    self.state = State::Search { next_index: 0 };
                    return Err(Error::TooLong {
                        length: resume as u64,
                        max: self.max as u64,
                    });
                }
                buf.advance(resume);
                self.state = State::Discard {
                    dropped: resume as u64,
                };
                Ok(None)
            }
            Err(resume) => {
                self.state = State::Search { next_index: resume };
                Ok(None)
            }
        }
    }

    /// Drops what can be dropped of an over-long frame. `Err(Discarded)` once its
    /// delimiter has gone too.
    fn decode_discard<B: InputBuffer>(&mut self, buf: &mut B, dropped: u64) -> Result<()> {
        let dlen = self.delimiter.len();
        match find(buf.bytes(), &self.delimiter, 0) {
            Ok(start) => {
                buf.advance(start + dlen);
                self.state = State::Search { next_index: 0 };
                Err(Error::Discarded {
                    length: dropped + start as u64,
                    max: self.max as u64,
                })
            }
            Err(resume) => {
                buf.advance(resume);
                self.state = State::Discard {
                    dropped: dropped + resume as u64,
                };
                Ok(())
            }
        }
    }
}

impl Framing for Delimited {
    type Frame<B: InputBuffer> = B::Frame;

    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<B::Frame>> {
        if let State::Search { next_index } = self.state {
            if let Some(frame) = self.decode_search(buf, next_index)? {
                return Ok(Some(frame));
            }
        }
        if let State::Discard { dropped } = self.state {
            self.decode_discard(buf, dropped)?;
        }
        Ok(None)
    }

    fn is_mid_frame(&self) -> bool {
        matches!(self.state, State::Discard { .. })
    }
}

impl Encode<[u8]> for Delimited {
    /// Writes the payload and the delimiter. Fails with [`Error::Encode`], writing
    /// nothing, if the decoder would not get the payload back: when the delimiter occurs
    /// in the payload (or across its end, like `x--sep-` before `--sep--`), or, for
    /// lines, when the payload ends with `\r`.
    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<()> {
        if payload.len() > self.max {
            return Err(Error::TooLong {
                length: payload.len() as u64,
                max: self.max as u64,
            });
        }
        if self.strip_cr && payload.last() == Some(&b'\r') {
            return Err(Error::Encode(
                "line ends with \\r, which the decoder would strip",
            ));
        }
        let start = dst.len();
        dst.reserve(payload.len() + self.delimiter.len());
        dst.put_slice(payload);
        dst.put_slice(&self.delimiter);
        let written = dst.get(start..).unwrap_or_default();
        if find(written, &self.delimiter, 0) != Ok(payload.len()) {
            dst.truncate(start);
            return Err(Error::Encode("payload contains the delimiter"));
        }
        Ok(())
    }
}

/// Builds a [`Delimited`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct DelimitedBuilder {
    delimiter: Vec<u8>,
    strip_cr: bool,
    max: usize,
    discard: bool,
}

impl DelimitedBuilder {
    /// Limit on a frame's bytes before the delimiter. Default 16 MiB.
    pub fn max_length(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// Skip over-long frames and go on (true) instead of failing the stream (false, the
    /// default).
    pub fn discard_oversized(mut self, discard: bool) -> Self {
        self.discard = discard;
        self
    }

    /// Remove one `\r` from the end of each frame (default false; true in
    /// [`Delimited::lines`]).
    pub fn strip_trailing_cr(mut self, strip: bool) -> Self {
        self.strip_cr = strip;
        self
    }

    /// Checks the delimiter is not empty.
    pub fn build(self) -> Result<Delimited> {
        if self.delimiter.is_empty() {
            return Err(DelimiterError::EmptyDelimiter.into());
        }
        Ok(Delimited {
            delimiter: self.delimiter,
            strip_cr: self.strip_cr,
            max: self.max,
            discard: self.discard,
            state: State::Search { next_index: 0 },
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::testing::decode_all;

    fn frames(got: &[Result<Vec<u8>>]) -> Vec<&[u8]> {
        got.iter().map(|r| &r.as_ref().unwrap()[..]).collect()
    }

    #[test]
    fn find_reports_hits_and_resume_points() {
        assert_eq!(find(b"ab\r\ncd", b"\r\n", 0), Ok(2));
        assert_eq!(find(b"ab\r\ncd\r\n", b"\r\n", 3), Ok(6));
        assert_eq!(find(b"abcd", b"\r\n", 0), Err(4));
        assert_eq!(find(b"abc\r", b"\r\n", 0), Err(3));
        assert_eq!(find(b"a\rb\r", b"\r\n", 0), Err(3));
        assert_eq!(find(b"x--sep-", b"--sep--", 0), Err(1));
        assert_eq!(find(b"x--sep-y", b"--sep--", 0), Err(8));
        assert_eq!(find(b"x---sep--", b"--sep--", 0), Ok(2));
        assert_eq!(find(b"aaa", b"aa", 0), Ok(0));
        assert_eq!(find(b"ba", b"aa", 0), Err(1));
        assert_eq!(find(b"", b"\n", 0), Err(0));
    }

    #[test]
    fn splits_on_a_multi_byte_delimiter() {
        let mut f = Delimited::new(b"\r\n");
        let got = decode_all(&mut f, b"ab\r\n\r\ncd\ne\r\nrest");
        assert_eq!(frames(&got), [&b"ab"[..], b"", b"cd\ne"]);
    }

    #[test]
    fn lines_strip_one_carriage_return() {
        let mut f = Delimited::lines();
        let got = decode_all(&mut f, b"a\nb\r\nc\r\r\n\r\n\n");
        assert_eq!(frames(&got), [&b"a"[..], b"b", b"c\r", b"", b""]);
    }

    #[test]
    fn plain_newline_keeps_carriage_return() {
        let mut f = Delimited::new(b"\n");
        let got = decode_all(&mut f, b"b\r\n");
        assert_eq!(frames(&got), [&b"b\r"[..]]);
    }

    #[test]
    fn self_overlapping_delimiter_ends_at_first_occurrence() {
        let mut f = Delimited::new(b"aa");
        let got = decode_all(&mut f, b"xaaay");
        // "x" then "aa" ends the frame; "ay" waits for more.
        assert_eq!(frames(&got), [&b"x"[..]]);
    }

    #[test]
    fn delimiter_split_across_reads_resumes() {
        let mut f = Delimited::new(b"--sep--");
        let mut buf = BytesMut::from(&b"hello--se"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert_eq!(f.state, State::Search { next_index: 5 });
        buf.extend_from_slice(b"p-");
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert_eq!(f.state, State::Search { next_index: 5 });
        buf.extend_from_slice(b"x");
        assert!(f.decode(&mut buf).unwrap().is_none());
        // "--sep-x" was not a delimiter; the second '-' may not start one either.
        assert_eq!(f.state, State::Search { next_index: 12 });
        buf.extend_from_slice(b"--sep--");
        assert_eq!(&f.decode(&mut buf).unwrap().unwrap()[..], b"hello--sep-x");
        assert!(buf.is_empty());
    }

    #[test]
    fn searched_bytes_are_not_searched_again() {
        let mut f = Delimited::new(b"\n");
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert_eq!(f.state, State::Search { next_index: 3 });
        // A '\n' planted before the resume index is not seen: proof the front is not
        // rescanned. (The caller never does this; it only appends.)
        buf[0] = b'\n';
        buf.extend_from_slice(b"d\n");
        assert_eq!(&f.decode(&mut buf).unwrap().unwrap()[..], b"\nbcd");
    }

    #[test]
    fn too_long_without_delimiter_is_fatal() {
        let mut f = Delimited::builder(b"\n").max_length(3).build().unwrap();
        assert_eq!(f.max_length(), 3);
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"d");
        let err = f.decode(&mut buf).unwrap_err();
        assert!(matches!(err, Error::TooLong { length: 4, max: 3 }));
        assert!(err.is_fatal());
    }

    #[test]
    fn limit_is_the_same_however_bytes_arrive() {
        // Exactly max bytes then the delimiter is fine, whole or in pieces; max + 1 is not.
        for cut in 0..=6 {
            let wire = b"abc\r\nabcd\r\n";
            let mut f = Delimited::builder(b"\r\n").max_length(3).build().unwrap();
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            let mut step = |f: &mut Delimited, buf: &mut BytesMut| loop {
                match f.decode(buf) {
                    Ok(Some(frame)) => got.push(Ok(frame.to_vec())),
                    Ok(None) => return true,
                    Err(e) => {
                        got.push(Err(e));
                        return false;
                    }
                }
            };
            if step(&mut f, &mut buf) {
                buf.extend_from_slice(&wire[cut..]);
                step(&mut f, &mut buf);
            }
            assert_eq!(got.len(), 2, "cut {cut}");
            assert_eq!(got[0].as_ref().unwrap(), b"abc", "cut {cut}");
            assert!(
                matches!(got[1], Err(Error::TooLong { length: 4, max: 3 })),
                "cut {cut}: {:?}",
                got[1]
            );
        }
    }

    #[test]
    fn limit_counts_the_stripped_carriage_return() {
        let mut f = Delimited::builder(b"\n")
            .strip_trailing_cr(true)
            .max_length(2)
            .build()
            .unwrap();
        let got = decode_all(&mut f, b"ab\nab\r\n");
        assert_eq!(got[0].as_ref().unwrap(), b"ab");
        assert!(matches!(got[1], Err(Error::TooLong { length: 3, max: 2 })));
    }

    #[test]
    fn partial_delimiter_at_limit_waits() {
        // "abc\r" with max 3: the '\r' may start the delimiter that ends a 3-byte frame.
        let mut f = Delimited::builder(b"\r\n").max_length(3).build().unwrap();
        let mut buf = BytesMut::from(&b"abc\r"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"\n");
        assert_eq!(&f.decode(&mut buf).unwrap().unwrap()[..], b"abc");
    }

    #[test]
    fn search_stops_at_the_limit() {
        // The delimiter is far beyond the limit: no need to find it to fail.
        let mut f = Delimited::builder(b"\n").max_length(2).build().unwrap();
        let mut wire = vec![b'x'; 10_000];
        wire.push(b'\n');
        let got = decode_all(&mut f, &wire);
        assert!(matches!(got[0], Err(Error::TooLong { length: 3, max: 2 })));
    }

    #[test]
    fn discard_mode_drops_until_delimiter_then_resyncs() {
        let mut f = Delimited::builder(b"\r\n")
            .max_length(3)
            .discard_oversized(true)
            .build()
            .unwrap();
        let mut buf = BytesMut::from(&b"abcdef\r"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert!(f.is_mid_frame());
        assert_eq!(
            &buf[..],
            b"\r",
            "over-long bytes are dropped, never buffered"
        );
        buf.extend_from_slice(b"gh");
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert_eq!(&buf[..], b"", "a lone \\r was not the delimiter");
        buf.extend_from_slice(b"i\r\nok\r\n");
        let err = f.decode(&mut buf).unwrap_err();
        assert!(matches!(err, Error::Discarded { length: 10, max: 3 }));
        assert!(!err.is_fatal());
        assert!(!f.is_mid_frame());
        assert_eq!(&f.decode(&mut buf).unwrap().unwrap()[..], b"ok");
    }

    #[test]
    fn discard_mode_in_one_buffer() {
        let mut f = Delimited::builder(b"--sep--")
            .max_length(2)
            .discard_oversized(true)
            .build()
            .unwrap();
        let got = decode_all(&mut f, b"ab--sep--toolong--sep----sep--");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap(), b"ab");
        assert!(matches!(
            got[1],
            Err(Error::Discarded { length: 7, max: 2 })
        ));
        assert_eq!(got[2].as_ref().unwrap(), b"");
    }

    #[test]
    fn empty_delimiter_is_rejected_by_builder() {
        assert!(matches!(
            Delimited::builder(b"").build(),
            Err(Error::Delimiter(DelimiterError::EmptyDelimiter))
        ));
    }

    #[test]
    #[should_panic(expected = "must not be empty")]
    fn empty_delimiter_panics_in_new() {
        let _ = Delimited::new(b"");
    }

    #[test]
    fn partial_frame_needs_more_and_eof_is_truncated() {
        let mut f = Delimited::new(b"\r\n");
        let mut buf = BytesMut::new();
        assert!(f.decode_eof(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"abc\r");
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert!(matches!(
            f.decode_eof(&mut buf),
            Err(Error::Truncated { buffered: 4 })
        ));
    }

    #[test]
    fn eof_while_discarding_is_truncated() {
        let mut f = Delimited::builder(b"\n")
            .max_length(1)
            .discard_oversized(true)
            .build()
            .unwrap();
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(matches!(
            f.decode_eof(&mut buf),
            Err(Error::Truncated { buffered: 0 })
        ));
    }

    #[test]
    fn encode_appends_the_delimiter() {
        let mut f = Delimited::new(b"\r\n");
        let mut dst = BytesMut::from(&b"x\r\n"[..]);
        f.encode(&b"abc"[..], &mut dst).unwrap();
        f.encode(&b""[..], &mut dst).unwrap();
        f.encode(&b"a\rb\nc"[..], &mut dst).unwrap();
        assert_eq!(&dst[..], b"x\r\nabc\r\n\r\na\rb\nc\r\n");
        let mut lines = Delimited::lines();
        let mut dst = BytesMut::new();
        lines.encode(&b"a\rb"[..], &mut dst).unwrap();
        assert_eq!(&dst[..], b"a\rb\n");
    }

    #[test]
    fn encode_rejects_what_would_not_decode_back() {
        let mut dst = BytesMut::from(&b"kept"[..]);
        let cases: &[(&[u8], &[u8])] = &[
            (b"\r\n", b"a\r\nb"),
            (b"\r\n", b"\r\n"),
            (b"--sep--", b"x--sep-"),
            (b"--sep--", b"x--sep"),
            (b"aa", b"a"),
            (b"\n", b"\n"),
        ];
        for &(delim, payload) in cases {
            let mut f = Delimited::new(delim);
            assert!(
                matches!(f.encode(payload, &mut dst), Err(Error::Encode(_))),
                "{payload:?} with {delim:?}"
            );
        }
        let mut lines = Delimited::lines();
        assert!(matches!(
            lines.encode(&b"ends in cr\r"[..], &mut dst),
            Err(Error::Encode(_))
        ));
        let mut f = Delimited::builder(b"\n").max_length(2).build().unwrap();
        assert!(matches!(
            f.encode(&b"abc"[..], &mut dst),
            Err(Error::TooLong { length: 3, max: 2 })
        ));
        assert_eq!(&dst[..], b"kept", "nothing half-written");
    }
}
