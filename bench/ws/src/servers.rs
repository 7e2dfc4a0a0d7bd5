//! The servers under test, each on a loopback port: an echo server per WebSocket
//! library, written as that library's own echo example does it, msgwire's `/ws`
//! msgpack-rpc path (calling `echo`), and a raw TCP copy (the loopback limit).

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use futures_util::{future, SinkExt, StreamExt, TryStreamExt};
use msgwire_http::ws::{accept_key, serve_echo, upgrade, WsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `msgwire_http::ws::serve_echo`: the `/ws` socket loop, echoing.
    Msgwire,
    /// tokio-tungstenite's echo-server example (`forward`).
    Tungstenite,
    /// fastwebsockets' echo_server example (`FragmentCollector`, `unconstrained`).
    Fastwebsockets,
    /// tokio-websockets' echo_server example (`unconstrained`; `send`, which flushes,
    /// per message).
    TokioWebsockets,
    /// tokio-websockets with tokio-tungstenite's loop (`forward`: flushes only when no
    /// more messages are ready), to compare the framing without the flush per message.
    TokioWebsocketsForward,
    /// msgwire's `GET /ws` through axum: each message a msgpack-rpc `echo` call.
    MsgwireRpc,
    /// The raw bytes copied back: no WebSocket at all.
    RawTcp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Msgwire => "msgwire (ws framing, echo)",
            Kind::Tungstenite => "tokio-tungstenite 0.30",
            Kind::Fastwebsockets => "fastwebsockets 0.10",
            Kind::TokioWebsockets => "tokio-websockets 0.13",
            Kind::TokioWebsocketsForward => "tokio-websockets 0.13 (forward)",
            Kind::MsgwireRpc => "msgwire /ws msgpack-rpc `echo`",
            Kind::RawTcp => "raw TCP copy (loopback limit)",
        }
    }
}

/// Starts `kind` on a fresh loopback port; the handle's abort stops accepting.
pub async fn start(kind: Kind) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = if kind == Kind::MsgwireRpc {
        tokio::spawn(serve_rpc(listener))
    } else {
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                // Errors are not printed: every connection ends in one (the client
                // drops it without a close); the client sees any that matter.
                tokio::spawn(async move {
                    let _ = serve(kind, stream).await;
                });
            }
        })
    };
    Ok((addr, task))
}

async fn serve(kind: Kind, mut stream: TcpStream) -> anyhow::Result<()> {
    match kind {
        Kind::Msgwire => {
            handshake(&mut stream).await?;
            let config = WsConfig {
                ping_interval: None,
                ..WsConfig::default()
            };
            serve_echo(stream, config).await;
        }
        Kind::Tungstenite => {
            let ws = tokio_tungstenite::accept_async(stream).await?;
            let (write, read) = ws.split();
            read.try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
                .forward(write)
                .await?;
        }
        Kind::Fastwebsockets => {
            handshake(&mut stream).await?;
            let ws =
                fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
            let mut ws = fastwebsockets::FragmentCollector::new(ws);
            tokio::task::unconstrained(async move {
                loop {
                    let frame = ws.read_frame().await?;
                    match frame.opcode {
                        fastwebsockets::OpCode::Close => break,
                        fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                            ws.write_frame(frame).await?;
                        }
                        _ => {}
                    }
                }
                Ok::<_, fastwebsockets::WebSocketError>(())
            })
            .await?;
        }
        Kind::TokioWebsockets => {
            tokio::task::unconstrained(async move {
                let (_request, mut server) = tokio_websockets::ServerBuilder::new()
                    .accept(stream)
                    .await?;
                while let Some(Ok(item)) = server.next().await {
                    if item.is_text() || item.is_binary() {
                        server.send(item).await?;
                    }
                }
                Ok::<_, tokio_websockets::Error>(())
            })
            .await?;
        }
        Kind::TokioWebsocketsForward => {
            let (_request, server) = tokio_websockets::ServerBuilder::new()
                .accept(stream)
                .await?;
            let (write, read) = server.split();
            read.try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
                .forward(write)
                .await?;
        }
        Kind::RawTcp => {
            handshake(&mut stream).await?;
            // What a read brings is written back as it is, 256 KiB at a time (as
            // much as the WebSocket servers read at once, and more than most).
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                stream.write_all(&buf[..n]).await?;
            }
        }
        Kind::MsgwireRpc => bail!("served by axum"),
    }
    Ok(())
}

/// The `/ws` route as the `msgwire serve` app has it, on the reference services.
async fn serve_rpc(listener: TcpListener) {
    use axum::serve::ListenerExt;
    let server = msgwire_rpc::Server::new(msgwire_services::router());
    let app = axum::Router::new().route(
        "/ws",
        axum::routing::get(move |request: axum::extract::Request| {
            let server = server.clone();
            async move { upgrade(request, server, WsConfig::default(), ()) }
        }),
    );
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let _ = axum::serve(listener, app).await;
}

/// The server side of the opening handshake, for the libraries that take a stream
/// already upgraded: reads the request head and answers 101 with the accept key.
async fn handshake(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut byte = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await?;
        if n == 0 {
            bail!("closed during the handshake");
        }
        head.extend_from_slice(&byte[..n]);
        if head.len() > 16 * 1024 {
            bail!("handshake too long");
        }
    }
    let text = std::str::from_utf8(&head)?;
    let key = text
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        })
        .context("no Sec-WebSocket-Key")?;
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key.as_bytes())
    );
    stream.write_all(answer.as_bytes()).await?;
    Ok(())
}
