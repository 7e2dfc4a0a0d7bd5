//! bus: publish/subscribe of MessagePack payloads by topic — the narrow interface the
//! event and chat services sit on, and [`InProcessBus`], its in-process default.
//!
//! ```text
//!  publish("events:7", bytes) ──► ┌ topic "events:7" ───────────────────────┐
//!                                 │ one ring of `capacity` slots, shared     │
//!                                 │ [p5][p6][p7][p8]  oldest … newest        │
//!                                 └──┬──────────────┬───────────────┬────────┘
//!                          next = p7 │    next = p8 │   next = p3 (fell behind)
//!                                    ▼              ▼               ▼
//!                              Message(p7)    Message(p8)     Lagged(2), then p5 …
//! ```
//!
//! A [`Bus`] carries opaque payloads ([`Bytes`], MessagePack by convention) to every
//! [`Subscription`] open on the topic when the payload is published. Nothing is kept for
//! later subscribers: history, if wanted, is the caller's business (see
//! [`crate::events`]).
//!
//! # Lag policy
//!
//! Every subscription has a bounded buffer. A subscriber that falls more than the buffer
//! behind **loses the oldest payloads**: its next item is [`Delivery::Lagged`] with how
//! many it missed, and it then goes on from the oldest payload still buffered. Publishers
//! never wait for a slow subscriber and a slow subscriber never grows memory. (This is
//! `tokio::sync::broadcast`'s behaviour; a Redis or Kafka backend reports whatever loss
//! it can detect the same way.)
//!
//! # Cost
//!
//! [`InProcessBus`] keeps one ring per topic that has subscribers — `capacity` slots of
//! a few dozen bytes each, allocated when the first subscriber arrives and freed when
//! the last one leaves — and a subscriber adds only its cursor and a small boxed
//! receive state (see the `sizes` test). Payloads are shared, not copied, and dropped
//! once every subscriber has read them.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use futures::StreamExt;
//! use msgwire_services::bus::{Bus, Delivery, InProcessBus};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), msgwire_services::bus::BusError> {
//! let bus = InProcessBus::new();
//! let mut sub = bus.subscribe("greetings").await?;
//! bus.publish("greetings", Bytes::from_static(b"\xa2hi")).await?;
//! assert_eq!(sub.next().await, Some(Delivery::Message(Bytes::from_static(b"\xa2hi"))));
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{self, BoxFuture};
use futures::stream::{self, BoxStream, FusedStream, Stream, StreamExt};
use msgwire_wire::{Code, RpcError};
use tokio::sync::broadcast;

/// Buffered payloads per topic of an [`InProcessBus::new`] bus.
pub const DEFAULT_CAPACITY: usize = 16;

/// The largest per-topic buffer [`InProcessBus::with_capacity`] accepts; larger values
/// are clamped to it.
pub const MAX_CAPACITY: usize = 1 << 16;

/// Why a bus could not publish or subscribe.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The bus has shut down.
    #[error("the bus is closed")]
    Closed,
    /// The backend (a Redis or Kafka connection, say) failed.
    #[error("bus backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<BusError> for RpcError {
    /// UNAVAILABLE (14): the bus may come back; retrying may help.
    fn from(error: BusError) -> Self {
        RpcError::new(Code::Unavailable, error.to_string())
    }
}

/// Publish/subscribe by topic. Object safe: services hold an `Arc<dyn Bus>`.
///
/// The returned futures borrow only `self`: an implementation copies `topic` before
/// its first `.await`.
pub trait Bus: Send + Sync {
    /// Sends `payload` to every subscription open on `topic` now. Succeeds when nobody
    /// is subscribed (the payload is then dropped).
    fn publish(&self, topic: &str, payload: Bytes) -> BoxFuture<'_, Result<(), BusError>>;

    /// Opens a subscription to `topic`. Once the future resolves, every payload
    /// published to `topic` afterwards is delivered to it (or counted in a
    /// [`Delivery::Lagged`]).
    fn subscribe(&self, topic: &str) -> BoxFuture<'_, Result<Subscription, BusError>>;

    /// Publishes each `(topic, payload)` in order, as [`Bus::publish`] would one after
    /// the other; an error is the first one met, after every payload was tried. A
    /// backend with a round trip per publish overrides this to send them together
    /// (Redis: one pipeline).
    fn publish_all(&self, items: Vec<(String, Bytes)>) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut first = Ok(());
            for (topic, payload) in items {
                let published = self.publish(&topic, payload).await;
                if first.is_ok() {
                    first = published;
                }
            }
            first
        })
    }
}

/// One item of a [`Subscription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A published payload.
    Message(Bytes),
    /// The subscriber fell behind and this many payloads were dropped, oldest first; the
    /// next items are the oldest payloads still buffered.
    Lagged(u64),
}

/// The payloads published to one topic, as a [`Stream`] of [`Delivery`]. It ends when
/// the bus goes away (and stays ended: polling it again returns `None`). Dropping it
/// unsubscribes.
pub struct Subscription {
    inner: Option<BoxStream<'static, Delivery>>,
}

impl Subscription {
    /// Wraps a backend's stream of deliveries.
    pub fn new(deliveries: impl Stream<Item = Delivery> + Send + 'static) -> Self {
        Self {
            inner: Some(deliveries.boxed()),
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("ended", &self.inner.is_none())
            .finish()
    }
}

impl Stream for Subscription {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let next = inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = next {
            self.inner = None;
        }
        next
    }
}

impl FusedStream for Subscription {
    fn is_terminated(&self) -> bool {
        self.inner.is_none()
    }
}

/// The in-process [`Bus`]: one `tokio::sync::broadcast` ring per topic with
/// subscribers. Cloning shares the bus; when every clone is dropped, open subscriptions
/// end.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    topics: Arc<Topics>,
}

#[derive(Debug)]
struct Topics {
    capacity: usize,
    senders: Mutex<HashMap<Arc<str>, broadcast::Sender<Bytes>>>,
}

impl Topics {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, broadcast::Sender<Bytes>>> {
        // The map stays consistent across a panic elsewhere: every change is one call.
        self.senders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl InProcessBus {
    /// A bus buffering [`DEFAULT_CAPACITY`] payloads per topic.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A bus buffering `capacity` payloads per topic (at least 1, at most
    /// [`MAX_CAPACITY`]; the ring rounds it up to a power of two).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            topics: Arc::new(Topics {
                capacity: capacity.clamp(1, MAX_CAPACITY),
                senders: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How many payloads a subscriber may fall behind before it lags.
    pub fn capacity(&self) -> usize {
        self.topics.capacity.next_power_of_two()
    }

    /// How many topics have subscribers.
    pub fn topic_count(&self) -> usize {
        self.topics.lock().len()
    }

    /// How many subscriptions are open on `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.topics
            .lock()
            .get(topic)
            .map_or(0, broadcast::Sender::receiver_count)
    }

    fn publish_now(&self, topic: &str, payload: Bytes) {
        let mut senders = self.topics.lock();
        if let Some(sender) = senders.get(topic) {
            if sender.send(payload).is_err() {
                // No receiver left (normally the last one removes the topic itself).
                senders.remove(topic);
            }
        }
    }

    fn subscribe_now(&self, topic: &str) -> Subscription {
        let mut senders = self.topics.lock();
        let (topic, receiver) = match senders.get_key_value(topic) {
            Some((name, sender)) => (Arc::clone(name), sender.subscribe()),
            None => {
                let name: Arc<str> = Arc::from(topic);
                let (sender, receiver) = broadcast::channel(self.topics.capacity);
                senders.insert(Arc::clone(&name), sender);
                (name, receiver)
            }
        };
        Subscription::new(deliveries(TopicReceiver {
            receiver: Some(receiver),
            topic,
            topics: Arc::downgrade(&self.topics),
        }))
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus for InProcessBus {
    fn publish(&self, topic: &str, payload: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        self.publish_now(topic, payload);
        Box::pin(future::ready(Ok(())))
    }

    fn subscribe(&self, topic: &str) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Box::pin(future::ready(Ok(self.subscribe_now(topic))))
    }
}

/// A broadcast receiver that takes its topic off the bus when it is the last one.
struct TopicReceiver {
    /// Always `Some` until the drop, which lets it go under the topics' lock.
    receiver: Option<broadcast::Receiver<Bytes>>,
    topic: Arc<str>,
    topics: Weak<Topics>,
}

impl Drop for TopicReceiver {
    fn drop(&mut self) {
        let Some(topics) = self.topics.upgrade() else {
            return;
        };
        let mut senders = topics.lock();
        // Subscribing happens under this lock too, so nobody joins between the count
        // and the removal. The receiver goes first, under the lock: two subscriptions
        // dropped at once on two threads then cannot both count the other.
        drop(self.receiver.take());
        if senders
            .get(&*self.topic)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            senders.remove(&*self.topic);
        }
    }
}

fn deliveries(receiver: TopicReceiver) -> impl Stream<Item = Delivery> + Send + 'static {
    stream::unfold(receiver, |mut topic| async move {
        let receiver = topic.receiver.as_mut()?;
        let delivery = match receiver.recv().await {
            Ok(payload) => Delivery::Message(payload),
            Err(broadcast::error::RecvError::Lagged(missed)) => Delivery::Lagged(missed),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((delivery, topic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn payload(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn ready(sub: &mut Subscription) -> Option<Option<Delivery>> {
        sub.next().now_or_never()
    }

    #[tokio::test]
    async fn publish_reaches_every_subscriber_of_the_topic_only() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let mut a = bus.subscribe("t").await.unwrap();
        let mut b = bus.subscribe("t").await.unwrap();
        let mut other = bus.subscribe("u").await.unwrap();
        bus.publish("t", payload("one")).await.unwrap();
        bus.publish("t", payload("two")).await.unwrap();
        for sub in [&mut a, &mut b] {
            assert_eq!(ready(sub), Some(Some(Delivery::Message(payload("one")))));
            assert_eq!(ready(sub), Some(Some(Delivery::Message(payload("two")))));
            assert_eq!(ready(sub), None, "nothing more yet");
        }
        assert_eq!(ready(&mut other), None);
    }

    #[tokio::test]
    async fn publish_all_publishes_in_order() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let mut t = bus.subscribe("t").await.unwrap();
        let mut u = bus.subscribe("u").await.unwrap();
        let items = ["1", "2", "3"]
            .into_iter()
            .map(|p| ("t".to_owned(), payload(p)))
            .chain([("u".to_owned(), payload("4"))])
            .collect();
        bus.publish_all(items).await.unwrap();
        for p in ["1", "2", "3"] {
            assert_eq!(ready(&mut t), Some(Some(Delivery::Message(payload(p)))));
        }
        assert_eq!(ready(&mut u), Some(Some(Delivery::Message(payload("4")))));
        assert_eq!(ready(&mut t), None);
    }

    #[tokio::test]
    async fn publishing_without_subscribers_keeps_nothing() {
        let bus = InProcessBus::new();
        bus.publish("nobody", payload("x")).await.unwrap();
        assert_eq!(bus.topic_count(), 0);
        let mut late = bus.subscribe("nobody").await.unwrap();
        assert_eq!(ready(&mut late), None, "no history for late subscribers");
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_the_oldest_and_is_told() {
        let bus = InProcessBus::with_capacity(2);
        assert_eq!(bus.capacity(), 2);
        let mut slow = bus.subscribe("t").await.unwrap();
        for p in ["1", "2", "3", "4", "5"] {
            bus.publish("t", payload(p)).await.unwrap();
        }
        assert_eq!(ready(&mut slow), Some(Some(Delivery::Lagged(3))));
        assert_eq!(
            ready(&mut slow),
            Some(Some(Delivery::Message(payload("4"))))
        );
        assert_eq!(
            ready(&mut slow),
            Some(Some(Delivery::Message(payload("5"))))
        );
        assert_eq!(ready(&mut slow), None);
        bus.publish("t", payload("6")).await.unwrap();
        assert_eq!(
            ready(&mut slow),
            Some(Some(Delivery::Message(payload("6"))))
        );
    }

    #[tokio::test]
    async fn topics_go_with_their_last_subscriber_and_subscriptions_with_the_bus() {
        let bus = InProcessBus::new();
        let a = bus.subscribe("t").await.unwrap();
        let b = bus.subscribe("t").await.unwrap();
        assert_eq!((bus.topic_count(), bus.subscriber_count("t")), (1, 2));
        drop(a);
        assert_eq!((bus.topic_count(), bus.subscriber_count("t")), (1, 1));
        drop(b);
        assert_eq!(bus.topic_count(), 0);

        let mut orphan = bus.subscribe("t").await.unwrap();
        drop(bus);
        assert_eq!(orphan.next().await, None);
        assert!(orphan.is_terminated());
        assert_eq!(orphan.next().await, None, "stays ended");
    }

    #[tokio::test]
    async fn waits_for_the_next_payload() {
        let bus = InProcessBus::new();
        let mut sub = bus.subscribe("t").await.unwrap();
        let publisher = bus.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            publisher.publish("t", payload("later")).await
        });
        assert_eq!(sub.next().await, Some(Delivery::Message(payload("later"))));
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn ten_thousand_subscriptions() {
        let bus = InProcessBus::new();
        let mut shared = Vec::new();
        for _ in 0..10_000 {
            shared.push(bus.subscribe("all").await.unwrap());
        }
        bus.publish("all", payload("hi")).await.unwrap();
        // Unconstrained: tokio's co-op budget would otherwise make the 129th ready
        // receiver return Pending within one poll of the test task.
        tokio::task::unconstrained(async {
            for sub in &mut shared {
                assert_eq!(ready(sub), Some(Some(Delivery::Message(payload("hi")))));
                assert_eq!(ready(sub), None, "registers a waiter");
            }
        })
        .await;
        assert_eq!(bus.subscriber_count("all"), 10_000);
        drop(shared);
        assert_eq!(bus.topic_count(), 0);
    }

    #[test]
    fn subscriptions_dropped_at_once_on_many_threads_take_their_topic_along() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bus = InProcessBus::new();
        // Two at a time, many times: the race is between exactly two drops.
        for _ in 0..2000 {
            let subs: Vec<_> = (0..2)
                .map(|_| runtime.block_on(bus.subscribe("t")).unwrap())
                .collect();
            let barrier = Arc::new(std::sync::Barrier::new(subs.len()));
            let threads: Vec<_> = subs
                .into_iter()
                .map(|sub| {
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        drop(sub);
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(bus.topic_count(), 0, "no empty topic left behind");
        }
    }

    #[test]
    fn sizes() {
        let bus = InProcessBus::new();
        let (_, receiver) = broadcast::channel::<Bytes>(1);
        let receiver = TopicReceiver {
            receiver: Some(receiver),
            topic: Arc::from("t"),
            topics: Arc::downgrade(&bus.topics),
        };
        let boxed = std::mem::size_of_val(&deliveries(receiver));
        println!(
            "Subscription {} B inline + {boxed} B boxed receive state; \
             per topic: a ring of {} slots",
            std::mem::size_of::<Subscription>(),
            bus.capacity(),
        );
        assert!(boxed < 512, "the boxed receive state is {boxed} B");
    }
}
