//! The writer task: at most one per connection, the only code that writes to the
//! socket, and only while there is something to write.
//!
//! It takes what the session has queued, encodes the whole batch into one buffer and
//! writes it with one vectored write and one `flush`. Under load (many calls pipelined
//! on one connection) a batch holds dozens of responses and a write system call carries
//! all of them; with one call in flight a batch is one message and nothing waits. A
//! large param or result (a 64 KiB download chunk, a large answer) is not copied into
//! the buffer: the write takes it from its own bytes ([`Encoder::encode_vectored`]), so
//! the only copy of a stream item between the handler's serializer and the socket is
//! the kernel's.
//!
//! On a quiet connection (nothing in flight either way, nothing queued) the task ends:
//! its parts — the socket's write half, the encoder, the [`Runner`] — go into the
//! shared state as a [`Park`], and the next thing queued (a request of the peer's to
//! start, an answer, a ping, the session closing) spawns a writer from them again
//! ([`Inner::wake`](super::Inner)). An idle connection so holds neither a task nor its
//! buffers: a few dozen bytes instead of the task and future (~0.6 KiB), for one spawn
//! per burst of work.

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use msgwire_wire::{Encoder, Held, Message, WireError};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use super::runner::Runner;
use super::Inner;
use crate::error::CloseReason;

/// A batch stops growing past this many bytes, so that one write is never held back
/// for long and the buffer stays small.
const MAX_BATCH: usize = 256 * 1024;

/// A buffer that grew past this for a large batch is let go before the writer waits.
const KEEP_CAPACITY: usize = 16 * 1024;

/// Params and results of these lengths are written from their own bytes, not copied
/// into the batch's buffer. Below 16 KiB a copy costs less than a slice of its own in
/// the write system call. (Not copying multi-megabyte answers also lets their memory go
/// back to the system sooner: with ten peers that never read their 4 MB echoes, the
/// server's memory came all the way back once they were closed,
/// `tests/memory_amplification.rs`.)
const HOLD: std::ops::Range<usize> = 16 * 1024..usize::MAX;

/// A writer with nothing to write, kept in the shared state until there is.
pub(crate) trait Park: Send {
    /// Spawns the writer task again; returns its handle (to abort it with the
    /// connection).
    fn start(self: Box<Self>, inner: &Arc<Inner>) -> AbortHandle;
}

impl fmt::Debug for dyn Park {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("parked writer")
    }
}

/// What a writer task owns, from one run to the next.
pub(crate) struct Writer<W> {
    pub(crate) io: W,
    pub(crate) codec: Encoder,
    pub(crate) runner: Runner,
    /// Bounds each batch's write: a peer that stops reading for that long gets its
    /// connection closed.
    pub(crate) write_timeout: Option<Duration>,
    /// Where to spawn the task again (whoever queues may be on any thread).
    pub(crate) runtime: Handle,
}

impl<W> Park for Writer<W>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    fn start(self: Box<Self>, inner: &Arc<Inner>) -> AbortHandle {
        let runtime = self.runtime.clone();
        runtime.spawn(run(*self, Arc::clone(inner))).abort_handle()
    }
}

/// Runs until the connection is quiet with nothing to write (the writer parks), the
/// session is closed and everything it queued is written, or a write fails.
async fn run<W>(mut writer: Writer<W>, inner: Arc<Inner>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut batch = Vec::new();
    let mut buf = BytesMut::new();
    let mut held = Vec::new();
    loop {
        let wake = inner.wake_writer.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        // Before the peer's new calls run (their handlers may compute for long before
        // their first `.await`), a yield: what was woken on this worker — the reader,
        // say, in the worker's own slot, which other workers do not take from — runs
        // first, and the yield wakes another worker if all others sleep, so the
        // runtime's I/O driver goes on while a handler holds this one. Without it a
        // handler computing on the worker that last drove I/O left the whole runtime
        // deaf, this connection's reading included, until it was done.
        if inner.has_requests_to_run() {
            tokio::task::yield_now().await;
        }
        // The peer's new calls first: those that answer at once go out in this write.
        writer.runner.run_queued(&inner);
        let taken = take(&inner, &mut batch);
        if batch.is_empty() {
            if taken.closed {
                break;
            }
            if taken.quiet {
                // Checked again under the lock that parks: whatever is queued from now
                // on finds the writer parked and starts it.
                let mut state = inner.lock();
                if state.session.is_quiet()
                    && !state.session.has_transmit()
                    && !state.session.is_closed()
                    && state.to_run.is_empty()
                {
                    state.writer_task = None;
                    state.parked = Some(Box::new(writer));
                    return;
                }
                continue;
            }
            // The buffer grew for a large batch: keep no more than a small one.
            if buf.capacity() > KEEP_CAPACITY {
                buf = BytesMut::new();
            }
            wake.await;
            continue;
        }
        // Gather what else is ready. Handlers that finish together each wake this task,
        // and tokio would run it right after the first of them; yielding once lets the
        // others queue their messages first, so one write carries them all. Only when
        // more messages are coming: with one call in flight the yield would only add
        // latency.
        if taken.more_coming {
            tokio::task::yield_now().await;
            take(&inner, &mut batch);
        }
        // Room for the whole batch at once (what is held is not copied in), so that
        // the buffer does not grow message by message.
        buf.reserve(batch.iter().map(copied_len_hint).sum());
        for message in batch.drain(..) {
            encode(&writer.codec, message, &mut buf, &mut held, &inner);
        }
        if taken.was_full {
            // Callers and the reader waited for room; they can go on.
            inner.room_opened();
            inner.wake_reader.notify_one();
        }
        if buf.is_empty() && held.is_empty() {
            continue;
        }
        let written = write_batch(&mut writer.io, &buf, &held, writer.write_timeout).await;
        buf.clear();
        held.clear();
        if let Err(e) = written {
            tracing::debug!(error = %e, "write failed; closing the connection");
            inner.close(CloseReason::Io(Arc::new(e)));
            inner.writer_exited();
            return;
        }
    }
    let _ = writer.io.flush().await;
    let _ = writer.io.shutdown().await;
    inner.writer_exited();
}

/// Writes and flushes `buf` with the `held` values in their places, within
/// `write_timeout` if there is one. Almost every write completes at once (the socket
/// has room), so the timer — and the room its state takes in this task, kept by every
/// idle connection — is set up only for one that waits.
async fn write_batch<W>(
    io: &mut W,
    buf: &[u8],
    held: &[Held],
    write_timeout: Option<Duration>,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut write = pin!(async {
        write_parts(io, buf, held).await?;
        io.flush().await
    });
    if let Poll::Ready(done) = futures::poll!(write.as_mut()) {
        return done;
    }
    let Some(limit) = write_timeout else {
        return write.await;
    };
    Box::pin(tokio::time::timeout(limit, write))
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not read for the whole idle timeout",
            ))
        })
}

/// Writes `buf` with each held value inserted at its offset, in as few vectored writes
/// as the socket takes.
async fn write_parts<W>(io: &mut W, buf: &[u8], held: &[Held]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    if held.is_empty() {
        return io.write_all(buf).await;
    }
    let mut slices = Vec::with_capacity(2 * held.len() + 1);
    let mut at = 0;
    for part in held {
        // The offsets are the encoder's, in order and within `buf`.
        let before = buf.get(at..part.at).unwrap_or_default();
        if !before.is_empty() {
            slices.push(IoSlice::new(before));
        }
        slices.push(IoSlice::new(&part.bytes));
        at = part.at;
    }
    let rest = buf.get(at..).unwrap_or_default();
    if !rest.is_empty() {
        slices.push(IoSlice::new(rest));
    }
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = io.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// About how many bytes of `message` are copied into the batch's buffer: all of it but
/// a param or result that is held.
fn copied_len_hint(message: &Message) -> usize {
    let hint = message.encoded_len_hint();
    let value = match message {
        Message::Request { params, .. } | Message::Notification { params, .. } => params.len(),
        Message::Response { result: Ok(v), .. } => v.len(),
        _ => 0,
    };
    if HOLD.contains(&value) {
        hint.saturating_sub(value)
    } else {
        hint
    }
}

/// What [`take`] saw.
struct Taken {
    /// The queue was full before: those waiting for room are to be woken.
    was_full: bool,
    /// The session is closed.
    closed: bool,
    /// Nothing is in flight either way.
    quiet: bool,
    /// Other messages are likely on their way (see [`take`]).
    more_coming: bool,
}

/// Takes queued messages, up to a batch.
fn take(inner: &Inner, batch: &mut Vec<Message>) -> Taken {
    let mut state = inner.lock();
    let was_full = !state.session.has_room();
    let mut bytes = 0;
    while bytes < MAX_BATCH {
        let Some(message) = state.session.poll_transmit() else {
            break;
        };
        bytes += message.encoded_len_hint();
        crate::room::push(batch, message);
    }
    let quiet = if batch.is_empty() {
        state.session.let_go_if_quiet()
    } else {
        state.session.is_quiet()
    };
    // Other messages are likely on their way if the reader is still answering what it
    // read, this end runs handlers, waits for more than one call, or has answered
    // callers that have not run yet (and will often call again).
    let more_coming = inner.reading.load(Ordering::Relaxed)
        || inner.resuming.load(Ordering::Relaxed) > 0
        || !state.to_run.is_empty()
        || state.session.running() > 0
        || state.session.waiting() > 1;
    Taken {
        was_full,
        closed: state.session.is_closed(),
        quiet,
        more_coming,
    }
}

/// Appends one message. One that cannot be encoded (too large for the frame limit) goes
/// back to the session, which answers for it.
fn encode(
    codec: &Encoder,
    message: Message,
    buf: &mut BytesMut,
    held: &mut Vec<Held>,
    inner: &Arc<Inner>,
) {
    match codec.encode_vectored(&message, buf, held, HOLD) {
        Ok(()) => {}
        Err(WireError::Encode(error)) => {
            let mut state = inner.lock();
            state.session.encode_failed(super::now(), message, error);
            inner.settle(state);
        }
        Err(error) => tracing::warn!(%error, "cannot encode an outgoing message"),
    }
}
