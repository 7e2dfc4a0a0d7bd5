use bytes::BytesMut;
use rmpv::Value;

use super::*;

fn req(id: u32, method: &str, params: Vec<Value>) -> Message {
    Message::Request {
        id,
        method: method.into(),
        params: Value::Array(params),
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
    let ok = Message::Response {
        id: 1,
        result: Ok(3.into()),
    };
    assert_eq!(
        &round_trip(Dialect::MsgpackRpc, &ok)[..],
        b"\x94\x01\x01\xc0\x03"
    );
    let err = Message::Response {
        id: 2,
        result: Err(RpcError::new(Code::NotFound, "no")),
    };
    assert_eq!(
        &round_trip(Dialect::MsgpackRpc, &err)[..],
        b"\x94\x01\x02\x92\x05\xa2no\xc0"
    );
    let note = Message::Notification {
        method: "n".into(),
        params: Value::Array(vec![]),
    };
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
    let err = Message::Response {
        id: 7,
        result: Err(RpcError::new(Code::InvalidArgument, "bad")),
    };
    round_trip(Dialect::FramedBinary, &err);
    round_trip(
        Dialect::FramedBinary,
        &Message::Response {
            id: 9,
            result: Ok(Value::from("x")),
        },
    );
    round_trip(Dialect::FramedBinary, &Message::cancel(7));
}

#[test]
fn framed_map_bytes() {
    let wire = round_trip(Dialect::FramedMap, &req(3, "greet", vec!["Bob".into()]));
    let body = b"\x83\xa6method\xa5greet\xa6params\x91\xa3Bob\xa2id\x03";
    assert_eq!(&wire[..4], &(body.len() as u32).to_be_bytes());
    assert_eq!(&wire[4..], &body[..]);
    let err = Message::Response {
        id: 3,
        result: Err(RpcError::new(Code::Unimplemented, "no such method: x")),
    };
    round_trip(Dialect::FramedMap, &err);
    round_trip(
        Dialect::FramedMap,
        &Message::Notification {
            method: "n".into(),
            params: Value::Map(vec![]),
        },
    );
}

#[test]
fn named_params_survive_every_dialect() {
    let named = Message::Request {
        id: 1,
        method: "add".into(),
        params: Value::Map(vec![("a".into(), 1.into()), ("b".into(), 2.into())]),
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
fn neovim_error_shape_and_strings_are_read() {
    // Neovim answers errors as [type, message] with type 0 (exception) or 1 (validation).
    let mut codec = WireCodec::new(Dialect::MsgpackRpc);
    let mut wire = BytesMut::from(&b"\x94\x01\x05\x92\x00\xa4oops\xc0"[..]);
    match codec.decode(&mut wire).unwrap() {
        Some(Message::Response {
            id: 5,
            result: Err(e),
        }) => {
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

#[test]
fn malformed_requests_keep_their_id_and_the_stream() {
    let mut codec = WireCodec::new(Dialect::MsgpackRpc);
    // [0, 9, 42, []]: method not a string; then a good notification.
    let mut wire = BytesMut::from(&b"\x94\x00\x09\x2a\x90\x93\x02\xa1n\x90"[..]);
    match codec.decode(&mut wire) {
        Err(WireError::Malformed { id: Some(9), .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        codec.decode(&mut wire),
        Ok(Some(Message::Notification { .. }))
    ));
    // A scalar is not a message; nor is [5].
    for bad in [&b"\x01"[..], b"\x91\x05"] {
        let mut wire = BytesMut::from(bad);
        assert!(matches!(
            codec.decode(&mut wire),
            Err(WireError::Malformed { id: None, .. })
        ));
    }
    // params that are neither array nor map
    let mut wire = BytesMut::from(&b"\x94\x00\x01\xa1m\x05"[..]);
    assert!(matches!(
        codec.decode(&mut wire),
        Err(WireError::Malformed { id: Some(1), .. })
    ));
}

#[test]
fn framed_payload_must_be_exactly_one_value() {
    let mut codec = WireCodec::new(Dialect::FramedMap);
    // length 2, payload 0x80 0x01: an empty map and then a stray byte.
    let mut wire = BytesMut::from(&b"\x00\x00\x00\x02\x80\x01"[..]);
    assert!(matches!(
        codec.decode(&mut wire),
        Err(WireError::Malformed { .. })
    ));
    // 0xc1 is never valid MessagePack: with no readable id, the connection must close.
    let mut wire = BytesMut::from(&b"\x00\x00\x00\x01\xc1"[..]);
    assert!(codec.decode(&mut wire).unwrap_err().is_fatal());
    // Nor is a str header claiming 4 GiB inside an 8-byte frame.
    let mut wire = BytesMut::from(&b"\x00\x00\x00\x08\x81\xa1m\xdb\xff\xff\xff\xff"[..]);
    assert!(codec.decode(&mut wire).unwrap_err().is_fatal());
    let mut codec = WireCodec::new(Dialect::FramedBinary);
    // A framed-binary request's id is in its header: it is answered, the stream goes on.
    let mut wire = BytesMut::from(&b"\x00\x00\x00\x06\x01\x00\x00\x00\x04\xc1"[..]);
    assert!(matches!(
        codec.decode(&mut wire),
        Err(WireError::Malformed { id: Some(4), .. })
    ));
    // A response with an invalid body has nobody to answer: closed.
    let mut wire = BytesMut::from(&b"\x00\x00\x00\x06\x02\x00\x00\x00\x04\xc1"[..]);
    assert!(codec.decode(&mut wire).unwrap_err().is_fatal());
    let mut wire = BytesMut::from(&b"\x00\x00\x00\x03\x01\x00\x00"[..]);
    assert!(matches!(
        codec.decode(&mut wire),
        Err(WireError::Malformed { .. })
    ));
}

#[test]
fn limits_are_fatal_frame_errors() {
    let mut codec = WireCodec::builder(Dialect::FramedMap)
        .max_frame_length(100)
        .build();
    let mut wire = BytesMut::from(&b"\x00\x00\x01\x00"[..]);
    let err = codec.decode(&mut wire).unwrap_err();
    assert!(err.is_fatal(), "{err}");
    let mut codec = WireCodec::builder(Dialect::MsgpackRpc).max_depth(4).build();
    let mut wire = BytesMut::from(&[0x91u8; 10][..]);
    assert!(codec.decode(&mut wire).unwrap_err().is_fatal());
    let mut codec = WireCodec::builder(Dialect::FramedBinary)
        .max_depth(2)
        .build();
    let mut wire = BytesMut::new();
    let deep = Message::Request {
        id: 1,
        method: "m".into(),
        params: Value::Array(vec![Value::Array(vec![Value::Array(vec![])])]),
    };
    WireCodec::new(Dialect::FramedBinary)
        .encode(&deep, &mut wire)
        .unwrap();
    assert!(matches!(
        codec.decode(&mut wire),
        Err(WireError::Malformed { id: Some(1), .. })
    ));
}

#[test]
fn encode_over_the_limit_writes_nothing() {
    let codec = WireCodec::builder(Dialect::FramedMap)
        .max_frame_length(10)
        .build();
    let mut wire = BytesMut::from(&b"keep"[..]);
    let big = Message::Notification {
        method: "x".repeat(50),
        params: Value::Nil,
    };
    assert!(codec.encode(&big, &mut wire).is_err());
    assert_eq!(&wire[..], b"keep");
}

#[test]
fn cancel_notification_round_trips() {
    let m = Message::cancel(42);
    assert_eq!(m.cancelled_id(), Some(42));
    for d in Dialect::ALL {
        round_trip(d, &m);
    }
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
            entries.push((Value::from("data"), data.clone()));
        }
        Value::Map(entries)
    };
    let method_params = |method: &str, params: &Value| {
        vec![
            (Value::from("method"), Value::from(method)),
            (Value::from("params"), params.clone()),
        ]
    };
    let mut out = Vec::new();
    let (head, body) = match (dialect, message) {
        (Dialect::MsgpackRpc, Message::Request { id, method, params }) => (
            vec![],
            Value::Array(vec![
                0.into(),
                (*id).into(),
                method.as_str().into(),
                params.clone(),
            ]),
        ),
        (Dialect::MsgpackRpc, Message::Response { id, result }) => {
            let (error, result) = match result {
                Ok(v) => (Value::Nil, v.clone()),
                Err(e) => (error_pair(e), Value::Nil),
            };
            (
                vec![],
                Value::Array(vec![1.into(), (*id).into(), error, result]),
            )
        }
        (Dialect::MsgpackRpc, Message::Notification { method, params }) => (
            vec![],
            Value::Array(vec![2.into(), method.as_str().into(), params.clone()]),
        ),
        (Dialect::FramedBinary, Message::Request { id, method, params }) => {
            (vec![1, *id], Value::Map(method_params(method, params)))
        }
        (Dialect::FramedBinary, Message::Notification { method, params }) => {
            (vec![3, 0], Value::Map(method_params(method, params)))
        }
        (Dialect::FramedBinary, Message::Response { id, result }) => {
            let body = match result {
                Ok(v) => vec![(Value::from("result"), v.clone())],
                Err(e) => vec![
                    (Value::from("error"), Value::from(e.message.as_str())),
                    (Value::from("code"), Value::from(e.code.as_i64())),
                ],
            };
            (vec![2, *id], Value::Map(body))
        }
        (Dialect::FramedMap, Message::Request { id, method, params }) => {
            let mut entries = method_params(method, params);
            entries.push((Value::from("id"), Value::from(*id)));
            (vec![], Value::Map(entries))
        }
        (Dialect::FramedMap, Message::Notification { method, params }) => {
            (vec![], Value::Map(method_params(method, params)))
        }
        (Dialect::FramedMap, Message::Response { id, result }) => {
            let (result, error) = match result {
                Ok(v) => (v.clone(), Value::Nil),
                Err(e) => (Value::Nil, error_map(e)),
            };
            (
                vec![],
                Value::Map(vec![
                    (Value::from("result"), result),
                    (Value::from("error"), error),
                    (Value::from("id"), Value::from(*id)),
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
    let mut with_data = RpcError::not_found("no user 99");
    with_data.data = Some(nested.clone());
    let messages = [
        req(0, "a", vec![]),
        req(127, "add", vec![1.into(), 2.into()]),
        req(128, &"m".repeat(40), vec![nested.clone()]),
        req(u32::MAX, "x", vec![big.clone()]),
        Message::Request {
            id: 70_000,
            method: "named".into(),
            params: Value::Map(vec![(Value::from("a"), Value::from(-300))]),
        },
        Message::Response {
            id: 1,
            result: Ok(Value::Nil),
        },
        Message::Response {
            id: 65_536,
            result: Ok(nested.clone()),
        },
        Message::Response {
            id: 2,
            result: Err(RpcError::invalid_argument("bad")),
        },
        Message::Response {
            id: 3,
            result: Err(with_data),
        },
        Message::Response {
            id: 4,
            result: Err(RpcError::new(Code::Other(-7), "negative code")),
        },
        Message::Response {
            id: 5,
            result: Err(RpcError::new(Code::Other(1 << 40), "huge code")),
        },
        Message::Notification {
            method: "log".into(),
            params: Value::Array(vec!["hi".into()]),
        },
        Message::cancel(9),
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
        }
    }
}
