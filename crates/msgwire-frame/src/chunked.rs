//! HTTP/1.1 chunked transfer coding. (Being written.)

/// Errors of the chunked framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkedError {
    /// The chunk size line is not hexadecimal.
    #[error("invalid chunk size")]
    InvalidSize,
}
