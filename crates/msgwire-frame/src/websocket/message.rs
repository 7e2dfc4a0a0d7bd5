//! [`Message`]: one whole WebSocket message (fragments reassembled) or control frame.

use bytes::{BufMut, Bytes, BytesMut};

use super::Opcode;

/// A whole message as the decoder hands it out and the encoder takes it: a text or
/// binary message (all its fragments joined), or a close, ping or pong frame.
///
/// `opcode` is never [`Opcode::Continuation`] in a decoded message, and the encoder
/// refuses it. A decoded text message's payload is valid UTF-8, and a decoded close
/// frame's payload is empty or a valid code and a UTF-8 reason.
///
/// ```
/// use msgwire_frame::websocket::{Message, Opcode};
///
/// let m = Message::text("hi");
/// assert_eq!(m.opcode, Opcode::Text);
/// assert_eq!(m.as_text(), Some("hi"));
/// let c = Message::close(1000, "bye");
/// assert_eq!(c.close_code(), Some(1000));
/// assert_eq!(c.close_reason(), Some("bye"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Text, binary, close, ping or pong.
    pub opcode: Opcode,
    /// The payload, unmasked.
    pub payload: Bytes,
}

impl Message {
    /// A message with this opcode and payload.
    pub fn new(opcode: Opcode, payload: impl Into<Bytes>) -> Self {
        Message {
            opcode,
            payload: payload.into(),
        }
    }

    /// A binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Self::new(Opcode::Binary, payload)
    }

    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(Opcode::Text, text.into())
    }

    /// A ping (at most 125 bytes, or the encoder refuses it).
    pub fn ping(payload: impl Into<Bytes>) -> Self {
        Self::new(Opcode::Ping, payload)
    }

    /// A pong (at most 125 bytes, or the encoder refuses it).
    pub fn pong(payload: impl Into<Bytes>) -> Self {
        Self::new(Opcode::Pong, payload)
    }

    /// A close frame with a status code and a reason. The encoder refuses a code that
    /// [`is_valid_close_code`](super::is_valid_close_code) rejects or a reason over 123
    /// bytes.
    pub fn close(code: u16, reason: &str) -> Self {
        let mut payload = BytesMut::with_capacity(2 + reason.len());
        payload.put_u16(code);
        payload.put_slice(reason.as_bytes());
        Self::new(Opcode::Close, payload.freeze())
    }

    /// A close frame without a status code (an empty payload).
    pub fn empty_close() -> Self {
        Self::new(Opcode::Close, Bytes::new())
    }

    /// Close, ping or pong.
    pub fn is_control(&self) -> bool {
        self.opcode.is_control()
    }

    /// The text of a text message; `None` for other opcodes (or a text message built by
    /// hand with a payload that is not UTF-8).
    pub fn as_text(&self) -> Option<&str> {
        match self.opcode {
            Opcode::Text => std::str::from_utf8(&self.payload).ok(),
            _ => None,
        }
    }

    /// The status code of a close frame; `None` for other opcodes and for a close frame
    /// without a code.
    pub fn close_code(&self) -> Option<u16> {
        match (self.opcode, &self.payload[..]) {
            (Opcode::Close, [hi, lo, ..]) => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }

    /// The reason of a close frame that has a status code (possibly empty); `None`
    /// otherwise or if the reason is not UTF-8.
    pub fn close_reason(&self) -> Option<&str> {
        match (self.opcode, &self.payload[..]) {
            (Opcode::Close, [_, _, reason @ ..]) => std::str::from_utf8(reason).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(Message::binary(&b"\x00\x01"[..]).opcode, Opcode::Binary);
        assert_eq!(Message::binary(vec![1u8]).as_text(), None);
        assert_eq!(Message::text(String::from("x")).as_text(), Some("x"));
        assert_eq!(Message::ping(&b"p"[..]).opcode, Opcode::Ping);
        assert_eq!(Message::pong(&b"p"[..]).opcode, Opcode::Pong);
        assert!(Message::pong(Bytes::new()).is_control());
        assert_eq!(&Message::close(1001, "gone").payload[..], b"\x03\xe9gone");
        assert_eq!(Message::empty_close().close_code(), None);
        assert_eq!(Message::empty_close().close_reason(), None);
        assert_eq!(Message::close(4000, "").close_reason(), Some(""));
        assert_eq!(Message::ping(&b"\x03\xe8"[..]).close_code(), None);
    }
}
