//! Property: any payloads that do not contain the delimiter, delimited, cut at any points
//! (every single point, for multi-byte delimiters) and fed to any buffer strategy, decode
//! back to exactly the same payloads at the same stream offsets. The encoder refuses
//! exactly the payloads that would not decode back, and over-long frames fail (or are
//! discarded) at their own offsets however the stream is cut.

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use msgwire_frame::testing::{cuts, decode_pieces, decode_results, Cuts};
use msgwire_frame::with_every_buffer;
use msgwire_frame::{delimiter::Delimited, Encode, Error};
use proptest::prelude::*;

/// Delimiters worth testing: one byte, `\r\n`, a long one with a border (`--` both starts
/// and ends it), a self-overlapping one, and random short ones over a small alphabet.
fn delimiters() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"--sep--".to_vec()),
        Just(b"aa".to_vec()),
        prop::collection::vec(prop::sample::select(b"-ab\r\n".to_vec()), 1..5),
    ]
}

/// Payload bytes: mostly delimiter-ish, so near-misses and partial delimiters are common.
fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"-sep\r\nab".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(
        prop_oneof![
            4 => prop::collection::vec(byte.clone(), 0..24),
            1 => prop::collection::vec(byte, 0..600),
        ],
        0..30,
    )
}

/// Whether `payload` + `delimiter` decodes back to `payload`: the first occurrence of the
/// delimiter is the one appended. Naive on purpose: the reference for the framing.
fn decodes_back(payload: &[u8], delimiter: &[u8]) -> bool {
    let mut wire = payload.to_vec();
    wire.extend_from_slice(delimiter);
    wire.windows(delimiter.len()).position(|w| w == delimiter) == Some(payload.len())
}

/// Encodes the payloads the encoder accepts; checks it accepts exactly those that
/// [`decodes_back`]. Returns the wire, the accepted payloads and their offsets.
fn encode(framing: &Delimited, payloads: &[Vec<u8>]) -> (BytesMut, Vec<Vec<u8>>, Vec<u64>) {
    let mut enc = framing.clone();
    let mut wire = BytesMut::new();
    let mut kept = Vec::new();
    let mut offsets = Vec::new();
    for p in payloads {
        let offset = wire.len() as u64;
        match enc.encode(&p[..], &mut wire) {
            Ok(()) => {
                assert!(decodes_back(p, framing.delimiter()), "accepted {p:?}");
                kept.push(p.clone());
                offsets.push(offset);
            }
            Err(Error::Encode(_)) => {
                assert!(!decodes_back(p, framing.delimiter()), "refused {p:?}");
                assert_eq!(wire.len() as u64, offset, "nothing half-written");
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    (wire, kept, offsets)
}

fn check(framing: &Delimited, wire: &[u8], want: &[Vec<u8>], offsets: &[u64], cuts: &Cuts) {
    with_every_buffer!(|buf| {
        let got = decode_pieces(framing.clone(), buf, wire, cuts).unwrap();
        let got: Vec<(u64, Vec<u8>)> = got
            .into_iter()
            .map(|(off, f)| (off, f.as_ref().to_vec()))
            .collect();
        let want: Vec<(u64, Vec<u8>)> = offsets.iter().copied().zip(want.iter().cloned()).collect();
        assert_eq!(got, want);
    });
}

/// Every cut into two pieces, plus one byte at a time.
fn every_cut(len: usize) -> impl Iterator<Item = Cuts> {
    (1..len)
        .map(|i| Cuts::Random(vec![i, usize::MAX]))
        .chain([Cuts::Whole, Cuts::Bytewise])
}

proptest! {
    #[test]
    fn payloads_round_trip(delimiter in delimiters(), payloads in payloads(), cuts in cuts()) {
        let framing = Delimited::new(&delimiter);
        let (wire, kept, offsets) = encode(&framing, &payloads);
        check(&framing, &wire, &kept, &offsets, &cuts);
    }

    #[test]
    fn multi_byte_delimiters_cut_at_every_point(
        delimiter in prop::sample::select(vec![&b"\r\n"[..], b"--sep--", b"aa"]),
        payloads in prop::collection::vec(
            prop::collection::vec(prop::sample::select(b"-sep\r\nax".to_vec()), 0..12),
            0..8,
        ),
    ) {
        let framing = Delimited::new(delimiter);
        let (wire, kept, offsets) = encode(&framing, &payloads);
        for cuts in every_cut(wire.len()) {
            check(&framing, &wire, &kept, &offsets, &cuts);
        }
    }

    #[test]
    fn lines_round_trip_with_both_endings(
        lines in prop::collection::vec(
            prop::collection::vec(prop::sample::select(b"ab \r\t".to_vec()), 0..40),
            0..30,
        ),
        crlf in prop::collection::vec(any::<bool>(), 30),
        cuts in cuts(),
    ) {
        // Lines without '\n' and not ending in '\r' (the encoder refuses those), ended by
        // "\n" or "\r\n" at random: both decode to the line.
        let lines: Vec<Vec<u8>> = lines.into_iter().filter(|l| l.last() != Some(&b'\r')).collect();
        let mut wire = Vec::new();
        let mut offsets = Vec::new();
        let mut enc = Delimited::lines();
        for (line, crlf) in lines.iter().zip(&crlf) {
            offsets.push(wire.len() as u64);
            if *crlf {
                wire.extend_from_slice(line);
                wire.extend_from_slice(b"\r\n");
            } else {
                let mut dst = BytesMut::new();
                enc.encode(&line[..], &mut dst).unwrap();
                wire.extend_from_slice(&dst);
            }
        }
        check(&Delimited::lines(), &wire, &lines, &offsets, &cuts);
    }

    #[test]
    fn over_limit_is_fatal_or_discarded_at_its_offset(
        delimiter in delimiters(),
        payloads in payloads(),
        cuts in cuts(),
        max in 0usize..40,
        discard in any::<bool>(),
    ) {
        let (wire, kept, offsets) = encode(&Delimited::new(&delimiter), &payloads);
        let framing = Delimited::builder(&delimiter)
            .max_length(max)
            .discard_oversized(discard)
            .build()
            .unwrap();
        with_every_buffer!(|buf| {
            let got = decode_results(framing.clone(), buf, &wire, &cuts);
            let got: Vec<_> = got
                .into_iter()
                .map(|(off, r)| (off, r.map(|f| f.as_ref().to_vec())))
                .collect();
            let mut want = Vec::new();
            for (p, off) in kept.iter().zip(&offsets) {
                if p.len() <= max {
                    want.push((*off, Ok(p.clone())));
                } else if discard {
                    want.push((*off, Err(p.len())));
                } else {
                    want.push((*off, Err(usize::MAX)));
                    break;
                }
            }
            prop_assert_eq!(got.len(), want.len());
            for ((off, got), (want_off, want)) in got.into_iter().zip(want) {
                prop_assert_eq!(off, want_off);
                match (got, want) {
                    (Ok(frame), Ok(p)) => prop_assert_eq!(frame, p),
                    (Err(Error::Discarded { length, max: m }), Err(len)) if len != usize::MAX => {
                        prop_assert_eq!(length, len as u64);
                        prop_assert_eq!(m, max as u64);
                    }
                    (Err(Error::TooLong { length, max: m }), Err(usize::MAX)) => {
                        prop_assert!(length > max as u64);
                        prop_assert_eq!(m, max as u64);
                    }
                    (got, want) => prop_assert!(false, "got {:?}, want {:?}", got, want),
                }
            }
        });
    }
}
