//! RedisCache against a real redis-server (started per test on a free port).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use msgwire_redis::{RedisCache, RedisCacheConfig, SetupError};
use msgwire_services::cache::{encode, key, Cache, CacheError, CacheExt};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use support::{eventually, raw, RedisServer};

fn cache(server: &RedisServer) -> RedisCache {
    RedisCache::new(RedisCacheConfig::new(server.url())).unwrap()
}

#[tokio::test]
async fn set_get_delete_and_expiry() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let k = key("users", 1);
    assert_eq!(cache.get(&k).await.unwrap(), None);
    cache
        .set(&k, Bytes::from_static(b"\x81\xa2id\x01"), None)
        .await
        .unwrap();
    assert_eq!(
        cache.get(&k).await.unwrap(),
        Some(Bytes::from_static(b"\x81\xa2id\x01"))
    );
    // Stored under the key exactly, with the default TTL (60 s) in PX.
    let mut r = raw(&server).await;
    let stored: Vec<u8> = r.get("users:1").await.unwrap();
    assert_eq!(stored, b"\x81\xa2id\x01");
    let ttl: i64 = r.pttl("users:1").await.unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "ttl {ttl}");

    assert!(cache.delete(&k).await.unwrap());
    assert!(!cache.delete(&k).await.unwrap(), "already gone");
    assert_eq!(cache.get(&k).await.unwrap(), None);

    // A short TTL expires.
    let short = key("users", 2);
    cache
        .set(
            &short,
            Bytes::from_static(b"\x02"),
            Some(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    eventually("the 50 ms value expires", || async {
        cache.get(&short).await.unwrap().is_none()
    })
    .await;

    // A zero TTL stores nothing (and replaces what was there).
    cache
        .set(&k, Bytes::from_static(b"\x03"), None)
        .await
        .unwrap();
    cache
        .set(&k, Bytes::from_static(b"\x04"), Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(cache.get(&k).await.unwrap(), None);

    let stats = cache.stats();
    assert!(stats.hits >= 1 && stats.misses >= 3, "{stats:?}");
    cache.check().await.unwrap();
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u32,
    name: String,
}

#[tokio::test]
async fn key_prefix_namespaces_keys() {
    let server = RedisServer::start();
    let plain = cache(&server);
    let app = RedisCache::new(RedisCacheConfig {
        key_prefix: "app1:".into(),
        ..RedisCacheConfig::new(server.url())
    })
    .unwrap();
    let k = key("users", 7);
    let ada = User {
        id: 7,
        name: "Ada".into(),
    };
    app.set_typed(&k, &ada, None).await.unwrap();
    assert_eq!(app.get_typed::<User>(&k).await.unwrap(), Some(ada.clone()));
    assert_eq!(app.redis_key(&k), "app1:users:7");
    assert_eq!(plain.get(&k).await.unwrap(), None, "another namespace");

    let mut r = raw(&server).await;
    let stored: Vec<u8> = r.get("app1:users:7").await.unwrap();
    assert_eq!(stored, encode(&ada).unwrap().as_ref(), "MessagePack, a map");
    let exists: bool = r.exists("users:7").await.unwrap();
    assert!(!exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_computes_once_across_two_instances() {
    let server = RedisServer::start();
    // Two caches with their own connection managers, as two processes would have.
    let caches = [cache(&server), cache(&server)];
    let computed = Arc::new(AtomicUsize::new(0));
    let k = key("reports", 42);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let cache = caches[i % 2].clone();
        let computed = Arc::clone(&computed);
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_set(
                    &k,
                    Some(Duration::from_secs(60)),
                    async move {
                        computed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok(Bytes::from_static(b"\xa6report"))
                    }
                    .boxed(),
                )
                .await
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap(),
            Bytes::from_static(b"\xa6report")
        );
    }
    assert_eq!(computed.load(Ordering::SeqCst), 1, "one computation in all");
    let total: u64 = caches.iter().map(|c| c.stats().computations).sum();
    assert_eq!(total, 1);
    let lookups: u64 = caches
        .iter()
        .map(|c| c.stats().hits + c.stats().misses)
        .sum();
    assert_eq!(lookups, 50, "each call counted once");
    let lock_waits: u64 = caches.iter().map(|c| c.redis_stats().lock_waits).sum();
    // At most the other process's leader waited for the lock (it may instead have found
    // the value); its other callers waited for it, locally.
    assert!(lock_waits <= 1);
    let mut r = raw(&server).await;
    let stored: Vec<u8> = r.get("reports:42").await.unwrap();
    assert_eq!(stored, b"\xa6report");
    let lock: bool = r.exists("msgwire:lock:reports:42").await.unwrap();
    assert!(!lock, "the lock is released");
    // A later call is a hit and computes nothing.
    let again = caches[1]
        .get_or_set(&k, None, async { Ok(Bytes::from_static(b"\xc0")) }.boxed())
        .await
        .unwrap();
    assert_eq!(again, Bytes::from_static(b"\xa6report"));
    assert_eq!(computed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_computation_stores_nothing_and_releases_the_lock() {
    let server = RedisServer::start();
    let caches = [cache(&server), cache(&server)];
    let attempts = Arc::new(AtomicUsize::new(0));
    let k = key("flaky", 1);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let cache = caches[i % 2].clone();
        let attempts = Arc::clone(&attempts);
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_set_typed::<String, _, _>(&k, None, async move {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err::<String, _>(std::io::Error::other("the database is away"))
                })
                .await
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            Err(CacheError::Compute(e)) => assert_eq!(e.to_string(), "the database is away"),
            other => panic!("expected the computation's error, got {other:?}"),
        }
    }
    // Every caller got the error, from its own computation or one it waited for.
    let attempts = attempts.load(Ordering::SeqCst);
    assert!((1..=20).contains(&attempts), "{attempts}");
    let mut r = raw(&server).await;
    let exists: bool = r.exists("flaky:1").await.unwrap();
    assert!(!exists, "nothing stored");
    let lock: bool = r.exists("msgwire:lock:flaky:1").await.unwrap();
    assert!(!lock, "the lock is released");

    // The next call computes (successfully now) and stores.
    let value: String = caches[0]
        .get_or_set_typed(&k, None, async { Ok::<_, std::io::Error>("ok".to_owned()) })
        .await
        .unwrap();
    assert_eq!(value, "ok");
    assert_eq!(
        caches[1].get_typed::<String>(&k).await.unwrap().as_deref(),
        Some("ok")
    );
}

#[tokio::test]
async fn a_lock_held_elsewhere_is_waited_for_then_computed_past_the_deadline() {
    let server = RedisServer::start();
    let cache = RedisCache::new(RedisCacheConfig {
        wait_deadline: Duration::from_millis(100),
        ..RedisCacheConfig::new(server.url())
    })
    .unwrap();
    let mut r = raw(&server).await;
    // Another process holds the lock and never finishes.
    let _: () = r
        .set_ex("msgwire:lock:slow:1", "someone-else", 60)
        .await
        .unwrap();
    let value = cache
        .get_or_set(
            &key("slow", 1),
            None,
            async { Ok(Bytes::from_static(b"\x01")) }.boxed(),
        )
        .await
        .unwrap();
    assert_eq!(value, Bytes::from_static(b"\x01"));
    let stats = cache.redis_stats();
    assert_eq!((stats.lock_waits, stats.lock_timeouts), (1, 1));
    let holder: String = r.get("msgwire:lock:slow:1").await.unwrap();
    assert_eq!(holder, "someone-else", "not ours to release");
    let stored: Vec<u8> = r.get("slow:1").await.unwrap();
    assert_eq!(stored, b"\x01");

    // A lock that goes away without a value is taken: the waiter computes at once.
    let _: () = r
        .set_ex("msgwire:lock:slow:2", "someone-else", 60)
        .await
        .unwrap();
    let patient = RedisCache::new(RedisCacheConfig {
        wait_deadline: Duration::from_secs(3600),
        ..RedisCacheConfig::new(server.url())
    })
    .unwrap();
    let waiting = tokio::spawn({
        let patient = patient.clone();
        async move {
            patient
                .get_or_set(
                    &key("slow", 2),
                    None,
                    async { Ok(Bytes::from_static(b"\x02")) }.boxed(),
                )
                .await
        }
    });
    eventually("the waiter is polling", || async {
        patient.redis_stats().lock_waits == 1
    })
    .await;
    let _: () = r.del("msgwire:lock:slow:2").await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), Bytes::from_static(b"\x02"));
    assert_eq!(patient.redis_stats().lock_timeouts, 0);
}

#[tokio::test]
async fn a_dropped_computation_releases_its_lock() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let started = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn({
        let cache = cache.clone();
        let started = Arc::clone(&started);
        async move {
            cache
                .get_or_set(
                    &key("abandoned", 1),
                    None,
                    async move {
                        started.notify_one();
                        futures::future::pending::<()>().await;
                        Ok(Bytes::new())
                    }
                    .boxed(),
                )
                .await
        }
    });
    started.notified().await;
    let mut r = raw(&server).await;
    let held: bool = r.exists("msgwire:lock:abandoned:1").await.unwrap();
    assert!(held);
    task.abort();
    let _ = task.await;
    eventually("the lock is released", || {
        let mut r = r.clone();
        async move {
            !r.exists::<_, bool>("msgwire:lock:abandoned:1")
                .await
                .unwrap()
        }
    })
    .await;
}

#[tokio::test]
async fn python_reads_and_writes_the_same_values() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let ada = User {
        id: 1,
        name: "Ada".into(),
    };
    cache
        .set_typed(&key("users", 1), &ada, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let port = server.port().to_string();
    let output = support::peer_programs::python_script(
        "py_redis_cache.py",
        &["cache", &port, "users:1", "users:2"],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "py_redis_cache.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["value"], serde_json::json!({"id": 1, "name": "Ada"}));
    let ttl = seen["ttl_ms"].as_i64().unwrap();
    assert!(ttl > 0 && ttl <= 30_000, "{ttl}");

    #[derive(Debug, PartialEq, Deserialize)]
    struct FromPython {
        from: String,
        n: Vec<u8>,
        #[serde(with = "serde_bytes_compat")]
        blob: Vec<u8>,
    }
    let theirs: FromPython = cache.get_typed(&key("users", 2)).await.unwrap().unwrap();
    assert_eq!(
        theirs,
        FromPython {
            from: "python".into(),
            n: vec![1, 2, 3],
            blob: vec![0, 0xff],
        }
    );
}

/// MessagePack bin as `Vec<u8>` without the serde_bytes crate.
mod serde_bytes_compat {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bin;
        impl<'de> serde::de::Visitor<'de> for Bin {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(Bin)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_then_back_without_new_instances() {
    let mut server = RedisServer::start();
    let cache = cache(&server);
    let k = key("users", 9);
    cache
        .set(&k, Bytes::from_static(b"\x09"), None)
        .await
        .unwrap();
    cache.check().await.unwrap();

    server.kill();
    // get/set/delete fail with a backend error; check fails.
    eventually("get fails with Backend", || async {
        matches!(cache.get(&k).await, Err(CacheError::Backend(_)))
    })
    .await;
    assert!(matches!(
        cache.set(&k, Bytes::from_static(b"\x01"), None).await,
        Err(CacheError::Backend(_))
    ));
    assert!(matches!(
        cache.delete(&k).await,
        Err(CacheError::Backend(_))
    ));
    assert!(matches!(cache.check().await, Err(CacheError::Backend(_))));
    // get_or_set computes instead, for all its callers, each time.
    for _ in 0..2 {
        let value = cache
            .get_or_set(&k, None, async { Ok(Bytes::from_static(b"\x0a")) }.boxed())
            .await
            .unwrap();
        assert_eq!(value, Bytes::from_static(b"\x0a"));
    }
    let stats = cache.redis_stats();
    assert!(stats.fallbacks >= 2, "{stats:?}");
    assert!(stats.backend_errors >= 5, "{stats:?}");

    server.restart();
    eventually("check passes again", || async {
        cache.check().await.is_ok()
    })
    .await;
    assert_eq!(cache.get(&k).await.unwrap(), None, "a new, empty server");
    cache
        .set(&k, Bytes::from_static(b"\x0b"), None)
        .await
        .unwrap();
    assert_eq!(
        cache.get(&k).await.unwrap(),
        Some(Bytes::from_static(b"\x0b"))
    );
    let computed = cache
        .get_or_set(
            &key("users", 10),
            None,
            async { Ok(Bytes::from_static(b"\x0c")) }.boxed(),
        )
        .await
        .unwrap();
    assert_eq!(computed, Bytes::from_static(b"\x0c"));
    let mut r = raw(&server).await;
    let stored: Vec<u8> = r.get("users:10").await.unwrap();
    assert_eq!(stored, b"\x0c", "stored again: the lock protocol works");
}

#[tokio::test]
async fn starts_while_redis_is_down_and_serves_once_it_is_up() {
    let port = support::free_port();
    let cache =
        RedisCache::new(RedisCacheConfig::new(format!("redis://127.0.0.1:{port}/"))).unwrap();
    assert!(matches!(cache.check().await, Err(CacheError::Backend(_))));
    assert!(matches!(
        cache.get(&key("a", 1)).await,
        Err(CacheError::Backend(_))
    ));
    let value = cache
        .get_or_set(
            &key("a", 1),
            None,
            async { Ok(Bytes::from_static(b"\x01")) }.boxed(),
        )
        .await
        .unwrap();
    assert_eq!(value, Bytes::from_static(b"\x01"));
    assert_eq!(cache.redis_stats().fallbacks, 1);
}

#[tokio::test]
async fn a_server_that_appears_later_is_used() {
    let mut server = RedisServer::start();
    server.kill();
    let cache = cache(&server);
    assert!(cache.check().await.is_err());
    server.restart();
    eventually("check passes", || async { cache.check().await.is_ok() }).await;
    cache
        .set(&key("late", 1), Bytes::from_static(b"\x01"), None)
        .await
        .unwrap();
    assert_eq!(
        cache.get(&key("late", 1)).await.unwrap(),
        Some(Bytes::from_static(b"\x01"))
    );
}

#[tokio::test]
async fn bad_configuration_is_a_clear_error() {
    let error = RedisCache::new(RedisCacheConfig::new("http://not-redis")).unwrap_err();
    assert!(matches!(error, SetupError::InvalidUrl(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("invalid Redis URL"),
        "{error}"
    );
    let error = RedisCache::new(RedisCacheConfig {
        timeout: Duration::ZERO,
        ..RedisCacheConfig::default()
    })
    .unwrap_err();
    assert!(matches!(error, SetupError::InvalidConfig(_)), "{error:?}");
}

#[test]
fn outside_a_runtime_is_a_clear_error() {
    let error = RedisCache::new(RedisCacheConfig::default()).unwrap_err();
    assert!(matches!(error, SetupError::NoRuntime), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_is_timed_out_not_waited_for() {
    let server = RedisServer::start();
    let cache = RedisCache::new(RedisCacheConfig {
        timeout: Duration::from_millis(200),
        ..RedisCacheConfig::new(server.url())
    })
    .unwrap();
    let k = key("hung", 1);
    cache
        .set(&k, Bytes::from_static(b"\x01"), None)
        .await
        .unwrap();
    server.pause();
    // Bounded by the 200 ms timeout; the outer 10 s only turns a hang into a failure.
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(10), cache.get(&k))
            .await
            .expect("get hung"),
        Err(CacheError::Backend(_))
    ));
    assert!(tokio::time::timeout(Duration::from_secs(10), cache.check())
        .await
        .expect("check hung")
        .is_err());
    let computed = tokio::time::timeout(
        Duration::from_secs(10),
        cache.get_or_set(
            &key("hung", 2),
            None,
            async { Ok(Bytes::from_static(b"\x02")) }.boxed(),
        ),
    )
    .await
    .expect("get_or_set hung")
    .unwrap();
    assert_eq!(computed, Bytes::from_static(b"\x02"));
    server.resume();
    eventually("answers again", || async {
        matches!(cache.get(&k).await, Ok(Some(v)) if v == Bytes::from_static(b"\x01"))
    })
    .await;
}
