//! Property: any messages, varint-prefixed, cut at any points and fed to any buffer
//! strategy, decode back to exactly the same messages at the same stream offsets; and the
//! LEB128 / ZigZag helpers round-trip every value.

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use msgwire_frame::testing::{check_round_trip, cuts, decode_pieces};
use msgwire_frame::with_every_buffer;
use msgwire_frame::{
    varint::{
        decode_varint, encode_varint, varint_len, zigzag_decode, zigzag_encode, VarintPrefixed,
    },
    Encode, Error,
};
use proptest::prelude::*;

fn messages() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..64),
            // 128 and 16384 are where the varint grows a byte.
            2 => prop::collection::vec(any::<u8>(), 120..140),
            1 => prop::collection::vec(any::<u8>(), 0..3000),
            1 => prop::collection::vec(any::<u8>(), 16_380..16_390),
        ],
        0..40,
    )
}

proptest! {
    #[test]
    fn default_framing_round_trips(msgs in messages(), cuts in cuts()) {
        check_round_trip(VarintPrefixed::new(), &msgs, &cuts);
    }

    #[test]
    fn over_limit_is_too_long_at_its_offset_however_cut(
        msgs in messages(),
        cuts in cuts(),
        max in 0usize..200,
    ) {
        // Encode with no limit, decode with `max`: the first message over it fails, at its
        // offset, and everything before it decodes.
        let mut wire = BytesMut::new();
        let mut enc = VarintPrefixed::builder().max_frame_length(usize::MAX).build();
        let mut offsets = Vec::new();
        for m in &msgs {
            offsets.push(wire.len() as u64);
            enc.encode(&m[..], &mut wire).unwrap();
        }
        let bad = msgs.iter().position(|m| m.len() > max);
        let framing = VarintPrefixed::builder().max_frame_length(max).build();
        with_every_buffer!(|buf| {
            let got = decode_pieces(framing.clone(), buf, &wire, &cuts);
            match bad {
                None => prop_assert_eq!(got.unwrap().len(), msgs.len()),
                Some(i) => {
                    let err = got.unwrap_err();
                    prop_assert_eq!(err.offset, offsets[i]);
                    match err.error {
                        // A lower bound when reported before the varint ended.
                        Error::TooLong { length, max: m } => {
                            prop_assert_eq!(m, max as u64);
                            prop_assert!(length > max as u64);
                            prop_assert!(length <= msgs[i].len() as u64);
                        }
                        other => prop_assert!(false, "expected TooLong, got {other:?}"),
                    }
                }
            }
        });
    }

    #[test]
    fn varint_round_trips(value in any::<u64>(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut buf = BytesMut::new();
        encode_varint(value, &mut buf);
        let len = buf.len();
        prop_assert_eq!(len, varint_len(value));
        prop_assert!((1..=10).contains(&len));
        buf.extend_from_slice(&tail);
        prop_assert_eq!(decode_varint(&buf).unwrap(), Some((value, len)));
        for cut in 0..len {
            prop_assert_eq!(decode_varint(&buf[..cut]).unwrap(), None);
        }
    }

    #[test]
    fn decode_varint_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
        if let Ok(Some((value, len))) = decode_varint(&bytes) {
            prop_assert!(len <= 10);
            prop_assert!(len <= bytes.len());
            // Re-encoding gives the canonical form, never longer than what was read.
            prop_assert!(varint_len(value) <= len);
        }
    }

    #[test]
    fn zigzag_round_trips(signed in any::<i64>(), unsigned in any::<u64>()) {
        prop_assert_eq!(zigzag_decode(zigzag_encode(signed)), signed);
        prop_assert_eq!(zigzag_encode(zigzag_decode(unsigned)), unsigned);
        // Small magnitudes stay small: 2|s| for s >= 0, 2|s| - 1 for s < 0.
        let twice = 2 * u128::from(signed.unsigned_abs());
        let want = if signed < 0 { twice - 1 } else { twice };
        prop_assert_eq!(u128::from(zigzag_encode(signed)), want);
    }
}
