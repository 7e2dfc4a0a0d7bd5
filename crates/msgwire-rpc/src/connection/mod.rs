//! One connection, driven the same way on both ends.
//!
//! MessagePack-RPC is symmetric: either end may call the other. So a client and a
//! server run the same driver; each end has a router for the calls it answers and a
//! table of the calls it is waiting for.
//!
//! ```text
//!                 ┌──────────────── one connection ─────────────────────────┐
//!  bytes in ──>   │ reader: BytesMut ─> WireCodec::decode ─> Message        │
//!                 │   Request       ─> poll handler once: ready ─> answer,  │
//!                 │                     else a task (in-flight table)       │
//!                 │   Response      ─> pending table ─> oneshot ─> caller   │
//!                 │   Notification  ─> in-order queue; "$/cancel" aborts    │
//!                 │                                                         │
//!  bytes out <──  │ writer task <── bounded mpsc <── handlers, callers      │
//!                 │   encodes every queued message into one buffer,         │
//!                 │   one write_all + flush per batch                       │
//!                 └─────────────────────────────────────────────────────────┘
//! ```
//!
//! Everything that can grow is bounded: the read buffer by the frame limit, the
//! outgoing queue by its capacity (a full queue stops the reader, so a peer that does
//! not read its answers stops being read), the handlers by the in-flight limit.

mod driver;
mod in_flight;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use msgwire_wire::{CallId, Dialect, Message};
use rmpv::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{CallError, CloseReason};

pub(crate) use driver::drive;

/// Limits and sizes for one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionConfig {
    /// Largest frame accepted or sent.
    pub(crate) max_frame_length: usize,
    /// Deepest nesting accepted from the peer.
    pub(crate) max_depth: usize,
    /// Handlers running at once on this connection.
    pub(crate) max_in_flight: u32,
    /// Close after this long with no bytes read and nothing in flight.
    pub(crate) idle_timeout: Option<Duration>,
    /// Messages the outgoing queue holds before senders wait.
    pub(crate) write_queue: usize,
    /// How long the writer may take to flush what is queued when the connection closes.
    pub(crate) linger: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            max_depth: 128,
            max_in_flight: 1024,
            idle_timeout: None,
            write_queue: 1024,
            linger: Duration::from_secs(5),
        }
    }
}

/// The default largest frame: 16 MiB, the framing layer's default.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 16 * 1024 * 1024;

/// The result a waiting caller receives.
pub(crate) type Answer = Result<Value, CallError>;

/// What a waiting caller's channel carries: the answer, and whether it was counted in
/// [`Shared::resuming`] (the caller then uncounts it when it takes it).
pub(crate) type Delivery = (Answer, bool);

/// The calls this end is waiting for.
#[derive(Debug, Default)]
struct Pending {
    calls: HashMap<CallId, oneshot::Sender<Delivery>>,
    /// Once set, no call is registered any more: nobody would answer it.
    closed: bool,
}

/// What the connection's driver, its writer and every handle to it share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The writer's queue.
    pub(crate) out: mpsc::Sender<Message>,
    pending: Mutex<Pending>,
    next_id: AtomicU32,
    /// Answers handed to callers that have not taken them yet: those callers are about
    /// to run, and often to call again (the writer waits for them to batch their calls).
    resuming: AtomicUsize,
    /// The reader is working through what it read (and may queue more answers).
    pub(crate) reading: AtomicBool,
    /// Asks the driver to close the connection.
    pub(crate) stop: CancellationToken,
    /// Fired when the connection is over and the writer should flush and finish.
    pub(crate) done: CancellationToken,
    /// Fired once the writer has sent what was queued and shut the socket (or gave up
    /// after the linger time), or the driver is gone.
    pub(crate) finished: CancellationToken,
    reason: OnceLock<CloseReason>,
    dialect: Dialect,
}

impl Shared {
    /// A new connection's shared state and the writer's end of its queue.
    pub(crate) fn new(dialect: Dialect, write_queue: usize) -> (Self, mpsc::Receiver<Message>) {
        let (out, rx) = mpsc::channel(write_queue.max(1));
        let shared = Self {
            out,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU32::new(1),
            resuming: AtomicUsize::new(0),
            reading: AtomicBool::new(false),
            stop: CancellationToken::new(),
            done: CancellationToken::new(),
            finished: CancellationToken::new(),
            reason: OnceLock::new(),
            dialect,
        };
        (shared, rx)
    }

    /// A state that is closed from the start: every call fails with
    /// [`CallError::Closed`]. For contexts that belong to no connection.
    pub(crate) fn detached(dialect: Dialect) -> Self {
        let (shared, _rx) = Self::new(dialect, 1);
        shared.close(CloseReason::Closed);
        shared.done.cancel();
        shared.finished.cancel();
        shared
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // The lock is never held across an await or user code, so a poisoned lock
        // only means a panic elsewhere; the table itself is consistent.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a call and picks its id, or fails if the connection is closed.
    pub(crate) fn register(&self, answer: oneshot::Sender<Delivery>) -> Result<CallId, CallError> {
        let mut pending = self.pending();
        if pending.closed {
            drop(pending);
            return Err(self.close_error());
        }
        // Ids wrap after 2^32 calls; skip one still in use by a very slow call.
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if let std::collections::hash_map::Entry::Vacant(slot) = pending.calls.entry(id) {
                slot.insert(answer);
                return Ok(id);
            }
        }
    }

    /// Hands a response to the call waiting for it. A response nobody waits for (a
    /// call that timed out, an id this end never sent) is dropped.
    pub(crate) fn complete(&self, id: CallId, answer: Answer) {
        let waiter = self.pending().calls.remove(&id);
        match waiter {
            Some(tx) => {
                self.resuming.fetch_add(1, Ordering::Relaxed);
                if tx.send((answer, true)).is_err() {
                    // The caller gave up in the meantime.
                    self.resuming.fetch_sub(1, Ordering::Relaxed);
                }
            }
            None => tracing::debug!(id, "response for a call nobody waits for"),
        }
    }

    /// Forgets a call; returns whether it was still waiting.
    pub(crate) fn forget(&self, id: CallId) -> bool {
        self.pending().calls.remove(&id).is_some()
    }

    /// A caller took an answer counted in `resuming`.
    pub(crate) fn resumed(&self) {
        self.resuming.fetch_sub(1, Ordering::Relaxed);
    }

    /// How many answered callers have not resumed yet.
    pub(crate) fn resuming(&self) -> usize {
        self.resuming.load(Ordering::Relaxed)
    }

    /// How many calls this end is waiting for.
    pub(crate) fn waiting(&self) -> usize {
        self.pending().calls.len()
    }

    /// Marks the connection closed: records why (the first reason wins), fails every
    /// waiting call, refuses new ones.
    pub(crate) fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        let calls = {
            let mut pending = self.pending();
            pending.closed = true;
            std::mem::take(&mut pending.calls)
        };
        let error = self.close_error();
        for (_, tx) in calls {
            let _ = tx.send((Err(error.clone()), false));
        }
        self.stop.cancel();
    }

    /// Records why the connection is ending, if no reason is recorded yet.
    pub(crate) fn set_reason(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
    }

    /// Whether the connection is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.pending().closed
    }

    /// The error a call gets on a closed connection.
    pub(crate) fn close_error(&self) -> CallError {
        self.reason
            .get()
            .map_or(CallError::Closed, CloseReason::to_call_error)
    }
}
