//! Property: any gRPC messages (compressed or not), cut at any points and fed to any
//! buffer strategy, decode back to exactly the same flags and payloads at the same stream
//! offsets; a bad flag or an over-long message fails at its own offset.

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use msgwire_frame::testing::{cuts, decode_pieces, Cuts};
use msgwire_frame::with_every_buffer;
use msgwire_frame::{
    grpc::{GrpcError, GrpcMessage, GrpcPrefixed},
    Encode, Error,
};
use proptest::prelude::*;

fn messages() -> impl Strategy<Value = Vec<(bool, Vec<u8>)>> {
    prop::collection::vec(
        (
            any::<bool>(),
            prop_oneof![
                4 => prop::collection::vec(any::<u8>(), 0..64),
                1 => prop::collection::vec(any::<u8>(), 0..3000),
            ],
        ),
        0..40,
    )
}

/// The wire for `msgs` and each message's offset.
fn encode(framing: &GrpcPrefixed, msgs: &[(bool, Vec<u8>)]) -> (BytesMut, Vec<u64>) {
    let mut wire = BytesMut::new();
    let mut enc = framing.clone();
    let mut offsets = Vec::new();
    for (compressed, payload) in msgs {
        offsets.push(wire.len() as u64);
        let message = GrpcMessage {
            compressed: *compressed,
            payload: &payload[..],
        };
        enc.encode(&message, &mut wire).unwrap();
    }
    (wire, offsets)
}

fn check(framing: GrpcPrefixed, msgs: &[(bool, Vec<u8>)], cuts: &Cuts) {
    let (wire, offsets) = encode(&framing, msgs);
    with_every_buffer!(|buf| {
        let got = decode_pieces(framing.clone(), buf, &wire, cuts).unwrap();
        assert_eq!(got.len(), msgs.len());
        for ((off, message), ((compressed, payload), want_off)) in
            got.iter().zip(msgs.iter().zip(&offsets))
        {
            assert_eq!(message.compressed, *compressed);
            assert_eq!(message.payload.as_ref(), &payload[..]);
            assert_eq!(off, want_off);
        }
    });
}

proptest! {
    #[test]
    fn messages_round_trip(msgs in messages(), cuts in cuts()) {
        check(GrpcPrefixed::new(), &msgs, &cuts);
    }

    #[test]
    fn uncompressed_encode_is_flag_zero(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 0..10), cuts in cuts()) {
        let mut enc = GrpcPrefixed::new();
        let mut wire = BytesMut::new();
        for p in &payloads {
            enc.encode(&p[..], &mut wire).unwrap();
        }
        let msgs: Vec<_> = payloads.into_iter().map(|p| (false, p)).collect();
        let (want, _) = encode(&GrpcPrefixed::new(), &msgs);
        prop_assert_eq!(&wire[..], &want[..]);
        check(GrpcPrefixed::new(), &msgs, &cuts);
    }

    #[test]
    fn bad_flag_fails_at_its_offset(
        msgs in messages(),
        cuts in cuts(),
        at in any::<prop::sample::Index>(),
        flag in 2u8..=255,
    ) {
        prop_assume!(!msgs.is_empty());
        let (mut wire, offsets) = encode(&GrpcPrefixed::new(), &msgs);
        let i = at.index(msgs.len());
        wire[offsets[i] as usize] = flag;
        with_every_buffer!(|buf| {
            let err = decode_pieces(GrpcPrefixed::new(), buf, &wire, &cuts).unwrap_err();
            prop_assert_eq!(err.offset, offsets[i]);
            prop_assert!(
                matches!(err.error, Error::Grpc(GrpcError::InvalidFlag(f)) if f == flag),
                "{:?}", err.error
            );
        });
    }

    #[test]
    fn over_limit_fails_at_its_offset(msgs in messages(), cuts in cuts(), max in 0usize..100) {
        let (wire, offsets) = encode(&GrpcPrefixed::new(), &msgs);
        let framing = GrpcPrefixed::builder().max_message_length(max).build();
        let bad = msgs.iter().position(|(_, p)| p.len() > max);
        with_every_buffer!(|buf| {
            let got = decode_pieces(framing.clone(), buf, &wire, &cuts);
            match bad {
                None => prop_assert_eq!(got.unwrap().len(), msgs.len()),
                Some(i) => {
                    let err = got.unwrap_err();
                    prop_assert_eq!(err.offset, offsets[i]);
                    let want_len = msgs[i].1.len() as u64;
                    prop_assert!(
                        matches!(err.error, Error::TooLong { length, max: m } if length == want_len && m == max as u64),
                        "{:?}", err.error
                    );
                }
            }
        });
    }
}
