//! Decoder tests: RFC 6455 section 5.7's examples byte for byte, and one test for each
//! error the decoder raises.

use bytes::BytesMut;

use super::*;
use crate::testing::{assert_waits_with_capped_room, decode_frames, feed, Cuts};
use crate::{Encode, Error, Framing, StreamDecoder};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Decodes `wire` in one buffer until it needs more bytes or fails (every WebSocket
/// error is fatal).
fn decode_all(ws: &mut WebSocket, wire: &[u8]) -> Vec<Result<Message, Error>> {
    decode_frames(ws, wire)
}

/// The one error decoding `wire` must end with (after any messages before it).
fn decode_err(mut ws: WebSocket, wire: &[u8]) -> Error {
    match decode_all(&mut ws, wire).pop() {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The WebSocket error decoding `wire` ends with, the same whether `wire` is fed whole
/// or one byte at a time.
fn ws_err(mut ws: WebSocket, wire: &[u8]) -> WebSocketError {
    match decode_err(ws.clone(), wire) {
        Error::WebSocket(e) => {
            match feed(&mut ws, &mut BytesMut::new(), wire, &Cuts::Bytewise).pop() {
                Some(Err(Error::WebSocket(b))) => assert_eq!(b, e, "bytewise gives the same error"),
                other => panic!("bytewise: expected {e:?}, got {other:?}"),
            }
            e
        }
        other => panic!("expected a WebSocketError, got {other:?}"),
    }
}

fn frame(fin: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut dst = BytesMut::new();
    encode_frame(fin, opcode, payload, mask, &mut dst).unwrap();
    dst.to_vec()
}

fn ok(results: Vec<Result<Message, Error>>) -> Vec<Message> {
    results.into_iter().map(|r| r.unwrap()).collect()
}

// ---- RFC 6455 section 5.7 ----

#[test]
fn rfc_single_frame_unmasked_text() {
    let got = ok(decode_all(
        &mut WebSocket::client(),
        &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
    ));
    assert_eq!(got, [Message::text("Hello")]);
}

#[test]
fn rfc_single_frame_masked_text() {
    let mut ws = WebSocket::server();
    let mut buf = BytesMut::from(
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ][..],
    );
    let msg = ws.decode(&mut buf).unwrap().unwrap();
    assert_eq!(msg.as_text(), Some("Hello"));
    assert!(buf.is_empty());
}

#[test]
fn rfc_fragmented_unmasked_text() {
    let mut ws = WebSocket::client();
    let mut buf = BytesMut::from(&[0x01, 0x03, 0x48, 0x65, 0x6c][..]);
    assert_eq!(ws.decode(&mut buf).unwrap(), None);
    assert!(
        buf.is_empty(),
        "the first fragment is consumed into the decoder"
    );
    assert!(ws.is_mid_frame());
    buf.extend_from_slice(&[0x80, 0x02, 0x6c, 0x6f]);
    assert_eq!(ws.decode(&mut buf).unwrap(), Some(Message::text("Hello")));
    assert!(!ws.is_mid_frame());
}

#[test]
fn rfc_ping_and_masked_pong() {
    let got = ok(decode_all(
        &mut WebSocket::client(),
        &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
    ));
    assert_eq!(got, [Message::ping(&b"Hello"[..])]);
    let got = ok(decode_all(
        &mut WebSocket::server(),
        &[
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    ));
    assert_eq!(got, [Message::pong(&b"Hello"[..])]);
}

#[test]
fn rfc_256_bytes_binary() {
    let mut wire = vec![0x82, 0x7e, 0x01, 0x00];
    wire.extend((0..256).map(|i| i as u8));
    let got = ok(decode_all(&mut WebSocket::client(), &wire));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].opcode, Opcode::Binary);
    assert_eq!(got[0].payload.len(), 256);
    assert_eq!(got[0].payload[255], 255);
}

#[test]
fn rfc_64_kib_binary() {
    let mut wire = vec![0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    wire.extend((0..65536u32).map(|i| (i % 251) as u8));
    let got = ok(decode_all(&mut WebSocket::client(), &wire));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload.len(), 65536);
    assert!(got[0]
        .payload
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i % 251) as u8));
}

#[test]
fn masked_64_kib_unmasks_in_place() {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i * 31) as u8).collect();
    let wire = frame(true, Opcode::Binary, &payload, Some([9, 200, 3, 77]));
    let got = ok(decode_all(&mut WebSocket::server(), &wire));
    assert_eq!(&got[0].payload[..], &payload[..]);
}

// ---- reassembly ----

#[test]
fn control_frames_between_fragments_come_out_first() {
    let mut wire = frame(false, Opcode::Text, b"He", Some(KEY));
    wire.extend(frame(true, Opcode::Ping, b"1", Some(KEY)));
    wire.extend(frame(false, Opcode::Continuation, b"l", Some(KEY)));
    wire.extend(frame(true, Opcode::Pong, b"", Some(KEY)));
    wire.extend(frame(true, Opcode::Continuation, b"lo", Some(KEY)));
    wire.extend(frame(true, Opcode::Close, b"\x03\xe8", Some(KEY)));
    let got = ok(decode_all(&mut WebSocket::server(), &wire));
    assert_eq!(
        got,
        [
            Message::ping(&b"1"[..]),
            Message::pong(&b""[..]),
            Message::text("Hello"),
            Message::close(1000, ""),
        ]
    );
}

#[test]
fn code_point_cut_between_fragments() {
    let text = "h\u{e9}\u{20ac}\u{1f600}!"; // 1-, 2-, 3- and 4-byte code points
    let bytes = text.as_bytes();
    for cut in 0..=bytes.len() {
        let mut wire = frame(false, Opcode::Text, &bytes[..cut], None);
        wire.extend(frame(true, Opcode::Continuation, &bytes[cut..], None));
        let got = ok(decode_all(&mut WebSocket::client(), &wire));
        assert_eq!(got, [Message::text(text)], "cut at {cut}");
    }
}

#[test]
fn empty_messages_and_empty_fragments() {
    let mut wire = frame(true, Opcode::Binary, b"", None);
    wire.extend(frame(false, Opcode::Text, b"", None));
    wire.extend(frame(false, Opcode::Continuation, b"", None));
    wire.extend(frame(true, Opcode::Continuation, b"", None));
    wire.extend(frame(true, Opcode::Close, b"", None));
    let got = ok(decode_all(&mut WebSocket::client(), &wire));
    assert_eq!(
        got,
        [
            Message::binary(&b""[..]),
            Message::text(""),
            Message::empty_close()
        ]
    );
}

#[test]
fn round_trip_through_stream_decoder_at_every_cut() {
    let msgs = [
        Message::text("caf\u{e9}"),
        Message::binary(vec![7u8; 300]),
        Message::ping(&b"p"[..]),
        Message::close(4000, "done"),
    ];
    let mut client = WebSocket::client();
    let mut wire = BytesMut::new();
    client.encode(&msgs[0], &mut wire).unwrap();
    client.encode_fragmented(&msgs[1], 100, &mut wire).unwrap();
    client.encode(&msgs[2], &mut wire).unwrap();
    client.encode(&msgs[3], &mut wire).unwrap();
    for cut in 0..=wire.len() {
        let mut dec = StreamDecoder::new(WebSocket::server(), BytesMut::new());
        let mut got = Vec::new();
        for piece in [&wire[..cut], &wire[cut..]] {
            dec.feed(piece);
            while let Some(d) = dec.next_frame().unwrap() {
                got.push(d.frame);
            }
        }
        assert!(dec.finish().unwrap().is_none());
        assert_eq!(got, msgs, "cut at {cut}");
    }
}

#[test]
fn valid_close_codes_decode() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 4999,
    ] {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(b"why");
        let got = ok(decode_all(
            &mut WebSocket::client(),
            &frame(true, Opcode::Close, &payload, None),
        ));
        assert_eq!(got[0].close_code(), Some(code));
        assert_eq!(got[0].close_reason(), Some("why"));
    }
}

// ---- every error ----

#[test]
fn err_reserved_opcode() {
    for op in (0x3u8..=0x7).chain(0xB..=0xF) {
        assert_eq!(
            ws_err(WebSocket::client(), &[0x80 | op, 0x00]),
            WebSocketError::ReservedOpcode(op)
        );
    }
}

#[test]
fn err_rsv_bits() {
    for (byte, bits) in [
        (0xc2u8, 0b100u8),
        (0xa2, 0b010),
        (0x92, 0b001),
        (0xf2, 0b111),
    ] {
        assert_eq!(
            ws_err(WebSocket::client(), &[byte, 0x00]),
            WebSocketError::ReservedBits(bits)
        );
    }
}

#[test]
fn err_server_rejects_unmasked_frame() {
    assert_eq!(
        ws_err(
            WebSocket::server(),
            &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']
        ),
        WebSocketError::UnmaskedFrame
    );
}

#[test]
fn err_client_rejects_masked_frame() {
    assert_eq!(
        ws_err(
            WebSocket::client(),
            &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        ),
        WebSocketError::MaskedFrame
    );
}

#[test]
fn err_non_minimal_16_bit_length() {
    let mut wire = vec![0x82, 0x7e, 0x00, 0x05];
    wire.extend_from_slice(b"hello");
    assert_eq!(
        ws_err(WebSocket::client(), &wire),
        WebSocketError::NonMinimalLength(5)
    );
}

#[test]
fn err_non_minimal_64_bit_length() {
    let wire = [0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
    assert_eq!(
        ws_err(WebSocket::client(), &wire),
        WebSocketError::NonMinimalLength(256)
    );
}

#[test]
fn err_64_bit_length_with_top_bit() {
    let wire = [0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        ws_err(WebSocket::client(), &wire),
        WebSocketError::LengthHighBit(u64::MAX)
    );
}

#[test]
fn err_control_frame_too_long() {
    for op in [0x88u8, 0x89, 0x8a] {
        let mut wire = vec![op, 0x7e, 0x00, 0x7e];
        wire.extend_from_slice(&[0u8; 126]);
        assert_eq!(
            ws_err(WebSocket::client(), &wire),
            WebSocketError::ControlFrameTooLong(126)
        );
    }
}

#[test]
fn err_fragmented_control_frame() {
    for (byte, op) in [
        (0x08u8, Opcode::Close),
        (0x09, Opcode::Ping),
        (0x0a, Opcode::Pong),
    ] {
        assert_eq!(
            ws_err(WebSocket::client(), &[byte, 0x00]),
            WebSocketError::FragmentedControlFrame(op)
        );
    }
}

#[test]
fn err_continuation_without_message() {
    assert_eq!(
        ws_err(
            WebSocket::client(),
            &frame(true, Opcode::Continuation, b"x", None)
        ),
        WebSocketError::UnexpectedContinuation
    );
    // Also right after a message was completed.
    let mut wire = frame(false, Opcode::Binary, b"a", None);
    wire.extend(frame(true, Opcode::Continuation, b"b", None));
    wire.extend(frame(false, Opcode::Continuation, b"c", None));
    assert_eq!(
        ws_err(WebSocket::client(), &wire),
        WebSocketError::UnexpectedContinuation
    );
}

#[test]
fn err_new_message_while_one_is_in_progress() {
    for op in [Opcode::Text, Opcode::Binary] {
        let mut wire = frame(false, Opcode::Binary, b"a", None);
        wire.extend(frame(true, op, b"b", None));
        assert_eq!(
            ws_err(WebSocket::client(), &wire),
            WebSocketError::MessageInProgress(op)
        );
    }
}

#[test]
fn err_invalid_utf8_in_one_frame() {
    assert_eq!(
        ws_err(
            WebSocket::client(),
            &frame(true, Opcode::Text, b"ok\xc3\x28", None)
        ),
        WebSocketError::InvalidUtf8
    );
}

#[test]
fn err_invalid_utf8_fails_fast_on_the_first_fragment() {
    let mut ws = WebSocket::client();
    let mut buf = BytesMut::from(&frame(false, Opcode::Text, b"\xff rest", None)[..]);
    assert!(matches!(
        ws.decode(&mut buf),
        Err(Error::WebSocket(WebSocketError::InvalidUtf8))
    ));
}

#[test]
fn err_invalid_utf8_across_fragments() {
    // A 2-byte lead at the end of one fragment, then a non-continuation byte.
    let mut wire = frame(false, Opcode::Text, b"ab\xc3", None);
    wire.extend(frame(true, Opcode::Continuation, b"(", None));
    assert_eq!(
        ws_err(WebSocket::client(), &wire),
        WebSocketError::InvalidUtf8
    );
}

#[test]
fn err_truncated_code_point_at_end_of_message() {
    let mut wire = frame(false, Opcode::Text, b"ab", None);
    wire.extend(frame(true, Opcode::Continuation, b"\xe2\x82", None));
    assert_eq!(
        ws_err(WebSocket::client(), &wire),
        WebSocketError::InvalidUtf8
    );
}

#[test]
fn err_invalid_utf8_in_close_reason() {
    assert_eq!(
        ws_err(
            WebSocket::client(),
            &frame(true, Opcode::Close, b"\x03\xe8\xc0\xaf", None)
        ),
        WebSocketError::InvalidUtf8
    );
}

#[test]
fn err_close_with_one_byte() {
    assert_eq!(
        ws_err(WebSocket::client(), &[0x88, 0x01, 0x03]),
        WebSocketError::CloseTooShort
    );
}

#[test]
fn err_invalid_close_codes() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let wire = frame(true, Opcode::Close, &code.to_be_bytes(), None);
        assert_eq!(
            ws_err(WebSocket::client(), &wire),
            WebSocketError::InvalidCloseCode(code)
        );
    }
}

#[test]
fn err_frame_over_max_frame_length_on_the_header_alone() {
    let ws = WebSocket::builder(Role::Client)
        .max_frame_length(10)
        .build();
    // Only the header: the 11 payload bytes never arrive.
    assert!(matches!(
        decode_err(ws.clone(), &[0x82, 0x0b]),
        Error::TooLong {
            length: 11,
            max: 10
        }
    ));
    // A claimed 2^62 bytes: refused without reserving anything.
    let mut buf = BytesMut::from(&[0x82, 0x7f, 0x40, 0, 0, 0, 0, 0, 0, 0][..]);
    let mut ws = ws;
    assert!(matches!(
        ws.decode(&mut buf),
        Err(Error::TooLong { length, max: 10 }) if length == 1 << 62
    ));
    assert!(buf.capacity() < 1024);
}

#[test]
fn err_message_over_max_message_length_summed_over_fragments() {
    let ws = WebSocket::builder(Role::Client)
        .max_frame_length(100)
        .max_message_length(250)
        .build();
    let mut wire = frame(false, Opcode::Binary, &[1; 100], None);
    wire.extend(frame(false, Opcode::Continuation, &[2; 100], None));
    wire.extend_from_slice(&[0x80, 0x33]); // header of a 51-byte final fragment
    let mut dec = ws.clone();
    let got = decode_all(&mut dec, &wire);
    assert_eq!(got.len(), 1, "no message before the error");
    assert!(matches!(
        got[0],
        Err(Error::TooLong {
            length: 251,
            max: 250
        })
    ));
    // 50 bytes fits exactly.
    let mut wire = frame(false, Opcode::Binary, &[1; 100], None);
    wire.extend(frame(false, Opcode::Continuation, &[2; 100], None));
    wire.extend(frame(true, Opcode::Continuation, &[3; 50], None));
    let mut dec = ws;
    let got = ok(decode_all(&mut dec, &wire));
    assert_eq!(got[0].payload.len(), 250);
}

/// A server with both limits at `usize::MAX`, as `msgwire inspect --max-frame
/// 18446744073709551615` builds it.
fn unbounded_server() -> WebSocket {
    WebSocket::builder(Role::Server)
        .max_frame_length(usize::MAX)
        .max_message_length(usize::MAX)
        .build()
}

/// A masked binary frame header announcing `len` bytes with a 64-bit length.
fn header_64(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut wire = vec![if fin { 0x80 } else { 0 } | opcode, 0xff];
    wire.extend_from_slice(&len.to_be_bytes());
    wire.extend_from_slice(&KEY);
    wire
}

#[test]
fn unbounded_limits_2_pow_44_header_reserves_little_and_is_truncated_at_eof() {
    assert_waits_with_capped_room(&mut unbounded_server(), &header_64(true, 0x2, 1 << 44));
}

#[test]
fn unbounded_limits_2_pow_63_header_is_a_typed_error() {
    let wire = header_64(true, 0x2, 1 << 63);
    assert_eq!(
        ws_err(unbounded_server(), &wire),
        WebSocketError::LengthHighBit(1 << 63)
    );
    // The largest legal length, 2^63 - 1, is representable: capped room, then EOF.
    let header = header_64(true, 0x2, (1 << 63) - 1);
    assert_waits_with_capped_room(&mut unbounded_server(), &header);
}

#[test]
fn unbounded_limits_fragment_sum_is_checked_without_overflow() {
    // One byte so far, then a continuation of 2^63 - 1: the sum is checked (in u64,
    // never wrapping) against the limit, room is capped, EOF is truncation.
    let mut wire = frame(false, Opcode::Binary, b"a", Some(KEY));
    wire.extend_from_slice(&header_64(true, 0x0, (1 << 63) - 1));
    assert_waits_with_capped_room(&mut unbounded_server(), &wire);
}

#[test]
fn control_frames_do_not_count_towards_the_message() {
    let mut ws = WebSocket::builder(Role::Client)
        .max_message_length(4)
        .build();
    let mut wire = frame(false, Opcode::Binary, b"ab", None);
    wire.extend(frame(true, Opcode::Ping, b"0123456789", None));
    wire.extend(frame(true, Opcode::Continuation, b"cd", None));
    let got = ok(decode_all(&mut ws, &wire));
    assert_eq!(
        got,
        [
            Message::ping(&b"0123456789"[..]),
            Message::binary(&b"abcd"[..])
        ]
    );
}

#[test]
fn eof_inside_a_fragmented_message_is_truncated() {
    let mut ws = WebSocket::client();
    let mut buf = BytesMut::from(&frame(false, Opcode::Binary, b"abc", None)[..]);
    assert!(matches!(
        ws.decode_eof(&mut buf),
        Err(Error::Truncated { buffered: 0 })
    ));
    let mut ws = WebSocket::client();
    let mut buf = BytesMut::from(&[0x82, 0x05, b'a'][..]);
    assert!(matches!(
        ws.decode_eof(&mut buf),
        Err(Error::Truncated { buffered: 3 })
    ));
}

#[test]
fn errors_carry_the_close_code_to_answer_with() {
    assert_eq!(WebSocketError::InvalidUtf8.close_code(), 1007);
    assert_eq!(WebSocketError::UnmaskedFrame.close_code(), 1002);
}
