//! The tasks running the peer's calls on one connection, by call, so that a
//! `"$/cancel"` or the end of the connection can abort them.
//!
//! A handler task is spawned without the state lock held (a runtime that is shutting
//! down drops a spawned future at once, and its drop code may take the lock), and
//! registered after: if the session says the call is no longer running by then — it
//! finished, or was cancelled — the task is aborted instead (a no-op if it finished).

use std::panic::AssertUnwindSafe;
use std::task::{Context as TaskContext, Poll};

/// Maps keyed by call ids: foldhash, seeded per process (the ids of the peer's calls are
/// the peer's to choose, and a table holds at most `max_in_flight` of them).
use foldhash::HashMap;
use futures::FutureExt;
use msgwire_wire::{CallId, RawValue, RpcError};
use tokio::task::AbortHandle;

use super::PendingCall;
use crate::error::panic_error;
use crate::session::{IncomingCall, Session};

/// Polls `call` once, right now, with a waker that does nothing: a handler that has its
/// answer at once (most do) is answered without a task of its own. If it is not ready,
/// the caller moves it into a task, whose first poll registers the real waker. A panic
/// becomes INTERNAL.
pub(crate) fn poll_once(call: &mut PendingCall) -> Poll<Result<RawValue, RpcError>> {
    let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
    std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(&mut cx)))
        .unwrap_or_else(|panic| Poll::Ready(Err(panic_error(None, panic.as_ref()))))
}

/// Runs `call` to its end; a panic anywhere on the way (a middleware's too) becomes
/// INTERNAL.
pub(crate) async fn finish(call: PendingCall) -> Result<RawValue, RpcError> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(panic_error(None, panic.as_ref())),
    }
}

/// Handler tasks by the call they answer.
#[derive(Debug, Default)]
pub(crate) struct Handlers {
    by_id: HashMap<CallId, (u64, AbortHandle)>,
}

impl Handlers {
    /// Registers the task of `call`, or aborts it if the session no longer runs it.
    pub(crate) fn register(&mut self, session: &Session, call: IncomingCall, task: AbortHandle) {
        if session.is_running(&call) {
            self.by_id.insert(call.id, (call.seq, task));
        } else {
            task.abort();
        }
    }

    /// The task of `call` is done.
    pub(crate) fn finished(&mut self, call: &IncomingCall) {
        if self
            .by_id
            .get(&call.id)
            .is_some_and(|(seq, _)| *seq == call.seq)
        {
            self.by_id.remove(&call.id);
        }
    }

    /// Aborts the task of `call`: its future is dropped and it sends no response.
    pub(crate) fn abort(&mut self, call: &IncomingCall) {
        if self
            .by_id
            .get(&call.id)
            .is_some_and(|(seq, _)| *seq == call.seq)
        {
            if let Some((_, task)) = self.by_id.remove(&call.id) {
                task.abort();
            }
        }
    }

    /// Aborts every task.
    pub(crate) fn abort_all(&mut self) {
        for (_, (_, task)) in self.by_id.drain() {
            task.abort();
        }
    }
}
