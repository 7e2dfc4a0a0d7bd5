//! Opcodes and the frame header (RFC 6455 section 5.2).

use bytes::{BufMut, BytesMut};

use super::WebSocketError;

/// The largest control-frame payload (close, ping, pong).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode. Reserved opcodes (0x3–0x7, 0xB–0xF) are not representable: parsing
/// one fails with [`WebSocketError::ReservedOpcode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 0x0: the next fragment of a fragmented message.
    Continuation,
    /// 0x1: a UTF-8 text message (or its first fragment).
    Text,
    /// 0x2: a binary message (or its first fragment).
    Binary,
    /// 0x8: close the connection.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl Opcode {
    /// The opcode for the 4-bit value `value`.
    ///
    /// ```
    /// use msgwire_frame::websocket::{Opcode, WebSocketError};
    ///
    /// assert_eq!(Opcode::from_u8(0x9), Ok(Opcode::Ping));
    /// assert_eq!(Opcode::from_u8(0x3), Err(WebSocketError::ReservedOpcode(0x3)));
    /// ```
    pub fn from_u8(value: u8) -> Result<Opcode, WebSocketError> {
        match value {
            0x0 => Ok(Opcode::Continuation),
            0x1 => Ok(Opcode::Text),
            0x2 => Ok(Opcode::Binary),
            0x8 => Ok(Opcode::Close),
            0x9 => Ok(Opcode::Ping),
            0xA => Ok(Opcode::Pong),
            other => Err(WebSocketError::ReservedOpcode(other)),
        }
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// `"continuation"`, `"text"`, `"binary"`, `"close"`, `"ping"` or `"pong"`.
    pub fn name(&self) -> &'static str {
        match self {
            Opcode::Continuation => "continuation",
            Opcode::Text => "text",
            Opcode::Binary => "binary",
            Opcode::Close => "close",
            Opcode::Ping => "ping",
            Opcode::Pong => "pong",
        }
    }

    /// Close, ping or pong: at most 125 payload bytes, never fragmented.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

impl std::fmt::Display for Opcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed frame header:
///
/// ```text
///  0               1               2               3
/// +-+-+-+-+-------+-+-------------+-------------------------------+
/// |F|R|R|R| opcode|M| payload len |   extended payload length     |
/// |I|S|S|S|  (4)  |A|     (7)     |   (16 bits if len == 126,     |
/// |N|V|V|V|       |S|             |    64 bits if len == 127)     |
/// | |1|2|3|       |K|             |                               |
/// +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
/// |  ... extended payload length, continued   | masking key (4)   |
/// +-------------------------------------------+-------------------+
/// ```
///
/// RSV1–3 are not represented: no extension is supported, so parsing a header with
/// one set fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last (or only) frame of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes. Below 2^63 in any header that parsed.
    pub payload_len: u64,
}

impl FrameHeader {
    /// The longest header: 2 + 8 (64-bit length) + 4 (masking key) bytes.
    pub const MAX_LEN: usize = 14;

    /// Parses the header at the front of `src`: `Ok(Some((header, header_len)))`, or
    /// `Ok(None)` if `src` does not hold the whole header yet. Errors are reported as
    /// soon as the bytes that show them are in (RSV bits, the opcode and a fragmented
    /// control frame on the first byte).
    ///
    /// Checked here: RSV bits clear, opcode not reserved, minimal length encoding, no
    /// 64-bit length with the top bit set, control frames with FIN and at most 125
    /// bytes. Not checked (it needs the role and the decoder's state): masking, and
    /// whether a continuation is expected.
    ///
    /// ```
    /// use msgwire_frame::websocket::{FrameHeader, Opcode};
    ///
    /// let (header, len) = FrameHeader::parse(&[0x81, 0x05, b'H'])?.expect("whole header");
    /// assert_eq!(len, 2);
    /// assert!(header.fin);
    /// assert_eq!(header.opcode, Opcode::Text);
    /// assert_eq!(header.payload_len, 5);
    /// assert_eq!(FrameHeader::parse(&[0x82, 0x7e, 0x01])?, None); // 16-bit length cut
    /// # Ok::<(), msgwire_frame::websocket::WebSocketError>(())
    /// ```
    pub fn parse(src: &[u8]) -> Result<Option<(FrameHeader, usize)>, WebSocketError> {
        let Some(&b0) = src.first() else {
            return Ok(None);
        };
        let rsv = (b0 >> 4) & 0b111;
        if rsv != 0 {
            return Err(WebSocketError::ReservedBits(rsv));
        }
        let opcode = Opcode::from_u8(b0 & 0x0f)?;
        let fin = b0 & 0x80 != 0;
        if opcode.is_control() && !fin {
            return Err(WebSocketError::FragmentedControlFrame(opcode));
        }
        let Some(&b1) = src.get(1) else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7f {
            126 => {
                let Some(ext) = src.get(2..4) else {
                    return Ok(None);
                };
                let len = ext.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                if len < 126 {
                    return Err(WebSocketError::NonMinimalLength(len));
                }
                (len, 4)
            }
            127 => {
                let Some(ext) = src.get(2..10) else {
                    return Ok(None);
                };
                let len = ext.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                if len >> 63 != 0 {
                    return Err(WebSocketError::LengthHighBit(len));
                }
                if len <= 0xffff {
                    return Err(WebSocketError::NonMinimalLength(len));
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        if opcode.is_control() && payload_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(WebSocketError::ControlFrameTooLong(payload_len));
        }
        let mask = if masked {
            let Some(key) = src.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                opcode,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Bytes [`encode`](Self::encode) writes: 2, plus 2 or 8 for an extended length,
    /// plus 4 for a masking key.
    pub fn encoded_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xffff => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header, with the length in its minimal encoding and RSV1–3 clear.
    /// `payload_len` must be below 2^63 (any length of a slice in memory is).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use msgwire_frame::websocket::{FrameHeader, Opcode};
    ///
    /// let header = FrameHeader { fin: true, opcode: Opcode::Binary, mask: None, payload_len: 256 };
    /// let mut dst = BytesMut::new();
    /// header.encode(&mut dst);
    /// assert_eq!(&dst[..], [0x82, 0x7e, 0x01, 0x00]);
    /// ```
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        let fin = if self.fin { 0x80 } else { 0 };
        dst.put_u8(fin | self.opcode.as_u8());
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        match self.payload_len {
            len @ 0..=125 => dst.put_u8(mask_bit | len as u8),
            len @ 126..=0xffff => {
                dst.put_u8(mask_bit | 126);
                dst.put_u16(len as u16);
            }
            len => {
                dst.put_u8(mask_bit | 127);
                dst.put_u64(len);
            }
        }
        if let Some(key) = self.mask {
            dst.put_slice(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &[u8]) -> Result<Option<(FrameHeader, usize)>, WebSocketError> {
        FrameHeader::parse(src)
    }

    #[test]
    fn opcode_names_and_values_round_trip() {
        let all = [
            (Opcode::Continuation, "continuation", 0x0),
            (Opcode::Text, "text", 0x1),
            (Opcode::Binary, "binary", 0x2),
            (Opcode::Close, "close", 0x8),
            (Opcode::Ping, "ping", 0x9),
            (Opcode::Pong, "pong", 0xA),
        ];
        for (op, name, value) in all {
            assert_eq!(op.name(), name);
            assert_eq!(op.to_string(), name);
            assert_eq!(op.as_u8(), value);
            assert_eq!(Opcode::from_u8(value), Ok(op));
        }
        for reserved in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(
                Opcode::from_u8(reserved),
                Err(WebSocketError::ReservedOpcode(reserved))
            );
        }
    }

    #[test]
    fn short_input_is_none_at_every_cut() {
        let full = [0x02, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
        }
        let (h, len) = parse(&full).unwrap().unwrap();
        assert_eq!(len, 14);
        assert_eq!(h.payload_len, 0x1_0000);
        assert_eq!(h.mask, Some([1, 2, 3, 4]));
        assert!(!h.fin);
        assert_eq!(h.opcode, Opcode::Binary);
    }

    #[test]
    fn reserved_opcode_is_rejected_on_the_first_byte() {
        for op in (0x3u8..=0x7).chain(0xB..=0xF) {
            assert_eq!(parse(&[0x80 | op]), Err(WebSocketError::ReservedOpcode(op)));
        }
    }

    #[test]
    fn rsv_bits_are_rejected() {
        assert_eq!(parse(&[0xc1]), Err(WebSocketError::ReservedBits(0b100)));
        assert_eq!(parse(&[0xa1]), Err(WebSocketError::ReservedBits(0b010)));
        assert_eq!(parse(&[0x91]), Err(WebSocketError::ReservedBits(0b001)));
    }

    #[test]
    fn non_minimal_lengths_are_rejected() {
        assert_eq!(
            parse(&[0x82, 0x7e, 0x00, 0x7d]),
            Err(WebSocketError::NonMinimalLength(125))
        );
        assert_eq!(
            parse(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(WebSocketError::NonMinimalLength(0xffff))
        );
        // The smallest lengths of each encoding are fine.
        assert_eq!(
            parse(&[0x82, 0x7e, 0x00, 0x7e])
                .unwrap()
                .unwrap()
                .0
                .payload_len,
            126
        );
        assert_eq!(
            parse(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0])
                .unwrap()
                .unwrap()
                .0
                .payload_len,
            0x1_0000
        );
    }

    #[test]
    fn length_with_top_bit_is_rejected() {
        assert_eq!(
            parse(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(WebSocketError::LengthHighBit(1 << 63))
        );
    }

    #[test]
    fn control_frames_must_be_short_and_final() {
        assert_eq!(
            parse(&[0x09]),
            Err(WebSocketError::FragmentedControlFrame(Opcode::Ping))
        );
        assert_eq!(
            parse(&[0x88, 0x7e, 0x00, 0x7e]),
            Err(WebSocketError::ControlFrameTooLong(126))
        );
        assert_eq!(parse(&[0x8a, 0x7d]).unwrap().unwrap().0.payload_len, 125);
    }

    #[test]
    fn encode_picks_the_minimal_length_and_parses_back() {
        for (len, header_len) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (0xffff, 4),
            (0x1_0000, 10),
        ] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = FrameHeader {
                    fin: len % 2 == 0,
                    opcode: Opcode::Binary,
                    mask,
                    payload_len: len,
                };
                let mut dst = BytesMut::new();
                h.encode(&mut dst);
                let expect = header_len + if mask.is_some() { 4 } else { 0 };
                assert_eq!(dst.len(), expect);
                assert_eq!(h.encoded_len(), expect);
                assert_eq!(parse(&dst), Ok(Some((h, expect))));
            }
        }
    }
}
