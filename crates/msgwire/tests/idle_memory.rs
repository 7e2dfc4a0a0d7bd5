//! What an idle connection costs a real `msgwire serve` process (issue 3, acceptance 2 and
//! limit 5; issue 6, section 2): resident memory before and after opening 1,000
//! connections that stay idle, in two variants — connections that never send a byte,
//! and connections that made one call and then went quiet; each must cost under 4 KiB
//! (issue 6's target; see BENCHMARKS.md, "Idle connections", for where the bytes go).
//!
//! The server runs with `--first-byte-timeout 0 --idle-timeout 0` so that it keeps the
//! silent connections for the measurement. Figures are printed; run with
//! `cargo test -p msgwire --test idle_memory -- --nocapture` to see them.
//!
//! Only memory of the server process is measured (VmRSS); the kernel's socket buffers
//! are not part of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../../tests/support/open_files.rs"]
mod open_files;
mod server_guard;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Serve;
use server_guard::{open_fds, rss_kib, Raw};

const CONNECTIONS: usize = 1000;
/// Per connection that never sent a byte.
const SILENT_BOUND_KIB: f64 = 4.0;
/// Per connection that made one call, then went quiet.
const AFTER_A_CALL_BOUND_KIB: f64 = 4.0;

/// Waits (at most 30 s, against a hang) until the server holds `fds` descriptors, that
/// is, until it has accepted (or closed) every connection in question, then lets its
/// connection tasks take their first step.
fn wait_for_fds(pid: u32, fds: usize) {
    let started = Instant::now();
    while open_fds(pid) != fds {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server holds {} descriptors, expected {fds}",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// `add(1, 2)` over msgpack-rpc on `stream`, and its answer read back.
fn one_call(stream: &mut TcpStream, id: u32) {
    let mut request = Vec::new();
    Raw::MsgpackRpc.encode_request(
        &mut request,
        id,
        "add",
        vec![rmpv::Value::from(1), rmpv::Value::from(2)],
    );
    stream.write_all(&request).expect("write a call");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    let response = loop {
        if let Some(response) = Raw::MsgpackRpc.decode_response(&mut buf) {
            break response;
        }
        let n = stream.read(&mut chunk).expect("read the answer");
        assert!(n > 0, "closed before answering");
        buf.extend_from_slice(&chunk[..n]);
    };
    assert_eq!(response.id, id);
    assert_eq!(response.outcome, Ok(rmpv::Value::from(3)));
}

/// Starts a server, opens `n` connections (each making one call first if `call_first`),
/// and returns the server's resident memory growth per connection, in KiB.
fn kib_per_idle_connection(n: usize, call_first: bool) -> f64 {
    let server = Serve::start(&["--first-byte-timeout", "0", "--idle-timeout", "0"]);
    let pid = server.pid();
    let base_fds = open_fds(pid);
    // One call first, on a connection then closed, so that the runtime's lazily built
    // parts (the router, the first connection's code paths) are not counted.
    {
        let mut warm_up = TcpStream::connect(server.addr).expect("connect");
        one_call(&mut warm_up, 1);
    }
    wait_for_fds(pid, base_fds);
    let before = rss_kib(pid);

    let mut connections = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        if call_first {
            stream.set_nodelay(true).expect("nodelay");
            one_call(&mut stream, i as u32);
        }
        connections.push(stream);
    }
    wait_for_fds(pid, base_fds + n);
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    eprintln!(
        "{n} idle connections ({}): VmRSS {before} KiB -> {after} KiB, {per:.2} KiB each",
        if call_first {
            "after one call each"
        } else {
            "silent"
        }
    );
    drop(connections);
    per
}

#[test]
fn an_idle_connection_costs_the_server_less_than_4_kib_silent_and_6_kib_after_a_call() {
    let n = open_files::connections_within_limit(CONNECTIONS, 1);
    let silent = kib_per_idle_connection(n, false);
    let after_a_call = kib_per_idle_connection(n, true);
    assert!(
        silent < SILENT_BOUND_KIB,
        "a silent connection costs {silent:.2} KiB"
    );
    assert!(
        after_a_call < AFTER_A_CALL_BOUND_KIB,
        "an idle connection that made one call costs {after_a_call:.2} KiB"
    );
}
