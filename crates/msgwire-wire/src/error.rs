//! What can go wrong between bytes and messages, as typed errors.
//!
//! ```text
//! WireError
//! ├── Stream     the byte stream is broken (no dialect framing can find the next
//! │              message): close the connection — after answering `request`, if the
//! │              broken message was a request whose id could be read
//! ├── Malformed  a whole frame arrived but is not a message; the stream goes on.
//! │              `kind` and `id` say who, if anyone, can be answered
//! ├── Encode     a message could not become bytes (too long, an id the dialect
//! │              cannot carry, params serde cannot write)
//! └── Io         only from the tokio-util adapter, never from the sans-IO core
//! ```

use std::fmt;
use std::sync::Arc;

use crate::CallId;

/// `Result` with this crate's [`WireError`].
pub type Result<T, E = WireError> = std::result::Result<T, E>;

/// Why bytes could not become a message, or a message could not become bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The byte stream itself is broken (a frame over the limit, invalid MessagePack in
    /// a dialect with no length prefix, nesting too deep to measure): it cannot be
    /// resynchronised; close the connection.
    #[error("{error}")]
    Stream {
        /// What the framing layer found.
        #[source]
        error: msgwire_frame::Error,
        /// The id of the request the broken bytes began, if it could be read: answer it
        /// with an error before closing.
        request: Option<CallId>,
    },
    /// A whole frame arrived, but it is not a valid message. The stream is intact: the
    /// next message can be read.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// An I/O error, from the `tokio_util::codec` adapter only.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl WireError {
    /// Whether the connection cannot go on after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, WireError::Stream { .. } | WireError::Io(_))
    }
}

impl From<msgwire_frame::Error> for WireError {
    fn from(error: msgwire_frame::Error) -> Self {
        WireError::Stream {
            error,
            request: None,
        }
    }
}

/// What kind of message a frame was meant to be, as far as could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// A request: answer it (with an error) if its id is known.
    Request,
    /// A response: fail the call waiting for its id, if any.
    Response,
    /// A notification.
    Notification,
    /// Not even that could be told.
    Unknown,
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::Request => "request",
            MessageKind::Response => "response",
            MessageKind::Notification => "notification",
            MessageKind::Unknown => "message",
        })
    }
}

/// A whole frame that is not a valid message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed {kind}{}: {reason}", id.as_ref().map(|id| format!(" (id {id})")).unwrap_or_default())]
pub struct Malformed {
    /// What the frame was meant to be.
    pub kind: MessageKind,
    /// Its id, if one could be read.
    pub id: Option<CallId>,
    /// What is wrong.
    pub reason: MalformedReason,
}

impl Malformed {
    pub(crate) fn new(kind: MessageKind, id: Option<CallId>, reason: MalformedReason) -> Self {
        Self { kind, id, reason }
    }

    /// The id of the request this frame was, if it was a request whose id could be read:
    /// it should get an INVALID_ARGUMENT answer.
    pub fn request_id(&self) -> Option<&CallId> {
        match self.kind {
            MessageKind::Request => self.id.as_ref(),
            _ => None,
        }
    }

    /// The id of the response this frame was, if it was a response whose id could be
    /// read: the call waiting for it should fail.
    pub fn response_id(&self) -> Option<&CallId> {
        match self.kind {
            MessageKind::Response => self.id.as_ref(),
            _ => None,
        }
    }
}

/// What is wrong with a [`Malformed`] frame.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedReason {
    /// msgpack-rpc: not `[0, id, method, params]`, `[1, id, error, result]` or
    /// `[2, method, params]`.
    #[error("expected [0, id, method, params], [1, id, error, result] or [2, method, params]")]
    NotRpcArray,
    /// A framed body that is not a map.
    #[error("the body is not a MessagePack map")]
    NotAMap,
    /// framed-binary: fewer than the 5 bytes of type and id.
    #[error("a framed-binary frame of {0} bytes is shorter than its 5-byte header")]
    ShortHeader(usize),
    /// framed-binary: a type byte other than 1, 2, 3.
    #[error("unknown framed-binary type {0} (1 request, 2 response, 3 notification)")]
    UnknownType(u8),
    /// The id is not an integer or a str of at most
    /// [`MAX_STR_ID_LEN`](crate::id::MAX_STR_ID_LEN) bytes.
    #[error("the id must be an integer or a str of at most 256 bytes")]
    BadId,
    /// framed-map: a map with an id but neither `"method"` nor `"result"`/`"error"`.
    #[error("a request needs \"method\" (a str)")]
    NoMethod,
    /// The method is not a UTF-8 str.
    #[error("the method must be a str")]
    MethodNotStr,
    /// Params that are neither an array nor a map (nor nil).
    #[error("params must be an array or a map")]
    BadParams,
    /// Arrays and maps nested deeper than the limit inside params, a result or an error.
    #[error("the message nests arrays/maps deeper than the limit of {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The bytes are not valid MessagePack (the marker `0xc1`, a length past the frame).
    #[error("invalid MessagePack: {0}")]
    InvalidMsgpack(#[source] Arc<msgwire_frame::Error>),
    /// The frame ends inside a MessagePack value.
    #[error("the frame ends inside a MessagePack value")]
    Truncated,
    /// Bytes after the one value a frame must hold.
    #[error("{0} bytes follow the MessagePack value")]
    TrailingBytes(usize),
    /// framed-map: a response whose id is nil and that carries no error.
    #[error("a response needs an id")]
    ResponseWithoutId,
}

/// Why a message could not be encoded. Nothing is written when encoding fails.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message is longer than the frame limit.
    #[error("a message of {length} bytes exceeds the frame limit of {max} bytes")]
    TooLong {
        /// Its length (the part a length prefix counts).
        length: usize,
        /// The limit.
        max: usize,
    },
    /// framed-binary carries u32 ids only.
    #[error("framed-binary ids are u32; {0} is not")]
    IdNotU32(CallId),
    /// serde could not write the value as MessagePack.
    #[error("cannot write the value as MessagePack: {0}")]
    Serialize(#[source] Arc<rmp_serde::encode::Error>),
    /// The writer failed (never happens with in-memory buffers).
    #[error("cannot write MessagePack: {0}")]
    Write(#[source] Arc<std::io::Error>),
}

impl From<rmp::encode::ValueWriteError> for EncodeError {
    fn from(e: rmp::encode::ValueWriteError) -> Self {
        let io = match e {
            rmp::encode::ValueWriteError::InvalidMarkerWrite(e)
            | rmp::encode::ValueWriteError::InvalidDataWrite(e) => e,
        };
        EncodeError::Write(Arc::new(io))
    }
}

impl From<std::io::Error> for EncodeError {
    fn from(e: std::io::Error) -> Self {
        EncodeError::Write(Arc::new(e))
    }
}

/// A limit that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_depth` over [`MAX_DEPTH_LIMIT`](crate::MAX_DEPTH_LIMIT).
    #[error("max depth {depth} is over the largest supported, {limit}")]
    DepthTooLarge {
        /// What was asked for.
        depth: usize,
        /// The largest supported.
        limit: usize,
    },
    /// `max_frame_length` of 0.
    #[error("max frame length must be at least 1 byte")]
    FrameTooSmall,
    /// The framing layer refused the options.
    #[error("framing options refused: {0}")]
    Framing(#[source] Arc<msgwire_frame::Error>),
}
