//! KafkaEventLog as the events service's log: one EventStore publishes, another
//! (another process, its own log client) replays from a start time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use msgwire_kafka::{KafkaConfig, KafkaEventLog};
use msgwire_services::bus::InProcessBus;
use msgwire_services::events::{EventStore, StreamEvent};
use support::{Broker, PATIENCE};

async fn store(broker: &Broker, topic: &str) -> (EventStore, KafkaEventLog) {
    let log = KafkaEventLog::connect(KafkaConfig {
        brokers: broker.brokers(),
        topic: topic.into(),
        session_timeout: Duration::from_secs(6),
        ..KafkaConfig::default()
    })
    .await
    .unwrap();
    log.ensure_topic().await.unwrap();
    let store = EventStore::new(Arc::new(InProcessBus::new()), 100).with_log(Arc::new(log.clone()));
    (store, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_store_replays_the_published_events_from_the_log() {
    let broker = Broker::start();
    let topic = support::unique_topic("store");
    let (publisher, log) = store(&broker, &topic).await;
    let mut published = Vec::new();
    for (user, kind) in [
        (1, "login"),
        (2, "login"),
        (1, "profile_update"),
        (1, "logout"),
    ] {
        let event = tokio::time::timeout(PATIENCE, publisher.publish(user, kind, None))
            .await
            .unwrap()
            .unwrap();
        published.push(event);
    }
    // Each record: key = the user id, timestamp = the event's.
    let records = log.replay(0, 100).await.unwrap();
    assert_eq!(records.len(), 4);
    for (record, event) in records.iter().zip(&published) {
        assert_eq!(record.user_id(), Some(event.user_id));
        assert_eq!(record.timestamp, Some(event.timestamp));
    }

    let (reader, _log) = store(&broker, &topic).await;
    let start = published[0].timestamp;
    let mut events = reader
        .subscribe(1, None, Some(start), Duration::from_secs(30))
        .await
        .unwrap();
    let user1: Vec<_> = published
        .iter()
        .filter(|e| e.user_id == 1)
        .cloned()
        .collect();
    for expected in user1 {
        let item = tokio::time::timeout(PATIENCE, events.next()).await.unwrap();
        assert_eq!(item, Some(StreamEvent::Event(expected)));
    }
}
