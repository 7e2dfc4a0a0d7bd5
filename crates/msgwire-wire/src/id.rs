//! Call ids: what a caller puts in a request so that it can match the response.
//!
//! The dialects differ in what they allow:
//!
//! ```text
//! framed-binary  u32 in the frame header            00 00 00 07
//! msgpack-rpc    a MessagePack integer (u32 by the spec; any integer or short str is
//!                accepted and echoed)              07 | cd 01 00 | a4 "r-01"
//! framed-map     any MessagePack integer, or a str of at most 256 bytes
//!                ("req-uuid-001", as the seed's peers send)
//! ```
//!
//! A response carries its request's id back exactly: the same MessagePack type (integer
//! or str) and the same value. msgwire numbers its own calls with u32s from 1.
//!
//! ```
//! use msgwire_wire::CallId;
//!
//! let n = CallId::from(7u32);
//! assert_eq!(n.as_u32(), Some(7));
//! let s = CallId::string("req-uuid-001").unwrap();
//! assert_eq!(s.as_str(), Some("req-uuid-001"));
//! assert_eq!(s.to_string(), "\"req-uuid-001\"");
//! assert!(CallId::string("x".repeat(300)).is_none()); // longer than MAX_STR_ID_LEN
//! assert_ne!(CallId::from(-1i64), CallId::from(u64::MAX));
//! ```

use std::fmt;

/// The longest str id accepted, in bytes (UTF-8). A UUID takes 36.
pub const MAX_STR_ID_LEN: usize = 256;

/// A call's id, chosen by the caller and echoed in the response: an integer (any
/// MessagePack integer, `i64::MIN..=u64::MAX`) or a str of at most [`MAX_STR_ID_LEN`]
/// bytes. See the [module docs](self).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(Repr);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    /// Non-negative integers, whatever encoding they arrived in.
    Unsigned(u64),
    /// Negative integers.
    Negative(i64),
    Str(Box<str>),
}

impl CallId {
    /// A str id, if it is at most [`MAX_STR_ID_LEN`] bytes.
    pub fn string(id: impl Into<String>) -> Option<CallId> {
        let id = id.into();
        (id.len() <= MAX_STR_ID_LEN).then(|| CallId(Repr::Str(id.into_boxed_str())))
    }

    /// The id as a u32, if it is an integer that fits (every id msgwire itself makes).
    pub fn as_u32(&self) -> Option<u32> {
        self.as_u64().and_then(|n| u32::try_from(n).ok())
    }

    /// The id as a u64, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self.0 {
            Repr::Unsigned(n) => Some(n),
            _ => None,
        }
    }

    /// The id as an i64, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Unsigned(n) => i64::try_from(n).ok(),
            Repr::Negative(n) => Some(n),
            Repr::Str(_) => None,
        }
    }

    /// The id as text, if it is a str id.
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether it is an integer id.
    pub fn is_int(&self) -> bool {
        !matches!(self.0, Repr::Str(_))
    }

    /// Writes the id as MessagePack: integers in their most compact form, a str as a str.
    pub(crate) fn write<W: std::io::Write>(
        &self,
        w: &mut W,
    ) -> Result<(), rmp::encode::ValueWriteError> {
        match &self.0 {
            Repr::Unsigned(n) => rmp::encode::write_uint(w, *n).map(drop),
            Repr::Negative(n) => rmp::encode::write_sint(w, *n).map(drop),
            Repr::Str(s) => rmp::encode::write_str(w, s),
        }
    }

    /// How many bytes [`write`](Self::write) takes, at most.
    pub(crate) fn encoded_len_hint(&self) -> usize {
        match &self.0 {
            Repr::Str(s) => s.len() + 5,
            _ => 9,
        }
    }
}

impl From<u32> for CallId {
    fn from(n: u32) -> Self {
        CallId(Repr::Unsigned(u64::from(n)))
    }
}

impl From<u64> for CallId {
    fn from(n: u64) -> Self {
        CallId(Repr::Unsigned(n))
    }
}

impl From<i64> for CallId {
    fn from(n: i64) -> Self {
        match u64::try_from(n) {
            Ok(n) => CallId(Repr::Unsigned(n)),
            Err(_) => CallId(Repr::Negative(n)),
        }
    }
}

impl From<i32> for CallId {
    fn from(n: i32) -> Self {
        CallId::from(i64::from(n))
    }
}

impl fmt::Display for CallId {
    /// Integers as numbers, str ids quoted (as JSON would show them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Unsigned(n) => write!(f, "{n}"),
            Repr::Negative(n) => write!(f, "{n}"),
            Repr::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq<u32> for CallId {
    fn eq(&self, other: &u32) -> bool {
        self.as_u32() == Some(*other)
    }
}

impl PartialEq<&str> for CallId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(id: &CallId) -> Vec<u8> {
        let mut out = Vec::new();
        id.write(&mut out).unwrap();
        assert!(out.len() <= id.encoded_len_hint());
        out
    }

    #[test]
    fn integers_are_equal_by_value_and_written_compactly() {
        assert_eq!(CallId::from(5u32), CallId::from(5i64));
        assert_eq!(CallId::from(5u64), 5u32);
        assert_eq!(bytes(&CallId::from(5u32)), [0x05]);
        assert_eq!(bytes(&CallId::from(300u32)), [0xcd, 0x01, 0x2c]);
        assert_eq!(bytes(&CallId::from(-1i64)), [0xff]);
        assert_eq!(
            bytes(&CallId::from(u64::MAX)),
            [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(CallId::from(-1i64).as_u32(), None);
        assert_eq!(CallId::from(u64::MAX).as_i64(), None);
        assert_eq!(CallId::from(i64::MIN).as_i64(), Some(i64::MIN));
    }

    #[test]
    fn strings_stay_strings() {
        let id = CallId::string("req-uuid-001").unwrap();
        assert_eq!(bytes(&id)[0], 0xac);
        assert_eq!(&bytes(&id)[1..], b"req-uuid-001");
        assert!(!id.is_int());
        assert_ne!(id, CallId::string("req-uuid-002").unwrap());
        // "5" the str is not 5 the integer.
        assert_ne!(CallId::string("5").unwrap(), CallId::from(5u32));
        assert!(CallId::string("é".repeat(128)).is_some()); // 256 bytes
        assert!(CallId::string("é".repeat(129)).is_none());
        assert_eq!(format!("{:?}", CallId::from(3u32)), "3");
    }
}
