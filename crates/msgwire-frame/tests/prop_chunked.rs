//! Property: any sequence of chunked bodies (non-empty chunks, optional chunk extensions,
//! optional trailers), cut at any points and fed to any buffer strategy, decodes back to
//! exactly the chunks, at the right stream offsets; a stream cut inside a body is
//! reported as truncated.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use msgwire_frame::testing::{cuts, decode_pieces, Cuts};
use msgwire_frame::with_every_buffer;
use msgwire_frame::{chunked::Chunked, Encode, Error, StreamDecoder};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Chunk {
    data: Vec<u8>,
    /// Whitespace, `;` and what follows, written after the size.
    ext: Option<String>,
    upper_hex: bool,
}

#[derive(Debug, Clone)]
struct Body {
    chunks: Vec<Chunk>,
    last_ext: Option<String>,
    trailers: Vec<(String, String)>,
}

fn extension() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        1 => "[ \t]{0,2};[a-z]{1,8}(=[a-z0-9]{1,8})?".prop_map(Some),
        1 => "(;[a-z]{1,4}=\"[ a-z;=]{0,12}\"){1,3}".prop_map(Some),
    ]
}

fn chunk() -> impl Strategy<Value = Chunk> {
    (
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 1..64),
            1 => prop::collection::vec(any::<u8>(), 1..3000),
        ],
        extension(),
        any::<bool>(),
    )
        .prop_map(|(data, ext, upper_hex)| Chunk {
            data,
            ext,
            upper_hex,
        })
}

fn body() -> impl Strategy<Value = Body> {
    (
        prop::collection::vec(chunk(), 0..8),
        extension(),
        prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,10}", "[ -~]{0,20}"), 1..4),
        ],
    )
        .prop_map(|(chunks, last_ext, trailers)| Body {
            chunks,
            last_ext,
            trailers,
        })
}

/// The wire bytes, the expected frames with their stream offsets, and where each body
/// starts.
struct Wire {
    bytes: Vec<u8>,
    frames: Vec<(u64, Vec<u8>)>,
    body_starts: Vec<usize>,
}

fn write(bodies: &[Body]) -> Wire {
    let mut enc = Chunked::new();
    let mut wire = BytesMut::new();
    let mut frames = Vec::new();
    let mut body_starts = Vec::new();
    for body in bodies {
        body_starts.push(wire.len());
        for c in &body.chunks {
            // A chunk's offset is where its size line starts.
            frames.push((wire.len() as u64, c.data.clone()));
            match (&c.ext, c.upper_hex) {
                (None, true) => enc.encode(&c.data[..], &mut wire).unwrap(),
                (ext, upper) => {
                    let size = if upper {
                        format!("{:X}", c.data.len())
                    } else {
                        format!("{:x}", c.data.len())
                    };
                    wire.extend_from_slice(size.as_bytes());
                    wire.extend_from_slice(ext.as_deref().unwrap_or("").as_bytes());
                    wire.extend_from_slice(b"\r\n");
                    wire.extend_from_slice(&c.data);
                    wire.extend_from_slice(b"\r\n");
                }
            }
        }
        match &body.last_ext {
            None => {
                let trailers: Vec<(&str, &str)> = body
                    .trailers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                Chunked::encode_end_with_trailers(&mut wire, &trailers).unwrap();
            }
            Some(ext) => {
                wire.extend_from_slice(b"0");
                wire.extend_from_slice(ext.as_bytes());
                wire.extend_from_slice(b"\r\n");
                for (n, v) in &body.trailers {
                    wire.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
                }
                wire.extend_from_slice(b"\r\n");
            }
        }
    }
    Wire {
        bytes: wire.to_vec(),
        frames,
        body_starts,
    }
}

fn check_round_trip(bodies: &[Body], cuts: &Cuts) {
    let wire = write(bodies);
    with_every_buffer!(|buf| {
        let got = decode_pieces(Chunked::new(), buf, &wire.bytes, cuts).unwrap();
        assert_eq!(got.len(), wire.frames.len());
        for ((off, frame), (want_off, want)) in got.iter().zip(&wire.frames) {
            assert_eq!(frame.as_ref(), &want[..]);
            assert_eq!(off, want_off);
        }
    });
}

proptest! {
    #[test]
    fn bodies_round_trip(bodies in prop::collection::vec(body(), 1..5), cuts in cuts()) {
        check_round_trip(&bodies, &cuts);
    }

    #[test]
    fn every_body_end_is_seen(bodies in prop::collection::vec(body(), 1..5), cuts in cuts()) {
        let wire = write(&bodies);
        let mut decoder = StreamDecoder::new(Chunked::new(), BytesMut::new());
        let mut frames = 0;
        for piece in cuts.pieces(&wire.bytes) {
            decoder.feed(piece);
            while decoder.next_frame().unwrap().is_some() {
                frames += 1;
            }
        }
        prop_assert!(decoder.finish().unwrap().is_none());
        prop_assert_eq!(frames, wire.frames.len());
        prop_assert_eq!(decoder.framing().bodies_completed(), bodies.len() as u64);
        prop_assert_eq!(decoder.position(), wire.bytes.len() as u64);
    }

    #[test]
    fn cut_inside_the_last_body_is_truncated(
        bodies in prop::collection::vec(body(), 1..4),
        cuts in cuts(),
        at in any::<prop::sample::Index>(),
    ) {
        let wire = write(&bodies);
        let start = *wire.body_starts.last().unwrap();
        // Strictly inside the last body: at least one byte of it, not all of them.
        let len = start + 1 + at.index(wire.bytes.len() - start - 1);
        let cut = &wire.bytes[..len];
        with_every_buffer!(|buf| {
            match decode_pieces(Chunked::new(), buf, cut, &cuts) {
                Err(e) => prop_assert!(
                    matches!(e.error, Error::Truncated { .. }),
                    "cut at {} of {}: {:?}", len, wire.bytes.len(), e
                ),
                Ok(frames) => prop_assert!(false, "cut at {}: decoded {} frames", len, frames.len()),
            }
        });
    }
}
