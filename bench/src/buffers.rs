//! Buffer strategies against each other: `BytesMut`, `RingBuffer` and `PooledBuffer`
//! on a `BufferPool`, all under the same framing (`LengthPrefixed` through
//! `Framing::decode`) and the same reads.
//!
//! * Throughput: frames/s and allocations per frame (the counting allocator, read
//!   before and after one run after the warm-up), payloads of 64 B and 4 KiB, reads of
//!   random size 1 B–32 KiB, every frame dropped as soon as it is touched. The pool and
//!   the ring are created once and reused across runs, as a connection would keep them.
//! * Burst: 64 KiB frames arriving in reads of random size 1 B–256 KiB while the
//!   consumer lags, holding the last N frames it received. Peak bytes live during the
//!   burst (everything the strategy allocated: buffer, frames, pool), bytes still live
//!   once the consumer has dropped every frame, and bytes live after an idle period of
//!   small frames (64 B, one read each). Each figure is counted from the bytes live
//!   before the strategy was created.

use std::collections::VecDeque;
use std::hint::black_box;

use bytes::BytesMut;
use msgwire_frame::buffer::{BufferPool, PooledBuffer, RingBuffer};
use msgwire_frame::{length::LengthPrefixed, Framing, InputBuffer};

use crate::alloc;
use crate::timing::{human, median_of, per_sec, pieces, read_sizes};

fn stream(size: usize, count: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity((size + 4) * count);
    for i in 0..count {
        wire.extend_from_slice(&(size as u32).to_be_bytes());
        wire.extend((0..size).map(|j| (i * 7 + j) as u8));
    }
    wire
}

/// Feeds every read to `buf` and drops each frame once touched.
fn drain<B: InputBuffer>(buf: &mut B, reads: &[&[u8]]) -> usize {
    let mut framing = LengthPrefixed::new();
    let mut frames = 0;
    for read in reads {
        buf.extend_from_slice(read);
        while let Some(frame) = framing.decode(buf).unwrap() {
            black_box(frame.as_ref());
            frames += 1;
        }
    }
    frames
}

/// frames/s and allocations per frame for one strategy.
fn throughput<B: InputBuffer>(
    buf: &mut B,
    reads: &[&[u8]],
    count: usize,
    rounds: usize,
) -> (f64, f64) {
    assert_eq!(drain(buf, reads), count, "every frame decoded");
    let rate = per_sec(
        count,
        median_of(rounds, || {
            black_box(drain(buf, reads));
        }),
    );
    let before = alloc::snapshot().allocations;
    drain(buf, reads);
    let allocations = alloc::snapshot().allocations - before;
    (rate, allocations as f64 / count as f64)
}

/// What a burst cost one strategy, in bytes counted from before it was created.
struct Burst {
    peak: usize,
    drained: usize,
    idle: usize,
    allocations: usize,
}

fn burst<B: InputBuffer>(
    make: impl FnOnce() -> B,
    reads: &[&[u8]],
    idle: &[u8],
    held: usize,
) -> Burst {
    let mut window: VecDeque<B::Frame> = VecDeque::with_capacity(held + 1);
    let base = alloc::snapshot();
    alloc::reset_peak();
    let mut buf = make();
    let mut framing = LengthPrefixed::new();
    for read in reads {
        buf.extend_from_slice(read);
        while let Some(frame) = framing.decode(&mut buf).unwrap() {
            window.push_back(frame);
            if window.len() > held {
                window.pop_front();
            }
        }
    }
    let peak = alloc::peak() - base.live;
    let allocations = alloc::snapshot().allocations - base.allocations;
    window.clear();
    let drained = alloc::snapshot().live - base.live;
    let size = 64 + 4;
    for frame in idle.chunks(size) {
        buf.extend_from_slice(frame);
        let got = framing.decode(&mut buf).unwrap().unwrap();
        black_box(got.as_ref());
    }
    let idle = alloc::snapshot().live - base.live;
    drop(buf);
    Burst {
        peak,
        drained,
        idle,
        allocations,
    }
}

fn kib(bytes: usize) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

/// Prints the tables.
pub fn run(quick: bool) {
    let rounds = if quick { 3 } else { 7 };
    println!("## Buffer strategies\n");
    println!(
        "`LengthPrefixed` (u32 BE) through `Framing::decode`; same stream and reads for \
         every strategy (random 1 B–32 KiB, one seed); frames dropped once touched; median \
         of {rounds} runs. `RingBuffer::default()` (8 KiB, grows by doubling), \
         `BufferPool::default()` (8 KiB buffers, at most 64 idle). Allocations per frame \
         come from a counting global allocator over one whole run after the warm-up.\n"
    );
    println!("| payload | strategy | frames/s | ÷ `BytesMut` | allocations/frame |");
    println!("|---|---|---|---|---|");
    let budget = if quick { 8 << 20 } else { 32 << 20 };
    let mut notes = Vec::new();
    for size in [64usize, 4096] {
        let count = budget / (size + 4);
        let wire = stream(size, count);
        let sizes = read_sizes(wire.len(), 32 * 1024, 7);
        let reads = pieces(&wire, &sizes);
        let (b_rate, b_allocs) = throughput(&mut BytesMut::new(), &reads, count, rounds);
        let (r_rate, r_allocs) = throughput(&mut RingBuffer::default(), &reads, count, rounds);
        let pool = BufferPool::default();
        let (p_rate, p_allocs) = throughput(&mut PooledBuffer::new(&pool), &reads, count, rounds);
        let stats = pool.stats();
        for (name, rate, allocs) in [
            ("`BytesMut`", b_rate, b_allocs),
            ("`RingBuffer`", r_rate, r_allocs),
            ("`PooledBuffer`", p_rate, p_allocs),
        ] {
            println!(
                "| {size} B | {name} | {} | {:.2}× | {allocs:.3} |",
                human(rate),
                rate / b_rate
            );
        }
        notes.push(format!(
            "{size} B: the pool allocated {} buffers in all (warm-up included) and reused \
             one {} times.",
            stats.allocated_total, stats.reused_total
        ));
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    println!();

    let frames = if quick { 64 } else { 256 };
    let held = 32;
    let size = 64 * 1024;
    let wire = stream(size, frames);
    let sizes = read_sizes(wire.len(), 256 * 1024, 9);
    let reads = pieces(&wire, &sizes);
    let idle = stream(64, 1000);
    println!(
        "### Burst: {frames} frames of 64 KiB ({} MiB) in reads of 1 B–256 KiB, consumer \
         holding the last {held} frames ({} KiB of payload); then every frame dropped, then \
         1000 frames of 64 B, one read each\n",
        wire.len() >> 20,
        held * size / 1024
    );
    println!("| strategy | peak bytes live | allocations in the burst (per frame) | live after drain | live after idle |");
    println!("|---|---|---|---|---|");
    let rows = [
        ("`BytesMut`", burst(BytesMut::new, &reads, &idle, held)),
        (
            "`RingBuffer`",
            burst(RingBuffer::default, &reads, &idle, held),
        ),
        (
            "`PooledBuffer`",
            burst(
                || PooledBuffer::new(&BufferPool::default()),
                &reads,
                &idle,
                held,
            ),
        ),
    ];
    for (name, b) in rows {
        println!(
            "| {name} | {} | {} ({:.2}) | {} | {} |",
            kib(b.peak),
            b.allocations,
            b.allocations as f64 / frames as f64,
            kib(b.drained),
            kib(b.idle)
        );
    }
    println!();
}
