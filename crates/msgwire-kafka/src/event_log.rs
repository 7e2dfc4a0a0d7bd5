//! [`KafkaEventLog`]: append, replay, live consumption and health of the topic.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::ClientContext;

use crate::config::KafkaConfig;
use crate::consume::{self, ConsumeOptions, Plan, RecordStream, StartAt};
use crate::error::KafkaError;

/// One record read from the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The partition it is in.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The key (for an event: the user id in decimal); `None` when it has none.
    pub key: Option<Bytes>,
    /// The value (for an event: its MessagePack map); `None` for a null value.
    pub payload: Option<Bytes>,
    /// The record's timestamp in milliseconds since the Unix epoch, when it has one.
    pub timestamp: Option<i64>,
}

impl Record {
    /// The key as text, when it is UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The key as a user id, when it is one in decimal.
    pub fn user_id(&self) -> Option<u64> {
        self.key_str().and_then(|k| k.parse().ok())
    }
}

/// Where an appended record was written, once the broker acknowledged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Acked {
    /// The partition.
    pub partition: i32,
    /// The offset in that partition.
    pub offset: i64,
}

/// What a health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Brokers in the cluster's metadata.
    pub brokers: usize,
    /// The topic's partitions; `None` when the topic does not exist (yet).
    pub partitions: Option<usize>,
}

/// librdkafka's log lines through `tracing` (target `msgwire_kafka::librdkafka`).
/// Connection failures are expected while a broker is down and the operations report
/// them as errors, so they are not logged above `info`.
pub(crate) fn log_librdkafka(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
            tracing::error!(target: "msgwire_kafka::librdkafka", "{fac}: {message}");
        }
        RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning | RDKafkaLogLevel::Notice => {
            tracing::info!(target: "msgwire_kafka::librdkafka", "{fac}: {message}");
        }
        RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "msgwire_kafka::librdkafka", "{fac}: {message}");
        }
    }
}

/// The producer's and admin client's callbacks: logging only.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Logger;

impl ClientContext for Logger {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka(level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        tracing::info!(target: "msgwire_kafka::librdkafka", %error, "{reason}");
    }
}

type Producer_ = FutureProducer<Logger>;

/// The event log on a Kafka topic. Cheap to clone (one producer and one admin client
/// shared); see the crate docs for what is written where and the guarantees.
#[derive(Clone)]
pub struct KafkaEventLog {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    /// The producer and its generation (counting replacements).
    producer: RwLock<(u64, Producer_)>,
    admin: AdminClient<Logger>,
    topic_ready: AtomicBool,
    creator: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut creator) = self.creator.lock() {
            if let Some(task) = creator.take() {
                task.abort();
            }
        }
    }
}

impl std::fmt::Debug for KafkaEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventLog")
            .field("brokers", &self.inner.config.brokers)
            .field("topic", &self.inner.config.topic)
            .field(
                "topic_ready",
                &self.inner.topic_ready.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

fn producer(config: &KafkaConfig) -> Result<Producer_, KafkaError> {
    config
        .producer()
        .create_with_context(Logger)
        .map_err(KafkaError::Config)
}

impl KafkaEventLog {
    /// Creates the clients. Never waits for the broker: librdkafka connects lazily
    /// and reconnects by itself, so this succeeds while the broker is down (it fails
    /// only on a configuration librdkafka refuses). With
    /// [`KafkaConfig::create_topic`], a background task keeps trying to create the
    /// topic (every few seconds, each try bounded by the request timeout) until it
    /// exists or the log is dropped. Must be called inside a Tokio runtime.
    pub async fn connect(config: KafkaConfig) -> Result<Self, KafkaError> {
        let producer = producer(&config)?;
        let admin = config
            .admin()
            .create_with_context(Logger)
            .map_err(KafkaError::Config)?;
        let log = Self {
            inner: Arc::new(Inner {
                config,
                producer: RwLock::new((0, producer)),
                admin,
                topic_ready: AtomicBool::new(false),
                creator: std::sync::Mutex::new(None),
            }),
        };
        if log.inner.config.create_topic {
            let weak = Arc::downgrade(&log.inner);
            let task = tokio::spawn(create_in_background(weak));
            if let Ok(mut creator) = log.inner.creator.lock() {
                *creator = Some(task);
            }
        }
        Ok(log)
    }

    /// The configuration in use.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.inner.config.topic
    }

    fn timeout(&self, what: impl Into<String>, after: Duration) -> KafkaError {
        KafkaError::Timeout {
            what: what.into(),
            after,
            brokers: self.inner.config.brokers.clone(),
        }
    }

    fn plan(&self, start: StartAt, stop_at_end: bool, grouped: bool) -> Plan {
        Plan {
            topic: self.inner.config.topic.clone(),
            brokers: self.inner.config.brokers.clone(),
            start,
            stop_at_end,
            grouped,
            timeout: self.inner.config.request_timeout,
        }
    }

    /// Makes sure the topic exists: creates it with [`KafkaConfig::partitions`] and
    /// [`KafkaConfig::replication`] ("already exists" is success), or — with
    /// `create_topic` off — checks that it exists. Bounded by the request timeout.
    pub async fn ensure_topic(&self) -> Result<(), KafkaError> {
        self.inner.ensure_topic().await
    }

    /// Appends one record stamped now; see [`KafkaEventLog::append_at`].
    pub async fn append(&self, key: &str, payload: &[u8]) -> Result<Acked, KafkaError> {
        self.append_at(key, payload, None).await
    }

    /// Appends one record with `key`, `payload` and `timestamp` (milliseconds since
    /// the Unix epoch; `None`: now) and resolves once the broker has **acknowledged**
    /// it: written by the partition leader and, with `acks=all`, by every in-sync
    /// replica. While the broker is unreachable librdkafka keeps the record and
    /// retries as it reconnects; if no acknowledgement comes within the delivery
    /// timeout this fails ([`KafkaError::NotAcknowledged`], or
    /// [`KafkaError::Timeout`] if the topic could not even be checked) — it never
    /// waits longer than request + delivery timeout. A failed append may still
    /// have been written (an acknowledgement lost on the way back): appends are
    /// at-least-once when the caller retries.
    pub async fn append_at(
        &self,
        key: &str,
        payload: &[u8],
        timestamp: Option<i64>,
    ) -> Result<Acked, KafkaError> {
        self.append_record(Some(key.as_bytes()), payload, timestamp)
            .await
    }

    /// [`KafkaEventLog::append_at`] for any record: a key of any bytes, or none.
    pub async fn append_record(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        timestamp: Option<i64>,
    ) -> Result<Acked, KafkaError> {
        let config = &self.inner.config;
        if !self.inner.topic_ready.load(Ordering::Acquire) {
            self.inner.ensure_topic().await?;
        }
        // librdkafka bounds delivery by message.timeout.ms; the outer bound is only a
        // guard against a lost delivery report.
        let bound = config.delivery_timeout + config.request_timeout;
        let deadline = tokio::time::Instant::now() + bound;
        let mut renewed = false;
        loop {
            let (generation, producer) = self.inner.producer_gen();
            let mut record = FutureRecord::<[u8], [u8]>::to(&config.topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(ts) = timestamp {
                record = record.timestamp(ts);
            }
            let sent = tokio::time::timeout_at(
                deadline,
                producer.send(record, Timeout::After(config.delivery_timeout)),
            )
            .await;
            let source = match sent {
                Err(_) => return Err(self.timeout("the acknowledgement of a record", bound)),
                Ok(Ok(delivery)) => {
                    return Ok(Acked {
                        partition: delivery.partition,
                        offset: delivery.offset,
                    })
                }
                Ok(Err((source, _message))) => source,
            };
            let code = crate::error::code_of(&source);
            // A topic unknown to the broker shows as such, or — while librdkafka waits
            // for its metadata — as a timed-out record (a broker that lost its log
            // in a restart): the next append makes sure the topic is there.
            if matches!(
                code,
                Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::MessageTimedOut)
            ) {
                self.inner.topic_ready.store(false, Ordering::Release);
            }
            // The broker refused the producer's identity: the record was not written.
            // This happens to an idempotent producer when the broker lost or reset its
            // producer state (Tansu 0.6 answers ProducerFenced to every produce after
            // a restart): a new producer (new producer id) goes on; the record is
            // sent once more with it.
            let refused = matches!(
                code,
                Some(
                    RDKafkaErrorCode::ProducerFenced
                        | RDKafkaErrorCode::InvalidProducerEpoch
                        | RDKafkaErrorCode::UnknownProducerId
                        | RDKafkaErrorCode::OutOfOrderSequenceNumber
                        | RDKafkaErrorCode::InvalidProducerIdMapping
                )
            );
            let fatal = producer.client().fatal_error();
            if refused || fatal.is_some() {
                tracing::warn!(
                    error = %source,
                    fatal = ?fatal,
                    "Kafka producer refused by the broker; starting a new one"
                );
                self.inner.replace_producer(generation);
                if refused && !renewed {
                    renewed = true;
                    continue;
                }
            }
            return Err(KafkaError::NotAcknowledged {
                brokers: config.brokers.clone(),
                source,
            });
        }
    }

    /// Appends an event as the events service records it: key = the user id in
    /// decimal, value = `record` (its MessagePack map), timestamp = `timestamp`.
    pub async fn append_event(
        &self,
        user_id: u64,
        record: &[u8],
        timestamp: i64,
    ) -> Result<Acked, KafkaError> {
        self.append_at(&user_id.to_string(), record, Some(timestamp))
            .await
    }

    /// Reads the topic: see [`ConsumeOptions`]. Resolves once the consumer reads —
    /// partitions assigned (for a group: joined, which takes a while on some brokers,
    /// bounded by request + session timeout) and each partition's start offset known,
    /// so every record appended after this returns is in the stream (from
    /// [`StartAt::End`] on). Without a group the topic must exist
    /// ([`KafkaError::UnknownTopic`]).
    ///
    /// The stream yields records oldest first per partition. It ends after a fatal
    /// client error (yielded first), with `stop_at_end` once every partition was read
    /// to its end, or — with `stop_at_end` — with a [`KafkaError::Timeout`] item if
    /// no progress is made within the request timeout. Without `stop_at_end` it waits
    /// for records for as long as it is polled, across broker restarts (librdkafka
    /// reconnects; transient errors are logged, not yielded).
    pub async fn consume(&self, options: ConsumeOptions) -> Result<RecordStream, KafkaError> {
        let config = &self.inner.config;
        if config.create_topic && !self.inner.topic_ready.load(Ordering::Acquire) {
            self.inner.ensure_topic().await?;
        }
        let (client, grouped, join) = match &options.group {
            Some(group) => (
                config.group_consumer(group),
                true,
                config.request_timeout + config.session_timeout,
            ),
            None => (config.reader(), false, config.request_timeout * 3),
        };
        let mut client = client;
        client.set("enable.partition.eof", options.stop_at_end.to_string());
        consume::start(
            client,
            self.plan(options.start, options.stop_at_end, grouped),
            join,
        )
        .await
    }

    /// Live records from now on, as member of consumer `group`: partitions are
    /// shared among the group's members, and a member that restarts resumes after
    /// the last record it took (committed offsets; see [`RecordStream`]). A new
    /// group starts at the end. Resolves once joined; see
    /// [`KafkaEventLog::consume`].
    ///
    /// Members of one group *share* the records (with one partition, one member
    /// gets them all and the others none): for fan-out, where every process must
    /// see every record, give each process a group of its own (e.g.
    /// `msgwire-<origin>`), or read without a group
    /// (`consume(ConsumeOptions { group: None, start: StartAt::End, stop_at_end:
    /// false })`: no join, nothing committed).
    pub async fn live(&self, group: &str) -> Result<RecordStream, KafkaError> {
        self.consume(ConsumeOptions {
            group: Some(group.to_owned()),
            start: StartAt::End,
            stop_at_end: false,
        })
        .await
    }

    /// Every record with a timestamp at or after `since_ms` (milliseconds since the
    /// Unix epoch), oldest first per partition, merged across partitions by
    /// timestamp — at most `max`: the oldest `max` when more match. Records without
    /// a timestamp are left out.
    ///
    /// Each partition is read from the offset the broker's time index gives for
    /// `since_ms - replay_slack` (see [`KafkaConfig::replay_slack`]) up to its end:
    /// the high watermark each fetch response carries (librdkafka's partition-EOF),
    /// never the "latest" offset of a ListOffsets request, which Tansu 0.6 gets
    /// wrong. A read that stops making progress fails within the request timeout.
    pub async fn replay(&self, since_ms: i64, max: usize) -> Result<Vec<Record>, KafkaError> {
        let slack = i64::try_from(self.inner.config.replay_slack.as_millis()).unwrap_or(i64::MAX);
        let mut stream = self
            .consume(ConsumeOptions {
                group: None,
                start: StartAt::Time(since_ms.saturating_sub(slack).max(0)),
                stop_at_end: true,
            })
            .await?;
        let partitions = stream.partitions();
        let mut per_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        while let Some(item) = stream.next().await {
            let record = item?;
            if record.timestamp.is_none_or(|t| t < since_ms) {
                continue;
            }
            let kept = per_partition.entry(record.partition).or_default();
            if kept.len() < max {
                kept.push(record);
            } else if per_partition.len() >= partitions
                && per_partition.values().all(|kept| kept.len() >= max)
            {
                break;
            }
        }
        Ok(merge(per_partition, max))
    }

    /// Whether the broker answers: a metadata request for the topic, bounded by
    /// the request timeout.
    pub async fn check(&self) -> Result<Health, KafkaError> {
        let producer = self.inner.producer();
        let topic = self.inner.config.topic.clone();
        let timeout = self.inner.config.request_timeout;
        let fetch = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|m| {
                    let partitions = m
                        .topics()
                        .iter()
                        .find(|t| t.name() == topic && t.error().is_none())
                        .map(|t| t.partitions().len())
                        .filter(|&n| n > 0);
                    Health {
                        brokers: m.brokers().len(),
                        partitions,
                    }
                })
        });
        match tokio::time::timeout(timeout + Duration::from_secs(1), fetch).await {
            Err(_) => Err(self.timeout("metadata", timeout)),
            Ok(Err(e)) => Err(KafkaError::Task(e.to_string())),
            Ok(Ok(Err(e))) => Err(match crate::error::code_of(&e) {
                Some(
                    RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::TimedOutQueue
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::BrokerTransportFailure,
                ) => self.timeout("metadata", timeout),
                _ => KafkaError::client("fetching metadata")(e),
            }),
            Ok(Ok(Ok(health))) => Ok(health),
        }
    }

    /// Waits until every record handed to librdkafka was acknowledged or failed, at
    /// most `timeout` (appends already wait for their own acknowledgement; this is
    /// for a clean shutdown).
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.inner.producer();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        match flushed {
            Err(e) => Err(KafkaError::Task(e.to_string())),
            Ok(result) => result.map_err(KafkaError::client("flushing")),
        }
    }
}

/// Merges the partitions' records by timestamp (then partition), each partition's
/// order kept, and keeps the first `max`.
fn merge(per_partition: BTreeMap<i32, Vec<Record>>, max: usize) -> Vec<Record> {
    let mut queues: Vec<std::collections::VecDeque<Record>> =
        per_partition.into_values().map(Into::into).collect();
    let mut out = Vec::new();
    while out.len() < max {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|r| (r.timestamp, r.partition, i)))
            .min();
        let Some((_, _, i)) = next else { break };
        match queues[i].pop_front() {
            Some(record) => out.push(record),
            None => break,
        }
    }
    out
}

impl Inner {
    fn producer(&self) -> Producer_ {
        self.producer_gen().1
    }

    fn producer_gen(&self) -> (u64, Producer_) {
        match self.producer.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the producer of `generation` with a new one (once: appends that
    /// failed together replace it once).
    fn replace_producer(&self, generation: u64) {
        let mut current = match self.producer.write() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.0 != generation {
            return;
        }
        match producer(&self.config) {
            Ok(fresh) => {
                let (_, old) = std::mem::replace(&mut *current, (generation + 1, fresh));
                drop(current);
                // Dropping a producer purges and joins its thread: not here.
                let _ = std::thread::Builder::new()
                    .name("msgwire-kafka-drop".into())
                    .spawn(move || drop(old));
            }
            Err(error) => tracing::warn!(%error, "cannot create a new Kafka producer"),
        }
    }

    async fn ensure_topic(&self) -> Result<(), KafkaError> {
        let config = &self.config;
        let timeout = config.request_timeout;
        let result = if config.create_topic {
            let topic = NewTopic::new(
                &config.topic,
                config.partitions.max(1),
                TopicReplication::Fixed(config.replication.max(1)),
            );
            let options = AdminOptions::new()
                .request_timeout(Some(timeout))
                .operation_timeout(Some(timeout));
            let created = tokio::time::timeout(
                timeout + Duration::from_secs(1),
                self.admin.create_topics([&topic], &options),
            )
            .await;
            match created {
                Err(_) => Err(timed_out(config, "creating the topic")),
                Ok(Err(e)) => Err(admin_error(config, e)),
                Ok(Ok(results)) => results.into_iter().try_for_each(|r| match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
                    Err((_, code)) => Err(admin_error(config, RdKafkaError::AdminOp(code))),
                }),
            }
        } else {
            let admin_client_timeout = timeout;
            let topic = config.topic.clone();
            let producer = self.producer();
            let fetched = tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(Some(&topic), admin_client_timeout)
                    .map(|m| {
                        m.topics().iter().any(|t| {
                            t.name() == topic && t.error().is_none() && !t.partitions().is_empty()
                        })
                    })
            })
            .await;
            match fetched {
                Err(e) => Err(KafkaError::Task(e.to_string())),
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => Err(KafkaError::UnknownTopic(config.topic.clone())),
                Ok(Err(e)) => Err(admin_error(config, e)),
            }
        };
        if result.is_ok() {
            self.topic_ready.store(true, Ordering::Release);
        }
        result
    }
}

fn timed_out(config: &KafkaConfig, what: &str) -> KafkaError {
    KafkaError::Timeout {
        what: what.into(),
        after: config.request_timeout,
        brokers: config.brokers.clone(),
    }
}

fn admin_error(config: &KafkaConfig, e: RdKafkaError) -> KafkaError {
    if crate::error::is_unreachable(&e) {
        timed_out(config, "creating the topic")
    } else {
        KafkaError::CreateTopic {
            topic: config.topic.clone(),
            source: e,
        }
    }
}

/// Creates the topic, trying again every few seconds, until it exists or the log
/// is gone.
async fn create_in_background(log: Weak<Inner>) {
    let mut pause = Duration::from_millis(500);
    loop {
        let Some(inner) = log.upgrade() else { return };
        if inner.topic_ready.load(Ordering::Acquire) {
            return;
        }
        match inner.ensure_topic().await {
            Ok(()) => return,
            Err(error) => {
                tracing::info!(%error, topic = %inner.config.topic, "Kafka topic not ready; trying again");
            }
        }
        drop(inner);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64, timestamp: i64) -> Record {
        Record {
            partition,
            offset,
            key: None,
            payload: None,
            timestamp: Some(timestamp),
        }
    }

    #[test]
    fn merge_orders_by_time_and_keeps_each_partitions_order() {
        let mut parts = BTreeMap::new();
        parts.insert(0, vec![record(0, 0, 10), record(0, 1, 30), record(0, 2, 5)]);
        parts.insert(1, vec![record(1, 0, 20), record(1, 1, 40)]);
        let merged: Vec<(i32, i64)> = merge(parts.clone(), 10)
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect();
        // Partition 0's out-of-order timestamp 5 stays after its offset 1.
        assert_eq!(merged, [(0, 0), (1, 0), (0, 1), (0, 2), (1, 1)]);
        assert_eq!(merge(parts, 2).len(), 2);
    }

    #[test]
    fn record_keys() {
        let mut r = record(0, 0, 0);
        r.key = Some(Bytes::from_static(b"42"));
        assert_eq!((r.key_str(), r.user_id()), (Some("42"), Some(42)));
        r.key = Some(Bytes::from_static(b"\xff"));
        assert_eq!((r.key_str(), r.user_id()), (None, None));
    }

    #[test]
    fn defaults() {
        let c = KafkaConfig::default();
        assert_eq!(
            (
                c.brokers.as_str(),
                c.topic.as_str(),
                c.partitions,
                c.batch_records
            ),
            ("127.0.0.1:9092", "msgwire.events", 1, 1)
        );
        let producer = c.producer();
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("message.timeout.ms"), Some("10000"));
        let group = c.group_consumer("g");
        assert_eq!(group.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(group.get("auto.offset.reset"), Some("latest"));
    }
}
