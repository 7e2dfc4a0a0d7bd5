//! The reader half of a connection and the life of the whole: read, decode, feed the
//! session, start what it asks for, keep its timer, and close in order (handlers
//! aborted, waiting calls failed, writer flushed).

use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use msgwire_wire::{Dialect, Frame, Message, RawValue, WireCodec, WireError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::handlers::finish;
use super::{now, writer, Connection, FireOnDrop, Handler, Inner, PendingCall, State, Wakeups};
use crate::config::ConnectionConfig;
use crate::error::CloseReason;
use crate::room::push;
use crate::session::Event;

/// The most a read takes in between messages, while the peer sends a lot.
const READ_CHUNK: usize = 8 * 1024;

/// The least a read is offered between messages, once the peer's reads come small: an
/// idle connection holds a read buffer of this size, not [`READ_CHUNK`].
const SMALL_READ: usize = 128;

/// The most one read takes in. While a large message arrives the buffer doubles up to
/// this per read, so a stalled header costs nothing and a large message is read in few
/// system calls; and no single read brings in more than this much to scan at once.
/// After each such amount read the reader yields to the runtime, so that a peer sending
/// without a pause holds up the other connections on its worker for one read's work at
/// most. The slowest input is a large msgpack-rpc message of arrays of one-element
/// arrays, scanned as it arrives: 3.5–5.5 ns a byte, so 0.25–0.36 ms a read
/// (BENCHMARKS.md, "Fairness"; without the yield a reader kept its worker for a whole
/// 8 MiB message, and a small call on another connection waited up to half a second).
const MAX_READ: usize = 64 * 1024;

/// A read stops at the end of a message of these sizes when that end is known, so that
/// the next message starts in a buffer of its own (see `Reader::upkeep_buffer`).
/// Smaller messages are read as they come: their buffer does not grow, so nothing is
/// copied, and stopping would only add a system call. Larger ones too: the copy of the
/// next message's start is small beside them, and buffers of many megabytes cut to
/// each message's exact size were seen to stay with glibc's allocator after their
/// connections closed (`tests/memory_amplification.rs`).
const EXACT_READS: std::ops::RangeInclusive<usize> = 16 * 1024..=256 * 1024;

/// Messages handed to the session under one lock, at most.
const MAX_BATCH_MESSAGES: usize = 64;

/// Framed messages at least this large are parsed (their body scanned) on the blocking
/// pool, so that one peer's large message does not hold up the worker that other
/// connections run on.
const OFFLOAD_PARSE: usize = 256 * 1024;

/// Runs one connection to its end and returns why it ended.
///
/// `prefix` holds bytes already read from `io` (the server's dialect detection).
/// `shutdown`, when it fires, starts a graceful close: new requests are answered
/// UNAVAILABLE, and the connection closes once its running handlers finish.
///
/// Dropping the returned future (an aborted task) closes the session, which aborts the
/// handlers, and aborts the writer.
pub(crate) async fn drive<IO>(
    io: IO,
    prefix: &[u8],
    inner: Arc<Inner>,
    handler: Arc<dyn Handler>,
    config: &ConnectionConfig,
    shutdown: Option<CancellationToken>,
) -> CloseReason
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let codec = config.codec(inner.dialect);
    // However the driver ends (even dropped), `Client::closed` waiters wake up, no
    // handler keeps running, and no caller keeps waiting.
    let _finished = FireOnDrop(Arc::clone(&inner));
    let _closed = CloseOnDrop(Arc::clone(&inner));
    let (read_half, write_half) = tokio::io::split(io);
    // The writer starts parked: the first thing queued spawns it (`writer.rs`).
    let writer_guard = StopWriter(Arc::clone(&inner));
    inner.park_writer(Box::new(writer::Writer {
        io: write_half,
        codec: codec.encoder(),
        runner: super::runner::Runner {
            handler: Arc::clone(&handler),
            conn: Connection::new(Arc::clone(&inner)),
        },
        write_timeout: config.idle_timeout,
        runtime: tokio::runtime::Handle::current(),
    }));

    let mut buf = BytesMut::new();
    buf.extend_from_slice(prefix);
    let mut reader = Reader {
        io: read_half,
        buf,
        codec,
        conn: Connection::new(Arc::clone(&inner)),
        inner: Arc::clone(&inner),
        handler,
        max_notifications: config.max_notifications,
        notifications: None,
        starting: Vec::new(),
        wakeups: Wakeups::default(),
        parsed: Vec::new(),
        read_size: READ_CHUNK,
        unyielded: 0,
    };
    let reason = reader.run(shutdown.unwrap_or_default()).await;
    tracing::debug!(?reason, "connection closing");
    drop(reader);
    // In order: no handler keeps running, no caller keeps waiting (closing the session
    // does both), then the writer sends what is queued and shuts the socket.
    inner.close(reason.clone());
    if tokio::time::timeout(config.linger, inner.writer_done())
        .await
        .is_err()
    {
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

/// Stops the writer when dropped, running or parked.
struct StopWriter(Arc<Inner>);

impl Drop for StopWriter {
    fn drop(&mut self) {
        self.0.stop_writer();
    }
}

/// Closes the session when dropped: its handlers are aborted, its callers answered.
struct CloseOnDrop(Arc<Inner>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(CloseReason::Closed);
    }
}

struct Reader<R> {
    io: ReadHalf<R>,
    buf: BytesMut,
    codec: WireCodec,
    inner: Arc<Inner>,
    /// The handle handlers get to call this connection's peer.
    conn: Connection,
    handler: Arc<dyn Handler>,
    max_notifications: u32,
    /// The queue to the task that runs notification handlers in order.
    notifications: Option<NotificationQueue>,
    /// The requests and notifications the session asked to start (kept for its room).
    starting: Vec<Event>,
    /// What is left to wake once the lock is released (kept for its room).
    wakeups: Wakeups,
    /// Messages decoded, waiting to be handed to the session (kept for its room).
    parsed: Vec<Result<Message, WireError>>,
    /// What the next read between messages is offered: [`READ_CHUNK`] while the peer
    /// fills what it is offered, down to [`SMALL_READ`] once its reads come small.
    read_size: usize,
    /// Bytes read since the reader last yielded to the runtime.
    unyielded: usize,
}

/// The queue of notifications waiting for their handlers, and the task that runs them
/// (aborted when the connection ends).
struct NotificationQueue {
    queue: mpsc::Sender<PendingCall>,
    _worker: AbortOnDrop,
}

impl<R: AsyncRead> Reader<R> {
    async fn run(&mut self, shutdown: CancellationToken) -> CloseReason {
        let mut shutting_down = pin!(shutdown.cancelled());
        let mut draining = false;
        // One timer, moved only when the session wants to be woken earlier than it is
        // set for. Firing early is harmless (the session finds nothing due and says when
        // next), so a deadline that moved later needs no reset: a busy connection does
        // not touch the timer wheel for every read. Boxed, made when first needed and
        // let go when the connection is quiet with nothing due, so that an idle
        // connection without timeouts does not carry it.
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        let mut armed: Option<std::time::Instant> = None;
        loop {
            // Everything already buffered first: a read may have brought many messages,
            // and the writer waits for their answers to batch them.
            self.inner.reading.store(true, Ordering::Relaxed);
            self.read_buffered().await;
            self.inner.reading.store(false, Ordering::Relaxed);
            let (wants_read, quiet) = {
                let mut state = self.inner.lock();
                if let Some(reason) = state.session.close_reason() {
                    return reason.clone();
                }
                let due = state.session.poll_timeout();
                if let Some(due) = due {
                    if armed.is_none_or(|at| due < at) {
                        match timer.as_mut() {
                            Some(timer) => timer.as_mut().reset(due.into()),
                            None => timer = Some(Box::pin(tokio::time::sleep_until(due.into()))),
                        }
                        armed = Some(due);
                    }
                }
                let quiet = state.session.let_go_if_quiet();
                // Quiet with nothing due (a keepalive armed while a call ran, say): the
                // timer goes, so an idle connection does not carry it.
                if quiet && due.is_none() {
                    armed = None;
                    timer = None;
                }
                state.armed = armed;
                // The peer's requests waiting for the writer count as answers queued.
                (state.session.wants_read_with(state.to_run_bytes), quiet)
            };
            let limit = self.upkeep_buffer(quiet, wants_read);
            let offered = (self.buf.capacity() - self.buf.len()).min(limit);
            let wake = self.inner.wake_reader.notified();
            let mut limited = (&mut self.buf).limit(limit);
            let woke = tokio::select! {
                biased;
                () = wake => Woke::Nudged,
                () = shutting_down.as_mut(), if !draining => Woke::Shutdown,
                () = fire(&mut timer), if armed.is_some() => Woke::Timer,
                read = self.io.read_buf(&mut limited), if wants_read => {
                    Woke::Read(read)
                }
            };
            match woke {
                Woke::Nudged => {}
                Woke::Shutdown => {
                    draining = true;
                    self.with_session(|state| state.session.shutdown());
                }
                Woke::Timer => {
                    armed = None;
                    self.with_session(|state| state.session.handle_timeout(now()));
                }
                Woke::Read(Ok(0)) => {
                    if self.codec.is_mid_message() {
                        tracing::debug!("the peer closed in the middle of a message");
                    }
                    self.with_session(|state| state.session.handle_eof());
                }
                Woke::Read(Ok(n)) => {
                    self.with_session(|state| state.session.bytes_received(now()));
                    self.read_done(n, offered).await;
                }
                Woke::Read(Err(error)) => {
                    self.with_session(|state| state.session.close(CloseReason::Io(Arc::new(error))))
                }
            }
        }
    }

    /// Runs `f` on the state with the lock held, then settles.
    fn with_session(&self, f: impl FnOnce(&mut State)) {
        let mut state = self.inner.lock();
        f(&mut state);
        self.inner.settle(state);
    }

    /// Makes room for the next read and returns how much it may take in: doubling
    /// while a large message arrives (up to [`MAX_READ`] more per read),
    /// [`read_size`](Self::read_size) otherwise. An empty buffer is let go when the
    /// connection is `quiet` (nothing in flight either way) or it grew past a chunk, so
    /// an idle connection holds a small one, and one under load does not allocate a
    /// buffer per read. A quiet connection lets go of its (empty) lists of handlers to
    /// start and answer too.
    ///
    /// A run of large messages (a download's chunks) is read without copying them: a
    /// read stops at the end of a message whose end is known, so the next message starts
    /// in a buffer of its own instead of being copied out of this one's when it grows;
    /// and between messages, after one of more than a chunk, the next read is given
    /// that much room and takes no more (`WireCodec::earned`) — only if it reads now
    /// (`wants_read`): a connection that is not read holds no such room.
    fn upkeep_buffer(&mut self, quiet: bool, wants_read: bool) -> usize {
        if self.buf.is_empty() && (quiet || self.buf.capacity() > READ_CHUNK) {
            self.buf = BytesMut::new();
        }
        if quiet {
            self.starting = Vec::new();
            self.parsed = Vec::new();
            self.wakeups = Wakeups::default();
        }
        let spare = self.buf.capacity() - self.buf.len();
        let (want, limit) = if self.codec.is_mid_message() {
            let grow = self.buf.len().clamp(READ_CHUNK, MAX_READ);
            match self.codec.frame_end() {
                // The framing reserved room toward the end already (capped: the end is
                // the peer's word); the read stops there.
                Some(end) if EXACT_READS.contains(&end) => {
                    (grow, end.saturating_sub(self.buf.len()).clamp(1, MAX_READ))
                }
                _ => (grow, MAX_READ),
            }
        } else {
            let earned = self.codec.earned();
            if wants_read && self.buf.is_empty() && earned > self.read_size {
                (earned, earned.min(MAX_READ))
            } else {
                (self.read_size, MAX_READ)
            }
        };
        if spare < want / 2 {
            self.buf.reserve(want);
        }
        limit
    }

    /// After a read of `n` bytes out of `offered`: a read that filled its room asks for
    /// twice the room next time, a small one for [`SMALL_READ`]. Every [`MAX_READ`]
    /// bytes, the other tasks get their turn.
    async fn read_done(&mut self, n: usize, offered: usize) {
        if n >= offered {
            self.read_size = (self.read_size * 2).min(READ_CHUNK);
        } else if n <= SMALL_READ / 2 {
            self.read_size = SMALL_READ;
        }
        self.unyielded += n;
        if self.unyielded >= MAX_READ {
            self.unyielded = 0;
            tokio::task::yield_now().await;
        }
    }

    /// Decodes and handles every whole message in the buffer.
    async fn read_buffered(&mut self) {
        loop {
            // The whole frames buffered, up to a batch, parsed outside the lock...
            let mut fatal = false;
            while self.parsed.len() < MAX_BATCH_MESSAGES {
                let parsed = match self.codec.next_frame(&mut self.buf) {
                    Ok(Some(frame)) => parse(&self.codec, frame).await,
                    Ok(None) => break,
                    Err(error) => Err(error),
                };
                fatal = matches!(&parsed, Err(e) if e.is_fatal());
                push(&mut self.parsed, parsed);
                if fatal {
                    break;
                }
            }
            if self.parsed.is_empty() {
                break;
            }
            // ...handed to the session under one lock...
            {
                let inner = Arc::clone(&self.inner);
                let mut state = inner.lock();
                let now = now();
                for parsed in self.parsed.drain(..) {
                    state.session.handle(now, parsed);
                }
                inner.settle_into(state, &mut self.starting, &mut self.wakeups);
            }
            // ...and their handlers started by the writer, not here.
            self.start();
            if fatal {
                break;
            }
        }
    }

    /// Queues the notifications the session asked for.
    fn start(&mut self) {
        let mut events = std::mem::take(&mut self.starting);
        for event in events.drain(..) {
            // Requests went to the writer, which starts them (`runner.rs`).
            if let Event::Notification { method, params } = event {
                self.queue_notification(method, params);
            }
        }
        self.starting = events;
    }

    /// Notifications are handled one at a time, in the order they arrived (a peer that
    /// sends "line added" then "line removed" sees them applied in that order), by one
    /// task per connection, started with the first notification. The session bounds
    /// how many are queued; one for a method with no handler is not queued at all.
    fn queue_notification(&mut self, method: String, params: RawValue) {
        let shown = msgwire_wire::text::excerpt(&method, 64).into_owned();
        let pending = match self.handler.notification(&self.conn, method, params) {
            Some(Ok(pending)) => pending,
            Some(Err(error)) => {
                tracing::debug!(%error, "notification refused");
                return self.with_session(|state| state.session.notification_done(now()));
            }
            None => {
                tracing::debug!(method = %shown, "no handler for a notification");
                return self.with_session(|state| state.session.notification_done(now()));
            }
        };
        let capacity = self.max_notifications as usize;
        let queue = self.notifications.get_or_insert_with(|| {
            let (queue, mut queued) = mpsc::channel::<PendingCall>(capacity);
            let inner = Arc::clone(&self.inner);
            let worker = tokio::spawn(
                async move {
                    while let Some(pending) = queued.recv().await {
                        if let Err(error) = finish(pending).await {
                            tracing::debug!(%error, "notification handler failed");
                        }
                        inner.notification_done();
                    }
                }
                .in_current_span(),
            );
            NotificationQueue {
                queue,
                _worker: AbortOnDrop(worker.abort_handle()),
            }
        });
        if queue.queue.try_send(pending).is_err() {
            // Cannot happen while the session counts them; never wait here either way.
            self.with_session(|state| state.session.notification_done(now()));
        }
    }
}

/// Parses a frame; a large framed one on the blocking pool (msgpack-rpc was scanned as
/// it arrived; what is left is the envelope).
async fn parse(codec: &WireCodec, frame: Frame) -> Result<Message, WireError> {
    if frame.len() < OFFLOAD_PARSE || codec.dialect() == Dialect::MsgpackRpc {
        return codec.parse(frame);
    }
    let codec = codec.clone();
    match tokio::task::spawn_blocking(move || codec.parse(frame)).await {
        Ok(parsed) => parsed,
        Err(join) => Err(WireError::Io(std::io::Error::other(format!(
            "parsing a message failed: {join}"
        )))),
    }
}

/// What woke the reader.
enum Woke {
    /// A timer moved, room opened, the session closed: look again.
    Nudged,
    Shutdown,
    Timer,
    Read(std::io::Result<usize>),
}

/// Waits for `timer`, or forever if there is none.
async fn fire(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}
