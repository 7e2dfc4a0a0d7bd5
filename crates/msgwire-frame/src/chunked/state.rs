//! The decoder's states, and one method per state that takes the next byte (or, for
//! `Body`, the buffered data) and says which state comes next.
//!
//! ```text
//!  state          reads                           next
//!  -------------  ------------------------------  ---------------------------------
//!  Size           hex digit                       Size
//!                 ' ' '\t'  |  ';'  |  '\r'        SizeLws | Extension | SizeLf
//!  SizeLws        ' ' '\t'  |  ';'  |  '\r'        SizeLws | Extension | SizeLf
//!  Extension      any byte but CTL  |  '\r'        Extension | SizeLf
//!  SizeLf         '\n'                            Body (size > 0) | Trailer (size 0)
//!  Body           `size` bytes, '\r', '\n'        Size, the chunk handed out
//!  Trailer        tchar  |  '\r'                  TrailerField | EndLf
//!  TrailerField   name ':' value  |  '\r'         TrailerField | TrailerLf
//!  TrailerLf      '\n'                            Trailer
//!  EndLf          '\n'                            Size, the body ended
//! ```
//!
//! The bytes of `5;x=y\r\nhello\r\n0\r\nA: b\r\n\r\n` and the state each is read in:
//!
//! ```text
//!  5 ;         Size        hello \r \n   Body (a frame)    : SP b \r  TrailerField
//!  x = y \r    Extension   0 \r          Size              \n         TrailerLf
//!  \n          SizeLf      \n            SizeLf            \r         Trailer
//!                          A             Trailer           \n         EndLf
//! ```

use super::{is_ctl, is_tchar, Chunked, ChunkedError, MAX_SIZE_DIGITS};
use crate::buffer::InputBuffer;
use crate::{Error, Result};

/// Where the decoder is in the body. Every state but `Body` consumes its bytes as it
/// reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
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
    /// `size + 2` fits a usize.
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
pub(super) const CHUNK_START: State = State::Size { size: 0, digits: 0 };

impl Chunked {
    /// Reads line bytes from the front of `bytes` until a size line announces data or the
    /// bytes run out. Returns how many bytes it consumed, and the error if one stopped it
    /// (the bad byte is not counted as consumed).
    pub(super) fn scan_lines(&mut self, bytes: &[u8]) -> (usize, Result<()>) {
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

    /// Takes one byte of a size line or of the trailer section (any state but `Body`).
    fn line_byte(&mut self, b: u8) -> Result<()> {
        self.in_body = true;
        self.state = match self.state {
            State::Size { size, digits } => self.size(size, digits, b)?,
            State::SizeLws { size } => size_lws(size, b)?,
            State::Extension { size, len } => self.extension(size, len, b)?,
            State::SizeLf { size } => self.size_lf(size, b)?,
            State::Trailer { len } => self.trailer(len, b)?,
            State::TrailerField { len, in_name } => self.trailer_field(len, in_name, b)?,
            State::TrailerLf { len } => self.trailer_lf(len, b)?,
            State::EndLf { len } => self.end_lf(len, b)?,
            // Never called in this state: `decode` hands it to `body`.
            state @ State::Body { .. } => state,
        };
        Ok(())
    }

    /// `Size`: a hex digit (checked against the limits as it arrives), or what ends the
    /// size: whitespace, `;`, CR.
    fn size(&self, size: u64, digits: u8, b: u8) -> Result<State> {
        let too_long = |length| Error::TooLong {
            length,
            max: self.max_chunk as u64,
        };
        match (hex_value(b), b) {
            (Some(_), _) if digits >= MAX_SIZE_DIGITS => Err(too_long(u64::MAX)),
            (Some(d), _) => {
                // At most 16 digits: fits in a u64.
                let size = (size << 4) | u64::from(d);
                if size > self.max_chunk as u64 {
                    return Err(too_long(size));
                }
                Ok(State::Size {
                    size,
                    digits: digits + 1,
                })
            }
            (None, _) if digits == 0 => Err(ChunkedError::InvalidSize { byte: b }.into()),
            (None, b' ' | b'\t') => Ok(State::SizeLws { size }),
            (None, b';') => Ok(State::Extension { size, len: 1 }),
            (None, b'\r') => Ok(State::SizeLf { size }),
            (None, b'\n') => Err(ChunkedError::BareLf.into()),
            (None, _) => Err(ChunkedError::InvalidSize { byte: b }.into()),
        }
    }

    /// `Extension`: skipped up to `max_extension_length`, control characters refused.
    fn extension(&self, size: u64, len: usize, b: u8) -> Result<State> {
        match b {
            b'\r' => Ok(State::SizeLf { size }),
            b'\n' => Err(ChunkedError::BareLf.into()),
            _ if is_ctl(b) => Err(ChunkedError::InvalidExtension { byte: b }.into()),
            _ if len >= self.max_extension => Err(ChunkedError::ExtensionTooLong {
                max: self.max_extension,
            }
            .into()),
            _ => Ok(State::Extension { size, len: len + 1 }),
        }
    }

    /// `SizeLf`: the size line is done: a data chunk, or the last chunk.
    fn size_lf(&self, size: u64, b: u8) -> Result<State> {
        if b != b'\n' {
            return Err(ChunkedError::ExpectedLf { found: b }.into());
        }
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

    /// `Body`: hands out the chunk once its data and CRLF are buffered; the CR and LF
    /// are checked as soon as they arrive.
    pub(super) fn body<B: InputBuffer>(
        &mut self,
        buf: &mut B,
        size: usize,
    ) -> Result<Option<B::Frame>> {
        let have = buf.len();
        // size + 2 was checked not to overflow in `size_lf`.
        let whole = size + 2;
        if have > size {
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

    /// `Trailer`: the start of a trailer field, or the CR of the final empty line.
    fn trailer(&self, len: usize, b: u8) -> Result<State> {
        let len = self.trailer_byte(len)?;
        match b {
            b'\r' => Ok(State::EndLf { len }),
            b'\n' => Err(ChunkedError::BareLf.into()),
            _ if is_tchar(b) => Ok(State::TrailerField { len, in_name: true }),
            // Empty name, obsolete line folding (leading whitespace), junk.
            _ => Err(ChunkedError::InvalidTrailer { byte: b }.into()),
        }
    }

    /// `TrailerField`: a token name, a colon, a value without control characters.
    fn trailer_field(&self, len: usize, in_name: bool, b: u8) -> Result<State> {
        let len = self.trailer_byte(len)?;
        match b {
            _ if in_name && is_tchar(b) => Ok(State::TrailerField { len, in_name }),
            b':' if in_name => Ok(State::TrailerField {
                len,
                in_name: false,
            }),
            b'\r' if !in_name => Ok(State::TrailerLf { len }),
            b'\n' if !in_name => Err(ChunkedError::BareLf.into()),
            _ if !in_name && !is_ctl(b) => Ok(State::TrailerField { len, in_name }),
            _ => Err(ChunkedError::InvalidTrailer { byte: b }.into()),
        }
    }

    /// `TrailerLf`: the LF that ends a trailer field line.
    fn trailer_lf(&self, len: usize, b: u8) -> Result<State> {
        match b {
            b'\n' => Ok(State::Trailer {
                len: self.trailer_byte(len)?,
            }),
            _ => Err(ChunkedError::ExpectedLf { found: b }.into()),
        }
    }

    /// `EndLf`: the LF that ends the body; the next byte starts the next body.
    fn end_lf(&mut self, len: usize, b: u8) -> Result<State> {
        if b != b'\n' {
            return Err(ChunkedError::ExpectedLf { found: b }.into());
        }
        self.trailer_byte(len)?;
        self.in_body = false;
        self.bodies += 1;
        Ok(CHUNK_START)
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
}

/// `SizeLws`: more whitespace, then `;` or the line end.
fn size_lws(size: u64, b: u8) -> Result<State> {
    match b {
        b' ' | b'\t' => Ok(State::SizeLws { size }),
        b';' => Ok(State::Extension { size, len: 1 }),
        b'\r' => Ok(State::SizeLf { size }),
        b'\n' => Err(ChunkedError::BareLf.into()),
        _ => Err(ChunkedError::InvalidSize { byte: b }.into()),
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
