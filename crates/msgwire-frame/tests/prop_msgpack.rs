//! Property: any MessagePack values, encoded back to back by rmpv, cut at any points and
//! fed to any buffer strategy, come out as exactly their encodings, one frame per value,
//! and decode back to the same values. And on arbitrary bytes the scanner agrees with
//! rmpv about where a value ends, and `scan_many` finds the same values (and errors) as
//! repeated `scan` wherever the stream is cut.
#![allow(clippy::unwrap_used)]

use msgwire_frame::testing::{cuts, decode_pieces, nesting_depth, Cuts};
use msgwire_frame::with_every_buffer;
use msgwire_frame::{
    msgpack::{measure, MsgpackError, MsgpackScanner, Scan, SelfDelimited},
    Error, Framing, DEFAULT_MAX_FRAME,
};
use proptest::prelude::*;
use rmpv::Value;

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

fn integer() -> impl Strategy<Value = Value> {
    // Every width rmpv can pick: it writes the smallest encoding that holds the number.
    prop_oneof![
        (0u64..=127).prop_map(Value::from),
        (128u64..=255).prop_map(Value::from),
        (256u64..=65_535).prop_map(Value::from),
        (65_536u64..=u64::from(u32::MAX)).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-32i64..0).prop_map(Value::from),
        (-128i64..-32).prop_map(Value::from),
        (i64::from(i16::MIN)..-128).prop_map(Value::from),
        (i64::from(i32::MIN)..i64::from(i16::MIN)).prop_map(Value::from),
        (i64::MIN..i64::from(i32::MIN)).prop_map(Value::from),
    ]
}

fn bytes(small: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..small),
        2 => prop::collection::vec(any::<u8>(), 200..400), // 8- and 16-bit lengths
        // 32-bit lengths: cheap to make, one byte repeated.
        1 => (65_536usize..66_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ]
}

fn string() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::collection::vec(any::<char>(), 0..40).prop_map(|c| Value::from(String::from_iter(c))),
        2 => (30usize..300).prop_map(|n| Value::from("é".repeat(n / 2))),
        1 => (65_536usize..66_000).prop_map(|n| Value::from("x".repeat(n))),
    ]
}

fn ext() -> impl Strategy<Value = Value> {
    let data = prop_oneof![
        // fixext sizes, and the ones around them.
        3 => prop::sample::select(vec![1usize, 2, 4, 8, 16, 0, 3, 5, 17])
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n)),
        1 => bytes(40),
    ];
    (any::<i8>(), data).prop_map(|(t, d)| Value::Ext(t, d))
}

fn float_bits() -> prop::num::f64::Any {
    use prop::num::f64::*;
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

fn leaf() -> impl Strategy<Value = Value> {
    use prop::num::f32;
    prop_oneof![
        1 => Just(Value::Nil),
        1 => any::<bool>().prop_map(Value::Boolean),
        6 => integer(),
        1 => (f32::POSITIVE | f32::NEGATIVE | f32::NORMAL | f32::SUBNORMAL | f32::ZERO | f32::INFINITE)
            .prop_map(Value::F32),
        1 => float_bits().prop_map(Value::F64),
        3 => string(),
        2 => bytes(40).prop_map(Value::Binary),
        2 => ext(),
    ]
}

/// Nested values, plus the rare array16/32 and map16/32 (cheap: small repeated elements).
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 12, |inner| {
        prop_oneof![
            6 => prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
            4 => prop::collection::vec((inner.clone(), inner.clone()), 0..8).prop_map(Value::Map),
            1 => prop::collection::vec(inner.clone(), 16..20).prop_map(Value::Array),
            1 => prop::collection::vec((inner.clone(), inner), 16..18).prop_map(Value::Map),
            1 => (65_536usize..65_600).prop_map(|n| Value::Array(vec![Value::from(1); n])),
            1 => (65_536usize..65_600).prop_map(|n| {
                Value::Map((0..n).map(|i| (Value::from(i), Value::Nil)).collect())
            }),
        ]
    })
}

fn check(values: &[Value], cuts: &Cuts) {
    let mut wire = Vec::new();
    let mut encodings = Vec::new();
    let mut offsets = Vec::new();
    for v in values {
        let e = encode(v);
        offsets.push(wire.len() as u64);
        wire.extend_from_slice(&e);
        encodings.push(e);
    }
    with_every_buffer!(|buf| {
        let got = decode_pieces(SelfDelimited::new(), buf, &wire, cuts).unwrap();
        assert_eq!(got.len(), values.len());
        for (i, (off, frame)) in got.iter().enumerate() {
            let frame = frame.as_ref();
            assert_eq!(frame, &encodings[i][..], "frame {i}");
            assert_eq!(*off, offsets[i], "frame {i}");
            let mut rest = frame;
            let decoded = rmpv::decode::read_value(&mut rest).unwrap();
            assert!(rest.is_empty(), "frame {i}: rmpv left bytes over");
            assert_eq!(decoded, values[i], "frame {i}");
        }
    });
}

/// Bytes that are mostly markers and small numbers, so headers announce short lengths
/// and values end inside the input often.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            3 => 0u8..4,
            2 => 0x90u8..=0x93,
            1 => 0x80u8..=0x82,
            1 => 0xc4u8..=0xdf,
            1 => 0xa0u8..=0xa3,
        ],
        0..48,
    )
}

/// Every value's stream range, then the error (as text) with the stream offset of the
/// value that failed, and whether the scanner was left inside a value.
type Outcome = (Vec<(usize, usize)>, Option<(usize, String)>, bool);

/// Repeated `scan`, fed `pieces` one after another; like a reader, the buffer keeps the
/// bytes after the last whole value.
fn by_scan(mut scanner: MsgpackScanner, pieces: &[&[u8]]) -> Outcome {
    let mut buf = Vec::new();
    let mut base = 0;
    let mut values = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            match scanner.scan(&buf[pos..]) {
                Ok(Scan::Complete(n)) => {
                    values.push((base + pos, base + pos + n));
                    pos += n;
                }
                Ok(Scan::Incomplete { .. }) => break,
                Err(e) => return (values, Some((base + pos, format!("{e:?}"))), false),
            }
        }
        buf.drain(..pos);
        base += pos;
    }
    (values, None, scanner.is_mid_value())
}

/// The same with one `scan_many` per piece.
fn by_scan_many(mut scanner: MsgpackScanner, pieces: &[&[u8]]) -> Outcome {
    let mut buf = Vec::new();
    let mut base = 0;
    let mut values = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        let mut next = 0;
        let result = scanner.scan_many(&buf, |r| {
            assert_eq!(r.start, next, "ranges back to back");
            next = r.end;
            values.push((base + r.start, base + r.end));
        });
        match result {
            Ok(used) => {
                assert_eq!(used, next);
                buf.drain(..used);
                base += used;
            }
            Err(e) => return (values, Some((base + next, format!("{e:?}"))), false),
        }
    }
    (values, None, scanner.is_mid_value())
}

/// Mostly scalars (the batch fast path), some of anything.
fn stream_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop_oneof![
            (-32i64..128).prop_map(Value::from),
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Boolean),
            integer(),
            prop::collection::vec(any::<char>(), 0..12).prop_map(|c| Value::from(String::from_iter(c))),
            any::<f64>().prop_map(Value::F64),
        ],
        1 => value(),
    ]
}

/// Scanner limits: usually the defaults, sometimes small enough to be hit.
fn limits() -> impl Strategy<Value = (usize, usize)> {
    prop_oneof![
        2 => Just((128, DEFAULT_MAX_FRAME)),
        1 => (0usize..4, 0usize..40),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn values_back_to_back_round_trip(
        values in prop::collection::vec(value(), 0..12),
        cuts in cuts(),
    ) {
        check(&values, &cuts);
    }

    #[test]
    fn reported_depth_is_the_values_nesting(
        values in prop::collection::vec(stream_value(), 0..20),
        cuts in cuts(),
    ) {
        let mut wire = Vec::new();
        for v in &values {
            wire.extend_from_slice(&encode(v));
        }
        let want: Vec<usize> = values.iter().map(nesting_depth).collect();
        // The batch path, in pieces.
        let mut framing = SelfDelimited::new();
        let mut buf = bytes::BytesMut::new();
        let mut got = Vec::new();
        for piece in cuts.pieces(&wire) {
            buf.extend_from_slice(piece);
            framing
                .for_each_value_with_depth(&mut buf, |_, d| got.push(d))
                .unwrap();
        }
        prop_assert_eq!(&got, &want);
        // `decode`, frame by frame.
        let mut framing = SelfDelimited::new();
        let mut buf = bytes::BytesMut::from(&wire[..]);
        let mut got = Vec::new();
        while framing.decode(&mut buf).unwrap().is_some() {
            got.push(framing.last_frame_depth());
        }
        prop_assert_eq!(&got, &want);
    }

    #[test]
    fn every_prefix_of_a_value_is_incomplete(value in value()) {
        let e = encode(&value);
        prop_assert_eq!(measure(&e).unwrap(), Some(e.len()));
        // Up to ~300 cut points spread over the encoding.
        let step = (e.len() / 300).max(1);
        for cut in (0..e.len()).step_by(step).chain(e.len().checked_sub(1)) {
            prop_assert_eq!(measure(&e[..cut]).unwrap(), None, "cut at {}", cut);
        }
    }

    #[test]
    fn scanner_agrees_with_rmpv_on_arbitrary_bytes(input in wire_bytes()) {
        let mut rest = &input[..];
        let rmpv_len = rmpv::decode::read_value(&mut rest).ok().map(|_| input.len() - rest.len());
        match measure(&input) {
            Ok(Some(n)) => prop_assert_eq!(Some(n), rmpv_len),
            Ok(None) => prop_assert_eq!(rmpv_len, None, "incomplete for the scanner"),
            Err(Error::Msgpack(MsgpackError::InvalidMarker { byte, offset })) => {
                prop_assert_eq!(byte, 0xc1);
                prop_assert_eq!(input[offset], 0xc1);
                // rmpv is lenient here: it reads the reserved marker as nil.
                let _ = rmpv_len;
            }
            // A short input that declares more than 16 MiB cannot be decoded either.
            Err(Error::TooLong { .. }) => prop_assert_eq!(rmpv_len, None),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    #[test]
    fn scan_many_agrees_with_repeated_scan(
        values in prop::collection::vec(stream_value(), 0..40),
        tail in wire_bytes(),
        (depth, max) in limits(),
        cuts in cuts(),
    ) {
        let mut wire = Vec::new();
        for v in &values {
            wire.extend_from_slice(&encode(v));
        }
        // Arbitrary bytes after the values: more values, an unfinished one or an error.
        wire.extend_from_slice(&tail);
        let pieces = cuts.pieces(&wire);
        let make = || MsgpackScanner::with_limits(depth, max);
        let want = by_scan(make(), &pieces);
        prop_assert_eq!(by_scan_many(make(), &pieces), want.clone());
        // Where the stream is cut does not change what repeated `scan` finds either.
        prop_assert_eq!(by_scan(make(), &[&wire[..]]), want.clone());
        if max == DEFAULT_MAX_FRAME && depth == 128 {
            // Within the default limits the values come out first, each exactly.
            let mut end = 0;
            prop_assert!(want.0.len() >= values.len());
            for (v, got) in values.iter().zip(&want.0) {
                let start = end;
                end += encode(v).len();
                prop_assert_eq!(*got, (start, end));
            }
        }
    }
}
