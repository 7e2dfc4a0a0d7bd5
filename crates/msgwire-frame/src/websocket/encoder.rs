//! Writing frames: [`encode_frame`], `Encode<Message>` and fragmented messages.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use bytes::{BufMut, BytesMut};

use super::{
    apply_mask, CloseFrame, FrameHeader, Message, Opcode, Role, WebSocket, WebSocketError,
    MAX_CONTROL_PAYLOAD,
};
use crate::{Encode, Error, Result};

/// Appends one frame: the header (minimal length encoding, RSV bits clear, the MASK bit
/// and key if `mask` is given), then `payload`, masked with `mask` if given.
///
/// This is the low-level writer: it enforces only what a single frame must satisfy
/// (control frames final and at most 125 bytes). Writing a sensible sequence — a text or
/// binary frame, continuations, FIN on the last — is up to the caller; for whole
/// messages use [`WebSocket`]'s `Encode<Message>` or
/// [`WebSocket::encode_fragmented`].
///
/// RFC 6455 section 5.7, "Hello" masked with `37 fa 21 3d`:
///
/// ```
/// use bytes::BytesMut;
/// use msgwire_frame::websocket::{encode_frame, Opcode};
///
/// let mut dst = BytesMut::new();
/// encode_frame(true, Opcode::Text, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]), &mut dst)?;
/// assert_eq!(&dst[..], [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// # Ok::<(), msgwire_frame::Error>(())
/// ```
pub fn encode_frame(
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    dst: &mut BytesMut,
) -> Result<()> {
    if opcode.is_control() {
        if !fin {
            return Err(WebSocketError::FragmentedControlFrame(opcode).into());
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(WebSocketError::ControlFrameTooLong(payload.len() as u64).into());
        }
    }
    let header = FrameHeader {
        fin,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    dst.reserve(header.encoded_len() + payload.len());
    header.encode(dst);
    let start = dst.len();
    dst.put_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut dst[start..], key);
    }
    Ok(())
}

/// Masking keys for a client: unpredictable to anyone watching the wire (RFC 6455
/// section 10.3), without a new dependency.
///
/// Each key is 32 bits of `RandomState::hash_one(counter)`: the standard library's
/// `RandomState` is seeded from the operating system's random source, and its hasher
/// (SipHash-1-3 today) is a keyed pseudo-random function, so successive keys cannot be
/// guessed from earlier ones without the 128-bit seed. The standard library does not
/// promise the algorithm or that it is cryptographic; use a CSPRNG-backed encoder if
/// that guarantee is needed. A clone gets a fresh seed, so two clones never repeat each
/// other's keys.
#[derive(Debug)]
pub(super) struct MaskKeys {
    seed: RandomState,
    counter: u64,
}

impl MaskKeys {
    pub(super) fn new() -> Self {
        MaskKeys {
            seed: RandomState::new(),
            counter: 0,
        }
    }

    pub(super) fn next_key(&mut self) -> [u8; 4] {
        self.counter = self.counter.wrapping_add(1);
        let hash = self.seed.hash_one(self.counter);
        ((hash ^ (hash >> 32)) as u32).to_ne_bytes()
    }
}

impl Clone for MaskKeys {
    fn clone(&self) -> Self {
        MaskKeys::new()
    }
}

impl WebSocket {
    /// The mask for the next frame this endpoint writes: a fresh key for a client, none
    /// for a server.
    fn next_mask(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => Some(self.keys.next_key()),
            Role::Server => None,
        }
    }

    /// Checks everything a peer with the same limits would check, before any byte is
    /// written.
    fn check_message(&self, msg: &Message) -> Result<()> {
        let len = msg.payload.len();
        match msg.opcode {
            Opcode::Continuation => {
                return Err(Error::Encode(
                    "a message cannot have the continuation opcode",
                ))
            }
            Opcode::Text => {
                if std::str::from_utf8(&msg.payload).is_err() {
                    return Err(WebSocketError::InvalidUtf8.into());
                }
            }
            Opcode::Binary => {}
            Opcode::Close | Opcode::Ping | Opcode::Pong => {
                if len > MAX_CONTROL_PAYLOAD {
                    return Err(WebSocketError::ControlFrameTooLong(len as u64).into());
                }
                if msg.opcode == Opcode::Close {
                    CloseFrame::parse(&msg.payload)?;
                }
            }
        }
        if len > self.max_message {
            return Err(Error::TooLong {
                length: len as u64,
                max: self.max_message as u64,
            });
        }
        Ok(())
    }

    /// Writes `msg` as fragments of at most `fragment_size` payload bytes each (one
    /// frame if it fits, or if it is empty). Control messages cannot be fragmented and
    /// are written as one frame. Each frame gets its own masking key in the client role.
    ///
    /// Fails, writing nothing, on what [`encode`](Encode::encode) refuses, on a
    /// `fragment_size` of 0, or if a fragment would be over `max_frame_length`.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use msgwire_frame::websocket::{Message, WebSocket};
    ///
    /// let mut server = WebSocket::server();
    /// let mut dst = BytesMut::new();
    /// server.encode_fragmented(&Message::text("Hello"), 3, &mut dst)?;
    /// // RFC 6455 section 5.7: "Hel" in a text frame, "lo" in a final continuation.
    /// assert_eq!(&dst[..], b"\x01\x03Hel\x80\x02lo");
    /// # Ok::<(), msgwire_frame::Error>(())
    /// ```
    pub fn encode_fragmented(
        &mut self,
        msg: &Message,
        fragment_size: usize,
        dst: &mut BytesMut,
    ) -> Result<()> {
        self.check_message(msg)?;
        if fragment_size == 0 {
            return Err(Error::Encode("fragment size must be at least 1"));
        }
        let payload = &msg.payload[..];
        if msg.opcode.is_control() || payload.len() <= fragment_size {
            return self.encode_one(msg.opcode, payload, dst);
        }
        if fragment_size > self.max_frame {
            return Err(Error::TooLong {
                length: fragment_size as u64,
                max: self.max_frame as u64,
            });
        }
        let count = payload.len().div_ceil(fragment_size);
        dst.reserve(payload.len() + count * FrameHeader::MAX_LEN);
        for (i, fragment) in payload.chunks(fragment_size).enumerate() {
            let opcode = if i == 0 {
                msg.opcode
            } else {
                Opcode::Continuation
            };
            let mask = self.next_mask();
            encode_frame(i + 1 == count, opcode, fragment, mask, dst)?;
        }
        Ok(())
    }

    fn encode_one(&mut self, opcode: Opcode, payload: &[u8], dst: &mut BytesMut) -> Result<()> {
        if payload.len() > self.max_frame {
            return Err(Error::TooLong {
                length: payload.len() as u64,
                max: self.max_frame as u64,
            });
        }
        let mask = self.next_mask();
        encode_frame(true, opcode, payload, mask, dst)
    }
}

impl Encode<Message> for WebSocket {
    /// Writes `msg` as one final frame, masked with a fresh key in the client role and
    /// unmasked in the server role.
    ///
    /// Refuses, writing nothing: the continuation opcode, a text payload that is not
    /// UTF-8, a control payload over 125 bytes, a close payload a peer would reject, and
    /// a payload over `max_frame_length` or `max_message_length` ([`Error::TooLong`]).
    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<()> {
        self.check_message(msg)?;
        self.encode_one(msg.opcode, &msg.payload, dst)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn encoded(ws: &mut WebSocket, msg: &Message) -> Result<BytesMut> {
        let mut dst = BytesMut::new();
        ws.encode(msg, &mut dst)?;
        Ok(dst)
    }

    #[test]
    fn rfc_6455_unmasked_hello() {
        let wire = encoded(&mut WebSocket::server(), &Message::text("Hello")).unwrap();
        assert_eq!(&wire[..], [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc_6455_masked_hello() {
        let mut dst = BytesMut::new();
        encode_frame(
            true,
            Opcode::Text,
            b"Hello",
            Some([0x37, 0xfa, 0x21, 0x3d]),
            &mut dst,
        )
        .unwrap();
        assert_eq!(
            &dst[..],
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn rfc_6455_fragmented_hello() {
        let mut dst = BytesMut::new();
        WebSocket::server()
            .encode_fragmented(&Message::text("Hello"), 3, &mut dst)
            .unwrap();
        assert_eq!(
            &dst[..],
            [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        );
    }

    #[test]
    fn rfc_6455_ping_and_pong() {
        let ping = encoded(&mut WebSocket::server(), &Message::ping(&b"Hello"[..])).unwrap();
        assert_eq!(&ping[..], [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let mut pong = BytesMut::new();
        encode_frame(
            true,
            Opcode::Pong,
            b"Hello",
            Some([0x37, 0xfa, 0x21, 0x3d]),
            &mut pong,
        )
        .unwrap();
        assert_eq!(
            &pong[..],
            [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn rfc_6455_256_bytes_and_64_kib_binary() {
        let wire = encoded(&mut WebSocket::server(), &Message::binary(vec![0u8; 256])).unwrap();
        assert_eq!(&wire[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(wire.len(), 4 + 256);
        let wire = encoded(&mut WebSocket::server(), &Message::binary(vec![0u8; 65536])).unwrap();
        assert_eq!(
            &wire[..10],
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(wire.len(), 10 + 65536);
    }

    #[test]
    fn client_masks_with_fresh_keys() {
        let mut client = WebSocket::client();
        let a = encoded(&mut client, &Message::binary(vec![0u8; 8])).unwrap();
        let b = encoded(&mut client, &Message::binary(vec![0u8; 8])).unwrap();
        assert_eq!(a[1], 0x88, "MASK bit and length 8");
        // A zero payload masked is the key repeated.
        assert_eq!(&a[2..6], &a[6..10]);
        assert_eq!(&a[2..6], &a[10..14]);
        assert_ne!(&a[2..6], &b[2..6], "a new key per frame");
        let mut clone = client.clone();
        let c = encoded(&mut clone, &Message::binary(vec![0u8; 8])).unwrap();
        let d = encoded(&mut client, &Message::binary(vec![0u8; 8])).unwrap();
        assert_ne!(
            &c[2..6],
            &d[2..6],
            "a clone does not repeat the original's keys"
        );
    }

    #[test]
    fn control_payload_over_125_is_refused() {
        let mut ws = WebSocket::server();
        for msg in [
            Message::ping(vec![0u8; 126]),
            Message::pong(vec![0u8; 126]),
            Message::close(1000, &"x".repeat(124)),
        ] {
            let mut dst = BytesMut::new();
            assert!(matches!(
                ws.encode(&msg, &mut dst),
                Err(Error::WebSocket(WebSocketError::ControlFrameTooLong(126)))
            ));
            assert!(dst.is_empty(), "nothing half-written");
        }
        let mut dst = BytesMut::new();
        assert!(matches!(
            encode_frame(true, Opcode::Ping, &[0u8; 126], None, &mut dst),
            Err(Error::WebSocket(WebSocketError::ControlFrameTooLong(126)))
        ));
        assert!(matches!(
            encode_frame(false, Opcode::Close, b"", None, &mut dst),
            Err(Error::WebSocket(WebSocketError::FragmentedControlFrame(
                Opcode::Close
            )))
        ));
        assert!(dst.is_empty());
    }

    #[test]
    fn bad_messages_are_refused() {
        let mut ws = WebSocket::server();
        let mut dst = BytesMut::new();
        let cont = Message::new(Opcode::Continuation, Bytes::new());
        assert!(matches!(ws.encode(&cont, &mut dst), Err(Error::Encode(_))));
        let bad_text = Message::new(Opcode::Text, &b"\xff"[..]);
        assert!(matches!(
            ws.encode(&bad_text, &mut dst),
            Err(Error::WebSocket(WebSocketError::InvalidUtf8))
        ));
        assert!(matches!(
            ws.encode(&Message::close(1005, ""), &mut dst),
            Err(Error::WebSocket(WebSocketError::InvalidCloseCode(1005)))
        ));
        assert!(matches!(
            ws.encode_fragmented(&Message::binary(vec![1u8; 4]), 0, &mut dst),
            Err(Error::Encode(_))
        ));
        assert!(dst.is_empty());
    }

    #[test]
    fn limits_apply_to_the_encoder() {
        let mut ws = WebSocket::builder(Role::Server)
            .max_frame_length(4)
            .max_message_length(6)
            .build();
        let mut dst = BytesMut::new();
        assert!(matches!(
            ws.encode(&Message::binary(vec![0u8; 5]), &mut dst),
            Err(Error::TooLong { length: 5, max: 4 })
        ));
        assert!(matches!(
            ws.encode_fragmented(&Message::binary(vec![0u8; 7]), 2, &mut dst),
            Err(Error::TooLong { length: 7, max: 6 })
        ));
        assert!(matches!(
            ws.encode_fragmented(&Message::binary(vec![0u8; 6]), 5, &mut dst),
            Err(Error::TooLong { length: 5, max: 4 })
        ));
        assert!(dst.is_empty());
        ws.encode_fragmented(&Message::binary(vec![0u8; 6]), 4, &mut dst)
            .unwrap();
        assert_eq!(&dst[..], b"\x02\x04\0\0\0\0\x80\x02\0\0");
    }

    #[test]
    fn fragmented_control_and_empty_messages_are_one_frame() {
        let mut ws = WebSocket::server();
        let mut dst = BytesMut::new();
        ws.encode_fragmented(&Message::ping(&b"abcdef"[..]), 2, &mut dst)
            .unwrap();
        ws.encode_fragmented(&Message::binary(Bytes::new()), 2, &mut dst)
            .unwrap();
        assert_eq!(&dst[..], b"\x89\x06abcdef\x82\x00");
    }
}
