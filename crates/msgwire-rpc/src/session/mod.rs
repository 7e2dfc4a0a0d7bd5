//! One connection's RPC logic as a state machine with no sockets, no tasks and no clock.
//!
//! A [`Session`] owns everything a connection knows: the ids of this end's calls and
//! their deadlines, the peer's calls being handled here, the notifications queued, what
//! is waiting to be written, and the idle timer. It is driven from outside, in the
//! style of quinn-proto's `Connection`:
//!
//! ```text
//!            decoded messages ──handle(now, …)──┐        ┌──poll_transmit()──> messages to write
//!   this end's calls, answers ──call / respond──┤Session ├──poll_event()─────> handlers to run, answers,
//!                   the clock ──handle_timeout──┘        │                     cancels, close
//!                                                        └──poll_timeout()───> when to call back
//! ```
//!
//! Time comes in as `now`; nothing inside reads a clock, so every rule below is tested
//! with explicit instants (`session/tests.rs`, `tests/session.rs`). The tokio driver in
//! `connection/` is a thin loop around it: it decodes what it reads, feeds the session,
//! runs the handlers [`Event::Request`] asks for, writes what
//! [`poll_transmit`](Session::poll_transmit) gives, and sleeps until
//! [`poll_timeout`](Session::poll_timeout).
//!
//! The rules it enforces (docs/PROTOCOL.md, sections 2, 6 and 7):
//!
//! * a request whose id is already in flight is answered INVALID_ARGUMENT, and the
//!   first call keeps its id (a `"$/cancel"` still reaches it);
//! * over `max_in_flight` calls, RESOURCE_EXHAUSTED; notifications have their own bound
//!   (`max_notifications`), past which they are dropped with a rate-limited warning;
//! * a malformed request with a readable id is answered INVALID_ARGUMENT; a malformed
//!   response with a readable id fails the call waiting for it at once; a malformed
//!   frame with no readable id gets [`Message::Error`] (the frame was whole, so the
//!   connection goes on);
//! * a broken stream (a frame over the limit, nesting too deep to measure) is answered
//!   — the request it broke in, if its id could be read, else with [`Message::Error`] —
//!   and closes;
//! * a passed deadline fails the call with DEADLINE_EXCEEDED and sends `"$/cancel"`;
//! * no input and nothing in flight for the idle timeout closes the connection;
//! * while draining (graceful shutdown) new requests get UNAVAILABLE, and the session
//!   closes once its handlers are done;
//! * closing fails every call still waiting, with the reason.
//!
//! What is queued for writing is counted in bytes: [`wants_read`](Session::wants_read)
//! turns false once the answers queued for the peer pass `write_queue_bytes`, so a peer
//! that does not read its answers stops being read; [`has_room`](Session::has_room),
//! over everything queued, tells this end's callers to wait.

mod events;
mod streams;
#[cfg(test)]
mod tests;
mod warn;

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Maps keyed by call ids: foldhash, seeded per process (the ids of the peer's calls are
/// the peer's to choose, and a table holds at most `max_in_flight` of them).
use foldhash::{HashMap, HashMapExt};
use msgwire_wire::stream::{StreamMessage, PING_METHOD};
use msgwire_wire::text::{excerpt, EXCERPT_LEN};
use msgwire_wire::{
    CallId, Code, Dialect, EncodeError, Malformed, Message, RawValue, RpcError, WireError,
    CANCEL_METHOD,
};

pub use events::{Event, IncomingCall};
pub use streams::{Input, Output, StreamKey};

use crate::config::ConnectionConfig;
use crate::error::{CallError, CloseReason, ProtocolError};
use crate::room::push_back;
use warn::Warnings;

/// The limits of a session: the same for every connection made from one
/// [`ConnectionConfig`], so they are shared, not copied.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) max_in_flight: u32,
    pub(crate) max_notifications: u32,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_queue_bytes: usize,
    /// Keepalive, in milliseconds: with something in flight, a `$/ping` after the
    /// interval without input, and the connection closed if nothing at all arrives the
    /// timeout after it.
    pub(crate) keepalive_ms: Option<(u32, u32)>,
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Graceful shutdown: no new requests; closes when the handlers are done.
    Draining,
    Closed,
}

/// One connection's RPC state. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    dialect: Dialect,
    /// The limits, shared by every session made from one configuration.
    limits: std::sync::Arc<Limits>,
    state: State,
    reason: Option<CloseReason>,
    /// The next id for this end's calls.
    next_id: u32,
    /// Tells apart two calls of the peer that reuse an id one after the other.
    next_seq: u64,
    /// This end's calls waiting for an answer, and their deadlines.
    waiting: HashMap<u32, Option<Instant>>,
    deadlines: BTreeSet<(Instant, u32)>,
    /// The peer's calls being handled here.
    running: HashMap<CallId, u64>,
    /// The peer's notifications queued or running.
    notifications: u32,
    outgoing: VecDeque<Message>,
    /// What `outgoing` holds, in bytes (about: see `Message::encoded_len_hint`).
    outgoing_bytes: usize,
    /// The part of it that answers the peer (responses, errors for no call): what the
    /// peer's own input made and its reading drains.
    answer_bytes: usize,
    events: VecDeque<Event>,
    /// Since when the connection has been quiet: the last input, or the moment the
    /// last call or notification in flight ended, whichever came later.
    quiet_since: Instant,
    /// The warning budget, made at the first warning.
    warnings: Option<Box<Warnings>>,
    /// Who the peer is (an address), for the warnings about it.
    peer: Option<Box<str>>,
    /// The streams (`streams.rs`), once there has been one.
    streams: Option<Box<streams::Tables>>,
    /// When the peer was last heard from.
    last_heard: Instant,
    /// The id of the `$/ping` in flight (sent at `last_heard` + the interval).
    ping: Option<u32>,
}

impl Session {
    /// A session for a connection speaking `dialect`, with `config`'s limits, that
    /// starts at `now`.
    pub fn new(dialect: Dialect, config: &ConnectionConfig, now: Instant) -> Self {
        Self {
            dialect,
            limits: config.session_limits(),
            state: State::Open,
            reason: None,
            next_id: 1,
            next_seq: 0,
            waiting: HashMap::new(),
            deadlines: BTreeSet::new(),
            running: HashMap::new(),
            notifications: 0,
            outgoing: VecDeque::new(),
            outgoing_bytes: 0,
            answer_bytes: 0,
            events: VecDeque::new(),
            quiet_since: now,
            warnings: None,
            peer: None,
            streams: None,
            last_heard: now,
            ping: None,
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Names the peer (an address) in every warning about it.
    pub fn set_peer(&mut self, peer: impl Into<Box<str>>) {
        self.peer = Some(peer.into());
    }

    /// Whether a warning about the peer may be logged now (a few per window).
    fn warn_allowed(&mut self, now: Instant) -> bool {
        let peer = self.peer.as_deref();
        self.warnings
            .get_or_insert_with(|| Box::new(Warnings::new(now)))
            .allow(now, peer)
    }

    /// The peer's name, `?` if none was given.
    pub fn peer(&self) -> &str {
        self.peer.as_deref().unwrap_or("?")
    }

    // ---- input from the peer -------------------------------------------------------

    /// Bytes arrived (a whole message or not): the connection is not idle.
    pub fn bytes_received(&mut self, now: Instant) {
        self.quiet_since = now;
        self.heard(now);
    }

    /// The peer is alive: a ping in flight is answered by this as well as by its
    /// response.
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping = None;
    }

    /// A decoded message, or why the bytes were not one.
    pub fn handle(&mut self, now: Instant, input: Result<Message, WireError>) {
        if self.state == State::Closed {
            return;
        }
        self.quiet_since = now;
        self.heard(now);
        match input {
            Ok(Message::Request { id, method, .. }) if method == PING_METHOD => {
                self.queue(Message::Response {
                    id,
                    result: Ok(RawValue::nil()),
                });
            }
            Ok(Message::Request { id, method, params }) => self.on_request(now, id, method, params),
            Ok(Message::Response { id, result }) => {
                self.answer_waiting(&id, result.map_err(CallError::Rpc))
            }
            Ok(Message::Notification { method, params }) if method == CANCEL_METHOD => {
                let cancel = Message::Notification { method, params };
                match cancel.cancelled_id() {
                    Some(id) => self.on_cancel(id),
                    None => tracing::debug!("a cancel notification without an id"),
                }
            }
            Ok(Message::Notification { method, params }) => {
                match StreamMessage::parse(&method, &params) {
                    Some(parsed) => self.on_stream(parsed),
                    None => self.on_notification(now, method, params),
                }
            }
            Ok(Message::Error { error }) => {
                if self.warn_allowed(now) {
                    tracing::warn!(
                        peer = self.peer(),
                        code = %error.code,
                        message = %excerpt(&error.message, EXCERPT_LEN),
                        "the peer reports an error that belongs to no call"
                    );
                }
                push_back(&mut self.events, Event::PeerError { error });
            }
            Ok(other) => tracing::debug!(?other, "a message kind this version ignores"),
            Err(WireError::Malformed(malformed)) => self.on_malformed(now, malformed),
            Err(WireError::Stream { error, request }) => self.on_broken(now, error, request),
            Err(WireError::Io(error)) => self.close(CloseReason::Io(error.into())),
            Err(error) => {
                tracing::debug!(%error, "unexpected decoding error");
                self.close(CloseReason::Closed)
            }
        }
    }

    /// The peer closed its side: nothing more will arrive.
    pub fn handle_eof(&mut self) {
        self.close(CloseReason::Closed);
    }

    fn on_request(&mut self, now: Instant, id: CallId, method: String, params: RawValue) {
        if self.state == State::Draining {
            let error = RpcError::new(Code::Unavailable, "the server is shutting down");
            return self.queue(Message::Response {
                id,
                result: Err(error),
            });
        }
        if self.running.contains_key(&id) {
            if self.warn_allowed(now) {
                tracing::warn!(peer = self.peer(), %id, "a request reuses the id of a call still in flight");
            }
            let error = RpcError::invalid_argument(format!(
                "a call with id {id} is already in flight on this connection; ids must be \
                 unique among the calls in flight"
            ));
            return self.queue(Message::Response {
                id,
                result: Err(error),
            });
        }
        if self.running.len() >= self.limits.max_in_flight as usize {
            let error = RpcError::resource_exhausted(format!(
                "too many calls in flight on this connection (the limit is {})",
                self.limits.max_in_flight
            ));
            return self.queue(Message::Response {
                id,
                result: Err(error),
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.running.insert(id.clone(), seq);
        push_back(
            &mut self.events,
            Event::Request {
                call: IncomingCall { id, seq },
                method,
                params,
            },
        );
    }

    fn on_cancel(&mut self, id: CallId) {
        match self.running.remove_entry(&id) {
            Some((id, seq)) => {
                tracing::debug!(peer = self.peer(), %id, "call cancelled by the peer");
                self.end_theirs(&id);
                push_back(
                    &mut self.events,
                    Event::Cancel {
                        call: IncomingCall { id, seq },
                    },
                );
                self.check_drained();
            }
            None => tracing::debug!(%id, "cancel for a call that is not running"),
        }
    }

    fn on_notification(&mut self, now: Instant, method: String, params: RawValue) {
        if self.notifications >= self.limits.max_notifications {
            if self.warn_allowed(now) {
                tracing::warn!(
                    peer = self.peer(),
                    method = %excerpt(&method, EXCERPT_LEN),
                    limit = self.limits.max_notifications,
                    "dropped a notification: too many queued on this connection"
                );
            }
            return;
        }
        self.notifications += 1;
        self.events
            .push_back(Event::Notification { method, params });
    }

    /// A whole frame that is not a message (docs/PROTOCOL.md, section 7).
    fn on_malformed(&mut self, now: Instant, malformed: Malformed) {
        if self.warn_allowed(now) {
            tracing::warn!(peer = self.peer(), dialect = %self.dialect, "{}", excerpt(&malformed.to_string(), 4 * EXCERPT_LEN));
        }
        if let Some(id) = malformed.request_id() {
            let error =
                RpcError::invalid_argument(format!("malformed request: {}", malformed.reason));
            return self.queue(Message::Response {
                id: id.clone(),
                result: Err(error),
            });
        }
        if let Some(id) = malformed.response_id() {
            let id = id.clone();
            let error = CallError::Protocol(ProtocolError::MalformedResponse(malformed));
            return self.answer_waiting(&id, Err(error));
        }
        // No id to answer: an error that belongs to no call. The frame was whole, so the
        // stream is intact and the connection goes on.
        let error = RpcError::invalid_argument(format!(
            "malformed {}: {}",
            malformed.kind, malformed.reason
        ));
        self.queue(Message::Error { error });
    }

    /// Bytes that break the stream: answer what can be answered, then close.
    fn on_broken(&mut self, now: Instant, error: msgwire_frame::Error, request: Option<CallId>) {
        if self.warn_allowed(now) {
            tracing::warn!(peer = self.peer(), dialect = %self.dialect, %error, "unreadable input; closing the connection");
        }
        // INVALID_ARGUMENT, as for any input this server cannot take: for a message
        // over the frame limit as for one nested too deep to measure.
        let answer = RpcError::invalid_argument(error.to_string());
        self.queue(match request {
            Some(id) => Message::Response {
                id,
                result: Err(answer),
            },
            None => Message::Error { error: answer },
        });
        let reason = CloseReason::Protocol(ProtocolError::Stream(std::sync::Arc::new(error)));
        self.close(reason);
    }

    // ---- this end's calls ----------------------------------------------------------

    /// Starts a call: queues the request and returns its id. With a `deadline`, the call
    /// fails with DEADLINE_EXCEEDED at [`handle_timeout`](Self::handle_timeout) once it
    /// has passed. Fails if the connection is closed. (Callers should wait for
    /// [`has_room`](Self::has_room) first; the request is queued either way.)
    pub fn call(
        &mut self,
        method: String,
        params: RawValue,
        deadline: Option<Instant>,
    ) -> Result<u32, CallError> {
        if self.state == State::Closed {
            return Err(self.close_error());
        }
        let id = self.next_free_id();
        self.waiting.insert(id, deadline);
        if let Some(at) = deadline {
            self.deadlines.insert((at, id));
        }
        self.queue(Message::Request {
            id: id.into(),
            method,
            params,
        });
        Ok(id)
    }

    /// Ids wrap after 2^32 calls; one still in use by a very slow call is skipped.
    fn next_free_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            let pinging = self.ping == Some(id);
            let streaming = self.streams.as_ref().is_some_and(|t| t.has_mine(id));
            if !self.waiting.contains_key(&id) && !streaming && !pinging {
                return id;
            }
        }
    }

    /// Queues a notification to the peer.
    pub fn notify(&mut self, method: String, params: RawValue) -> Result<(), CallError> {
        if self.state == State::Closed {
            return Err(self.close_error());
        }
        self.queue(Message::Notification { method, params });
        Ok(())
    }

    /// The caller of call `id` gave up: forget it and, if it was still waiting, tell
    /// the peer to cancel it. Returns whether it was waiting.
    pub fn abandon(&mut self, now: Instant, id: u32) -> bool {
        let Some(deadline) = self.waiting.remove(&id) else {
            return false;
        };
        self.mark_quiet(now);
        if let Some(at) = deadline {
            self.deadlines.remove(&(at, id));
        }
        if self.state != State::Closed {
            self.queue(Message::cancel(&id.into()));
        }
        true
    }

    /// How many of this end's calls wait for an answer.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn answer_waiting(&mut self, id: &CallId, result: Result<RawValue, CallError>) {
        let Some(id) = id.as_u32() else {
            return tracing::debug!(%id, "a response for an id this end never uses");
        };
        match self.waiting.remove(&id) {
            Some(deadline) => {
                if let Some(at) = deadline {
                    self.deadlines.remove(&(at, id));
                }
                if let Some(result) = self.end_mine(id, result) {
                    push_back(&mut self.events, Event::Answer { id, result });
                }
            }
            None => tracing::debug!(id, "a response for a call nobody waits for"),
        }
    }

    // ---- answers from this end's handlers ------------------------------------------

    /// The handler of `call` finished: queue its response. Dropped if the call was
    /// cancelled in the meantime or the connection closed.
    pub fn respond(
        &mut self,
        now: Instant,
        call: &IncomingCall,
        result: Result<RawValue, RpcError>,
    ) {
        if self.running.get(&call.id) != Some(&call.seq) {
            return;
        }
        self.running.remove(&call.id);
        self.end_theirs(&call.id);
        self.mark_quiet(now);
        self.queue(Message::Response {
            id: call.id.clone(),
            result,
        });
        self.check_drained();
    }

    /// Whether `call`'s handler should still be running (not answered, not cancelled).
    pub fn is_running(&self, call: &IncomingCall) -> bool {
        self.running.get(&call.id) == Some(&call.seq)
    }

    /// How many of the peer's calls are being handled.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Whether nothing is in flight either way: no call of the peer is being handled
    /// and none of this end's waits for an answer.
    pub fn is_quiet(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    /// Lets go of the room the queues and call tables grew to, if the connection is
    /// quiet and they are empty, so that an idle connection keeps none of it. While
    /// calls are in flight the room is kept: a busy connection does not allocate per
    /// call. Returns whether the connection is quiet.
    pub fn let_go_if_quiet(&mut self) -> bool {
        if !self.is_quiet() {
            return false;
        }
        self.running = HashMap::new();
        self.waiting = HashMap::new();
        if self.streams.as_ref().is_some_and(|t| t.is_empty()) {
            self.streams = None;
        }
        if self.outgoing.is_empty() {
            self.outgoing = VecDeque::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        true
    }

    /// A notification handler finished.
    pub fn notification_done(&mut self, now: Instant) {
        self.notifications = self.notifications.saturating_sub(1);
        self.mark_quiet(now);
        self.check_drained();
    }

    // ---- output --------------------------------------------------------------------

    fn queue(&mut self, message: Message) {
        if self.state == State::Closed {
            return;
        }
        self.count(&message, true);
        push_back(&mut self.outgoing, message);
    }

    /// Counts `message` into (or out of) the queued bytes.
    fn count(&mut self, message: &Message, queued: bool) {
        let bytes = message.encoded_len_hint();
        let answer = matches!(message, Message::Response { .. } | Message::Error { .. });
        if queued {
            self.outgoing_bytes += bytes;
            if answer {
                self.answer_bytes += bytes;
            }
        } else {
            self.outgoing_bytes = self.outgoing_bytes.saturating_sub(bytes);
            if answer {
                self.answer_bytes = self.answer_bytes.saturating_sub(bytes);
            }
        }
    }

    /// The next message to write.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        let message = self.outgoing.pop_front()?;
        self.count(&message, false);
        Some(message)
    }

    /// Whether anything is queued for writing.
    pub fn has_transmit(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// A message from [`poll_transmit`](Self::poll_transmit) could not be encoded (too
    /// large for the frame limit): a response is replaced by an error for the same id,
    /// so the peer is answered; a request fails its caller; anything else is dropped.
    pub fn encode_failed(&mut self, now: Instant, message: Message, error: EncodeError) {
        self.mark_quiet(now);
        tracing::warn!(peer = self.peer(), %error, "cannot encode an outgoing message");
        match message {
            Message::Response { id, .. } => {
                let error =
                    RpcError::resource_exhausted(format!("the response cannot be sent: {error}"));
                self.outgoing.push_front(Message::Response {
                    id,
                    result: Err(error),
                });
            }
            Message::Request { id, .. } => self.answer_waiting(&id, Err(CallError::Encode(error))),
            _ => {}
        }
    }

    /// The next thing for the driver to do.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the driver should read more from the peer: the session is open and the
    /// answers queued for the peer are under `write_queue_bytes`. (This end's own calls
    /// queued behind a peer that does not read never stop it from reading: the answers
    /// it reads are what lets the peer go on.)
    pub fn wants_read(&self) -> bool {
        self.wants_read_with(0)
    }

    /// [`wants_read`](Self::wants_read), counting `starting` bytes of the peer's
    /// requests that wait to be started (and answered) as answers already queued: a
    /// peer's calls read faster than they are started stop the reading too.
    pub fn wants_read_with(&self, starting: usize) -> bool {
        self.state != State::Closed
            && self.answer_bytes.saturating_add(starting) < self.limits.write_queue_bytes
    }

    /// Whether this end may queue more calls and notifications now.
    pub fn has_room(&self) -> bool {
        self.outgoing_bytes < self.limits.write_queue_bytes
    }

    // ---- time ----------------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let deadline = self.deadlines.first().map(|(at, _)| *at);
        let idle = self.idle_deadline();
        [deadline, idle, self.keepalive_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the keepalive acts next: the ping is due, or its answer overdue.
    fn keepalive_deadline(&self) -> Option<Instant> {
        let (interval, timeout) = self.limits.keepalive_ms?;
        if !self.is_busy() {
            return None;
        }
        let after = match self.ping {
            None => u64::from(interval),
            Some(_) => u64::from(interval) + u64::from(timeout),
        };
        Some(self.last_heard + Duration::from_millis(after))
    }

    /// Whether calls or notifications are in flight either way.
    fn is_busy(&self) -> bool {
        !self.running.is_empty() || !self.waiting.is_empty() || self.notifications > 0
    }

    /// Something in flight may just have ended: if it was the last, the quiet time
    /// starts now.
    fn mark_quiet(&mut self, now: Instant) {
        if !self.is_busy() {
            self.quiet_since = self.quiet_since.max(now);
        }
    }

    /// When the connection counts as idle, if nothing is in flight.
    fn idle_deadline(&self) -> Option<Instant> {
        if self.is_busy() {
            return None;
        }
        self.limits.idle_timeout.map(|t| self.quiet_since + t)
    }

    /// Expires the deadlines that have passed and checks the idle timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, id));
            if self.waiting.remove(&id).is_some() {
                self.mark_quiet(now);
                self.queue(Message::cancel(&id.into()));
                if let Some(result) = self.end_mine(id, Err(CallError::DeadlineExceeded)) {
                    push_back(&mut self.events, Event::Answer { id, result });
                }
            }
        }
        if self.keepalive_deadline().is_some_and(|at| now >= at) {
            match self.ping {
                None => {
                    let id = self.next_free_id();
                    self.ping = Some(id);
                    self.queue(msgwire_wire::stream::ping(id.into()));
                }
                Some(_) => {
                    tracing::debug!(peer = self.peer(), "keepalive: the peer stopped answering");
                    self.close(CloseReason::KeepaliveTimeout);
                    return;
                }
            }
        }
        if self.idle_deadline().is_some_and(|at| now >= at) {
            tracing::debug!("idle timeout");
            self.close(CloseReason::IdleTimeout);
        }
    }

    // ---- the end -------------------------------------------------------------------

    /// Starts a graceful shutdown: requests from now on are answered UNAVAILABLE; the
    /// session closes once the handlers running now are done.
    pub fn shutdown(&mut self) {
        if self.state == State::Open {
            self.state = State::Draining;
        }
        self.check_drained();
    }

    fn check_drained(&mut self) {
        if self.state == State::Draining && self.running.is_empty() && self.notifications == 0 {
            self.close(CloseReason::Closed);
        }
    }

    /// Closes the session (the first reason wins): every call still waiting fails with
    /// it, every handler still running is to be stopped, and nothing more is read.
    /// What was queued before stays queued, to be written before the socket is shut.
    pub fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        if let Some(warnings) = self.warnings.as_mut() {
            warnings.flush(self.peer.as_deref());
        }
        let error = reason.to_call_error();
        self.reason = Some(reason.clone());
        let mut ids: Vec<u32> = self.waiting.drain().map(|(id, _)| id).collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(result) = self.end_mine(id, Err(error.clone())) {
                push_back(&mut self.events, Event::Answer { id, result });
            }
        }
        let theirs = self
            .streams
            .as_ref()
            .map(|t| t.theirs_ids())
            .unwrap_or_default();
        for id in theirs {
            self.end_theirs(&id);
        }
        self.deadlines.clear();
        for (id, seq) in self.running.drain() {
            push_back(
                &mut self.events,
                Event::Cancel {
                    call: IncomingCall { id, seq },
                },
            );
        }
        push_back(&mut self.events, Event::Closed { reason });
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.reason.as_ref()
    }

    /// The error a call gets on this closed session.
    pub fn close_error(&self) -> CallError {
        self.reason
            .as_ref()
            .map_or(CallError::Closed, CloseReason::to_call_error)
    }
}
