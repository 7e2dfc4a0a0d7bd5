//! The bridge between one WebSocket and the RPC connection serving it: an in-memory
//! [`AsyncRead`] + [`AsyncWrite`] ([`Bridge`]) that `Server::serve_connection` reads
//! and writes as if it were a socket, and the socket task's handle on it ([`Link`]).
//!
//! ```text
//!          socket task (Link)                 shared (one mutex)          RPC (Bridge)
//!  frames ─► decode, check ─► push ─────► inbound: [msg][msg][msg] ───► poll_read copies
//!                                                                         into its buffer
//!  socket ◄─ write ◄──────── take ◄────── out: [hdr|msg][hdr|msg..  ◄── poll_write_vectored:
//!                                           control: [pong] (waits       scans msgpack,
//!                                           for a frame boundary)        frames each message
//! ```
//!
//! Incoming: each binary message the socket task accepted is queued whole (`Bytes`,
//! no copy); the RPC side's reads copy from the queue into its own buffer — the one copy
//! between the decoder and the RPC's parser.
//!
//! Outgoing: the RPC side writes a byte stream of MessagePack values back to back. The
//! bridge measures each value as it is written ([`MsgpackScanner`], resumable) and puts
//! it into `out` as one unmasked binary frame: a header, then the bytes — the one copy
//! between the RPC's encoder and the socket. A message whose length is not known yet
//! when its write ends waits in `partial`, except in the common case of a large value
//! written from its own bytes (a download chunk, an echo of 64 KiB): once only the
//! payload of the value's last element is missing, the scanner knows where the message
//! ends ([`MsgpackScanner::known_end`]), the header is written at once, and the rest of
//! the message goes straight into `out` as it comes. Control frames (pongs, pings,
//! close) go into `out` only at a frame boundary; until then they wait in `control`.
//!
//! Both directions are bounded. The RPC side's writes wait while `out` and `partial`
//! hold [`OUT_HIGH`] bytes or more, and the socket task stops reading frames while the
//! queue holds [`IN_HIGH`] bytes or more (or while its own output is backed up), so a
//! peer that does not read, or sends faster than the RPC side answers, holds at most a
//! few hundred KiB plus one message.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use msgwire_frame::msgpack::{MsgpackScanner, Scan};
use msgwire_frame::websocket::{FrameHeader, Opcode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::outgoing::Outgoing;

/// The RPC side's writes wait while this much output is waiting for the socket.
pub(super) const OUT_HIGH: usize = 256 * 1024;

/// The socket task stops reading frames while this many bytes of messages wait for the
/// RPC side.
pub(super) const IN_HIGH: usize = 256 * 1024;

/// The least the bridge adds to an unfinished message at a time (see `take_output`).
const FEED: usize = 256;

/// How deep the outgoing scanner follows the RPC side's own messages: far past any
/// depth the RPC side writes.
const OUT_DEPTH: usize = 2 * msgwire_wire::MAX_DEPTH_LIMIT + 2;

/// What the socket task and the RPC side share.
#[derive(Debug)]
struct Shared {
    /// Whole messages from the peer not yet read by the RPC side; the front one may be
    /// partly read.
    inbound: VecDeque<Bytes>,
    inbound_len: usize,
    /// No more messages will come: once the queue is empty the RPC side reads EOF.
    inbound_end: bool,
    /// The RPC side's read, waiting for a message.
    reader: Option<Waker>,
    /// Frames for the socket, oldest first. The last may be incomplete: see
    /// `rest_of_frame`.
    out: BytesMut,
    /// Payload bytes still to come of the frame at the end of `out` (0: `out` ends at a
    /// frame boundary).
    rest_of_frame: usize,
    /// The start of a message whose end is not known yet.
    partial: BytesMut,
    /// The length `partial` must reach before the scanner can make progress.
    need: usize,
    /// Measures the outgoing messages (its state belongs to `partial`, or to the start
    /// of the write being looked at).
    scanner: MsgpackScanner,
    /// Control frames waiting for `out` to reach a frame boundary.
    control: BytesMut,
    /// The RPC side's write, waiting for room.
    writer: Option<Waker>,
    /// The socket takes no more messages (a close frame was queued): writes fail once
    /// the frame in progress, if any, is complete.
    out_closed: bool,
    /// The socket task, waiting for output or for room in the queue.
    socket: Option<Waker>,
}

/// The RPC side's end: reads the peer's messages, writes its own (see the
/// [module docs](self)).
#[derive(Debug)]
pub(super) struct Bridge {
    shared: Arc<Mutex<Shared>>,
}

/// The socket task's end.
#[derive(Debug, Clone)]
pub(super) struct Link {
    shared: Arc<Mutex<Shared>>,
}

/// A bridge and its link. `max_message` bounds each outgoing message (the scanner's
/// limit).
pub(super) fn pair(max_message: usize) -> (Bridge, Link) {
    let shared = Arc::new(Mutex::new(Shared::new(max_message)));
    (
        Bridge {
            shared: Arc::clone(&shared),
        },
        Link { shared },
    )
}

/// Locks, recovering from a poisoned mutex: every critical section leaves the state
/// consistent (no code in them panics on input), so the data is still good.
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stores `cx`'s waker in `slot`, unless the one there already wakes the same task.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(waker) = slot.take() {
        waker.wake();
    }
}

/// Appends an unmasked, final frame header for `len` payload bytes.
pub(super) fn put_header(opcode: Opcode, len: usize, dst: &mut BytesMut) {
    FrameHeader {
        fin: true,
        opcode,
        mask: None,
        payload_len: len as u64,
    }
    .encode(dst);
}

impl Shared {
    fn new(max_message: usize) -> Shared {
        Shared {
            inbound: VecDeque::new(),
            inbound_len: 0,
            inbound_end: false,
            reader: None,
            out: BytesMut::new(),
            rest_of_frame: 0,
            partial: BytesMut::new(),
            need: 0,
            scanner: MsgpackScanner::with_limits(OUT_DEPTH, max_message),
            control: BytesMut::new(),
            writer: None,
            out_closed: false,
            socket: None,
        }
    }

    /// Takes `data`, the next bytes of the RPC side's output, into frames.
    fn take_output(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.rest_of_frame > 0 {
                let n = self.rest_of_frame.min(data.len());
                self.out.extend_from_slice(&data[..n]);
                self.rest_of_frame -= n;
                data = &data[n..];
                if self.rest_of_frame == 0 {
                    self.at_boundary();
                }
            } else if self.partial.is_empty() {
                data = self.take_fresh(data)?;
            } else {
                // Only what the scanner needs to move on (and a little more), so that
                // once the message's end is known the rest goes straight to `out`
                // instead of through `partial`.
                let want = self.need.saturating_sub(self.partial.len()).max(FEED);
                let (feed, rest) = data.split_at(want.min(data.len()));
                self.partial.extend_from_slice(feed);
                data = rest;
                self.resume_partial()?;
            }
        }
        Ok(())
    }

    /// `data` starts a new message: frames every whole message at its start and returns
    /// what is left of it (empty once the rest is kept as an unfinished message).
    fn take_fresh<'a>(&mut self, data: &'a [u8]) -> io::Result<&'a [u8]> {
        match self.scanner.scan(data).map_err(invalid_output)? {
            Scan::Complete(n) => {
                let (message, rest) = data.split_at(n);
                self.out.reserve(FrameHeader::MAX_LEN + n);
                put_header(Opcode::Binary, n, &mut self.out);
                self.out.extend_from_slice(message);
                Ok(rest)
            }
            Scan::Incomplete { min_len } => {
                match self.scanner.known_end() {
                    Some(end) => self.start_known(end, data),
                    None => {
                        self.need = min_len;
                        self.partial.extend_from_slice(data);
                    }
                }
                Ok(&[])
            }
        }
    }

    /// Carries on measuring `partial`, which grew; frames what is complete.
    fn resume_partial(&mut self) -> io::Result<()> {
        loop {
            match self.scanner.scan(&self.partial).map_err(invalid_output)? {
                Scan::Complete(n) => {
                    let message = self.partial.split_to(n);
                    put_header(Opcode::Binary, n, &mut self.out);
                    self.out.extend_from_slice(&message);
                    if self.partial.is_empty() {
                        return Ok(());
                    }
                    // The bytes after it start the next message: measured from scratch.
                    let rest = std::mem::take(&mut self.partial);
                    let left = self.take_fresh(&rest)?;
                    if left.is_empty() {
                        // The rest was a prefix (now in `partial` or started as a
                        // frame) or nothing.
                        return Ok(());
                    }
                    self.partial.extend_from_slice(left);
                }
                Scan::Incomplete { min_len } => {
                    self.need = min_len;
                    if let Some(end) = self.scanner.known_end() {
                        let head = std::mem::take(&mut self.partial);
                        self.start_known(end, &head);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// A message of `end` bytes whose first `head.len()` bytes are here: its header and
    /// those bytes go out now, the rest as it comes.
    fn start_known(&mut self, end: usize, head: &[u8]) {
        self.scanner.reset();
        self.out.reserve(FrameHeader::MAX_LEN + head.len());
        put_header(Opcode::Binary, end, &mut self.out);
        self.out.extend_from_slice(head);
        self.rest_of_frame = end.saturating_sub(head.len());
        if self.rest_of_frame == 0 {
            self.at_boundary();
        }
    }

    /// `out` ends at a frame boundary: the control frames that waited for one go in.
    fn at_boundary(&mut self) {
        if !self.control.is_empty() {
            let control = self.control.split();
            self.out.extend_from_slice(&control);
        }
    }

    /// Bytes waiting to go out, for back-pressure.
    fn backlog(&self) -> usize {
        self.out.len() + self.partial.len()
    }
}

fn invalid_output(error: msgwire_frame::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the RPC side wrote bytes that are not one MessagePack value: {error}"),
    )
}

impl AsyncRead for Bridge {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.shared);
        if shared.inbound.is_empty() {
            if shared.inbound_end {
                return Poll::Ready(Ok(()));
            }
            register(&mut shared.reader, cx);
            return Poll::Pending;
        }
        let was_full = shared.inbound_len >= IN_HIGH;
        while buf.remaining() > 0 {
            let Some(front) = shared.inbound.front_mut() else {
                break;
            };
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                shared.inbound.pop_front();
            }
            shared.inbound_len -= n;
        }
        if was_full && shared.inbound_len < IN_HIGH {
            wake(&mut shared.socket);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Bridge {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.shared);
        // Once closed, only the frame in progress may be finished.
        let mut room = if shared.out_closed {
            if shared.rest_of_frame == 0 {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            shared.rest_of_frame
        } else {
            OUT_HIGH.saturating_sub(shared.backlog())
        };
        if room == 0 {
            register(&mut shared.writer, cx);
            return Poll::Pending;
        }
        let mut taken = 0;
        for slice in bufs {
            if room == 0 {
                break;
            }
            let n = slice.len().min(room);
            shared.take_output(&slice[..n])?;
            taken += n;
            room -= n;
        }
        if taken > 0 {
            wake(&mut shared.socket);
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket task writes what is queued as soon as it can.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.shared);
        wake(&mut shared.socket);
        Poll::Ready(Ok(()))
    }
}

impl Link {
    /// Queues whole messages from the peer for the RPC side.
    pub(super) fn push(&self, messages: &mut Vec<Bytes>) {
        if messages.is_empty() {
            return;
        }
        let mut shared = lock(&self.shared);
        for message in messages.drain(..) {
            shared.inbound_len += message.len();
            shared.inbound.push_back(message);
        }
        wake(&mut shared.reader);
    }

    /// No more messages: the RPC side reads EOF after the queued ones.
    pub(super) fn end_inbound(&self) {
        let mut shared = lock(&self.shared);
        shared.inbound_end = true;
        wake(&mut shared.reader);
    }

    /// Whether the queue has room for more messages; if not, the socket task is woken
    /// when it has.
    pub(super) fn inbound_room(&self, cx: &Context<'_>) -> bool {
        let mut shared = lock(&self.shared);
        if shared.inbound_len < IN_HIGH {
            return true;
        }
        register(&mut shared.socket, cx);
        false
    }

    /// Moves the frames ready for the socket to the end of `dst`, without a copy; if
    /// there are none, the socket task is woken when there are. Returns the output
    /// still waiting in the bridge (what the RPC side may write before it waits).
    pub(super) fn take_frames(&self, dst: &mut Outgoing, cx: &Context<'_>) -> usize {
        let mut shared = lock(&self.shared);
        if shared.out.is_empty() {
            register(&mut shared.socket, cx);
        } else {
            dst.push(shared.out.split().freeze());
            wake(&mut shared.writer);
        }
        shared.partial.len()
    }

    /// Queues a control frame (already encoded), at the next frame boundary.
    pub(super) fn send_control(&self, frame: &[u8]) {
        let mut shared = lock(&self.shared);
        if shared.rest_of_frame == 0 {
            shared.out.extend_from_slice(frame);
        } else {
            shared.control.extend_from_slice(frame);
        }
        wake(&mut shared.socket);
    }

    /// Queues the close frame and stops taking messages: the RPC side's next write
    /// fails (after finishing a frame already started). Whatever it wrote of a message
    /// not yet framed is dropped.
    pub(super) fn close_output(&self, close_frame: &[u8]) {
        let mut shared = lock(&self.shared);
        shared.out_closed = true;
        shared.partial.clear();
        shared.scanner.reset();
        if shared.rest_of_frame == 0 {
            shared.out.extend_from_slice(close_frame);
        } else {
            shared.control.extend_from_slice(close_frame);
        }
        wake(&mut shared.writer);
        wake(&mut shared.socket);
    }

    /// Bytes of output waiting in the bridge.
    pub(super) fn backlog(&self) -> usize {
        lock(&self.shared).backlog()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msgwire_frame::websocket::{Message, WebSocket};
    use msgwire_frame::Framing;

    /// What a client reads from the bridge's output.
    fn frames(out: &mut BytesMut) -> Vec<Message> {
        let mut client = WebSocket::client();
        let mut found = Vec::new();
        while let Ok(Some(m)) = client.decode(out) {
            found.push(m);
        }
        assert!(out.is_empty(), "left over: {out:?}");
        found
    }

    fn bin(payload: &[u8]) -> Message {
        Message::binary(Bytes::copy_from_slice(payload))
    }

    #[test]
    fn every_split_of_the_output_gives_the_same_frames() {
        // [1, 1, nil, 3], a 300-byte bin answer (known end), [2, "x", []], 7
        let mut stream = vec![0x94, 0x01, 0x01, 0xc0, 0x03];
        let big = [0x94, 0x01, 0x02, 0xc0, 0xc5, 0x01, 0x2c];
        stream.extend_from_slice(&big);
        stream.extend_from_slice(&[0xab; 300]);
        stream.extend_from_slice(&[0x93, 0x02, 0xa1, b'x', 0x90, 0x07]);
        let expected = vec![
            bin(&stream[..5]),
            bin(&stream[5..312]),
            bin(&stream[312..317]),
            bin(&stream[317..]),
        ];
        for a in 0..stream.len() {
            for b in a..stream.len() {
                let mut shared = Shared::new(1 << 20);
                for part in [&stream[..a], &stream[a..b], &stream[b..]] {
                    shared.take_output(part).unwrap();
                }
                assert_eq!(shared.rest_of_frame, 0);
                assert!(shared.partial.is_empty());
                assert_eq!(frames(&mut shared.out), expected, "split at {a}, {b}");
            }
        }
    }

    #[test]
    fn control_frames_wait_for_a_frame_boundary() {
        let mut shared = Shared::new(1 << 20);
        shared
            .take_output(&[0x94, 0x01, 0x02, 0xc0, 0xc4, 0x03, 0x61])
            .unwrap();
        assert_eq!(shared.rest_of_frame, 2);
        shared.control.extend_from_slice(b"\x8a\x00");
        shared.take_output(b"bc").unwrap();
        let found = frames(&mut shared.out);
        assert_eq!(found[0], bin(b"\x94\x01\x02\xc0\xc4\x03abc"));
        assert_eq!(found[1], Message::pong(Bytes::new()));
    }

    #[test]
    fn bad_output_is_an_error_not_a_panic() {
        let mut shared = Shared::new(1 << 20);
        assert!(shared.take_output(&[0xc1]).is_err());
    }
}
