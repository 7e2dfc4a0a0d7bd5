//! [`StreamDecoder`]: a framing plus a buffer, with stream offsets.

use crate::{buffer::InputBuffer, Error, Framing};

/// One decoded frame and where it started in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<T> {
    /// Byte offset in the whole stream at which the frame (its header included) starts.
    pub offset: u64,
    /// Wire bytes from the frame's start to its end, header included (for a WebSocket
    /// message, control frames that arrived between its fragments are counted too).
    pub wire_len: u64,
    /// The frame.
    pub frame: T,
}

/// An [`Error`] and the stream offset of the frame it was raised on.
#[derive(Debug, thiserror::Error)]
#[error("at byte offset {offset}: {error}")]
pub struct StreamError {
    /// Byte offset in the whole stream of the start of the frame that failed.
    pub offset: u64,
    /// What was wrong.
    #[source]
    pub error: Error,
}

/// Drives a [`Framing`] over an [`InputBuffer`], keeping count of stream offsets.
///
/// Feed bytes as they arrive with [`feed`](Self::feed), take frames with
/// [`next_frame`](Self::next_frame) until it returns `Ok(None)`, and call
/// [`finish`](Self::finish) at end of input to learn whether the stream stopped inside a
/// frame. After a fatal error every call returns [`Error::Poisoned`].
#[derive(Debug)]
pub struct StreamDecoder<F, B> {
    framing: F,
    buf: B,
    /// Stream offset of the first buffered byte.
    position: u64,
    /// Stream offset where a frame began whose first bytes were already consumed by a
    /// call that returned `None` (WebSocket fragments, chunk headers).
    partial_start: Option<u64>,
    poisoned: bool,
}

impl<F: Framing, B: InputBuffer> StreamDecoder<F, B> {
    /// A decoder for `framing` that buffers in `buf`.
    pub fn new(framing: F, buf: B) -> Self {
        Self {
            framing,
            buf,
            position: 0,
            partial_start: None,
            poisoned: false,
        }
    }

    /// Appends bytes that arrived.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Decoded<F::Frame<B>>>, StreamError> {
        self.step(false)
    }

    /// The next whole frame at end of input: bytes that cannot become a frame are
    /// reported as [`Error::Truncated`] at the offset where that frame began.
    pub fn finish(&mut self) -> Result<Option<Decoded<F::Frame<B>>>, StreamError> {
        self.step(true)
    }

    fn step(&mut self, eof: bool) -> Result<Option<Decoded<F::Frame<B>>>, StreamError> {
        let start = self.partial_start.unwrap_or(self.position);
        if self.poisoned {
            return Err(StreamError {
                offset: start,
                error: Error::Poisoned,
            });
        }
        let before = self.buf.len();
        let result = if eof {
            self.framing.decode_eof(&mut self.buf)
        } else {
            self.framing.decode(&mut self.buf)
        };
        let consumed = (before - self.buf.len()) as u64;
        let call_start = self.position;
        self.position += consumed;
        // Bytes of a skipped frame dropped before what this call returns.
        let skipped = self.framing.skipped_before_frame() as u64;
        let start = if skipped > 0 {
            call_start + skipped
        } else {
            start
        };
        match result {
            Ok(Some(frame)) => {
                self.partial_start = None;
                let start = self.framing.last_frame_start().unwrap_or(start);
                Ok(Some(Decoded {
                    offset: start,
                    wire_len: self.position - start,
                    frame,
                }))
            }
            Ok(None) => {
                if consumed > skipped && self.partial_start.is_none() {
                    self.partial_start = Some(call_start + skipped);
                }
                Ok(None)
            }
            Err(error) => {
                self.partial_start = None;
                if error.is_fatal() {
                    self.poisoned = true;
                }
                Err(StreamError {
                    offset: start,
                    error,
                })
            }
        }
    }

    /// Bytes consumed from the stream so far (the offset of the first buffered byte).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes buffered and not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The framing.
    pub fn framing(&self) -> &F {
        &self.framing
    }

    /// The buffer.
    pub fn buffer(&self) -> &B {
        &self.buf
    }
}
