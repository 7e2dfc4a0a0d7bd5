//! gRPC message prefix. (Being written.)

/// Errors of the gRPC framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcError {
    /// The compressed flag is neither 0 nor 1.
    #[error("invalid compressed flag {0}")]
    InvalidFlag(u8),
}
