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
//!
//! ## Room for a frame that is on its way
//!
//! A header that announces a frame of `n` bytes is a promise from the peer, not bytes
//! received. The framings never reserve the whole `n` on it: a peer that sends headers
//! and stalls would pin `n` bytes per connection. On the header they reserve at most
//! [`RESERVE_AHEAD`] (32 KiB) beyond what has arrived, never past the frame's end
//! (`reserve_toward`); after that the buffer grows only as the frame's bytes really
//! come in, doubling its storage whenever it fills (all three strategies here do), so
//! the room is never more than about twice the bytes received:
//!
//! ```text
//!  |<----------------------- announced frame: n bytes ----------------------->|
//!  |hdr|
//!  |<-- room: hdr + 32 KiB -->|                                 (header only)
//!  |<------ 40 KiB arrived ------>|
//!  |<----------- room: 2 x 33 KiB ----------->|                 (doubled on fill)
//!  |<--------------------- room: never past n ------------------------------->|
//! ```
//!
//! So 1,000 connections that each sent the header of a 16 MiB frame and stopped hold
//! about 32 MiB between them, not 16 GiB (`tests/stalled_headers.rs` measures it).

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
    /// after the framing checked the length against its limit). The framings never ask
    /// for more than [`RESERVE_AHEAD`] or the bytes already buffered, whichever is
    /// larger (see the [module docs](self#room-for-a-frame-that-is-on-its-way)).
    /// Default: ignored.
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

/// How far beyond the bytes that have arrived a framing reserves room for a frame whose
/// header announced more, before any of its body is in: 32 KiB. See the
/// [module docs](self#room-for-a-frame-that-is-on-its-way).
pub const RESERVE_AHEAD: usize = 32 * 1024;

/// Reserves room in `buf` toward a frame that ends `frame_end` bytes after the front of
/// the buffer: `min(frame_end - len, max(RESERVE_AHEAD, len))` more bytes, nothing
/// when the frame is all there. Called when a header announces (or, in MessagePack,
/// moves further) the end of a frame; a peer-announced length goes nowhere else.
#[inline]
pub(crate) fn reserve_toward<B: InputBuffer + ?Sized>(buf: &mut B, frame_end: usize) {
    let have = buf.len();
    let missing = frame_end.saturating_sub(have);
    if missing != 0 {
        buf.reserve(missing.min(have.max(RESERVE_AHEAD)));
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    #[test]
    fn reserve_toward_caps_then_doubles_then_stops_at_the_frame_end() {
        let mut buf = BytesMut::from(&[0u8; 4][..]);
        reserve_toward(&mut buf, 16 << 20);
        assert!(buf.capacity() >= 4 + RESERVE_AHEAD);
        assert!(
            buf.capacity() < 2 * RESERVE_AHEAD,
            "capped: {}",
            buf.capacity()
        );
        buf.extend_from_slice(&[0u8; 100 * 1024]);
        let len = buf.len();
        reserve_toward(&mut buf, 16 << 20);
        assert!(buf.capacity() >= 2 * len, "doubles with what arrived");
        let mut buf = BytesMut::from(&[0u8; 10][..]);
        reserve_toward(&mut buf, 30);
        assert!(buf.capacity() >= 30);
        assert!(
            buf.capacity() < 64,
            "never past the frame: {}",
            buf.capacity()
        );
        let before = buf.capacity();
        reserve_toward(&mut buf, 5);
        assert_eq!(buf.capacity(), before, "nothing when the frame is in");
    }
}
