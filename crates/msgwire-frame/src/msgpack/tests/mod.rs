//! The MessagePack scanner's and framing's unit tests: one value of every marker family
//! ([`every_family`]) and shared checks here; the scanner, the batch path and the
//! framing each in a file of their own.

use super::*;
use crate::{Error, Result};

mod batch;
mod framing;
mod scan;

/// How deep the one value `bytes` encodes nests, as rmpv reads it.
fn rmpv_depth(bytes: &[u8]) -> usize {
    crate::testing::nesting_depth(&rmpv::decode::read_value(&mut &bytes[..]).unwrap())
}

/// Every family's value back to back, each followed by the top-level scalars in
/// `between`; and how deep each value of that stream nests.
fn family_stream_with_depths(between: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let mut wire = Vec::new();
    let mut depths = Vec::new();
    for (_, bytes) in every_family() {
        wire.extend_from_slice(&bytes);
        depths.push(rmpv_depth(&bytes));
        let mut rest = between;
        while let Ok(Some(n)) = measure(rest) {
            depths.push(0);
            rest = &rest[n..];
        }
        wire.extend_from_slice(between);
    }
    (wire, depths)
}

fn scan_fresh(input: &[u8]) -> Result<Scan> {
    MsgpackScanner::new().scan(input)
}

/// One value of every marker family, with its exact length.
fn every_family() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        ("positive fixint 0", vec![0x00]),
        ("positive fixint 127", vec![0x7f]),
        ("negative fixint -32", vec![0xe0]),
        ("negative fixint -1", vec![0xff]),
        ("nil", vec![0xc0]),
        ("false", vec![0xc2]),
        ("true", vec![0xc3]),
        ("uint8", vec![0xcc, 0xff]),
        ("uint16", vec![0xcd, 0x01, 0x00]),
        ("uint32", vec![0xce, 0, 1, 0, 0]),
        ("uint64", vec![0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
        ("int8", vec![0xd0, 0x80]),
        ("int16", vec![0xd1, 0x80, 0x00]),
        ("int32", vec![0xd2, 0x80, 0, 0, 0]),
        ("int64", vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        ("float32", vec![0xca, 0x3f, 0x80, 0, 0]),
        ("float64", vec![0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
        ("fixext1", vec![0xd4, 0x01, 0xaa]),
        ("fixext2", vec![0xd5, 0x01, 0xaa, 0xbb]),
        ("fixext4", vec![0xd6, 0xff, 1, 2, 3, 4]),
        ("fixext8", vec![0xd7, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8]),
        ("ext8 empty", vec![0xc7, 0x00, 0x05]),
        ("ext8", vec![0xc7, 0x03, 0x05, 1, 2, 3]),
        ("ext16", vec![0xc8, 0x00, 0x02, 0x05, 1, 2]),
        ("ext32", vec![0xc9, 0, 0, 0, 0x01, 0x05, 0xc1]),
        ("fixstr empty", vec![0xa0]),
        ("fixstr", vec![0xa3, b'a', b'b', b'c']),
        ("str8", vec![0xd9, 0x02, b'h', b'i']),
        ("str16", vec![0xda, 0x00, 0x01, b'x']),
        ("str32", vec![0xdb, 0, 0, 0, 0x01, b'x']),
        ("bin8", vec![0xc4, 0x02, 0xc1, 0xc1]),
        ("bin16", vec![0xc5, 0x00, 0x00]),
        ("bin32", vec![0xc6, 0, 0, 0, 0x02, 0, 0]),
        ("fixarray empty", vec![0x90]),
        ("fixarray", vec![0x93, 0x01, 0xc0, 0xa1, b'z']),
        ("fixmap empty", vec![0x80]),
        ("fixmap", vec![0x82, 0x01, 0x02, 0xa1, b'k', 0xc3]),
        ("array16", vec![0xdc, 0x00, 0x02, 0x01, 0x02]),
        ("array32", vec![0xdd, 0, 0, 0, 0x01, 0xcc, 0x05]),
        ("map16", vec![0xde, 0x00, 0x01, 0x01, 0x02]),
        ("map32", vec![0xdf, 0, 0, 0, 0x01, 0x90, 0x80]),
        ("array16 empty", vec![0xdc, 0x00, 0x00]),
        ("map32 empty", vec![0xdf, 0, 0, 0, 0]),
        ("nested", vec![0x92, 0x91, 0x91, 0x01, 0x02]),
        ("nested empties", vec![0x92, 0x91, 0x90, 0x90]),
        (
            "map of arrays",
            vec![0x81, 0x91, 0x01, 0x92, 0x80, 0xc4, 0x01, 0x00],
        ),
    ];
    let mut fixext16 = vec![0xd8, 0x01];
    fixext16.extend_from_slice(&[0xc1; 16]);
    v.push(("fixext16", fixext16));
    let mut fixarray15 = vec![0x9f];
    fixarray15.extend_from_slice(&[0x07; 15]);
    v.push(("fixarray 15", fixarray15));
    let mut fixmap15 = vec![0x8f];
    fixmap15.extend_from_slice(&[0x07; 30]);
    v.push(("fixmap 15", fixmap15));
    let mut fixstr31 = vec![0xbf];
    fixstr31.extend_from_slice(&[b'.'; 31]);
    v.push(("fixstr 31", fixstr31));
    v
}

fn assert_too_long(result: Result<Scan>, length: u64, max: u64) {
    match result {
        Err(Error::TooLong { length: l, max: m }) => assert_eq!((l, m), (length, max)),
        other => panic!("expected TooLong {{ {length}, {max} }}, got {other:?}"),
    }
}

fn rmpv_encode(value: &rmpv::Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}
