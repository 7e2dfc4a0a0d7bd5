//! Property: any WebSocket messages — binary, valid UTF-8 text, close/ping/pong — written
//! by either role, fragmented at random sizes with control frames between the fragments,
//! cut at any points and fed to any buffer strategy, decode back to exactly the same
//! messages, in the order they complete.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use msgwire_frame::testing::{cuts, decode_pieces, Cuts};
use msgwire_frame::with_every_buffer;
use msgwire_frame::{
    websocket::{encode_frame, Message, Opcode, Role, WebSocket},
    Error,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(any::<char>(), 0..40),
        1 => prop::collection::vec(any::<char>(), 0..800),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

fn data_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Message::binary),
        1 => prop::collection::vec(any::<u8>(), 0..3000).prop_map(Message::binary),
        3 => text().prop_map(Message::text),
    ]
}

fn control_message() -> impl Strategy<Value = Message> {
    let valid_code = prop_oneof![
        prop::sample::select(vec![
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011
        ]),
        3000u16..5000,
    ];
    let reason = prop::collection::vec(any::<char>(), 0..20).prop_map(|chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > 123 {
                break;
            }
            s.push(c);
        }
        s
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Message::ping),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Message::pong),
        (valid_code, reason).prop_map(|(code, reason)| Message::close(code, &reason)),
        Just(Message::empty_close()),
    ]
}

/// One message to write, and how.
#[derive(Debug, Clone)]
struct Item {
    msg: Message,
    /// Fragment payload sizes, cycled.
    sizes: Vec<usize>,
    /// Control frames to slip in after fragment `gap % (fragments - 1)`.
    interleaved: Vec<(usize, Message)>,
    /// Write it with `WebSocket::encode_fragmented` instead of frame by frame.
    via_encoder: bool,
}

fn item() -> impl Strategy<Value = Item> {
    let sizes = prop::collection::vec(prop_oneof![1usize..8, 1usize..200, 1usize..2000], 1..6);
    let interleaved = prop::collection::vec((any::<usize>(), control_message()), 0..4);
    (
        prop_oneof![4 => data_message(), 1 => control_message()],
        sizes,
        interleaved,
        prop::bool::weighted(0.2),
    )
        .prop_map(|(msg, sizes, interleaved, via_encoder)| Item {
            msg,
            sizes,
            interleaved,
            via_encoder,
        })
}

/// A deterministic stream of masking keys for frames written by hand.
struct Keys(u64);

impl Keys {
    fn next(&mut self) -> [u8; 4] {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 32) as u32).to_le_bytes()
    }
}

fn peer(role: Role) -> Role {
    match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

/// Writes `items` as the peer of `decoder_role` would, and returns the wire and the
/// messages in the order a decoder completes them.
fn write(items: &[Item], decoder_role: Role, key_seed: u64) -> (BytesMut, Vec<(u64, Message)>) {
    let sender = peer(decoder_role);
    let mut encoder = WebSocket::builder(sender).build();
    let mut keys = Keys(key_seed);
    let mut mask = || match sender {
        Role::Client => Some(keys.next()),
        Role::Server => None,
    };
    let mut wire = BytesMut::new();
    let mut expect = Vec::new();
    for item in items {
        let msg = &item.msg;
        let msg_start = wire.len() as u64;
        if item.via_encoder {
            encoder
                .encode_fragmented(msg, item.sizes[0], &mut wire)
                .unwrap();
            expect.push((msg_start, msg.clone()));
            continue;
        }
        if msg.opcode.is_control() {
            encode_frame(true, msg.opcode, &msg.payload, mask(), &mut wire).unwrap();
            expect.push((msg_start, msg.clone()));
            continue;
        }
        // Cut the payload into fragments (at least one, possibly empty).
        let mut fragments = Vec::new();
        let mut rest = &msg.payload[..];
        let mut i = 0;
        loop {
            let n = item.sizes[i % item.sizes.len()].min(rest.len());
            fragments.push(&rest[..n]);
            rest = &rest[n..];
            i += 1;
            if rest.is_empty() {
                break;
            }
        }
        let gaps = fragments.len() - 1;
        for (i, fragment) in fragments.iter().enumerate() {
            let opcode = if i == 0 {
                msg.opcode
            } else {
                Opcode::Continuation
            };
            encode_frame(i == gaps, opcode, fragment, mask(), &mut wire).unwrap();
            if i < gaps {
                for (gap, control) in &item.interleaved {
                    if gap % gaps == i {
                        let at = wire.len() as u64;
                        encode_frame(true, control.opcode, &control.payload, mask(), &mut wire)
                            .unwrap();
                        expect.push((at, control.clone()));
                    }
                }
            }
        }
        expect.push((msg_start, msg.clone()));
        if gaps == 0 {
            for (_, control) in &item.interleaved {
                let at = wire.len() as u64;
                encode_frame(true, control.opcode, &control.payload, mask(), &mut wire).unwrap();
                expect.push((at, control.clone()));
            }
        }
    }
    (wire, expect)
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Server), Just(Role::Client)]
}

fn check(items: &[Item], role: Role, key_seed: u64, cuts: &Cuts) {
    let (wire, expect) = write(items, role, key_seed);
    with_every_buffer!(|buf| {
        let got = decode_pieces(WebSocket::builder(role).build(), buf, &wire, cuts).unwrap();
        assert_eq!(got, expect, "messages and the offsets where they began");
    });
}

proptest! {
    #[test]
    fn fragmented_interleaved_messages_round_trip(
        items in prop::collection::vec(item(), 0..20),
        role in role(),
        key_seed in any::<u64>(),
        cuts in cuts(),
    ) {
        check(&items, role, key_seed, &cuts);
    }

    #[test]
    fn unfragmented_messages_round_trip_with_offsets(
        msgs in prop::collection::vec(prop_oneof![data_message(), control_message()], 0..30),
        role in role(),
        cuts in cuts(),
    ) {
        // Whole messages through the `Encode` impl: each decoded message starts where
        // its frame was written.
        let mut encoder = WebSocket::builder(peer(role)).build();
        let mut wire = BytesMut::new();
        let mut offsets = Vec::new();
        for m in &msgs {
            offsets.push(wire.len() as u64);
            msgwire_frame::Encode::encode(&mut encoder, m, &mut wire).unwrap();
        }
        with_every_buffer!(|buf| {
            let got = decode_pieces(WebSocket::builder(role).build(), buf, &wire, &cuts).unwrap();
            prop_assert_eq!(got.len(), msgs.len());
            for ((off, m), (want, want_off)) in got.iter().zip(msgs.iter().zip(&offsets)) {
                prop_assert_eq!(m, want);
                prop_assert_eq!(off, want_off);
            }
        });
    }

    #[test]
    fn a_stream_cut_short_yields_a_prefix_or_truncated(
        items in prop::collection::vec(item(), 1..8),
        role in role(),
        key_seed in any::<u64>(),
        cuts in cuts(),
        keep in 0.0f64..1.0,
    ) {
        let (wire, expect) = write(&items, role, key_seed);
        let keep = ((wire.len() as f64) * keep) as usize;
        with_every_buffer!(|buf| {
            match decode_pieces(WebSocket::builder(role).build(), buf, &wire[..keep], &cuts) {
                Ok(got) => {
                    prop_assert!(got.len() <= expect.len());
                    prop_assert_eq!(&got[..], &expect[..got.len()]);
                }
                Err(e) => prop_assert!(matches!(e.error, Error::Truncated { .. }), "{e:?}"),
            }
        });
    }

    #[test]
    fn message_limit_holds_across_fragments(
        items in prop::collection::vec(item(), 1..10),
        role in role(),
        key_seed in any::<u64>(),
        max_message in 0usize..1500,
    ) {
        let (wire, expect) = write(&items, role, key_seed);
        let over = expect
            .iter()
            .any(|(_, m)| !m.opcode.is_control() && m.payload.len() > max_message);
        let framing = WebSocket::builder(role).max_message_length(max_message).build();
        with_every_buffer!(|buf| {
            match decode_pieces(framing.clone(), buf, &wire, &Cuts::Whole) {
                Ok(got) => {
                    prop_assert!(!over);
                    prop_assert_eq!(got.len(), expect.len());
                }
                Err(e) => {
                    prop_assert!(over, "{e:?}");
                    let is_too_long = matches!(
                        e.error,
                        Error::TooLong { length, max } if length > max_message as u64 && max == max_message as u64
                    );
                    prop_assert!(is_too_long, "{e:?}");
                }
            }
        });
    }
}
