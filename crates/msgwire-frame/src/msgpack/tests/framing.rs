//! [`SelfDelimited`]: decoding, encoding, limits and the borrowed batch form.

use bytes::BytesMut;

use super::*;
use crate::{Encode, Framing, InputBuffer};

#[test]
fn rmpv_encodings_measure_exactly() {
    use rmpv::Value;
    let big_str = "s".repeat(70_000);
    let values = vec![
        Value::Nil,
        Value::Boolean(true),
        Value::from(0),
        Value::from(127),
        Value::from(128),
        Value::from(-32),
        Value::from(-33),
        Value::from(u16::MAX),
        Value::from(u32::MAX),
        Value::from(u64::MAX),
        Value::from(i8::MIN),
        Value::from(i16::MIN),
        Value::from(i32::MIN),
        Value::from(i64::MIN),
        Value::F32(1.5),
        Value::F64(-2.25),
        Value::from("x".repeat(31)),
        Value::from("x".repeat(32)),
        Value::from("x".repeat(300)),
        Value::from(big_str.as_str()),
        Value::Binary(vec![0xc1; 3]),
        Value::Binary(vec![0; 300]),
        Value::Binary(vec![7; 70_000]),
        Value::Ext(5, vec![1]),
        Value::Ext(-5, vec![1, 2]),
        Value::Ext(1, vec![0; 4]),
        Value::Ext(1, vec![0; 8]),
        Value::Ext(1, vec![0; 16]),
        Value::Ext(1, vec![0; 3]),
        Value::Ext(1, vec![0; 300]),
        Value::Ext(1, vec![0; 70_000]),
        Value::Array(vec![]),
        Value::Array((0..20).map(Value::from).collect()),
        Value::Array(vec![Value::Nil; 70_000]),
        Value::Map(vec![]),
        Value::Map(
            (0..20)
                .map(|i| (Value::from(i), Value::from("v")))
                .collect(),
        ),
        Value::Map(vec![(Value::Nil, Value::Nil); 70_000]),
        Value::Array(vec![Value::Map(vec![(
            Value::Array(vec![Value::from(1), Value::Binary(vec![1, 2])]),
            Value::Array(vec![Value::Array(vec![]), Value::Ext(3, vec![9; 5])]),
        )])]),
    ];
    let mut stream = Vec::new();
    for value in &values {
        let bytes = rmpv_encode(value);
        assert_eq!(measure(&bytes).unwrap(), Some(bytes.len()), "{value:?}");
        assert_eq!(
            measure(&bytes[..bytes.len() - 1]).unwrap(),
            None,
            "{value:?}"
        );
        stream.extend_from_slice(&bytes);
    }
    // Back to back, through the framing.
    let mut framing = SelfDelimited::new();
    let mut buf = BytesMut::from(&stream[..]);
    for value in &values {
        let frame = framing.decode(&mut buf).unwrap().unwrap();
        let decoded = rmpv::decode::read_value(&mut &frame[..]).unwrap();
        assert_eq!(&decoded, value);
    }
    assert!(buf.is_empty());
    assert!(framing.decode(&mut buf).unwrap().is_none());
}

#[test]
fn framing_decodes_pieces_and_reports_truncation() {
    let mut framing = SelfDelimited::new();
    let mut buf = BytesMut::from(&[0x92, 0x01][..]);
    assert!(framing.decode(&mut buf).unwrap().is_none());
    assert!(framing.is_mid_frame());
    buf.extend_from_slice(&[0xa2, b'h']);
    assert!(framing.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&[b'i', 0x2a]);
    assert_eq!(
        &framing.decode(&mut buf).unwrap().unwrap()[..],
        &[0x92, 0x01, 0xa2, b'h', b'i']
    );
    assert!(!framing.is_mid_frame());
    assert_eq!(&framing.decode_eof(&mut buf).unwrap().unwrap()[..], &[0x2a]);
    assert!(framing.decode_eof(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&[0xcd, 0x01]);
    assert!(matches!(
        framing.decode_eof(&mut buf),
        Err(Error::Truncated { buffered: 2 })
    ));
}

#[test]
fn framing_applies_builder_limits() {
    let mut framing = SelfDelimited::builder()
        .max_depth(2)
        .max_frame_length(8)
        .build();
    assert_eq!((framing.max_depth(), framing.max_frame_length()), (2, 8));
    let mut buf = BytesMut::from(&[0x91, 0x91, 0x91, 0x01][..]);
    assert!(matches!(
        framing.decode(&mut buf),
        Err(Error::Msgpack(MsgpackError::TooDeep { max: 2 }))
    ));
    let mut framing = SelfDelimited::builder().max_frame_length(8).build();
    let mut buf = BytesMut::from(&[0xa8][..]);
    assert!(matches!(
        framing.decode(&mut buf),
        Err(Error::TooLong { length: 9, max: 8 })
    ));
    let scanner = SelfDelimited::builder().max_depth(3).build_scanner();
    assert_eq!(scanner.max_depth(), 3);
}

#[test]
fn encode_accepts_exactly_one_value() {
    let mut framing = SelfDelimited::builder()
        .max_depth(2)
        .max_frame_length(8)
        .build();
    let mut dst = BytesMut::new();
    framing
        .encode(&[0x92, 0x01, 0x91, 0x02][..], &mut dst)
        .unwrap();
    assert_eq!(&dst[..], &[0x92, 0x01, 0x91, 0x02]);
    for bad in [
        &[][..],
        &[0x01, 0x02][..],
        &[0x92, 0x01][..],
        &[0xc1][..],
        &[0x91, 0x91, 0x91, 0x01][..],
    ] {
        assert!(
            matches!(framing.encode(bad, &mut dst), Err(Error::Encode(_))),
            "{bad:02x?}"
        );
    }
    assert!(matches!(
        framing.encode(&[0xa8, 1, 2, 3, 4, 5, 6, 7, 8][..], &mut dst),
        Err(Error::TooLong { length: 9, max: 8 })
    ));
    assert_eq!(dst.len(), 4, "nothing written on error");
}

#[test]
fn encode_does_not_disturb_a_decode_in_progress() {
    let mut framing = SelfDelimited::new();
    let mut buf = BytesMut::from(&[0x92, 0x01][..]);
    assert!(framing.decode(&mut buf).unwrap().is_none());
    let mut dst = BytesMut::new();
    framing.encode(&[0x05][..], &mut dst).unwrap();
    buf.extend_from_slice(&[0x02]);
    assert_eq!(
        &framing.decode(&mut buf).unwrap().unwrap()[..],
        &[0x92, 0x01, 0x02]
    );
}

#[test]
fn for_each_value_hands_out_borrowed_values_and_advances_once() {
    let mut framing = SelfDelimited::new();
    let mut buf = BytesMut::from(&[0x01, 0x92, 0x01][..]);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    assert_eq!(
        framing
            .for_each_value(&mut buf, |v| seen.push(v.to_vec()))
            .unwrap(),
        1
    );
    assert_eq!(&buf[..], &[0x92, 0x01]);
    assert!(framing.is_mid_frame());
    // `decode` carries on with the array in progress.
    buf.extend_from_slice(&[0x02, 0xa1]);
    assert_eq!(
        &framing.decode(&mut buf).unwrap().unwrap()[..],
        &[0x92, 0x01, 0x02]
    );
    buf.extend_from_slice(&[b'z', 0xc0, 0xc4, 0x40]);
    assert_eq!(
        framing
            .for_each_value(&mut buf, |v| seen.push(v.to_vec()))
            .unwrap(),
        2
    );
    assert_eq!(seen, [&[0x01][..], &[0xa1, b'z'], &[0xc0]]);
    assert_eq!(&buf[..], &[0xc4, 0x40]);
    // The header's promise is passed on as a reserve hint, as `decode` does.
    assert!(buf.capacity() >= 2 + 0x40);
    // An error leaves the buffer at the bad value, after the good ones.
    let mut framing = SelfDelimited::new();
    let mut buf = BytesMut::from(&[0x01, 0x02, 0x91, 0xc1, 0x03][..]);
    let mut count = 0;
    assert!(matches!(
        framing.for_each_value(&mut buf, |_| count += 1),
        Err(Error::Msgpack(MsgpackError::InvalidMarker {
            offset: 1,
            ..
        }))
    ));
    assert_eq!((count, &buf[..]), (2, &[0x91, 0xc1, 0x03][..]));
}

#[test]
fn for_each_value_works_on_every_buffer_strategy() {
    use crate::buffer::{BufferPool, PooledBuffer, RingBuffer};
    let mut wire = Vec::new();
    for (_, bytes) in every_family() {
        wire.extend_from_slice(&bytes);
    }
    let want: Vec<Vec<u8>> = every_family().into_iter().map(|(_, b)| b).collect();
    fn run<B: InputBuffer>(mut buf: B, wire: &[u8], read: usize) -> Vec<Vec<u8>> {
        let mut framing = SelfDelimited::new();
        let mut got = Vec::new();
        for piece in wire.chunks(read) {
            buf.extend_from_slice(piece);
            framing
                .for_each_value(&mut buf, |v| got.push(v.to_vec()))
                .unwrap();
        }
        assert!(buf.is_empty());
        got
    }
    for read in [1, 3, 7, 64, wire.len()] {
        assert_eq!(run(BytesMut::new(), &wire, read), want, "read {read}");
        assert_eq!(run(RingBuffer::with_capacity(16), &wire, read), want);
        assert_eq!(
            run(PooledBuffer::new(&BufferPool::new(16, 2)), &wire, read),
            want
        );
    }
}

#[test]
fn frame_depths_from_decode_and_for_each_value_agree() {
    let (wire, want) = family_stream_with_depths(&[]);
    let mut framing = SelfDelimited::new();
    let mut buf = BytesMut::from(&wire[..]);
    let mut by_decode = Vec::new();
    while framing.decode(&mut buf).unwrap().is_some() {
        by_decode.push(framing.last_frame_depth());
    }
    assert_eq!(by_decode, want);
    for read in [1, 5, wire.len()] {
        let mut framing = SelfDelimited::new();
        let mut buf = BytesMut::new();
        let mut by_batch = Vec::new();
        for piece in wire.chunks(read) {
            buf.extend_from_slice(piece);
            framing
                .for_each_value_with_depth(&mut buf, |_, depth| by_batch.push(depth))
                .unwrap();
        }
        assert_eq!(by_batch, want, "reads of {read}");
        assert_eq!(framing.last_frame_depth(), *want.last().unwrap());
    }
}
