//! The handlers running on one connection: how many (an atomic counter, so the limit
//! is checked without waiting or locking) and which task answers which call id (so
//! `$/cancel` and a disconnect can abort them). Queued notifications hold a slot too.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use msgwire_wire::CallId;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// The handlers running on one connection.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// Slots taken.
    running: AtomicU32,
    max: u32,
    /// Someone waits in [`drained`](Self::drained) for `running` to reach 0.
    draining: AtomicBool,
    idle: Notify,
    calls: Mutex<Calls>,
}

#[derive(Debug, Default)]
struct Calls {
    /// The task answering each call, and a generation that tells a reused id apart.
    by_id: HashMap<CallId, (u64, AbortHandle)>,
    next_generation: u64,
}

/// A running handler's place in the table: frees the slot and removes the entry when
/// the handler finishes or is dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    table: Arc<InFlight>,
    /// The call's id and generation in the table; `None` for a slot with no entry.
    key: Option<(CallId, u64)>,
}

impl InFlight {
    pub(crate) fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            running: AtomicU32::new(0),
            max,
            draining: AtomicBool::new(false),
            idle: Notify::new(),
            calls: Mutex::new(Calls::default()),
        })
    }

    fn calls(&self) -> MutexGuard<'_, Calls> {
        // Held only for map operations, never across user code or an await.
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limit.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// Whether no handler is running.
    pub(crate) fn is_empty(&self) -> bool {
        self.running.load(Ordering::SeqCst) == 0
    }

    /// Takes a slot if one is free.
    fn try_acquire(&self) -> bool {
        let mut running = self.running.load(Ordering::SeqCst);
        loop {
            if running >= self.max {
                return false;
            }
            match self.running.compare_exchange_weak(
                running,
                running + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => running = now,
            }
        }
    }

    /// Frees a slot; wakes [`drained`](Self::drained) when it was the last.
    fn release(&self) {
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 && self.draining.load(Ordering::SeqCst)
        {
            self.idle.notify_waiters();
        }
    }

    /// Takes a slot if the limit allows. Dropping the slot frees it.
    pub(crate) fn try_reserve(self: &Arc<Self>) -> Option<Slot> {
        self.try_acquire().then(|| Slot {
            table: Arc::clone(self),
            key: None,
        })
    }

    /// Runs the handler of call `id` as a task, registered so that it can be cancelled.
    /// `task` receives `slot` back and drops it when the call is done (for a call, once
    /// its response is queued).
    pub(crate) fn spawn<F, Fut>(self: &Arc<Self>, id: CallId, mut slot: Slot, task: F)
    where
        F: FnOnce(Slot) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // The entry goes in before the task can finish and look for it: the task's
        // `Slot` removes it under the same lock.
        let mut calls = self.calls();
        let generation = calls.next_generation;
        calls.next_generation += 1;
        slot.key = Some((id, generation));
        let abort = tokio::spawn(task(slot)).abort_handle();
        calls.by_id.insert(id, (generation, abort));
    }

    /// Aborts the handler of call `id`, if it is still running: its future is dropped
    /// and it sends no response.
    pub(crate) fn cancel(&self, id: CallId) -> bool {
        let entry = self.calls().by_id.remove(&id);
        match entry {
            Some((_, abort)) => {
                abort.abort();
                true
            }
            None => false,
        }
    }

    /// Aborts every handler.
    pub(crate) fn abort_all(&self) {
        let by_id = std::mem::take(&mut self.calls().by_id);
        for (_, abort) in by_id.into_values() {
            abort.abort();
        }
    }

    /// Waits until no handler is running.
    pub(crate) async fn drained(self: Arc<Self>) {
        // `release` reads `draining` after its decrement; this reads `running` after
        // setting `draining` and registering for the wake-up: one of the two sees the
        // other, so the last release is never missed.
        self.draining.store(true, Ordering::SeqCst);
        loop {
            let mut idle = pin!(self.idle.notified());
            idle.as_mut().enable();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.release();
        if let Some((id, generation)) = self.key.take() {
            let mut calls = self.table.calls();
            // Only this handler's own entry: a cancel may have removed it, and the peer
            // may have reused the id since.
            if calls.by_id.get(&id).is_some_and(|(g, _)| *g == generation) {
                calls.by_id.remove(&id);
            }
        }
    }
}

/// Aborts every handler of a connection when dropped: when the connection's task ends,
/// or is itself aborted, no handler outlives it.
#[derive(Debug)]
pub(crate) struct AbortAllOnDrop(pub(crate) Arc<InFlight>);

impl Drop for AbortAllOnDrop {
    fn drop(&mut self) {
        self.0.abort_all();
    }
}
