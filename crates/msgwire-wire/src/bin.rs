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
        serializer.serialize_bytes(&self.0)
    }
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
    use crate::RawValue;

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
