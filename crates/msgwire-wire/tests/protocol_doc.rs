//! The byte examples in docs/PROTOCOL.md are what the codec writes and reads.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use msgwire_wire::{CallId, Code, Dialect, Message, RpcError, Value, WireCodec};

const DOC: &str = include_str!("../../../docs/PROTOCOL.md");

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Encodes `message`, checks the doc shows exactly these bytes, and decodes them back.
fn documented(dialect: Dialect, message: Message) {
    let mut codec = WireCodec::new(dialect);
    let mut wire = BytesMut::new();
    codec.encode(&message, &mut wire).unwrap();
    let shown = hex(&wire);
    assert!(
        DOC.contains(&shown),
        "docs/PROTOCOL.md does not show {dialect} {message:?} as {shown}"
    );
    assert_eq!(codec.decode(&mut wire).unwrap(), Some(message));
}

/// The doc's multi-line dumps: every line's hex bytes, concatenated.
fn dump_after(marker: &str, lines: usize) -> String {
    let start = DOC.find(marker).unwrap();
    DOC[start..]
        .lines()
        .skip(1)
        .take(lines)
        .flat_map(|l| {
            l.split_whitespace()
                .take_while(|w| w.len() == 2 && u8::from_str_radix(w, 16).is_ok())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn msgpack_rpc_examples() {
    let add = Value::Array(vec![1.into(), 2.into()]);
    documented(
        Dialect::MsgpackRpc,
        Message::Request {
            id: 1u32.into(),
            method: "add".into(),
            params: add.into(),
        },
    );
    documented(
        Dialect::MsgpackRpc,
        Message::Response {
            id: 1u32.into(),
            result: Ok(Value::from(3).into()),
        },
    );
    documented(
        Dialect::MsgpackRpc,
        Message::Response {
            id: 2u32.into(),
            result: Err(RpcError::new(Code::NotFound, "user 99 not found")),
        },
    );
    documented(Dialect::MsgpackRpc, Message::cancel(&5u32.into()));
}

#[test]
fn framed_binary_example() {
    documented(
        Dialect::FramedBinary,
        Message::Response {
            id: 7u32.into(),
            result: Ok(Value::from(3).into()),
        },
    );
    let mut wire = BytesMut::new();
    let add = Message::Request {
        id: 7u32.into(),
        method: "add".into(),
        params: Value::Array(vec![1.into(), 2.into()]).into(),
    };
    WireCodec::new(Dialect::FramedBinary)
        .encode(&add, &mut wire)
        .unwrap();
    assert_eq!(dump_after("Example: `add(1, 2)` with id 7", 7), hex(&wire));
}

#[test]
fn framed_map_example() {
    let mut wire = BytesMut::new();
    let greet = Message::Request {
        id: 3u32.into(),
        method: "greet".into(),
        params: Value::Array(vec!["Bob".into()]).into(),
    };
    WireCodec::new(Dialect::FramedMap)
        .encode(&greet, &mut wire)
        .unwrap();
    assert_eq!(
        dump_after("Example: `greet(\"Bob\")` with id 3", 5),
        hex(&wire)
    );
}

#[test]
fn framed_map_string_id_example() {
    let id = CallId::string("req-uuid-001").unwrap();
    let request = Message::Request {
        id: id.clone(),
        method: "getUser".into(),
        params: Value::Map(vec![("id".into(), 123.into())]).into(),
    };
    let answer = Message::Response {
        id,
        result: Err(RpcError::new(Code::NotFound, "user 123 not found")),
    };
    let codec = WireCodec::new(Dialect::FramedMap);
    let mut wire = BytesMut::new();
    codec.encode(&request, &mut wire).unwrap();
    codec.encode(&answer, &mut wire).unwrap();
    assert_eq!(
        dump_after("The seed's own request, with a str id", 14),
        hex(&wire)
    );
}

#[test]
fn errors_for_no_call_use_each_dialects_own_messages() {
    let error = Message::Error {
        error: RpcError::invalid_argument("x"),
    };
    let shown = [
        (Dialect::MsgpackRpc, "[2, \"$/error\", [code, message]]"),
        (Dialect::FramedMap, "\"id\": nil}"),
    ];
    for (dialect, text) in shown {
        assert!(DOC.contains(text), "{dialect}: {text}");
        let mut wire = BytesMut::new();
        WireCodec::new(dialect).encode(&error, &mut wire).unwrap();
        assert_eq!(
            WireCodec::new(dialect).decode(&mut wire).unwrap(),
            Some(error.clone())
        );
    }
}
