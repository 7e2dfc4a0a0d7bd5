//! WebSocket framing, RFC 6455 section 5: frames in, whole messages out.
//!
//! Every frame is a 2-byte head, an extended length if the payload is 126 bytes or more,
//! a masking key if the MASK bit is set, and the payload:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| payload len |    extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |   16 bits if len == 126,      |
//! |N|V|V|V|       |S|             |   64 bits if len == 127       |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |     masking key (4 bytes, only if MASK)                       |
//! +---------------------------------------------------------------+
//! |     payload (XORed with the masking key if MASK)          ... |
//! +---------------------------------------------------------------+
//! ```
//!
//! A text or binary message may be split into fragments: a text/binary frame without
//! FIN, then continuation frames, the last with FIN. Close, ping and pong are control
//! frames: at most 125 bytes, never fragmented, and allowed between the fragments of a
//! data message.
//!
//! [`WebSocket`] implements [`Framing`](crate::Framing) with
//! `Frame = `[`Message`]: it reassembles fragments and hands out each whole text or
//! binary message, and each control frame as soon as it arrives. It enforces, with a
//! typed [`WebSocketError`] for each:
//!
//! * masking by [`Role`]: a [`Role::Server`] rejects unmasked frames, a
//!   [`Role::Client`] rejects masked ones (section 5.1);
//! * RSV1–3 clear (no extensions) and no reserved opcode;
//! * minimal length encodings, and no 64-bit length with the top bit set;
//! * control frames final and at most 125 bytes;
//! * fragment order: no continuation without a message in progress, no new text or
//!   binary frame inside one;
//! * text messages valid UTF-8 — checked fragment by fragment, so a bad byte fails the
//!   stream without waiting for the end of the message (a code point cut between two
//!   fragments is fine);
//! * close payloads empty or a valid [close code](is_valid_close_code) plus a UTF-8
//!   reason.
//!
//! Two limits, set on the [builder](WebSocket::builder), are checked on each frame's
//! header before its payload is buffered, and fail with [`Error::TooLong`](crate::Error::TooLong):
//! `max_frame_length` (one frame's payload, default 16 MiB) and `max_message_length`
//! (a whole message: the fragments so far plus the one announced, default 16 MiB).
//! Within them, room for a frame is reserved as it arrives: at most
//! [`RESERVE_AHEAD`](crate::buffer::RESERVE_AHEAD) beyond the buffered bytes on the
//! header, then the buffer doubles as the payload comes in (see [`buffer`](crate::buffer)),
//! so even with both limits at `usize::MAX` a header announcing 2^44 bytes costs
//! 32 KiB, and a length the machine cannot hold is [`Error::TooLong`](crate::Error::TooLong).
//!
//! Masked payloads are unmasked in place in the input buffer
//! ([`InputBuffer::bytes_mut`](crate::InputBuffer::bytes_mut)), 8 bytes at a time
//! ([`apply_mask`]). The payload is then copied once into the message's `Bytes` (a
//! fragmented message is gathered in one growing buffer and handed out without a
//! further copy).
//!
//! Encoding: `Encode<Message>` writes one final frame — masked with a fresh,
//! unpredictable key in the client role, unmasked in the server role.
//! [`WebSocket::encode_fragmented`] splits a message into fragments, and
//! [`encode_frame`] writes any single frame.
//!
//! The RFC's own example, a masked "Hello" from a client, read by a server:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{websocket::{Message, Opcode, WebSocket}, Framing};
//!
//! let mut server = WebSocket::server();
//! let mut wire = BytesMut::from(
//!     &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58][..],
//! );
//! let msg = server.decode(&mut wire)?.expect("whole message");
//! assert_eq!(msg.opcode, Opcode::Text);
//! assert_eq!(msg.as_text(), Some("Hello"));
//! assert!(wire.is_empty());
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! A client and a server talking, with a ping between two fragments:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{websocket::{encode_frame, Message, Opcode, WebSocket}, Encode, Framing};
//!
//! let mut client = WebSocket::client();
//! let mut wire = BytesMut::new();
//! encode_frame(false, Opcode::Binary, b"abc", Some([1, 2, 3, 4]), &mut wire)?;
//! client.encode(&Message::ping(&b"are you there"[..]), &mut wire)?;
//! encode_frame(true, Opcode::Continuation, b"def", Some([5, 6, 7, 8]), &mut wire)?;
//!
//! let mut server = WebSocket::server();
//! let ping = server.decode(&mut wire)?.expect("the ping first");
//! assert_eq!(ping, Message::ping(&b"are you there"[..]));
//! assert!(server.is_mid_frame()); // "abc" is waiting for the rest of its message
//! let data = server.decode(&mut wire)?.expect("then the whole message");
//! assert_eq!(data, Message::binary(&b"abcdef"[..]));
//! assert!(!server.is_mid_frame());
//! # Ok::<(), msgwire_frame::Error>(())
//! ```
//!
//! A message over the limit fails on the header of the fragment that crosses it:
//!
//! ```
//! use bytes::BytesMut;
//! use msgwire_frame::{websocket::{encode_frame, Opcode, Role, WebSocket}, Error, Framing};
//!
//! let mut client = WebSocket::builder(Role::Client)
//!     .max_frame_length(100)
//!     .max_message_length(150)
//!     .build();
//! let mut wire = BytesMut::new();
//! encode_frame(false, Opcode::Binary, &[0; 100], None, &mut wire)?;
//! wire.extend_from_slice(&[0x80, 100]); // header of a second 100-byte fragment
//! let err = client.decode(&mut wire).unwrap_err();
//! assert!(matches!(err, Error::TooLong { length: 200, max: 150 }));
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

mod close;
mod decoder;
mod encoder;
mod error;
mod header;
mod mask;
mod message;
#[cfg(test)]
mod tests;

pub use close::{is_valid_close_code, CloseFrame};
pub use decoder::{Role, WebSocket, WebSocketBuilder};
pub use encoder::encode_frame;
pub use error::WebSocketError;
pub use header::{FrameHeader, Opcode, MAX_CONTROL_PAYLOAD};
pub use mask::apply_mask;
pub use message::Message;
