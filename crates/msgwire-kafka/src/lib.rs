//! msgwire-kafka: the event log on a Kafka-compatible broker.
//!
//! [`KafkaEventLog`] keeps the events service's events in one Kafka topic so that
//! they outlive the process that published them and reach every other process:
//!
//! ```text
//!  publishEvent ─► append_event(user_id, record, timestamp) ─► topic "msgwire.events"
//!                      (resolves once the broker acknowledged it)      │ partition 0..n
//!  subscribeEvents(start_time) ◄─ replay(since_ms, max) ◄──────────────┤ (read to the end)
//!  other processes' bus        ◄─ live(group) stream    ◄──────────────┘ (consumer group)
//! ```
//!
//! # What is written where
//!
//! One topic ([`KafkaConfig::topic`], default `msgwire.events`), created by
//! [`KafkaEventLog::ensure_topic`] with [`KafkaConfig::partitions`] partitions
//! (default 1: one total order) when it does not exist — Tansu, the test broker,
//! creates no topic by itself. Each event is one record:
//!
//! | part | content |
//! |---|---|
//! | key | the user id in decimal, e.g. `42` (the partitioner keeps a user's events in one partition, in order) |
//! | value | the event's MessagePack map exactly as given: `{"id", "user_id", "type", "timestamp", "data"?}` (`rmp_serde::to_vec_named`; the events service adds `"origin"`) |
//! | timestamp | the event's `timestamp` (CreateTime, milliseconds since the Unix epoch) |
//! | headers | none |
//!
//! Any Kafka client reads them back; the Python interop test reads them with
//! `kafka-python` and `msgpack.unpackb(value, raw=False)`.
//!
//! # Delivery guarantees
//!
//! * **Acknowledged** means the broker answered the produce request without error:
//!   the partition leader wrote the record and, with `acks=all`, so did every
//!   in-sync replica. [`KafkaEventLog::append`] resolves only then, with the
//!   record's partition and offset; an acknowledged record is in the log — on a
//!   broker whose storage is durable, across broker restarts too.
//! * From the producer's side the log is **at least once**: librdkafka retries
//!   while the broker is unreachable, up to [`KafkaConfig::delivery_timeout`]; an
//!   append that then fails may still have been written (the acknowledgement was
//!   lost), so a caller that retries can write it twice. The idempotent producer
//!   ([`KafkaConfig::idempotence`]) removes the duplicates librdkafka's own retries
//!   would make; the event's `id` (with the `origin`) lets a reader drop the rest.
//! * Readers: [`KafkaEventLog::replay`] returns every acknowledged record from a
//!   time on, to the end of each partition as of the read; [`KafkaEventLog::live`]
//!   delivers each record at least once per consumer group (offsets committed only
//!   for records the caller went past, see [`RecordStream`]).
//! * Nothing waits forever: [`KafkaEventLog::connect`] does not contact the broker,
//!   and every other call is bounded by the request and delivery timeouts.
//!
//! # Why rdkafka
//!
//! This crate uses [`rdkafka`] with librdkafka built from source (rdkafka-sys'
//! bundled copy, no system library needed). librdkafka is the reference Kafka
//! client outside the JVM: the full consumer-group protocol (join, sync,
//! heartbeats, rebalance callbacks, offset commits), the idempotent producer,
//! offsets by time, reconnection with backoff — everything the test broker (Tansu)
//! implements and [`KafkaEventLog::live`] needs. The pure-Rust alternative,
//! `rskafka`, is smaller and has no C build, but it has no consumer groups (a
//! client of its own would have to assign partitions and store offsets) and no
//! idempotent producer; it would have meant writing the group protocol here. The
//! cost of rdkafka is a C build of librdkafka (about a minute, needs a C compiler
//! and `make`) and its blocking calls, which this crate keeps off the async
//! threads (a thread per consumer, `spawn_blocking` for metadata).
//!
//! # Example
//!
//! ```no_run
//! use futures::StreamExt;
//! use msgwire_kafka::{KafkaConfig, KafkaEventLog};
//!
//! # async fn run() -> Result<(), msgwire_kafka::KafkaError> {
//! let log = KafkaEventLog::connect(KafkaConfig::new("127.0.0.1:9092")).await?;
//! log.ensure_topic().await?;
//! let acked = log.append("42", b"\x81\xa2id\x01").await?;
//! println!("written at partition {} offset {}", acked.partition, acked.offset);
//! for record in log.replay(0, 1000).await? {
//!     println!("{:?} at {:?}", record.key_str(), record.timestamp);
//! }
//! let mut live = log.live("my-service").await?;
//! while let Some(record) = live.next().await {
//!     let record = record?;
//!     println!("{} bytes from user {:?}", record.payload.as_ref().map_or(0, |p| p.len()), record.user_id());
//! }
//! # Ok(()) }
//! ```

mod config;
mod consume;
mod error;
mod event_log;
mod services;

pub use config::{KafkaConfig, DEFAULT_BROKERS, DEFAULT_TOPIC};
pub use consume::{ConsumeOptions, RecordStream, StartAt};
pub use error::KafkaError;
pub use event_log::{Acked, Health, KafkaEventLog, Record};
