//! [`KafkaError`]: what can go wrong, typed.

use std::time::Duration;

use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};

/// An operation on the log that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// The configuration was refused by librdkafka (a bad setting or value).
    #[error("invalid Kafka client configuration: {0}")]
    Config(#[source] RdKafkaError),
    /// Nothing came back in time: the broker is down, unreachable or too slow.
    #[error("Kafka broker {brokers} did not answer within {after:?} ({what})")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The bound that ran out.
        after: Duration,
        /// The broker list.
        brokers: String,
    },
    /// The broker did not acknowledge the record: it may not have been written.
    #[error("record not acknowledged by Kafka broker {brokers}: {source}")]
    NotAcknowledged {
        /// The broker list.
        brokers: String,
        /// librdkafka's reason (e.g. `Message timed out` while the broker is down).
        #[source]
        source: RdKafkaError,
    },
    /// The topic does not exist (and was not to be created).
    #[error("Kafka topic {0:?} does not exist")]
    UnknownTopic(String),
    /// Creating the topic failed.
    #[error("cannot create Kafka topic {topic:?}: {source}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's or librdkafka's reason.
        #[source]
        source: RdKafkaError,
    },
    /// Any other broker or client error, with what was being done.
    #[error("Kafka {what}: {source}")]
    Client {
        /// What was being done.
        what: &'static str,
        /// librdkafka's error.
        #[source]
        source: RdKafkaError,
    },
    /// A record could not be decoded as an event.
    #[error("record at partition {partition} offset {offset} is not an event")]
    NotAnEvent {
        /// Where the record is.
        partition: i32,
        /// Where the record is.
        offset: i64,
    },
    /// The background thread serving a call went away (a panic in librdkafka's
    /// callbacks, or the runtime shutting down).
    #[error("Kafka client task ended unexpectedly: {0}")]
    Task(String),
}

impl KafkaError {
    pub(crate) fn client(what: &'static str) -> impl FnOnce(RdKafkaError) -> KafkaError {
        move |source| KafkaError::Client { what, source }
    }

    /// True when trying again later may help: the broker could not be reached in
    /// time, or it answered with a retriable error.
    pub fn is_transient(&self) -> bool {
        match self {
            KafkaError::Timeout { .. } | KafkaError::Task(_) => true,
            KafkaError::NotAcknowledged { source, .. }
            | KafkaError::Client { source, .. }
            | KafkaError::CreateTopic { source, .. } => {
                code_of(source).is_none_or(is_transient_code)
            }
            KafkaError::Config(_) | KafkaError::UnknownTopic(_) | KafkaError::NotAnEvent { .. } => {
                false
            }
        }
    }

    /// The librdkafka error code, when there is one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            KafkaError::Config(source)
            | KafkaError::NotAcknowledged { source, .. }
            | KafkaError::Client { source, .. }
            | KafkaError::CreateTopic { source, .. } => code_of(source),
            _ => None,
        }
    }
}

/// librdkafka's error code, also for admin operations (which rdkafka's own
/// `rdkafka_error_code` leaves out).
pub(crate) fn code_of(e: &RdKafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        RdKafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// Whether `e` says the broker could not be reached, or not in time: a timeout rather
/// than a refusal.
pub(crate) fn is_unreachable(e: &RdKafkaError) -> bool {
    matches!(
        code_of(e),
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::TimedOutQueue
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure,
        )
    )
}

fn is_transient_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageTimedOut
            | C::TimedOutQueue
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::NetworkException
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::UnknownTopicOrPartition
            | C::QueueFull
            | C::Resolve
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::PurgeQueue
            | C::PurgeInflight
    )
}
