//! Reading an envelope out of a frame without building a tree: a cursor that measures
//! one value at a time with the scanner (checking it on the way) and the small readers
//! for ids, strs, ints and errors that every dialect shares.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use msgwire_frame::msgpack::{MsgpackError, MsgpackScanner, Scan};
use rmp::decode::Bytes as Cursor;
use rmpv::Value;

use crate::error::MalformedReason;
use crate::id::MAX_STR_ID_LEN;
use crate::{CallId, Code, Limits, RawValue, RpcError};

/// A cursor over one frame. Every value it steps over is measured by the scanner, which
/// checks it is valid MessagePack and follows nesting up to the measuring depth; values
/// nested deeper than the limit itself set [`too_deep`](Self::too_deep).
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    scanner: MsgpackScanner,
    max_depth: usize,
    /// Some value stepped over nests deeper than the limit.
    pub(super) too_deep: bool,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], limits: &Limits) -> Self {
        Self {
            bytes,
            pos: 0,
            scanner: MsgpackScanner::with_limits(limits.measure_depth(), bytes.len()),
            max_depth: limits.max_depth(),
            too_deep: false,
        }
    }

    /// The bytes from here to the end.
    pub(super) fn rest(&self) -> Range<usize> {
        self.pos..self.bytes.len()
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// An array header, if one is next.
    pub(super) fn array_len(&mut self) -> Option<u32> {
        let mut cursor = Cursor::new(self.bytes.get(self.pos..)?);
        let len = rmp::decode::read_array_len(&mut cursor).ok()?;
        self.pos += cursor.position() as usize;
        Some(len)
    }

    /// A map header, if one is next.
    pub(super) fn map_len(&mut self) -> Option<u32> {
        let mut cursor = Cursor::new(self.bytes.get(self.pos..)?);
        let len = rmp::decode::read_map_len(&mut cursor).ok()?;
        self.pos += cursor.position() as usize;
        Some(len)
    }

    /// Steps over the next value and returns where it is. A scalar whose header gives
    /// its length (nil, booleans, numbers, str, bin) is stepped over from its header
    /// alone; anything else is measured by the scanner.
    pub(super) fn value(&mut self) -> Result<Range<usize>, MalformedReason> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        if let Some(n) = scalar_len(rest) {
            let range = self.pos..self.pos + n;
            self.pos += n;
            return Ok(range);
        }
        match self.scanner.scan(rest) {
            Ok(Scan::Complete(n)) => {
                if self.scanner.last_depth() > self.max_depth {
                    self.too_deep = true;
                }
                let range = self.pos..self.pos + n;
                self.pos += n;
                Ok(range)
            }
            Ok(Scan::Incomplete { .. }) => {
                self.scanner.reset();
                Err(MalformedReason::Truncated)
            }
            Err(msgwire_frame::Error::Msgpack(MsgpackError::TooDeep { .. })) => {
                self.too_deep = true;
                Err(MalformedReason::TooDeep {
                    max: self.max_depth,
                })
            }
            Err(e) => Err(MalformedReason::InvalidMsgpack(Arc::new(e))),
        }
    }

    /// The next value's bytes.
    pub(super) fn slice(&mut self) -> Result<&'a [u8], MalformedReason> {
        let range = self.value()?;
        Ok(&self.bytes[range])
    }
}

/// How many bytes the scalar at the front of `bytes` takes, if it is one whose header
/// says (nil, booleans, numbers, str, bin) and all of it is there. A scalar needs no
/// checking: every byte of its payload is valid whatever it holds.
fn scalar_len(bytes: &[u8]) -> Option<usize> {
    let &first = bytes.first()?;
    let be = |width: usize| -> Option<usize> {
        let field = bytes.get(1..1 + width)?;
        Some(field.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)))
    };
    let len = match first {
        0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => 1,
        0xcc | 0xd0 => 2,
        0xcd | 0xd1 => 3,
        0xca | 0xce | 0xd2 => 5,
        0xcb | 0xcf | 0xd3 => 9,
        0xa0..=0xbf => 1 + usize::from(first & 0x1f),
        0xc4 | 0xd9 => 2 + be(1)?,
        0xc5 | 0xda => 3 + be(2)?,
        0xc6 | 0xdb => 5usize.checked_add(be(4)?)?,
        _ => return None,
    };
    (len <= bytes.len()).then_some(len)
}

/// An id: an integer, or a str of at most [`MAX_STR_ID_LEN`] bytes of UTF-8.
pub(crate) fn read_id(bytes: &[u8]) -> Option<CallId> {
    if let Some(s) = read_str(bytes) {
        return (s.len() <= MAX_STR_ID_LEN)
            .then(|| CallId::string(s))
            .flatten();
    }
    if let Ok(n) = rmp::decode::read_int::<u64, _>(&mut Cursor::new(bytes)) {
        return Some(CallId::from(n));
    }
    rmp::decode::read_int::<i64, _>(&mut Cursor::new(bytes))
        .ok()
        .map(CallId::from)
}

/// A method name: a str, or a bin holding UTF-8 (pynvim sends its method names as bin,
/// as MessagePack's old "raw" type).
pub(super) fn read_method(bytes: &[u8]) -> Option<String> {
    if let Some(s) = read_str(bytes) {
        return Some(s.to_owned());
    }
    let mut cursor = Cursor::new(bytes);
    let len = rmp::decode::read_bin_len(&mut cursor).ok()? as usize;
    let body = cursor.remaining_slice().get(..len)?;
    std::str::from_utf8(body).ok().map(str::to_owned)
}

/// A str of UTF-8, if that is what `bytes` start with.
pub(crate) fn read_str(bytes: &[u8]) -> Option<&str> {
    let mut cursor = Cursor::new(bytes);
    let len = rmp::decode::read_str_len(&mut cursor).ok()? as usize;
    let body = cursor.remaining_slice().get(..len)?;
    std::str::from_utf8(body).ok()
}

/// An integer that fits an i64.
pub(super) fn read_i64(bytes: &[u8]) -> Option<i64> {
    rmp::decode::read_int::<i64, _>(&mut Cursor::new(bytes)).ok()
}

/// Whether the value is nil.
pub(super) fn is_nil(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0xc0)
}

/// Params: an array or a map; nil means none (an empty array).
pub(super) fn params(frame: &Bytes, range: Range<usize>) -> Result<RawValue, MalformedReason> {
    let raw = RawValue::trusted(frame.slice(range));
    match raw.kind() {
        crate::ValueKind::Array | crate::ValueKind::Map => Ok(raw),
        crate::ValueKind::Nil => Ok(RawValue::empty_array()),
        _ => Err(MalformedReason::BadParams),
    }
}

/// Values up to this size that are not in a known error shape are kept as their text.
const SHOWN_AS_TEXT: usize = 256;

/// Reads an error in any of the shapes peers send: `[code, message]` (msgpack-rpc and
/// Neovim), `{"code", "message", "data"?}`, a bare str, or anything else (its text if
/// short, code UNKNOWN).
pub(super) fn error_from(frame: &Bytes, range: Range<usize>, limits: &Limits) -> RpcError {
    let bytes = &frame[range.clone()];
    let mut reader = Reader::new(bytes, limits);
    if let Some(2) = reader.array_len() {
        if let (Ok(code), Ok(message)) = (reader.slice(), reader.slice()) {
            let code = read_i64(code).map_or(Code::Unknown, Code::from_i64);
            return RpcError::new(code, text_of(message));
        }
    }
    let mut reader = Reader::new(bytes, limits);
    if let Some(entries) = reader.map_len() {
        let mut error = RpcError::new(Code::Unknown, String::new());
        for _ in 0..entries {
            let (Ok(key), Ok(value)) = (reader.slice(), reader.value()) else {
                break;
            };
            match read_str(key) {
                Some("code") => {
                    error.code = read_i64(&bytes[value]).map_or(Code::Unknown, Code::from_i64)
                }
                Some("message") => error.message = text_of(&bytes[value]),
                Some("data") => {
                    let at = range.start;
                    error.data = Some(RawValue::trusted(
                        frame.slice(at + value.start..at + value.end),
                    ));
                }
                _ => {}
            }
        }
        return error;
    }
    RpcError::new(Code::Unknown, text_of(bytes))
}

/// A str as itself; a small value of any other kind as its MessagePack text; a large one
/// described by its size.
pub(super) fn text_of(bytes: &[u8]) -> String {
    if let Some(s) = read_str(bytes) {
        return s.to_owned();
    }
    if bytes.len() <= SHOWN_AS_TEXT {
        if let Ok(value) = rmpv::decode::read_value(&mut &bytes[..]) {
            return match value {
                Value::String(s) => s.into_str().unwrap_or_default(),
                other => other.to_string(),
            };
        }
    }
    format!("(a value of {} bytes)", bytes.len())
}
