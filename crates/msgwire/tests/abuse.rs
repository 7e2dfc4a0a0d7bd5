//! Hostile connections against a real `msgwire serve` process while 30 well-behaved
//! connections keep calling it (issue 3, acceptance 2).
//!
//! The bad connections send garbage, oversized frame headers, a nesting bomb, MessagePack
//! headers claiming 4 billion elements or 4 GiB of bytes, and small frames whose body
//! claims 4 GiB. Each must get an error response or a closed connection (the 1-second
//! read timeout is only an upper bound against a hang). Meanwhile every good call must
//! come back right, the process must stay up and still answer afterwards, and its memory
//! must stay bounded: the server must never allocate what a header claims.
//!
//! The server runs with `--max-frame 1048576` (1 MiB): under the default 16 MiB every
//! framed header whose first byte is 0x00 (the only first byte a framed dialect can be
//! detected by) is within the limit, so an *oversized* framed header needs a smaller one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod server_guard;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Serve;
use msgwire_rpc::{Client, Dialect};
use rmpv::Value;
use server_guard::{random_value, rss_kib, status_kib, Raw, RawAnswer, Rng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GOOD_CONNECTIONS: usize = 30;
const CALLERS_PER_CONNECTION: usize = 4;
const ROUNDS: usize = 20;
const MAX_FRAME: usize = 1 << 20;
/// Generous: the server's whole footprint is a few MiB; what a header claims is GiBs.
const MEMORY_GROWTH_BOUND_KIB: u64 = 64 * 1024;
/// The upper bound on how long a bad connection may wait for its error or close.
const VERDICT_WITHIN: Duration = Duration::from_secs(1);

/// What a bad connection got.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// The server closed it (EOF, reset, or a write that failed because it was closed).
    Closed,
    /// The server answered with an error response (and may keep the connection).
    Error { code: i64, message: String },
}

struct BadInput {
    name: &'static str,
    /// The dialect to read an answer in, if the bytes make one detectable.
    dialect: Option<Raw>,
    bytes: Vec<u8>,
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

/// `"method"` as a MessagePack str, for hand-written bodies.
const METHOD: &[u8] = b"\xa6method";

fn bad_inputs(rng: &mut Rng) -> Vec<BadInput> {
    let mut random = rng.bytes(4096);
    // A first byte that is no dialect's (0x00, 0x93 and 0x94 would start a detection
    // that could still succeed); the rest is arbitrary.
    random[0] = [0x01, 0x47, 0x7f, 0xc1, 0xff][rng.below(5) as usize];

    let mut bomb = vec![0x94, 0x00, 0x01, 0xa1, b'm'];
    bomb.resize(bomb.len() + 100_000, 0x91);

    // framed-map: {"id": 5, "method": <str claiming 4 GiB>} in a 17-byte frame.
    let mut map_body = vec![0x82, 0xa2, b'i', b'd', 0x05];
    map_body.extend_from_slice(METHOD);
    map_body.extend_from_slice(&[0xdb, 0xff, 0xff, 0xff, 0xff]);

    // framed-binary: request id 9, body {"method": <str claiming 4 GiB>}.
    let mut binary_frame = vec![0x01, 0x00, 0x00, 0x00, 0x09, 0x81];
    binary_frame.extend_from_slice(METHOD);
    binary_frame.extend_from_slice(&[0xdb, 0xff, 0xff, 0xff, 0xff]);

    // framed-binary: request id 11 whose params nest 1000 deep, in a small frame.
    let mut deep_binary = vec![0x01, 0x00, 0x00, 0x00, 0x0b, 0x82];
    deep_binary.extend_from_slice(METHOD);
    deep_binary.extend_from_slice(b"\xa4echo\xa6params");
    deep_binary.resize(deep_binary.len() + 1000, 0x91);
    deep_binary.push(0xc0);

    vec![
        BadInput {
            name: "an HTTP request",
            dialect: None,
            bytes: b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".to_vec(),
        },
        BadInput {
            name: "4 KiB of random bytes",
            dialect: None,
            bytes: random,
        },
        BadInput {
            name: "an oversized framed-map header (00 ff ff ff 80)",
            dialect: Some(Raw::FramedMap),
            bytes: vec![0x00, 0xff, 0xff, 0xff, 0x80],
        },
        BadInput {
            name: "an oversized framed-binary header (00 ff ff ff 01)",
            dialect: Some(Raw::FramedBinary),
            bytes: vec![0x00, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 1],
        },
        BadInput {
            name: "a msgpack-rpc nesting bomb (100 000 x 0x91)",
            dialect: Some(Raw::MsgpackRpc),
            bytes: bomb,
        },
        BadInput {
            name: "a 4-billion-element array header",
            dialect: Some(Raw::MsgpackRpc),
            bytes: vec![0x94, 0x00, 0x01, 0xa1, b'm', 0xdd, 0xff, 0xff, 0xff, 0xff],
        },
        BadInput {
            name: "a 4-billion-entry map header",
            dialect: Some(Raw::MsgpackRpc),
            bytes: vec![0x94, 0x00, 0x01, 0xa1, b'm', 0xdf, 0xff, 0xff, 0xff, 0xff],
        },
        BadInput {
            name: "a 4 GiB str header",
            dialect: Some(Raw::MsgpackRpc),
            bytes: vec![0x94, 0x00, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff],
        },
        BadInput {
            name: "a 4 GiB bin header",
            dialect: Some(Raw::MsgpackRpc),
            bytes: vec![0x94, 0x00, 0x01, 0xa1, b'm', 0xc6, 0xff, 0xff, 0xff, 0xff],
        },
        BadInput {
            name: "a framed-map frame of 17 bytes whose body claims a 4 GiB str",
            dialect: Some(Raw::FramedMap),
            bytes: framed(&map_body),
        },
        BadInput {
            name: "a framed-binary request whose body claims a 4 GiB str",
            dialect: Some(Raw::FramedBinary),
            bytes: framed(&binary_frame),
        },
        BadInput {
            name: "a framed-binary request nested 1000 deep",
            dialect: Some(Raw::FramedBinary),
            bytes: framed(&deep_binary),
        },
    ]
}

fn is_closed_error(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Opens a connection, sends `input`, and waits (at most [`VERDICT_WITHIN`]) for an
/// error response or a close.
async fn attack(addr: std::net::SocketAddr, input: &BadInput) -> Verdict {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    if let Err(e) = stream.write_all(&input.bytes).await {
        // The server closed the connection before taking all of it.
        assert!(
            is_closed_error(e.kind()),
            "{}: write failed: {e}",
            input.name
        );
        return Verdict::Closed;
    }
    let verdict = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) => return Verdict::Closed,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_closed_error(e.kind()) => return Verdict::Closed,
                Err(e) => panic!("{}: read failed: {e}", input.name),
            }
            let dialect = input.dialect.unwrap_or_else(|| {
                panic!(
                    "{}: the server answered bytes that are no dialect",
                    input.name
                )
            });
            match dialect.decode_answer(&mut buf) {
                Some(RawAnswer::Response(response)) => match response.outcome {
                    Err((code, message)) => return Verdict::Error { code, message },
                    Ok(result) => panic!("{}: answered with a result {result}", input.name),
                },
                Some(RawAnswer::NoCall { code, message }) => {
                    return Verdict::Error { code, message }
                }
                None => {}
            }
        }
    };
    tokio::time::timeout(VERDICT_WITHIN, verdict)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{}: neither an error nor a close within {VERDICT_WITHIN:?}",
                input.name
            )
        })
}

/// One good caller: random add/multiply/echo calls until told to stop, each answer
/// checked exactly. Returns how many calls it made.
async fn keep_calling(client: Client, seed: u64, stop: Arc<AtomicBool>) -> u64 {
    let mut rng = Rng::new(seed);
    let mut calls = 0;
    while !stop.load(Ordering::Relaxed) {
        let (method, params, expected) = match rng.below(3) {
            0 => {
                let (a, b) = (rng.signed(1 << 50), rng.signed(1 << 50));
                (
                    "add",
                    vec![Value::from(a), Value::from(b)],
                    Value::from(a + b),
                )
            }
            1 => {
                let (a, b) = (rng.signed(1 << 30), rng.signed(1 << 30));
                (
                    "multiply",
                    vec![Value::from(a), Value::from(b)],
                    Value::from(a * b),
                )
            }
            _ => {
                let value = random_value(&mut rng, 3);
                ("echo", vec![value.clone()], value)
            }
        };
        let answer = client
            .call(method, params.clone())
            .await
            .unwrap_or_else(|e| panic!("good call {method}{params:?} failed: {e}"));
        assert_eq!(answer, expected, "wrong answer to {method}{params:?}");
        calls += 1;
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_are_cut_off_while_30_others_get_every_answer_right() {
    let max_frame = MAX_FRAME.to_string();
    let mut server = Serve::start(&["--max-frame", &max_frame]);
    let addr = server.addr;
    let pid = server.pid();

    let dialects = [
        Dialect::MsgpackRpc,
        Dialect::FramedBinary,
        Dialect::FramedMap,
    ];
    let mut clients = Vec::new();
    for i in 0..GOOD_CONNECTIONS {
        let client = Client::connect_tcp(addr, dialects[i % dialects.len()])
            .await
            .expect("connect a good client");
        // Warm up each connection before memory is measured.
        let three: i64 = client.call_typed("add", &(1, 2)).await.expect("add");
        assert_eq!(three, 3);
        clients.push(client);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        for j in 0..CALLERS_PER_CONNECTION {
            let seed = (i * CALLERS_PER_CONNECTION + j) as u64;
            callers.push(tokio::spawn(keep_calling(
                client.clone(),
                seed,
                Arc::clone(&stop),
            )));
        }
    }
    // Let the good traffic reach its steady state before the first measurement.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid);
    let hwm_before = status_kib(pid, "VmHWM");

    let mut rng = Rng::new(0xbad);
    let mut verdicts = std::collections::BTreeMap::<&'static str, (u32, u32)>::new();
    for _ in 0..ROUNDS {
        let inputs = Arc::new(bad_inputs(&mut rng));
        let attacks: Vec<_> = (0..inputs.len())
            .map(|k| {
                let inputs = Arc::clone(&inputs);
                tokio::spawn(async move { attack(addr, &inputs[k]).await })
            })
            .collect();
        for (k, attack) in attacks.into_iter().enumerate() {
            let verdict = attack.await.expect("attack task");
            let entry = verdicts.entry(inputs[k].name).or_default();
            match verdict {
                Verdict::Closed => entry.0 += 1,
                Verdict::Error { code, message } => {
                    assert_eq!(code, 3, "{}: {message}", inputs[k].name);
                    entry.1 += 1;
                }
            }
        }
    }

    let rss_after = rss_kib(pid);
    let hwm_after = status_kib(pid, "VmHWM");
    stop.store(true, Ordering::Relaxed);
    let mut good_calls = 0;
    for caller in callers {
        let calls = caller.await.expect("a good caller");
        assert!(calls > 0, "a good caller made no call");
        good_calls += calls;
    }
    for client in &clients {
        assert!(!client.is_closed(), "a good connection was closed");
    }

    for (name, (closed, errors)) in &verdicts {
        eprintln!("{name}: closed {closed}, error response {errors}");
    }
    eprintln!(
        "{good_calls} good calls, all right; VmRSS {rss_before} -> {rss_after} KiB, \
         VmHWM {hwm_before} -> {hwm_after} KiB"
    );

    assert!(server.is_running(), "msgwire serve died");
    let fresh = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .expect("a fresh connection");
    let greeting: String = fresh
        .call_typed("greet", &("after",))
        .await
        .expect("a fresh call");
    assert_eq!(greeting, "Hello, after!");
    assert!(
        rss_after.saturating_sub(rss_before) < MEMORY_GROWTH_BOUND_KIB,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert!(
        hwm_after.saturating_sub(hwm_before) < MEMORY_GROWTH_BOUND_KIB,
        "peak resident memory grew from {hwm_before} KiB to {hwm_after} KiB"
    );
}
