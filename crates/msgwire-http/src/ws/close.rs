//! Why a socket closes, as the close frame the server sends (RFC 6455 section 7.4.1).
//!
//! | the peer sent | code | reason sent |
//! |---|---|---|
//! | a close frame | its own code (an empty close: an empty close) | — |
//! | an unmasked frame, RSV bits, a reserved opcode, a control frame over 125 bytes or fragmented, a bad length encoding, a continuation out of place, a bad close payload | 1002 protocol error | the framing's error |
//! | a text message or a close reason that is not UTF-8 | 1007 invalid data | the framing's error |
//! | a text message (valid UTF-8) | 1003 unsupported data | `msgpack-rpc over WebSocket takes binary messages` |
//! | a binary message that is not exactly one MessagePack value, or whose first message is not a msgpack-rpc array | 1007 invalid data | what is wrong with it |
//! | a message (all its fragments) over `max_message`, or a value nested past `max_depth` | 1009 message too big | the limit |
//! | more than `max_fragments` fragments in one message | 1008 policy violation | the limit |
//!
//! | the server's side | code |
//! |---|---|
//! | the peer did not answer a ping within `pong_timeout` (nor sent anything else) | 1011 internal error, as Python `websockets` does for a keepalive timeout |
//! | the server shuts down (`WsConfig::shutdown` fired) | 1001 going away |
//! | the RPC connection ended on its own (its idle timeout) | 1000 normal |
//! | the RPC connection failed | 1011 internal error |

use bytes::BytesMut;
use msgwire_frame::websocket::{CloseFrame, Opcode, WebSocketError};

use super::bridge::put_header;

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The server is going away (shutting down).
pub const GOING_AWAY: u16 = 1001;
/// The peer broke the framing rules.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A kind of message the endpoint cannot take (text, here).
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A message whose content is not what its type promises.
pub const INVALID_DATA: u16 = 1007;
/// A message that breaks a policy of the server (too many fragments).
pub const POLICY_VIOLATION: u16 = 1008;
/// A message too big to take.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The server cannot go on (a peer that stopped answering pings, a failed connection).
pub const INTERNAL_ERROR: u16 = 1011;

/// A close the server starts: its code and a reason (at most 123 bytes of UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Closing {
    pub(super) code: u16,
    pub(super) reason: String,
}

impl Closing {
    pub(super) fn new(code: u16, reason: impl Into<String>) -> Closing {
        Closing {
            code,
            reason: reason.into(),
        }
    }

    /// The close for a frame the decoder refused.
    pub(super) fn for_frame_error(error: &msgwire_frame::Error) -> Closing {
        let code = match error {
            msgwire_frame::Error::WebSocket(e) => e.close_code(),
            msgwire_frame::Error::TooLong { .. } => MESSAGE_TOO_BIG,
            _ => PROTOCOL_ERROR,
        };
        Closing::new(code, error.to_string())
    }

    /// The close for a header [`FrameHeader::parse`](msgwire_frame::websocket::FrameHeader::parse) refused.
    pub(super) fn for_header_error(error: WebSocketError) -> Closing {
        Closing::new(error.close_code(), error.to_string())
    }

    /// The whole close frame, unmasked: the code and the reason, cut to what a control
    /// frame holds (at a character boundary).
    pub(super) fn frame(&self) -> BytesMut {
        let mut reason = self.reason.as_str();
        while reason.len() > 123 {
            let mut cut = 123;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason = &reason[..cut];
        }
        let mut payload = BytesMut::with_capacity(125);
        let close = CloseFrame {
            code: self.code,
            reason,
        };
        if close.encode(&mut payload).is_err() {
            // Only codes of this module are used; an empty close is still a close.
            payload.clear();
        }
        control_frame(Opcode::Close, &payload)
    }
}

/// A control frame (at most 125 payload bytes: callers pass a ping's, a pong's or a
/// close payload, all bounded), unmasked.
pub(super) fn control_frame(opcode: Opcode, payload: &[u8]) -> BytesMut {
    let mut frame = BytesMut::with_capacity(2 + payload.len());
    put_header(opcode, payload.len(), &mut frame);
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use msgwire_frame::websocket::{Message, WebSocket};
    use msgwire_frame::Framing;

    #[test]
    fn long_reasons_are_cut_at_a_character() {
        let closing = Closing::new(INVALID_DATA, "é".repeat(100));
        let mut frame = closing.frame();
        let message = WebSocket::client().decode(&mut frame).unwrap().unwrap();
        assert_eq!(message.close_code(), Some(1007));
        assert_eq!(message.close_reason().map(str::len), Some(122));
    }

    #[test]
    fn frame_errors_map_to_their_codes() {
        let too_long = msgwire_frame::Error::TooLong { length: 9, max: 8 };
        assert_eq!(Closing::for_frame_error(&too_long).code, 1009);
        let utf8 = msgwire_frame::Error::WebSocket(WebSocketError::InvalidUtf8);
        assert_eq!(Closing::for_frame_error(&utf8).code, 1007);
        let unmasked = msgwire_frame::Error::WebSocket(WebSocketError::UnmaskedFrame);
        assert_eq!(Closing::for_frame_error(&unmasked).code, 1002);
        let mut pong = control_frame(Opcode::Pong, b"x");
        let message = WebSocket::client().decode(&mut pong).unwrap();
        assert_eq!(message, Some(Message::pong(&b"x"[..])));
    }
}
