//! A test service and helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msgwire_rpc::{Context, Dialect, Message, Router, RpcError, Server, Value};
use msgwire_wire::WireCodec;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

#[path = "../../../../tests/support/peer_programs.rs"]
mod peer_programs;
#[allow(unused_imports)] // only the tests that run a Python peer use it
pub use peer_programs::python_script;

/// An upper bound so that a broken test fails instead of hanging. Never a timing claim.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `f`, failing the test if it takes longer than [`LIMIT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test hung (gave up after the upper bound)")
}

#[derive(Debug, Deserialize)]
pub struct AddParams {
    pub a: i64,
    pub b: i64,
}

/// Gates that handlers wait on until the test opens them, and a channel on which
/// handlers report what happened.
#[derive(Clone)]
pub struct Probe {
    gates: Arc<Mutex<HashMap<u64, Arc<Notify>>>>,
    events: mpsc::UnboundedSender<String>,
}

impl Probe {
    pub fn new() -> (Probe, mpsc::UnboundedReceiver<String>) {
        let (events, rx) = mpsc::unbounded_channel();
        (
            Probe {
                gates: Arc::default(),
                events,
            },
            rx,
        )
    }

    fn gate(&self, key: u64) -> Arc<Notify> {
        Arc::clone(self.gates.lock().unwrap().entry(key).or_default())
    }

    /// Opens gate `key` (now, or for the next waiter).
    pub fn open(&self, key: u64) {
        self.gate(key).notify_one();
    }

    pub fn event(&self, what: impl Into<String>) {
        let _ = self.events.send(what.into());
    }
}

/// Reports `dropped:<key>` when dropped: shows a handler's future was dropped.
pub struct DropReport {
    pub probe: Probe,
    pub key: u64,
}

impl Drop for DropReport {
    fn drop(&mut self) {
        self.probe.event(format!("dropped:{}", self.key));
    }
}

/// The router every test serves:
///
/// * `add(a, b)`, `greet(name)`, `echo(value)` (raw);
/// * `find(id)` — NOT_FOUND for anything but 1;
/// * `boom()` — panics;
/// * `wait(key)` — reports `entered:<key>`, waits for gate `key`, returns key; its
///   future reports `dropped:<key>` when dropped (finished or cancelled);
/// * `hold(key)` — reports `entered:<key>` and never finishes;
/// * `ask_client(n)` — calls the client's `double(n)` and returns it plus one;
/// * `notify_me(text)` — sends the client an `event` notification with text;
/// * notification `log(text)` — reports `log:<text>`.
pub fn test_router(probe: &Probe) -> Router {
    let wait_probe = probe.clone();
    let hold_probe = probe.clone();
    let log_probe = probe.clone();
    Router::new()
        .method(
            "add",
            |p: AddParams| async move { Ok::<_, RpcError>(p.a + p.b) },
        )
        .method("greet", |name: String| async move {
            Ok::<_, RpcError>(format!("Hello, {name}!"))
        })
        .method_raw("echo", |_ctx, params| async move { Ok(params) })
        .method("find", |id: u32| async move {
            if id == 1 {
                Ok("Alice".to_owned())
            } else {
                Err(RpcError::not_found(format!("no user {id}")))
            }
        })
        .method("boom", |()| async move {
            if true {
                panic!("kaboom");
            }
            Ok::<i64, RpcError>(0)
        })
        .method("wait", move |key: u64| {
            let probe = wait_probe.clone();
            async move {
                let _report = DropReport {
                    probe: probe.clone(),
                    key,
                };
                let gate = probe.gate(key);
                probe.event(format!("entered:{key}"));
                gate.notified().await;
                Ok::<_, RpcError>(key)
            }
        })
        .method("hold", move |key: u64| {
            let probe = hold_probe.clone();
            async move {
                let _report = DropReport {
                    probe: probe.clone(),
                    key,
                };
                probe.event(format!("entered:{key}"));
                std::future::pending::<()>().await;
                Ok::<_, RpcError>(key)
            }
        })
        .method_with_context("ask_client", |ctx: Context, n: i64| async move {
            let doubled: i64 = ctx.call_typed("double", &(n,)).await?;
            Ok::<_, RpcError>(doubled + 1)
        })
        .method_with_context("notify_me", |ctx: Context, text: String| async move {
            ctx.notify("event", vec![Value::from(text)]).await?;
            Ok::<_, RpcError>(true)
        })
        .notification("log", move |text: String| {
            let probe = log_probe.clone();
            async move {
                // Give other handlers a chance to run first, if they could.
                tokio::task::yield_now().await;
                probe.event(format!("log:{text}"))
            }
        })
}

/// Serves `server` on a fresh loopback port.
pub async fn serve_tcp(server: Server) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve_tcp(listener).into_future());
    addr
}

/// Waits for the next event, failing after [`LIMIT`].
pub async fn next_event(events: &mut mpsc::UnboundedReceiver<String>) -> String {
    within(events.recv())
        .await
        .expect("the event channel closed")
}

/// A raw connection that speaks one dialect through `WireCodec`, for tests that need
/// to see or shape the bytes.
pub struct RawPeer {
    pub stream: TcpStream,
    pub codec: WireCodec,
    pub buf: bytes::BytesMut,
}

impl RawPeer {
    pub async fn connect(addr: SocketAddr, dialect: Dialect) -> RawPeer {
        RawPeer {
            stream: TcpStream::connect(addr).await.unwrap(),
            codec: WireCodec::new(dialect),
            buf: bytes::BytesMut::new(),
        }
    }

    pub fn encode(&self, messages: &[Message]) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        for m in messages {
            self.codec.encode(m, &mut out).unwrap();
        }
        out.to_vec()
    }

    /// Sends all `messages` in one write.
    pub async fn send(&mut self, messages: &[Message]) {
        let bytes = self.encode(messages);
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// The next message from the server; `None` at end of stream.
    pub async fn recv(&mut self) -> Option<Message> {
        within(async {
            loop {
                if let Some(m) = self.codec.decode(&mut self.buf).unwrap() {
                    return Some(m);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
    }
}

/// Reads until the server closes the connection; returns whether it did (end of
/// stream or reset) within [`LIMIT`].
pub async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let closed = async {
        let mut scratch = [0u8; 1024];
        loop {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(LIMIT, closed).await.is_ok()
}

pub fn request(id: u32, method: &str, params: Vec<Value>) -> Message {
    Message::Request {
        id: id.into(),
        method: method.to_owned(),
        params: Value::Array(params).into(),
    }
}

/// The successful response to call `id` with `result`.
pub fn response(id: u32, result: impl Into<Value>) -> Message {
    Message::Response {
        id: id.into(),
        result: Ok(result.into().into()),
    }
}

/// The cancel notification for call `id`.
pub fn cancel(id: u32) -> Message {
    Message::cancel(&id.into())
}

/// The id and error of an error response, if `message` is one.
pub fn error_of(message: &Option<Message>) -> Option<(u32, &RpcError)> {
    match message {
        Some(Message::Response { id, result: Err(e) }) => Some((id.as_u32()?, e)),
        _ => None,
    }
}

/// The id of a response, if `message` is one.
pub fn response_id(message: &Option<Message>) -> Option<u32> {
    match message {
        Some(Message::Response { id, .. }) => id.as_u32(),
        _ => None,
    }
}
