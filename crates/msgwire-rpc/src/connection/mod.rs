//! The tokio side of a connection: a [`Session`] behind a mutex, the tasks that drive
//! it, and [`Connection`], the handle that [`Client`](crate::Client) and every
//! handler's [`Context`](crate::Context) wrap.
//!
//! ```text
//!                ┌────────────────────── one connection ─────────────────────────┐
//!  bytes in ──>  │ reader (driver.rs): BytesMut ─> WireCodec ─> Session::handle   │
//!                │   Event::Request      ─> queued for the writer to start        │
//!                │   Event::Cancel       ─> the handler's task aborted            │
//!                │   Event::Notification ─> the in-order notification task        │
//!                │   Event::Answer       ─> the caller's oneshot                  │
//!                │   timers              ─> Session::handle_timeout               │
//!                │                                                                │
//!  bytes out <── │ writer (writer.rs), only while there is something to write:    │
//!                │   starts queued requests (runner.rs): poll once, ready ─>      │
//!                │     respond, else a task; then Session::poll_transmit,         │
//!                │   encodes a batch into one buffer, one write + flush           │
//!                └────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The mutex is held only for session calls and table updates — never across an await,
//! user code or encoding — and the tasks are woken with `Notify`s: the writer when
//! something is queued (or spawned again from its parked parts), the reader when a timer
//! moved, room opened or the session closed.

mod driver;
mod handlers;
mod runner;
mod streams;
mod writer;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Maps keyed by call ids: foldhash, seeded per process (the ids of the peer's calls are
/// the peer's to choose, and a table holds at most `max_in_flight` of them).
use foldhash::{HashMap, HashMapExt};
use futures::future::BoxFuture;
use msgwire_wire::{Dialect, RawValue, RpcError};
use tokio::sync::{oneshot, Notify};

use crate::config::ConnectionConfig;
use crate::error::{CallError, CloseReason};
use crate::room::push;
use crate::session::{Event, IncomingCall, Session};

pub(crate) use driver::drive;
use handlers::Handlers;

/// What a caller's channel carries.
type Answer = Result<RawValue, CallError>;

/// An answer on its way to its caller, counted in [`Inner::resuming`] until the caller
/// has taken it (or it is dropped untaken: the count follows the value, whoever ends up
/// dropping it).
#[derive(Debug)]
struct Delivery {
    answer: Answer,
    _count: Resuming,
}

/// One count in [`Inner::resuming`], given back when dropped.
#[derive(Debug)]
struct Resuming(Arc<Inner>);

impl Resuming {
    fn new(inner: &Arc<Inner>) -> Self {
        inner.resuming.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(inner))
    }
}

impl Drop for Resuming {
    fn drop(&mut self) {
        self.0.resuming.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What settling a session's events leaves to do once the lock is released: waking
/// tasks and handing answers over takes the runtime's locks, and doing it with the
/// session's lock held would make every other task wait for those too.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    /// Answers to hand over, and stream readers and senders to wake.
    answers: Vec<Wake>,
    writer: bool,
    /// The writer was parked and is to be spawned again, with its start's number.
    start_writer: Option<(Box<dyn writer::Park>, u32)>,
    closed: bool,
}

/// One thing [`Wakeups`] hands over or wakes.
#[derive(Debug)]
enum Wake {
    Answer(oneshot::Sender<Delivery>, Answer),
    Task(std::task::Waker),
}

/// The future that answers one call or notification from the peer.
pub(crate) type PendingCall = BoxFuture<'static, Result<RawValue, RpcError>>;

/// What a connection hands the peer's calls to (the router, behind its middleware). The
/// connection knows nothing more of routing.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The future answering `call` of `method`; nothing runs until it is polled.
    /// An error is the answer at once.
    fn call(
        &self,
        peer: &Connection,
        call: &IncomingCall,
        method: String,
        params: RawValue,
    ) -> Result<PendingCall, RpcError>;

    /// The future handling a notification, or `None` if nothing handles `method`.
    fn notification(
        &self,
        peer: &Connection,
        method: String,
        params: RawValue,
    ) -> Option<Result<PendingCall, RpcError>>;
}

/// The clock the sessions run on: tokio's, so that tests with a paused clock drive
/// deadlines and idle timers too.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A one-way flag that tasks can wait for: smaller than a `CancellationToken` (which
/// allocates a node of its own), for the one thing a connection's handles wait on.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    fired: AtomicBool,
    notify: Notify,
}

impl Finished {
    /// Fires the flag and wakes every waiter.
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Waits until the flag has fired.
    pub(crate) async fn wait(&self) {
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if self.fired.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// Fires a [`Finished`] when dropped.
pub(crate) struct FireOnDrop(pub(crate) Arc<Inner>);

impl Drop for FireOnDrop {
    fn drop(&mut self) {
        self.0.finished.fire();
    }
}

/// What the reader, the writer and every handle share.
#[derive(Debug)]
pub(crate) struct Inner {
    dialect: Dialect,
    state: Mutex<State>,
    /// Something was queued for writing, or the session closed.
    wake_writer: Notify,
    /// A timer moved, room opened in the write queue, or the session closed.
    wake_reader: Notify,
    /// Room opened in the write queue (callers wait for it).
    room: Notify,
    /// Fired once the writer has written what was queued and shut the socket (or gave
    /// up after the linger time), or the reader is gone.
    finished: Finished,
    /// Answers handed to callers that have not taken them yet: those callers are about
    /// to run, and often to call again (the writer waits for them to batch their calls).
    resuming: AtomicUsize,
    /// The reader is working through what it read (and may queue more answers).
    reading: AtomicBool,
}

/// The session and the tokio things that go with its ids.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) session: Session,
    /// The callers of this end's calls, by id.
    answers: HashMap<u32, oneshot::Sender<Delivery>>,
    /// The handler tasks of the peer's calls.
    handlers: Handlers,
    /// When the reader's timer is set to fire.
    armed: Option<Instant>,
    /// The peer's requests waiting for the writer to start them (`runner.rs`).
    to_run: Vec<runner::Request>,
    /// The bytes of their params: counted against the write queue's limit, so that the
    /// reader stops reading while the writer is held up (`Session::wants_read_with`).
    to_run_bytes: usize,
    /// The writer's parts while it has nothing to write (`writer.rs`).
    parked: Option<Box<dyn writer::Park>>,
    /// The running writer task, to abort with the connection.
    writer_task: Option<tokio::task::AbortHandle>,
    /// How many times the writer was started: a handle is kept only for the latest.
    writer_starts: u32,
    /// The writer wrote what the closed session queued and shut the socket (or a
    /// write failed): it will not run again.
    writer_exited: bool,
}

impl Inner {
    /// A connection's state; `peer` names the other end in warnings about it.
    pub(crate) fn new(
        dialect: Dialect,
        config: &ConnectionConfig,
        peer: Option<String>,
    ) -> Arc<Self> {
        let mut session = Session::new(dialect, config, now());
        if let Some(peer) = peer {
            session.set_peer(peer);
        }
        Arc::new(Self {
            dialect,
            state: Mutex::new(State {
                session,
                answers: HashMap::new(),
                handlers: Handlers::default(),
                armed: None,
                to_run: Vec::new(),
                to_run_bytes: 0,
                parked: None,
                writer_task: None,
                writer_starts: 0,
                writer_exited: false,
            }),
            wake_writer: Notify::new(),
            wake_reader: Notify::new(),
            room: Notify::new(),
            finished: Finished::default(),
            resuming: AtomicUsize::new(0),
            reading: AtomicBool::new(false),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across an await or user code, so a poisoned lock only
        // means a panic elsewhere; the state itself is consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the session's events: answers for callers and wake-ups go into `wakeups`
    /// (for [`wake`](Self::wake), once the lock is released), cancelled handlers are
    /// aborted, and the requests and notifications to start go into `to_start` (only the
    /// reader's `Session::handle` makes those).
    fn collect(&self, state: &mut State, to_start: &mut Vec<Event>, wakeups: &mut Wakeups) {
        while let Some(event) = state.session.poll_event() {
            match event {
                Event::Answer { id, result } => {
                    if let Some(tx) = state.answers.remove(&id) {
                        push(&mut wakeups.answers, Wake::Answer(tx, result));
                    }
                }
                Event::Cancel { call } => state.handlers.abort(&call),
                Event::Closed { .. } => {
                    state.handlers.abort_all();
                    wakeups.closed = true;
                }
                Event::PeerError { .. } => {}
                Event::Request {
                    call,
                    method,
                    params,
                } => {
                    // Started by the writer (`runner.rs`), never by the reader.
                    state.to_run_bytes = state.to_run_bytes.saturating_add(params.len());
                    push(&mut state.to_run, (call, method, params));
                    wakeups.writer = true;
                }
                Event::Wake(waker) => push(&mut wakeups.answers, Wake::Task(waker)),
                other => push(to_start, other),
            }
        }
        wakeups.writer |= state.session.has_transmit() || state.session.is_closed();
        if wakeups.writer && wakeups.start_writer.is_none() {
            if let Some(parked) = state.parked.take() {
                state.writer_starts = state.writer_starts.wrapping_add(1);
                wakeups.start_writer = Some((parked, state.writer_starts));
            }
        }
    }

    /// Does what [`collect`](Self::collect) left to do.
    fn wake(self: &Arc<Self>, wakeups: &mut Wakeups) {
        for wake in wakeups.answers.drain(..) {
            match wake {
                Wake::Answer(tx, answer) => {
                    let count = Resuming::new(self);
                    // A caller that gave up has dropped its receiver: the answer (and
                    // its count) is dropped here.
                    let _ = tx.send(Delivery {
                        answer,
                        _count: count,
                    });
                }
                Wake::Task(waker) => waker.wake(),
            }
        }
        if let Some((parked, start)) = wakeups.start_writer.take() {
            wakeups.writer = false;
            let task = parked.start(self);
            let mut state = self.lock();
            // Unless that writer already parked again or ended, or another start came
            // after this one.
            if state.parked.is_none() && !state.writer_exited && state.writer_starts == start {
                state.writer_task = Some(task);
            }
        }
        if std::mem::take(&mut wakeups.writer) {
            self.wake_writer.notify_one();
        }
        if std::mem::take(&mut wakeups.closed) {
            self.wake_reader.notify_one();
            self.room.notify_waiters();
        }
    }

    /// Settles the session's events after a session call: `state`'s lock is released
    /// before anything is woken. Requests and notifications to start go to `to_start`;
    /// `wakeups` is the reader's, kept for its room.
    pub(crate) fn settle_into(
        self: &Arc<Self>,
        mut state: MutexGuard<'_, State>,
        to_start: &mut Vec<Event>,
        wakeups: &mut Wakeups,
    ) {
        self.collect(&mut state, to_start, wakeups);
        drop(state);
        self.wake(wakeups);
    }

    /// [`settle_into`](Self::settle_into) where nothing can be asked to start.
    pub(crate) fn settle(self: &Arc<Self>, state: MutexGuard<'_, State>) {
        let mut to_start = Vec::new();
        self.settle_into(state, &mut to_start, &mut Wakeups::default());
        if !to_start.is_empty() {
            tracing::error!(?to_start, "requests to start outside the reader; dropped");
        }
    }

    /// The handler of `call` finished.
    pub(crate) fn respond(
        self: &Arc<Self>,
        call: &IncomingCall,
        result: Result<RawValue, RpcError>,
    ) {
        let mut state = self.lock();
        state.session.respond(now(), call, result);
        state.handlers.finished(call);
        self.settle(state);
    }

    /// Whether requests of the peer's wait for the writer to start them.
    pub(crate) fn has_requests_to_run(&self) -> bool {
        !self.lock().to_run.is_empty()
    }

    /// Parks `writer` until something is queued; started at once if something is.
    pub(crate) fn park_writer(self: &Arc<Self>, writer: Box<dyn writer::Park>) {
        let mut state = self.lock();
        state.parked = Some(writer);
        self.settle(state);
    }

    /// The writer is done for good: whoever waits for it (`drive`) can go on.
    pub(crate) fn writer_exited(&self) {
        let mut state = self.lock();
        state.writer_exited = true;
        state.writer_task = None;
        drop(state);
        self.wake_reader.notify_one();
    }

    /// Waits until the writer is done for good.
    pub(crate) async fn writer_done(&self) {
        loop {
            let mut woken = pin!(self.wake_reader.notified());
            woken.as_mut().enable();
            if self.lock().writer_exited {
                return;
            }
            woken.await;
        }
    }

    /// Stops the writer, running or parked (the connection is gone): a parked writer
    /// holds a handle to this state, which would otherwise keep it alive.
    pub(crate) fn stop_writer(&self) {
        let mut state = self.lock();
        let task = state.writer_task.take();
        let parked = state.parked.take();
        state.writer_exited = true;
        drop(state);
        if let Some(task) = task {
            task.abort();
        }
        drop(parked);
    }

    /// Room opened in the write queue: wake whoever waits for it.
    pub(crate) fn room_opened(self: &Arc<Self>) {
        self.room.notify_waiters();
        let mut state = self.lock();
        state.session.room_opened();
        self.settle(state);
    }

    /// A notification handler finished.
    pub(crate) fn notification_done(self: &Arc<Self>) {
        let mut state = self.lock();
        state.session.notification_done(now());
        self.settle(state);
    }

    /// Closes the session with `reason` (if it is not closed yet).
    pub(crate) fn close(self: &Arc<Self>, reason: CloseReason) {
        let mut state = self.lock();
        state.session.close(reason);
        self.settle(state);
    }
}

/// A handle to one connection, for calls and notifications to its peer.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    inner: Arc<Inner>,
}

impl Connection {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// A connection that is closed from the start: every call fails with
    /// [`CallError::Closed`]. For contexts that belong to no connection.
    pub(crate) fn detached() -> Self {
        let inner = Inner::new(
            Dialect::MsgpackRpc,
            &ConnectionConfig::client_default(),
            None,
        );
        inner.close(CloseReason::Closed);
        inner.finished.fire();
        Self { inner }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.lock().session.is_closed()
    }

    /// Closes the connection: calls still waiting fail with [`CallError::Closed`]; what
    /// is queued is still written.
    pub(crate) fn close(&self) {
        self.inner.close(CloseReason::Closed);
    }

    /// Waits until the connection is closed and what was queued has been written.
    pub(crate) async fn closed(&self) {
        self.inner.finished.wait().await;
    }

    /// Waits until the write queue has room (or the connection closed, or `deadline`
    /// passed), then runs `queue` with the lock held.
    async fn when_room<T>(
        &self,
        deadline: Option<Instant>,
        mut queue: impl FnMut(&mut State) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        // The common case first: room now, no waiting registered.
        {
            let mut state = self.inner.lock();
            if state.session.has_room() || state.session.is_closed() {
                let queued = queue(&mut state);
                self.inner.settle(state);
                return queued;
            }
        }
        loop {
            let mut room = pin!(self.inner.room.notified());
            room.as_mut().enable();
            {
                let mut state = self.inner.lock();
                if state.session.has_room() || state.session.is_closed() {
                    let queued = queue(&mut state);
                    self.inner.settle(state);
                    return queued;
                }
            }
            match deadline {
                None => room.await,
                Some(at) => {
                    let at = tokio::time::Instant::from_std(at);
                    if tokio::time::timeout_at(at, room).await.is_err() {
                        return Err(CallError::DeadlineExceeded);
                    }
                }
            }
        }
    }

    /// Calls `method` and waits for the answer, until `deadline` if there is one.
    pub(crate) async fn call(
        &self,
        method: String,
        params: RawValue,
        deadline: Option<Instant>,
    ) -> Result<RawValue, CallError> {
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        let mut request = Some((method, params));
        let id = self
            .when_room(deadline, |state| {
                // Called once: when there is room, or the connection is closed.
                let (method, params) = request.take().unwrap_or_default();
                let id = state.session.call(method, params, deadline)?;
                if let Some(tx) = tx.take() {
                    state.answers.insert(id, tx);
                }
                // The reader's timer must fire by this deadline.
                if let Some(at) = deadline {
                    if state.armed.is_none_or(|armed| at < armed) {
                        self.inner.wake_reader.notify_one();
                    }
                }
                Ok(id)
            })
            .await?;
        let mut waiting = Waiting {
            inner: &self.inner,
            id,
            done: false,
        };
        let delivered = rx.await;
        waiting.done = true;
        match delivered {
            // The count goes as this caller goes on.
            Ok(Delivery { answer, .. }) => answer,
            Err(_) => Err(self.inner.lock().session.close_error()),
        }
    }

    /// Queues a notification.
    pub(crate) async fn notify(&self, method: String, params: RawValue) -> Result<(), CallError> {
        let mut notification = Some((method, params));
        self.when_room(None, |state| {
            let (method, params) = notification.take().unwrap_or_default();
            state.session.notify(method, params)
        })
        .await
    }
}

/// A call between being queued and its answer. Dropped early (the caller's future
/// dropped, e.g. by a timeout around it), it tells the session, which sends the cancel.
struct Waiting<'a> {
    inner: &'a Arc<Inner>,
    id: u32,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.inner.lock();
        // If the answer is already on its way, it is dropped with the receiver.
        state.answers.remove(&self.id);
        if state.session.abandon(now(), self.id) {
            tracing::debug!(id = self.id, "call abandoned; sending cancel");
        }
        self.inner.settle(state);
    }
}
