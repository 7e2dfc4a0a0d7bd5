//! [`Outgoing`]: the bytes a socket has to write, in order, written with vectored
//! writes so that large payloads go to the socket from their own buffers.
//!
//! ```text
//!   queue: [frames from the bridge][hdr][payload 16 KiB][hdr hdr small small]  + tail
//!           └ one Bytes each, never copied again ┘       └ small pieces, copied ┘
//!   poll_write ─► writev(up to 64 slices) ─► consumed from the front
//! ```
//!
//! Small pieces (headers, control frames, small echoed messages) are copied into
//! `tail`, which is cheaper than a slice of their own; a large payload is queued as it
//! is, after whatever `tail` held.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

/// The most slices one write is given.
const MAX_SLICES: usize = 64;

/// Bytes to write, in order. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    /// Whole pieces, oldest first; the front one may be partly written.
    queue: VecDeque<Bytes>,
    /// Bytes of `queue`.
    queued: usize,
    /// Small pieces after the last of `queue`.
    tail: BytesMut,
}

impl Outgoing {
    /// Bytes still to write.
    pub(super) fn len(&self) -> usize {
        self.queued + self.tail.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where small pieces are copied to (after everything queued).
    pub(super) fn tail(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Queues `bytes` as they are, after everything so far.
    pub(super) fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if !self.tail.is_empty() {
            let tail = self.tail.split().freeze();
            self.queued += tail.len();
            self.queue.push_back(tail);
        }
        self.queued += bytes.len();
        self.queue.push_back(bytes);
    }

    /// Writes as much as the socket takes in one call: `Ready(Ok(n))` with the bytes
    /// written.
    pub(super) fn poll_write<IO: AsyncWrite + Unpin>(
        &mut self,
        io: &mut IO,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.queue.is_empty() {
            let n = std::task::ready!(Pin::new(io).poll_write(cx, &self.tail))?;
            self.tail.advance(n);
            if self.tail.is_empty() {
                // Everything written: the whole buffer is free again.
                self.tail.clear();
            }
            return Poll::Ready(Ok(n));
        }
        let written = {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slot, piece) in slices.iter_mut().zip(&self.queue) {
                *slot = IoSlice::new(piece);
                count += 1;
            }
            if count < MAX_SLICES && !self.tail.is_empty() {
                slices[count] = IoSlice::new(&self.tail);
                count += 1;
            }
            std::task::ready!(Pin::new(io).poll_write_vectored(cx, &slices[..count]))?
        };
        self.consume(written);
        Poll::Ready(Ok(written))
    }

    /// Drops `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                let taken = n.min(self.tail.len());
                self.tail.advance(taken);
                return;
            };
            let taken = n.min(front.len());
            front.advance(taken);
            self.queued -= taken;
            n -= taken;
            if front.is_empty() {
                self.queue.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `step` bytes a call.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut room = self.step;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(room);
                self.got.extend_from_slice(&buf[..take]);
                room -= take;
                n += take;
            }
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn pieces_come_out_in_order_whatever_the_writes_take() {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for step in [1, 3, 7, 100, 10_000] {
            let mut out = Outgoing::default();
            let mut expected = Vec::new();
            for i in 0..100u8 {
                if i % 3 == 0 {
                    let piece = vec![i; usize::from(i) * 10];
                    expected.extend_from_slice(&piece);
                    out.push(Bytes::from(piece));
                } else {
                    out.tail().extend_from_slice(&[i, i]);
                    expected.extend_from_slice(&[i, i]);
                }
            }
            let mut sink = Trickle {
                got: Vec::new(),
                step,
            };
            while !out.is_empty() {
                let before = out.len();
                let Poll::Ready(Ok(n)) = out.poll_write(&mut sink, &mut cx) else {
                    panic!("the writer is always ready");
                };
                assert_eq!(out.len(), before - n);
            }
            assert_eq!(sink.got, expected, "step {step}");
        }
    }
}
