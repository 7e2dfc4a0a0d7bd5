//! Reading the topic: a librdkafka consumer driven by a thread of its own, records
//! handed to async code through a bounded channel ([`RecordStream`]).
//!
//! librdkafka's consumer calls (poll, offset lookups, commits) block, so each
//! consumer lives on one OS thread that polls in short steps (100 ms) and stops as
//! soon as the stream is dropped. Starting offsets are resolved *before* the
//! partitions are assigned — for a group, inside the rebalance callback — so that
//! once [`crate::KafkaEventLog::consume`] has returned, every record appended later
//! is delivered (librdkafka's own `auto.offset.reset` resolves the end only after
//! the assignment, which races with an append made right then).

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};

use crate::error::KafkaError;
use crate::event_log::log_librdkafka;
use crate::Record;

/// Where a consumer starts in a partition that has no committed offset for its group
/// (or always, without a group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The first record still kept.
    Beginning,
    /// After the last record: only records appended from now on.
    End,
    /// The first record the broker's time index puts at or after this time
    /// (milliseconds since the Unix epoch); the end when there is none.
    Time(i64),
}

/// How to read: see [`crate::KafkaEventLog::consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Join this consumer group (partitions shared among its members, offsets
    /// committed and resumed); `None` reads every partition alone, committing nothing.
    pub group: Option<String>,
    /// Where to start where nothing is committed.
    pub start: StartAt,
    /// End the stream once every assigned partition has been read to its end (the
    /// high watermark the broker reports with each fetch), instead of waiting for
    /// more.
    pub stop_at_end: bool,
}

/// Settings the consumer thread needs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) topic: String,
    pub(crate) brokers: String,
    pub(crate) start: StartAt,
    pub(crate) stop_at_end: bool,
    pub(crate) grouped: bool,
    /// Bound on offset lookups and on a stop-at-end read that makes no progress.
    pub(crate) timeout: Duration,
}

#[derive(Debug, Default)]
struct State {
    ready: Option<oneshot::Sender<Result<(), KafkaError>>>,
    assigned: HashSet<i32>,
    at_end: HashSet<i32>,
}

/// The consumer's callbacks: logging, and the rebalance that resolves start offsets.
#[derive(Debug)]
pub(crate) struct ConsumerCtx {
    plan: Plan,
    state: Mutex<State>,
}

impl ConsumerCtx {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn signal_ready(&self, result: Result<(), KafkaError>) {
        if let Some(ready) = self.state().ready.take() {
            let _ = ready.send(result);
        }
    }

    fn all_at_end(&self) -> bool {
        let state = self.state();
        state.assigned.iter().all(|p| state.at_end.contains(p))
    }

    fn partitions(&self) -> usize {
        self.state().assigned.len()
    }
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka(level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        tracing::info!(target: "msgwire_kafka::librdkafka", %error, "consumer: {reason}");
    }
}

impl ConsumerContext for ConsumerCtx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions = tpl
                    .elements_for_topic(&self.plan.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect::<Vec<_>>();
                let assignment = match starts(consumer, &self.plan, &partitions) {
                    Ok(assignment) => assignment,
                    Err(error) => {
                        // Let librdkafka resolve them (auto.offset.reset) rather than
                        // not reading at all.
                        tracing::warn!(%error, "resolving start offsets; using the group's reset policy");
                        tpl.clone()
                    }
                };
                let assigned = consumer.assign(&assignment);
                {
                    let mut state = self.state();
                    state.assigned = partitions.into_iter().collect();
                    state.at_end.clear();
                }
                match assigned {
                    Ok(()) => self.signal_ready(Ok(())),
                    Err(e) => self.signal_ready(Err(KafkaError::client("assigning partitions")(e))),
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Hand over what was taken before another member starts there.
                if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(%error, "commit on revoke");
                }
                if let Err(error) = consumer.unassign() {
                    tracing::warn!(%error, "unassigning revoked partitions");
                }
                let mut state = self.state();
                state.assigned.clear();
                state.at_end.clear();
            }
            other => {
                let code = RDKafkaErrorCode::from(other);
                tracing::warn!(%code, "consumer group rebalance failed");
                let _ = consumer.unassign();
                self.state().assigned.clear();
            }
        }
    }
}

/// The assignment for `partitions` of the plan's topic, each at its start offset:
/// the group's committed offset where there is one, else the plan's [`StartAt`]
/// resolved to a concrete offset (the end explicitly, from the high watermark).
fn starts(
    consumer: &BaseConsumer<ConsumerCtx>,
    plan: &Plan,
    partitions: &[i32],
) -> Result<TopicPartitionList, KafkaError> {
    let topic = plan.topic.as_str();
    let mut committed = std::collections::HashMap::new();
    if plan.grouped && !partitions.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        let offsets = consumer
            .committed_offsets(tpl, plan.timeout)
            .map_err(KafkaError::client("fetching committed offsets"))?;
        for e in offsets.elements_for_topic(topic) {
            if let Offset::Offset(o) = e.offset() {
                committed.insert(e.partition(), o);
            }
        }
    }
    let mut by_time = std::collections::HashMap::new();
    if let StartAt::Time(t) = plan.start {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions.iter().filter(|p| !committed.contains_key(p)) {
            tpl.add_partition_offset(topic, p, Offset::Offset(t))
                .map_err(KafkaError::client("looking up offsets by time"))?;
        }
        if tpl.count() > 0 {
            match consumer.offsets_for_times(tpl, plan.timeout) {
                Ok(found) => {
                    for e in found.elements_for_topic(topic) {
                        by_time.insert(e.partition(), e.offset());
                    }
                }
                // Reading from the beginning and filtering is slower but not wrong.
                Err(error) => {
                    tracing::warn!(%error, "offsets for times; reading from the beginning")
                }
            }
        }
    }
    let mut assignment = TopicPartitionList::new();
    for &p in partitions {
        let offset = if let Some(&o) = committed.get(&p) {
            Offset::Offset(o)
        } else {
            match plan.start {
                StartAt::Beginning => Offset::Beginning,
                StartAt::End => end_of(consumer, plan, p)?,
                StartAt::Time(_) => match by_time.get(&p) {
                    Some(Offset::Offset(o)) if *o >= 0 => Offset::Offset(*o),
                    Some(Offset::End) => end_of(consumer, plan, p)?,
                    _ => Offset::Beginning,
                },
            }
        };
        assignment
            .add_partition_offset(topic, p, offset)
            .map_err(KafkaError::client("assigning partitions"))?;
    }
    Ok(assignment)
}

/// The partition's high watermark as a concrete offset.
fn end_of(
    consumer: &BaseConsumer<ConsumerCtx>,
    plan: &Plan,
    partition: i32,
) -> Result<Offset, KafkaError> {
    let (_low, high) = consumer
        .fetch_watermarks(&plan.topic, partition, plan.timeout)
        .map_err(|e| timeout_or(e, "fetching the end offsets", plan))?;
    Ok(Offset::Offset(high))
}

/// A librdkafka timeout as [`KafkaError::Timeout`], anything else as a client error.
pub(crate) fn timeout_or(e: RdKafkaError, what: &'static str, plan: &Plan) -> KafkaError {
    if crate::error::is_unreachable(&e) {
        KafkaError::Timeout {
            what: what.into(),
            after: plan.timeout,
            brokers: plan.brokers.clone(),
        }
    } else {
        KafkaError::client(what)(e)
    }
}

pub(crate) type Consumer_ = BaseConsumer<ConsumerCtx>;

/// Creates the consumer and its thread; resolves once it reads (partitions assigned
/// at their start offsets) or fails within `join_timeout`.
pub(crate) async fn start(
    config: rdkafka::ClientConfig,
    plan: Plan,
    join_timeout: Duration,
) -> Result<RecordStream, KafkaError> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let ctx = ConsumerCtx {
        plan: plan.clone(),
        state: Mutex::new(State {
            ready: Some(ready_tx),
            ..State::default()
        }),
    };
    let consumer: Arc<Consumer_> = Arc::new(
        config
            .create_with_context(ctx)
            .map_err(KafkaError::Config)?,
    );
    let (tx, rx) = mpsc::channel(256);
    let thread_consumer = Arc::clone(&consumer);
    let thread_plan = plan.clone();
    std::thread::Builder::new()
        .name("msgwire-kafka-consumer".into())
        .spawn(move || run(&thread_consumer, &thread_plan, &tx))
        .map_err(|e| KafkaError::Task(format!("cannot start the consumer thread: {e}")))?;
    let stream = RecordStream {
        rx,
        consumer: Some(consumer),
        grouped: plan.grouped,
        topic: plan.topic.clone(),
        pending: None,
    };
    match tokio::time::timeout(join_timeout, ready_rx).await {
        Ok(Ok(Ok(()))) => Ok(stream),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(_)) => Err(KafkaError::Task(
            "the consumer thread ended before reading".into(),
        )),
        Err(_) => Err(KafkaError::Timeout {
            what: if plan.grouped {
                "joining the consumer group".into()
            } else {
                "reading the topic's partitions".into()
            },
            after: join_timeout,
            brokers: plan.brokers,
        }),
    }
}

/// The consumer thread: assign (no group) or subscribe, then poll until the stream
/// is dropped, the end is reached (stop-at-end) or a fatal error.
fn run(consumer: &Consumer_, plan: &Plan, tx: &mpsc::Sender<Result<Record, KafkaError>>) {
    let ctx = consumer.context();
    if plan.grouped {
        if let Err(e) = consumer.subscribe(&[&plan.topic]) {
            ctx.signal_ready(Err(KafkaError::client("subscribing")(e)));
            return;
        }
    } else {
        let assigned = partitions_of(consumer, plan).and_then(|partitions| {
            let assignment = starts(consumer, plan, &partitions)?;
            consumer
                .assign(&assignment)
                .map_err(KafkaError::client("assigning partitions"))?;
            let mut state = ctx.state();
            state.assigned = partitions.into_iter().collect();
            Ok(())
        });
        let failed = assigned.is_err();
        ctx.signal_ready(assigned);
        if failed {
            return;
        }
    }
    let mut progress = Instant::now();
    loop {
        if tx.is_closed() {
            return;
        }
        // Without a group the assignment is known from the start; with one, only
        // after the first rebalance.
        if plan.stop_at_end && ctx.state().ready.is_none() && ctx.all_at_end() {
            return;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if plan.stop_at_end && progress.elapsed() > plan.timeout {
                    let _ = tx.blocking_send(Err(KafkaError::Timeout {
                        what: "reading to the end of the topic".into(),
                        after: plan.timeout,
                        brokers: plan.brokers.clone(),
                    }));
                    return;
                }
            }
            Some(Ok(message)) => {
                progress = Instant::now();
                let partition = message.partition();
                ctx.state().at_end.remove(&partition);
                let record = Record {
                    partition,
                    offset: message.offset(),
                    key: message.key().map(Bytes::copy_from_slice),
                    payload: message.payload().map(Bytes::copy_from_slice),
                    timestamp: message.timestamp().to_millis(),
                };
                drop(message);
                if tx.blocking_send(Ok(record)).is_err() {
                    return;
                }
            }
            Some(Err(RdKafkaError::PartitionEOF(partition))) => {
                progress = Instant::now();
                ctx.state().at_end.insert(partition);
            }
            Some(Err(error)) => {
                let fatal = matches!(error, RdKafkaError::MessageConsumptionFatal(_))
                    || consumer.client().fatal_error().is_some();
                if fatal {
                    let _ = tx.blocking_send(Err(KafkaError::client("consuming")(error)));
                    return;
                }
                // Transient (broker down, leader moving): librdkafka retries.
                tracing::info!(%error, topic = %plan.topic, "consumer error; retrying");
            }
        }
    }
}

/// The topic's partitions, from a metadata request.
fn partitions_of(consumer: &Consumer_, plan: &Plan) -> Result<Vec<i32>, KafkaError> {
    let metadata = consumer
        .fetch_metadata(Some(&plan.topic), plan.timeout)
        .map_err(|e| timeout_or(e, "fetching metadata", plan))?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == plan.topic)
        .ok_or_else(|| KafkaError::UnknownTopic(plan.topic.clone()))?;
    if topic.error().is_some() || topic.partitions().is_empty() {
        return Err(KafkaError::UnknownTopic(plan.topic.clone()));
    }
    Ok(topic.partitions().iter().map(|p| p.id()).collect())
}

/// Records as they are read, oldest first per partition; see
/// [`crate::KafkaEventLog::consume`].
///
/// In a group, a record's offset is stored for commit when the *next* record is
/// asked for (or on [`RecordStream::commit`]): after a crash or restart the group
/// resumes at the last record taken, which is delivered again — at least once.
/// Dropping the stream stops its consumer (leaving the group) in the background.
pub struct RecordStream {
    rx: mpsc::Receiver<Result<Record, KafkaError>>,
    consumer: Option<Arc<Consumer_>>,
    grouped: bool,
    topic: String,
    pending: Option<(i32, i64)>,
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("topic", &self.topic)
            .field("grouped", &self.grouped)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl RecordStream {
    fn store_pending(&mut self) {
        if let (Some((partition, offset)), Some(consumer)) = (self.pending.take(), &self.consumer) {
            if let Err(error) = consumer.store_offset(&self.topic, partition, offset) {
                // The partition moved to another member: it resumes from the last commit.
                tracing::debug!(%error, partition, offset, "storing a consumed offset");
            }
        }
    }

    /// How many partitions this consumer reads now.
    pub fn partitions(&self) -> usize {
        self.consumer
            .as_ref()
            .map_or(0, |c| c.context().partitions())
    }

    /// In a group: marks every record taken so far as done and commits, waiting at
    /// most `timeout`. Without a group there is nothing to commit.
    pub async fn commit(&mut self, timeout: Duration) -> Result<(), KafkaError> {
        if !self.grouped {
            return Ok(());
        }
        self.store_pending();
        let Some(consumer) = self.consumer.clone() else {
            return Ok(());
        };
        let commit =
            tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync));
        match tokio::time::timeout(timeout, commit).await {
            Err(_) => Err(KafkaError::Timeout {
                what: "committing offsets".into(),
                after: timeout,
                brokers: String::new(),
            }),
            Ok(Err(e)) => Err(KafkaError::Task(e.to_string())),
            // Nothing taken since the last commit.
            Ok(Ok(Err(e))) if crate::error::code_of(&e) == Some(RDKafkaErrorCode::NoOffset) => {
                Ok(())
            }
            Ok(Ok(result)) => result.map_err(KafkaError::client("committing offsets")),
        }
    }
}

impl Stream for RecordStream {
    type Item = Result<Record, KafkaError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.grouped {
            this.store_pending();
        }
        let next = this.rx.poll_recv(cx);
        if let Poll::Ready(Some(Ok(record))) = &next {
            if this.grouped {
                this.pending = Some((record.partition, record.offset));
            }
        }
        next
    }
}

impl Drop for RecordStream {
    fn drop(&mut self) {
        // Closing a group consumer commits and leaves the group, which blocks: not on
        // an async thread. The polling thread sees the closed channel and lets go.
        self.rx.close();
        if let Some(consumer) = self.consumer.take() {
            let _ = std::thread::Builder::new()
                .name("msgwire-kafka-close".into())
                .spawn(move || drop(consumer));
        }
    }
}
