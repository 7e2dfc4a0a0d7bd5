//! Ring buffer. (Being written.)

/// A ring buffer. (Being written.)
#[derive(Debug, Default)]
pub struct RingBuffer {}
