//! RPC messages, independent of the dialect that carries them.

use std::fmt;

use crate::{CallId, Code, RawValue};

/// The method name a peer uses to cancel one of its own calls (see docs/PROTOCOL.md):
/// a notification `"$/cancel"` with params `[id]`.
pub const CANCEL_METHOD: &str = "$/cancel";

/// The method name of the notification that carries [`Message::Error`] in msgpack-rpc
/// and framed-binary: `"$/error"` with params `[code, message]`.
pub const ERROR_METHOD: &str = "$/error";

/// One RPC message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// A call that wants a response with the same id.
    Request {
        /// The caller's id for this call.
        id: CallId,
        /// The method to run.
        method: String,
        /// Positional (array) or named (map) params.
        params: RawValue,
    },
    /// The answer to a request.
    Response {
        /// The request's id, echoed exactly.
        id: CallId,
        /// The result, or why there is none.
        result: Result<RawValue, RpcError>,
    },
    /// A one-way message: no response.
    Notification {
        /// The method.
        method: String,
        /// Positional (array) or named (map) params.
        params: RawValue,
    },
    /// An error that belongs to no call: the sender could not read a message of the
    /// receiver's well enough to find its id. Never answered. framed-map writes it as a
    /// response with `"id": nil` (as JSON-RPC does); msgpack-rpc and framed-binary as
    /// the notification [`ERROR_METHOD`] `[code, message]`, after which the sender
    /// closes the connection.
    Error {
        /// What was wrong.
        error: RpcError,
    },
}

impl Message {
    /// The cancel notification for call `id`.
    pub fn cancel(id: &CallId) -> Message {
        let mut params = Vec::with_capacity(id.encoded_len_hint() + 1);
        // A fixarray of one element, then the id; writing to a Vec cannot fail.
        params.push(0x91);
        if id.write(&mut params).is_err() {
            params.truncate(1);
        }
        Message::Notification {
            method: CANCEL_METHOD.to_owned(),
            params: RawValue::trusted(params.into()),
        }
    }

    /// If this is a cancel notification, the id it cancels.
    pub fn cancelled_id(&self) -> Option<CallId> {
        match self {
            Message::Notification { method, params } if method == CANCEL_METHOD => {
                let first = params.array_items()?.next()?;
                crate::dialect::read_id(first.as_bytes())
            }
            _ => None,
        }
    }

    /// About how many bytes the message takes on the wire (exact for params and results,
    /// a small overestimate for the envelope): what outgoing queues count.
    pub fn encoded_len_hint(&self) -> usize {
        const ENVELOPE: usize = 48;
        match self {
            Message::Request { id, method, params } => {
                ENVELOPE + id.encoded_len_hint() + method.len() + params.len()
            }
            Message::Response { id, result } => {
                ENVELOPE
                    + id.encoded_len_hint()
                    + match result {
                        Ok(v) => v.len(),
                        Err(e) => e.encoded_len_hint(),
                    }
            }
            Message::Notification { method, params } => ENVELOPE + method.len() + params.len(),
            Message::Error { error } => ENVELOPE + error.encoded_len_hint(),
        }
    }
}

/// An error a call ends with: a code, a message for people, and optional data.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// What kind of failure.
    pub code: Code,
    /// What went wrong, for people.
    pub message: String,
    /// Anything else the server wants to send along (framed-map only; msgpack-rpc and
    /// framed-binary do not carry it).
    pub data: Option<RawValue>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// INVALID_ARGUMENT (3).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// NOT_FOUND (5).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// UNIMPLEMENTED (12) for `method`.
    pub fn unimplemented(method: &str) -> Self {
        let method = crate::text::excerpt(method, crate::text::EXCERPT_LEN);
        Self::new(Code::Unimplemented, format!("no such method: {method}"))
    }

    /// INTERNAL (13).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// RESOURCE_EXHAUSTED (8).
    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(Code::ResourceExhausted, message)
    }

    /// DEADLINE_EXCEEDED (4).
    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(Code::DeadlineExceeded, message)
    }

    /// The error with `data` attached.
    pub fn with_data(mut self, data: impl Into<RawValue>) -> Self {
        self.data = Some(data.into());
        self
    }

    fn encoded_len_hint(&self) -> usize {
        16 + self.message.len() + self.data.as_ref().map_or(0, RawValue::len)
    }

    /// CANCELLED (1).
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(Code::Cancelled, message)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for RpcError {}
