//! WebSocket framing behind `tokio_util::codec::Framed`: a client and a server exchange
//! messages over an in-memory pipe smaller than the messages.
#![cfg(feature = "codec")]

use futures::{SinkExt, StreamExt};
use msgwire_frame::{
    codec::FrameCodec,
    websocket::{Message, WebSocket, WebSocketError},
    Error,
};
use tokio_util::codec::Framed;

#[tokio::test]
async fn client_and_server_talk_through_framed() -> Result<(), Error> {
    let (a, b) = tokio::io::duplex(64);
    let mut client = Framed::new(a, FrameCodec::new(WebSocket::client()));
    let mut server = Framed::new(b, FrameCodec::new(WebSocket::server()));

    let big = Message::binary(vec![0x5a; 70_000]);
    let sent = [
        Message::text("hello, server"),
        big.clone(),
        Message::ping(&b"?"[..]),
    ];
    let writer = tokio::spawn(async move {
        for m in &sent {
            client.send(m).await?;
        }
        let reply = client.next().await.transpose()?;
        Ok::<_, Error>(reply)
    });
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(server.next().await.transpose()?);
    }
    assert_eq!(
        got[0].as_ref().and_then(Message::as_text),
        Some("hello, server")
    );
    assert_eq!(got[1].as_ref(), Some(&big));
    assert_eq!(got[2], Some(Message::ping(&b"?"[..])));
    server.send(&Message::close(1000, "bye")).await?;
    let reply = writer
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    assert_eq!(reply.as_ref().and_then(Message::close_code), Some(1000));
    Ok(())
}

#[tokio::test]
async fn a_server_reading_a_server_fails_on_the_unmasked_frame() -> Result<(), Error> {
    let (a, b) = tokio::io::duplex(64);
    let mut wrong = Framed::new(a, FrameCodec::new(WebSocket::server()));
    let mut server = Framed::new(b, FrameCodec::new(WebSocket::server()));
    wrong.send(&Message::text("not masked")).await?;
    match server.next().await {
        Some(Err(Error::WebSocket(WebSocketError::UnmaskedFrame))) => Ok(()),
        other => panic!("expected UnmaskedFrame, got {other:?}"),
    }
}
