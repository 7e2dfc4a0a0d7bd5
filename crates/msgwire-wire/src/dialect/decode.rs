//! From one whole frame to a [`Message`], for each dialect, reading the envelope straight
//! from the bytes: params and results become [`RawValue`] slices of the frame, nothing
//! else is copied but the method name, and no `rmpv::Value` tree is built.
//!
//! When a frame is not a message, the error says as much as could be read — whether it
//! was a request or a response, and its id — so that the connection can answer the
//! request or fail the call waiting for the response (docs/PROTOCOL.md, section 7):
//!
//! ```text
//! [0, 9, 42, []]                      request 9, method not a str  -> answer 9
//! {"method": "m", "id": [1]}          a bad id                     -> answer with id nil
//! {"params": [], "id": "r-1"}         no method                    -> answer "r-1"
//! [1, 5, nil]                         response 5 of the wrong size -> fail call 5
//! ```

use std::ops::Range;

use bytes::Bytes;
use msgwire_frame::msgpack::{MsgpackScanner, Scan};

use super::read::{error_from, is_nil, params, read_i64, read_id, read_method, read_str, Reader};
use super::Dialect;
use crate::error::{Malformed, MalformedReason, MessageKind};
use crate::{CallId, Code, Limits, Message, RawValue, RpcError, ERROR_METHOD};

type Parsed = Result<Message, Malformed>;

// ---- msgpack-rpc -------------------------------------------------------------------

/// `frame` is one whole value the framing has measured (and checked) already; `depth`
/// is how deep it nests, the envelope array included.
pub(crate) fn parse_msgpack_rpc(frame: Bytes, depth: usize, limits: &Limits) -> Parsed {
    let too_deep = depth > limits.max_depth() + 1;
    let mut r = Reader::new(&frame, limits);
    let Some(len) = r.array_len() else {
        return Err(Malformed::new(
            MessageKind::Unknown,
            None,
            MalformedReason::NotRpcArray,
        ));
    };
    let kind = r.slice().ok().and_then(read_i64);
    let fail = |kind, id, reason| Err(Malformed::new(kind, id, reason));
    match kind {
        Some(0) | Some(1) => {
            let kind = if kind == Some(0) {
                MessageKind::Request
            } else {
                MessageKind::Response
            };
            let id = r.slice().ok().and_then(read_id);
            if len != 4 {
                return fail(kind, id, MalformedReason::NotRpcArray);
            }
            let Some(id) = id else {
                return fail(kind, None, MalformedReason::BadId);
            };
            if too_deep {
                return fail(kind, Some(id), too_deep_reason(limits));
            }
            if kind == MessageKind::Request {
                let Some(method) = r.slice().ok().and_then(read_method) else {
                    return fail(kind, Some(id), MalformedReason::MethodNotStr);
                };
                match params(&frame, r.rest()) {
                    Ok(params) => Ok(Message::Request { id, method, params }),
                    Err(reason) => fail(kind, Some(id), reason),
                }
            } else {
                let error = match r.value() {
                    Ok(range) => range,
                    Err(reason) => return fail(kind, Some(id), reason),
                };
                let result = if is_nil(&frame[error.clone()]) {
                    Ok(RawValue::trusted(frame.slice(r.rest())))
                } else {
                    Err(error_from(&frame, error, limits))
                };
                Ok(Message::Response { id, result })
            }
        }
        Some(2) => {
            let kind = MessageKind::Notification;
            if len != 3 {
                return fail(kind, None, MalformedReason::NotRpcArray);
            }
            if too_deep {
                return fail(kind, None, too_deep_reason(limits));
            }
            let Some(method) = r.slice().ok().and_then(read_method) else {
                return fail(kind, None, MalformedReason::MethodNotStr);
            };
            notification(&frame, method, r.rest(), limits)
        }
        _ => fail(MessageKind::Unknown, None, MalformedReason::NotRpcArray),
    }
}

fn too_deep_reason(limits: &Limits) -> MalformedReason {
    MalformedReason::TooDeep {
        max: limits.max_depth(),
    }
}

/// A notification, or the [`Message::Error`] that the `"$/error"` notification carries.
fn notification(frame: &Bytes, method: String, at: Range<usize>, limits: &Limits) -> Parsed {
    if method == ERROR_METHOD {
        return Ok(Message::Error {
            error: error_from(frame, at, limits),
        });
    }
    match params(frame, at) {
        Ok(params) => Ok(Message::Notification { method, params }),
        Err(reason) => Err(Malformed::new(MessageKind::Notification, None, reason)),
    }
}

// ---- the framed dialects' maps -----------------------------------------------------

/// Where the known keys of a framed body's map are, as far as it could be read.
#[derive(Debug, Default)]
struct Fields {
    method: Option<Range<usize>>,
    params: Option<Range<usize>>,
    id: Option<Range<usize>>,
    result: Option<Range<usize>>,
    error: Option<Range<usize>>,
    code: Option<Range<usize>>,
    /// Some value nests deeper than the limit.
    too_deep: bool,
    /// Why the map could not be read to its end, if it could not.
    broken: Option<MalformedReason>,
}

impl Fields {
    /// Steps over every key and value of the map that fills `body` (checking each), and
    /// notes where the known keys' values are. Unknown keys are skipped; a key given
    /// twice keeps its last value.
    fn read(body: &[u8], limits: &Limits) -> Fields {
        let mut fields = Fields::default();
        let mut r = Reader::new(body, limits);
        let Some(entries) = r.map_len() else {
            fields.broken = Some(MalformedReason::NotAMap);
            return fields;
        };
        for _ in 0..entries {
            let entry = r.slice().and_then(|key| Ok((key, r.value()?)));
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(reason) => {
                    fields.broken = Some(reason);
                    fields.too_deep |= r.too_deep;
                    return fields;
                }
            };
            let slot = match read_str(key) {
                Some("method") => &mut fields.method,
                Some("params") => &mut fields.params,
                Some("id") => &mut fields.id,
                Some("result") => &mut fields.result,
                Some("error") => &mut fields.error,
                Some("code") => &mut fields.code,
                _ => continue,
            };
            *slot = Some(value);
        }
        fields.too_deep = r.too_deep;
        if r.remaining() > 0 {
            fields.broken = Some(MalformedReason::TrailingBytes(r.remaining()));
        }
        fields
    }

    /// The method, a str (or a bin of UTF-8).
    fn method(&self, body: &[u8]) -> Option<String> {
        let range = self.method.clone()?;
        read_method(&body[range])
    }

    /// The params; missing means none.
    fn params(&self, body: &Bytes) -> Result<RawValue, MalformedReason> {
        match self.params.clone() {
            Some(range) => params(body, range),
            None => Ok(RawValue::empty_array()),
        }
    }

    /// The error, if there is one and it is not nil.
    fn error(&self, body: &Bytes) -> Option<Range<usize>> {
        self.error.clone().filter(|r| !is_nil(&body[r.clone()]))
    }

    /// The result; missing means nil.
    fn result(&self, body: &Bytes) -> RawValue {
        self.result
            .clone()
            .map_or_else(RawValue::nil, |range| RawValue::trusted(body.slice(range)))
    }
}

// ---- framed-binary -----------------------------------------------------------------

/// `[type][id: u32 BE][map]`, the length prefix already removed.
pub(crate) fn parse_framed_binary(frame: Bytes, limits: &Limits) -> Parsed {
    let kind_of = |t: u8| match t {
        1 => MessageKind::Request,
        2 => MessageKind::Response,
        3 => MessageKind::Notification,
        _ => MessageKind::Unknown,
    };
    let (Some(&t), Some(id)) = (frame.first(), frame.get(1..5)) else {
        let kind = frame.first().map_or(MessageKind::Unknown, |&t| kind_of(t));
        return Err(Malformed::new(
            kind,
            None,
            MalformedReason::ShortHeader(frame.len()),
        ));
    };
    let kind = kind_of(t);
    if kind == MessageKind::Unknown {
        return Err(Malformed::new(kind, None, MalformedReason::UnknownType(t)));
    }
    let id = CallId::from(u32::from_be_bytes([id[0], id[1], id[2], id[3]]));
    // A notification's id is 0 and means nothing.
    let known_id = (kind != MessageKind::Notification).then(|| id.clone());
    let body = frame.slice(5..);
    let fields = Fields::read(&body, limits);
    let fail = |reason| Err(Malformed::new(kind, known_id.clone(), reason));
    if let Some(reason) = fields.broken.clone() {
        return fail(reason);
    }
    if fields.too_deep {
        return fail(too_deep_reason(limits));
    }
    match kind {
        MessageKind::Response => {
            let result = match fields.error(&body) {
                None => Ok(fields.result(&body)),
                Some(error) => {
                    let mut e = error_from(&body, error, limits);
                    if e.code == Code::Unknown {
                        if let Some(code) = fields.code.clone() {
                            e.code = read_i64(&body[code]).map_or(Code::Unknown, Code::from_i64);
                        }
                    }
                    Err(e)
                }
            };
            Ok(Message::Response { id, result })
        }
        _ => {
            let Some(method) = fields.method(&body) else {
                return fail(if fields.method.is_some() {
                    MalformedReason::MethodNotStr
                } else {
                    MalformedReason::NoMethod
                });
            };
            if kind == MessageKind::Notification {
                let at = fields.params.clone();
                return match at {
                    Some(at) => notification(&body, method, at, limits),
                    None if method == ERROR_METHOD => Ok(Message::Error {
                        error: RpcError::new(Code::Unknown, String::new()),
                    }),
                    None => Ok(Message::Notification {
                        method,
                        params: RawValue::empty_array(),
                    }),
                };
            }
            match fields.params(&body) {
                Ok(params) => Ok(Message::Request { id, method, params }),
                Err(reason) => fail(reason),
            }
        }
    }
}

// ---- framed-map --------------------------------------------------------------------

/// One map, the length prefix already removed.
pub(crate) fn parse_framed_map(body: Bytes, limits: &Limits) -> Parsed {
    let fields = Fields::read(&body, limits);
    // The id: absent or nil means none; anything else must be a valid id.
    let id = match fields.id.clone() {
        None => Ok(None),
        Some(range) if is_nil(&body[range.clone()]) => Ok(None),
        Some(range) => read_id(&body[range]).map(Some).ok_or(()),
    };
    let has_method = fields.method.is_some();
    let is_response = !has_method && (fields.result.is_some() || fields.error.is_some());
    let readable_id = id.clone().ok().flatten();
    // Without an id in what could be read, a map that broke off may still have had one:
    // it is a notification only if it was read to its end.
    let kind = if is_response {
        MessageKind::Response
    } else if has_method && matches!(id, Ok(None)) && fields.broken.is_none() {
        MessageKind::Notification
    } else if has_method || id.is_err() || readable_id.is_some() {
        if fields.broken.is_some() && readable_id.is_none() {
            MessageKind::Unknown
        } else {
            MessageKind::Request
        }
    } else {
        MessageKind::Unknown
    };
    let fail = |reason| Err(Malformed::new(kind, readable_id.clone(), reason));
    if let Some(reason) = fields.broken.clone() {
        return fail(reason);
    }
    let Ok(id) = id else {
        return Err(Malformed::new(kind, None, MalformedReason::BadId));
    };
    if fields.too_deep {
        return fail(too_deep_reason(limits));
    }
    if is_response {
        let error = fields.error(&body);
        return match (id, error) {
            (Some(id), None) => Ok(Message::Response {
                id,
                result: Ok(fields.result(&body)),
            }),
            (Some(id), Some(error)) => Ok(Message::Response {
                id,
                result: Err(error_from(&body, error, limits)),
            }),
            (None, Some(error)) => Ok(Message::Error {
                error: error_from(&body, error, limits),
            }),
            (None, None) => fail(MalformedReason::ResponseWithoutId),
        };
    }
    if !has_method {
        let kind = if id.is_some() {
            MessageKind::Request
        } else {
            MessageKind::Unknown
        };
        return Err(Malformed::new(kind, id, MalformedReason::NoMethod));
    }
    let Some(method) = fields.method(&body) else {
        return fail(MalformedReason::MethodNotStr);
    };
    match id {
        Some(id) => match fields.params(&body) {
            Ok(params) => Ok(Message::Request { id, method, params }),
            Err(reason) => fail(reason),
        },
        None => match fields.params.clone() {
            Some(at) => notification(&body, method, at, limits),
            None => Ok(Message::Notification {
                method,
                params: RawValue::empty_array(),
            }),
        },
    }
}

// ---- when the stream is broken ------------------------------------------------------

/// The id of the request at the front of `buf`, read from its first bytes, for a stream
/// that broke inside that request (nesting too deep to measure, a frame over the
/// limit): it can still be answered before the connection closes.
///
/// msgpack-rpc: `94 00 <id>`; framed-binary: `<length> 01 <id: 4 bytes>`. framed-map
/// keeps its id inside the map, where a broken frame cannot be read.
pub(crate) fn salvage_request_id(dialect: Dialect, buf: &[u8]) -> Option<CallId> {
    match dialect {
        Dialect::MsgpackRpc => {
            let rest = buf.strip_prefix(&[0x94, 0x00])?;
            // An id is a small value: an integer or a short str.
            let mut scanner = MsgpackScanner::with_limits(0, crate::id::MAX_STR_ID_LEN + 5);
            match scanner.scan(rest) {
                Ok(Scan::Complete(n)) => read_id(&rest[..n]),
                _ => None,
            }
        }
        Dialect::FramedBinary => match buf.get(4..9)? {
            [1, a, b, c, d] => Some(CallId::from(u32::from_be_bytes([*a, *b, *c, *d]))),
            _ => None,
        },
        Dialect::FramedMap => None,
    }
}
