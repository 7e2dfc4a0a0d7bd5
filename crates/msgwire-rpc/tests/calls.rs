//! Calls end to end: pipelining, params, errors, panics, notifications both ways,
//! server-to-client calls, every dialect over TCP and Unix sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::future::IntoFuture;

use common::*;
use msgwire_rpc::{CallError, Client, Code, Dialect, Router, RpcError, Server, Value};

fn pair(a: i64, b: i64) -> Vec<Value> {
    vec![Value::from(a), Value::from(b)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_in_flight_on_one_connection_each_get_their_own_answer() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let calls = (0..1000i64).map(|i| {
        let client = client.clone();
        async move { (i, client.call("add", pair(i, i * 1000)).await) }
    });
    let answers = within(futures::future::join_all(calls)).await;
    for (i, answer) in answers {
        assert_eq!(answer.unwrap(), Value::from(i + i * 1000));
    }
}

#[tokio::test]
async fn responses_come_back_as_handlers_finish_not_in_request_order() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let mut peer = RawPeer::connect(addr, Dialect::MsgpackRpc).await;
    // Three requests in one write: 1 and 2 wait on gates, 3 answers at once.
    peer.send(&[
        request(1, "wait", vec![Value::from(101)]),
        request(2, "wait", vec![Value::from(102)]),
        request(3, "add", pair(1, 2)),
    ])
    .await;
    let mut entered = HashSet::new();
    while entered.len() < 2 {
        entered.insert(next_event(&mut events).await);
    }
    let first = peer.recv().await;
    assert_eq!(response_id(&first), Some(3), "{first:?}");
    probe.open(102);
    let second = peer.recv().await.unwrap();
    assert_eq!(second, response(2, 102));
    probe.open(101);
    let third = peer.recv().await.unwrap();
    assert_eq!(third, response(1, 101));
}

#[tokio::test]
async fn clients_see_out_of_order_completion_too() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::FramedMap).await.unwrap();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call("wait", vec![Value::from(7)]).await }
    });
    assert_eq!(next_event(&mut events).await, "entered:7");
    // A later call finishes while the first is still waiting.
    let fast = within(client.call("add", pair(2, 3))).await.unwrap();
    assert_eq!(fast, Value::from(5));
    assert!(!slow.is_finished());
    probe.open(7);
    assert_eq!(within(slow).await.unwrap().unwrap(), Value::from(7));
}

#[tokio::test]
async fn positional_and_named_params_reach_the_same_handler() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let positional = client.call("add", pair(1, 2)).await.unwrap();
    let named = Value::Map(vec![
        (Value::from("b"), Value::from(2)),
        (Value::from("a"), Value::from(1)),
    ]);
    let by_name = client.call("add", named).await.unwrap();
    assert_eq!(positional, Value::from(3));
    assert_eq!(by_name, Value::from(3));

    // Typed both ways: a tuple is positional, a struct is named.
    #[derive(serde::Serialize)]
    struct Add {
        a: i64,
        b: i64,
    }
    let sum: i64 = client.call_typed("add", &(40, 2)).await.unwrap();
    assert_eq!(sum, 42);
    let sum: i64 = client.call_typed("add", &Add { a: 1, b: 1 }).await.unwrap();
    assert_eq!(sum, 2);
    // A single non-collection param arrives as [value].
    let hello: String = client.call_typed("greet", &("Alice",)).await.unwrap();
    assert_eq!(hello, "Hello, Alice!");
}

#[tokio::test]
async fn wrong_params_are_invalid_argument_and_say_what_was_expected() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();

    let wrong_type = client
        .call("add", vec![Value::from("x"), Value::from(2)])
        .await
        .unwrap_err();
    let e = wrong_type.rpc_error().unwrap();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("\"add\""), "{}", e.message);
    assert!(e.message.contains("invalid type"), "{}", e.message);
    assert!(
        e.message.contains("AddParams as an array [a, b]"),
        "{}",
        e.message
    );

    let missing = client.call("add", vec![Value::from(1)]).await.unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    let missing_named = client
        .call("add", Value::Map(vec![(Value::from("a"), Value::from(1))]))
        .await
        .unwrap_err();
    let e = missing_named.rpc_error().unwrap();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("missing field `b`"), "{}", e.message);
}

#[tokio::test]
async fn unknown_method_is_unimplemented_and_named() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::FramedBinary)
        .await
        .unwrap();
    let err = client.call("no_such_method", pair(1, 2)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.to_string().contains("no_such_method"), "{err}");
}

#[tokio::test]
async fn a_handlers_own_error_keeps_its_code_and_message() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let found = client.call("find", vec![Value::from(1)]).await.unwrap();
        assert_eq!(found, Value::from("Alice"));
        let err = client
            .call("find", vec![Value::from(99)])
            .await
            .unwrap_err();
        assert_eq!(
            err.rpc_error(),
            Some(&RpcError::not_found("no user 99")),
            "{dialect}"
        );
        assert!(matches!(err, CallError::Rpc(_)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_internal_and_the_connection_stays_usable() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let err = within(client.call("boom", Vec::<Value>::new()))
        .await
        .unwrap_err();
    let e = err.rpc_error().unwrap();
    assert_eq!(e.code, Code::Internal);
    assert!(e.message.contains("boom"), "{}", e.message);
    assert!(e.message.contains("kaboom"), "{}", e.message);
    // Same client, same connection.
    assert!(!client.is_closed());
    assert_eq!(
        client.call("add", pair(1, 2)).await.unwrap(),
        Value::from(3)
    );
}

#[tokio::test]
async fn notifications_go_both_ways() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let (client_probe, mut client_events) = Probe::new();
    let client_router = Router::new().notification("event", move |text: String| {
        let probe = client_probe.clone();
        async move { probe.event(format!("event:{text}")) }
    });
    let client = Client::builder()
        .router(client_router)
        .connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();

    client
        .notify("log", vec![Value::from("hello")])
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await, "log:hello");

    let ok = client
        .call("notify_me", vec![Value::from("ping")])
        .await
        .unwrap();
    assert_eq!(ok, Value::from(true));
    assert_eq!(next_event(&mut client_events).await, "event:ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_calls_the_client_on_the_same_connection() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    for dialect in Dialect::ALL {
        let client_router =
            Router::new().method(
                "double",
                |(n,): (i64,)| async move { Ok::<_, RpcError>(n * 2) },
            );
        let client = Client::builder()
            .router(client_router)
            .connect_tcp(addr, dialect)
            .await
            .unwrap();
        let answer = within(client.call("ask_client", vec![Value::from(20)]))
            .await
            .unwrap();
        assert_eq!(answer, Value::from(41), "{dialect}");
    }
    // A client without that method answers UNIMPLEMENTED, and the server's handler
    // passes the error on.
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let err = within(client.call("ask_client", vec![Value::from(1)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.to_string().contains("double"), "{err}");
}

#[tokio::test]
async fn every_dialect_end_to_end_over_tcp() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        assert_eq!(client.dialect(), dialect);
        let sum = client.call("add", pair(20, 22)).await.unwrap();
        assert_eq!(sum, Value::from(42), "{dialect}");
        let nested = Value::Map(vec![(
            Value::from("k"),
            Value::Array(vec![
                Value::from(1.5),
                Value::Binary(vec![0, 255]),
                Value::Nil,
            ]),
        )]);
        let echoed = client.call("echo", nested.clone()).await.unwrap();
        assert_eq!(echoed, nested, "{dialect}");
        let err = client.call("find", vec![Value::from(5)]).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{dialect}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn every_dialect_end_to_end_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpc.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (probe, _events) = Probe::new();
    let server = Server::new(test_router(&probe));
    tokio::spawn(server.serve_unix(listener).into_future());
    for dialect in Dialect::ALL {
        let client = Client::connect_unix(&path, dialect).await.unwrap();
        let sum: i64 = client.call_typed("add", &(1, 2)).await.unwrap();
        assert_eq!(sum, 3, "{dialect}");
        let hello: String = client.call_typed("greet", &("Unix",)).await.unwrap();
        assert_eq!(hello, "Hello, Unix!");
    }
}

#[tokio::test]
async fn a_client_over_any_stream() {
    // Client::new and Server::serve_connection over an in-memory duplex pipe.
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (probe, _events) = Probe::new();
    let server = Server::new(test_router(&probe));
    tokio::spawn(async move { server.serve_connection(b).await });
    let client = Client::new(a, Dialect::FramedMap);
    let sum = within(client.call("add", pair(2, 2))).await.unwrap();
    assert_eq!(sum, Value::from(4));
}

#[tokio::test]
async fn calls_on_a_closed_connection_fail_as_connection_errors() {
    let (a, b) = tokio::io::duplex(1024);
    let client = Client::new(a, Dialect::MsgpackRpc);
    drop(b);
    within(client.closed()).await;
    let err = client.call("add", pair(1, 2)).await.unwrap_err();
    assert!(err.is_connection_error(), "{err:?}");
    assert_eq!(err.code(), Code::Unavailable);
    let err = client.notify("log", Vec::<Value>::new()).await.unwrap_err();
    assert!(err.is_connection_error(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_from_one_connection_are_handled_in_order() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    for i in 0..300 {
        client
            .notify("log", vec![Value::from(i.to_string())])
            .await
            .unwrap();
    }
    for i in 0..300 {
        assert_eq!(next_event(&mut events).await, format!("log:{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_cross_in_every_dialect_alongside_small_ones() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let big = Value::Array(vec![Value::Binary(
            (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect(),
        )]);
        let small = {
            let client = client.clone();
            async move {
                for i in 0..100i64 {
                    assert_eq!(
                        client.call("add", pair(i, 1)).await.unwrap(),
                        Value::from(i + 1)
                    );
                }
            }
        };
        let (echoed, ()) = within(futures::future::join(
            client.call("echo", big.clone()),
            small,
        ))
        .await;
        assert_eq!(echoed.unwrap(), big, "{dialect}");
        // And small calls after the big one.
        assert_eq!(
            client.call("add", pair(1, 2)).await.unwrap(),
            Value::from(3)
        );
    }
}
