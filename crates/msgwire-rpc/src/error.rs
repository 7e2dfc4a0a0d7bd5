//! What a call can end with besides its result, why a connection closed, and how
//! middleware errors become status codes.

use std::io;
use std::sync::Arc;

use msgwire_wire::{Code, EncodeError, Malformed, RpcError};

/// `Result` with this crate's [`CallError`].
pub type Result<T, E = CallError> = std::result::Result<T, E>;

/// Why a call made with [`Client::call`](crate::Client::call) (or through a
/// [`Context`](crate::Context)) did not produce a result.
///
/// [`CallError::Rpc`] is the peer's own answer; every other variant is something that
/// happened on this side or to the connection. [`CallError::code`] maps each to a
/// status code for callers that only want one.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The peer answered the call with an error.
    #[error("{0}")]
    Rpc(RpcError),
    /// The call's deadline passed before the answer arrived. The peer was sent the cancel
    /// notification for the call.
    #[error("DEADLINE_EXCEEDED (4): the call's deadline passed before the answer arrived")]
    DeadlineExceeded,
    /// The connection is closed (by either side) or closed before the answer arrived.
    #[error("connection closed")]
    Closed,
    /// The connection failed with an I/O error before the answer arrived.
    #[error("connection failed: {0}")]
    Io(Arc<io::Error>),
    /// The peer broke the protocol: the connection was closed, or the answer to this
    /// call could not be read.
    #[error(transparent)]
    Protocol(ProtocolError),
    /// The params could not be turned into MessagePack, or the message was too large to
    /// send.
    #[error("cannot send the call: {0}")]
    Encode(EncodeError),
    /// The peer's result does not have the type the caller asked for.
    #[error("unexpected result: {0}")]
    Decode(Arc<rmp_serde::decode::Error>),
    /// A per-item error in a stream: this item failed, the stream goes on (see
    /// [`is_item_error`](Self::is_item_error)).
    #[error("item error: {0}")]
    Item(RpcError),
    /// The stream is over (answered, cancelled, or the peer stopped reading its input):
    /// nothing more can be sent on it.
    #[error("the stream is over; nothing more can be sent on it")]
    StreamEnded,
}

impl CallError {
    /// The status code that best describes this error: the peer's code for
    /// [`CallError::Rpc`], DEADLINE_EXCEEDED for a passed deadline, UNAVAILABLE for a
    /// connection that is gone, INVALID_ARGUMENT for params that cannot be encoded,
    /// INTERNAL for a result of the wrong type or an answer that cannot be read.
    pub fn code(&self) -> Code {
        match self {
            CallError::Rpc(e) => e.code,
            CallError::DeadlineExceeded => Code::DeadlineExceeded,
            CallError::Closed | CallError::Io(_) => Code::Unavailable,
            CallError::Protocol(ProtocolError::MalformedResponse(_)) => Code::Internal,
            CallError::Protocol(ProtocolError::StreamRules(e)) => e.code,
            CallError::Item(e) => e.code,
            CallError::StreamEnded => Code::FailedPrecondition,
            CallError::Protocol(_) => Code::Unavailable,
            CallError::Encode(_) => Code::InvalidArgument,
            CallError::Decode(_) => Code::Internal,
        }
    }

    /// The peer's error, if the peer answered with one.
    pub fn rpc_error(&self) -> Option<&RpcError> {
        match self {
            CallError::Rpc(e) | CallError::Item(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is a per-item error of a stream, after which the stream goes on;
    /// every other error a stream yields is its last.
    pub fn is_item_error(&self) -> bool {
        matches!(self, CallError::Item(_))
    }

    /// Whether the call failed because the connection is gone (closed, I/O error, or
    /// a protocol violation by the peer that closed it).
    pub fn is_connection_error(&self) -> bool {
        match self {
            CallError::Closed | CallError::Io(_) => true,
            CallError::Protocol(p) => !matches!(
                p,
                ProtocolError::MalformedResponse(_) | ProtocolError::StreamRules(_)
            ),
            _ => false,
        }
    }
}

/// How a peer broke the protocol.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The peer's bytes are not a valid message stream; the connection was closed.
    #[error("connection closed: the peer broke the protocol: {0}")]
    Stream(Arc<msgwire_frame::Error>),
    /// The peer sent a message that cannot be read and that has no id to answer; in
    /// msgpack-rpc and framed-binary the connection is closed.
    #[error("connection closed: the peer sent a message that cannot be read: {0}")]
    Malformed(Malformed),
    /// The peer's response to this call cannot be read.
    #[error("the peer's answer cannot be read: {0}")]
    MalformedResponse(Malformed),
    /// The peer broke a stream's rules (sent past its credit, or a stream message of the
    /// wrong shape): the stream was ended and the peer told to cancel it.
    #[error("the peer broke the stream's rules: {0}")]
    StreamRules(RpcError),
}

impl From<RpcError> for CallError {
    fn from(e: RpcError) -> Self {
        CallError::Rpc(e)
    }
}

impl From<CallError> for RpcError {
    /// A failed call to the peer as an error a handler can return: the peer's own error
    /// is passed on unchanged; anything else becomes an error with [`CallError::code`].
    fn from(e: CallError) -> Self {
        match e {
            CallError::Rpc(e) => e,
            other => RpcError::new(other.code(), other.to_string()),
        }
    }
}

/// The boxed error type tower middleware reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Turns an error from a tower layer into an [`RpcError`] for the peer:
///
/// * an [`RpcError`] (from the router or a handler) is kept as it is;
/// * [`tower::timeout::error::Elapsed`] becomes DEADLINE_EXCEEDED (4);
/// * [`tower::load_shed::error::Overloaded`] becomes RESOURCE_EXHAUSTED (8);
/// * anything else becomes INTERNAL (13) with the error's text.
pub fn rpc_error_from_box(error: BoxError) -> RpcError {
    let error = match error.downcast::<RpcError>() {
        Ok(e) => return *e,
        Err(other) => other,
    };
    if error.is::<tower::timeout::error::Elapsed>() {
        RpcError::deadline_exceeded("the server's time limit for this call elapsed")
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        RpcError::resource_exhausted("the server is overloaded")
    } else {
        RpcError::internal(error.to_string())
    }
}

/// Why a connection ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloseReason {
    /// Closed in an orderly way: by either side, or a graceful shutdown that finished.
    Closed,
    /// Nothing was read and nothing was in flight for the idle timeout.
    IdleTimeout,
    /// The peer answered nothing, not even a `$/ping`, for the keepalive interval and
    /// timeout while calls or streams were open.
    KeepaliveTimeout,
    /// An I/O error.
    Io(Arc<io::Error>),
    /// The peer broke the protocol.
    Protocol(ProtocolError),
}

impl CloseReason {
    /// The error a call still waiting on the connection fails with.
    pub fn to_call_error(&self) -> CallError {
        match self {
            CloseReason::Closed | CloseReason::IdleTimeout => CallError::Closed,
            CloseReason::KeepaliveTimeout => CallError::Io(Arc::new(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer stopped answering (no answer to a keepalive $/ping)",
            ))),
            CloseReason::Io(e) => CallError::Io(Arc::clone(e)),
            CloseReason::Protocol(p) => CallError::Protocol(p.clone()),
        }
    }
}

/// INTERNAL for a handler that panicked, quoting the panic message when it is text.
pub(crate) fn panic_error(method: Option<&str>, panic: &(dyn std::any::Any + Send)) -> RpcError {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    let text = msgwire_wire::text::excerpt(text, msgwire_wire::text::EXCERPT_LEN);
    let method = method.map(|m| msgwire_wire::text::excerpt(m, 64));
    tracing::error!(method = method.as_deref(), panic = %text, "handler panicked");
    match method {
        Some(method) => RpcError::internal(format!(
            "the handler for method \"{method}\" panicked: {text}"
        )),
        None => RpcError::internal(format!("the handler panicked: {text}")),
    }
}
