//! The socket task: the WebSocket protocol, server role, on an upgraded byte stream.
//!
//! One hand-written poll loop owns the stream, so reading and writing never wait on
//! each other and need no lock or split:
//!
//! ```text
//!   poll ─► write: take the bridge's frames, write them (one write for all that are ready)
//!        ─► time: send a ping, give up on a silent peer, end a close that took too long
//!        ─► read: while the bridge has room and the output is not backed up, read, then
//!                 take each whole frame: check its header (fragments, size) before its
//!                 payload is buffered, decode it, act on the message
//!        ─► until nothing more can be done: Pending
//! ```
//!
//! Frames are checked one at a time: the header is parsed here first (so that the
//! fragments of a message can be counted, which the decoder does not expose), the
//! message's size is checked before its payload is waited for, and the decoder is
//! handed the buffered frame. A final frame is decoded in place; a non-final fragment is
//! split off first, so that the decoder never runs ahead into the next, uncounted
//! frame.
//!
//! See [`close`](super::close) for which close code answers what.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use msgwire_frame::msgpack::{MsgpackError, MsgpackScanner, Scan};
use msgwire_frame::websocket::{FrameHeader, Message, Opcode, Role, WebSocket};
use msgwire_frame::Framing;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::bridge::{put_header, Link, OUT_HIGH};
use super::close::{self, control_frame, Closing};
use super::WsConfig;

/// What a read is offered at least.
const READ_CHUNK: usize = 64 * 1024;

/// How far beyond the bytes that arrived the buffer grows toward a frame a header
/// announced (then it doubles with what arrives): a stalled 16 MiB header costs this.
const RESERVE_AHEAD: usize = 32 * 1024;

/// After reading this much in one poll the task yields, so that one busy peer does not
/// hold its worker.
const READ_BUDGET: usize = 512 * 1024;

/// What the socket does with the peer's data messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Each binary message is one msgpack-rpc message for the bridge.
    Rpc,
    /// Each text or binary message is sent back as it came.
    Echo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// A close frame is queued. `drain`: the peer broke the framing, so what it sends
    /// is read and dropped, never parsed, until it closes or the deadline.
    Closing {
        deadline: Instant,
        peer_closed: bool,
        drain: bool,
    },
    Done,
}

/// The socket's state; [`poll`](Self::poll) drives it.
pub(super) struct Socket<IO> {
    io: IO,
    link: Link,
    mode: Mode,
    config: WsConfig,
    decoder: WebSocket,
    scanner: MsgpackScanner,
    input: BytesMut,
    /// Frames being written; the front may be partly written.
    output: BytesMut,
    /// Output the bridge holds besides `output`, as last seen.
    backlog: usize,
    /// Messages for the bridge, handed over once per poll.
    delivered: Vec<Bytes>,
    /// Messages were handed over since [`handed_over`](Self::handed_over) last asked.
    handed: bool,
    /// The data message in progress: its fragments so far and their length.
    fragments: usize,
    message_len: usize,
    /// No binary message taken yet (the first must be a msgpack-rpc array).
    first: bool,
    phase: Phase,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    pings: u64,
    shutdown: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Something was written since the last flush.
    unflushed: bool,
    write_shut: bool,
    read_eof: bool,
}

impl<IO> std::fmt::Debug for Socket<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("mode", &self.mode)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Socket<IO> {
    pub(super) fn new(io: IO, link: Link, mode: Mode, config: WsConfig) -> Self {
        let decoder = WebSocket::builder(Role::Server)
            .max_frame_length(config.max_message)
            .max_message_length(config.max_message)
            .build();
        let scanner = MsgpackScanner::with_limits(config.max_depth, config.max_message);
        let now = Instant::now();
        let next_ping = config.ping_interval.map(|every| now + every);
        let shutdown = config
            .shutdown
            .clone()
            .map(|token| Box::pin(token.cancelled_owned()));
        Socket {
            io,
            link,
            mode,
            decoder,
            scanner,
            input: BytesMut::new(),
            output: BytesMut::new(),
            backlog: 0,
            delivered: Vec::new(),
            handed: false,
            fragments: 0,
            message_len: 0,
            first: true,
            phase: Phase::Open,
            timer: Box::pin(tokio::time::sleep_until(now + Duration::from_secs(3600))),
            timer_at: None,
            next_ping,
            pong_deadline: None,
            pings: 0,
            shutdown,
            unflushed: false,
            write_shut: false,
            read_eof: false,
            config,
        }
    }

    /// The RPC connection ended: the socket closes too (1000 if it ended in order).
    pub(super) fn rpc_ended(&mut self, result: io::Result<()>) {
        let closing = match result {
            Ok(()) => Closing::new(close::NORMAL, ""),
            Err(e) => Closing::new(close::INTERNAL_ERROR, format!("rpc: {e}")),
        };
        self.begin_close(closing, false);
    }

    /// Whether messages were handed to the bridge since the last call.
    pub(super) fn handed_over(&mut self) -> bool {
        std::mem::take(&mut self.handed)
    }

    /// Runs until the socket is done (closed both ways, failed, or timed out).
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut read = 0;
        loop {
            if self.poll_output(cx).is_err() {
                self.phase = Phase::Done;
            }
            self.poll_time(cx);
            if self.phase == Phase::Done {
                return Poll::Ready(());
            }
            if self.closed_both_ways() {
                return match self.poll_shut(cx) {
                    Poll::Ready(()) => Poll::Ready(()),
                    Poll::Pending => Poll::Pending,
                };
            }
            if !self.may_read(cx) {
                break;
            }
            let before = self.input.len();
            match self.poll_read(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => break,
            }
            let n = self.input.len() - before;
            read += n;
            if n == 0 {
                // The peer is gone; without its close frame this is an abnormal close
                // (1006 for its side): nothing more to do either way.
                self.read_eof = true;
                self.link.end_inbound();
                if self.phase == Phase::Open {
                    return Poll::Ready(());
                }
                continue;
            }
            // Anything from the peer proves it is there.
            self.pong_deadline = None;
            self.take_frames();
            self.hand_over();
            if read >= READ_BUDGET {
                cx.waker().wake_by_ref();
                break;
            }
        }
        self.hand_over();
        let _ = self.poll_output(cx);
        Poll::Pending
    }

    /// Whether to read now; when not, something that will wake the task is registered
    /// (the bridge's reader, the socket's write, or nothing at all when done reading).
    fn may_read(&mut self, cx: &Context<'_>) -> bool {
        if self.read_eof {
            return false;
        }
        if let Phase::Closing {
            peer_closed: true, ..
        } = self.phase
        {
            return false;
        }
        if self.output.len() + self.backlog >= OUT_HIGH {
            // The peer is not reading what it asked for: stop reading it. The pending
            // write wakes the task.
            return false;
        }
        self.mode == Mode::Echo || self.phase != Phase::Open || self.link.inbound_room(cx)
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
            self.input.reserve(READ_CHUNK);
        }
        let read = pin!(self.io.read_buf(&mut self.input));
        read.poll(cx).map_ok(|_| ())
    }

    /// Takes every whole frame in `input`.
    fn take_frames(&mut self) {
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
                self.output
                    .reserve(FrameHeader::MAX_LEN + message.payload.len());
                put_header(message.opcode, message.payload.len(), &mut self.output);
                self.output.extend_from_slice(&message.payload);
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
                    self.link
                        .send_control(&control_frame(Opcode::Pong, &message.payload));
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

    /// Queues our close frame and stops taking messages; `drain` when the peer broke
    /// the framing.
    fn begin_close(&mut self, closing: Closing, drain: bool) {
        if self.phase != Phase::Open {
            return;
        }
        tracing::debug!(code = closing.code, reason = %closing.reason, "closing a WebSocket");
        self.link.close_output(&closing.frame());
        self.link.end_inbound();
        self.phase = Phase::Closing {
            deadline: Instant::now() + self.config.close_timeout,
            peer_closed: false,
            drain,
        };
    }

    /// Hands the accepted messages to the bridge in one go.
    fn hand_over(&mut self) {
        if !self.delivered.is_empty() {
            self.link.push(&mut self.delivered);
            self.handed = true;
        }
    }

    /// Writes what is ready; `Err` when the socket failed.
    fn poll_output(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.output.is_empty() {
                self.output.clear();
            }
            self.backlog = self.link.take_frames(&mut self.output, cx);
            if self.output.is_empty() {
                break;
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.output) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    self.output.advance(n);
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(()),
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    /// Whether the close is over on our side (everything written, the peer's close
    /// received or its stream ended): what is left is shutting the stream.
    fn closed_both_ways(&self) -> bool {
        let Phase::Closing { peer_closed, .. } = self.phase else {
            return false;
        };
        let written = self.output.is_empty() && self.backlog == 0 && !self.unflushed;
        written && (peer_closed || self.read_eof) && self.link.backlog() == 0
    }

    /// Shuts the stream's write side (the server closes the TCP connection first,
    /// RFC 6455 section 7.1.1).
    fn poll_shut(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.write_shut {
            match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => self.write_shut = true,
            }
        }
        self.phase = Phase::Done;
        Poll::Ready(())
    }

    /// Pings, the pong timeout, the close timeout and the shutdown signal.
    fn poll_time(&mut self, cx: &mut Context<'_>) {
        if self.phase == Phase::Open {
            if let Some(shutdown) = self.shutdown.as_mut() {
                if shutdown.as_mut().poll(cx).is_ready() {
                    self.shutdown = None;
                    self.begin_close(
                        Closing::new(close::GOING_AWAY, "the server is shutting down"),
                        false,
                    );
                }
            }
        }
        loop {
            let wake_at = match self.phase {
                Phase::Open => match (self.next_ping, self.pong_deadline) {
                    (Some(ping), Some(pong)) => Some(ping.min(pong)),
                    (ping, pong) => ping.or(pong),
                },
                Phase::Closing { deadline, .. } => Some(deadline),
                Phase::Done => None,
            };
            let Some(wake_at) = wake_at else {
                return;
            };
            if self.timer_at != Some(wake_at) {
                self.timer.as_mut().reset(wake_at);
                self.timer_at = Some(wake_at);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return;
            }
            self.timer_at = None;
            // Never before the deadline the timer was set for, so that what was due
            // is done and the next deadline is later.
            self.on_time(Instant::now().max(wake_at));
        }
    }

    fn on_time(&mut self, now: Instant) {
        match self.phase {
            Phase::Open => {
                if self.pong_deadline.is_some_and(|due| due <= now) {
                    self.begin_close(
                        Closing::new(close::INTERNAL_ERROR, "no pong within the timeout"),
                        false,
                    );
                    return;
                }
                if let (Some(due), Some(every)) = (self.next_ping, self.config.ping_interval) {
                    if due <= now {
                        self.pings += 1;
                        let payload = self.pings.to_be_bytes();
                        self.link
                            .send_control(&control_frame(Opcode::Ping, &payload));
                        if self.pong_deadline.is_none() {
                            self.pong_deadline = Some(now + self.config.pong_timeout);
                        }
                        self.next_ping = Some(now + every);
                    }
                }
            }
            Phase::Closing { deadline, .. } if deadline <= now => self.phase = Phase::Done,
            _ => {}
        }
    }
}
