//! The one test harness of this crate: cut a wire stream into the pieces a socket might
//! deliver, feed them to a framing, collect what comes out.
//!
//! Not part of the API. It is built for the crate's unit tests (`cfg(test)`) and, with
//! the `testing` feature, for its integration tests, which turn the feature on through
//! the crate's dev-dependency on itself; so both use these very functions.
//!
//! ```text
//!  wire      |h d r|b o d y|h d r|b o d y ...|
//!  Whole     [.................................]        one read
//!  Bytewise  [h][d][r][b][o][d][y][h] ...               one byte per read
//!  Random    [h d][r b o d y h d][r][b o d y ...]       sizes cycled from a list
//! ```
//!
//! Two ways to drive a framing over the pieces:
//!
//! * [`feed`] (and [`decode_frames`] / [`decode_all`] for one whole read) calls
//!   `Framing::decode` itself, on a buffer and a framing the caller keeps, and never
//!   signals the end of input: for unit tests that look at the framing's state after;
//! * [`decode_pieces`] and [`decode_results`] go through a [`StreamDecoder`], with
//!   stream offsets and `finish` at the end: for property tests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub use bytes::BytesMut;
use proptest::prelude::*;

use crate::{Encode, Error, Framing, InputBuffer, Result, StreamDecoder, StreamError};

/// Frames, each with the stream offset where it began.
pub type Frames<T> = Vec<(u64, T)>;

/// Frames and errors, each with its stream offset.
pub type Results<T> = Vec<(u64, Result<T, Error>)>;

/// How a stream is cut into the pieces a socket might deliver.
#[derive(Debug, Clone)]
pub enum Cuts {
    /// The whole stream in one read.
    Whole,
    /// One byte per read.
    Bytewise,
    /// Reads of random sizes; each entry is a piece length (cycled; 0 counts as 1).
    Random(Vec<usize>),
}

impl Cuts {
    /// The stream cut into pieces.
    pub fn pieces<'a>(&self, wire: &'a [u8]) -> Vec<&'a [u8]> {
        match self {
            Cuts::Whole => vec![wire],
            Cuts::Bytewise => wire.chunks(1).collect(),
            Cuts::Random(sizes) => {
                let mut out = Vec::new();
                let mut rest = wire;
                let mut i = 0;
                while !rest.is_empty() {
                    let n = sizes[i % sizes.len()].clamp(1, rest.len());
                    out.push(&rest[..n]);
                    rest = &rest[n..];
                    i += 1;
                }
                out
            }
        }
    }
}

/// Whole stream, byte by byte, or random piece sizes (small ones favoured).
pub fn cuts() -> impl Strategy<Value = Cuts> {
    prop_oneof![
        1 => Just(Cuts::Whole),
        1 => Just(Cuts::Bytewise),
        4 => prop::collection::vec(prop_oneof![1usize..8, 1usize..300, 1usize..5000], 1..20)
            .prop_map(Cuts::Random),
    ]
}

/// Feeds `wire` to `framing` over `buf` in the pieces `cuts` makes, calling `decode`
/// after each until it needs more: every frame and every error, in order, stopping
/// after the first fatal error. The end of input is not signalled.
pub fn feed<F: Framing, B: InputBuffer>(
    framing: &mut F,
    buf: &mut B,
    wire: &[u8],
    cuts: &Cuts,
) -> Vec<Result<F::Frame<B>>> {
    let mut out = Vec::new();
    for piece in cuts.pieces(wire) {
        buf.extend_from_slice(piece);
        loop {
            match framing.decode(buf) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = e.is_fatal();
                    out.push(Err(e));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// [`feed`] with `wire` given whole, in a fresh `BytesMut`.
pub fn decode_frames<F: Framing>(framing: &mut F, wire: &[u8]) -> Vec<Result<F::Frame<BytesMut>>> {
    feed(framing, &mut BytesMut::new(), wire, &Cuts::Whole)
}

/// [`decode_frames`] for framings whose frames are bytes, as `Vec<u8>`.
pub fn decode_all<F>(framing: &mut F, wire: &[u8]) -> Vec<Result<Vec<u8>>>
where
    F: Framing,
    F::Frame<BytesMut>: AsRef<[u8]>,
{
    decode_frames(framing, wire)
        .into_iter()
        .map(|r| r.map(|f| f.as_ref().to_vec()))
        .collect()
}

/// Every frame and every error a [`StreamDecoder`] reports for `wire` cut by `cuts`,
/// each with its stream offset, ending with `finish` (so a stream that stops inside a
/// frame ends with `Truncated`). Goes on after an error unless `stop(&error)`.
fn drive<F: Framing, B: InputBuffer>(
    framing: F,
    buf: B,
    wire: &[u8],
    cuts: &Cuts,
    stop: impl Fn(&Error) -> bool,
) -> Results<F::Frame<B>> {
    let mut decoder = StreamDecoder::new(framing, buf);
    let mut out = Vec::new();
    let pieces = cuts.pieces(wire);
    let last = pieces.len();
    // One more, empty, piece for `finish`.
    for (i, piece) in pieces.into_iter().chain([&[][..]]).enumerate() {
        decoder.feed(piece);
        loop {
            let step = if i == last {
                decoder.finish()
            } else {
                decoder.next_frame()
            };
            match step {
                Ok(Some(d)) => out.push((d.offset, Ok(d.frame))),
                Ok(None) => break,
                Err(StreamError { offset, error }) => {
                    let done = stop(&error) || error.is_fatal();
                    out.push((offset, Err(error)));
                    if done {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// Every frame with its stream offset, or the first error (fatal or not).
pub fn decode_pieces<F: Framing, B: InputBuffer>(
    framing: F,
    buf: B,
    wire: &[u8],
    cuts: &Cuts,
) -> Result<Frames<F::Frame<B>>, StreamError> {
    drive(framing, buf, wire, cuts, |_| true)
        .into_iter()
        .map(|(offset, r)| {
            r.map(|frame| (offset, frame))
                .map_err(|error| StreamError { offset, error })
        })
        .collect()
}

/// Every frame and every error with its stream offset, going on after non-fatal
/// errors (frames discarded in resync mode) and ending at the first fatal one.
pub fn decode_results<F: Framing, B: InputBuffer>(
    framing: F,
    buf: B,
    wire: &[u8],
    cuts: &Cuts,
) -> Results<F::Frame<B>> {
    drive(framing, buf, wire, cuts, |_| false)
}

/// Runs `$body` once per buffer strategy, with `$buf` bound to a fresh buffer:
/// `BytesMut`; a 16-byte `RingBuffer` (so writes wrap, the view rotates and the storage
/// grows); a `PooledBuffer` on a pool of 16-byte buffers keeping at most 2 idle (so it
/// compacts, grows under long frames, shrinks back and frees oversized buffers).
#[macro_export]
#[doc(hidden)]
macro_rules! with_every_buffer {
    (|$buf:ident| $body:expr) => {{
        {
            let $buf = $crate::testing::BytesMut::new();
            $body
        }
        {
            let $buf = $crate::buffer::RingBuffer::with_capacity(16);
            $body
        }
        {
            let pool = $crate::buffer::BufferPool::new(16, 2);
            let $buf = $crate::buffer::PooledBuffer::new(&pool);
            $body
        }
    }};
}

/// Encodes `msgs` with `framing`, feeds the stream cut by `cuts` to every buffer
/// strategy, and checks that exactly the same messages come back at the offsets where
/// their frames start.
pub fn check_round_trip<F>(framing: F, msgs: &[Vec<u8>], cuts: &Cuts)
where
    F: Framing + Encode<[u8]> + Clone,
    F::Frame<BytesMut>: AsRef<[u8]>,
    F::Frame<crate::buffer::RingBuffer>: AsRef<[u8]>,
    F::Frame<crate::buffer::PooledBuffer>: AsRef<[u8]>,
{
    let mut wire = BytesMut::new();
    let mut encoder = framing.clone();
    let mut offsets = Vec::new();
    for m in msgs {
        offsets.push(wire.len() as u64);
        encoder.encode(&m[..], &mut wire).unwrap();
    }
    let want: Vec<(u64, Vec<u8>)> = offsets.iter().copied().zip(msgs.iter().cloned()).collect();
    crate::with_every_buffer!(|buf| {
        let got = decode_pieces(framing.clone(), buf, &wire, cuts).unwrap();
        let got: Vec<(u64, Vec<u8>)> = got
            .into_iter()
            .map(|(o, f)| (o, f.as_ref().to_vec()))
            .collect();
        assert_eq!(got, want);
    });
}

/// How deep `value` nests, counted as the MessagePack scanner's `max_depth` is: a
/// scalar 0, `[1]` 1, `[[]]` 2 — the reference for `last_depth`.
pub fn nesting_depth(value: &rmpv::Value) -> usize {
    match value {
        rmpv::Value::Array(items) => 1 + items.iter().map(nesting_depth).max().unwrap_or(0),
        rmpv::Value::Map(pairs) => {
            let deepest = pairs
                .iter()
                .map(|(k, v)| nesting_depth(k).max(nesting_depth(v)));
            1 + deepest.max().unwrap_or(0)
        }
        _ => 0,
    }
}

/// Feeds `header` (a frame header announcing more than it brings, within the limit) to
/// `framing`: it must wait for more bytes, having reserved no more than the capped
/// first reservation, and report the stream [`Error::Truncated`] at end of input.
pub fn assert_waits_with_capped_room<F: Framing>(framing: &mut F, header: &[u8]) {
    let mut buf = BytesMut::from(header);
    assert!(
        matches!(framing.decode(&mut buf), Ok(None)),
        "{header:02x?}: expected to wait for more"
    );
    assert!(
        buf.capacity() < 2 * crate::buffer::RESERVE_AHEAD,
        "{header:02x?}: reserved {} bytes",
        buf.capacity()
    );
    assert!(framing.is_mid_frame(), "{header:02x?}");
    assert!(
        matches!(framing.decode_eof(&mut buf), Err(Error::Truncated { .. })),
        "{header:02x?}: expected Truncated at end of input"
    );
}
