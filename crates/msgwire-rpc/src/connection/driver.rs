//! The reader half of a connection and the life of the whole: decode, dispatch,
//! answer, and close in order (handlers aborted, waiting calls failed, writer flushed).

use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use futures::future::{Fuse, FusedFuture, FutureExt};
use msgwire_wire::{CallId, Code, Message, RpcError, WireCodec, WireError, CANCEL_METHOD};
use rmpv::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadHalf};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::in_flight::{AbortAllOnDrop, InFlight, Slot};
use super::{writer, ConnectionConfig, Shared};
use crate::error::{CallError, CloseReason};
use crate::router::{finish, poll_once, Dispatcher, RpcRequest};
use crate::{Client, Context};

/// Bytes the read buffer grows by when it runs low.
const READ_CHUNK: usize = 8 * 1024;

/// An empty read buffer that grew past this (a large message went through) is let go,
/// so an idle connection does not keep it.
const KEEP_READ_CAPACITY: usize = 64 * 1024;

/// Runs one connection to its end and returns why it ended.
///
/// `prefix` holds bytes already read from `io` (the server's dialect detection).
/// `shutdown`, when it fires, starts a graceful close: new requests are answered
/// UNAVAILABLE, and the connection closes once its running handlers finish.
///
/// Dropping the returned future (an aborted task) aborts the handlers and the writer.
pub(crate) async fn drive<IO>(
    io: IO,
    prefix: &[u8],
    shared: Arc<Shared>,
    queue: mpsc::Receiver<Message>,
    dispatcher: Dispatcher,
    config: &ConnectionConfig,
    shutdown: Option<CancellationToken>,
) -> CloseReason
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let codec = WireCodec::builder(shared.dialect())
        .max_frame_length(config.max_frame_length)
        .max_depth(config.max_depth)
        .build();
    // However the driver ends (even dropped), `Client::closed` waiters wake up.
    let _finished = shared.finished.clone().drop_guard();
    let (read_half, write_half) = tokio::io::split(io);
    let in_flight = InFlight::new(config.max_in_flight.max(1));
    let writer = tokio::spawn(writer::run(
        write_half,
        queue,
        codec.clone(),
        Arc::clone(&shared),
        Arc::clone(&in_flight),
        config.idle_timeout,
    ));
    let writer_guard = AbortOnDrop(writer.abort_handle());
    let handlers_guard = AbortAllOnDrop(Arc::clone(&in_flight));

    let mut buf = BytesMut::with_capacity(READ_CHUNK.max(prefix.len()));
    buf.extend_from_slice(prefix);
    let mut reader = Reader {
        io: read_half,
        buf,
        codec,
        peer: Client::from_shared(Arc::clone(&shared)),
        shared: Arc::clone(&shared),
        in_flight,
        dispatcher,
        draining: false,
        notifications: None,
    };
    let reason = reader.run(config, shutdown.unwrap_or_default()).await;
    tracing::debug!(?reason, "connection closing");

    // In order: no handler keeps running, no caller keeps waiting, then the writer
    // sends what is queued and shuts the socket.
    drop(handlers_guard);
    drop(reader);
    shared.close(reason.clone());
    shared.done.cancel();
    if tokio::time::timeout(config.linger, writer).await.is_err() {
        tracing::debug!("the writer did not finish in time; dropping what is queued");
    }
    drop(writer_guard);
    reason
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Reader<R> {
    io: ReadHalf<R>,
    buf: BytesMut,
    codec: WireCodec,
    shared: Arc<Shared>,
    /// The handle handlers get in their [`Context`] to call this connection's peer.
    peer: Client,
    in_flight: Arc<InFlight>,
    dispatcher: Dispatcher,
    /// A graceful shutdown has begun.
    draining: bool,
    /// The queue to the task that runs notification handlers in order.
    notifications: Option<NotificationQueue>,
}

/// The queue of notifications waiting for their handlers, and the task that runs them
/// (aborted when the connection ends).
struct NotificationQueue {
    queue: mpsc::Sender<(RpcRequest, Slot)>,
    _worker: AbortOnDrop,
}

impl<R: AsyncRead> Reader<R> {
    async fn run(&mut self, config: &ConnectionConfig, shutdown: CancellationToken) -> CloseReason {
        let stop = self.shared.stop.clone();
        let mut stopped = pin!(stop.cancelled());
        let mut shutting_down = pin!(shutdown.cancelled());
        let mut drained = pin!(Fuse::terminated());
        let far_future = Instant::now() + std::time::Duration::from_secs(86400 * 365);
        let mut last_read = Instant::now();
        let mut idle = pin!(sleep_until(
            config.idle_timeout.map_or(far_future, |t| last_read + t)
        ));

        loop {
            // Everything already buffered first: a read may have brought many messages,
            // and the writer waits for their answers to batch them.
            self.shared.reading.store(true, Ordering::Relaxed);
            loop {
                match self.codec.decode(&mut self.buf) {
                    Ok(Some(message)) => self.on_message(message).await,
                    Ok(None) => break,
                    Err(error) if error.is_fatal() => {
                        tracing::debug!(%error, "unrecoverable input; closing the connection");
                        return CloseReason::Protocol(error.to_string());
                    }
                    Err(WireError::Malformed {
                        id: Some(id),
                        reason,
                    }) => {
                        let error =
                            RpcError::invalid_argument(format!("malformed request: {reason}"));
                        self.respond(id, Err(error)).await;
                    }
                    Err(error) => tracing::debug!(%error, "dropped a malformed message"),
                }
            }
            self.shared.reading.store(false, Ordering::Relaxed);
            if self.buf.is_empty() && self.buf.capacity() > KEEP_READ_CAPACITY {
                self.buf = BytesMut::with_capacity(READ_CHUNK);
            } else if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                () = stopped.as_mut() => return CloseReason::Closed,
                () = shutting_down.as_mut(), if !self.draining => {
                    self.draining = true;
                    drained.set(Arc::clone(&self.in_flight).drained().fuse());
                }
                _ = drained.as_mut(), if !drained.is_terminated() => {
                    return CloseReason::Closed;
                }
                () = idle.as_mut(), if config.idle_timeout.is_some() => {
                    let timeout = config.idle_timeout.unwrap_or_default();
                    let now = Instant::now();
                    let busy = !self.in_flight.is_empty() || self.shared.waiting() > 0;
                    if !busy && now >= last_read + timeout {
                        tracing::debug!("idle timeout");
                        return CloseReason::Closed;
                    }
                    let next = if busy { now + timeout } else { last_read + timeout };
                    idle.as_mut().reset(next);
                }
                read = self.io.read_buf(&mut self.buf) => match read {
                    Ok(0) => return CloseReason::Closed,
                    Ok(_) => last_read = Instant::now(),
                    Err(error) => return CloseReason::Io(Arc::new(error)),
                },
            }
        }
    }

    async fn on_message(&mut self, message: Message) {
        match message {
            Message::Request { id, method, params } => self.on_request(id, method, params).await,
            Message::Response { id, result } => {
                self.shared.complete(id, result.map_err(CallError::Rpc));
            }
            Message::Notification { method, params } if method == CANCEL_METHOD => {
                let cancel = Message::Notification { method, params };
                if let Some(id) = cancel.cancelled_id() {
                    let cancelled = self.in_flight.cancel(id);
                    tracing::debug!(id, cancelled, "cancel notification");
                }
            }
            Message::Notification { method, params } => self.on_notification(method, params),
        }
    }

    async fn on_request(&mut self, id: CallId, method: String, params: Value) {
        if self.draining {
            let error = RpcError::new(Code::Unavailable, "the server is shutting down");
            self.respond(id, Err(error)).await;
            return;
        }
        let Some(slot) = self.in_flight.try_reserve() else {
            let error = RpcError::resource_exhausted(format!(
                "too many calls in flight on this connection (the limit is {})",
                self.in_flight.max()
            ));
            self.respond(id, Err(error)).await;
            return;
        };
        let request = RpcRequest::call(method, params, Context::new(self.peer.clone(), Some(id)));
        let mut call = match self.dispatcher.start(request) {
            Ok(call) => call,
            Err(error) => {
                self.respond(id, Err(error)).await;
                return;
            }
        };
        // A handler that answers at once is answered here, in order, without a task.
        if let Poll::Ready(result) = poll_once(&mut call) {
            self.respond(id, result).await;
            drop(slot);
            return;
        }
        let out = self.shared.out.clone();
        self.in_flight.spawn(id, slot, move |slot| async move {
            let result = finish(call).await;
            // The call stays in flight until its response is queued: a peer that does
            // not read holds at most `max_in_flight` finished calls here, and a draining
            // connection that sees no call in flight knows every response is queued.
            if out.send(Message::Response { id, result }).await.is_err() {
                tracing::debug!(id, "connection closed before the response was sent");
            }
            drop(slot);
        });
    }

    /// Notifications are handled one at a time, in the order they arrived (a peer
    /// that sends "line added" then "line removed" sees them applied in that order), by
    /// one task per connection, started with the first notification. Each queued
    /// notification holds an in-flight slot, so the queue is bounded by the in-flight
    /// limit; past it, notifications are dropped (the reader never waits on its own
    /// handlers, which may be waiting on the reader for a response).
    fn on_notification(&mut self, method: String, params: Value) {
        let Some(slot) = self.in_flight.try_reserve() else {
            tracing::warn!(
                method,
                "dropped a notification: too many handlers in flight on this connection"
            );
            return;
        };
        let request =
            RpcRequest::notification(method, params, Context::new(self.peer.clone(), None));
        let queue = self.notifications.get_or_insert_with(|| {
            let (queue, mut queued) =
                mpsc::channel::<(RpcRequest, Slot)>(self.in_flight.max() as usize);
            let dispatcher = self.dispatcher.clone();
            let worker = tokio::spawn(async move {
                while let Some((request, slot)) = queued.recv().await {
                    let result = match dispatcher.start(request) {
                        Ok(call) => finish(call).await,
                        Err(error) => Err(error),
                    };
                    if let Err(error) = result {
                        tracing::debug!(%error, "notification handler failed");
                    }
                    drop(slot);
                }
            });
            NotificationQueue {
                queue,
                _worker: AbortOnDrop(worker.abort_handle()),
            }
        });
        if queue.queue.try_send((request, slot)).is_err() {
            tracing::warn!("dropped a notification: the notification queue is full");
        }
    }

    /// Queues a response from the reader itself. Waits while the queue is full (the
    /// peer is not reading): that is the push-back that stops this connection's reads.
    async fn respond(&mut self, id: CallId, result: Result<Value, RpcError>) {
        let response = match self.shared.out.try_send(Message::Response { id, result }) {
            Ok(()) | Err(TrySendError::Closed(_)) => return,
            Err(TrySendError::Full(response)) => response,
        };
        tokio::select! {
            _ = self.shared.out.send(response) => {}
            () = self.shared.stop.cancelled() => {}
        }
    }
}
