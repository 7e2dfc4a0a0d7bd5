//! A peer that sends a frame header announcing (nearly) the limit and then stalls costs
//! a capped reservation, not the announced frame. A counting global allocator tracks
//! the live bytes of 1,000 decoders — one per simulated connection, each with its own
//! buffer — that have each read such a header; every framing that reads a length from
//! the wire must keep them under 64 MiB (the whole announced frames would be 16 GiB).
//! Then one frame's body trickles in and must decode to exactly the bytes sent.
//!
//! One `#[test]` only, so no other test thread allocates while a case is measured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering::SeqCst;

use bytes::BytesMut;
use msgwire_frame::{
    buffer::{BufferPool, PooledBuffer, RingBuffer},
    chunked::Chunked,
    grpc::GrpcPrefixed,
    length::LengthPrefixed,
    msgpack::SelfDelimited,
    varint::{encode_varint, VarintPrefixed},
    websocket::WebSocket,
    Framing, InputBuffer, DEFAULT_MAX_FRAME,
};

mod counting_alloc;
use counting_alloc::{Counting, LIVE};

#[global_allocator]
static GLOBAL: Counting = Counting;

const CONNECTIONS: usize = 1000;
const BUDGET: usize = 64 << 20;

/// The largest body the default limit allows: 16 MiB − 1 keeps every header within it.
const BODY: usize = DEFAULT_MAX_FRAME - 1;

/// Builds `CONNECTIONS` decoders with their own buffers, feeds each `header`, lets each
/// decode once (it must wait for more), and returns them with the live bytes they hold.
fn stalled<F: Framing, B: InputBuffer>(
    make: &dyn Fn() -> (F, B),
    header: &[u8],
) -> (Vec<(F, B)>, usize) {
    let before = LIVE.load(SeqCst);
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (mut framing, mut buf) = make();
        buf.extend_from_slice(header);
        assert!(
            framing.decode(&mut buf).unwrap().is_none(),
            "the header alone is not a frame"
        );
        connections.push((framing, buf));
    }
    let live = LIVE.load(SeqCst).saturating_sub(before);
    (connections, live)
}

/// Feeds `body` in pieces of 1 B to 64 KiB after `header` and returns the frame's bytes.
fn trickle<F: Framing, B: InputBuffer>(
    mut framing: F,
    mut buf: B,
    body: &[u8],
    bytes_of: &dyn Fn(F::Frame<B>) -> Vec<u8>,
) -> Vec<u8> {
    let mut rest = body;
    let mut size = 1;
    let mut frame = None;
    while !rest.is_empty() {
        assert!(frame.is_none(), "a frame before the body was all in");
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        buf.extend_from_slice(piece);
        rest = tail;
        frame = framing.decode(&mut buf).unwrap();
        size = size * 7 % 65_521 + 1;
    }
    let frame = frame.expect("the frame once its last byte arrived");
    assert!(buf.is_empty());
    bytes_of(frame)
}

fn check<F: Framing, B: InputBuffer>(
    name: &str,
    make: &dyn Fn() -> (F, B),
    header: &[u8],
    body: &[u8],
    bytes_of: &dyn Fn(F::Frame<B>) -> Vec<u8>,
    want: &[u8],
) {
    let (mut connections, live) = stalled(make, header);
    println!(
        "{name}: {CONNECTIONS} stalled headers hold {:.2} MiB ({} bytes each)",
        live as f64 / (1 << 20) as f64,
        live / CONNECTIONS
    );
    assert!(
        live < BUDGET,
        "{name}: {CONNECTIONS} stalled headers hold {live} bytes"
    );
    let (framing, buf) = connections.pop().unwrap();
    drop(connections);
    let got = trickle(framing, buf, body, bytes_of);
    assert!(got == want, "{name}: the trickled frame differs");
}

fn body() -> Vec<u8> {
    (0..BODY).map(|i| (i * 31 % 251) as u8).collect()
}

fn bytes_of<T: AsRef<[u8]>>(frame: T) -> Vec<u8> {
    frame.as_ref().to_vec()
}

#[test]
fn a_thousand_stalled_headers_cost_less_than_64_mib_and_frames_still_decode() {
    let body = body();
    let pool = BufferPool::new(4096, 4);

    let length_header = (BODY as u32).to_be_bytes();
    check(
        "length / BytesMut",
        &|| (LengthPrefixed::new(), BytesMut::new()),
        &length_header,
        &body,
        &bytes_of,
        &body,
    );
    check(
        "length / RingBuffer",
        &|| (LengthPrefixed::new(), RingBuffer::with_capacity(64)),
        &length_header,
        &body,
        &bytes_of,
        &body,
    );
    check(
        "length / PooledBuffer",
        &|| (LengthPrefixed::new(), PooledBuffer::new(&pool)),
        &length_header,
        &body,
        &bytes_of,
        &body,
    );

    let mut varint_header = BytesMut::new();
    encode_varint(BODY as u64, &mut varint_header);
    check(
        "varint",
        &|| (VarintPrefixed::new(), BytesMut::new()),
        &varint_header,
        &body,
        &bytes_of,
        &body,
    );

    let mut grpc_header = vec![0x00];
    grpc_header.extend_from_slice(&(BODY as u32).to_be_bytes());
    check(
        "grpc",
        &|| (GrpcPrefixed::new(), BytesMut::new()),
        &grpc_header,
        &body,
        &|m| m.payload.to_vec(),
        &body,
    );

    // A client's binary frame: 64-bit length, masked with an all-zero key so the
    // payload on the wire is the payload itself.
    let mut ws_header = vec![0x82, 0xff];
    ws_header.extend_from_slice(&(BODY as u64).to_be_bytes());
    ws_header.extend_from_slice(&[0; 4]);
    check(
        "websocket",
        &|| (WebSocket::server(), BytesMut::new()),
        &ws_header,
        &body,
        &|m| m.payload.to_vec(),
        &body,
    );

    // A chunk of BODY - 2 bytes: with its CRLF, the body fed is BODY bytes.
    let chunk_header = format!("{:x}\r\n", BODY - 2);
    let mut chunk = body[..BODY - 2].to_vec();
    chunk.extend_from_slice(b"\r\n");
    check(
        "chunked",
        &|| (Chunked::new(), BytesMut::new()),
        chunk_header.as_bytes(),
        &chunk,
        &bytes_of,
        &body[..BODY - 2],
    );

    // A bin32 whose whole value (5-byte header included) is BODY bytes.
    let mut bin_header = vec![0xc6];
    bin_header.extend_from_slice(&((BODY - 5) as u32).to_be_bytes());
    let mut value = bin_header.clone();
    value.extend_from_slice(&body[..BODY - 5]);
    check(
        "msgpack",
        &|| (SelfDelimited::new(), BytesMut::new()),
        &bin_header,
        &body[..BODY - 5],
        &bytes_of,
        &value,
    );
}
