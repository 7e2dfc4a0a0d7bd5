//! Pooled buffers. (Being written.)

/// A pool. (Being written.)
#[derive(Debug, Default)]
pub struct BufferPool {}
/// Pool statistics. (Being written.)
#[derive(Debug, Default)]
pub struct PoolStats {}
/// A pooled input buffer. (Being written.)
#[derive(Debug, Default)]
pub struct PooledBuffer {}
/// A pooled frame. (Being written.)
#[derive(Debug, Default)]
pub struct PooledFrame {}
