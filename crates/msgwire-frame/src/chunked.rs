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

/// Where the decoder is in the body. Every state but `Body` consumes its bytes as it
/// reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a size line; `digits == 0` at the start of a chunk.
    Size { size: u64, digits: u8 },
    /// Whitespace after the size (before `;` or the line end).
    SizeLws { size: u64 },
    /// Inside the chunk extensions; `len` bytes of them so far.
    Extension { size: u64, len: usize },
    /// The size line's CR was read; LF expected.
    SizeLf { size: u64 },
    /// Size line read: waiting for `size` bytes of data and the CRLF after them, which
    /// are consumed together (the data CR and LF are checked as soon as they arrive).
    Body { size: usize },
    /// Last chunk read: at the start of a trailer line or of the final empty line.
    /// `len` counts the trailer section so far.
    Trailer { len: usize },
    /// Inside a trailer field line: still in its name, or past the colon.
    TrailerField { len: usize, in_name: bool },
    /// A trailer line's CR was read; LF expected.
    TrailerLf { len: usize },
    /// The final empty line's CR was read; LF ends the body.
    EndLf { len: usize },
}

/// The state at the start of a chunk (and of a body).
const CHUNK_START: State = State::Size { size: 0, digits: 0 };

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

    /// The size line is done: a data chunk, or the last chunk.
    fn size_line_end(&self, size: u64) -> Result<State> {
        if size == 0 {
            return Ok(State::Trailer { len: 0 });
        }
        // `size` was checked against `max_chunk` (a usize) digit by digit; but with a
        // limit near usize::MAX the data and its CRLF may still not fit one.
        let size = usize::try_from(size)
            .ok()
            .filter(|size| size.checked_add(2).is_some())
            .ok_or(Error::TooLong {
                length: size,
                max: self.max_chunk as u64,
            })?;
        Ok(State::Body { size })
    }

    /// Counts one more byte of the trailer section against its limit.
    fn trailer_byte(&self, len: usize) -> Result<usize> {
        // len + 1 > max, without overflowing when max is usize::MAX.
        if len >= self.max_trailers {
            return Err(ChunkedError::TrailersTooLong {
                max: self.max_trailers,
            }
            .into());
        }
        Ok(len + 1)
    }

    /// Takes one byte of a size line or of the trailer section (any state but `Body`).
    fn line_byte(&mut self, b: u8) -> Result<()> {
        self.in_body = true;
        self.state = match self.state {
            State::Size { size, digits } => match (hex_value(b), b) {
                (Some(d), _) => {
                    if digits >= MAX_SIZE_DIGITS {
                        return Err(Error::TooLong {
                            length: u64::MAX,
                            max: self.max_chunk as u64,
                        });
                    }
                    // At most 16 digits: fits in a u64.
                    let size = (size << 4) | u64::from(d);
                    if size > self.max_chunk as u64 {
                        return Err(Error::TooLong {
                            length: size,
                            max: self.max_chunk as u64,
                        });
                    }
                    State::Size {
                        size,
                        digits: digits + 1,
                    }
                }
                (None, _) if digits == 0 => {
                    return Err(ChunkedError::InvalidSize { byte: b }.into())
                }
                (None, b' ' | b'\t') => State::SizeLws { size },
                (None, b';') => State::Extension { size, len: 1 },
                (None, b'\r') => State::SizeLf { size },
                (None, b'\n') => return Err(ChunkedError::BareLf.into()),
                (None, _) => return Err(ChunkedError::InvalidSize { byte: b }.into()),
            },
            State::SizeLws { size } => match b {
                b' ' | b'\t' => State::SizeLws { size },
                b';' => State::Extension { size, len: 1 },
                b'\r' => State::SizeLf { size },
                b'\n' => return Err(ChunkedError::BareLf.into()),
                _ => return Err(ChunkedError::InvalidSize { byte: b }.into()),
            },
            State::Extension { size, len } => match b {
                b'\r' => State::SizeLf { size },
                b'\n' => return Err(ChunkedError::BareLf.into()),
                _ if is_ctl(b) => return Err(ChunkedError::InvalidExtension { byte: b }.into()),
                _ if len >= self.max_extension => {
                    return Err(ChunkedError::ExtensionTooLong {
                        max: self.max_extension,
                    }
                    .into())
                }
                _ => State::Extension { size, len: len + 1 },
            },
            State::SizeLf { size } => match b {
                b'\n' => self.size_line_end(size)?,
                _ => return Err(ChunkedError::ExpectedLf { found: b }.into()),
            },
            State::Trailer { len } => {
                let len = self.trailer_byte(len)?;
                match b {
                    b'\r' => State::EndLf { len },
                    b'\n' => return Err(ChunkedError::BareLf.into()),
                    _ if is_tchar(b) => State::TrailerField { len, in_name: true },
                    // Empty name, obsolete line folding (leading whitespace), junk.
                    _ => return Err(ChunkedError::InvalidTrailer { byte: b }.into()),
                }
            }
            State::TrailerField { len, in_name } => {
                let len = self.trailer_byte(len)?;
                match b {
                    _ if in_name && is_tchar(b) => State::TrailerField { len, in_name },
                    b':' if in_name => State::TrailerField {
                        len,
                        in_name: false,
                    },
                    b'\r' if !in_name => State::TrailerLf { len },
                    b'\n' if !in_name => return Err(ChunkedError::BareLf.into()),
                    _ if !in_name && !is_ctl(b) => State::TrailerField { len, in_name },
                    _ => return Err(ChunkedError::InvalidTrailer { byte: b }.into()),
                }
            }
            State::TrailerLf { len } => match b {
                b'\n' => State::Trailer {
                    len: self.trailer_byte(len)?,
                },
                _ => return Err(ChunkedError::ExpectedLf { found: b }.into()),
            },
            State::EndLf { len } => match b {
                b'\n' => {
                    self.trailer_byte(len)?;
                    self.in_body = false;
                    self.bodies += 1;
                    CHUNK_START
                }
                _ => return Err(ChunkedError::ExpectedLf { found: b }.into()),
            },
            // Never called in this state: `decode` hands it to `decode_body`.
            state @ State::Body { .. } => state,
        };
        Ok(())
    }

    /// Reads line bytes from the front of `bytes` until a size line announces data or the
    /// bytes run out. Returns how many bytes it consumed, and the error if one stopped it
    /// (the bad byte is not counted as consumed).
    fn scan_lines(&mut self, bytes: &[u8]) -> (usize, Result<()>) {
        for (i, &b) in bytes.iter().enumerate() {
            if self.state == CHUNK_START {
                self.chunk_start = self.consumed + i as u64;
            }
            if let Err(e) = self.line_byte(b) {
                return (i, Err(e));
            }
            if matches!(self.state, State::Body { .. }) {
                return (i + 1, Ok(()));
            }
        }
        (bytes.len(), Ok(()))
    }

    /// The `Body` state: hands out the chunk once its data and CRLF are buffered.
    fn decode_body<B: InputBuffer>(
        &mut self,
        buf: &mut B,
        size: usize,
    ) -> Result<Option<B::Frame>> {
        let have = buf.len();
        // size + 2 was checked not to overflow in `size_line_end`.
        let whole = size + 2;
        if have > size {
            // The CR (and LF, if it arrived) after the data: check them as they arrive.
            let bytes = buf.bytes();
            let after = &bytes[size..bytes.len().min(whole)];
            for (&found, want) in after.iter().zip([b'\r', b'\n']) {
                if found != want {
                    return Err(ChunkedError::MissingDataCrlf { found }.into());
                }
            }
        }
        if have < whole {
            return Ok(None);
        }
        let frame = buf.split_frame(size);
        buf.advance(2);
        self.consumed += whole as u64;
        self.last_start = self.chunk_start;
        self.state = CHUNK_START;
        Ok(Some(frame))
    }
}

impl Framing for Chunked {
    type Frame<B: InputBuffer> = B::Frame;

    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<B::Frame>> {
        loop {
            if let State::Body { size } = self.state {
                return self.decode_body(buf, size);
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

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
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

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::buffer::{BufferPool, PooledBuffer, RingBuffer};
    use crate::test_support::assert_waits_with_capped_room;

    /// Every frame until `None` or an error, the whole input in one buffer.
    fn decode_all(framing: &mut Chunked, wire: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut buf = BytesMut::from(wire);
        let mut out = Vec::new();
        while let Some(frame) = framing.decode(&mut buf)? {
            out.push(frame.to_vec());
        }
        Ok(out)
    }

    /// Feeds `wire` one byte at a time; every frame, or the first error.
    fn decode_bytewise<B: InputBuffer>(
        framing: &mut Chunked,
        mut buf: B,
        wire: &[u8],
    ) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for &b in wire {
            buf.extend_from_slice(&[b]);
            while let Some(frame) = framing.decode(&mut buf)? {
                out.push(frame.as_ref().to_vec());
            }
        }
        Ok(out)
    }

    fn err(wire: &[u8]) -> Error {
        match decode_all(&mut Chunked::new(), wire) {
            Ok(frames) => panic!("expected an error, got {frames:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn rfc_example_with_extension_and_trailer() {
        let wire = b"4\r\nWiki\r\n7;ext=\"a b\"\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nExpires: never\r\n\r\n";
        let mut f = Chunked::new();
        let frames = decode_all(&mut f, wire).unwrap();
        assert_eq!(frames, [&b"Wiki"[..], b"pedia i", b"n \r\nchunks."]);
        assert_eq!(f.bodies_completed(), 1);
        assert!(!f.is_mid_frame());
    }

    #[test]
    fn byte_by_byte_on_every_buffer_matches_whole() {
        let wire = b"4\r\nWiki\r\n10 ; a=b;c\r\n0123456789abcdef\r\n0;x\r\nA: 1\r\nB-c:\t2 3\r\n\r\n1\r\nz\r\n0\r\n\r\n";
        let want = vec![
            b"Wiki".to_vec(),
            b"0123456789abcdef".to_vec(),
            b"z".to_vec(),
        ];
        assert_eq!(decode_all(&mut Chunked::new(), wire).unwrap(), want);
        let mut f = Chunked::new();
        assert_eq!(
            decode_bytewise(&mut f, BytesMut::new(), wire).unwrap(),
            want
        );
        assert_eq!(f.bodies_completed(), 2);
        let mut f = Chunked::new();
        assert_eq!(
            decode_bytewise(&mut f, RingBuffer::with_capacity(4), wire).unwrap(),
            want
        );
        let pool = BufferPool::new(4, 2);
        let mut f = Chunked::new();
        assert_eq!(
            decode_bytewise(&mut f, PooledBuffer::new(&pool), wire).unwrap(),
            want
        );
    }

    #[test]
    fn size_line_is_consumed_as_it_arrives() {
        let mut f = Chunked::new();
        let mut buf = BytesMut::from(&b"1f;na"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert!(buf.is_empty());
        assert_eq!(f.state, State::Extension { size: 0x1f, len: 3 });
        assert!(f.is_mid_frame());
        buf.extend_from_slice(b"me\r\n");
        assert!(f.decode(&mut buf).unwrap().is_none());
        assert_eq!(f.state, State::Body { size: 31 });
        assert!(
            buf.capacity() >= 33,
            "room reserved for the data and its CRLF"
        );
        buf.extend_from_slice(&[b'x'; 31]);
        assert!(
            f.decode(&mut buf).unwrap().is_none(),
            "waits for the CRLF too"
        );
        assert_eq!(
            buf.len(),
            31,
            "data stays buffered until the chunk is whole"
        );
        buf.extend_from_slice(b"\r\n");
        assert_eq!(f.decode(&mut buf).unwrap().unwrap().len(), 31);
        assert!(buf.is_empty());
        assert!(
            f.is_mid_frame(),
            "between chunks of a body that has not ended"
        );
    }

    #[test]
    fn keep_alive_sequence_of_bodies() {
        let mut f = Chunked::new();
        let wire = b"1\r\na\r\n0\r\n\r\n0\r\n\r\n2\r\nbc\r\n0\r\n\r\n";
        assert_eq!(decode_all(&mut f, wire).unwrap(), [&b"a"[..], b"bc"]);
        assert_eq!(f.bodies_completed(), 3, "the empty body in between counts");
        let mut buf = BytesMut::new();
        assert!(
            f.decode_eof(&mut buf).unwrap().is_none(),
            "clean end between bodies"
        );
    }

    #[test]
    fn hex_digits_either_case_and_leading_zeros() {
        let mut wire = b"00000000000000aB\r\n".to_vec();
        wire.extend_from_slice(&[7; 0xab]);
        wire.extend_from_slice(b"\r\n");
        assert_eq!(
            decode_all(&mut Chunked::new(), &wire).unwrap()[0].len(),
            0xab
        );
    }

    #[test]
    fn size_over_the_limit_fails_on_the_size_line() {
        let mut f = Chunked::builder().max_chunk_length(0x100).build();
        let mut buf = BytesMut::from(&b"10"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"1");
        assert!(matches!(
            f.decode(&mut buf),
            Err(Error::TooLong {
                length: 0x101,
                max: 0x100
            })
        ));
        assert!(buf.capacity() < 0x100, "nothing reserved for the chunk");
        assert_eq!(
            decode_all(
                &mut Chunked::builder().max_chunk_length(0x100).build(),
                b"100\r\n"
            )
            .unwrap(),
            Vec::<Vec<u8>>::new()
        );
    }

    #[test]
    fn more_than_16_hex_digits_is_too_long() {
        assert!(matches!(
            err(b"00000000000000001\r\n"),
            Error::TooLong {
                length: u64::MAX,
                ..
            }
        ));
        let mut f = Chunked::builder().max_chunk_length(usize::MAX).build();
        assert!(matches!(
            decode_all(&mut f, b"ffffffffffffffff0\r\n"),
            Err(Error::TooLong {
                length: u64::MAX,
                ..
            })
        ));
    }

    #[test]
    fn unbounded_limit_huge_sizes_are_too_long_or_truncated_never_a_panic() {
        let unbounded = || Chunked::builder().max_chunk_length(usize::MAX).build();
        // 2^64 - 1: its data and CRLF do not fit a usize.
        assert!(matches!(
            decode_all(&mut unbounded(), b"ffffffffffffffff\r\n"),
            Err(Error::TooLong {
                length: u64::MAX,
                ..
            })
        ));
        // 2^63 - 1: representable; the reservation is capped, EOF is truncation.
        assert_waits_with_capped_room(&mut unbounded(), b"7fffffffffffffff\r\nabc");
        // Trailers and extensions at usize::MAX limits count without overflow.
        let mut f = Chunked::builder()
            .max_extension_length(usize::MAX)
            .max_trailer_length(usize::MAX)
            .build();
        assert!(decode_all(&mut f, b"1;x\r\na\r\n0\r\nA: b\r\n\r\n").is_ok());
        assert_eq!(f.bodies_completed(), 1);
    }

    #[test]
    fn invalid_size_bytes() {
        for (wire, byte) in [
            (&b"\r\n"[..], b'\r'),
            (b"g\r\n", b'g'),
            (b"1g\r\n", b'g'),
            (b"-1\r\n", b'-'),
            (b" 1\r\n", b' '),
            (b";x\r\n", b';'),
            (b"1 2\r\n", b'2'),
            (b"0x10\r\n", b'x'),
        ] {
            match err(wire) {
                Error::Chunked(ChunkedError::InvalidSize { byte: got }) => {
                    assert_eq!(got, byte, "{wire:?}")
                }
                other => panic!("{wire:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn whitespace_before_extension_or_line_end_is_accepted() {
        let frames = decode_all(&mut Chunked::new(), b"1 \t;a\r\nx\r\n1  \r\ny\r\n").unwrap();
        assert_eq!(frames, [&b"x"[..], b"y"]);
    }

    #[test]
    fn line_endings_must_be_crlf() {
        assert!(matches!(err(b"1\n"), Error::Chunked(ChunkedError::BareLf)));
        assert!(matches!(err(b"1 \n"), Error::Chunked(ChunkedError::BareLf)));
        assert!(matches!(
            err(b"1;a\n"),
            Error::Chunked(ChunkedError::BareLf)
        ));
        assert!(matches!(
            err(b"1\rx"),
            Error::Chunked(ChunkedError::ExpectedLf { found: b'x' })
        ));
        assert!(matches!(
            err(b"0\r\nA: b\n"),
            Error::Chunked(ChunkedError::BareLf)
        ));
        assert!(matches!(
            err(b"0\r\n\n"),
            Error::Chunked(ChunkedError::BareLf)
        ));
        assert!(matches!(
            err(b"0\r\nA: b\r\r"),
            Error::Chunked(ChunkedError::ExpectedLf { found: b'\r' })
        ));
        assert!(matches!(
            err(b"0\r\n\r\r"),
            Error::Chunked(ChunkedError::ExpectedLf { found: b'\r' })
        ));
    }

    #[test]
    fn missing_crlf_after_data_is_caught_as_soon_as_it_arrives() {
        let mut f = Chunked::new();
        let mut buf = BytesMut::from(&b"3\r\nabc"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"d");
        assert!(matches!(
            f.decode(&mut buf),
            Err(Error::Chunked(ChunkedError::MissingDataCrlf {
                found: b'd'
            }))
        ));
        let mut f = Chunked::new();
        let mut buf = BytesMut::from(&b"3\r\nabc\r"[..]);
        assert!(f.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"\r");
        assert!(matches!(
            f.decode(&mut buf),
            Err(Error::Chunked(ChunkedError::MissingDataCrlf {
                found: b'\r'
            }))
        ));
        assert!(matches!(
            err(b"2\r\nabc\r\n"),
            Error::Chunked(ChunkedError::MissingDataCrlf { found: b'c' })
        ));
    }

    #[test]
    fn extension_limit_and_control_characters() {
        let mut f = Chunked::builder().max_extension_length(4).build();
        assert_eq!(decode_all(&mut f, b"1;abc\r\nx\r\n").unwrap(), [b"x"]);
        let mut f = Chunked::builder().max_extension_length(4).build();
        assert!(matches!(
            decode_all(&mut f, b"1;abcd"),
            Err(Error::Chunked(ChunkedError::ExtensionTooLong { max: 4 }))
        ));
        let long = [&b"1;"[..], &[b'a'; DEFAULT_MAX_EXTENSION]].concat();
        assert!(matches!(
            err(&long),
            Error::Chunked(ChunkedError::ExtensionTooLong {
                max: DEFAULT_MAX_EXTENSION
            })
        ));
        assert!(matches!(
            err(b"1;a\x00b\r\n"),
            Error::Chunked(ChunkedError::InvalidExtension { byte: 0 })
        ));
    }

    #[test]
    fn trailer_limit_counts_the_whole_section() {
        // "A: b\r\n" (6) + "\r\n" (2) = 8 bytes.
        let wire = b"0\r\nA: b\r\n\r\n";
        let mut f = Chunked::builder().max_trailer_length(8).build();
        assert!(decode_all(&mut f, wire).unwrap().is_empty());
        assert_eq!(f.bodies_completed(), 1);
        let mut f = Chunked::builder().max_trailer_length(7).build();
        assert!(matches!(
            decode_all(&mut f, wire),
            Err(Error::Chunked(ChunkedError::TrailersTooLong { max: 7 }))
        ));
        let mut wire = b"0\r\n".to_vec();
        for _ in 0..2000 {
            wire.extend_from_slice(b"X-Pad: 0123\r\n");
        }
        assert!(matches!(
            err(&wire),
            Error::Chunked(ChunkedError::TrailersTooLong {
                max: DEFAULT_MAX_TRAILERS
            })
        ));
    }

    #[test]
    fn malformed_trailers() {
        for (wire, byte) in [
            (&b"0\r\n: v\r\n\r\n"[..], b':'), // empty name
            (b"0\r\n foo: v\r\n\r\n", b' '),  // obsolete line folding
            (b"0\r\nA b: v\r\n\r\n", b' '),   // space in the name
            (b"0\r\nNoColon\r\n\r\n", b'\r'), // no colon
            (b"0\r\nA: v\x01\r\n\r\n", 0x01), // control character in the value
            (b"0\r\nA\x7f: v\r\n\r\n", 0x7f),
        ] {
            match err(wire) {
                Error::Chunked(ChunkedError::InvalidTrailer { byte: got }) => {
                    assert_eq!(got, byte, "{wire:?}")
                }
                other => panic!("{wire:?}: {other:?}"),
            }
        }
        // Empty values and colons in values are fine.
        assert!(decode_all(&mut Chunked::new(), b"0\r\nA:\r\nB: x:y\r\n\r\n").is_ok());
    }

    #[test]
    fn eof_inside_a_chunk_or_a_body_is_truncated() {
        for wire in [
            &b"5\r\nab"[..],
            b"5",
            b"1\r\na\r\n",
            b"1\r\na\r\n0\r\n",
            b"0\r\nA: b\r\n\r",
        ] {
            let mut f = Chunked::new();
            let mut buf = BytesMut::from(wire);
            let got = loop {
                match f.decode_eof(&mut buf) {
                    Ok(Some(_)) => continue,
                    other => break other,
                }
            };
            assert!(
                matches!(got, Err(Error::Truncated { .. })),
                "{wire:?}: {got:?}"
            );
        }
    }

    #[test]
    fn encode_writes_upper_hex_size_data_crlf() {
        let mut f = Chunked::new();
        let mut dst = BytesMut::new();
        f.encode(&b"x"[..], &mut dst).unwrap();
        f.encode(&[0u8; 0x1234][..], &mut dst).unwrap();
        assert_eq!(&dst[..6], b"1\r\nx\r\n");
        assert_eq!(&dst[6..12], b"1234\r\n");
        assert_eq!(dst.len(), 12 + 0x1234 + 2);
        assert!(dst.ends_with(b"\x00\r\n"));
        let mut hex = [0u8; 16];
        assert_eq!(put_hex(0, &mut hex), b"0");
        assert_eq!(put_hex(0xabc, &mut hex), b"ABC");
        assert_eq!(put_hex(u64::MAX, &mut hex), b"FFFFFFFFFFFFFFFF");
    }

    #[test]
    fn encode_refuses_empty_and_over_the_limit() {
        let mut f = Chunked::builder().max_chunk_length(3).build();
        let mut dst = BytesMut::new();
        assert!(matches!(
            f.encode(&b""[..], &mut dst),
            Err(Error::Encode(_))
        ));
        assert!(matches!(
            f.encode(&b"abcd"[..], &mut dst),
            Err(Error::TooLong { length: 4, max: 3 })
        ));
        assert!(dst.is_empty());
    }

    #[test]
    fn encode_end_with_and_without_trailers() {
        let mut dst = BytesMut::new();
        Chunked::encode_end(&mut dst);
        assert_eq!(&dst[..], b"0\r\n\r\n");
        let mut dst = BytesMut::new();
        Chunked::encode_end_with_trailers(&mut dst, &[("Expires", "never"), ("X-A", "")]).unwrap();
        assert_eq!(&dst[..], b"0\r\nExpires: never\r\nX-A: \r\n\r\n");
        let mut f = Chunked::new();
        assert!(decode_all(&mut f, &dst).unwrap().is_empty());
        assert_eq!(f.bodies_completed(), 1);
        let mut dst = BytesMut::new();
        assert!(Chunked::encode_end_with_trailers(&mut dst, &[("A b", "x")]).is_err());
        assert!(Chunked::encode_end_with_trailers(&mut dst, &[("", "x")]).is_err());
        assert!(Chunked::encode_end_with_trailers(&mut dst, &[("A", "x\r\nB: y")]).is_err());
        assert!(dst.is_empty(), "nothing half-written");
    }
}
