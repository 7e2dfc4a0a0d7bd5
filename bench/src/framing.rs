//! Length-prefixed decoding: msgwire against tokio-util's `LengthDelimitedCodec`.
//!
//! Same stream (u32 big-endian prefix, payloads of one size), same reads (random sizes
//! from 1 byte to 32 KiB, one seed), same consumer (every frame's bytes are touched
//! through `black_box`). Three contenders:
//!
//! * tokio-util: `Decoder::decode` on a `BytesMut`, frames as `BytesMut`;
//! * msgwire owned: `Framing::decode` on a `BytesMut`, frames as `Bytes`;
//! * msgwire borrowed: `LengthPrefixed::parse_frame` walks every whole frame in the
//!   buffer as `&[u8]` and drops the consumed bytes once per read.

use std::hint::black_box;

use bytes::{Buf, BytesMut};
use msgwire_frame::{length::LengthPrefixed, Framing, DEFAULT_MAX_FRAME};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

use crate::timing::{human, median_of, per_sec, pieces, read_sizes};

fn stream(size: usize, count: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity((size + 4) * count);
    for i in 0..count {
        wire.extend_from_slice(&(size as u32).to_be_bytes());
        wire.extend((0..size).map(|j| (i + j) as u8));
    }
    wire
}

fn tokio_util(reads: &[&[u8]]) -> usize {
    let mut codec = LengthDelimitedCodec::builder()
        .max_frame_length(DEFAULT_MAX_FRAME)
        .new_codec();
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for read in reads {
        buf.extend_from_slice(read);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            black_box(&frame[..]);
            frames += 1;
        }
    }
    frames
}

fn msgwire_owned(reads: &[&[u8]]) -> usize {
    let mut framing = LengthPrefixed::new();
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for read in reads {
        buf.extend_from_slice(read);
        while let Ok(Some(frame)) = framing.decode(&mut buf) {
            black_box(&frame[..]);
            frames += 1;
        }
    }
    frames
}

fn msgwire_borrowed(reads: &[&[u8]]) -> usize {
    let framing = LengthPrefixed::new();
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for read in reads {
        buf.extend_from_slice(read);
        let mut pos = 0;
        while let Ok(Some((used, frame))) = framing.parse_frame(&buf[pos..]) {
            black_box(frame);
            pos += used;
            frames += 1;
        }
        buf.advance(pos);
    }
    frames
}

/// Prints the table.
pub fn run(quick: bool) {
    println!("## Length-prefixed decoding vs tokio-util `LengthDelimitedCodec`\n");
    let rounds = if quick { 3 } else { 7 };
    println!(
        "u32 BE prefix; reads of random size 1 B–32 KiB (same seed for all); median of \
         {rounds} runs. Ratios are msgwire frames/s ÷ tokio-util frames/s.\n"
    );
    println!("| payload | frames | tokio-util frames/s | msgwire owned frames/s | ratio | msgwire borrowed frames/s | ratio |");
    println!("|---|---|---|---|---|---|---|");
    let budget = if quick { 8 << 20 } else { 64 << 20 };
    for size in [16usize, 256, 4096, 65536] {
        let count = budget / (size + 4);
        let wire = stream(size, count);
        let sizes = read_sizes(wire.len(), 32 * 1024, 7);
        let reads = pieces(&wire, &sizes);
        for f in [tokio_util, msgwire_owned, msgwire_borrowed] {
            assert_eq!(f(&reads), count, "every contender decodes every frame");
        }
        let t = per_sec(
            count,
            median_of(rounds, || {
                black_box(tokio_util(&reads));
            }),
        );
        let o = per_sec(
            count,
            median_of(rounds, || {
                black_box(msgwire_owned(&reads));
            }),
        );
        let b = per_sec(
            count,
            median_of(rounds, || {
                black_box(msgwire_borrowed(&reads));
            }),
        );
        println!(
            "| {size} B | {count} | {} | {} | {:.2}× | {} | {:.2}× |",
            human(t),
            human(o),
            o / t,
            human(b),
            b / t
        );
    }
    println!();
}
