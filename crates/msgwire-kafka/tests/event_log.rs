//! KafkaEventLog against a real broker (Tansu): append, replay, live consumption by
//! a consumer group, a broker that is down, and a broker restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use msgwire_kafka::{ConsumeOptions, KafkaConfig, KafkaError, KafkaEventLog, Record, StartAt};
use support::{Broker, S3Server, PATIENCE};

fn config(brokers: &str, topic: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers.into(),
        topic: topic.into(),
        session_timeout: Duration::from_secs(6),
        request_timeout: Duration::from_secs(10),
        delivery_timeout: Duration::from_secs(10),
        ..KafkaConfig::default()
    }
}

async fn connect(broker: &Broker, topic: &str) -> KafkaEventLog {
    let log = KafkaEventLog::connect(config(&broker.brokers(), topic))
        .await
        .unwrap();
    log.ensure_topic().await.unwrap();
    log
}

/// Runs `f` with a guard against hangs.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {PATIENCE:?}"))
}

fn now_ms() -> i64 {
    msgwire_services::events::unix_millis()
}

/// `(key, payload, timestamp)` of records, for comparisons.
fn triples(records: &[Record]) -> Vec<(String, Vec<u8>, i64)> {
    records
        .iter()
        .map(|r| {
            (
                r.key_str().unwrap().to_owned(),
                r.payload.as_deref().unwrap().to_vec(),
                r.timestamp.unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_returns_exactly_the_records_from_the_time_on_in_order() {
    let broker = Broker::start();
    let topic = support::unique_topic("replay");
    let log = connect(&broker, &topic).await;
    let base = now_ms();
    let mut appended = Vec::new();
    for i in 0..10i64 {
        let key = format!("{}", 100 + i % 3);
        let payload = rmp_serde::to_vec_named(&serde_json::json!({"n": i})).unwrap();
        let acked = bounded("append", log.append_at(&key, &payload, Some(base + i)))
            .await
            .unwrap();
        appended.push((acked, (key, payload, base + i)));
    }
    // One partition: offsets count up from 0 in append order.
    let offsets: Vec<i64> = appended.iter().map(|(a, _)| a.offset).collect();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());

    let replayed = bounded("replay", log.replay(base + 4, 1000)).await.unwrap();
    let expected: Vec<_> = appended[4..].iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(triples(&replayed), expected);
    let replayed_offsets: Vec<i64> = replayed.iter().map(|r| r.offset).collect();
    assert_eq!(replayed_offsets, (4..10).collect::<Vec<_>>());

    // Everything, and a bound on the count (the oldest kept).
    let all = bounded("replay", log.replay(0, 1000)).await.unwrap();
    assert_eq!(all.len(), 10);
    let first3 = bounded("replay", log.replay(0, 3)).await.unwrap();
    assert_eq!(triples(&first3), triples(&all[..3]));

    // Nothing after the last one: empty, not an error or a hang.
    let none = bounded("replay", log.replay(base + 10, 1000))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_keeps_each_partitions_order_across_partitions() {
    let broker = Broker::start();
    let topic = support::unique_topic("partitions");
    let log = KafkaEventLog::connect(KafkaConfig {
        partitions: 3,
        ..config(&broker.brokers(), &topic)
    })
    .await
    .unwrap();
    log.ensure_topic().await.unwrap();
    let base = now_ms();
    let mut appended = Vec::new();
    for i in 0..24i64 {
        let key = format!("{}", i % 6);
        let payload = format!("record {i}").into_bytes();
        let acked = bounded("append", log.append_at(&key, &payload, Some(base + i)))
            .await
            .unwrap();
        appended.push((acked, key, payload, base + i));
    }
    let since = base + 6;
    let replayed = bounded("replay", log.replay(since, 1000)).await.unwrap();
    // Exactly the records from `since` on…
    let mut expected: Vec<_> = appended
        .iter()
        .filter(|a| a.3 >= since)
        .map(|a| (a.0.partition, a.0.offset, a.2.clone()))
        .collect();
    let mut got: Vec<_> = replayed
        .iter()
        .map(|r| {
            (
                r.partition,
                r.offset,
                r.payload.as_deref().unwrap().to_vec(),
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    // …each partition in offset order, merged by timestamp.
    for p in 0..3 {
        let offsets: Vec<i64> = replayed
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {p}: {offsets:?}"
        );
    }
    let times: Vec<i64> = replayed.iter().map(|r| r.timestamp.unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // A user's records stay in one partition.
    for key in 0..6 {
        let partitions: std::collections::BTreeSet<i32> = appended
            .iter()
            .filter(|a| a.1 == key.to_string())
            .map(|a| a.0.partition)
            .collect();
        assert_eq!(partitions.len(), 1, "user {key} in {partitions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_consumes_live_with_a_consumer_group_and_resumes() {
    let broker = Broker::start();
    let topic = support::unique_topic("live");
    let writer = connect(&broker, &topic).await;
    // Appended before the group exists: not live, never delivered to it.
    bounded("append", writer.append("1", b"before"))
        .await
        .unwrap();

    let reader = KafkaEventLog::connect(config(&broker.brokers(), &topic))
        .await
        .unwrap();
    let mut live = bounded("live", reader.live("group-a")).await.unwrap();
    assert_eq!(live.partitions(), 1);
    for i in 0..5 {
        bounded("append", writer.append("7", format!("live {i}").as_bytes()))
            .await
            .unwrap();
    }
    for i in 0..5 {
        let record = bounded("live record", live.next()).await.unwrap().unwrap();
        assert_eq!(
            record.payload.as_deref(),
            Some(format!("live {i}").as_bytes())
        );
        assert_eq!(record.user_id(), Some(7));
    }
    bounded("commit", live.commit(Duration::from_secs(10)))
        .await
        .unwrap();
    drop(live);

    // Appended while no member runs; a new instance in the same group resumes
    // after the committed records and gets exactly these.
    for i in 5..8 {
        bounded("append", writer.append("7", format!("live {i}").as_bytes()))
            .await
            .unwrap();
    }
    let again = KafkaEventLog::connect(config(&broker.brokers(), &topic))
        .await
        .unwrap();
    let mut live = bounded("live again", again.live("group-a")).await.unwrap();
    for i in 5..8 {
        let record = bounded("resumed record", live.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.payload.as_deref(),
            Some(format!("live {i}").as_bytes())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_instance_replays_since_a_time() {
    let broker = Broker::start();
    let topic = support::unique_topic("fresh");
    let first = connect(&broker, &topic).await;
    let base = now_ms();
    for i in 0..6i64 {
        bounded(
            "append",
            first.append_at("5", format!("e{i}").as_bytes(), Some(base + i * 10)),
        )
        .await
        .unwrap();
    }
    drop(first);
    let fresh = KafkaEventLog::connect(config(&broker.brokers(), &topic))
        .await
        .unwrap();
    let replayed = bounded("replay", fresh.replay(base + 30, 100))
        .await
        .unwrap();
    let payloads: Vec<&[u8]> = replayed
        .iter()
        .map(|r| r.payload.as_deref().unwrap())
        .collect();
    assert_eq!(payloads, [b"e3", b"e4", b"e5"]);
    let times: Vec<i64> = replayed.iter().map(|r| r.timestamp.unwrap()).collect();
    assert_eq!(times, [base + 30, base + 40, base + 50]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_the_beginning_to_the_end_without_a_group() {
    let broker = Broker::start();
    let topic = support::unique_topic("read");
    let log = connect(&broker, &topic).await;
    for i in 0..4 {
        bounded("append", log.append("3", format!("r{i}").as_bytes()))
            .await
            .unwrap();
    }
    let stream = bounded(
        "consume",
        log.consume(ConsumeOptions {
            group: None,
            start: StartAt::Beginning,
            stop_at_end: true,
        }),
    )
    .await
    .unwrap();
    let records: Vec<Record> = bounded("read to the end", stream.collect::<Vec<_>>())
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let payloads: Vec<&[u8]> = records
        .iter()
        .map(|r| r.payload.as_deref().unwrap())
        .collect();
    assert_eq!(payloads, [b"r0", b"r1", b"r2", b"r3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_gives_errors_not_hangs() {
    // Nothing listens on this port.
    let port = support::free_port();
    let config = KafkaConfig {
        request_timeout: Duration::from_secs(2),
        delivery_timeout: Duration::from_secs(3),
        ..config(&format!("127.0.0.1:{port}"), "down")
    };
    let log = bounded("connect", KafkaEventLog::connect(config))
        .await
        .unwrap();
    let health = bounded("check", log.check()).await;
    assert!(
        matches!(health, Err(KafkaError::Timeout { .. })),
        "{health:?}"
    );
    let appended = bounded("append", log.append("1", b"x")).await;
    let error = appended.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    let replayed = bounded("replay", log.replay(0, 10)).await;
    assert!(replayed.is_err(), "{replayed:?}");
    let live = bounded("live", log.live("g")).await;
    assert!(live.is_err(), "{live:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_topic() {
    let broker = Broker::start();
    let topic = support::unique_topic("health");
    let log = KafkaEventLog::connect(KafkaConfig {
        create_topic: false,
        ..config(&broker.brokers(), &topic)
    })
    .await
    .unwrap();
    let health = bounded("check", log.check()).await.unwrap();
    assert_eq!(health.brokers, 1);
    assert_eq!(health.partitions, None);
    let missing = bounded("ensure", log.ensure_topic()).await;
    assert!(
        matches!(missing, Err(KafkaError::UnknownTopic(_))),
        "{missing:?}"
    );

    let creating = connect(&broker, &topic).await;
    let health = bounded("check", creating.check()).await.unwrap();
    assert_eq!(health.partitions, Some(1));
    // Creating it again is fine.
    creating.ensure_topic().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_a_broker_restart() {
    let s3 = S3Server::start();
    let mut broker = Broker::start_with(s3.storage());
    let topic = support::unique_topic("restart");
    let log = connect(&broker, &topic).await;
    // Another instance follows the topic live, across the restart.
    let follower = KafkaEventLog::connect(config(&broker.brokers(), &topic))
        .await
        .unwrap();
    let mut live = bounded("live", follower.live("restart-group"))
        .await
        .unwrap();
    let mut acked = Vec::new();
    for i in 0..5 {
        let payload = format!("before {i}");
        bounded("append", log.append("9", payload.as_bytes()))
            .await
            .unwrap();
        acked.push(payload);
    }

    broker.stop();
    // Not acknowledged: may or may not be in the log.
    let mut unknown = Vec::new();
    // While it is down an append fails within the delivery timeout or, if the broker
    // is back before that, succeeds: never hangs. Here it stays down.
    let during = bounded("append while down", log.append("9", b"during")).await;
    let error = during.expect_err("acknowledged by a stopped broker");
    assert!(error.is_transient(), "{error:?}");
    unknown.push("during".to_owned());

    // One more, handed over while the broker is down and still waiting for its
    // acknowledgement when it comes back: acknowledged after the reconnect, or a
    // clear error — whichever, within the bound.
    let straddling = tokio::spawn({
        let log = log.clone();
        async move { log.append("9", b"straddling").await }
    });
    broker.restart();
    match bounded("append across the restart", straddling)
        .await
        .unwrap()
    {
        Ok(_) => acked.push("straddling".into()),
        Err(e) => {
            assert!(e.is_transient(), "{e:?}");
            unknown.push("straddling".into());
        }
    }
    // The same EventLog reconnects by itself: the first append after the restart
    // may still meet the old connection's failure, the next ones go through.
    let mut succeeded = false;
    for attempt in 0..5 {
        let payload = format!("after {attempt}");
        match bounded("append after restart", log.append("9", payload.as_bytes())).await {
            Ok(_) => {
                acked.push(payload);
                succeeded = true;
                break;
            }
            Err(e) => {
                eprintln!("append {attempt} after restart: {e}");
                unknown.push(payload);
            }
        }
    }
    assert!(
        succeeded,
        "no append succeeded after the restart:\n{}",
        broker.log_tail()
    );

    let replayed = bounded("replay", log.replay(0, 1000)).await.unwrap();
    let payloads: Vec<String> = replayed
        .iter()
        .map(|r| String::from_utf8(r.payload.as_deref().unwrap().to_vec()).unwrap())
        .collect();
    // Every acknowledged record, in order, and nothing that was never appended.
    let known: Vec<String> = payloads
        .iter()
        .filter(|p| !unknown.contains(p))
        .cloned()
        .collect();
    assert_eq!(known, acked, "{payloads:?}\n{}", broker.log_tail());
    // The live stream reconnected too: it delivers every acknowledged record, the
    // last one included (at least once: a record may come twice around the
    // restart, when the group resumes from its last commit).
    let last = acked.last().unwrap().clone();
    let mut seen = Vec::new();
    while !seen.contains(&last) {
        let record = bounded("live record across the restart", live.next())
            .await
            .expect("the live stream ended")
            .unwrap();
        seen.push(String::from_utf8(record.payload.as_deref().unwrap().to_vec()).unwrap());
    }
    for payload in &acked {
        assert!(
            seen.contains(payload),
            "{payload} not delivered live: {seen:?}"
        );
    }
}
