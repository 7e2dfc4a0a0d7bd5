//! `/metrics` read by the Prometheus project's own text-format parser (Python
//! `prometheus_client`), after calls over TCP, WebSocket and HTTP against a real
//! `msgwire serve` (issue 8, acceptance 2): the counts are the calls the test made, of
//! every transport, not only HTTP's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{python_script, run_peer, Serve};
use serde_json::{json, Value};

fn sample(samples: &Value, key: &str) -> f64 {
    samples[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no sample {key} in {samples:#}"))
}

#[test]
fn metrics_count_calls_of_every_transport() {
    let data = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&["--data-dir", data.path().to_str().unwrap()]);
    let http = serve.http_addr().to_string();
    let report = run_peer(python_script("py_metrics.py", &[&serve.addr(), &http]));
    assert_eq!(report["made"], json!({"tcp": 4, "websocket": 3, "http": 5}));
    assert!(
        report["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        report["content_type"]
    );
    let families = &report["families"];
    assert_eq!(families["msgpack_requests"], "counter");
    assert_eq!(families["msgpack_request_duration_seconds"], "histogram");
    assert_eq!(families["msgpack_message_size_bytes"], "histogram");
    assert_eq!(families["msgwire_connections_open"], "gauge");
    let s = &report["samples"];
    // add: 3 over TCP, 2 over WebSocket, 4 over HTTP.
    assert_eq!(
        sample(s, "msgpack_requests_total{method=add,status=OK}"),
        9.0
    );
    assert_eq!(
        sample(s, "msgpack_requests_total{method=multiply,status=OK}"),
        1.0
    );
    assert_eq!(
        sample(s, "msgpack_requests_total{method=getUser,status=NOT_FOUND}"),
        1.0
    );
    assert_eq!(
        sample(s, "msgpack_requests_total{method=getUser,status=OK}"),
        1.0
    );
    assert_eq!(
        sample(s, "msgpack_request_duration_seconds_count{method=add}"),
        9.0
    );
    for le in ["0.001", "0.01", "0.1", "1", "+Inf"] {
        let key = format!("msgpack_request_duration_seconds_bucket{{le={le},method=add}}");
        assert!(sample(s, &key) <= 9.0, "{key}");
    }
    assert_eq!(
        sample(
            s,
            "msgpack_request_duration_seconds_bucket{le=+Inf,method=add}"
        ),
        9.0
    );
    // Params of the 12 calls, results of the 11 that answered.
    assert_eq!(sample(s, "msgpack_message_size_bytes_count{}"), 23.0);
    let small = sample(s, "msgpack_message_size_bytes_bucket{le=16}");
    assert!(small > 0.0 && small <= 23.0);
    assert_eq!(
        sample(s, "msgpack_message_size_bytes_bucket{le=65536}"),
        23.0
    );
    // One TCP connection and one WebSocket, both closed by now; HTTP: six requests on
    // their own connections (urllib) plus the upgraded one, the scrape still open.
    assert_eq!(
        sample(s, "msgwire_connections_accepted_total{transport=tcp}"),
        1.0
    );
    assert_eq!(
        sample(s, "msgwire_connections_accepted_total{transport=websocket}"),
        1.0
    );
    assert!(sample(s, "msgwire_connections_accepted_total{transport=http}") >= 7.0);
    assert!(sample(s, "msgwire_connections_open{transport=http}") >= 1.0);
    // Both getUser calls were misses: users:99 over TCP (NOT_FOUND, not cached) and
    // users:1 over HTTP (the first read of it).
    assert_eq!(sample(s, "msgwire_cache_misses_total{}"), 2.0);
    assert_eq!(sample(s, "msgwire_cache_hits_total{}"), 0.0);
    assert!(serve.is_running());
}
