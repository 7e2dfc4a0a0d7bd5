//! `tokio_util::codec` adapters (feature `codec`).
//!
//! [`FrameCodec`] wraps any [`Framing`] as a `Decoder` over tokio-util's `BytesMut`, and
//! forwards `Encoder` to the framing's [`Encode`] implementation, so a framing plugs into
//! `tokio_util::codec::{FramedRead, FramedWrite, Framed}`:
//!
//! ```
//! # async fn demo() -> Result<(), msgwire_frame::Error> {
//! use futures::{SinkExt, StreamExt};
//! use msgwire_frame::{codec::FrameCodec, length::LengthPrefixed};
//! use tokio_util::codec::Framed;
//!
//! let (a, b) = tokio::io::duplex(64);
//! let mut tx = Framed::new(a, FrameCodec::new(LengthPrefixed::new()));
//! let mut rx = Framed::new(b, FrameCodec::new(LengthPrefixed::new()));
//! tx.send(&b"ping"[..]).await?;
//! let frame = rx.next().await.transpose()?;
//! assert_eq!(frame.as_deref(), Some(&b"ping"[..]));
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

use bytes::BytesMut;

use crate::{Encode, Error, Framing};

/// A [`Framing`] as a `tokio_util::codec::Decoder` + `Encoder`.
#[derive(Debug, Clone, Default)]
pub struct FrameCodec<F> {
    framing: F,
}

impl<F> FrameCodec<F> {
    /// Wraps `framing`.
    pub fn new(framing: F) -> Self {
        Self { framing }
    }

    /// The wrapped framing.
    pub fn framing(&self) -> &F {
        &self.framing
    }

    /// The wrapped framing, mutably.
    pub fn framing_mut(&mut self) -> &mut F {
        &mut self.framing
    }
}

impl<F: Framing> tokio_util::codec::Decoder for FrameCodec<F> {
    type Item = F::Frame<BytesMut>;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Error> {
        self.framing.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Error> {
        self.framing.decode_eof(src)
    }
}

impl<'a, F, I> tokio_util::codec::Encoder<&'a I> for FrameCodec<F>
where
    F: Encode<I>,
    I: ?Sized,
{
    type Error = Error;

    fn encode(&mut self, item: &'a I, dst: &mut BytesMut) -> Result<(), Error> {
        self.framing.encode(item, dst)
    }
}
