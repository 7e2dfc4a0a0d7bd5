//! 1,000 connections that each send a 16 MiB − 1 header and stall cost the server less
//! than 64 MiB (issue 6, section 2).
//!
//! A [`Server`] on loopback TCP, in this process, on a 2-worker runtime; 1,000 plain
//! sockets that each send a framed-map header announcing 16 MiB − 1 bytes (`00 ff ff
//! ff`) and the first byte of the body (`81`, a one-entry map, so the dialect is
//! detected), then send nothing more. A counting global allocator (this test binary's
//! own) gives the bytes live before the first of them and once the server has read
//! every header (the listener counts the bytes its connections read) and the live
//! bytes have settled. Whole frames reserved up front would be 16 GiB. (With fewer
//! connections, where the open-files limit is low, the bound shrinks in proportion.)
//!
//! One `#[test]` only, so that no other test allocates meanwhile. The figure is printed;
//! run with `cargo test -p msgwire-rpc --test stalled_connections -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../msgwire-frame/tests/counting_alloc/mod.rs"]
mod counting_alloc;
#[path = "../../../tests/support/open_files.rs"]
mod open_files;

use std::future::IntoFuture;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use counting_alloc::{Counting, LIVE};
use msgwire_rpc::{Listener, Server};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: Counting = Counting;

const CONNECTIONS: usize = 1000;
/// For [`CONNECTIONS`] connections.
const BOUND: usize = 64 << 20;
/// `[u32 BE length = 16 MiB − 1]` and the first body byte, a map of one entry.
const STALLED_HEADER: [u8; 5] = [0x00, 0xff, 0xff, 0xff, 0x81];

/// Bytes the server has read from all its connections.
static READ: AtomicUsize = AtomicUsize::new(0);

/// A TCP connection that counts what the server reads from it into [`READ`].
struct Counted(TcpStream);

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        READ.fetch_add(buf.filled().len() - before, SeqCst);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

struct CountingListener(TcpListener);

impl Listener for CountingListener {
    type Io = Counted;

    async fn accept(&mut self) -> io::Result<Counted> {
        let (stream, _) = self.0.accept().await?;
        stream.set_nodelay(true)?;
        Ok(Counted(stream))
    }
}

/// Calls `add(1, 2)` over msgpack-rpc on a new connection and checks the answer.
fn call_add(addr: std::net::SocketAddr) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    // [0, 7, "add", [1, 2]]
    stream
        .write_all(b"\x94\x00\x07\xa3add\x92\x01\x02")
        .expect("send add");
    let mut answer = [0u8; 5];
    stream.read_exact(&mut answer).expect("read the answer");
    // [1, 7, nil, 3]
    assert_eq!(answer, [0x94, 0x01, 0x07, 0xc0, 0x03]);
}

/// Waits until `done` holds, then until the live bytes stop moving (the same, within
/// 4 KiB, over 10 samples 20 ms apart): the connection tasks have taken their step.
/// Panics after a minute (a guard against a hang, not a timing claim).
fn settle(what: &str, done: impl Fn() -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut last = LIVE.load(SeqCst);
    let mut steady = 0;
    while steady < 10 {
        assert!(
            Instant::now() < deadline,
            "live bytes never settled after {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
        let now = LIVE.load(SeqCst);
        steady = if now.abs_diff(last) <= 4096 {
            steady + 1
        } else {
            0
        };
        last = now;
    }
    last
}

#[test]
fn a_thousand_stalled_16_mib_headers_cost_the_server_less_than_64_mib() {
    // Both ends of every connection are in this process.
    let n = open_files::connections_within_limit(CONNECTIONS, 2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (probe, _events) = common::Probe::new();
    let server = Server::builder()
        .build(common::test_router(&probe))
        .unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(server.serve(CountingListener(listener)).into_future());

    // A first call, so that what the runtime and the server build once is not counted;
    // then its connection is gone.
    call_add(addr);
    let warm_up = READ.load(SeqCst);
    let before = settle("the warm-up call", || true);

    let mut stalled = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.write_all(&STALLED_HEADER).expect("send the header");
        stalled.push(stream);
    }
    let after = settle("the server to read every header", || {
        READ.load(SeqCst) >= warm_up + n * STALLED_HEADER.len()
    });
    let grown = after.saturating_sub(before);
    eprintln!(
        "{n} connections stalled after a 16 MiB - 1 framed-map header: live bytes \
         {before} -> {after}, +{:.2} MiB ({:.1} KiB per connection)",
        grown as f64 / (1 << 20) as f64,
        grown as f64 / 1024.0 / n as f64
    );
    assert!(
        grown * CONNECTIONS < BOUND * n,
        "{n} stalled headers cost the server {grown} bytes"
    );

    // They are connections the server still holds, and it goes on answering others.
    call_add(addr);
    drop(stalled);
}
