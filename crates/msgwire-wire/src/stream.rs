//! Streams built from notifications (docs/PROTOCOL.md, section 10).
//!
//! A stream is a call: it opens with an ordinary request and ends with the ordinary
//! response to it (the final result, or the terminal error). In between, items flow as
//! notifications whose first param is the call's id — the id the *caller* chose, in both
//! directions. Which side sent a notification tells how to read its id, so each kind
//! has its own method name:
//!
//! | method | sent by | params | meaning |
//! |---|---|---|---|
//! | `$/item` | callee | `[id, value]` | an item of the call's output |
//! | `$/item_error` | callee | `[id, code, message]` | a per-item error; the output goes on |
//! | `$/credit` | caller | `[id, items, bytes]` | the callee may send that many more |
//! | `$/send` | caller | `[id, value]` | an item of the call's input |
//! | `$/send_error` | caller | `[id, code, message]` | a per-item error in the input |
//! | `$/send_end` | caller | `[id]` | the input is complete |
//! | `$/send_credit` | callee | `[id, items, bytes]` | the caller may send that many more |
//!
//! plus `$/cancel` `[id]` (the caller gives up, as for any call) and the request
//! `$/ping` `[]`, answered at once with `nil`, which keeps a connection with streams
//! open honest. [`StreamMessage`] reads and writes all of them.

use bytes::Bytes;
use serde::Serialize;

use crate::dialect::read_id;
use crate::{CallId, Code, EncodeError, Message, RawValue, RpcError};

/// `$/item`: an item of a call's output, from the callee.
pub const ITEM_METHOD: &str = "$/item";
/// `$/item_error`: a per-item error in a call's output, from the callee.
pub const ITEM_ERROR_METHOD: &str = "$/item_error";
/// `$/credit`: the caller lets the callee send more output.
pub const CREDIT_METHOD: &str = "$/credit";
/// `$/send`: an item of a call's input, from the caller.
pub const SEND_METHOD: &str = "$/send";
/// `$/send_error`: a per-item error in a call's input, from the caller.
pub const SEND_ERROR_METHOD: &str = "$/send_error";
/// `$/send_end`: the caller's input is complete.
pub const SEND_END_METHOD: &str = "$/send_end";
/// `$/send_credit`: the callee lets the caller send more input.
pub const SEND_CREDIT_METHOD: &str = "$/send_credit";
/// `$/ping`: a request any peer answers at once (with `nil`, or with any error: an
/// answer is all that is asked).
pub const PING_METHOD: &str = "$/ping";

/// The credit a stream starts with in each direction, before any `$/credit`: items.
pub const DEFAULT_WINDOW_ITEMS: u32 = 64;
/// The credit a stream starts with in each direction, before any `$/credit`: bytes of
/// item values.
pub const DEFAULT_WINDOW_BYTES: u64 = 1024 * 1024;

/// Which way a stream message flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the callee to the caller: `$/item`, `$/item_error`, `$/send_credit`. The id
    /// is one of the receiver's own calls.
    FromCallee,
    /// From the caller to the callee: `$/send`, `$/send_error`, `$/send_end`,
    /// `$/credit`. The id is one of the peer's calls the receiver is answering.
    FromCaller,
}

/// One stream message, read from a notification or to be written as one.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// `$/item` or `$/send`: an item.
    Item {
        /// Which way.
        direction: Direction,
        /// The caller's id for the call.
        id: CallId,
        /// The item.
        value: RawValue,
    },
    /// `$/item_error` or `$/send_error`: a per-item error.
    ItemError {
        /// Which way.
        direction: Direction,
        /// The caller's id for the call.
        id: CallId,
        /// The error.
        error: RpcError,
    },
    /// `$/send_end`: the caller's input is complete.
    End {
        /// The caller's id for the call.
        id: CallId,
    },
    /// `$/credit` (from the caller, for output) or `$/send_credit` (from the callee,
    /// for input).
    Credit {
        /// Who grants it.
        direction: Direction,
        /// The caller's id for the call.
        id: CallId,
        /// Items more that may be sent.
        items: u32,
        /// Bytes of item values more that may be sent.
        bytes: u64,
    },
}

/// A stream notification whose params do not have their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct BadStreamMessage {
    /// The method.
    pub method: &'static str,
    /// The call's id, when it could be read.
    pub id: Option<CallId>,
    /// What is wrong.
    pub reason: &'static str,
}

impl std::fmt::Display for BadStreamMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed {} notification: {}", self.method, self.reason)
    }
}

impl std::error::Error for BadStreamMessage {}

/// The stream methods with their direction, for [`StreamMessage::parse`].
fn method_kind(method: &str) -> Option<(&'static str, Direction)> {
    use Direction::*;
    Some(match method {
        ITEM_METHOD => (ITEM_METHOD, FromCallee),
        ITEM_ERROR_METHOD => (ITEM_ERROR_METHOD, FromCallee),
        SEND_CREDIT_METHOD => (SEND_CREDIT_METHOD, FromCallee),
        SEND_METHOD => (SEND_METHOD, FromCaller),
        SEND_ERROR_METHOD => (SEND_ERROR_METHOD, FromCaller),
        SEND_END_METHOD => (SEND_END_METHOD, FromCaller),
        CREDIT_METHOD => (CREDIT_METHOD, FromCaller),
        _ => return None,
    })
}

/// Whether `method` is one of the stream notifications.
pub fn is_stream_method(method: &str) -> bool {
    method_kind(method).is_some()
}

impl StreamMessage {
    /// Reads a notification as a stream message: `None` if `method` is not a stream
    /// method, an error if its params do not have the method's shape.
    pub fn parse(method: &str, params: &RawValue) -> Option<Result<Self, BadStreamMessage>> {
        let (method, direction) = method_kind(method)?;
        let bad = |id: Option<CallId>, reason| BadStreamMessage { method, id, reason };
        let Some(mut items) = params.array_items() else {
            return Some(Err(bad(None, "the params are not an array")));
        };
        let Some(id) = items.next().and_then(|first| read_id(first.as_bytes())) else {
            return Some(Err(bad(None, "the first param is not a call id")));
        };
        let count = params.array_len().unwrap_or(0);
        let parsed = match method {
            ITEM_METHOD | SEND_METHOD => match (count, items.next()) {
                (2, Some(value)) => Ok(StreamMessage::Item {
                    direction,
                    id,
                    value,
                }),
                _ => Err(bad(Some(id), "expected [id, value]")),
            },
            ITEM_ERROR_METHOD | SEND_ERROR_METHOD => {
                let code = items.next().and_then(|c| c.deserialize::<i64>().ok());
                let message = items.next().and_then(|m| m.deserialize::<String>().ok());
                match (count, code, message) {
                    (3, Some(code), Some(message)) => Ok(StreamMessage::ItemError {
                        direction,
                        id,
                        error: RpcError::new(Code::from_i64(code), message),
                    }),
                    _ => Err(bad(Some(id), "expected [id, code, message]")),
                }
            }
            SEND_END_METHOD if count == 1 => Ok(StreamMessage::End { id }),
            SEND_END_METHOD => Err(bad(Some(id), "expected [id]")),
            _ => {
                let items_more = items.next().and_then(|n| n.deserialize::<u32>().ok());
                let bytes_more = items.next().and_then(|n| n.deserialize::<u64>().ok());
                match (count, items_more, bytes_more) {
                    (3, Some(items), Some(bytes)) => Ok(StreamMessage::Credit {
                        direction,
                        id,
                        items,
                        bytes,
                    }),
                    _ => Err(bad(
                        Some(id),
                        "expected [id, items, bytes] (unsigned integers)",
                    )),
                }
            }
        };
        Some(parsed)
    }

    /// The notification that carries this message.
    pub fn to_message(&self) -> Message {
        use Direction::*;
        let (method, params) = match self {
            StreamMessage::Item {
                direction,
                id,
                value,
            } => return item_message(*direction, item_params(id, value.as_bytes())),
            StreamMessage::ItemError {
                direction,
                id,
                error,
            } => {
                let method = match direction {
                    FromCallee => ITEM_ERROR_METHOD,
                    FromCaller => SEND_ERROR_METHOD,
                };
                let mut out = header(3, id);
                // Writing to a Vec cannot fail.
                let _ = rmp::encode::write_sint(&mut out, error.code.as_i64());
                let _ = rmp::encode::write_str(&mut out, &error.message);
                (method, trusted(out))
            }
            StreamMessage::End { id } => (SEND_END_METHOD, trusted(header(1, id))),
            StreamMessage::Credit {
                direction,
                id,
                items,
                bytes,
            } => {
                let method = match direction {
                    FromCaller => CREDIT_METHOD,
                    FromCallee => SEND_CREDIT_METHOD,
                };
                let mut out = header(3, id);
                let _ = rmp::encode::write_uint(&mut out, u64::from(*items));
                let _ = rmp::encode::write_uint(&mut out, *bytes);
                (method, trusted(out))
            }
        };
        Message::Notification {
            method: method.to_owned(),
            params,
        }
    }
}

/// The notification carrying an item, from its `[id, value]` params (made by
/// [`item_params`] or [`serialize_item`]).
pub fn item_message(direction: Direction, params: RawValue) -> Message {
    let method = match direction {
        Direction::FromCallee => ITEM_METHOD,
        Direction::FromCaller => SEND_METHOD,
    };
    Message::Notification {
        method: method.to_owned(),
        params,
    }
}

/// `[id, value]` params for an item whose value is serialized straight after the id,
/// without a copy of its own: the bytes of the value are `len - prefix` at the end.
/// Returns the params and how many bytes the value took.
pub fn serialize_item<T: Serialize + ?Sized>(
    id: &CallId,
    value: &T,
) -> Result<(RawValue, usize), EncodeError> {
    let mut written = Ok(());
    let mut len = 0;
    let mut tail = None;
    let head = crate::raw::write_out(|out| {
        write_header(out, 2, id);
        let prefix = out.len();
        let (result, spliced) =
            crate::bin::splicing(out, |sink| rmp_serde::encode::write_named(sink, value));
        written = result;
        len = out.len() - prefix + spliced.as_ref().map_or(0, Bytes::len);
        tail = spliced;
    });
    written.map_err(|e| EncodeError::Serialize(std::sync::Arc::new(e)))?;
    let params = match tail {
        // A value ending in a large `Bin`: its bytes are not copied (see `Bin`).
        Some(tail) => RawValue::spliced(head, tail),
        None => RawValue::trusted(head),
    };
    Ok((params, len))
}

/// `[id, value]` params for an item already encoded.
pub fn item_params(id: &CallId, value: &[u8]) -> RawValue {
    let mut out = header(2, id);
    out.extend_from_slice(value);
    trusted(out)
}

/// A fixarray header of `len` elements followed by `id`.
fn header(len: u8, id: &CallId) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    write_header(&mut out, len, id);
    out
}

/// Appends a fixarray header of `len` elements and `id` to `out`.
fn write_header(out: &mut Vec<u8>, len: u8, id: &CallId) {
    out.push(0x90 | len);
    // Writing to a Vec cannot fail.
    let _ = id.write(out);
}

fn trusted(out: Vec<u8>) -> RawValue {
    RawValue::trusted(Bytes::from(out))
}

/// The `$/ping` request with `id`.
pub fn ping(id: CallId) -> Message {
    Message::Request {
        id,
        method: PING_METHOD.to_owned(),
        params: RawValue::empty_array(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: StreamMessage) {
        let Message::Notification { method, params } = message.to_message() else {
            panic!("not a notification");
        };
        let parsed = StreamMessage::parse(&method, &params);
        assert_eq!(parsed, Some(Ok(message)));
    }

    #[test]
    fn every_kind_round_trips() {
        let id = CallId::from(7u32);
        let s = CallId::string("req-uuid-001").unwrap_or_else(|| CallId::from(0u32));
        for direction in [Direction::FromCallee, Direction::FromCaller] {
            round_trip(StreamMessage::Item {
                direction,
                id: id.clone(),
                value: RawValue::from(rmpv::Value::from("x")),
            });
            round_trip(StreamMessage::ItemError {
                direction,
                id: s.clone(),
                error: RpcError::not_found("gone"),
            });
            round_trip(StreamMessage::Credit {
                direction,
                id: id.clone(),
                items: 32,
                bytes: 1 << 20,
            });
        }
        round_trip(StreamMessage::End { id: s });
    }

    #[test]
    fn serialize_item_writes_the_value_after_the_id() {
        let id = CallId::from(300u32);
        let (params, len) = serialize_item(&id, &("ab", 1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            params.as_bytes(),
            [0x92, 0xcd, 0x01, 0x2c, 0x92, 0xa2, b'a', b'b', 1]
        );
        assert_eq!(len, 5);
    }

    #[test]
    fn bad_shapes_are_reported_with_the_id_when_it_can_be_read() {
        let params = RawValue::from(rmpv::Value::Array(vec![5.into()]));
        let parsed = StreamMessage::parse(ITEM_METHOD, &params);
        let Some(Err(bad)) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(bad.id, Some(CallId::from(5u32)));
        let params = RawValue::from(rmpv::Value::from("nope"));
        let Some(Err(bad)) = StreamMessage::parse(CREDIT_METHOD, &params) else {
            panic!("accepted")
        };
        assert_eq!(bad.id, None);
        let params = RawValue::from(rmpv::Value::Array(vec![5.into(), (-1).into(), 0.into()]));
        assert!(matches!(
            StreamMessage::parse(CREDIT_METHOD, &params),
            Some(Err(_))
        ));
        assert_eq!(StreamMessage::parse("other", &params), None);
    }
}
