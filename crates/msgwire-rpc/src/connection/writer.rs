//! The writer task: one per connection, the only code that writes to the socket.
//!
//! It takes what the session has queued, encodes the whole batch into one buffer and
//! writes it with one `write_all` and one `flush`. Under load (many calls pipelined on
//! one connection) a batch holds dozens of responses and a write system call carries
//! all of them; with one call in flight a batch is one message and nothing waits.
//! The buffer is let go when the writer waits on a quiet connection (nothing in
//! flight), so an idle connection holds none.

use std::io;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use msgwire_wire::{Encoder, Message, WireError};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::Inner;
use crate::error::CloseReason;

/// A batch stops growing past this many bytes, so that one write is never held back
/// for long and the buffer stays small.
const MAX_BATCH: usize = 256 * 1024;

/// A buffer that grew past this for a large batch is let go before the writer waits.
const KEEP_CAPACITY: usize = 16 * 1024;

/// Runs until the session is closed and everything it queued is written, or a write
/// fails. `write_timeout` bounds each batch's write: a peer that stops reading for that
/// long gets its connection closed.
pub(crate) async fn run<W>(
    mut io: W,
    codec: Encoder,
    inner: Arc<Inner>,
    write_timeout: Option<Duration>,
) where
    W: AsyncWrite + Unpin,
{
    let mut batch = Vec::new();
    let mut buf = BytesMut::new();
    loop {
        let wake = inner.wake_writer.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let taken = take(&inner, &mut batch);
        if batch.is_empty() {
            if taken.closed {
                break;
            }
            // Quiet (or the buffer grew for a large batch): keep no buffer while waiting.
            if taken.quiet || buf.capacity() > KEEP_CAPACITY {
                buf = BytesMut::new();
            }
            if taken.quiet {
                batch = Vec::new();
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
        // Room for the whole batch at once: a large answer is copied once, not again
        // each time a growing buffer doubles.
        buf.reserve(batch.iter().map(Message::encoded_len_hint).sum());
        for message in batch.drain(..) {
            encode(&codec, message, &mut buf, &inner);
        }
        if taken.was_full {
            // Callers and the reader waited for room; they can go on.
            inner.room_opened();
            inner.wake_reader.notify_one();
        }
        if buf.is_empty() {
            continue;
        }
        let written = write_batch(&mut io, &buf, write_timeout).await;
        buf.clear();
        if let Err(e) = written {
            tracing::debug!(error = %e, "write failed; closing the connection");
            inner.close(CloseReason::Io(Arc::new(e)));
            return;
        }
    }
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// Writes and flushes `buf`, within `write_timeout` if there is one. Almost every write
/// completes at once (the socket has room), so the timer — and the room its state takes
/// in this task, kept by every idle connection — is set up only for one that waits.
async fn write_batch<W>(io: &mut W, buf: &[u8], write_timeout: Option<Duration>) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut write = pin!(async {
        io.write_all(buf).await?;
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
fn encode(codec: &Encoder, message: Message, buf: &mut BytesMut, inner: &Arc<Inner>) {
    match codec.encode(&message, buf) {
        Ok(()) => {}
        Err(WireError::Encode(error)) => {
            let mut state = inner.lock();
            state.session.encode_failed(super::now(), message, error);
            inner.settle(state);
        }
        Err(error) => tracing::warn!(%error, "cannot encode an outgoing message"),
    }
}
