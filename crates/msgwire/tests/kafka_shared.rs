//! `msgwire serve --kafka` processes on one real Tansu broker (issue 9, acceptance 2):
//! events published through one process are streamed live by another (which follows
//! the topic in a consumer group of its own); a process started afterwards replays
//! them with `start_time`; Python's kafka-python reads the topic and decodes the
//! MessagePack values; the broker stopped → degraded `/health` and a prompt
//! UNAVAILABLE from publishEvent, never a hang; the broker back on its port → msgwire
//! reconnects by itself and every event it acknowledged is still there (the broker
//! keeps its log in S3 storage — moto's server — so that its restart loses nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// common and the broker helper both include tests/support/peer_programs.rs.
#![allow(clippy::duplicate_mod)]

mod common;
#[path = "../../msgwire-kafka/tests/support/mod.rs"]
mod kafka_support;

use std::net::SocketAddr;
use std::time::Duration;

use common::{field, http_request, next_event, python_script, run_peer, wait_until, Serve};
use kafka_support::{unique_topic, Broker, S3Server};
use msgwire_rpc::{Client, Code, Dialect, Value};

/// How long one probe waits for its echo on the other side before the next is sent.
const PROBE_WAIT: Duration = Duration::from_millis(250);
/// Probes sent at most (a consumer group join takes seconds on Tansu).
const PROBES: usize = 160;
const USER: u64 = 9;

fn serve_on(broker: &Broker, topic: &str) -> Serve {
    Serve::start(&["--kafka", &broker.brokers(), "--kafka-topic", topic])
}

async fn connect(serve: &Serve) -> Client {
    Client::connect_tcp(serve.addr, Dialect::MsgpackRpc)
        .await
        .unwrap()
}

/// An event's `data.n`.
fn n_of(event: &Value) -> String {
    let data = field(event, "data").expect("data");
    field(data, "n")
        .and_then(Value::as_str)
        .expect("data.n")
        .to_owned()
}

async fn publish(client: &Client, n: &str) -> Result<Value, msgwire_rpc::CallError> {
    let params = (USER, "login", Value::Map(vec![("n".into(), n.into())]));
    client.call_typed("publishEvent", &params).await
}

fn health(addr: SocketAddr) -> (u16, String) {
    let answer = http_request(
        addr,
        "GET",
        "/health",
        &[("Accept", "application/json")],
        &[],
    );
    let body = answer.json();
    let kafka = body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "kafka")
        .unwrap_or_else(|| panic!("no kafka dependency in {body}"))
        .clone();
    (answer.status, kafka["status"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_span_processes_replay_from_the_topic_and_python_reads_them() {
    let s3 = S3Server::start();
    let mut broker = Broker::start_with(s3.storage());
    let topic = unique_topic("serve-events");
    let mut a = serve_on(&broker, &topic);
    let mut b = serve_on(&broker, &topic);
    let http_a = a.http_addr();
    let (client_a, client_b) = (connect(&a).await, connect(&b).await);
    wait_until("kafka ok in a's /health", || {
        (health(http_a) == (200, "ok".into())).then_some(())
    });

    // Live: b's stream sees what a publishes, once b's follower has joined its group.
    let mut on_b = client_b
        .server_stream::<_, Value>("subscribeEvents", &(USER,))
        .await
        .unwrap();
    let mut published = Vec::new();
    let mut probes = 0;
    loop {
        let n = format!("probe {probes}");
        publish(&client_a, &n).await.unwrap();
        published.push(n);
        if next_event(&mut on_b, PROBE_WAIT).await.is_some() {
            break;
        }
        probes += 1;
        assert!(probes < PROBES, "no event from a reached b");
    }
    while next_event(&mut on_b, PROBE_WAIT * 4).await.is_some() {}
    for n in ["final", "after"] {
        publish(&client_a, n).await.unwrap();
        published.push(n.into());
    }
    let wait = Duration::from_secs(20);
    for n in ["final", "after"] {
        let event = next_event(&mut on_b, wait).await.expect("a live event");
        assert_eq!(n_of(&event), n, "each event once, in order");
        assert_eq!(field(&event, "user_id").and_then(Value::as_u64), Some(USER));
    }
    println!(
        "live: {} events published through a reached b after {probes} probes",
        published.len()
    );

    // A process that did not exist then replays them all from the topic.
    let c = serve_on(&broker, &topic);
    let client_c = connect(&c).await;
    let mut replay = client_c
        .server_stream::<_, Value>("subscribeEvents", &(USER, Value::Nil, 0))
        .await
        .unwrap();
    let mut replayed = Vec::new();
    while replayed.len() < published.len() {
        let event = next_event(&mut replay, wait)
            .await
            .expect("a replayed event");
        replayed.push(n_of(&event));
    }
    assert_eq!(replayed, published, "the whole history, in order, once");
    println!("replay: a fresh process replayed {} events", replayed.len());

    // Python reads the topic as the seed's consumer does.
    let count = published.len().to_string();
    let read = run_peer(python_script(
        "py_kafka_consume.py",
        &[&broker.brokers(), &topic, "py-serve-test", &count, "60"],
    ));
    // run_peer parses the last line; the script prints one line per record.
    assert_eq!(read["key"], USER.to_string());
    assert_eq!(read["value"]["user_id"], USER);
    assert_eq!(read["value"]["data"]["n"], "after");
    println!("python: kafka-python read and decoded the topic");

    // The broker stopped: degraded, and publishEvent fails promptly, never hangs.
    broker.stop();
    wait_until("a degraded /health", || {
        (health(http_a).0 == 503).then_some(())
    });
    let refused = publish(&client_a, "while down").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");
    let sum: i64 = client_a.call_typed("add", &(2, 3)).await.unwrap();
    assert_eq!(sum, 5, "other calls are answered");
    assert!(a.is_running() && b.is_running());
    println!("broker down: degraded, publishEvent UNAVAILABLE ({refused})");

    // Back: msgwire reconnects, and everything it acknowledged is still there.
    broker.restart();
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while let Err(e) = publish(&client_a, "back").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishEvent never recovered: {e}"
        );
        tokio::time::sleep(PROBE_WAIT).await;
    }
    published.push("back".into());
    wait_until("kafka ok again", || {
        (health(http_a) == (200, "ok".into())).then_some(())
    });
    let d = serve_on(&broker, &topic);
    let client_d = connect(&d).await;
    let mut after = client_d
        .server_stream::<_, Value>("subscribeEvents", &(USER, Value::Nil, 0))
        .await
        .unwrap();
    let mut kept = Vec::new();
    while kept.len() < published.len() {
        let event = next_event(&mut after, wait).await.expect("a kept event");
        kept.push(n_of(&event));
    }
    assert_eq!(
        kept, published,
        "every acknowledged event, once, after the restart"
    );
    println!(
        "broker back: publishEvent acknowledged again; all {} acknowledged events kept",
        kept.len()
    );
}
