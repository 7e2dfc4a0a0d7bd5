//! The tokio side of streams: opening one, taking its items, sending on it, with the
//! session's credit and the write queue's room as the two things a sender waits for.

use std::task::{Context, Poll};
use std::time::Instant;

use msgwire_wire::RawValue;

use super::{now, Connection};
use crate::error::CallError;
use crate::session::{Input, Output, StreamKey};

impl Connection {
    /// Opens a stream call: waits for room, queues the request, returns its id.
    pub(crate) async fn open_stream(
        &self,
        method: String,
        params: RawValue,
        deadline: Option<Instant>,
    ) -> Result<u32, CallError> {
        let mut request = Some((method, params));
        self.when_room(deadline, |state| {
            // Called once: when there is room, or the connection is closed.
            let (method, params) = request.take().unwrap_or_default();
            let id = state.session.call_stream(method, params, deadline)?;
            if let Some(at) = deadline {
                if state.armed.is_none_or(|armed| at < armed) {
                    self.inner.wake_reader.notify_one();
                }
            }
            Ok(id)
        })
        .await
    }

    /// The next input of stream `key` (see `Session::poll_recv`).
    pub(crate) fn poll_recv(&self, key: &StreamKey, cx: &mut Context<'_>) -> Poll<Option<Input>> {
        let mut state = self.inner.lock();
        let polled = state.session.poll_recv(key, cx);
        self.inner.settle(state);
        polled
    }

    /// Whether stream `key` may send now: credit from the peer, and room in the write
    /// queue.
    pub(crate) fn poll_send_ready(
        &self,
        key: &StreamKey,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), CallError>> {
        let mut state = self.inner.lock();
        let ready = match state.session.poll_send_ready(key, cx) {
            Poll::Ready(Ok(())) if !state.session.has_room() => {
                state.session.wait_for_room(key, cx);
                Poll::Pending
            }
            other => other,
        };
        self.inner.settle(state);
        ready
    }

    /// Sends on stream `key` (after `poll_send_ready`).
    pub(crate) fn send_output(&self, key: &StreamKey, output: Output) -> Result<(), CallError> {
        let mut state = self.inner.lock();
        let sent = state.session.send(key, output);
        self.inner.settle(state);
        sent
    }

    /// The id stream `key`'s messages carry.
    pub(crate) fn stream_id(&self, key: &StreamKey) -> msgwire_wire::CallId {
        self.inner.lock().session.stream_id(key)
    }

    /// The reader of stream `key` is gone before its end.
    pub(crate) fn drop_recv(&self, key: &StreamKey) {
        let mut state = self.inner.lock();
        state.session.drop_recv(now(), key);
        self.inner.settle(state);
    }
}
