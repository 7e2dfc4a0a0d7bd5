//! Load against a real `msgwire serve` process: 1,000,000 calls with random arguments
//! over 64 connections (the three dialects in turn), many calls in flight on each.
//!
//! The clients are raw: they write the requests and read the responses themselves, so
//! the test sees every response on the wire and counts it. Every call has a unique
//! number and a unique id on its connection; the test asserts that each call was
//! answered exactly once, with its own result, and that nothing else arrived.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod server_guard;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Serve;
use rmpv::Value;
use server_guard::{random_value, Raw, Rng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const CALLS: usize = 1_000_000;
const CONNECTIONS: usize = 64;
const IN_FLIGHT: usize = 64;
const PER_CONNECTION: usize = CALLS / CONNECTIONS;
/// The id of the one call each connection makes after all the others were answered:
/// any response that arrives before its answer is one too many.
const SENTINEL: u32 = u32::MAX;

#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    errors: AtomicU64,
    mismatches: AtomicU64,
    unexpected: AtomicU64,
}

/// One call: its global number and the result it must get.
struct Expected {
    call: usize,
    result: Value,
}

/// A random call and its expected answer: add, multiply or echo.
fn random_call(rng: &mut Rng, call: usize) -> (&'static str, Vec<Value>, Value) {
    match rng.below(10) {
        0..=3 => {
            let (a, b) = (rng.signed(1 << 50), rng.signed(1 << 50));
            (
                "add",
                vec![Value::from(a), Value::from(b)],
                Value::from(a + b),
            )
        }
        4..=5 => {
            let (a, b) = (rng.signed(1 << 30), rng.signed(1 << 30));
            (
                "multiply",
                vec![Value::from(a), Value::from(b)],
                Value::from(a * b),
            )
        }
        _ => {
            // The call number travels inside the value, so an answer that belongs to
            // another call can never look right.
            let value = Value::Array(vec![Value::from(call as u64), random_value(rng, 2)]);
            ("echo", vec![value.clone()], value)
        }
    }
}

async fn run_connection(
    addr: std::net::SocketAddr,
    index: usize,
    answered: Arc<Vec<AtomicU8>>,
    tally: Arc<Tally>,
) {
    let dialect = [Raw::MsgpackRpc, Raw::FramedBinary, Raw::FramedMap][index % 3];
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut read, mut write) = stream.into_split();
    let pending: Arc<Mutex<HashMap<u32, Expected>>> = Arc::default();
    let window = Arc::new(Semaphore::new(IN_FLIGHT));

    let writer = {
        let pending = Arc::clone(&pending);
        let window = Arc::clone(&window);
        tokio::spawn(async move {
            let mut rng = Rng::new(0x5eed_0000 + index as u64);
            let mut batch = Vec::new();
            let mut next = 0;
            while next < PER_CONNECTION {
                window.acquire().await.expect("window open").forget();
                let mut permits = 1;
                while next + permits < PER_CONNECTION
                    && window.try_acquire().is_ok_and(|p| {
                        p.forget();
                        true
                    })
                {
                    permits += 1;
                }
                batch.clear();
                for _ in 0..permits {
                    let call = index * PER_CONNECTION + next;
                    let id = next as u32;
                    let (method, params, result) = random_call(&mut rng, call);
                    pending
                        .lock()
                        .expect("pending lock")
                        .insert(id, Expected { call, result });
                    dialect.encode_request(&mut batch, id, method, params);
                    next += 1;
                }
                write.write_all(&batch).await.expect("write requests");
            }
            // Every call answered: one more, and nothing may arrive before its answer.
            window
                .acquire_many(IN_FLIGHT as u32)
                .await
                .expect("window open")
                .forget();
            batch.clear();
            dialect.encode_request(
                &mut batch,
                SENTINEL,
                "add",
                vec![Value::from(20), Value::from(22)],
            );
            write.write_all(&batch).await.expect("write the last call");
            write
        })
    };

    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    'reading: loop {
        let n = read.read(&mut chunk).await.expect("read responses");
        assert!(n > 0, "connection {index} closed by the server");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(response) = dialect.decode_response(&mut buf) {
            if response.id == SENTINEL {
                assert_eq!(response.outcome, Ok(Value::from(42)));
                break 'reading;
            }
            let Some(expected) = pending.lock().expect("pending lock").remove(&response.id) else {
                tally.unexpected.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            answered[expected.call].fetch_add(1, Ordering::Relaxed);
            tally.answered.fetch_add(1, Ordering::Relaxed);
            match response.outcome {
                Ok(result) if result == expected.result => {}
                Ok(_) => {
                    tally.mismatches.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            window.add_permits(1);
        }
    }
    assert!(buf.is_empty(), "bytes after the last response");
    let _write = writer.await.expect("writer task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_calls_over_64_connections_each_answered_exactly_once() {
    let server = Serve::start(&[]);
    let answered: Arc<Vec<AtomicU8>> = Arc::new((0..CALLS).map(|_| AtomicU8::new(0)).collect());
    let tally = Arc::new(Tally::default());

    let started = Instant::now();
    let connections: Vec<_> = (0..CONNECTIONS)
        .map(|index| {
            tokio::spawn(run_connection(
                server.addr,
                index,
                Arc::clone(&answered),
                Arc::clone(&tally),
            ))
        })
        .collect();
    // An upper bound against a hang, far above the time this takes.
    let all = futures_join(connections);
    tokio::time::timeout(Duration::from_secs(1800), all)
        .await
        .expect("the load finished");
    let elapsed = started.elapsed();

    let counts = answered.iter().fold([0usize; 3], |mut counts, n| {
        counts[usize::from(n.load(Ordering::Relaxed).min(2))] += 1;
        counts
    });
    let total = tally.answered.load(Ordering::Relaxed);
    eprintln!(
        "{total} calls answered over {CONNECTIONS} connections ({IN_FLIGHT} in flight each) \
         in {:.1} s: {:.0} calls/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(counts[0], 0, "calls never answered");
    assert_eq!(counts[2], 0, "calls answered more than once");
    assert_eq!(counts[1], CALLS, "calls answered exactly once");
    assert_eq!(total, CALLS as u64);
    assert_eq!(tally.errors.load(Ordering::Relaxed), 0, "error responses");
    assert_eq!(tally.mismatches.load(Ordering::Relaxed), 0, "wrong results");
    assert_eq!(
        tally.unexpected.load(Ordering::Relaxed),
        0,
        "responses to no call in flight"
    );
}

/// Awaits every task, failing on the first that panicked.
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.await.expect("connection task");
    }
}
