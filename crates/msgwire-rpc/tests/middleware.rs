//! tower middleware around the router, and the router as a plain tower service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use msgwire_rpc::{
    CallError, Client, Code, Context, Dialect, RawValue, RpcError, RpcRequest, RpcService, Server,
    Value,
};
use tower::limit::ConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower::{Layer, ServiceExt};

#[tokio::test]
async fn the_router_is_a_tower_service() {
    let (probe, _events) = Probe::new();
    let router = test_router(&probe);
    let request = RpcRequest::call(
        "add",
        Value::Array(vec![Value::from(2), Value::from(3)]).into(),
        Context::detached(),
    );
    assert_eq!(
        router.clone().oneshot(request).await,
        Ok(RawValue::from(Value::from(5)))
    );
    let request = RpcRequest::call("nope", RawValue::empty_array(), Context::detached());
    let err = router.oneshot(request).await.unwrap_err();
    assert_eq!(err.code, Code::Unimplemented);
}

#[tokio::test]
async fn a_tower_timeout_layer_answers_deadline_exceeded() {
    let (probe, mut events) = Probe::new();
    let server = Server::builder()
        .layer(TimeoutLayer::new(Duration::from_millis(50)))
        .build(test_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;
    let client = Client::connect_tcp(addr, Dialect::MsgpackRpc)
        .await
        .unwrap();
    let err = within(client.call("hold", vec![Value::from(1)]))
        .await
        .unwrap_err();
    // The server answered: this is its error, not the client's own deadline.
    assert!(matches!(err, CallError::Rpc(_)), "{err:?}");
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(next_event(&mut events).await, "entered:1");
    assert_eq!(next_event(&mut events).await, "dropped:1");
    // Fast calls pass through.
    let sum = client
        .call("add", vec![Value::from(1), Value::from(2)])
        .await
        .unwrap();
    assert_eq!(sum, Value::from(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_concurrency_limit_layer_runs_one_handler_at_a_time() {
    let (probe, mut events) = Probe::new();
    let server = Server::builder()
        .layer(ConcurrencyLimitLayer::new(1))
        .build(test_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;
    let client = Client::connect_tcp(addr, Dialect::FramedMap).await.unwrap();
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call("wait", vec![Value::from(1)]).await }
    });
    assert_eq!(next_event(&mut events).await, "entered:1");
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.call("wait", vec![Value::from(2)]).await }
    });
    // The second waits for the limit, not for a gate: it has not entered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(events.try_recv().is_err());
    probe.open(1);
    assert_eq!(next_event(&mut events).await, "dropped:1");
    assert_eq!(next_event(&mut events).await, "entered:2");
    probe.open(2);
    assert_eq!(within(first).await.unwrap().unwrap(), Value::from(1));
    assert_eq!(within(second).await.unwrap().unwrap(), Value::from(2));
}

/// A hand-written layer: counts requests, and rejects a method by name with its own
/// error, which reaches the client unchanged.
#[derive(Clone)]
struct Guard {
    seen: Arc<AtomicUsize>,
}

impl Layer<RpcService> for Guard {
    type Service = RpcService;

    fn layer(&self, inner: RpcService) -> Self::Service {
        let seen = Arc::clone(&self.seen);
        let service = tower::service_fn(move |request: RpcRequest| {
            seen.fetch_add(1, Ordering::SeqCst);
            let inner = inner.clone();
            async move {
                if request.method() == "forbidden" {
                    return Err(RpcError::new(Code::PermissionDenied, "not for you"));
                }
                inner.oneshot(request).await
            }
        });
        tower::util::BoxCloneSyncService::new(service)
    }
}

#[tokio::test]
async fn custom_layers_see_every_request_and_their_errors_reach_the_client() {
    let (probe, _events) = Probe::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .layer(Guard {
            seen: Arc::clone(&seen),
        })
        .layer(TimeoutLayer::new(Duration::from_secs(30)))
        .build(test_router(&probe))
        .unwrap();
    let addr = serve_tcp(server).await;
    let client = Client::connect_tcp(addr, Dialect::FramedBinary)
        .await
        .unwrap();
    let err = client
        .call("forbidden", Vec::<Value>::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.rpc_error(),
        Some(&RpcError::new(Code::PermissionDenied, "not for you"))
    );
    let sum = client
        .call("add", vec![Value::from(1), Value::from(2)])
        .await
        .unwrap();
    assert_eq!(sum, Value::from(3));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}
