//! Two `msgwire serve --redis` processes on one real `redis-server` (issue 9,
//! acceptance 1): a chat room and an event stream span them; the cache is shared, and
//! 50 callers asking both processes at once for one missing user compute it once;
//! Python's `redis` + `msgpack` read what msgwire cached and msgwire reads what Python
//! cached; Redis killed mid-test → degraded `/health`, no crash, calls still answered,
//! chat within a process still works; Redis back on its port → both recover by
//! themselves.
//!
//! Redis pub/sub keeps nothing for a subscriber that is not yet (or no longer)
//! subscribed, so where a test waits for a cross-process path to open, it sends a probe
//! until one arrives, and only then checks exact delivery — by order, not by waiting.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// common and the Redis helper both include tests/support/peer_programs.rs.
#![allow(clippy::duplicate_mod)]

mod common;
#[path = "../../msgwire-redis/tests/support/mod.rs"]
mod redis_support;

use std::net::SocketAddr;
use std::time::Duration;

use common::{field, http_request, next_event, python_script, run_peer, wait_until, Serve};
use futures::StreamExt;
use msgwire_rpc::{CallOptions, Client, Dialect, StreamReceiver, StreamSender, Value};
use msgwire_services::chat::{ChatKind, ChatMessage};
use redis_support::RedisServer;

/// How long one probe waits for its echo on the other side before the next is sent.
const PROBE_WAIT: Duration = Duration::from_millis(250);
/// Probes sent at most before a cross-process path counts as broken.
const PROBES: usize = 80;

fn serve_on(redis: &RedisServer) -> Serve {
    Serve::start(&["--redis", &redis.url()])
}

async fn connect(serve: &Serve) -> Client {
    Client::connect_tcp(serve.addr, Dialect::MsgpackRpc)
        .await
        .unwrap()
}

struct Member {
    tx: StreamSender<ChatMessage>,
    rx: StreamReceiver<ChatMessage>,
}

impl Member {
    /// Joins `room` as `user` on `client` and reads the welcome.
    async fn join(client: &Client, user: &str, room: &str) -> Member {
        let (mut tx, mut rx) = client
            .open_stream::<_, ChatMessage, ChatMessage>(
                "chat",
                &Vec::<Value>::new(),
                CallOptions::new(),
            )
            .await
            .unwrap();
        let mut join = ChatMessage::new(ChatKind::Join, "");
        join.user_id = user.into();
        join.room_id = room.into();
        tx.send(&join).await.unwrap();
        let welcome = rx.next().await.unwrap().unwrap();
        assert_eq!(welcome.content, format!("Welcome to {room}, {user}"));
        Member { tx, rx }
    }

    async fn say(&mut self, text: &str) {
        self.tx
            .send(&ChatMessage::new(ChatKind::Text, text))
            .await
            .unwrap();
    }

    /// The next text message within `wait`, skipping join and leave notices.
    async fn next_text(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let item = tokio::time::timeout_at(deadline, self.rx.next())
                .await
                .ok()?;
            let message = item.expect("the chat ended").expect("the chat failed");
            if message.kind == ChatKind::Text {
                return Some((message.user_id, message.content));
            }
        }
    }

    /// Says probes until `other` hears one: the path from here to there is open.
    async fn probe(&mut self, other: &mut Member, from: &str) {
        for n in 0..PROBES {
            let probe = format!("probe {n}");
            self.say(&probe).await;
            if let Some(heard) = other.next_text(PROBE_WAIT).await {
                assert_eq!(heard.0, from);
                assert!(heard.1.starts_with("probe "), "{heard:?}");
                // Anything said from now on follows the probes still in flight, if any:
                // drain them.
                while other.next_text(PROBE_WAIT).await.is_some() {}
                return;
            }
        }
        panic!("no probe from {from} arrived in {PROBES} tries");
    }
}

fn get(addr: SocketAddr, path: &str) -> common::HttpAnswer {
    http_request(addr, "GET", path, &[("Accept", "application/json")], &[])
}

/// A counter's value in `addr`'s `/metrics`.
fn counter(addr: SocketAddr, name: &str) -> f64 {
    let text = String::from_utf8(get(addr, "/metrics").body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// `/health`'s status code and the status of the dependency named `name`.
fn health(addr: SocketAddr, name: &str) -> (u16, String) {
    let answer = get(addr, "/health");
    let body = answer.json();
    let dependency = body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no {name} dependency in {body}"))
        .clone();
    (
        answer.status,
        dependency["status"].as_str().unwrap().to_owned(),
    )
}

/// What `tests/interop/py_redis_cache.py` printed, run with `args`.
fn python(redis: &RedisServer, args: &[&str]) -> serde_json::Value {
    // The script takes MODE PORT ARGS.
    let port = redis.port().to_string();
    let (mode, rest) = args.split_first().expect("a mode");
    let args: Vec<&str> = [*mode, port.as_str()]
        .into_iter()
        .chain(rest.iter().copied())
        .collect();
    run_peer(python_script("py_redis_cache.py", &args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_chat_events_and_cache_and_survive_a_redis_restart() {
    let mut redis = RedisServer::start();
    let mut a = serve_on(&redis);
    let mut b = serve_on(&redis);
    let (http_a, http_b) = (a.http_addr(), b.http_addr());
    let (client_a, client_b) = (connect(&a).await, connect(&b).await);
    assert_eq!(health(http_a, "redis"), (200, "ok".into()));

    // Chat: alice on a, bob on b, one room.
    let mut alice = Member::join(&client_a, "alice", "lobby").await;
    let mut bob = Member::join(&client_b, "bob", "lobby").await;
    alice.probe(&mut bob, "alice").await;
    bob.probe(&mut alice, "bob").await;
    alice.say("hello from a").await;
    bob.say("hello from b").await;
    bob.say("and again").await;
    let wait = Duration::from_secs(10);
    assert_eq!(
        bob.next_text(wait).await,
        Some(("alice".into(), "hello from a".into()))
    );
    assert_eq!(
        alice.next_text(wait).await,
        Some(("bob".into(), "hello from b".into()))
    );
    assert_eq!(
        alice.next_text(wait).await,
        Some(("bob".into(), "and again".into())),
        "each message once, in order"
    );
    println!("chat: one room across two processes");

    // Events: a stream on b sees what is published through a.
    let mut events = client_b
        .server_stream::<_, Value>("subscribeEvents", &(7,))
        .await
        .unwrap();
    let publish = |data: &str| {
        let params = (7, "login", Value::Map(vec![("n".into(), data.into())]));
        let client = client_a.clone();
        async move { client.call_typed::<_, Value>("publishEvent", &params).await }
    };
    let mut probes = 0;
    while next_event(&mut events, PROBE_WAIT).await.is_none() {
        probes += 1;
        assert!(probes < PROBES, "no event from a reached b");
        publish("probe").await.unwrap();
    }
    while next_event(&mut events, PROBE_WAIT).await.is_some() {}
    publish("final").await.unwrap();
    let event = next_event(&mut events, wait).await.expect("the event");
    assert_eq!(field(&event, "user_id").and_then(Value::as_u64), Some(7));
    let data = field(&event, "data").unwrap();
    assert_eq!(field(data, "n").and_then(Value::as_str), Some("final"));
    println!("events: published through a, streamed from b");

    // The cache: 50 callers across both processes, one computation.
    let calls = (0..50).map(|i| {
        let client = if i % 2 == 0 { &client_a } else { &client_b };
        client.call_typed::<_, Value>("getUser", &(2,))
    });
    let users = futures::future::join_all(calls).await;
    for user in &users {
        let user = user.as_ref().unwrap();
        assert_eq!(field(user, "name").and_then(Value::as_str), Some("Bob"));
    }
    let computed = counter(http_a, "msgwire_cache_computations_total")
        + counter(http_b, "msgwire_cache_computations_total");
    assert_eq!(
        computed, 1.0,
        "50 callers in two processes, one computation"
    );
    println!("cache: 50 callers across two processes computed users:2 once");

    // Python reads what msgwire cached, and msgwire reads what Python cached.
    let read = python(&redis, &["get", "users:2"]);
    assert_eq!(read["value"]["name"], "Bob");
    python(
        &redis,
        &[
            "set",
            "users:3",
            r#"{"id": 3, "name": "Carol from Python", "email": "carol@example.com", "role": "viewer"}"#,
        ],
    );
    let carol: Value = client_b.call_typed("getUser", &(3,)).await.unwrap();
    assert_eq!(
        field(&carol, "name").and_then(Value::as_str),
        Some("Carol from Python")
    );
    println!("cache: Python and msgwire read each other's values");

    // Redis killed: degraded health, no crash, calls answered, local chat goes on.
    redis.kill();
    wait_until("a degraded /health on a", || {
        (health(http_a, "redis").0 == 503).then_some(())
    });
    let (status, redis_state) = health(http_b, "redis");
    assert_eq!((status, redis_state.as_str()), (503, "down"));
    let sum: i64 = client_a.call_typed("add", &(2, 3)).await.unwrap();
    assert_eq!(sum, 5);
    let alice_again: Value = client_b.call_typed("getUser", &(1,)).await.unwrap();
    assert_eq!(
        field(&alice_again, "name").and_then(Value::as_str),
        Some("Alice"),
        "computed without the cache"
    );
    let mut carol_a = Member::join(&client_a, "carol", "lobby").await;
    alice.say("redis is down, a still chats").await;
    assert_eq!(
        carol_a.next_text(wait).await,
        Some(("alice".into(), "redis is down, a still chats".into()))
    );
    assert!(a.is_running() && b.is_running());
    println!("redis down: degraded, answering, local chat works");

    // Redis back on its port: both recover without a restart.
    redis.restart();
    for http in [http_a, http_b] {
        wait_until("health ok again", || {
            (health(http, "redis") == (200, "ok".into())).then_some(())
        });
    }
    bob.probe(&mut alice, "bob").await;
    while carol_a.next_text(PROBE_WAIT).await.is_some() {}
    bob.say("back").await;
    assert_eq!(
        alice.next_text(wait).await,
        Some(("bob".into(), "back".into()))
    );
    assert_eq!(
        carol_a.next_text(wait).await,
        Some(("bob".into(), "back".into()))
    );
    let hits_before = counter(http_b, "msgwire_cache_hits_total");
    let _: Value = client_a.call_typed("getUser", &(1,)).await.unwrap();
    let _: Value = client_b.call_typed("getUser", &(1,)).await.unwrap();
    assert_eq!(
        counter(http_b, "msgwire_cache_hits_total"),
        hits_before + 1.0,
        "b reads what a cached"
    );
    println!("redis back: cross-process chat and the shared cache again");
}
