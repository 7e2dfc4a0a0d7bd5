//! Length-field framing: every option, the limit, discard mode, and lengths past what
//! a machine can address.

use bytes::BytesMut;

use super::*;
use crate::testing::{assert_waits_with_capped_room, decode_all};

#[test]
fn default_is_u32_big_endian_stripped() {
    let mut f = LengthPrefixed::new();
    let got = decode_all(&mut f, b"\x00\x00\x00\x02hi\x00\x00\x00\x00");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_ref().unwrap(), b"hi");
    assert_eq!(got[1].as_ref().unwrap(), b"");
}

#[test]
fn every_width_both_endians_round_trip() {
    for width in [1usize, 2, 3, 4, 8] {
        for little in [false, true] {
            let mut b = LengthPrefixed::builder().length_field_width(width);
            if little {
                b = b.little_endian();
            }
            let mut f = b.build().unwrap();
            let mut wire = BytesMut::new();
            f.encode(&b"payload"[..], &mut wire).unwrap();
            assert_eq!(wire.len(), width + 7);
            let field = &wire[..width];
            let expect_pos = if little { 0 } else { width - 1 };
            assert_eq!(field[expect_pos], 7, "width {width} little {little}");
            assert_eq!(&f.decode(&mut wire).unwrap().unwrap()[..], b"payload");
            assert!(wire.is_empty());
        }
    }
}

#[test]
fn three_byte_field_reads_24_bits() {
    let mut f = LengthPrefixed::builder()
        .length_field_width(3)
        .build()
        .unwrap();
    let mut wire = BytesMut::from(&[0x00, 0x01, 0x00][..]);
    wire.extend_from_slice(&[7u8; 256]);
    assert_eq!(f.decode(&mut wire).unwrap().unwrap().len(), 256);
}

#[test]
fn netty_example_offset_adjustment_strip() {
    // Netty's javadoc example: HDR1 (1) | LEN (2, counts whole frame) | HDR2 (1) | body;
    // offset 1, width 2, adjustment -3, strip 3.
    let mut f = LengthPrefixed::builder()
        .length_field_offset(1)
        .length_field_width(2)
        .length_adjustment(-3)
        .strip(3)
        .build()
        .unwrap();
    let wire = b"\xca\x00\x10\xfeHELLO, WORLD";
    let got = decode_all(&mut f, wire);
    assert_eq!(got[0].as_ref().unwrap(), b"\xfeHELLO, WORLD");
}

#[test]
fn too_long_fails_on_the_header_alone() {
    let mut f = LengthPrefixed::builder()
        .max_frame_length(10)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x0b"[..]);
    match f.decode(&mut buf) {
        Err(Error::TooLong {
            length: 11,
            max: 10,
        }) => {}
        other => panic!("expected TooLong, got {other:?}"),
    }
}

#[test]
fn limit_counts_adjusted_body_not_header() {
    let mut f = LengthPrefixed::builder()
        .max_frame_length(4)
        .build()
        .unwrap();
    let got = decode_all(&mut f, b"\x00\x00\x00\x04abcd");
    assert_eq!(got[0].as_ref().unwrap(), b"abcd");
}

#[test]
fn negative_adjusted_length_is_an_error() {
    let mut f = LengthPrefixed::builder()
        .length_adjustment(-4)
        .build()
        .unwrap();
    let got = decode_all(&mut f, b"\x00\x00\x00\x02ab");
    assert!(matches!(
        got[0],
        Err(Error::Length(LengthError::NegativeLength {
            value: 2,
            adjustment: -4
        }))
    ));
}

#[test]
fn strip_longer_than_frame_is_an_error() {
    let mut f = LengthPrefixed::builder().strip(10).build().unwrap();
    let got = decode_all(&mut f, b"\x00\x00\x00\x02ab");
    assert!(matches!(
        got[0],
        Err(Error::Length(LengthError::ShorterThanStrip {
            frame: 6,
            strip: 10
        }))
    ));
}

#[test]
fn discard_mode_fail_fast_reports_then_resyncs() {
    let mut f = LengthPrefixed::builder()
        .max_frame_length(3)
        .discard_oversized(true)
        .build()
        .unwrap();
    let got = decode_all(&mut f, b"\x00\x00\x00\x05abcde\x00\x00\x00\x02ok");
    assert!(matches!(
        got[0],
        Err(Error::Discarded { length: 9, max: 3 })
    ));
    assert_eq!(got[1].as_ref().unwrap(), b"ok");
}

#[test]
fn discard_mode_without_fail_fast_reports_after_skipping() {
    let mut f = LengthPrefixed::builder()
        .max_frame_length(3)
        .discard_oversized(true)
        .fail_fast(false)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x05abc"[..]);
    assert!(f.decode(&mut buf).unwrap().is_none());
    assert!(
        buf.is_empty(),
        "over-long bytes are dropped, never buffered"
    );
    buf.extend_from_slice(b"de\x00\x00\x00\x02ok");
    assert!(matches!(
        f.decode(&mut buf),
        Err(Error::Discarded { length: 9, max: 3 })
    ));
    assert_eq!(&f.decode(&mut buf).unwrap().unwrap()[..], b"ok");
}

#[test]
fn partial_header_and_body_need_more() {
    let mut f = LengthPrefixed::new();
    let mut buf = BytesMut::from(&b"\x00\x00"[..]);
    assert!(f.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(b"\x00\x03a");
    assert!(f.decode(&mut buf).unwrap().is_none());
    assert!(f.is_mid_frame());
    buf.extend_from_slice(b"bc");
    assert_eq!(&f.decode(&mut buf).unwrap().unwrap()[..], b"abc");
}

#[test]
fn eof_inside_a_frame_is_truncated() {
    let mut f = LengthPrefixed::new();
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x09abc"[..]);
    assert!(matches!(
        f.decode_eof(&mut buf),
        Err(Error::Truncated { buffered: 7 })
    ));
}

#[test]
fn eight_byte_field_with_top_bit_set_is_too_long_not_overflow() {
    // Also with no limit at all: `8 + u64::MAX` (or plus an adjustment) is past
    // usize::MAX, so too long rather than an overflow.
    for (max, adjustment) in [(DEFAULT_MAX_FRAME, 0), (usize::MAX, 0), (usize::MAX, 1)] {
        let mut f = LengthPrefixed::builder()
            .length_field_width(8)
            .length_adjustment(adjustment)
            .max_frame_length(max)
            .build()
            .unwrap();
        let mut buf = BytesMut::from(&[0xff; 8][..]);
        assert!(
            matches!(
                f.decode(&mut buf),
                Err(Error::TooLong {
                    length: u64::MAX,
                    ..
                })
            ),
            "max {max}, adjustment {adjustment}"
        );
        assert!(matches!(
            f.parse_frame(&[0xff; 8]),
            Err(Error::TooLong { .. })
        ));
    }
    // Just representable: no overflow, and only a capped reservation.
    let mut f = LengthPrefixed::builder()
        .length_field_width(8)
        .max_frame_length(usize::MAX)
        .build()
        .unwrap();
    assert_waits_with_capped_room(&mut f, &(u64::MAX - 8).to_be_bytes());
}

#[test]
fn discarding_a_frame_of_u64_max_bytes_reports_without_overflow() {
    let mut f = LengthPrefixed::builder()
        .length_field_width(8)
        .max_frame_length(3)
        .discard_oversized(true)
        .build()
        .unwrap();
    let mut buf = BytesMut::from(&[0xff; 8][..]);
    assert!(matches!(
        f.decode(&mut buf),
        Err(Error::Discarded {
            length: u64::MAX,
            max: 3
        })
    ));
}

#[test]
fn header_within_the_limit_reserves_a_capped_amount_then_grows_with_the_body() {
    let ahead = crate::buffer::RESERVE_AHEAD;
    let body = 1usize << 20;
    let mut f = LengthPrefixed::new();
    let mut buf = BytesMut::from(&(body as u32).to_be_bytes()[..]);
    assert!(f.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= 4 + ahead);
    assert!(buf.capacity() < 2 * ahead, "reserved {}", buf.capacity());
    let payload: Vec<u8> = (0..body).map(|i| i as u8).collect();
    let mut frame = None;
    for piece in payload.chunks(1000) {
        assert!(frame.is_none());
        buf.extend_from_slice(piece);
        frame = f.decode(&mut buf).unwrap();
        if frame.is_none() {
            // Never much more than twice what arrived.
            let bound = 2 * buf.len().max(ahead) + 4 + ahead;
            assert!(
                buf.capacity() <= bound,
                "{} of {}",
                buf.capacity(),
                buf.len()
            );
        }
    }
    assert_eq!(&frame.unwrap()[..], &payload[..]);
}

#[test]
fn offset_plus_width_past_usize_is_a_config_error() {
    assert!(matches!(
        LengthPrefixed::builder()
            .length_field_offset(usize::MAX)
            .build(),
        Err(Error::Length(LengthError::Config(_)))
    ));
}

#[test]
fn bad_width_is_rejected_by_builder() {
    assert!(LengthPrefixed::builder()
        .length_field_width(5)
        .build()
        .is_err());
}

#[test]
fn encoder_rejects_lengths_the_field_cannot_hold() {
    let mut f = LengthPrefixed::builder()
        .length_field_width(1)
        .build()
        .unwrap();
    let mut dst = BytesMut::new();
    assert!(f.encode(&[0u8; 256][..], &mut dst).is_err());
    assert!(dst.is_empty(), "nothing half-written");
}
