//! Writing messages: the envelope (array or map headers, kinds, ids, method names,
//! error fields) goes straight to the buffer through `rmp`, and params and results —
//! [`RawValue`]s — as the bytes they already are: nothing is decoded, cloned or
//! re-encoded. The bytes are the same as encoding the message as one `rmpv::Value`
//! (rmp writes every integer and length in its most compact form, as rmpv does); the
//! byte-exact tests in `tests.rs` pin that.

use std::io::Write;

use rmp::encode::{write_array_len, write_map_len, write_nil, write_sint, write_str, write_uint};

use bytes::{Bytes, BytesMut};

use super::Dialect;
use crate::error::EncodeError;
use crate::{CallId, Held, Message, RawValue, RpcError, ERROR_METHOD};

type Written = Result<(), EncodeError>;

/// Where a message body is written: appended to `dst`, except params and results whose
/// length is in `hold`, which are recorded in `held` with where they go in `dst`
/// instead of copied (see [`Encoder::encode_vectored`]; an empty `hold` copies
/// everything, as [`Encoder::encode`] does).
///
/// [`Encoder::encode_vectored`]: crate::Encoder::encode_vectored
/// [`Encoder::encode`]: crate::Encoder::encode
pub(crate) struct Body<'a> {
    pub(crate) dst: &'a mut BytesMut,
    pub(crate) held: &'a mut Vec<Held>,
    pub(crate) hold: std::ops::Range<usize>,
}

impl Write for Body<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.dst.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.dst.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a param or result value. A value kept in two pieces (a stream item ending in
/// a large bin) has its head copied and its tail held.
fn value(w: &mut Body<'_>, v: &RawValue) -> Written {
    let (copied, rest) = match v.pieces() {
        Some((head, tail)) => (&head[..], tail.clone()),
        None if w.hold.contains(&v.len()) => (&[][..], v.clone().into_bytes()),
        None => (v.as_bytes(), Bytes::new()),
    };
    w.dst.extend_from_slice(copied);
    if w.hold.contains(&rest.len()) {
        w.held.push(Held {
            at: w.dst.len(),
            bytes: rest,
        });
    } else {
        w.dst.extend_from_slice(&rest);
    }
    Ok(())
}

fn id<W: Write>(w: &mut W, id: &CallId) -> Written {
    id.write(w).map_err(EncodeError::from)
}

fn text<W: Write>(w: &mut W, s: &str) -> Written {
    write_str(w, s).map_err(EncodeError::from)
}

fn uint<W: Write>(w: &mut W, n: u64) -> Written {
    write_uint(w, n).map(drop).map_err(EncodeError::from)
}

/// An `i64` as rmpv writes `Value::from(n)`: non-negative as unsigned, negative signed.
fn int<W: Write>(w: &mut W, n: i64) -> Written {
    match u64::try_from(n) {
        Ok(n) => uint(w, n),
        Err(_) => write_sint(w, n).map(drop).map_err(EncodeError::from),
    }
}

fn array<W: Write>(w: &mut W, len: u32) -> Written {
    write_array_len(w, len).map(drop).map_err(EncodeError::from)
}

fn map<W: Write>(w: &mut W, len: u32) -> Written {
    write_map_len(w, len).map(drop).map_err(EncodeError::from)
}

fn nil<W: Write>(w: &mut W) -> Written {
    write_nil(w).map_err(EncodeError::from)
}

/// Writes what follows the length prefix (msgpack-rpc has none): the whole message.
pub(crate) fn encode_body(dialect: Dialect, w: &mut Body<'_>, message: &Message) -> Written {
    match dialect {
        Dialect::MsgpackRpc => msgpack_rpc(w, message),
        Dialect::FramedBinary => {
            let (kind, id) = framed_binary_head(message)?;
            w.write_all(&[kind])?;
            w.write_all(&id.to_be_bytes())?;
            framed_binary_body(w, message)
        }
        Dialect::FramedMap => framed_map(w, message),
    }
}

/// `[code, message]`: how msgpack-rpc and framed-binary carry [`Message::Error`].
fn error_params<W: Write>(w: &mut W, e: &RpcError) -> Written {
    array(w, 2)?;
    int(w, e.code.as_i64())?;
    text(w, &e.message)
}

/// `[0, id, method, params]`, `[1, id, error, result]` or `[2, method, params]`.
fn msgpack_rpc(w: &mut Body<'_>, message: &Message) -> Written {
    match message {
        Message::Request {
            id: i,
            method,
            params,
        } => {
            array(w, 4)?;
            uint(w, 0)?;
            id(w, i)?;
            text(w, method)?;
            value(w, params)
        }
        Message::Response { id: i, result } => {
            array(w, 4)?;
            uint(w, 1)?;
            id(w, i)?;
            match result {
                Ok(v) => {
                    nil(w)?;
                    value(w, v)
                }
                Err(e) => {
                    array(w, 2)?;
                    int(w, e.code.as_i64())?;
                    text(w, &e.message)?;
                    nil(w)
                }
            }
        }
        Message::Notification { method, params } => {
            array(w, 3)?;
            uint(w, 2)?;
            text(w, method)?;
            value(w, params)
        }
        Message::Error { error } => {
            array(w, 3)?;
            uint(w, 2)?;
            text(w, ERROR_METHOD)?;
            error_params(w, error)
        }
    }
}

/// The type byte and the id of a framed-binary message.
fn framed_binary_head(message: &Message) -> Result<(u8, u32), EncodeError> {
    let u32_id = |id: &CallId| id.as_u32().ok_or_else(|| EncodeError::IdNotU32(id.clone()));
    Ok(match message {
        Message::Request { id, .. } => (1, u32_id(id)?),
        Message::Response { id, .. } => (2, u32_id(id)?),
        Message::Notification { .. } | Message::Error { .. } => (3, 0),
    })
}

/// The framed-binary body: `{"method", "params"}`, `{"result"}` or `{"error", "code"}`.
fn framed_binary_body(w: &mut Body<'_>, message: &Message) -> Written {
    match message {
        Message::Request { method, params, .. } | Message::Notification { method, params } => {
            method_params(w, method, params, 2)
        }
        Message::Error { error } => {
            map(w, 2)?;
            text(w, "method")?;
            text(w, ERROR_METHOD)?;
            text(w, "params")?;
            error_params(w, error)
        }
        Message::Response { result: Ok(v), .. } => {
            map(w, 1)?;
            text(w, "result")?;
            value(w, v)
        }
        Message::Response { result: Err(e), .. } => {
            map(w, 2)?;
            text(w, "error")?;
            text(w, &e.message)?;
            text(w, "code")?;
            int(w, e.code.as_i64())
        }
    }
}

/// The framed-map body: `{"method", "params", "id"}`, `{"result", "error", "id"}` or
/// `{"method", "params"}`.
fn framed_map(w: &mut Body<'_>, message: &Message) -> Written {
    match message {
        Message::Request {
            id: i,
            method,
            params,
        } => {
            method_params(w, method, params, 3)?;
            text(w, "id")?;
            id(w, i)
        }
        Message::Error { error } => {
            map(w, 3)?;
            text(w, "result")?;
            nil(w)?;
            text(w, "error")?;
            error_map(w, error)?;
            text(w, "id")?;
            nil(w)
        }
        Message::Response { id: i, result } => {
            map(w, 3)?;
            text(w, "result")?;
            match result {
                Ok(v) => {
                    value(w, v)?;
                    text(w, "error")?;
                    nil(w)?;
                }
                Err(e) => {
                    nil(w)?;
                    text(w, "error")?;
                    error_map(w, e)?;
                }
            }
            text(w, "id")?;
            id(w, i)
        }
        Message::Notification { method, params } => method_params(w, method, params, 2),
    }
}

/// A map of `len` entries that starts with `"method"` and `"params"`.
fn method_params(w: &mut Body<'_>, method: &str, params: &RawValue, len: u32) -> Written {
    map(w, len)?;
    text(w, "method")?;
    text(w, method)?;
    text(w, "params")?;
    value(w, params)
}

/// `{"code", "message", "data"?}`.
fn error_map(w: &mut Body<'_>, e: &RpcError) -> Written {
    map(w, if e.data.is_some() { 3 } else { 2 })?;
    text(w, "code")?;
    int(w, e.code.as_i64())?;
    text(w, "message")?;
    text(w, &e.message)?;
    if let Some(data) = &e.data {
        text(w, "data")?;
        value(w, data)?;
    }
    Ok(())
}
