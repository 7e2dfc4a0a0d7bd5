//! What large messages cost a real `msgwire serve` process (issue 6, section 2), as the
//! growth of its peak resident memory (`VmHWM` after, minus `VmRSS` before; each case
//! gets a fresh server, after one small warm-up call):
//!
//! * an array of one-element arrays (`[[0], [0], …]`, the input a tree decoder inflates
//!   most: 1 MB of it once took 212 MB of server memory) of nearly the 16 MiB frame
//!   limit, sent to an unknown method and to `echo`, in msgpack-rpc and framed-map: the
//!   peak stays under 4× the message, the unknown method is answered UNIMPLEMENTED and
//!   the echo comes back byte for byte;
//! * 10 connections that each send six 4 MB `echo` calls and never read an answer: the
//!   peak stays under 512 MiB while the server stops reading them, a fresh client is
//!   answered meanwhile, and after the idle timeout the server closes them and its
//!   memory comes back down.
//!
//! Only memory is asserted, never time (waits are bounded by `common::PATIENCE` against
//! hangs). Figures are printed: `cargo test -p msgwire --test memory_amplification --
//! --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod server_guard;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{wait_until, Serve, PATIENCE};
use server_guard::{open_fds, rss_kib, status_kib, Raw};

/// Every request of the first test, envelope included, is at most this: within the
/// default 16 MiB frame limit, with room for the envelope.
const LARGE_MESSAGE: usize = 16 * 1024 * 1024 - 4096;
/// The peak may grow by at most this many times the message.
const AMPLIFICATION_BOUND: u64 = 4;
/// The `echo` calls of the second test.
const NEVER_READ_CONNECTIONS: usize = 10;
const CALLS_PER_CONNECTION: usize = 6;
const CALL_SIZE: usize = 4_000_000;
const NEVER_READ_BOUND_KIB: u64 = 512 * 1024;
/// The idle timeout of the second test's server, in seconds.
const IDLE_TIMEOUT: &str = "10";

/// `[[0], [0], …]`: an array of one-element arrays, `len` bytes at most.
fn one_element_arrays(len: usize) -> Vec<u8> {
    let items = (len - 5) / 2;
    let mut out = Vec::with_capacity(5 + 2 * items);
    out.push(0xdd); // array 32
    out.extend_from_slice(&u32::try_from(items).expect("small").to_be_bytes());
    for _ in 0..items {
        out.extend_from_slice(&[0x91, 0x00]);
    }
    out
}

/// A server with `args`, after one small call on a connection then closed (so that
/// what it builds once is not counted); its resident memory then, in KiB, and how many
/// descriptors it holds with no connection.
fn warmed_up(args: &[&str]) -> (Serve, u64, usize) {
    let server = Serve::start(args);
    let pid = server.pid();
    let base_fds = open_fds(pid);
    call_add(&server, 1, 2);
    wait_until("the warm-up connection to close", || {
        (open_fds(pid) == base_fds).then_some(())
    });
    (server, rss_kib(pid), base_fds)
}

/// `add(a, b)` over msgpack-rpc on a new connection (then closed), answered right.
fn call_add(server: &Serve, a: i64, b: i64) {
    let mut stream = connect(server);
    let mut request = Vec::new();
    Raw::MsgpackRpc.encode_request(&mut request, 1, "add", vec![a.into(), b.into()]);
    stream.write_all(&request).expect("send add");
    let answer = read_answer(&mut stream, Raw::MsgpackRpc);
    assert_eq!(answer.outcome, Ok((a + b).into()));
}

fn connect(server: &Serve) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream
}

/// Reads one (small) answer.
fn read_answer(stream: &mut TcpStream, dialect: Raw) -> server_guard::RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(response) = dialect.decode_response(&mut buf) {
            return response;
        }
        let n = stream.read(&mut chunk).expect("read an answer");
        assert!(
            n > 0,
            "the server closed the connection instead of answering"
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads the answer to an `echo` of `value` and checks that its result is `value`, byte
/// for byte. An error answer fails the test with its code and message.
fn read_echo(stream: &mut TcpStream, dialect: Raw, id: u8, value: &[u8]) {
    match dialect {
        Raw::MsgpackRpc => {
            // [1, id, nil, result]
            let mut head = [0u8; 4];
            stream.read_exact(&mut head).expect("read the answer");
            assert_eq!(head[..3], [0x94, 0x01, id], "not the answer to call {id}");
            if head[3] != 0xc0 {
                // An error: small, and written at once.
                let mut answer = head.to_vec();
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).unwrap_or(0);
                answer.extend_from_slice(&chunk[..n]);
                panic!("echo answered {:?}", dialect.decode_response(&mut answer));
            }
            let mut result = vec![0u8; value.len()];
            stream.read_exact(&mut result).expect("read the result");
            assert!(result == value, "the echo is not the value sent");
        }
        Raw::FramedMap | Raw::FramedBinary => {
            let mut head = [0u8; 4];
            stream.read_exact(&mut head).expect("read the answer");
            let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
            stream
                .read_exact(&mut body)
                .expect("read the answer's body");
            if body.len() < value.len() {
                let mut whole = head.to_vec();
                whole.extend_from_slice(&body);
                panic!("echo answered {:?}", dialect.decode_response(&mut whole));
            }
            // "result", then the value: the field's bytes are exactly those sent.
            let key = b"\xa6result";
            let at = body
                .windows(key.len())
                .position(|w| w == key)
                .expect("a result field")
                + key.len();
            assert!(
                body.get(at..at + value.len()) == Some(value),
                "the echo is not the value sent"
            );
        }
    }
}

/// Sends one large request and checks its answer; returns the server's peak growth in
/// KiB.
fn large_call(dialect: Raw, method: &str, params: &[u8], echoed: Option<&[u8]>) -> u64 {
    let (mut server, before, _) = warmed_up(&[]);
    let mut request = Vec::with_capacity(LARGE_MESSAGE);
    dialect.encode_request_raw(&mut request, 7, method, params);
    assert!(request.len() <= LARGE_MESSAGE, "{} bytes", request.len());
    let mut stream = connect(&server);
    stream.write_all(&request).expect("send the request");
    match echoed {
        Some(value) => read_echo(&mut stream, dialect, 7, value),
        None => {
            let answer = read_answer(&mut stream, dialect);
            assert_eq!(answer.id, 7);
            let (code, message) = answer.outcome.expect_err("an unknown method fails");
            assert_eq!(code, 12, "UNIMPLEMENTED, not {code}: {message}");
        }
    }
    let peak = status_kib(server.pid(), "VmHWM");
    assert!(server.is_running(), "the server is gone");
    let grown = peak.saturating_sub(before);
    eprintln!(
        "{dialect:?} {method}({} KiB of one-element arrays): VmRSS before {before} KiB, \
         VmHWM after {peak} KiB: +{grown} KiB, {:.2}x the {} KiB message",
        params.len() / 1024,
        grown as f64 * 1024.0 / request.len() as f64,
        request.len() / 1024
    );
    assert!(
        grown * 1024 < AMPLIFICATION_BOUND * request.len() as u64,
        "a {} KiB message grew the server's peak by {grown} KiB",
        request.len() / 1024
    );
    grown
}

#[test]
fn sixteen_mib_of_one_element_arrays_cost_under_4x_and_are_answered() {
    // Unknown method: params are the arrays. echo: params are [the arrays].
    let arrays = one_element_arrays(LARGE_MESSAGE - 64);
    let mut echo_params = vec![0x91];
    echo_params.extend_from_slice(&arrays);
    for dialect in [Raw::MsgpackRpc, Raw::FramedMap] {
        large_call(dialect, "noSuchMethod", &arrays, None);
        large_call(dialect, "echo", &echo_params, Some(&arrays));
    }
}

/// Sends [`CALLS_PER_CONNECTION`] copies of `request` on a clone of `stream`, counting
/// what was written into `written`, from a thread of its own; never reads. The thread
/// ends when a write fails (the server closed the connection) or all is sent; `stream`
/// itself, held by the caller, keeps the connection open until then.
fn send_and_never_read(stream: &TcpStream, request: &Arc<Vec<u8>>, written: &Arc<AtomicUsize>) {
    let mut sending = stream.try_clone().expect("clone the socket");
    let request = Arc::clone(request);
    let written = Arc::clone(written);
    std::thread::spawn(move || {
        for _ in 0..CALLS_PER_CONNECTION {
            for piece in request.chunks(64 * 1024) {
                if sending.write_all(piece).is_err() {
                    return;
                }
                written.fetch_add(piece.len(), Ordering::Relaxed);
            }
        }
    });
}

/// Waits until `count` has not moved for a second (sampled every 100 ms), at most
/// [`PATIENCE`]; returns it.
fn until_still(what: &str, count: &AtomicUsize) -> usize {
    let deadline = Instant::now() + PATIENCE;
    let mut last = count.load(Ordering::Relaxed);
    let mut still = 0;
    while still < 10 {
        assert!(Instant::now() < deadline, "{what} never stopped");
        std::thread::sleep(Duration::from_millis(100));
        let now = count.load(Ordering::Relaxed);
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    last
}

#[test]
fn ten_connections_that_never_read_24_mb_of_echoes_are_held_under_512_mib_then_closed() {
    let (mut server, before, base_fds) = warmed_up(&["--idle-timeout", IDLE_TIMEOUT]);
    let pid = server.pid();
    let mut request = Vec::new();
    let value = {
        // A bin of CALL_SIZE bytes, as the one param of echo.
        let mut bin = vec![0x91, 0xc6];
        bin.extend_from_slice(&u32::try_from(CALL_SIZE).expect("small").to_be_bytes());
        bin.extend((0..CALL_SIZE).map(|i| (i % 251) as u8));
        bin
    };
    Raw::MsgpackRpc.encode_request_raw(&mut request, 1, "echo", &value);
    let request = Arc::new(request);
    let written = Arc::new(AtomicUsize::new(0));
    let streams: Vec<TcpStream> = (0..NEVER_READ_CONNECTIONS)
        .map(|_| {
            let stream = connect(&server);
            send_and_never_read(&stream, &request, &written);
            stream
        })
        .collect();

    // The server stops reading them once their answers fill its write queue, so the
    // senders stall; that is the plateau.
    let sent = until_still("sending", &written);
    let held = open_fds(pid) - base_fds;
    let peak = status_kib(pid, "VmHWM");
    let grown = peak.saturating_sub(before);
    // Meanwhile a fresh client is answered.
    call_add(&server, 40, 2);
    eprintln!(
        "{NEVER_READ_CONNECTIONS} connections sent {} of {} MB of echo calls and stalled \
         ({held} still open): VmRSS before {before} KiB, VmHWM {peak} KiB: +{grown} KiB",
        sent / 1_000_000,
        NEVER_READ_CONNECTIONS * CALLS_PER_CONNECTION * request.len() / 1_000_000,
    );
    assert!(
        sent < NEVER_READ_CONNECTIONS * CALLS_PER_CONNECTION * request.len(),
        "the server read every call of connections that never read an answer"
    );
    assert!(
        grown < NEVER_READ_BOUND_KIB,
        "the server's peak grew by {grown} KiB"
    );

    // After the idle timeout the server closes them and lets their memory go.
    wait_until(
        "the server to close the connections that never read",
        || (open_fds(pid) == base_fds).then_some(()),
    );
    let after = rss_kib(pid);
    eprintln!("once they were closed: VmRSS {after} KiB");
    assert!(server.is_running(), "the server is gone");
    assert!(
        after.saturating_sub(before) < grown / 2,
        "once they were closed the server still holds {} KiB of the {grown} KiB it grew",
        after.saturating_sub(before)
    );
    drop(streams);
}
