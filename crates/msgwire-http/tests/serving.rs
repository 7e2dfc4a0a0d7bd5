//! The HTTP listener's own bounds, over real sockets: a connection that sends no
//! headers is closed after the header timeout, one over the connection limit is closed
//! at once while the others are served, and shutdown ends the serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use msgwire_http::app::{serve, AppConfig, AppState, HttpLimits};
use msgwire_http::backend::{Backend, BackendOptions};
use msgwire_http::metrics::Metrics;
use msgwire_rpc::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Against hangs only: nothing is asserted about how long anything takes.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start(
    limits: HttpLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let metrics = Metrics::new(&[], None);
    let server = Server::new(msgwire_services::router());
    let backend = Backend::local(server, BackendOptions::default());
    let state = AppState::new(AppConfig::new(backend, metrics).with_http_limits(limits));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(serve(
        listener,
        state,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    (addr, stop, task)
}

/// Reads until the peer closes; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut all))
        .await
        .expect("the server never closed the connection")
        .unwrap_or_default();
    all
}

async fn get_user(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.ends_with(b"}") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(answer).unwrap()
}

#[tokio::test]
async fn silent_and_slow_connections_are_closed_after_the_header_timeout() {
    let (addr, _stop, _task) = start(HttpLimits {
        max_connections: 100,
        header_timeout: Duration::from_millis(300),
    })
    .await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/users/1 HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut kept_alive = TcpStream::connect(addr).await.unwrap();
    assert!(get_user(&mut kept_alive).await.contains("Alice"));
    // None of the three sends anything more: each is closed.
    assert!(read_to_close(&mut silent).await.is_empty());
    let answer = read_to_close(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(read_to_close(&mut kept_alive).await.is_empty());
    // A prompt client is served as before.
    let mut prompt = TcpStream::connect(addr).await.unwrap();
    assert!(get_user(&mut prompt).await.contains("Alice"));
}

#[tokio::test]
async fn a_connection_over_the_limit_is_closed_and_the_others_are_served() {
    let (addr, stop, task) = start(HttpLimits {
        max_connections: 2,
        header_timeout: Duration::from_secs(30),
    })
    .await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(get_user(&mut first).await.contains("Alice"));
    assert!(get_user(&mut second).await.contains("Alice"));
    let mut third = TcpStream::connect(addr).await.unwrap();
    let _ = third
        .write_all(b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        read_to_close(&mut third).await.is_empty(),
        "the third got an answer"
    );
    assert!(get_user(&mut first).await.contains("Alice"));
    // One closed frees its place.
    drop(second);
    let mut fourth = loop {
        let mut next = TcpStream::connect(addr).await.unwrap();
        next.write_all(b"GET /api/users/2 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(PATIENCE, next.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                assert!(String::from_utf8_lossy(&chunk[..n]).contains("200 OK"));
                break next;
            }
            // Closed: the place was not free yet.
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert!(get_user(&mut fourth).await.contains("Alice"));
    // Shutdown: kept-alive idle connections are closed and serve returns.
    stop.send(()).unwrap();
    assert!(read_to_close(&mut first).await.is_empty());
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("serve did not return after shutdown")
        .unwrap()
        .unwrap();
}
