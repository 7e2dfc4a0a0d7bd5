//! The one contract every framing implements.

use bytes::BytesMut;

use crate::{buffer::InputBuffer, Error, Result};

/// A decoder that cuts whole frames off the front of a byte buffer.
///
/// The contract is `tokio_util::codec::Decoder`'s, generalised over the buffer:
///
/// * `Ok(Some(frame))`: a whole frame was removed from the front of `buf`;
/// * `Ok(None)`: more bytes are needed. The framing may have consumed bytes it has
///   fully accounted for (a WebSocket fragment, an HTTP chunk header), and keeps a
///   resume point so that the next call does not rescan what it has already seen;
/// * `Err(e)`: the input is bad. If [`Error::is_fatal`] is false (a frame that was
///   discarded in resync mode) the caller may call `decode` again; otherwise the stream
///   cannot be resynchronised and the connection should be closed.
///
/// A framing never allocates on a length that a peer claims before checking it against
/// its limit.
pub trait Framing {
    /// What one decoded frame is, for a given buffer strategy. Simple framings hand out
    /// `B::Frame` (a zero-copy `Bytes` for `BytesMut`, a pooled buffer for the pool).
    type Frame<B: InputBuffer>;

    /// Decodes the next frame from the front of `buf`.
    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<Self::Frame<B>>>;

    /// Decodes at end of input: like [`decode`](Self::decode), but bytes left over that
    /// cannot form a whole frame are reported as [`Error::Truncated`].
    fn decode_eof<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<Self::Frame<B>>> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() && !self.is_mid_frame() => Ok(None),
            None => Err(Error::Truncated {
                buffered: buf.len(),
            }),
        }
    }

    /// How many of the bytes the last [`decode`](Self::decode) call consumed came before
    /// the frame it returned and are not part of it (the tail of a frame skipped in
    /// discard mode). Drivers add it to the frame's stream offset. Default: 0.
    fn skipped_before_frame(&self) -> usize {
        0
    }

    /// Where the frame the last [`decode`](Self::decode) call returned began, counted in
    /// bytes this framing has consumed since it was created. For framings whose frames
    /// can interleave (a WebSocket ping between the fragments of a message); drivers
    /// prefer it when it is `Some`. Default: `None`, the driver works the offset out.
    fn last_frame_start(&self) -> Option<u64> {
        None
    }

    /// Whether the framing holds part of a frame in its own state (for example the first
    /// fragments of a WebSocket message). Used by [`decode_eof`](Self::decode_eof).
    fn is_mid_frame(&self) -> bool {
        false
    }
}

/// An encoder that appends one whole frame for `Item` to `dst`.
pub trait Encode<Item: ?Sized> {
    /// Appends the frame for `item` to `dst`.
    fn encode(&mut self, item: &Item, dst: &mut BytesMut) -> Result<()>;
}
