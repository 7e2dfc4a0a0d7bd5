//! Buffer strategies: where received bytes wait until they form a whole frame.
//!
//! Every framing is generic over [`InputBuffer`], so the strategy is chosen by the
//! caller, not by the framing:
//!
//! | strategy | frames handed out as | good at |
//! |---|---|---|
//! | [`bytes::BytesMut`] | `Bytes`, zero-copy (`split_to`) | the default; what tokio-util uses |
//! | [`RingBuffer`] | `Box<[u8]>` copy | a fixed memory footprint per connection |
//! | [`PooledBuffer`] | [`PooledFrame`], returned to its [`BufferPool`] on drop | no allocation per frame in steady state; memory given back after a burst |
//!
//! `BENCHMARKS.md` compares them (frames/s, allocations per frame, peak memory under a
//! burst).

mod bytes_mut;
mod pool;
mod ring;

pub use pool::{BufferPool, PoolStats, PooledBuffer, PooledFrame};
pub use ring::RingBuffer;

/// Bytes received but not yet decoded, seen as one contiguous slice.
pub trait InputBuffer {
    /// How a whole frame's bytes are handed out.
    type Frame: AsRef<[u8]> + std::fmt::Debug;

    /// Number of buffered bytes.
    fn len(&self) -> usize;

    /// Whether no bytes are buffered.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All buffered bytes, contiguous. (`&mut self` because a ring buffer may rotate its
    /// storage to make the view contiguous.)
    fn bytes(&mut self) -> &[u8];

    /// All buffered bytes, contiguous and writable (WebSocket unmasks in place).
    fn bytes_mut(&mut self) -> &mut [u8];

    /// Appends received bytes.
    fn extend_from_slice(&mut self, data: &[u8]);

    /// A hint that `additional` more bytes are expected (a frame header promised them,
    /// after the framing checked the length against its limit). Default: ignored.
    fn reserve(&mut self, additional: usize) {
        let _ = additional;
    }

    /// Drops `n` bytes from the front. Panics if `n > len()` (a framing bug, never input).
    fn advance(&mut self, n: usize);

    /// Removes the first `n` bytes and hands them out as a frame.
    /// Panics if `n > len()` (a framing bug, never input).
    fn split_frame(&mut self, n: usize) -> Self::Frame;

    /// Drops the first `skip` bytes (a header) and hands out the `n` after them as a
    /// frame: [`advance`](Self::advance) then [`split_frame`](Self::split_frame), which
    /// a strategy may do in one step. Panics if `skip + n > len()` (a framing bug).
    #[inline]
    fn split_frame_after(&mut self, skip: usize, n: usize) -> Self::Frame {
        self.advance(skip);
        self.split_frame(n)
    }
}
