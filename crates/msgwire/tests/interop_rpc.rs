//! Interop against the real `msgwire serve` binary (issue 3, acceptance 1): Python
//! `msgpack` in all three dialects, pynvim's session layer, Node `msgpack5rpc` and
//! `@msgpack/msgpack`; and msgwire's own client (and `msgwire call`) against a real
//! Neovim.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{node_script, python_script, run_msgwire, run_peer, stderr, stdout, Nvim, Serve};
use msgwire_rpc::{CallError, Client, Dialect, Value};
use serde_json::json;

const DIALECTS: [&str; 3] = ["msgpack-rpc", "framed-binary", "framed-map"];

/// 1,000 random add/multiply requests (half positional, half named) in ONE write, in
/// each dialect: every one answered with its own result, matched by id.
#[test]
fn python_msgpack_batch_of_1000_in_one_write() {
    let serve = Serve::start(&[]);
    let (host, port) = serve.host_port();
    for dialect in DIALECTS {
        let summary = run_peer(python_script(
            "py_rpc_client.py",
            &[&host, &port, dialect, "batch", "1000"],
        ));
        assert_eq!(summary, json!({"answered": 1000}), "{dialect}");
    }
}

/// One request written one byte at a time, in each dialect, is answered.
#[test]
fn python_msgpack_request_one_byte_at_a_time() {
    let serve = Serve::start(&[]);
    let (host, port) = serve.host_port();
    for dialect in DIALECTS {
        let summary = run_peer(python_script(
            "py_rpc_client.py",
            &[&host, &port, dialect, "trickle"],
        ));
        assert_eq!(summary["result"], "Hello, Trickle!", "{dialect}: {summary}");
        assert!(
            summary["bytes_sent_one_by_one"].as_u64().unwrap() > 10,
            "{summary}"
        );
    }
}

/// Unknown method → 12 naming it, wrong param type → 3, missing user → 5, too few
/// params → 3, in each dialect.
#[test]
fn python_msgpack_errors_carry_their_codes() {
    let serve = Serve::start(&[]);
    let (host, port) = serve.host_port();
    for dialect in DIALECTS {
        let summary = run_peer(python_script(
            "py_rpc_client.py",
            &[&host, &port, dialect, "errors"],
        ));
        let errors = &summary["errors"];
        let code = |key: &str| errors[key][0].as_i64().unwrap();
        assert_eq!(code("noSuchMethod1"), 12, "{dialect}: {summary}");
        assert_eq!(code("add2"), 3, "{dialect}: {summary}");
        assert_eq!(code("getUser3"), 5, "{dialect}: {summary}");
        assert_eq!(code("add4"), 3, "{dialect}: {summary}");
        let message = |key: &str| errors[key][1].as_str().unwrap().to_owned();
        assert!(message("noSuchMethod1").contains("noSuchMethod"));
        assert!(message("getUser3").contains("99"), "{summary}");
        assert!(message("add4").contains("add"), "{summary}");
    }
}

/// pynvim's `msgpack_rpc.tcp_session` (the session layer Neovim's Python client uses)
/// calls add and greet.
#[test]
fn pynvim_tcp_session_calls_add() {
    let serve = Serve::start(&[]);
    let (host, port) = serve.host_port();
    let summary = run_peer(python_script("py_pynvim_client.py", &[&host, &port]));
    assert_eq!(summary, json!({"add": 3, "greet": "Hello, pynvim!"}));
}

/// Node msgpack5rpc over msgpack-rpc: add, greet, and an unknown method's error.
#[test]
fn node_msgpack5rpc() {
    let serve = Serve::start(&[]);
    let (host, port) = serve.host_port();
    let summary = run_peer(node_script(
        "node_rpc_client.mjs",
        &[&host, &port, "msgpack5rpc"],
    ));
    assert_eq!(summary["add"], 3, "{summary}");
    assert_eq!(summary["greet"], "Hello, msgpack5rpc!", "{summary}");
    // msgpack5rpc hands over the error array [code, message] as it came.
    let error: serde_json::Value =
        serde_json::from_str(summary["error"].as_str().unwrap()).unwrap();
    assert_eq!(error[0], 12, "{summary}");
    assert!(
        error[1].as_str().unwrap().contains("noSuchMethod"),
        "{summary}"
    );
}

/// Node @msgpack/msgpack over framed-map: positional and named params, and a NOT_FOUND
/// error object with code and message.
#[test]
fn node_msgpack_over_framed_map() {
    let serve = Serve::start(&[]);
    let (host, port) = serve.host_port();
    let summary = run_peer(node_script(
        "node_rpc_client.mjs",
        &[&host, &port, "framed-map"],
    ));
    assert_eq!(summary["add"], 42, "{summary}");
    assert_eq!(summary["greet"], "Hello, node!", "{summary}");
    assert_eq!(summary["named"], 42, "multiply {{a: 6, b: 7}}: {summary}");
    assert_eq!(summary["missing"]["code"], 5, "{summary}");
    assert!(
        summary["missing"]["message"]
            .as_str()
            .unwrap()
            .contains("4242"),
        "{summary}"
    );
}

/// msgwire's client against a real Neovim: a result, and Neovim's errors surfacing
/// with Neovim's own text.
#[tokio::test]
async fn msgwire_client_against_neovim() {
    let nvim = Nvim::start();
    let client = Client::connect_unix(&nvim.socket, Dialect::MsgpackRpc)
        .await
        .unwrap();

    let three = client
        .call("nvim_eval", vec![Value::from("1+2")])
        .await
        .unwrap();
    assert_eq!(three, Value::from(3));

    // Typed, and several calls in flight on the one connection.
    let (a, b) = tokio::join!(
        client.call_typed::<_, String>("nvim_eval", &("toupper('msgwire')",)),
        client.call_typed::<_, i64>("nvim_call_function", &("abs", (-41,))),
    );
    assert_eq!(a.unwrap(), "MSGWIRE");
    assert_eq!(b.unwrap(), 41);

    let err = client
        .call("nvim_eval", vec![Value::from("undefined_var_xyz")])
        .await
        .unwrap_err();
    let CallError::Rpc(rpc) = &err else {
        panic!("expected Neovim's error answer, got {err:?}")
    };
    assert!(
        rpc.message.contains("E121") && rpc.message.contains("undefined_var_xyz"),
        "{rpc:?}"
    );
    assert!(err.to_string().contains("Undefined variable"), "{err}");
    // Neovim's error type is kept as the code, as docs/PROTOCOL.md says: 0 = exception.
    assert_eq!(rpc.code.as_i64(), 0, "{rpc:?}");

    // A validation error (Neovim's error type 1): the number is kept too.
    let err = client
        .call(
            "nvim_buf_get_lines",
            vec![Value::from(999), 0.into(), 1.into(), false.into()],
        )
        .await
        .unwrap_err();
    let rpc = err.rpc_error().expect("Neovim's error answer");
    assert!(rpc.message.contains("Invalid buffer id: 999"), "{rpc:?}");
    assert_eq!(rpc.code.as_i64(), 1, "{rpc:?}");

    let err = client
        .call("nvim_command", vec![Value::from("nosuchcommand")])
        .await
        .unwrap_err();
    let rpc = err.rpc_error().expect("Neovim's error answer");
    assert!(rpc.message.contains("Not an editor command"), "{rpc:?}");

    // A method Neovim does not have is an error too, not a hang or a closed connection.
    let err = client
        .call("no_such_api_function", Vec::<Value>::new())
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Rpc(_)), "{err:?}");
    assert!(err.to_string().contains("no_such_api_function"), "{err}");

    // The connection survived all of that.
    let after = client
        .call("nvim_eval", vec![Value::from("2*21")])
        .await
        .unwrap();
    assert_eq!(after, Value::from(42));
    assert!(!client.is_closed());
    client.close();
}

/// `msgwire call ADDR nvim_eval '"1+2"'` prints 3, over TCP (Neovim's `serverstart`
/// picks the port) and over `unix:PATH`; Neovim's error exits 1 with its message.
#[test]
fn msgwire_call_against_neovim() {
    let nvim = Nvim::start();
    let unix = format!("unix:{}", nvim.socket.display());

    let out = run_msgwire(&["call", &unix, "nvim_eval", r#""1+2""#]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "3\n");

    // Listen on a free TCP port too, chosen by Neovim itself (no port race).
    let out = run_msgwire(&[
        "call",
        &unix,
        "nvim_call_function",
        r#""serverstart""#,
        r#"["127.0.0.1:0"]"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tcp: String = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(
        tcp.starts_with("127.0.0.1:") && !tcp.ends_with(":0"),
        "{tcp}"
    );

    let out = run_msgwire(&["call", &tcp, "nvim_eval", r#""1+2""#]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "3\n");

    let out = run_msgwire(&["call", &tcp, "nvim_eval", r#""undefined_var_xyz""#]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains("nvim_eval failed") && err.contains("E121"),
        "{err}"
    );
}
