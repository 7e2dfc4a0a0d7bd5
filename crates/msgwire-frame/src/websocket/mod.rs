//! WebSocket (RFC 6455). (Being written.)

/// Errors of the WebSocket framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebSocketError {
    /// A reserved opcode.
    #[error("reserved opcode {0}")]
    ReservedOpcode(u8),
}
