//! The three dialects: framing plus message shape, detection, encode and decode.
//!
//! ```text
//! msgpack-rpc (no prefix; values back to back)
//!   request       [0, id, method: str, params: array|map]
//!   response      [1, id, error: nil|[code: int, message: str], result: any]
//!   notification  [2, method: str, params: array|map]
//!   (id: u32 by the spec; any integer or a str of at most 256 bytes is echoed)
//!
//! framed-binary
//!   +----------------+---------+-----------------+--------------------------------+
//!   | length: u32 BE | type: u8| id: u32 BE      | body: MessagePack map          |
//!   +----------------+---------+-----------------+--------------------------------+
//!                     <------------- length counts these bytes ------------------>
//!   type 1 request       {"method": str, "params": array|map}
//!   type 2 response      {"result": any}  or  {"error": str, "code": int}
//!   type 3 notification  {"method": str, "params": array|map}   (id 0, ignored)
//!
//! framed-map
//!   +----------------+----------------------------------------------------------+
//!   | length: u32 BE | MessagePack map                                          |
//!   +----------------+----------------------------------------------------------+
//!   request       {"method": str, "params": array|map, "id": int|str}
//!   response      {"id": int|str, "result": any, "error": nil|{"code": int, "message": str}}
//!   notification  {"method": str, "params": array|map}            (no "id", or nil)
//!   error         {"id": nil, "result": nil, "error": {...}}     (belongs to no call)
//! ```
//!
//! `decode.rs` reads each dialect's envelope straight from the frame's bytes (no
//! `rmpv::Value` tree; params and results stay [`RawValue`](crate::RawValue) slices of
//! the frame), `encode.rs` writes it, `read.rs` has the pieces both readers share.

use std::fmt;
use std::str::FromStr;

mod decode;
pub(crate) mod encode;
mod read;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use decode::{
    parse_framed_binary, parse_framed_map, parse_msgpack_rpc, salvage_request_id,
};
pub(crate) use encode::encode_body;
pub(crate) use read::{read_id, read_str};

/// A wire dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// The MessagePack-RPC specification, as Neovim speaks it.
    MsgpackRpc,
    /// `[u32 length][u8 type][u32 id][map]`.
    FramedBinary,
    /// `[u32 length][map]`.
    FramedMap,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 3] = [
        Dialect::MsgpackRpc,
        Dialect::FramedBinary,
        Dialect::FramedMap,
    ];

    /// `msgpack-rpc`, `framed-binary` or `framed-map`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::MsgpackRpc => "msgpack-rpc",
            Dialect::FramedBinary => "framed-binary",
            Dialect::FramedMap => "framed-map",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dialect name that is not one of [`Dialect::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dialect {0:?}: expected msgpack-rpc, framed-binary or framed-map")]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, UnknownDialect> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| UnknownDialect(crate::text::excerpt(s, 64).into_owned()))
    }
}

/// What a connection's first bytes say about its dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detected {
    /// This dialect.
    Dialect(Dialect),
    /// Not enough bytes yet (at most 5 are ever needed).
    NeedMore,
    /// No dialect starts like this: the connection should get an error and be closed.
    Unknown,
}

/// Tells a connection's dialect from its first bytes (at most 5):
///
/// * `0x94` or `0x93` — a MessagePack array of 4 or 3: msgpack-rpc;
/// * `0x00` — the top byte of a u32 length under 16 MiB: a framed dialect; byte 4 is a
///   MessagePack map marker for framed-map, or a type 1–3 for framed-binary;
/// * anything else: [`Detected::Unknown`].
pub fn detect(prefix: &[u8]) -> Detected {
    let Some(&first) = prefix.first() else {
        return Detected::NeedMore;
    };
    match first {
        0x93 | 0x94 => Detected::Dialect(Dialect::MsgpackRpc),
        0x00 => match prefix.get(4) {
            None => Detected::NeedMore,
            Some(0x80..=0x8f | 0xde | 0xdf) => Detected::Dialect(Dialect::FramedMap),
            Some(1..=3) => Detected::Dialect(Dialect::FramedBinary),
            Some(_) => Detected::Unknown,
        },
        _ => Detected::Unknown,
    }
}
