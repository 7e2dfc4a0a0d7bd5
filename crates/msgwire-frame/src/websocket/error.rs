//! [`WebSocketError`]: what only the WebSocket framing rejects.

use super::Opcode;

/// Errors only the WebSocket framing raises. They are wrapped in
/// [`Error::WebSocket`](crate::Error::WebSocket); all are fatal. Over-long frames and
/// messages are reported with the shared [`Error::TooLong`](crate::Error::TooLong).
///
/// The RFC 6455 close code a server or client should answer with is given by
/// [`close_code`](Self::close_code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebSocketError {
    /// An opcode reserved for future use: 0x3–0x7 or 0xB–0xF (RFC 6455 section 5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RSV1, RSV2 or RSV3 set, but no extension was negotiated. The value is the three
    /// bits, RSV1 as 0b100.
    #[error("reserved bits {0:#05b} set without a negotiated extension")]
    ReservedBits(u8),
    /// A server received a frame the client did not mask (RFC 6455 section 5.1).
    #[error("unmasked frame from a client")]
    UnmaskedFrame,
    /// A client received a frame the server masked (RFC 6455 section 5.1).
    #[error("masked frame from a server")]
    MaskedFrame,
    /// The payload length was written in more bytes than needed: 126 (16-bit) for a
    /// length below 126, or 127 (64-bit) for a length that fits 16 bits.
    #[error("payload length {0} not in its minimal encoding")]
    NonMinimalLength(u64),
    /// A 64-bit payload length with the most significant bit set.
    #[error("64-bit payload length {0:#x} has its most significant bit set")]
    LengthHighBit(u64),
    /// A close, ping or pong frame with more than 125 payload bytes.
    #[error("{0}-byte payload in a control frame (the limit is 125)")]
    ControlFrameTooLong(u64),
    /// A close, ping or pong frame without FIN: control frames cannot be fragmented.
    #[error("fragmented {} frame", .0.name())]
    FragmentedControlFrame(Opcode),
    /// A continuation frame when no fragmented message was in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message was still in progress.
    #[error("new {} frame while a fragmented message is in progress", .0.name())]
    MessageInProgress(Opcode),
    /// A text message, or the reason of a close frame, is not valid UTF-8.
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A close frame with a 1-byte payload (it must be empty or hold a 2-byte code).
    #[error("close frame with a 1-byte payload")]
    CloseTooShort,
    /// A close code that may not be sent on the wire (RFC 6455 section 7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
}

impl WebSocketError {
    /// The close code to send back when closing the connection because of this error:
    /// 1007 for bad UTF-8, 1002 (protocol error) for the rest.
    pub fn close_code(&self) -> u16 {
        match self {
            WebSocketError::InvalidUtf8 => 1007,
            _ => 1002,
        }
    }
}
