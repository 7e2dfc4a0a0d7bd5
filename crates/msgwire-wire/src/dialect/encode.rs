//! Writing messages: the envelope (array or map headers, kinds, ids, method names,
//! error fields) goes straight to the buffer through `rmp`, and params and results
//! through `rmpv::encode::write_value` by reference — nothing is cloned, no temporary
//! `Value` tree is built. The bytes are the same as encoding the message as one
//! `rmpv::Value` (rmpv writes every integer and length in its most compact form, and so
//! does `rmp`); the byte-exact tests in `tests.rs` pin that.

use std::io::Write;

use rmp::encode::{write_array_len, write_map_len, write_nil, write_sint, write_str, write_uint};
use rmpv::Value;

use super::WireError;
use crate::{Message, RpcError};

fn fail(e: impl std::fmt::Display) -> WireError {
    WireError::Encode(e.to_string())
}

fn value<W: Write>(w: &mut W, v: &Value) -> Result<(), WireError> {
    rmpv::encode::write_value(w, v).map_err(fail)
}

fn text<W: Write>(w: &mut W, s: &str) -> Result<(), WireError> {
    write_str(w, s).map_err(fail)
}

fn uint<W: Write>(w: &mut W, n: u64) -> Result<(), WireError> {
    write_uint(w, n).map(drop).map_err(fail)
}

/// An `i64` as rmpv writes `Value::from(n)`: non-negative as unsigned, negative signed.
fn int<W: Write>(w: &mut W, n: i64) -> Result<(), WireError> {
    match u64::try_from(n) {
        Ok(n) => uint(w, n),
        Err(_) => write_sint(w, n).map(drop).map_err(fail),
    }
}

fn array<W: Write>(w: &mut W, len: u32) -> Result<(), WireError> {
    write_array_len(w, len).map(drop).map_err(fail)
}

fn map<W: Write>(w: &mut W, len: u32) -> Result<(), WireError> {
    write_map_len(w, len).map(drop).map_err(fail)
}

fn nil<W: Write>(w: &mut W) -> Result<(), WireError> {
    write_nil(w).map_err(fail)
}

/// `[0, id, method, params]`, `[1, id, error, result]` or `[2, method, params]`.
pub(super) fn msgpack_rpc<W: Write>(w: &mut W, message: &Message) -> Result<(), WireError> {
    match message {
        Message::Request { id, method, params } => {
            array(w, 4)?;
            uint(w, 0)?;
            uint(w, u64::from(*id))?;
            text(w, method)?;
            value(w, params)
        }
        Message::Response { id, result } => {
            array(w, 4)?;
            uint(w, 1)?;
            uint(w, u64::from(*id))?;
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
    }
}

/// The type byte and the id of a framed-binary message.
pub(super) fn framed_binary_head(message: &Message) -> (u8, u32) {
    match message {
        Message::Request { id, .. } => (1, *id),
        Message::Response { id, .. } => (2, *id),
        Message::Notification { .. } => (3, 0),
    }
}

/// The framed-binary body: `{"method", "params"}`, `{"result"}` or `{"error", "code"}`.
pub(super) fn framed_binary_body<W: Write>(w: &mut W, message: &Message) -> Result<(), WireError> {
    match message {
        Message::Request { method, params, .. } | Message::Notification { method, params } => {
            method_params(w, method, params, 2)
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
pub(super) fn framed_map<W: Write>(w: &mut W, message: &Message) -> Result<(), WireError> {
    match message {
        Message::Request { id, method, params } => {
            method_params(w, method, params, 3)?;
            text(w, "id")?;
            uint(w, u64::from(*id))
        }
        Message::Response { id, result } => {
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
            uint(w, u64::from(*id))
        }
        Message::Notification { method, params } => method_params(w, method, params, 2),
    }
}

/// A map of `len` entries that starts with `"method"` and `"params"`.
fn method_params<W: Write>(
    w: &mut W,
    method: &str,
    params: &Value,
    len: u32,
) -> Result<(), WireError> {
    map(w, len)?;
    text(w, "method")?;
    text(w, method)?;
    text(w, "params")?;
    value(w, params)
}

/// `{"code", "message", "data"?}`.
fn error_map<W: Write>(w: &mut W, e: &RpcError) -> Result<(), WireError> {
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
