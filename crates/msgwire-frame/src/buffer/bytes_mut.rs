//! `BytesMut` as an [`InputBuffer`]: the growable default, frames handed out zero-copy.

use bytes::{Buf, Bytes, BytesMut};

use super::InputBuffer;

impl InputBuffer for BytesMut {
    type Frame = Bytes;

    #[inline]
    fn len(&self) -> usize {
        BytesMut::len(self)
    }

    #[inline]
    fn bytes(&mut self) -> &[u8] {
        &self[..]
    }

    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self[..]
    }

    #[inline]
    fn extend_from_slice(&mut self, data: &[u8]) {
        BytesMut::extend_from_slice(self, data)
    }

    #[inline]
    fn reserve(&mut self, additional: usize) {
        BytesMut::reserve(self, additional)
    }

    #[inline]
    fn advance(&mut self, n: usize) {
        Buf::advance(self, n)
    }

    #[inline]
    fn split_frame(&mut self, n: usize) -> Bytes {
        self.split_to(n).freeze()
    }

    #[inline]
    fn split_frame_after(&mut self, skip: usize, n: usize) -> Bytes {
        // One split of the whole frame, then the header is dropped from the frozen
        // handle, which is a pointer bump (advancing a `BytesMut` is not).
        let end = skip.saturating_add(n);
        let mut frame = self.split_to(end).freeze();
        Buf::advance(&mut frame, skip);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_frame_after_drops_the_header_and_keeps_the_rest() {
        let mut buf = BytesMut::from(&b"HDRbodytail"[..]);
        let frame = InputBuffer::split_frame_after(&mut buf, 3, 4);
        assert_eq!(&frame[..], b"body");
        assert_eq!(&buf[..], b"tail");
        let empty = InputBuffer::split_frame_after(&mut buf, 4, 0);
        assert!(empty.is_empty() && buf.is_empty());
    }

    #[test]
    #[should_panic]
    fn split_frame_after_past_the_end_panics() {
        let mut buf = BytesMut::from(&b"abc"[..]);
        let _ = InputBuffer::split_frame_after(&mut buf, 2, 2);
    }
}
