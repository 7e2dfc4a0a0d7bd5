//! Shared helpers for the property tests: cut a wire stream at arbitrary points, feed the
//! pieces to a [`StreamDecoder`] and collect what comes out.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity
)]

use msgwire_frame::{Framing, InputBuffer, StreamDecoder, StreamError};
use proptest::prelude::*;

/// How a stream is cut into the pieces a socket might deliver.
#[derive(Debug, Clone)]
pub enum Cuts {
    /// The whole stream in one read.
    Whole,
    /// One byte per read.
    Bytewise,
    /// Reads of random sizes; each entry is a piece length (cycled).
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

/// Feeds `wire` in the pieces `cuts` makes and returns every frame, in order, with its
/// stream offset; ends with `finish` so a stream that stops inside a frame is an error.
pub fn decode_pieces<F: Framing, B: InputBuffer>(
    framing: F,
    buf: B,
    wire: &[u8],
    cuts: &Cuts,
) -> Result<Vec<(u64, F::Frame<B>)>, StreamError> {
    let mut decoder = StreamDecoder::new(framing, buf);
    let mut out = Vec::new();
    for piece in cuts.pieces(wire) {
        decoder.feed(piece);
        while let Some(d) = decoder.next_frame()? {
            out.push((d.offset, d.frame));
        }
    }
    while let Some(d) = decoder.finish()? {
        out.push((d.offset, d.frame));
    }
    Ok(out)
}

/// Runs `$body` once per buffer strategy, with `$buf` bound to a fresh buffer:
/// `BytesMut`; a 16-byte `RingBuffer` (so writes wrap, the view rotates and the storage
/// grows); a `PooledBuffer` on a pool of 16-byte buffers keeping at most 2 idle (so it
/// compacts, grows under long frames, shrinks back and frees oversized buffers).
#[macro_export]
macro_rules! with_every_buffer {
    (|$buf:ident| $body:expr) => {{
        {
            let $buf = bytes::BytesMut::new();
            $body
        }
        {
            let $buf = msgwire_frame::buffer::RingBuffer::with_capacity(16);
            $body
        }
        {
            let pool = msgwire_frame::buffer::BufferPool::new(16, 2);
            let $buf = msgwire_frame::buffer::PooledBuffer::new(&pool);
            $body
        }
    }};
}

/// Encodes `msgs` with `framing`, feeds the stream cut by `cuts` to every buffer
/// strategy, and checks that exactly the same messages come back at the offsets where
/// their frames start.
pub fn check_round_trip<F>(framing: F, msgs: &[Vec<u8>], cuts: &Cuts)
where
    F: Framing + msgwire_frame::Encode<[u8]> + Clone,
    F::Frame<bytes::BytesMut>: AsRef<[u8]>,
    F::Frame<msgwire_frame::buffer::RingBuffer>: AsRef<[u8]>,
    F::Frame<msgwire_frame::buffer::PooledBuffer>: AsRef<[u8]>,
{
    let mut wire = bytes::BytesMut::new();
    let mut encoder = framing.clone();
    let mut offsets = Vec::new();
    for m in msgs {
        offsets.push(wire.len() as u64);
        encoder.encode(&m[..], &mut wire).unwrap();
    }
    with_every_buffer!(|buf| {
        let got = decode_pieces(framing.clone(), buf, &wire, cuts).unwrap();
        let got: Vec<(u64, Vec<u8>)> = got
            .into_iter()
            .map(|(o, f)| (o, f.as_ref().to_vec()))
            .collect();
        let want: Vec<(u64, Vec<u8>)> = offsets.iter().copied().zip(msgs.iter().cloned()).collect();
        assert_eq!(got, want);
    });
}
