//! Byte-for-byte interop with third-party MessagePack libraries: Python `msgpack` and
//! Node `@msgpack/msgpack`, over a u32 big-endian length prefix and back to back.
//!
//! Each case: random values are framed by msgwire and piped to the peer, which decodes
//! them with its library and writes them back framed its own way (Python `struct.pack`
//! and `packb`, Node `writeUInt32BE` and `encode`); msgwire decodes the peer's stream cut
//! at random points, over every buffer strategy, and must get back the very values it
//! sent. So what msgwire encodes, the peer decodes, and what the peer encodes, msgwire
//! decodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod peers;

use bytes::BytesMut;
use msgwire_frame::testing::{cuts, decode_pieces, Cuts};
use msgwire_frame::with_every_buffer;
use msgwire_frame::{length::LengthPrefixed, msgpack::SelfDelimited, Encode};
use peers::{decode, encode, node_script, python_script, run_peer, values, Peer};
use proptest::prelude::*;
use rmpv::Value;

fn length_stream(values: &[Value]) -> Vec<u8> {
    let mut wire = BytesMut::new();
    let mut framing = LengthPrefixed::new();
    for v in values {
        framing.encode(&encode(v)[..], &mut wire).unwrap();
    }
    wire.to_vec()
}

fn self_delimited_stream(values: &[Value]) -> Vec<u8> {
    let mut wire = BytesMut::new();
    let mut framing = SelfDelimited::new();
    for v in values {
        framing.encode(&encode(v)[..], &mut wire).unwrap();
    }
    wire.to_vec()
}

fn check_peer_stream(
    sent: &[Value],
    stdout: &[u8],
    stderr: &str,
    self_delimited: bool,
    cuts: &Cuts,
) {
    assert_eq!(
        stderr.trim(),
        sent.len().to_string(),
        "peer counted the values"
    );
    with_every_buffer!(|buf| {
        let frames: Vec<Value> = if self_delimited {
            decode_pieces(SelfDelimited::new(), buf, stdout, cuts)
                .unwrap()
                .into_iter()
                .map(|(_, f)| decode(f.as_ref()))
                .collect()
        } else {
            decode_pieces(LengthPrefixed::new(), buf, stdout, cuts)
                .unwrap()
                .into_iter()
                .map(|(_, f)| decode(f.as_ref()))
                .collect()
        };
        assert_eq!(frames, sent);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn python_msgpack_length_prefixed(vals in prop::collection::vec(values(Peer::Python), 1..60), cuts in cuts()) {
        let (out, err) = run_peer(python_script("py_msgpack.py", &["length"]), &length_stream(&vals));
        check_peer_stream(&vals, &out, &err, false, &cuts);
    }

    #[test]
    fn python_msgpack_back_to_back(vals in prop::collection::vec(values(Peer::Python), 1..60), cuts in cuts()) {
        let (out, err) = run_peer(python_script("py_msgpack.py", &["stream"]), &self_delimited_stream(&vals));
        check_peer_stream(&vals, &out, &err, true, &cuts);
    }

    #[test]
    fn node_msgpack_length_prefixed(vals in prop::collection::vec(values(Peer::Node), 1..60), cuts in cuts()) {
        let (out, err) = run_peer(node_script("node_msgpack.mjs", &["length"]), &length_stream(&vals));
        check_peer_stream(&vals, &out, &err, false, &cuts);
    }

    #[test]
    fn node_msgpack_back_to_back(vals in prop::collection::vec(values(Peer::Node), 1..60), cuts in cuts()) {
        let (out, err) = run_peer(node_script("node_msgpack.mjs", &["stream"]), &self_delimited_stream(&vals));
        check_peer_stream(&vals, &out, &err, true, &cuts);
    }
}

/// A fixed stream Python writes with its own code, checked byte for byte against
/// msgwire's encoding of the same values.
#[test]
fn python_and_msgwire_frame_identically() {
    let vals = vec![
        Value::from(1),
        Value::from("hello"),
        Value::Array(vec![Value::from(-1), Value::Binary(vec![0, 1, 2])]),
        Value::Map(vec![(Value::from("k"), Value::from(300))]),
    ];
    let ours = length_stream(&vals);
    let (theirs, _) = run_peer(python_script("py_msgpack.py", &["length"]), &ours);
    assert_eq!(theirs, ours, "Python re-encodes to the very same bytes");
}
