//! The limits a codec holds a peer to, defined once for every layer above.
//!
//! | limit | default | checked |
//! |---|---|---|
//! | `max_frame_length` | 16 MiB ([`DEFAULT_MAX_FRAME`]) | on the length header (msgpack-rpc: on each str/bin/ext/array/map header), before a buffer of that size exists |
//! | `max_depth` | 128 ([`DEFAULT_MAX_DEPTH`]) | on every array/map header of params, results and errors |
//!
//! `max_depth` counts the nesting of a value the way a person would: `5` is 0 deep,
//! `[5]` 1, `[[5]]` 2. It applies to params, results and error data; the message's own
//! envelope (the msgpack-rpc array, the framed map) is not counted. A message nested
//! deeper than `max_depth` but measurable is answered (INVALID_ARGUMENT) when its id can
//! be read; the scanner that finds where messages end gives up only past
//! [`Limits::measure_depth`], twice the limit, where a connection without length
//! prefixes must close.
//!
//! ```
//! use msgwire_wire::Limits;
//!
//! let limits = Limits::new(1 << 20, 32)?;
//! assert_eq!(limits.max_depth(), 32);
//! assert!(Limits::new(1 << 20, usize::MAX).is_err()); // would wrap
//! assert_eq!(Limits::default().max_frame_length(), 16 * 1024 * 1024);
//! # Ok::<(), msgwire_wire::ConfigError>(())
//! ```

pub use msgwire_frame::msgpack::DEFAULT_MAX_DEPTH;
pub use msgwire_frame::DEFAULT_MAX_FRAME;

use crate::error::ConfigError;

/// The deepest nesting a [`Limits`] may allow. Values from peers are decoded by
/// recursive serde code on the task's stack; 512 levels stay far inside a tokio
/// worker's 2 MiB stack.
pub const MAX_DEPTH_LIMIT: usize = 512;

/// Frame length and nesting limits, checked when made. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_frame_length: usize,
    max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_length: DEFAULT_MAX_FRAME,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl Limits {
    /// Limits of `max_frame_length` bytes per message and `max_depth` levels of nesting.
    ///
    /// Errors: a depth over [`MAX_DEPTH_LIMIT`], a frame length of 0.
    pub fn new(max_frame_length: usize, max_depth: usize) -> Result<Self, ConfigError> {
        if max_depth > MAX_DEPTH_LIMIT {
            return Err(ConfigError::DepthTooLarge {
                depth: max_depth,
                limit: MAX_DEPTH_LIMIT,
            });
        }
        if max_frame_length == 0 {
            return Err(ConfigError::FrameTooSmall);
        }
        Ok(Self {
            max_frame_length,
            max_depth,
        })
    }

    /// The largest message, in bytes.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }

    /// The deepest nesting of params, results and errors.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// How deep the scanner follows a value to find where it ends: twice the limit
    /// (and at least 8 more). Between the two a message is answered; past this one a
    /// msgpack-rpc connection cannot find the next message and is closed.
    pub fn measure_depth(&self) -> usize {
        (self.max_depth * 2).max(self.max_depth + 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dialect, WireCodec};

    #[test]
    fn limits_that_cannot_hold_are_refused_with_a_typed_error() {
        assert!(matches!(
            Limits::new(DEFAULT_MAX_FRAME, MAX_DEPTH_LIMIT + 1),
            Err(ConfigError::DepthTooLarge { depth, limit })
                if depth == MAX_DEPTH_LIMIT + 1 && limit == MAX_DEPTH_LIMIT
        ));
        assert!(matches!(
            Limits::new(DEFAULT_MAX_FRAME, usize::MAX),
            Err(ConfigError::DepthTooLarge { .. })
        ));
        assert!(matches!(
            Limits::new(0, DEFAULT_MAX_DEPTH),
            Err(ConfigError::FrameTooSmall)
        ));
    }

    #[test]
    fn a_codec_keeps_the_limits_it_was_given_instead_of_the_defaults() {
        for dialect in [
            Dialect::MsgpackRpc,
            Dialect::FramedBinary,
            Dialect::FramedMap,
        ] {
            for (frame, depth) in [(usize::MAX, MAX_DEPTH_LIMIT), (64, 0), (1 << 20, 7)] {
                let limits = Limits::new(frame, depth).unwrap();
                let codec = WireCodec::with_limits(dialect, limits).unwrap();
                assert_eq!(codec.limits().max_frame_length(), frame, "{dialect:?}");
                assert_eq!(codec.limits().max_depth(), depth, "{dialect:?}");
            }
            // And the framing enforces them: a 100-byte message against a 64-byte limit.
            let mut codec = WireCodec::with_limits(dialect, Limits::new(64, 8).unwrap()).unwrap();
            let mut over = if dialect == Dialect::MsgpackRpc {
                bytes::BytesMut::from(&[0xc4, 98][..])
            } else {
                bytes::BytesMut::from(&[0, 0, 0, 100][..])
            };
            over.extend_from_slice(&[0; 98]);
            assert!(codec.next_frame(&mut over).is_err(), "{dialect:?}");
        }
    }
}
