//! Self-delimited MessagePack. (Being written.)

/// Errors of the MessagePack scanner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgpackError {
    /// Byte 0xc1 is never used.
    #[error("invalid MessagePack marker 0x{0:02x}")]
    InvalidMarker(u8),
}
