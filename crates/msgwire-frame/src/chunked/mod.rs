//! HTTP/1.1 chunked transfer coding (RFC 9112, section 7.1).
//!
//! A body is a sequence of chunks, each a hexadecimal size line and that many bytes of
//! data, ended by a chunk of size zero, optional trailer fields and an empty line:
//!
//! ```text
//!  chunk                                           (one frame: the data)
//! +-----------+-------------------+------+---------------------+------+
//! | hex size  | [;ext[=val]]...   | CRLF | data: `size` bytes  | CRLF |
//! +-----------+-------------------+------+---------------------+------+
//!  last chunk and trailer section  (ends the body, no frame)
//! +-----+-------------------+------+------------------------+------+
//! | 0   | [;ext[=val]]...   | CRLF | *( field: value CRLF ) | CRLF |
//! +-----+-------------------+------+------------------------+------+
//!
//!  5;lang=en CRLF hello CRLF  7 CRLF , world CRLF  0 CRLF Expires: never CRLF CRLF
//!                 ^^^^^ frame        ^^^^^^^ frame     (end of body)
//! ```
//!
//! * Each data chunk is handed out as one frame (`B::Frame`), once its data **and the
//!   CRLF after it** are buffered: a frame is always a well-formed chunk.
//! * The size line is read byte by byte and consumed as it is read, so a size line cut
//!   across reads is never scanned twice. Its limits are checked as each byte arrives,
//!   before anything is allocated: at most 16 hex digits (leading zeros included) and a
//!   value of at most `max_chunk_length` (default [`DEFAULT_MAX_FRAME`]), else
//!   [`Error::TooLong`] (with `length: u64::MAX` for more than 16 digits). Only then is
//!   room reserved for the data, and only [`RESERVE_AHEAD`](crate::buffer::RESERVE_AHEAD)
//!   beyond the buffered bytes at first; the buffer doubles as the data comes in (see
//!   [`buffer`](crate::buffer)). A size whose data and CRLF the machine cannot hold
//!   (possible with `max_chunk_length(usize::MAX)`) is [`Error::TooLong`] too.
//! * Chunk extensions (`;name=value`, RFC 9112 7.1.1) are skipped, not interpreted, up to
//!   `max_extension_length` bytes per size line (default 4 KiB) —
//!   [`ChunkedError::ExtensionTooLong`] over it. Whitespace is allowed between the size
//!   and the extensions, as hyper does.
//! * Trailer fields are checked for shape (a token name, a colon, a value without
//!   control characters, no obsolete line folding) and skipped, up to
//!   `max_trailer_length` bytes for the whole trailer section (default 16 KiB) —
//!   [`ChunkedError::TrailersTooLong`] over it.
//! * Lines end in CRLF. A bare LF is rejected ([`ChunkedError::BareLf`]), as is a CR not
//!   followed by LF ([`ChunkedError::ExpectedLf`]): lenient line endings are what request
//!   smuggling is made of.
//! * After the trailer section the body is complete; its bytes are consumed and the
//!   framing expects the next body on the same connection (keep-alive).
//!   [`Chunked::bodies_completed`] counts finished bodies.
//! * Every error is fatal.
//!
//! With [`StreamDecoder`](crate::StreamDecoder), a chunk's offset is where its size line
//! begins (the framing reports it through [`Framing::last_frame_start`]).
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{chunked::Chunked, Encode, Framing};
//!
//! let mut framing = Chunked::new();
//! let mut wire = BytesMut::new();
//! framing.encode(&b"hello"[..], &mut wire)?;
//! framing.encode(&[b'.'; 26][..], &mut wire)?;
//! Chunked::encode_end(&mut wire);
//! assert_eq!(&wire[..10], b"5\r\nhello\r\n");
//! assert_eq!(&wire[10..14], b"1A\r\n");
//! assert!(wire.ends_with(b"\r\n0\r\n\r\n"));
//!
//! assert_eq!(framing.decode(&mut wire)?.as_deref(), Some(&b"hello"[..]));
//! assert_eq!(framing.decode(&mut wire)?.map(|f| f.len()), Some(26));
//! assert_eq!(framing.decode(&mut wire)?, None); // the end of the body, consumed
//! assert!(wire.is_empty());
//! assert_eq!(framing.bodies_completed(), 1);
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! Extensions and trailers are accepted and skipped; the size line can arrive in pieces:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{chunked::Chunked, Framing};
//!
//! let mut framing = Chunked::new();
//! let mut wire = BytesMut::from(&b"4;name=\"quoted value\"\r"[..]);
//! assert_eq!(framing.decode(&mut wire)?, None);
//! assert!(wire.is_empty()); // the size line so far is consumed, not rescanned later
//! wire.extend_from_slice(b"\nWiki\r\n0\r\nExpires: never\r\n\r\n");
//! assert_eq!(framing.decode(&mut wire)?.as_deref(), Some(&b"Wiki"[..]));
//! assert!(framing.is_mid_frame()); // the body has not ended yet
//! assert_eq!(framing.decode(&mut wire)?, None);
//! assert!(!framing.is_mid_frame());
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

use bytes::{BufMut, BytesMut};

use crate::buffer::{reserve_toward, InputBuffer};
use crate::{Encode, Error, Framing, Result, DEFAULT_MAX_FRAME};

// The decoder is a state enum with one method per state, in `state.rs` (with a table
// of the states); this file holds the framing's surface, the encoder and the builder.
mod state;
#[cfg(test)]
mod tests;

use state::{State, CHUNK_START};

/// The most hex digits a chunk size may have (a `u64`).
pub const MAX_SIZE_DIGITS: u8 = 16;
/// Default limit on the chunk extensions of one size line: 4 KiB.
pub const DEFAULT_MAX_EXTENSION: usize = 4 * 1024;
/// Default limit on a body's trailer section: 16 KiB.
pub const DEFAULT_MAX_TRAILERS: usize = 16 * 1024;

/// Errors only the chunked framing raises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkedError {
    /// A byte that cannot be where it is in a chunk size line: not a hex digit, an empty
    /// size, or something other than `;` or the line end after whitespace.
    #[error("invalid byte {byte:#04x} in chunk size line")]
    InvalidSize {
        /// The offending byte.
        byte: u8,
    },
    /// A control character in a chunk extension.
    #[error("invalid byte {byte:#04x} in chunk extension")]
    InvalidExtension {
        /// The offending byte.
        byte: u8,
    },
    /// The chunk extensions of one size line are longer than the limit.
    #[error("chunk extensions longer than {max} bytes")]
    ExtensionTooLong {
        /// The configured limit.
        max: usize,
    },
    /// A CR in a size or trailer line is not followed by LF.
    #[error("expected LF after CR, found {found:#04x}")]
    ExpectedLf {
        /// The byte found instead of LF.
        found: u8,
    },
    /// A line ends in LF without CR.
    #[error("bare LF: lines must end in CRLF")]
    BareLf,
    /// The chunk data is not followed by CRLF: the chunk size was wrong.
    #[error("chunk data not followed by CRLF (found {found:#04x})")]
    MissingDataCrlf {
        /// The byte found where CR or LF should be.
        found: u8,
    },
    /// A trailer line is not `name: value` (bad name byte, no colon, control character
    /// in the value, or obsolete line folding).
    #[error("invalid byte {byte:#04x} in trailer field")]
    InvalidTrailer {
        /// The offending byte.
        byte: u8,
    },
    /// A body's trailer section is longer than the limit.
    #[error("trailer section longer than {max} bytes")]
    TrailersTooLong {
        /// The configured limit.
        max: usize,
    },
}

/// HTTP/1.1 chunked transfer coding; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Chunked {
    max_chunk: usize,
    max_extension: usize,
    max_trailers: usize,
    state: State,
    /// Whether a byte of the current body has been consumed and its end not yet.
    in_body: bool,
    bodies: u64,
    /// Bytes consumed since creation, where the chunk in progress began (its size line),
    /// and where the last chunk handed out began (for `Framing::last_frame_start`).
    consumed: u64,
    chunk_start: u64,
    last_start: u64,
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

impl Chunked {
    /// Chunks up to 16 MiB, extensions up to 4 KiB per line, trailers up to 16 KiB.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder() -> ChunkedBuilder {
        ChunkedBuilder {
            max_chunk: DEFAULT_MAX_FRAME,
            max_extension: DEFAULT_MAX_EXTENSION,
            max_trailers: DEFAULT_MAX_TRAILERS,
        }
    }

    /// The limit on one chunk's data.
    pub fn max_chunk_length(&self) -> usize {
        self.max_chunk
    }

    /// The limit on one size line's chunk extensions.
    pub fn max_extension_length(&self) -> usize {
        self.max_extension
    }

    /// The limit on one body's trailer section.
    pub fn max_trailer_length(&self) -> usize {
        self.max_trailers
    }

    /// Bodies whose end (last chunk, trailers, empty line) has been consumed.
    pub fn bodies_completed(&self) -> u64 {
        self.bodies
    }

    /// Appends the end of a body without trailers: `0\r\n\r\n`.
    pub fn encode_end(dst: &mut BytesMut) {
        dst.put_slice(b"0\r\n\r\n");
    }

    /// Appends the end of a body with trailer fields: `0\r\n`, `name: value\r\n` for each,
    /// `\r\n`. A name must be a non-empty token and a value must not hold control
    /// characters (tab excepted); otherwise [`Error::Encode`] and nothing is written.
    pub fn encode_end_with_trailers(dst: &mut BytesMut, trailers: &[(&str, &str)]) -> Result<()> {
        for (name, value) in trailers {
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return Err(Error::Encode("trailer name is not an HTTP token"));
            }
            if value.bytes().any(is_ctl) {
                return Err(Error::Encode("trailer value holds a control character"));
            }
        }
        dst.put_slice(b"0\r\n");
        for (name, value) in trailers {
            dst.reserve(name.len() + value.len() + 4);
            dst.put_slice(name.as_bytes());
            dst.put_slice(b": ");
            dst.put_slice(value.as_bytes());
            dst.put_slice(b"\r\n");
        }
        dst.put_slice(b"\r\n");
        Ok(())
    }
}

impl Framing for Chunked {
    type Frame<B: InputBuffer> = B::Frame;

    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<B::Frame>> {
        loop {
            if let State::Body { size } = self.state {
                return self.body(buf, size);
            }
            if buf.is_empty() {
                return Ok(None);
            }
            let (consumed, result) = self.scan_lines(buf.bytes());
            buf.advance(consumed);
            self.consumed += consumed as u64;
            result?;
            let State::Body { size } = self.state else {
                // Every buffered byte was a line byte: need more.
                return Ok(None);
            };
            // A size line within the limit: room toward the data and its CRLF, capped.
            reserve_toward(buf, size + 2);
        }
    }

    fn is_mid_frame(&self) -> bool {
        self.in_body
    }

    fn last_frame_start(&self) -> Option<u64> {
        Some(self.last_start)
    }
}

impl Encode<[u8]> for Chunked {
    /// Writes one chunk: the size in upper-case hex, CRLF, the data, CRLF. An empty
    /// payload is refused ([`Error::Encode`]): a zero-size chunk ends the body — use
    /// [`Chunked::encode_end`] for that.
    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<()> {
        if payload.is_empty() {
            return Err(Error::Encode(
                "an empty chunk would end the body: use Chunked::encode_end",
            ));
        }
        if payload.len() > self.max_chunk {
            return Err(Error::TooLong {
                length: payload.len() as u64,
                max: self.max_chunk as u64,
            });
        }
        let mut hex = [0u8; 16];
        let digits = put_hex(payload.len() as u64, &mut hex);
        dst.reserve(digits.len() + payload.len() + 4);
        dst.put_slice(digits);
        dst.put_slice(b"\r\n");
        dst.put_slice(payload);
        dst.put_slice(b"\r\n");
        Ok(())
    }
}

/// Builds a [`Chunked`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ChunkedBuilder {
    max_chunk: usize,
    max_extension: usize,
    max_trailers: usize,
}

impl ChunkedBuilder {
    /// Limit on one chunk's data (default 16 MiB); checked on the size line.
    pub fn max_chunk_length(mut self, max: usize) -> Self {
        self.max_chunk = max;
        self
    }

    /// Limit on the chunk extensions of one size line, `;` included (default 4 KiB).
    pub fn max_extension_length(mut self, max: usize) -> Self {
        self.max_extension = max;
        self
    }

    /// Limit on one body's trailer section, its final CRLF included (default 16 KiB).
    pub fn max_trailer_length(mut self, max: usize) -> Self {
        self.max_trailers = max;
        self
    }

    /// The framing. Every combination of limits is valid.
    pub fn build(self) -> Chunked {
        Chunked {
            max_chunk: self.max_chunk,
            max_extension: self.max_extension,
            max_trailers: self.max_trailers,
            state: CHUNK_START,
            in_body: false,
            bodies: 0,
            consumed: 0,
            chunk_start: 0,
            last_start: 0,
        }
    }
}

/// `n` in upper-case hex, no leading zeros, written at the end of `out`.
fn put_hex(mut n: u64, out: &mut [u8; 16]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = out.len();
    loop {
        start -= 1;
        out[start] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            return &out[start..];
        }
    }
}

/// RFC 9110 `tchar`: what a token (a field name) is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Control characters other than horizontal tab.
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}
