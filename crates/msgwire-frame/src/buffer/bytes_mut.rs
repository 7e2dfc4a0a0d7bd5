//! `BytesMut` as an [`InputBuffer`]: the growable default, frames handed out zero-copy.

use bytes::{Buf, Bytes, BytesMut};

use super::InputBuffer;

impl InputBuffer for BytesMut {
    type Frame = Bytes;

    fn len(&self) -> usize {
        BytesMut::len(self)
    }

    fn bytes(&mut self) -> &[u8] {
        &self[..]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self[..]
    }

    fn extend_from_slice(&mut self, data: &[u8]) {
        BytesMut::extend_from_slice(self, data)
    }

    fn reserve(&mut self, additional: usize) {
        BytesMut::reserve(self, additional)
    }

    fn advance(&mut self, n: usize) {
        Buf::advance(self, n)
    }

    fn split_frame(&mut self, n: usize) -> Bytes {
        self.split_to(n).freeze()
    }
}
