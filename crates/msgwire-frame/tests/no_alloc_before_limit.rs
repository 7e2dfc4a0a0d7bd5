//! A length a peer claims is checked against the limit before anything of that size is
//! allocated. A counting global allocator records the largest single allocation made
//! while each decoder looks at a hostile header; every case must fail with its typed
//! error and allocate nothing larger than a few KiB.
//!
//! One `#[test]` only, so no other test thread allocates while a case is measured. It
//! starts with a control: a header within the limit is seen reserving room for its
//! 1 MiB frame (the capped first reservation, `buffer::RESERVE_AHEAD`, 32 KiB; more
//! than `SMALL`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering::SeqCst;

use bytes::BytesMut;
use msgwire_frame::{
    buffer::{BufferPool, PooledBuffer, RingBuffer},
    chunked::Chunked,
    delimiter::Delimited,
    grpc::GrpcPrefixed,
    length::LengthPrefixed,
    msgpack::{MsgpackError, SelfDelimited},
    varint::VarintPrefixed,
    websocket::WebSocket,
    Error, Framing, InputBuffer,
};

mod counting_alloc;
use counting_alloc::{Counting, LARGEST, MEASURING};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Feeds `input`, then measures the largest allocation `decode` makes; returns the
/// error and that size.
fn largest_alloc<F: Framing, B: InputBuffer>(
    mut framing: F,
    mut buf: B,
    input: &[u8],
) -> (Error, usize) {
    buf.extend_from_slice(input);
    LARGEST.store(0, SeqCst);
    MEASURING.store(true, SeqCst);
    let mut result = framing.decode(&mut buf);
    while let Ok(Some(_)) = result {
        result = framing.decode(&mut buf);
    }
    MEASURING.store(false, SeqCst);
    match result {
        Err(e) => (e, LARGEST.load(SeqCst)),
        Ok(_) => panic!("expected an error for {input:02x?}"),
    }
}

const SMALL: usize = 8 * 1024;

fn check<F: Framing + Clone>(
    name: &str,
    framing: F,
    input: &[u8],
    expect: impl Fn(&Error) -> bool,
) {
    let pool = BufferPool::new(4096, 4);
    let runs = [
        (
            "BytesMut",
            largest_alloc(framing.clone(), BytesMut::new(), input),
        ),
        (
            "RingBuffer",
            largest_alloc(framing.clone(), RingBuffer::with_capacity(64), input),
        ),
        (
            "PooledBuffer",
            largest_alloc(framing, PooledBuffer::new(&pool), input),
        ),
    ];
    for (buffer, (error, largest)) in runs {
        assert!(
            expect(&error),
            "{name} over {buffer}: unexpected error {error:?}"
        );
        assert!(
            largest <= SMALL,
            "{name} over {buffer}: allocated {largest} bytes before failing with {error}"
        );
    }
}

fn too_long(e: &Error) -> bool {
    matches!(e, Error::TooLong { .. })
}

#[test]
fn hostile_headers_fail_before_any_large_allocation() {
    control_a_header_within_the_limit_is_seen_reserving();
    check(
        "u32 length 4 GiB",
        LengthPrefixed::new(),
        b"\xff\xff\xff\xff",
        too_long,
    );
    check(
        "u32 length 16 MiB + 1",
        LengthPrefixed::new(),
        &(16u32 * 1024 * 1024 + 1).to_be_bytes(),
        too_long,
    );
    let wide = LengthPrefixed::builder()
        .length_field_width(8)
        .build()
        .unwrap();
    check(
        "u64 length 2^63",
        wide,
        &(1u64 << 63).to_be_bytes(),
        too_long,
    );
    check(
        "varint length 2^60",
        VarintPrefixed::new(),
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10],
        too_long,
    );
    check(
        "gRPC length 4 GiB",
        GrpcPrefixed::new(),
        b"\x00\xff\xff\xff\xff",
        too_long,
    );
    check(
        "msgpack array32 of 4 billion",
        SelfDelimited::new(),
        b"\xdd\xff\xff\xff\xff",
        too_long,
    );
    check(
        "msgpack map32 of 4 billion",
        SelfDelimited::new(),
        b"\xdf\xff\xff\xff\xff",
        too_long,
    );
    check(
        "msgpack str32 of 4 GiB",
        SelfDelimited::new(),
        b"\xdb\xff\xff\xff\xff",
        too_long,
    );
    check(
        "msgpack bin32 of 4 GiB",
        SelfDelimited::new(),
        b"\xc6\xff\xff\xff\xff",
        too_long,
    );
    check(
        "msgpack ext32 of 4 GiB",
        SelfDelimited::new(),
        b"\xc9\xff\xff\xff\xff\x01",
        too_long,
    );
    check(
        "msgpack nesting bomb",
        SelfDelimited::new(),
        &[0x91; 100_000],
        |e| matches!(e, Error::Msgpack(MsgpackError::TooDeep { .. })),
    );
    check(
        "WebSocket 64-bit length 2^62",
        WebSocket::server(),
        b"\x82\xff\x40\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04",
        too_long,
    );
    check(
        "chunk size 2^40",
        Chunked::new(),
        b"10000000000\r\n",
        too_long,
    );
    check(
        "chunk size of 20 hex digits",
        Chunked::new(),
        b"ffffffffffffffffffff",
        too_long,
    );
    let line = Delimited::builder(b"\n").max_length(1000).build().unwrap();
    check(
        "line without a delimiter past the limit",
        line,
        &[b'a'; 1500],
        too_long,
    );
}

/// The instrument works: a header within the limit does make the buffer reserve room
/// for its frame (capped at `RESERVE_AHEAD`), and the allocator sees that.
fn control_a_header_within_the_limit_is_seen_reserving() {
    let mut framing = LengthPrefixed::new();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&(1u32 << 20).to_be_bytes());
    LARGEST.store(0, SeqCst);
    MEASURING.store(true, SeqCst);
    let result = framing.decode(&mut buf);
    MEASURING.store(false, SeqCst);
    assert!(matches!(result, Ok(None)));
    assert!(LARGEST.load(SeqCst) > SMALL, "the reservation was not seen");
    assert!(
        LARGEST.load(SeqCst) < 2 * msgwire_frame::buffer::RESERVE_AHEAD,
        "the reservation is capped"
    );
}
