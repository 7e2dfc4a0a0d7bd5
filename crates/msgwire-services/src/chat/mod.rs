//! chat: rooms for the bidirectional `chat` method — join, broadcast, typing, leave —
//! with a bounded backlog per member, so that one slow reader never slows a room.
//!
//! ```text
//!  alice.send(text) ──► room "rust" ──┬──► bob's inbox   [welcome][join carol][text] ◄─ bob.recv()
//!   (not echoed)        (one lock)    └──► carol's inbox [welcome][text]             ◄─ carol.recv()
//!                                          full? → carol is removed, gets a farewell,
//!                                                  the room gets "carol was removed"
//! ```
//!
//! # Messages on the wire
//!
//! One shape both ways, a map (times are integer milliseconds since the Unix epoch,
//! as in [`crate::events`]):
//!
//! ```text
//! {"user_id": "alice", "room_id": "rust", "content": "hi", "type": "text",
//!  "timestamp": 1700000000000}
//! ```
//!
//! A client sends `text` or `typing` (`content` may be empty for `typing`); the hub
//! overwrites `user_id`, `room_id` and `timestamp` with the member's own and now, so a
//! client cannot speak for someone else. `user_id` and `room_id` may arrive as strings
//! or integers. What the hub sends:
//!
//! | when | to | type | user_id | content |
//! |---|---|---|---|---|
//! | `join` | the joiner | `system` | `system` | `Welcome to <room>, <user>` |
//! | `join` | the others | `join` | the joiner | `<user> joined <room>` |
//! | `send` | the others | `text`/`typing` | the sender | as sent |
//! | `leave` / drop | the others | `leave` | the leaver | `<user> left <room>` |
//! | backlog full | the others | `leave` | the removed | `<user> was removed from <room>: too far behind` |
//! | backlog full | the removed | `system` | `system` | `You were removed from <room>: more than <n> unread messages` |
//!
//! # The `chat` method
//!
//! One bidirectional call is one member ([`chat_call`]): its first item joins a room,
//! its later `text` and `typing` items are sent, the hub's messages come back as items,
//! and a `leave` item, the end of its input, a cancel or a disconnect leaves the room.
//!
//! # Backlog
//!
//! Each member's inbox holds at most `backlog` unread messages. A message that would
//! exceed it removes the member from the room instead: its receiving side yields what is
//! queued, then the farewell, then `None`, and its `send` is FAILED_PRECONDITION.
//! Senders never wait. A room with no members is removed.
//!
//! # Across processes
//!
//! [`ChatHub::new`] keeps its rooms in this process. [`ChatHub::with_bus`] hubs that
//! share a [`Bus`] (Redis between processes, say, or one [`InProcessBus`] between two
//! hubs in a test) make each room one room across all of them:
//!
//! ```text
//!  process A (origin 0x1f…)                       process B (origin 0x9a…)
//!  alice.send(text)
//!      │
//!      ▼
//!  room "rust" ──► carol's inbox                  room "rust" ──► bob's inbox
//!  (one lock)                                     (one lock, backlog rules)
//!      │ try_send, never waits                        ▲
//!      ▼                                              │ another origin: delivered
//!  queue [BUS_QUEUE] ─► publisher task            listener task of the room
//!      │                                              ▲
//!      │ publish("chat:rust",                         │ subscribed to "chat:rust"
//!      ▼   {origin: 0x1f…, message: {…}})             │
//!  ═════════════════════════ bus, topic "chat:rust" ══════════════════════════
//!      │
//!      └──► A's own listener task: origin 0x1f… is its own, skipped
//! ```
//!
//! - **Local delivery is as without a bus**: members in the same process get each
//!   other's messages straight from the room, in the room's order, whatever the bus
//!   does. With the bus down, a room goes on in each process alone.
//! - **What crosses**: everything the hub gives a room's *other* members — `join`
//!   notices, `text`, `typing`, `leave` notices, "was removed" notices. Not the
//!   personal welcome or farewell. So joins and leaves cross: bob in B sees
//!   "alice joined rust" and "alice left rust" (the leave too when alice was the last
//!   member in A). There is no presence or history: a joiner does not learn who is
//!   already in the room elsewhere.
//! - **On the bus**: topic [`topic`]`(room_id)` = `chat:<room_id>`, payload a
//!   MessagePack map, the message in the shape above:
//!
//!   ```text
//!   {"origin": 2290375030143234431,      // the publishing hub's ChatHub::origin(), a random u64
//!    "message": {"user_id": "alice", "room_id": "rust", "content": "hi",
//!                "type": "text", "timestamp": 1700000000000}}
//!   ```
//!
//!   Other keys are ignored. A listener skips its own hub's envelopes (the bus brings
//!   them back), and skips whatever is not an envelope of a message a hub would
//!   broadcast to that room: bytes that do not decode, another room's `room_id`, a
//!   `system` message or user, an empty or over-long id, content over
//!   [`MAX_CONTENT_LEN`]. Nothing on the bus makes a hub panic.
//! - **Listening**: a room's first local member's join subscribes to its topic from a
//!   task; the last one leaving (or being removed) drops the subscription. A member
//!   sees every message another process publishes to the room after its join
//!   completed *and* the subscription is in place: [`Member::subscribed`] resolves then
//!   (at once when the room already had members here; after the subscribe future
//!   resolves for the first one, a task hop on an `InProcessBus`, a round trip to
//!   Redis). Before that, nothing from elsewhere is seen; after, remote messages can
//!   arrive at any time. A subscription that fails or ends is retried, backing off to
//!   10 s, while the room has local members.
//! - **Remote messages obey the backlog**: a listener hands each one to the room under
//!   the room's lock, exactly as a local `send` does, so a member too far behind is
//!   removed (and that removal is published). Nothing queues without bound: the bus
//!   bounds each subscription ([`Delivery::Lagged`] is logged: remote messages were
//!   lost, the listener goes on).
//! - **Order**: what a hub broadcasts goes, under the room's lock and without waiting,
//!   into one queue per hub of [`BUS_QUEUE`] messages, which one task publishes in
//!   order. So a sender's messages reach other processes in the order it sent them,
//!   and each process sees the messages of any one other process in that process's
//!   order (the bus keeps each publisher's order); messages of different processes
//!   interleave as the bus delivers them.
//! - **Failures are not the members'**: `send` never waits for the bus and succeeds
//!   whether or not the bus takes the message. A failed publish is logged (a warning
//!   once per outage, then debug); when the queue is full (the bus is stuck), further
//!   messages are not published, only counted and logged at 1, 2, 4, 8, … dropped.
//! - [`ChatHub::member_count`] and [`ChatHub::room_count`] count this process's
//!   members and rooms only.
//!
//! [`Bus`]: crate::bus::Bus
//! [`InProcessBus`]: crate::bus::InProcessBus
//! [`Delivery::Lagged`]: crate::bus::Delivery::Lagged
//!
//! # Example
//!
//! ```
//! use msgwire_services::chat::{ChatHub, ChatKind, ChatMessage};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), msgwire_wire::RpcError> {
//! let hub = ChatHub::new(64);
//! let mut alice = hub.join("alice", "rust")?;
//! let bob = hub.join("bob", "rust")?;
//! bob.send(ChatMessage::new(ChatKind::Text, "hi"))?;
//! let welcome = alice.recv().await;
//! assert_eq!(welcome.map(|m| m.content.clone()).as_deref(), Some("Welcome to rust, alice"));
//! let joined = alice.recv().await;
//! assert_eq!(joined.map(|m| m.kind), Some(ChatKind::Join));
//! let text = alice.recv().await;
//! assert_eq!(text.map(|m| (m.user_id.clone(), m.content.clone())), Some(("bob".into(), "hi".into())));
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::stream::Stream;
use msgwire_wire::{Code, RpcError};
use serde::{Deserialize, Deserializer, Serialize};

use crate::bus::Bus;
use crate::events::{unix_millis, Clock};

mod relay;
mod rpc;
pub use relay::{topic, BUS_QUEUE};
pub use rpc::{chat_call, ChatEnd};

/// The longest user or room id, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// The longest `content` a member may send, in bytes.
pub const MAX_CONTENT_LEN: usize = 64 * 1024;

/// The `user_id` of messages from the hub itself.
pub const SYSTEM_USER: &str = "system";

/// What a [`ChatMessage`] is; `type` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    /// Someone joined the room.
    Join,
    /// A message for the room.
    Text,
    /// Someone is typing.
    Typing,
    /// Someone left the room (or was removed).
    Leave,
    /// From the hub to one member.
    System,
}

/// A chat message, both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who it is from ([`SYSTEM_USER`] for the hub); a string or an integer on input.
    #[serde(default, deserialize_with = "string_or_integer")]
    pub user_id: String,
    /// The room; a string or an integer on input.
    #[serde(default, deserialize_with = "string_or_integer")]
    pub room_id: String,
    /// The text (empty for `typing`, usually).
    #[serde(default)]
    pub content: String,
    /// What it is; `type` on the wire.
    #[serde(rename = "type")]
    pub kind: ChatKind,
    /// When the hub sent it, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: i64,
}

impl ChatMessage {
    /// A message of `kind` with `content`, for [`Member::send`] (which fills in the rest).
    pub fn new(kind: ChatKind, content: impl Into<String>) -> Self {
        Self {
            user_id: String::new(),
            room_id: String::new(),
            content: content.into(),
            kind,
            timestamp: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Str(String),
    Int(i64),
    UInt(u64),
}

fn string_or_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Id::deserialize(deserializer)? {
        Id::Str(s) => s,
        Id::Int(n) => n.to_string(),
        Id::UInt(n) => n.to_string(),
    })
}

/// The chat rooms. Cloning shares them.
#[derive(Clone)]
pub struct ChatHub {
    hub: Arc<Hub>,
}

struct Hub {
    backlog: usize,
    clock: Clock,
    rooms: Mutex<HashMap<Arc<str>, Arc<Mutex<Room>>>>,
    next_seat: AtomicU64,
    /// The bus of a [`ChatHub::with_bus`] hub.
    relay: Option<relay::Relay>,
}

/// Lock order: the rooms map, then a room, then an inbox.
struct Room {
    name: Arc<str>,
    seats: Vec<Seat>,
    /// A bus hub's listener to the room's topic, while the room has local members.
    listener: Option<relay::Listener>,
}

struct Seat {
    id: u64,
    user_id: Arc<str>,
    inbox: Arc<Inbox>,
}

#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
}

#[derive(Default)]
struct InboxState {
    queue: VecDeque<Arc<ChatMessage>>,
    /// Set when the member was removed for its backlog; yielded after the queue.
    farewell: Option<Arc<ChatMessage>>,
    closed: bool,
    waker: Option<Waker>,
}

/// Every lock here guards state that each change leaves whole, so a poisoned lock (a
/// panic elsewhere) is taken as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inbox {
    /// Queues `message`; false if the inbox already holds `backlog` messages.
    fn push(&self, message: &Arc<ChatMessage>, backlog: usize) -> bool {
        let waker = {
            let mut state = lock(&self.state);
            if state.closed {
                return true;
            }
            if state.queue.len() >= backlog {
                return false;
            }
            state.queue.push_back(Arc::clone(message));
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Ends the inbox: what is queued, then `farewell`, then `None`.
    fn close(&self, farewell: Option<Arc<ChatMessage>>) {
        let waker = {
            let mut state = lock(&self.state);
            state.closed = true;
            state.farewell = farewell;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        if state.closed {
            return Poll::Ready(());
        }
        state.register(cx);
        Poll::Pending
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Arc<ChatMessage>>> {
        let mut state = lock(&self.state);
        if let Some(message) = state.queue.pop_front() {
            if state.queue.is_empty() {
                // A quiet member lets go of a queue that grew.
                state.queue = VecDeque::new();
            }
            return Poll::Ready(Some(message));
        }
        if state.closed {
            return Poll::Ready(state.farewell.take());
        }
        state.register(cx);
        Poll::Pending
    }
}

impl InboxState {
    fn register(&mut self, cx: &mut Context<'_>) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
    }
}

impl Hub {
    fn message(
        &self,
        kind: ChatKind,
        user_id: &str,
        room: &str,
        content: String,
    ) -> Arc<ChatMessage> {
        Arc::new(ChatMessage {
            user_id: user_id.to_owned(),
            room_id: room.to_owned(),
            content,
            kind,
            timestamp: (self.clock)(),
        })
    }

    /// Gives `message` to every member of `room` but `except`; members whose backlog is
    /// full are removed, told so, and announced to the rest. A bus hub also publishes
    /// `message` if `publish` (not for one that came from the bus), and the removal
    /// notices.
    fn broadcast(
        &self,
        room: &mut Room,
        message: Arc<ChatMessage>,
        except: Option<u64>,
        publish: bool,
    ) {
        let mut pending = VecDeque::from([(message, except, publish)]);
        while let Some((message, except, publish)) = pending.pop_front() {
            if publish {
                if let Some(relay) = &self.relay {
                    relay.enqueue(&room.name, &message);
                }
            }
            let mut i = 0;
            while i < room.seats.len() {
                let seat = &room.seats[i];
                if Some(seat.id) == except || seat.inbox.push(&message, self.backlog) {
                    i += 1;
                    continue;
                }
                let seat = room.seats.remove(i);
                let farewell = self.message(
                    ChatKind::System,
                    SYSTEM_USER,
                    &room.name,
                    format!(
                        "You were removed from {}: more than {} unread messages",
                        room.name, self.backlog
                    ),
                );
                seat.inbox.close(Some(farewell));
                let notice = self.message(
                    ChatKind::Leave,
                    &seat.user_id,
                    &room.name,
                    format!(
                        "{} was removed from {}: too far behind",
                        seat.user_id, room.name
                    ),
                );
                pending.push_back((notice, None, true));
            }
        }
    }

    /// Takes `room` off the map if it is still the room of that name and empty.
    fn remove_if_empty(&self, room: &Arc<Mutex<Room>>) {
        let mut rooms = lock(&self.rooms);
        let (name, empty) = {
            let room = lock(room);
            (Arc::clone(&room.name), room.seats.is_empty())
        };
        if empty && rooms.get(&name).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(&name);
        }
    }
}

fn check_id(what: &str, id: &str) -> Result<(), RpcError> {
    if id.is_empty() {
        return Err(RpcError::invalid_argument(format!("{what} is empty")));
    }
    if id.len() > MAX_ID_LEN {
        return Err(RpcError::invalid_argument(format!(
            "{what} is longer than {MAX_ID_LEN} bytes"
        )));
    }
    Ok(())
}

impl ChatHub {
    /// A hub whose members may each have `backlog` unread messages (at least 1).
    pub fn new(backlog: usize) -> Self {
        Self::with_clock(backlog, Arc::new(unix_millis))
    }

    /// As [`ChatHub::new`], with timestamps from `clock`.
    pub fn with_clock(backlog: usize, clock: Clock) -> Self {
        Self::build(backlog, clock, None)
    }

    /// A hub whose rooms span every process with a hub on `bus` (see [Across
    /// processes](self#across-processes)): as [`ChatHub::new`] for the members in this
    /// process, and what they broadcast is published on `chat:<room_id>` while what
    /// other hubs publish there reaches them.
    ///
    /// Call it inside a Tokio runtime: the hub publishes from a task and listens to each
    /// room with local members from another, spawned on the runtime current when they
    /// start (the publisher here or, failing that, at the first join; a room's listener
    /// at the join of its first local member). Without a runtime the rooms stay local.
    pub fn with_bus(backlog: usize, bus: Arc<dyn Bus>) -> Self {
        Self::with_bus_and_clock(backlog, bus, Arc::new(unix_millis))
    }

    /// As [`ChatHub::with_bus`], with timestamps from `clock`.
    pub fn with_bus_and_clock(backlog: usize, bus: Arc<dyn Bus>, clock: Clock) -> Self {
        Self::build(backlog, clock, Some(relay::Relay::new(bus)))
    }

    fn build(backlog: usize, clock: Clock, relay: Option<relay::Relay>) -> Self {
        Self {
            hub: Arc::new(Hub {
                backlog: backlog.max(1),
                clock,
                rooms: Mutex::new(HashMap::new()),
                next_seat: AtomicU64::new(1),
                relay,
            }),
        }
    }

    /// This hub's id in the envelopes it publishes (random, per hub); `None` without a
    /// bus.
    pub fn origin(&self) -> Option<u64> {
        self.hub.relay.as_ref().map(|r| r.origin)
    }

    /// `user_id` joins `room_id` (created if new): the joiner gets a welcome, the others
    /// a `join` notice. INVALID_ARGUMENT for an empty or over-long id, or the user id
    /// [`SYSTEM_USER`]. The same user may join a room more than once (two connections).
    pub fn join(
        &self,
        user_id: impl Into<String>,
        room_id: impl Into<String>,
    ) -> Result<Member, RpcError> {
        let (user_id, room_id) = (user_id.into(), room_id.into());
        check_id("user_id", &user_id)?;
        check_id("room_id", &room_id)?;
        if user_id == SYSTEM_USER {
            return Err(RpcError::invalid_argument(format!(
                "user_id {SYSTEM_USER:?} is reserved"
            )));
        }
        let hub = &self.hub;
        let id = hub.next_seat.fetch_add(1, Ordering::Relaxed);
        let user_id: Arc<str> = Arc::from(user_id);
        let inbox = Arc::new(Inbox::default());

        let mut rooms = lock(&hub.rooms);
        let room = match rooms.get(room_id.as_str()) {
            Some(room) => Arc::clone(room),
            None => {
                let name: Arc<str> = Arc::from(room_id);
                let room = Arc::new(Mutex::new(Room {
                    name: Arc::clone(&name),
                    seats: Vec::new(),
                    listener: None,
                }));
                rooms.insert(name, Arc::clone(&room));
                room
            }
        };
        let mut seated = lock(&room);
        drop(rooms);
        let name = Arc::clone(&seated.name);
        if let Some(relay) = &hub.relay {
            if seated.listener.is_none() {
                seated.listener = relay.listen(hub, &room, &name);
            }
        }
        let listener_state = seated.listener.as_ref().map(|l| l.subscribed.clone());
        let welcome = hub.message(
            ChatKind::System,
            SYSTEM_USER,
            &name,
            format!("Welcome to {name}, {user_id}"),
        );
        inbox.push(&welcome, hub.backlog);
        let notice = hub.message(
            ChatKind::Join,
            &user_id,
            &name,
            format!("{user_id} joined {name}"),
        );
        hub.broadcast(&mut seated, notice, None, true);
        seated.seats.push(Seat {
            id,
            user_id: Arc::clone(&user_id),
            inbox: Arc::clone(&inbox),
        });
        drop(seated);
        Ok(Member {
            hub: Arc::clone(hub),
            room,
            room_id: name,
            user_id,
            id,
            inbox,
            listener_state,
        })
    }

    /// How many unread messages a member may have before it is removed.
    pub fn backlog(&self) -> usize {
        self.hub.backlog
    }

    /// How many rooms have members.
    pub fn room_count(&self) -> usize {
        lock(&self.hub.rooms).len()
    }

    /// How many members `room_id` has (0 if there is no such room).
    pub fn member_count(&self, room_id: &str) -> usize {
        let room = lock(&self.hub.rooms).get(room_id).cloned();
        room.map_or(0, |r| lock(&r).seats.len())
    }
}

impl fmt::Debug for ChatHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatHub")
            .field("backlog", &self.hub.backlog)
            .field("rooms", &self.room_count())
            .field("origin", &self.origin())
            .finish_non_exhaustive()
    }
}

/// One member of one room: sends with [`send`](Member::send), receives with
/// [`recv`](Member::recv) (or as a [`Stream`]). Dropping it leaves the room.
pub struct Member {
    hub: Arc<Hub>,
    room: Arc<Mutex<Room>>,
    room_id: Arc<str>,
    user_id: Arc<str>,
    id: u64,
    inbox: Arc<Inbox>,
    /// A bus hub's room listener's state (`None` without one).
    listener_state: Option<tokio::sync::watch::Receiver<relay::SubState>>,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("user_id", &self.user_id)
            .field("room_id", &self.room_id)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// The member's user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The member's room.
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// Sends a `text` or `typing` message to the room's other members, stamped with this
    /// member's user and room and the time. Never waits. INVALID_ARGUMENT for another
    /// type or content over [`MAX_CONTENT_LEN`]; FAILED_PRECONDITION once the member
    /// was removed for its backlog.
    pub fn send(&self, message: ChatMessage) -> Result<(), RpcError> {
        if !matches!(message.kind, ChatKind::Text | ChatKind::Typing) {
            return Err(RpcError::invalid_argument(
                "a member sends \"text\" or \"typing\" messages",
            ));
        }
        if message.content.len() > MAX_CONTENT_LEN {
            return Err(RpcError::invalid_argument(format!(
                "content is longer than {MAX_CONTENT_LEN} bytes"
            )));
        }
        let mut room = lock(&self.room);
        if !room.seats.iter().any(|s| s.id == self.id) {
            return Err(RpcError::new(
                Code::FailedPrecondition,
                format!("{} is no longer in {}", self.user_id, self.room_id),
            ));
        }
        let message = Arc::new(ChatMessage {
            user_id: self.user_id.to_string(),
            room_id: self.room_id.to_string(),
            content: message.content,
            kind: message.kind,
            timestamp: (self.hub.clock)(),
        });
        self.hub.broadcast(&mut room, message, Some(self.id), true);
        Ok(())
    }

    /// Resolves once this process listens to the bus for the member's room: `true` when
    /// it does (every message another process publishes to the room from then on
    /// reaches the member, by the backlog rules), `false` for a hub without a bus or
    /// when subscribing failed (the room goes on locally; the hub tries again in the
    /// background). At once for a member joining a room that already has members here.
    pub async fn subscribed(&self) -> bool {
        let Some(mut state) = self.listener_state.clone() else {
            return false;
        };
        let settled = state.wait_for(|s| *s != relay::SubState::Pending).await;
        settled.is_ok_and(|s| *s == relay::SubState::Subscribed)
    }

    /// The next message for this member; `None` once it has left or was removed (after
    /// what was queued and the farewell). Messages are shared between the members that
    /// get them, hence the `Arc`.
    pub async fn recv(&mut self) -> Option<Arc<ChatMessage>> {
        futures::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message, as [`recv`](Member::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<ChatMessage>>> {
        self.inbox.poll_recv(cx)
    }

    /// `Ready` once the member is out of the room — removed for its backlog, or gone
    /// with [`leave`](Member::leave) — whether or not its messages have been read: a
    /// sender that has no room to pass messages on learns here that it can stop.
    ///
    /// This shares its waker with [`poll_recv`](Member::poll_recv) (each message queued
    /// wakes it too): poll both from the same task.
    pub fn poll_removed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.inbox.poll_closed(cx)
    }

    /// Leaves the room, telling the others (`leave`). Dropping the member does the same.
    pub fn leave(self) {}

    fn depart(&mut self) {
        let now_empty = {
            let mut room = lock(&self.room);
            let Some(at) = room.seats.iter().position(|s| s.id == self.id) else {
                return; // removed for its backlog: already announced
            };
            room.seats.remove(at);
            self.inbox.close(None);
            // The other processes hear of the leave even when nobody is left here.
            if !room.seats.is_empty() || self.hub.relay.is_some() {
                let notice = self.hub.message(
                    ChatKind::Leave,
                    &self.user_id,
                    &self.room_id,
                    format!("{} left {}", self.user_id, self.room_id),
                );
                // May remove the members whose backlog this fills, down to none.
                self.hub.broadcast(&mut room, notice, None, true);
            }
            // The listener's subscription goes once the room is off the map.
            room.seats.is_empty().then(|| room.listener.take())
        };
        if let Some(listener) = now_empty {
            self.hub.remove_if_empty(&self.room);
            drop(listener); // unsubscribes
        }
    }
}

impl Stream for Member {
    type Item = Arc<ChatMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.depart();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{FutureExt, StreamExt};

    type Seen = (ChatKind, String, String, String);

    fn hub(backlog: usize) -> ChatHub {
        ChatHub::with_clock(backlog, Arc::new(|| 7))
    }

    /// Everything `member` can read now, as (type, user, room, content).
    fn drain(member: &mut Member) -> Vec<Seen> {
        std::iter::from_fn(|| member.recv().now_or_never().flatten())
            .map(|m| {
                assert_eq!(m.timestamp, 7);
                (
                    m.kind,
                    m.user_id.clone(),
                    m.room_id.clone(),
                    m.content.clone(),
                )
            })
            .collect()
    }

    fn seen(kind: ChatKind, user: &str, room: &str, content: &str) -> Seen {
        (kind, user.into(), room.into(), content.into())
    }

    fn text(content: &str) -> ChatMessage {
        ChatMessage::new(ChatKind::Text, content)
    }

    #[test]
    fn three_members_in_two_rooms() {
        use ChatKind::*;
        let hub = hub(64);
        let mut alice = hub.join("alice", "rust").unwrap();
        let mut bob = hub.join("bob", "rust").unwrap();
        let mut carol = hub.join("carol", "go").unwrap();
        assert_eq!((hub.room_count(), hub.member_count("rust")), (2, 2));

        alice.send(text("hi rust")).unwrap();
        bob.send(ChatMessage::new(Typing, "")).unwrap();
        bob.send(text("hi alice")).unwrap();
        carol.send(text("anyone?")).unwrap();
        assert_eq!(
            drain(&mut alice),
            [
                seen(System, "system", "rust", "Welcome to rust, alice"),
                seen(Join, "bob", "rust", "bob joined rust"),
                seen(Typing, "bob", "rust", ""),
                seen(Text, "bob", "rust", "hi alice"),
            ]
        );
        assert_eq!(
            drain(&mut bob),
            [
                seen(System, "system", "rust", "Welcome to rust, bob"),
                seen(Text, "alice", "rust", "hi rust"),
            ]
        );
        assert_eq!(
            drain(&mut carol),
            [seen(System, "system", "go", "Welcome to go, carol")]
        );

        drop(bob);
        assert_eq!(
            drain(&mut alice),
            [seen(Leave, "bob", "rust", "bob left rust")]
        );
        assert!(drain(&mut carol).is_empty());
        carol.leave();
        assert_eq!(hub.room_count(), 1, "the empty room is gone");
        assert_eq!(hub.member_count("go"), 0);
    }

    #[test]
    fn a_member_that_never_reads_is_removed_and_the_room_goes_on() {
        use ChatKind::*;
        let hub = hub(4);
        let mut slow = hub.join("slow", "r").unwrap();
        let mut a = hub.join("a", "r").unwrap();
        let mut b = hub.join("b", "r").unwrap();
        // slow: welcome, join a, join b = 3 of 4.
        a.send(text("1")).unwrap(); // 4 of 4
        a.send(text("2")).unwrap(); // full: slow is removed
        assert_eq!(hub.member_count("r"), 2);
        assert_eq!(
            drain(&mut b),
            [
                seen(System, "system", "r", "Welcome to r, b"),
                seen(Text, "a", "r", "1"),
                seen(Text, "a", "r", "2"),
                seen(
                    Leave,
                    "slow",
                    "r",
                    "slow was removed from r: too far behind"
                ),
            ]
        );
        assert_eq!(
            drain(&mut a),
            [
                seen(System, "system", "r", "Welcome to r, a"),
                seen(Join, "b", "r", "b joined r"),
                seen(
                    Leave,
                    "slow",
                    "r",
                    "slow was removed from r: too far behind"
                ),
            ]
        );
        // The others go on.
        b.send(text("3")).unwrap();
        a.send(text("4")).unwrap();
        assert_eq!(drain(&mut a), [seen(Text, "b", "r", "3")]);
        assert_eq!(drain(&mut b), [seen(Text, "a", "r", "4")]);

        assert_eq!(
            drain(&mut slow),
            [
                seen(System, "system", "r", "Welcome to r, slow"),
                seen(Join, "a", "r", "a joined r"),
                seen(Join, "b", "r", "b joined r"),
                seen(Text, "a", "r", "1"),
                seen(
                    System,
                    "system",
                    "r",
                    "You were removed from r: more than 4 unread messages"
                ),
            ]
        );
        assert_eq!(slow.recv().now_or_never(), Some(None), "then it ends");
        let err = slow.send(text("late")).err().map(|e| e.code);
        assert_eq!(err, Some(Code::FailedPrecondition));
        drop(slow);
        assert!(drain(&mut a).is_empty(), "no second notice");
    }

    #[test]
    fn a_leave_that_removes_the_last_member_takes_the_room_away() {
        let hub = hub(2);
        let mut slow = hub.join("slow", "r").unwrap(); // welcome: 1 of 2
        let leaver = hub.join("l", "r").unwrap(); // "l joined r": 2 of 2
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(slow.poll_removed(&mut cx).is_pending());
        drop(leaver); // "l left r" does not fit: slow is removed too
        assert!(slow.poll_removed(&mut cx).is_ready());
        assert_eq!(hub.room_count(), 0, "no empty room is left behind");
        assert_eq!(drain(&mut slow).len(), 3, "welcome, join, farewell");
    }

    #[test]
    fn typing_reaches_the_others_and_bad_messages_are_refused() {
        let hub = hub(8);
        let a = hub.join("a", "r").unwrap();
        let mut b = hub.join("b", "r").unwrap();
        let mut c = hub.join("c", "r").unwrap();
        drain(&mut b);
        drain(&mut c);
        // The sender's claimed identity is replaced by its own.
        let mut typing = ChatMessage::new(ChatKind::Typing, "");
        typing.user_id = "mallory".into();
        typing.room_id = "elsewhere".into();
        a.send(typing).unwrap();
        for m in [&mut b, &mut c] {
            assert_eq!(drain(m), [seen(ChatKind::Typing, "a", "r", "")]);
        }
        let code = |r: Result<(), RpcError>| r.err().map(|e| e.code);
        for kind in [ChatKind::Join, ChatKind::Leave, ChatKind::System] {
            assert_eq!(
                code(a.send(ChatMessage::new(kind, "x"))),
                Some(Code::InvalidArgument)
            );
        }
        let long = "x".repeat(MAX_CONTENT_LEN + 1);
        assert_eq!(code(a.send(text(&long))), Some(Code::InvalidArgument));
        for (user, room) in [("", "r"), ("u", ""), ("system", "r")] {
            assert_eq!(
                hub.join(user, room).err().map(|e| e.code),
                Some(Code::InvalidArgument)
            );
        }
    }

    #[tokio::test]
    async fn leave_on_drop_wakes_and_ends() {
        let hub = hub(8);
        let mut a = hub.join("a", "r").unwrap();
        let b = hub.join("b", "r").unwrap();
        assert_eq!(a.next().await.map(|m| m.kind), Some(ChatKind::System));
        assert_eq!(a.next().await.map(|m| m.kind), Some(ChatKind::Join));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(m) = a.recv().await {
                let done = m.kind == ChatKind::Leave;
                got.push((m.kind, m.user_id.clone()));
                if done {
                    break;
                }
            }
            got
        });
        tokio::task::yield_now().await;
        b.send(text("bye")).unwrap();
        drop(b);
        assert_eq!(
            reader.await.unwrap(),
            [(ChatKind::Text, "b".into()), (ChatKind::Leave, "b".into())]
        );
        assert_eq!(hub.room_count(), 0, "a dropped with the task");
    }

    #[test]
    fn wire_shape_and_integer_ids() {
        let message = ChatMessage {
            user_id: "alice".into(),
            room_id: "rust".into(),
            content: "hi".into(),
            kind: ChatKind::Text,
            timestamp: 1_700_000_000_000,
        };
        let bytes = rmp_serde::to_vec_named(&message).unwrap();
        let value: msgwire_rpc::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            value,
            msgwire_rpc::Value::Map(vec![
                ("user_id".into(), "alice".into()),
                ("room_id".into(), "rust".into()),
                ("content".into(), "hi".into()),
                ("type".into(), "text".into()),
                ("timestamp".into(), 1_700_000_000_000_i64.into()),
            ])
        );
        assert_eq!(
            rmp_serde::from_slice::<ChatMessage>(&bytes).unwrap(),
            message
        );

        // {"user_id": 42, "room_id": 7, "type": "typing"}: integers, defaults.
        let input = msgwire_rpc::Value::Map(vec![
            ("user_id".into(), 42.into()),
            ("room_id".into(), 7.into()),
            ("type".into(), "typing".into()),
        ]);
        let bytes = rmp_serde::to_vec(&input).unwrap();
        let parsed: ChatMessage = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            (
                parsed.user_id.as_str(),
                parsed.room_id.as_str(),
                parsed.kind
            ),
            ("42", "7", ChatKind::Typing)
        );
        let unknown = msgwire_rpc::Value::Map(vec![("type".into(), "shout".into())]);
        let bytes = rmp_serde::to_vec(&unknown).unwrap();
        assert!(rmp_serde::from_slice::<ChatMessage>(&bytes).is_err());
    }
}
