//! Varint (LEB128) length prefix. (Being written.)

/// Errors of the varint framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The varint has more than 10 bytes.
    #[error("varint longer than 10 bytes")]
    Overlong,
}
