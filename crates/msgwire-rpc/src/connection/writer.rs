//! The writer task: one per connection, the only code that writes to the socket.
//!
//! It waits for a message, then encodes every message already queued behind it into
//! the same buffer and writes the batch with one `write_all` and one `flush`. Under
//! load (many calls pipelined on one connection) a batch holds dozens of responses and
//! a write system call carries all of them; with one call in flight a batch is one
//! message and nothing waits.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use msgwire_wire::{Message, RpcError, WireCodec};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::in_flight::InFlight;
use super::Shared;
use crate::error::{CallError, CloseReason};

/// A batch stops growing past this many bytes, so that one write is never held back
/// for long and the buffer stays small.
const MAX_BATCH: usize = 256 * 1024;

/// A buffer that grew past this for a large batch is let go after its write, so an idle
/// connection does not keep it.
const KEEP_CAPACITY: usize = 64 * 1024;

/// `write_timeout` bounds each batch's write: a peer that stops reading for that long
/// gets its connection closed.
///
/// Runs until the connection is over (`shared.done`), the queue's every sender is gone,
/// or a write fails. What is queued when `done` fires is still written.
pub(crate) async fn run<W>(
    mut io: W,
    mut queue: mpsc::Receiver<Message>,
    codec: WireCodec,
    shared: Arc<Shared>,
    in_flight: Arc<InFlight>,
    write_timeout: Option<Duration>,
) where
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    let mut finishing = false;
    loop {
        if finishing {
            // Write what is left, then stop.
            while let Ok(message) = queue.try_recv() {
                encode(&codec, message, &mut buf, &shared);
            }
            if !buf.is_empty() {
                let _ = io.write_all(&buf).await;
            }
            break;
        }
        let first = tokio::select! {
            biased;
            message = queue.recv() => message,
            () = shared.done.cancelled() => {
                finishing = true;
                continue;
            }
        };
        let Some(first) = first else { break };
        encode(&codec, first, &mut buf, &shared);
        // Gather what else is ready. Handlers that finish together each wake this task,
        // and tokio would run it right after the first of them; yielding once lets the
        // others queue their messages first, so one write carries them all. Only when
        // more messages are coming (other calls in flight either way): with one call in
        // flight the yield would only add latency.
        let mut yielded = !more_coming(&shared, &in_flight);
        while buf.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(message) => encode(&codec, message, &mut buf, &shared),
                Err(_) if !yielded => {
                    yielded = true;
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        if buf.is_empty() {
            continue;
        }
        let write = async {
            io.write_all(&buf).await?;
            io.flush().await
        };
        let written = match write_timeout {
            None => write.await,
            Some(limit) => tokio::time::timeout(limit, write)
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the peer did not read for the whole idle timeout",
                    ))
                }),
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "write failed; closing the connection");
            shared.set_reason(CloseReason::Io(Arc::new(e)));
            shared.stop.cancel();
            return;
        }
        if buf.capacity() > KEEP_CAPACITY {
            buf = BytesMut::new();
        } else {
            buf.clear();
        }
    }
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// Whether other messages are likely on their way: the reader is still answering what
/// it read, this end runs handlers, waits for more than one call, or has answered
/// callers that have not run yet (and will often call again).
fn more_coming(shared: &Shared, in_flight: &InFlight) -> bool {
    shared.reading.load(Ordering::Relaxed)
        || !in_flight.is_empty()
        || shared.resuming() > 0
        || shared.waiting() > 1
}

/// Appends one message. A message that cannot be encoded (too large for the frame
/// limit) is replaced: a response by an error response for the same id, so that the
/// caller is answered; a request fails its caller at once; a notification is dropped.
fn encode(codec: &WireCodec, message: Message, buf: &mut BytesMut, shared: &Shared) {
    let Err(error) = codec.encode(&message, buf) else {
        return;
    };
    tracing::warn!(%error, "cannot encode an outgoing message");
    match message {
        Message::Response { id, .. } => {
            let replacement = Message::Response {
                id,
                result: Err(RpcError::resource_exhausted(format!(
                    "the response cannot be sent: {error}"
                ))),
            };
            if let Err(error) = codec.encode(&replacement, buf) {
                tracing::warn!(%error, id, "cannot encode the error response either");
            }
        }
        Message::Request { id, .. } => {
            shared.complete(id, Err(CallError::Encode(error.to_string())));
        }
        Message::Notification { .. } => {}
    }
}
