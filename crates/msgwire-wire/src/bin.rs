//! [`Bin`]: bytes that travel as a MessagePack bin, read without a copy.

use std::cell::Cell;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Bytes that travel as a MessagePack bin (`rmp_serde` would write a `Vec<u8>` or a
/// `Bytes` as an array of integers).
///
/// Read by [`RawValue::deserialize`](crate::RawValue::deserialize), a bin that takes
/// up most of the value (a download chunk's `data`) is not copied: it shares the bytes
/// the value arrived in. A small one is copied, so that it does not keep a large frame
/// alive; read by any other deserializer, it is copied too.
///
/// ```
/// use bytes::Bytes;
/// use msgwire_wire::{Bin, RawValue};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Chunk {
///     data: Bin,
///     offset: u64,
/// }
///
/// let sent = Chunk { data: Bin(Bytes::from(vec![7; 4096])), offset: 0 };
/// let raw = RawValue::serialize(&sent)?;
/// let chunk: Chunk = raw.deserialize()?;
/// assert_eq!(chunk.data.0.len(), 4096);
/// // The same memory as the value's own bytes: no copy was made.
/// let within = raw.as_bytes().as_ptr_range();
/// assert!(within.contains(&chunk.data.0.as_ptr()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bin(pub Bytes);

impl fmt::Debug for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bin({} bytes)", self.0.len())
    }
}

impl From<Bytes> for Bin {
    fn from(bytes: Bytes) -> Self {
        Bin(bytes)
    }
}

impl From<Vec<u8>> for Bin {
    fn from(bytes: Vec<u8>) -> Self {
        Bin(Bytes::from(bytes))
    }
}

impl Serialize for Bin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.len() >= SPLICE_FROM && SPLICING.try_with(Cell::get).unwrap_or(false) {
            let _ = OFFERED.try_with(|slot| slot.set(Some(self.0.clone())));
        }
        serializer.serialize_bytes(&self.0)
    }
}

/// A [`Bin`] at least this long at the end of a stream item is not copied into it.
const SPLICE_FROM: usize = 16 * 1024;

thread_local! {
    /// A stream item is being serialized on this thread ([`splicing`]).
    static SPLICING: Cell<bool> = const { Cell::new(false) };
    /// The bytes of the last large [`Bin`] serialized meanwhile: if the serializer's
    /// next write is exactly them, the [`Splicer`] keeps them instead of a copy.
    static OFFERED: Cell<Option<Bytes>> = const { Cell::new(None) };
}

/// The writer a stream item is serialized into: everything is appended to `out`, but a
/// large [`Bin`]'s data is kept aside as long as nothing follows it, so that an item
/// ending in one (a download chunk) is its head plus the bin's own `Bytes`.
pub(crate) struct Splicer<'a> {
    out: &'a mut Vec<u8>,
    tail: Option<Bytes>,
}

impl std::io::Write for Splicer<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(tail) = self.tail.take() {
            // Something follows the bin: it goes in after all.
            self.out.extend_from_slice(&tail);
        }
        let offered = OFFERED.try_with(Cell::take).ok().flatten();
        match offered {
            // The same memory, so the same bytes: nothing to copy.
            Some(bytes) if bytes.as_ptr() == buf.as_ptr() && bytes.len() == buf.len() => {
                self.tail = Some(bytes);
            }
            // Not yet (the bin's header comes first): the offer stands.
            Some(bytes) => {
                self.out.extend_from_slice(buf);
                let _ = OFFERED.try_with(|slot| slot.set(Some(bytes)));
            }
            None => self.out.extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `write` on a [`Splicer`] over `out`; returns what it returned and the large
/// bin it ended with, if it did (its bytes then follow `out`'s).
pub(crate) fn splicing<T>(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Splicer<'_>) -> T,
) -> (T, Option<Bytes>) {
    /// Puts the flag back and forgets any offer, even if `write` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0;
            let _ = SPLICING.try_with(|slot| slot.set(outer));
            let _ = OFFERED.try_with(Cell::take);
        }
    }
    let outer = SPLICING
        .try_with(|slot| slot.replace(true))
        .unwrap_or(false);
    let _restore = Restore(outer);
    let _ = OFFERED.try_with(Cell::take);
    let mut splicer = Splicer { out, tail: None };
    let result = write(&mut splicer);
    (result, splicer.tail)
}

impl<'de> Deserialize<'de> for Bin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BinVisitor;
        impl<'de> serde::de::Visitor<'de> for BinVisitor {
            type Value = Bin;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a bin")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, bytes: &'de [u8]) -> Result<Bin, E> {
                Ok(Bin(shared(bytes)))
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Bin, E> {
                Ok(Bin(Bytes::copy_from_slice(bytes)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Bin, E> {
                Ok(Bin(Bytes::from(bytes)))
            }
        }
        deserializer.deserialize_bytes(BinVisitor)
    }
}

thread_local! {
    /// The bytes [`RawValue::deserialize`](crate::RawValue::deserialize) is reading on
    /// this thread, if it is.
    static SOURCE: Cell<Option<Bytes>> = const { Cell::new(None) };
}

/// Runs `read` with `source` as the bytes borrowed slices come from.
pub(crate) fn reading<T>(source: &Bytes, read: impl FnOnce() -> T) -> T {
    /// Puts back the source of an outer read (a `Deserialize` impl that reads a
    /// `RawValue` of its own), even if `read` unwinds.
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            let _ = SOURCE.try_with(|slot| slot.set(outer));
        }
    }
    let outer = SOURCE.try_with(|slot| slot.replace(Some(source.clone())));
    let _restore = Restore(outer.unwrap_or_default());
    read()
}

/// `slice` as `Bytes`: shared with the source being read if it lies within it and is
/// at least half of it, copied otherwise.
fn shared(slice: &[u8]) -> Bytes {
    let source = SOURCE.try_with(Cell::take).unwrap_or_default();
    let bytes = match &source {
        Some(source) if within(source, slice) && slice.len() * 2 >= source.len() => {
            source.slice_ref(slice)
        }
        _ => Bytes::copy_from_slice(slice),
    };
    let _ = SOURCE.try_with(|slot| slot.set(source));
    bytes
}

fn within(source: &[u8], slice: &[u8]) -> bool {
    let outer = source.as_ptr_range();
    let inner = slice.as_ptr_range();
    outer.start <= inner.start && inner.end <= outer.end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallId, Dialect, Message, RawValue, WireCodec};

    /// A stream item that ends in a large bin keeps the bin's bytes (no copy); one
    /// whose bin is followed by more is written whole; either way the bytes, and the
    /// bytes on the wire, are exactly what serializing `[id, item]` gives.
    #[test]
    fn an_item_ending_in_a_large_bin_is_not_copied() {
        #[derive(Serialize)]
        struct Last {
            offset: u64,
            data: Bin,
        }
        #[derive(Serialize)]
        struct First {
            data: Bin,
            offset: u64,
        }
        let data = Bytes::from(vec![5u8; 64 * 1024]);
        let id = CallId::from(7u32);
        let check = |params: &RawValue, len: usize, expected: Vec<u8>| {
            assert_eq!(params.as_bytes(), &expected[..]);
            assert_eq!(params.len(), expected.len());
            assert_eq!(len, expected.len() - 2, "the value's length, without [id]");
            let message =
                crate::stream::item_message(crate::stream::Direction::FromCallee, params.clone());
            for dialect in Dialect::ALL {
                let codec = WireCodec::new(dialect);
                let encoder = codec.encoder();
                let mut whole = bytes::BytesMut::new();
                encoder.encode(&message, &mut whole).unwrap();
                let flat = Message::Notification {
                    method: crate::stream::ITEM_METHOD.into(),
                    params: RawValue::trusted(Bytes::from(expected.clone())),
                };
                let mut reference = bytes::BytesMut::new();
                encoder.encode(&flat, &mut reference).unwrap();
                assert_eq!(whole, reference, "{dialect}");
                let (joined, held) =
                    crate::dialect::tests::vectored(&codec, &message, 1024..usize::MAX);
                assert_eq!(held, 1, "{dialect}");
                assert_eq!(joined, &reference[..], "{dialect}");
            }
        };

        let last = Last {
            offset: 3,
            data: Bin(data.clone()),
        };
        let (params, len) = crate::stream::serialize_item(&id, &last).unwrap();
        let (_, tail) = params.pieces().expect("kept in two pieces");
        assert_eq!(tail.as_ptr(), data.as_ptr(), "the bin's own bytes");
        check(
            &params,
            len,
            rmp_serde::to_vec_named(&(7u32, &last)).unwrap(),
        );

        let first = First {
            data: Bin(data.clone()),
            offset: 3,
        };
        let (params, len) = crate::stream::serialize_item(&id, &first).unwrap();
        assert!(params.pieces().is_none(), "something follows the bin");
        check(
            &params,
            len,
            rmp_serde::to_vec_named(&(7u32, &first)).unwrap(),
        );
    }

    #[test]
    fn a_small_bin_is_copied_a_large_one_shared() {
        #[derive(Serialize, Deserialize)]
        struct Two {
            small: Bin,
            large: Bin,
        }
        let raw = RawValue::serialize(&Two {
            small: Bin::from(vec![1; 10]),
            large: Bin::from(vec![2; 1000]),
        })
        .unwrap();
        let two: Two = raw.deserialize().unwrap();
        let range = raw.as_bytes().as_ptr_range();
        assert_eq!(&two.small.0[..], &[1; 10]);
        assert_eq!(&two.large.0[..], &[2; 1000][..]);
        assert!(!range.contains(&two.small.0.as_ptr()));
        assert!(range.contains(&two.large.0.as_ptr()));
        // Outside `RawValue::deserialize`: copied.
        let copied: Bin = rmp_serde::from_slice(b"\xc4\x03abc").unwrap();
        assert_eq!(&copied.0[..], b"abc");
    }
}
