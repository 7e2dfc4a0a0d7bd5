//! Graceful shutdown: stop accepting, finish calls in flight, close; the grace period
//! bounds the wait.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use msgwire_rpc::{Client, Code, Dialect, Server, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

async fn serve_until_signal(
    server: Server,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(
        server
            .serve_tcp(listener)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    (addr, stop, serving)
}

/// Connects until the listener is gone; true once a connection is refused.
async fn refused(addr: SocketAddr) -> bool {
    let attempts = async {
        loop {
            if TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(LIMIT, attempts).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_calls_in_flight_and_refuses_new_connections() {
    let (probe, mut events) = Probe::new();
    let server = Server::builder()
        .shutdown_grace(LIMIT)
        .build(test_router(&probe))
        .unwrap();
    let (addr, stop, serving) = serve_until_signal(server).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.call("wait", vec![Value::from(1)]).await }
    });
    assert_eq!(next_event(&mut events).await, "entered:1");

    stop.send(()).unwrap();
    assert!(refused(addr).await, "the listener still accepts");
    // A new call on the open connection is turned away while the old one finishes.
    let late = within(client.call("add", vec![Value::from(1), Value::from(2)]))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::Unavailable, "{late:?}");
    assert!(!serving.is_finished());

    probe.open(1);
    assert_eq!(within(in_flight).await.unwrap().unwrap(), Value::from(1));
    within(serving).await.unwrap().unwrap();
    within(client.closed()).await;
}

#[tokio::test]
async fn shutdown_gives_up_on_calls_after_the_grace_period() {
    let (probe, mut events) = Probe::new();
    let server = Server::builder()
        .shutdown_grace(Duration::from_millis(100))
        .build(test_router(&probe))
        .unwrap();
    let (addr, stop, serving) = serve_until_signal(server).await;
    let client = Client::connect_tcp(addr, Dialect::FramedBinary)
        .await
        .unwrap();
    let stuck = tokio::spawn({
        let client = client.clone();
        async move { client.call("hold", vec![Value::from(4)]).await }
    });
    assert_eq!(next_event(&mut events).await, "entered:4");
    stop.send(()).unwrap();
    within(serving).await.unwrap().unwrap();
    // The handler was dropped and the caller told the connection is gone.
    assert_eq!(next_event(&mut events).await, "dropped:4");
    let result = within(stuck).await.unwrap();
    assert!(result.is_err_and(|e| e.is_connection_error()));
}

#[tokio::test]
async fn shutdown_with_nothing_in_flight_is_immediate() {
    let (probe, _events) = Probe::new();
    let server = Server::new(test_router(&probe));
    let (addr, stop, serving) = serve_until_signal(server).await;
    let client = Client::connect_tcp(addr, Dialect::FramedMap).await.unwrap();
    assert_eq!(
        client
            .call("add", vec![Value::from(1), Value::from(1)])
            .await
            .unwrap(),
        Value::from(2)
    );
    // A connection that never said anything does not hold shutdown up either.
    let _silent = TcpStream::connect(addr).await.unwrap();
    stop.send(()).unwrap();
    within(serving).await.unwrap().unwrap();
    within(client.closed()).await;
}
