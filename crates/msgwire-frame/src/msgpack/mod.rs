//! Self-delimited MessagePack: values back to back, no length prefix.
//!
//! A MessagePack value says how long it is as it goes: its first byte (the *marker*)
//! tells the type and either holds the value, gives a fixed size, or is followed by a
//! length or an element count. So a stream of values needs no framing of its own:
//!
//! ```text
//! +---------+-----------------+------------------------------+---------+
//! | 0x2a    | 0xa3 'a' 'b' 'c'| 0x92 0x01 0xcd 0x01 0x00     | 0xc0    |
//! +---------+-----------------+------------------------------+---------+
//!  <- 42 -> <---- "abc" ----> <------ [1, 256] ------------> <- nil ->
//!   frame 1      frame 2               frame 3                frame 4
//! ```
//!
//! [`MsgpackScanner`] is the sans-IO core. It *measures* one value without decoding it:
//! no allocation per value, no recursion (a small stack of remaining element counts, one
//! entry per open array or map), and it is resumable — fed the same growing buffer again
//! it carries on from the byte it reached, so a value that trickles in one byte at a
//! time is scanned in linear time. A `str`/`bin`/`ext` payload is never looked at: the
//! scanner records where it ends and, until that many bytes exist, answers in O(1).
//!
//! [`MsgpackScanner::scan_many`] measures every whole value in a buffer in one call
//! (same state, same limits, with a table-driven fast path for top-level scalars whose
//! marker fixes their length), for streams of many small values where a call per value
//! would cost more than the value.
//!
//! [`SelfDelimited`] is the [`Framing`](crate::Framing) built on it: each frame is the raw bytes of one
//! value; [`SelfDelimited::for_each_value`] is its batch form, handing out every whole
//! buffered value borrowed. [`measure`] is the one-shot form.
//!
//! Limits, both checked on headers, before anything is allocated or waited for:
//!
//! * `max_frame_length` — the most bytes one whole value may take (default
//!   [`DEFAULT_MAX_FRAME`](crate::DEFAULT_MAX_FRAME), 16 MiB). A `str`/`bin`/`ext`
//!   header whose payload would end past it fails at once with
//!   [`Error::TooLong`](crate::Error::TooLong); so does an array or map header
//!   announcing more elements than could fit, since every element still to come takes at
//!   least one byte (`dd ff ff ff ff`, a 4-billion-element array, fails on its 5 bytes).
//!   The `length` reported is the smallest size the value could still have. Within the
//!   limit, [`SelfDelimited`] passes that size on to the buffer as a reservation capped
//!   at [`RESERVE_AHEAD`](crate::buffer::RESERVE_AHEAD) beyond the buffered bytes (see
//!   [`buffer`](crate::buffer)), and length sums saturate rather than wrap: even under
//!   `max_frame_length(usize::MAX)` a stalled 4 GiB header holds 32 KiB.
//! * `max_depth` — how many arrays and maps may be open inside each other (default
//!   [`DEFAULT_MAX_DEPTH`], 128; a scalar at top level is depth 0, `[1]` depth 1, `[[]]`
//!   depth 2, empty containers counted too). Deeper nesting fails with
//!   [`MsgpackError::TooDeep`]. The scanner's stack holds at most this many `u64`s.
//!   How deep a value that passed nests is kept for free:
//!   [`MsgpackScanner::last_depth`], [`SelfDelimited::last_frame_depth`], and per value
//!   of a batch [`MsgpackScanner::scan_many_with_depth`] and
//!   [`SelfDelimited::for_each_value_with_depth`]:
//!
//! ```text
//!   0x2a            0x91 0x01          0x92 0x91 0x90 0x01        0x81 0x90 0x01
//!   42: depth 0     [1]: depth 1       [[[]], 1]: depth 3          {[]: 1}: depth 2
//! ```
//!
//! The one byte that is never valid, `0xc1`, fails with [`MsgpackError::InvalidMarker`].
//! Everything else is a valid marker, so a value is either complete, a prefix of a
//! possibly valid value ([`Scan::Incomplete`]), or over a limit.
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{msgpack::SelfDelimited, Encode, Framing};
//!
//! let mut framing = SelfDelimited::new();
//! let mut wire = BytesMut::new();
//! framing.encode(&[0x92, 0x01, 0xcd, 0x01, 0x00][..], &mut wire)?; // [1, 256]
//! framing.encode(&[0xa3, b'a', b'b', b'c'][..], &mut wire)?; // "abc"
//! wire.extend_from_slice(&[0x2a, 0xc0]); // 42, nil
//!
//! let mut frames = Vec::new();
//! while let Some(frame) = framing.decode(&mut wire)? {
//!     frames.push(frame);
//! }
//! assert_eq!(frames.len(), 4);
//! assert_eq!(&frames[0][..], &[0x92, 0x01, 0xcd, 0x01, 0x00]);
//! assert_eq!(&frames[1][..], b"\xa3abc");
//! assert_eq!(&frames[3][..], &[0xc0]);
//!
//! // Not exactly one value: refused.
//! assert!(framing.encode(&[0x01, 0x02][..], &mut wire).is_err());
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! The scanner on its own, fed a growing buffer:
//!
//! ```
//! use msgwire_frame::msgpack::{measure, MsgpackScanner, Scan};
//!
//! let value = [0xc4, 0x03, 0xaa, 0xbb, 0xcc]; // bin8, 3 bytes
//! let mut scanner = MsgpackScanner::new();
//! // Header in: the scanner knows the value ends at byte 5.
//! assert_eq!(scanner.scan(&value[..2])?, Scan::Incomplete { min_len: 5 });
//! assert_eq!(scanner.scan(&value[..4])?, Scan::Incomplete { min_len: 5 });
//! assert_eq!(scanner.scan(&value)?, Scan::Complete(5));
//!
//! assert_eq!(measure(&[0x91, 0x91])?, None); // [[ … still open
//! assert_eq!(measure(&[0x91, 0x90, 0xff])?, Some(2)); // [[]], then the next value
//! assert!(measure(&[0x92, 0xc1]).is_err()); // 0xc1 is never valid
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

// The scanner (`scanner.rs`), its batch path (`batch.rs`) and the framing
// (`self_delimited.rs`); the unit tests in `tests/`.
mod batch;
mod scanner;
mod self_delimited;
#[cfg(test)]
mod tests;

pub use scanner::{MsgpackScanner, Scan};
pub use self_delimited::{SelfDelimited, SelfDelimitedBuilder};

use crate::Result;

/// The default nesting limit: 128 arrays/maps inside each other.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// Errors only the MessagePack scanner raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgpackError {
    /// A marker byte that MessagePack never uses (`0xc1`).
    #[error("invalid MessagePack marker 0x{byte:02x} at byte {offset} of the value")]
    InvalidMarker {
        /// The byte.
        byte: u8,
        /// Its offset from the first byte of the value.
        offset: usize,
    },
    /// Arrays and maps nested deeper than the configured limit.
    #[error("MessagePack value nests arrays/maps deeper than {max}")]
    TooDeep {
        /// The configured limit.
        max: usize,
    },
}

/// Measures the MessagePack value at the start of `input` with the default limits:
/// `Some(length)` when it is complete, `None` when `input` is a prefix of a value.
pub fn measure(input: &[u8]) -> Result<Option<usize>> {
    match MsgpackScanner::new().scan(input)? {
        Scan::Complete(n) => Ok(Some(n)),
        Scan::Incomplete { .. } => Ok(None),
    }
}
