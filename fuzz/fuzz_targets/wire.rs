//! RPC message decoding in every dialect: any input, whole or byte by byte, gives the
//! same messages and the same outcome, and never panics; every decoded message encodes
//! and decodes back to a message with the same envelope (kind, id, method). (Payload
//! values are not compared: rmpv writes a str holding invalid UTF-8 back as bin.)
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use msgwire_wire::{Dialect, Message, WireCodec, WireError};

/// Messages, then how decoding ended (`None`: cleanly, `Some(fatal)`: an error).
fn decode(
    dialect: Dialect,
    data: &[u8],
    piece: usize,
) -> (Vec<Result<Message, bool>>, Option<bool>) {
    let mut codec = WireCodec::builder(dialect)
        .max_frame_length(4096)
        .max_depth(16)
        .build();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in data.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e @ WireError::Malformed { .. }) => out.push(Err(e.is_fatal())),
                Err(e) => return (out, Some(e.is_fatal())),
            }
        }
    }
    (out, None)
}

/// A message's kind, id and method.
fn envelope(m: &Message) -> (u8, Option<u32>, Option<String>) {
    match m {
        Message::Request { id, method, .. } => (0, Some(*id), Some(method.clone())),
        Message::Response { id, result } => (
            1,
            Some(*id),
            result.as_ref().err().map(|e| e.code.to_string()),
        ),
        Message::Notification { method, .. } => (2, None, Some(method.clone())),
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, piece, data @ ..] = data else {
        return;
    };
    let dialect = Dialect::ALL[usize::from(*selector) % 3];
    let whole = decode(dialect, data, data.len());
    let pieces = decode(dialect, data, usize::from(*piece));
    assert_eq!(
        format!("{whole:?}"),
        format!("{pieces:?}"),
        "whole vs pieces"
    );
    let codec = WireCodec::new(dialect);
    for message in whole.0.iter().flatten() {
        let mut wire = BytesMut::new();
        if codec.encode(message, &mut wire).is_ok() {
            let back = WireCodec::new(dialect).decode(&mut wire);
            let back = back.ok().flatten().map(|m| envelope(&m));
            assert_eq!(back, Some(envelope(message)), "re-encoded {message:?}");
        }
    }
});
