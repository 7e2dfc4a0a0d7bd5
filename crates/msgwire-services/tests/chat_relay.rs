//! Chat rooms across processes: [`ChatHub::with_bus`] hubs on one shared
//! [`InProcessBus`] behave as hubs in two processes on one Redis.
//!
//! "Nobody got it twice" and "nothing else came" are shown by order, not by waiting:
//! each hub's listener hears a room's topic in the bus's one order, so a duplicate or a
//! stray message would reach a member before the sentinel sent after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::within;
use futures::future::{self, BoxFuture};
use futures::{FutureExt, StreamExt};
use msgwire_rpc::Value;
use msgwire_services::bus::{Bus, BusError, Delivery, InProcessBus, Subscription};
use msgwire_services::chat::{topic, ChatHub, ChatKind, ChatMessage, Member};

type Seen = (ChatKind, String, String, String);

fn seen(kind: ChatKind, user: &str, room: &str, content: &str) -> Seen {
    (kind, user.into(), room.into(), content.into())
}

fn text(content: &str) -> ChatMessage {
    ChatMessage::new(ChatKind::Text, content)
}

/// Two "processes": two hubs on one bus, with these backlogs.
fn two_hubs(backlog_a: usize, backlog_b: usize) -> (InProcessBus, ChatHub, ChatHub) {
    let bus = InProcessBus::with_capacity(256);
    let shared: Arc<dyn Bus> = Arc::new(bus.clone());
    let a = ChatHub::with_bus(backlog_a, Arc::clone(&shared));
    let b = ChatHub::with_bus(backlog_b, shared);
    assert_ne!(a.origin(), b.origin());
    (bus, a, b)
}

/// Joins and waits until the hub listens to the room's topic.
async fn join(hub: &ChatHub, user: &str, room: &str) -> Member {
    let member = hub.join(user, room).unwrap();
    assert!(
        within(member.subscribed()).await,
        "{user} is not subscribed"
    );
    member
}

/// The next message for `member`, however it gets there.
async fn next(member: &mut Member) -> Seen {
    let m = within(member.recv())
        .await
        .unwrap_or_else(|| panic!("{}'s inbox ended", member.user_id()));
    assert!(m.timestamp > 0);
    (
        m.kind,
        m.user_id.clone(),
        m.room_id.clone(),
        m.content.clone(),
    )
}

/// The next message for `member`, past the join notices of `early`: members of another
/// hub who joined before `member`'s hub listened to the room. Their notices were
/// broadcast before, but the other hub's publisher may put them on the bus after, so
/// they may or may not arrive (first, if they do).
async fn next_past(member: &mut Member, early: &[&str]) -> Seen {
    loop {
        let m = next(member).await;
        if !(m.0 == ChatKind::Join && early.contains(&m.1.as_str())) {
            return m;
        }
    }
}

/// Everything up to and including the first message from `user` with `content`.
async fn until(member: &mut Member, user: &str, content: &str) -> Vec<Seen> {
    let mut got = Vec::new();
    loop {
        let m = next(member).await;
        let done = m.1 == user && m.3 == content;
        got.push(m);
        if done {
            return got;
        }
    }
}

/// What `member` can read without waiting.
fn ready(member: &mut Member) -> Vec<Seen> {
    std::iter::from_fn(|| member.recv().now_or_never().flatten())
        .map(|m| {
            (
                m.kind,
                m.user_id.clone(),
                m.room_id.clone(),
                m.content.clone(),
            )
        })
        .collect()
}

/// Lets the hubs' tasks run until `topic` has `n` subscribers. Not a timing claim:
/// `within` only turns a hang into a failure.
async fn subscribers(bus: &InProcessBus, topic: &str, n: usize) {
    within(async {
        while bus.subscriber_count(topic) != n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// An envelope as the module docs lay it out.
fn envelope(origin: u64, kind: &str, user: &str, room: &str, content: &str) -> Bytes {
    let message = Value::Map(vec![
        ("user_id".into(), user.into()),
        ("room_id".into(), room.into()),
        ("content".into(), content.into()),
        ("type".into(), kind.into()),
        ("timestamp".into(), 1_700_000_000_000_i64.into()),
    ]);
    let envelope = Value::Map(vec![
        ("origin".into(), origin.into()),
        ("message".into(), message),
    ]);
    Bytes::from(rmp_serde::to_vec(&envelope).unwrap())
}

// Threads, so that the hubs' tasks and the test run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spans_two_hubs_each_message_once_and_in_order() {
    use ChatKind::*;
    let (bus, a, b) = two_hubs(64, 64);
    let mut alice = join(&a, "alice", "rust").await;
    assert_eq!(
        next(&mut alice).await,
        seen(System, "system", "rust", "Welcome to rust, alice")
    );
    // Joins cross: alice, in A, hears of bob's join in B.
    let mut bob = join(&b, "bob", "rust").await;
    assert_eq!(
        next(&mut bob).await,
        seen(System, "system", "rust", "Welcome to rust, bob")
    );
    assert_eq!(
        next(&mut alice).await,
        seen(Join, "bob", "rust", "bob joined rust")
    );
    // Carol joins alice's hub: alice hears it directly, bob over the bus.
    let mut carol = join(&a, "carol", "rust").await;
    assert_eq!(next(&mut carol).await.0, System);
    assert_eq!(
        next(&mut alice).await,
        seen(Join, "carol", "rust", "carol joined rust")
    );
    assert_eq!(
        next_past(&mut bob, &["alice"]).await,
        seen(Join, "carol", "rust", "carol joined rust")
    );
    assert_eq!(
        (a.member_count("rust"), b.member_count("rust")),
        (2, 1),
        "local counts"
    );
    assert_eq!(
        bus.subscriber_count(&topic("rust")),
        2,
        "one listener per hub"
    );

    // Both ways, in order, once each.
    for i in 0..5 {
        alice.send(text(&format!("a{i}"))).unwrap();
    }
    alice.send(ChatMessage::new(Typing, "")).unwrap();
    for i in 0..5 {
        bob.send(text(&format!("b{i}"))).unwrap();
    }
    let from = |user: &str, n: usize, prefix: &str| -> Vec<Seen> {
        (0..n)
            .map(|i| seen(Text, user, "rust", &format!("{prefix}{i}")))
            .collect()
    };
    let mut alice_texts = from("alice", 5, "a");
    alice_texts.push(seen(Typing, "alice", "rust", ""));
    // Bob hears all of alice's (bob's own texts are not echoed back to him).
    assert_eq!(until(&mut bob, "alice", "").await, alice_texts);
    // Alice hears bob's; carol hears alice's (directly) and bob's (over the bus),
    // each once: alice's would come back to hub A before bob's "b4" if they did.
    assert_eq!(until(&mut alice, "bob", "b4").await, from("bob", 5, "b"));
    let carol_saw = until(&mut carol, "bob", "b4").await;
    let (carol_alice, carol_bob): (Vec<Seen>, Vec<Seen>) =
        carol_saw.into_iter().partition(|m| m.1 == "alice");
    assert_eq!(carol_alice, alice_texts);
    assert_eq!(carol_bob, from("bob", 5, "b"));

    // A sentinel each way: nothing else was on its way.
    carol.send(text("end")).unwrap();
    assert_eq!(until(&mut bob, "carol", "end").await.len(), 1);
    assert_eq!(next(&mut alice).await, seen(Text, "carol", "rust", "end"));
    bob.send(text("end")).unwrap();
    assert_eq!(until(&mut alice, "bob", "end").await.len(), 1);
    assert_eq!(until(&mut carol, "bob", "end").await.len(), 1);

    // Leaves cross too.
    drop(carol);
    assert_eq!(
        next(&mut alice).await,
        seen(Leave, "carol", "rust", "carol left rust")
    );
    assert_eq!(
        next(&mut bob).await,
        seen(Leave, "carol", "rust", "carol left rust")
    );
}

#[tokio::test]
async fn rooms_are_separate_across_hubs_and_the_last_member_unsubscribes() {
    use ChatKind::*;
    let (bus, a, b) = two_hubs(64, 64);
    let mut alice = join(&a, "alice", "rust").await;
    let mut eve = join(&a, "eve", "go").await;
    let mut bob = join(&b, "bob", "go").await;
    let mut dave = join(&b, "dave", "rust").await;
    for m in [&mut alice, &mut eve, &mut bob, &mut dave] {
        assert_eq!(next(m).await.0, System);
    }
    assert_eq!(
        next(&mut alice).await,
        seen(Join, "dave", "rust", "dave joined rust")
    );
    assert_eq!(
        next(&mut eve).await,
        seen(Join, "bob", "go", "bob joined go")
    );
    assert_eq!(
        (
            bus.subscriber_count("chat:rust"),
            bus.subscriber_count("chat:go")
        ),
        (2, 2)
    );

    // Rust first, then go: bob in go gets only go's; dave in rust only rust's.
    alice.send(text("for rust")).unwrap();
    eve.send(text("for go")).unwrap();
    assert_eq!(
        next_past(&mut dave, &["alice"]).await,
        seen(Text, "alice", "rust", "for rust")
    );
    assert_eq!(
        next_past(&mut bob, &["eve"]).await,
        seen(Text, "eve", "go", "for go")
    );
    bob.send(text("go only")).unwrap();
    assert_eq!(next(&mut eve).await, seen(Text, "bob", "go", "go only"));
    dave.send(text("rust only")).unwrap();
    assert_eq!(
        next(&mut alice).await,
        seen(Text, "dave", "rust", "rust only")
    );
    assert!(ready(&mut alice).is_empty() && ready(&mut eve).is_empty());
    assert!(ready(&mut bob).is_empty() && ready(&mut dave).is_empty());

    // The last member of rust in A leaves: A stops listening (the leave still crosses);
    // B goes on listening for dave.
    drop(alice);
    assert_eq!(
        next(&mut dave).await,
        seen(Leave, "alice", "rust", "alice left rust")
    );
    subscribers(&bus, "chat:rust", 1).await;
    assert_eq!((a.room_count(), a.member_count("rust")), (1, 0));
    assert_eq!(b.member_count("rust"), 1);

    // A member who joins again gets a fresh listener; nothing of the old one doubles.
    let mut alice = join(&a, "alice", "rust").await;
    assert_eq!(bus.subscriber_count("chat:rust"), 2);
    assert_eq!(next(&mut alice).await.0, System);
    assert_eq!(
        next(&mut dave).await,
        seen(Join, "alice", "rust", "alice joined rust")
    );
    dave.send(text("again")).unwrap();
    dave.send(text("end")).unwrap();
    assert_eq!(
        until(&mut alice, "dave", "end").await,
        [
            seen(Text, "dave", "rust", "again"),
            seen(Text, "dave", "rust", "end")
        ]
    );

    for member in [alice, eve, bob, dave] {
        member.leave();
    }
    subscribers(&bus, "chat:rust", 0).await;
    subscribers(&bus, "chat:go", 0).await;
    assert_eq!(bus.topic_count(), 0);
    assert_eq!((a.room_count(), b.room_count()), (0, 0));
}

/// A bus that is down: every publish fails, and so may every subscribe.
struct DownBus {
    publishes: AtomicUsize,
    subscribe_fails: bool,
    inner: InProcessBus,
}

fn down() -> BusError {
    BusError::Backend("connection refused".into())
}

impl Bus for DownBus {
    fn publish(&self, _topic: &str, _payload: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        self.publishes.fetch_add(1, Ordering::SeqCst);
        Box::pin(future::ready(Err(down())))
    }

    fn subscribe(&self, topic: &str) -> BoxFuture<'_, Result<Subscription, BusError>> {
        if self.subscribe_fails {
            Box::pin(future::ready(Err(down())))
        } else {
            self.inner.subscribe(topic)
        }
    }
}

#[tokio::test]
async fn with_the_bus_down_a_room_goes_on_locally() {
    use ChatKind::*;
    for subscribe_fails in [true, false] {
        let bus = Arc::new(DownBus {
            publishes: AtomicUsize::new(0),
            subscribe_fails,
            inner: InProcessBus::new(),
        });
        let hub = ChatHub::with_bus(8, bus.clone());
        let mut alice = hub.join("alice", "rust").unwrap();
        assert_eq!(within(alice.subscribed()).await, !subscribe_fails);
        let mut bob = hub.join("bob", "rust").unwrap();
        alice.send(text("hi bob")).unwrap();
        bob.send(text("hi alice")).unwrap();
        assert_eq!(
            ready(&mut alice),
            [
                seen(System, "system", "rust", "Welcome to rust, alice"),
                seen(Join, "bob", "rust", "bob joined rust"),
                seen(Text, "bob", "rust", "hi alice"),
            ]
        );
        assert_eq!(
            ready(&mut bob),
            [
                seen(System, "system", "rust", "Welcome to rust, bob"),
                seen(Text, "alice", "rust", "hi bob"),
            ]
        );
        // The publisher tried them all (two joins, two texts) and failed; nobody noticed.
        within(async {
            while bus.publishes.load(Ordering::SeqCst) < 4 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        bob.send(text("still")).unwrap();
        assert_eq!(next(&mut alice).await, seen(Text, "bob", "rust", "still"));
        drop((alice, bob));
        assert_eq!(hub.room_count(), 0);
    }
}

#[tokio::test]
async fn garbage_on_the_topic_is_skipped_and_the_room_goes_on() {
    use ChatKind::*;
    let bus = InProcessBus::new();
    let hub = ChatHub::with_bus(8, Arc::new(bus.clone()));
    let mut alice = join(&hub, "alice", "rust").await;
    assert_eq!(next(&mut alice).await.0, System);
    let own = hub.origin().unwrap();
    let other = own.wrapping_add(1);
    let rust = topic("rust");
    let junk: Vec<Bytes> = vec![
        Bytes::new(),
        Bytes::from_static(b"\xc1\xc1\xc1"),
        Bytes::from_static(b"\x81\xa6origin"), // cut short
        Bytes::from(rmp_serde::to_vec("not an envelope").unwrap()),
        Bytes::from(rmp_serde::to_vec(&Value::Map(vec![("origin".into(), 5.into())])).unwrap()),
        envelope(other, "shout", "zed", "rust", "unknown type"),
        envelope(other, "system", "system", "rust", "a system message"),
        envelope(other, "text", "zed", "go", "another room"),
        envelope(own, "text", "zed", "rust", "this hub's own"),
    ];
    for payload in junk {
        bus.publish(&rust, payload).await.unwrap();
    }
    bus.publish(&rust, envelope(other, "text", "zed", "rust", "hello"))
        .await
        .unwrap();
    assert_eq!(next(&mut alice).await, seen(Text, "zed", "rust", "hello"));
    // The room goes on, locally and over the bus.
    let mut bob = hub.join("bob", "rust").unwrap();
    assert_eq!(
        next(&mut alice).await,
        seen(Join, "bob", "rust", "bob joined rust")
    );
    bob.send(text("fine")).unwrap();
    assert_eq!(next(&mut alice).await, seen(Text, "bob", "rust", "fine"));
    bus.publish(
        &rust,
        envelope(other, "leave", "zed", "rust", "zed left rust"),
    )
    .await
    .unwrap();
    assert_eq!(
        next(&mut alice).await,
        seen(Leave, "zed", "rust", "zed left rust")
    );
    assert_eq!(next(&mut bob).await.0, System);
    assert_eq!(
        next(&mut bob).await,
        seen(Leave, "zed", "rust", "zed left rust")
    );
}

#[tokio::test]
async fn what_a_hub_publishes_is_the_documented_envelope() {
    let bus = InProcessBus::new();
    let hub = ChatHub::with_bus(8, Arc::new(bus.clone()));
    let mut raw = bus.subscribe("chat:rust").await.unwrap();
    let alice = join(&hub, "alice", "rust").await;
    alice.send(text("hi")).unwrap();
    let origin = hub.origin().unwrap();
    for (kind, content) in [("join", "alice joined rust"), ("text", "hi")] {
        let Some(Delivery::Message(payload)) = within(raw.next()).await else {
            panic!("no payload");
        };
        let Value::Map(envelope) = rmp_serde::from_slice::<Value>(&payload).unwrap() else {
            panic!("not a map");
        };
        assert_eq!(envelope.len(), 2);
        assert_eq!(envelope[0], ("origin".into(), origin.into()));
        let Value::Map(message) = &envelope[1].1 else {
            panic!("no message map");
        };
        assert_eq!(envelope[1].0, "message".into());
        let keys: Vec<_> = message.iter().map(|(k, _)| k.clone()).collect();
        let want: Vec<Value> = ["user_id", "room_id", "content", "type", "timestamp"]
            .into_iter()
            .map(Value::from)
            .collect();
        assert_eq!(keys, want);
        assert_eq!(message[0].1, "alice".into());
        assert_eq!(message[1].1, "rust".into());
        assert_eq!(message[2].1, content.into());
        assert_eq!(message[3].1, kind.into());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_flood_removes_a_slow_member_and_no_one_else() {
    use ChatKind::*;
    const BACKLOG: usize = 4;
    // Bob reads little until the end: his hub's backlog is roomier.
    let (_bus, a, b) = two_hubs(BACKLOG, 64);
    let mut slow = join(&a, "slow", "r").await; // never reads: welcome = 1 of 4
    let mut carol = join(&a, "carol", "r").await; // "carol joined r" = 2 of 4
    let mut bob = join(&b, "bob", "r").await; // "bob joined r", over the bus = 3 of 4
    assert_eq!(next(&mut carol).await.0, System);
    assert_eq!(
        next(&mut carol).await,
        seen(Join, "bob", "r", "bob joined r")
    );
    assert_eq!(next(&mut bob).await.0, System);

    let removed = seen(
        Leave,
        "slow",
        "r",
        "slow was removed from r: too far behind",
    );
    // Carol keeps up, reading each text before the next is sent; slow reads nothing.
    let mut carol_saw = Vec::new();
    for i in 0..10 {
        bob.send(text(&i.to_string())).unwrap();
        carol_saw.extend(until(&mut carol, "bob", &i.to_string()).await);
    }
    // Slow is removed by the second text (4 of 4, then one too many), and the removal
    // reaches bob over the bus as well.
    let mut want: Vec<Seen> = (0..10)
        .map(|i| seen(Text, "bob", "r", &i.to_string()))
        .collect();
    want.insert(2, removed.clone());
    assert_eq!(carol_saw, want);
    assert_eq!(next_past(&mut bob, &["slow", "carol"]).await, removed);
    assert_eq!((a.member_count("r"), b.member_count("r")), (1, 1));

    assert_eq!(
        ready(&mut slow),
        [
            seen(System, "system", "r", "Welcome to r, slow"),
            seen(Join, "carol", "r", "carol joined r"),
            seen(Join, "bob", "r", "bob joined r"),
            seen(Text, "bob", "r", "0"),
            seen(
                System,
                "system",
                "r",
                "You were removed from r: more than 4 unread messages"
            ),
        ]
    );
    assert_eq!(slow.recv().await, None);
    assert!(slow.send(text("late")).is_err());

    // The others go on, both ways.
    carol.send(text("still here")).unwrap();
    assert_eq!(next(&mut bob).await, seen(Text, "carol", "r", "still here"));
    bob.send(text("me too")).unwrap();
    assert_eq!(next(&mut carol).await, seen(Text, "bob", "r", "me too"));
}

#[tokio::test]
async fn a_remote_flood_that_removes_the_last_member_here_unsubscribes() {
    // Bob never reads: his hub's backlog is roomier, or he would be removed in turn.
    let (bus, a, b) = two_hubs(2, 64);
    let slow = join(&a, "slow", "r").await; // welcome = 1 of 2
    let bob = join(&b, "bob", "r").await; // "bob joined r" = 2 of 2
    for i in 0..3 {
        bob.send(text(&i.to_string())).unwrap(); // "0" removes slow, A's last member
    }
    subscribers(&bus, "chat:r", 1).await;
    assert_eq!(a.room_count(), 0, "A's room is gone");
    assert_eq!(b.member_count("r"), 1);
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_rejoin_hears_each_remote_message_once() {
    use ChatKind::*;
    let (_bus, a, b) = two_hubs(64, 64);
    let mut bob = join(&b, "bob", "rust").await;
    assert_eq!(next(&mut bob).await.0, System);
    for round in 0..50 {
        // Join, leave and join again at once: the first listener may still be stopping
        // (with its subscription) while the second starts.
        drop(a.join("alice", "rust").unwrap());
        let mut alice = a.join("alice", "rust").unwrap();
        assert!(within(alice.subscribed()).await);
        let end = format!("end {round}");
        bob.send(text(&round.to_string())).unwrap();
        bob.send(text(&end)).unwrap();
        let texts: Vec<Seen> = until(&mut alice, "bob", &end)
            .await
            .into_iter()
            .filter(|m| m.0 == Text)
            .collect();
        assert_eq!(
            texts,
            [
                seen(Text, "bob", "rust", &round.to_string()),
                seen(Text, "bob", "rust", &end)
            ],
            "round {round}"
        );
        drop(alice);
        // Bob hears the joins and leaves; keep his inbox short.
        while bob.recv().now_or_never().flatten().is_some() {}
    }
}

#[tokio::test]
async fn a_hub_without_a_bus_is_not_subscribed() {
    let hub = ChatHub::new(8);
    assert_eq!(hub.origin(), None);
    let alice = hub.join("alice", "rust").unwrap();
    assert!(!alice.subscribed().await);
}
