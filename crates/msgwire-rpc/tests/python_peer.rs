//! Python `msgpack` over a socket (tests/interop/py_seed_gaps.py) against an in-process
//! server with the test router, where a handler must be seen to run, hold or be
//! dropped (issue 6, acceptance 1: duplicate ids; section 2: notifications have a
//! bound of their own).
//!
//! The peer prints its summary as MessagePack in hex (`--msgpack`), so the ids' types
//! are compared exactly: a str stays a str, an integer an integer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

use common::*;
use msgwire_rpc::{Server, Value};
use tokio::sync::mpsc;

/// A Python peer that stops at each `{"waiting": WHAT}` line it prints until the test
/// writes it a line; killed when dropped.
struct Steered {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Steered {
    fn start(mut cmd: Command) -> Steered {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Steered {
            child,
            stdin,
            lines,
        }
    }

    /// The next line the peer prints; fails if it ends first.
    async fn line(&mut self) -> String {
        within(self.lines.recv())
            .await
            .expect("the peer ended without its summary (its stderr is above)")
    }

    /// Waits for the peer to say it waits for `what`.
    async fn waiting_for(&mut self, what: &str) {
        assert_eq!(self.line().await, format!("{{\"waiting\": \"{what}\"}}"));
    }

    fn go(&mut self) {
        self.stdin.write_all(b"go\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The summary line, decoded; the peer must then exit 0.
    async fn summary(mut self) -> Value {
        let line = self.line().await;
        let status = tokio::task::spawn_blocking(move || {
            let status = self.child.wait();
            (status, self)
        });
        let (status, _peer) = within(status).await.unwrap();
        assert!(status.unwrap().success(), "the peer failed: {line}");
        from_hex(&line)
    }
}

impl Drop for Steered {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MessagePack value printed in hex.
fn from_hex(text: &str) -> Value {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not hex ({e}): {text:?}"));
    rmpv::decode::read_value(&mut bytes.as_slice()).unwrap()
}

/// `value` with every map's entries in key order, so that maps compare as maps.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Map(entries) => {
            let mut entries: Vec<_> = entries
                .iter()
                .map(|(k, v)| (sorted(k), sorted(v)))
                .collect();
            entries.sort_by_key(|(k, _)| k.to_string());
            Value::Map(entries)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// The field `key` of the peer's summary.
fn field<'a>(summary: &'a Value, key: &str) -> &'a Value {
    summary
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(key)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key:?} in {summary}"))
}

/// What the peer prints for a response to `id` in `dialect`: INVALID_ARGUMENT (its
/// message set apart as "<message>"), or `result`.
fn response(dialect: &str, id: &Value, result: Result<i64, ()>) -> Value {
    let message = || Value::from("<message>");
    match (dialect, result) {
        ("msgpack-rpc", Err(())) => Value::Array(vec![
            1.into(),
            id.clone(),
            vec![3.into(), message()].into(),
            Value::Nil,
        ]),
        ("msgpack-rpc", Ok(n)) => Value::Array(vec![1.into(), id.clone(), Value::Nil, n.into()]),
        ("framed-map", Err(())) => map(vec![
            ("result", Value::Nil),
            (
                "error",
                map(vec![("code", 3.into()), ("message", message())]),
            ),
            ("id", id.clone()),
        ]),
        ("framed-map", Ok(n)) => map(vec![
            ("result", n.into()),
            ("error", Value::Nil),
            ("id", id.clone()),
        ]),
        ("framed-binary", result) => map(vec![
            ("type", 2.into()),
            ("id", id.clone()),
            (
                "body",
                match result {
                    Err(()) => map(vec![("error", message()), ("code", 3.into())]),
                    Ok(n) => map(vec![("result", n.into())]),
                },
            ),
        ]),
        (other, _) => panic!("no dialect {other}"),
    }
}

/// hold(key) with id `id` runs (`entered:key`); a second request with the same id while
/// it runs is answered INVALID_ARGUMENT for that id within a second and runs nothing;
/// the connection still answers add on another id; a `"$/cancel"` of `id` reaches the
/// first call (`dropped:key`), which never answers; then `id` is free again: add(2, 3)
/// with it is answered 5. In msgpack-rpc and framed-map with integer and str ids, and in
/// framed-binary.
#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_id_in_flight_is_refused_and_the_first_call_can_still_be_cancelled() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());
    let cases: [(&str, &str, Value, u64); 6] = [
        ("msgpack-rpc", "7", Value::from(7), 10),
        ("msgpack-rpc", "\"dup-7\"", Value::from("dup-7"), 20),
        (
            "msgpack-rpc",
            "18446744073709551615",
            Value::from(u64::MAX),
            30,
        ),
        (
            "framed-map",
            "\"req-uuid-001\"",
            Value::from("req-uuid-001"),
            40,
        ),
        ("framed-map", "-5", Value::from(-5), 50),
        ("framed-binary", "7", Value::from(7), 60),
    ];
    for (dialect, id_json, id, key) in cases {
        let key_arg = key.to_string();
        let mut peer = Steered::start(python_script(
            "py_seed_gaps.py",
            &[
                &host,
                &port,
                "duplicate",
                dialect,
                id_json,
                &key_arg,
                "--msgpack",
            ],
        ));
        peer.waiting_for("entered").await;
        assert_eq!(next_event(&mut events).await, format!("entered:{key}"));
        peer.go();
        peer.waiting_for("dropped").await;
        // The next thing any handler reports is the first call's drop: the duplicate
        // (hold(key + 1)) never entered.
        assert_eq!(
            next_event(&mut events).await,
            format!("dropped:{key}"),
            "{dialect} {id}"
        );
        peer.go();
        let summary = peer.summary().await;
        let want = map(vec![
            ("duplicate", response(dialect, &id, Err(()))),
            ("then", 3.into()),
            ("reused", response(dialect, &id, Ok(5))),
            ("messages", field(&summary, "messages").clone()),
        ]);
        assert_eq!(sorted(&summary), sorted(&want), "{dialect} {id}");
        let messages = field(&summary, "messages").as_array().unwrap();
        assert_eq!(messages.len(), 1, "{summary}");
        let message = messages[0].as_str().unwrap();
        assert!(message.contains("already in flight"), "{message}");
        assert!(message.contains(&id.to_string()), "{message}");
    }
    assert!(
        events.try_recv().is_err(),
        "a handler ran that should not have"
    );
}

/// With room for one call only: a notification whose handler never finishes
/// (`stall`: notifications run one at a time, so every later one queues behind it),
/// 2,000 of them, then a call, in one write. The call is answered 3, not
/// RESOURCE_EXHAUSTED: notifications take no call slots (those past
/// `max_notifications` are dropped).
#[tokio::test(flavor = "multi_thread")]
async fn queued_notifications_do_not_take_the_slots_of_calls() {
    let (probe, mut events) = Probe::new();
    let stall_probe = probe.clone();
    let router = test_router(&probe).notification("stall", move |text: String| {
        let probe = stall_probe.clone();
        async move {
            probe.event(format!("stalled:{text}"));
            std::future::pending::<()>().await
        }
    });
    let server = Server::builder()
        .max_in_flight(1)
        .max_notifications(16)
        .build(router)
        .unwrap();
    let addr = serve_tcp(server).await;
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());
    let mut peer = Steered::start(python_script(
        "py_seed_gaps.py",
        &[
            &host,
            &port,
            "notifications",
            "stall",
            "2000",
            "hold",
            "--msgpack",
        ],
    ));
    peer.waiting_for("checked").await;
    // The first notification is running (and holds up the rest) while the call was
    // answered.
    assert_eq!(next_event(&mut events).await, "stalled:n0");
    peer.go();
    let summary = peer.summary().await;
    let want = map(vec![
        ("answer", response("msgpack-rpc", &Value::from(1), Ok(3))),
        ("messages", Value::Array(vec![])),
    ]);
    assert_eq!(sorted(&summary), sorted(&want));
    assert!(events.try_recv().is_err(), "a queued notification ran");
}
