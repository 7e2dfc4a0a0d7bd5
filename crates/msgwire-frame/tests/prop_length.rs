//! Property: any messages, length-prefixed (in any of the option combinations), cut at any
//! points and fed to any buffer strategy, decode back to exactly the same messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use msgwire_frame::length::LengthPrefixed;
use msgwire_frame::testing::{check_round_trip, cuts, decode_pieces, decode_results, Cuts};
use msgwire_frame::with_every_buffer;
use proptest::prelude::*;

fn messages() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..64),
            1 => prop::collection::vec(any::<u8>(), 0..3000),
        ],
        0..40,
    )
}

proptest! {
    #[test]
    fn default_framing_round_trips(msgs in messages(), cuts in cuts()) {
        check_round_trip(LengthPrefixed::new(), &msgs, &cuts);
    }

    #[test]
    fn every_width_endian_adjustment_round_trips(
        msgs in messages(),
        cuts in cuts(),
        width in prop::sample::select(vec![2usize, 3, 4, 8]),
        little in any::<bool>(),
        adjustment in -8i64..8,
    ) {
        let mut b = LengthPrefixed::builder().length_field_width(width).length_adjustment(adjustment);
        if little { b = b.little_endian(); }
        // Messages shorter than a negative adjustment cannot be encoded; skip them.
        let msgs: Vec<_> = msgs.into_iter().filter(|m| m.len() as i64 >= adjustment).collect();
        check_round_trip(b.build().unwrap(), &msgs, &cuts);
    }

    #[test]
    fn header_before_field_kept_or_stripped(
        msgs in messages(),
        cuts in cuts(),
        tag in prop::collection::vec(any::<u8>(), 1..4),
        keep_header in any::<bool>(),
    ) {
        // Wire: tag bytes, u16 BE length, body. Decoded with strip 0 (whole frame) or
        // default (body only).
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        for m in &msgs {
            let m = &m[..m.len().min(60000)];
            let mut frame = tag.clone();
            frame.extend_from_slice(&(m.len() as u16).to_be_bytes());
            frame.extend_from_slice(m);
            wire.extend_from_slice(&frame);
            expect.push(if keep_header { frame } else { m.to_vec() });
        }
        let mut b = LengthPrefixed::builder().length_field_offset(tag.len()).length_field_width(2);
        if keep_header { b = b.strip(0); }
        let framing = b.build().unwrap();
        with_every_buffer!(|buf| {
            let got = decode_pieces(framing.clone(), buf, &wire, &cuts).unwrap();
            let got: Vec<Vec<u8>> = got.into_iter().map(|(_, f)| f.as_ref().to_vec()).collect();
            prop_assert_eq!(&got, &expect);
        });
    }
}

/// Decodes in pieces, recording frames as `Ok((offset, bytes))` and frames discarded
/// (the only errors expected) as `Err(offset)`.
fn decode_with_discards<B: msgwire_frame::InputBuffer>(
    framing: LengthPrefixed,
    buf: B,
    wire: &[u8],
    cuts: &Cuts,
) -> Vec<Result<(u64, Vec<u8>), u64>> {
    decode_results(framing, buf, wire, cuts)
        .into_iter()
        .map(|(offset, r)| match r {
            Ok(frame) => Ok((offset, frame.as_ref().to_vec())),
            Err(e) => {
                assert!(!e.is_fatal(), "unexpected fatal error {e}");
                assert!(matches!(e, msgwire_frame::Error::Discarded { .. }));
                Err(offset)
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn discard_mode_skips_oversized_frames_and_keeps_offsets(
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..30),
        cuts in cuts(),
        fail_fast in any::<bool>(),
    ) {
        let max = 20;
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        for m in &msgs {
            let offset = wire.len() as u64;
            wire.extend_from_slice(&(m.len() as u32).to_be_bytes());
            wire.extend_from_slice(m);
            expect.push(if m.len() > max { Err(offset) } else { Ok((offset, m.clone())) });
        }
        let framing = LengthPrefixed::builder()
            .max_frame_length(max)
            .discard_oversized(true)
            .fail_fast(fail_fast)
            .build()
            .unwrap();
        with_every_buffer!(|buf| {
            let got = decode_with_discards(framing.clone(), buf, &wire, &cuts);
            prop_assert_eq!(&got, &expect);
        });
    }
}
