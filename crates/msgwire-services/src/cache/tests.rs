//! The cache's behaviour through the [`Cache`] interface, on paused time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{self, FutureExt};
use msgwire_wire::{Code, Limits, RawValue, RpcError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::*;

fn bytes(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn small(max_entries: usize) -> MemoryCache {
    MemoryCache::new(MemoryCacheConfig {
        default_ttl: Duration::from_secs(10),
        max_entries,
        max_bytes: 1 << 20,
    })
}

/// Yields until `done` holds, at most a bounded number of times.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the condition never held");
}

#[test]
fn keys_are_namespaced() {
    assert_eq!(key("users", 1).as_str(), "users:1");
    assert_eq!(Key::new("orders", "1001").to_string(), "orders:1001");
    assert_eq!(key("users", 1), Key::new("users", 1));
}

#[tokio::test(start_paused = true)]
async fn values_expire_after_their_ttl() -> Result<(), CacheError> {
    let cache = small(10);
    cache.set(&key("a", 1), bytes("default"), None).await?;
    cache
        .set(&key("a", 2), bytes("short"), Some(Duration::from_secs(2)))
        .await?;

    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(cache.get(&key("a", 2)).await?, None);
    assert_eq!(cache.get(&key("a", 1)).await?, Some(bytes("default")));

    tokio::time::advance(Duration::from_secs(8)).await;
    assert_eq!(cache.get(&key("a", 1)).await?, None);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.expired), (1, 2, 2));
    assert_eq!((stats.entries, stats.bytes), (0, 0));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_zero_ttl_stores_nothing() -> Result<(), CacheError> {
    let cache = small(10);
    cache
        .set(&key("a", 1), bytes("x"), Some(Duration::ZERO))
        .await?;
    assert_eq!(cache.get(&key("a", 1)).await?, None);
    assert_eq!(cache.stats().entries, 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_size_bound_evicts_the_least_recently_used() -> Result<(), CacheError> {
    let cache = small(3);
    for id in 1..=3 {
        cache.set(&key("n", id), bytes("v"), None).await?;
    }
    assert!(cache.get(&key("n", 1)).await?.is_some());
    for id in 4..=10 {
        cache.set(&key("n", id), bytes("v"), None).await?;
        assert!(cache.stats().entries <= 3);
    }
    assert_eq!(cache.stats().evictions, 7);
    for id in 8..=10 {
        assert!(cache.get(&key("n", id)).await?.is_some(), "n:{id} kept");
    }
    assert!(cache.get(&key("n", 1)).await?.is_none());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn delete_removes_and_says_whether_it_did() -> Result<(), CacheError> {
    let cache = small(10);
    cache.set(&key("a", 1), bytes("x"), None).await?;
    assert!(cache.delete(&key("a", 1)).await?);
    assert!(!cache.delete(&key("a", 1)).await?);
    assert_eq!(cache.get(&key("a", 1)).await?, None);

    cache
        .set(&key("a", 2), bytes("x"), Some(Duration::from_secs(1)))
        .await?;
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        !cache.delete(&key("a", 2)).await?,
        "an expired value is not live"
    );
    assert_eq!(cache.stats().entries, 0);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    tags: Vec<String>,
}

#[tokio::test]
async fn typed_values_round_trip_as_named_maps() -> Result<(), CacheError> {
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::default());
    let alice = Profile {
        id: 1,
        name: "Alice".into(),
        tags: vec!["admin".into()],
    };
    cache.set_typed(&key("profiles", 1), &alice, None).await?;
    let back: Option<Profile> = cache.get_typed(&key("profiles", 1)).await?;
    assert_eq!(back.as_ref(), Some(&alice));

    // Stored as a map with the field names, as the rest of msgwire writes structs.
    let raw = cache.get(&key("profiles", 1)).await?.unwrap_or_default();
    let raw = RawValue::from_bytes(raw, &Limits::default()).unwrap();
    let name = raw.get("name").map(|v| v.deserialize::<String>().unwrap());
    assert_eq!(name.as_deref(), Some("Alice"));

    let wrong: Result<Option<u64>, _> = cache.get_typed(&key("profiles", 1)).await;
    assert!(matches!(wrong, Err(CacheError::Decode(_))));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_callers_compute_once() {
    let cache = MemoryCache::default();
    let computed = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let mut callers = Vec::new();
    for _ in 0..50 {
        let (cache, computed, release) =
            (cache.clone(), Arc::clone(&computed), Arc::clone(&release));
        callers.push(tokio::spawn(async move {
            let compute = async move {
                computed.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                Ok::<_, CacheError>(Profile {
                    id: 7,
                    name: "Grace".into(),
                    tags: vec![],
                })
            };
            cache
                .get_or_set_typed(&key("profiles", 7), None, compute)
                .await
        }));
    }
    // Every caller has looked and found nothing before the computation ends.
    until(|| cache.stats().misses == 50).await;
    until(|| computed.load(Ordering::SeqCst) == 1).await;
    release.notify_waiters();

    for caller in callers {
        let profile = caller.await.unwrap().unwrap();
        assert_eq!(profile.name, "Grace");
    }
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!(
        (stats.computations, stats.coalesced, stats.entries),
        (1, 49, 1)
    );

    // And now it is a hit.
    let again: Profile = cache
        .get_or_set_typed(&key("profiles", 7), None, async {
            Err::<Profile, _>(RpcError::internal("not called"))
        })
        .await
        .unwrap();
    assert_eq!(again.id, 7);
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_computation_reaches_every_waiter_and_is_not_cached() {
    let cache = MemoryCache::default();
    let release = Arc::new(Notify::new());
    let mut callers = Vec::new();
    for _ in 0..5 {
        let (cache, release) = (cache.clone(), Arc::clone(&release));
        callers.push(tokio::spawn(async move {
            let compute = async move {
                release.notified().await;
                Err::<u64, _>(RpcError::not_found("user 9 not found"))
            };
            cache
                .get_or_set_typed(&key("users", 9), None, compute)
                .await
        }));
    }
    until(|| cache.stats().misses == 5).await;
    release.notify_waiters();
    for caller in callers {
        let error = caller.await.unwrap().unwrap_err();
        let rpc = RpcError::from(error);
        assert_eq!(
            (rpc.code, rpc.message.as_str()),
            (Code::NotFound, "user 9 not found")
        );
    }
    assert_eq!(cache.stats().computations, 1);
    assert_eq!(cache.stats().entries, 0);

    let later: u64 = cache
        .get_or_set_typed(&key("users", 9), None, async { Ok::<_, CacheError>(9) })
        .await
        .unwrap();
    assert_eq!(later, 9);
    assert_eq!(cache.stats().computations, 2);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_computes_when_the_computing_caller_is_dropped() {
    let cache = MemoryCache::default();
    let first = {
        let cache = cache.clone();
        tokio::spawn(async move {
            let never = future::pending::<Result<Bytes, CacheError>>().boxed();
            cache.get_or_set(&key("k", 1), None, never).await
        })
    };
    until(|| cache.stats().computations == 1).await;
    let second = {
        let cache = cache.clone();
        tokio::spawn(async move {
            let compute = future::ready(Ok(bytes("from the second"))).boxed();
            cache.get_or_set(&key("k", 1), None, compute).await
        })
    };
    until(|| cache.stats().coalesced == 1).await;

    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let value = second.await.unwrap().unwrap();
    assert_eq!(value, bytes("from the second"));
    assert_eq!(cache.stats().computations, 2);
    assert_eq!(cache.get(&key("k", 1)).await.unwrap(), Some(value));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_computes_when_the_computation_panics() {
    let cache = MemoryCache::default();
    let release = Arc::new(Notify::new());
    let first = {
        let (cache, release) = (cache.clone(), Arc::clone(&release));
        tokio::spawn(async move {
            let compute = async move {
                release.notified().await;
                panic!("the computation broke");
            };
            cache.get_or_set(&key("k", 2), None, compute.boxed()).await
        })
    };
    until(|| cache.stats().computations == 1).await;
    let second = {
        let cache = cache.clone();
        tokio::spawn(async move {
            let compute = future::ready(Ok(bytes("ok"))).boxed();
            cache.get_or_set(&key("k", 2), None, compute).await
        })
    };
    until(|| cache.stats().coalesced == 1).await;
    release.notify_waiters();
    assert!(first.await.unwrap_err().is_panic());
    assert_eq!(second.await.unwrap().unwrap(), bytes("ok"));
}

#[tokio::test]
async fn errors_map_to_rpc_codes() {
    let compute = RpcError::from(CacheError::compute(std::io::Error::other("disk")));
    assert_eq!(compute.code, Code::Internal);
    let backend = RpcError::from(CacheError::backend("connection refused"));
    assert_eq!(backend.code, Code::Unavailable);
    assert!(backend.message.contains("connection refused"));
    assert!(MemoryCache::default().check().await.is_ok());
}
