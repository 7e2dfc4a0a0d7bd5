//! `msgwire inspect`, run as a binary with streams piped in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use bytes::BytesMut;
use msgwire_frame::{
    chunked::Chunked,
    delimiter::Delimited,
    grpc::GrpcPrefixed,
    length::LengthPrefixed,
    varint::VarintPrefixed,
    websocket::{Message, WebSocket},
    Encode,
};
use rmpv::Value;
use serde_json::{json, Value as Json};

fn msgwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msgwire"))
}

fn pack(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap();
    out
}

/// Runs `msgwire inspect ARGS` with `input` on stdin, written in `piece`-byte writes.
fn inspect(args: &[&str], input: &[u8], piece: usize) -> Output {
    let mut child = msgwire()
        .arg("inspect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        for chunk in input.chunks(piece) {
            stdin.write_all(chunk).unwrap();
            stdin.flush().unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn lines(out: &Output) -> Vec<Json> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sample_values() -> Vec<Value> {
    vec![
        Value::Array(vec![Value::from(1), Value::from(2)]),
        Value::Binary(vec![0, 1, 2]),
        Value::Map(vec![(Value::from("name"), Value::from("Alice"))]),
        Value::Nil,
    ]
}

fn length_stream(values: &[Value]) -> Vec<u8> {
    let mut wire = BytesMut::new();
    for v in values {
        LengthPrefixed::new()
            .encode(&pack(v)[..], &mut wire)
            .unwrap();
    }
    wire.to_vec()
}

fn expected_lines(values: &[Value], header: usize) -> Vec<Json> {
    let mut offset = 0;
    let mut want = Vec::new();
    for v in values {
        let len = pack(v).len();
        want.push(json!({"offset": offset, "length": len}));
        offset += header + len;
    }
    want[0]["value"] = json!([1, 2]);
    want[1]["value"] = json!({"$bin": "AAEC"});
    want[2]["value"] = json!({"name": "Alice"});
    want[3]["value"] = Json::Null;
    want
}

#[test]
fn length_prefixed_file_is_detected_and_printed() {
    let values = sample_values();
    let dir = std::env::temp_dir().join(format!("msgwire-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("capture.bin");
    std::fs::write(&file, length_stream(&values)).unwrap();
    let out = msgwire().arg("inspect").arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out), expected_lines(&values, 4));
}

#[test]
fn back_to_back_msgpack_on_stdin_is_detected() {
    let values = sample_values();
    let wire: Vec<u8> = values.iter().flat_map(pack).collect();
    let out = inspect(&[], &wire, 1 << 20);
    assert!(out.status.success());
    assert_eq!(lines(&out), expected_lines(&values, 0));
}

#[test]
fn trickling_stdin_byte_by_byte_decodes_the_same() {
    let values = sample_values();
    for (args, wire, header) in [
        (vec!["-"], length_stream(&values), 4),
        (
            vec!["--framing", "msgpack"],
            values.iter().flat_map(pack).collect(),
            0,
        ),
    ] {
        let out = inspect(&args, &wire, 1);
        assert!(out.status.success());
        assert_eq!(lines(&out), expected_lines(&values, header));
    }
}

#[test]
fn truncated_stream_prints_good_messages_then_names_the_offset() {
    let values = sample_values();
    let mut wire = length_stream(&values);
    let good_end = wire.len();
    wire.extend_from_slice(b"\x00\x00\x00\x10only-part");
    let out = inspect(&["--framing", "length"], &wire, 5);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out), expected_lines(&values, 4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("byte offset {good_end}")) && err.contains("ended inside a frame"),
        "stderr: {err}"
    );
}

#[test]
fn corrupt_msgpack_names_the_offset() {
    let mut wire = pack(&Value::from(7));
    wire.extend_from_slice(&[0x92, 0x01, 0xc1]);
    let out = inspect(&["--framing", "msgpack"], &wire, 2);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        lines(&out),
        vec![json!({"offset": 0, "length": 1, "value": 7})]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("byte offset 1"), "stderr: {err}");
}

#[test]
fn frame_over_max_frame_is_an_error_before_its_body_arrives() {
    let wire = b"\x00\x00\x10\x00";
    let out = inspect(&["--framing", "length", "--max-frame", "100"], wire, 4);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("byte offset 0") && err.contains("exceeds the limit of 100"),
        "stderr: {err}"
    );
}

/// Headers that announce lengths near or past what a machine can address, for each
/// framing, and what stderr must say about them: with `--max-frame
/// 18446744073709551615` (usize::MAX) nothing may panic or abort; each is a clean error.
fn unaddressable_headers() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    const CUT: &str = "input ended inside a frame";
    const UNADDRESSABLE: &str = "more than this machine can address";
    let ws = |len: u64| {
        let mut wire = vec![0x82, 0x7f];
        wire.extend_from_slice(&len.to_be_bytes());
        wire
    };
    vec![
        ("length", "4 GiB", b"\xff\xff\xff\xff".to_vec(), CUT),
        (
            "varint",
            "u64::MAX",
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            UNADDRESSABLE,
        ),
        (
            "varint",
            "2^63",
            vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            CUT,
        ),
        ("line", "no delimiter", b"aaaa".to_vec(), CUT),
        (
            "msgpack",
            "str32 of 4 GiB",
            b"\xdb\xff\xff\xff\xff".to_vec(),
            CUT,
        ),
        (
            "msgpack",
            "array32 of 4 billion",
            b"\xdd\xff\xff\xff\xff".to_vec(),
            CUT,
        ),
        ("websocket", "2^44", ws(1 << 44), CUT),
        ("websocket", "2^63 - 1", ws((1 << 63) - 1), CUT),
        ("websocket", "2^63", ws(1 << 63), "most significant bit set"),
        (
            "chunked",
            "2^64 - 1",
            b"ffffffffffffffff\r\n".to_vec(),
            UNADDRESSABLE,
        ),
        (
            "chunked",
            "2^63 - 1",
            b"7fffffffffffffff\r\nab".to_vec(),
            CUT,
        ),
        (
            "chunked",
            "17 hex digits",
            b"10000000000000000\r\n".to_vec(),
            UNADDRESSABLE,
        ),
        ("grpc", "4 GiB", b"\x00\xff\xff\xff\xff".to_vec(), CUT),
    ]
}

#[test]
fn max_frame_usize_max_never_panics_or_aborts_on_huge_headers() {
    for (framing, what, wire, says) in unaddressable_headers() {
        let out = inspect(
            &["--framing", framing, "--max-frame", "18446744073709551615"],
            &wire,
            1 << 20,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        // Killed by a signal (an abort on allocation failure) has no exit code.
        assert_eq!(out.status.code(), Some(1), "{framing} {what}: {err}");
        assert!(!err.contains("panicked"), "{framing} {what}: {err}");
        assert!(
            err.contains("msgwire inspect: error at byte offset 0") && err.contains(says),
            "{framing} {what}: {err}"
        );
    }
}

#[test]
fn payload_that_is_not_msgpack_prints_as_bin_with_a_note() {
    let mut wire = BytesMut::new();
    LengthPrefixed::new()
        .encode(&b"\xc1\xc1"[..], &mut wire)
        .unwrap();
    let out = inspect(&["--framing", "length"], &wire, 64);
    assert!(out.status.success());
    let got = lines(&out);
    assert_eq!(got[0]["value"], json!({"$bin": "wcE="}));
    assert!(got[0]["note"].as_str().unwrap().contains("not MessagePack"));
}

#[test]
fn websocket_capture_reassembles_fragments_and_names_opcodes() {
    let payload = pack(&Value::from("hello websocket"));
    let mut wire = BytesMut::new();
    let mut client = WebSocket::client();
    // A client's frames are masked: a fragmented binary message with a ping between its
    // fragments, then a close.
    let message = Message::binary(payload.clone());
    let mut fragments = BytesMut::new();
    client
        .encode_fragmented(&message, 4, &mut fragments)
        .unwrap();
    wire.extend_from_slice(&fragments);
    client
        .encode(&Message::ping(b"hi".to_vec()), &mut wire)
        .unwrap();
    client
        .encode(&Message::close(1000, "bye"), &mut wire)
        .unwrap();
    let out = inspect(&["--framing", "websocket"], &wire, 3);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["opcode"], "binary");
    assert_eq!(got[0]["offset"], 0);
    assert_eq!(got[0]["length"], payload.len());
    assert_eq!(got[0]["value"], "hello websocket");
    assert_eq!(got[1]["opcode"], "ping");
    assert_eq!(got[1]["offset"], fragments.len());
    assert_eq!(got[2]["opcode"], "close");
    assert_eq!(got[2]["value"], json!({"code": 1000, "reason": "bye"}));
}

#[test]
fn every_named_framing_decodes_its_stream() {
    let v = Value::Array(vec![Value::from("x"), Value::from(1)]);
    let p = pack(&v);
    let mut varint = BytesMut::new();
    VarintPrefixed::new().encode(&p[..], &mut varint).unwrap();
    let mut line = BytesMut::new();
    Delimited::lines().encode(&p[..], &mut line).unwrap();
    let mut chunked = BytesMut::new();
    Chunked::new().encode(&p[..], &mut chunked).unwrap();
    Chunked::encode_end(&mut chunked);
    let mut grpc = BytesMut::new();
    GrpcPrefixed::new().encode(&p[..], &mut grpc).unwrap();
    for (name, wire) in [
        ("varint", varint),
        ("line", line),
        ("chunked", chunked),
        ("grpc", grpc),
    ] {
        let out = inspect(&["--framing", name], &wire, 1);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = lines(&out);
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(got[0]["value"], json!(["x", 1]), "{name}");
        assert_eq!(got[0]["offset"], 0, "{name}");
        assert_eq!(got[0]["length"], p.len(), "{name}");
    }
}

#[test]
fn help_explains_the_output() {
    let out = msgwire().args(["inspect", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--framing") && help.contains("--max-frame") && help.contains("offset"));
}
