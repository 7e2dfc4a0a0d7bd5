//! Running the third-party peers (Python, Node) that interop tests talk to.
//! `scripts/test` installs them and sets `MSGWIRE_PYTHON` / `MSGWIRE_NODE_MODULES`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use rmpv::Value;

#[path = "../../../../tests/support/peer_programs.rs"]
mod peer_programs;
#[allow(unused_imports)] // each test binary uses a different subset
pub use peer_programs::{node_script, python_script};

/// Runs a peer program with `input` on stdin; returns (stdout, stderr). Panics with the
/// peer's stderr if it fails.
pub fn run_peer(mut cmd: Command, input: &[u8]) -> (Vec<u8>, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    (out.stdout, stderr)
}

/// Which values a peer carries through decode + re-encode unchanged.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    /// Python msgpack: no f32 (it unpacks to a Python float, packed back as f64).
    Python,
    /// Node @msgpack/msgpack: no f32, no integral floats (packed back as ints), only
    /// string map keys (maps become objects), no empty strings as ext..., ints as BigInt.
    Node,
}

/// Random MessagePack values that `peer` carries through unchanged.
pub fn values(peer: Peer) -> impl Strategy<Value = Value> {
    let float = any::<f64>().prop_filter("finite, non-integral", |f| {
        f.is_finite() && f.fract() != 0.0
    });
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-200i64..300).prop_map(Value::from),
        float.prop_map(Value::F64),
        ".{0,40}".prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::Binary),
        (0i8..100, prop::collection::vec(any::<u8>(), 1..20)).prop_map(|(t, d)| Value::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        let key = match peer {
            Peer::Python => prop_oneof![
                "[a-z]{1,8}".prop_map(Value::from),
                any::<i32>().prop_map(Value::from)
            ]
            .boxed(),
            Peer::Node => "[a-z]{1,8}".prop_map(Value::from).boxed(),
        };
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key.prop_map(KeyOrd), inner, 0..8)
                .prop_map(|m| Value::Map(m.into_iter().map(|(k, v)| (k.0, v)).collect())),
        ]
    })
}

/// A map key with an order, so generated maps have no duplicate keys.
#[derive(Debug, Clone)]
pub struct KeyOrd(pub Value);

impl KeyOrd {
    fn sort_key(&self) -> String {
        format!("{:?}", self.0)
    }
}
impl PartialEq for KeyOrd {
    fn eq(&self, other: &Self) -> bool {
        self.sort_key() == other.sort_key()
    }
}
impl Eq for KeyOrd {}
impl PartialOrd for KeyOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for KeyOrd {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

/// One value, encoded by rmpv.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

/// Decodes one whole value.
pub fn decode(bytes: &[u8]) -> Value {
    let mut rest = bytes;
    let v = rmpv::decode::read_value(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the value");
    v
}
