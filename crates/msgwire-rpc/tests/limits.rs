//! Limits and hostile input: in-flight limit, connection limit, timeouts, bytes that
//! are no dialect, headers no frame can hold, nesting bombs, malformed requests — and
//! other connections unharmed throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use msgwire_rpc::{Client, Code, Dialect, RpcError, Server, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn add(a: i64, b: i64) -> Vec<Value> {
    vec![Value::from(a), Value::from(b)]
}

#[tokio::test]
async fn requests_over_the_in_flight_limit_are_resource_exhausted_at_once() {
    let (probe, mut events) = Probe::new();
    let server = Server::builder()
        .max_in_flight(2)
        .build(test_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let waiting: Vec<_> = [1u64, 2]
        .into_iter()
        .map(|key| {
            let client = client.clone();
            tokio::spawn(async move { client.call("wait", vec![Value::from(key)]).await })
        })
        .collect();
    let mut entered = vec![next_event(&mut events).await, next_event(&mut events).await];
    entered.sort();
    assert_eq!(entered, ["entered:1", "entered:2"]);

    let err = within(client.call("add", add(1, 2))).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.to_string().contains("in flight"), "{err}");

    probe.open(1);
    probe.open(2);
    for call in waiting {
        assert!(within(call).await.unwrap().is_ok());
    }
    // Room again.
    assert_eq!(client.call("add", add(1, 2)).await.unwrap(), Value::from(3));
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_when_accepted() {
    let (probe, _events) = Probe::new();
    let server = Server::builder()
        .max_connections(1)
        .build(test_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;
    let first = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    assert_eq!(first.call("add", add(1, 1)).await.unwrap(), Value::from(2));
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_server(&mut second).await);
    // The first is untouched.
    assert_eq!(first.call("add", add(2, 2)).await.unwrap(), Value::from(4));
}

#[tokio::test]
async fn bytes_that_are_no_dialect_are_closed_at_once() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"\xff\xff\xff\xff\xff\xff",
        b"\x00\x00\x00\x05\xc1",
        b"\x92\x00\x01",
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        assert!(closed_by_server(&mut stream).await, "{garbage:02x?}");
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_first_byte_timeout() {
    let (probe, _events) = Probe::new();
    let server = Server::builder()
        .first_byte_timeout(Some(Duration::from_millis(100)))
        .build(test_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_server(&mut silent).await);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let (probe, mut events) = Probe::new();
    let server = Server::builder()
        .idle_timeout(Some(Duration::from_millis(100)))
        .build(test_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;

    // Not while a call is in flight…
    let busy = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let call = tokio::spawn({
        let busy = busy.clone();
        async move { busy.call("wait", vec![Value::from(9)]).await }
    });
    assert_eq!(next_event(&mut events).await, "entered:9");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!busy.is_closed());
    probe.open(9);
    assert!(within(call).await.unwrap().is_ok());

    // …but once nothing happens.
    let idle = Client::connect_tcp(addr, Dialect::FramedMap).await.unwrap();
    assert_eq!(idle.call("add", add(1, 2)).await.unwrap(), Value::from(3));
    within(idle.closed()).await;
    assert!(idle
        .call("add", add(1, 2))
        .await
        .unwrap_err()
        .is_connection_error());
}

/// Sends `bytes` on a fresh connection and checks the server closes it, while a good
/// client keeps getting right answers before, during and after.
async fn hostile_input_is_closed_and_others_are_unharmed(server: Server, hostile: &[&[u8]]) {
    let addr = serve_tcp(server).await;
    let good = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let steady = tokio::spawn({
        let good = good.clone();
        async move {
            for i in 0..200i64 {
                let sum = good.call("add", add(i, 1)).await.unwrap();
                assert_eq!(sum, Value::from(i + 1));
            }
        }
    });
    for bytes in hostile {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // The server may close before it has read everything; a failed write is fine.
        let _ = stream.write_all(bytes).await;
        assert!(
            closed_by_server(&mut stream).await,
            "{:02x?}",
            &bytes[..bytes.len().min(16)]
        );
    }
    within(steady).await.unwrap();
    assert_eq!(
        good.call("add", add(20, 22)).await.unwrap(),
        Value::from(42)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_no_frame_can_hold_and_nesting_bombs_are_closed_while_others_work() {
    let (probe, _events) = Probe::new();
    let server = Server::builder()
        .max_frame_length(64 * 1024)
        .build(test_router(&probe))
        .unwrap();
    let mut nesting_bomb = b"\x94\x00\x01\xa3add".to_vec();
    nesting_bomb.extend_from_slice(&[0x91; 100_000]);
    let hostile: Vec<&[u8]> = vec![
        // framed-map: a length header over the 64 KiB limit.
        b"\x00\x10\x00\x00\x80",
        // framed-binary: same.
        b"\x00\xff\xff\xff\x01\x00\x00\x00\x01",
        // msgpack-rpc: a 4 GiB string header as the method.
        b"\x94\x00\x01\xdb\xff\xff\xff\xff",
        // msgpack-rpc: a 4-billion-element array as the params.
        b"\x94\x00\x01\xa3add\xdd\xff\xff\xff\xff",
        // msgpack-rpc: arrays nested 100 000 deep.
        &nesting_bomb,
    ];
    hostile_input_is_closed_and_others_are_unharmed(server, &hostile).await;
}

#[tokio::test]
async fn a_malformed_request_with_a_readable_id_gets_invalid_argument_and_the_connection_stays() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;

    // msgpack-rpc: [0, 7, 5, []] — the method is not a string.
    let mut peer = RawPeer::connect(addr, Dialect::MsgpackRpc).await;
    peer.stream
        .write_all(b"\x94\x00\x07\x05\x90")
        .await
        .unwrap();
    let answer = peer.recv().await;
    let Some((7, e)) = error_of(&answer) else {
        panic!("expected an error response for id 7, got {answer:?}");
    };
    assert_eq!(e.code, Code::InvalidArgument);
    peer.send(&[request(8, "add", add(1, 2))]).await;
    assert_eq!(peer.recv().await, Some(response(8, 3)));

    // framed-map: {"id": 9, "method": "add", "params": 5} — params neither array nor map.
    let mut peer = RawPeer::connect(addr, Dialect::FramedMap).await;
    let body = Value::Map(vec![
        (Value::from("id"), Value::from(9)),
        (Value::from("method"), Value::from("add")),
        (Value::from("params"), Value::from(5)),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &body).unwrap();
    let mut frame = (bytes.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&bytes);
    peer.stream.write_all(&frame).await.unwrap();
    let answer = peer.recv().await;
    let Some((9, e)) = error_of(&answer) else {
        panic!("expected an error response for id 9, got {answer:?}");
    };
    assert_eq!(e.code, Code::InvalidArgument);
    peer.send(&[request(10, "add", add(2, 3))]).await;
    assert_eq!(peer.recv().await, Some(response(10, 5)));
}

#[tokio::test]
async fn a_request_sent_one_byte_at_a_time_is_answered() {
    let (probe, _events) = Probe::new();
    let addr = serve_tcp(Server::new(test_router(&probe))).await;
    for dialect in Dialect::ALL {
        let mut peer = RawPeer::connect(addr, dialect).await;
        let bytes = peer.encode(&[request(1, "add", add(1, 2))]);
        for byte in bytes {
            peer.stream.write_all(&[byte]).await.unwrap();
            peer.stream.flush().await.unwrap();
        }
        assert_eq!(peer.recv().await, Some(response(1, 3)), "{dialect}");
    }
}

#[tokio::test]
async fn messages_too_large_to_send_fail_their_call_and_nothing_else() {
    let router = test_router(&Probe::new().0).method("big", |n: usize| async move {
        Ok::<_, RpcError>(Value::Binary(vec![7; n]))
    });
    let server = Server::builder()
        .max_frame_length(1024)
        .build(router)
        .unwrap();
    let addr = serve_tcp(server).await;
    let client = Client::builder()
        .max_frame_length(1024)
        .connect_tcp(addr, Dialect::FramedMap)
        .await
        .unwrap();
    let small = Value::Array(vec![Value::Binary(vec![7; 900])]);
    assert_eq!(client.call("echo", small.clone()).await.unwrap(), small);
    // Params over the limit fail locally, before anything is sent.
    let big = Value::Array(vec![Value::Binary(vec![7; 2000])]);
    let err = client.call("echo", big).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // A result over the server's limit becomes an error response for that call.
    let err = client
        .call("big", vec![Value::from(2000)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(!client.is_closed());
    assert_eq!(client.call("add", add(1, 2)).await.unwrap(), Value::from(3));
}

#[tokio::test]
async fn a_connection_that_has_not_spoken_holds_only_a_small_future() {
    // Until its first bytes arrive a connection is its socket and this future: no read
    // buffer, no writer task, no queue (they are allocated after dialect detection).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = listener.accept().await.unwrap();
    let server = Server::new(msgwire_rpc::Router::new());
    let connection = server.serve_connection(accepted);
    let size = std::mem::size_of_val(&connection);
    println!("an unspoken connection's future: {size} bytes");
    assert!(
        size < 2048,
        "an unspoken connection's future is {size} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_pushed_back_then_closed_and_others_are_unharmed() {
    let (probe, _events) = Probe::new();
    let server = Server::builder()
        .write_queue_bytes(128 * 1024)
        .idle_timeout(Some(Duration::from_millis(300)))
        .build(test_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;
    let mut greedy = RawPeer::connect(addr, Dialect::MsgpackRpc).await;
    let payload = Value::Binary(vec![1; 16 * 1024]);
    let batch = greedy.encode(
        &(0..64)
            .map(|id| request(id, "echo", vec![payload.clone()]))
            .collect::<Vec<_>>(),
    );
    // Write requests and never read a response: once the socket buffers and the
    // bounded queue are full the server stops reading, the writes here stall, and the
    // server closes the connection when a write has made no progress for the idle
    // timeout. The writes then fail.
    let flood = async {
        loop {
            if greedy.stream.write_all(&batch).await.is_err() {
                return;
            }
        }
    };
    within(flood).await;
    let good = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    assert_eq!(good.call("add", add(1, 2)).await.unwrap(), Value::from(3));
}

/// A raw server on loopback that answers each request it reads with `answer(id)`.
async fn raw_server(dialect: Dialect, answer: fn(u32) -> Vec<u8>) -> std::net::SocketAddr {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut codec = msgwire_wire::WireCodec::new(dialect);
        let mut buf = bytes::BytesMut::new();
        loop {
            while let Ok(Some(message)) = codec.decode(&mut buf) {
                if let msgwire_rpc::Message::Request { id, .. } = message {
                    let reply = answer(id.as_u32().unwrap());
                    stream.write_all(&reply).await.unwrap();
                }
            }
            if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_malformed_response_fails_its_call_at_once_and_the_connection_goes_on() {
    // msgpack-rpc: [1, id, nil] — a response of three elements, its id readable.
    let short = |id: u32| vec![0x93, 0x01, u8::try_from(id).unwrap(), 0xc0];
    // framed-binary: a type-2 frame for the id whose body is not MessagePack.
    let invalid_body = |id: u32| {
        let mut frame = vec![0, 0, 0, 6, 2];
        frame.extend_from_slice(&id.to_be_bytes());
        frame.push(0xc1);
        frame
    };
    for (dialect, answer) in [
        (Dialect::MsgpackRpc, short as fn(u32) -> Vec<u8>),
        (Dialect::FramedBinary, invalid_body),
    ] {
        let addr = raw_server(dialect, answer).await;
        let client = Client::connect_tcp(addr, dialect).await.unwrap();
        // No deadline: only the malformed answer can end the call.
        let err = within(client.call("add", add(1, 2))).await.unwrap_err();
        assert!(
            matches!(
                err,
                msgwire_rpc::CallError::Protocol(msgwire_rpc::ProtocolError::MalformedResponse(_))
            ),
            "{dialect}: {err:?}"
        );
        assert_eq!(err.code(), Code::Internal);
        assert!(
            !client.is_closed(),
            "{dialect}: the stream itself is intact"
        );
        // The next call gets its own (equally malformed) answer: the connection still works.
        assert!(within(client.call("add", add(1, 2))).await.is_err());
    }
}
