//! `msgwire serve`, `msgwire call` and `msgwire bench`, run as the real binary (issue 3,
//! acceptance 6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::mpsc;

use common::{msgwire, run_msgwire, signal, stderr, stdout, wait_exit, Serve};
use serde_json::{json, Value as Json};

/// Runs `msgwire call ARGS`, expects exit 0 and returns stdout parsed as JSON.
fn call_ok(args: &[&str]) -> Json {
    let mut all = vec!["call"];
    all.extend_from_slice(args);
    let out = run_msgwire(&all);
    assert!(
        out.status.success(),
        "msgwire {all:?} failed ({}): {}",
        out.status,
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

/// Runs `msgwire call ARGS`, expects exit status `code`, nothing on stdout, and returns
/// stderr.
fn call_fails(code: i32, args: &[&str]) -> String {
    let mut all = vec!["call"];
    all.extend_from_slice(args);
    let out = run_msgwire(&all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "msgwire {all:?}: stdout {:?}, stderr {:?}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "", "msgwire {all:?}");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A TCP port nothing listens on: bound, then released.
fn refused_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

#[test]
fn serve_on_port_0_prints_its_address_serves_tcp_and_unix_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rpc.sock");
    let mut serve = Serve::start(&["--unix", sock.to_str().unwrap()]);
    // Serve::start parsed "rpc listening on 127.0.0.1:<port>" with a real port.
    assert!(serve.addr.ip().is_loopback() && serve.addr.port() != 0);
    serve.wait_line(|l| l.contains("services math"));
    assert!(sock.exists());

    assert_eq!(call_ok(&[&serve.addr(), "add", "1", "2"]), json!(3));
    let unix = format!("unix:{}", sock.display());
    assert_eq!(call_ok(&[&unix, "add", "1", "2"]), json!(3));
    for dialect in ["msgpack-rpc", "framed-binary", "framed-map"] {
        assert_eq!(
            call_ok(&["--dialect", dialect, &unix, "greet", r#""unix""#]),
            json!("Hello, unix!"),
            "{dialect}"
        );
    }

    let pid = serve.pid();
    let (status, lines) = serve.terminate();
    assert!(status.success(), "exit {status} after SIGTERM to {pid}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("msgwire serve: shutting down")),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "msgwire serve: stopped", "{lines:?}");
    assert!(!sock.exists(), "the Unix socket file is removed on exit");
}

#[test]
fn serve_on_a_busy_port_exits_2_naming_it() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run_msgwire(&["serve", "--rpc", &addr]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn call_prints_json_results() {
    let serve = Serve::start(&[]);
    let addr = serve.addr();
    assert_eq!(call_ok(&[&addr, "add", "1", "2"]), json!(3));
    assert_eq!(call_ok(&[&addr, "add", "-5", "2"]), json!(-3));
    assert_eq!(
        call_ok(&[&addr, "getUser", "2"]),
        json!({"id": 2, "name": "Bob", "role": "editor", "email": "bob@example.com"})
    );
    assert_eq!(
        call_ok(&["--named", &addr, "add", r#"{"a": 40, "b": 2}"#]),
        json!(42)
    );
    let value = json!({"list": [1, "two", null, true, 2.5], "nested": {"k": [{}]}});
    let text = value.to_string();
    for dialect in ["msgpack-rpc", "framed-binary", "framed-map"] {
        assert_eq!(
            call_ok(&["--dialect", dialect, &addr, "multiply", "6", "7"]),
            json!(42),
            "{dialect}"
        );
        assert_eq!(
            call_ok(&[
                "--dialect",
                dialect,
                "--named",
                &addr,
                "greet",
                r#"{"name": "Ada"}"#
            ]),
            json!("Hello, Ada!"),
            "{dialect}"
        );
        assert_eq!(
            call_ok(&["--dialect", dialect, &addr, "echo", &text]),
            value,
            "{dialect}"
        );
    }
}

#[test]
fn call_errors_exit_1_with_code_and_message_on_stderr() {
    let serve = Serve::start(&[]);
    let addr = serve.addr();
    for dialect in ["msgpack-rpc", "framed-binary", "framed-map"] {
        let err = call_fails(1, &["--dialect", dialect, &addr, "getUser", "99"]);
        assert!(err.contains("NOT_FOUND (5)"), "{dialect}: {err}");
        assert!(err.contains("user 99 not found"), "{dialect}: {err}");

        let err = call_fails(1, &["--dialect", dialect, &addr, "noSuchMethod"]);
        assert!(err.contains("UNIMPLEMENTED (12)"), "{dialect}: {err}");
        assert!(err.contains("noSuchMethod"), "{dialect}: {err}");

        let err = call_fails(1, &["--dialect", dialect, &addr, "add", r#""one""#, "2"]);
        assert!(err.contains("INVALID_ARGUMENT (3)"), "{dialect}: {err}");
    }
}

#[test]
fn call_exits_2_when_the_server_cannot_be_reached_or_args_are_not_json() {
    let refused = refused_addr();
    let err = call_fails(2, &[&refused, "add", "1", "2"]);
    assert!(
        err.contains(&format!("cannot connect to {refused}")),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = format!("unix:{}", dir.path().join("nobody.sock").display());
    let err = call_fails(2, &[&missing, "add", "1", "2"]);
    assert!(err.contains("cannot connect to unix:"), "{err}");

    // Arguments are checked before connecting, so no server is needed for these.
    let err = call_fails(2, &[&refused, "greet", "Alice"]);
    assert!(err.contains("argument 1 is not JSON: Alice"), "{err}");
    let err = call_fails(2, &["--named", &refused, "add", "1", "2"]);
    assert!(err.contains("--named"), "{err}");
    let err = call_fails(2, &["--timeout", "0", &refused, "add", "1", "2"]);
    assert!(err.contains("--timeout"), "{err}");
    let err = call_fails(2, &["--dialect", "json-rpc", &refused, "add"]);
    assert!(err.contains("json-rpc"), "{err}");
    let err = call_fails(2, &["localhost", "add"]);
    assert!(err.contains("HOST:PORT"), "{err}");
}

/// A server that accepts one connection, reads everything, never answers; returns what
/// it read once the client hangs up.
fn silent_server() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let thread = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut read = Vec::new();
        let _ = conn.read_to_end(&mut read);
        read
    });
    (addr, thread)
}

#[test]
fn call_timeout_is_deadline_exceeded_and_hangs_up() {
    let (addr, server) = silent_server();
    let err = call_fails(1, &["--timeout", "0.2", &addr, "add", "1", "2"]);
    assert!(err.contains("DEADLINE_EXCEEDED (4)"), "{err}");
    assert!(err.contains("add failed"), "{err}");
    // The server got the request, then the connection closed (which cancels the call
    // on a msgwire server). The server thread only returns once it reads the end.
    let read = server.join().unwrap();
    let mut rest = &read[..];
    let request = rmpv::decode::read_value(&mut rest).unwrap();
    assert_eq!(request[0], rmpv::Value::from(0), "{request}");
    assert_eq!(request[2], rmpv::Value::from("add"), "{request}");
    // When the deadline passed the client sent the cancel notification, and it waits for
    // it to leave before exiting: [2, "$/cancel", [id]] (docs/PROTOCOL.md section 6).
    let cancel = rmpv::decode::read_value(&mut rest).unwrap();
    assert_eq!(
        cancel,
        rmpv::Value::Array(vec![
            2.into(),
            "$/cancel".into(),
            rmpv::Value::Array(vec![request[1].clone()])
        ])
    );
    assert!(rest.is_empty());
}

/// `msgwire call … | head -c 1`: a reader that has gone away is not a crash.
#[test]
fn call_with_stdout_closed_does_not_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (go, go_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let request = rmpv::decode::read_value(&mut conn).unwrap();
        go_rx.recv().unwrap();
        let answer = rmpv::Value::Array(vec![
            1.into(),
            request[1].clone(),
            rmpv::Value::Nil,
            3.into(),
        ]);
        rmpv::encode::write_value(&mut conn, &answer).unwrap();
        let _ = conn.read_to_end(&mut Vec::new());
    });
    let mut child = msgwire()
        .args(["call", &addr, "add", "1", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the read end: nobody will read the result
    go.send(()).unwrap(); // only now does the answer go out
    let status = wait_exit(&mut child);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.success(), "{status}: {err}");
    server.join().unwrap();
}

/// The server keeps serving, and shuts down cleanly, when nobody reads its stdout.
#[test]
fn serve_with_stdout_closed_still_serves_and_stops_cleanly() {
    let mut child = msgwire()
        .args(["serve", "--rpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    drop(out);
    let addr = first
        .trim()
        .strip_prefix("msgwire serve: rpc listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();
    assert_eq!(call_ok(&[&addr, "add", "2", "3"]), json!(5));
    signal(child.id(), "TERM");
    let status = wait_exit(&mut child);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.success(), "{status}: {err}");
}

#[test]
fn bench_makes_every_call_and_reports_throughput_and_latency() {
    let serve = Serve::start(&[]);
    let addr = serve.addr();
    let out = run_msgwire(&[
        "bench",
        &addr,
        "add",
        "1",
        "2",
        "--calls",
        "2000",
        "--connections",
        "2",
        "--in-flight",
        "8",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{}", text, stderr(&out));
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {text}"))
            .to_owned()
    };
    assert_eq!(
        line("calls:"),
        "calls:      2000 (2000 ok, 0 failed, 0 wrong answers)"
    );
    assert!(line("throughput:").ends_with(" calls/s"), "{text}");
    let latency = line("latency:");
    for part in ["p50 ", "p90 ", "p99 ", "max "] {
        assert!(latency.contains(part), "{latency}");
    }
    assert!(line("duration:").ends_with(" s"), "{text}");
    // The first answer, which every other one must equal, is shown on stderr.
    assert!(stderr(&out).contains("add → 3"), "{}", stderr(&out));
}

#[test]
fn bench_in_every_dialect_and_over_unix() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rpc.sock");
    let serve = Serve::start(&["--unix", sock.to_str().unwrap()]);
    let unix = format!("unix:{}", sock.display());
    for (target, dialect) in [
        (serve.addr(), "framed-binary"),
        (serve.addr(), "framed-map"),
        (unix, "msgpack-rpc"),
    ] {
        let out = run_msgwire(&[
            "bench",
            &target,
            "--dialect",
            dialect,
            "--named",
            "multiply",
            r#"{"a": 6, "b": 7}"#,
            "--calls",
            "300",
            "--connections",
            "3",
            "--in-flight",
            "4",
        ]);
        let text = stdout(&out);
        assert!(out.status.success(), "{dialect}: {text}\n{}", stderr(&out));
        assert!(
            text.contains("calls:      300 (300 ok, 0 failed, 0 wrong answers)"),
            "{dialect}: {text}"
        );
    }
}

#[test]
fn bench_exits_non_zero_when_calls_fail() {
    let serve = Serve::start(&[]);
    let out = run_msgwire(&["bench", &serve.addr(), "getUser", "99", "--calls", "10"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr(&out).contains("NOT_FOUND"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn help_of_each_subcommand_explains_its_options() {
    let help = |command: &str| {
        let out = run_msgwire(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help: {out:?}");
        stdout(&out)
    };
    let serve = help("serve");
    for option in [
        "--rpc <ADDR>",
        "--http <ADDR>",
        "--unix <PATH>",
        "--max-frame",
        "--max-depth",
        "--max-connections",
        "--max-in-flight",
        "--idle-timeout",
        "--first-byte-timeout",
        "--shutdown-grace",
        "SIGTERM",
        "Port 0",
    ] {
        assert!(
            serve.contains(option),
            "serve --help lacks {option:?}:\n{serve}"
        );
    }
    let call = help("call");
    for option in [
        "<ADDR>",
        "<METHOD>",
        "[ARG]",
        "unix:PATH",
        "--dialect",
        "msgpack-rpc",
        "--timeout",
        "DEADLINE_EXCEEDED",
        "--named",
        "JSON",
    ] {
        assert!(
            call.contains(option),
            "call --help lacks {option:?}:\n{call}"
        );
    }
    let bench = help("bench");
    for option in [
        "--connections",
        "--in-flight",
        "--duration",
        "--calls",
        "--dialect",
        "--timeout",
        "--named",
    ] {
        assert!(
            bench.contains(option),
            "bench --help lacks {option:?}:\n{bench}"
        );
    }
    let gateway = help("gateway");
    for option in [
        "--http <ADDR>",
        "--upstream <NAME=ADDR>",
        "unix:PATH",
        "--timeout-ms",
        "--retries",
        "--connect-timeout-ms",
        "--pool-size",
        "502",
    ] {
        assert!(
            gateway.contains(option),
            "gateway --help lacks {option:?}:\n{gateway}"
        );
    }
    let top = run_msgwire(&["--help"]);
    let top = stdout(&top);
    for command in ["serve", "gateway", "call", "bench", "inspect"] {
        assert!(
            top.contains(command),
            "msgwire --help lacks {command}:\n{top}"
        );
    }
}

/// `msgwire call` against a server that reads the request and hangs up without
/// answering: a clear error, exit 2, not a hang.
#[test]
fn call_when_the_server_hangs_up_exits_2() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        rmpv::decode::read_value(&mut conn).unwrap();
        drop::<TcpStream>(conn);
    });
    let err = call_fails(2, &[&addr, "add", "1", "2"]);
    assert!(err.contains("add failed"), "{err}");
    assert!(err.contains("closed"), "{err}");
    server.join().unwrap();
}
