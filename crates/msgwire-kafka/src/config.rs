//! [`KafkaConfig`]: where the log lives and how long anything may take.

use std::time::Duration;

use rdkafka::ClientConfig;

/// The default topic of the event log.
pub const DEFAULT_TOPIC: &str = "msgwire.events";

/// The default broker list: a broker on this machine's standard Kafka port.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// How to reach the broker and the topic, and the bounds on every wait.
///
/// Every field has a default ([`KafkaConfig::default`]); set the ones you need:
///
/// ```
/// use std::time::Duration;
/// use msgwire_kafka::KafkaConfig;
///
/// let config = KafkaConfig {
///     brokers: "127.0.0.1:9092".into(),
///     session_timeout: Duration::from_secs(6),
///     ..KafkaConfig::default()
/// };
/// assert_eq!(config.topic, "msgwire.events");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]` (librdkafka `bootstrap.servers`). Default
    /// `127.0.0.1:9092`.
    pub brokers: String,
    /// The topic the log is written to and read from. Default `msgwire.events`.
    pub topic: String,
    /// `client.id`, shown in the broker's logs. Default `msgwire`.
    pub client_id: String,
    /// Partitions when the topic is created. Default 1: one partition is one total
    /// order, so a replay comes back in exactly the order the events were appended
    /// (across users too), which is what the event store's ids promise; one
    /// partition also means one consumer of a group gets everything, which is how
    /// `live` feeds another process's bus. A topic that already exists keeps its own
    /// count; per-user order holds with any count (the key is the user id).
    pub partitions: i32,
    /// Replicas when the topic is created. Default 1 (a single test broker).
    pub replication: i32,
    /// Create the topic when it does not exist (the test broker, Tansu, creates no
    /// topic by itself). Default true; `connect` then keeps trying in the background
    /// until it exists, and `append`/`replay`/`live` try once more themselves.
    pub create_topic: bool,
    /// Consumer group session timeout (`session.timeout.ms`). A group join takes
    /// about half of it on Tansu; a consumer that dies is replaced after it. Default
    /// 10 s.
    pub session_timeout: Duration,
    /// Bound on each request-shaped wait: metadata, topic creation, offset lookups,
    /// a replay that stops making progress, a group join. Default 10 s.
    pub request_timeout: Duration,
    /// How long librdkafka keeps trying to deliver one record, reconnecting
    /// meanwhile, before `append` fails (`message.timeout.ms`). Default 10 s.
    pub delivery_timeout: Duration,
    /// Ask for the idempotent producer (`enable.idempotence`): retries after a lost
    /// connection cannot write a record twice. Default true.
    pub idempotence: bool,
    /// How far before `since` a replay starts its offset lookup. The broker's
    /// time index is not the records' timestamps on every broker (Tansu 0.6 answers
    /// with the time it *stored* a batch, to the second on S3), so the lookup starts
    /// this much earlier and records before `since` are then dropped by their own
    /// timestamps. Default 60 s.
    pub replay_slack: Duration,
    /// Records per produce batch (`batch.num.messages`). Default 1: Tansu 0.6 keeps
    /// each batch as one object and a fetch from an offset inside a batch skips that
    /// batch, and its "latest offset" is the newest batch's first offset + 1; with
    /// one record per batch every offset is a batch boundary, so both are exact.
    /// Raise it only against a broker without those limits.
    pub batch_records: u32,
    /// More librdkafka settings, applied last (e.g. `("security.protocol", "ssl")`).
    pub extra: Vec<(String, String)>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: DEFAULT_BROKERS.into(),
            topic: DEFAULT_TOPIC.into(),
            client_id: "msgwire".into(),
            partitions: 1,
            replication: 1,
            create_topic: true,
            session_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(10),
            idempotence: true,
            replay_slack: Duration::from_secs(60),
            batch_records: 1,
            extra: Vec::new(),
        }
    }
}

/// Milliseconds of `d` as librdkafka wants them (at least 1).
pub(crate) fn millis(d: Duration) -> String {
    d.as_millis().clamp(1, i32::MAX as u128).to_string()
}

impl KafkaConfig {
    /// A config for `brokers`, everything else default.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            ..Self::default()
        }
    }

    /// The same config with another topic.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// Settings every client shares.
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("socket.timeout.ms", millis(self.request_timeout))
            // Reconnect soon after a broker comes back (default max is 10 s).
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set("log.connection.close", "false");
        c
    }

    fn finish(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    pub(crate) fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("acks", "all")
            .set("enable.idempotence", self.idempotence.to_string())
            .set("message.timeout.ms", millis(self.delivery_timeout))
            .set("request.timeout.ms", millis(self.request_timeout))
            .set("linger.ms", "0")
            .set("batch.num.messages", self.batch_records.max(1).to_string());
        self.finish(c)
    }

    pub(crate) fn admin(&self) -> ClientConfig {
        let c = self.base();
        self.finish(c)
    }

    /// A consumer that only reads what it is assigned (no group).
    pub(crate) fn reader(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            // A group id is needed by librdkafka for some calls even without joining.
            .set("group.id", format!("{}-reader", self.client_id));
        self.finish(c)
    }

    /// A consumer in `group`: offsets are stored once the caller has taken a record
    /// and committed in the background.
    pub(crate) fn group_consumer(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("session.timeout.ms", millis(self.session_timeout))
            .set(
                "heartbeat.interval.ms",
                millis(self.session_timeout / 3).as_str(),
            )
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "latest");
        self.finish(c)
    }
}
