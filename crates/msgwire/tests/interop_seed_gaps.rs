//! Issue 6, acceptance 1 (and the depth and notification bounds of section 2), against a
//! real `msgwire serve`, driven by Python `msgpack` over a socket
//! (tests/interop/py_seed_gaps.py): the seed's framed-map request with its str id; every
//! whole frame that is not a message answered — or, where the stream is lost, closed —
//! within a second, with the connection still usable where the rule says so; params
//! nested to the limit and one past it; `--max-depth` values that would wrap refused;
//! notifications that never take the calls' slots; short error messages for huge
//! params; a log that stays small however much junk a peer sends.
//!
//! The Python peer waits at most a second for each answer (a hang shows as "timeout")
//! and prints what the server sent, error messages replaced by "<message>" and listed
//! apart, so that whole answers — ids with their types, codes — are compared exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{python_script, run_msgwire, run_peer, stderr, stdout, wait_until, Serve};
use serde_json::{json, Value};

/// Runs `py_seed_gaps.py HOST PORT ARGS` against `serve`; its JSON summary.
fn peer(serve: &Serve, args: &[&str]) -> Value {
    let (host, port) = serve.host_port();
    let mut all = vec![host.as_str(), port.as_str()];
    all.extend_from_slice(args);
    run_peer(python_script("py_seed_gaps.py", &all))
}

/// The error messages the peer set apart, each checked by `check`.
fn messages(summary: &Value) -> Vec<String> {
    summary["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {summary}"))
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

/// A framed-map error response with `id` (nil: an error that belongs to no call).
fn framed_map_error(code: i64, id: Value) -> Value {
    json!({"result": null, "error": {"code": code, "message": "<message>"}, "id": id})
}

/// An error response with a code for an id, as a dialect writes it.
type ErrorAnswer = fn(i64, Value) -> Value;

/// A msgpack-rpc error response for `id`.
fn msgpack_rpc_error(code: i64, id: Value) -> Value {
    json!([1, id, [code, "<message>"], null])
}

/// A case the peer ran: its answer, then add(1, 2) on the same connection answered 3.
fn answered(case: &str, answer: Value) -> Value {
    json!({"case": case, "answer": answer, "then": 3})
}

/// The seed's own request, `{"method": "getUser", "params": {"id": 123}, "id":
/// "req-uuid-001"}` as `msgpack.packb` writes it, gets its answer (there is no user
/// 123) with the same str id; integer ids of any size, and strs up to 256 bytes, come
/// back as they went. msgpack-rpc takes the same ids.
#[test]
fn the_seeds_framed_map_request_is_answered_with_its_str_id() {
    let serve = Serve::start(&[]);
    let ids = [
        json!(u64::MAX),
        json!(-5),
        json!(i64::MIN),
        json!(0),
        json!("x".repeat(256)),
        json!("ünïcode-id"),
    ];
    for dialect in ["framed-map", "msgpack-rpc"] {
        let summary = peer(&serve, &["ids", dialect]);
        let (seed, ok): (Value, fn(&Value) -> Value) = if dialect == "framed-map" {
            (
                framed_map_error(5, json!("req-uuid-001")),
                |id| json!({"result": 3, "error": null, "id": id}),
            )
        } else {
            (msgpack_rpc_error(5, json!("req-uuid-001")), |id| {
                json!([1, id, null, 3])
            })
        };
        let mut want = vec![json!({"sent": "req-uuid-001", "answer": seed})];
        want.extend(ids.iter().map(|id| json!({"sent": id, "answer": ok(id)})));
        assert_eq!(summary["answers"], json!(want), "{dialect}");
        assert_eq!(messages(&summary), ["user 123 not found"], "{dialect}");
    }
}

/// Runs the `malformed` cases of `dialect` on one connection; checks every answer and
/// message, and that the server's log names the peer.
fn malformed(serve: &Serve, dialect: &str, want: &[Value]) {
    let summary = peer(serve, &["malformed", dialect]);
    let mut cases = vec![json!({"case": "a good call first", "then": 3})];
    cases.extend_from_slice(want);
    assert_eq!(summary["cases"], json!(cases), "{dialect}");
    let messages = messages(&summary);
    assert_eq!(messages.len(), want.len(), "{dialect}: {messages:?}");
    for message in &messages {
        assert!(message.starts_with("malformed "), "{dialect}: {message:?}");
    }
    // The warnings name the peer (at most five of them per connection in ten seconds).
    let address = summary["peer"].as_str().unwrap().to_owned();
    wait_until(&format!("a warning naming {address}"), || {
        let log = serve.stderr();
        log.lines()
            .any(|line| line.contains(&address) && line.contains("malformed"))
            .then_some(())
    });
}

/// framed-map: a bad id (a float, an array, a str over 256 bytes), no method and no id,
/// an empty map, a body that is not a map, invalid MessagePack, a map cut short — each
/// answered with id nil and INVALID_ARGUMENT; with a readable id (no method, a method
/// that is no str, params that are neither array nor map) answered for that id. The
/// connection answers add(1, 2) after every one.
#[test]
fn framed_map_frames_that_are_no_message_are_answered_and_the_connection_goes_on() {
    let serve = Serve::start(&[]);
    let no_call = framed_map_error(3, Value::Null);
    let mut want: Vec<Value> = [
        "id float",
        "id array",
        "id str of 257 bytes",
        "neither method nor id",
        "empty map",
        "not a map",
        "invalid MessagePack",
        "frame ends inside the map",
    ]
    .into_iter()
    .map(|case| answered(case, no_call.clone()))
    .collect();
    want.extend([
        answered("id but no method", framed_map_error(3, json!("r-1"))),
        answered("method not a str", framed_map_error(3, json!(9))),
        answered(
            "params neither array nor map",
            framed_map_error(3, json!(10)),
        ),
    ]);
    malformed(&serve, "framed-map", &want);
}

/// framed-binary: frames shorter than the 5-byte header (3 bytes, 0 bytes) and of an
/// unknown type get the `"$/error"` notification (type 3, id 0); a request whose body
/// is invalid or missing gets INVALID_ARGUMENT for the id in its header.
#[test]
fn framed_binary_frames_shorter_than_their_header_are_answered_and_the_connection_goes_on() {
    let serve = Serve::start(&[]);
    let no_call =
        json!({"type": 3, "id": 0, "body": {"method": "$/error", "params": [3, "<message>"]}});
    let error = |id: u32| json!({"type": 2, "id": id, "body": {"error": "<message>", "code": 3}});
    let want = [
        answered("3 bytes", no_call.clone()),
        answered("0 bytes", no_call.clone()),
        answered("unknown type", no_call),
        answered("request with invalid MessagePack", error(4)),
        answered("request with no body", error(6)),
    ];
    malformed(&serve, "framed-binary", &want);
}

/// msgpack-rpc: a value of the wrong shape with no readable id (`[5]`, a request whose
/// id is an array, a bare integer, a str, a map, a notification whose method is no
/// str) gets `[2, "$/error", [3, message]]`; a request of the wrong shape with a
/// readable id (`[0, 9, "m"]`) gets `[1, 9, [3, message], nil]`.
#[test]
fn msgpack_rpc_values_of_the_wrong_shape_are_answered_and_the_connection_goes_on() {
    let serve = Serve::start(&[]);
    let no_call = json!([2, "$/error", [3, "<message>"]]);
    let mut want: Vec<Value> = [
        "[5]",
        "request id an array",
        "a bare integer",
        "a str",
        "a map",
        "notification method not a str",
    ]
    .into_iter()
    .map(|case| answered(case, no_call.clone()))
    .collect();
    want.extend([
        answered("request of 3 elements", msgpack_rpc_error(3, json!(9))),
        answered(
            "request of 3 elements, str id",
            msgpack_rpc_error(3, json!("s-1")),
        ),
        answered("request method not a str", msgpack_rpc_error(3, json!(10))),
    ]);
    malformed(&serve, "msgpack-rpc", &want);
}

/// Params nested exactly `limit` deep are echoed; one deeper is INVALID_ARGUMENT for
/// its id and the connection goes on; in msgpack-rpc, nesting far past twice the limit
/// (where the framing cannot find the message's end) is answered for the id read from
/// its first bytes, and then the connection is closed.
fn depth(serve: &Serve, limit: usize) {
    let at = limit as u64;
    let echoed = json!({"id": at, "result_depth": at - 1, "leaf": 1});
    let error: [(&str, ErrorAnswer); 2] = [
        ("msgpack-rpc", msgpack_rpc_error),
        ("framed-map", framed_map_error),
    ];
    for (dialect, error) in error {
        let summary = peer(serve, &["depth", dialect, &limit.to_string()]);
        let mut want = json!({
            "at the limit": {"answer": echoed, "then": 3},
            "one over": {"answer": error(3, json!(at + 1)), "then": 3},
            "messages": summary["messages"],
        });
        if dialect == "msgpack-rpc" {
            let far = 4 * at + 8;
            want["far over"] = json!({"answer": error(3, json!(far)), "closed": true});
        }
        assert_eq!(summary, want, "{dialect}");
        let messages = messages(&summary);
        assert!(
            messages[0].contains(&format!("deeper than the limit of {limit}")),
            "{dialect}: {messages:?}"
        );
    }
}

#[test]
fn params_nested_128_deep_are_accepted_and_129_deep_are_invalid_argument() {
    depth(&Serve::start(&[]), 128);
}

#[test]
fn max_depth_512_is_the_real_limit_too() {
    depth(&Serve::start(&["--max-depth", "512"]), 512);
}

/// `--max-depth` past its maximum of 512, or past `usize::MAX`, is refused by the
/// command line (exit 2, a message naming the option) rather than wrapped; nothing
/// listens.
#[test]
fn a_max_depth_that_would_wrap_is_refused_on_the_command_line() {
    for value in [
        "18446744073709551616",
        "513",
        "340282366920938463463374607431768211456",
    ] {
        let out = run_msgwire(&[
            "serve",
            "--rpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--max-depth",
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "--max-depth {value}: {out:?}");
        let text = stderr(&out);
        assert!(
            text.contains("--max-depth") && text.contains(value),
            "--max-depth {value}: {text}"
        );
        assert!(!stdout(&out).contains("listening"), "{}", stdout(&out));
    }
}

/// 2,000 notifications for a method nobody handles, then a call, in one write: the
/// call is answered as usual — with the default limits, and with one call slot and one
/// notification slot.
#[test]
fn two_thousand_notifications_then_a_call_is_answered() {
    for args in [
        &[][..],
        &["--max-in-flight", "1", "--max-notifications", "1"][..],
    ] {
        let serve = Serve::start(args);
        let summary = peer(&serve, &["notifications", "noSuchNotification", "2000"]);
        assert_eq!(
            summary,
            json!({"answer": [1, 1, null, 3], "messages": []}),
            "{args:?}"
        );
    }
}

/// add with a 16 MB str or bin (positional or named, or as a map key) gets
/// INVALID_ARGUMENT, and a 16 MB method name UNIMPLEMENTED, each with a message under
/// 1 KiB; the connection goes on.
#[test]
fn a_16_mb_param_gets_a_short_error_message() {
    let serve = Serve::start(&[]);
    let summary = peer(&serve, &["huge"]);
    let cases = summary["cases"].as_array().unwrap();
    let names: Vec<_> = cases.iter().map(|c| c["case"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "str a",
            "bin a",
            "str b",
            "named str a",
            "str key",
            "str method"
        ]
    );
    for (id, case) in (1..).zip(cases) {
        let code = if case["case"] == "str method" { 12 } else { 3 };
        assert_eq!(case["answer"], msgpack_rpc_error(code, json!(id)), "{case}");
        let bytes = case["message_bytes"].as_u64().unwrap();
        assert!((1..1024).contains(&bytes), "{case}");
    }
    assert_eq!(summary["then"], 3, "{summary}");
}

/// 60 MB of junk over three connections (1 MB method names and ids, malformed frames
/// of every dialect, 60,000 small malformed frames) under the default log filter: the
/// server's whole log stays a few KiB, every warning names its peer, no line quotes
/// more than a short prefix of the peer's text, and every connection still answers.
#[test]
fn sixty_megabytes_of_junk_make_a_few_kib_of_log() {
    let serve = Serve::start_with(&[], |cmd| {
        cmd.env_remove("RUST_LOG");
    });
    let summary = peer(&serve, &["flood", "60"]);
    assert_eq!(
        summary["then"],
        json!({"msgpack-rpc": 3, "framed-map": 3, "framed-binary": 3}),
        "{summary}"
    );
    assert!(
        summary["bytes_sent"].as_u64().unwrap() >= 60_000_000,
        "{summary}"
    );
    let peers: Vec<String> = summary["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let log = wait_until("a warning naming each peer", || {
        let log = serve.stderr();
        peers
            .iter()
            .all(|peer| log.contains(peer.as_str()))
            .then_some(log)
    });
    assert!(log.len() < 16 * 1024, "{} bytes of log:\n{log}", log.len());
    for line in log.lines() {
        assert!(line.len() < 1024, "a long line: {line}");
        assert!(
            !line.contains(&"m".repeat(200)) && !line.contains(&"i".repeat(200)),
            "peer text quoted at length: {line}"
        );
        assert!(
            peers.iter().any(|peer| line.contains(peer.as_str())),
            "a line that names no peer: {line}"
        );
    }
}
