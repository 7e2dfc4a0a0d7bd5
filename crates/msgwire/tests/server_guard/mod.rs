//! Helpers for the tests that push on a real `msgwire serve` process's limits (started
//! with `common::Serve`): reading its memory from `/proc`, a small deterministic
//! random generator, and a raw (hand-rolled) client codec for the three dialects so a
//! test can count every response on the wire.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rmpv::Value;

/// A field of `/proc/<pid>/status` given in kB (`VmRSS`, `VmHWM`, `VmPeak`…), in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable line {line:?}"))
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// How many file descriptors a process has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the fd directory")
        .count()
}

/// SplitMix64: small, fast, deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `-bound..=bound`.
    pub fn signed(&mut self, bound: i64) -> i64 {
        let span = (bound as u64) * 2 + 1;
        self.below(span) as i64 - bound
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A random MessagePack value of every kind `echo` gives back unchanged: nil, bools,
/// integers over the whole i64/u64 range, finite floats, strings, binary, and arrays
/// and maps nested up to `depth`.
pub fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let kinds = if depth == 0 { 8 } else { 10 };
    match rng.below(kinds) {
        0 => Value::Nil,
        1 => Value::Boolean(rng.below(2) == 1),
        2 => Value::from(rng.signed(1 << 20)),
        3 => Value::from(rng.next_u64() as i64),
        4 => Value::from(rng.next_u64()),
        5 => Value::F64((rng.signed(1 << 40) as f64) / 1024.0),
        6 => {
            let len = rng.below(40) as usize;
            let text: String = (0..len)
                .map(|_| char::from_u32(0x20 + rng.below(0x2000) as u32).unwrap_or('?'))
                .collect();
            Value::from(text)
        }
        7 => {
            let len = rng.below(64) as usize;
            Value::Binary(rng.bytes(len))
        }
        8 => {
            let len = rng.below(6) as usize;
            Value::Array((0..len).map(|_| random_value(rng, depth - 1)).collect())
        }
        _ => {
            let len = rng.below(5) as usize;
            Value::Map(
                (0..len)
                    .map(|i| (Value::from(format!("k{i}")), random_value(rng, depth - 1)))
                    .collect(),
            )
        }
    }
}

/// The dialects, as a raw client writes them (see docs/PROTOCOL.md sections 3–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw {
    MsgpackRpc,
    FramedBinary,
    FramedMap,
}

/// A response as a raw client reads it: id, and result or `(code, message)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResponse {
    pub id: u32,
    pub outcome: Result<Value, (i64, String)>,
}

/// What a server may send a raw client: a response, or an error that belongs to no call
/// (docs/PROTOCOL.md section 7: framed-map's `"id": nil` response; the `"$/error"`
/// notification of msgpack-rpc and framed-binary).
#[derive(Debug, Clone, PartialEq)]
pub enum RawAnswer {
    Response(RawResponse),
    NoCall { code: i64, message: String },
}

/// `[code, message]`, the params of a `"$/error"` notification.
fn code_and_message(params: &Value) -> (i64, String) {
    let pair = params.as_array().expect("$/error params are an array");
    (
        pair[0].as_i64().expect("an integer code"),
        pair[1].as_str().expect("a str message").to_owned(),
    )
}

fn pack(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).expect("encode into a Vec");
    out
}

fn s(text: &str) -> Value {
    Value::from(text)
}

impl Raw {
    /// Appends a request, framed, to `out`.
    pub fn encode_request(self, out: &mut Vec<u8>, id: u32, method: &str, params: Vec<Value>) {
        self.encode_request_raw(out, id, method, &pack(&Value::Array(params)));
    }

    /// Appends a request whose params are already MessagePack (`params`, one value),
    /// framed, to `out`: for params too large to build as a `Value`. The bytes are those
    /// of [`encode_request`](Self::encode_request) for the same params.
    pub fn encode_request_raw(self, out: &mut Vec<u8>, id: u32, method: &str, params: &[u8]) {
        let fields = |out: &mut Vec<u8>, with_id: bool| {
            // {"method": method, "params": params[, "id": id]}
            out.push(if with_id { 0x83 } else { 0x82 });
            out.extend_from_slice(&pack(&s("method")));
            out.extend_from_slice(&pack(&s(method)));
            out.extend_from_slice(&pack(&s("params")));
            out.extend_from_slice(params);
            if with_id {
                out.extend_from_slice(&pack(&s("id")));
                out.extend_from_slice(&pack(&Value::from(id)));
            }
        };
        let length = |body: usize| u32::try_from(body).expect("a frame under 4 GiB");
        match self {
            Raw::MsgpackRpc => {
                // [0, id, method, params]
                out.push(0x94);
                out.extend_from_slice(&pack(&Value::from(0)));
                out.extend_from_slice(&pack(&Value::from(id)));
                out.extend_from_slice(&pack(&s(method)));
                out.extend_from_slice(params);
            }
            Raw::FramedBinary => {
                let mut body = Vec::with_capacity(params.len() + method.len() + 32);
                fields(&mut body, false);
                out.extend_from_slice(&length(body.len() + 5).to_be_bytes());
                out.push(1);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&body);
            }
            Raw::FramedMap => {
                let mut body = Vec::with_capacity(params.len() + method.len() + 32);
                fields(&mut body, true);
                out.extend_from_slice(&length(body.len()).to_be_bytes());
                out.extend_from_slice(&body);
            }
        }
    }

    /// Takes the next whole response off the front of `buf`; `None` if more bytes are
    /// needed. Panics on anything that is not a well-formed response.
    pub fn decode_response(self, buf: &mut Vec<u8>) -> Option<RawResponse> {
        match self.decode_answer(buf)? {
            RawAnswer::Response(response) => Some(response),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// Takes the next whole response or error for no call off the front of `buf`;
    /// `None` if more bytes are needed. Panics on anything else.
    pub fn decode_answer(self, buf: &mut Vec<u8>) -> Option<RawAnswer> {
        match self {
            Raw::MsgpackRpc => {
                let mut cursor = &buf[..];
                let value = match rmpv::decode::read_value(&mut cursor) {
                    Ok(value) => value,
                    Err(rmpv::decode::Error::InvalidMarkerRead(e))
                    | Err(rmpv::decode::Error::InvalidDataRead(e))
                        if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        return None
                    }
                    Err(e) => panic!("invalid MessagePack from the server: {e}"),
                };
                let used = buf.len() - cursor.len();
                buf.drain(..used);
                let Value::Array(items) = value else {
                    panic!("not a msgpack-rpc message: {value}");
                };
                if let [kind, method, params] = &items[..] {
                    assert_eq!(kind.as_u64(), Some(2), "not a notification");
                    assert_eq!(method.as_str(), Some("$/error"), "not an error");
                    let (code, message) = code_and_message(params);
                    return Some(RawAnswer::NoCall { code, message });
                }
                let [kind, id, error, result]: [Value; 4] = items
                    .try_into()
                    .unwrap_or_else(|items| panic!("not a response: {items:?}"));
                assert_eq!(kind.as_u64(), Some(1), "not a response");
                let id = id.as_u64().and_then(|id| u32::try_from(id).ok());
                let outcome = match error {
                    Value::Nil => Ok(result),
                    Value::Array(pair) if pair.len() == 2 => Err((
                        pair[0].as_i64().expect("an integer code"),
                        pair[1].as_str().expect("a str message").to_owned(),
                    )),
                    other => panic!("unexpected error shape: {other}"),
                };
                Some(RawAnswer::Response(RawResponse {
                    id: id.expect("a u32 id"),
                    outcome,
                }))
            }
            Raw::FramedBinary | Raw::FramedMap => {
                let head: [u8; 4] = buf.get(..4)?.try_into().ok()?;
                let length = u32::from_be_bytes(head) as usize;
                if buf.len() < 4 + length {
                    return None;
                }
                let frame: Vec<u8> = buf.drain(..4 + length).skip(4).collect();
                let (id, body) = if self == Raw::FramedBinary {
                    assert!(
                        matches!(frame[0], 2 | 3),
                        "framed-binary type is not an answer"
                    );
                    let id = u32::from_be_bytes(frame[1..5].try_into().expect("4 bytes"));
                    (Some(id).filter(|_| frame[0] == 2), &frame[5..])
                } else {
                    (None, &frame[..])
                };
                let mut cursor = body;
                let body = rmpv::decode::read_value(&mut cursor).expect("a MessagePack body");
                assert!(cursor.is_empty(), "bytes after the body");
                let Value::Map(fields) = body else {
                    panic!("body is not a map: {body}");
                };
                let field = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k.as_str() == Some(name))
                        .map(|(_, v)| v.clone())
                };
                if self == Raw::FramedBinary && id.is_none() {
                    assert_eq!(
                        field("method").as_ref().and_then(Value::as_str),
                        Some("$/error")
                    );
                    let (code, message) = code_and_message(&field("params").expect("params"));
                    return Some(RawAnswer::NoCall { code, message });
                }
                let no_call = self == Raw::FramedMap && field("id").is_some_and(|id| id.is_nil());
                let id = id.unwrap_or_else(|| {
                    let id = field("id").and_then(|id| id.as_u64()).unwrap_or_default();
                    u32::try_from(id).expect("a u32 id")
                });
                let outcome = match field("error") {
                    None | Some(Value::Nil) => Ok(field("result").unwrap_or(Value::Nil)),
                    Some(Value::Map(error)) => {
                        let get = |name: &str| {
                            error
                                .iter()
                                .find(|(k, _)| k.as_str() == Some(name))
                                .map(|(_, v)| v.clone())
                        };
                        Err((
                            get("code").and_then(|c| c.as_i64()).expect("a code"),
                            get("message")
                                .and_then(|m| m.as_str().map(str::to_owned))
                                .expect("a message"),
                        ))
                    }
                    Some(Value::String(message)) => Err((
                        field("code").and_then(|c| c.as_i64()).unwrap_or(2),
                        message.into_str().unwrap_or_default(),
                    )),
                    Some(other) => panic!("unexpected error shape: {other}"),
                };
                if no_call {
                    let (code, message) = outcome.expect_err("an error for no call");
                    return Some(RawAnswer::NoCall { code, message });
                }
                Some(RawAnswer::Response(RawResponse { id, outcome }))
            }
        }
    }
}
