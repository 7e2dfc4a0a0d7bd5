//! Taking frames off the input: the header checks done here (fragment count, message
//! size — before the payload is waited for), the decoder for the rest, and what each
//! message does.
//!
//! ```text
//!  input: [hdr|payload][hdr|payl..         one frame at a time:
//!          │  parse ─► fragments ≤ max? total ≤ max_message? ─► all here? ─► decode
//!          └ a whole binary message in one masked frame: unmasked in place, no copy
//! ```

use bytes::Buf;
use msgwire_frame::msgpack::{MsgpackError, Scan};
use msgwire_frame::websocket::{apply_mask, FrameHeader, Message, Opcode};
use msgwire_frame::Framing;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::super::bridge::put_header;
use super::super::close::{self, control_frame, Closing};
use super::{Mode, Phase, Socket, COPY_BELOW, RESERVE_AHEAD};

impl<IO: AsyncRead + AsyncWrite + Unpin> Socket<IO> {
    /// Takes every whole frame in `input`.
    pub(super) fn take_frames(&mut self) {
        loop {
            if let Phase::Closing { drain: true, .. } = self.phase {
                self.input.clear();
                return;
            }
            if let Phase::Closing {
                peer_closed: true, ..
            } = self.phase
            {
                self.input.clear();
                return;
            }
            match self.next_frame() {
                Ok(true) => {}
                Ok(false) => return,
                Err(closing) => {
                    self.begin_close(closing, true);
                    return;
                }
            }
        }
    }

    /// Takes the frame at the front of `input`: `Ok(false)` if it is not all there.
    fn next_frame(&mut self) -> Result<bool, Closing> {
        let Some((header, header_len)) =
            FrameHeader::parse(&self.input).map_err(Closing::for_header_error)?
        else {
            return Ok(false);
        };
        let payload_len = header.payload_len;
        let mut counted = None;
        if !header.opcode.is_control() {
            let continuing = header.opcode == Opcode::Continuation;
            let (fragments, so_far) = if continuing {
                (self.fragments + 1, self.message_len)
            } else {
                (1, 0)
            };
            if fragments > self.config.max_fragments {
                return Err(Closing::new(
                    close::POLICY_VIOLATION,
                    format!(
                        "more than {} fragments in one message",
                        self.config.max_fragments
                    ),
                ));
            }
            let total = (so_far as u64).saturating_add(payload_len);
            if total > self.config.max_message as u64 {
                return Err(Closing::new(
                    close::MESSAGE_TOO_BIG,
                    format!(
                        "a message of {total} bytes or more; the limit is {}",
                        self.config.max_message
                    ),
                ));
            }
            // Within max_message, a usize.
            counted = Some((fragments, total as usize));
        }
        // A control payload is at most 125 bytes; a data payload passed the limit.
        let frame_len = header_len + payload_len as usize;
        let have = self.input.len();
        if have < frame_len {
            let missing = frame_len - have;
            self.input.reserve(missing.min(have.max(RESERVE_AHEAD)));
            return Ok(false);
        }
        if let Some((fragments, total)) = counted {
            if header.fin {
                (self.fragments, self.message_len) = (0, 0);
            } else {
                (self.fragments, self.message_len) = (fragments, total);
            }
        }
        if let (true, Opcode::Binary, Some(key), 0) =
            (header.fin, header.opcode, header.mask, self.fragments)
        {
            // The common case, a whole binary message in one masked frame with none in
            // progress: everything the decoder would check was checked above (the
            // header by `parse`, masking, order, length), so the payload is unmasked
            // in place and handed out without a copy.
            let mut frame = self.input.split_to(frame_len);
            frame.advance(header_len);
            apply_mask(&mut frame, key);
            self.on_message(Message::binary(frame.freeze()))?;
            return Ok(true);
        }
        let decoded = if header.fin {
            // Ends a message or is a control frame: the decoder stops right after it.
            self.decoder.decode(&mut self.input)
        } else {
            let mut frame = self.input.split_to(frame_len);
            self.decoder.decode(&mut frame)
        };
        match decoded {
            Ok(Some(message)) => self.on_message(message)?,
            Ok(None) => {}
            Err(e) => return Err(Closing::for_frame_error(&e)),
        }
        Ok(true)
    }

    fn on_message(&mut self, message: Message) -> Result<(), Closing> {
        let open = self.phase == Phase::Open;
        match message.opcode {
            Opcode::Binary | Opcode::Text if !open => {}
            Opcode::Binary | Opcode::Text if self.mode == Mode::Echo => {
                let len = message.payload.len();
                put_header(message.opcode, len, self.output.tail());
                if len < COPY_BELOW {
                    self.output.tail().extend_from_slice(&message.payload);
                } else {
                    self.output.push(message.payload);
                }
            }
            Opcode::Binary => {
                self.check_rpc_message(&message.payload)?;
                self.delivered.push(message.payload);
            }
            Opcode::Text => {
                return Err(Closing::new(
                    close::UNSUPPORTED_DATA,
                    "msgpack-rpc over WebSocket takes binary messages",
                ))
            }
            Opcode::Ping => {
                if open {
                    self.send_control(&control_frame(Opcode::Pong, &message.payload));
                }
            }
            Opcode::Pong => self.pong_deadline = None,
            Opcode::Close => self.on_close(&message),
            Opcode::Continuation => {}
        }
        Ok(())
    }

    /// A binary message must be exactly one MessagePack value, and the first a
    /// msgpack-rpc message (an array of 3 or 4), so that the RPC side speaks
    /// msgpack-rpc.
    fn check_rpc_message(&mut self, payload: &[u8]) -> Result<(), Closing> {
        if self.first {
            if !matches!(payload.first(), Some(0x93 | 0x94)) {
                return Err(Closing::new(
                    close::INVALID_DATA,
                    "the first message is not a msgpack-rpc message (an array of 3 or 4)",
                ));
            }
            self.first = false;
        }
        let invalid = |what: &str| Closing::new(close::INVALID_DATA, what);
        match self.scanner.scan(payload) {
            Ok(Scan::Complete(n)) if n == payload.len() => Ok(()),
            Ok(Scan::Complete(_)) => Err(invalid(
                "a binary message holds more than one MessagePack value",
            )),
            Ok(Scan::Incomplete { .. }) => {
                self.scanner.reset();
                Err(invalid(
                    "a binary message holds a truncated MessagePack value",
                ))
            }
            Err(msgwire_frame::Error::Msgpack(MsgpackError::TooDeep { .. })) => Err(Closing::new(
                close::MESSAGE_TOO_BIG,
                "a MessagePack value nested too deep",
            )),
            Err(e) => Err(invalid(&format!("not a MessagePack value: {e}"))),
        }
    }

    fn on_close(&mut self, message: &Message) {
        match &mut self.phase {
            Phase::Open => {
                // Echo its code (RFC 6455 section 5.5.1), then close.
                let frame = match message.close_code() {
                    Some(code) => Closing::new(code, "").frame(),
                    None => control_frame(Opcode::Close, &[]),
                };
                self.link.close_output(&frame);
                self.link.end_inbound();
                self.phase = Phase::Closing {
                    deadline: Instant::now() + self.config.close_timeout,
                    peer_closed: true,
                    drain: false,
                };
            }
            Phase::Closing { peer_closed, .. } => *peer_closed = true,
            Phase::Done => {}
        }
    }
}
