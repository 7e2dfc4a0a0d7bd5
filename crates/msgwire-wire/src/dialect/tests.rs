use bytes::BytesMut;
use rmpv::Value;

use super::*;
use crate::{
    CallId, Code, Limits, Malformed, MalformedReason, Message, MessageKind, RawValue, RpcError,
    WireCodec, WireError,
};

fn req(id: u32, method: &str, params: Vec<Value>) -> Message {
    Message::Request {
        id: id.into(),
        method: method.into(),
        params: Value::Array(params).into(),
    }
}

fn ok(id: u32, value: Value) -> Message {
    Message::Response {
        id: id.into(),
        result: Ok(value.into()),
    }
}

fn err(id: u32, error: RpcError) -> Message {
    Message::Response {
        id: id.into(),
        result: Err(error),
    }
}

fn note(method: &str, params: Value) -> Message {
    Message::Notification {
        method: method.into(),
        params: params.into(),
    }
}

fn round_trip(dialect: Dialect, message: &Message) -> BytesMut {
    let mut codec = WireCodec::new(dialect);
    let mut wire = BytesMut::new();
    codec.encode(message, &mut wire).unwrap();
    let bytes = wire.clone();
    assert_eq!(
        codec.decode(&mut wire).unwrap().as_ref(),
        Some(message),
        "{dialect}"
    );
    assert!(wire.is_empty());
    bytes
}

#[test]
fn msgpack_rpc_bytes() {
    let wire = round_trip(
        Dialect::MsgpackRpc,
        &req(1, "add", vec![1.into(), 2.into()]),
    );
    assert_eq!(&wire[..], b"\x94\x00\x01\xa3add\x92\x01\x02");
    let ok = ok(1, 3.into());
    assert_eq!(
        &round_trip(Dialect::MsgpackRpc, &ok)[..],
        b"\x94\x01\x01\xc0\x03"
    );
    let err = err(2, RpcError::new(Code::NotFound, "no"));
    assert_eq!(
        &round_trip(Dialect::MsgpackRpc, &err)[..],
        b"\x94\x01\x02\x92\x05\xa2no\xc0"
    );
    let note = note("n", Value::Array(vec![]));
    assert_eq!(
        &round_trip(Dialect::MsgpackRpc, &note)[..],
        b"\x93\x02\xa1n\x90"
    );
}

#[test]
fn framed_binary_bytes() {
    let wire = round_trip(
        Dialect::FramedBinary,
        &req(7, "add", vec![1.into(), 2.into()]),
    );
    let mut expect = vec![0, 0, 0, 0, 1, 0, 0, 0, 7];
    expect.extend_from_slice(b"\x82\xa6method\xa3add\xa6params\x92\x01\x02");
    let len = (expect.len() - 4) as u32;
    expect[..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(&wire[..], &expect[..]);
    let err = err(7, RpcError::new(Code::InvalidArgument, "bad"));
    round_trip(Dialect::FramedBinary, &err);
    round_trip(Dialect::FramedBinary, &ok(9, Value::from("x")));
    round_trip(Dialect::FramedBinary, &Message::cancel(&7u32.into()));
}

#[test]
fn framed_map_bytes() {
    let wire = round_trip(Dialect::FramedMap, &req(3, "greet", vec!["Bob".into()]));
    let body = b"\x83\xa6method\xa5greet\xa6params\x91\xa3Bob\xa2id\x03";
    assert_eq!(&wire[..4], &(body.len() as u32).to_be_bytes());
    assert_eq!(&wire[4..], &body[..]);
    let err = err(3, RpcError::new(Code::Unimplemented, "no such method: x"));
    round_trip(Dialect::FramedMap, &err);
    round_trip(Dialect::FramedMap, &note("n", Value::Map(vec![])));
}

#[test]
fn named_params_survive_every_dialect() {
    let named = Message::Request {
        id: 1u32.into(),
        method: "add".into(),
        params: Value::Map(vec![("a".into(), 1.into()), ("b".into(), 2.into())]).into(),
    };
    for d in Dialect::ALL {
        round_trip(d, &named);
    }
}

#[test]
fn detection() {
    assert_eq!(detect(b""), Detected::NeedMore);
    assert_eq!(detect(b"\x94"), Detected::Dialect(Dialect::MsgpackRpc));
    assert_eq!(detect(b"\x93"), Detected::Dialect(Dialect::MsgpackRpc));
    assert_eq!(detect(b"\x00\x00\x00"), Detected::NeedMore);
    assert_eq!(
        detect(b"\x00\x00\x00\x10\x83"),
        Detected::Dialect(Dialect::FramedMap)
    );
    assert_eq!(
        detect(b"\x00\x00\x00\x10\x01"),
        Detected::Dialect(Dialect::FramedBinary)
    );
    assert_eq!(detect(b"\x00\x00\x00\x10\x07"), Detected::Unknown);
    assert_eq!(detect(b"GET / HTTP/1.1\r\n"), Detected::Unknown);
    for d in Dialect::ALL {
        let wire = round_trip(d, &req(1, "m", vec![]));
        assert_eq!(detect(&wire), Detected::Dialect(d));
    }
}

#[test]
fn string_and_integer_ids_are_echoed_exactly() {
    let uuid = CallId::string("req-uuid-001").unwrap();
    let ids = [
        uuid.clone(),
        CallId::from(0u32),
        CallId::from(u64::MAX),
        CallId::from(-5i64),
        CallId::from(i64::MIN),
        CallId::string("").unwrap(),
    ];
    for dialect in [Dialect::MsgpackRpc, Dialect::FramedMap] {
        for id in &ids {
            let request = Message::Request {
                id: id.clone(),
                method: "getUser".into(),
                params: Value::Map(vec![("id".into(), 123.into())]).into(),
            };
            round_trip(dialect, &request);
            let response = Message::Response {
                id: id.clone(),
                result: Ok(Value::from("Alice").into()),
            };
            round_trip(dialect, &response);
        }
    }
    // The seed's own example, as Python writes it: {"method", "params", "id"} in that order.
    let body = b"\x83\xa6method\xa7getUser\xa6params\x81\xa2id\x7b\xa2id\xacreq-uuid-001";
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
    wire.extend_from_slice(body);
    let mut codec = WireCodec::new(Dialect::FramedMap);
    match codec.decode(&mut wire).unwrap() {
        Some(Message::Request { id, method, params }) => {
            assert_eq!(id, uuid);
            assert_eq!(method, "getUser");
            assert_eq!(
                params.to_value().unwrap(),
                Value::Map(vec![("id".into(), 123.into())])
            );
        }
        other => panic!("{other:?}"),
    }
    // The answer carries a str id back, as a str.
    let mut out = BytesMut::new();
    codec
        .encode(
            &Message::Response {
                id: uuid,
                result: Ok(RawValue::nil()),
            },
            &mut out,
        )
        .unwrap();
    assert!(out.windows(13).any(|w| w == b"\xacreq-uuid-001"));
    // framed-binary ids are u32 by construction: anything else cannot be written.
    let mut out = BytesMut::new();
    let e = WireCodec::new(Dialect::FramedBinary)
        .encode(
            &Message::Response {
                id: CallId::string("x").unwrap(),
                result: Ok(RawValue::nil()),
            },
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(e, WireError::Encode(crate::EncodeError::IdNotU32(_))),
        "{e}"
    );
    assert!(out.is_empty());
}

#[test]
fn neovim_error_shape_and_strings_are_read() {
    // Neovim answers errors as [type, message] with type 0 (exception) or 1 (validation).
    let mut codec = WireCodec::new(Dialect::MsgpackRpc);
    let mut wire = BytesMut::from(&b"\x94\x01\x05\x92\x00\xa4oops\xc0"[..]);
    match codec.decode(&mut wire).unwrap() {
        Some(Message::Response { id, result: Err(e) }) => {
            assert_eq!(id, 5u32);
            assert_eq!(e.message, "oops");
            assert_eq!(e.code, Code::Other(0));
        }
        other => panic!("{other:?}"),
    }
    let mut wire = BytesMut::from(&b"\x94\x01\x05\xa4oops\xc0"[..]);
    match codec.decode(&mut wire).unwrap() {
        Some(Message::Response { result: Err(e), .. }) => {
            assert_eq!((e.code, e.message.as_str()), (Code::Unknown, "oops"))
        }
        other => panic!("{other:?}"),
    }
}

/// Decodes one frame of `dialect` whose payload (after any length prefix) is `payload`.
fn decode_payload(dialect: Dialect, payload: &[u8]) -> Result<Option<Message>, WireError> {
    let mut wire = BytesMut::new();
    if dialect != Dialect::MsgpackRpc {
        wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    }
    wire.extend_from_slice(payload);
    let result = WireCodec::new(dialect).decode(&mut wire);
    if !matches!(result, Err(WireError::Stream { .. })) {
        assert!(wire.is_empty(), "the frame is consumed");
    }
    result
}

fn malformed(dialect: Dialect, payload: &[u8]) -> Malformed {
    match decode_payload(dialect, payload) {
        Err(WireError::Malformed(m)) => m,
        other => panic!("{dialect} {payload:02x?}: {other:?}"),
    }
}

#[test]
fn malformed_frames_say_who_can_be_answered() {
    use MessageKind::*;
    let cases: &[(Dialect, &[u8], MessageKind, Option<u32>)] = &[
        // [0, 9, 42, []]: method not a str: answer 9.
        (
            Dialect::MsgpackRpc,
            b"\x94\x00\x09\x2a\x90",
            Request,
            Some(9),
        ),
        // params neither array nor map.
        (
            Dialect::MsgpackRpc,
            b"\x94\x00\x01\xa1m\x05",
            Request,
            Some(1),
        ),
        // [0, 9, "m"]: a request of the wrong size, id readable.
        (Dialect::MsgpackRpc, b"\x93\x00\x09\xa1m", Request, Some(9)),
        // [0, [], "m", []]: an id that is no id.
        (Dialect::MsgpackRpc, b"\x94\x00\x90\xa1m\x90", Request, None),
        // [1, 5, nil]: a response of the wrong size: fail call 5.
        (Dialect::MsgpackRpc, b"\x93\x01\x05\xc0", Response, Some(5)),
        // A scalar; [5]; [2, 1, 2, 3].
        (Dialect::MsgpackRpc, b"\x01", Unknown, None),
        (Dialect::MsgpackRpc, b"\x91\x05", Unknown, None),
        (
            Dialect::MsgpackRpc,
            b"\x94\x02\x01\x02\x03",
            Notification,
            None,
        ),
        // framed-binary shorter than its header; an unknown type.
        (Dialect::FramedBinary, b"\x01\x00\x00", Request, None),
        (Dialect::FramedBinary, b"", Unknown, None),
        (
            Dialect::FramedBinary,
            b"\x07\x00\x00\x00\x01\x80",
            Unknown,
            None,
        ),
        // A framed-binary request with an invalid body: its id is in the header.
        (
            Dialect::FramedBinary,
            b"\x01\x00\x00\x00\x04\xc1",
            Request,
            Some(4),
        ),
        (
            Dialect::FramedBinary,
            b"\x01\x00\x00\x00\x04\x81\xa6method\x01",
            Request,
            Some(4),
        ),
        // A response with an invalid body fails its call.
        (
            Dialect::FramedBinary,
            b"\x02\x00\x00\x00\x04\xc1",
            Response,
            Some(4),
        ),
        // framed-map: not a map; invalid MessagePack; trailing bytes.
        (Dialect::FramedMap, b"\x90", Unknown, None),
        (Dialect::FramedMap, b"\x81\xa1m\xc1", Unknown, None),
        (Dialect::FramedMap, b"\x80\x01", Unknown, None),
        // A bad id: nobody to answer but "nil".
        (
            Dialect::FramedMap,
            b"\x82\xa6method\xa1m\xa2id\x91\x01",
            Request,
            None,
        ),
        (
            Dialect::FramedMap,
            b"\x82\xa6method\xa1m\xa2id\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00",
            Request,
            None,
        ),
        // No method, an id: answer that id.
        (
            Dialect::FramedMap,
            b"\x82\xa6params\x90\xa2id\x07",
            Request,
            Some(7),
        ),
        // Neither a method nor an id.
        (Dialect::FramedMap, b"\x81\xa6params\x90", Unknown, None),
        // A method that is not a str, with an id.
        (
            Dialect::FramedMap,
            b"\x82\xa6method\x05\xa2id\x07",
            Request,
            Some(7),
        ),
        // A response with a nil id and no error.
        (
            Dialect::FramedMap,
            b"\x82\xa6result\x01\xa2id\xc0",
            Response,
            None,
        ),
    ];
    for (dialect, payload, kind, id) in cases {
        let m = malformed(*dialect, payload);
        assert_eq!(m.kind, *kind, "{dialect} {payload:02x?}: {m}");
        assert_eq!(m.id, id.map(CallId::from), "{dialect} {payload:02x?}: {m}");
    }
    // A str id of 255 bytes is an id; one of 257 is not.
    let mut body = b"\x82\xa6method\xa1m\xa2id\xd9\xff".to_vec();
    body.extend_from_slice(&[b'a'; 255]);
    assert!(matches!(
        decode_payload(Dialect::FramedMap, &body),
        Ok(Some(Message::Request { .. }))
    ));
    let mut body = b"\x82\xa6method\xa1m\xa2id\xda\x01\x01".to_vec();
    body.extend_from_slice(&[b'a'; 257]);
    let m = malformed(Dialect::FramedMap, &body);
    assert!(matches!(m.reason, MalformedReason::BadId), "{m}");
}

#[test]
fn the_stream_goes_on_after_a_malformed_frame() {
    let mut codec = WireCodec::new(Dialect::MsgpackRpc);
    let mut wire = BytesMut::from(&b"\x94\x00\x09\x2a\x90\x93\x02\xa1n\x90"[..]);
    assert!(matches!(
        codec.decode(&mut wire),
        Err(WireError::Malformed(_))
    ));
    assert_eq!(
        codec.decode(&mut wire).unwrap(),
        Some(note("n", Value::Array(vec![])))
    );
    let mut codec = WireCodec::new(Dialect::FramedMap);
    let mut wire = BytesMut::from(&b"\x00\x00\x00\x01\xc1"[..]);
    let good = req(1, "m", vec![]);
    codec.encode(&good, &mut wire).unwrap();
    assert!(matches!(
        codec.decode(&mut wire),
        Err(WireError::Malformed(_))
    ));
    assert_eq!(codec.decode(&mut wire).unwrap(), Some(good));
}

#[test]
fn an_error_that_belongs_to_no_call() {
    let error = RpcError::invalid_argument("a map with neither \"method\" nor \"id\"");
    let message = Message::Error {
        error: error.clone(),
    };
    for dialect in Dialect::ALL {
        let wire = round_trip(dialect, &message);
        if dialect == Dialect::FramedMap {
            // As JSON-RPC answers what it cannot read: a response with a nil id.
            assert!(wire.ends_with(b"\xa2id\xc0"), "{wire:02x?}");
        } else {
            assert!(wire.windows(8).any(|w| w == b"\xa7$/error"), "{wire:02x?}");
        }
    }
}

#[test]
fn nesting_is_counted_inside_params_and_answered_when_too_deep() {
    let limits = Limits::new(1 << 20, 4).unwrap();
    let nested = |depth: usize| {
        let mut v = Value::from(1);
        for _ in 0..depth {
            v = Value::Array(vec![v]);
        }
        v
    };
    for dialect in Dialect::ALL {
        // Params 4 deep are within the limit of 4.
        let fits = Message::Request {
            id: 3u32.into(),
            method: "m".into(),
            params: nested(4).into(),
        };
        let mut wire = BytesMut::new();
        WireCodec::new(dialect).encode(&fits, &mut wire).unwrap();
        let mut codec = WireCodec::with_limits(dialect, limits).unwrap();
        assert_eq!(codec.decode(&mut wire).unwrap(), Some(fits), "{dialect}");
        // 5 deep is answered with INVALID_ARGUMENT, and the stream goes on.
        let deep = Message::Request {
            id: 3u32.into(),
            method: "m".into(),
            params: nested(5).into(),
        };
        WireCodec::new(dialect).encode(&deep, &mut wire).unwrap();
        WireCodec::new(dialect)
            .encode(&req(4, "next", vec![]), &mut wire)
            .unwrap();
        match codec.decode(&mut wire) {
            Err(WireError::Malformed(m)) => {
                assert_eq!(m.request_id(), Some(&CallId::from(3u32)), "{dialect}");
                assert!(
                    matches!(m.reason, MalformedReason::TooDeep { max: 4 }),
                    "{dialect} {m}"
                );
            }
            other => panic!("{dialect}: {other:?}"),
        }
        assert_eq!(
            codec.decode(&mut wire).unwrap(),
            Some(req(4, "next", vec![])),
            "{dialect}"
        );
        // Too deep even to measure: framed-binary still answers its id (in the header);
        // framed-map cannot read an id that comes after such a value, so the answer goes
        // to id nil; msgpack-rpc answers the id it read first, and must close.
        let bomb = Message::Request {
            id: 6u32.into(),
            method: "m".into(),
            params: nested(200).into(),
        };
        WireCodec::new(dialect).encode(&bomb, &mut wire).unwrap();
        match codec.decode(&mut wire) {
            Err(WireError::Malformed(m)) if dialect == Dialect::FramedBinary => {
                assert_eq!(m.request_id(), Some(&CallId::from(6u32)), "{dialect}")
            }
            Err(WireError::Malformed(m)) if dialect == Dialect::FramedMap => {
                assert_eq!(m.id, None);
                // The id may have followed: not a notification, just a message.
                assert_eq!(m.kind, MessageKind::Unknown, "{m}");
                assert!(matches!(m.reason, MalformedReason::TooDeep { .. }), "{m}");
                assert!(wire.is_empty(), "the whole frame is consumed");
            }
            Err(WireError::Stream { request, error }) if dialect == Dialect::MsgpackRpc => {
                assert_eq!(request, Some(CallId::from(6u32)));
                // The peer is told the limit it was given, not how far the framing looks.
                assert!(error.to_string().contains("deeper than 4"), "{error}");
            }
            other => panic!("{dialect}: {other:?}"),
        }
    }
}

#[test]
fn a_frame_over_the_limit_names_its_request_where_it_can() {
    let limits = Limits::new(100, 8).unwrap();
    let big = req(9, "m", vec![Value::Binary(vec![0; 200])]);
    for (dialect, salvaged) in [
        (Dialect::MsgpackRpc, Some(CallId::from(9u32))),
        (Dialect::FramedBinary, Some(CallId::from(9u32))),
        (Dialect::FramedMap, None),
    ] {
        let mut wire = BytesMut::new();
        WireCodec::new(dialect).encode(&big, &mut wire).unwrap();
        let mut codec = WireCodec::with_limits(dialect, limits).unwrap();
        match codec.decode(&mut wire) {
            Err(e @ WireError::Stream { .. }) => {
                assert!(e.is_fatal());
                let WireError::Stream { request, .. } = e else {
                    unreachable!()
                };
                assert_eq!(request, salvaged, "{dialect}");
            }
            other => panic!("{dialect}: {other:?}"),
        }
    }
}

#[test]
fn limits_are_fatal_frame_errors() {
    let mut codec =
        WireCodec::with_limits(Dialect::FramedMap, Limits::new(100, 8).unwrap()).unwrap();
    let mut wire = BytesMut::from(&b"\x00\x00\x01\x00"[..]);
    let err = codec.decode(&mut wire).unwrap_err();
    assert!(err.is_fatal(), "{err}");
    // A nesting bomb with no length prefix cannot be measured.
    let mut codec =
        WireCodec::with_limits(Dialect::MsgpackRpc, Limits::new(1 << 20, 4).unwrap()).unwrap();
    let mut wire = BytesMut::from(&[0x91u8; 100][..]);
    assert!(codec.decode(&mut wire).unwrap_err().is_fatal());
}

#[test]
fn encode_over_the_limit_writes_nothing() {
    let codec = WireCodec::with_limits(Dialect::FramedMap, Limits::new(10, 8).unwrap()).unwrap();
    let mut wire = BytesMut::from(&b"keep"[..]);
    let big = note(&"x".repeat(50), Value::Nil);
    assert!(codec.encode(&big, &mut wire).is_err());
    assert_eq!(&wire[..], b"keep");
}

#[test]
fn cancel_notification_round_trips() {
    for id in [
        CallId::from(42u32),
        CallId::string("req-7").unwrap(),
        CallId::from(-1i64),
    ] {
        let m = Message::cancel(&id);
        assert_eq!(m.cancelled_id(), Some(id));
        for d in [Dialect::MsgpackRpc, Dialect::FramedMap] {
            round_trip(d, &m);
        }
    }
    round_trip(Dialect::FramedBinary, &Message::cancel(&7u32.into()));
    assert_eq!(req(1, "$/cancel", vec![]).cancelled_id(), None);
}

/// The message as one `rmpv::Value`, the way the encoder first built it: writing the
/// envelope directly must give the same bytes for every shape of message.
fn as_one_value(dialect: Dialect, message: &Message) -> Vec<u8> {
    let error_pair = |e: &RpcError| {
        Value::Array(vec![
            Value::from(e.code.as_i64()),
            Value::from(e.message.as_str()),
        ])
    };
    let error_map = |e: &RpcError| {
        let mut entries = vec![
            (Value::from("code"), Value::from(e.code.as_i64())),
            (Value::from("message"), Value::from(e.message.as_str())),
        ];
        if let Some(data) = &e.data {
            entries.push((Value::from("data"), data.to_value().unwrap()));
        }
        Value::Map(entries)
    };
    let method_params = |method: &str, params: &RawValue| {
        vec![
            (Value::from("method"), Value::from(method)),
            (Value::from("params"), params.to_value().unwrap()),
        ]
    };
    let mut out = Vec::new();
    let (head, body) = match (dialect, message) {
        (_, Message::Error { .. }) => unreachable!("not written as one value"),
        (Dialect::MsgpackRpc, Message::Request { id, method, params }) => (
            vec![],
            Value::Array(vec![
                0.into(),
                Value::from(id.as_u32().unwrap()),
                method.as_str().into(),
                params.to_value().unwrap(),
            ]),
        ),
        (Dialect::MsgpackRpc, Message::Response { id, result }) => {
            let (error, result) = match result {
                Ok(v) => (Value::Nil, v.to_value().unwrap()),
                Err(e) => (error_pair(e), Value::Nil),
            };
            (
                vec![],
                Value::Array(vec![
                    1.into(),
                    Value::from(id.as_u32().unwrap()),
                    error,
                    result,
                ]),
            )
        }
        (Dialect::MsgpackRpc, Message::Notification { method, params }) => (
            vec![],
            Value::Array(vec![
                2.into(),
                method.as_str().into(),
                params.to_value().unwrap(),
            ]),
        ),
        (Dialect::FramedBinary, Message::Request { id, method, params }) => (
            vec![1, id.as_u32().unwrap()],
            Value::Map(method_params(method, params)),
        ),
        (Dialect::FramedBinary, Message::Notification { method, params }) => {
            (vec![3, 0], Value::Map(method_params(method, params)))
        }
        (Dialect::FramedBinary, Message::Response { id, result }) => {
            let body = match result {
                Ok(v) => vec![(Value::from("result"), v.to_value().unwrap())],
                Err(e) => vec![
                    (Value::from("error"), Value::from(e.message.as_str())),
                    (Value::from("code"), Value::from(e.code.as_i64())),
                ],
            };
            (vec![2, id.as_u32().unwrap()], Value::Map(body))
        }
        (Dialect::FramedMap, Message::Request { id, method, params }) => {
            let mut entries = method_params(method, params);
            entries.push((Value::from("id"), Value::from(id.as_u32().unwrap())));
            (vec![], Value::Map(entries))
        }
        (Dialect::FramedMap, Message::Notification { method, params }) => {
            (vec![], Value::Map(method_params(method, params)))
        }
        (Dialect::FramedMap, Message::Response { id, result }) => {
            let (result, error) = match result {
                Ok(v) => (v.to_value().unwrap(), Value::Nil),
                Err(e) => (Value::Nil, error_map(e)),
            };
            (
                vec![],
                Value::Map(vec![
                    (Value::from("result"), result),
                    (Value::from("error"), error),
                    (Value::from("id"), Value::from(id.as_u32().unwrap())),
                ]),
            )
        }
    };
    let mut payload = Vec::new();
    if let [kind, id] = head[..] {
        payload.push(kind as u8);
        payload.extend_from_slice(&id.to_be_bytes());
    }
    rmpv::encode::write_value(&mut payload, &body).unwrap();
    if dialect != Dialect::MsgpackRpc {
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(&payload);
    out
}

#[test]
fn direct_encoding_is_the_same_bytes_as_one_value() {
    let big = Value::Binary(vec![9; 70_000]);
    let nested = Value::Map(vec![(
        Value::from("k"),
        Value::Array(vec![
            Value::from(-1),
            Value::from(1.5),
            Value::Nil,
            big.clone(),
        ]),
    )]);
    let with_data = RpcError::not_found("no user 99").with_data(&nested);
    let messages = [
        req(0, "a", vec![]),
        req(127, "add", vec![1.into(), 2.into()]),
        req(128, &"m".repeat(40), vec![nested.clone()]),
        req(u32::MAX, "x", vec![big.clone()]),
        Message::Request {
            id: 70_000u32.into(),
            method: "named".into(),
            params: Value::Map(vec![(Value::from("a"), Value::from(-300))]).into(),
        },
        ok(1, Value::Nil),
        ok(65_536, nested.clone()),
        err(2, RpcError::invalid_argument("bad")),
        err(3, with_data),
        err(4, RpcError::new(Code::Other(-7), "negative code")),
        err(5, RpcError::new(Code::Other(1 << 40), "huge code")),
        note("log", Value::Array(vec!["hi".into()])),
        Message::cancel(&9u32.into()),
    ];
    for dialect in Dialect::ALL {
        for message in &messages {
            let codec = WireCodec::new(dialect);
            let mut wire = BytesMut::new();
            codec.encode(message, &mut wire).unwrap();
            assert_eq!(
                &wire[..],
                &as_one_value(dialect, message)[..],
                "{dialect} {message:?}"
            );
            for hold in [
                1..usize::MAX,
                100..usize::MAX,
                1..50_000,
                1 << 20..usize::MAX,
            ] {
                assert_eq!(
                    vectored(&codec, message, hold.clone()).0,
                    &wire[..],
                    "vectored, values of {hold:?} bytes held: {dialect} {message:?}"
                );
            }
        }
    }
}

/// `message` encoded with `encode_vectored` after some bytes already in the buffer,
/// the held values put back where they belong; and how many were held.
pub(crate) fn vectored(
    codec: &WireCodec,
    message: &Message,
    hold: std::ops::Range<usize>,
) -> (Vec<u8>, usize) {
    let mut head = BytesMut::from(&b"before"[..]);
    let mut held = Vec::new();
    codec
        .encoder()
        .encode_vectored(message, &mut head, &mut held, hold.clone())
        .unwrap();
    let mut joined = Vec::new();
    let mut at = b"before".len();
    for part in &held {
        assert!(hold.contains(&part.bytes.len()));
        joined.extend_from_slice(&head[at..part.at]);
        joined.extend_from_slice(&part.bytes);
        at = part.at;
    }
    joined.extend_from_slice(&head[at..]);
    (joined, held.len())
}

#[test]
fn vectored_encode_over_the_limit_writes_and_holds_nothing() {
    let codec = WireCodec::with_limits(Dialect::FramedMap, Limits::new(100, 8).unwrap()).unwrap();
    let mut head = BytesMut::from(&b"keep"[..]);
    let mut held = Vec::new();
    let big = note("x", Value::Binary(vec![1; 200]));
    let encoded = codec
        .encoder()
        .encode_vectored(&big, &mut head, &mut held, 16..usize::MAX);
    assert!(encoded.is_err());
    assert_eq!(&head[..], b"keep");
    assert!(held.is_empty());
}

#[test]
fn a_method_name_sent_as_bin_is_read_as_text() {
    // pynvim writes method names as bin: [2, bin "nvim_set_client_info", [...]], [0, 1, bin "add", [1, 2]].
    let notification = decode_payload(Dialect::MsgpackRpc, b"\x93\x02\xc4\x03log\x90");
    assert_eq!(
        notification.unwrap(),
        Some(note("log", Value::Array(vec![])))
    );
    let request = decode_payload(Dialect::MsgpackRpc, b"\x94\x00\x01\xc4\x03add\x92\x01\x02");
    assert_eq!(
        request.unwrap(),
        Some(req(1, "add", vec![1.into(), 2.into()]))
    );
    // Not UTF-8: not a method.
    let m = malformed(Dialect::MsgpackRpc, b"\x94\x00\x01\xc4\x01\xff\x90");
    assert!(matches!(m.reason, MalformedReason::MethodNotStr), "{m}");
}
