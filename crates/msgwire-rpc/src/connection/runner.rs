//! Starting the peer's calls, on the writer's task, so that the reader never runs
//! handler code: a handler that computes before its first `.await` holds up the writes
//! of its connection while it computes (what it computes is one of them) but never the
//! reading (cancels, stream items and credit, this end's answers, pings keep arriving
//! and taking effect), and no task is added per connection or per call.
//!
//! The reader queues each batch of requests in the shared state and wakes the writer;
//! the writer, before it takes what to write, starts them in order: for each it makes
//! the handler's future and polls it once. One that has its answer at once is answered
//! with the others of its batch under one lock — no task of its own, and the answer
//! goes out in the very write that follows; one that waits becomes a task, registered
//! so that a cancel or the end of the connection can abort it.

use std::sync::Arc;
use std::task::Poll;

use msgwire_wire::{RawValue, RpcError};
use tracing::Instrument;

use super::handlers::{finish, poll_once};
use super::{Connection, Handler, Inner, State};
use crate::room::push;
use crate::session::IncomingCall;

/// A request of the peer's to start: which call, the method, its params.
pub(crate) type Request = (IncomingCall, String, RawValue);

/// What the writer needs to start the peer's calls.
pub(crate) struct Runner {
    pub(crate) handler: Arc<dyn Handler>,
    /// The handle handlers get to call this connection's peer.
    pub(crate) conn: Connection,
}

impl Runner {
    /// Starts the requests queued for this connection. Returns whether there were any.
    pub(crate) fn run_queued(&self, inner: &Arc<Inner>) -> bool {
        let (mut batch, held) = {
            let mut state = inner.lock();
            if state.to_run.is_empty() {
                return false;
            }
            let mut batch = std::mem::take(&mut state.to_run);
            // The reader may have stopped for these bytes; it looks again below.
            let held = !state.session.wants_read_with(state.to_run_bytes);
            state.to_run_bytes = 0;
            // A call cancelled (or a connection closed) before its turn is not started.
            batch.retain(|(call, _, _)| state.session.is_running(call));
            (batch, held)
        };
        let mut ready = Vec::new();
        let mut spawned = Vec::new();
        for (call, method, params) in batch.drain(..) {
            let mut pending = match self.handler.call(&self.conn, &call, method, params) {
                Ok(pending) => pending,
                Err(error) => {
                    push(&mut ready, (call, Err(error)));
                    continue;
                }
            };
            if let Poll::Ready(result) = poll_once(&mut pending) {
                push(&mut ready, (call, result));
                continue;
            }
            let answering = call.clone();
            let inner = Arc::clone(inner);
            let task = tokio::spawn(
                async move {
                    let result = finish(pending).await;
                    inner.respond(&answering, result);
                }
                .in_current_span(),
            );
            push(&mut spawned, (call, task.abort_handle()));
        }
        let mut state = inner.lock();
        flush(&mut state, ready, spawned);
        // The reader looked at the connection before these were answered: one now
        // quiet lets its read buffer (which their params were slices of) go once the
        // reader looks again.
        // Or it stopped reading for the bytes of these requests.
        let quiet = state.session.is_quiet();
        inner.settle(state);
        if quiet || held {
            inner.wake_reader.notify_one();
        }
        true
    }
}

/// Answers the handlers that answered at once and registers the tasks of the others.
fn flush(
    state: &mut State,
    ready: Vec<(IncomingCall, Result<RawValue, RpcError>)>,
    spawned: Vec<(IncomingCall, tokio::task::AbortHandle)>,
) {
    let now = super::now();
    for (call, result) in ready {
        state.session.respond(now, &call, result);
    }
    let State {
        session, handlers, ..
    } = state;
    for (call, task) in spawned {
        handlers.register(session, call, task);
    }
}
