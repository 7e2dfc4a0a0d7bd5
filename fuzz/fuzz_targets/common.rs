// Shared by every fuzz target (included with `include!`): decode the same input whole
// and cut into pieces, over each buffer strategy, and demand the same outcome.

use msgwire_frame::buffer::{BufferPool, PooledBuffer, RingBuffer};
use msgwire_frame::{Framing, InputBuffer, StreamDecoder};

/// Frames (as bytes) and the error (as text, with its offset) a decoder produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<(u64, Vec<u8>)>,
    error: Option<(u64, String)>,
}

fn run_pieces<F, B>(framing: F, buf: B, data: &[u8], piece: usize, show: &dyn Fn(&F::Frame<B>) -> Vec<u8>) -> Outcome
where
    F: Framing,
    B: InputBuffer,
{
    let mut decoder = StreamDecoder::new(framing, buf);
    let mut frames = Vec::new();
    let mut error = None;
    'outer: for chunk in data.chunks(piece.max(1)) {
        decoder.feed(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(d)) => frames.push((d.offset, show(&d.frame))),
                Ok(None) => break,
                Err(e) if !e.error.is_fatal() => frames.push((e.offset, b"<discarded>".to_vec())),
                Err(e) => {
                    error = Some((e.offset, kind(&e.error)));
                    break 'outer;
                }
            }
        }
    }
    if error.is_none() {
        loop {
            match decoder.finish() {
                Ok(Some(d)) => frames.push((d.offset, show(&d.frame))),
                Ok(None) => break,
                Err(e) if !e.error.is_fatal() => frames.push((e.offset, b"<discarded>".to_vec())),
                Err(e) => {
                    error = Some((e.offset, kind(&e.error)));
                    break;
                }
            }
        }
    }
    Outcome { frames, error }
}

/// Decodes `data` whole, byte by byte and in `piece`-sized reads, over BytesMut, a ring
/// and a pool; every run must agree with the first.
fn check_all<F, M>(make: M, data: &[u8], piece: usize)
where
    F: Framing,
    M: Fn() -> F,
    F::Frame<bytes::BytesMut>: AsRefBytes,
    F::Frame<RingBuffer>: AsRefBytes,
    F::Frame<PooledBuffer>: AsRefBytes,
{
    let whole = run_pieces(make(), bytes::BytesMut::new(), data, data.len(), &|f| f.bytes_of());
    let bytewise = run_pieces(make(), bytes::BytesMut::new(), data, 1, &|f| f.bytes_of());
    assert_eq!(whole, bytewise, "whole vs byte-by-byte");
    let ring = run_pieces(make(), RingBuffer::with_capacity(8), data, piece, &|f| f.bytes_of());
    assert_eq!(whole, ring, "whole vs ring buffer in pieces of {piece}");
    let pool = BufferPool::new(64, 4);
    let pooled = run_pieces(make(), PooledBuffer::new(&pool), data, piece, &|f| f.bytes_of());
    assert_eq!(whole, pooled, "whole vs pooled buffer in pieces of {piece}");
}

/// The error's variant (and sub-variant) name: its fields, such as how many bytes
/// were seen when a limit tripped, may differ with the chunking.
fn kind(e: &msgwire_frame::Error) -> String {
    let text = format!("{e:?}");
    let mut depth = 0;
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '{' if depth <= 1 => break,
            _ => {}
        }
        if depth > 2 {
            break;
        }
        out.push(c);
    }
    out
}

/// A frame's identity as bytes, for comparing outcomes.
trait AsRefBytes {
    fn bytes_of(&self) -> Vec<u8>;
}

impl AsRefBytes for bytes::Bytes {
    fn bytes_of(&self) -> Vec<u8> {
        self.to_vec()
    }
}
impl AsRefBytes for Box<[u8]> {
    fn bytes_of(&self) -> Vec<u8> {
        self.to_vec()
    }
}
impl AsRefBytes for msgwire_frame::buffer::PooledFrame {
    fn bytes_of(&self) -> Vec<u8> {
        self.as_ref().to_vec()
    }
}
