//! `getUser` through the RPC router reads through the services' cache, and the stream
//! methods are the ones named in `STREAM_METHODS`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::IntoFuture;
use std::sync::Arc;

use common::{within, TestServer};
use msgwire_rpc::{Client, Code, Dialect, Server};
use msgwire_services::cache::{key, Cache, CacheExt, MemoryCache};
use msgwire_services::users::User;
use msgwire_services::{Services, ServicesConfig, STREAM_METHODS};
use tokio::net::TcpListener;

#[tokio::test]
async fn get_user_hits_the_cache_the_second_time() {
    let server = TestServer::start(ServicesConfig::default()).await;
    let client = server.client(Dialect::MsgpackRpc).await;
    let cache = server.services.cache();

    let first: User = within(client.call_typed("getUser", &(1,))).await.unwrap();
    assert_eq!(first.name, "Alice");
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (0, 1, 1));

    let second: User = within(client.call_typed("getUser", &(1,))).await.unwrap();
    assert_eq!(second, first);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.computations), (1, 1, 1));

    // The cached value is the user, under users:1.
    let stored: Option<User> = cache.get_typed(&key("users", 1)).await.unwrap();
    assert_eq!(stored, Some(first));
}

#[tokio::test]
async fn not_found_is_answered_and_not_cached() {
    let server = TestServer::start(ServicesConfig::default()).await;
    let client = server.client(Dialect::FramedMap).await;
    for _ in 0..2 {
        let error = within(client.call_typed::<_, User>("getUser", &(99,)))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::NotFound);
    }
    let stats = server.services.cache().stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.computations, stats.entries),
        (0, 2, 2, 0)
    );
}

#[tokio::test]
async fn a_cache_given_to_the_services_is_the_one_read() {
    let shared = Arc::new(MemoryCache::default());
    let stale = User {
        id: 2,
        name: "Robert".into(),
        role: "editor".into(),
        email: "bob@example.com".into(),
    };
    shared
        .set_typed(&key("users", 2), &stale, None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = Services::new(ServicesConfig {
        data_dir: dir.path().into(),
        ..ServicesConfig::default()
    })
    .unwrap()
    .with_cache(shared.clone());
    assert!(Arc::ptr_eq(
        services.cache(),
        &(shared.clone() as Arc<dyn Cache>)
    ));

    let server = Server::builder().build(services.router()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve_tcp(listener).into_future());
    let client = Client::connect_tcp(addr, Dialect::FramedBinary)
        .await
        .unwrap();
    let answered: User = within(client.call_typed("getUser", &(2,))).await.unwrap();
    assert_eq!(answered, stale, "answered from the cache it was given");
    assert_eq!(shared.stats().hits, 1);
}

#[test]
fn stream_methods_are_registered_and_the_unary_ones_are_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::new(ServicesConfig {
        data_dir: dir.path().into(),
        ..ServicesConfig::default()
    })
    .unwrap();
    let router = services.router();
    for method in STREAM_METHODS {
        assert!(router.has_method(method), "{method} is served");
    }
    for unary in ["add", "getUser", "fileInfo", "publishEvent"] {
        assert!(!STREAM_METHODS.contains(&unary));
    }
}
