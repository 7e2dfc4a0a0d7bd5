//! Deadlines and cancellation: a passed deadline is DEADLINE_EXCEEDED for the caller and
//! a dropped handler on the server; a disconnect drops all of a client's handlers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use msgwire_rpc::{CallError, CallOptions, Client, Code, Dialect, Server, Value};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_passed_deadline_is_deadline_exceeded_and_the_server_drops_the_handler() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    for dialect in Dialect::ALL {
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        let err = within(client.call_with(
            "hold",
            vec![Value::from(1)],
            CallOptions::timeout(Duration::from_millis(50)),
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, CallError::DeadlineExceeded), "{err:?}");
        assert_eq!(err.code(), Code::DeadlineExceeded);
        assert_eq!(next_event(&mut events).await, "entered:1");
        // The cancel notification reached the server and its handler future was dropped.
        assert_eq!(next_event(&mut events).await, "dropped:1", "{dialect}");
        // The connection carries on.
        let sum = client
            .call("add", vec![Value::from(1), Value::from(2)])
            .await
            .unwrap();
        assert_eq!(sum, Value::from(3));
    }
}

#[tokio::test]
async fn a_deadline_in_the_past_fails_without_waiting() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let past = std::time::Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap();
    let err = within(client.call_with("hold", vec![Value::from(2)], CallOptions::deadline(past)))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::DeadlineExceeded), "{err:?}");
}

#[tokio::test]
async fn a_cancel_notification_drops_the_handler_and_no_response_is_sent() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let mut peer = RawPeer::connect(addr, Dialect::MsgpackRpc).await;
    peer.send(&[request(5, "hold", vec![Value::from(5)])]).await;
    assert_eq!(next_event(&mut events).await, "entered:5");
    peer.send(&[cancel(5)]).await;
    assert_eq!(next_event(&mut events).await, "dropped:5");
    // The next thing on the wire is the answer to the next request, not one for id 5.
    peer.send(&[request(6, "add", vec![Value::from(1), Value::from(1)])])
        .await;
    assert_eq!(peer.recv().await, Some(response(6, 2)));
    // Cancelling a call that is not running is harmless.
    peer.send(&[cancel(12345), request(7, "greet", vec![Value::from("x")])])
        .await;
    assert_eq!(response_id(&peer.recv().await), Some(7));
}

#[tokio::test]
async fn dropping_a_call_future_cancels_it_on_the_server() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::FramedBinary)
        .await
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call("hold", vec![Value::from(3)]).await }
    });
    assert_eq!(next_event(&mut events).await, "entered:3");
    call.abort();
    assert_eq!(next_event(&mut events).await, "dropped:3");
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_handlers() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let mut peer = RawPeer::connect(addr, Dialect::FramedMap).await;
    peer.send(&[
        request(1, "hold", vec![Value::from(10)]),
        request(2, "hold", vec![Value::from(11)]),
    ])
    .await;
    let mut seen = vec![next_event(&mut events).await, next_event(&mut events).await];
    seen.sort();
    assert_eq!(seen, ["entered:10", "entered:11"]);
    peer.stream.shutdown().await.unwrap();
    drop(peer);
    let mut dropped = vec![next_event(&mut events).await, next_event(&mut events).await];
    dropped.sort();
    assert_eq!(dropped, ["dropped:10", "dropped:11"]);
}

#[tokio::test]
async fn dropping_the_last_client_closes_the_connection_and_cancels_its_calls() {
    let (probe, mut events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let observer = tokio::spawn({
        // A Context-like handle would not keep it open; this clone does until dropped.
        let client = client.clone();
        async move { client.call("hold", vec![Value::from(20)]).await }
    });
    assert_eq!(next_event(&mut events).await, "entered:20");
    client.close();
    let result = within(observer).await.unwrap();
    assert!(
        result.as_ref().is_err_and(CallError::is_connection_error),
        "{result:?}"
    );
    assert_eq!(next_event(&mut events).await, "dropped:20");
}
