//! msgpack-rpc over WebSocket at `GET /ws` (issue 8, part 2), against a real axum
//! server with the reference services: raw sockets for every bad frame (each closed
//! with its RFC 6455 code while a good socket keeps answering), pings, the close
//! handshake, the handshake's refusals; then Python `websockets` and Node `ws` as peers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/support/peer_programs.rs"]
mod peer_programs;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Request;
use axum::routing::get;
use axum::Router;
use bytes::{Buf, BytesMut};
use msgwire_frame::websocket::{encode_frame, Message, Opcode, WebSocket};
use msgwire_frame::Framing;
use msgwire_http::ws::{upgrade, WsConfig};
use msgwire_services::{Services, ServicesConfig};
use rmpv::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Guards each wait on the server, so that a bug fails the test instead of hanging it.
/// Never an assertion about how long anything takes.
const PATIENCE: Duration = Duration::from_secs(20);

/// An axum server with only `/ws`, serving the reference services.
struct TestServer {
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

async fn start(config: WsConfig) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    let services = Services::new(ServicesConfig {
        data_dir: data.path().to_path_buf(),
        ..ServicesConfig::default()
    })
    .unwrap();
    let server = msgwire_rpc::Server::new(services.router());
    let app = Router::new().route(
        "/ws",
        get(move |request: Request| {
            let (server, config) = (server.clone(), config.clone());
            async move { upgrade(request, server, config, ()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestServer { addr, _data: data }
}

const KEY_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Sends an HTTP request and returns the response head.
async fn http_head(addr: SocketAddr, headers: &str) -> (TcpStream, String, BytesMut) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = BytesMut::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf.split_to(end + 4).to_vec()).unwrap();
            return (stream, head, buf);
        }
        let n = tokio::time::timeout(PATIENCE, stream.read_buf(&mut buf))
            .await
            .expect("no HTTP response")
            .unwrap();
        assert!(n > 0, "closed before the response head: {buf:?}");
    }
}

/// A WebSocket client on a raw socket: frames written by hand (masked, or not, as a
/// test needs), frames read with msgwire's client-role decoder.
struct RawWs {
    stream: TcpStream,
    decoder: WebSocket,
    buf: BytesMut,
    next_id: u32,
}

impl RawWs {
    async fn connect(addr: SocketAddr) -> RawWs {
        let headers = format!("{KEY_HEADERS}Sec-WebSocket-Version: 13\r\n");
        let (ws, head) = Self::connect_with(addr, &headers).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        ws
    }

    async fn connect_with(addr: SocketAddr, headers: &str) -> (RawWs, String) {
        let (stream, head, buf) = http_head(addr, headers).await;
        let ws = RawWs {
            stream,
            decoder: WebSocket::client(),
            buf,
            next_id: 0,
        };
        (ws, head)
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// One masked frame.
    async fn frame(&mut self, fin: bool, opcode: Opcode, payload: &[u8]) {
        let mut out = BytesMut::new();
        encode_frame(
            fin,
            opcode,
            payload,
            Some([0x12, 0x34, 0x56, 0x78]),
            &mut out,
        )
        .unwrap();
        self.send_raw(&out).await;
    }

    /// The next message; `None` once the server closed the TCP connection.
    async fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(message) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(message);
            }
            let read = tokio::time::timeout(PATIENCE, self.stream.read_buf(&mut self.buf))
                .await
                .expect("the server neither answered nor closed");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads until a close frame; its code (0 for an empty close).
    async fn close_code(&mut self) -> u16 {
        loop {
            match self.recv().await {
                Some(m) if m.opcode == Opcode::Close => return m.close_code().unwrap_or(0),
                Some(_) => {}
                None => panic!("the connection ended without a close frame"),
            }
        }
    }

    /// Sends one msgpack-rpc message as one binary message.
    async fn send_value(&mut self, value: &Value) {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, value).unwrap();
        self.frame(true, Opcode::Binary, &bytes).await;
    }

    /// The next binary message, which must be exactly one MessagePack value; pings
    /// are answered on the way.
    async fn recv_value(&mut self) -> Value {
        loop {
            let message = self.recv().await.expect("closed while waiting for a value");
            match message.opcode {
                Opcode::Binary => return exactly_one_value(&message.payload),
                Opcode::Ping => self.frame(true, Opcode::Pong, &message.payload).await,
                other => panic!("unexpected {other} message: {message:?}"),
            }
        }
    }

    /// A call: its result, or panics on an error answer.
    async fn call(&mut self, method: &str, params: Vec<Value>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = Value::Array(vec![0.into(), id.into(), method.into(), params.into()]);
        self.send_value(&request).await;
        loop {
            let answer = self.recv_value().await;
            let Value::Array(parts) = &answer else {
                panic!("not a message: {answer}");
            };
            if parts.len() == 4 && parts[0] == Value::from(1) && parts[1] == Value::from(id) {
                assert_eq!(parts[2], Value::Nil, "{method} failed: {answer}");
                return parts[3].clone();
            }
        }
    }

    async fn add(&mut self, a: i64, b: i64) -> Value {
        self.call("add", vec![a.into(), b.into()]).await
    }
}

fn exactly_one_value(payload: &[u8]) -> Value {
    let mut rest = payload;
    let value = rmpv::decode::read_value(&mut rest).unwrap();
    assert!(rest.is_empty(), "{} bytes after the value", rest.len());
    value
}

/// A masked frame header for a payload of `len` bytes, whatever the opcode and bits.
fn header(first_byte: u8, len: u64) -> Vec<u8> {
    let mut out = vec![first_byte];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as it is
    out
}

fn with_payload(mut head: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    head.extend_from_slice(payload);
    head
}

fn add_request(id: u8) -> Vec<u8> {
    vec![0x94, 0x00, id, 0xa3, b'a', b'd', b'd', 0x92, 0x01, 0x02]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_frame_gets_its_close_code_and_a_good_socket_keeps_answering() {
    let server = start(WsConfig::default()).await;
    let mut good = RawWs::connect(server.addr).await;
    assert_eq!(good.add(1, 2).await, Value::from(3));

    let mut unmasked = BytesMut::new();
    encode_frame(true, Opcode::Binary, &add_request(1), None, &mut unmasked).unwrap();
    let mut storm = with_payload(header(0x02, 1), &[0x94]);
    for _ in 0..1100 {
        storm.extend_from_slice(&with_payload(header(0x00, 1), &[0x00]));
    }
    let mut deep = vec![0x94, 0x00, 0x01, 0xa1, b'x'];
    deep.extend_from_slice(&[0x91; 300]);
    deep.push(0x01);
    let mut two_values = add_request(1);
    two_values.push(0x01);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked client frame", unmasked.to_vec(), 1002),
        (
            "ping of 126 bytes",
            with_payload(header(0x89, 126), &[0; 126]),
            1002,
        ),
        (
            "RSV1 set",
            with_payload(header(0xc2, 10), &add_request(1)),
            1002,
        ),
        (
            "reserved opcode 0x3",
            with_payload(header(0x83, 1), b"x"),
            1002,
        ),
        (
            "reserved control opcode 0xB",
            with_payload(header(0x8b, 0), b""),
            1002,
        ),
        ("fragmented ping", with_payload(header(0x09, 1), b"x"), 1002),
        (
            "continuation first",
            with_payload(header(0x80, 1), b"x"),
            1002,
        ),
        (
            "text not UTF-8",
            with_payload(header(0x81, 2), &[0xff, 0xfe]),
            1007,
        ),
        (
            "text message",
            with_payload(header(0x81, 5), b"hello"),
            1003,
        ),
        (
            "over max_message (header only)",
            header(0x82, 17 << 20),
            1009,
        ),
        ("1100 one-byte fragments", storm, 1008),
        (
            "two values in one message",
            with_payload(header(0x82, 11), &two_values),
            1007,
        ),
        (
            "a truncated value",
            with_payload(header(0x82, 2), &[0x94, 0x00]),
            1007,
        ),
        (
            "first message not an array",
            with_payload(header(0x82, 1), &[0x01]),
            1007,
        ),
        (
            "invalid marker",
            with_payload(header(0x82, 2), &[0x94, 0xc1]),
            1007,
        ),
        (
            "nested 300 deep",
            with_payload(header(0x82, deep.len() as u64), &deep),
            1009,
        ),
        (
            "bad close code",
            with_payload(header(0x88, 2), &1005u16.to_be_bytes()),
            1002,
        ),
    ];
    for (i, (name, bytes, code)) in cases.into_iter().enumerate() {
        let mut bad = RawWs::connect(server.addr).await;
        bad.send_raw(&bytes).await;
        assert_eq!(bad.close_code().await, code, "{name}");
        let i = i as i64;
        assert_eq!(good.add(i, 100).await, Value::from(i + 100), "after {name}");
    }
}

#[tokio::test]
async fn fragments_with_a_ping_between_make_one_message() {
    let server = start(WsConfig::default()).await;
    let mut ws = RawWs::connect(server.addr).await;
    let request = add_request(7);
    ws.frame(false, Opcode::Binary, &request[..3]).await;
    ws.frame(true, Opcode::Ping, b"between").await;
    ws.frame(false, Opcode::Continuation, &request[3..6]).await;
    ws.frame(true, Opcode::Continuation, &request[6..]).await;
    let pong = ws.recv().await.unwrap();
    assert_eq!(pong, Message::pong(&b"between"[..]));
    let answer = ws.recv_value().await;
    assert_eq!(
        answer,
        Value::Array(vec![1.into(), 7.into(), Value::Nil, 3.into()])
    );
}

/// Pipelined calls in one write, and echoes of every frame-length encoding (7-bit,
/// 16-bit, 64-bit) and of values the RPC side writes from their own bytes: each answer
/// is one binary message holding exactly one value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_calls_and_large_echoes_come_back_one_message_each() {
    let server = start(WsConfig::default()).await;
    let mut ws = RawWs::connect(server.addr).await;
    let mut batch = BytesMut::new();
    for id in 1..=200u32 {
        let mut bytes = Vec::new();
        let request = Value::Array(vec![
            0.into(),
            id.into(),
            "add".into(),
            vec![Value::from(id), Value::from(1)].into(),
        ]);
        rmpv::encode::write_value(&mut bytes, &request).unwrap();
        encode_frame(true, Opcode::Binary, &bytes, Some([9, 8, 7, 6]), &mut batch).unwrap();
    }
    ws.send_raw(&batch).await;
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 200 {
        let Value::Array(parts) = ws.recv_value().await else {
            panic!("not an answer");
        };
        seen.insert(parts[1].as_u64().unwrap(), parts[3].as_u64().unwrap());
    }
    assert!(seen.iter().all(|(id, sum)| *sum == id + 1));

    for size in [0usize, 100, 20_000, 70_000, 1_500_000] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let echoed = ws.call("echo", vec![Value::Binary(data.clone())]).await;
        assert_eq!(echoed, Value::Binary(data), "{size} bytes");
    }
}

#[tokio::test]
async fn a_ping_is_answered_with_its_payload() {
    let server = start(WsConfig::default()).await;
    let mut ws = RawWs::connect(server.addr).await;
    ws.frame(true, Opcode::Ping, b"are you there").await;
    assert_eq!(
        ws.recv().await.unwrap(),
        Message::pong(&b"are you there"[..])
    );
    assert_eq!(ws.add(2, 2).await, Value::from(4));
}

/// Pings every 100 ms; a peer has `pong_timeout` to show it is there.
fn quick_pings(pong_timeout: Duration) -> WsConfig {
    WsConfig {
        ping_interval: Some(Duration::from_millis(100)),
        pong_timeout,
        ..WsConfig::default()
    }
}

#[tokio::test]
async fn a_peer_that_answers_pings_stays_open() {
    // A generous timeout: a busy test machine must not make a live peer look dead.
    let server = start(quick_pings(Duration::from_secs(10))).await;
    let mut ws = RawWs::connect(server.addr).await;
    for _ in 0..3 {
        let ping = ws.recv().await.unwrap();
        assert_eq!(ping.opcode, Opcode::Ping);
        ws.frame(true, Opcode::Pong, &ping.payload).await;
    }
    assert_eq!(ws.add(40, 2).await, Value::from(42));
}

#[tokio::test]
async fn a_peer_that_never_answers_a_ping_is_closed_with_1011() {
    let server = start(quick_pings(Duration::from_millis(300))).await;
    let mut ws = RawWs::connect(server.addr).await;
    let ping = ws.recv().await.unwrap();
    assert_eq!(ping.opcode, Opcode::Ping);
    assert_eq!(ws.close_code().await, 1011);
}

#[tokio::test]
async fn the_peers_close_is_echoed_with_its_code_then_the_connection_ends() {
    let server = start(WsConfig::default()).await;
    let mut ws = RawWs::connect(server.addr).await;
    assert_eq!(ws.add(1, 1).await, Value::from(2));
    let mut payload = 4001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"done");
    ws.frame(true, Opcode::Close, &payload).await;
    assert_eq!(ws.close_code().await, 4001);
    assert!(
        ws.recv().await.is_none(),
        "the server closes the TCP connection"
    );
}

#[tokio::test]
async fn shutdown_closes_with_1001_and_waits_for_the_peers_close() {
    let shutdown = CancellationToken::new();
    let server = start(WsConfig {
        shutdown: Some(shutdown.clone()),
        ..WsConfig::default()
    })
    .await;
    let mut ws = RawWs::connect(server.addr).await;
    assert_eq!(ws.add(1, 1).await, Value::from(2));
    shutdown.cancel();
    assert_eq!(ws.close_code().await, 1001);
    ws.frame(true, Opcode::Close, &1001u16.to_be_bytes()).await;
    assert!(ws.recv().await.is_none(), "then the connection ends");
}

#[tokio::test]
async fn permessage_deflate_is_declined_and_the_subprotocol_accepted() {
    let server = start(WsConfig::default()).await;
    let headers = format!(
        "{KEY_HEADERS}Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Sec-WebSocket-Protocol: chat, msgpack-rpc\r\n"
    );
    let (mut ws, head) = RawWs::connect_with(server.addr, &headers).await;
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
    assert!(!head.contains("sec-websocket-extensions"), "{head}");
    assert!(
        head.contains("sec-websocket-protocol: msgpack-rpc\r\n"),
        "{head}"
    );
    assert_eq!(ws.add(3, 4).await, Value::from(7));
}

#[tokio::test]
async fn bad_handshakes_are_refused() {
    let server = start(WsConfig::default()).await;
    let no_key = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    let (_s, head, _) = http_head(server.addr, no_key).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let v8 = format!("{KEY_HEADERS}Sec-WebSocket-Version: 8\r\n");
    let (_s, head, _) = http_head(server.addr, &v8).await;
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-version: 13\r\n"),
        "{head}"
    );
    let bad_key = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: c2hvcnQ=\r\n";
    let (_s, head, _) = http_head(server.addr, bad_key).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let no_upgrade = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let (_s, head, _) = http_head(server.addr, no_upgrade).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

/// Runs a peer program to its end; its stdout, parsed as one JSON line.
async fn run_peer(mut command: std::process::Command) -> serde_json::Value {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("could not start the peer program");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the peer failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

fn expected_summary() -> serde_json::Value {
    serde_json::json!({
        "add": 3,
        "echo_small": true,
        "echo_large": true,
        "event": "login",
        "chat_welcome": "Welcome to room-1, alice",
        "chat_joined": "bob",
        "chat_text": "hello from bob",
        "every_message_one_value": true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_calls_streams_and_chats() {
    let server = start(WsConfig::default()).await;
    let url = format!("ws://{}/ws", server.addr);
    let summary = run_peer(peer_programs::python_script("py_ws_rpc.py", &[&url])).await;
    assert_eq!(summary, expected_summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_calls_streams_and_chats() {
    let server = start(WsConfig::default()).await;
    let url = format!("ws://{}/ws", server.addr);
    let modules = peer_programs::repo().join("tests/interop/node_modules/ws");
    assert!(
        modules.exists(),
        "ws is not installed in tests/interop/node_modules: run scripts/test (npm ci)"
    );
    let summary = run_peer(peer_programs::node_script("node_ws_rpc.mjs", &[&url])).await;
    assert_eq!(summary, expected_summary());
}

#[test]
fn buf_helpers_are_exact() {
    // The header helper writes the minimal length encodings the server requires.
    assert_eq!(header(0x82, 5)[..2], [0x82, 0x85]);
    assert_eq!(header(0x82, 126)[..4], [0x82, 0xfe, 0x00, 0x7e]);
    let mut long = &header(0x82, 1 << 16)[..];
    long.advance(2);
    assert_eq!(&long[..8], &(1u64 << 16).to_be_bytes());
}

/// `serve_echo` (the socket loop the benchmark measures) on an in-memory stream: text
/// and binary come back as they went, a fragmented message comes back whole, pings
/// are answered, and a close is echoed.
#[tokio::test]
async fn serve_echo_answers_each_message_with_itself() {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let config = WsConfig {
        ping_interval: None,
        ..WsConfig::default()
    };
    let served = tokio::spawn(msgwire_http::ws::serve_echo(server, config));
    let (mut read, mut write) = tokio::io::split(client);
    let key = Some([1, 2, 3, 4]);
    let mut out = BytesMut::new();
    encode_frame(true, Opcode::Text, "héllo".as_bytes(), key, &mut out).unwrap();
    encode_frame(true, Opcode::Binary, &[7; 5000], key, &mut out).unwrap();
    encode_frame(false, Opcode::Binary, b"ab", key, &mut out).unwrap();
    encode_frame(true, Opcode::Ping, b"p", key, &mut out).unwrap();
    encode_frame(true, Opcode::Continuation, b"cd", key, &mut out).unwrap();
    encode_frame(true, Opcode::Close, &1000u16.to_be_bytes(), key, &mut out).unwrap();
    write.write_all(&out).await.unwrap();
    let mut decoder = WebSocket::client();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    while read.read_buf(&mut buf).await.unwrap() > 0 {
        while let Some(message) = decoder.decode(&mut buf).unwrap() {
            got.push(message);
        }
    }
    // (opcode, length, payload digest) keeps a failure's message short.
    let digest = |m: &Message| {
        let sum = m.payload.iter().map(|b| u64::from(*b)).sum::<u64>();
        (m.opcode, m.payload.len(), sum)
    };
    let expected = [
        Message::text("héllo"),
        Message::binary(vec![7u8; 5000]),
        Message::pong(&b"p"[..]),
        Message::binary(&b"abcd"[..]),
        Message::close(1000, ""),
    ];
    let got: Vec<_> = got.iter().map(digest).collect();
    let expected: Vec<_> = expected.iter().map(digest).collect();
    assert_eq!(got, expected);
    served.await.unwrap();
}
