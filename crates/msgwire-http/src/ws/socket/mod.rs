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
//! See [`close`](super::close) for which close code answers what. The frames' side
//! is in [`frames`], the timers' in [`timers`].

mod frames;
mod timers;

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use msgwire_frame::msgpack::MsgpackScanner;
use msgwire_frame::websocket::{Role, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::bridge::{Link, OUT_HIGH};
use super::close::{self, Closing};
use super::outgoing::Outgoing;
use super::WsConfig;

/// What a read is offered at first, and at least: an idle socket holds a buffer of
/// about this size.
const MIN_READ: usize = 16 * 1024;

/// What a read is offered at most. A read that fills what it was offered doubles the
/// next one's room, up to this; one that brings less than a quarter halves it.
const MAX_READ: usize = 256 * 1024;

/// How far beyond the bytes that arrived the buffer grows toward a frame a header
/// announced (then it doubles with what arrives): a stalled 16 MiB header costs this.
const RESERVE_AHEAD: usize = 32 * 1024;

/// Echoed payloads shorter than this are copied into the output buffer; longer ones
/// are written from their own bytes (a slice of their own in a vectored write).
const COPY_BELOW: usize = 2048;

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
    /// What the next read is offered (see [`MAX_READ`]).
    read_size: usize,
    /// Frames being written; the front may be partly written.
    output: Outgoing,
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
            read_size: MIN_READ,
            output: Outgoing::default(),
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
        if self.poll_output(cx).is_err() {
            self.phase = Phase::Done;
            return Poll::Ready(());
        }
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
        if self.input.is_empty() && self.input.capacity() > 2 * self.read_size {
            // A burst is over: let its large buffer go.
            self.input = BytesMut::new();
        }
        if self.input.capacity() - self.input.len() < self.read_size / 2 {
            self.input.reserve(self.read_size);
        }
        let offered = self.input.capacity() - self.input.len();
        let read = pin!(self.io.read_buf(&mut self.input));
        let n = match read.poll(cx) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if n == offered {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if n < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(MIN_READ);
        }
        Poll::Ready(Ok(()))
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

    /// Queues a ping or pong: in the echo mode after the echoes so far, in the RPC mode
    /// at the bridge's next frame boundary.
    fn send_control(&mut self, frame: &[u8]) {
        match self.mode {
            Mode::Echo => self.output.tail().extend_from_slice(frame),
            Mode::Rpc => self.link.send_control(frame),
        }
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
            self.backlog = self.link.take_frames(&mut self.output, cx);
            if self.output.is_empty() {
                break;
            }
            match self.output.poll_write(&mut self.io, cx) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(_)) => self.unflushed = true,
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
}
