//! Streams in the session: items each way, credit, and their end (docs/PROTOCOL.md,
//! section 10).
//!
//! A stream is a call. This end's calls opened with [`Session::call_stream`] have an
//! entry in `mine` from the start; the peer's calls get one in `theirs` the first time
//! a stream message names them or their handler sends or reads an item — a unary call
//! never has one. Each entry holds:
//!
//! * the items received and not yet taken (at most the window this end granted: a
//!   peer that sends past its credit fails its stream), and what was taken since the
//!   last grant — half a window taken, and the credit goes back to the peer;
//! * the credit this end has to send, which the peer's grants add to;
//! * the wakers of the task reading and the task sending, woken (through
//!   [`Event::Wake`]) when an item, credit or the end arrives.
//!
//! For this end's calls the final response goes into the queue too, after the items
//! (a stream's reader sees every item, then the end); for the peer's calls the end of
//! the input is `$/send_end`, and the handler's response ends everything.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use msgwire_wire::stream::{serialize_item, BadStreamMessage, Direction, StreamMessage};
use msgwire_wire::{CallId, Message, RawValue, RpcError};
use serde::Serialize;

use foldhash::HashMap;

use super::{Event, IncomingCall, Session};
use crate::error::{CallError, ProtocolError};
use crate::room::push_back;

/// Which stream: one of this end's calls, or one of the peer's being answered here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamKey {
    /// This end's call, by the id [`Session::call_stream`] returned.
    Mine(u32),
    /// The peer's call.
    Theirs(IncomingCall),
}

/// What the receiving side of a stream yields.
#[derive(Debug)]
pub enum Input {
    /// An item.
    Item(RawValue),
    /// A per-item error; the stream goes on.
    ItemError(RpcError),
    /// The end: for this end's call its final result (or why it failed), for the
    /// peer's call the end of its input (`Ok(nil)`).
    End(Result<RawValue, CallError>),
}

/// What the sending side of a stream sends.
#[derive(Debug)]
pub enum Output {
    /// An item, as `[id, value]` params built by [`Session::item_params`], with the
    /// length of the value.
    Item(RawValue, usize),
    /// A per-item error.
    ItemError(RpcError),
    /// This end's input to its call is complete (`$/send_end`). For the peer's call
    /// the handler's response is the end; this only stops further sends.
    End,
}

/// One stream's state.
#[derive(Debug)]
pub(super) struct StreamState {
    /// The peer's call this belongs to (for `theirs`): a later call reusing the id is
    /// another stream.
    seq: u64,
    queue: VecDeque<Input>,
    /// The peer's credit left, as this end counts it.
    peer_items: i64,
    peer_bytes: i64,
    /// Taken since the last grant.
    taken_items: u32,
    taken_bytes: u64,
    /// This end's credit to send.
    send_items: i64,
    send_bytes: i64,
    /// This end sends no more.
    send_closed: bool,
    /// The reader has seen the end.
    recv_done: bool,
    recv_waker: Option<Waker>,
    send_waker: Option<Waker>,
}

/// The credit a stream starts with, each way (docs/PROTOCOL.md).
const WINDOW_ITEMS: u32 = msgwire_wire::DEFAULT_WINDOW_ITEMS;
const WINDOW_BYTES: u64 = msgwire_wire::DEFAULT_WINDOW_BYTES;

/// The stream tables of a session that has had streams (none until then, so that a
/// connection of unary calls does not carry them).
#[derive(Debug, Default)]
pub(super) struct Tables {
    /// This end's calls that are streams.
    mine: HashMap<u32, StreamState>,
    /// The peer's calls that have stream state here.
    theirs: HashMap<CallId, StreamState>,
    /// A sender waits for room in the write queue.
    room_wanted: bool,
}

impl Tables {
    pub(super) fn has_mine(&self, id: u32) -> bool {
        self.mine.contains_key(&id)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.mine.is_empty() && self.theirs.is_empty()
    }

    pub(super) fn theirs_ids(&self) -> Vec<CallId> {
        self.theirs.keys().cloned().collect()
    }
}

/// Credit never grows past this, whatever the peer grants.
const MAX_CREDIT: i64 = i64::MAX / 4;

impl StreamState {
    pub(super) fn new(seq: u64, items: u32, bytes: u64) -> Self {
        let bytes = i64::try_from(bytes).unwrap_or(MAX_CREDIT);
        Self {
            seq,
            queue: VecDeque::new(),
            peer_items: i64::from(items),
            peer_bytes: bytes,
            taken_items: 0,
            taken_bytes: 0,
            send_items: i64::from(items),
            send_bytes: bytes,
            send_closed: false,
            recv_done: false,
            recv_waker: None,
            send_waker: None,
        }
    }

    fn can_send(&self) -> bool {
        self.send_items >= 1 && self.send_bytes > 0
    }

    /// Wakes both sides (through the session's events).
    fn wake_all(&mut self, events: &mut VecDeque<Event>) {
        for waker in [self.recv_waker.take(), self.send_waker.take()]
            .into_iter()
            .flatten()
        {
            push_back(events, Event::Wake(waker));
        }
    }

    fn push(&mut self, input: Input, events: &mut VecDeque<Event>) {
        push_back(&mut self.queue, input);
        if let Some(waker) = self.recv_waker.take() {
            push_back(events, Event::Wake(waker));
        }
    }
}

/// How long an item is, for credit: its value's bytes (an error: its message's).
fn input_len(input: &Input) -> u64 {
    match input {
        Input::Item(params) => params.len() as u64,
        Input::ItemError(error) => error.message.len() as u64,
        Input::End(_) => 0,
    }
}

impl Session {
    /// Starts a call whose answer is a stream: like [`call`](Self::call), and the
    /// items that come back are taken with [`poll_recv`](Self::poll_recv)
    /// (`StreamKey::Mine(id)`), the final result last.
    pub fn call_stream(
        &mut self,
        method: String,
        params: RawValue,
        deadline: Option<std::time::Instant>,
    ) -> Result<u32, CallError> {
        let id = self.call(method, params, deadline)?;
        let state = StreamState::new(0, WINDOW_ITEMS, WINDOW_BYTES);
        self.tables().mine.insert(id, state);
        Ok(id)
    }

    /// The stream tables, made at the first stream.
    fn tables(&mut self) -> &mut Tables {
        self.streams.get_or_insert_with(Box::default)
    }

    /// The id a stream's messages carry.
    pub fn stream_id(&self, key: &StreamKey) -> CallId {
        match key {
            StreamKey::Mine(id) => CallId::from(*id),
            StreamKey::Theirs(call) => call.id.clone(),
        }
    }

    /// `[id, value]` params for an item of `key`, `value` serialized once.
    pub fn item_params<T: Serialize + ?Sized>(
        key: &StreamKey,
        value: &T,
    ) -> Result<Output, CallError> {
        let id = match key {
            StreamKey::Mine(id) => CallId::from(*id),
            StreamKey::Theirs(call) => call.id.clone(),
        };
        let (params, len) = serialize_item(&id, value).map_err(CallError::Encode)?;
        Ok(Output::Item(params, len))
    }

    /// The state of `key`, made for a peer's call that is running and has none yet.
    fn stream_mut(&mut self, key: &StreamKey) -> Option<&mut StreamState> {
        match key {
            StreamKey::Mine(id) => self.tables().mine.get_mut(id),
            StreamKey::Theirs(call) => {
                if self.running.get(&call.id) != Some(&call.seq) {
                    return None;
                }
                let (items, bytes) = (WINDOW_ITEMS, WINDOW_BYTES);
                let state = self
                    .tables()
                    .theirs
                    .entry(call.id.clone())
                    .or_insert_with(|| StreamState::new(call.seq, items, bytes));
                if state.seq != call.seq {
                    *state = StreamState::new(call.seq, items, bytes);
                }
                Some(state)
            }
        }
    }

    /// The next input of stream `key`, or `Pending` (`cx` is woken when there is one),
    /// or `None` once the end has been taken or the stream is gone. Taking items gives
    /// credit back to the peer.
    pub fn poll_recv(&mut self, key: &StreamKey, cx: &mut Context<'_>) -> Poll<Option<Input>> {
        let (window_items, window_bytes) = (WINDOW_ITEMS, WINDOW_BYTES);
        let open = match key {
            StreamKey::Mine(id) => self.waiting.contains_key(id),
            StreamKey::Theirs(call) => self.running.get(&call.id) == Some(&call.seq),
        };
        let Some(state) = self.stream_mut(key) else {
            return Poll::Ready(None);
        };
        if state.recv_done {
            return Poll::Ready(None);
        }
        let Some(input) = state.queue.pop_front() else {
            state.recv_waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        let mut grant = None;
        match &input {
            Input::End(_) => state.recv_done = true,
            other => {
                state.taken_items += 1;
                state.taken_bytes += input_len(other);
                let half_items = (window_items / 2).max(1);
                let half_bytes = (window_bytes / 2).max(1);
                if open && (state.taken_items >= half_items || state.taken_bytes >= half_bytes) {
                    grant = Some((state.taken_items, state.taken_bytes));
                    state.peer_items += i64::from(state.taken_items);
                    state.peer_bytes = state
                        .peer_bytes
                        .saturating_add(i64::try_from(state.taken_bytes).unwrap_or(MAX_CREDIT))
                        .min(MAX_CREDIT);
                    state.taken_items = 0;
                    state.taken_bytes = 0;
                }
            }
        }
        if let StreamKey::Mine(id) = key {
            if matches!(input, Input::End(_)) {
                self.tables().mine.remove(id);
            }
        }
        if let Some((items, bytes)) = grant {
            let direction = match key {
                StreamKey::Mine(_) => Direction::FromCaller,
                StreamKey::Theirs(_) => Direction::FromCallee,
            };
            let id = self.stream_id(key);
            self.queue(
                StreamMessage::Credit {
                    direction,
                    id,
                    items,
                    bytes,
                }
                .to_message(),
            );
        }
        Poll::Ready(Some(input))
    }

    /// Whether stream `key` may send an item now: `Ready(Ok)` with credit, `Pending`
    /// without (`cx` is woken when the peer grants more), an error once the stream is
    /// over (answered, cancelled, closed). Room in the write queue is the caller's to
    /// check ([`has_room`](Self::has_room)).
    pub fn poll_send_ready(
        &mut self,
        key: &StreamKey,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), CallError>> {
        if self.is_closed() {
            return Poll::Ready(Err(self.close_error()));
        }
        let open = match key {
            StreamKey::Mine(id) => self.waiting.contains_key(id),
            StreamKey::Theirs(_) => true,
        };
        match self.stream_mut(key) {
            Some(state) if open && !state.send_closed => {
                if state.can_send() {
                    Poll::Ready(Ok(()))
                } else {
                    state.send_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
            _ => Poll::Ready(Err(CallError::StreamEnded)),
        }
    }

    /// Stream `key` has credit but the write queue is full: `cx` is woken when it has
    /// room again ([`room_opened`](Self::room_opened)).
    pub fn wait_for_room(&mut self, key: &StreamKey, cx: &mut Context<'_>) {
        if let Some(state) = self.stream_mut(key) {
            state.send_waker = Some(cx.waker().clone());
            self.tables().room_wanted = true;
        }
    }

    /// The write queue has room again: the stream senders waiting for it are woken.
    pub fn room_opened(&mut self) {
        let Some(tables) = self.streams.as_deref_mut() else {
            return;
        };
        if !std::mem::take(&mut tables.room_wanted) {
            return;
        }
        let states = tables.mine.values_mut().chain(tables.theirs.values_mut());
        for state in states {
            if let Some(waker) = state.send_waker.take() {
                push_back(&mut self.events, Event::Wake(waker));
            }
        }
    }

    /// Sends on stream `key`, after [`poll_send_ready`](Self::poll_send_ready) said
    /// `Ready(Ok)` (an item sent without credit is sent anyway: the credit goes below
    /// zero, and the next wait is longer).
    pub fn send(&mut self, key: &StreamKey, output: Output) -> Result<(), CallError> {
        if self.is_closed() {
            return Err(self.close_error());
        }
        let open = match key {
            StreamKey::Mine(id) => self.waiting.contains_key(id),
            StreamKey::Theirs(_) => true,
        };
        let id = self.stream_id(key);
        let direction = match key {
            StreamKey::Mine(_) => Direction::FromCaller,
            StreamKey::Theirs(_) => Direction::FromCallee,
        };
        let Some(state) = self.stream_mut(key).filter(|s| open && !s.send_closed) else {
            return Err(CallError::StreamEnded);
        };
        let message = match output {
            Output::Item(params, len) => {
                state.send_items -= 1;
                state.send_bytes -= i64::try_from(len).unwrap_or(MAX_CREDIT);
                msgwire_wire::stream::item_message(direction, params)
            }
            Output::ItemError(error) => {
                state.send_items -= 1;
                state.send_bytes -= error.message.len() as i64;
                StreamMessage::ItemError {
                    direction,
                    id,
                    error,
                }
                .to_message()
            }
            Output::End => {
                state.send_closed = true;
                if direction == Direction::FromCallee {
                    return Ok(());
                }
                StreamMessage::End { id }.to_message()
            }
        };
        self.queue(message);
        Ok(())
    }

    /// The reader of stream `key` is gone (dropped before the end): for this end's
    /// call that cancels it, if it is still waiting for its answer.
    pub fn drop_recv(&mut self, now: std::time::Instant, key: &StreamKey) {
        match key {
            StreamKey::Mine(id) => {
                self.tables().mine.remove(id);
                self.abandon(now, *id);
            }
            StreamKey::Theirs(call) => {
                if let Some(state) = self.tables().theirs.get_mut(&call.id) {
                    if state.seq == call.seq {
                        state.recv_done = true;
                        state.queue = VecDeque::new();
                    }
                }
            }
        }
    }

    /// A stream message from the peer.
    pub(super) fn on_stream(&mut self, message: Result<StreamMessage, BadStreamMessage>) {
        let message = match message {
            Ok(message) => message,
            Err(bad) => return self.on_bad_stream(bad),
        };
        match message {
            StreamMessage::Item {
                direction,
                id,
                value,
            } => self.on_input(direction, id, Input::Item(value)),
            StreamMessage::ItemError {
                direction,
                id,
                error,
            } => self.on_input(direction, id, Input::ItemError(error)),
            StreamMessage::End { id } => {
                if let Some(key) = self.key_of(Direction::FromCaller, &id) {
                    let events = &mut self.events;
                    if let Some(state) = stream_entry(self.streams.as_deref_mut(), &key) {
                        state.push(Input::End(Ok(RawValue::nil())), events);
                    }
                }
            }
            StreamMessage::Credit {
                direction,
                id,
                items,
                bytes,
            } => {
                let Some(key) = self.key_of(direction, &id) else {
                    return tracing::debug!(%id, "credit for a stream that is over");
                };
                let events = &mut self.events;
                let Some(state) = stream_entry(self.streams.as_deref_mut(), &key) else {
                    return;
                };
                state.send_items = (state.send_items + i64::from(items)).min(MAX_CREDIT);
                state.send_bytes = state
                    .send_bytes
                    .saturating_add(i64::try_from(bytes).unwrap_or(MAX_CREDIT))
                    .min(MAX_CREDIT);
                if state.can_send() {
                    if let Some(waker) = state.send_waker.take() {
                        push_back(events, Event::Wake(waker));
                    }
                }
            }
        }
    }

    /// The stream a message from the peer is about, made for a running peer call that
    /// has none yet; `None` if the call is over (late messages are normal after a
    /// cancel and are dropped).
    fn key_of(&mut self, direction: Direction, id: &CallId) -> Option<StreamKey> {
        let key = match direction {
            Direction::FromCallee => {
                let id = id.as_u32()?;
                (self.tables().mine.contains_key(&id) && self.waiting.contains_key(&id))
                    .then_some(StreamKey::Mine(id))?
            }
            Direction::FromCaller => {
                let seq = *self.running.get(id)?;
                StreamKey::Theirs(IncomingCall {
                    id: id.clone(),
                    seq,
                })
            }
        };
        self.stream_mut(&key)?;
        Some(key)
    }

    fn on_input(&mut self, direction: Direction, id: CallId, input: Input) {
        let Some(key) = self.key_of(direction, &id) else {
            return tracing::debug!(%id, "an item for a stream that is over");
        };
        let len = input_len(&input);
        {
            let events = &mut self.events;
            let Some(state) = stream_entry(self.streams.as_deref_mut(), &key) else {
                return;
            };
            if state.recv_done {
                // The reader is gone: nobody takes it.
                return;
            }
            if state.peer_items >= 1 && state.peer_bytes > 0 {
                state.peer_items -= 1;
                state.peer_bytes -= i64::try_from(len).unwrap_or(MAX_CREDIT);
                return state.push(input, events);
            }
        }
        self.fail_stream(
            &key,
            RpcError::resource_exhausted(
                "the peer sent a stream item past the credit it was granted",
            ),
        );
    }

    /// A stream message whose params have the wrong shape.
    fn on_bad_stream(&mut self, bad: BadStreamMessage) {
        tracing::debug!(%bad, "bad stream message");
        let direction = if matches!(
            bad.method,
            msgwire_wire::stream::ITEM_METHOD
                | msgwire_wire::stream::ITEM_ERROR_METHOD
                | msgwire_wire::stream::SEND_CREDIT_METHOD
        ) {
            Direction::FromCallee
        } else {
            Direction::FromCaller
        };
        let key = bad.id.as_ref().and_then(|id| self.key_of(direction, id));
        match key {
            Some(key) => self.fail_stream(&key, RpcError::invalid_argument(bad.to_string())),
            None => self.queue(Message::Error {
                error: RpcError::invalid_argument(bad.to_string()),
            }),
        }
    }

    /// Ends stream `key` because of the peer: this end's call fails with `error` (and
    /// the peer is told to cancel it); the peer's call is answered with `error` and its
    /// handler stopped.
    fn fail_stream(&mut self, key: &StreamKey, error: RpcError) {
        match key {
            StreamKey::Mine(id) => {
                let id = *id;
                if let Some(deadline) = self.waiting.remove(&id) {
                    if let Some(at) = deadline {
                        self.deadlines.remove(&(at, id));
                    }
                    self.queue(Message::cancel(&id.into()));
                }
                let events = &mut self.events;
                let tables = self.streams.as_deref_mut();
                if let Some(state) = tables.and_then(|t| t.mine.get_mut(&id)) {
                    state.queue.clear();
                    let failed = CallError::Protocol(ProtocolError::StreamRules(error));
                    state.push(Input::End(Err(failed)), events);
                    state.wake_all(events);
                }
            }
            StreamKey::Theirs(call) => {
                if self.running.get(&call.id) == Some(&call.seq) {
                    self.running.remove(&call.id);
                    self.end_theirs(&call.id);
                    push_back(&mut self.events, Event::Cancel { call: call.clone() });
                    self.queue(Message::Response {
                        id: call.id.clone(),
                        result: Err(error),
                    });
                }
            }
        }
    }

    /// The peer's call `id` is over: its stream, if it had one, goes, and whoever
    /// waits on it is woken to find that out.
    pub(super) fn end_theirs(&mut self, id: &CallId) {
        let removed = self.streams.as_mut().and_then(|t| t.theirs.remove(id));
        if let Some(mut state) = removed {
            state.wake_all(&mut self.events);
        }
    }

    /// This end's call `id` got its answer (or failed): it goes into the stream's
    /// queue, after the items. Returns the result back if `id` is not a stream.
    pub(super) fn end_mine(
        &mut self,
        id: u32,
        result: Result<RawValue, CallError>,
    ) -> Option<Result<RawValue, CallError>> {
        let Some(state) = self.streams.as_mut().and_then(|t| t.mine.get_mut(&id)) else {
            return Some(result);
        };
        state.push(Input::End(result), &mut self.events);
        if let Some(waker) = state.send_waker.take() {
            push_back(&mut self.events, Event::Wake(waker));
        }
        None
    }

    /// How many streams are open either way.
    pub fn streams(&self) -> usize {
        self.streams
            .as_ref()
            .map_or(0, |t| t.mine.len() + t.theirs.len())
    }
}

/// The entry of `key` in one of the two tables (borrowing only them).
fn stream_entry<'a>(
    tables: Option<&'a mut Tables>,
    key: &StreamKey,
) -> Option<&'a mut StreamState> {
    let tables = tables?;
    match key {
        StreamKey::Mine(id) => tables.mine.get_mut(id),
        StreamKey::Theirs(call) => tables
            .theirs
            .get_mut(&call.id)
            .filter(|s| s.seq == call.seq),
    }
}
