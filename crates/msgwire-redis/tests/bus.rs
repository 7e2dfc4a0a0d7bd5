//! RedisBus against a real redis-server (started per test on a free port).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use msgwire_redis::{RedisBus, RedisBusConfig, SetupError, ORIGIN_LEN};
use msgwire_services::bus::{Bus, BusError, Delivery, Subscription};
use redis::AsyncCommands;
use support::{eventually, raw, RedisServer};

fn bus(server: &RedisServer) -> RedisBus {
    RedisBus::new(RedisBusConfig::new(server.url())).unwrap()
}

/// Two buses on one Redis, as two processes, each connected.
async fn two(server: &RedisServer) -> (RedisBus, RedisBus) {
    let (a, b) = (bus(server), bus(server));
    assert!(a.ready(Duration::from_secs(10)).await);
    assert!(b.ready(Duration::from_secs(10)).await);
    (a, b)
}

fn p(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

async fn next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("nothing delivered within 10 s")
        .expect("the subscription ended")
}

/// Publishes `payload` on `bus` until it reaches `sub` (the first publishes after a
/// reconnection may be lost: Redis pub/sub is at most once), then drains `sub` up to
/// a final marker so that nothing of the retries stays queued. A message published
/// before (one whose PUBLISH timed out while Redis hung, say) may come first.
async fn publish_until_received(bus: &RedisBus, sub: &mut Subscription, topic: &str) {
    'probing: loop {
        let _ = bus.publish(topic, p("probe")).await;
        let wait = tokio::time::sleep(Duration::from_millis(200));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                delivery = sub.next() => match delivery {
                    Some(Delivery::Message(m)) if m == p("probe") => break 'probing,
                    Some(Delivery::Message(_earlier)) => {}
                    other => panic!("unexpected {other:?}"),
                },
                () = &mut wait => break,
            }
        }
    }
    bus.publish(topic, p("marker")).await.unwrap();
    loop {
        match next(sub).await {
            Delivery::Message(m) if m == p("marker") => return,
            Delivery::Message(m) if m == p("probe") => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn each_subscriber_of_each_process_gets_each_payload_once() {
    let server = RedisServer::start();
    let (a, b) = two(&server).await;
    let mut a1 = a.subscribe("events:7").await.unwrap();
    let mut a2 = a.subscribe("events:7").await.unwrap();
    let mut b1 = b.subscribe("events:7").await.unwrap();
    let mut other = b.subscribe("events:8").await.unwrap();

    a.publish("events:7", p("from a")).await.unwrap();
    b.publish("events:7", p("from b")).await.unwrap();
    // Redis orders a channel's messages: had A's own message come back to A's
    // subscribers, it would be between the two.
    for sub in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(next(sub).await, Delivery::Message(p("from a")));
        assert_eq!(next(sub).await, Delivery::Message(p("from b")));
    }
    // And nothing else after them: a last payload is the next item everywhere.
    b.publish("events:7", p("last")).await.unwrap();
    for sub in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(next(sub).await, Delivery::Message(p("last")));
    }
    b.publish("events:8", p("eight")).await.unwrap();
    assert_eq!(next(&mut other).await, Delivery::Message(p("eight")));

    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.published, sa.publish_errors), (1, 0));
    assert_eq!(
        sa.own_skipped, 1,
        "A's own message came back once and was skipped"
    );
    assert_eq!(sa.received, 2, "from b and last");
    assert_eq!(sb.own_skipped, 3);
    assert_eq!(sb.received, 1);
    a.check().await.unwrap();
}

#[tokio::test]
async fn the_last_local_subscriber_unsubscribes_the_channel() {
    let server = RedisServer::start();
    let (a, b) = two(&server).await;
    let mut r = raw(&server).await;
    let numsub = |r: &mut redis::aio::MultiplexedConnection| {
        let mut r = r.clone();
        async move {
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("chat:1")
                .query_async(&mut r)
                .await
                .unwrap();
            counts[0].1
        }
    };
    let b1 = b.subscribe("chat:1").await.unwrap();
    let b2 = b.subscribe("chat:1").await.unwrap();
    let mut a1 = a.subscribe("chat:1").await.unwrap();
    assert_eq!(numsub(&mut r).await, 2, "one connection per bus");
    assert_eq!(b.subscriber_count("chat:1"), 2);
    drop(b1);
    assert!(b.ready(Duration::from_secs(10)).await);
    assert_eq!(numsub(&mut r).await, 2, "b2 is still there");
    drop(b2);
    assert_eq!(b.subscriber_count("chat:1"), 0);
    assert!(b.ready(Duration::from_secs(10)).await);
    assert_eq!(numsub(&mut r).await, 1, "only A's");

    // A still receives from B, and B delivers nothing to anyone of its own.
    b.publish("chat:1", p("hi")).await.unwrap();
    assert_eq!(next(&mut a1).await, Delivery::Message(p("hi")));

    // Subscribing again subscribes the channel again.
    let mut b3 = b.subscribe("chat:1").await.unwrap();
    assert_eq!(numsub(&mut r).await, 2);
    a.publish("chat:1", p("again")).await.unwrap();
    assert_eq!(next(&mut b3).await, Delivery::Message(p("again")));
}

#[tokio::test]
async fn foreign_and_malformed_messages() {
    let server = RedisServer::start();
    let a = RedisBus::new(RedisBusConfig {
        channel_prefix: "app:".into(),
        ..RedisBusConfig::new(server.url())
    })
    .unwrap();
    assert!(a.ready(Duration::from_secs(10)).await);
    let mut sub = a.subscribe("t").await.unwrap();
    let mut r = raw(&server).await;
    // Shorter than an origin id: skipped.
    let _: i64 = r.publish("app:t", &b"short"[..]).await.unwrap();
    // Our own origin (a replay, say): skipped.
    let mut own = a.origin().to_vec();
    own.extend_from_slice(b"mine");
    let _: i64 = r.publish("app:t", own).await.unwrap();
    // Another origin: the payload after the 8 bytes, even an empty one.
    let _: i64 = r.publish("app:t", &b"12345678"[..]).await.unwrap();
    let _: i64 = r
        .publish("app:t", &b"12345678\x92\x01\x02"[..])
        .await
        .unwrap();
    assert_eq!(next(&mut sub).await, Delivery::Message(Bytes::new()));
    assert_eq!(
        next(&mut sub).await,
        Delivery::Message(Bytes::from_static(b"\x92\x01\x02"))
    );
    let stats = a.stats();
    assert_eq!(
        (stats.malformed, stats.own_skipped, stats.received),
        (1, 1, 2)
    );
    assert_eq!(ORIGIN_LEN, 8);

    // A Python peer publishing an envelope.
    let output = support::peer_programs::python_script(
        "py_redis_cache.py",
        &["publish", &server.port().to_string(), "app:t"],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "py_redis_cache.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1");
    assert_eq!(
        next(&mut sub).await,
        Delivery::Message(Bytes::from_static(b"\x81\xa4from\xa6python"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_then_back_without_new_instances() {
    let mut server = RedisServer::start();
    let (a, b) = two(&server).await;
    let mut a1 = a.subscribe("events:1").await.unwrap();
    let mut b1 = b.subscribe("events:1").await.unwrap();
    a.publish("events:1", p("before")).await.unwrap();
    assert_eq!(next(&mut a1).await, Delivery::Message(p("before")));
    assert_eq!(next(&mut b1).await, Delivery::Message(p("before")));

    server.kill();
    eventually("A sees the connection lost", || async { !a.is_connected() }).await;
    assert!(a.check().await.is_err());
    // Local delivery goes on; publish says Redis did not take it.
    eventually("publish reports Backend", || async {
        matches!(
            a.publish("events:1", p("down")).await,
            Err(BusError::Backend(_))
        )
    })
    .await;
    // Each try was delivered locally, once.
    let mut local = 0;
    while let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(0), a1.next()).await {
        assert_eq!(d, Delivery::Message(p("down")));
        local += 1;
    }
    assert!(local >= 1);
    // Subscribing while down does not hang and works locally.
    let mut a2 = tokio::time::timeout(Duration::from_secs(5), a.subscribe("events:2"))
        .await
        .expect("subscribe must not hang while Redis is down")
        .unwrap();
    let _ = a.publish("events:2", p("local")).await;
    assert_eq!(next(&mut a2).await, Delivery::Message(p("local")));

    server.restart();
    assert!(a.ready(Duration::from_secs(20)).await, "A reconnected");
    assert!(b.ready(Duration::from_secs(20)).await, "B reconnected");
    eventually("check passes again", || async { a.check().await.is_ok() }).await;
    // Cross-process delivery resumes on the subscriptions made before the restart …
    publish_until_received(&a, &mut b1, "events:1").await;
    // … and on the one made while Redis was down.
    publish_until_received(&b, &mut a2, "events:2").await;
    let mut b2 = b.subscribe("events:2").await.unwrap();
    // Each remote payload exactly once (A's own subscribers also got A's locally).
    a.publish("events:2", p("after")).await.unwrap();
    assert_eq!(next(&mut b2).await, Delivery::Message(p("after")));
    b.publish("events:2", p("last")).await.unwrap();
    assert_eq!(next(&mut a2).await, Delivery::Message(p("after")));
    assert_eq!(next(&mut a2).await, Delivery::Message(p("last")), "no echo");
    assert_eq!(next(&mut b2).await, Delivery::Message(p("last")), "no echo");
    assert!(a.stats().connections >= 2);
}

#[tokio::test]
async fn starts_while_redis_is_down() {
    let port = support::free_port();
    let bus = RedisBus::new(RedisBusConfig::new(format!("redis://127.0.0.1:{port}/"))).unwrap();
    assert!(!bus.is_connected());
    let mut sub = tokio::time::timeout(Duration::from_secs(5), bus.subscribe("t"))
        .await
        .expect("subscribe must not hang")
        .unwrap();
    assert!(matches!(
        bus.publish("t", p("x")).await,
        Err(BusError::Backend(_))
    ));
    assert_eq!(next(&mut sub).await, Delivery::Message(p("x")));
    assert!(bus.check().await.is_err());
}

#[tokio::test]
async fn subscriptions_end_when_the_bus_goes() {
    let server = RedisServer::start();
    let bus = bus(&server);
    let mut sub = bus.subscribe("t").await.unwrap();
    drop(bus);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn bad_configuration_is_a_clear_error() {
    let error = RedisBus::new(RedisBusConfig::new("nope://x")).unwrap_err();
    assert!(matches!(error, SetupError::InvalidUrl(_)), "{error:?}");
    let error = RedisBus::new(RedisBusConfig {
        reconnect_min: Duration::from_secs(5),
        reconnect_max: Duration::from_secs(1),
        ..RedisBusConfig::default()
    })
    .unwrap_err();
    assert!(matches!(error, SetupError::InvalidConfig(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_is_found_out_and_reconnected() {
    let server = RedisServer::start();
    let config = RedisBusConfig {
        timeout: Duration::from_millis(200),
        ping_interval: Duration::from_millis(100),
        ..RedisBusConfig::new(server.url())
    };
    let a = RedisBus::new(config.clone()).unwrap();
    let b = RedisBus::new(config).unwrap();
    assert!(a.ready(Duration::from_secs(10)).await && b.ready(Duration::from_secs(10)).await);
    let mut b1 = b.subscribe("t").await.unwrap();
    let mut a1 = a.subscribe("t").await.unwrap();
    server.pause();
    let publish = tokio::time::timeout(Duration::from_secs(10), a.publish("t", p("x")))
        .await
        .expect("publish hung");
    assert!(matches!(publish, Err(BusError::Backend(_))));
    assert_eq!(
        next(&mut a1).await,
        Delivery::Message(p("x")),
        "delivered locally"
    );
    eventually("the pings find the connection dead", || async {
        !b.is_connected()
    })
    .await;
    server.resume();
    assert!(b.ready(Duration::from_secs(20)).await);
    assert!(a.ready(Duration::from_secs(20)).await);
    // What was queued while paused may or may not arrive (at most once): drain up to
    // a marker.
    publish_until_received(&a, &mut b1, "t").await;
}

#[tokio::test]
async fn a_batch_reaches_every_process_in_order_in_one_pipeline() {
    let server = RedisServer::start();
    let (a, b) = two(&server).await;
    let mut on_a = a.subscribe("chat:r").await.unwrap();
    let mut on_b = b.subscribe("chat:r").await.unwrap();
    let mut other_b = b.subscribe("chat:s").await.unwrap();
    publish_until_received(&a, &mut on_b, "chat:r").await;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), on_a.next()).await {}
    // 15 on one topic, 5 on another: within the local ring (16 per topic), so that
    // this process's own subscriber does not lag while it is not reading.
    let batch: Vec<(String, Bytes)> = (0..20)
        .map(|i| {
            let topic = if i % 4 == 3 { "chat:s" } else { "chat:r" };
            (topic.to_owned(), Bytes::from(format!("m{i}")))
        })
        .collect();
    let published_before = a.stats().published;
    a.publish_all(batch.clone()).await.unwrap();
    assert_eq!(a.stats().published, published_before + 20);
    for (topic, payload) in &batch {
        if topic == "chat:r" {
            assert_eq!(next(&mut on_a).await, Delivery::Message(payload.clone()));
            assert_eq!(next(&mut on_b).await, Delivery::Message(payload.clone()));
        } else {
            assert_eq!(next(&mut other_b).await, Delivery::Message(payload.clone()));
        }
    }
    // Redis down: the batch still reaches this process's subscribers; the error says so.
    drop(server);
    let refused = a
        .publish_all(vec![("chat:r".to_owned(), p("local only"))])
        .await;
    assert!(matches!(refused, Err(BusError::Backend(_))), "{refused:?}");
    assert_eq!(next(&mut on_a).await, Delivery::Message(p("local only")));
}
