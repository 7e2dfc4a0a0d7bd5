//! Helpers shared by the framings' unit tests.

use bytes::BytesMut;

use crate::{Framing, Result};

/// Decodes `wire`, given whole, until more bytes would be needed: every frame, and every
/// error; decoding stops after the first fatal one.
pub(crate) fn decode_frames<F: Framing>(
    framing: &mut F,
    wire: &[u8],
) -> Vec<Result<F::Frame<BytesMut>>> {
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    loop {
        match framing.decode(&mut buf) {
            Ok(Some(frame)) => out.push(Ok(frame)),
            Ok(None) => return out,
            Err(e) => {
                let fatal = e.is_fatal();
                out.push(Err(e));
                if fatal {
                    return out;
                }
            }
        }
    }
}

/// [`decode_frames`] for framings whose frames are bytes, as `Vec<u8>`.
pub(crate) fn decode_all<F>(framing: &mut F, wire: &[u8]) -> Vec<Result<Vec<u8>>>
where
    F: Framing,
    F::Frame<BytesMut>: AsRef<[u8]>,
{
    decode_frames(framing, wire)
        .into_iter()
        .map(|r| r.map(|f| f.as_ref().to_vec()))
        .collect()
}

/// Feeds `header` (a frame header announcing more than it brings, within the limit) to
/// `framing`: it must wait for more bytes, having reserved no more than the capped
/// first reservation, and report the stream [`Error::Truncated`] at end of input.
pub(crate) fn assert_waits_with_capped_room<F: Framing>(framing: &mut F, header: &[u8]) {
    let mut buf = BytesMut::from(header);
    assert!(
        matches!(framing.decode(&mut buf), Ok(None)),
        "{header:02x?}: expected to wait for more"
    );
    assert!(
        buf.capacity() < 2 * crate::buffer::RESERVE_AHEAD,
        "{header:02x?}: reserved {} bytes",
        buf.capacity()
    );
    assert!(framing.is_mid_frame(), "{header:02x?}");
    assert!(
        matches!(
            framing.decode_eof(&mut buf),
            Err(crate::Error::Truncated { .. })
        ),
        "{header:02x?}: expected Truncated at end of input"
    );
}
