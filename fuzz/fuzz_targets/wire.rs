//! RPC message decoding in every dialect: any input, whole or byte by byte, gives the
//! same messages and the same outcome, and never panics; every decoded message encodes
//! and decodes back to the same message: params and results are kept as the bytes they
//! came in, so they are written back unchanged.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use msgwire_wire::{Dialect, Limits, Message, WireCodec, WireError};

/// Messages, then how decoding ended (`None`: cleanly, `Some(fatal)`: an error).
fn decode(
    dialect: Dialect,
    data: &[u8],
    piece: usize,
) -> (Vec<Result<Message, bool>>, Option<bool>) {
    let Ok(limits) = Limits::new(4096, 16) else {
        return (Vec::new(), None);
    };
    let Ok(mut codec) = WireCodec::with_limits(dialect, limits) else {
        return (Vec::new(), None);
    };
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in data.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e @ WireError::Malformed(_)) => out.push(Err(e.is_fatal())),
                Err(e) => return (out, Some(e.is_fatal())),
            }
        }
    }
    (out, None)
}

/// What survives a round trip: msgpack-rpc and framed-binary carry no error `data`.
fn carried(dialect: Dialect, message: &Message) -> Message {
    let mut message = message.clone();
    if dialect != Dialect::FramedMap {
        match &mut message {
            Message::Response { result: Err(e), .. } | Message::Error { error: e } => e.data = None,
            _ => {}
        }
    }
    message
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
            let back = back.ok().flatten();
            assert_eq!(back, Some(carried(dialect, message)), "re-encoded {message:?}");
        }
    }
});
