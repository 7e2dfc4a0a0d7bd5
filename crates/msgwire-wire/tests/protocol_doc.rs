//! The byte examples in docs/PROTOCOL.md are what the codec writes and reads.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use msgwire_wire::stream::{Direction, StreamMessage};
use msgwire_wire::{
    CallId, Code, Dialect, Message, RawValue, RpcError, Value, WireCodec, DEFAULT_WINDOW_BYTES,
    DEFAULT_WINDOW_ITEMS, PING_METHOD,
};

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

// ---- section 10: streams ---------------------------------------------------------

/// Section 10 of the doc, to the end.
fn streams_section() -> &'static str {
    let start = DOC.find("## 10. Streams").unwrap();
    &DOC[start..]
}

/// The hex bytes the doc shows with `note`: on the line in section 10 holding `note`,
/// or, when that line holds no bytes, on the line before it. Exactly one such line in
/// section 10 shows bytes (the worked examples show the same messages without them).
fn shown_with(note: &str) -> String {
    let hex_of = |line: &str| {
        line.split_whitespace()
            .take_while(|w| w.len() == 2 && u8::from_str_radix(w, 16).is_ok())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let lines: Vec<&str> = streams_section().lines().collect();
    let shown: Vec<String> = (1..lines.len())
        .filter(|&i| lines[i].contains(note))
        .map(|i| match hex_of(lines[i]) {
            here if here.is_empty() => hex_of(lines[i - 1]),
            here => here,
        })
        .filter(|shown| !shown.is_empty())
        .collect();
    assert_eq!(shown.len(), 1, "section 10 shows {note} as {shown:?}");
    shown.into_iter().next().unwrap()
}

fn unhex(shown: &str) -> BytesMut {
    shown
        .split(' ')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect::<Vec<_>>()
        .as_slice()
        .into()
}

/// The doc's bytes `shown` decode, in `dialect`, to a notification that reads as
/// `expected`, and `expected` is written as exactly these bytes.
fn stream_example(dialect: Dialect, shown: &str, expected: StreamMessage) {
    let codec = WireCodec::new(dialect);
    let mut wire = unhex(shown);
    let decoded = WireCodec::new(dialect).decode(&mut wire).unwrap();
    assert!(wire.is_empty(), "{dialect}: bytes left after {shown}");
    let Some(Message::Notification { method, params }) = decoded else {
        panic!("{dialect}: {shown} is not a notification: {decoded:?}")
    };
    assert_eq!(
        StreamMessage::parse(&method, &params),
        Some(Ok(expected.clone())),
        "{dialect}: {shown}"
    );
    let mut written = BytesMut::new();
    codec.encode(&expected.to_message(), &mut written).unwrap();
    assert_eq!(hex(&written), shown, "{dialect}: {expected:?}");
}

fn value(v: impl Into<Value>) -> RawValue {
    RawValue::from(v.into())
}

#[test]
fn stream_examples_in_msgpack_rpc() {
    use Direction::{FromCallee, FromCaller};
    let rpc = Dialect::MsgpackRpc;
    stream_example(
        rpc,
        &shown_with("[2, \"$/item\", [1, 42]]"),
        StreamMessage::Item {
            direction: FromCallee,
            id: 1u32.into(),
            value: value(42),
        },
    );
    stream_example(
        rpc,
        &shown_with("[2, \"$/item_error\", [1, 15, \"bad chunk\"]]"),
        StreamMessage::ItemError {
            direction: FromCallee,
            id: 1u32.into(),
            error: RpcError::new(Code::DataLoss, "bad chunk"),
        },
    );
    stream_example(
        rpc,
        &shown_with("[2, \"$/credit\", [1, 32, 131168]]"),
        StreamMessage::Credit {
            direction: FromCaller,
            id: 1u32.into(),
            items: 32,
            bytes: 131_168,
        },
    );
    stream_example(
        rpc,
        &shown_with("[2, \"$/send\", [2, 40]]"),
        StreamMessage::Item {
            direction: FromCaller,
            id: 2u32.into(),
            value: value(40),
        },
    );
    stream_example(
        rpc,
        &shown_with("[2, \"$/send_end\", [2]]"),
        StreamMessage::End { id: 2u32.into() },
    );
    stream_example(
        rpc,
        &shown_with("[2, \"$/send_credit\", [2, 32, 32]]"),
        StreamMessage::Credit {
            direction: FromCallee,
            id: 2u32.into(),
            items: 32,
            bytes: 32,
        },
    );
}

#[test]
fn ping_example() {
    let ping = shown_with("[0, 9, \"$/ping\", []]");
    let mut wire = unhex(&ping);
    let request = WireCodec::new(Dialect::MsgpackRpc)
        .decode(&mut wire)
        .unwrap();
    assert_eq!(request, Some(msgwire_wire::stream::ping(9u32.into())));
    let Some(Message::Request { method, .. }) = &request else {
        unreachable!()
    };
    assert_eq!(method, PING_METHOD);
    documented(Dialect::MsgpackRpc, msgwire_wire::stream::ping(9u32.into()));
    let answer = Message::Response {
        id: 9u32.into(),
        result: Ok(RawValue::nil()),
    };
    assert_eq!(shown_with("[1, 9, nil, nil]"), "94 01 09 c0 c0");
    documented(Dialect::MsgpackRpc, answer);
}

#[test]
fn stream_example_in_framed_binary() {
    stream_example(
        Dialect::FramedBinary,
        &dump_after("framed-binary: an item `\"ok\"` of the call with id 7", 7),
        StreamMessage::Item {
            direction: Direction::FromCallee,
            id: 7u32.into(),
            value: value("ok"),
        },
    );
}

#[test]
fn stream_example_in_framed_map_with_a_str_id() {
    stream_example(
        Dialect::FramedMap,
        &dump_after("framed-map: credit for the seed's call with the str id", 5),
        StreamMessage::Credit {
            direction: Direction::FromCaller,
            id: CallId::string("req-uuid-001").unwrap(),
            items: 32,
            bytes: 1024,
        },
    );
}

#[test]
fn the_stream_methods_table_names_every_stream_method_and_its_direction() {
    use msgwire_wire::stream::*;
    let section = streams_section();
    let shown = [
        (ITEM_METHOD, "callee", "[id, value]"),
        (ITEM_ERROR_METHOD, "callee", "[id, code, message]"),
        (CREDIT_METHOD, "caller", "[id, items, bytes]"),
        (SEND_METHOD, "caller", "[id, value]"),
        (SEND_ERROR_METHOD, "caller", "[id, code, message]"),
        (SEND_END_METHOD, "caller", "[id]"),
        (SEND_CREDIT_METHOD, "callee", "[id, items, bytes]"),
    ];
    for (method, sender, params) in shown {
        let row = format!("| `{method}` | {sender} | `{params}` |");
        assert!(section.contains(&row), "section 10 lacks the row {row}");
        assert!(is_stream_method(method), "{method}");
        // The sender in the table is the one the codec reads the message as from.
        let id = Value::from(1);
        let args = match params {
            "[id, value]" => vec![id, Value::Nil],
            "[id, code, message]" => vec![id, 2.into(), "m".into()],
            "[id, items, bytes]" => vec![id, 1.into(), 1.into()],
            _ => vec![id],
        };
        let parsed = StreamMessage::parse(method, &value(Value::Array(args)))
            .unwrap()
            .unwrap();
        let direction = match parsed {
            StreamMessage::Item { direction, .. }
            | StreamMessage::ItemError { direction, .. }
            | StreamMessage::Credit { direction, .. } => direction,
            StreamMessage::End { .. } => Direction::FromCaller,
        };
        let expected = if sender == "callee" {
            Direction::FromCallee
        } else {
            Direction::FromCaller
        };
        assert_eq!(direction, expected, "{method}");
        assert_eq!(
            StreamMessage::parse(method, &value(Value::Array(vec![]))).map(|p| p.is_err()),
            Some(true),
            "{method} without params is malformed"
        );
    }
    for other in [msgwire_wire::CANCEL_METHOD, PING_METHOD] {
        assert!(section.contains(&format!("| `{other}` |")), "{other}");
        assert!(
            !is_stream_method(other),
            "{other} is no stream notification"
        );
    }
}

#[test]
fn the_windows_and_sizes_in_section_10_are_the_codes() {
    use msgwire_wire::stream::serialize_item;
    let section = streams_section();
    assert!(section.contains(&format!(
        "window of {DEFAULT_WINDOW_ITEMS} items and {} MiB",
        DEFAULT_WINDOW_BYTES >> 20
    )));
    assert!(section.contains(&format!(
        "{} items, or {} KiB of item sizes",
        DEFAULT_WINDOW_ITEMS / 2,
        DEFAULT_WINDOW_BYTES / 2 / 1024
    )));
    // `[1, "ab"]` costs 3 bytes: `a2 61 62`.
    assert!(section.contains("`[1, \"ab\"]` costs 3 bytes: `a2 61 62`"));
    let (params, len) = serialize_item(&1u32.into(), "ab").unwrap();
    assert_eq!(
        (hex(params.as_bytes()), len),
        ("92 01 a2 61 62".to_owned(), 3)
    );
    // The download's chunks: a bin of 4096 bytes costs 4099; the grants of 10.7.
    let chunk = value(Value::Binary(vec![0; 4096]));
    assert_eq!(hex(&chunk.as_bytes()[..3]), "c5 10 00");
    let size = chunk.len() as u64;
    assert_eq!(size, 4099);
    assert!(section.contains(&format!("[2, \"$/credit\", [1, 32, {}]]", 32 * size)));
    let error_size = "bad chunk".len() as u64;
    assert!(section.contains(&format!(
        "[2, \"$/credit\", [1, 32, {}]]",
        31 * size + error_size
    )));
    assert!(section.contains(&format!("[1, 1, nil, {}]", 99 * 4096)));
    // The grant that turns flow control off reads as the largest credit.
    let unlimited = value(Value::Array(vec![
        1.into(),
        u32::MAX.into(),
        u64::MAX.into(),
    ]));
    assert!(section.contains(&format!("`[id, {}, {}]`", u32::MAX, u64::MAX)));
    assert_eq!(
        StreamMessage::parse(msgwire_wire::stream::CREDIT_METHOD, &unlimited),
        Some(Ok(StreamMessage::Credit {
            direction: Direction::FromCaller,
            id: 1u32.into(),
            items: u32::MAX,
            bytes: u64::MAX,
        }))
    );
    let too_many = value(Value::Array(vec![
        1.into(),
        (u64::from(u32::MAX) + 1).into(),
        0.into(),
    ]));
    assert!(matches!(
        StreamMessage::parse(msgwire_wire::stream::CREDIT_METHOD, &too_many),
        Some(Err(_))
    ));
}
