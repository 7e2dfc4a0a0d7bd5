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
//!
//! A peer that has sent whole frames earns more: the length-prefixed and MessagePack
//! framings reserve up to the length of the frame before (at most 256 KiB) on a header,
//! so a stream of 64 KiB frames gets each frame's room at once instead of growing past
//! 32 KiB midway — which would copy the 32 KiB already in. The room stays within about
//! twice what the peer really sent: the frame before, and this one's bytes.

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
    reserve_toward_earned(buf, frame_end, 0);
}

/// The most room a previous frame earns for the next one (see [`Earned`]).
pub(crate) const MAX_EARNED: usize = 256 * 1024;

/// [`reserve_toward`] for a peer that has `earned` more room: up to the length of the
/// frame before (at most [`MAX_EARNED`]), so that a stream of frames of one size (a
/// download's 64 KiB chunks) gets each frame's whole room at its header, and the bytes
/// that arrived are not copied again when the buffer grows in the middle of it.
#[inline]
pub(crate) fn reserve_toward_earned<B: InputBuffer + ?Sized>(
    buf: &mut B,
    frame_end: usize,
    earned: usize,
) {
    let have = buf.len();
    let missing = frame_end.saturating_sub(have);
    if missing != 0 {
        buf.reserve(missing.min(have.max(RESERVE_AHEAD).max(earned)));
    }
}

/// The room a framing's last whole frame earned: its length, up to [`MAX_EARNED`].
/// A peer gets more room than [`RESERVE_AHEAD`] for a frame only after it sent a
/// frame that large, so the room stays within about twice what it really sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Earned(usize);

impl Earned {
    /// A whole frame of `len` bytes arrived.
    #[inline]
    pub(crate) fn record(&mut self, len: usize) {
        self.0 = len.min(MAX_EARNED);
    }

    /// The room earned.
    #[inline]
    pub(crate) fn get(self) -> usize {
        self.0
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

    /// A frame's header gets room for the whole frame once a frame that large arrived,
    /// and only then: the first header of a large frame still gets `RESERVE_AHEAD`.
    #[test]
    fn a_whole_frame_earns_room_for_the_next() {
        use crate::length::LengthPrefixed;
        use crate::msgpack::SelfDelimited;
        use crate::Framing;

        const BODY: usize = 64 * 1024;
        let mut bin = vec![0xc6];
        bin.extend_from_slice(&(BODY as u32).to_be_bytes());
        let mut value = bin.clone();
        value.resize(bin.len() + BODY, 7);
        let mut prefixed = (BODY as u32).to_be_bytes().to_vec();
        prefixed.resize(4 + BODY, 7);

        fn check(framing: &mut impl Framing, frame: &[u8], head: usize) {
            let mut buf = BytesMut::from(&frame[..head]);
            assert!(framing.decode(&mut buf).unwrap().is_none());
            assert!(
                buf.capacity() < frame.len(),
                "first header: {}",
                buf.capacity()
            );
            buf.extend_from_slice(&frame[head..]);
            assert!(framing.decode(&mut buf).unwrap().is_some());
            let mut buf = BytesMut::from(&frame[..head]);
            assert!(framing.decode(&mut buf).unwrap().is_none());
            assert!(
                buf.capacity() >= frame.len(),
                "after a frame that large: {}",
                buf.capacity()
            );
        }
        let mut values = SelfDelimited::new();
        check(&mut values, &value, 5);
        assert_eq!(values.earned(), value.len());
        assert_eq!(
            values.frame_end(),
            Some(value.len()),
            "a bin's end is known"
        );
        let mut prefixed_framing = LengthPrefixed::new();
        check(&mut prefixed_framing, &prefixed, 4);
        assert_eq!(prefixed_framing.earned(), prefixed.len());
        assert_eq!(prefixed_framing.frame_end(), Some(prefixed.len()));

        // Elements after the bin: its end is not the value's.
        let mut framing = SelfDelimited::new();
        let mut buf = BytesMut::from(&b"\x92\xc4\x10abc"[..]);
        assert!(framing.decode(&mut buf).unwrap().is_none());
        assert_eq!(framing.frame_end(), None);
        let mut framing = SelfDelimited::new();
        let mut buf = BytesMut::from(&b"\x92\x01\xc4\x10abc"[..]);
        assert!(framing.decode(&mut buf).unwrap().is_none());
        assert_eq!(framing.frame_end(), Some(4 + 16));
    }
}
