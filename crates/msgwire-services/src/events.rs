//! events: the user event store behind `publishEvent(user_id, type, data?)` and the
//! server stream `subscribeEvents(user_id, event_types?, start_time?)`.
//!
//! ```text
//!  publish ─► [assign id + timestamp, push to history] ─► bus topic "events:<user_id>"
//!                  │ ring of the newest `history` events           │
//!  subscribe:  1. open the bus subscription ───────────────────────┤
//!              2. read history (watermark = last id assigned)      │
//!              3. yield replay (start_time given) ──► then live ◄──┘ (id <= watermark
//!                                                                      skipped)
//! ```
//!
//! Because the bus subscription is open before the history is read, and an event is in
//! the history before it is on the bus, every event reaches a subscriber exactly once:
//! ids up to the watermark through the replay (if asked for), later ids live.
//!
//! # Several processes
//!
//! Ids count per store. What goes on the bus (and into a log) is the event's
//! [`record`]: its map with an `origin`, the random id of the store that recorded it,
//! so that `(origin, id)` names an event among processes. Over a bus shared between
//! processes (Redis, say) a subscriber sees the live events of every process; its
//! replay comes from its own store's history — or, with an [`EventLog`]
//! ([`EventStore::with_log`], Kafka say), from the log, which holds every process's
//! events, those of stopped processes included. A log's replay and the live side may
//! both carry an event whose append was in flight when the subscription began: the
//! stream yields it once.
//!
//! # Items on the wire
//!
//! Every item a subscription yields ([`StreamEvent`]) is a map with a `type`; times are
//! **integer milliseconds since the Unix epoch** (exact in MessagePack, no float
//! rounding):
//!
//! ```text
//! event      {"id": 7, "user_id": 1, "type": "login", "timestamp": 1700000000000,
//!             "data": {..}}                        ("data" only when there is some)
//! heartbeat  {"type": "heartbeat", "timestamp": 1700000030000}
//! lagged     {"type": "lagged", "timestamp": 1700000030000, "missed": 12}
//! ```
//!
//! Event types are `login`, `logout`, `profile_update` and `password_change`; any other
//! name, in `publish` or in a filter, is INVALID_ARGUMENT.
//!
//! # Idle, lag and the end
//!
//! * When nothing has been yielded for `heartbeat`, a subscription yields a heartbeat.
//! * A subscriber that falls further behind than the bus buffers loses the oldest live
//!   events and gets one `lagged` item with how many (counting the user's events of
//!   every type, filtered or not: the bus cannot tell) — memory stays bounded; the
//!   stream goes on.
//! * Bus payloads that are not events of this user are skipped (a shared external bus
//!   may carry anything). The stream ends only when the bus does.
//!
//! # Example
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use futures::StreamExt;
//! use msgwire_services::{bus::InProcessBus, events::{EventStore, StreamEvent}};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), msgwire_wire::RpcError> {
//! let store = EventStore::new(Arc::new(InProcessBus::new()), 1000);
//! let mut events = store
//!     .subscribe(1, Some(vec!["login".into()]), None, Duration::from_secs(30))
//!     .await?;
//! store.publish(1, "logout", None).await?; // filtered out
//! let login = store.publish(1, "login", None).await?;
//! assert_eq!(events.next().await, Some(StreamEvent::Event(login)));
//! # Ok(()) }
//! ```

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{Stream, StreamExt};
use futures::FutureExt;
use msgwire_rpc::Value;
use msgwire_wire::RpcError;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, Sleep};

use crate::bus::{Bus, Delivery, Subscription};

/// Where time comes from: milliseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock in milliseconds since the Unix epoch (0 before it).
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The bus topic of a user's events: `events:<user_id>`.
pub fn topic(user_id: u64) -> String {
    format!("events:{user_id}")
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// `login`
    Login,
    /// `logout`
    Logout,
    /// `profile_update`
    ProfileUpdate,
    /// `password_change`
    PasswordChange,
}

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 4] = [
        EventType::Login,
        EventType::Logout,
        EventType::ProfileUpdate,
        EventType::PasswordChange,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Login => "login",
            EventType::Logout => "logout",
            EventType::ProfileUpdate => "profile_update",
            EventType::PasswordChange => "password_change",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = RpcError;

    /// The type named `name`, or INVALID_ARGUMENT.
    fn from_str(name: &str) -> Result<Self, RpcError> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| {
                let name = name.chars().take(64).collect::<String>();
                RpcError::invalid_argument(format!(
                    "unknown event type {name:?} (login, logout, profile_update, \
                     password_change)"
                ))
            })
    }
}

/// A set of event types, as one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TypeSet(u8);

impl TypeSet {
    const ALL: TypeSet = TypeSet(0b1111);

    /// `None` or an empty list means every type.
    fn parse(names: Option<&[String]>) -> Result<Self, RpcError> {
        match names {
            None | Some([]) => Ok(Self::ALL),
            Some(names) => names.iter().try_fold(TypeSet(0), |set, name| {
                Ok(TypeSet(set.0 | name.parse::<EventType>()?.bit()))
            }),
        }
    }

    fn contains(self, t: EventType) -> bool {
        self.0 & t.bit() != 0
    }
}

/// One user event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Assigned by the store, increasing from 1.
    pub id: u64,
    /// Whose event it is.
    pub user_id: u64,
    /// What happened; `type` on the wire.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it was published, in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Details: a map, or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// One item of an [`EventStream`]; see the module docs for the wire shapes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// An event, replayed or live.
    Event(Event),
    /// Nothing happened for the heartbeat interval.
    Heartbeat {
        /// Now, in milliseconds since the Unix epoch.
        timestamp: i64,
    },
    /// The subscriber fell behind the bus and lost this many of the oldest live events.
    Lagged {
        /// How many payloads the bus dropped for this subscriber.
        missed: u64,
        /// Now, in milliseconds since the Unix epoch.
        timestamp: i64,
    },
}

impl Serialize for StreamEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StreamEvent::Event(event) => event.serialize(serializer),
            StreamEvent::Heartbeat { timestamp } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("type", "heartbeat")?;
                map.serialize_entry("timestamp", timestamp)?;
                map.end()
            }
            StreamEvent::Lagged { missed, timestamp } => {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("type", "lagged")?;
                map.serialize_entry("timestamp", timestamp)?;
                map.serialize_entry("missed", missed)?;
                map.end()
            }
        }
    }
}

/// Every field any item may have, for [`StreamEvent`]'s `Deserialize`.
#[derive(Deserialize)]
struct WireItem {
    #[serde(rename = "type")]
    kind: String,
    timestamp: i64,
    id: Option<u64>,
    user_id: Option<u64>,
    data: Option<Value>,
    missed: Option<u64>,
}

impl<'de> Deserialize<'de> for StreamEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let item = WireItem::deserialize(deserializer)?;
        let timestamp = item.timestamp;
        match item.kind.as_str() {
            "heartbeat" => Ok(StreamEvent::Heartbeat { timestamp }),
            "lagged" => Ok(StreamEvent::Lagged {
                missed: item
                    .missed
                    .ok_or_else(|| D::Error::missing_field("missed"))?,
                timestamp,
            }),
            kind => Ok(StreamEvent::Event(Event {
                id: item.id.ok_or_else(|| D::Error::missing_field("id"))?,
                user_id: item
                    .user_id
                    .ok_or_else(|| D::Error::missing_field("user_id"))?,
                event_type: kind.parse().map_err(|e: RpcError| D::Error::custom(e))?,
                timestamp,
                data: item.data.filter(|d| !d.is_nil()),
            })),
        }
    }
}

/// A durable log of event records shared between processes — a Kafka topic, say —
/// that outlives any one of them: what [`EventStore::subscribe`] replays from when a
/// store has one ([`EventStore::with_log`]).
///
/// A record is the [`record`] of an event: its map with an `origin` added.
pub trait EventLog: Send + Sync + fmt::Debug {
    /// Appends `record` (an event of `user_id`); resolves once the log has made it
    /// durable (acknowledged it), or fails — UNAVAILABLE when the log cannot be
    /// reached in time.
    fn append(&self, user_id: u64, record: Bytes) -> BoxFuture<'_, Result<(), RpcError>>;

    /// The records appended with a timestamp at or after `since` (milliseconds since
    /// the Unix epoch), of every user, oldest first per user. The store filters them.
    fn replay(&self, since: i64) -> BoxFuture<'_, Result<Vec<Bytes>, RpcError>>;
}

/// The record of `event` as it goes on the bus and into an [`EventLog`]: the event's
/// map (see the module docs) with one more key, `origin`, the id of the store that
/// recorded it — ids count per store, so `(origin, id)` names an event among several
/// processes.
pub fn record(event: &Event, origin: u64) -> Result<Bytes, RpcError> {
    rmp_serde::to_vec_named(&Record { event, origin })
        .map(Bytes::from)
        .map_err(|e| RpcError::internal(format!("encoding event {}: {e}", event.id)))
}

/// A record read back: the event and the store that recorded it (0 when the record
/// names none: a foreign producer).
pub fn read_record(bytes: &[u8]) -> Option<(Event, u64)> {
    #[derive(Deserialize)]
    struct Origin {
        #[serde(default)]
        origin: u64,
    }
    let event: Event = rmp_serde::from_slice(bytes).ok()?;
    let origin = rmp_serde::from_slice::<Origin>(bytes).map_or(0, |o| o.origin);
    Some((event, origin))
}

struct Record<'a> {
    event: &'a Event,
    origin: u64,
}

impl Serialize for Record<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        let mut map = serializer.serialize_map(Some(5 + usize::from(e.data.is_some())))?;
        map.serialize_entry("id", &e.id)?;
        map.serialize_entry("user_id", &e.user_id)?;
        map.serialize_entry("type", &e.event_type)?;
        map.serialize_entry("timestamp", &e.timestamp)?;
        if let Some(data) = &e.data {
            map.serialize_entry("data", data)?;
        }
        map.serialize_entry("origin", &self.origin)?;
        map.end()
    }
}

/// The event store: a bounded history (or a durable [`EventLog`]) for replay and a bus
/// for live delivery.
pub struct EventStore {
    bus: Arc<dyn Bus>,
    log: Option<Arc<dyn EventLog>>,
    clock: Clock,
    origin: u64,
    history: Mutex<History>,
}

struct History {
    capacity: usize,
    /// The id of the newest event published (0: none yet).
    last_id: u64,
    events: VecDeque<Event>,
}

impl fmt::Debug for EventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let history = self.lock();
        f.debug_struct("EventStore")
            .field("origin", &self.origin)
            .field("log", &self.log)
            .field("history", &history.events.len())
            .field("capacity", &history.capacity)
            .field("last_id", &history.last_id)
            .finish_non_exhaustive()
    }
}

impl EventStore {
    /// A store that remembers the newest `history` events (of all users) for replay and
    /// publishes on `bus`; timestamps from the system clock.
    pub fn new(bus: Arc<dyn Bus>, history: usize) -> Self {
        Self::with_clock(bus, history, Arc::new(unix_millis))
    }

    /// As [`EventStore::new`], with timestamps from `clock`.
    pub fn with_clock(bus: Arc<dyn Bus>, history: usize, clock: Clock) -> Self {
        Self {
            bus,
            log: None,
            clock,
            // Non-zero: 0 is what a record without an origin reads as.
            origin: rand::random::<u64>().max(1),
            history: Mutex::new(History {
                capacity: history,
                last_id: 0,
                // Grows as events arrive: an unused store costs nothing.
                events: VecDeque::new(),
            }),
        }
    }

    /// The store with events appended to `log` before they are delivered, and replays
    /// read from it instead of the in-process history (which it then does not keep):
    /// a replay then holds the events of every process that writes to the log,
    /// including those of processes that have since stopped.
    pub fn with_log(mut self, log: Arc<dyn EventLog>) -> Self {
        self.log = Some(log);
        self.lock().capacity = 0;
        self
    }

    /// This store's id in the records it writes (random, never 0).
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// The bus the store publishes on.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        // Each change to the history is whole before the lock is let go.
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an event of `event_type` for `user_id` and publishes it on
    /// `events:<user_id>`. INVALID_ARGUMENT for an unknown type or `data` that is not a
    /// map (nil counts as none). With a log, the event is appended first and answered
    /// only once the log acknowledged it; if the log fails, the error (UNAVAILABLE,
    /// usually) is the answer and the event is not delivered. UNAVAILABLE if the bus
    /// fails (the event is then recorded but was not delivered live to every process).
    pub async fn publish(
        &self,
        user_id: u64,
        event_type: &str,
        data: Option<Value>,
    ) -> Result<Event, RpcError> {
        let event_type: EventType = event_type.parse()?;
        let data = data.filter(|d| !d.is_nil());
        if data.as_ref().is_some_and(|d| !d.is_map()) {
            return Err(RpcError::invalid_argument("event data must be a map"));
        }
        let event = {
            let mut history = self.lock();
            history.last_id += 1;
            let event = Event {
                id: history.last_id,
                user_id,
                event_type,
                timestamp: (self.clock)(),
                data,
            };
            if history.capacity > 0 {
                if history.events.len() == history.capacity {
                    history.events.pop_front();
                }
                history.events.push_back(event.clone());
            }
            event
        };
        let payload = record(&event, self.origin)?;
        if let Some(log) = &self.log {
            log.append(user_id, payload.clone()).await?;
        }
        self.bus.publish(&topic(user_id), payload).await?;
        Ok(event)
    }

    /// The events of `user_id`: with `start_time`, first those in the history (or the
    /// log) from that time on (oldest first), then — in either case — every event
    /// published from now on with a timestamp at or after `start_time`, in this process
    /// or (over a shared bus) in another. Only the `event_types` named, if any are (an
    /// empty list means all). A heartbeat after each `heartbeat` without an item.
    ///
    /// INVALID_ARGUMENT for an unknown type name or a zero `heartbeat`; UNAVAILABLE if
    /// the bus cannot subscribe or the log cannot be read.
    pub async fn subscribe(
        &self,
        user_id: u64,
        event_types: Option<Vec<String>>,
        start_time: Option<i64>,
        heartbeat: Duration,
    ) -> Result<EventStream, RpcError> {
        let types = TypeSet::parse(event_types.as_deref())?;
        if heartbeat.is_zero() {
            return Err(RpcError::invalid_argument("the heartbeat must be positive"));
        }
        let wanted = |e: &Event, since: i64| {
            e.user_id == user_id && e.timestamp >= since && types.contains(e.event_type)
        };
        // Subscribe first: whatever is published after the history is read is then
        // certain to arrive live.
        let live = self.bus.subscribe(&topic(user_id)).await?;
        let (replay, after_id, replayed) = match (&self.log, start_time) {
            (Some(log), Some(since)) => {
                // Appends in flight may land in the log after it is read and arrive
                // live too: the live side skips what the replay held, by (origin, id).
                let mut replay = Vec::new();
                let mut replayed = HashSet::new();
                for bytes in log.replay(since).await? {
                    if let Some((event, origin)) = read_record(&bytes) {
                        if wanted(&event, since) && replayed.insert((origin, event.id)) {
                            replay.push(event);
                        }
                    }
                }
                (replay, 0, Some(Box::new(replayed)))
            }
            // With a log, this store's ids are not a watermark: an append may be in
            // flight. Everything delivered from now on is new.
            (Some(_), None) => (Vec::new(), 0, None),
            (None, _) => {
                let history = self.lock();
                let replay: Vec<Event> = match start_time {
                    None => Vec::new(),
                    Some(since) => history
                        .events
                        .iter()
                        .filter(|e| wanted(e, since))
                        .cloned()
                        .collect(),
                };
                (replay, history.last_id, None)
            }
        };
        Ok(EventStream {
            replay: replay.into_iter(),
            live,
            idle: Box::pin(tokio::time::sleep(heartbeat)),
            heartbeat,
            clock: Arc::clone(&self.clock),
            user_id,
            origin: self.origin,
            after_id,
            replayed,
            since: start_time.unwrap_or(i64::MIN),
            types,
        })
    }
}

/// A subscription to one user's events: a [`Stream`] of [`StreamEvent`]s. Small when
/// idle (see the `sizes` test): the replay list is let go once replayed.
pub struct EventStream {
    replay: std::vec::IntoIter<Event>,
    live: Subscription,
    idle: Pin<Box<Sleep>>,
    heartbeat: Duration,
    clock: Clock,
    user_id: u64,
    /// The store's own origin: its live events up to `after_id` were in the history
    /// when it was read.
    origin: u64,
    after_id: u64,
    /// `(origin, id)` of the events replayed from a log, skipped when they arrive live.
    /// Boxed: a stream without a log replay (most) keeps one pointer, not a whole set.
    #[allow(clippy::box_collection)]
    replayed: Option<Box<HashSet<(u64, u64)>>>,
    since: i64,
    types: TypeSet,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("user_id", &self.user_id)
            .field("replay_left", &self.replay.len())
            .field("after_id", &self.after_id)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The live event in `payload`, if it is one this subscriber should see.
    fn accept(&self, payload: &[u8]) -> Option<Event> {
        let (event, origin) = read_record(payload)?;
        let seen = (origin == self.origin && event.id <= self.after_id)
            || self
                .replayed
                .as_ref()
                .is_some_and(|r| r.contains(&(origin, event.id)));
        let wanted = event.user_id == self.user_id
            && !seen
            && event.timestamp >= self.since
            && self.types.contains(event.event_type);
        wanted.then_some(event)
    }

    fn yielding(&mut self, item: StreamEvent) -> Poll<Option<StreamEvent>> {
        self.idle.as_mut().reset(Instant::now() + self.heartbeat);
        Poll::Ready(Some(item))
    }
}

impl Stream for EventStream {
    type Item = StreamEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        let this = self.get_mut();
        if let Some(event) = this.replay.next() {
            if this.replay.len() == 0 {
                this.replay = Vec::new().into_iter();
            }
            return this.yielding(StreamEvent::Event(event));
        }
        while let Poll::Ready(delivery) = this.live.poll_next_unpin(cx) {
            match delivery {
                Some(Delivery::Message(payload)) => {
                    if let Some(event) = this.accept(&payload) {
                        return this.yielding(StreamEvent::Event(event));
                    }
                }
                Some(Delivery::Lagged(missed)) => {
                    let timestamp = (this.clock)();
                    return this.yielding(StreamEvent::Lagged { missed, timestamp });
                }
                None => return Poll::Ready(None),
            }
        }
        match this.idle.poll_unpin(cx) {
            Poll::Ready(()) => {
                let timestamp = (this.clock)();
                this.yielding(StreamEvent::Heartbeat { timestamp })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::InProcessBus;
    use msgwire_wire::Code;
    use std::sync::atomic::{AtomicI64, Ordering};

    const HOUR: Duration = Duration::from_secs(3600);

    /// A store whose clock reads `now`.
    fn store_at(history: usize, capacity: usize) -> (EventStore, Arc<AtomicI64>) {
        let now = Arc::new(AtomicI64::new(1_000));
        let clock = Arc::clone(&now);
        let bus = Arc::new(InProcessBus::with_capacity(capacity));
        let store =
            EventStore::with_clock(bus, history, Arc::new(move || clock.load(Ordering::SeqCst)));
        (store, now)
    }

    fn ready(stream: &mut EventStream) -> Option<StreamEvent> {
        stream.next().now_or_never().flatten()
    }

    fn ids(items: &[StreamEvent]) -> Vec<u64> {
        items
            .iter()
            .filter_map(|i| match i {
                StreamEvent::Event(e) => Some(e.id),
                _ => None,
            })
            .collect()
    }

    fn value(bytes: &[u8]) -> Value {
        rmp_serde::from_slice(bytes).unwrap()
    }

    #[tokio::test]
    async fn filters_by_user_and_type() {
        let (store, _) = store_at(100, 16);
        let types = Some(vec!["login".to_owned(), "password_change".to_owned()]);
        let mut s = store.subscribe(1, types, None, HOUR).await.unwrap();
        store.publish(1, "login", None).await.unwrap();
        store.publish(2, "login", None).await.unwrap();
        store.publish(1, "logout", None).await.unwrap();
        store.publish(1, "profile_update", None).await.unwrap();
        store.publish(1, "password_change", None).await.unwrap();
        let mut got = Vec::new();
        while let Some(item) = ready(&mut s) {
            got.push(item);
        }
        assert_eq!(ids(&got), [1, 5]);
        assert_eq!(got.len(), 2);
    }

    #[tokio::test]
    async fn start_time_replays_history_then_goes_live() {
        let (store, now) = store_at(100, 16);
        for (t, kind) in [(10, "login"), (20, "logout"), (30, "login")] {
            now.store(t, Ordering::SeqCst);
            store.publish(1, kind, None).await.unwrap();
        }
        store.publish(2, "login", None).await.unwrap(); // id 4, another user
        let mut s = store.subscribe(1, None, Some(20), HOUR).await.unwrap();
        now.store(40, Ordering::SeqCst);
        store.publish(1, "profile_update", None).await.unwrap();
        let got: Vec<_> = std::iter::from_fn(|| ready(&mut s)).collect();
        assert_eq!(ids(&got), [2, 3, 5]);

        // Without start_time: live only.
        let mut live = store.subscribe(1, None, None, HOUR).await.unwrap();
        assert_eq!(ready(&mut live), None);

        // A history of 2 keeps only the newest two events (of all users).
        let (small, _) = store_at(2, 16);
        for _ in 0..3 {
            small.publish(1, "login", None).await.unwrap();
        }
        let mut s = small.subscribe(1, None, Some(0), HOUR).await.unwrap();
        let got: Vec<_> = std::iter::from_fn(|| ready(&mut s)).collect();
        assert_eq!(ids(&got), [2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_when_idle() {
        let (store, now) = store_at(100, 16);
        let mut s = store
            .subscribe(1, None, None, Duration::from_secs(30))
            .await
            .unwrap();
        let started = Instant::now();
        now.store(5_000, Ordering::SeqCst);
        assert_eq!(
            s.next().await,
            Some(StreamEvent::Heartbeat { timestamp: 5_000 })
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));

        // An event pushes the next heartbeat back by a whole interval.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let e = store.publish(1, "login", None).await.unwrap();
        assert_eq!(s.next().await, Some(StreamEvent::Event(e)));
        assert!(matches!(
            s.next().await,
            Some(StreamEvent::Heartbeat { .. })
        ));
        assert_eq!(started.elapsed(), Duration::from_secs(70));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nothing_lost_or_duplicated_between_replay_and_live() {
        const N: u64 = 2_000;
        const READERS: usize = 16;
        // Readers subscribe while the N events are being published. One last event,
        // published once all of them have subscribed, is the one every reader waits
        // for: a reader without a start time that subscribed after the N would
        // otherwise wait for ever.
        const LAST: u64 = N + 1;
        let (store, _) = store_at(N as usize, 4096);
        let store = Arc::new(store);
        let subscribed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let publisher = {
            let store = Arc::clone(&store);
            let subscribed = Arc::clone(&subscribed);
            tokio::spawn(async move {
                for i in 0..N {
                    store.publish(1, "login", None).await.unwrap();
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                while subscribed.load(Ordering::SeqCst) < READERS {
                    tokio::task::yield_now().await;
                }
                store.publish(1, "login", None).await.unwrap();
            })
        };
        let mut readers = Vec::new();
        for k in 0..READERS {
            let store = Arc::clone(&store);
            let subscribed = Arc::clone(&subscribed);
            readers.push(tokio::spawn(async move {
                for _ in 0..k * 3 {
                    tokio::task::yield_now().await;
                }
                let start = (k % 2 == 0).then_some(0);
                let mut s = store.subscribe(1, None, start, HOUR).await.unwrap();
                subscribed.fetch_add(1, Ordering::SeqCst);
                let mut seen = Vec::new();
                while seen.last() != Some(&LAST) {
                    match s.next().await {
                        Some(StreamEvent::Event(e)) => seen.push(e.id),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                (start, seen)
            }));
        }
        publisher.await.unwrap();
        for reader in readers {
            let (start, seen) = reader.await.unwrap();
            let first = if start.is_some() { 1 } else { seen[0] };
            assert_eq!(seen, (first..=LAST).collect::<Vec<_>>(), "start {start:?}");
        }
    }

    #[tokio::test]
    async fn unknown_types_and_bad_params_are_invalid_argument() {
        let (store, _) = store_at(10, 16);
        fn code<T>(r: Result<T, RpcError>) -> Option<Code> {
            r.err().map(|e| e.code)
        }
        assert_eq!(
            code(store.publish(1, "hack", None).await),
            Some(Code::InvalidArgument)
        );
        let filter = Some(vec!["login".to_owned(), "nope".to_owned()]);
        assert_eq!(
            code(store.subscribe(1, filter, None, HOUR).await),
            Some(Code::InvalidArgument)
        );
        assert_eq!(
            code(store.subscribe(1, None, None, Duration::ZERO).await),
            Some(Code::InvalidArgument)
        );
        assert_eq!(
            code(store.publish(1, "login", Some(Value::from(3))).await),
            Some(Code::InvalidArgument)
        );
        let err = store.publish(1, "hack", None).await.err().unwrap();
        assert_eq!(
            err.message,
            "unknown event type \"hack\" (login, logout, profile_update, password_change)"
        );
        // Nothing was recorded.
        assert_eq!(store.lock().last_id, 0);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_many_it_missed() {
        let (store, _) = store_at(100, 2);
        let mut s = store.subscribe(1, None, None, HOUR).await.unwrap();
        for _ in 0..5 {
            store.publish(1, "login", None).await.unwrap();
        }
        assert_eq!(
            ready(&mut s),
            Some(StreamEvent::Lagged {
                missed: 3,
                timestamp: 1_000
            })
        );
        let rest: Vec<_> = std::iter::from_fn(|| ready(&mut s)).collect();
        assert_eq!(ids(&rest), [4, 5]);
    }

    #[tokio::test]
    async fn foreign_payloads_on_the_topic_are_skipped() {
        let bus = Arc::new(InProcessBus::new());
        let store = EventStore::new(bus.clone(), 10);
        let mut s = store.subscribe(1, None, None, HOUR).await.unwrap();
        bus.publish(&topic(1), Bytes::from_static(b"\xc1junk"))
            .await
            .unwrap();
        let e = store.publish(1, "logout", None).await.unwrap();
        assert_eq!(ready(&mut s), Some(StreamEvent::Event(e)));
        drop(store);
        drop(bus);
        assert_eq!(s.next().await, None, "ends with the bus");
    }

    #[test]
    fn wire_shapes() {
        let event = Event {
            id: 7,
            user_id: 1,
            event_type: EventType::ProfileUpdate,
            timestamp: 1_700_000_000_000,
            data: Some(Value::Map(vec![("field".into(), "email".into())])),
        };
        let bytes = rmp_serde::to_vec_named(&StreamEvent::Event(event.clone())).unwrap();
        assert_eq!(
            value(&bytes),
            Value::Map(vec![
                ("id".into(), 7.into()),
                ("user_id".into(), 1.into()),
                ("type".into(), "profile_update".into()),
                ("timestamp".into(), 1_700_000_000_000_i64.into()),
                (
                    "data".into(),
                    Value::Map(vec![("field".into(), "email".into())])
                ),
            ])
        );
        let back: StreamEvent = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, StreamEvent::Event(event));

        let no_data = Event {
            id: 1,
            user_id: 2,
            event_type: EventType::Login,
            timestamp: 3,
            data: None,
        };
        let bytes = rmp_serde::to_vec_named(&no_data).unwrap();
        assert_eq!(value(&bytes).as_map().map(Vec::len), Some(4), "no data key");

        let heartbeat = StreamEvent::Heartbeat { timestamp: 5 };
        let bytes = rmp_serde::to_vec_named(&heartbeat).unwrap();
        assert_eq!(
            bytes,
            [
                0x82, 0xa4, b't', b'y', b'p', b'e', 0xa9, b'h', b'e', b'a', b'r', b't', b'b', b'e',
                b'a', b't', 0xa9, b't', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p', 0x05
            ]
        );
        assert_eq!(
            rmp_serde::from_slice::<StreamEvent>(&bytes).unwrap(),
            heartbeat
        );

        let lagged = StreamEvent::Lagged {
            missed: 12,
            timestamp: 5,
        };
        let bytes = rmp_serde::to_vec_named(&lagged).unwrap();
        assert_eq!(
            value(&bytes),
            Value::Map(vec![
                ("type".into(), "lagged".into()),
                ("timestamp".into(), 5.into()),
                ("missed".into(), 12.into()),
            ])
        );
        assert_eq!(
            rmp_serde::from_slice::<StreamEvent>(&bytes).unwrap(),
            lagged
        );
    }

    #[tokio::test]
    async fn sizes_and_ten_thousand_idle_subscriptions() {
        let (store, _) = store_at(100, 16);
        let mut streams = Vec::new();
        for user in 0..10_000 {
            let mut s = store.subscribe(user % 100, None, None, HOUR).await.unwrap();
            assert_eq!(ready(&mut s), None, "arms the timer and the receiver");
            streams.push(s);
        }
        let e = store.publish(42, "login", None).await.unwrap();
        let mut got = 0;
        // Unconstrained: past tokio's co-op budget a ready receiver reports Pending.
        tokio::task::unconstrained(async {
            for s in &mut streams {
                if let Some(item) = ready(s) {
                    assert_eq!(item, StreamEvent::Event(e.clone()));
                    got += 1;
                }
            }
        })
        .await;
        assert_eq!(got, 100);
        println!(
            "EventStream {} B inline + Sleep {} B boxed + the bus subscription \
             (see bus::tests::sizes); StreamEvent {} B",
            std::mem::size_of::<EventStream>(),
            std::mem::size_of::<Sleep>(),
            std::mem::size_of::<StreamEvent>(),
        );
        assert!(std::mem::size_of::<EventStream>() <= 160);
    }

    /// A log in memory, shared by the stores of "several processes"; appends fail
    /// while `down` is set.
    #[derive(Debug, Default)]
    struct MemoryLog {
        records: Mutex<Vec<Bytes>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl EventLog for MemoryLog {
        fn append(&self, _user_id: u64, record: Bytes) -> BoxFuture<'_, Result<(), RpcError>> {
            let result = if self.down.load(Ordering::SeqCst) {
                Err(RpcError::new(Code::Unavailable, "the log is down"))
            } else {
                self.records.lock().unwrap().push(record);
                Ok(())
            };
            Box::pin(futures::future::ready(result))
        }

        fn replay(&self, since: i64) -> BoxFuture<'_, Result<Vec<Bytes>, RpcError>> {
            let records = self.records.lock().unwrap();
            let kept = records
                .iter()
                .filter(|r| read_record(r).is_some_and(|(e, _)| e.timestamp >= since))
                .cloned()
                .collect();
            Box::pin(futures::future::ready(Ok(kept)))
        }
    }

    #[tokio::test]
    async fn over_a_shared_bus_another_store_s_lower_ids_still_arrive() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let (a, b) = (
            EventStore::new(Arc::clone(&bus), 100),
            EventStore::new(bus, 100),
        );
        for _ in 0..5 {
            b.publish(1, "login", None).await.unwrap();
        }
        // b's watermark is 5; a's first event is id 1, and is new all the same.
        let mut on_b = b.subscribe(1, None, Some(0), HOUR).await.unwrap();
        let replayed: Vec<_> = std::iter::from_fn(|| ready(&mut on_b)).collect();
        assert_eq!(ids(&replayed), [1, 2, 3, 4, 5]);
        let from_a = a.publish(1, "logout", None).await.unwrap();
        assert_eq!(from_a.id, 1);
        assert_eq!(ready(&mut on_b), Some(StreamEvent::Event(from_a)));
    }

    #[tokio::test]
    async fn stores_sharing_a_bus_and_a_log_act_as_one() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let log = Arc::new(MemoryLog::default());
        let process = || EventStore::new(Arc::clone(&bus), 100).with_log(log.clone());
        let (a, b) = (process(), process());
        assert_ne!(a.origin(), b.origin());

        // Live across processes, once each, though both start their ids at 1.
        let mut on_b = b.subscribe(1, None, None, HOUR).await.unwrap();
        let from_a = a.publish(1, "login", None).await.unwrap();
        let from_b = b.publish(1, "logout", None).await.unwrap();
        assert_eq!((from_a.id, from_b.id), (1, 1));
        assert_eq!(ready(&mut on_b), Some(StreamEvent::Event(from_a.clone())));
        assert_eq!(ready(&mut on_b), Some(StreamEvent::Event(from_b.clone())));
        assert_eq!(ready(&mut on_b), None);

        // A store that did not exist then replays both from the log, then goes live.
        drop(a);
        let c = process();
        let mut replay = c.subscribe(1, None, Some(0), HOUR).await.unwrap();
        assert_eq!(ready(&mut replay), Some(StreamEvent::Event(from_a)));
        assert_eq!(ready(&mut replay), Some(StreamEvent::Event(from_b)));
        let later = c.publish(1, "login", None).await.unwrap();
        assert_eq!(ready(&mut replay), Some(StreamEvent::Event(later)));
        assert_eq!(ready(&mut replay), None);
    }

    #[tokio::test]
    async fn an_event_in_both_the_replay_and_the_live_side_is_yielded_once() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let log = Arc::new(MemoryLog::default());
        let store = EventStore::new(Arc::clone(&bus), 100).with_log(log.clone());
        // An append that landed in the log but whose live delivery comes after the
        // subscription: as an append in flight at subscribe time would.
        let event = Event {
            id: 7,
            user_id: 1,
            event_type: EventType::Login,
            timestamp: 5,
            data: None,
        };
        let bytes = record(&event, 99).unwrap();
        log.append(1, bytes.clone()).await.unwrap();
        let mut s = store.subscribe(1, None, Some(0), HOUR).await.unwrap();
        bus.publish(&topic(1), bytes).await.unwrap();
        assert_eq!(ready(&mut s), Some(StreamEvent::Event(event)));
        assert_eq!(ready(&mut s), None, "not again from the live side");
    }

    #[tokio::test]
    async fn an_event_the_log_refused_is_an_error_and_not_delivered() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let log = Arc::new(MemoryLog::default());
        let store = EventStore::new(Arc::clone(&bus), 100).with_log(log.clone());
        let mut s = store.subscribe(1, None, None, HOUR).await.unwrap();
        log.down.store(true, Ordering::SeqCst);
        let refused = store.publish(1, "login", None).await.unwrap_err();
        assert_eq!(refused.code, Code::Unavailable);
        assert_eq!(ready(&mut s), None);
        log.down.store(false, Ordering::SeqCst);
        let kept = store.publish(1, "login", None).await.unwrap();
        assert_eq!(ready(&mut s), Some(StreamEvent::Event(kept)));
        assert_eq!(log.records.lock().unwrap().len(), 1);
    }

    #[test]
    fn records_carry_their_origin_and_read_back() {
        let event = Event {
            id: 3,
            user_id: 1,
            event_type: EventType::ProfileUpdate,
            timestamp: 1_700_000_000_000,
            data: Some(Value::Map(vec![("bio".into(), "hi".into())])),
        };
        let bytes = record(&event, 42).unwrap();
        let map = value(&bytes);
        let keys: Vec<_> = map
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            keys,
            ["id", "user_id", "type", "timestamp", "data", "origin"]
        );
        assert_eq!(read_record(&bytes), Some((event.clone(), 42)));
        // A plain event map (a foreign producer's) reads with origin 0.
        let plain = rmp_serde::to_vec_named(&event).unwrap();
        assert_eq!(read_record(&plain), Some((event, 0)));
        assert_eq!(read_record(b"\xc1"), None);
    }
}
