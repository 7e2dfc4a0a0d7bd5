//! Chunked decoding and encoding, byte for byte; one test for each error.

use bytes::BytesMut;

use super::*;
use crate::buffer::{BufferPool, PooledBuffer, RingBuffer};
use crate::testing::{self, assert_waits_with_capped_room, Cuts};

/// Every frame of `wire` fed whole, or the first error (every chunked error is fatal,
/// so it ends the decoding).
fn decode_all(framing: &mut Chunked, wire: &[u8]) -> Result<Vec<Vec<u8>>> {
    testing::decode_all(framing, wire).into_iter().collect()
}

/// The same with `wire` fed one byte at a time over `buf`.
fn decode_bytewise<B: InputBuffer>(
    framing: &mut Chunked,
    mut buf: B,
    wire: &[u8],
) -> Result<Vec<Vec<u8>>> {
    testing::feed(framing, &mut buf, wire, &Cuts::Bytewise)
        .into_iter()
        .map(|r| r.map(|frame| frame.as_ref().to_vec()))
        .collect()
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
