//! [`WebSocket`]: the decoder state machine (frames in, whole messages out) and its
//! builder.

use bytes::{Bytes, BytesMut};

use super::encoder::MaskKeys;
use super::{apply_mask, CloseFrame, FrameHeader, Message, Opcode, WebSocketError};
use crate::buffer::{reserve_toward, InputBuffer};
use crate::{Error, Framing, Result, DEFAULT_MAX_FRAME};

/// Which end of the connection this is. It decides masking (RFC 6455 section 5.1): a
/// client masks every frame it sends and a server masks none; each rejects frames from
/// its peer that break the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection: reads masked frames, writes unmasked ones.
    Server,
    /// Opened the connection: reads unmasked frames, writes masked ones.
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a whole frame header.
    Head,
    /// Header parsed and checked (still in the buffer); waiting for the whole payload.
    Payload {
        header: FrameHeader,
        header_len: usize,
        /// Header and payload together.
        frame: usize,
    },
}

/// A fragmented text or binary message whose last fragment has not arrived.
#[derive(Debug, Clone)]
struct Partial {
    /// Text or binary.
    opcode: Opcode,
    /// The unmasked payloads of the fragments so far.
    data: BytesMut,
    /// For text: `data[..validated]` is known to be valid UTF-8; what follows is the
    /// start of a code point cut by the fragment boundary (at most 3 bytes).
    validated: usize,
}

/// WebSocket framing (RFC 6455): see the [module docs](super).
///
/// Decodes frames into whole [`Message`]s and encodes [`Message`]s into frames, for one
/// [`Role`]. Clone gives a decoder in the same state but with its own masking keys.
#[derive(Debug, Clone)]
pub struct WebSocket {
    pub(super) role: Role,
    pub(super) max_frame: usize,
    pub(super) max_message: usize,
    pub(super) keys: MaskKeys,
    state: State,
    partial: Option<Partial>,
    /// Bytes consumed since creation; where the data message in progress began; where
    /// the last message returned began (for `Framing::last_frame_start`).
    consumed: u64,
    message_start: Option<u64>,
    last_start: u64,
}

impl WebSocket {
    /// The server end, with the default limits (16 MiB per frame and per message).
    pub fn server() -> Self {
        Self::builder(Role::Server).build()
    }

    /// The client end, with the default limits (16 MiB per frame and per message).
    pub fn client() -> Self {
        Self::builder(Role::Client).build()
    }

    /// A builder for `role`, starting from the default limits.
    pub fn builder(role: Role) -> WebSocketBuilder {
        WebSocketBuilder {
            role,
            max_frame: DEFAULT_MAX_FRAME,
            max_message: DEFAULT_MAX_FRAME,
        }
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limit on one frame's payload.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame
    }

    /// The limit on a whole message's payload (all fragments together).
    pub fn max_message_length(&self) -> usize {
        self.max_message
    }

    /// Parses and checks the next header: role, fragmentation order, limits. Reserves
    /// room toward the frame (capped, see [`crate::buffer`]) only once its length
    /// passed the limits.
    fn decode_head<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<State>> {
        let Some((header, header_len)) = FrameHeader::parse(buf.bytes())? else {
            return Ok(None);
        };
        match (self.role, header.mask) {
            (Role::Server, None) => return Err(WebSocketError::UnmaskedFrame.into()),
            (Role::Client, Some(_)) => return Err(WebSocketError::MaskedFrame.into()),
            _ => {}
        }
        match (header.opcode, &self.partial) {
            (Opcode::Continuation, None) => {
                return Err(WebSocketError::UnexpectedContinuation.into())
            }
            (op @ (Opcode::Text | Opcode::Binary), Some(_)) => {
                return Err(WebSocketError::MessageInProgress(op).into())
            }
            _ => {}
        }
        let too_long = |length: u64, max: usize| Error::TooLong {
            length,
            max: max as u64,
        };
        if header.payload_len > self.max_frame as u64 {
            return Err(too_long(header.payload_len, self.max_frame));
        }
        if !header.opcode.is_control() {
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len() as u64);
            let message = so_far.checked_add(header.payload_len);
            match message {
                Some(message) if message <= self.max_message as u64 => {}
                _ => return Err(too_long(message.unwrap_or(u64::MAX), self.max_message)),
            }
        }
        // payload_len <= max_frame, a usize; with max_frame near usize::MAX (or on a
        // 32-bit target) header plus payload may still not be one: refuse, never wrap.
        let frame = usize::try_from(header.payload_len)
            .ok()
            .and_then(|payload| header_len.checked_add(payload))
            .ok_or_else(|| too_long(header.payload_len, self.max_frame))?;
        reserve_toward(buf, frame);
        Ok(Some(State::Payload {
            header,
            header_len,
            frame,
        }))
    }

    /// Handles one whole, unmasked frame payload: a message if it completes one.
    fn on_frame(&mut self, header: FrameHeader, payload: &[u8]) -> Result<Option<Message>> {
        let opcode = header.opcode;
        match opcode {
            Opcode::Close | Opcode::Ping | Opcode::Pong => {
                if opcode == Opcode::Close {
                    CloseFrame::parse(payload)?;
                }
                Ok(Some(Message::new(opcode, Bytes::copy_from_slice(payload))))
            }
            Opcode::Text | Opcode::Binary if header.fin => {
                if opcode == Opcode::Text && std::str::from_utf8(payload).is_err() {
                    return Err(WebSocketError::InvalidUtf8.into());
                }
                Ok(Some(Message::new(opcode, Bytes::copy_from_slice(payload))))
            }
            Opcode::Text | Opcode::Binary => {
                let mut partial = Partial {
                    opcode,
                    data: BytesMut::from(payload),
                    validated: 0,
                };
                partial.check_utf8(false)?;
                self.partial = Some(partial);
                Ok(None)
            }
            Opcode::Continuation => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(WebSocketError::UnexpectedContinuation.into());
                };
                partial.data.extend_from_slice(payload);
                partial.check_utf8(header.fin)?;
                if !header.fin {
                    return Ok(None);
                }
                Ok(self
                    .partial
                    .take()
                    .map(|p| Message::new(p.opcode, p.data.freeze())))
            }
        }
    }
}

impl Partial {
    /// Validates the text received so far, failing as soon as an invalid sequence is
    /// seen; a code point cut at the end is accepted unless the message is `complete`.
    fn check_utf8(&mut self, complete: bool) -> Result<(), WebSocketError> {
        if self.opcode != Opcode::Text {
            return Ok(());
        }
        let rest = self.data.get(self.validated..).unwrap_or_default();
        match std::str::from_utf8(rest) {
            Ok(_) => {
                self.validated = self.data.len();
                Ok(())
            }
            Err(e) if e.error_len().is_none() && !complete => {
                self.validated += e.valid_up_to();
                Ok(())
            }
            Err(_) => Err(WebSocketError::InvalidUtf8),
        }
    }
}

impl Framing for WebSocket {
    /// Whole messages; control frames as soon as they arrive, even between the
    /// fragments of a data message.
    type Frame<B: InputBuffer> = Message;

    fn decode<B: InputBuffer>(&mut self, buf: &mut B) -> Result<Option<Message>> {
        loop {
            if self.state == State::Head {
                match self.decode_head(buf)? {
                    Some(state) => self.state = state,
                    None => return Ok(None),
                }
            }
            let State::Payload {
                header,
                header_len,
                frame,
            } = self.state
            else {
                return Ok(None);
            };
            if buf.len() < frame {
                return Ok(None);
            }
            self.state = State::Head;
            let payload = &mut buf.bytes_mut()[header_len..frame];
            if let Some(key) = header.mask {
                apply_mask(payload, key);
            }
            let frame_start = self.consumed;
            if !header.opcode.is_control() && self.message_start.is_none() {
                self.message_start = Some(frame_start);
            }
            let message = self.on_frame(header, payload);
            buf.advance(frame);
            self.consumed += frame as u64;
            if let Some(message) = message? {
                self.last_start = if message.is_control() {
                    frame_start
                } else {
                    self.message_start.take().unwrap_or(frame_start)
                };
                return Ok(Some(message));
            }
        }
    }

    /// True while a fragmented message is incomplete, or a frame's header has been read
    /// but its payload has not all arrived.
    fn is_mid_frame(&self) -> bool {
        self.partial.is_some() || self.state != State::Head
    }

    fn last_frame_start(&self) -> Option<u64> {
        Some(self.last_start)
    }
}

/// Builds a [`WebSocket`]; see the [module docs](super).
#[derive(Debug, Clone)]
pub struct WebSocketBuilder {
    role: Role,
    max_frame: usize,
    max_message: usize,
}

impl WebSocketBuilder {
    /// Limit on one frame's payload (default 16 MiB), checked on the frame header
    /// before any of the payload is buffered. Over it, decoding fails with
    /// [`Error::TooLong`].
    pub fn max_frame_length(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// Limit on a whole message's payload, all fragments together (default 16 MiB).
    /// Checked on each fragment's header: the lengths of the fragments so far plus this
    /// one. Over it, decoding fails with [`Error::TooLong`].
    pub fn max_message_length(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    /// The framing. Every combination of limits is valid.
    pub fn build(self) -> WebSocket {
        WebSocket {
            role: self.role,
            max_frame: self.max_frame,
            max_message: self.max_message,
            keys: MaskKeys::new(),
            state: State::Head,
            partial: None,
            consumed: 0,
            message_start: None,
            last_start: 0,
        }
    }
}
