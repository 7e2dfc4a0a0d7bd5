//! [`RawValue`]: one MessagePack value kept as its bytes.
//!
//! Params and results travel as `RawValue`s: the bytes of the frame they arrived in,
//! sliced without copying, checked once by the scanner (valid MessagePack, within the
//! depth and length limits) and never turned into a tree unless a handler asks for one.
//! A tree costs about 30 bytes per element (`rmpv::Value` is 32 bytes, plus a heap
//! block per array), so a 16 MiB array of small integers would take half a gigabyte as
//! a tree; as a `RawValue` it takes the 16 MiB it arrived in.
//!
//! ```text
//! frame   94 00 07 a3 61 64 64 | 92 01 02
//!         [0, 7, "add",          [1, 2]]
//!                                └──────┘ params: RawValue, a slice of the frame
//! ```
//!
//! ```
//! use msgwire_wire::{RawValue, Value};
//!
//! let params = RawValue::from(&Value::Array(vec![1.into(), "two".into()]));
//! assert_eq!(params.as_bytes(), b"\x92\x01\xa3two");
//! let items: Vec<RawValue> = params.array_items().unwrap().collect();
//! assert_eq!(items[1].deserialize::<String>()?, "two");
//! let (a, b): (i64, String) = params.deserialize()?;
//! assert_eq!((a, b.as_str()), (1, "two"));
//! assert_eq!(params.to_value()?, Value::Array(vec![1.into(), "two".into()]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use msgwire_frame::msgpack::{MsgpackScanner, Scan};
use rmp::Marker;
use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EncodeError, Malformed, MalformedReason, MessageKind};
use crate::Limits;

/// One whole, valid MessagePack value, as bytes. Cheap to clone (the bytes are shared).
///
/// Equality compares bytes: the same number written in two encodings (`05` and
/// `cd 00 05`) is two different `RawValue`s.
#[derive(Clone)]
pub struct RawValue(Repr);

/// How a [`RawValue`]'s bytes are kept.
#[derive(Clone)]
enum Repr {
    /// In one buffer: every value read from the wire, and almost every value made.
    Flat(Bytes),
    /// A stream item whose value ends in a large bin, serialized without copying the
    /// bin (see [`RawValue::spliced`]).
    Spliced(Arc<Spliced>),
}

/// A value kept as two pieces: `head`, then `tail`.
struct Spliced {
    head: Bytes,
    tail: Bytes,
    /// Both in one buffer, made the first time someone asks for the bytes as one slice
    /// (the writer never does: it sends the two pieces as they are).
    flat: std::sync::OnceLock<Bytes>,
}

impl PartialEq for RawValue {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for RawValue {}

impl std::hash::Hash for RawValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// What kind of value a [`RawValue`] holds, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueKind {
    /// nil.
    Nil,
    /// true or false.
    Bool,
    /// Any integer.
    Int,
    /// f32 or f64.
    Float,
    /// A str.
    Str,
    /// A bin.
    Bin,
    /// An array.
    Array,
    /// A map.
    Map,
    /// An ext.
    Ext,
}

impl RawValue {
    /// `nil`.
    pub fn nil() -> Self {
        RawValue(Repr::Flat(Bytes::from_static(b"\xc0")))
    }

    /// `[]`, what a missing params field means.
    pub fn empty_array() -> Self {
        RawValue(Repr::Flat(Bytes::from_static(b"\x90")))
    }

    /// The bytes of `value`.
    pub fn from_value(value: &Value) -> Self {
        let mut written = false;
        let raw = with_scratch(|out| written = rmpv::encode::write_value(out, value).is_ok());
        // Writing to a Vec cannot fail.
        if written {
            raw
        } else {
            Self::nil()
        }
    }

    /// `value` written with serde (structs as maps with their field names, as
    /// `rmp_serde::to_vec_named` writes them; tuples and `Vec`s as arrays).
    pub fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, EncodeError> {
        let mut written = Ok(());
        let raw = with_scratch(|out| written = rmp_serde::encode::write_named(out, value));
        written
            .map(|()| raw)
            .map_err(|e| EncodeError::Serialize(Arc::new(e)))
    }

    /// Checks that `bytes` are exactly one MessagePack value within `limits` (nesting
    /// at most `max_depth`, at most `max_frame_length` bytes).
    pub fn from_bytes(bytes: impl Into<Bytes>, limits: &Limits) -> Result<Self, Malformed> {
        let bytes = bytes.into();
        let unknown = |reason| Malformed::new(MessageKind::Unknown, None, reason);
        let mut scanner =
            MsgpackScanner::with_limits(limits.max_depth(), limits.max_frame_length());
        match scanner.scan(&bytes) {
            Ok(Scan::Complete(n)) if n == bytes.len() => Ok(RawValue(Repr::Flat(bytes))),
            Ok(Scan::Complete(n)) => Err(unknown(MalformedReason::TrailingBytes(bytes.len() - n))),
            Ok(Scan::Incomplete { .. }) => Err(unknown(MalformedReason::Truncated)),
            Err(msgwire_frame::Error::Msgpack(msgwire_frame::msgpack::MsgpackError::TooDeep {
                max,
            })) => Err(unknown(MalformedReason::TooDeep { max })),
            Err(e) => Err(unknown(MalformedReason::InvalidMsgpack(Arc::new(e)))),
        }
    }

    /// Bytes the scanner has already measured as exactly one value.
    pub(crate) fn trusted(bytes: Bytes) -> Self {
        RawValue(Repr::Flat(bytes))
    }

    /// A value that is `head` then `tail` (both trusted to make one value), kept
    /// apart: a stream item whose last element is a large bin, whose bytes are the
    /// item's own `Bytes` (a download chunk). The writer sends the two pieces with one
    /// vectored write; anyone asking for the bytes as one slice gets a copy made once.
    pub(crate) fn spliced(head: Bytes, tail: Bytes) -> Self {
        RawValue(Repr::Spliced(Arc::new(Spliced {
            head,
            tail,
            flat: std::sync::OnceLock::new(),
        })))
    }

    /// The two pieces of a value serialized without copying its trailing bin: the
    /// bytes up to the bin's data, and the data.
    pub(crate) fn pieces(&self) -> Option<(&Bytes, &Bytes)> {
        match &self.0 {
            Repr::Flat(_) => None,
            Repr::Spliced(s) => Some((&s.head, &s.tail)),
        }
    }

    /// The bytes in one buffer.
    fn bytes(&self) -> &Bytes {
        match &self.0 {
            Repr::Flat(bytes) => bytes,
            Repr::Spliced(s) => s.flat.get_or_init(|| {
                let mut flat = Vec::with_capacity(s.head.len() + s.tail.len());
                flat.extend_from_slice(&s.head);
                flat.extend_from_slice(&s.tail);
                Bytes::from(flat)
            }),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes()
    }

    /// The bytes, shared.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Flat(bytes) => bytes,
            Repr::Spliced(_) => self.bytes().clone(),
        }
    }

    /// How many bytes the value takes.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Flat(bytes) => bytes.len(),
            Repr::Spliced(s) => s.head.len() + s.tail.len(),
        }
    }

    /// Always false: a value takes at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What kind of value this is.
    pub fn kind(&self) -> ValueKind {
        let Some(&first) = self.as_bytes().first() else {
            return ValueKind::Nil;
        };
        match Marker::from_u8(first) {
            Marker::Null | Marker::Reserved => ValueKind::Nil,
            Marker::True | Marker::False => ValueKind::Bool,
            Marker::FixPos(_)
            | Marker::FixNeg(_)
            | Marker::U8
            | Marker::U16
            | Marker::U32
            | Marker::U64
            | Marker::I8
            | Marker::I16
            | Marker::I32
            | Marker::I64 => ValueKind::Int,
            Marker::F32 | Marker::F64 => ValueKind::Float,
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => ValueKind::Str,
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => ValueKind::Bin,
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => ValueKind::Array,
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => ValueKind::Map,
            _ => ValueKind::Ext,
        }
    }

    /// Whether this is nil.
    pub fn is_nil(&self) -> bool {
        self.kind() == ValueKind::Nil
    }

    /// The number of elements, if this is an array.
    pub fn array_len(&self) -> Option<u32> {
        rmp::decode::read_array_len(&mut rmp::decode::Bytes::new(self.as_bytes())).ok()
    }

    /// The elements, if this is an array: each a `RawValue` sharing these bytes.
    pub fn array_items(&self) -> Option<ArrayItems> {
        let bytes = self.bytes();
        let mut reader = rmp::decode::Bytes::new(bytes);
        let len = rmp::decode::read_array_len(&mut reader).ok()?;
        let at = bytes.len() - reader.remaining_slice().len();
        Some(ArrayItems {
            bytes: bytes.clone(),
            at,
            left: len,
        })
    }

    /// The entries, if this is a map: each key and value a `RawValue` sharing these bytes.
    pub fn map_entries(&self) -> Option<MapEntries> {
        let bytes = self.bytes();
        let mut reader = rmp::decode::Bytes::new(bytes);
        let len = rmp::decode::read_map_len(&mut reader).ok()?;
        let at = bytes.len() - reader.remaining_slice().len();
        Some(MapEntries(ArrayItems {
            bytes: bytes.clone(),
            at,
            left: len.saturating_mul(2),
        }))
    }

    /// The value under the str key `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<RawValue> {
        self.map_entries()?
            .find(|(k, _)| crate::dialect::read_str(k.as_bytes()) == Some(key))
            .map(|(_, v)| v)
    }

    /// The value as an `rmpv::Value` tree. This allocates about 30 bytes per element:
    /// for large values from a peer prefer [`deserialize`](Self::deserialize) into a
    /// type, or working on the bytes.
    pub fn to_value(&self) -> Result<Value, rmpv::decode::Error> {
        rmpv::decode::read_value(&mut self.as_bytes())
    }

    /// The value decoded with serde into `T` (a struct from a map by field names or
    /// from an array by position, as `rmp_serde` reads them).
    ///
    /// A [`Bin`](crate::Bin) in it that is most of the value shares these bytes instead
    /// of copying them.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, rmp_serde::decode::Error> {
        let bytes = self.bytes();
        crate::bin::reading(bytes, || rmp_serde::from_slice(bytes))
    }
}

impl From<&Value> for RawValue {
    fn from(value: &Value) -> Self {
        RawValue::from_value(value)
    }
}

impl From<Value> for RawValue {
    fn from(value: Value) -> Self {
        RawValue::from_value(&value)
    }
}

impl Default for RawValue {
    /// nil.
    fn default() -> Self {
        RawValue::nil()
    }
}

// A scratch buffer per thread that values are written into. A small value is copied
// out at its exact size: one allocation per value, never a reallocation as it grows (a
// reallocation takes the allocator's arena lock, which every thread of a server writing
// values at once then waits for). A large one (a 64 KiB download chunk) is not copied:
// the buffer itself becomes the value's bytes, and the slot gets a new buffer of the
// same size — an allocation without a copy — so that the next value of that size is
// written without growing either.
thread_local! {
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A scratch buffer that grew past this is let go after use (a large value takes it
/// with it; the slot's new buffer is at most this large).
const KEEP_SCRATCH: usize = 128 * 1024;

/// Values at least this long keep the scratch buffer they were written into; shorter
/// ones are copied out of it, so that a small value never holds a large buffer.
const HAND_OVER: usize = 8 * 1024;

/// Runs `write` on an empty scratch buffer and makes a `RawValue` of what it wrote
/// (see [`write_out`]).
fn with_scratch(write: impl FnOnce(&mut Vec<u8>)) -> RawValue {
    RawValue(Repr::Flat(write_out(write)))
}

/// Runs `write` on an empty scratch buffer and returns what it wrote: copied out at its
/// exact length if it is short, the buffer itself if it is long (its spare room at most
/// what the buffer had grown to). The buffer is taken out of its slot while in use, so
/// a value written while another is being written (a `Serialize` impl that makes a
/// `RawValue`) finds the slot empty and gets a buffer of its own.
pub(crate) fn write_out(write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut out = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
    out.clear();
    write(&mut out);
    let len = out.len();
    let (bytes, keep) = if len >= HAND_OVER {
        (Bytes::from(out), Vec::with_capacity(len.min(KEEP_SCRATCH)))
    } else {
        (Bytes::copy_from_slice(&out), out)
    };
    if keep.capacity() <= KEEP_SCRATCH {
        // Gone only while the thread exits: then the buffer is dropped here.
        let _ = SCRATCH.try_with(|slot| slot.set(keep));
    }
    bytes
}

/// Values up to this many bytes are shown decoded by `Debug`.
const DEBUG_SHOWN: usize = 256;

impl fmt::Debug for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len() <= DEBUG_SHOWN {
            if let Ok(value) = self.to_value() {
                return write!(f, "RawValue({value})");
            }
        }
        write!(f, "RawValue({:?}, {} bytes)", self.kind(), self.len())
    }
}

/// The elements of an array [`RawValue`], from [`RawValue::array_items`].
#[derive(Debug, Clone)]
pub struct ArrayItems {
    bytes: Bytes,
    at: usize,
    left: u32,
}

impl Iterator for ArrayItems {
    type Item = RawValue;

    fn next(&mut self) -> Option<RawValue> {
        if self.left == 0 {
            return None;
        }
        let rest = self.bytes.get(self.at..)?;
        if self.left == 1 {
            // The value was checked as a whole, so its last element is the rest of it:
            // nothing to measure (`echo` of 16 MiB would otherwise scan all of it).
            self.left = 0;
            return (!rest.is_empty()).then(|| RawValue::trusted(self.bytes.slice(self.at..)));
        }
        // The value was checked as a whole; its elements need no limits of their own.
        let mut scanner = MsgpackScanner::with_limits(usize::MAX, usize::MAX);
        let Ok(Scan::Complete(n)) = scanner.scan(rest) else {
            self.left = 0;
            return None;
        };
        let item = RawValue::trusted(self.bytes.slice(self.at..self.at + n));
        self.at += n;
        self.left -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

/// The entries of a map [`RawValue`], from [`RawValue::map_entries`].
#[derive(Debug, Clone)]
pub struct MapEntries(ArrayItems);

impl Iterator for MapEntries {
    type Item = (RawValue, RawValue);

    fn next(&mut self) -> Option<(RawValue, RawValue)> {
        Some((self.0.next()?, self.0.next()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_share_and_keep_their_bytes() {
        let v = Value::Array(vec![Value::Binary(vec![7; 1000]), Value::Nil, (-3).into()]);
        let raw = RawValue::from(&v);
        assert_eq!(raw.kind(), ValueKind::Array);
        assert_eq!(raw.array_len(), Some(3));
        let items: Vec<_> = raw.array_items().unwrap().collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].kind(), ValueKind::Bin);
        assert_eq!(items[0].len(), 1003);
        assert!(items[1].is_nil());
        assert_eq!(items[2].deserialize::<i8>().unwrap(), -3);
        assert_eq!(raw.to_value().unwrap(), v);
        assert!(RawValue::nil().array_items().is_none());
        let map = RawValue::from(Value::Map(vec![
            ("a".into(), 1.into()),
            ("value".into(), "v".into()),
        ]));
        assert_eq!(map.map_entries().unwrap().count(), 2);
        assert_eq!(
            map.get("value").unwrap().deserialize::<String>().unwrap(),
            "v"
        );
        assert!(map.get("nope").is_none());
    }

    #[test]
    fn checked_construction() {
        let limits = Limits::default();
        assert!(RawValue::from_bytes(&b"\x92\x01\x02"[..], &limits).is_ok());
        for (bad, what) in [
            (&b"\x01\x02"[..], "two values"),
            (b"\x92\x01", "truncated"),
            (b"\xc1", "never valid"),
        ] {
            assert!(RawValue::from_bytes(bad, &limits).is_err(), "{what}");
        }
        let deep = Limits::new(16 * 1024 * 1024, 2).unwrap();
        assert!(matches!(
            RawValue::from_bytes(&b"\x91\x91\x91\x01"[..], &deep),
            Err(Malformed {
                reason: MalformedReason::TooDeep { max: 2 },
                ..
            })
        ));
    }

    #[test]
    fn serde_both_ways() {
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct User {
            id: u32,
            name: String,
        }
        let raw = RawValue::serialize(&User {
            id: 1,
            name: "Alice".into(),
        })
        .unwrap();
        assert_eq!(raw.kind(), ValueKind::Map);
        assert_eq!(
            raw.deserialize::<User>().unwrap(),
            User {
                id: 1,
                name: "Alice".into()
            }
        );
        assert!(format!("{raw:?}").contains("Alice"));
        let big = RawValue::from(Value::Binary(vec![0; 10_000]));
        assert_eq!(format!("{big:?}"), "RawValue(Bin, 10003 bytes)");
    }
}
