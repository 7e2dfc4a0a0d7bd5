//! The three dialects: framing plus message shape, detection, encode and decode.
//!
//! ```text
//! msgpack-rpc (no prefix; values back to back)
//!   request       [0, id: u32, method: str, params: array|map]
//!   response      [1, id: u32, error: nil|[code: int, message: str], result: any]
//!   notification  [2, method: str, params: array|map]
//!
//! framed-binary
//!   +----------------+---------+-----------------+--------------------------------+
//!   | length: u32 BE | type: u8| id: u32 BE      | body: MessagePack map          |
//!   +----------------+---------+-----------------+--------------------------------+
//!                     <------------- length counts these bytes ------------------>
//!   type 1 request       {"method": str, "params": array|map}
//!   type 2 response      {"result": any}  or  {"error": str, "code": int}
//!   type 3 notification  {"method": str, "params": array|map}   (id 0, ignored)
//!
//! framed-map
//!   +----------------+----------------------------------------------------------+
//!   | length: u32 BE | MessagePack map                                          |
//!   +----------------+----------------------------------------------------------+
//!   request       {"method": str, "params": array|map, "id": u32}
//!   response      {"id": u32, "result": any, "error": nil|{"code": int, "message": str}}
//!   notification  {"method": str, "params": array|map}            (no "id", or nil)
//! ```

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};
use msgwire_frame::{
    length::LengthPrefixed,
    msgpack::{MsgpackScanner, Scan, SelfDelimited, DEFAULT_MAX_DEPTH},
    Framing, DEFAULT_MAX_FRAME,
};
use rmpv::Value;

use crate::{CallId, Code, Message, RpcError};

/// A wire dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// The MessagePack-RPC specification, as Neovim speaks it.
    MsgpackRpc,
    /// `[u32 length][u8 type][u32 id][map]`.
    FramedBinary,
    /// `[u32 length][map]`.
    FramedMap,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 3] = [
        Dialect::MsgpackRpc,
        Dialect::FramedBinary,
        Dialect::FramedMap,
    ];

    /// `msgpack-rpc`, `framed-binary` or `framed-map`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::MsgpackRpc => "msgpack-rpc",
            Dialect::FramedBinary => "framed-binary",
            Dialect::FramedMap => "framed-map",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                format!("unknown dialect {s:?}: expected msgpack-rpc, framed-binary or framed-map")
            })
    }
}

/// What a connection's first bytes say about its dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// This dialect.
    Dialect(Dialect),
    /// Not enough bytes yet (at most 5 are ever needed).
    NeedMore,
    /// No dialect starts like this: the connection should get an error and be closed.
    Unknown,
}

/// Tells a connection's dialect from its first bytes (at most 5):
///
/// * `0x94` or `0x93` — a MessagePack array of 4 or 3: msgpack-rpc;
/// * `0x00` — the top byte of a u32 length under 16 MiB: a framed dialect; byte 4 is a
///   MessagePack map marker for framed-map, or a type 1–3 for framed-binary;
/// * anything else: [`Detected::Unknown`].
pub fn detect(prefix: &[u8]) -> Detected {
    let Some(&first) = prefix.first() else {
        return Detected::NeedMore;
    };
    match first {
        0x93 | 0x94 => Detected::Dialect(Dialect::MsgpackRpc),
        0x00 => match prefix.get(4) {
            None => Detected::NeedMore,
            Some(0x80..=0x8f | 0xde | 0xdf) => Detected::Dialect(Dialect::FramedMap),
            Some(1..=3) => Detected::Dialect(Dialect::FramedBinary),
            Some(_) => Detected::Unknown,
        },
        _ => Detected::Unknown,
    }
}

/// Why bytes could not become a message, or a message could not become bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The byte stream itself is broken (over-long frame, invalid MessagePack, nesting
    /// too deep): it cannot be resynchronised; close the connection.
    #[error(transparent)]
    Frame(#[from] msgwire_frame::Error),
    /// A whole frame arrived, but it is not a valid message. The stream is intact: the
    /// next message can be read. If `id` is known and the frame was a request, answer it
    /// with INVALID_ARGUMENT.
    #[error("malformed message: {reason}")]
    Malformed {
        /// The call id, if the frame was a request whose id could be read.
        id: Option<CallId>,
        /// What is wrong.
        reason: String,
    },
    /// A message could not be encoded (too large for the frame limit).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

impl WireError {
    /// Whether the connection cannot go on after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, WireError::Frame(_))
    }

    fn malformed(id: Option<CallId>, reason: impl Into<String>) -> Self {
        WireError::Malformed {
            id,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone)]
enum Framer {
    Values(SelfDelimited),
    Length(LengthPrefixed),
}

/// Encodes and decodes [`Message`]s in one [`Dialect`].
#[derive(Debug, Clone)]
pub struct WireCodec {
    dialect: Dialect,
    framer: Framer,
    max_frame: usize,
    max_depth: usize,
}

impl WireCodec {
    /// A codec with the default limits: 16 MiB frames, nesting depth 128.
    pub fn new(dialect: Dialect) -> Self {
        Self::builder(dialect).build()
    }

    /// A builder with the default limits.
    pub fn builder(dialect: Dialect) -> WireCodecBuilder {
        WireCodecBuilder {
            dialect,
            max_frame: DEFAULT_MAX_FRAME,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The largest frame (msgpack-rpc: the largest message).
    pub fn max_frame_length(&self) -> usize {
        self.max_frame
    }

    /// Whether part of a message is buffered or held.
    pub fn is_mid_message(&self) -> bool {
        match &self.framer {
            Framer::Values(f) => f.is_mid_frame(),
            Framer::Length(f) => f.is_mid_frame(),
        }
    }

    /// The next whole message at the front of `buf`; `Ok(None)` if more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let frame = match &mut self.framer {
            Framer::Values(f) => f.decode(buf)?,
            Framer::Length(f) => f.decode(buf)?,
        };
        let Some(frame) = frame else {
            return Ok(None);
        };
        self.parse(&frame).map(Some)
    }

    /// Like [`decode`](Self::decode) at end of input: a partial message is an error.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let frame = match &mut self.framer {
            Framer::Values(f) => f.decode_eof(buf)?,
            Framer::Length(f) => f.decode_eof(buf)?,
        };
        match frame {
            Some(frame) => self.parse(&frame).map(Some),
            None => Ok(None),
        }
    }

    /// Turns one whole frame's payload into a message.
    fn parse(&self, payload: &[u8]) -> Result<Message, WireError> {
        match self.dialect {
            Dialect::MsgpackRpc => parse_msgpack_rpc(self.value(payload)?),
            Dialect::FramedMap => parse_framed_map(self.value(payload)?),
            Dialect::FramedBinary => {
                let Some((&kind, rest)) = payload.split_first() else {
                    return Err(WireError::malformed(None, "empty framed-binary frame"));
                };
                let Some((id, body)) = rest.split_first_chunk::<4>() else {
                    return Err(WireError::malformed(
                        None,
                        "framed-binary frame shorter than its 5-byte header",
                    ));
                };
                let id = u32::from_be_bytes(*id);
                let request_id = (kind == 1).then_some(id);
                let body = self.value(body).map_err(|e| match (e, request_id) {
                    (WireError::Malformed { reason, .. }, id) => WireError::malformed(id, reason),
                    // The frame is whole and its id known: answer the request and go on.
                    (WireError::Frame(e), Some(id)) => {
                        WireError::malformed(Some(id), format!("invalid MessagePack: {e}"))
                    }
                    (other, _) => other,
                })?;
                parse_framed_binary(kind, id, body)
            }
        }
    }

    /// Exactly one MessagePack value, within the depth limit. (For msgpack-rpc the
    /// scanner already measured it; for the framed dialects the payload is checked here.)
    fn value(&self, bytes: &[u8]) -> Result<Value, WireError> {
        if matches!(self.framer, Framer::Values(_)) {
            return read_value(bytes, self.max_depth);
        }
        decode_value(bytes, self.max_depth, self.max_frame)
    }

    /// Appends `message`, framed in this codec's dialect, to `dst`. On error nothing is
    /// appended.
    pub fn encode(&self, message: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
        let start = dst.len();
        let result = match self.dialect {
            Dialect::MsgpackRpc => encode::msgpack_rpc(&mut dst.writer(), message),
            Dialect::FramedBinary => {
                let (kind, id) = encode::framed_binary_head(message);
                dst.put_u32(0);
                dst.put_u8(kind);
                dst.put_u32(id);
                encode::framed_binary_body(&mut dst.writer(), message)
            }
            Dialect::FramedMap => {
                dst.put_u32(0);
                encode::framed_map(&mut dst.writer(), message)
            }
        };
        let framed = !matches!(self.dialect, Dialect::MsgpackRpc);
        let body = dst.len() - start - if framed { 4 } else { 0 };
        let check = result.and_then(|()| {
            if body > self.max_frame {
                Err(WireError::Encode(format!(
                    "message of {body} bytes exceeds the frame limit of {} bytes",
                    self.max_frame
                )))
            } else {
                Ok(())
            }
        });
        if let Err(e) = check {
            dst.truncate(start);
            return Err(e);
        }
        if framed {
            // body <= max_frame; a frame limit above u32::MAX cannot be announced.
            let len = u32::try_from(body).map_err(|_| {
                dst.truncate(start);
                WireError::Encode("message longer than a u32 length can announce".into())
            })?;
            dst[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }
}

/// Builds a [`WireCodec`].
#[derive(Debug, Clone)]
pub struct WireCodecBuilder {
    dialect: Dialect,
    max_frame: usize,
    max_depth: usize,
}

impl WireCodecBuilder {
    /// Largest frame (default 16 MiB): a framed dialect's length field, or a whole
    /// msgpack-rpc message. Checked on the header, before the body is buffered.
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// Deepest nesting of arrays and maps accepted from the peer (default 128).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// The codec.
    pub fn build(self) -> WireCodec {
        let framer = match self.dialect {
            Dialect::MsgpackRpc => Framer::Values(
                SelfDelimited::builder()
                    .max_depth(self.max_depth)
                    .max_frame_length(self.max_frame)
                    .build(),
            ),
            Dialect::FramedBinary | Dialect::FramedMap => {
                let mut f = LengthPrefixed::new();
                if let Ok(limited) = LengthPrefixed::builder()
                    .max_frame_length(self.max_frame)
                    .build()
                {
                    f = limited;
                }
                Framer::Length(f)
            }
        };
        WireCodec {
            dialect: self.dialect,
            framer,
            max_frame: self.max_frame,
            max_depth: self.max_depth,
        }
    }
}

/// Decodes `bytes` as exactly one MessagePack value, nested at most `max_depth` deep and
/// within `max_len` bytes.
///
/// msgwire's scanner checks the bytes first — rmpv alone would read the never-used
/// marker `0xc1` as nil and would not say where a value ends — then rmpv builds the
/// value. Errors: [`WireError::Frame`] for invalid MessagePack (`0xc1`, nesting over
/// the limit, a header claiming more than `max_len`), [`WireError::Malformed`] for a
/// value that is incomplete or followed by more bytes.
///
/// ```
/// use msgwire_wire::{decode_value, Value};
///
/// assert_eq!(decode_value(b"\x92\x01\x02", 128, 1024)?, Value::Array(vec![1.into(), 2.into()]));
/// assert!(decode_value(b"\x01\x02", 128, 1024).is_err()); // two values
/// assert!(decode_value(b"\xc1", 128, 1024).is_err()); // never valid
/// # Ok::<(), msgwire_wire::WireError>(())
/// ```
pub fn decode_value(bytes: &[u8], max_depth: usize, max_len: usize) -> Result<Value, WireError> {
    let mut scanner = MsgpackScanner::with_limits(max_depth, max_len);
    match scanner.scan(bytes) {
        Ok(Scan::Complete(n)) if n == bytes.len() => read_value(bytes, max_depth),
        Ok(Scan::Complete(n)) => Err(WireError::malformed(
            None,
            format!("{} bytes after the MessagePack value", bytes.len() - n),
        )),
        Ok(Scan::Incomplete { .. }) => Err(WireError::malformed(
            None,
            "the bytes end inside a MessagePack value",
        )),
        // Invalid MessagePack (0xc1, nesting over the limit, a header claiming more than
        // a frame can hold) closes the connection (PROTOCOL.md section 7): with no
        // readable id there is nobody to answer, and dropping it silently would leave
        // the peer waiting. A framed-binary request still gets INVALID_ARGUMENT (see
        // `WireCodec::parse`).
        Err(e) => Err(WireError::Frame(e)),
    }
}

/// rmpv's decoding of one value the scanner has already measured.
fn read_value(bytes: &[u8], max_depth: usize) -> Result<Value, WireError> {
    let mut rest = bytes;
    rmpv::decode::read_value_with_max_depth(&mut rest, max_depth + 1)
        .map_err(|e| WireError::malformed(None, format!("invalid MessagePack: {e}")))
}

// ---- msgpack-rpc -------------------------------------------------------------------

fn parse_msgpack_rpc(value: Value) -> Result<Message, WireError> {
    let Value::Array(items) = value else {
        return Err(WireError::malformed(
            None,
            "a msgpack-rpc message is an array",
        ));
    };
    let mut items = items.into_iter();
    let kind = items.next().and_then(|k| k.as_u64());
    match (kind, items.len()) {
        (Some(0), 3) => {
            let id = call_id(items.next())
                .ok_or_else(|| WireError::malformed(None, "request id is not a u32"))?;
            let method = method_name(items.next())
                .ok_or_else(|| WireError::malformed(Some(id), "request method is not a string"))?;
            let params = params(items.next()).map_err(|r| WireError::malformed(Some(id), r))?;
            Ok(Message::Request { id, method, params })
        }
        (Some(1), 3) => {
            let id = call_id(items.next())
                .ok_or_else(|| WireError::malformed(None, "response id is not a u32"))?;
            let error = items.next().unwrap_or(Value::Nil);
            let result = items.next().unwrap_or(Value::Nil);
            let result = if error.is_nil() {
                Ok(result)
            } else {
                Err(error_from_value(error))
            };
            Ok(Message::Response { id, result })
        }
        (Some(2), 2) => {
            let method = method_name(items.next())
                .ok_or_else(|| WireError::malformed(None, "notification method is not a string"))?;
            let params = params(items.next()).map_err(|r| WireError::malformed(None, r))?;
            Ok(Message::Notification { method, params })
        }
        _ => Err(WireError::malformed(
            None,
            "expected [0, id, method, params], [1, id, error, result] or [2, method, params]",
        )),
    }
}

// ---- framed-binary -----------------------------------------------------------------

fn parse_framed_binary(kind: u8, id: u32, body: Value) -> Result<Message, WireError> {
    let request_id = (kind == 1).then_some(id);
    let Value::Map(entries) = body else {
        return Err(WireError::malformed(
            request_id,
            "framed-binary body is not a map",
        ));
    };
    let mut fields = Fields::new(entries);
    match kind {
        1 | 3 => {
            let method = method_name(fields.take("method")).ok_or_else(|| {
                WireError::malformed(request_id, "\"method\" is missing or not a string")
            })?;
            let params =
                params(fields.take("params")).map_err(|r| WireError::malformed(request_id, r))?;
            Ok(if kind == 1 {
                Message::Request { id, method, params }
            } else {
                Message::Notification { method, params }
            })
        }
        2 => {
            let result = match fields.take("error") {
                None | Some(Value::Nil) => Ok(fields.take("result").unwrap_or(Value::Nil)),
                Some(error) => {
                    let code = fields
                        .take("code")
                        .and_then(|c| c.as_i64())
                        .map_or(Code::Unknown, Code::from_i64);
                    let mut e = error_from_value(error);
                    if e.code == Code::Unknown {
                        e.code = code;
                    }
                    Err(e)
                }
            };
            Ok(Message::Response { id, result })
        }
        other => Err(WireError::malformed(
            None,
            format!("unknown framed-binary type {other}"),
        )),
    }
}

// ---- framed-map --------------------------------------------------------------------

fn parse_framed_map(value: Value) -> Result<Message, WireError> {
    let Value::Map(entries) = value else {
        return Err(WireError::malformed(None, "a framed-map message is a map"));
    };
    let mut fields = Fields::new(entries);
    let id = match fields.take("id") {
        None | Some(Value::Nil) => None,
        Some(v) => Some(
            call_id(Some(v)).ok_or_else(|| WireError::malformed(None, "\"id\" is not a u32"))?,
        ),
    };
    if let Some(method) = fields.take("method") {
        let method = method_name(Some(method))
            .ok_or_else(|| WireError::malformed(id, "\"method\" is not a string"))?;
        let params = params(fields.take("params")).map_err(|r| WireError::malformed(id, r))?;
        return Ok(match id {
            Some(id) => Message::Request { id, method, params },
            None => Message::Notification { method, params },
        });
    }
    let Some(id) = id else {
        return Err(WireError::malformed(
            None,
            "a map with neither \"method\" nor \"id\"",
        ));
    };
    let result = match fields.take("error") {
        None | Some(Value::Nil) => Ok(fields.take("result").unwrap_or(Value::Nil)),
        Some(error) => Err(error_from_value(error)),
    };
    Ok(Message::Response { id, result })
}

// ---- shared pieces -----------------------------------------------------------------

/// Reads an error in any of the shapes peers send: `[code, message]` (msgpack-rpc and
/// Neovim), `{"code", "message", "data"?}`, a bare string, or anything else (kept as
/// its text, code UNKNOWN).
fn error_from_value(error: Value) -> RpcError {
    match error {
        Value::Array(items) if items.len() == 2 => {
            let code = items[0].as_i64().map_or(Code::Unknown, Code::from_i64);
            let message = match &items[1] {
                Value::String(s) => s
                    .as_str()
                    .map_or_else(|| items[1].to_string(), str::to_owned),
                other => other.to_string(),
            };
            RpcError::new(code, message)
        }
        Value::Map(entries) => {
            let mut fields = Fields::new(entries);
            let code = fields
                .take("code")
                .and_then(|c| c.as_i64())
                .map_or(Code::Unknown, Code::from_i64);
            let message = match fields.take("message") {
                Some(Value::String(s)) => s.into_str().unwrap_or_default(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            RpcError {
                code,
                message,
                data: fields.take("data"),
            }
        }
        Value::String(s) => RpcError::new(Code::Unknown, s.into_str().unwrap_or_default()),
        other => RpcError::new(Code::Unknown, other.to_string()),
    }
}

fn call_id(v: Option<Value>) -> Option<CallId> {
    v.as_ref()
        .and_then(Value::as_u64)
        .and_then(|id| CallId::try_from(id).ok())
}

fn method_name(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => s.into_str(),
        _ => None,
    }
}

/// Params: an array or a map; missing or nil means no params (an empty array).
fn params(v: Option<Value>) -> Result<Value, String> {
    match v {
        None | Some(Value::Nil) => Ok(Value::Array(Vec::new())),
        Some(v @ (Value::Array(_) | Value::Map(_))) => Ok(v),
        Some(other) => Err(format!("params must be an array or a map, not {other}")),
    }
}

/// Takes values out of a decoded map by string key.
struct Fields(Vec<(Value, Value)>);

impl Fields {
    fn new(entries: Vec<(Value, Value)>) -> Self {
        Self(entries)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        let at = self.0.iter().position(|(k, _)| k.as_str() == Some(key))?;
        Some(self.0.swap_remove(at).1)
    }
}

mod encode;
#[cfg(test)]
mod tests;
