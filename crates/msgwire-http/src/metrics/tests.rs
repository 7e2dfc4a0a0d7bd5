//! Metrics counted through a real server, client and listener, read from the rendered
//! text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use msgwire_rpc::{
    CallOptions, Client, Context, Dialect, Router, RpcError, Server, StreamSender, Value,
};
use msgwire_services::cache::{key, Cache, CacheExt, MemoryCache};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::*;

/// An upper bound so that a broken test fails instead of hanging; never a timing claim.
const LIMIT: Duration = Duration::from_secs(30);

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test hung (gave up after the upper bound)")
}

/// Waits until `done` holds, polling; fails the test after [`LIMIT`].
async fn until(mut done: impl FnMut() -> bool) {
    within(async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[derive(Deserialize)]
struct Pair {
    a: i64,
    b: i64,
}

/// `add`, `find` (NOT_FOUND unless 1), `countdown` (a server stream that waits for a
/// permit before it ends), `hang` (never answers), `log` (a notification).
fn router(gate: Arc<Semaphore>) -> Router {
    Router::new()
        .method("add", |p: Pair| async move { Ok::<_, RpcError>(p.a + p.b) })
        .method("find", |id: u64| async move {
            match id {
                1 => Ok("one".to_owned()),
                _ => Err(RpcError::not_found(format!("{id} not found"))),
            }
        })
        .server_stream_with(
            "countdown",
            move |_ctx: Context, from: u32, mut out: StreamSender<u32>| {
                let gate = Arc::clone(&gate);
                async move {
                    for n in (1..=from).rev() {
                        out.send(&n).await?;
                    }
                    let _permit = gate.acquire().await;
                    Ok::<_, RpcError>("liftoff")
                }
            },
        )
        .method("hang", |(): ()| async {
            futures::future::pending::<Result<(), RpcError>>().await
        })
        .notification("log", |_line: String| async {})
}

async fn serve(metrics: &Metrics, gate: Arc<Semaphore>) -> SocketAddr {
    let server = Server::builder()
        .layer(metrics.layer())
        .build(router(gate))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counted = metrics.listener(listener, Transport::Tcp);
    tokio::spawn(server.serve(counted).into_future());
    addr
}

/// The value of the sample line `series` (name and labels exactly), if rendered.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

/// The `le` labels of `name`'s buckets with the labels `labels` before `le`.
fn buckets(text: &str, name: &str, labels: &str) -> Vec<String> {
    let prefix = format!("{name}_bucket{{{labels}le=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn counts_calls_streams_and_connections_of_a_server() {
    let cache = Arc::new(MemoryCache::default());
    let metrics = Metrics::new(&["countdown"], Some(cache.clone() as Arc<dyn Cache>));
    let gate = Arc::new(Semaphore::new(0));
    let addr = serve(&metrics, Arc::clone(&gate)).await;
    let client = within(Client::connect_tcp(addr, Dialect::MsgpackRpc))
        .await
        .unwrap();

    for (a, b) in [(1, 2), (3, 4), (5, 6)] {
        let sum: i64 = within(client.call_typed("add", &(a, b))).await.unwrap();
        assert_eq!(sum, a + b);
    }
    let one: String = within(client.call_typed("find", &(1,))).await.unwrap();
    assert_eq!(one, "one");
    for id in [2, 3] {
        let error = within(client.call_typed::<_, String>("find", &(id,)))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::NotFound);
    }
    let error = within(client.call("nope", Vec::<Value>::new()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
    assert_eq!(metrics.open_connections()[0], (Transport::Tcp, 1));

    // A stream is open while its call runs.
    let mut items = within(client.server_stream::<_, u32>("countdown", &(2,)))
        .await
        .unwrap();
    assert_eq!(within(items.next()).await.unwrap().unwrap(), 2);
    assert_eq!(metrics.streams_open(), 1);
    assert!(metrics.render().contains("\nmsgwire_streams_open 1\n"));
    gate.add_permits(1);
    assert_eq!(within(items.next()).await.unwrap().unwrap(), 1);
    assert!(within(items.next()).await.is_none());
    assert_eq!(items.result_typed::<String>().unwrap().unwrap(), "liftoff");
    until(|| metrics.streams_open() == 0).await;

    cache
        .set_typed(&key("users", 1), &"Alice", None)
        .await
        .unwrap();
    let _: Option<String> = cache.get_typed(&key("users", 1)).await.unwrap();
    let _: Option<String> = cache.get_typed(&key("users", 2)).await.unwrap();

    let text = metrics.render();
    let count = |series: &str| sample(&text, series);
    assert_eq!(
        count(r#"msgpack_requests_total{method="add",status="OK"}"#),
        Some(3.0)
    );
    assert_eq!(
        count(r#"msgpack_requests_total{method="find",status="OK"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"msgpack_requests_total{method="find",status="NOT_FOUND"}"#),
        Some(2.0)
    );
    assert_eq!(
        count(r#"msgpack_requests_total{method="(unknown)",status="UNIMPLEMENTED"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"msgpack_requests_total{method="countdown",status="OK"}"#),
        Some(1.0)
    );
    assert!(
        !text.contains(r#"method="nope""#),
        "unknown names get no label"
    );
    assert_eq!(
        count(r#"msgpack_request_duration_seconds_count{method="add"}"#),
        Some(3.0)
    );
    assert_eq!(
        count(r#"msgpack_request_duration_seconds_bucket{method="add",le="+Inf"}"#),
        Some(3.0)
    );
    // Params of every call (8), results of the answered ones (3 + 1 + 1).
    assert_eq!(count("msgpack_message_size_bytes_count"), Some(13.0));
    // `[1, 2]` is three bytes: in the first bucket.
    assert!(count(r#"msgpack_message_size_bytes_bucket{le="16"}"#) >= Some(6.0));
    assert_eq!(
        count(r#"msgwire_connections_accepted_total{transport="tcp"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"msgwire_connections_open{transport="tcp"}"#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"msgwire_connections_open{transport="unix"}"#),
        Some(0.0)
    );
    assert_eq!(count("msgwire_cache_hits_total"), Some(1.0));
    assert_eq!(count("msgwire_cache_misses_total"), Some(1.0));
    assert_eq!(count("msgwire_cache_entries"), Some(1.0));
    assert_eq!(count("msgwire_cache_computations_total"), Some(0.0));
    for family in [
        "# TYPE msgpack_requests_total counter",
        "# TYPE msgpack_request_duration_seconds histogram",
        "# TYPE msgpack_message_size_bytes histogram",
        "# TYPE msgwire_connections_open gauge",
        "# TYPE msgwire_streams_open gauge",
        "# TYPE msgwire_cache_hits_total counter",
    ] {
        assert!(text.contains(family), "{family} in\n{text}");
    }

    // The connection closes: open goes back to 0, accepted stays.
    client.close();
    drop(client);
    until(|| metrics.open_connections()[0] == (Transport::Tcp, 0)).await;
    let text = metrics.render();
    assert_eq!(
        sample(&text, r#"msgwire_connections_open{transport="tcp"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"msgwire_connections_accepted_total{transport="tcp"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn histograms_have_the_documented_buckets() {
    let metrics = Metrics::new(&[], None);
    metrics.record_call("add", None, Duration::from_millis(3), 3, Some(1));
    let text = metrics.render();
    let durations = buckets(&text, "msgpack_request_duration_seconds", "method=\"add\",");
    let sizes = buckets(&text, "msgpack_message_size_bytes", "");
    let expected = |bounds: &[f64]| {
        let mut all: Vec<String> = bounds.iter().map(|b| format!("{b}")).collect();
        all.push("+Inf".into());
        all
    };
    assert_eq!(durations, expected(&DURATION_BUCKETS));
    assert_eq!(sizes, expected(&SIZE_BUCKETS));
    assert_eq!(durations.first().map(String::as_str), Some("0.001"));
    assert_eq!(sizes.last().map(String::as_str), Some("+Inf"));
    // 3 ms: not in the 1 ms or 2.5 ms buckets, in the 5 ms one.
    let series =
        |le: &str| format!("msgpack_request_duration_seconds_bucket{{method=\"add\",le=\"{le}\"}}");
    assert_eq!(sample(&text, &series("0.0025")), Some(0.0));
    assert_eq!(sample(&text, &series("0.005")), Some(1.0));
}

#[tokio::test]
async fn notifications_and_cancelled_calls_are_counted() {
    let metrics = Metrics::new(&[], None);
    let addr = serve(&metrics, Arc::new(Semaphore::new(0))).await;
    let client = within(Client::connect_tcp(addr, Dialect::FramedMap))
        .await
        .unwrap();
    within(client.notify("log", vec![Value::from("hello")]))
        .await
        .unwrap();
    until(|| {
        sample(
            &metrics.render(),
            r#"msgpack_requests_total{method="log",status="OK"}"#,
        ) == Some(1.0)
    })
    .await;

    // The caller gives up: the server drops the handler and counts it CANCELLED.
    let options = CallOptions::timeout(Duration::from_millis(20));
    let error = within(client.call_typed_with::<_, ()>("hang", &(), options))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded);
    until(|| {
        sample(
            &metrics.render(),
            r#"msgpack_requests_total{method="hang",status="CANCELLED"}"#,
        ) == Some(1.0)
    })
    .await;
}

#[tokio::test]
async fn http_connections_are_counted_while_open() {
    let metrics = Metrics::new(&[], None);
    let listener = metrics.http_listener(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
    tokio::spawn(axum::serve(listener, app).into_future());

    let open = || metrics.open_connections()[3];
    let stream = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    until(|| open() == (Transport::Http, 1)).await;
    drop(stream);
    until(|| open() == (Transport::Http, 0)).await;
}

#[test]
fn method_labels_are_bounded() {
    let metrics = Metrics::new(&[], None);
    let long = "x".repeat(MAX_METHOD_LEN + 1);
    metrics.record_call(&long, None, Duration::ZERO, 1, Some(1));
    metrics.record_call("ghost", Some(Code::Unimplemented), Duration::ZERO, 1, None);
    for n in 0..MAX_METHOD_LABELS + 10 {
        metrics.record_call(&format!("m{n}"), None, Duration::ZERO, 1, Some(1));
    }
    let text = metrics.render();
    assert_eq!(
        sample(
            &text,
            r#"msgpack_requests_total{method="(other)",status="OK"}"#
        ),
        Some(11.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"msgpack_requests_total{method="(unknown)",status="UNIMPLEMENTED"}"#
        ),
        Some(1.0)
    );
    let labelled = text
        .lines()
        .filter(|l| l.starts_with("msgpack_requests_total{"))
        .count();
    assert_eq!(labelled, MAX_METHOD_LABELS + 2);

    // A method seen before keeps its label whatever its outcome.
    metrics.record_call("m0", Some(Code::Unimplemented), Duration::ZERO, 1, None);
    assert_eq!(
        sample(
            &metrics.render(),
            r#"msgpack_requests_total{method="m0",status="UNIMPLEMENTED"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn both_text_formats_render() {
    let metrics = Metrics::new(&[], Some(Arc::new(MemoryCache::default())));
    metrics.record_call("add", None, Duration::from_millis(3), 3, Some(1));
    let prometheus = metrics.render();
    assert!(!prometheus.contains("# EOF"));
    assert!(prometheus.contains("# HELP msgwire_cache_misses_total "));
    let openmetrics = metrics.render_openmetrics();
    assert!(openmetrics.ends_with("# EOF\n"));
    assert!(openmetrics.contains("# TYPE msgwire_connections_open gauge"));
    assert!(CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
}
