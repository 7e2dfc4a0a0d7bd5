//! The bus side of a [`ChatHub::with_bus`](super::ChatHub::with_bus) hub: the envelope,
//! the hub's one publisher (an ordered, bounded queue to the bus) and each room's
//! listener (a task per room with local members). See the [module docs](super).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

use super::{check_id, lock, ChatKind, ChatMessage, Hub, Room, MAX_CONTENT_LEN, SYSTEM_USER};
use crate::bus::{Bus, Delivery, Subscription};

/// How many messages a bus hub holds for its publisher: past that, messages still reach
/// this process's members but are not published (they are counted and logged).
pub const BUS_QUEUE: usize = 256;

/// The topic of a room: `chat:<room_id>`.
pub fn topic(room_id: &str) -> String {
    format!("chat:{room_id}")
}

/// The first and the longest wait before subscribing again after a failure.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// `{"origin": u64, "message": {...}}`, as published.
#[derive(Serialize)]
struct EnvelopeOut<'a> {
    origin: u64,
    message: &'a ChatMessage,
}

/// The same, as read (other keys are ignored).
#[derive(Deserialize)]
struct EnvelopeIn {
    origin: u64,
    message: ChatMessage,
}

/// What a payload on a room's topic turned out to be.
#[derive(Debug, PartialEq)]
enum Incoming {
    /// From another hub: for this room's members.
    Remote(ChatMessage),
    /// This hub's own message, back from the bus.
    Own,
    /// Not an envelope of a message for this room.
    Garbage(String),
}

fn encode(origin: u64, message: &ChatMessage) -> Result<Bytes, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(&EnvelopeOut { origin, message }).map(Bytes::from)
}

/// Reads `payload` for `room` as a hub of id `own`. Never panics: whatever is not an
/// envelope of a message another hub would have broadcast to `room` is garbage.
fn decode(payload: &[u8], own: u64, room: &str) -> Incoming {
    let envelope: EnvelopeIn = match rmp_serde::from_slice(payload) {
        Ok(envelope) => envelope,
        Err(e) => return Incoming::Garbage(format!("not an envelope: {e}")),
    };
    if envelope.origin == own {
        return Incoming::Own;
    }
    let message = envelope.message;
    let bad = if message.kind == ChatKind::System {
        Some("a system message".to_owned())
    } else if message.room_id != room {
        Some(format!("for room {:?}", message.room_id))
    } else if message.user_id == SYSTEM_USER {
        Some(format!("from {SYSTEM_USER:?}"))
    } else if let Err(e) = check_id("user_id", &message.user_id) {
        Some(e.message)
    } else if message.content.len() > MAX_CONTENT_LEN {
        Some(format!("content is longer than {MAX_CONTENT_LEN} bytes"))
    } else {
        None
    };
    match bad {
        Some(why) => Incoming::Garbage(why),
        None => Incoming::Remote(message),
    }
}

/// One message for the bus: the room it was broadcast in, and the message.
struct Outgoing {
    room: Arc<str>,
    message: Arc<ChatMessage>,
}

/// A hub's link to its bus.
pub(super) struct Relay {
    pub(super) bus: Arc<dyn Bus>,
    /// This hub's id in envelopes.
    pub(super) origin: u64,
    outbox: mpsc::Sender<Outgoing>,
    /// The outbox's other end until the publisher runs (it needs a Tokio runtime).
    unstarted: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    /// Messages not published because the outbox was full (or its publisher gone).
    dropped: AtomicU64,
    next_listener: AtomicU64,
}

impl Relay {
    pub(super) fn new(bus: Arc<dyn Bus>) -> Self {
        let (outbox, receiver) = mpsc::channel(BUS_QUEUE);
        let relay = Self {
            bus,
            origin: rand::random(),
            outbox,
            unstarted: Mutex::new(Some(receiver)),
            dropped: AtomicU64::new(0),
            next_listener: AtomicU64::new(1),
        };
        relay.start_publisher();
        relay
    }

    /// Spawns the publisher if it is not running yet and there is a runtime to run it.
    fn start_publisher(&self) {
        let Ok(runtime) = Handle::try_current() else {
            return;
        };
        let Some(receiver) = lock(&self.unstarted).take() else {
            return;
        };
        runtime.spawn(publish(Arc::clone(&self.bus), self.origin, receiver));
    }

    /// Queues `message`, broadcast in `room`, for the bus. Never waits: called under the
    /// room's lock, so the queue's order is the room's order.
    pub(super) fn enqueue(&self, room: &Arc<str>, message: &Arc<ChatMessage>) {
        let outgoing = Outgoing {
            room: Arc::clone(room),
            message: Arc::clone(message),
        };
        if self.outbox.try_send(outgoing).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // 1, 2, 4, 8, …: a full queue is worth knowing about, not once per message.
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    capacity = BUS_QUEUE,
                    "chat: the bus queue is full; messages reach this process only"
                );
            }
        }
    }

    /// Starts listening to `room`'s topic for the room's local members: called under the
    /// room's lock when it has no listener. `None` without a Tokio runtime (the room
    /// stays local; the next join tries again).
    pub(super) fn listen(
        &self,
        hub: &Arc<Hub>,
        room: &Arc<Mutex<Room>>,
        name: &str,
    ) -> Option<Listener> {
        let Ok(runtime) = Handle::try_current() else {
            tracing::warn!(
                room = name,
                "chat: no Tokio runtime to listen to the bus on"
            );
            return None;
        };
        self.start_publisher();
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        let (stop, stopped) = oneshot::channel();
        let (state, subscribed) = watch::channel(SubState::Pending);
        let task = ListenTask {
            hub: Arc::clone(hub),
            room: Arc::clone(room),
            name: Arc::from(name),
            id,
            state,
        };
        runtime.spawn(task.run(stopped));
        Some(Listener {
            id,
            _stop: stop,
            subscribed,
        })
    }
}

/// The most queued messages published together (one [`Bus::publish_all`]): no more
/// than a bus's local ring holds by default ([`crate::bus::DEFAULT_CAPACITY`]), since the
/// hub's own listener gets the batch too and must not lag behind it.
const PUBLISH_BATCH: usize = crate::bus::DEFAULT_CAPACITY;

/// Publishes the outbox in order — what is queued when the bus is free goes together,
/// up to [`PUBLISH_BATCH`] in one [`Bus::publish_all`] — so what one hub broadcasts
/// reaches the bus in the order its rooms broadcast it. Ends with the hub.
async fn publish(bus: Arc<dyn Bus>, origin: u64, mut outbox: mpsc::Receiver<Outgoing>) {
    let mut failures: u64 = 0;
    let mut queued = Vec::with_capacity(PUBLISH_BATCH);
    while outbox.recv_many(&mut queued, PUBLISH_BATCH).await > 0 {
        let batch: Vec<(String, Bytes)> = queued
            .drain(..)
            .filter_map(
                |Outgoing { room, message }| match encode(origin, &message) {
                    Ok(payload) => Some((topic(&room), payload)),
                    Err(e) => {
                        tracing::debug!(room = &*room, error = %e, "chat: cannot encode a message");
                        None
                    }
                },
            )
            .collect();
        match bus.publish_all(batch).await {
            Ok(()) if failures > 0 => {
                tracing::info!(failures, "chat: publishing to the bus works again");
                failures = 0;
            }
            Ok(()) => {}
            Err(e) => {
                // Once per outage above debug; the rooms go on locally meanwhile.
                if failures == 0 {
                    tracing::warn!(error = %e, "chat: cannot publish to the bus; rooms go on locally");
                } else {
                    tracing::debug!(error = %e, "chat: cannot publish to the bus");
                }
                failures += 1;
            }
        }
    }
}

/// Whether a room's listener has its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SubState {
    Pending,
    Subscribed,
    /// Subscribing failed or the subscription ended; the listener tries again.
    Failed,
}

/// A room's listener, held by the room: dropping it stops the task (and so drops the
/// subscription).
pub(super) struct Listener {
    id: u64,
    _stop: oneshot::Sender<()>,
    pub(super) subscribed: watch::Receiver<SubState>,
}

struct ListenTask {
    hub: Arc<Hub>,
    room: Arc<Mutex<Room>>,
    name: Arc<str>,
    /// Which listener of the room this is: only the room's current one delivers.
    id: u64,
    state: watch::Sender<SubState>,
}

impl ListenTask {
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let Some(relay) = self.hub.relay.as_ref() else {
            return;
        };
        let bus = Arc::clone(&relay.bus);
        let topic = topic(&self.name);
        let mut retry = RETRY_FIRST;
        loop {
            let subscribed = tokio::select! {
                biased;
                _ = &mut stopped => return,
                subscribed = bus.subscribe(&topic) => subscribed,
            };
            match subscribed {
                Ok(subscription) => {
                    self.state.send_replace(SubState::Subscribed);
                    let Some(heard) = self.hear(subscription, &mut stopped, relay.origin).await
                    else {
                        return;
                    };
                    if heard {
                        retry = RETRY_FIRST;
                    }
                    tracing::warn!(topic, "chat: the bus subscription ended; subscribing again");
                }
                Err(e) => {
                    if retry == RETRY_FIRST {
                        tracing::warn!(topic, error = %e, "chat: cannot subscribe; the room goes on locally");
                    } else {
                        tracing::debug!(topic, error = %e, "chat: cannot subscribe");
                    }
                }
            }
            self.state.send_replace(SubState::Failed);
            tokio::select! {
                biased;
                _ = &mut stopped => return,
                () = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// Delivers what `subscription` brings until it ends (`Some(whether anything came)`)
    /// or the listener is to stop (`None`).
    async fn hear(
        &self,
        mut subscription: Subscription,
        stopped: &mut oneshot::Receiver<()>,
        origin: u64,
    ) -> Option<bool> {
        let mut heard = false;
        loop {
            let delivery = tokio::select! {
                biased;
                _ = &mut *stopped => return None,
                delivery = subscription.next() => delivery,
            };
            match delivery {
                None => return Some(heard),
                Some(Delivery::Lagged(missed)) => {
                    tracing::warn!(
                        room = &*self.name,
                        missed,
                        "chat: fell behind the bus; messages from other processes were lost"
                    );
                }
                Some(Delivery::Message(payload)) => {
                    heard = true;
                    match decode(&payload, origin, &self.name) {
                        Incoming::Remote(message) => {
                            if !self.deliver(message) {
                                return None;
                            }
                        }
                        Incoming::Own => {}
                        Incoming::Garbage(why) => {
                            tracing::debug!(room = &*self.name, why, "chat: skipped a bus payload");
                        }
                    }
                }
            }
        }
    }

    /// Gives a remote message to the room's local members under the room's lock, by the
    /// backlog rules of a local one; false if this listener is to stop (it is not the
    /// room's listener any more, or the room has no local member left).
    fn deliver(&self, message: ChatMessage) -> bool {
        {
            let mut room = lock(&self.room);
            if room.listener.as_ref().map(|l| l.id) != Some(self.id) {
                return false;
            }
            // Not published again; the removals it causes are.
            self.hub
                .broadcast(&mut room, Arc::new(message), None, false);
            if !room.seats.is_empty() {
                return true;
            }
            room.listener = None;
        }
        self.hub.remove_if_empty(&self.room);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: ChatKind, user: &str, room: &str, content: &str) -> ChatMessage {
        ChatMessage {
            user_id: user.into(),
            room_id: room.into(),
            content: content.into(),
            kind,
            timestamp: 7,
        }
    }

    #[test]
    fn envelope_layout_and_round_trip() {
        let hi = message(ChatKind::Text, "alice", "rust", "hi");
        let bytes = encode(0xfeed_f00d_dead_beef, &hi).unwrap();
        let value: msgwire_rpc::Value = rmp_serde::from_slice(&bytes).unwrap();
        let expected = msgwire_rpc::Value::Map(vec![
            ("origin".into(), 0xfeed_f00d_dead_beef_u64.into()),
            (
                "message".into(),
                msgwire_rpc::Value::Map(vec![
                    ("user_id".into(), "alice".into()),
                    ("room_id".into(), "rust".into()),
                    ("content".into(), "hi".into()),
                    ("type".into(), "text".into()),
                    ("timestamp".into(), 7.into()),
                ]),
            ),
        ]);
        assert_eq!(value, expected);
        assert_eq!(decode(&bytes, 1, "rust"), Incoming::Remote(hi));
        assert_eq!(decode(&bytes, 0xfeed_f00d_dead_beef, "rust"), Incoming::Own);
    }

    #[test]
    fn what_is_not_a_remote_broadcast_is_garbage() {
        let garbage = |bytes: &[u8]| matches!(decode(bytes, 1, "rust"), Incoming::Garbage(_));
        let envelope = |m: &ChatMessage| encode(2, m).unwrap();
        assert!(garbage(b""));
        assert!(garbage(b"\xc1"));
        assert!(garbage(b"\x81\xa6origin"));
        assert!(garbage(&rmp_serde::to_vec("hello").unwrap()));
        assert!(garbage(&envelope(&message(ChatKind::Text, "a", "go", "x"))));
        assert!(garbage(&envelope(&message(
            ChatKind::System,
            "system",
            "rust",
            "x"
        ))));
        assert!(garbage(&envelope(&message(
            ChatKind::Text,
            "system",
            "rust",
            "x"
        ))));
        assert!(garbage(&envelope(&message(
            ChatKind::Text,
            "",
            "rust",
            "x"
        ))));
        let long = "x".repeat(MAX_CONTENT_LEN + 1);
        assert!(garbage(&envelope(&message(
            ChatKind::Text,
            "a",
            "rust",
            &long
        ))));
        // A negative origin is not a hub id.
        let negative = msgwire_rpc::Value::Map(vec![
            ("origin".into(), (-1).into()),
            ("message".into(), "x".into()),
        ]);
        assert!(garbage(&rmp_serde::to_vec(&negative).unwrap()));
    }
}
