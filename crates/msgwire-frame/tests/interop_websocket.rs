//! WebSocket interop with Python `websockets` (its sans-IO `Protocol`, which enforces
//! RFC 6455's masking, fragmentation and UTF-8 rules itself).
//!
//! * msgwire writes frames (masked as a client, unmasked as a server), with messages
//!   fragmented and control frames between the fragments; `websockets` on the other side
//!   must read exactly those frames.
//! * `websockets` writes frames from a script; msgwire, cut at random points over every
//!   buffer strategy, must read back exactly the messages the script describes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod peers;

use base64::Engine as _;
use bytes::BytesMut;
use msgwire_frame::testing::{cuts, decode_pieces};
use msgwire_frame::websocket::{encode_frame, Message, Opcode, Role, WebSocket};
use msgwire_frame::with_every_buffer;
use peers::{python_script, run_peer};
use proptest::prelude::*;
use serde_json::{json, Value as Json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One data message, how to fragment it, and control frames to slip between fragments.
#[derive(Debug, Clone)]
struct Item {
    message: Message,
    fragment: usize,
    pings: Vec<Vec<u8>>,
}

fn item() -> impl Strategy<Value = Item> {
    let message = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000).prop_map(Message::binary),
        ".{0,200}".prop_map(|s: String| Message::text(s)),
    ];
    (
        message,
        1usize..700,
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..125), 0..3),
    )
        .prop_map(|(message, fragment, pings)| Item {
            message,
            fragment,
            pings,
        })
}

/// A frame as the Python script prints or reads it.
fn frame_json(opcode: Opcode, fin: bool, data: &[u8]) -> Json {
    json!({"opcode": opcode.name(), "fin": fin, "data": B64.encode(data)})
}

/// Every frame `items` make: fragments of each message, one ping after the first
/// fragment for each entry in `pings`; a close frame at the end.
fn frames(items: &[Item]) -> Vec<Json> {
    let mut out = Vec::new();
    for item in items {
        let payload = &item.message.payload[..];
        let pieces: Vec<&[u8]> = if payload.is_empty() {
            vec![payload]
        } else {
            payload.chunks(item.fragment).collect()
        };
        for (i, piece) in pieces.iter().enumerate() {
            let opcode = if i == 0 {
                item.message.opcode
            } else {
                Opcode::Continuation
            };
            out.push(frame_json(opcode, i + 1 == pieces.len(), piece));
            if i == 0 {
                for ping in &item.pings {
                    out.push(frame_json(Opcode::Ping, true, ping));
                }
            }
        }
    }
    let mut close = BytesMut::new();
    close.extend_from_slice(&1000u16.to_be_bytes());
    close.extend_from_slice(b"done");
    out.push(frame_json(Opcode::Close, true, &close));
    out
}

/// The messages a reader completes, in order, for `items` (pings arrive first when the
/// message they sit in is fragmented).
fn messages(items: &[Item]) -> Vec<Message> {
    let mut out = Vec::new();
    for item in items {
        let pings = item.pings.iter().map(|p| Message::ping(p.clone()));
        let fragmented = item.message.payload.len() > item.fragment;
        if fragmented {
            out.extend(pings);
            out.push(item.message.clone());
        } else {
            out.push(item.message.clone());
            out.extend(pings);
        }
    }
    out.push(Message::close(1000, "done"));
    out
}

fn opcode(name: &str) -> Opcode {
    match name {
        "continuation" => Opcode::Continuation,
        "text" => Opcode::Text,
        "binary" => Opcode::Binary,
        "close" => Opcode::Close,
        "ping" => Opcode::Ping,
        "pong" => Opcode::Pong,
        other => panic!("unknown opcode {other}"),
    }
}

fn side(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
    }
}

fn peer_of(role: Role) -> Role {
    match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Server), Just(Role::Client)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// msgwire writes as `role`; websockets reads as the other side.
    #[test]
    fn websockets_reads_what_msgwire_writes(items in prop::collection::vec(item(), 0..12), role in role(), seed in any::<u32>()) {
        let want = frames(&items);
        let mut wire = BytesMut::new();
        for (i, f) in want.iter().enumerate() {
            let data = B64.decode(f["data"].as_str().unwrap()).unwrap();
            let mask = match role {
                Role::Client => Some((seed.wrapping_add(i as u32)).to_be_bytes()),
                Role::Server => None,
            };
            encode_frame(f["fin"].as_bool().unwrap(), opcode(f["opcode"].as_str().unwrap()), &data, mask, &mut wire).unwrap();
        }
        let (out, _) = run_peer(python_script("py_websocket.py", &["decode", side(peer_of(role))]), &wire);
        let got: Vec<Json> = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        prop_assert_eq!(got, want);
    }

    /// websockets writes as the other side; msgwire reads as `role`.
    #[test]
    fn msgwire_reads_what_websockets_writes(items in prop::collection::vec(item(), 0..12), role in role(), cuts in cuts()) {
        let script: String = frames(&items).iter().map(|f| {
            let mut f = f.clone();
            if f["opcode"] == "close" {
                f = json!({"opcode": "close", "code": 1000, "reason": "done"});
            }
            format!("{f}\n")
        }).collect();
        let (wire, _) = run_peer(python_script("py_websocket.py", &["encode", side(peer_of(role))]), script.as_bytes());
        let want = messages(&items);
        with_every_buffer!(|buf| {
            let got = decode_pieces(WebSocket::builder(role).build(), buf, &wire, &cuts).unwrap();
            let got: Vec<Message> = got.into_iter().map(|(_, m)| m).collect();
            prop_assert_eq!(&got, &want);
        });
    }
}

/// msgwire's own encoder (fresh random masks as a client) is read by websockets.
#[test]
fn msgwire_encoder_output_is_read_by_websockets() {
    let mut client = WebSocket::client();
    let mut wire = BytesMut::new();
    use msgwire_frame::Encode;
    client.encode(&Message::text("héllo"), &mut wire).unwrap();
    client
        .encode_fragmented(&Message::binary(vec![7u8; 70_000]), 30_000, &mut wire)
        .unwrap();
    client
        .encode(&Message::close(1001, "away"), &mut wire)
        .unwrap();
    let (out, _) = run_peer(
        python_script("py_websocket.py", &["decode", "server"]),
        &wire,
    );
    let got: Vec<Json> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got[0], frame_json(Opcode::Text, true, "héllo".as_bytes()));
    assert_eq!(got[1]["opcode"], "binary");
    assert_eq!(got[1]["fin"], false);
    assert_eq!(got[3]["opcode"], "continuation");
    assert_eq!(got[3]["fin"], true);
    let total: usize = got[1..4]
        .iter()
        .map(|f| B64.decode(f["data"].as_str().unwrap()).unwrap().len())
        .sum();
    assert_eq!(total, 70_000);
    assert_eq!(got[4]["opcode"], "close");
}
