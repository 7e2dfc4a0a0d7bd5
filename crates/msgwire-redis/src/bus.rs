//! [`RedisBus`]: a [`Bus`] shared by every process that points at one Redis, on
//! Redis pub/sub.
//!
//! ```text
//!  process A                                      │ process B
//!  publish("events:7", p)                         │
//!    ├─► local InProcessBus ─► A's subscribers    │
//!    └─► PUBLISH events:7 [origin A|p] ─► Redis ──┼──► B's reader task (SUBSCRIBE events:7)
//!                                 │               │      origin ≠ B ─► B's InProcessBus
//!                                 ▼               │                      ─► B's subscribers
//!                A's reader task: origin = A, skip (A's subscribers already have it)
//! ```
//!
//! Every [`RedisBus`] has an in-process [`InProcessBus`] for its own subscribers, one
//! connection manager to `PUBLISH` on, and one pub/sub connection read by a task of its
//! own. The task `SUBSCRIBE`s a topic's channel when the first subscriber of this
//! process arrives and `UNSUBSCRIBE`s when the last one leaves; what it receives from
//! other processes it publishes on the local bus. So each payload reaches every
//! subscriber of every process exactly once while Redis is up.
//!
//! # Wire format
//!
//! A topic's channel is `{channel_prefix}{topic}` (no prefix by default). Each message
//! is an envelope: [`ORIGIN_LEN`] (8) bytes naming the publishing [`RedisBus`] (random,
//! per instance), then the payload unchanged (MessagePack by convention). A message
//! shorter than 8 bytes is skipped and counted; a message with this bus's own origin
//! is skipped (it was delivered locally when published). A Python peer:
//!
//! ```python
//! import os, msgpack, redis
//! r = redis.Redis(port=6379)
//! r.publish("events:7", os.urandom(8) + msgpack.packb({"n": 1}))   # msgwire delivers {"n": 1}
//! p = r.pubsub(); p.subscribe("events:7")
//! m = p.get_message(timeout=1.0)  # … a message: msgpack.unpackb(m["data"][8:])
//! ```
//!
//! # Delivery guarantees
//!
//! Redis pub/sub is **at most once**: whatever is published while a process's
//! subscriber connection is down (Redis restarting, a network cut) is lost for that
//! process, and the loss cannot be counted, so it is **not** reported as
//! [`Delivery::Lagged`](msgwire_services::bus::Delivery::Lagged). `Lagged` still
//! reports a local subscriber falling behind its ring, as with [`InProcessBus`].
//!
//! While Redis is down, `publish` delivers to this process's subscribers and then
//! returns `BusError::Backend` (the local delivery has happened); `subscribe` returns
//! the local subscription at once and remote delivery starts when the connection is
//! back. The reader task reconnects with a backoff from
//! [`RedisBusConfig::reconnect_min`] to [`RedisBusConfig::reconnect_max`] and subscribes
//! again to every topic with local subscribers. A `PUBLISH` is never retried (it could
//! be delivered twice), so the first one after Redis comes back may still fail. A
//! `PUBLISH` that timed out (Redis hung rather than down) may still be delivered later,
//! once, when Redis catches up: `BusError::Backend` means "not known to be sent", not
//! "not sent".
//!
//! Memory: one map entry per topic with local subscribers, the local rings, and the
//! Redis client's receive queue, which the task empties as fast as messages come (a
//! local subscriber that falls behind lags; it never holds the queue up).
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use futures::StreamExt;
//! use msgwire_redis::{RedisBus, RedisBusConfig};
//! use msgwire_services::bus::{Bus, Delivery};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let a = RedisBus::new(RedisBusConfig::new("redis://127.0.0.1:6379/"))?; // process A
//! let b = RedisBus::new(RedisBusConfig::new("redis://127.0.0.1:6379/"))?; // process B
//! let mut on_b = b.subscribe("events:7").await?;
//! a.publish("events:7", Bytes::from_static(b"\x91\x01")).await?;
//! assert_eq!(on_b.next().await, Some(Delivery::Message(Bytes::from_static(b"\x91\x01"))));
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{Stream, StreamExt};
use msgwire_services::bus::{Bus, BusError, InProcessBus, Subscription, DEFAULT_CAPACITY};
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};
use redis::{Client, Msg, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::conn::{self, RedisBackendError, SetupError, DEFAULT_TIMEOUT};

/// The length of the origin id at the start of every message on a channel: 8 bytes.
pub const ORIGIN_LEN: usize = 8;

/// At most this many channels per `SUBSCRIBE`/`UNSUBSCRIBE` command.
const CHANNELS_PER_COMMAND: usize = 256;

/// Where the bus is and how it waits. [`RedisBusConfig::new`] gives the defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisBusConfig {
    /// `redis://[user:password@]host:port/db` (or `rediss://`, `redis+unix://`).
    pub url: String,
    /// Put before every topic to make its channel; empty by default.
    pub channel_prefix: String,
    /// The bound on every Redis operation, connecting included: 1 s. `subscribe` waits
    /// at most this long for Redis to confirm (then goes on without).
    pub timeout: Duration,
    /// Payloads buffered per topic for the local subscribers
    /// ([`InProcessBus::with_capacity`]): 16.
    pub capacity: usize,
    /// The first pause before reconnecting the subscriber connection: 100 ms …
    pub reconnect_min: Duration,
    /// … doubled after each failed attempt up to this: 2 s.
    pub reconnect_max: Duration,
    /// How often the subscriber connection is pinged to find out it is dead when no
    /// message comes: 5 s.
    pub ping_interval: Duration,
}

impl RedisBusConfig {
    /// The defaults, for the Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            channel_prefix: String::new(),
            timeout: DEFAULT_TIMEOUT,
            capacity: DEFAULT_CAPACITY,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(2),
            ping_interval: Duration::from_secs(5),
        }
    }

    fn validate(&self) -> Result<(), SetupError> {
        conn::check_timeout(self.timeout)?;
        let hour = Duration::from_secs(3600);
        if self.reconnect_min.is_zero()
            || self.reconnect_min > self.reconnect_max
            || self.reconnect_max > hour
        {
            return Err(SetupError::InvalidConfig(
                "reconnect_min must be more than 0 and at most reconnect_max, at most an hour",
            ));
        }
        if self.ping_interval.is_zero() || self.ping_interval > hour {
            return Err(SetupError::InvalidConfig(
                "ping_interval must be more than 0 and at most an hour",
            ));
        }
        Ok(())
    }
}

impl Default for RedisBusConfig {
    /// [`RedisBusConfig::new`] for `redis://127.0.0.1:6379/`.
    fn default() -> Self {
        Self::new("redis://127.0.0.1:6379/")
    }
}

impl fmt::Debug for RedisBusConfig {
    /// Everything but the URL, which may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBusConfig")
            .field("channel_prefix", &self.channel_prefix)
            .field("timeout", &self.timeout)
            .field("capacity", &self.capacity)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("ping_interval", &self.ping_interval)
            .finish_non_exhaustive()
    }
}

/// What a [`RedisBus`] has done since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisBusStats {
    /// `publish` calls (each delivered locally).
    pub published: u64,
    /// … of which Redis did not take (`BusError::Backend`).
    pub publish_errors: u64,
    /// Messages from other processes delivered to the local subscribers.
    pub received: u64,
    /// Messages of this bus's own, skipped (delivered locally when published).
    pub own_skipped: u64,
    /// Messages shorter than the origin id, or on a channel without the prefix, skipped.
    pub malformed: u64,
    /// Times the subscriber connection was established (1 after the first connection).
    pub connections: u64,
}

#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    publish_errors: AtomicU64,
    received: AtomicU64,
    own_skipped: AtomicU64,
    malformed: AtomicU64,
    connections: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The topics with local subscribers, and a generation that grows with every change
/// of the set.
#[derive(Debug, Default)]
struct Topics {
    counts: HashMap<Arc<str>, usize>,
    generation: u64,
}

/// What the reader task has reached: whether its connection is up, and the
/// generation of [`Topics`] it has subscribed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Synced {
    connected: bool,
    generation: u64,
}

/// What the subscriptions and the reader task share.
#[derive(Debug)]
struct Shared {
    local: InProcessBus,
    origin: [u8; ORIGIN_LEN],
    prefix: String,
    topics: Mutex<Topics>,
    changed: Notify,
    synced: watch::Sender<Synced>,
    counters: Counters,
}

impl Shared {
    fn topics(&self) -> MutexGuard<'_, Topics> {
        // Every change is one call: the map stays consistent across a panic elsewhere.
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn channel(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }
}

/// Aborts the reader task when the last clone of the bus goes.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    publisher: ConnectionManager,
    config: RedisBusConfig,
    _reader: AbortOnDrop,
}

/// A [`Bus`] on Redis pub/sub, shared by every process using the same Redis and
/// channel prefix. Cheap to clone: clones share the connections and subscriptions;
/// when the last clone goes, the reader task stops and the subscriptions end.
///
/// See the [module docs](crate::bus) for the envelope and the delivery guarantees.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("origin", &self.inner.shared.origin)
            .field("config", &self.inner.config)
            .field("connected", &self.is_connected())
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisBus {
    /// A bus on the Redis at `config.url`. Does not wait for Redis: the reader task
    /// connects in the background (and keeps trying), so this succeeds while Redis is
    /// down. Fails on an invalid URL or configuration, or outside a Tokio runtime.
    pub fn new(config: RedisBusConfig) -> Result<Self, SetupError> {
        config.validate()?;
        let client = conn::open(&config.url, config.timeout)?;
        let publisher = conn::manager(client.clone(), config.timeout)?;
        let shared = Arc::new(Shared {
            local: InProcessBus::with_capacity(config.capacity),
            origin: conn::random_bytes(),
            prefix: config.channel_prefix.clone(),
            topics: Mutex::new(Topics::default()),
            changed: Notify::new(),
            synced: watch::Sender::new(Synced::default()),
            counters: Counters::default(),
        });
        let reader = tokio::spawn(read(
            Arc::clone(&shared),
            client,
            publisher.clone(),
            config.clone(),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                publisher,
                config,
                _reader: AbortOnDrop(reader),
            }),
        })
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &RedisBusConfig {
        &self.inner.config
    }

    /// This bus's origin id, the first 8 bytes of every message it publishes.
    pub fn origin(&self) -> [u8; ORIGIN_LEN] {
        self.inner.shared.origin
    }

    /// Whether the subscriber connection is up (cheap; for `/health` without a round
    /// trip).
    pub fn is_connected(&self) -> bool {
        self.inner.shared.synced.borrow().connected
    }

    /// Waits, at most `within`, until the subscriber connection is up and subscribed
    /// to every topic with local subscribers; whether it is.
    pub async fn ready(&self, within: Duration) -> bool {
        let generation = self.inner.shared.topics().generation;
        let mut synced = self.inner.shared.synced.subscribe();
        tokio::time::timeout(
            within,
            synced.wait_for(|s| s.connected && s.generation >= generation),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// `Ok` when Redis answers a `PING` within the timeout and the subscriber
    /// connection is up; for `/health`.
    pub async fn check(&self) -> Result<(), BusError> {
        let publisher = &self.inner.publisher;
        conn::bounded("PING", self.inner.config.timeout, || {
            let mut connection = publisher.clone();
            async move {
                redis::cmd("PING")
                    .query_async::<Value>(&mut connection)
                    .await
            }
        })
        .await
        .map_err(backend)?;
        if self.is_connected() {
            Ok(())
        } else {
            Err(backend(RedisBackendError::NotConnected {
                what: "subscriber",
            }))
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> RedisBusStats {
        let c = &self.inner.shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RedisBusStats {
            published: read(&c.published),
            publish_errors: read(&c.publish_errors),
            received: read(&c.received),
            own_skipped: read(&c.own_skipped),
            malformed: read(&c.malformed),
            connections: read(&c.connections),
        }
    }

    /// How many subscriptions of this process are open on `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.inner
            .shared
            .topics()
            .counts
            .get(topic)
            .copied()
            .unwrap_or(0)
    }

    /// Every payload to the local subscribers, then all the `PUBLISH`es in one
    /// pipeline: one round trip for the batch, in order on the one connection.
    async fn publish_all_inner(&self, items: Vec<(String, Bytes)>) -> Result<(), BusError> {
        let shared = &self.inner.shared;
        let mut pipe = redis::pipe();
        for (topic, payload) in items {
            bump(&shared.counters.published);
            let mut envelope = BytesMut::with_capacity(ORIGIN_LEN + payload.len());
            envelope.put_slice(&shared.origin);
            envelope.put_slice(&payload);
            shared.local.publish(&topic, payload).await?;
            pipe.cmd("PUBLISH")
                .arg(shared.channel(&topic))
                .arg(&envelope[..])
                .ignore();
        }
        let mut connection = self.inner.publisher.clone();
        // Not `conn::bounded`: a PUBLISH is not repeated, it could arrive twice.
        let published = tokio::time::timeout(
            self.inner.config.timeout,
            pipe.query_async::<()>(&mut connection),
        )
        .await;
        let error = match published {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(source)) => RedisBackendError::Redis {
                op: "PUBLISH",
                source,
            },
            Err(_) => RedisBackendError::Timeout {
                op: "PUBLISH",
                timeout: self.inner.config.timeout,
            },
        };
        bump(&shared.counters.publish_errors);
        Err(backend(error))
    }

    async fn subscribe_inner(&self, topic: String) -> Result<Subscription, BusError> {
        let shared = &self.inner.shared;
        let local = shared.local.subscribe(&topic).await?;
        let (topic, generation) = {
            let mut topics = shared.topics();
            let topics = &mut *topics;
            let name = match topics.counts.get_key_value(topic.as_str()) {
                Some((name, _)) => Arc::clone(name),
                None => {
                    topics.generation += 1;
                    Arc::from(topic)
                }
            };
            *topics.counts.entry(Arc::clone(&name)).or_insert(0) += 1;
            (name, topics.generation)
        };
        let guard = TopicGuard {
            shared: Arc::downgrade(shared),
            topic,
        };
        shared.changed.notify_one();
        // While connected, wait (bounded) for Redis to confirm the subscription, so that
        // what other processes publish from now on arrives; while not, go on at once.
        let mut synced = shared.synced.subscribe();
        let _ = tokio::time::timeout(
            self.inner.config.timeout,
            synced.wait_for(|s| !s.connected || s.generation >= generation),
        )
        .await;
        Ok(Subscription::new(Guarded {
            local,
            _guard: guard,
        }))
    }
}

fn backend(error: RedisBackendError) -> BusError {
    BusError::Backend(Box::new(error))
}

impl Bus for RedisBus {
    /// Delivers to this process's subscribers, then `PUBLISH`es the envelope; a
    /// `BusError::Backend` means Redis did not take it, after the local delivery.
    fn publish(&self, topic: &str, payload: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.publish_all_inner(vec![(topic.to_owned(), payload)]))
    }

    /// As `publish` for each, with the `PUBLISH`es in one pipeline (one round trip).
    fn publish_all(&self, items: Vec<(String, Bytes)>) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.publish_all_inner(items))
    }

    /// The local subscription; the channel is subscribed to when this is the first
    /// local subscriber of `topic` (waiting for Redis at most the timeout, and not at
    /// all while the connection is down).
    fn subscribe(&self, topic: &str) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Box::pin(self.subscribe_inner(topic.to_owned()))
    }
}

/// Counts a local subscription of a topic; the last one to go takes the topic off.
#[derive(Debug)]
struct TopicGuard {
    shared: Weak<Shared>,
    topic: Arc<str>,
}

impl Drop for TopicGuard {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        {
            let mut topics = shared.topics();
            let last = match topics.counts.get_mut(&self.topic) {
                Some(count) => {
                    *count = count.saturating_sub(1);
                    *count == 0
                }
                None => false,
            };
            if last {
                topics.counts.remove(&self.topic);
                topics.generation += 1;
            }
        }
        shared.changed.notify_one();
    }
}

/// A local subscription with its [`TopicGuard`] (dropped after it).
struct Guarded {
    local: Subscription,
    _guard: TopicGuard,
}

impl Stream for Guarded {
    type Item = msgwire_services::bus::Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.local.poll_next_unpin(cx)
    }
}

/// The reader task: connects, subscribes, delivers, and reconnects when the
/// connection is lost, until the bus goes (it is aborted then).
async fn read(
    shared: Arc<Shared>,
    client: Client,
    publisher: ConnectionManager,
    config: RedisBusConfig,
) {
    let mut pause = config.reconnect_min;
    loop {
        match tokio::time::timeout(config.timeout, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => {
                pause = config.reconnect_min;
                bump(&shared.counters.connections);
                // Have the publisher find out about a lost connection now rather than at
                // the next publish (it reconnects on the failure).
                let _ = conn::bounded("PING", config.timeout, || {
                    let mut connection = publisher.clone();
                    async move {
                        redis::cmd("PING")
                            .query_async::<Value>(&mut connection)
                            .await
                    }
                })
                .await;
                let (sink, stream) = pubsub.split();
                let lost = session(&shared, sink, stream, &config).await;
                shared.synced.send_modify(|s| s.connected = false);
                tracing::info!(error = %lost, "Redis bus connection lost; reconnecting");
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot connect the Redis bus");
            }
            Err(_) => {
                tracing::debug!(timeout = ?config.timeout, "connecting the Redis bus timed out");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(config.reconnect_max);
    }
}

/// One connection's life: keeps the subscribed channels equal to the topics with local
/// subscribers and delivers what comes; returns why it ended.
async fn session(
    shared: &Shared,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    config: &RedisBusConfig,
) -> RedisBackendError {
    let mut subscribed: HashSet<Arc<str>> = HashSet::new();
    let mut applied: Option<u64> = None;
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + config.ping_interval,
        config.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let generation = shared.topics().generation;
        if applied != Some(generation) {
            if let Err(error) = sync(shared, &mut sink, &mut subscribed, config).await {
                return error;
            }
            applied = Some(generation);
            shared.synced.send_if_modified(|s| {
                let next = Synced {
                    connected: true,
                    generation,
                };
                let modified = *s != next;
                *s = next;
                modified
            });
        }
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => deliver(shared, &message).await,
                None => {
                    return RedisBackendError::NotConnected { what: "subscriber" };
                }
            },
            () = shared.changed.notified() => {}
            _ = ping.tick() => {
                let pong = tokio::time::timeout(config.timeout, sink.ping::<Value>()).await;
                match pong {
                    Ok(Ok(_)) => {}
                    Ok(Err(source)) => return RedisBackendError::Redis { op: "PING", source },
                    Err(_) => {
                        return RedisBackendError::Timeout { op: "PING", timeout: config.timeout }
                    }
                }
            }
        }
    }
}

/// Subscribes to the channels of the topics that gained local subscribers and
/// unsubscribes from those that lost them.
async fn sync(
    shared: &Shared,
    sink: &mut PubSubSink,
    subscribed: &mut HashSet<Arc<str>>,
    config: &RedisBusConfig,
) -> Result<(), RedisBackendError> {
    let (gained, lost): (Vec<Arc<str>>, Vec<Arc<str>>) = {
        let topics = shared.topics();
        let gained = topics
            .counts
            .keys()
            .filter(|t| !subscribed.contains(*t))
            .cloned()
            .collect();
        let lost = subscribed
            .iter()
            .filter(|t| !topics.counts.contains_key(*t))
            .cloned()
            .collect();
        (gained, lost)
    };
    for chunk in gained.chunks(CHANNELS_PER_COMMAND) {
        let channels: Vec<String> = chunk.iter().map(|t| shared.channel(t)).collect();
        bounded_sub("SUBSCRIBE", config.timeout, sink.subscribe(&channels)).await?;
        subscribed.extend(chunk.iter().cloned());
    }
    for chunk in lost.chunks(CHANNELS_PER_COMMAND) {
        let channels: Vec<String> = chunk.iter().map(|t| shared.channel(t)).collect();
        bounded_sub("UNSUBSCRIBE", config.timeout, sink.unsubscribe(&channels)).await?;
        for topic in chunk {
            subscribed.remove(topic);
        }
    }
    Ok(())
}

async fn bounded_sub(
    op: &'static str,
    timeout: Duration,
    command: impl std::future::Future<Output = redis::RedisResult<()>>,
) -> Result<(), RedisBackendError> {
    match tokio::time::timeout(timeout, command).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(RedisBackendError::Redis { op, source }),
        Err(_) => Err(RedisBackendError::Timeout { op, timeout }),
    }
}

/// Hands a message from Redis to the local subscribers, unless it is this bus's own or
/// not an envelope.
async fn deliver(shared: &Shared, message: &Msg) {
    let counters = &shared.counters;
    let Some(topic) = message.get_channel_name().strip_prefix(&shared.prefix) else {
        bump(&counters.malformed);
        return;
    };
    let envelope = message.get_payload_bytes();
    let Some((origin, payload)) = envelope.split_at_checked(ORIGIN_LEN) else {
        bump(&counters.malformed);
        return;
    };
    if origin == shared.origin {
        bump(&counters.own_skipped);
        return;
    }
    bump(&counters.received);
    let _ = shared
        .local
        .publish(topic, Bytes::copy_from_slice(payload))
        .await;
}
