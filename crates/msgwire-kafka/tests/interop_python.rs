//! A Python consumer (kafka-python + msgpack, as a consumer of the events topic
//! would be written) reads what KafkaEventLog appended: keys, MessagePack values,
//! timestamps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use msgwire_kafka::{KafkaConfig, KafkaEventLog};
use serde_json::{json, Value};
use support::{Broker, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_reads_the_events_and_decodes_their_messagepack() {
    let broker = Broker::start();
    let topic = support::unique_topic("python");
    let log = KafkaEventLog::connect(KafkaConfig {
        brokers: broker.brokers(),
        topic: topic.clone(),
        session_timeout: Duration::from_secs(6),
        ..KafkaConfig::default()
    })
    .await
    .unwrap();
    log.ensure_topic().await.unwrap();
    let events = [
        json!({"id": 1, "user_id": 42, "type": "login", "timestamp": 1_700_000_000_000_i64}),
        json!({"id": 2, "user_id": 42, "type": "profile_update", "timestamp": 1_700_000_000_500_i64,
               "data": {"field": "email", "nested": [1, 2.5, null, true]}}),
        json!({"id": 3, "user_id": 7, "type": "logout", "timestamp": 1_700_000_001_000_i64}),
    ];
    for event in &events {
        let bytes = rmp_serde::to_vec_named(event).unwrap();
        let user = event["user_id"].as_u64().unwrap();
        let ts = event["timestamp"].as_i64().unwrap();
        tokio::time::timeout(PATIENCE, log.append_event(user, &bytes, ts))
            .await
            .unwrap()
            .unwrap();
    }

    let script = support::repo().join("tests/interop/py_kafka_consume.py");
    let mut cmd = Command::new(support::python());
    cmd.arg(&script)
        .args([
            broker.brokers().as_str(),
            topic.as_str(),
            "py-group",
            "3",
            "60",
        ])
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "py_kafka_consume.py failed ({}): {stderr}\n{}",
        out.status,
        broker.log_tail()
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, event) in lines.iter().zip(&events) {
        assert_eq!(line["value"], *event);
        assert_eq!(line["key"], json!(event["user_id"].to_string()));
        assert_eq!(line["timestamp"], event["timestamp"]);
        assert_eq!(line["partition"], json!(0));
    }
    let offsets: Vec<i64> = lines
        .iter()
        .map(|l| l["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 1, 2]);
}
