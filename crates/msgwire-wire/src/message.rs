//! RPC messages, independent of the dialect that carries them.

use std::fmt;

use rmpv::Value;

use crate::Code;

/// A call's id, chosen by the caller and echoed in the response. msgpack-rpc and
/// framed-binary carry it as a u32; framed-map accepts any non-negative integer that
/// fits a u32 too.
pub type CallId = u32;

/// The method name a peer uses to cancel one of its own calls (see docs/PROTOCOL.md):
/// a notification `"$/cancel"` with params `[id]`.
pub const CANCEL_METHOD: &str = "$/cancel";

/// One RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that wants a response with the same id.
    Request {
        /// The caller's id for this call.
        id: CallId,
        /// The method to run.
        method: String,
        /// Positional (array) or named (map) params.
        params: Value,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: CallId,
        /// The result, or why there is none.
        result: Result<Value, RpcError>,
    },
    /// A one-way message: no response.
    Notification {
        /// The method.
        method: String,
        /// Positional (array) or named (map) params.
        params: Value,
    },
}

impl Message {
    /// The cancel notification for call `id`.
    pub fn cancel(id: CallId) -> Message {
        Message::Notification {
            method: CANCEL_METHOD.to_owned(),
            params: Value::Array(vec![Value::from(id)]),
        }
    }

    /// If this is a cancel notification, the id it cancels.
    pub fn cancelled_id(&self) -> Option<CallId> {
        match self {
            Message::Notification { method, params } if method == CANCEL_METHOD => params
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_u64)
                .and_then(|id| CallId::try_from(id).ok()),
            _ => None,
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
    /// Anything else the server wants to send along (msgpack-rpc: not carried).
    pub data: Option<Value>,
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
